// A connection's byte stream: TCP, with TLS on top when the listener or the pool asks for
// it. read_some/write return the underlying operation's awaitable directly (no coroutine
// of their own), so plain TCP pays nothing for the TLS option.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
#include <string>
#include <tuple>

namespace veer::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;

class stream {
public:
    using tls_stream = asio::ssl::stream<beast::tcp_stream&>;
    using result = std::tuple<boost::system::error_code, std::size_t>;

    explicit stream(asio::ip::tcp::socket s) : tcp_(std::move(s)) {}
    explicit stream(const asio::any_io_executor& ex) : tcp_(ex) {}

    beast::tcp_stream& tcp() { return tcp_; }
    tls_stream* tls() { return tls_.get(); }
    void use_tls(asio::ssl::context& ctx) { tls_ = std::make_unique<tls_stream>(tcp_, ctx); }

    // Client side of TLS to an upstream, within the deadline the caller set on tcp():
    // SNI `name` unless it is an IP literal (RFC 6066 forbids those), and with `verify`
    // the certificate must be valid for `name` (a DNS name or an IP SAN).
    asio::awaitable<boost::system::error_code> handshake_client(asio::ssl::context& ctx, const std::string& name,
                                                                bool verify) {
        use_tls(ctx);
        boost::system::error_code not_ip;
        asio::ip::make_address(name, not_ip);
        if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
        if (verify) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
        auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
        co_return ec;
    }

    // Sends TLS close_notify before the connection closes (RFC 8446 6.1), so a client can
    // tell a complete close-delimited body from a cut one. Bounded by `limit`.
    template <class Duration>
    asio::awaitable<void> close_tls(Duration limit) {
        if (!tls_) co_return;
        tcp_.expires_after(limit);
        co_await tls_->async_shutdown(asio::as_tuple(asio::use_awaitable));
    }

    template <class MutableBuffer>
    asio::awaitable<result> read_some(const MutableBuffer& b) {
        if (tls_) return tls_->async_read_some(b, asio::as_tuple(asio::use_awaitable));
        return tcp_.async_read_some(b, asio::as_tuple(asio::use_awaitable));
    }
    template <class ConstBuffers>
    asio::awaitable<result> write(const ConstBuffers& b) {
        if (tls_) return asio::async_write(*tls_, b, asio::as_tuple(asio::use_awaitable));
        return asio::async_write(tcp_, b, asio::as_tuple(asio::use_awaitable));
    }

private:
    beast::tcp_stream tcp_;
    std::unique_ptr<tls_stream> tls_;
};

}  // namespace veer::proxy
