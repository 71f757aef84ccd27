// Idle keep-alive connections to upstream endpoints, of one worker thread: a request takes
// one (checkout) and gives it back when its response ended cleanly (checkin). No lock: a
// connection is only ever used by the thread that opened it.
//
// An idle connection has no request outstanding, so nothing may arrive on it (RFC 9112
// 9.2): bytes or EOF there (a late body, a 408 before the upstream closes, a forged
// response) retire it. Each idle connection is watched the way nginx and HAProxy do it,
// with a read armed on the reactor rather than a check at checkout. Arming it costs one
// recv(MSG_PEEK) that finds nothing: Asio tries a read at once when its socket last
// reported data, and every other way to arm a wait is an epoll_ctl. Cancelling it at
// checkout costs nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/stream.hpp"

namespace veer::proxy {

struct upstream_conn {
    explicit upstream_conn(const executor& ex) : stream(ex) {}
    proxy::stream stream;
    std::int64_t idle_since_ns = 0;
    char peeked = 0;  // where the idle watch peeks (its byte is never used)
};

class upstream_pool {
public:
    // Endpoint ids are below `endpoints`; a connection idle for `idle_timeout_ns` is dropped.
    // Times are coarse_now_ns() readings (a few ms of resolution is plenty here).
    upstream_pool(std::size_t endpoints, std::int64_t idle_timeout_ns);
    upstream_pool(const upstream_pool&) = delete;
    upstream_pool& operator=(const upstream_pool&) = delete;

    // The most recently returned idle connection to the endpoint, or null.
    std::unique_ptr<upstream_conn> checkout(std::uint32_t endpoint_id, std::int64_t now_ns);
    // Keeps `c` for a later request, watched until then. The caller returns only a
    // connection whose last response ended exactly where its bytes did.
    void checkin(std::uint32_t endpoint_id, std::unique_ptr<upstream_conn> c, std::int64_t now_ns);
    // Closes every idle connection, and from now on those checked in (drain).
    void close_all();
    // Idle connections kept for the endpoint (tests and benchmarks).
    std::size_t idle(std::uint32_t endpoint_id) const { return idle_[endpoint_id].size(); }

    static constexpr std::size_t max_idle_per_endpoint = 256;

private:
    void watch(std::uint32_t endpoint_id, upstream_conn& c);
    // Something arrived on the idle connection `c` (if it is still idle here): drop it.
    void retire(std::uint32_t endpoint_id, const upstream_conn* c);

    std::vector<std::vector<std::unique_ptr<upstream_conn>>> idle_;
    std::int64_t idle_timeout_ns_;
    bool closed_ = false;
};

}  // namespace veer::proxy
