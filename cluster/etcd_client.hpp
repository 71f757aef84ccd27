// veer's own small etcd v3 client: JSON over HTTP/1.1 to the gateway etcd serves on its
// client URLs (POST /v3/kv/range, /v3/kv/txn, /v3/lease/grant, /v3/watch, ...). Runs on
// the control thread's event loop; every call has a deadline, keeps its connection alive
// for the next one, and fails over to the next endpoint when one cannot be reached. No
// gRPC stack: the fleet's traffic to etcd is a few small requests a second.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>
#include <boost/json/stream_parser.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace veer::cluster {

class etcd_client {
public:
    struct reply {
        boost::json::object body;
        std::string error;  // empty on success: names the endpoint and the cause

        bool ok() const { return error.empty(); }
    };
    // A watch message ("result" unwrapped); returning false ends the watch.
    using watch_handler = std::function<bool(const boost::json::object&)>;

    // `urls` are "http://host:port"; each call gives up after `timeout`.
    etcd_client(boost::asio::io_context& ioc, std::vector<std::string> urls,
                std::chrono::milliseconds timeout);
    ~etcd_client();

    // POST /v3/<method> (e.g. "kv/txn") with `body`. An HTTP error's body is the error.
    boost::asio::awaitable<reply> call(std::string_view method, const boost::json::object& body);

    // POST /v3/watch with {"create_request": create} and hands every message to `on_message`
    // until the stream ends or fails (the reason comes back), the handler says stop, or
    // cancel_watch() is called. One watch at a time.
    boost::asio::awaitable<std::string> watch(const boost::json::object& create,
                                              watch_handler on_message);
    void cancel_watch();

    // The endpoint calls go to now.
    const std::string& current() const { return urls_[current_]; }

private:
    struct connection;
    struct attempt {
        reply r;
        bool transport = false;  // the request or its reply was lost: try elsewhere
        bool keep = false;  // the connection may carry the next call
    };

    boost::asio::awaitable<std::unique_ptr<connection>> connect(std::size_t endpoint,
                                                                std::string& error);
    boost::asio::awaitable<attempt> exchange(connection& c, std::string_view method,
                                             const std::string& body);
    static std::pair<std::size_t, bool> take_messages(const std::string& text,
                                                      boost::json::stream_parser& messages,
                                                      const watch_handler& on_message,
                                                      std::string& error);

    boost::asio::io_context& ioc_;
    std::vector<std::string> urls_;
    std::chrono::milliseconds timeout_;
    std::size_t current_ = 0;
    std::vector<std::unique_ptr<connection>> idle_;
    connection* watching_ = nullptr;
    bool watch_cancelled_ = false;  // cancel_watch() came while the watch was connecting
};

}  // namespace veer::cluster
