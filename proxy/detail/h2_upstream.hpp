// One HTTP/2 connection to an upstream endpoint (a pool with protocol = "h2"): nghttp2's
// client session, shared by every stream of this thread to that endpoint (SPEC 10:
// "pooled per thread and carry many streams"). Each call is one stream; its owner fills
// the request body, waits on its own timer, and takes the response as it comes. The
// response body is held only up to the stream's window: window updates go out as the
// owner consumes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "proxy/detail/worker.hpp"

#include "proxy/h2_frames.hpp"

namespace veer::proxy {

class h2_upstream : public std::enable_shared_from_this<h2_upstream> {
public:
    struct call {
        explicit call(timer& w) : call(w, w) {}
        // The answer's waiter and the body's, when two coroutines drive the call.
        call(timer& w, timer& body) : wake(&w), body_wake(&body) { headers.reserve(8); }
        std::int32_t id = -1;
        std::string body;  // request bytes to send: the owner fills, nghttp2 takes
        bool body_end = false;  // the owner has no more
        std::vector<std::pair<std::string, std::string>> request_trailers;  // after the body
        bool deferred = false;
        int status = 0;
        std::vector<std::pair<std::string, std::string>> headers, trailers;
        bool head_done = false;
        std::string data;  // response DATA not yet consumed by the owner
        bool ended = false;  // the response is complete
        bool failed = false;  // reset by the upstream, or the connection is gone
        timer* wake;  // the owner's wait, cancelled on every change
        timer* body_wake;  // cancelled too: the body's sender waits here for room
    };

    h2_upstream(worker& w, std::unique_ptr<upstream_conn> conn, std::uint32_t endpoint_id);
    ~h2_upstream();
    h2_upstream(const h2_upstream&) = delete;
    h2_upstream& operator=(const h2_upstream&) = delete;

    // Reads and writes until the connection ends; then every call fails.
    void start();
    // Streams on one connection at most, whatever the upstream allows: past it another
    // connection opens (as HAProxy's and nginx's defaults: 100). Servers that look their
    // streams up in short hash chains (nginx) slow down with hundreds on one connection.
    static constexpr std::uint32_t max_streams = 100;
    // Whether a new stream may go on it: alive, no GOAWAY, below the limits.
    bool open() const;
    // Opens the stream for `c`: headers `nva`, then c.body until c.body_end.
    bool submit(call& c, const std::vector<nghttp2_nv>& nva, bool has_body);
    void more_body(call& c);  // c.body grew or ended
    void consume(call& c, std::size_t n);  // the owner took n bytes of c.data
    void cancel(call& c);  // the owner gives up: RST_STREAM, and the call is forgotten
    void close();  // closes the socket (abort)
    void drain();  // closes the socket once no stream is open
    upstream_conn& conn() { return *conn_; }

private:
    friend struct h2_upstream_callbacks;
    task<> reader();
    task<> writer();
    void wake_writer();
    void fail_all();

    worker& w_;
    std::unique_ptr<upstream_conn> conn_;
    std::uint32_t endpoint_id_;
    nghttp2_session* session_ = nullptr;
    std::map<std::int32_t, call*> calls_;
    std::string wbuf_;
    timer writer_wake_;
    bool dead_ = false;
    bool draining_ = false;
};

}  // namespace veer::proxy
