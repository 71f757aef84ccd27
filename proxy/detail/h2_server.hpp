// The protocol half of an HTTP/2 client connection (SPEC 10): libnghttp2's server session
// with veer's options (flood limits, manual flow control) and SETTINGS, each stream's
// request as its frames arrive, and the submits of its answer. No I/O: bytes go in through
// receive(), frames come out of gather_frames(session_), and what a stream needs is asked
// of the subclass (start, wake_writer). h2_connection adds the sockets and the upstreams;
// the fuzz target (tests/fuzz/fuzz_h2.cpp) drives this alone.
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/http/codec.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/stream.hpp"


namespace veer::proxy {

struct upstream_conn;

class h2_server {
public:
    struct limits {
        std::uint32_t max_concurrent_streams;
        std::uint32_t max_header_bytes;
    };
    // Within these the client's request bodies wait in memory (flow control's windows).
    static constexpr std::int32_t stream_window = 65535;
    static constexpr std::int32_t connection_window = 1 << 20;

    h2_server(const executor& ex, limits l);
    virtual ~h2_server();
    h2_server(const h2_server&) = delete;
    h2_server& operator=(const h2_server&) = delete;

    // Feeds nghttp2 what the client sent; false when the connection must end (a GOAWAY
    // saying why is then queued).
    bool receive(const char* data, std::size_t n);

    // Per stream, in the order it happens: the request's head and body as they arrive,
    // the response's head and body as the upstream gives them.
    struct h2_stream {
        h2_stream(std::int32_t id, const executor& ex) : id(id), wake(ex) {
            fields.reserve(12);  // one allocation for a usual request, not five
        }
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
        bool upstream_spoke = false;  // some of the answer came (no resend after that)
        int status = 0;  // what the client was answered
        std::vector<std::pair<std::string, std::string>> trailers;  // sent after `out`
        std::vector<std::pair<std::string, std::string>> request_trailers;  // the client's
        upstream_conn* watched = nullptr;  // its upstream connection, for the sweeper
    };

protected:
    friend struct h2_callbacks;
    // A stream's request head is complete (s.running is set): serve it.
    virtual void start(h2_stream& s) = 0;
    // Frames are waiting to be sent.
    virtual void wake_writer() = 0;

    h2_stream* find(std::int32_t id);
    // Gives `n` request bytes of `s` back to flow control (forwarded or thrown away).
    void consume(h2_stream& s, std::size_t n);
    void reset(h2_stream& s, std::uint32_t error_code);
    // The answer: a head (and then `out` until out_eof, then `trailers`), an interim head,
    // or veer's own short text answer.
    void submit_fields(h2_stream& s, int status,
                       const std::vector<std::pair<std::string, std::string>>& fields,
                       bool has_body);
    void submit_head(h2_stream& s, const http::response_head& resp, bool has_body);
    void submit_interim(h2_stream& s, const http::response_head& resp);
    void respond(h2_stream& s, int status);
    // nghttp2 may take more of a deferred answer body.
    void resume(h2_stream& s);

private:
    // The head being submitted: :status, then fields (nghttp2 copies them at the submit).
    void start_nva(int status);
    void add_h1_fields(const http::response_head& resp);
    void submit_nva(h2_stream& s, int status, bool has_body, bool interim);
    std::vector<nghttp2_nv> nva_;
    std::string names_;
    char status_[8];

protected:

    nghttp2_session* session_ = nullptr;
    std::map<std::int32_t, std::unique_ptr<h2_stream>> streams_;
    executor executor_;
    std::size_t max_header_bytes_;

private:
    // The client's stream ids: the highest opened, and the ranges it skipped (the last few).
    void opened(std::int32_t id);
    bool skipped(std::int32_t id) const;
    std::int32_t highest_ = -1;  // so that stream 1 skips nothing
    static constexpr std::size_t max_gaps = 8;
    std::vector<std::pair<std::int32_t, std::int32_t>> gaps_;
};

}  // namespace veer::proxy
