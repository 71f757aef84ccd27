#include "metrics/registry.hpp"

namespace veer::metrics {

thread_shard::thread_shard(std::chrono::nanoseconds window, std::int64_t)
    : window_(window), endpoints_(new std::atomic<std::uint64_t>[max_endpoints * result_count]) {
    for (std::size_t i = 0; i < max_endpoints * result_count; ++i)
        endpoints_[i].store(0, std::memory_order_relaxed);
}

thread_shard::~thread_shard() {
    for (auto& p : pools_)
        delete p.load();
    delete[] grpc_.load();
}

std::atomic<std::uint64_t>* thread_shard::create_grpc() {
    auto* g = new std::atomic<std::uint64_t>[max_endpoints * grpc_code_count];
    for (std::size_t i = 0; i < max_endpoints * grpc_code_count; ++i)
        g[i].store(0, std::memory_order_relaxed);
    grpc_.store(g, std::memory_order_release);
    return g;
}

grpc_counts registry::grpc_totals(std::uint32_t id) const {
    grpc_counts c{};
    for (const auto& sh : shards_)
        for (std::size_t code = 0; code < grpc_code_count; ++code)
            c[code] += sh->grpc_count(id, static_cast<int>(code));
    return c;
}

pool_window* thread_shard::create(std::uint32_t slot, std::int64_t now_ns) {
    auto* w = new pool_window(window_, now_ns);
    pools_[slot].store(w, std::memory_order_release);
    return w;
}

registry::registry(std::size_t threads, std::chrono::nanoseconds window, std::int64_t now_ns) {
    for (std::size_t i = 0; i < threads; ++i)
        shards_.push_back(std::make_unique<thread_shard>(window, now_ns));
}

window_stats registry::window(std::uint32_t slot, std::int64_t now_ns,
                              std::int64_t since_ns) const {
    window_stats s;
    for (const auto& sh : shards_)
        if (const auto* w = sh->pool(slot)) w->collect(s, now_ns, since_ns);
    return s;
}

window_stats registry::total(std::uint32_t slot) const {
    window_stats s;
    for (const auto& sh : shards_)
        if (const auto* w = sh->pool(slot)) w->collect_total(s);
    return s;
}

result_counts registry::endpoint_totals(std::uint32_t id) const {
    result_counts c{};
    for (const auto& sh : shards_)
        for (std::size_t r = 0; r < result_count; ++r)
            c[r] += sh->endpoint_count(id, static_cast<result>(r));
    return c;
}

std::int64_t monotonic_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace veer::metrics
