// One HTTP/2 stream as one request (SPEC 10): routed on its own (rules, sticky key,
// weight), sent to the pool's HTTP/1.1 upstream, measured and logged on its own. The
// response comes back through a bounded buffer: the upstream is not read further until
// nghttp2 has taken what is there, which it does only as the client's window allows.
#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "proxy/detail/h2_connection.hpp"
#include "proxy/request_rules.hpp"

namespace veer::proxy {
namespace {

constexpr std::size_t out_limit = 64 * 1024;  // response bytes held per stream

// The stream's request as the HTTP/1 codec's head, views into the stream's strings.
http::request_head head_of(const h2_connection::h2_stream& s) {
    http::request_head req;
    req.method = s.method;
    req.target = req.forward_target = s.path;
    req.authority = s.authority;
    req.has_host = !s.authority.empty();
    req.is_head = s.method == "HEAD";
    req.fields.reserve(s.fields.size());
    for (const auto& [name, value] : s.fields) {
        req.fields.push_back({name, value});
        if (name == "host" && req.authority.empty()) req.has_host = true;
        if (name == "x-forwarded-for") req.x_forwarded_for = value;
        if (name == "x-request-id") req.x_request_id = value;
    }
    // HTTP/2 frames the body itself: upstream, a declared length stays a length, and a
    // body of unknown length is chunked.
    const auto length = req.find("content-length");
    std::uint64_t n = 0;
    const bool has_length =
        !length.empty() &&
        std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        length.size() < 19;
    if (has_length)
        for (char c : length)
            n = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (s.end_stream && s.body.empty() && n == 0) {
        req.body = http::body_kind::none;
        req.explicit_zero_length = has_length;
    } else if (has_length) {
        req.body = http::body_kind::length;
        req.content_length = n;
    } else {
        req.body = http::body_kind::chunked;
    }
    return req;
}

}  // namespace

task<> h2_connection::serve(h2_stream& s) {
    const auto t_start = metrics::monotonic_ns();
    const auto snap_ref = w_.routes_.get();
    const auto& snap = *snap_ref;
    const auto req = head_of(s);
    const auto admitted = admit(req, snap, w_.rng_.below(routing::buckets));
    upstream_choice up;
    if (!admitted.status && !snap.pools[admitted.pool].h2) {
        up = w_.pick(snap, admitted.pool, ~0u, false);
        if (up.ep && !up.conn)
            up = co_await w_.connect(snap, std::move(up), t_start, false, s.watched);
        s.watched = nullptr;
    }
    const routing::pool* pool = nullptr;
    const routing::endpoint* ep = nullptr;
    if (!admitted.status && snap.pools[admitted.pool].h2) {
        co_await serve_h2_pool(s, snap, admitted.pool, t_start, pool, ep);
    } else if (admitted.status || !up.conn) {
        respond(s, admitted.status ? admitted.status : 502);
    } else {
        pool = up.pool;
        ep = up.ep;
        co_await serve_upstream(s, snap, std::move(up), req, t_start);
    }
    if (w_.shared_.access_log_fd >= 0)
        w_.log_access(client_ip_, s.method + " " + s.path, s.status, pool, ep, t_start, {});
    finished(s);
}

// A pooled connection the upstream closed meanwhile fails before it says anything: an
// idempotent request without a body then goes again on a fresh connection (SPEC 4's rule,
// as for HTTP/1 clients).
task<> h2_connection::serve_upstream(h2_stream& s, const routing::snapshot& snap,
                                     upstream_choice up, const http::request_head& req,
                                     std::int64_t t_start) {
    for (int attempt = 0;; ++attempt) {
        ++w_.outstanding_[up.ep->id];
        s.watched = up.conn.get();
        s.up = w_.buffers_.get();
        s.upstream_spoke = false;
        http::response_head resp;
        auto parsed = http::parse_status::failed;
        if (co_await send_upstream(s, snap, *up.conn, *up.ep, req))
            parsed = co_await read_response_head(s, *up.conn, snap, req.is_head, resp);
        const bool silent = parsed != http::parse_status::done && !s.upstream_spoke &&
                            !up.conn->stream.timed_out();
        if (silent && attempt == 0 && !s.closed && http::may_resend(req, up.reused)) {
            w_.buffers_.put(s.up);
            --w_.outstanding_[up.ep->id];
            const auto pool_index = static_cast<int>(up.pool - snap.pools.data());
            auto again = w_.pick(snap, pool_index, ~0u, true);
            if (again.ep)
                again = co_await w_.connect(snap, std::move(again), t_start, true, s.watched);
            s.watched = nullptr;
            if (again.conn) {
                up = std::move(again);
                continue;
            }
            respond(s, 502);
            w_.record(snap, *up.pool, *up.ep, metrics::result::reset, t_start);
            co_return;
        }
        co_await answer_from_upstream(s, snap, std::move(up), parsed, resp, t_start);
        co_return;
    }
}

task<bool> h2_connection::send_upstream(h2_stream& s, const routing::snapshot& snap,
                                        upstream_conn& up, const routing::endpoint& ep,
                                        const http::request_head& req) {
    std::string head;
    char id[24];
    http::write_upstream_request(
        req, {client_ip_, client_.tls() != nullptr, w_.next_request_id(id), ep.address}, head);
    up.stream.expires_after(snap.timeouts.upstream_response);
    auto [ec, n] = co_await up.stream.write(asio::buffer(head));
    if (ec) co_return false;
    if (req.body == http::body_kind::none) co_return true;
    co_return co_await send_request_body(s, up, req.body == http::body_kind::chunked, snap);
}

// The response whose head was read (or not: then veer's 502 or 504), relayed to the
// stream, recorded, and its connection pooled again if it ended clean.
task<> h2_connection::answer_from_upstream(h2_stream& s, const routing::snapshot& snap,
                                           upstream_choice up, http::parse_status parsed,
                                           const http::response_head& resp,
                                           std::int64_t t_start) {
    metrics::result result = metrics::result::reset;
    bool reusable = false;
    if (parsed == http::parse_status::done) {
        result = metrics::result_of_status(resp.status);
        submit_head(s, resp, resp.body != http::body_kind::none);
        const bool relayed =
            resp.body == http::body_kind::none || co_await relay_body(s, *up.conn, snap, resp);
        if (!relayed) {
            result = s.closed ? result : metrics::result::reset;
            reset(s, NGHTTP2_INTERNAL_ERROR);
        }
        reusable = relayed && resp.keep_alive && s.up.empty() && !s.closed;
    } else {
        result = up.conn->stream.timed_out() ? metrics::result::timeout : metrics::result::reset;
        respond(s, result == metrics::result::timeout ? 504 : 502);
    }
    w_.buffers_.put(s.up);
    w_.record(snap, *up.pool, *up.ep, result, t_start);
    --w_.outstanding_[up.ep->id];
    s.watched = nullptr;
    if (reusable) w_.upstreams_.checkin(up.ep->id, std::move(up.conn), coarse_now_ns());
}

task<bool> h2_connection::send_request_body(h2_stream& s, upstream_conn& up, bool chunked,
                                            const routing::snapshot& snap) {
    const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(snap.timeouts.idle);
    std::string frame;
    for (;;) {
        if (!s.body.empty()) {
            const std::size_t n = s.body.size();
            frame.clear();
            if (chunked) {
                char size[20];
                frame.append(
                    size, static_cast<std::size_t>(std::snprintf(size, sizeof size, "%zx\r\n", n)));
            }
            frame.append(s.body);
            if (chunked) frame.append("\r\n");
            s.body.clear();
            up.stream.expires_after(snap.timeouts.upstream_response);
            auto [ec, written] = co_await up.stream.write(asio::buffer(frame));
            if (ec) co_return false;
            consume(s, n);  // forwarded: the client may send as much again
            continue;
        }
        if (s.closed) co_return false;  // the client reset the stream
        if (s.end_stream) break;
        if (!co_await wait(s, idle)) co_return false;  // the client stopped sending
    }
    if (chunked) {  // the last chunk, with the client's trailers (RFC 9112 7.1.2)
        frame = "0\r\n";
        for (const auto& [name, value] : s.request_trailers)
            if (!http::is_hop_by_hop(name, {}) && name != "content-length" && name != "host")
                frame.append(name).append(": ").append(value).append("\r\n");
        frame.append("\r\n");
        up.stream.expires_after(snap.timeouts.upstream_response);
        auto [ec, written] = co_await up.stream.write(asio::buffer(frame));
        if (ec) co_return false;
    }
    co_return true;
}

task<http::parse_status> h2_connection::read_response_head(h2_stream& s, upstream_conn& up,
                                                           const routing::snapshot& snap,
                                                           bool is_head,
                                                           http::response_head& resp) {
    up.stream.expires_after(snap.timeouts.upstream_response);
    for (;;) {
        while (!s.up.empty()) {
            const auto parsed =
                http::parse_response(s.up.view(), snap.limits.max_header_bytes, is_head, resp);
            if (parsed.status != http::parse_status::done) {
                if (parsed.status == http::parse_status::failed) co_return parsed.status;
                break;
            }
            s.up.consume(resp.size);
            if (resp.status >= 200) co_return http::parse_status::done;
            if (resp.status == 101) co_return http::parse_status::failed;  // no meaning here
            // RFC 9110 15.2: interim answers (103 Early Hints) go on to the client; 100
            // Continue is not asked for over HTTP/2.
            if (resp.status != 100) submit_interim(s, resp);
        }
        std::size_t room = 0;
        char* p = s.up.space(room);
        if (room == 0) co_return http::parse_status::failed;  // a head larger than the buffer
        auto [ec, n] = co_await up.stream.read_some(asio::buffer(p, room));
        if (ec || s.closed) co_return http::parse_status::failed;
        s.up.commit(n);
        s.upstream_spoke = true;
    }
}

task<bool> h2_connection::relay_body(h2_stream& s, upstream_conn& up, const routing::snapshot& snap,
                                     const http::response_head& resp) {
    const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(snap.timeouts.idle);
    http::chunk_decoder chunks;
    chunks.keep_trailers(snap.limits.max_header_bytes);  // HTTP/2 carries them
    std::uint64_t left = resp.content_length;
    for (;;) {
        // What of the bytes in hand is body, into `out` for nghttp2.
        bool done = false;
        while (!s.up.empty() && !done && s.out.size() < out_limit) {
            const auto v = s.up.view();
            if (resp.body == http::body_kind::length) {
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, v.size()));
                s.out.append(v.substr(0, n));
                s.up.consume(n);
                left -= n;
                done = left == 0;
            } else if (resp.body == http::body_kind::chunked) {
                const auto step = chunks.feed(v);
                if (step.failed) co_return false;
                s.out.append(v.substr(step.data_offset, step.data_size));
                s.up.consume(step.consumed);
                done = step.done;
            } else {
                s.out.append(v);
                s.up.consume(v.size());
            }
        }
        if (resp.body == http::body_kind::length && left == 0) done = true;
        if (!s.out.empty()) resume(s);
        wake_writer();
        if (done) break;
        // A client that does not read holds the upstream where it is, for idle at most.
        while (s.out.size() >= out_limit && !s.closed)
            if (!co_await wait(s, idle)) co_return false;
        if (s.closed) co_return false;
        if (!s.up.empty()) continue;
        std::size_t room = 0;
        char* p = s.up.space(room);
        up.stream.expires_after(snap.timeouts.upstream_response);
        auto [ec, n] = co_await up.stream.read_some(asio::buffer(p, room));
        if (ec) {
            if (resp.body == http::body_kind::until_close && ec == asio::error::eof) break;
            co_return false;
        }
        s.up.commit(n);
    }
    if (resp.body == http::body_kind::chunked) s.trailers = http::trailer_fields(chunks.trailers());
    s.out_eof = true;
    resume(s);
    wake_writer();
    co_return true;
}

}  // namespace veer::proxy
