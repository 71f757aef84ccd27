// TLS on a connection's own socket, without asio::ssl::stream. OpenSSL reads its records
// through a BIO of ours from a staging buffer that the reactor's reads fill, and writes
// them into an output buffer that the reactor's writes send. asio::ssl::stream keeps two
// 17 KiB engine buffers and a BIO pair per connection (an idle TLS connection held about
// 72 KiB); here an idle connection gives its buffers back (release_buffers) and holds only
// OpenSSL's SSL object, whose record buffers are freed while empty (SSL_MODE_RELEASE_BUFFERS).
// A read that finds bytes is one recv, as for plain TCP.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <memory>
#include <string>
#include <tuple>

#include "proxy/io_buffer.hpp"
#include "proxy/io_types.hpp"

namespace veer::proxy {

class tls_conn {
public:
    using result = std::tuple<boost::system::error_code, std::size_t>;

    // `pool`: where the staging buffer comes from and goes back to (a worker's, which
    // outlives the connection); none: the connection allocates its own.
    tls_conn(tcp_socket& sock, SSL_CTX* ctx, buffer_pool* pool = nullptr);
    ~tls_conn();
    tls_conn(const tls_conn&) = delete;
    tls_conn& operator=(const tls_conn&) = delete;

    SSL* native_handle() { return ssl_; }
    // Client side only, before the handshake: SNI `name` (unless an IP literal, RFC 6066),
    // and with `verify` the peer's certificate must be valid for it (DNS name or IP SAN).
    void expect_peer(const std::string& name, bool verify);

    task<boost::system::error_code> handshake(bool server);
    task<result> read_some(asio::mutable_buffer b);
    task<result> write(asio::const_buffer b);
    task<result> write(const std::array<asio::const_buffer, 2>& b);
    // Sends close_notify (RFC 8446 6.1); does not wait for the peer's.
    task<> shutdown();
    // Frees the staging and output buffers if they hold nothing: the connection idles.
    void release_buffers();
    // Until a read would find something: OpenSSL's own bytes, or the socket's.
    task<boost::system::error_code> wait_readable();
    // Nothing read and not yet taken, nothing to send: the connection can wait for the
    // socket alone (a parked connection, worker::park).
    bool idle() const;
    // The socket moved (a connection parked or woken): its new place.
    void rebind(tcp_socket& sock) { sock_ = &sock; }
    // close_notify in one non-blocking send, for a parked connection closed for idling.
    void notify_close_now();

private:
    friend struct tls_bio;
    // Runs `op` (an SSL_* call) until it no longer wants the socket: what OpenSSL wrote
    // goes out, and what it wants to read is read. Returns op's result and the error.
    template <class Op>
    task<std::pair<int, boost::system::error_code>> drive(Op op);
    task<boost::system::error_code> fill();
    void take_staging();
    void give_back_staging();
    task<boost::system::error_code> flush();
    boost::system::error_code error_of(int ret, int ssl_error);
    // error_of, for an error that is one (not a want-read or want-write).
    boost::system::error_code failed(int ret, int ssl_error);

    tcp_socket* sock_;
    SSL* ssl_ = nullptr;
    // Ciphertext read, not yet taken by OpenSSL. A pool's buffer: 17 KiB from the heap per
    // connection, freed when it idled, left holes between OpenSSL's objects that kept
    // about 4 KiB more per idle connection in RSS.
    io_buffer in_;
    buffer_pool* pool_;
    std::string out_;  // ciphertext OpenSSL wrote, not yet sent
    std::string sending_;  // what the write in progress sends
    bool writing_ = false;
    boost::system::error_code write_error_;  // a failed write fails every later one
    timer write_done_;  // others' flushes wait here for the write in progress
    std::string plain_;  // two pieces joined into one record
};

}  // namespace veer::proxy
