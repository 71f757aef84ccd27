// One HTTP/2 client connection (SPEC 10): libnghttp2's server session, fed by the
// connection's reads, its frames written as they come. Each stream is one request, served
// by a coroutine of its own against the pool's HTTP/1 upstream (h2_stream.cpp), on the
// connection's thread. Memory is bounded by flow control: a stream's request body by its
// window (the bytes are given back only once forwarded), its response by a fixed buffer
// that the upstream is not read beyond, the connection by its own window.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/detail/h2_server.hpp"
#include "proxy/detail/h2_upstream.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/http/codec.hpp"

namespace veer::proxy {

class h2_connection : public h2_server {
public:
    // `in` holds what was read already (the preface, and maybe more).
    h2_connection(worker& w, stream& client, io_buffer& in, std::string_view client_ip);

    // Until the client leaves, or after a GOAWAY every stream is done.
    task<> run();
    // Drain: GOAWAY; open streams finish, no new ones start.
    void drain();
    // Closes the client's socket and every stream's upstream.
    void abort();
    // Deadlines: the client's, and each stream's upstream connection.
    void sweep(std::int64_t now_ns);

private:
    task<> reader();
    task<> writer();
    void wake_writer() override;
    void refresh_deadline();
    // A stream's request head is complete: its coroutine starts.
    void start(h2_stream& s) override;
    // One stream against its upstream (h2_stream.cpp); erases it when done.
    task<> serve(h2_stream& s);
    task<> serve_upstream(h2_stream& s, const routing::snapshot& snap, upstream_choice up,
                          const http::request_head& req, std::int64_t t_start);
    task<bool> send_upstream(h2_stream& s, const routing::snapshot& snap, upstream_conn& up,
                             const routing::endpoint& ep, const http::request_head& req);
    task<> answer_from_upstream(h2_stream& s, const routing::snapshot& snap, upstream_choice up,
                                http::parse_status parsed, const http::response_head& resp,
                                std::int64_t t_start);
    // A stream to a pool with protocol = "h2" (h2_pool.cpp): on this thread's shared
    // connection to the endpoint, trailers both ways; gRPC calls judged by grpc-status.
    task<> serve_h2_pool(h2_stream& s, const routing::snapshot& snap, int pool_index,
                         std::int64_t t_start, const routing::pool*& pool,
                         const routing::endpoint*& ep);
    task<metrics::result> relay_h2(h2_stream& s, h2_upstream& up, h2_upstream::call& call,
                                   const routing::snapshot& snap);
    task<bool> send_request_body(h2_stream& s, upstream_conn& up, bool chunked,
                                 const routing::snapshot& snap);
    task<http::parse_status> read_response_head(h2_stream& s, upstream_conn& up,
                                                const routing::snapshot& snap, bool is_head,
                                                http::response_head& resp);
    task<bool> relay_body(h2_stream& s, upstream_conn& up, const routing::snapshot& snap,
                          const http::response_head& resp);
    // Waits until woken or `limit` passes; false on the limit.
    task<bool> wait(h2_stream& s, std::chrono::milliseconds limit);
    void finished(h2_stream& s);

    worker& w_;
    stream& client_;
    io_buffer& in_;
    std::string client_ip_;
    std::string wbuf_;  // frames being written
    timer writer_wake_;
    timer all_done_;  // run() waits on it for the streams' coroutines
    int running_ = 0;
    bool writing_ = false;
    bool closing_ = false;  // the client is gone or the session is over
    bool writer_done_ = false;
};

}  // namespace veer::proxy
