// The request cycle's decisions that wait for nothing (SPEC 4): whether a request is
// refused or routed, what an upstream failure becomes, where a failed connect goes next,
// and whether a connection stays open. Plain functions over the request, the routing
// snapshot and outcomes, so the session's coroutine only does I/O and these are unit
// tested on their own.
#pragma once

#include <cstdint>

#include "metrics/window.hpp"
#include "proxy/http/codec.hpp"
#include "routing/router.hpp"

namespace veer::proxy {

// A request read whole: refused with `status` (veer answers), or sent to pools[pool].
struct admission {
    int status = 0;  // 413 (declared body over limits.max_body_bytes), 503 (no pool serves)
    int pool = -1;
};
admission admit(const http::request_head& req, const routing::snapshot& snap,
                std::uint32_t random_bp);

// How waiting for a response head ended.
enum class head_result { ok, timeout, closed, reset, bad };

// What a request that got no usable response head is recorded as and answered with.
struct failure_answer {
    metrics::result result;
    int status;
};
// timeout: 504; a head that broke the rules (bad): 502, counted as the upstream's 5xx;
// closed or reset before a whole head: 502, counted as a reset.
failure_answer answer_for(head_result h);

// After a failed connect to `tried` of pools[pool]: another usable endpoint of the same
// pool, else the stable pool (SPEC 4: "the next on another healthy endpoint of the same
// pool, else of the stable pool"); -1 when nothing is left.
int pool_after_connect_failure(const routing::snapshot& snap, int pool, std::uint32_t tried);

// Whether the client connection carries another request after veer's own answer
// (`status`): not after a 413 or while the request's body is still unread, nor when the
// client asked to close.
bool keep_open_after_reply(const http::request_head& req, int status, bool body_unread);

// Whether the client connection carries another request after a relayed response: not
// when the client or a drain asks to close, when an early response cut the upload, when
// the body is delimited by closing, or when a chunked body goes to an HTTP/1.0 client.
bool keep_open_after_response(const http::request_head& req, const http::response_head& resp,
                              bool draining, bool upload_cut);

}  // namespace veer::proxy
