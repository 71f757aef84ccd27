// notify.webhook: every event POSTed as JSON, from a bounded queue on the control
// thread, retried with backoff. Never touches the data path; a full queue drops (and
// counts) the newest event rather than grow.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <deque>
#include <string>

namespace veer::control {

class notifier {
public:
    static constexpr std::size_t max_queue = 1000;
    static constexpr int max_tries = 5;

    notifier(boost::asio::io_context& ioc) : ioc_(ioc) {}
    // "" turns it off. Only http:// URLs (config validation guarantees it).
    void set_url(const std::string& url);
    void post(std::string json_body);

    std::uint64_t sent() const { return sent_; }
    std::uint64_t dropped() const { return dropped_; }
    std::size_t queued() const { return queue_.size(); }

private:
    boost::asio::awaitable<void> drain_queue();
    boost::asio::awaitable<bool> send_one(const std::string& body);

    boost::asio::io_context& ioc_;
    std::string host_, port_ = "80", path_ = "/";
    std::deque<std::string> queue_;
    bool sending_ = false;
    std::uint64_t sent_ = 0;
    std::uint64_t dropped_ = 0;
};

}  // namespace veer::control
