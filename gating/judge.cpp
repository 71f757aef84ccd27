#include "gating/judge.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <boost/json.hpp>

#include "gating/stats.hpp"

namespace veer::gating {

namespace {

using metrics::histogram;

// The comparisons want this many requests per pool (Mann-Whitney's normal
// approximation), whatever min_requests says.
constexpr std::uint64_t min_compare_requests = 20;
constexpr double compared_quantile = 0.99;
constexpr double max_reported_confidence = 0.999999;

std::string printf_string(const char* format, int precision, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, precision, v);
    return buf;
}

// A limit as configured: 0.05 -> "0.05", 1.5 -> "1.5".
std::string format_limit(double v) { return printf_string("%.*g", 10, v); }

// A figure that exceeded `limit`, with just enough significant digits to read as
// larger than it: 0.4812 vs 0.05 -> "0.48", 0.05004 vs 0.05 -> "0.05004".
std::string format_above(double v, double limit) {
    std::string s;
    for (int precision = 2; precision <= 12; ++precision) {
        s = printf_string("%.*g", precision, v);
        if (std::strtod(s.c_str(), nullptr) > limit) break;
    }
    return s;
}

// Milliseconds with one decimal (more when needed to clear the limit), zeros trimmed:
// 251.2 vs 100 -> "251.2", 100.04 vs 100 -> "100.04".
std::string format_ms_above(double ms, double limit_ms) {
    std::string s;
    for (int decimals = 1; decimals <= 6; ++decimals) {
        s = printf_string("%.*f", decimals, ms);
        if (std::strtod(s.c_str(), nullptr) > limit_ms) break;
    }
    while (s.find('.') != std::string::npos && (s.back() == '0' || s.back() == '.')) {
        const bool dot = s.back() == '.';
        s.pop_back();
        if (dot) break;
    }
    return s;
}

// A confidence rounded down, with as many decimals as it has leading nines plus one
// (at least 3, at most 6), so 0.99997 reads "0.99997" and never rounds up to "1".
std::string format_confidence(double c) {
    c = std::clamp(c, 0.0, max_reported_confidence);
    int decimals = 3;
    for (double tail = 1.0 - c; decimals < 6 && tail < std::pow(10.0, -(decimals - 1)) / 1.0001;)
        ++decimals;
    const double scale = std::pow(10.0, decimals);
    std::string s = printf_string("%.*f", decimals, std::floor(c * scale + 1e-9) / scale);
    while (s.back() == '0' && s.size() > 4)
        s.pop_back();  // keep "0.x" at least
    return s;
}

void append(std::string& reasons, const std::string& reason) {
    if (!reasons.empty()) reasons += "; ";
    reasons += reason;
}

struct comparison {
    bool fired = false;
    double confidence = 0;
    std::string reason;
};

// The confidence a bound-based test actually reaches: `separated(a)` (a test at level
// a) gets harder as a shrinks; find the smallest a at which it still holds by bisection
// on log a, down to `floor` (beyond which nobody reads the nines). Only called once
// separated(a0) holds.
template <class Separated>
double smallest_level(Separated separated, double a0, double floor) {
    if (a0 <= floor || separated(floor)) return std::min(a0, floor);
    double lo = std::log(floor), hi = std::log(a0);  // separated(exp(hi)) holds
    for (int i = 0; i < 20; ++i) {
        const double mid = (lo + hi) / 2.0;
        (separated(std::exp(mid)) ? hi : lo) = mid;
    }
    return std::exp(hi);
}

// (a) Error rate: the lower confidence bound of canary - stable error rate must exceed
// the margin. The bound is exact enough at tiny alphas (see gating/stats.hpp).
comparison compare_error_rates(const metrics::window_stats& stable,
                               const metrics::window_stats& canary, double margin, double alpha) {
    comparison c;
    // The bound sits below the observed difference: no need to compute it.
    if (canary.error_rate() - stable.error_rate() <= margin) return c;
    auto separated = [&](double a) {
        return difference_lower_bound(canary.failures, canary.requests, stable.failures,
                                      stable.requests, a) > margin;
    };
    if (!separated(alpha)) return c;
    c.fired = true;
    c.confidence = 1.0 - smallest_level(separated, alpha, 1.0 - max_reported_confidence);
    const double increase = canary.error_rate() - stable.error_rate();
    c.reason = "error_rate increase " + format_above(increase, margin) +
               " > max_error_rate_increase " + format_limit(margin) + " (confidence " +
               format_confidence(c.confidence) + ")";
    return c;
}

// (b) Latency: the rank test must see the canary as slower, and the canary's p99 lower
// bound must exceed ratio x the stable p99 upper bound. A false alarm needs one of the
// two bounds to be wrong (alpha / 2 each); the rank test is required on top (an
// intersection), so it may use all of alpha.
comparison compare_latency(const metrics::window_stats& stable, const metrics::window_stats& canary,
                           double ratio, double alpha) {
    comparison c;
    const rank_test shift = mann_whitney_greater(canary.latency, stable.latency);
    if (!(shift.p_value <= alpha)) return c;
    auto separated = [&](double a) {
        const double stable_high = quantile_upper_bound_us(stable.latency, compared_quantile, a);
        return std::isfinite(stable_high) &&
               quantile_lower_bound_us(canary.latency, compared_quantile, a) > ratio * stable_high;
    };
    if (!separated(alpha / 2.0)) return c;
    c.fired = true;
    c.confidence = std::min(
        1.0 - shift.p_value,
        1.0 - 2.0 * smallest_level(separated, alpha / 2.0, (1.0 - max_reported_confidence) / 2.0));
    const double stable_p99 = stable.latency.quantile(compared_quantile);
    const double observed =
        stable_p99 > 0 ? canary.latency.quantile(compared_quantile) / stable_p99 : 0.0;
    c.reason = "p99 ratio " + printf_string("%.*f", 2, observed) + " > max_p99_ratio " +
               format_limit(ratio) + " (confidence " + format_confidence(c.confidence) + ")";
    return c;
}

}  // namespace

std::string_view kind_name(verdict::kind k) {
    switch (k) {
        case verdict::kind::ok: return "ok";
        case verdict::kind::holding: return "holding";
        case verdict::kind::violation: return "violation";
    }
    return "ok";
}

verdict judge(const metrics::window_stats& stable, const metrics::window_stats& canary,
              bool canary_all_unhealthy, const config::slo& policy,
              std::uint64_t evaluation_index) {
    verdict v;
    v.canary_requests = canary.requests;
    v.stable_requests = stable.requests;
    v.canary_error_rate = canary.error_rate();
    v.stable_error_rate = stable.error_rate();
    v.canary_p50_ms = canary.latency.quantile(0.50) / 1000.0;
    v.canary_p95_ms = canary.latency.quantile(0.95) / 1000.0;
    v.canary_p99_ms = canary.latency.quantile(0.99) / 1000.0;
    v.canary_mean_ms = canary.latency.mean_us() / 1000.0;
    v.stable_p99_ms = stable.latency.quantile(0.99) / 1000.0;

    const auto min_requests =
        static_cast<std::uint64_t>(std::max<std::int64_t>(policy.min_requests, 0));
    if (!canary_all_unhealthy && canary.requests < min_requests) {
        // Never a verdict for lack of data: neither a rollback nor a step forward.
        v.what = verdict::kind::holding;
        v.needed_requests = static_cast<std::int64_t>(min_requests - canary.requests);
        return v;
    }

    // With every canary endpoint down the verdict needs no more data; the fixed limits its
    // requests broke so far go into the reason as the evidence behind the ejections.
    std::string reasons = canary_all_unhealthy ? "all canary endpoints unhealthy" : "";
    if (policy.max_error_rate && v.canary_error_rate > *policy.max_error_rate)
        append(reasons, "error_rate " + format_above(v.canary_error_rate, *policy.max_error_rate) +
                            " > max_error_rate " + format_limit(*policy.max_error_rate));
    auto check_ms = [&](const char* figure, double ms, const std::optional<config::duration>& limit,
                        const char* limit_name) {
        if (!limit) return;
        const auto limit_ms = static_cast<double>(limit->count());
        if (ms > limit_ms)
            append(reasons, std::string(figure) + " " + format_ms_above(ms, limit_ms) + "ms > " +
                                limit_name + " " + std::to_string(limit->count()) + "ms");
    };
    check_ms("p95", v.canary_p95_ms, policy.max_p95, "max_p95");
    check_ms("p99", v.canary_p99_ms, policy.max_p99, "max_p99");
    check_ms("mean", v.canary_mean_ms, policy.max_mean, "max_mean");

    const std::uint64_t compare_floor = std::max(min_requests, min_compare_requests);
    if (policy.compare && canary.requests >= compare_floor && stable.requests >= compare_floor) {
        // Two tests share this evaluation's budget (Bonferroni).
        const double alpha = spent_alpha(policy.confidence, evaluation_index) / 2.0;
        const comparison errors = compare_error_rates(
            stable, canary, policy.max_error_rate_increase.value_or(0.0), alpha);
        const comparison latency =
            compare_latency(stable, canary, policy.max_p99_ratio.value_or(1.0), alpha);
        for (const comparison* c : {&errors, &latency}) {
            if (!c->fired) continue;
            append(reasons, c->reason);
            // Capped like the reason's text: more nines than that is numerical noise.
            v.confidence = std::max(v.confidence, std::min(c->confidence, max_reported_confidence));
        }
    }

    if (!reasons.empty()) {
        v.what = verdict::kind::violation;
        v.reason = std::move(reasons);
    }
    return v;
}

boost::json::object to_json(const verdict& v) {
    // JSON has no inf/nan; the figures are finite by construction, but never emit one.
    auto finite = [](double x) { return std::isfinite(x) ? x : 0.0; };
    boost::json::object o;
    o["verdict"] = kind_name(v.what);
    o["reason"] = v.reason;
    o["needed_requests"] = v.needed_requests;
    o["canary_requests"] = v.canary_requests;
    o["stable_requests"] = v.stable_requests;
    o["canary_error_rate"] = finite(v.canary_error_rate);
    o["stable_error_rate"] = finite(v.stable_error_rate);
    o["canary_p50_ms"] = finite(v.canary_p50_ms);
    o["canary_p95_ms"] = finite(v.canary_p95_ms);
    o["canary_p99_ms"] = finite(v.canary_p99_ms);
    o["canary_mean_ms"] = finite(v.canary_mean_ms);
    o["stable_p99_ms"] = finite(v.stable_p99_ms);
    o["confidence"] = finite(v.confidence);
    if (!v.gate.empty()) {
        o["gate"] = v.gate;
        o["query"] = v.gate_query;
        o["value"] =
            v.gate_value ? boost::json::value(finite(*v.gate_value)) : boost::json::value(nullptr);
        o["limit"] = v.gate_limit;
    }
    return o;
}

}  // namespace veer::gating
