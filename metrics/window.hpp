// Per-thread measurement shards for the data path (SPEC 5: "per pool, a sliding window of
// request counts, failures and a latency histogram").
//
// Threads: each I/O thread owns one pool_window per pool and is its only writer
// (record). The control thread reads it concurrently (collect, collect_total) and merges
// the shards of all threads into one window_stats. Counters are relaxed atomics written
// with load+store (one writer, so no read-modify-write and no lock on the hot path).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string_view>

#include "config/config.hpp"
#include "metrics/histogram.hpp"

namespace veer::metrics {

// A request's outcome: its status class, or the failure that left it without one.
enum class result : std::uint8_t { s1xx, s2xx, s3xx, s4xx, s5xx, connect, timeout, reset };
inline constexpr std::size_t result_count = 8;

// "1xx".."5xx", "connect", "timeout", "reset".
std::string_view result_name(result r);
// 100..199 -> s1xx, ..., 500..599 -> s5xx; a status outside 100..599 is an upstream
// protocol failure and counts as s5xx (below 100 too).
result result_of_status(int status);
// Whether slo.errors counts this outcome as a failed request.
bool counts_as_failure(result r, const config::error_kinds& errors);

// A window's figures, merged over threads. Plain data, owned by the reader.
struct window_stats {
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::array<std::uint64_t, result_count> by_result{};
    histogram latency;
    double seconds = 0;  // the span the window covers, for rps

    double error_rate() const {
        return requests ? static_cast<double>(failures) / static_cast<double>(requests) : 0.0;
    }
    // Over the window's real span, but never a fraction of a second: one request 5 ms
    // after start is 1 rps, not 200 (SPEC 12).
    double rps() const { return static_cast<double>(requests) / std::max(seconds, 1.0); }
};

// One thread's sliding window for one pool: a ring of time slices, each tagged with its
// epoch (now / slice length). The writer clears and retags a slice on the first record of
// a new epoch; the reader adds the slices whose epoch lies in the window. Also keeps
// cumulative (never reset) figures for Prometheus, updated by the same record() call.
class pool_window {
public:
    static constexpr std::chrono::nanoseconds min_slice{std::chrono::milliseconds{10}};
    static constexpr std::chrono::nanoseconds max_slice{std::chrono::seconds{1}};
    static constexpr std::size_t target_slices = 32;
    // Memory cap: a slice is ~7 KB; past 64 slices (windows over 64 s) slices grow longer
    // than max_slice instead of more numerous.
    static constexpr std::size_t max_slices = 64;

    // `window` is slo.window; `now_ns` (monotonic clock) is when measuring starts, so a
    // young window's rps is over the time it has existed.
    pool_window(std::chrono::nanoseconds window, std::int64_t now_ns);
    pool_window(const pool_window&) = delete;
    pool_window& operator=(const pool_window&) = delete;

    // Owner thread only. The hot path: no allocation, no lock, no atomic RMW.
    void record(result r, bool failed, std::uint64_t latency_us, std::int64_t now_ns);

    // Any thread. Adds the slices of the window ending at now_ns into `into`; sets
    // into.seconds to the longest span merged so far (shards share the same window).
    // A slice reset concurrently is skipped; live counters may be off by a request.
    // With `since_ns`, only slices that began at or after it count (a new rollout's canary
    // is judged on its own requests, not on the same pool's earlier ones).
    void collect(window_stats& into, std::int64_t now_ns,
                 std::int64_t since_ns = std::numeric_limits<std::int64_t>::min()) const;
    // Any thread. Adds every request ever recorded (`seconds` is left alone).
    void collect_total(window_stats& into) const;

    std::int64_t slice_ns() const { return slice_ns_; }
    std::size_t slices() const { return slice_count_; }

private:
    using counter32 = std::atomic<std::uint32_t>;
    using counter64 = std::atomic<std::uint64_t>;
    static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::min();

    struct alignas(64) slice {
        std::atomic<std::int64_t> epoch{never};
        counter64 failures{0};
        counter64 sum_us{0};
        std::array<counter64, result_count> by_result{};
        // Range of buckets touched, so collect skips the empty ones.
        std::atomic<std::uint16_t> lo{histogram::bucket_count};
        std::atomic<std::uint16_t> hi{0};
        std::array<counter32, histogram::bucket_count> buckets{};
    };

    void enter_slice(std::int64_t now_ns);

    std::int64_t slice_ns_;
    std::size_t slice_count_;
    std::int64_t created_ns_;
    std::unique_ptr<slice[]> slices_;

    // Writer-only: the slice being written and its time span.
    slice* current_ = nullptr;
    std::int64_t current_end_ns_ = std::numeric_limits<std::int64_t>::min();

    // Cumulative figures, never reset.
    std::array<counter64, result_count> total_by_result_{};
    counter64 total_failures_{0};
    counter64 total_sum_us_{0};
    std::atomic<std::uint16_t> total_lo_{histogram::bucket_count};
    std::atomic<std::uint16_t> total_hi_{0};
    std::array<counter64, histogram::bucket_count> total_buckets_{};
};

}  // namespace veer::metrics
