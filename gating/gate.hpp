// External gates (SPEC 13), the pure part: a Prometheus query's answer read, a gate's
// reading judged against its limit, and the gates folded into the judge's verdict, so a
// gate's violation counts like a fixed limit's (violations_to_rollback, dry_run, events).
// The queries themselves run in control/gates.cpp.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gating/judge.hpp"

namespace veer::gating {

// `query` with {{canary}} and {{stable}} replaced by the pools' names.
std::string substitute(std::string_view query, std::string_view canary, std::string_view stable);

// What GET /api/v1/query answered.
struct query_result {
    enum class kind { value, no_data, error };
    kind what = kind::error;
    double value = 0;
    std::string error;  // kind::error: Prometheus' message, or why the answer is unusable
};

// A vector of one series or a scalar -> value; an empty vector -> no_data; anything else
// (an error status, more than one series, a matrix, bad JSON) -> error.
query_result parse_query_response(std::string_view body);

// One gate as the judge sees it now.
struct gate_reading {
    std::string name;
    std::string query;  // as sent, substituted
    std::string limit;  // "max 0.01" / "min 3"
    verdict_kind what = verdict_kind::holding;  // not queried yet: holding
    bool error = false;  // the query failed: holding, counted
    std::string detail;  // the violation, the error, or why it holds
    std::optional<double> value;
    std::int64_t checked_ms = 0;  // unix ms of the reading; 0: never
};

// "max 0.01" / "min 3".
std::string limit_text(const config::prometheus_gate& gate);

// Judges one answer: above max (below min) is a violation; no data as on_no_data says.
gate_reading judge_gate(const config::prometheus_gate& gate, const query_result& answer,
                        std::string query, std::int64_t now_ms);

// Folds the gates into `v`: any violating gate makes it a violation (its words appended
// to the reason, its figures added); an ok verdict with a holding gate holds.
void fold_gates(verdict& v, const std::vector<gate_reading>& gates);

// {"name":..,"kind":"prometheus","query":..,"value":..|null,"limit":..,"verdict":..,
//  "error":.. (on error),"checked":RFC 3339|null}
boost::json::object to_json(const gate_reading& g);

}  // namespace veer::gating
