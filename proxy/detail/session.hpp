// One client connection (see session.cpp). Lives in its coroutine's frame; the worker
// links it into its list so that drain can wake it while it idles.
#pragma once

#include <array>
#include <string>

#include "metrics/window.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/http/codec.hpp"

namespace veer::proxy {

class session {
public:
    session(worker& w, tcp_socket socket);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    task<void> run();
    // Drain: a connection waiting for its next request is closed now.
    void cancel_if_idle();
    // The drain limit passed: close the client and upstream sockets now.
    void abort();
    // Between requests: closed once idle for timeouts.idle (header_read before the first
    // request), parked (its buffer given back) once idle for a second.
    // True if it parked the connection.
    bool sweep(std::int64_t now_ns);

    session* prev_ = nullptr;  // the worker's intrusive list
    session* next_ = nullptr;

private:
    struct upstream_choice {
        std::unique_ptr<upstream_conn> conn;
        const routing::pool* pool = nullptr;
        const routing::endpoint* ep = nullptr;
        bool reused = false;
    };
    enum class send_result { ok, upstream_failed, client_failed, bad_body, body_too_large };
    enum class head_result { ok, timeout, closed, reset, bad };
    enum class relay_result { ok, upstream_failed, client_failed };

    // Requests one after another until the connection ends (run() adds TLS around it).
    task<void> serve_requests();
    // Serves the parsed request in req_; true if the connection stays open for the next.
    task<bool> serve(const routing::snapshot& snap, std::int64_t t_start);
    // Picks an endpoint of the pool and connects, retrying per [retry]; `fresh` skips the
    // pool of idle connections.
    task<upstream_choice> connect(const routing::snapshot& snap, int pool_index, std::int64_t t_start,
                                             bool fresh);
    task<send_result> send_request(upstream_conn& up, const routing::snapshot& snap);
    send_result feed_chunks(std::string_view in, const routing::snapshot& snap);
    task<head_result> read_response_head(upstream_conn& up, const routing::snapshot& snap);
    task<relay_result> relay_response(upstream_conn& up, const routing::snapshot& snap, bool chunked_to_client);
    task<void> tunnel(upstream_conn& up, const routing::snapshot& snap);
    task<void> reply(int status, bool close);
    void log_access(std::int64_t t_start);
    void record(const routing::snapshot& snap, const routing::pool& pool, const routing::endpoint& ep,
                metrics::result r, std::int64_t t_start);

    worker& w_;
    stream client_;
    std::string client_ip_;
    config::timeouts snap_timeouts_;
    io_buffer in_;      // bytes from the client
    io_buffer up_in_;   // bytes from the upstream
    std::string out_;   // the head being written, either way
    http::request_head req_;
    http::response_head resp_;
    http::chunk_decoder chunks_;
    std::size_t chunk_consumed_ = 0;
    std::uint64_t body_left_ = 0;  // request body bytes not yet relayed (chunked: 1 until done)
    bool idle_ = false;
    std::int64_t idle_since_ns_ = 0;
    bool park_ = false;
    bool served_ = false;  // a request was read: idle limits apply, not header_read
    upstream_conn* current_up_ = nullptr;  // the upstream connection of the request in progress  // the sweeper asked an idle read to give its buffer back
    // The access log's view of the current request (only filled when the log is on).
    std::string log_request_;
    int status_ = 0;
    const routing::pool* served_pool_ = nullptr;
    const routing::endpoint* served_by_ = nullptr;
};

}  // namespace veer::proxy
