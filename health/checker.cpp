#include "health/checker.hpp"

#include <boost/asio/ssl/context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

#include "proxy/h2_frames.hpp"
#include "proxy/http/codec.hpp"

namespace veer::health {
namespace asio = boost::asio;
constexpr std::size_t max_head = 16 * 1024;  // a check's answer head; longer is refused
using proxy::nothrow;

check_state& checker::state_of(std::uint32_t id) {
    for (auto& [i, s] : states_)
        if (i == id) return s;
    states_.emplace_back(id, check_state{});
    return states_.back().second;
}

void checker::run(std::vector<target> targets) {
    const auto generation = ++generation_;
    for (auto& t : targets) {
        state_of(t.id);
        asio::co_spawn(ioc_, loop(t, t.settings, generation), asio::detached);
    }
}

proxy::task<> checker::loop(target t, config::health settings, std::uint64_t generation) {
    proxy::timer timer(ioc_.get_executor());
    while (generation == generation_) {
        const auto why = co_await probe(t, settings);
        if (generation != generation_) co_return;
        auto& s = state_of(t.id);
        if (observe(s, why.empty(), settings.healthy_after, settings.unhealthy_after))
            cb_(t.id, s.healthy,
                why.empty()
                    ? "health check passed " + std::to_string(settings.healthy_after) + " times"
                    : why);
        timer.expires_after(settings.interval);
        co_await timer.async_wait(nothrow);
    }
}

proxy::task<std::string> checker::probe(const target& t, const config::health& settings) {
    // Whichever ends first: the losing side is cancelled and awaited, so nothing outlives
    // this frame.
    using namespace asio::experimental::awaitable_operators;
    proxy::timer limit(ioc_.get_executor());
    limit.expires_after(settings.timeout);
    auto r = co_await (exchange(t, settings) || limit.async_wait(nothrow));
    if (r.index() == 1) co_return "health check of " + t.address + ": timed out";
    co_return std::get<0>(std::move(r));
}

proxy::task<std::string> checker::exchange(const target& t, const config::health& settings) {
    proxy::stream s(ioc_.get_executor());
    auto at = t.at;
    if (settings.port) at.port(static_cast<unsigned short>(settings.port));  // a check port
    auto [cec] = co_await s.sock().async_connect(at, nothrow);
    if (cec) co_return "health check of " + t.address + ": connect: " + cec.message();
    if (t.tls) {
        const auto hec = co_await s.handshake_client(*static_cast<asio::ssl::context*>(t.tls.get()),
                                                     t.tls_name, t.tls_verify);
        if (hec) co_return "health check of " + t.address + ": TLS: " + hec.message();
    }
    const auto& host = !settings.host.empty() ? settings.host : t.name.empty() ? t.address : t.name;
    if (t.h2) co_return co_await exchange_h2(s, t, settings, host);
    const std::string req = "GET " + settings.path + " HTTP/1.1\r\nHost: " + host +
                            "\r\nUser-Agent: veer-health\r\nConnection: close\r\n\r\n";
    auto [wec, wn] = co_await s.write(asio::buffer(req));
    if (wec) co_return "health check of " + t.address + ": write: " + wec.message();
    // The whole head, parsed by the data path's codec: a broken answer fails the check.
    std::string head;
    int status = 0;
    for (;;) {
        const auto st = proxy::http::response_status(head, max_head, status);
        if (st == proxy::http::parse_status::failed)
            co_return "health check of " + t.address + ": not HTTP";
        if (st == proxy::http::parse_status::done) break;
        char buf[1024];
        auto [rec, rn] = co_await s.read_some(asio::buffer(buf));
        if (rec) co_return "health check of " + t.address + ": " + rec.message();
        head.append(buf, rn);
    }
    if (status < settings.expect_min || status > settings.expect_max)
        co_return "health check of " + t.address + ": status " + std::to_string(status);
    co_return "";
}

namespace {

// The answer's :status, taken by nghttp2's callback.
int on_h2_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                 void* status) {
    if (frame->hd.type == NGHTTP2_HEADERS &&
        std::string_view(reinterpret_cast<const char*>(name), namelen) == ":status")
        *static_cast<int*>(status) =
            std::atoi(std::string(reinterpret_cast<const char*>(value), valuelen).c_str());
    return 0;
}

}  // namespace

// An h2 pool's endpoint is checked in HTTP/2: the preface, one GET, its :status.
proxy::task<std::string> checker::exchange_h2(proxy::stream& s, const target& t,
                                              const config::health& settings,
                                              const std::string& host) {
    int status = 0;
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_h2_header);
    nghttp2_session* session = nullptr;
    nghttp2_session_client_new(&session, cbs, &status);
    nghttp2_session_callbacks_del(cbs);
    std::unique_ptr<nghttp2_session, decltype(&nghttp2_session_del)> owned(session,
                                                                           &nghttp2_session_del);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
    const std::string method = ":method", get = "GET", scheme = ":scheme",
                      scheme_value = t.tls ? "https" : "http", authority = ":authority",
                      path = ":path", agent = "user-agent", veer = "veer-health";
    const std::vector<nghttp2_nv> nva{proxy::h2_nv(method, get), proxy::h2_nv(scheme, scheme_value),
                                      proxy::h2_nv(authority, host),
                                      proxy::h2_nv(path, settings.path), proxy::h2_nv(agent, veer)};
    nghttp2_submit_request(session, nullptr, nva.data(), nva.size(), nullptr, nullptr);
    std::string out;
    char buf[4096];
    while (status == 0) {
        proxy::gather_frames(session, out);
        if (!out.empty()) {
            auto [wec, wn] = co_await s.write(asio::buffer(out));
            if (wec) co_return "health check of " + t.address + ": write: " + wec.message();
        }
        auto [rec, rn] = co_await s.read_some(asio::buffer(buf));
        if (rec) co_return "health check of " + t.address + ": " + rec.message();
        if (nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(buf), rn) < 0)
            co_return "health check of " + t.address + ": not HTTP/2";
    }
    if (status < settings.expect_min || status > settings.expect_max)
        co_return "health check of " + t.address + ": status " + std::to_string(status);
    co_return "";
}

}  // namespace veer::health
