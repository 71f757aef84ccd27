#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <stdexcept>

#include "proxy/address.hpp"
#include "proxy/detail/session.hpp"

namespace veer::proxy {
std::size_t thread_count(const config::listener& l) {
    if (l.threads > 0) return static_cast<std::size_t>(l.threads);
    const auto n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

namespace {

// The workers' SO_REUSEPORT would let this veer join another process's listener on the
// same address and silently take part of its connections (a second veer started by
// mistake, or any server that set the option): first make sure nobody listens there.
void refuse_if_taken(const tcp::endpoint& at, const std::string& address) {
    if (at.port() == 0) return;
    asio::io_context ioc;
    tcp::acceptor probe(ioc);
    boost::system::error_code ec;
    probe.open(at.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);  // TIME_WAIT is no owner
    if (!ec && at.address().is_v6()) probe.set_option(asio::ip::v6_only(true), ec);
    if (!ec) probe.bind(at, ec);
    if (ec == asio::error::address_in_use)
        throw std::runtime_error("cannot listen on " + address + ": " + ec.message() +
                                 " (another process listens there)");
}

}  // namespace

server::server(const config::config& cfg, shared_state& shared) {
    const auto parsed = parse_tcp(cfg.listener.address);
    if (!parsed)
        throw std::runtime_error("listener.address: not an IP:port: " + cfg.listener.address);
    const auto at = *parsed;
    refuse_if_taken(at, cfg.listener.address);
    const auto n = shared.metrics.threads();
    for (std::size_t i = 0; i < n; ++i) {
        workers_.push_back(std::make_unique<worker>(i, cfg, shared));
        try {
            workers_.back()->listen(at);
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot listen on " + cfg.listener.address + ": " +
                                     e.code().message());
        }
    }
}

server::~server() { stop(); }

void server::start() {
    for (auto& w : workers_)
        w->start();
}

void server::drain() {
    for (auto& w : workers_)
        w->drain();
}

bool server::wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (auto& w : workers_) {
        while (!w->finished() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!w->finished()) return false;
    }
    return true;
}

bool server::finished() const {
    for (const auto& w : workers_)
        if (!w->finished()) return false;
    return true;
}

void server::abort() {
    for (auto& w : workers_)
        w->abort();
}

void server::stop() {
    for (auto& w : workers_)
        w->stop();
    for (auto& w : workers_)
        w->join();
}

}  // namespace veer::proxy
