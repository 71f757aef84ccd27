#include "gating/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace veer::gating {

namespace {

using metrics::histogram;

// Continued fraction of the incomplete beta function (modified Lentz), converging fast
// for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
    constexpr double tiny = 1e-300;
    constexpr double eps = 1e-15;
    const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0;
    double d = 1.0 - qab * x / qap;
    if (std::fabs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= 100000; ++m) {
        const double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (std::fabs(d) < tiny) d = tiny;
        c = 1.0 + aa / c;
        if (std::fabs(c) < tiny) c = tiny;
        d = 1.0 / d;
        const double delta = d * c;
        h *= delta;
        if (std::fabs(delta - 1.0) < eps) break;
    }
    return h;
}

// The regularized incomplete beta I_x(a, b). Small results come straight from the
// continued fraction (no 1 - x cancellation), which is the tail the callers need.
double regularized_beta(double a, double b, double x) {
    if (x <= 0.0) return 0.0;
    if (x >= 1.0) return 1.0;
    const double log_front =
        std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * beta_fraction(a, b, x) / a;
    return 1.0 - std::exp(log_front) * beta_fraction(b, a, 1.0 - x) / b;
}

// Bucket index of the r-th smallest observation (1-based r <= count).
std::size_t bucket_of_rank(const histogram& h, std::uint64_t r) {
    std::uint64_t seen = 0;
    for (std::size_t i = h.first_nonempty(); i <= h.last_nonempty(); ++i) {
        seen += h.bucket_count_at(i);
        if (seen >= r) return i;
    }
    return h.last_nonempty();
}

}  // namespace

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

double normal_tail(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

double normal_quantile(double p) {
    if (!(p > 0.0)) return -std::numeric_limits<double>::infinity();
    if (!(p < 1.0)) return std::numeric_limits<double>::infinity();

    // Peter J. Acklam's rational approximations (relative error 1.15e-9).
    static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                   -2.759285104469687e+02, 1.383577518672690e+02,
                                   -3.066479806614716e+01, 2.506628277459239e+00};
    static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                   -1.556989798598866e+02, 6.680131188771972e+01,
                                   -1.328068155288572e+01};
    static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                   -2.400758277161838e+00, -2.549732539343734e+00,
                                   4.374664141464968e+00,  2.938163982698783e+00};
    static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                   2.445134137142996e+00, 3.754408661907416e+00};
    constexpr double p_low = 0.02425;

    double x;
    if (p < p_low) {
        const double q = std::sqrt(-2.0 * std::log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    } else if (p <= 1.0 - p_low) {
        const double q = p - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    } else {
        const double q = std::sqrt(-2.0 * std::log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    }
    // One Halley step against the exact CDF, computed on the smaller tail so that
    // p = 1e-300 refines as well as p = 0.5.
    const double e = x < 0 ? normal_cdf(x) - p : (1.0 - p) - normal_tail(x);
    const double u = e * std::sqrt(2.0 * std::numbers::pi) * std::exp(x * x / 2.0);
    if (!std::isfinite(u)) return x;  // deep in the tail, where exp overflows
    return x - u / (1.0 + x * u / 2.0);
}

double binomial_cdf(std::uint64_t k, std::uint64_t n, double p) {
    if (k >= n) return 1.0;
    // P(X <= k) = I_{1-p}(n - k, k + 1)
    return regularized_beta(static_cast<double>(n - k), static_cast<double>(k + 1), 1.0 - p);
}

double binomial_sf(std::uint64_t k, std::uint64_t n, double p) {
    if (k == 0) return 1.0;
    if (k > n) return 0.0;
    // P(X >= k) = I_p(k, n - k + 1)
    return regularized_beta(static_cast<double>(k), static_cast<double>(n - k + 1), p);
}

double spent_alpha(double confidence, std::uint64_t evaluation_index) {
    const double k = static_cast<double>(std::max<std::uint64_t>(evaluation_index, 1));
    const double total = std::clamp(1.0 - confidence, 0.0, 1.0);
    return total * 6.0 / (std::numbers::pi * std::numbers::pi * k * k);
}

double proportion_lower_bound(std::uint64_t failures, std::uint64_t n, double alpha) {
    if (n == 0 || failures == 0) return 0.0;
    failures = std::min(failures, n);
    // The p at which seeing >= failures has probability alpha; P(X >= x) grows with p.
    double lo = 0.0, hi = static_cast<double>(failures) / static_cast<double>(n);
    for (int i = 0; i < 64; ++i) {
        const double mid = (lo + hi) / 2.0;
        (binomial_sf(failures, n, mid) > alpha ? hi : lo) = mid;
    }
    return lo;
}

double proportion_upper_bound(std::uint64_t failures, std::uint64_t n, double alpha) {
    if (n == 0 || failures >= n) return 1.0;
    // The p at which seeing <= failures has probability alpha; P(X <= x) falls with p.
    double lo = static_cast<double>(failures) / static_cast<double>(n), hi = 1.0;
    for (int i = 0; i < 64; ++i) {
        const double mid = (lo + hi) / 2.0;
        (binomial_cdf(failures, n, mid) > alpha ? lo : hi) = mid;
    }
    return hi;
}

double difference_lower_bound(std::uint64_t failures_a, std::uint64_t n_a, std::uint64_t failures_b,
                              std::uint64_t n_b, double alpha) {
    if (n_a == 0 || n_b == 0) return -1.0;
    failures_a = std::min(failures_a, n_a);
    failures_b = std::min(failures_b, n_b);
    const double pa = static_cast<double>(failures_a) / static_cast<double>(n_a);
    const double pb = static_cast<double>(failures_b) / static_cast<double>(n_b);
    // Each side's exact distance to its own limit carries its skew; the root of the sum
    // of squares combines them as a variance would.
    const double below_a = pa - proportion_lower_bound(failures_a, n_a, alpha);
    const double above_b = proportion_upper_bound(failures_b, n_b, alpha) - pb;
    return pa - pb - std::sqrt(below_a * below_a + above_b * above_b);
}

double quantile_lower_bound_us(const histogram& h, double q, double alpha) {
    const std::uint64_t n = h.count();
    if (n == 0) return 0.0;
    // X(l) exceeds the true quantile only if fewer than l observations lie at or below
    // it: P(B <= l - 1), B ~ Binomial(n, q). The largest l with that <= alpha.
    if (binomial_cdf(0, n, q) > alpha) return 0.0;
    std::uint64_t lo = 0, hi = n - 1;  // invariant: cdf(lo) <= alpha
    while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo + 1) / 2;
        if (binomial_cdf(mid, n, q) <= alpha)
            lo = mid;
        else
            hi = mid - 1;
    }
    return static_cast<double>(histogram::bucket_lower_us(bucket_of_rank(h, lo + 1)));
}

double quantile_upper_bound_us(const histogram& h, double q, double alpha) {
    const std::uint64_t n = h.count();
    constexpr double unbounded = std::numeric_limits<double>::infinity();
    if (n == 0) return unbounded;
    // X(u) falls below the true quantile only if at least u observations lie below it:
    // probability <= P(B >= u). The smallest u with that <= alpha.
    if (binomial_sf(n, n, q) > alpha) return unbounded;
    std::uint64_t lo = 1, hi = n;  // invariant: sf(hi) <= alpha
    while (lo < hi) {
        const std::uint64_t mid = lo + (hi - lo) / 2;
        if (binomial_sf(mid, n, q) <= alpha)
            hi = mid;
        else
            lo = mid + 1;
    }
    return histogram::bucket_upper_us(bucket_of_rank(h, hi));
}

rank_test mann_whitney_greater(const histogram& a, const histogram& b) {
    rank_test t;
    const double na = static_cast<double>(a.count()), nb = static_cast<double>(b.count());
    if (a.empty() || b.empty()) return t;

    double u = 0;  // sum over a's buckets of a_i * (b below + b_i / 2)
    double b_below = 0;
    double ties = 0;  // sum of t^3 - t over buckets
    const std::size_t first = std::min(a.first_nonempty(), b.first_nonempty());
    const std::size_t last = std::max(a.last_nonempty(), b.last_nonempty());
    for (std::size_t i = first; i <= last; ++i) {
        const double ai = static_cast<double>(a.bucket_count_at(i));
        const double bi = static_cast<double>(b.bucket_count_at(i));
        if (ai == 0 && bi == 0) continue;
        u += ai * (b_below + bi / 2.0);
        b_below += bi;
        const double ti = ai + bi;
        ties += ti * ti * ti - ti;
    }
    t.u = u;
    const double n = na + nb;
    const double mean = na * nb / 2.0;
    const double variance = na * nb / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if (!(variance > 0)) return t;  // every observation in one bucket: no evidence
    // Continuity correction towards the null: a shift must clear half a rank.
    t.z = (u - mean - 0.5) / std::sqrt(variance);
    t.p_value = normal_tail(t.z);
    return t;
}

}  // namespace veer::gating
