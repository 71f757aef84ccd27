#include "health/checker.hpp"

#include <boost/asio/ssl/context.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "proxy/stream.hpp"

namespace veer::health {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

check_state& checker::state_of(std::uint32_t id) {
    for (auto& [i, s] : states_)
        if (i == id) return s;
    states_.emplace_back(id, check_state{});
    return states_.back().second;
}

void checker::run(std::vector<target> targets, const config::health& settings) {
    const auto generation = ++generation_;
    for (auto& t : targets) {
        state_of(t.id);
        asio::co_spawn(ioc_, loop(std::move(t), settings, generation), asio::detached);
    }
}

asio::awaitable<void> checker::loop(target t, config::health settings, std::uint64_t generation) {
    asio::steady_timer timer(ioc_);
    while (generation == generation_) {
        const auto why = co_await probe(t, settings);
        if (generation != generation_) co_return;
        auto& s = state_of(t.id);
        if (observe(s, why.empty(), settings.healthy_after, settings.unhealthy_after))
            cb_(t.id, s.healthy, why.empty() ? "health check passed " + std::to_string(settings.healthy_after) + " times"
                                             : why);
        timer.expires_after(settings.interval);
        co_await timer.async_wait(nothrow);
    }
}

// One check: "" when it passed, else why it failed.
asio::awaitable<std::string> checker::probe(const target& t, const config::health& settings) {
    proxy::stream s(ioc_.get_executor());
    s.tcp().expires_after(settings.timeout);
    auto [cec] = co_await s.tcp().async_connect(t.at, nothrow);
    if (cec) co_return "health check of " + t.address + ": connect: " + cec.message();
    if (t.tls) {
        const auto hec = co_await s.handshake_client(*static_cast<asio::ssl::context*>(t.tls.get()), t.tls_name, t.tls_verify);
        if (hec) co_return "health check of " + t.address + ": TLS: " + hec.message();
    }
    const std::string req = "GET " + settings.path + " HTTP/1.1\r\nHost: " + t.address +
                            "\r\nUser-Agent: veer-health\r\nConnection: close\r\n\r\n";
    auto [wec, wn] = co_await s.write(asio::buffer(req));
    if (wec) co_return "health check of " + t.address + ": write: " + wec.message();
    char buf[64];
    std::size_t got = 0;
    while (got < 12) {
        auto [rec, rn] = co_await s.read_some(asio::buffer(buf + got, sizeof buf - got));
        if (rec) co_return "health check of " + t.address + ": " + (rec == beast::error::timeout ? "timed out" : rec.message());
        got += rn;
    }
    const std::string_view line(buf, got);
    if (line.substr(0, 5) != "HTTP/" || line[8] != ' ') co_return "health check of " + t.address + ": not HTTP";
    const char c = line[9];
    if (c != '2' && c != '3') co_return "health check of " + t.address + ": status " + std::string(line.substr(9, 3));
    co_return "";
}

}  // namespace veer::health
