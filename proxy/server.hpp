// The data path: one event loop per thread, each with its own SO_REUSEPORT acceptor,
// upstream connection pools and metrics shard. Nothing here is shared between threads but
// the published routing snapshot, the metrics registry (one shard per thread) and a few
// counters.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "metrics/registry.hpp"
#include "routing/snapshot.hpp"

namespace boost::asio::ssl {
class context;
}

namespace veer::proxy {

// What the data path shares with the control side.
struct shared_state {
    shared_state(routing::publisher& r, metrics::registry& m) : routes(r), metrics(m) {}
    routing::publisher& routes;
    metrics::registry& metrics;
    // Consecutive failed requests per endpoint id (passive ejection). Touched on failures,
    // and read (not written) on successes while it is zero.
    std::array<std::atomic<int>, metrics::max_endpoints> consecutive_failures{};
    // Called on a data-path thread when an endpoint reaches eject_after_failures; must only
    // post work to the control side.
    std::function<void(std::uint32_t endpoint_id)> on_eject;
    std::atomic<std::int64_t> active_connections{0};
    int access_log_fd = -1;  // log.access_log opened for appending, or -1; set before start
    // listener.tls: new connections take the current context (reload swaps it); null = plain.
    std::atomic<std::shared_ptr<boost::asio::ssl::context>> server_tls;
    std::atomic<std::uint64_t> refused_connections{0};
};

class worker;

class server {
public:
    // Opens one listener per thread on cfg.listener.address; throws std::runtime_error if
    // it cannot bind.
    server(const config::config& cfg, shared_state& shared);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    std::size_t threads() const { return workers_.size(); }
    void start();
    // Any thread: stop accepting, close idle connections, let in-flight requests finish.
    void drain();
    // Waits for every connection to finish, up to `limit`; false if some did not.
    bool wait(std::chrono::milliseconds limit);
    // Whether every thread has finished its connections (after drain()).
    bool finished() const;
    // Any thread, after drain(): closes every connection still open, client and upstream.
    void abort();
    // Stops every event loop now and joins the threads.
    void stop();

private:
    std::vector<std::unique_ptr<worker>> workers_;
};

// The number of data-path threads listener.threads asks for (0 = one per core).
std::size_t thread_count(const config::listener& l);

}  // namespace veer::proxy
