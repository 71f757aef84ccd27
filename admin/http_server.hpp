// The read-only admin HTTP listener (admin.http): GET /metrics, /status, /healthz and the
// status page. Runs on the control thread; one short request per connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <string>

namespace veer::admin {

struct http_response {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

class http_server {
public:
    using handler = std::function<http_response(std::string_view path)>;
    // Throws std::runtime_error if `address` cannot be bound.
    http_server(boost::asio::io_context& ioc, const std::string& address, handler h);
    void start();

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket s);

    boost::asio::io_context& ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    handler handler_;
};

}  // namespace veer::admin
