// The admin socket: a Unix stream socket, one command per line in, one JSON object per
// line out. Runs on the control thread's event loop.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <functional>
#include <string>

namespace veer::admin {

class socket_server {
public:
    // One JSON object per line; a coroutine, since a fleet command waits for etcd.
    using handler = std::function<boost::asio::awaitable<std::string>(std::string line)>;

    // Creates the socket at `path` with `mode` (umask around bind, so it is never open to
    // others, even for an instant). A stale file from a dead veer is replaced; a live veer
    // answering on it is an error (std::runtime_error).
    socket_server(boost::asio::io_context& ioc, const std::string& path, unsigned mode, handler h);
    ~socket_server();
    void start();
    void close();

    static constexpr std::size_t max_line = 4096;

private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::local::stream_protocol::socket s);

    boost::asio::io_context& ioc_;
    std::string path_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    handler handler_;
};

}  // namespace veer::admin
