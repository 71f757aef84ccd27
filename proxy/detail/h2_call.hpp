// What a request to an h2 pool needs whichever protocol the client spoke (SPEC 10): its
// fields as they go upstream, whether it is a gRPC call, and its outcome for the judge.
// Used by HTTP/2 streams (h2_pool.cpp) and HTTP/1 requests (h1_to_h2.cpp) alike.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/detail/h2_upstream.hpp"

namespace veer::proxy {

using h2_fields = std::vector<std::pair<std::string, std::string>>;

// The request head the upstream gets: pseudo-headers, the client's fields (names lower-case,
// no hop-by-hop ones), X-Forwarded-For/-Proto and X-Request-Id stated by veer as for HTTP/1.
struct h2_request_head {
    std::string_view method, authority, path;
    const h2_fields& fields;
};
struct forward_as {
    bool tls_pool;
    bool tls_client;
    std::string_view client_ip;
    std::string_view request_id;  // in the caller's buffer, which outlives the submit
};
// The head as nghttp2 takes it: `nva` points into the request's strings and into the
// ones veer states here, so it is used (submitted) while both live. Nothing is copied.
struct upstream_head {
    std::vector<nghttp2_nv> nva;
    std::string forwarded_for;
};
void make_upstream_head(const h2_request_head& req, const forward_as& how, upstream_head& out);

const std::string* find_field(const h2_fields& f, std::string_view name);
bool is_grpc(const h2_fields& request_fields);
// The call's outcome for the window: a gRPC code in slo.grpc_errors is a failure (counted
// with the 5xx), any other code a success; other requests by their HTTP status.
metrics::result call_outcome(bool grpc, const h2_upstream::call& call,
                             const routing::snapshot& snap);
// The gRPC status code metrics count a call under: UNKNOWN (2) when the answer had none.
int grpc_metric_code(const h2_upstream::call& call);

// However the owner's frame ends, the connection forgets the call before it is gone (a
// no-op once the stream closed).
struct call_guard {
    h2_upstream& up;
    h2_upstream::call& call;
    ~call_guard() { up.cancel(call); }
};

// Waits on `t` until woken (cancelled) or `limit` passes; false on the limit.
task<bool> wait_woken(timer& t, std::chrono::milliseconds limit);

}  // namespace veer::proxy
