// The SLO judge (SPEC 5, 5.1): one evaluation of the canary's window against the fixed
// limits and, with slo.compare, against the stable pool's window. A pure function of its
// inputs; the control loop calls it every slo.evaluate_every and hands the verdict to
// the rollout state machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "config/config.hpp"
#include "gating/verdict_kind.hpp"
#include "metrics/window.hpp"

namespace veer::gating {

struct verdict {
    using kind = verdict_kind;
    kind what = kind::ok;
    // violation: every limit exceeded, joined by "; ", e.g.
    // "error_rate 0.48 > max_error_rate 0.05; p99 251.2ms > max_p99 100ms".
    std::string reason;
    std::int64_t needed_requests = 0;  // holding: canary requests still missing

    // The figures behind it, over the window.
    std::uint64_t canary_requests = 0;
    std::uint64_t stable_requests = 0;
    double canary_error_rate = 0;
    double stable_error_rate = 0;
    double canary_p50_ms = 0;
    double canary_p95_ms = 0;
    double canary_p99_ms = 0;
    double canary_mean_ms = 0;
    double stable_p99_ms = 0;
    double confidence = 0;  // of the comparison that fired (the higher if both; at most
        // 0.999999), or 0

    // An external gate's violation (gating/gate.hpp): the first violating gate, or "".
    std::string gate;
    std::string gate_query;
    std::optional<double> gate_value;
    std::string gate_limit;
};

// "ok", "holding", "violation".
std::string_view kind_name(verdict::kind k);

// Judges the canary. In order:
// - canary_all_unhealthy -> violation "all canary endpoints unhealthy";
// - fewer than policy.min_requests canary requests -> holding (needed_requests);
// - each set fixed limit (max_error_rate, max_p95, max_p99, max_mean) exceeded;
// - with policy.compare and both pools at >= max(min_requests, 20) requests:
//   (a) error rate: a lower confidence bound of canary - stable error rate (MOVER with
//       exact Clopper-Pearson limits) exceeds max_error_rate_increase (0 when unset);
//   (b) latency: Mann-Whitney says the canary is slower AND an order-statistic lower
//       bound of canary p99 exceeds max_p99_ratio (1 when unset) times an upper bound
//       of stable p99.
//   evaluation_index (1-based, evaluations since the canary got traffic) sets the
//   false-alarm budget by alpha spending, so repeated judging does not inflate false
//   rollbacks; see spent_alpha in gating/stats.hpp.
// Any limit or comparison firing -> violation; else ok.
verdict judge(const metrics::window_stats& stable, const metrics::window_stats& canary,
              bool canary_all_unhealthy, const config::slo& policy, std::uint64_t evaluation_index);

// The verdict as a flat object, for event figures and status:
// {"verdict":"violation","reason":..,"needed_requests":..,"canary_requests":..,
//  "stable_requests":..,"canary_error_rate":..,"stable_error_rate":..,"canary_p50_ms":..,
//  "canary_p95_ms":..,"canary_p99_ms":..,"canary_mean_ms":..,"stable_p99_ms":..,
//  "confidence":..}
boost::json::object to_json(const verdict& v);

}  // namespace veer::gating
