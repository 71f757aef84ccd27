#include "control/notifier.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "control/log.hpp"
#include "proxy/http/codec.hpp"

namespace veer::control {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

void notifier::set_url(const std::string& url) {
    host_.clear();
    if (url.rfind("http://", 0) != 0) return;
    auto rest = url.substr(7);
    const auto slash = rest.find('/');
    path_ = slash == std::string::npos ? "/" : rest.substr(slash);
    auto authority = rest.substr(0, slash);
    const auto colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
        port_ = authority.substr(colon + 1);
        authority = authority.substr(0, colon);
    } else {
        port_ = "80";
    }
    if (authority.size() > 2 && authority.front() == '[')
        authority = authority.substr(1, authority.size() - 2);
    host_ = authority;
}

void notifier::post(std::string json_body) {
    if (host_.empty()) return;
    if (queue_.size() >= max_queue) {
        ++dropped_;
        return;
    }
    queue_.push_back(std::move(json_body));
    if (!sending_) {
        sending_ = true;
        asio::co_spawn(ioc_, drain_queue(), asio::detached);
    }
}

asio::awaitable<void> notifier::drain_queue() {
    asio::steady_timer backoff(ioc_);
    while (!queue_.empty() && !host_.empty()) {
        bool ok = false;
        auto delay = std::chrono::milliseconds(250);
        for (int attempt = 0; attempt < max_tries && !ok; ++attempt) {
            if (attempt > 0) {
                backoff.expires_after(delay);
                co_await backoff.async_wait(nothrow);
                delay *= 2;
            }
            ok = co_await send_one(queue_.front());
        }
        if (ok) {
            ++sent_;
        } else {
            ++dropped_;
            log("warn", "webhook gave up on an event", {{"host", host_}, {"tries", max_tries}});
        }
        queue_.pop_front();
    }
    sending_ = false;
}

asio::awaitable<bool> notifier::send_one(const std::string& body) {
    asio::ip::tcp::resolver resolver(ioc_);
    auto [rec, results] = co_await resolver.async_resolve(host_, port_, nothrow);
    if (rec) co_return false;
    beast::tcp_stream s(ioc_);
    s.expires_after(std::chrono::seconds(5));
    auto [cec, ep] = co_await s.async_connect(results, nothrow);
    if (cec) co_return false;
    const std::string req =
        "POST " + path_ + " HTTP/1.1\r\nHost: " + host_ + ":" + port_ +
        "\r\nUser-Agent: veer\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    auto [wec, wn] = co_await asio::async_write(s, asio::buffer(req), nothrow);
    if (wec) co_return false;
    std::string head;
    int status = 0;
    for (;;) {
        const auto st = proxy::http::response_status(head, 16 * 1024, status);
        if (st == proxy::http::parse_status::failed) co_return false;
        if (st == proxy::http::parse_status::done) co_return status >= 200 && status < 300;
        char buf[1024];
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), nothrow);
        if (ec) co_return false;
        head.append(buf, n);
    }
}

}  // namespace veer::control
