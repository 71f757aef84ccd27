#include "proxy/tls_conn.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstring>

namespace veer::proxy {

// The BIO OpenSSL reads and writes records through: reads take from the staging buffer
// (none there: "retry", and the caller reads the socket), writes append to the output.
struct tls_bio {
    static tls_conn& conn(BIO* b) { return *static_cast<tls_conn*>(BIO_get_data(b)); }

    static int read(BIO* b, char* out, int len) {
        auto& c = conn(b);
        BIO_clear_retry_flags(b);
        const auto have = c.in_.view();
        if (have.empty()) {
            BIO_set_retry_read(b);
            return -1;
        }
        const std::size_t n = std::min(have.size(), static_cast<std::size_t>(len));
        std::memcpy(out, have.data(), n);
        c.in_.consume(n);
        return static_cast<int>(n);
    }

    static int write(BIO* b, const char* data, int len) {
        conn(b).out_.append(data, static_cast<std::size_t>(len));
        return len;
    }

    static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

    static BIO_METHOD* method() {
        static BIO_METHOD* m = [] {
            auto* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "veer-tls");
            BIO_meth_set_read(bm, &read);
            BIO_meth_set_write(bm, &write);
            BIO_meth_set_ctrl(bm, &ctrl);
            return bm;
        }();
        return m;
    }
};

tls_conn::tls_conn(tcp_socket& sock, SSL_CTX* ctx, buffer_pool* pool)
    : sock_(&sock), ssl_(SSL_new(ctx)), pool_(pool), write_done_(sock.get_executor()) {
    BIO* bio = BIO_new(tls_bio::method());
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; SSL_free frees it
}

tls_conn::~tls_conn() {
    SSL_free(ssl_);
    give_back_staging();
}

void tls_conn::take_staging() {
    if (in_) return;
    in_ = pool_ ? pool_->get() : io_buffer::on_heap(buffer_size);
}

void tls_conn::give_back_staging() {
    if (pool_)
        pool_->put(in_);
    else
        in_ = io_buffer();
}

void tls_conn::expect_peer(const std::string& name, bool verify) {
    boost::system::error_code not_ip;
    asio::ip::make_address(name, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(ssl_, name.c_str());
    if (!verify) return;
    if (not_ip)
        SSL_set1_host(ssl_, name.c_str());
    else
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str());
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, nullptr);
}

template <class Op>
task<std::pair<int, boost::system::error_code>> tls_conn::drive(Op op) {
    for (;;) {
        ERR_clear_error();
        const int ret = op();
        const int err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, ret);
        // Taken now: the error queue is the thread's, and others run during the flush.
        const auto failure = failed(ret, err);
        // What OpenSSL wrote (handshake records, tickets, alerts, data) goes out first.
        if (!out_.empty()) {
            const auto ec = co_await flush();
            if (ec) co_return std::pair{ret, ec};
        }
        if (err == SSL_ERROR_NONE) co_return std::pair{ret, boost::system::error_code{}};
        if (err == SSL_ERROR_WANT_WRITE) continue;  // never: writes only append
        if (err != SSL_ERROR_WANT_READ) co_return std::pair{ret, failure};
        const auto ec = co_await fill();
        if (ec) co_return std::pair{ret, ec};
    }
}

task<boost::system::error_code> tls_conn::fill() {
    if (!in_) {
        // Buffers were given back while idle: wait for the peer without one.
        auto [ec] = co_await sock_->async_wait(tcp_socket::wait_read, nothrow);
        if (ec) co_return ec;
        take_staging();
    }
    std::size_t room = 0;
    char* p = in_.space(room);  // OpenSSL takes what it is given: never full
    auto [ec, n] = co_await sock_->async_read_some(asio::buffer(p, room), nothrow);
    in_.commit(n);
    // The socket ended while OpenSSL wanted more: no close_notify came (that would have been
    // ZERO_RETURN), so the stream was cut, not finished (as asio::ssl::stream reports it).
    if (ec == asio::error::eof) co_return asio::ssl::error::stream_truncated;
    co_return ec;
}

// One read and one write may be in progress at once (a tunnel, HTTP/2's reader and
// writer), and OpenSSL may write during either: the first to flush sends, and whoever
// comes meanwhile waits for that write, whose loop sends their bytes too.
task<boost::system::error_code> tls_conn::flush() {
    if (writing_) {
        while (writing_) {
            write_done_.expires_at(timer::time_point::max());
            co_await write_done_.async_wait(nothrow);
        }
        co_return write_error_;
    }
    writing_ = true;
    while (!out_.empty() && !write_error_) {
        sending_.swap(out_);
        auto [ec, n] = co_await asio::async_write(*sock_, asio::buffer(sending_), nothrow);
        sending_.clear();
        write_error_ = ec;
    }
    writing_ = false;
    write_done_.cancel();
    co_return write_error_;
}

// As asio::ssl::stream reports them: a clean close_notify is eof, a close without one
// stream_truncated, OpenSSL's own errors in the SSL category.
boost::system::error_code tls_conn::failed(int ret, int ssl_error) {
    const bool fine = ssl_error == SSL_ERROR_NONE || ssl_error == SSL_ERROR_WANT_READ ||
                      ssl_error == SSL_ERROR_WANT_WRITE;
    return fine ? boost::system::error_code{} : error_of(ret, ssl_error);
}

boost::system::error_code tls_conn::error_of(int ret, int ssl_error) {
    if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
    const unsigned long e = ERR_get_error();
    if (e) return {static_cast<int>(e), asio::error::get_ssl_category()};
    if (ssl_error == SSL_ERROR_SYSCALL && ret == 0) return asio::ssl::error::stream_truncated;
    return asio::ssl::error::unspecified_system_error;
}

task<boost::system::error_code> tls_conn::handshake(bool server) {
    take_staging();  // the peer's first flight is on its way
    SSL_set_read_ahead(ssl_, 1);  // a whole read's records at once, not header then body
    if (server)
        SSL_set_accept_state(ssl_);
    else
        SSL_set_connect_state(ssl_);
    auto [ret, ec] = co_await drive([this] { return SSL_do_handshake(ssl_); });
    co_return ec;
}

// read_some is one coroutine on its common path (records in hand): coroutine frames, more
// than OpenSSL, were what a small request cost here.
task<tls_conn::result> tls_conn::read_some(asio::mutable_buffer b) {
    if (b.size() == 0) co_return result{};
    const int len = static_cast<int>(std::min<std::size_t>(b.size(), 1 << 30));
    for (;;) {
        ERR_clear_error();
        const int ret = SSL_read(ssl_, b.data(), len);
        const int err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, ret);
        const auto failure = failed(ret, err);  // before the flush (see drive)
        if (!out_.empty()) {  // OpenSSL answered something (tickets, a key update, an alert)
            const auto ec = co_await flush();
            if (ec) co_return result{ec, 0};
        }
        if (err == SSL_ERROR_NONE)
            co_return result{boost::system::error_code{}, static_cast<std::size_t>(ret)};
        if (err != SSL_ERROR_WANT_READ) co_return result{failure, 0};
        const auto ec = co_await fill();
        if (ec) co_return result{ec, 0};
    }
}

task<tls_conn::result> tls_conn::write(asio::const_buffer b) {
    // In pieces: the output buffer holds about one piece's records at a time.
    constexpr std::size_t piece = 64 * 1024;
    std::size_t done = 0;
    while (done < b.size()) {
        const int len = static_cast<int>(std::min(piece, b.size() - done));
        ERR_clear_error();
        const int ret = SSL_write(ssl_, static_cast<const char*>(b.data()) + done, len);
        if (ret <= 0) co_return result{error_of(ret, SSL_get_error(ssl_, ret)), done};
        done += static_cast<std::size_t>(ret);  // our BIO takes all: never WANT_WRITE
        const auto ec = co_await flush();
        if (ec) co_return result{ec, done};
    }
    co_return result{boost::system::error_code{}, done};
}

task<tls_conn::result> tls_conn::write(const std::array<asio::const_buffer, 2>& b) {
    const std::size_t total = b[0].size() + b[1].size();
    if (total <= 16 * 1024) {  // a head and a small body: one record, as one buffer would be
        plain_.assign(static_cast<const char*>(b[0].data()), b[0].size());
        plain_.append(static_cast<const char*>(b[1].data()), b[1].size());
        auto r = co_await write(asio::buffer(plain_));
        plain_.clear();
        co_return r;
    }
    auto [ec, n] = co_await write(b[0]);
    if (ec || b[1].size() == 0) co_return result{ec, n};
    auto [ec2, n2] = co_await write(b[1]);
    co_return result{ec2, n + n2};
}

task<> tls_conn::shutdown() {
    if (SSL_in_init(ssl_)) co_return;  // never finished its handshake: nothing to close
    ERR_clear_error();
    SSL_shutdown(ssl_);  // close_notify into out_; the peer's is not awaited
    if (!out_.empty()) co_await flush();
}

task<boost::system::error_code> tls_conn::wait_readable() {
    if (SSL_has_pending(ssl_) || !in_.empty()) co_return boost::system::error_code{};
    auto [ec] = co_await sock_->async_wait(tcp_socket::wait_read, nothrow);
    co_return ec;
}

bool tls_conn::idle() const {
    return in_.empty() && !SSL_has_pending(ssl_) && out_.empty() && !writing_;
}

void tls_conn::notify_close_now() {
    if (SSL_in_init(ssl_)) return;
    ERR_clear_error();
    SSL_shutdown(ssl_);
    boost::system::error_code ec;
    sock_->send(asio::buffer(out_), 0, ec);  // non-blocking: what does not fit is dropped
    out_.clear();
}

void tls_conn::release_buffers() {
    if (in_.empty()) give_back_staging();
    if (out_.empty()) std::string().swap(out_);
    if (!writing_) std::string().swap(sending_);
    std::string().swap(plain_);
}

}  // namespace veer::proxy
