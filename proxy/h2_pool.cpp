// An HTTP/2 stream to a pool with protocol = "h2" (SPEC 10): one stream on this thread's
// shared HTTP/2 connection to the chosen endpoint, request and response streamed both
// ways with their trailers. A gRPC call (content-type application/grpc...) is judged by
// its grpc-status (trailers, or the head of a trailers-only answer), not its HTTP status.
#include <nghttp2/nghttp2.h>

#include "proxy/detail/h2_call.hpp"
#include "proxy/detail/h2_connection.hpp"

namespace veer::proxy {
namespace {

constexpr std::size_t out_limit = 64 * 1024;  // response bytes held per stream

// A gRPC call's status code: from the trailers, or the head of a trailers-only answer;
// -1 when it has none.
int grpc_code(const h2_upstream::call& call) {
    const auto* code = find_field(call.trailers, "grpc-status");
    if (!code) code = find_field(call.headers, "grpc-status");
    return code ? std::atoi(code->c_str()) : -1;
}

}  // namespace

const std::string* find_field(const h2_fields& f, std::string_view name) {
    for (const auto& [n, v] : f)
        if (n == name) return &v;
    return nullptr;
}

void make_upstream_head(const h2_request_head& req, const forward_as& how, upstream_head& out) {
    auto& nva = out.nva;
    nva.clear();
    nva.reserve(req.fields.size() + 7);
    nva.push_back(h2_nv(":method", req.method));
    nva.push_back(h2_nv(":scheme", how.tls_pool ? "https" : "http"));
    nva.push_back(h2_nv(":authority", req.authority));
    nva.push_back(h2_nv(":path", req.path));
    out.forwarded_for.clear();
    bool has_id = false;
    for (const auto& [n, v] : req.fields) {
        if (n == "x-forwarded-for") {
            out.forwarded_for.append(v).append(", ");
            continue;
        }
        if (n == "x-forwarded-proto" || n == "host") continue;
        has_id = has_id || n == "x-request-id";
        nva.push_back(h2_nv(n, v));
    }
    out.forwarded_for.append(how.client_ip);
    nva.push_back(h2_nv("x-forwarded-for", out.forwarded_for));
    nva.push_back(h2_nv("x-forwarded-proto", how.tls_client ? "https" : "http"));
    if (!has_id) nva.push_back(h2_nv("x-request-id", how.request_id));
}

bool is_grpc(const h2_fields& request_fields) {
    const auto* type = find_field(request_fields, "content-type");
    return type && type->starts_with("application/grpc");
}

// A gRPC call without a code is judged by its HTTP status, or as UNKNOWN under a 200.
metrics::result call_outcome(bool grpc, const h2_upstream::call& call,
                             const routing::snapshot& snap) {
    if (!grpc) return metrics::result_of_status(call.status);
    const int code = grpc_code(call);
    if (code < 0 && call.status != 200) return metrics::result_of_status(call.status);
    const int n = code < 0 ? 2 : code;
    const bool failed = n < 32 && (snap.errors.grpc >> n) & 1;
    return failed ? metrics::result::s5xx : metrics::result::s2xx;
}

int grpc_metric_code(const h2_upstream::call& call) {
    const int code = grpc_code(call);
    return code < 0 ? 2 : code;
}

task<bool> wait_woken(timer& t, std::chrono::milliseconds limit) {
    t.expires_after(limit);
    auto [ec] = co_await t.async_wait(nothrow);
    co_return ec == asio::error::operation_aborted;
}


task<> h2_connection::serve_h2_pool(h2_stream& s, const routing::snapshot& snap, int pool_index,
                                    std::int64_t t_start, const routing::pool*& pool,
                                    const routing::endpoint*& ep) {
    auto choice = w_.pick(snap, pool_index, ~0u, true);
    auto up = co_await w_.h2_session(snap, choice, t_start, s.watched);
    if (!up || s.closed) {
        respond(s, 502);
        co_return;
    }
    pool = choice.pool;
    ep = choice.ep;
    ++w_.outstanding_[ep->id];
    h2_upstream::call call(s.wake);
    char id[24];
    upstream_head head;
    make_upstream_head({s.method, s.authority, s.path, s.fields},
                       {pool->tls != nullptr, client_.tls() != nullptr, client_ip_,
                        w_.next_request_id(id)},
                       head);
    const bool has_body = !(s.end_stream && s.body.empty());
    metrics::result result = metrics::result::reset;
    call_guard guard{*up, call};
    if (up->submit(call, head.nva, has_body))
        result = co_await relay_h2(s, *up, call, snap);
    else
        respond(s, 502);
    w_.record(snap, *pool, *ep, result, t_start);
    if (is_grpc(s.fields) && call.head_done) w_.metrics_.record_grpc(ep->id, grpc_metric_code(call));
    --w_.outstanding_[ep->id];
}

task<metrics::result> h2_connection::relay_h2(h2_stream& s, h2_upstream& up,
                                              h2_upstream::call& call,
                                              const routing::snapshot& snap) {
    const auto response_limit =
        std::chrono::duration_cast<std::chrono::milliseconds>(snap.timeouts.upstream_response);
    const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(snap.timeouts.idle);
    bool head_sent = false;
    for (;;) {
        // The client's body, as the upstream's window takes it.
        if (!s.body.empty() && call.body.empty()) {
            call.body.swap(s.body);
            consume(s, call.body.size());
            if (s.end_stream) {  // the last DATA frame carries END_STREAM, not an empty one
                call.request_trailers = s.request_trailers;
                call.body_end = true;
            }
            up.more_body(call);
        } else if (s.end_stream && s.body.empty() && !call.body_end) {
            call.request_trailers = s.request_trailers;
            call.body_end = true;
            up.more_body(call);
        }
        if (call.head_done && !head_sent) {
            head_sent = true;
            const bool trailers_only = call.ended && call.data.empty() && call.trailers.empty();
            submit_fields(s, call.status, call.headers, !trailers_only);
        }
        if (head_sent && !call.data.empty() && s.out.size() < out_limit) {
            const auto n = call.data.size();
            s.out.append(call.data);
            call.data.clear();
            up.consume(call, n);
            resume(s);
            wake_writer();
        }
        if (head_sent && call.ended && call.data.empty()) {
            s.trailers = call.trailers;
            s.out_eof = true;
            resume(s);
            wake_writer();
            co_return call_outcome(is_grpc(s.fields), call, snap);
        }
        if (call.failed) {
            if (!head_sent)
                respond(s, 502);
            else
                reset(s, NGHTTP2_INTERNAL_ERROR);
            co_return metrics::result::reset;
        }
        if (s.closed) co_return head_sent ? call_outcome(is_grpc(s.fields), call, snap) : metrics::result::reset;
        if (!co_await wait(s, head_sent ? idle : response_limit)) {
            if (!head_sent)
                respond(s, 504);
            else
                reset(s, NGHTTP2_CANCEL);
            co_return metrics::result::timeout;
        }
    }
}

}  // namespace veer::proxy
