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

#include "proxy/detail/h2_upstream.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/http/codec.hpp"

struct nghttp2_session;

namespace veer::proxy {

class h2_connection {
public:
    // `in` holds what was read already (the preface, and maybe more).
    h2_connection(worker& w, stream& client, io_buffer& in, std::string_view client_ip);
    ~h2_connection();
    h2_connection(const h2_connection&) = delete;
    h2_connection& operator=(const h2_connection&) = delete;

    // Until the client leaves, or after a GOAWAY every stream is done.
    task<> run();
    // Drain: GOAWAY; open streams finish, no new ones start.
    void drain();
    // Closes the client's socket and every stream's upstream.
    void abort();
    // Deadlines: the client's, and each stream's upstream connection.
    void sweep(std::int64_t now_ns);

    // Per stream, in the order it happens: the request's head and body as they arrive,
    // the response's head and body as the upstream gives them.
    struct h2_stream {
        h2_stream(std::int32_t id, const executor& ex) : id(id), wake(ex) {}
        std::int32_t id;
        std::string method, scheme, authority, path;
        std::vector<std::pair<std::string, std::string>> fields;
        std::size_t header_bytes = 0;
        bool end_stream = false;  // the client sent all of the request
        std::string body;  // request DATA not yet forwarded (within the stream's window)
        std::string out;  // response body not yet taken by nghttp2
        bool out_eof = false;
        bool deferred = false;  // nghttp2 waits for `out` to fill (resume_data)
        bool closed = false;  // nghttp2 is done with it (finished, or reset by the client)
        bool running = false;  // its coroutine is on
        timer wake;  // the coroutine's wait: cancelled to wake it, or it times out
        io_buffer up;  // the upstream's bytes, borrowed from the worker while in use
        int status = 0;  // what the client was answered
        std::vector<std::pair<std::string, std::string>> trailers;  // sent after `out`
        std::vector<std::pair<std::string, std::string>> request_trailers;  // the client's
        upstream_conn* watched = nullptr;  // its upstream connection, for the sweeper
    };

private:
    friend struct h2_callbacks;
    task<> reader();
    // Feeds nghttp2 what the client sent; false when the connection must end.
    bool receive(const char* data, std::size_t n);
    task<> writer();
    void wake_writer();
    void refresh_deadline();
    // A stream's request head is complete: its coroutine starts.
    void start(h2_stream& s);
    // One stream against its upstream (h2_stream.cpp); erases it when done.
    task<> serve(h2_stream& s);
    task<> serve_upstream(h2_stream& s, const routing::snapshot& snap, upstream_choice up,
                          const http::request_head& req, std::int64_t t_start);
    // A stream to a pool with protocol = "h2" (h2_pool.cpp): on this thread's shared
    // connection to the endpoint, trailers both ways; gRPC calls judged by grpc-status.
    task<> serve_h2_pool(h2_stream& s, const routing::snapshot& snap, int pool_index,
                         std::int64_t t_start, const routing::pool*& pool,
                         const routing::endpoint*& ep);
    task<metrics::result> relay_h2(h2_stream& s, h2_upstream& up, h2_upstream::call& call,
                                   const routing::snapshot& snap);
    void submit_fields(h2_stream& s, int status,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       bool has_body);
    task<bool> send_request_body(h2_stream& s, upstream_conn& up, bool chunked,
                                 const routing::snapshot& snap);
    task<http::parse_status> read_response_head(h2_stream& s, upstream_conn& up,
                                                const routing::snapshot& snap, bool is_head,
                                                http::response_head& resp);
    task<bool> relay_body(h2_stream& s, upstream_conn& up, const routing::snapshot& snap,
                          const http::response_head& resp);
    // veer's own answer (4xx/5xx with a short text body).
    void respond(h2_stream& s, int status);
    void submit_head(h2_stream& s, const http::response_head& resp, bool has_body);
    void submit_interim(h2_stream& s, const http::response_head& resp);
    // Waits until woken or `limit` passes; false on the limit.
    task<bool> wait(h2_stream& s, std::chrono::milliseconds limit);
    // Gives `n` request bytes of `s` back to flow control (forwarded or thrown away).
    void consume(h2_stream& s, std::size_t n);
    void reset(h2_stream& s, std::uint32_t error_code);
    void finished(h2_stream& s);
    h2_stream* find(std::int32_t id);
    // The client's stream ids: the highest opened, and the ranges it skipped (the last few).
    void opened(std::int32_t id);
    bool skipped(std::int32_t id) const;

    worker& w_;
    stream& client_;
    io_buffer& in_;
    std::string client_ip_;
    nghttp2_session* session_ = nullptr;
    std::map<std::int32_t, std::unique_ptr<h2_stream>> streams_;
    std::int32_t highest_ = -1;  // so that stream 1 skips nothing
    static constexpr std::size_t max_gaps = 8;
    std::vector<std::pair<std::int32_t, std::int32_t>> gaps_;
    executor executor_;
    std::size_t max_header_bytes_ = 0;  // limits.max_header_bytes as the connection began
    std::string wbuf_;  // frames being written
    timer writer_wake_;
    timer all_done_;  // run() waits on it for the streams' coroutines
    int running_ = 0;
    bool writing_ = false;
    bool closing_ = false;  // the client is gone or the session is over
    bool writer_done_ = false;
};

}  // namespace veer::proxy
