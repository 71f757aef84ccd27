// TLS driven directly on a connection's non-blocking socket, as nginx and HAProxy do it:
// OpenSSL reads and writes the descriptor itself, and when it wants the socket to be
// readable or writable first, the coroutine waits for that. Unlike asio::ssl::stream
// there is no BIO pair and no engine buffer in between (about 68 KiB a connection), and
// with SSL_MODE_RELEASE_BUFFERS an idle connection holds only OpenSSL's session state.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <tuple>

#include "proxy/io.hpp"

namespace veer::proxy {

class tls_session {
public:
    using result = std::tuple<boost::system::error_code, std::size_t>;

    tls_session(tcp_socket& sock, SSL_CTX* ctx);
    ~tls_session();
    tls_session(const tls_session&) = delete;
    tls_session& operator=(const tls_session&) = delete;

    SSL* native_handle() { return ssl_; }

    task<boost::system::error_code> handshake(bool server);
    task<result> read_some(asio::mutable_buffer b);
    // Writes all of each buffer, in order.
    task<result> write(asio::const_buffer b);
    task<result> write(std::array<asio::const_buffer, 2> b);
    // Sends close_notify (without waiting for the peer's).
    task<> shutdown();

private:
    // Calls `step` (an SSL_* function) until it returns > 0, waiting for the socket when
    // OpenSSL wants it; the error when it fails for good.
    template <class Step>
    task<std::tuple<boost::system::error_code, int>> drive(Step step);

    tcp_socket& sock_;
    SSL* ssl_;
};

}  // namespace veer::proxy
