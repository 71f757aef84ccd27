#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace veer::proxy {
namespace {

// Whether the upstream closed (or wrote to) an idle pooled connection: either way it
// cannot carry the next request.
bool still_open(upstream_conn& c) {
    char byte;
    const auto n = ::recv(c.stream.sock().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

upstream_pool::upstream_pool(std::size_t endpoints, std::int64_t idle_timeout_ns)
    : idle_(endpoints), idle_timeout_ns_(idle_timeout_ns) {}

std::unique_ptr<upstream_conn> upstream_pool::checkout(std::uint32_t endpoint_id, std::int64_t now_ns, bool replayable) {
    constexpr std::int64_t trust_ns = 500'000'000;
    auto& conns = idle_[endpoint_id];
    while (!conns.empty()) {
        auto c = std::move(conns.back());
        conns.pop_back();
        const auto idle_for = now_ns - c->idle_since_ns;
        if (idle_for < idle_timeout_ns_ && ((replayable && idle_for < trust_ns) || still_open(*c))) return c;
    }
    return nullptr;
}

void upstream_pool::checkin(std::uint32_t endpoint_id, std::unique_ptr<upstream_conn> c, std::int64_t now_ns) {
    auto& conns = idle_[endpoint_id];
    if (closed_ || conns.size() >= max_idle_per_endpoint) return;
    c->idle_since_ns = now_ns;
    c->stream.expires_never();
    conns.push_back(std::move(c));
}

void upstream_pool::close_all() {
    closed_ = true;
    for (auto& conns : idle_) conns.clear();
}

}  // namespace veer::proxy
