#include "metrics/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace veer::metrics {

static_assert(histogram::bucket_count == 1728);
static_assert(histogram::bucket_of(histogram::max_us) == histogram::bucket_count - 1);
static_assert(histogram::bucket_lower_us(histogram::bucket_of(1000)) <= 1000);
static_assert(histogram::bucket_upper_us(histogram::bucket_count - 1) ==
              static_cast<double>(histogram::max_us) + 1.0);

void histogram::add(std::uint64_t us, std::uint64_t n) {
    if (n == 0) return;
    add_bucket(bucket_of(us), n);
    sum_us_ += static_cast<double>(us) * static_cast<double>(n);
}

void histogram::add_bucket(std::size_t i, std::uint64_t n) {
    if (n == 0) return;
    buckets_[i] += n;
    count_ += n;
    lo_ = std::min(lo_, i);
    hi_ = std::max(hi_, i);
}

void histogram::add_buckets(std::size_t first, const std::uint32_t* counts, std::size_t n) {
    // A plain loop the compiler vectorizes: the window's collect calls this per slice.
    std::uint64_t added = 0;
    std::uint64_t* to = buckets_.data() + first;
    for (std::size_t j = 0; j < n; ++j) {
        to[j] += counts[j];
        added += counts[j];
    }
    if (added == 0) return;
    count_ += added;
    // The range may include zero buckets at its ends: harmless for every scan.
    lo_ = std::min(lo_, first);
    hi_ = std::max(hi_, first + n - 1);
}

void histogram::merge(const histogram& other) {
    for (std::size_t i = other.lo_; i <= other.hi_ && i < bucket_count; ++i)
        buckets_[i] += other.buckets_[i];
    if (other.count_ != 0) {
        lo_ = std::min(lo_, other.lo_);
        hi_ = std::max(hi_, other.hi_);
    }
    count_ += other.count_;
    sum_us_ += other.sum_us_;
}

void histogram::clear() { *this = histogram{}; }

double histogram::quantile(double q) const {
    if (count_ == 0) return 0.0;
    q = std::clamp(q, 0.0, 1.0);
    // Nearest rank: the smallest value with at least ceil(q * n) observations at or below.
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
    std::uint64_t seen = 0;
    for (std::size_t i = lo_; i <= hi_; ++i) {
        seen += buckets_[i];
        if (seen >= rank) return bucket_mid_us(i);
    }
    return bucket_mid_us(hi_);
}

std::uint64_t histogram::count_at_or_below(double us) const {
    std::uint64_t n = 0;
    for (std::size_t i = lo_; i <= hi_ && i < bucket_count; ++i) {
        // Bucket i holds whole microseconds up to bucket_upper_us(i) - 1.
        if (bucket_upper_us(i) - 1.0 > us) break;
        n += buckets_[i];
    }
    return n;
}

}  // namespace veer::metrics
