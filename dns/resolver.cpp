#include "dns/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include <boost/asio/post.hpp>

namespace veer::dns {
namespace asio = boost::asio;

namespace {

ares_channel channel_of(void* c) { return static_cast<ares_channel>(c); }

// "10.0.0.7:80" / "[fd00::7]:80" for one address c-ares found.
std::string address_text(const sockaddr* sa, std::uint16_t port) {
    char text[INET6_ADDRSTRLEN] = {};
    std::string out;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text);
        out.append(text);
    } else {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text,
                  sizeof text);
        out.append("[").append(text).append("]");
    }
    return out.append(":").append(std::to_string(port));
}

struct lookup {
    asio::io_context& ioc;
    std::uint16_t port;
    std::function<void(answer)> done;
};

void on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
    std::unique_ptr<lookup> l(static_cast<lookup*>(arg));
    answer a;
    if (status != ARES_SUCCESS) {
        a.error = ares_strerror(status);
    } else {
        for (auto* n = result->nodes; n; n = n->ai_next)
            if (n->ai_family == AF_INET || n->ai_family == AF_INET6)
                a.addresses.push_back(address_text(n->ai_addr, l->port));
        std::sort(a.addresses.begin(), a.addresses.end());
        a.addresses.erase(std::unique(a.addresses.begin(), a.addresses.end()), a.addresses.end());
        if (a.addresses.empty()) a.error = "no A or AAAA record";
    }
    if (result) ares_freeaddrinfo(result);
    // Always later, never from inside resolve() or c-ares's own call stack.
    asio::post(l->ioc,
               [done = std::move(l->done), a = std::move(a)]() mutable { done(std::move(a)); });
}

void init_library() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
            throw std::runtime_error("c-ares: library initialisation failed");
    });
}

}  // namespace

resolver::resolver(asio::io_context& ioc, const std::vector<std::string>& servers,
                   std::chrono::milliseconds timeout, int tries)
    : ioc_(ioc), timer_(ioc) {
    init_library();
    ares_options options{};
    options.sock_state_cb = &resolver::on_socket_state;
    options.sock_state_cb_data = this;
    options.timeout = static_cast<int>(timeout.count());
    options.tries = tries;
    // With resolvers of its own, veer asks them alone, as HAProxy's `resolvers` do; with
    // the system's, names in /etc/hosts come first, as for every other program.
    char lookups_dns[] = "b", lookups_system[] = "fb";
    options.lookups = servers.empty() ? lookups_system : lookups_dns;
    const int mask =
        ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    ares_channel channel = nullptr;
    if (const int rc = ares_init_options(&channel, &options, mask); rc != ARES_SUCCESS)
        throw std::runtime_error(std::string("c-ares: ") + ares_strerror(rc));
    channel_ = channel;
    if (servers.empty()) return;
    std::string csv;
    for (const auto& s : servers)
        csv.append(csv.empty() ? "" : ",").append(s);
    if (const int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
        ares_destroy(channel);
        throw std::runtime_error("dns.servers: " + std::string(ares_strerror(rc)) + " (" + csv +
                                 ")");
    }
}

resolver::~resolver() {
    timer_.cancel();
    ares_destroy(channel_of(channel_));  // ends pending lookups; closes c-ares's sockets
    for (auto& [fd, w] : sockets_)
        w.fd->release();
}

void resolver::resolve(const std::string& host, std::uint16_t port,
                       std::function<void(answer)> done) {
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NOSORT;  // sorted by text below; RFC 6724 order is not needed
    ares_getaddrinfo(channel_of(channel_), host.c_str(), nullptr, &hints, &on_addrinfo,
                     new lookup{ioc_, port, std::move(done)});
    schedule_timeout();
}

void resolver::on_socket_state(void* self, int fd, int readable, int writable) {
    auto& r = *static_cast<resolver*>(self);
    if (!readable && !writable) {
        // c-ares closes the descriptor itself: hand it back first.
        if (auto it = r.sockets_.find(fd); it != r.sockets_.end()) {
            it->second.fd->release();  // pending waits end with operation_aborted
            r.sockets_.erase(it);
        }
        return;
    }
    auto& w = r.sockets_[fd];
    if (!w.fd) w.fd = std::make_unique<asio::posix::stream_descriptor>(r.ioc_, fd);
    w.read = readable;
    w.write = writable;
    r.arm(fd);
}

void resolver::arm(int fd) {
    auto& w = sockets_.at(fd);
    using wait = asio::posix::stream_descriptor::wait_type;
    // The handlers find the socket by descriptor again: c-ares may have closed it (and
    // opened another under the same number) by the time they run.
    if (w.read && !w.reading) {
        w.reading = true;
        w.fd->async_wait(wait::wait_read, [this, fd, d = w.fd.get()](boost::system::error_code ec) {
            const auto it = sockets_.find(fd);
            if (ec == asio::error::operation_aborted || it == sockets_.end() ||
                it->second.fd.get() != d)
                return;
            it->second.reading = false;
            process(fd, ARES_SOCKET_BAD);
        });
    }
    if (w.write && !w.writing) {
        w.writing = true;
        w.fd->async_wait(wait::wait_write,
                         [this, fd, d = w.fd.get()](boost::system::error_code ec) {
                             const auto it = sockets_.find(fd);
                             if (ec == asio::error::operation_aborted || it == sockets_.end() ||
                                 it->second.fd.get() != d)
                                 return;
                             it->second.writing = false;
                             process(ARES_SOCKET_BAD, fd);
                         });
    }
}

void resolver::process(int read_fd, int write_fd) {
    ares_process_fd(channel_of(channel_), read_fd, write_fd);
    // Still wanted after c-ares's turn: wait again.
    for (const int fd : {read_fd, write_fd})
        if (fd != ARES_SOCKET_BAD && sockets_.count(fd)) arm(fd);
    schedule_timeout();
}

void resolver::schedule_timeout() {
    timeval tv{};
    if (!ares_timeout(channel_of(channel_), nullptr, &tv)) {
        timer_.cancel();  // nothing pending
        return;
    }
    timer_.expires_after(std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec));
    timer_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares retries or gives up
    });
}

answer resolve_now(const std::vector<std::string>& servers, const std::string& host,
                   std::uint16_t port) {
    asio::io_context ioc;
    answer out;
    try {
        resolver r(ioc, servers);
        r.resolve(host, port, [&](answer a) {
            out = std::move(a);
            ioc.stop();  // c-ares may keep its sockets open for the next query
        });
        ioc.run();
    } catch (const std::exception& e) {
        out.error = e.what();
    }
    return out;
}

}  // namespace veer::dns
