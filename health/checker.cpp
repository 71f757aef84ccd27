#include "health/checker.hpp"

#include <boost/asio/ssl/context.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

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

// What an HTTP/2 check's answer says, filled by nghttp2's callbacks.
struct h2_answer {
    int status = 0;
    std::string grpc_status;
    std::string data;  // the first bytes of the body (a health answer is a few bytes)
    bool ended = false;
};

h2_answer& answer_of(void* user) { return *static_cast<h2_answer*>(user); }

int on_h2_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                 std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t,
                 void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") answer_of(user).status = std::atoi(v.c_str());
    if (n == "grpc-status") answer_of(user).grpc_status = v;
    return 0;
}

int on_h2_data(nghttp2_session*, std::uint8_t, std::int32_t, const std::uint8_t* data,
               std::size_t len, void* user) {
    auto& a = answer_of(user);
    if (a.data.size() < 1024)
        a.data.append(reinterpret_cast<const char*>(data), std::min<std::size_t>(len, 1024));
    return 0;
}

int on_h2_close(nghttp2_session*, std::int32_t, std::uint32_t, void* user) {
    answer_of(user).ended = true;
    return 0;
}

// grpc.health.v1.HealthCheckRequest{service = ""}: an empty message, framed.
ssize_t empty_grpc_message(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                           std::uint32_t* flags, nghttp2_data_source*, void*) {
    if (length < 5) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    std::memset(buf, 0, 5);
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 5;
}

// A varint at `p`; false if it runs past `end` or is longer than 10 bytes.
bool varint(const unsigned char*& p, const unsigned char* end, std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 70 && p < end; shift += 7) {
        const auto b = *p++;
        out |= static_cast<std::uint64_t>(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

std::string_view serving_name(int status) {
    switch (status) {
        case 0: return "UNKNOWN";
        case 1: return "SERVING";
        case 2: return "NOT_SERVING";
        case 3: return "SERVICE_UNKNOWN";
        default: return "an unknown status";
    }
}

}  // namespace

int grpc_health_status(std::string_view body) {
    if (body.size() < 5 || body[0] != 0) return -1;  // one message, not compressed
    const auto* b = reinterpret_cast<const unsigned char*>(body.data());
    const std::size_t n = (std::size_t{b[1]} << 24) | (b[2] << 16) | (b[3] << 8) | b[4];
    if (body.size() - 5 < n) return -1;
    const unsigned char* p = b + 5;
    const unsigned char* end = p + n;
    int status = 0;  // proto3: a field left out is its zero, UNKNOWN
    while (p < end) {
        std::uint64_t tag = 0, value = 0;
        if (!varint(p, end, tag)) return -1;
        switch (tag & 7) {  // the wire type: only varints and length-delimited are expected
            case 0:
                if (!varint(p, end, value)) return -1;
                if (tag >> 3 == 1) status = static_cast<int>(std::min<std::uint64_t>(value, 1000));
                break;
            case 2:
                if (!varint(p, end, value) || value > static_cast<std::uint64_t>(end - p)) return -1;
                p += value;
                break;
            default: return -1;
        }
    }
    return status;
}

// An h2 pool's endpoint is checked in HTTP/2: the preface, then one GET of the path and
// its :status, or with health.grpc the standard grpc.health.v1.Health/Check.
proxy::task<std::string> checker::exchange_h2(proxy::stream& s, const target& t,
                                              const config::health& settings,
                                              const std::string& host) {
    h2_answer answer;
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_h2_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_h2_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_h2_close);
    nghttp2_session* session = nullptr;
    nghttp2_session_client_new(&session, cbs, &answer);
    nghttp2_session_callbacks_del(cbs);
    std::unique_ptr<nghttp2_session, decltype(&nghttp2_session_del)> owned(session,
                                                                           &nghttp2_session_del);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
    submit_check(session, t, settings, host);
    std::string out;
    char buf[4096];
    while (settings.grpc ? !answer.ended : answer.status == 0) {
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
    if (settings.grpc) co_return judge_grpc(t, answer.grpc_status, answer.data);
    if (answer.status < settings.expect_min || answer.status > settings.expect_max)
        co_return "health check of " + t.address + ": status " + std::to_string(answer.status);
    co_return "";
}

void checker::submit_check(nghttp2_session* session, const target& t,
                           const config::health& settings, const std::string& host) {
    const std::string method = ":method", scheme = ":scheme", authority = ":authority",
                      path = ":path", agent = "user-agent", veer = "veer-health",
                      scheme_value = t.tls ? "https" : "http", type = "content-type",
                      grpc = "application/grpc", te = "te", trailers = "trailers";
    static const std::string get = "GET", post = "POST",
                             grpc_path = "/grpc.health.v1.Health/Check";
    std::vector<nghttp2_nv> nva{
        proxy::h2_nv(method, settings.grpc ? post : get), proxy::h2_nv(scheme, scheme_value),
        proxy::h2_nv(authority, host), proxy::h2_nv(path, settings.grpc ? grpc_path : settings.path),
        proxy::h2_nv(agent, veer)};
    nghttp2_data_provider body{};
    body.read_callback = &empty_grpc_message;
    if (settings.grpc) {
        nva.push_back(proxy::h2_nv(type, grpc));
        nva.push_back(proxy::h2_nv(te, trailers));
    }
    nghttp2_submit_request(session, nullptr, nva.data(), nva.size(),
                           settings.grpc ? &body : nullptr, nullptr);
}

std::string checker::judge_grpc(const target& t, const std::string& grpc_status,
                                const std::string& body) {
    if (grpc_status != "0")
        return "health check of " + t.address + ": grpc-status " +
               (grpc_status.empty() ? std::string("missing") : grpc_status);
    const int serving = grpc_health_status(body);
    if (serving < 0) return "health check of " + t.address + ": not a HealthCheckResponse";
    if (serving != 1)
        return "health check of " + t.address + ": " + std::string(serving_name(serving));
    return "";
}

}  // namespace veer::health
