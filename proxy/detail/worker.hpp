// One data-path thread: its event loop, acceptor, upstream connection pools, buffers and
// metrics shard. Everything here is touched by that thread only, except drain()/stop().
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/http/codec.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/stream.hpp"
#include "proxy/upstream_pool.hpp"
#include "proxy/server.hpp"
#include "routing/router.hpp"

namespace veer::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class session;
class h2_connection;
class h2_upstream;

// The upstream a request goes to: its pool, endpoint and connection (pooled or new).
struct upstream_choice {
    std::unique_ptr<upstream_conn> conn;
    const routing::pool* pool = nullptr;
    const routing::endpoint* ep = nullptr;
    bool reused = false;
};

class worker {
public:
    worker(std::size_t index, const config::config& cfg, shared_state& shared);
    ~worker();

    void listen(const tcp::endpoint& at);
    void start();
    void drain();
    void abort();  // closes every session's sockets (after the drain limit)
    void stop() { ioc_.stop(); }
    void join() {
        if (thread_.joinable()) thread_.join();
    }
    bool finished() const { return finished_.load(); }

    void link(session* s);
    void unlink(session* s);
    // Takes over an idle connection whose session ended to save memory: the worker keeps
    // only its socket until it becomes readable, then starts a new session for it.
    void park(tcp_socket s, std::int64_t idle_since_ns, const tcp::endpoint& peer,
              std::unique_ptr<tls_conn> tls = nullptr);
    // Writes a new request id (24 hex digits) into `out`.
    std::string_view next_request_id(char (&out)[24]);

private:
    // A session is the thread's own code: it uses the loop, the pools, the buffers and
    // the counters below directly (this thread only); nothing else does.
    friend class session;
    friend class h2_connection;
    friend class h2_upstream;

    // This thread's HTTP/2 connections to h2 pools' endpoints (h2_upstream).
    std::shared_ptr<h2_upstream> h2_for(std::uint32_t endpoint_id) const;
    void keep_h2(std::uint32_t endpoint_id, std::shared_ptr<h2_upstream> u);
    void forget_h2(std::uint32_t endpoint_id, const h2_upstream* u);
    // The shared connection to c's endpoint, opened (per [retry], which may change c) when
    // there is none with room; null if the pool has no endpoint or none could be reached.
    task<std::shared_ptr<h2_upstream>> h2_session(const routing::snapshot& snap,
                                                  upstream_choice& c, std::int64_t t_start,
                                                  upstream_conn*& watched);
    std::map<std::uint32_t, std::vector<std::shared_ptr<h2_upstream>>> h2_upstreams_;
    // Per endpoint, the connection being opened: `ready` is cancelled when it is done.
    struct h2_pending {
        explicit h2_pending(const executor& ex) : ready(ex, timer::time_point::max()) {}
        timer ready;
        bool failed = false;
    };
    std::map<std::uint32_t, std::shared_ptr<h2_pending>> h2_connecting_;

    // An endpoint of the pool other than `tried`, with a pooled idle connection to it
    // unless `fresh` (or none is idle). proxy/upstream_choice.cpp.
    upstream_choice pick(const routing::snapshot& snap, int pool_index, std::uint32_t tried,
                         bool fresh);
    // Connects to c's endpoint, on failure to others per [retry]; conn is null if all
    // failed. `watched` points at the connection being tried, for the sweeper's deadlines.
    task<upstream_choice> connect(const routing::snapshot& snap, upstream_choice c,
                                  std::int64_t t_start, bool fresh, upstream_conn*& watched);
    // One outcome against its endpoint and pool: the window, and the passive-ejection streak.
    void record(const routing::snapshot& snap, const routing::pool& pool,
                const routing::endpoint& ep, metrics::result r, std::int64_t t_start);

    // One thread runs it, and only that thread touches its sockets (others post to it):
    // the per-descriptor locks of the reactor are not needed.
    asio::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    shared_state& shared_;
    metrics::thread_shard& metrics_;
    routing::snapshot_cache routes_;
    routing::fast_random rng_;
    std::vector<std::uint32_t> outstanding_;  // requests in flight per endpoint id, this thread
    std::vector<std::uint32_t> round_robin_;  // per pool index
    buffer_pool buffers_;
    // What a session's heads and output grow into, kept from sessions that ended so that a
    // new (or woken) connection's first request allocates none of it: without them a
    // plaintext Connection: close request cost 9 allocations, with them 1-2.
    struct session_scratch {
        std::vector<http::field> request_fields, response_fields;
        std::string out;
    };
    void lend_scratch(session_scratch& into);
    void take_back_scratch(session_scratch& from);
    std::vector<session_scratch> scratch_;
    static constexpr std::size_t max_scratch = 256;
    upstream_pool upstreams_;
    bool draining_ = false;
    bool http2_ = true;  // listener.http2 (a change needs a restart)
    // Idle connections waiting with a (small) buffer in hand (session.cpp). Bounded, so a
    // burst of connections never holds more than this many buffers between requests.
    static constexpr std::size_t max_idle_reads = 256;
    // Idle that long, a keep-alive connection parks (session::sweep).
    static constexpr std::int64_t park_after_ns = 1'000'000'000;
    std::size_t idle_reads_ = 0;
    std::string access_buffer_;  // access log lines not yet written
    void flush_access_log();
    // One request's access log line (log.access_log): HTTP/1 and HTTP/2 alike.
    void log_access(std::string_view client_ip, std::string_view request, int status,
                    const routing::pool* pool, const routing::endpoint* ep, std::int64_t t_start,
                    std::string_view detail);

    // An idle connection without a session: a socket waiting to be readable.
    struct parked_conn {
        parked_conn(tcp_socket s, std::int64_t since, const tcp::endpoint& peer,
                    std::unique_ptr<tls_conn> t)
            : sock(std::move(s)), tls(std::move(t)), idle_since_ns(since), peer(peer) {}
        tcp_socket sock;
        std::unique_ptr<tls_conn> tls;  // a TLS connection's OpenSSL state, between requests
        std::int64_t idle_since_ns;
        tcp::endpoint peer;  // as accept() gave it: no getpeername when it wakes
        parked_conn* prev = nullptr;
        parked_conn* next = nullptr;
    };
    void start_session(tcp_socket s, bool woken, const tcp::endpoint& peer,
                       std::unique_ptr<tls_conn> tls = nullptr);
    void unpark(parked_conn* p, const boost::system::error_code& ec);
    task<> accept_loop();
    enum class accept_outcome { drained, more, out_of_resources, stop };
    accept_outcome accept_queued();
    bool take_connection_place();
    static constexpr int accept_batch = 64;
    task<> access_log_flusher();
    task<> idle_sweeper();

    tcp_acceptor acceptor_;
    timer flush_timer_{ioc_.get_executor()};
    timer sweep_timer_{ioc_.get_executor()};
    bool trim_pending_ = false;
    std::int64_t last_trim_ns_ = 0;
    std::int64_t last_pool_trim_ns_ = 0;
    session* sessions_ = nullptr;  // intrusive list of live sessions
    parked_conn* parked_ = nullptr;  // intrusive list of parked connections
    std::uint64_t request_prefix_;
    std::uint32_t request_counter_ = 0;
    std::thread thread_;
    std::atomic<bool> finished_{false};
};

// Runs one client connection until it ends or parks (true).
task<bool> run_session(worker& w, tcp_socket socket, bool woken, tcp::endpoint peer,
                       std::unique_ptr<tls_conn> tls);

}  // namespace veer::proxy
