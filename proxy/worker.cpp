// One data-path thread (proxy/detail/worker.hpp): its acceptor, its sessions and parked
// connections, the idle sweeper that enforces every deadline, and the access log buffer.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "proxy/detail/session.hpp"
#include "proxy/detail/h2_upstream.hpp"
#include "proxy/h2_memory.hpp"

namespace veer::proxy {

worker::worker(std::size_t index, const config::config& cfg, shared_state& shared)
    : shared_(shared),
      metrics_(shared.metrics.shard(index)),
      routes_(shared.routes),
      rng_(std::random_device{}() ^ (static_cast<std::uint64_t>(index) << 32)),
      outstanding_(metrics::max_endpoints, 0),
      round_robin_(metrics::max_pool_slots, 0),
      upstreams_(metrics::max_endpoints,
                 std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.timeouts.idle).count()),
      http2_(cfg.listener.http2),
      acceptor_(ioc_.get_executor()),
      request_prefix_(std::random_device{}()) {
    request_prefix_ = (request_prefix_ << 32) ^ std::random_device{}() ^ index;
}

worker::~worker() {
    stop();
    join();
    if (shared_.access_log_fd >= 0) flush_access_log();
    while (parked_)
        delete std::exchange(parked_, parked_->next);  // their waits die with ioc_
}

void worker::listen(const tcp::endpoint& at) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    const int one = 1;
    // Each thread has its own listening socket on the same port; the kernel spreads
    // connections over them, so no thread hands work to another.
    if (::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        throw std::runtime_error("SO_REUSEPORT not supported");
    if (at.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(true));
    acceptor_.bind(at);
    // Accepted sockets inherit it (Linux): no setsockopt per connection.
    acceptor_.set_option(tcp::no_delay(true));
    acceptor_.listen(4096);
    acceptor_.non_blocking(true);  // accept_queued takes connections until EAGAIN
}

void worker::start() {
    asio::co_spawn(ioc_, accept_loop(), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    if (shared_.access_log_fd >= 0) asio::co_spawn(ioc_, access_log_flusher(), asio::detached);
    asio::co_spawn(ioc_, idle_sweeper(), asio::detached);
    thread_ = std::thread([this] {
        ioc_.run();
        finished_ = true;
    });
}

void worker::drain() {
    asio::post(ioc_, [this] {
        draining_ = true;
        boost::system::error_code ec;
        acceptor_.close(ec);
        for (auto* s = sessions_; s; s = s->next_)
            s->cancel_if_idle();
        for (auto* p = parked_; p; p = p->next)
            p->sock.cancel();
        upstreams_.close_all();
        for (auto& [id, ups] : h2_upstreams_)
            for (auto& u : ups)
                u->drain();  // closed once its streams are done
        flush_timer_.cancel();
        sweep_timer_.cancel();
    });
}

void worker::log_access(std::string_view client_ip, std::string_view request, int status,
                        const routing::pool* pool, const routing::endpoint* ep,
                        std::int64_t t_start, std::string_view detail) {
    char line[256];
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const double ms = static_cast<double>(metrics::monotonic_ns() - t_start) / 1e6;
    std::string& out = access_buffer_;
    out.append("{\"time_ms\":")
        .append(std::to_string(now_ms))
        .append(",\"client\":\"")
        .append(client_ip);
    out.append("\",\"request\":\"");
    for (char c : request) {  // the target is client input: escape what JSON needs
        if (c == '"' || c == '\\') out.push_back('\\');
        if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
    }
    const bool served = ep != nullptr;
    std::snprintf(line, sizeof line,
                  "\",\"status\":%d,\"pool\":\"%s\",\"endpoint\":\"%s\",\"duration_ms\":%.3f",
                  status, served ? pool->name.c_str() : "", served ? ep->address.c_str() : "", ms);
    out.append(line);
    // Why veer refused or failed it, as Envoy logs its response-code details (static text).
    if (!detail.empty()) out.append(",\"detail\":\"").append(detail).append("\"");
    out.append("}\n");
    if (out.size() > 16 * 1024) flush_access_log();
}

void worker::flush_access_log() {
    // One O_APPEND write per 16 KiB or per second: lines of different threads never
    // interleave within a line, and no request waits on the disk more than that.
    std::size_t done = 0;
    while (done < access_buffer_.size()) {
        const auto n = ::write(shared_.access_log_fd, access_buffer_.data() + done,
                               access_buffer_.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    access_buffer_.clear();
}

task<> worker::access_log_flusher() {
    while (!draining_) {
        flush_timer_.expires_after(std::chrono::seconds(1));
        co_await flush_timer_.async_wait(nothrow);
        flush_access_log();
    }
}

void worker::abort() {
    asio::post(ioc_, [this] {
        for (auto* s = sessions_; s;) {
            auto* next = s->next_;
            s->abort();
            s = next;
        }
        for (auto* p = parked_; p; p = p->next)
            p->sock.cancel();
        for (auto& [id, ups] : h2_upstreams_)
            for (auto& u : ups)
                u->close();
    });
}

task<> worker::idle_sweeper() {
    // One timer per thread instead of one per connection or per operation: a deadline
    // (session::sweep) is enforced at most a tenth of the shortest timeout late, counting
    // the 1 s TLS close_notify limit among the timeouts: every 10 to 100 ms.
    // It goes on during a drain: requests still in progress keep their deadlines.
    while (!draining_ || sessions_ || parked_) {
        const auto t = routes_.get()->timeouts;
        const auto shortest = std::min({t.idle, t.header_read, t.connect, t.upstream_response,
                                        std::chrono::milliseconds(1000)});
        const auto period =
            std::max<std::chrono::milliseconds>(shortest / 10, std::chrono::milliseconds(10));
        sweep_timer_.expires_after(period);
        co_await sweep_timer_.async_wait(nothrow);
        const auto now = coarse_now_ns();
        if (now - last_pool_trim_ns_ >= 1'000'000'000) {
            last_pool_trim_ns_ = now;
            // Many buffers freed at once (a burst, or connections that parked): return
            // that memory to the kernel too, or it would stay in RSS (at most every 5 s).
            const auto buffers_freed = buffers_.trim();
            const auto h2_blocks_freed = h2_memory_trim();
            if (buffers_freed >= 64 || h2_blocks_freed >= 1024) trim_pending_ = true;
            if (trim_pending_ && now - last_trim_ns_ >= 5'000'000'000) {
                ::malloc_trim(0);
                trim_pending_ = false;
                last_trim_ns_ = now;
            }
        }
        for (auto* s = sessions_; s;) {
            auto* next = s->next_;  // cancelling never unlinks synchronously, but stay safe
            s->sweep(now);
            s = next;
        }
        const auto idle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.idle).count();
        for (auto* p = parked_; p; p = p->next)
            if (now - p->idle_since_ns >= idle_ns) p->sock.cancel();  // unpark() closes it
    }
}

namespace {

// Asio's state of a socket veer accepted itself with accept4(SOCK_NONBLOCK): non-blocking
// already, so Asio sets no O_NONBLOCK (an ioctl), and not a dup of another descriptor, so
// its close needs no epoll_ctl(DEL) (closing the only descriptor leaves epoll by itself).
// basic_socket keeps that state in a protected member, reached through a derived class.
struct accepted_socket : tcp_socket {
    static void mark(tcp_socket& s) {
        auto& state = (s.*(&accepted_socket::impl_)).get_implementation().state_;
        state &= ~asio::detail::socket_ops::possible_dup;
        state |= asio::detail::socket_ops::non_blocking;
    }
};

}  // namespace

// Takes the connections the listener has queued, up to accept_batch at a time, and waits
// for readiness only once the queue is empty.
task<> worker::accept_loop() {
    timer backoff(ioc_.get_executor());
    while (acceptor_.is_open()) {
        const auto got = accept_queued();
        if (got == accept_outcome::stop) co_return;
        if (got == accept_outcome::out_of_resources) {
            // Out of descriptors or memory: the pending connection stays queued and the
            // listener stays readable, so wait a little instead of spinning on it.
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(nothrow);
        } else if (got == accept_outcome::more) {
            co_await asio::post(ioc_.get_executor(), asio::use_awaitable_t<executor>{});
        } else {
            auto [ec] = co_await acceptor_.async_wait(tcp_acceptor::wait_read, nothrow);
            if (ec == asio::error::operation_aborted) co_return;
        }
    }
}

// A place under limits.max_connections, taken with a compare-and-swap: threads accepting
// at once can neither both take the last place (a load, then an add, let 51 of 60 in under
// a limit of 50) nor refuse one that is free (an add, then a check, refused 11).
bool worker::take_connection_place() {
    const auto limit = routes_.get()->limits.max_connections;
    auto n = shared_.active_connections.load(std::memory_order_relaxed);
    do {
        if (n >= limit) return false;
    } while (
        !shared_.active_connections.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
    return true;
}

worker::accept_outcome worker::accept_queued() {
    for (int i = 0; i < accept_batch; ++i) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        const int fd = ::accept4(acceptor_.native_handle(), reinterpret_cast<sockaddr*>(&addr),
                                 &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return accept_outcome::drained;
            if (errno == EBADF || errno == EINVAL) return accept_outcome::stop;  // closed
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                return accept_outcome::out_of_resources;
            continue;  // the peer gave up while queued (ECONNABORTED), or a signal
        }
        if (!take_connection_place()) {
            shared_.refused_connections.fetch_add(1, std::memory_order_relaxed);
            ::close(fd);  // refused, not queued
            continue;
        }
        tcp::endpoint peer;
        std::memcpy(peer.data(), &addr, std::min<std::size_t>(len, sizeof addr));
        tcp_socket s(ioc_.get_executor());
        boost::system::error_code ec;
        s.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
        if (ec) {
            shared_.active_connections.fetch_sub(1, std::memory_order_relaxed);
            ::close(fd);
            continue;
        }
        accepted_socket::mark(s);
        start_session(std::move(s), false, peer);
    }
    return accept_outcome::more;
}

void worker::start_session(tcp_socket s, bool woken, const tcp::endpoint& peer,
                           std::unique_ptr<tls_conn> tls) {
    asio::co_spawn(ioc_, run_session(*this, std::move(s), woken, peer, std::move(tls)),
                   [this](std::exception_ptr e, bool parked) {
                       if (parked) return;  // still a connection, now in parked_
                       shared_.active_connections.fetch_sub(1, std::memory_order_relaxed);
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               std::fprintf(
                                   stderr, "{\"level\":\"error\",\"msg\":\"session failed: %s\"}\n",
                                   ex.what());
                           }
                       }
                   });
}

void worker::park(tcp_socket s, std::int64_t idle_since_ns, const tcp::endpoint& peer,
                  std::unique_ptr<tls_conn> tls) {
    if (draining_) {  // the drain closed the parked ones already: this one goes too
        shared_.active_connections.fetch_sub(1, std::memory_order_relaxed);
        return;
    }
    auto* p = new parked_conn(std::move(s), idle_since_ns, peer, std::move(tls));
    if (p->tls) p->tls->rebind(p->sock);
    p->next = parked_;
    if (parked_) parked_->prev = p;
    parked_ = p;
    p->sock.async_wait(tcp_socket::wait_read,
                       [this, p](const boost::system::error_code& ec) { unpark(p, ec); });
}

void worker::unpark(parked_conn* p, const boost::system::error_code& ec) {
    if (p->prev)
        p->prev->next = p->next;
    else
        parked_ = p->next;
    if (p->next) p->next->prev = p->prev;
    tcp_socket s = std::move(p->sock);
    auto tls = std::move(p->tls);
    const auto peer = p->peer;
    delete p;
    if (ec || draining_) {  // idle timeout, drain or abort: the socket closes here
        if (tls) {
            tls->rebind(s);
            tls->notify_close_now();
        }
        shared_.active_connections.fetch_sub(1, std::memory_order_relaxed);
        return;
    }
    start_session(std::move(s), true, peer, std::move(tls));
}

void worker::lend_scratch(session_scratch& into) {
    if (scratch_.empty()) return;
    into = std::move(scratch_.back());
    scratch_.pop_back();
}

void worker::take_back_scratch(session_scratch& from) {
    // A session that met a huge head keeps its capacity to itself.
    if (scratch_.size() >= max_scratch || from.out.capacity() > 4096 ||
        from.request_fields.capacity() > 64 || from.response_fields.capacity() > 64)
        return;
    from.request_fields.clear();
    from.response_fields.clear();
    from.out.clear();
    scratch_.push_back(std::move(from));
}

void worker::link(session* s) {
    s->next_ = sessions_;
    if (sessions_) sessions_->prev_ = s;
    sessions_ = s;
}

void worker::unlink(session* s) {
    if (s->prev_)
        s->prev_->next_ = s->next_;
    else
        sessions_ = s->next_;
    if (s->next_) s->next_->prev_ = s->prev_;
}

std::string_view worker::next_request_id(char (&out)[24]) {
    static constexpr char hex[] = "0123456789abcdef";
    std::uint64_t a = request_prefix_;
    for (int i = 15; i >= 0; --i, a >>= 4)
        out[i] = hex[a & 15];
    std::uint32_t b = ++request_counter_;
    for (int i = 23; i >= 16; --i, b >>= 4)
        out[i] = hex[b & 15];
    return {out, sizeof out};
}

}  // namespace veer::proxy
