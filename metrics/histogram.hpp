// A log-linear latency histogram over whole microseconds: exact below 64 us, then 64
// linear sub-buckets per power of two up to 2^32 us (~71 minutes). A bucket's midpoint is
// within 1/128 (< 0.8%) of any value in it, so every quantile has <= 1% relative error.
// Plain data, one owner; the per-thread shards in window.hpp keep their own atomic
// buckets with the same layout and merge into this.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace veer::metrics {

class histogram {
public:
    static constexpr unsigned sub_bits = 6;
    static constexpr std::uint64_t sub_count = 1u << sub_bits;  // buckets per octave
    static constexpr std::uint64_t min_us = 1;
    static constexpr std::uint64_t max_us = (std::uint64_t{1} << 32) - 1;  // ~71.6 min
    // 64 exact buckets for 0..63 us, then 26 octaves [2^6, 2^32) of 64 buckets.
    static constexpr std::size_t bucket_count = sub_count + (32 - sub_bits) * sub_count;

    // Which bucket holds `us` (clamped to [min_us, max_us]). Branch-light: the hot path.
    static constexpr std::size_t bucket_of(std::uint64_t us) {
        us = us < min_us ? min_us : (us > max_us ? max_us : us);
        if (us < sub_count) return static_cast<std::size_t>(us);
        const auto octave = static_cast<unsigned>(std::bit_width(us)) - 1;  // >= sub_bits
        const unsigned shift = octave - sub_bits;
        return static_cast<std::size_t>(sub_count * (shift + 1) + ((us >> shift) - sub_count));
    }
    // Smallest whole microsecond in bucket i.
    static constexpr std::uint64_t bucket_lower_us(std::size_t i) {
        if (i < sub_count) return i;
        const std::uint64_t shift = i / sub_count - 1;
        return (sub_count + i % sub_count) << shift;
    }
    // Exclusive upper bound: every value in bucket i is < bucket_upper_us(i).
    static constexpr double bucket_upper_us(std::size_t i) {
        if (i < sub_count) return static_cast<double>(i + 1);
        const std::uint64_t shift = i / sub_count - 1;
        return static_cast<double>(bucket_lower_us(i) + (std::uint64_t{1} << shift));
    }
    // The value reported for bucket i: the midpoint of the whole microseconds it holds.
    static constexpr double bucket_mid_us(std::size_t i) {
        return (static_cast<double>(bucket_lower_us(i)) + bucket_upper_us(i) - 1.0) / 2.0;
    }

    void add(std::uint64_t us, std::uint64_t n = 1);
    void merge(const histogram& other);
    void clear();

    // For shards that keep their own buckets (same layout): add n to bucket i, and the
    // raw latency sum separately. i must be < bucket_count.
    void add_bucket(std::size_t i, std::uint64_t n);
    // Bulk form: counts[j] into bucket first + j; first + n must be <= bucket_count.
    void add_buckets(std::size_t first, const std::uint32_t* counts, std::size_t n);
    void add_sum_us(double us) { sum_us_ += us; }

    std::uint64_t count() const { return count_; }
    bool empty() const { return count_ == 0; }
    // Sum of the recorded values (unclamped), for the mean and Prometheus' _sum.
    double sum_us() const { return sum_us_; }
    double mean_us() const { return count_ ? sum_us_ / static_cast<double>(count_) : 0.0; }

    // The q-quantile (0..1) by nearest rank, as its bucket's midpoint; 0 when empty.
    double quantile(double q) const;
    // Observations certainly <= us: the buckets whose every value is <= us. Monotone in
    // us, for Prometheus' cumulative `le` buckets.
    std::uint64_t count_at_or_below(double us) const;

    std::uint64_t bucket_count_at(std::size_t i) const { return buckets_[i]; }
    // An index range holding every non-empty bucket, [first_nonempty(), last_nonempty()]
    // (after add_buckets its ends may be empty); when empty, first > last.
    std::size_t first_nonempty() const { return lo_; }
    std::size_t last_nonempty() const { return hi_; }

    // Calls f(lower_us, upper_us_exclusive, count, index) for each non-empty bucket in
    // ascending order.
    template <class F>
    void for_each_bucket(F&& f) const {
        for (std::size_t i = lo_; i <= hi_ && i < bucket_count; ++i)
            if (buckets_[i] != 0)
                f(static_cast<double>(bucket_lower_us(i)), bucket_upper_us(i), buckets_[i], i);
    }

private:
    std::array<std::uint64_t, bucket_count> buckets_{};
    std::uint64_t count_ = 0;
    double sum_us_ = 0;
    std::size_t lo_ = bucket_count;  // kept so scans skip empty ends
    std::size_t hi_ = 0;
};

}  // namespace veer::metrics
