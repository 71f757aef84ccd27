#include "proxy/upstream_pool.hpp"

#include <algorithm>

namespace veer::proxy {

upstream_pool::upstream_pool(std::size_t endpoints, std::int64_t idle_timeout_ns)
    : idle_(endpoints), idle_timeout_ns_(idle_timeout_ns) {}

std::unique_ptr<upstream_conn> upstream_pool::checkout(std::uint32_t endpoint_id,
                                                       std::int64_t now_ns) {
    auto& conns = idle_[endpoint_id];
    while (!conns.empty()) {
        auto c = std::move(conns.back());
        conns.pop_back();
        if (now_ns - c->idle_since_ns >= idle_timeout_ns_) continue;
        boost::system::error_code ec;
        c->stream.sock().cancel(ec);  // the watch: its handler sees operation_aborted
        if (!ec) return c;
    }
    return nullptr;
}

void upstream_pool::checkin(std::uint32_t endpoint_id, std::unique_ptr<upstream_conn> c,
                            std::int64_t now_ns) {
    auto& conns = idle_[endpoint_id];
    if (closed_ || conns.size() >= max_idle_per_endpoint) return;
    c->idle_since_ns = now_ns;
    c->stream.expires_never();
    watch(endpoint_id, *c);
    conns.push_back(std::move(c));
}

void upstream_pool::watch(std::uint32_t endpoint_id, upstream_conn& c) {
    // A peek, not a wait: Asio re-registers the descriptor with epoll for every wait; a
    // read is tried at once (one recv that finds nothing) and then queued as it is.
    c.stream.sock().async_receive(
        asio::buffer(&c.peeked, 1), tcp_socket::message_peek,
        [this, endpoint_id, conn = &c](boost::system::error_code ec, std::size_t) {
            // Aborted: checked out, closed or destroyed; `conn`
            // may be gone, so it is only compared, never used.
            if (ec != asio::error::operation_aborted) retire(endpoint_id, conn);
        });
}

void upstream_pool::retire(std::uint32_t endpoint_id, const upstream_conn* c) {
    // Not found: it was checked out in the same turn of the event loop, after its bytes
    // had come and before this handler ran. That request then meets those bytes, exactly
    // as it would meet bytes sent a moment later: the race HTTP/1.1 keep-alive always has.
    auto& conns = idle_[endpoint_id];
    const auto it =
        std::find_if(conns.begin(), conns.end(), [c](const auto& p) { return p.get() == c; });
    if (it != conns.end()) conns.erase(it);
}

void upstream_pool::close_all() {
    closed_ = true;
    for (auto& conns : idle_)
        conns.clear();
}

}  // namespace veer::proxy
