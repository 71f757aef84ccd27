// DNS names of endpoints (SPEC 12), resolved with c-ares on the control thread's event
// loop: c-ares's sockets are watched by the reactor and its timeouts by a timer, so no
// thread ever blocks on a lookup, and `dns.servers` may name resolvers on any port.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace veer::dns {

struct answer {
    // Every A and AAAA address with the port, as endpoints are written: "10.0.0.7:80",
    // "[fd00::7]:80"; sorted, without repeats. Empty when error is set.
    std::vector<std::string> addresses;
    std::string error;  // "" or why the name did not resolve ("Domain name not found")
};

class resolver {
public:
    // `servers` are "ip:port" resolvers; empty = the system's (/etc/resolv.conf, and
    // /etc/hosts first, as the C library does). Each query is tried `tries` times for
    // `timeout` each. Throws std::runtime_error when c-ares refuses the settings.
    resolver(boost::asio::io_context& ioc, const std::vector<std::string>& servers,
             std::chrono::milliseconds timeout = std::chrono::milliseconds(1000), int tries = 2);
    ~resolver();
    resolver(const resolver&) = delete;
    resolver& operator=(const resolver&) = delete;

    // Looks `host` up (A and AAAA) and calls `done` on the event loop's thread. Pending
    // lookups end with an error when the resolver is destroyed.
    void resolve(const std::string& host, std::uint16_t port, std::function<void(answer)> done);

private:
    struct watched {
        std::unique_ptr<boost::asio::posix::stream_descriptor> fd;
        bool read = false;
        bool write = false;
        bool reading = false;  // a wait is armed
        bool writing = false;
    };
    static void on_socket_state(void* self, int fd, int readable, int writable);
    void arm(int fd);
    void process(int read_fd, int write_fd);
    void schedule_timeout();

    boost::asio::io_context& ioc_;
    void* channel_ = nullptr;  // ares_channel
    std::map<int, watched> sockets_;
    boost::asio::steady_timer timer_;
};

// One lookup, run to its end on an event loop of its own: for start-up and --check-config,
// before anything is served.
answer resolve_now(const std::vector<std::string>& servers, const std::string& host,
                   std::uint16_t port);

}  // namespace veer::dns
