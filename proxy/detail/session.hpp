// One client connection (see session.cpp). Lives in its coroutine's frame; the worker
// links it into its list so that drain can wake it while it idles.
#pragma once

#include <array>
#include <string>

#include "metrics/window.hpp"
#include "proxy/detail/h2_connection.hpp"
#include "proxy/detail/worker.hpp"
#include "proxy/http/codec.hpp"
#include "proxy/request_rules.hpp"

namespace veer::proxy {

class session {
public:
    // `woken`: a parked connection that became readable (worker::park), not a new one;
    // `parked_tls` its OpenSSL state if it speaks TLS.
    session(worker& w, tcp_socket socket, bool woken, const tcp::endpoint& peer,
            std::unique_ptr<tls_conn> parked_tls);
    ~session();
    session(const session&) = delete;
    session& operator=(const session&) = delete;

    // Serves the connection; true if it was parked (its socket handed to the worker).
    task<bool> run();
    // Drain: a connection waiting for its next request is closed now.
    void cancel_if_idle();
    // The drain limit passed: close the client and upstream sockets now.
    void abort();
    // Called by the worker's sweeper. During a request: closes a socket whose deadline
    // passed. Between requests: closed once idle for timeouts.idle (header_read before the
    // first request), parked once idle for worker::park_after_ns.
    void sweep(std::int64_t now_ns);

    session* prev_ = nullptr;  // the worker's intrusive list
    session* next_ = nullptr;

private:
    // The request in progress, from its head to finish(): the snapshot it is served by,
    // the upstream connection it uses, and what finish() records and logs.
    struct request {
        request(std::int64_t t, std::shared_ptr<const routing::snapshot> s)
            : t_start(t), snap_ref(std::move(s)) {}
        const routing::snapshot& snap() const { return *snap_ref; }
        void measure(metrics::result res) {
            result = res;
            measured = true;
        }
        std::int64_t t_start;
        std::shared_ptr<const routing::snapshot> snap_ref;
        upstream_choice up;  // attached: counted in the worker's outstanding requests
        int status = 0;  // what the client was answered (0: nothing)
        metrics::result result{};
        bool measured = false;  // up.ep served or failed it: recorded against it
        bool keep_open = true;  // the client connection carries the next request
    };
    enum class idle_end { request, park, close };
    enum class send_result {
        ok,
        upstream_failed,
        client_failed,
        bad_body,
        body_too_large,
        early_response
    };
    struct exchanged {
        send_result sent;
        head_result head;
    };
    enum class relay_result { ok, upstream_failed, client_failed };
    // Where the relay of a response body stands.
    struct relay_state {
        relay_state(const http::response_head& resp, bool chunked_to_client);
        http::body_kind kind;
        bool dechunk;  // chunked upstream, HTTP/1.0 client
        std::uint64_t left;  // Content-Length bytes still to come
        bool done;
        bool chunks_started = false;
    };

    // Requests one after another until the connection ends or parks (true).
    task<bool> serve_requests();
    // Whether the client speaks HTTP/2: ALPN h2, or the preface of prior knowledge.
    bool speaks_h2();
    // Fewer bytes than "PRI " that could be its start: read_preface_start() reads on.
    bool preface_cut_short();
    task<> read_preface_start();
    // The connection as HTTP/2, to its end (h2_connection).
    task<> serve_h2();
    // Waits for the next request's first bytes.
    task<idle_end> await_request();
    // A new connection's first read, without waiting: true if bytes came (into in_).
    bool first_read();
    // One request: head, admission, upstream connection, exchange, relay or veer's answer.
    task<> serve(request& r);
    // The request head into req_; false if the client left or was answered 4xx.
    task<bool> read_head(request& r);
    // veer's own answer, and whether the client connection goes on.
    task<> refuse(request& r, int status);
    // Sends the request (resending per may_resend) and reads the response head.
    task<exchanged> exchange(request& r);
    task<head_result> read_response_head(upstream_conn& up, const routing::snapshot& snap);
    // The interim response in resp_, to the client; false if the client is gone.
    task<bool> forward_interim();
    // The response head in resp_ and its body, to the client.
    task<> relay(request& r, bool upload_cut);
    // The one place a request ends: its connection settled, its outcome recorded, logged.
    void finish(request& r);
    // The request takes `c` (and counts as outstanding on its endpoint).
    void attach(request& r, upstream_choice c);
    // The request is done with its upstream connection: back to the pool if `reusable`
    // and its response ended exactly where its bytes did, else closed. Its unread bytes
    // go with it either way, never to be parsed as the next response.
    void end_exchange(request& r, bool reusable);
    // The request body bytes that go out with the head (body_now); sets body_left_.
    send_result start_body(const routing::snapshot& snap, std::size_t& body_now);
    // The rest of the request body, read from the client as it comes.
    task<send_result> send_body(upstream_conn& up, const routing::snapshot& snap);
    // send_body while watching the upstream (RFC 9112 9.5): a final response that comes
    // first stops the upload (early_response; `head` says whether it parsed).
    task<send_result> send_body_watching(upstream_conn& up, const routing::snapshot& snap,
                                         head_result& head);
    // After the last response: the client's unread bytes are drained before closing.
    task<> linger();
    send_result feed_chunks(std::string_view in, const routing::snapshot& snap);
    // Room at the end of up_in_ for more of a response head; null if the head is too large.
    char* response_room(const routing::snapshot& snap, std::size_t& room);
    // The next piece of the response body in up_in_: `out` goes to the client, `take`
    // bytes of up_in_ are used up. False if the upstream's chunked framing is broken.
    bool next_slice(relay_state& st, asio::const_buffer& out, std::size_t& take);
    // A head and the body bytes after it: one buffer (a send, not a sendmsg of two pieces)
    // when the head fits in the consumed bytes of `buf` right before the body, which
    // is where the head it replaces was; else head and body as two pieces.
    static std::array<asio::const_buffer, 2> join(const std::string& head, io_buffer& buf,
                                                  asio::const_buffer body);
    task<> tunnel(upstream_conn& up, const routing::snapshot& snap);
    // A request to a pool with protocol = "h2" (h1_to_h2.cpp): a stream on this thread's
    // shared connection to the endpoint, the body sent while the answer is relayed.
    struct h2_exchange {
        h2_upstream& up;
        h2_upstream::call& call;
        bool grpc;
        send_result sent = send_result::ok;
        bool body_done = false;  // the whole body went up
        bool head_written = false;  // the answer's head is the client's (in out_ or sent)
        bool answered = false;  // the answer is complete: the rest of the body is not read
        int failure = 0;  // veer's own answer to give, if nothing was sent yet
        // The body cannot go on: the stream is reset, and `status` answered if it can be.
        void stop_body(send_result why, int status);
    };
    task<> serve_h2_pool(request& r, int pool_index);
    task<> send_body_h2(h2_exchange& x, const routing::snapshot& snap);
    task<> relay_h2(request& r, h2_exchange& x);
    // The answer is over (or failed): a body still coming is no longer read.
    void end_upload(h2_exchange& x);
    task<metrics::result> relay_h2_body(h2_exchange& x, const routing::snapshot& snap,
                                        bool no_body, bool chunked);
    task<> reply(int status, bool close);
    void log_access(const request& r);

    worker& w_;
    stream client_;
    tcp::endpoint peer_;
    std::string client_ip_;
    config::timeouts snap_timeouts_;
    io_buffer in_;  // bytes from the client
    io_buffer up_in_;  // bytes from the upstream
    // The small buffer the head came in, kept while the request is in progress (req_ points
    // into it) once in_ became a big one for the body.
    io_buffer head_in_;
    std::string out_;  // the head being written, either way
    http::request_head req_;
    http::response_head resp_;
    http::chunk_decoder chunks_;
    std::size_t chunk_consumed_ = 0;
    // Request bytes not yet read or relayed (chunked: 1 until done); above 0 when the
    // connection ends, the client's leftovers are drained first (linger).
    std::uint64_t body_left_ = 0;
    bool idle_ = false;
    std::int64_t idle_since_ns_ = 0;
    bool park_ = false;  // the sweeper asked an idle read to end: park
    bool served_ = false;  // a request was read: idle limits apply, not header_read
    bool woken_ = false;  // unparked, its first read not done yet
    bool lingering_ = false;  // draining those bytes now: a drain ends it
    static constexpr std::chrono::seconds linger_limit{5};
    upstream_conn* current_up_ = nullptr;  // the upstream connection of the request in progress
    h2_connection* h2_ = nullptr;  // the connection speaks HTTP/2: it owns every stream
    // The access log's view of the current request (only filled when the log is on).
    std::string log_request_;
    std::string_view detail_;  // why veer refused or failed it: static text, for the log
};

}  // namespace veer::proxy
