// A connection's byte stream: TCP, with TLS on top when the listener or the pool asks for
// it. read_some/write return the underlying operation's awaitable directly (no coroutine
// of their own), so plain TCP pays nothing for the TLS option.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <memory>
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
