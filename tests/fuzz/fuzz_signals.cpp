// libFuzzer: what veer reads from the network besides HTTP: Alertmanager's webhook bodies,
// Prometheus' query answers, and the fleet's records in etcd (releases, reports, kvs).
// Each either parses or says why not; a parsed value is usable as it is.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "cluster/records.hpp"
#include "gating/alert.hpp"
#include "gating/gate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace veer;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string error;
    if (auto alerts = gating::parse_webhook(text, error)) {
        for (const auto& a : *alerts) {
            if (!a.firing() && a.status != "resolved") __builtin_trap();
            (void)gating::label_text(a);
            (void)gating::matches(a, {{"severity", "critical"}});
        }
    } else if (error.empty()) {
        __builtin_trap();
    }
    const auto answer = gating::parse_query_response(text);
    if (answer.what == gating::query_result::kind::error && answer.error.empty()) __builtin_trap();
    config::prometheus_gate g;
    g.name = "g";
    g.max = 1;
    (void)gating::to_json(gating::judge_gate(g, answer, "q", 1));
    (void)cluster::release_from_text(text, error);
    if (auto r = cluster::report_from_text(text))
        for (const auto& [pool, w] : r->pools)
            (void)w.latency.quantile(0.99);
    boost::system::error_code ec;
    if (auto v = boost::json::parse(text, ec); !ec) (void)cluster::kv_from_json(v);
    if (auto bytes = cluster::base64_decode(text))
        if (cluster::base64_encode(*bytes) != text) __builtin_trap();
    return 0;
}
