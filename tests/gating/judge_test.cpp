#include "gating/judge.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <random>
#include <regex>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "gating/stats.hpp"

namespace veer::gating {
namespace {

using metrics::histogram;
using metrics::window_stats;
using std::chrono::milliseconds;

// `requests` at one latency, the first `failures` of them failed.
window_stats fixed_window(std::uint64_t requests, std::uint64_t failures,
                          std::uint64_t latency_us) {
    window_stats w;
    w.requests = requests;
    w.failures = failures;
    w.by_result[static_cast<std::size_t>(metrics::result::s2xx)] = requests - failures;
    w.by_result[static_cast<std::size_t>(metrics::result::s5xx)] = failures;
    w.latency.add(latency_us, requests);
    w.seconds = 30;
    return w;
}

void add_requests(window_stats& w, std::uint64_t n, std::uint64_t latency_us) {
    w.requests += n;
    w.by_result[static_cast<std::size_t>(metrics::result::s2xx)] += n;
    w.latency.add(latency_us, n);
}

// n requests with log-normal latency (median, sigma) and independent failures.
void simulate(window_stats& w, std::mt19937_64& gen, std::uint64_t n, double error_rate,
              double median_us, double sigma) {
    std::lognormal_distribution<double> latency(std::log(median_us), sigma);
    std::bernoulli_distribution failed(error_rate);
    for (std::uint64_t i = 0; i < n; ++i) {
        const bool f = failed(gen);
        w.requests += 1;
        w.failures += f ? 1 : 0;
        w.by_result[static_cast<std::size_t>(f ? metrics::result::s5xx : metrics::result::s2xx)] +=
            1;
        w.latency.add(static_cast<std::uint64_t>(latency(gen)));
    }
    w.seconds = 30;
}

window_stats simulated(std::mt19937_64& gen, std::uint64_t n, double error_rate, double median_us,
                       double sigma) {
    window_stats w;
    simulate(w, gen, n, error_rate, median_us, sigma);
    return w;
}

// Only the comparisons: every fixed limit unset.
config::slo compare_only() {
    config::slo p;
    p.max_error_rate.reset();
    p.max_p95.reset();
    p.max_p99.reset();
    p.max_mean.reset();
    return p;
}

config::slo limits_only() {
    config::slo p;
    p.compare = false;
    return p;
}

// ---- statistics ----

TEST(stats, normal_quantile_inverts_the_cdf) {
    EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-12);
    EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-15);
    EXPECT_NEAR(normal_quantile(0.001), -3.090232306167813, 1e-11);
    EXPECT_NEAR(normal_cdf(1.959963984540054), 0.975, 1e-14);
    EXPECT_NEAR(normal_tail(6.0), 9.865876450376946e-10, 1e-22);
    for (double p : {1e-300, 1e-15, 1e-9, 1e-4, 0.02, 0.0243, 0.0244, 0.3, 0.7, 0.97, 0.999999})
        EXPECT_NEAR(normal_cdf(normal_quantile(p)) / p, 1.0, 1e-12) << p;
    EXPECT_TRUE(std::isinf(normal_quantile(0.0)));
    EXPECT_TRUE(std::isinf(normal_quantile(1.0)));
}

TEST(stats, alpha_spending_never_exceeds_the_budget) {
    EXPECT_NEAR(spent_alpha(0.99, 1), 0.01 * 6.0 / (std::numbers::pi * std::numbers::pi), 1e-15);
    EXPECT_EQ(spent_alpha(0.99, 0), spent_alpha(0.99, 1));
    double total = 0;
    for (std::uint64_t k = 1; k <= 1'000'000; ++k)
        total += spent_alpha(0.99, k);
    EXPECT_LE(total, 0.01);
    EXPECT_GT(total, 0.0099999);
    EXPECT_LT(spent_alpha(0.99, 100), spent_alpha(0.99, 10));
}

TEST(stats, binomial_tails) {
    // Bin(10, 0.5): P(X <= 2) = 56 / 1024, P(X >= 8) likewise.
    EXPECT_NEAR(binomial_cdf(2, 10, 0.5), 56.0 / 1024.0, 1e-14);
    EXPECT_NEAR(binomial_sf(8, 10, 0.5), 56.0 / 1024.0, 1e-14);
    EXPECT_EQ(binomial_cdf(10, 10, 0.3), 1.0);
    EXPECT_EQ(binomial_sf(0, 10, 0.3), 1.0);
    EXPECT_EQ(binomial_sf(11, 10, 0.3), 0.0);
    // A far tail keeps its relative precision: P(X >= 30), X ~ Bin(1000, 0.01).
    double exact = 0;
    for (int k = 30; k <= 60; ++k)
        exact += std::exp(std::lgamma(1001.0) - std::lgamma(k + 1.0) - std::lgamma(1001.0 - k) +
                          k * std::log(0.01) + (1000 - k) * std::log(0.99));
    EXPECT_NEAR(binomial_sf(30, 1000, 0.01) / exact, 1.0, 1e-9);
    EXPECT_NEAR(binomial_cdf(29, 1000, 0.01), 1.0 - exact, 1e-12);
}

TEST(stats, proportion_bounds) {
    // 0 of 100: the upper bound at 5% is 1 - 0.05^(1/100) (the "rule of three" ~ 3/n).
    EXPECT_NEAR(proportion_upper_bound(0, 100, 0.05), 1.0 - std::pow(0.05, 0.01), 1e-12);
    EXPECT_EQ(proportion_lower_bound(0, 100, 0.05), 0.0);
    // n of n: the lower bound is alpha^(1/n).
    EXPECT_NEAR(proportion_lower_bound(100, 100, 0.05), std::pow(0.05, 0.01), 1e-12);
    EXPECT_EQ(proportion_upper_bound(100, 100, 0.05), 1.0);
    // The bounds bracket the estimate and widen as alpha shrinks.
    for (double a : {0.05, 1e-3, 1e-9}) {
        EXPECT_LT(proportion_lower_bound(30, 1000, a), 0.03);
        EXPECT_GT(proportion_upper_bound(30, 1000, a), 0.03);
    }
    EXPECT_LT(proportion_lower_bound(30, 1000, 1e-9), proportion_lower_bound(30, 1000, 1e-3));
    // The exact definition: P(X >= 30 | lower) = alpha.
    EXPECT_NEAR(binomial_sf(30, 1000, proportion_lower_bound(30, 1000, 1e-6)), 1e-6, 1e-12);
    EXPECT_NEAR(binomial_cdf(30, 1000, proportion_upper_bound(30, 1000, 1e-6)), 1e-6, 1e-12);
    EXPECT_EQ(proportion_upper_bound(0, 0, 0.05), 1.0);
}

// The bounds cover the truth at least as often as promised, even at tiny alpha and a
// handful of failures (where a normal approximation would be far off): summed exactly
// over every outcome.
TEST(stats, proportion_bounds_coverage_at_small_counts) {
    for (double p : {0.001, 0.01, 0.2}) {
        for (double alpha : {1e-2, 1e-4, 1e-6}) {
            double lower_wrong = 0, upper_wrong = 0;
            for (std::uint64_t x = 0; x <= 200; ++x) {
                const double px = binomial_sf(x, 200, p) - binomial_sf(x + 1, 200, p);
                if (proportion_lower_bound(x, 200, alpha) > p) lower_wrong += px;
                if (proportion_upper_bound(x, 200, alpha) < p) upper_wrong += px;
            }
            EXPECT_LE(lower_wrong, alpha) << p << " " << alpha;
            EXPECT_LE(upper_wrong, alpha) << p << " " << alpha;
        }
    }
}

// The false-alarm rate of "lower bound of the difference > margin", summed exactly over
// every outcome, at the boundary of H0 and at alphas the judge spends.
TEST(stats, difference_bound_keeps_its_level_at_small_counts) {
    struct case_ {
        std::uint64_t n_canary, n_stable;
        double p_canary, p_stable, margin;
    };
    for (const case_ c : {case_{100, 1000, 0.01, 0.01, 0.0}, case_{300, 3000, 0.03, 0.01, 0.02},
                          case_{200, 200, 0.05, 0.05, 0.0}}) {
        for (double alpha : {3e-3, 1e-4}) {
            double false_alarm = 0;
            for (std::uint64_t xc = 0; xc <= 40; ++xc) {
                const double pc = binomial_sf(xc, c.n_canary, c.p_canary) -
                                  binomial_sf(xc + 1, c.n_canary, c.p_canary);
                for (std::uint64_t xs = 0; xs <= 80; ++xs) {
                    const double ps = binomial_sf(xs, c.n_stable, c.p_stable) -
                                      binomial_sf(xs + 1, c.n_stable, c.p_stable);
                    if (difference_lower_bound(xc, c.n_canary, xs, c.n_stable, alpha) > c.margin)
                        false_alarm += pc * ps;
                }
            }
            EXPECT_LE(false_alarm, alpha) << c.n_canary << "/" << c.n_stable << " alpha " << alpha;
            EXPECT_GT(false_alarm, alpha * 0.2) << "not needlessly blunt";
        }
    }
    // Power: 5% vs 1% over a 2% margin is clear with a thousand canary requests.
    EXPECT_GT(difference_lower_bound(50, 1000, 100, 10'000, 3e-3), 0.02);
    EXPECT_LT(difference_lower_bound(30, 1000, 100, 10'000, 3e-3), 0.02);
}

TEST(stats, mann_whitney_on_histograms) {
    std::mt19937_64 gen(3);
    const window_stats a = simulated(gen, 3000, 0, 20'000, 0.5);
    const window_stats b = simulated(gen, 3000, 0, 20'000, 0.5);
    const window_stats slower = simulated(gen, 3000, 0, 23'000, 0.5);
    const auto equal = mann_whitney_greater(a.latency, b.latency);
    EXPECT_GT(equal.p_value, 0.01);
    EXPECT_NEAR(equal.u / (3000.0 * 3000.0), 0.5, 0.03);
    EXPECT_LT(mann_whitney_greater(slower.latency, a.latency).p_value, 1e-6);
    EXPECT_GT(mann_whitney_greater(a.latency, slower.latency).p_value, 0.999);  // one-sided

    // Everything tied in one bucket: no evidence.
    const auto tied = mann_whitney_greater(fixed_window(100, 0, 5000).latency,
                                           fixed_window(100, 0, 5000).latency);
    EXPECT_EQ(tied.p_value, 1.0);
    // Fully separated: U is n_a * n_b.
    const auto separated =
        mann_whitney_greater(fixed_window(50, 0, 9000).latency, fixed_window(60, 0, 1000).latency);
    EXPECT_EQ(separated.u, 3000.0);
    EXPECT_LT(separated.p_value, 1e-10);
}

TEST(stats, quantile_bounds_bracket_the_p99) {
    std::mt19937_64 gen(11);
    const window_stats w = simulated(gen, 50'000, 0, 20'000, 0.5);
    const double p99 = 20'000 * std::exp(0.5 * normal_quantile(0.99));  // the true one
    const double alpha = 1e-3;
    EXPECT_LT(quantile_lower_bound_us(w.latency, 0.99, alpha), p99);
    EXPECT_GT(quantile_upper_bound_us(w.latency, 0.99, alpha), p99);
    EXPECT_LE(quantile_lower_bound_us(w.latency, 0.99, alpha),
              quantile_lower_bound_us(w.latency, 0.99, 0.2));
    EXPECT_GE(quantile_upper_bound_us(w.latency, 0.99, alpha),
              quantile_upper_bound_us(w.latency, 0.99, 0.2));
    // 100 observations cannot bound a p99 from above: even the maximum is below it with
    // probability 0.99^100 = 0.37.
    const window_stats few = simulated(gen, 100, 0, 20'000, 0.5);
    EXPECT_TRUE(std::isinf(quantile_upper_bound_us(few.latency, 0.99, alpha)));
    EXPECT_GT(quantile_lower_bound_us(few.latency, 0.99, alpha), 0.0);
    EXPECT_EQ(quantile_lower_bound_us(histogram{}, 0.99, alpha), 0.0);
    // Exact ranks: 1..1000 once each, p50 at alpha 0.5 sits next to rank 500.
    histogram ranks;
    for (std::uint64_t v = 1; v <= 100; ++v)
        ranks.add(v, 10);
    EXPECT_NEAR(quantile_lower_bound_us(ranks, 0.5, 0.5), 50, 1);
    EXPECT_NEAR(quantile_upper_bound_us(ranks, 0.5, 0.5), 51, 1);
}

// ---- fixed limits ----

TEST(judge, holds_below_min_requests) {
    const window_stats stable = fixed_window(5000, 0, 10'000);
    const window_stats canary = fixed_window(40, 40, 9'000'000);  // dreadful, but too little
    const verdict v = judge(stable, canary, false, config::slo{}, 1);
    EXPECT_EQ(v.what, verdict::kind::holding);
    EXPECT_EQ(v.needed_requests, 60);
    EXPECT_TRUE(v.reason.empty());
    EXPECT_EQ(v.canary_requests, 40u);
    EXPECT_EQ(v.canary_error_rate, 1.0);
    const auto j = to_json(v);
    EXPECT_EQ(j.at("verdict").as_string(), "holding");
    EXPECT_EQ(j.at("needed_requests").as_int64(), 60);
}

TEST(judge, all_canary_endpoints_unhealthy_is_a_violation_without_traffic) {
    const verdict v = judge(fixed_window(5000, 0, 10'000), window_stats{}, true, config::slo{}, 1);
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_EQ(v.reason, "all canary endpoints unhealthy");
    EXPECT_EQ(v.needed_requests, 0);
}

TEST(judge, all_unhealthy_names_the_limits_its_few_requests_broke) {
    // 16 requests, 10 failed: below min_requests, but with every endpoint ejected the
    // reason carries the evidence behind the ejections.
    const verdict v =
        judge(fixed_window(5000, 0, 10'000), fixed_window(16, 10, 1'000), true, config::slo{}, 1);
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_EQ(v.reason.rfind("all canary endpoints unhealthy; error_rate ", 0), 0u) << v.reason;
    EXPECT_NE(v.reason.find("> max_error_rate 0.05"), std::string::npos) << v.reason;
}

TEST(judge, ok_when_nothing_fires) {
    const verdict v = judge(fixed_window(5000, 50, 10'000), fixed_window(1000, 10, 10'000), false,
                            config::slo{}, 1);
    EXPECT_EQ(v.what, verdict::kind::ok);
    EXPECT_TRUE(v.reason.empty());
    EXPECT_EQ(v.confidence, 0.0);
    EXPECT_EQ(v.needed_requests, 0);
    EXPECT_DOUBLE_EQ(v.canary_error_rate, 0.01);
    EXPECT_NEAR(v.canary_p99_ms, 10.0, 0.1);  // the bucket's midpoint, within 1%
    EXPECT_NEAR(v.stable_p99_ms, 10.0, 0.1);
}

TEST(judge, max_error_rate) {
    const verdict v = judge(window_stats{}, fixed_window(100, 48, 10'000), false, limits_only(), 1);
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_EQ(v.reason, "error_rate 0.48 > max_error_rate 0.05");
    // Just above: enough digits to show it.
    const verdict edge =
        judge(window_stats{}, fixed_window(20'000, 1001, 10'000), false, limits_only(), 1);
    EXPECT_EQ(edge.reason, "error_rate 0.05005 > max_error_rate 0.05");
    // At the limit is not above it.
    EXPECT_EQ(judge(window_stats{}, fixed_window(100, 5, 10'000), false, limits_only(), 1).what,
              verdict::kind::ok);
}

TEST(judge, max_p99) {
    config::slo policy = limits_only();
    policy.max_p99 = milliseconds{100};
    window_stats canary = fixed_window(98, 0, 10'000);
    add_requests(canary, 2, 251'200);
    const verdict v = judge(window_stats{}, canary, false, policy, 1);
    EXPECT_EQ(v.what, verdict::kind::violation);
    // 251.2 ms lands in [249.856, 251.904) ms, reported as its midpoint.
    EXPECT_EQ(v.reason, "p99 250.9ms > max_p99 100ms");
    EXPECT_NEAR(v.canary_p99_ms, 251.2, 251.2 * 0.01);
}

TEST(judge, max_p95) {
    window_stats canary = fixed_window(90, 0, 10'000);
    add_requests(canary, 10, 300'000);
    const verdict v = judge(window_stats{}, canary, false, limits_only(), 1);  // max_p95 200ms
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_EQ(v.reason, "p95 301.1ms > max_p95 200ms");
}

TEST(judge, max_mean) {
    config::slo policy = limits_only();
    policy.max_mean = milliseconds{50};
    policy.max_p95.reset();
    policy.max_p99.reset();
    const verdict v = judge(window_stats{}, fixed_window(100, 0, 60'000), false, policy, 1);
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_EQ(v.reason, "mean 60ms > max_mean 50ms");
    EXPECT_DOUBLE_EQ(v.canary_mean_ms, 60.0);
}

TEST(judge, several_limits_are_joined) {
    config::slo policy = limits_only();
    policy.max_p99 = milliseconds{100};
    window_stats canary = fixed_window(98, 48, 10'000);
    add_requests(canary, 2, 251'200);
    const verdict v = judge(window_stats{}, canary, false, policy, 1);
    EXPECT_EQ(v.reason, "error_rate 0.48 > max_error_rate 0.05; p99 250.9ms > max_p99 100ms");
}

TEST(judge, unset_limits_are_not_judged) {
    config::slo policy = limits_only();
    policy.max_error_rate.reset();
    policy.max_p95.reset();
    policy.max_p99.reset();
    policy.max_mean.reset();
    const verdict v = judge(window_stats{}, fixed_window(100, 100, 60'000'000), false, policy, 1);
    EXPECT_EQ(v.what, verdict::kind::ok);
}

TEST(judge, to_json_carries_the_figures) {
    const verdict v = judge(window_stats{}, fixed_window(100, 48, 10'000), false, limits_only(), 1);
    const boost::json::object j = to_json(v);
    EXPECT_EQ(j.at("verdict").as_string(), "violation");
    EXPECT_EQ(j.at("reason").as_string(), "error_rate 0.48 > max_error_rate 0.05");
    EXPECT_EQ(j.at("canary_requests").to_number<std::uint64_t>(), 100u);
    EXPECT_EQ(j.at("stable_requests").to_number<std::uint64_t>(), 0u);
    EXPECT_DOUBLE_EQ(j.at("canary_error_rate").as_double(), 0.48);
    EXPECT_NEAR(j.at("canary_p99_ms").as_double(), 10.0, 0.1);
    for (const char* key : {"stable_error_rate", "canary_p50_ms", "canary_p95_ms", "canary_mean_ms",
                            "stable_p99_ms", "confidence", "needed_requests"})
        EXPECT_TRUE(j.contains(key)) << key;
}

// ---- comparison ----

TEST(judge, compare_catches_an_error_rate_regression_under_the_fixed_limit) {
    const window_stats stable = fixed_window(10'000, 100, 20'000);  // 1%
    const window_stats canary = fixed_window(2'000, 300, 20'000);  // 15%
    config::slo policy;
    policy.max_error_rate = 0.5;  // the fixed limit stays quiet
    const verdict v = judge(stable, canary, false, policy, 5);
    EXPECT_EQ(v.what, verdict::kind::violation);
    EXPECT_TRUE(std::regex_match(
        v.reason,
        std::regex(
            R"(error_rate increase 0\.14 > max_error_rate_increase 0\.02 \(confidence 0\.9999+\))")))
        << v.reason;
    EXPECT_GT(v.confidence, 0.999);
    EXPECT_LE(v.confidence, 1.0);
    // The same figures without compare: fine.
    policy.compare = false;
    EXPECT_EQ(judge(stable, canary, false, policy, 5).what, verdict::kind::ok);
}

TEST(judge, an_increase_within_the_margin_does_not_fire) {
    const window_stats stable = fixed_window(10'000, 100, 20'000);  // 1%
    const window_stats canary = fixed_window(2'000, 50, 20'000);  // 2.5%: +1.5% < 2%
    EXPECT_EQ(judge(stable, canary, false, compare_only(), 1).what, verdict::kind::ok);
}

TEST(judge, later_evaluations_need_stronger_evidence) {
    const window_stats stable = fixed_window(10'000, 100, 20'000);  // 1%
    const window_stats canary = fixed_window(1'000, 50, 20'000);  // 5%: +4%, margin 2%
    EXPECT_EQ(judge(stable, canary, false, compare_only(), 1).what, verdict::kind::violation);
    EXPECT_EQ(judge(stable, canary, false, compare_only(), 1000).what, verdict::kind::ok);
}

TEST(judge, compare_catches_a_latency_shift) {
    std::mt19937_64 gen(2024);
    const window_stats stable = simulated(gen, 5000, 0.0, 20'000, 0.5);
    const window_stats canary = simulated(gen, 1000, 0.0, 60'000, 0.5);  // 3x slower
    const verdict v = judge(stable, canary, false, compare_only(), 3);
    EXPECT_EQ(v.what, verdict::kind::violation);
    std::smatch m;
    ASSERT_TRUE(std::regex_match(
        v.reason, m,
        std::regex(R"(p99 ratio (\d+\.\d\d) > max_p99_ratio 1\.5 \(confidence (0\.9+\d*)\))")))
        << v.reason;
    EXPECT_NEAR(std::stod(m[1].str()), 3.0, 0.4);
    EXPECT_GT(v.confidence, 0.99);
    EXPECT_NEAR(v.canary_p99_ms / v.stable_p99_ms, 3.0, 0.4);
}

TEST(judge, a_small_latency_shift_under_the_ratio_does_not_fire) {
    std::mt19937_64 gen(99);
    for (int round = 0; round < 20; ++round) {
        const window_stats stable = simulated(gen, 20'000, 0.01, 20'000, 0.5);
        window_stats canary = simulated(gen, 5'000, 0.01, 22'000, 0.5);  // 1.1x everywhere
        // The shift is real and the rank test sees it; the p99 ratio stays under 1.5.
        EXPECT_LT(mann_whitney_greater(canary.latency, stable.latency).p_value, 1e-6);
        const verdict v = judge(stable, canary, false, compare_only(), 1);
        EXPECT_EQ(v.what, verdict::kind::ok) << v.reason;
    }
}

// Equal pools judged over and over: with alpha spending the chance of any false rollback
// in a whole sequence stays under 1 - confidence.
TEST(judge, equal_pools_do_not_roll_back_default_policy) {
    std::mt19937_64 gen(12345);
    const config::slo policy;  // defaults: confidence 0.99, +0.02 error rate, 1.5x p99
    constexpr int windows = 250;
    int false_rollbacks = 0;
    window_stats stable, canary;
    for (int k = 1; k <= windows; ++k) {
        stable = window_stats{};
        canary = window_stats{};
        simulate(stable, gen, 3000, 0.01, 20'000, 0.6);
        simulate(canary, gen, 400, 0.01, 20'000, 0.6);
        const verdict v = judge(stable, canary, false, policy, static_cast<std::uint64_t>(k));
        if (v.what == verdict::kind::violation) ++false_rollbacks;
    }
    std::printf(
        "[ measured ] default policy, equal pools: %d false violations in %d evaluations "
        "(rate %.4f; bound on the sequence: %.2f)\n",
        false_rollbacks, windows, false_rollbacks / double(windows), 1.0 - policy.confidence);
    EXPECT_EQ(false_rollbacks, 0);  // expected count <= 0.01 over the whole sequence
}

// The hardest case for the bound: no margin at all (canary rate > stable rate, canary p99
// > stable p99), a loose confidence so false alarms are frequent enough to count, and
// independent windows. Each sequence is one canary's life: 25 evaluations.
struct false_alarm_rate {
    double rate = 0;
    double naive_rate = 0;
    int fired = 0;
};

// `sequences` canaries, each judged `evaluations` times on fresh equal-pool windows.
false_alarm_rate measure_false_rollbacks(double confidence, int sequences, int evaluations) {
    std::mt19937_64 gen(777);
    config::slo policy = compare_only();
    policy.max_error_rate_increase.reset();  // 0
    policy.max_p99_ratio.reset();  // 1
    policy.confidence = confidence;
    int sequences_with_rollback = 0, naive_sequences = 0;
    false_alarm_rate out;
    window_stats stable, canary;
    for (int seq = 0; seq < sequences; ++seq) {
        bool rolled_back = false, naive = false;
        for (int k = 1; k <= evaluations; ++k) {
            stable = window_stats{};
            canary = window_stats{};
            simulate(stable, gen, 1000, 0.02, 20'000, 0.6);
            simulate(canary, gen, 300, 0.02, 20'000, 0.6);
            const verdict v = judge(stable, canary, false, policy, static_cast<std::uint64_t>(k));
            if (v.what == verdict::kind::violation) {
                rolled_back = true;
                ++out.fired;
            }
            // What a fixed per-evaluation test at the same level would do (error rate only).
            const double a = (1.0 - policy.confidence) / 2;  // the error test's half
            if (difference_lower_bound(canary.failures, canary.requests, stable.failures,
                                       stable.requests, a) > 0)
                naive = true;
        }
        sequences_with_rollback += rolled_back ? 1 : 0;
        naive_sequences += naive ? 1 : 0;
    }
    out.rate = sequences_with_rollback / double(sequences);
    out.naive_rate = naive_sequences / double(sequences);
    std::printf(
        "[ measured ] equal pools, no margins, confidence %.2f: %d of %d sequences of %d "
        "evaluations rolled back (rate %.4f, bound %.2f; %d evaluations fired); without alpha "
        "spending the error-rate test alone: %.4f\n",
        confidence, sequences_with_rollback, sequences, evaluations, out.rate, 1.0 - confidence,
        out.fired, out.naive_rate);
    return out;
}

TEST(judge, equal_pools_false_rollback_rate_stays_within_the_bound) {
    // A loose confidence, so that false alarms are frequent enough to count.
    const auto m = measure_false_rollbacks(0.9, 400, 25);
    const double bound = 0.1;
    // The bound plus three binomial standard errors of the estimate.
    EXPECT_LE(m.rate, bound + 3.0 * std::sqrt(bound * (1 - bound) / 400));
    EXPECT_GT(m.naive_rate, m.rate);  // the correction is what keeps it down
}

TEST(judge, equal_pools_at_the_default_confidence) {
    const auto m = measure_false_rollbacks(0.99, 400, 25);
    EXPECT_LE(m.rate, 0.01 + 3.0 * std::sqrt(0.01 * 0.99 / 400));
}

}  // namespace
}  // namespace veer::gating
