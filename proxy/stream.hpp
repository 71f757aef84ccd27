// A connection's byte stream: TCP, with TLS on top when the listener or the pool asks for
// it. read_some/write return the underlying operation's awaitable directly (no coroutine
// of their own), so plain TCP pays nothing for the TLS option.
//
// Deadlines are numbers, not timers: expires_after() stores one, and whoever owns the
// stream calls expire_if_due() from a periodic sweep (worker::idle_sweeper for the data
// path). A timer armed and cancelled per read and write cost more than the reads did.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>

#include <time.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <tuple>

#include "proxy/io_types.hpp"
#include "proxy/tls_conn.hpp"

namespace veer::proxy {

// A monotonic clock of a few milliseconds' resolution that costs a vDSO read and no TSC
// access: precise enough for deadlines of tens of milliseconds and up.
inline std::int64_t coarse_now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class stream {
public:
    using result = std::tuple<boost::system::error_code, std::size_t>;
    static constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

    explicit stream(tcp_socket s) : sock_(std::move(s)) {}
    explicit stream(const executor& ex) : sock_(ex) {}

    tcp_socket& sock() { return sock_; }
    tls_conn* tls() { return tls_.get(); }
    void use_tls(asio::ssl::context& ctx, buffer_pool* pool = nullptr) {
        tls_ = std::make_unique<tls_conn>(sock_, ctx.native_handle(), pool);
    }
    // TLS state leaving with the socket (a parked connection), or coming back with it.
    std::unique_ptr<tls_conn> release_tls() { return std::move(tls_); }
    void adopt_tls(std::unique_ptr<tls_conn> t) {
        tls_ = std::move(t);
        if (tls_) tls_->rebind(sock_);
    }

    // The deadline of the operations that follow, until the next call.
    template <class Duration>
    void expires_after(Duration d) {
        deadline_ns_ =
            coarse_now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    }
    void expires_never() { deadline_ns_ = never; }
    // Past its deadline, the socket is closed, which fails whatever waits on it; timed_out()
    // then tells that failure from others. True if it expired now.
    bool expire_if_due(std::int64_t now_ns) {
        if (now_ns < deadline_ns_) return false;
        deadline_ns_ = never;
        timed_out_ = true;
        boost::system::error_code ec;
        sock_.close(ec);
        return true;
    }
    bool timed_out() const { return timed_out_; }

    // Client side of TLS to an upstream, within the deadline the caller set: SNI `name`
    // unless it is an IP literal (RFC 6066 forbids those), and with `verify` the
    // certificate must be valid for `name` (a DNS name or an IP SAN).
    task<boost::system::error_code> handshake_client(asio::ssl::context& ctx,
                                                     const std::string& name, bool verify) {
        use_tls(ctx);
        tls_->expect_peer(name, verify);
        return tls_->handshake(false);
    }

    // Sends TLS close_notify before the connection closes (RFC 8446 6.1), so a client can
    // tell a complete close-delimited body from a cut one. Bounded by `limit`.
    template <class Duration>
    task<> close_tls(Duration limit) {
        if (!tls_) co_return;
        expires_after(limit);
        co_await tls_->shutdown();
    }

    task<result> read_some(asio::mutable_buffer b) {
        if (tls_) return tls_->read_some(b);
        return sock_.async_read_some(b, nothrow);
    }
    task<result> write(asio::const_buffer b) {
        if (tls_) return tls_->write(b);
        return asio::async_write(sock_, b, nothrow);
    }
    // Two pieces, the second maybe empty: then a plain send of the first, which costs the
    // kernel less than a sendmsg of two.
    task<result> write(const std::array<asio::const_buffer, 2>& b) {
        if (b[1].size() == 0) return write(b[0]);
        if (tls_) return tls_->write(b);
        return asio::async_write(sock_, b, nothrow);
    }

private:
    tcp_socket sock_;
    std::unique_ptr<tls_conn> tls_;
    std::int64_t deadline_ns_ = never;
    bool timed_out_ = false;
};

}  // namespace veer::proxy
