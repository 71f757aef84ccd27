// The admin answers' JSON shapes (SPEC 6): {"ok":true,...} and {"ok":false,"error":...}.
#pragma once

#include <boost/json.hpp>

#include <string>
#include <string_view>

#include "metrics/window.hpp"

namespace veer::control {

inline std::string ok_json(boost::json::object o = {}) {
    boost::json::object out;  // "ok" first reads better; boost::json keeps insertion order
    out["ok"] = true;
    for (auto& kv : o)
        if (kv.key() != "ok") out[kv.key()] = kv.value();
    return boost::json::serialize(out);
}

inline std::string error_json(std::string_view error) {
    boost::json::object o;
    o["ok"] = false;
    o["error"] = error;
    return boost::json::serialize(o);
}

// A window's figures as `status` shows them (control/status.cpp).
boost::json::object window_json(const metrics::window_stats& w);

}  // namespace veer::control
