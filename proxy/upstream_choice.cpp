// Choosing and connecting the upstream of one request, for HTTP/1 sessions and HTTP/2
// streams alike: the endpoint (the pool's balance over this thread's outstanding counts),
// a pooled connection or a new one (retried per [retry]), and the outcome recorded.
#include <boost/asio/ssl/context.hpp>

#include "proxy/address.hpp"
#include "proxy/detail/worker.hpp"

namespace veer::proxy {

void worker::record(const routing::snapshot& snap, const routing::pool& pool,
                    const routing::endpoint& ep, metrics::result r, std::int64_t t_start) {
    const auto now = metrics::monotonic_ns();
    const bool failed = metrics::counts_as_failure(r, snap.errors);
    const auto latency_us = static_cast<std::uint64_t>(now > t_start ? (now - t_start) / 1000 : 0);
    metrics_.record(pool.slot, ep.id, r, failed, latency_us, now);
    auto& streak = shared_.consecutive_failures[ep.id];
    if (!failed) {
        if (streak.load(std::memory_order_relaxed) != 0) streak.store(0, std::memory_order_relaxed);
    } else if (streak.fetch_add(1, std::memory_order_relaxed) + 1 == pool.eject_after_failures &&
               shared_.on_eject) {
        shared_.on_eject(ep.id);
    }
}

upstream_choice worker::pick(const routing::snapshot& snap, int pool_index, std::uint32_t tried,
                             bool fresh) {
    upstream_choice c;
    const auto& pool = snap.pools[pool_index];
    const int ei =
        routing::pick_endpoint(pool, outstanding_.data(), rng_, round_robin_[pool_index], tried);
    if (ei < 0) return c;
    c.pool = &pool;
    c.ep = &pool.endpoints[ei];
    if (!fresh) c.conn = upstreams_.checkout(c.ep->id, coarse_now_ns());
    c.reused = c.conn != nullptr;
    return c;
}

task<upstream_choice> worker::connect(const routing::snapshot& snap, upstream_choice c,
                                      std::int64_t t_start, bool fresh, upstream_conn*& watched) {
    const int attempts = snap.retry.on_connect ? snap.retry.attempts : 1;
    for (int a = 1;; ++a) {
        const auto& pool = *c.pool;
        const auto& ep = *c.ep;
        c.conn = std::make_unique<upstream_conn>(ioc_.get_executor());
        watched = c.conn.get();  // for the sweeper's deadline check
        c.conn->stream.expires_after(snap.timeouts.connect);
        auto [ec] = co_await c.conn->stream.sock().async_connect(to_tcp(ep), nothrow);
        if (!ec) {
            c.conn->stream.sock().set_option(tcp::no_delay(true), ec);
            if (pool.tls)
                ec = co_await c.conn->stream.handshake_client(
                    *static_cast<asio::ssl::context*>(pool.tls.get()),
                    proxy::tls_name(pool.tls_name, ep.name.empty() ? ep.address : ep.name),
                    pool.tls_verify);
            if (!ec) co_return c;
        }
        // A failed attempt counts against its endpoint and pool; the client is not told yet.
        record(snap, pool, ep,
               c.conn->stream.timed_out() ? metrics::result::timeout : metrics::result::connect,
               t_start);
        watched = nullptr;
        c.conn.reset();
        if (a >= attempts) break;
        // Next: another usable endpoint of the same pool, else the stable pool.
        const std::uint32_t tried = ep.id;
        int pool_index = static_cast<int>(c.pool - snap.pools.data());
        const bool other_here =
            pool.usable.size() > 1 ||
            (pool.usable.size() == 1 && pool.endpoints[pool.usable[0]].id != tried);
        if (!other_here) {
            int stable = routing::serving_pool(snap, snap.stable);
            if (stable == pool_index) {
                const auto& sp = snap.pools[stable];
                if (sp.usable.size() == 1 && sp.endpoints[sp.usable[0]].id == tried) stable = -1;
            }
            pool_index = stable;
        }
        if (pool_index < 0) break;
        c = pick(snap, pool_index, tried, fresh);
        if (!c.ep || c.conn) break;  // nothing left to try, or a pooled connection
    }
    co_return c;
}

}  // namespace veer::proxy
