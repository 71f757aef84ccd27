#include "metrics/window.hpp"

#include <algorithm>

namespace veer::metrics {

namespace {

// Single writer: a plain load and store, never a locked read-modify-write.
template <class T>
inline void bump(std::atomic<T>& c, T n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

inline void widen(std::atomic<std::uint16_t>& lo, std::atomic<std::uint16_t>& hi, std::size_t b) {
    const auto b16 = static_cast<std::uint16_t>(b);
    if (b16 < lo.load(std::memory_order_relaxed)) lo.store(b16, std::memory_order_relaxed);
    if (b16 > hi.load(std::memory_order_relaxed)) hi.store(b16, std::memory_order_relaxed);
}

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    const std::int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace

std::string_view result_name(result r) {
    switch (r) {
        case result::s1xx: return "1xx";
        case result::s2xx: return "2xx";
        case result::s3xx: return "3xx";
        case result::s4xx: return "4xx";
        case result::s5xx: return "5xx";
        case result::connect: return "connect";
        case result::timeout: return "timeout";
        case result::reset: return "reset";
    }
    return "5xx";
}

result result_of_status(int status) {
    if (status >= 100 && status < 200) return result::s1xx;
    if (status >= 200 && status < 300) return result::s2xx;
    if (status >= 300 && status < 400) return result::s3xx;
    if (status >= 400 && status < 500) return result::s4xx;
    return result::s5xx;
}

bool counts_as_failure(result r, const config::error_kinds& errors) {
    switch (r) {
        case result::s1xx:
        case result::s2xx:
        case result::s3xx: return false;
        case result::s4xx: return errors.status_4xx;
        case result::s5xx: return errors.status_5xx;
        case result::connect: return errors.connect;
        case result::timeout: return errors.timeout;
        case result::reset: return errors.reset;
    }
    return true;
}

pool_window::pool_window(std::chrono::nanoseconds window, std::int64_t now_ns)
    : created_ns_(now_ns) {
    using std::chrono::nanoseconds;
    const nanoseconds w = std::max(window, nanoseconds{1});
    nanoseconds len =
        std::clamp(w / static_cast<std::int64_t>(target_slices), min_slice, max_slice);
    auto count =
        static_cast<std::size_t>((w + len - nanoseconds{1}) / len);  // ring covers the window
    if (count > max_slices) {
        count = max_slices;
        len = (w + nanoseconds{static_cast<std::int64_t>(max_slices) - 1}) /
              static_cast<std::int64_t>(max_slices);
    }
    // At least two slices, so a window never shrinks to one freshly cleared slice.
    slice_count_ = std::max<std::size_t>(count, 2);
    slice_ns_ = len.count();
    slices_ = std::make_unique<slice[]>(slice_count_);
}

void pool_window::enter_slice(std::int64_t now_ns) {
    const std::int64_t epoch = floor_div(now_ns, slice_ns_);
    const auto n = static_cast<std::int64_t>(slice_count_);
    slice& s = slices_[static_cast<std::size_t>(((epoch % n) + n) % n)];
    if (s.epoch.load(std::memory_order_relaxed) != epoch) {
        // Seqlock-style reset: readers that saw the old epoch see it change and drop
        // whatever they read in between.
        s.epoch.store(never, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        s.failures.store(0, std::memory_order_relaxed);
        s.sum_us.store(0, std::memory_order_relaxed);
        for (auto& c : s.by_result)
            c.store(0, std::memory_order_relaxed);
        // Buckets outside [lo, hi] were never touched, so only that range needs clearing.
        const std::size_t hi = std::min<std::size_t>(s.hi.load(std::memory_order_relaxed),
                                                     histogram::bucket_count - 1);
        for (std::size_t b = s.lo.load(std::memory_order_relaxed); b <= hi; ++b)
            s.buckets[b].store(0, std::memory_order_relaxed);
        s.lo.store(histogram::bucket_count, std::memory_order_relaxed);
        s.hi.store(0, std::memory_order_relaxed);
        s.epoch.store(epoch, std::memory_order_release);
    }
    current_ = &s;
    current_end_ns_ = (epoch + 1) * slice_ns_;
}

void pool_window::record(result r, bool failed, std::uint64_t latency_us, std::int64_t now_ns) {
    // An earlier `now` than the current slice's start (a stale cached clock) lands in
    // the current slice: harmless, and it never clobbers newer data.
    if (now_ns >= current_end_ns_) [[unlikely]]
        enter_slice(now_ns);
    slice& s = *current_;
    const auto ri = static_cast<std::size_t>(r);
    const std::size_t b = histogram::bucket_of(latency_us);

    bump(s.by_result[ri]);
    bump(s.buckets[b]);
    bump(s.sum_us, latency_us);
    widen(s.lo, s.hi, b);

    bump(total_by_result_[ri]);
    bump(total_buckets_[b]);
    bump(total_sum_us_, latency_us);
    widen(total_lo_, total_hi_, b);

    if (failed) {
        bump(s.failures);
        bump(total_failures_);
    }
}

void pool_window::collect(window_stats& into, std::int64_t now_ns, std::int64_t since_ns) const {
    const std::int64_t newest = floor_div(now_ns, slice_ns_);
    std::int64_t oldest = newest - static_cast<std::int64_t>(slice_count_) + 1;
    // A slice that began before `since_ns` may hold requests from before it: left out.
    if (since_ns != std::numeric_limits<std::int64_t>::min())
        oldest = std::max(oldest, floor_div(since_ns, slice_ns_) + (since_ns % slice_ns_ != 0));

    std::array<std::uint32_t, histogram::bucket_count> counts;  // only [lo, hi] is used
    for (std::size_t i = 0; i < slice_count_; ++i) {
        const slice& s = slices_[i];
        const std::int64_t epoch = s.epoch.load(std::memory_order_acquire);
        if (epoch < oldest || epoch > newest) continue;  // also skips `never`

        const std::size_t lo = s.lo.load(std::memory_order_relaxed);
        const std::size_t hi = std::min<std::size_t>(s.hi.load(std::memory_order_relaxed),
                                                     histogram::bucket_count - 1);
        for (std::size_t b = lo; b <= hi; ++b)
            counts[b] = s.buckets[b].load(std::memory_order_relaxed);
        // Failures before the requests they are a share of: the writer goes on meanwhile,
        // and a concurrent read should understate the error rate, never overstate it.
        const std::uint64_t failures = s.failures.load(std::memory_order_acquire);
        std::array<std::uint64_t, result_count> by_result;
        for (std::size_t r = 0; r < result_count; ++r)
            by_result[r] = s.by_result[r].load(std::memory_order_relaxed);
        const std::uint64_t sum_us = s.sum_us.load(std::memory_order_relaxed);

        std::atomic_thread_fence(std::memory_order_acquire);
        if (s.epoch.load(std::memory_order_relaxed) != epoch) continue;  // reset meanwhile

        if (lo <= hi) into.latency.add_buckets(lo, counts.data() + lo, hi - lo + 1);
        into.latency.add_sum_us(static_cast<double>(sum_us));
        for (std::size_t r = 0; r < result_count; ++r) {
            into.by_result[r] += by_result[r];
            into.requests += by_result[r];
        }
        into.failures += failures;
    }

    const std::int64_t start = std::max({oldest * slice_ns_, created_ns_, since_ns});
    const double seconds = now_ns > start ? static_cast<double>(now_ns - start) / 1e9 : 0.0;
    into.seconds = std::max(into.seconds, seconds);
}

void pool_window::collect_total(window_stats& into) const {
    const std::size_t lo = total_lo_.load(std::memory_order_relaxed);
    const std::size_t hi = std::min<std::size_t>(total_hi_.load(std::memory_order_relaxed),
                                                 histogram::bucket_count - 1);
    for (std::size_t b = lo; b <= hi; ++b)
        into.latency.add_bucket(b, total_buckets_[b].load(std::memory_order_relaxed));
    into.latency.add_sum_us(static_cast<double>(total_sum_us_.load(std::memory_order_relaxed)));
    for (std::size_t r = 0; r < result_count; ++r) {
        const std::uint64_t n = total_by_result_[r].load(std::memory_order_relaxed);
        into.by_result[r] += n;
        into.requests += n;
    }
    into.failures += total_failures_.load(std::memory_order_relaxed);
}

}  // namespace veer::metrics
