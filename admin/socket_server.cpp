#include "admin/socket_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

namespace veer::admin {
namespace {

namespace asio = boost::asio;
using unix_socket = asio::local::stream_protocol;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Whether something accepts connections on `path`.
bool answers(const std::string& path) {
    asio::io_context ioc;
    unix_socket::socket s(ioc);
    boost::system::error_code ec;
    s.connect(unix_socket::endpoint(path), ec);
    return !ec;
}

}  // namespace

socket_server::socket_server(asio::io_context& ioc, const std::string& path, unsigned mode,
                             handler h)
    : ioc_(ioc), path_(path), acceptor_(ioc), handler_(std::move(h)) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw std::runtime_error("admin.socket: " + path + " exists and is not a socket");
        if (answers(path))
            throw std::runtime_error("admin.socket: a live veer already answers on " + path);
        ::unlink(path.c_str());  // stale: its veer is gone
    }
    acceptor_.open(unix_socket());
    const mode_t old = ::umask(~static_cast<mode_t>(mode) & 0777);
    boost::system::error_code ec;
    acceptor_.bind(unix_socket::endpoint(path), ec);
    ::umask(old);
    if (ec) throw std::runtime_error("admin.socket: cannot bind " + path + ": " + ec.message());
    ::chmod(path.c_str(), static_cast<mode_t>(mode));
    acceptor_.listen(64);
}

socket_server::~socket_server() { close(); }

void socket_server::start() { asio::co_spawn(ioc_, accept_loop(), asio::detached); }

void socket_server::close() {
    if (!acceptor_.is_open()) return;
    boost::system::error_code ec;
    acceptor_.close(ec);
    ::unlink(path_.c_str());
}

asio::awaitable<void> socket_server::accept_loop() {
    for (;;) {
        auto [ec, s] = co_await acceptor_.async_accept(nothrow);
        if (!acceptor_.is_open()) co_return;
        if (ec) continue;
        asio::co_spawn(ioc_, serve(std::move(s)), asio::detached);
    }
}

asio::awaitable<void> socket_server::serve(unix_socket::socket s) {
    asio::streambuf buf(max_line + 1);
    for (;;) {
        auto [ec, n] = co_await asio::async_read_until(s, buf, '\n', nothrow);
        if (ec == asio::error::not_found || (ec && buf.size() > max_line)) {
            // Over-long: say so and hang up, the rest of the line is not worth reading.
            static constexpr std::string_view too_long =
                "{\"ok\":false,\"error\":\"line longer than 4096 bytes\"}\n";
            co_await asio::async_write(s, asio::buffer(too_long), nothrow);
            co_return;
        }
        if (ec) co_return;
        std::string line(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n - 1);
        buf.consume(n);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string answer = co_await handler_(std::move(line));
        answer.push_back('\n');
        auto [wec, wn] = co_await asio::async_write(s, asio::buffer(answer), nothrow);
        if (wec) co_return;
    }
}

}  // namespace veer::admin
