// The status page's history (SPEC 12): per second, from the cumulative totals' differences.
#include "metrics/history.hpp"

#include <gtest/gtest.h>

namespace veer::metrics {
namespace {

window_stats totals(std::uint64_t requests, std::uint64_t failures, std::uint64_t slow_us) {
    window_stats w;
    w.requests = requests;
    w.failures = failures;
    w.latency.add(1000, requests - requests / 10);
    w.latency.add(slow_us, requests / 10);
    return w;
}

TEST(history, EachSecondIsTheDifferenceFromTheLast) {
    history h;
    h.sample(100, 0, {totals(100, 0, 2000)});
    h.sample(101, 10, {totals(300, 20, 2000)});
    const auto j = h.to_json({"blue"});
    const auto& blue = j.at("pools").at("blue").as_object();
    ASSERT_EQ(blue.at("requests").as_array().size(), 2u);
    EXPECT_EQ(blue.at("requests").as_array()[1].as_uint64(), 200u);
    EXPECT_DOUBLE_EQ(blue.at("error_rate").as_array()[1].as_double(), 0.1);
    EXPECT_EQ(j.at("t").as_array()[1].as_int64(), 101);
    EXPECT_DOUBLE_EQ(j.at("canary_weight").as_array()[1].as_double(), 10.0);
}

TEST(history, P99IsOfThatSecondsRequestsOnly) {
    histogram before, now;
    before.add(500'000, 1000);  // a slow past ...
    now.merge(before);
    now.add(1000, 100);  // ... and a fast second
    EXPECT_NEAR(quantile_since(now, before, 0.99), 1000, 10);
    EXPECT_EQ(quantile_since(before, before, 0.99), 0.0);
}

TEST(history, KeepsFifteenMinutes) {
    history h;
    for (int i = 0; i < 1000; ++i)
        h.sample(i, 0, {totals(static_cast<std::uint64_t>(i), 0, 1000)});
    EXPECT_EQ(h.size(), history::capacity);
    EXPECT_EQ(h.to_json({"blue"}).at("t").as_array().front().as_int64(), 100);
}

}  // namespace
}  // namespace veer::metrics
