// External gates (SPEC 13), the I/O part, on the control thread: the Prometheus queries,
// each every `interval` while the canary is judged here, and the Alertmanager webhook
// receiver on its own listener. What they learn goes to the controller, which judges
// (gating/gate.hpp, gating/alert.hpp) and decides.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gating/alert.hpp"
#include "gating/gate.hpp"

namespace veer::control {

class gate_poller {
public:
    // Whether the gates are wanted now (the canary has weight and this instance judges),
    // and the pools {canary, stable} their queries name.
    using wanted_fn = std::function<bool()>;
    using pools_fn = std::function<std::pair<std::string, std::string>()>;

    gate_poller(boost::asio::io_context& ioc, wanted_fn wanted, pools_fn pools);

    // (Re)starts one query loop per gate; the old loops and readings go.
    void run(std::vector<config::prometheus_gate> gates);
    // Each gate's reading for the judge: taken after `since_ms` (the canary's evidence
    // starts then) and fresh (within two intervals and a timeout), else holding.
    std::vector<gating::gate_reading> readings(std::int64_t since_ms, std::int64_t now_ms) const;
    // Forgets the readings (a new canary: other evidence).
    void clear();
    std::uint64_t errors(std::size_t gate) const { return errors_[gate]; }
    const std::vector<config::prometheus_gate>& gates() const { return gates_; }

private:
    boost::asio::awaitable<void> loop(std::size_t gate, std::uint64_t generation);
    boost::asio::awaitable<gating::query_result> query(const config::prometheus_gate& gate,
                                                       const std::string& promql);

    boost::asio::io_context& ioc_;
    wanted_fn wanted_;
    pools_fn pools_;
    std::vector<config::prometheus_gate> gates_;
    std::vector<gating::gate_reading> readings_;
    std::vector<std::uint64_t> errors_;
    std::uint64_t generation_ = 0;
};

class alert_receiver {
public:
    // Takes the alerts of one accepted notification.
    using handler = std::function<void(std::vector<gating::alert>)>;
    static constexpr std::size_t max_body = 1024 * 1024;

    // Binds `listen`; throws std::runtime_error when it cannot, or when the token file
    // cannot be read or is empty.
    alert_receiver(boost::asio::io_context& ioc, const config::alerts_gate& settings, handler h);
    void start();
    void close();
    std::uint64_t received() const { return received_; }
    std::uint64_t refused() const { return refused_; }

private:
    struct answer {
        unsigned status;
        std::string body;
    };
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket s);
    answer refuse(unsigned status, std::string why);
    boost::asio::awaitable<void> linger(boost::beast::tcp_stream& s);

    boost::asio::io_context& ioc_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::string token_;
    handler handler_;
    std::uint64_t received_ = 0;
    std::uint64_t refused_ = 0;
};

}  // namespace veer::control
