// All of veer's request measurements: one shard per data-path thread, merged on demand by
// the control thread (judge, status, /metrics).
//
// Threads: shard(i).record() only from data-path thread i; everything else from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "metrics/window.hpp"

namespace veer::metrics {

inline constexpr std::size_t max_pool_slots = 16;
inline constexpr std::size_t max_endpoints = 1024;
inline constexpr std::size_t grpc_code_count = 17;  // OK .. UNAUTHENTICATED

using result_counts = std::array<std::uint64_t, result_count>;
using grpc_counts = std::array<std::uint64_t, grpc_code_count>;

class thread_shard {
public:
    thread_shard(std::chrono::nanoseconds window, std::int64_t now_ns);
    ~thread_shard();
    thread_shard(const thread_shard&) = delete;
    thread_shard& operator=(const thread_shard&) = delete;

    // Owner thread only: a few plain stores, no lock, no allocation after a pool's first request.
    void record(std::uint32_t pool_slot, std::uint32_t endpoint_id, result r, bool failed,
                std::uint64_t latency_us, std::int64_t now_ns) {
        pool_window* w = pools_[pool_slot].load(std::memory_order_acquire);
        if (!w) w = create(pool_slot, now_ns);
        w->record(r, failed, latency_us, now_ns);
        auto& c = endpoints_[endpoint_id * result_count + static_cast<std::size_t>(r)];
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    // Owner thread only: one gRPC call's status code (SPEC 10: calls by gRPC code). The
    // counters are made on the first call, so a thread that sees none holds none.
    void record_grpc(std::uint32_t endpoint_id, int code) {
        if (code < 0 || code >= static_cast<int>(grpc_code_count)) code = 2;  // UNKNOWN
        auto* g = grpc_.load(std::memory_order_acquire);
        if (!g) g = create_grpc();
        auto& c = g[endpoint_id * grpc_code_count + static_cast<std::size_t>(code)];
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    std::uint64_t grpc_count(std::uint32_t id, int code) const {
        const auto* g = grpc_.load(std::memory_order_acquire);
        return g ? g[id * grpc_code_count + static_cast<std::size_t>(code)].load(
                       std::memory_order_relaxed)
                 : 0;
    }

    const pool_window* pool(std::uint32_t slot) const {
        return pools_[slot].load(std::memory_order_acquire);
    }
    std::uint64_t endpoint_count(std::uint32_t id, result r) const {
        return endpoints_[id * result_count + static_cast<std::size_t>(r)].load(
            std::memory_order_relaxed);
    }

private:
    pool_window* create(std::uint32_t slot, std::int64_t now_ns);
    std::atomic<std::uint64_t>* create_grpc();

    std::chrono::nanoseconds window_;
    std::array<std::atomic<pool_window*>, max_pool_slots> pools_{};
    std::unique_ptr<std::atomic<std::uint64_t>[]> endpoints_;
    std::atomic<std::atomic<std::uint64_t>*> grpc_{nullptr};  // owned; by endpoint and code
};

class registry {
public:
    registry(std::size_t threads, std::chrono::nanoseconds window, std::int64_t now_ns);
    thread_shard& shard(std::size_t thread) { return *shards_[thread]; }
    std::size_t threads() const { return shards_.size(); }

    // The window ending at now, merged over threads.
    window_stats window(std::uint32_t pool_slot, std::int64_t now_ns,
                        std::int64_t since_ns = std::numeric_limits<std::int64_t>::min()) const;
    // Everything since start, merged over threads (for Prometheus).
    window_stats total(std::uint32_t pool_slot) const;
    result_counts endpoint_totals(std::uint32_t endpoint_id) const;
    grpc_counts grpc_totals(std::uint32_t endpoint_id) const;

private:
    std::vector<std::unique_ptr<thread_shard>> shards_;
};

// The monotonic clock the data path and the windows share, in nanoseconds.
std::int64_t monotonic_ns();

}  // namespace veer::metrics
