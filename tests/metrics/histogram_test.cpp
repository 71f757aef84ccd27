#include "metrics/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace veer::metrics {
namespace {

// Nearest-rank percentile of sorted data: the smallest value with >= ceil(q n) at or below.
std::uint64_t exact_quantile(const std::vector<std::uint64_t>& sorted, double q) {
    const auto n = sorted.size();
    const auto rank =
        std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(n))));
    return sorted[std::min(rank, n) - 1];
}

TEST(histogram, bucket_layout_is_contiguous_and_round_trips) {
    EXPECT_LE(histogram::bucket_count, 2500u);
    for (std::size_t i = 1; i < histogram::bucket_count; ++i) {
        const std::uint64_t lo = histogram::bucket_lower_us(i);
        const double hi = histogram::bucket_upper_us(i);
        ASSERT_EQ(histogram::bucket_of(lo), i) << i;
        ASSERT_EQ(histogram::bucket_of(static_cast<std::uint64_t>(hi) - 1), i) << i;
        if (i + 1 < histogram::bucket_count) {
            ASSERT_EQ(hi, static_cast<double>(histogram::bucket_lower_us(i + 1))) << i;
        }
        // The reported midpoint is within 1/128 of every value in the bucket.
        const double mid = histogram::bucket_mid_us(i);
        ASSERT_LE(mid - static_cast<double>(lo), static_cast<double>(lo) / 128.0) << i;
        ASSERT_LE((hi - 1.0) - mid, static_cast<double>(lo) / 128.0) << i;
    }
    EXPECT_EQ(histogram::bucket_of(127), 127u);  // exact up to 127 us
    EXPECT_EQ(histogram::bucket_of(0), histogram::bucket_of(1));
    EXPECT_EQ(histogram::bucket_of(histogram::max_us + 1), histogram::bucket_count - 1);
    EXPECT_GT(histogram::max_us, 3'600'000'000ull);  // an hour fits
}

TEST(histogram, empty) {
    histogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_TRUE(h.empty());
    EXPECT_EQ(h.quantile(0.5), 0.0);
    EXPECT_EQ(h.quantile(0.99), 0.0);
    EXPECT_EQ(h.mean_us(), 0.0);
    EXPECT_EQ(h.sum_us(), 0.0);
    EXPECT_EQ(h.count_at_or_below(1e12), 0u);
    int calls = 0;
    h.for_each_bucket([&](double, double, std::uint64_t, std::size_t) { ++calls; });
    EXPECT_EQ(calls, 0);
    histogram other;
    h.merge(other);
    EXPECT_TRUE(h.empty());
}

TEST(histogram, exact_small_values_sum_and_mean) {
    histogram h;
    for (std::uint64_t v = 1; v <= 100; ++v)
        h.add(v);
    EXPECT_EQ(h.count(), 100u);
    EXPECT_DOUBLE_EQ(h.sum_us(), 5050.0);
    EXPECT_DOUBLE_EQ(h.mean_us(), 50.5);
    EXPECT_EQ(h.quantile(0.0), 1.0);
    EXPECT_EQ(h.quantile(0.5), 50.0);
    EXPECT_EQ(h.quantile(0.99), 99.0);
    EXPECT_EQ(h.quantile(1.0), 100.0);
    h.add(7, 3);
    EXPECT_EQ(h.count(), 103u);
    EXPECT_EQ(h.bucket_count_at(histogram::bucket_of(7)), 4u);
}

TEST(histogram, clamps_out_of_range_values) {
    histogram h;
    h.add(0);
    EXPECT_EQ(h.quantile(0.5), 1.0);  // 0 us counts as 1 us
    h.clear();
    h.add(std::uint64_t{1} << 40);  // ~12.7 days
    EXPECT_EQ(h.first_nonempty(), histogram::bucket_count - 1);
    const double top = h.quantile(1.0);
    EXPECT_GT(top, 4.2e9);
    EXPECT_LE(top, static_cast<double>(histogram::max_us));
    EXPECT_DOUBLE_EQ(h.sum_us(), std::ldexp(1.0, 40));  // the sum keeps the real value
}

struct distribution {
    std::string name;
    std::function<std::uint64_t(std::mt19937_64&)> draw;
};

TEST(histogram, quantiles_within_one_percent_of_exact) {
    std::vector<distribution> distributions{
        {"uniform",
         [](std::mt19937_64& g) {
             return std::uniform_int_distribution<std::uint64_t>(1, 2'000'000)(g);
         }},
        {"lognormal",
         [](std::mt19937_64& g) {
             return static_cast<std::uint64_t>(
                 std::lognormal_distribution<double>(std::log(20'000.0), 0.8)(g));
         }},
        {"exponential",
         [](std::mt19937_64& g) {
             return static_cast<std::uint64_t>(
                 std::exponential_distribution<double>(1.0 / 5'000.0)(g));
         }},
        {"bimodal",
         [](std::mt19937_64& g) {
             const bool slow = std::bernoulli_distribution(0.05)(g);
             return static_cast<std::uint64_t>(
                 std::normal_distribution<double>(slow ? 900'000 : 3'000, slow ? 50'000 : 300)(g));
         }},
        {"pareto",
         [](std::mt19937_64& g) {
             const double u = std::uniform_real_distribution<double>(1e-9, 1.0)(g);
             return static_cast<std::uint64_t>(std::min(500.0 * std::pow(u, -1.0 / 1.2), 3.0e9));
         }},
        {"sub_millisecond",
         [](std::mt19937_64& g) {
             return std::uniform_int_distribution<std::uint64_t>(1, 900)(g);
         }},
    };
    std::mt19937_64 gen(42);
    for (const auto& d : distributions) {
        for (std::size_t n : {10u, 1000u, 100'000u}) {
            histogram h;
            std::vector<std::uint64_t> values(n);
            for (auto& v : values) {
                v = std::max<std::uint64_t>(d.draw(gen), 1);
                h.add(v);
            }
            std::sort(values.begin(), values.end());
            for (double q : {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
                const auto exact = static_cast<double>(exact_quantile(values, q));
                EXPECT_NEAR(h.quantile(q), exact, exact * 0.01)
                    << d.name << " n=" << n << " q=" << q;
            }
            double sum = 0;
            for (auto v : values)
                sum += static_cast<double>(v);
            EXPECT_NEAR(h.mean_us(), sum / static_cast<double>(n), 1e-9 * sum) << d.name;
        }
    }
}

TEST(histogram, merge_equals_adding_everything) {
    std::mt19937_64 gen(7);
    std::lognormal_distribution<double> a_dist(std::log(1'000.0), 1.0),
        b_dist(std::log(80'000.0), 0.3);
    histogram a, b, all;
    for (int i = 0; i < 5000; ++i) {
        const auto x = static_cast<std::uint64_t>(a_dist(gen));
        const auto y = static_cast<std::uint64_t>(b_dist(gen));
        a.add(x);
        b.add(y);
        all.add(x);
        all.add(y);
    }
    histogram merged = a;
    merged.merge(b);
    EXPECT_EQ(merged.count(), all.count());
    EXPECT_DOUBLE_EQ(merged.sum_us(), all.sum_us());
    EXPECT_EQ(merged.first_nonempty(), all.first_nonempty());
    EXPECT_EQ(merged.last_nonempty(), all.last_nonempty());
    for (std::size_t i = 0; i < histogram::bucket_count; ++i)
        ASSERT_EQ(merged.bucket_count_at(i), all.bucket_count_at(i)) << i;
    for (double q : {0.5, 0.95, 0.99})
        EXPECT_EQ(merged.quantile(q), all.quantile(q));

    histogram empty;
    merged.merge(empty);  // merging nothing changes nothing
    EXPECT_EQ(merged.count(), all.count());
    empty.merge(a);
    EXPECT_EQ(empty.quantile(0.5), a.quantile(0.5));
}

TEST(histogram, iterates_non_empty_buckets_in_order) {
    histogram h;
    h.add(5, 2);
    h.add(1000);
    h.add(1003);  // same bucket as 1000 ([1000, 1008))
    h.add(250'000);
    std::vector<std::uint64_t> counts;
    double last_upper = 0;
    h.for_each_bucket([&](double lower, double upper, std::uint64_t n, std::size_t i) {
        EXPECT_GE(lower, last_upper);
        EXPECT_LT(lower, upper);
        EXPECT_EQ(static_cast<std::uint64_t>(lower), histogram::bucket_lower_us(i));
        last_upper = upper;
        counts.push_back(n);
    });
    EXPECT_EQ(counts, (std::vector<std::uint64_t>{2, 2, 1}));
}

TEST(histogram, count_at_or_below_counts_what_is_certainly_below) {
    histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v)
        h.add(v);
    EXPECT_EQ(h.count_at_or_below(0.5), 0u);
    EXPECT_EQ(h.count_at_or_below(100), 100u);  // exact region
    EXPECT_EQ(h.count_at_or_below(999), 999u);  // [992, 999] is whole
    EXPECT_EQ(h.count_at_or_below(1000), 999u);  // [1000, 1007] straddles 1000
    EXPECT_EQ(h.count_at_or_below(1e12), 1000u);
    std::uint64_t previous = 0;
    for (double le = 1; le < 2000; le *= 1.07) {  // monotone, never above the exact count
        const auto n = h.count_at_or_below(le);
        EXPECT_GE(n, previous);
        EXPECT_LE(static_cast<double>(n), std::min(le, 1000.0));
        EXPECT_GE(static_cast<double>(n), std::min(le, 1000.0) * (1.0 - 1.0 / 64.0) - 1.0);
        previous = n;
    }
}

}  // namespace
}  // namespace veer::metrics
