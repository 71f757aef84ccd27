#include "proxy/tls_session.hpp"

#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>

#include <cerrno>
#include <climits>

namespace veer::proxy {
namespace {

// What a failed SSL_* call means, as Asio's TLS stream would have said it: a clean
// close_notify is eof, a peer gone without one is stream_truncated.
boost::system::error_code error_of(int ssl_error) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
    const unsigned long e = ERR_get_error();
    if (ssl_error == SSL_ERROR_SYSCALL && e == 0) {
        if (errno != 0) return {errno, boost::system::system_category()};
        return asio::ssl::error::stream_truncated;
    }
    if (e != 0 && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return asio::ssl::error::stream_truncated;
    if (e != 0) return {static_cast<int>(e), asio::error::get_ssl_category()};
    return asio::error::fault;
}

int clamp(std::size_t n) { return n > INT_MAX ? INT_MAX : static_cast<int>(n); }

}  // namespace

tls_session::tls_session(tcp_socket& sock, SSL_CTX* ctx) : sock_(sock), ssl_(SSL_new(ctx)) {
    if (!ssl_) throw std::bad_alloc();
    SSL_set_fd(ssl_, static_cast<int>(sock_.native_handle()));
    SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    boost::system::error_code ec;
    sock_.native_non_blocking(true, ec);  // OpenSSL's own reads and writes must not block
}

tls_session::~tls_session() { SSL_free(ssl_); }

template <class Step>
task<std::tuple<boost::system::error_code, int>> tls_session::drive(Step step) {
    for (;;) {
        // A deadline or an abort closes the socket under a session (stream::expire_if_due):
        // its descriptor number may belong to a new connection by now, so OpenSSL must
        // never touch it again.
        if (!sock_.is_open())
            co_return std::tuple<boost::system::error_code, int>{asio::error::bad_descriptor, 0};
        ERR_clear_error();
        errno = 0;
        const int r = step();
        if (r > 0) co_return std::tuple<boost::system::error_code, int>{boost::system::error_code(), r};
        const int err = SSL_get_error(ssl_, r);
        if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
            co_return std::tuple<boost::system::error_code, int>{error_of(err), 0};
        // Nothing can arrive between OpenSSL's EAGAIN and this wait: the reactor runs on
        // this thread, and the edge that new bytes make is still to come.
        auto [ec] = co_await sock_.async_wait(err == SSL_ERROR_WANT_READ ? tcp_socket::wait_read : tcp_socket::wait_write,
                                              nothrow);
        if (ec) co_return std::tuple<boost::system::error_code, int>{ec, 0};
    }
}

task<boost::system::error_code> tls_session::handshake(bool server) {
    if (server) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
    auto [ec, r] = co_await drive([this] { return SSL_do_handshake(ssl_); });
    co_return ec;
}

task<tls_session::result> tls_session::read_some(asio::mutable_buffer b) {
    if (b.size() == 0) co_return result{};
    auto [ec, n] = co_await drive([this, b] { return SSL_read(ssl_, b.data(), clamp(b.size())); });
    co_return result{ec, ec ? 0 : static_cast<std::size_t>(n)};
}

task<tls_session::result> tls_session::write(asio::const_buffer b) {
    std::size_t done = 0;
    while (done < b.size()) {
        const char* p = static_cast<const char*>(b.data()) + done;
        const int len = clamp(b.size() - done);
        auto [ec, n] = co_await drive([this, p, len] { return SSL_write(ssl_, p, len); });
        if (ec) co_return result{ec, done};
        done += static_cast<std::size_t>(n);
    }
    co_return result{boost::system::error_code(), done};
}

task<tls_session::result> tls_session::write(std::array<asio::const_buffer, 2> b) {
    auto [ec, n] = co_await write(b[0]);
    if (ec || b[1].size() == 0) co_return result{ec, n};
    auto [ec2, n2] = co_await write(b[1]);
    co_return result{ec2, n + n2};
}

task<> tls_session::shutdown() {
    // 0 means sent, the peer's not received yet: enough, the connection closes next.
    co_await drive([this] {
        const int r = SSL_shutdown(ssl_);
        return r == 0 ? 1 : r;
    });
}

}  // namespace veer::proxy
