// One client connection, from accept to close: read a request head, route it, relay the
// request to an upstream and the response back, both bodies streamed through two bounded
// buffers, then the next request. Every wait has a deadline.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <cstring>

#include "proxy/address.hpp"
#include "proxy/detail/session.hpp"

namespace veer::proxy {
session::session(worker& w, tcp_socket socket, bool woken, const tcp::endpoint& peer,
                 std::unique_ptr<tls_conn> parked_tls)
    : w_(w),
      client_(std::move(socket)),
      peer_(peer),
      snap_timeouts_(w.routes_.get()->timeouts),
      served_(woken),
      woken_(woken) {
    auto addr = peer.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped())
        addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    client_ip_ = addr.to_string();
    worker::session_scratch scratch;
    w_.lend_scratch(scratch);
    req_.fields = std::move(scratch.request_fields);
    resp_.fields = std::move(scratch.response_fields);
    out_ = std::move(scratch.out);
    if (woken) {
        in_ = w_.buffers_.get_small();  // its next request is there to read
        client_.adopt_tls(std::move(parked_tls));
    } else if (auto tls = w_.shared_.server_tls.load()) {
        client_.use_tls(*tls, &w_.buffers_);
    }
    w_.link(this);
}

session::~session() {
    worker::session_scratch scratch{std::move(req_.fields), std::move(resp_.fields),
                                    std::move(out_)};
    w_.take_back_scratch(scratch);
    w_.buffers_.put(in_);
    w_.buffers_.put(up_in_);
    w_.buffers_.put(head_in_);
    w_.unlink(this);
}

void session::cancel_if_idle() {
    if (h2_) {
        h2_->drain();  // GOAWAY: its streams finish
        return;
    }
    if (idle_ || lingering_) client_.sock().cancel();
}

void session::abort() {
    if (h2_) h2_->abort();
    boost::system::error_code ec;
    client_.sock().close(ec);
    if (current_up_) current_up_->stream.sock().close(ec);
}

void session::sweep(std::int64_t now_ns) {
    if (h2_) {
        h2_->sweep(now_ns);
        return;
    }
    if (!idle_) {  // a request in progress: the deadline of whatever it waits for
        client_.expire_if_due(now_ns);
        if (current_up_) current_up_->stream.expire_if_due(now_ns);
        return;
    }
    if (park_) return;
    // Before its first request a connection gets header_read, as a slow head would:
    // a client that connects and sends nothing is the laziest slowloris.
    const auto limit = served_ ? snap_timeouts_.idle : snap_timeouts_.header_read;
    const auto limit_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(limit).count();
    if (now_ns - idle_since_ns_ >= limit_ns) {
        client_.sock().cancel();
    } else if (in_ && served_ && now_ns - idle_since_ns_ >= worker::park_after_ns) {
        park_ = true;
        client_.sock().cancel();
    }
}

task<bool> session::run() {
    if (auto* tls = client_.tls()) {
        if (!woken_) {
            client_.expires_after(snap_timeouts_.header_read);  // part of the head
            const auto ec = co_await tls->handshake(true);
            if (ec) co_return false;
        }
        const bool parks = co_await serve_requests();
        if (parks) {  // OpenSSL's state goes with the socket, our buffers do not
            tls->release_buffers();
            auto state = client_.release_tls();
            w_.park(std::move(client_.sock()), idle_since_ns_, peer_, std::move(state));
            co_return true;
        }
        co_await client_.close_tls(std::chrono::seconds(1));
    } else if (co_await serve_requests()) {
        w_.park(std::move(client_.sock()), idle_since_ns_, peer_);
        co_return true;
    }
    // Closing with part of the request unread: read it first, or the close would reset the
    // connection. Otherwise the socket's close sends the FIN (a shutdown first adds nothing).
    if (body_left_ > 0) co_await linger();
    co_return false;
}

// Requests one after another. Each is served by a few sub-coroutines whose frames come
// from Asio's per-thread recycling cache, so a keep-alive request allocates nothing.
task<bool> session::serve_requests() {
    if (client_.tls()) {
        // OpenSSL may hold decrypted bytes that the socket no longer shows: a TLS
        // connection always reads with a buffer in hand, never waits for readability.
        if (!in_) in_ = w_.buffers_.get_small();
    }
    for (;;) {
        if (!in_ || in_.empty()) {
            const auto next = co_await await_request();
            if (next != idle_end::request) co_return next == idle_end::park;
        }
        if (!served_) {  // the first request says which protocol the connection speaks
            if (preface_cut_short()) co_await read_preface_start();  // rare: a 1-3 byte read
            if (speaks_h2()) {
                co_await serve_h2();
                co_return false;
            }
        }
        request r(metrics::monotonic_ns(), w_.routes_.get());
        co_await serve(r);
        finish(r);
        if (!r.keep_open || w_.draining_) co_return false;
    }
}

namespace {
// h2c with prior knowledge (RFC 9113 3.3): the preface starts "PRI ", which no HTTP/1
// method is.
constexpr std::string_view preface_start = "PRI ";
}  // namespace

bool session::speaks_h2() {
    if (auto* tls = client_.tls()) {
        const unsigned char* alpn = nullptr;
        unsigned len = 0;
        SSL_get0_alpn_selected(tls->native_handle(), &alpn, &len);
        return len == 2 && std::memcmp(alpn, "h2", 2) == 0;
    }
    return w_.http2_ && in_.view().starts_with(preface_start);
}

bool session::preface_cut_short() {
    return !client_.tls() && w_.http2_ && in_.size() < preface_start.size() &&
           preface_start.starts_with(in_.view());
}

task<> session::read_preface_start() {
    client_.expires_after(snap_timeouts_.header_read);
    while (preface_cut_short()) {
        std::size_t room = 0;
        char* p = in_.space(room);
        auto [ec, n] = co_await client_.read_some(asio::buffer(p, room));
        if (ec) co_return;  // the HTTP/1 path meets the same end
        in_.commit(n);
    }
}

task<> session::serve_h2() {
    h2_connection h2(w_, client_, in_, client_ip_);
    h2_ = &h2;
    idle_ = false;
    served_ = true;
    co_await h2.run();
    h2_ = nullptr;
}

// Between requests. A busy keep-alive client's next request comes soon: it is read
// straight into the buffer in hand (a plain read, which epoll needs no new registration
// for). After a second without one the worker's sweeper parks the connection: this frame
// ends and the worker keeps only the socket (worker::park), so 10,000 idle connections
// stay cheap. The sweeper also enforces timeouts.idle; no timer is armed per idle wait.
task<session::idle_end> session::await_request() {
    if (w_.draining_) co_return idle_end::close;
    w_.buffers_.put(up_in_);  // empty: end_exchange left nothing in it
    w_.buffers_.put(head_in_);
    idle_ = true;
    idle_since_ns_ = coarse_now_ns();
    client_.expires_never();
    if (!in_) {
        // A new connection's first bytes are most often there already: a non-blocking read
        // takes them. Else they are awaited without a buffer (a wait that Asio re-arms with
        // an epoll_ctl, which the read spares the usual case).
        if (first_read()) {
            idle_ = false;
            co_return idle_end::request;
        }
        auto [ec] = co_await client_.sock().async_wait(tcp_socket::wait_read, nothrow);
        if (ec) co_return idle_end::close;  // header_read passed, or drain
        in_ = w_.buffers_.get_small();
    } else if (!woken_ && !client_.tls() && w_.idle_reads_ >= worker::max_idle_reads) {
        co_return idle_end::park;  // enough connections wait with a buffer already
    } else {
        w_.buffers_.shrink(in_);  // the wait holds 4 KiB, not 32
    }
    woken_ = false;
    std::size_t room = 0;
    char* p = in_.space(room);
    ++w_.idle_reads_;
    auto [ec, n] = co_await client_.read_some(asio::buffer(p, room));
    --w_.idle_reads_;
    if (ec == asio::error::operation_aborted && park_ && client_.tls() && !client_.tls()->idle()) {
        // Part of a record came before the pause: the connection cannot wait for the socket
        // alone, so it stays, its buffer given back; the next bytes come in a small read
        // and OpenSSL keeps the rest of that record for the reads that follow.
        park_ = false;
        w_.buffers_.put(in_);
        client_.tls()->release_buffers();
        char first[64];
        auto [fec, fn] = co_await client_.read_some(asio::buffer(first));
        ec = fec;
        n = fn;
        if (!ec) {
            in_ = w_.buffers_.get_small();
            std::memcpy(in_.space(room), first, n);  // committed below
        }
    }
    const bool parked = ec == asio::error::operation_aborted && park_;
    if (ec) co_return parked ? idle_end::park : idle_end::close;
    in_.commit(n);
    idle_ = false;
    park_ = false;  // the sweeper may have asked after the read had completed
    co_return idle_end::request;
}

bool session::first_read() {
    boost::system::error_code ec;  // non-blocking since accept4 (worker::accept_queued)
    in_ = w_.buffers_.get_small();
    std::size_t room = 0;
    char* p = in_.space(room);
    const auto n = client_.sock().read_some(asio::buffer(p, room), ec);
    if (ec || n == 0) {
        w_.buffers_.put(in_);
        return false;
    }
    in_.commit(n);
    return true;
}

task<> session::serve(request& r) {
    if (!co_await read_head(r)) co_return;
    const auto admitted = admit(req_, r.snap(), w_.rng_.below(routing::buckets));
    if (admitted.status) {
        co_await refuse(r, admitted.status);
        co_return;
    }
    if (r.snap().pools[admitted.pool].h2) {
        co_await serve_h2_pool(r, admitted.pool);
        co_return;
    }
    auto first = w_.pick(r.snap(), admitted.pool, ~0u, false);
    if (first.ep && !first.conn)
        first = co_await w_.connect(r.snap(), std::move(first), r.t_start, false, current_up_);
    if (!first.conn) {
        co_await refuse(r, 502);
        co_return;
    }
    attach(r, std::move(first));
    const auto [sent, head] = co_await exchange(r);
    if (sent == send_result::bad_body || sent == send_result::body_too_large) {
        end_exchange(r, false);  // the upstream got part of a body that will never end
        body_left_ = 1;  // the rest of a broken body is never read: the connection ends
        co_await refuse(r, sent == send_result::bad_body ? 400 : 413);
    } else if (sent == send_result::client_failed) {
        r.keep_open = false;
    } else if (head != head_result::ok) {
        const auto failure = answer_for(head);
        r.measure(failure.result);
        end_exchange(r, false);
        co_await refuse(r, failure.status);
    } else {
        co_await relay(r, sent == send_result::early_response);
    }
}

task<bool> session::read_head(request& r) {
    const auto& snap = r.snap();
    snap_timeouts_ = snap.timeouts;
    client_.expires_after(snap.timeouts.header_read);
    const std::size_t max_head = snap.limits.max_header_bytes;
    for (;;) {
        const auto parsed = http::parse_request(in_.view(), max_head, req_);
        if (parsed.status == http::parse_status::done) break;
        if (parsed.status == http::parse_status::failed) {
            detail_ = parsed.detail;
            log_request_.clear();
            body_left_ = 1;  // whatever followed the bad head is never read: the connection ends
            co_await refuse(r, http::status_of(parsed.err));
            co_return false;
        }
        std::size_t room = 0;
        char* p = in_.space(room);
        if (room == 0) {  // a head larger than the buffer, still within the limit
            if (in_.capacity() < buffer_size)
                w_.buffers_.upgrade(in_);  // nothing parsed from it yet
            else
                in_.grow(max_head + 1024);
            p = in_.space(room);
        }
        auto [ec, n] = co_await client_.read_some(asio::buffer(p, room));
        if (ec) co_return false;  // a timeout closed the socket already (slowloris)
        in_.commit(n);
    }
    if (w_.shared_.access_log_fd >= 0)
        log_request_.assign(req_.method).append(" ").append(req_.target);
    in_.consume(req_.size);
    // The head is in: header_read no longer applies. While veer waits for the upstream the
    // client owes nothing (its body reads and the answer's writes set their own deadlines).
    client_.expires_never();
    served_ = true;
    body_left_ = req_.body == http::body_kind::none ? 0 : 1;  // unread until start_body counts it
    out_.clear();
    co_return true;
}

task<void> session::refuse(request& r, int status) {
    r.status = status;
    r.keep_open = keep_open_after_reply(req_, status, body_left_ > 0);
    co_await reply(status, !r.keep_open);
}

void session::finish(request& r) {
    end_exchange(r, false);  // whatever path ended the request, its connection is settled
    if (r.measured) w_.record(r.snap(), *r.up.pool, *r.up.ep, r.result, r.t_start);
    if (w_.shared_.access_log_fd >= 0 && (r.status || r.measured)) log_access(r);
    detail_ = {};
}

// Sends the request on r.up's connection and reads the response head. A reused
// connection the upstream closed meanwhile fails before any response byte: the request
// may have reached the upstream, so it goes out again, on a fresh connection chosen as a
// first attempt is, only if may_resend says so.
task<session::exchanged> session::exchange(request& r) {
    const auto& snap = r.snap();
    char id[24];
    http::write_upstream_request(
        req_, {client_ip_, client_.tls() != nullptr, w_.next_request_id(id), r.up.ep->address},
        out_);
    // From here on nothing reads req_'s views, which point into in_: the body reuses it.
    for (int attempt = 0;; ++attempt) {
        upstream_conn& up = *r.up.conn;
        head_result head = head_result::closed;
        std::size_t body_now = 0;
        send_result sent = start_body(snap, body_now);
        if (sent == send_result::ok && req_.expect_continue && body_left_ > 0 && body_now == 0) {
            // nginx's choice too: veer answers 100 itself, the upstream never sees Expect.
            static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
            client_.expires_after(snap.timeouts.idle);
            auto [ec, n] = co_await client_.write(asio::buffer(cont));
            if (ec) sent = send_result::client_failed;
        }
        if (sent == send_result::ok) {
            // The body bytes already read with the head go out with it, in one write.
            const auto bufs = join(out_, in_, asio::buffer(in_.view().data(), body_now));
            up.stream.expires_after(snap.timeouts.upstream_response);
            auto [ec, n] = co_await up.stream.write(bufs);
            if (ec) {
                sent = send_result::upstream_failed;
            } else {
                in_.consume(body_now);
                if (body_left_ > 0) sent = co_await send_body_watching(up, snap, head);
            }
        }
        if (sent == send_result::ok) head = co_await read_response_head(up, snap);
        if (sent != send_result::ok && sent != send_result::upstream_failed)
            co_return exchanged{sent, head};
        if (sent == send_result::ok && head != head_result::closed) co_return exchanged{sent, head};
        if (attempt == 1 || !http::may_resend(req_, r.up.reused))
            co_return exchanged{sent, head_result::reset};
        auto again = w_.pick(snap, static_cast<int>(r.up.pool - snap.pools.data()), ~0u, true);
        if (again.ep)
            again = co_await w_.connect(snap, std::move(again), r.t_start, true, current_up_);
        if (!again.conn) co_return exchanged{sent, head_result::reset};
        end_exchange(r, false);
        attach(r, std::move(again));
    }
}

// Reads into up_in_ until it holds a final response head (interim ones are dropped).
// Every byte stays in up_in_: the upload's watch and the read after the upload share it.
task<head_result> session::read_response_head(upstream_conn& up, const routing::snapshot& snap) {
    if (!up_in_) up_in_ = w_.buffers_.get();
    up.stream.expires_after(snap.timeouts.upstream_response);
    bool got_bytes = !up_in_.empty();
    for (;;) {
        while (!up_in_.empty()) {
            const auto parsed = http::parse_response(up_in_.view(), snap.limits.max_header_bytes,
                                                     req_.is_head, resp_);
            if (parsed.status == http::parse_status::failed) {
                detail_ = parsed.detail;
                co_return head_result::bad;
            }
            if (parsed.status != http::parse_status::done) break;
            if (resp_.status >= 200 || resp_.status == 101) co_return head_result::ok;
            if (resp_.status != 100 &&
                req_.version_minor == 1) {  // not co_await in a condition: GCC 12
                const bool forwarded = co_await forward_interim();
                if (!forwarded) co_return head_result::reset;
            }
            up_in_.consume(resp_.size);
        }
        std::size_t room = 0;
        char* p = response_room(snap, room);
        if (!p) {
            detail_ = "response head too large";
            co_return head_result::bad;
        }
        auto [ec, n] = co_await up.stream.read_some(asio::buffer(p, room));
        if (ec)
            co_return up.stream.timed_out() ? head_result::timeout
            : got_bytes                     ? head_result::reset
                                            : head_result::closed;
        got_bytes = true;
        up_in_.commit(n);
    }
}

// RFC 9110 15.2: a proxy forwards the 1xx it did not ask for (103 Early Hints, ...) to an
// HTTP/1.1 client; an HTTP/1.0 one gets none. 100 Continue is veer's own to send.
task<bool> session::forward_interim() {
    std::string head;
    http::write_client_response(resp_, 1, false, false, head);
    client_.expires_after(snap_timeouts_.idle);
    auto [ec, n] = co_await client_.write(asio::buffer(head));
    co_return !ec;
}

task<> session::relay(request& r, bool upload_cut) {
    const auto& snap = r.snap();
    upstream_conn& up = *r.up.conn;
    if (resp_.status == 101) {
        const bool upgraded = req_.upgrade_websocket && !upload_cut;
        r.measure(upgraded ? metrics::result::s1xx : metrics::result::s5xx);
        r.keep_open = false;
        r.status = upgraded ? 101 : 502;
        if (upgraded)
            co_await tunnel(up, snap);
        else
            co_await reply(502, true);
        co_return;
    }
    // A response that came while the body was still being sent ends the upload: the rest
    // of the body is never read, so neither connection can carry another request.
    r.status = resp_.status;
    r.keep_open = keep_open_after_response(req_, resp_, w_.draining_, upload_cut);
    const bool chunked_to_client = req_.version_minor == 1;
    out_.clear();
    http::write_client_response(resp_, req_.version_minor, chunked_to_client, !r.keep_open, out_);
    up_in_.consume(resp_.size);

    relay_state relay(resp_, chunked_to_client);
    relay_result relayed = relay_result::ok;
    bool head_sent = false;
    for (;;) {
        // What of up_in_ belongs to this response, and what of it goes to the client.
        asio::const_buffer body;
        std::size_t take = 0;
        if (!next_slice(relay, body, take)) {
            relayed = relay_result::upstream_failed;
            break;
        }
        const auto bufs =
            head_sent ? std::array<asio::const_buffer, 2>{body, {}} : join(out_, up_in_, body);
        if (bufs[0].size() + bufs[1].size() > 0) {
            client_.expires_after(snap.timeouts.idle);
            auto [ec, n] = co_await client_.write(bufs);
            if (ec) {
                relayed = relay_result::client_failed;
                break;
            }
        }
        head_sent = true;
        up_in_.consume(take);
        if (relay.done) break;
        if (!up_in_.empty()) continue;  // the rest of what was read (dechunking)
        std::size_t room = 0;
        char* p = up_in_.space(room);
        up.stream.expires_after(snap.timeouts.upstream_response);
        auto [ec, n] = co_await up.stream.read_some(asio::buffer(p, room));
        if (ec) {
            // The caller closes the client: never a spliced response.
            if (!(relay.kind == http::body_kind::until_close && ec == asio::error::eof))
                relayed = relay_result::upstream_failed;
            break;
        }
        up_in_.commit(n);
    }
    r.measure(relayed == relay_result::upstream_failed ? metrics::result::reset
                                                       : metrics::result_of_status(resp_.status));
    if (relayed != relay_result::ok) r.keep_open = false;
    if (relayed == relay_result::upstream_failed && !head_sent) {
        // The body's framing broke before the client got a byte (a bad first chunk size):
        // a 502 can still be said (SPEC 4), rather than a connection closed on nothing.
        detail_ = "bad chunked framing from upstream";
        r.status = 502;
        co_await reply(502, true);
    }
    end_exchange(r, relayed == relay_result::ok && resp_.keep_alive && !upload_cut);
}

void session::attach(request& r, upstream_choice c) {
    r.up = std::move(c);
    ++w_.outstanding_[r.up.ep->id];
    current_up_ = r.up.conn.get();
}

void session::end_exchange(request& r, bool reusable) {
    if (!r.up.conn) return;
    --w_.outstanding_[r.up.ep->id];
    const bool clean = reusable && up_in_.empty();
    if (up_in_) up_in_.consume(up_in_.size());
    if (clean) w_.upstreams_.checkin(r.up.ep->id, std::move(r.up.conn), coarse_now_ns());
    r.up.conn.reset();
    current_up_ = nullptr;
}

void session::log_access(const request& r) {
    w_.log_access(client_ip_, log_request_, r.status, r.up.pool, r.up.ep, r.t_start, detail_);
}

task<void> session::reply(int status, bool close) {
    out_.clear();
    http::write_simple_response(status, close, http::reason_of(status), out_);
    client_.expires_after(snap_timeouts_.idle);
    co_await client_.write(asio::buffer(out_));
}

std::array<asio::const_buffer, 2> session::join(const std::string& head, io_buffer& buf,
                                                asio::const_buffer body) {
    if (body.size() == 0) return {asio::buffer(head), {}};
    if (body.data() == buf.view().data()) {
        if (char* p = buf.room_before(head.size())) {  // where the head it replaces was
            std::memcpy(p, head.data(), head.size());
            return {asio::buffer(p, head.size() + body.size()), {}};
        }
    }
    return {asio::buffer(head), body};
}

session::send_result session::start_body(const routing::snapshot& snap, std::size_t& body_now) {
    body_now = 0;
    body_left_ = 0;
    if (req_.body == http::body_kind::length) {
        body_now =
            static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), req_.content_length));
        body_left_ = req_.content_length - body_now;
    } else if (req_.body == http::body_kind::chunked) {
        chunks_.reset();
        const auto r = feed_chunks(in_.view(), snap);
        if (r != send_result::ok) return r;
        body_now = chunk_consumed_;
        body_left_ = chunks_.done() ? 0 : 1;
    }
    return send_result::ok;
}

task<session::send_result> session::send_body(upstream_conn& up, const routing::snapshot& snap) {
    w_.buffers_.upgrade(in_, &head_in_);  // the body reads in big pieces
    while (body_left_ > 0) {
        if (in_.empty()) {
            std::size_t room = 0;
            char* p = in_.space(room);
            client_.expires_after(snap.timeouts.idle);
            auto [rec, rn] = co_await client_.read_some(asio::buffer(p, room));
            if (rec) co_return send_result::client_failed;
            in_.commit(rn);
        }
        std::size_t chunk = 0;
        if (req_.body == http::body_kind::length) {
            chunk = static_cast<std::size_t>(std::min<std::uint64_t>(in_.size(), body_left_));
            body_left_ -= chunk;
        } else {
            const auto r = feed_chunks(in_.view(), snap);
            if (r != send_result::ok) co_return r;
            chunk = chunk_consumed_;
            body_left_ = chunks_.done() ? 0 : 1;
        }
        up.stream.expires_after(snap.timeouts.upstream_response);
        auto [wec, wn] = co_await up.stream.write(asio::buffer(in_.view().data(), chunk));
        if (wec) co_return send_result::upstream_failed;
        in_.consume(chunk);
    }
    co_return send_result::ok;
}

// The upstream may answer before the body is all sent (RFC 9112 9.5): a final response
// that comes first stops the upload.
task<session::send_result> session::send_body_watching(upstream_conn& up,
                                                       const routing::snapshot& snap,
                                                       head_result& head) {
    using namespace asio::experimental::awaitable_operators;
    if (!up_in_) up_in_ = w_.buffers_.get();
    auto r = co_await (send_body(up, snap) || read_response_head(up, snap));
    if (r.index() == 0 && std::get<0>(r) == send_result::upstream_failed) {
        // The upload failed because the upstream answered and closed (a 413 and a reset):
        // its answer may already be here, readable after the reset.
        head = co_await read_response_head(up, snap);
        if (head == head_result::ok || head == head_result::bad)
            co_return send_result::early_response;
        co_return send_result::upstream_failed;
    }
    if (r.index() == 0) co_return std::get<0>(r);
    head = std::get<1>(r);
    co_return head == head_result::ok || head == head_result::bad ? send_result::early_response
                                                                  : send_result::upstream_failed;
}

task<void> session::linger() {
    // The client may still be sending a body veer did not read; closing with those bytes
    // unread would send a reset that can destroy the response in the client's buffers.
    // Its bytes are read and dropped until it closes, for a bounded time (nginx lingers too).
    boost::system::error_code ec;
    client_.sock().shutdown(tcp_socket::shutdown_send, ec);
    if (!in_ || w_.draining_) co_return;  // a drain does not wait for a client's leftovers
    lingering_ = true;
    client_.expires_after(linger_limit);
    for (;;) {
        std::size_t room = 0;
        char* p = in_.space(room);
        auto [rec, n] = co_await client_.sock().async_read_some(asio::buffer(p, room), nothrow);
        if (rec || w_.draining_) co_return;  // a read that beat the drain's cancel ends here
    }
}

session::send_result session::feed_chunks(std::string_view in, const routing::snapshot& snap) {
    chunk_consumed_ = 0;
    while (chunk_consumed_ < in.size() && !chunks_.done()) {
        const auto s = chunks_.feed(in.substr(chunk_consumed_));
        if (s.failed) return send_result::bad_body;
        chunk_consumed_ += s.consumed;
        if (s.consumed == 0) break;
    }
    if (snap.limits.max_body_bytes && chunks_.data_total() > snap.limits.max_body_bytes)
        return send_result::body_too_large;
    return send_result::ok;
}

char* session::response_room(const routing::snapshot& snap, std::size_t& room) {
    char* p = up_in_.space(room);
    if (room == 0 && up_in_.capacity() < snap.limits.max_header_bytes + 1024) {
        up_in_.grow(snap.limits.max_header_bytes + 1024);
        p = up_in_.space(room);
    }
    return room ? p : nullptr;
}

session::relay_state::relay_state(const http::response_head& resp, bool chunked_to_client)
    : kind(resp.body),
      dechunk(resp.body == http::body_kind::chunked && !chunked_to_client),
      left(resp.body == http::body_kind::length ? resp.content_length : 0),
      done(resp.body == http::body_kind::none ||
           (resp.body == http::body_kind::length && resp.content_length == 0)) {}

bool session::next_slice(relay_state& st, asio::const_buffer& out, std::size_t& take) {
    if (st.done) return true;
    const std::string_view data = up_in_.view();
    if (st.kind == http::body_kind::length) {
        take = static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), st.left));
        st.left -= take;
        st.done = st.left == 0;
        out = asio::buffer(data.data(), take);
        return true;
    }
    if (st.kind == http::body_kind::until_close) {
        take = data.size();
        out = asio::buffer(data.data(), take);
        return true;
    }
    // Chunked: passed through as is, or unwrapped for an HTTP/1.0 client (one data run
    // per write then: such clients are rare).
    if (!st.chunks_started) {
        chunks_.reset();
        st.chunks_started = true;
    }
    std::size_t data_off = 0, data_len = 0;
    while (take < data.size() && !chunks_.done()) {
        const auto s = chunks_.feed(data.substr(take));
        if (s.failed) return false;
        if (st.dechunk && s.data_size) {
            data_off = take + s.data_offset;
            data_len = s.data_size;
            take += s.consumed;
            break;
        }
        take += s.consumed;
        if (s.consumed == 0) break;
    }
    st.done = chunks_.done();
    out = st.dechunk ? asio::buffer(data.data() + data_off, data_len)
                     : asio::buffer(data.data(), take);
    return true;
}

task<void> session::tunnel(upstream_conn& up, const routing::snapshot& snap) {
    using namespace asio::experimental::awaitable_operators;
    out_.clear();
    http::write_client_response(resp_, req_.version_minor, false, false, out_);
    up_in_.consume(resp_.size);
    const std::array<asio::const_buffer, 2> head{asio::buffer(out_), asio::buffer(up_in_.view())};
    client_.expires_after(snap.timeouts.idle);
    auto [ec, n] = co_await client_.write(head);
    if (ec) co_return;
    up_in_.consume(up_in_.size());
    w_.buffers_.upgrade(in_, &head_in_);
    if (!in_.empty()) {
        up.stream.expires_after(snap.timeouts.idle);
        auto [wec, wn] = co_await up.stream.write(asio::buffer(in_.view()));
        if (wec) co_return;
        in_.consume(in_.size());
    }
    const auto idle = snap.timeouts.idle;
    auto pump = [idle](stream& from, stream& to, io_buffer& buf) -> task<void> {
        for (;;) {
            std::size_t room = 0;
            char* p = buf.space(room);
            from.expires_after(idle);
            auto [rec, rn] = co_await from.read_some(asio::buffer(p, room));
            if (rec) co_return;
            to.expires_after(idle);
            auto [wec, wn] = co_await to.write(asio::buffer(p, rn));
            if (wec) co_return;
        }
    };
    co_await (pump(client_, up.stream, in_) || pump(up.stream, client_, up_in_));
}

task<bool> run_session(worker& w, tcp_socket socket, bool woken, tcp::endpoint peer,
                       std::unique_ptr<tls_conn> tls) {
    session s(w, std::move(socket), woken, peer, std::move(tls));
    co_return co_await s.run();
}

}  // namespace veer::proxy
