// An HTTP/1 request to a pool with protocol = "h2" (SPEC 10: any client protocol to any
// pool protocol): one stream on the thread's shared HTTP/2 connection to the endpoint.
// The client's body goes up as DATA (a chunked one decoded, its trailers as HTTP/2
// trailers); the answer comes back framed for HTTP/1.1: its Content-Length kept, else
// chunked with the upstream's trailers in the last chunk (close-delimited to HTTP/1.0).
#include <boost/asio/experimental/awaitable_operators.hpp>

#include <algorithm>
#include <charconv>

#include "common/ascii.hpp"
#include "proxy/detail/h2_call.hpp"
#include "proxy/detail/session.hpp"

namespace veer::proxy {
namespace {

constexpr std::size_t body_limit = 64 * 1024;  // request bytes held for the upstream's window

std::chrono::milliseconds ms(std::chrono::nanoseconds d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

// The client's fields as HTTP/2 carries them: names lower-case, no hop-by-hop ones (but
// "te: trailers", which gRPC needs), no Host (it is :authority) and no Expect (veer
// answers 100 itself).
h2_fields fields_of(const http::request_head& req) {
    h2_fields out;
    for (const auto& f : req.fields) {
        std::string name(f.name);
        std::transform(name.begin(), name.end(), name.begin(),
                       [](char c) { return ascii::lower(c); });
        if (name == "te" && ascii::trim(f.value) == "trailers") {
            out.emplace_back("te", "trailers");
            continue;
        }
        if (http::is_hop_by_hop(name, req.connection_tokens) || name == "host" ||
            name == "expect")
            continue;
        out.emplace_back(std::move(name), std::string(f.value));
    }
    return out;
}

// The upstream's answer as an HTTP/1 head, views into call.headers.
http::response_head head_of(const h2_upstream::call& call, const http::request_head& req) {
    http::response_head resp;
    resp.status = call.status;
    for (const auto& [n, v] : call.headers)
        if (!n.starts_with(':')) resp.fields.push_back({n, v});
    const auto* length = find_field(call.headers, "content-length");
    std::uint64_t n = 0;
    const bool has_length =
        length && std::from_chars(length->data(), length->data() + length->size(), n).ptr ==
                      length->data() + length->size();
    if (req.is_head || call.status == 204 || call.status == 304) {
        resp.body = http::body_kind::none;
    } else if (has_length) {
        resp.body = http::body_kind::length;
        resp.content_length = n;
    } else {
        resp.body = req.version_minor == 1 ? http::body_kind::chunked : http::body_kind::until_close;
    }
    return resp;
}

// The last chunk, with the upstream's trailers (RFC 9112 7.1.2).
void append_last_chunk(const h2_fields& trailers, std::string& out) {
    out.append("0\r\n");
    for (const auto& [name, value] : trailers)
        if (!http::is_hop_by_hop(name, {}) && name != "content-length")
            out.append(name).append(": ").append(value).append("\r\n");
    out.append("\r\n");
}

}  // namespace

task<> session::serve_h2_pool(request& r, int pool_index) {
    using namespace asio::experimental::awaitable_operators;
    const auto& snap = r.snap();
    auto choice = w_.pick(snap, pool_index, ~0u, true);
    auto up = co_await w_.h2_session(snap, choice, r.t_start, current_up_);
    if (!up) {
        co_await refuse(r, 502);
        co_return;
    }
    r.up.pool = choice.pool;
    r.up.ep = choice.ep;
    ++w_.outstanding_[choice.ep->id];
    // Copies of what the head says: the body reuses in_, where req_'s views point.
    const auto fields = fields_of(req_);
    const bool grpc = is_grpc(fields);
    std::string authority(req_.authority.empty() ? req_.find("host") : req_.authority);
    char id[24];
    upstream_head head;
    make_upstream_head(
        {req_.method, authority, req_.forward_target, fields},
        {choice.pool->tls != nullptr, client_.tls() != nullptr, client_ip_, w_.next_request_id(id)},
        head);
    timer wake(w_.ioc_.get_executor()), body_wake(w_.ioc_.get_executor());
    h2_upstream::call call(wake, body_wake);
    call_guard guard{*up, call};
    h2_exchange x{*up, call, grpc};
    if (up->submit(call, head.nva, req_.body != http::body_kind::none)) {
        // Both ways at once, as HTTP/2 allows: the answer (a gRPC stream's messages) may
        // start before the body ends.
        co_await (send_body_h2(x, snap) && relay_h2(r, x));
    } else {
        x.failure = 502;
    }
    if (x.failure) {
        if (!x.body_done) body_left_ = 1;  // a body cut short: the connection ends
        co_await refuse(r, x.failure);
    }
    if (!x.body_done || x.sent != send_result::ok) r.keep_open = false;
    if (grpc && call.head_done) w_.metrics_.record_grpc(choice.ep->id, grpc_metric_code(call));
    --w_.outstanding_[choice.ep->id];
}

task<> session::send_body_h2(h2_exchange& x, const routing::snapshot& snap) {
    const auto idle = ms(snap.timeouts.idle);
    auto& call = x.call;
    http::chunk_decoder chunks;
    chunks.keep_trailers(snap.limits.max_header_bytes);
    const bool chunked = req_.body == http::body_kind::chunked;
    std::uint64_t left = req_.body == http::body_kind::length ? req_.content_length : 0;
    x.body_done = !chunked && left == 0;
    if (!x.body_done) w_.buffers_.upgrade(in_, &head_in_);  // the body reads in big pieces
    if (!x.body_done && req_.expect_continue && in_.empty()) {
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        client_.expires_after(snap.timeouts.idle);
        auto [ec, n] = co_await client_.write(asio::buffer(cont));
        if (ec) co_return x.stop_body(send_result::client_failed, 0);
    }
    while (!x.body_done) {
        if (call.failed || x.answered) co_return;  // the rest is not needed (RFC 9112 9.5)
        if (call.body.size() >= body_limit) {  // the upstream's window is shut for now
            if (!co_await wait_woken(*call.body_wake, idle))
                co_return x.stop_body(send_result::upstream_failed, 504);
            continue;
        }
        if (in_.empty()) {
            std::size_t room = 0;
            char* p = in_.space(room);
            client_.expires_after(snap.timeouts.idle);
            auto [ec, n] = co_await client_.read_some(asio::buffer(p, room));
            if (ec && x.answered) co_return;  // relay_h2 stopped the read: the answer is out
            if (ec) co_return x.stop_body(send_result::client_failed, 0);
            in_.commit(n);
        }
        const auto v = in_.view();
        if (chunked) {
            const auto step = chunks.feed(v);
            if (step.failed) co_return x.stop_body(send_result::bad_body, 400);
            call.body.append(v.substr(step.data_offset, step.data_size));
            in_.consume(step.consumed);
            x.body_done = step.done;
            if (snap.limits.max_body_bytes && chunks.data_total() > snap.limits.max_body_bytes)
                co_return x.stop_body(send_result::body_too_large, 413);
        } else {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, v.size()));
            call.body.append(v.substr(0, n));
            in_.consume(n);
            left -= n;
            x.body_done = left == 0;
        }
        x.up.more_body(call);
    }
    call.request_trailers = http::trailer_fields(chunks.trailers());
    call.body_end = true;
    x.up.more_body(call);
    body_left_ = 0;
}

void session::h2_exchange::stop_body(send_result why, int status) {
    sent = why;
    if (!call.failed) {
        up.cancel(call);  // RST_STREAM: the upstream never gets a whole body
        call.failed = true;
        call.wake->cancel();  // relay_h2 sees it
    }
    if (!head_written && !failure) failure = status;
}

void session::end_upload(h2_exchange& x) {
    x.answered = true;
    if (x.body_done) return;
    boost::system::error_code ec;
    client_.sock().cancel(ec);  // the body's read (it sees `answered` and ends)
    x.call.body_wake->cancel();
}

task<> session::relay_h2(request& r, h2_exchange& x) {
    const auto& snap = r.snap();
    auto& call = x.call;
    while (!call.head_done && !call.failed) {
        if (!co_await wait_woken(*call.wake, ms(snap.timeouts.upstream_response))) {
            r.measure(metrics::result::timeout);
            x.stop_body(send_result::upstream_failed, 504);
            end_upload(x);
            co_return;
        }
    }
    if (!call.head_done) {
        if (x.sent == send_result::ok) {  // the upstream reset it, or the connection is gone
            r.measure(metrics::result::reset);
            x.failure = 502;
        }
        end_upload(x);
        co_return;
    }
    const auto resp = head_of(call, req_);
    r.status = resp.status;
    r.keep_open = keep_open_after_response(req_, resp, w_.draining_, !x.body_done);
    const bool chunked = resp.body == http::body_kind::chunked;
    out_.clear();
    http::write_client_response(resp, req_.version_minor, chunked, !r.keep_open, out_);
    x.head_written = true;
    const auto result = co_await relay_h2_body(x, snap, resp.body == http::body_kind::none, chunked);
    r.measure(result);
    if (result != metrics::result::reset && result != metrics::result::timeout) {
        if (!call.ended) r.keep_open = false;  // HEAD, 204, 304: the stream is reset if it goes on
        r.measure(call_outcome(x.grpc, call, snap));
    } else {
        r.keep_open = false;
    }
    end_upload(x);  // the rest of the body is not needed any more
}

// The answer's body as it comes; reset or timeout if it is cut, else what the window saw.
task<metrics::result> session::relay_h2_body(h2_exchange& x, const routing::snapshot& snap,
                                             bool no_body, bool chunked) {
    auto& call = x.call;
    bool ended = no_body;
    for (;;) {
        const bool last = call.ended;  // before the write: what comes after is for the next turn
        const auto n = call.data.size();
        if (n && !ended) {
            if (chunked) {
                char size[20];
                const auto end = std::to_chars(size, size + sizeof size, n, 16).ptr;
                out_.append(size, end).append("\r\n").append(call.data).append("\r\n");
            } else {
                out_.append(call.data);
            }
        }
        call.data.clear();
        x.up.consume(call, n);
        if (last && !ended) {
            ended = true;
            if (chunked) append_last_chunk(call.trailers, out_);
        }
        if (!out_.empty()) {
            client_.expires_after(snap.timeouts.idle);
            auto [ec, written] = co_await client_.write(asio::buffer(out_));
            out_.clear();
            if (ec) co_return metrics::result::reset;
        }
        if (ended) co_return metrics::result::s2xx;
        if (call.failed) co_return metrics::result::reset;  // cut: the client connection closes
        if (!call.data.empty() || call.ended) continue;  // it came during the write
        if (!co_await wait_woken(*call.wake, ms(snap.timeouts.idle)))
            co_return metrics::result::timeout;
    }
}

}  // namespace veer::proxy
