#include "admin/http_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <stdexcept>

#include "proxy/http/codec.hpp"
#include "proxy/address.hpp"

namespace veer::admin {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

http_server::http_server(asio::io_context& ioc, const std::string& address, handler h)
    : ioc_(ioc), acceptor_(ioc), handler_(std::move(h)) {
    const auto parsed = proxy::parse_tcp(address);
    if (!parsed) throw std::runtime_error("admin.http: not an IP:port: " + address);
    const tcp::endpoint at = *parsed;
    boost::system::error_code ec;
    acceptor_.open(at.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec)
        throw std::runtime_error("admin.http: cannot listen on " + address + ": " + ec.message());
}

void http_server::start() { asio::co_spawn(ioc_, accept_loop(), asio::detached); }

asio::awaitable<void> http_server::accept_loop() {
    for (;;) {
        auto [ec, s] = co_await acceptor_.async_accept(nothrow);
        if (!acceptor_.is_open()) co_return;
        if (ec) continue;
        asio::co_spawn(ioc_, serve(std::move(s)), asio::detached);
    }
}

asio::awaitable<void> http_server::serve(tcp::socket socket) {
    beast::tcp_stream s(std::move(socket));
    s.expires_after(std::chrono::seconds(10));
    std::string buf(8192, '\0');
    std::size_t got = 0;
    proxy::http::request_head req;
    std::string out;
    for (;;) {
        auto [ec, n] =
            co_await s.async_read_some(asio::buffer(buf.data() + got, buf.size() - got), nothrow);
        if (ec) co_return;
        got += n;
        const auto r = proxy::http::parse_request({buf.data(), got}, buf.size(), req);
        if (r.status == proxy::http::parse_status::incomplete) continue;
        if (r.status == proxy::http::parse_status::failed) {
            proxy::http::write_simple_response(proxy::http::status_of(r.err), true, "bad request\n",
                                               out);
            break;
        }
        if (req.method != "GET" && req.method != "HEAD") {
            out =
                "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Length: 19\r\n"
                "Connection: close\r\n\r\nmethod not allowed\n";
            break;
        }
        auto path = req.target.substr(0, req.target.find('?'));
        const auto resp = handler_(path);
        out = "HTTP/1.1 " + std::to_string(resp.status) + " " +
              std::string(proxy::http::reason_of(resp.status)) +
              "\r\nContent-Type: " + resp.content_type +
              "\r\nContent-Length: " + std::to_string(resp.body.size()) +
              "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
        if (!req.is_head) out += resp.body;
        break;
    }
    co_await asio::async_write(s, asio::buffer(out), nothrow);
    boost::system::error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace veer::admin
