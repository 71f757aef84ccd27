// Idle keep-alive connections to upstream endpoints, of one worker thread: a request takes
// one (checkout) and gives it back when its response ended cleanly (checkin). No lock: a
// connection is only ever used by the thread that opened it.
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
};

class upstream_pool {
public:
    // Endpoint ids are below `endpoints`; a connection idle for `idle_timeout_ns` is dropped.
    // Times are coarse_now_ns() readings (a few ms of resolution is plenty here).
    upstream_pool(std::size_t endpoints, std::int64_t idle_timeout_ns);

    // The most recently returned connection to the endpoint that is still usable, or null.
    // One the upstream may have closed meanwhile is checked with a non-blocking peek,
    // unless `replayable` (the request can go out again on a fresh connection if it fails)
    // and it was returned within half a second: upstreams rarely close that soon.
    std::unique_ptr<upstream_conn> checkout(std::uint32_t endpoint_id, std::int64_t now_ns, bool replayable);
    void checkin(std::uint32_t endpoint_id, std::unique_ptr<upstream_conn> c, std::int64_t now_ns);
    // Closes every idle connection, and from now on those checked in (drain).
    void close_all();

    static constexpr std::size_t max_idle_per_endpoint = 256;

private:
    std::vector<std::vector<std::unique_ptr<upstream_conn>>> idle_;
    std::int64_t idle_timeout_ns_;
    bool closed_ = false;
};

}  // namespace veer::proxy
