#include "metrics/window.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

namespace veer::metrics {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t ms = 1'000'000;  // ns
constexpr std::int64_t s = 1'000 * ms;

window_stats collect(const pool_window& w, std::int64_t now_ns) {
    window_stats stats;
    w.collect(stats, now_ns);
    return stats;
}

TEST(result, names_and_status_classes) {
    EXPECT_EQ(result_name(result::s1xx), "1xx");
    EXPECT_EQ(result_name(result::s2xx), "2xx");
    EXPECT_EQ(result_name(result::s3xx), "3xx");
    EXPECT_EQ(result_name(result::s4xx), "4xx");
    EXPECT_EQ(result_name(result::s5xx), "5xx");
    EXPECT_EQ(result_name(result::connect), "connect");
    EXPECT_EQ(result_name(result::timeout), "timeout");
    EXPECT_EQ(result_name(result::reset), "reset");
    EXPECT_EQ(result_of_status(101), result::s1xx);
    EXPECT_EQ(result_of_status(200), result::s2xx);
    EXPECT_EQ(result_of_status(304), result::s3xx);
    EXPECT_EQ(result_of_status(429), result::s4xx);
    EXPECT_EQ(result_of_status(503), result::s5xx);
    EXPECT_EQ(result_of_status(599), result::s5xx);
    EXPECT_EQ(result_of_status(0), result::s5xx);  // not HTTP: an upstream failure
    EXPECT_EQ(result_of_status(999), result::s5xx);

    config::error_kinds kinds;  // default: 5xx, connect, timeout, reset
    EXPECT_FALSE(counts_as_failure(result::s2xx, kinds));
    EXPECT_FALSE(counts_as_failure(result::s4xx, kinds));
    EXPECT_TRUE(counts_as_failure(result::s5xx, kinds));
    EXPECT_TRUE(counts_as_failure(result::timeout, kinds));
    kinds.status_4xx = true;
    kinds.reset = false;
    EXPECT_TRUE(counts_as_failure(result::s4xx, kinds));
    EXPECT_FALSE(counts_as_failure(result::reset, kinds));
}

TEST(pool_window, slice_sizing) {
    pool_window thirty(30s, 0);
    EXPECT_EQ(thirty.slices(), 32u);
    EXPECT_EQ(thirty.slice_ns(), 937'500'000);

    pool_window tiny(100ms, 0);  // slices never shorter than 10 ms
    EXPECT_EQ(tiny.slice_ns(), 10 * ms);
    EXPECT_EQ(tiny.slices(), 10u);

    pool_window minute(60s, 0);  // and never longer than 1 s while slices stay <= 64
    EXPECT_EQ(minute.slice_ns(), 1 * s);
    EXPECT_EQ(minute.slices(), 60u);

    pool_window long_window(5min, 0);  // memory cap: 64 longer slices
    EXPECT_EQ(long_window.slices(), pool_window::max_slices);
    EXPECT_GE(long_window.slice_ns() * 64, 300 * s);
}

TEST(pool_window, records_counts_failures_and_latency_by_result) {
    pool_window w(30s, 0);
    const std::int64_t now = 5 * s;
    for (int i = 0; i < 90; ++i)
        w.record(result::s2xx, false, 1000 + i, now);
    for (int i = 0; i < 4; ++i)
        w.record(result::s4xx, false, 500, now);
    for (int i = 0; i < 3; ++i)
        w.record(result::s5xx, true, 20'000, now + 1 * ms);
    w.record(result::connect, true, 2'000'000, now + 2 * ms);
    w.record(result::timeout, true, 30'000'000, now + 3 * ms);
    w.record(result::reset, true, 700, now + 4 * ms);

    const window_stats st = collect(w, now + 10 * ms);
    EXPECT_EQ(st.requests, 100u);
    EXPECT_EQ(st.failures, 6u);
    EXPECT_DOUBLE_EQ(st.error_rate(), 0.06);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::s2xx)], 90u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::s4xx)], 4u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::s5xx)], 3u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::connect)], 1u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::timeout)], 1u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::reset)], 1u);
    EXPECT_EQ(st.by_result[static_cast<std::size_t>(result::s1xx)], 0u);
    EXPECT_EQ(st.latency.count(), 100u);
    double sum = 0;
    for (int i = 0; i < 90; ++i)
        sum += 1000 + i;
    sum += 4 * 500 + 3 * 20'000 + 2'000'000 + 30'000'000 + 700;
    EXPECT_DOUBLE_EQ(st.latency.sum_us(), sum);
    EXPECT_NEAR(st.latency.quantile(0.5), 1045, 1045 * 0.01);
    EXPECT_NEAR(st.latency.quantile(1.0), 30'000'000, 30'000'000 * 0.01);
}

TEST(pool_window, slices_expire_after_the_window) {
    pool_window w(30s, 0);
    const std::int64_t len = w.slice_ns();
    const std::int64_t span = len * static_cast<std::int64_t>(w.slices());  // 30 s
    w.record(result::s2xx, false, 100, 0);
    w.record(result::s5xx, true, 100, len - 1);  // same slice, its last nanosecond

    EXPECT_EQ(collect(w, 0).requests, 2u);
    EXPECT_EQ(collect(w, 20 * s).requests, 2u);
    EXPECT_EQ(collect(w, span - 1).requests, 2u);  // the slice is still in the window
    EXPECT_EQ(collect(w, span).requests, 0u);  // ... and leaves it whole
    EXPECT_EQ(collect(w, 10 * span).failures, 0u);

    // A later slice expires on its own schedule.
    w.record(result::s2xx, false, 100, 3 * len + 5);
    EXPECT_EQ(collect(w, span + 3 * len - 1).requests, 1u);
    EXPECT_EQ(collect(w, span + 3 * len).requests, 0u);
}

TEST(pool_window, a_reused_slice_is_cleared_first) {
    pool_window w(1s, 0);  // 32 slices of 31.25 ms
    for (int i = 0; i < 1000; ++i)
        w.record(result::s5xx, true, 900'000, 0);
    // Same ring slot, many laps later.
    const std::int64_t later = 100 * w.slice_ns() * static_cast<std::int64_t>(w.slices());
    w.record(result::s2xx, false, 50, later);
    const window_stats st = collect(w, later);
    EXPECT_EQ(st.requests, 1u);
    EXPECT_EQ(st.failures, 0u);
    EXPECT_EQ(st.latency.count(), 1u);
    EXPECT_EQ(st.latency.quantile(0.99), 50.0);
    EXPECT_DOUBLE_EQ(st.latency.sum_us(), 50.0);
}

TEST(pool_window, steady_traffic_gives_the_full_window_and_its_rps) {
    pool_window w(30s, 0);
    // 1000 rps for 90 s.
    for (std::int64_t t = 0; t < 90 * s; t += 1 * ms)
        w.record(result::s2xx, false, 2000, t);
    const std::int64_t now = 90 * s - 1;
    const window_stats st = collect(w, now);
    EXPECT_NEAR(st.rps(), 1000.0, 2.0);
    EXPECT_GE(st.seconds, 30.0 - 0.9375);  // within one slice of the window
    EXPECT_LE(st.seconds, 30.0);
    EXPECT_GE(st.requests, 29'000u);
    EXPECT_LE(st.requests, 30'000u);
}

TEST(pool_window, partial_window_rps_is_over_the_time_it_existed) {
    const std::int64_t start = 100 * s + 123 * ms;
    pool_window w(30s, start);
    // 50 rps for two seconds.
    for (int i = 0; i < 100; ++i)
        w.record(result::s2xx, false, 1000, start + i * 20 * ms);
    const window_stats st = collect(w, start + 2 * s);
    EXPECT_EQ(st.requests, 100u);
    EXPECT_DOUBLE_EQ(st.seconds, 2.0);
    EXPECT_DOUBLE_EQ(st.rps(), 50.0);

    const window_stats at_start = collect(w, start);
    EXPECT_EQ(at_start.seconds, 0.0);
}

TEST(pool_window, young_window_rps_is_never_over_a_fraction_of_a_second) {
    pool_window w(30s, 0);
    w.record(result::s2xx, false, 1000, 5 * ms);
    const window_stats st = collect(w, 5 * ms);
    EXPECT_EQ(st.requests, 1u);
    EXPECT_DOUBLE_EQ(st.rps(), 1.0) << "not 1 / 0.005 s = 200";
}

TEST(pool_window, shards_merge_into_one_window) {
    pool_window a(30s, 0), b(30s, 0);
    for (int i = 0; i < 300; ++i)
        a.record(result::s2xx, false, 1000, 10 * s + i * ms);
    for (int i = 0; i < 100; ++i)
        b.record(result::s5xx, true, 9000, 12 * s + i * ms);
    window_stats st;
    a.collect(st, 20 * s);
    b.collect(st, 20 * s);
    EXPECT_EQ(st.requests, 400u);
    EXPECT_EQ(st.failures, 100u);
    EXPECT_DOUBLE_EQ(st.error_rate(), 0.25);
    EXPECT_DOUBLE_EQ(st.seconds, 20.0);  // the shared window, not a sum over shards
    EXPECT_DOUBLE_EQ(st.rps(), 20.0);
    EXPECT_NEAR(st.latency.quantile(0.9), 9000, 90);
}

TEST(pool_window, totals_are_never_reset) {
    pool_window w(1s, 0);
    for (int i = 0; i < 10; ++i)
        w.record(result::s2xx, false, 100, i * s);
    w.record(result::timeout, true, 5'000'000, 11 * s);
    EXPECT_EQ(collect(w, 11 * s).requests, 1u);  // the window holds the last one only

    window_stats total;
    w.collect_total(total);
    EXPECT_EQ(total.requests, 11u);
    EXPECT_EQ(total.failures, 1u);
    EXPECT_EQ(total.by_result[static_cast<std::size_t>(result::s2xx)], 10u);
    EXPECT_EQ(total.by_result[static_cast<std::size_t>(result::timeout)], 1u);
    EXPECT_EQ(total.latency.count(), 11u);
    EXPECT_DOUBLE_EQ(total.latency.sum_us(), 5'001'000.0);
    EXPECT_EQ(total.latency.count_at_or_below(100), 10u);
    EXPECT_EQ(total.seconds, 0.0);
}

TEST(pool_window, a_stale_clock_lands_in_the_current_slice) {
    pool_window w(30s, 0);
    w.record(result::s2xx, false, 100, 10 * s);
    w.record(result::s2xx, false, 100, 9 * s);  // a cached `now` from before
    EXPECT_EQ(collect(w, 10 * s).requests, 2u);
}

// One writer, one concurrent reader: the reader always sees plausible figures (never more
// than was recorded, failures never above requests by more than a request in flight).
TEST(pool_window, concurrent_reader_sees_consistent_figures) {
    pool_window w(100ms, 0);  // 10 ms slices: many resets during the run
    constexpr std::int64_t total = 2'000'000;
    std::atomic<std::int64_t> clock{0};
    std::atomic<bool> reader_ready{false}, done{false};
    std::thread writer([&] {
        while (!reader_ready.load())
            std::this_thread::yield();
        for (std::int64_t i = 0; i < total; ++i) {
            const std::int64_t now = i * 1000;  // 1000 requests per ms of fake time
            w.record(i % 10 == 0 ? result::s5xx : result::s2xx, i % 10 == 0, 1000 + i % 5000, now);
            clock.store(now, std::memory_order_relaxed);
        }
        done.store(true);
    });
    std::uint64_t reads = 0;
    do {
        window_stats st;
        w.collect(st, clock.load(std::memory_order_relaxed));
        reader_ready.store(true);
        ASSERT_LE(st.requests, 101'000u);  // 100 ms of 1000/ms, plus slack for one slice
        ASSERT_LE(st.failures, st.requests / 10 + 12);  // one per slice of phase, plus a race
        ASSERT_LE(st.latency.count(), st.requests + 10);
        ++reads;
    } while (!done.load());
    writer.join();
    window_stats total_stats;
    w.collect_total(total_stats);
    EXPECT_EQ(total_stats.requests, static_cast<std::uint64_t>(total));
    EXPECT_EQ(total_stats.failures, static_cast<std::uint64_t>(total / 10));
    const window_stats last = collect(w, (total - 1) * 1000);
    EXPECT_EQ(last.requests, 100'000u);  // exactly ten full slices at the end
    EXPECT_EQ(last.failures, 10'000u);
    EXPECT_GT(reads, 1u);
}

}  // namespace
}  // namespace veer::metrics
