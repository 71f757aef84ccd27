#include "proxy/request_rules.hpp"

namespace veer::proxy {

admission admit(const http::request_head& req, const routing::snapshot& snap,
                std::uint32_t random_bp) {
    if (req.body == http::body_kind::length && snap.limits.max_body_bytes &&
        req.content_length > snap.limits.max_body_bytes)
        return {413, -1};
    const int pool = routing::choose_pool(snap, req.fields, random_bp);
    if (pool < 0) return {503, -1};
    return {0, pool};
}

failure_answer answer_for(head_result h) {
    switch (h) {
        case head_result::timeout: return {metrics::result::timeout, 504};
        case head_result::bad: return {metrics::result::s5xx, 502};
        case head_result::ok:
        case head_result::closed:
        case head_result::reset: break;
    }
    return {metrics::result::reset, 502};
}

int pool_after_connect_failure(const routing::snapshot& snap, int pool, std::uint32_t tried) {
    const auto only = [&](const routing::pool& p) {
        return p.usable.size() == 1 && p.endpoints[p.usable[0]].id == tried;
    };
    const auto& here = snap.pools[pool];
    if (!here.usable.empty() && !only(here)) return pool;
    const int stable = routing::serving_pool(snap, snap.stable);
    if (stable < 0 || (stable == pool && only(snap.pools[stable]))) return -1;
    return stable;
}

bool keep_open_after_reply(const http::request_head& req, int status, bool body_unread) {
    return status != 413 && !body_unread && req.keep_alive;
}

bool keep_open_after_response(const http::request_head& req, const http::response_head& resp,
                              bool draining, bool upload_cut) {
    if (!req.keep_alive || draining || upload_cut) return false;
    if (resp.body == http::body_kind::until_close) return false;
    return !(resp.body == http::body_kind::chunked && req.version_minor == 0);
}

}  // namespace veer::proxy
