// The statistics behind the judge (SPEC 5.1): the normal and binomial distributions,
// alpha spending over repeated evaluations, exact confidence bounds on a proportion and
// on a quantile, and Mann-Whitney U over two histograms. Pure functions, no allocation.
//
// The bounds are exact (binomial tails, not normal approximations) because the judge
// spends tiny alphas (1e-6 and below after a few hundred evaluations), where normal
// approximations of counts of a few failures are off by orders of magnitude.
#pragma once

#include <cstdint>

#include "metrics/histogram.hpp"

namespace veer::gating {

// Standard normal CDF, and its upper tail 1 - cdf(z) without cancellation.
double normal_cdf(double z);
double normal_tail(double z);
// Inverse of normal_cdf (Acklam's rational approximation refined by one Halley step to
// near double precision). p <= 0 -> -inf, p >= 1 -> +inf.
double normal_quantile(double p);

// P(X <= k) and P(X >= k) for X ~ Binomial(n, p), each accurate when small.
double binomial_cdf(std::uint64_t k, std::uint64_t n, double p);
double binomial_sf(std::uint64_t k, std::uint64_t n, double p);

// The false-alarm budget of evaluation k (1-based; 0 is treated as 1):
// (1 - confidence) * 6 / (pi^2 k^2). Since sum 1/k^2 = pi^2 / 6, the budgets of an
// unbounded sequence of evaluations add up to at most 1 - confidence, so judging every
// second for hours cannot push the false-rollback probability past 1 - confidence,
// however the windows overlap (a union bound, so it holds for correlated windows too).
double spent_alpha(double confidence, std::uint64_t evaluation_index);

// One-sided Clopper-Pearson bounds on a proportion from `failures` of `n`: the true
// proportion is below the lower bound (above the upper) with probability <= alpha.
// n == 0 -> 0 and 1.
double proportion_lower_bound(std::uint64_t failures, std::uint64_t n, double alpha);
double proportion_upper_bound(std::uint64_t failures, std::uint64_t n, double alpha);

// Lower confidence bound on the difference of two proportions p_a - p_b (Newcombe's
// MOVER with the Clopper-Pearson limits above): the true difference lies below it with
// probability <= alpha. Summed exactly over canary/stable-like counts (n 20..100000,
// rates 0.1%..50%, alpha 1e-5..3e-3) its false-alarm rate stayed at or below
// 0.85 x alpha, where a two-proportion z-test ran 4-60x over alpha once failures were
// few (the alphas that alpha spending hands out).
double difference_lower_bound(std::uint64_t failures_a, std::uint64_t n_a, std::uint64_t failures_b,
                              std::uint64_t n_b, double alpha);

// Distribution-free bounds on the q-quantile from order statistics: the number of
// observations below the true quantile is at most Binomial(n, q), so the order statistic
// picked from the binomial tail lies below (above) it with probability >= 1 - alpha.
// Bucket edges are taken on the safe side. lower: 0 when no order statistic qualifies;
// upper: +inf likewise (too few observations to bound a high quantile from above).
double quantile_lower_bound_us(const metrics::histogram& h, double q, double alpha);
double quantile_upper_bound_us(const metrics::histogram& h, double q, double alpha);

// One-sided Mann-Whitney U: is `a` stochastically larger than `b`? Observations in one
// bucket are ties (mid-ranks); normal approximation with tie and continuity correction.
struct rank_test {
    double u = 0;  // pairs (x from a, y from b) with x > y, ties counting one half
    double z = 0;
    double p_value = 1;
};
rank_test mann_whitney_greater(const metrics::histogram& a, const metrics::histogram& b);

}  // namespace veer::gating
