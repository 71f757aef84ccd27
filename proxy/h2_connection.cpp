// The HTTP/2 client connection's I/O: the reader, the writer, deadlines and drain.
#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "proxy/detail/h2_call.hpp"
#include "proxy/detail/h2_connection.hpp"
#include "proxy/h2_frames.hpp"

namespace veer::proxy {
namespace {

h2_server::limits limits_of(const routing::snapshot& snap) {
    return {static_cast<std::uint32_t>(snap.limits.max_concurrent_streams),
            static_cast<std::uint32_t>(snap.limits.max_header_bytes)};
}

}  // namespace

h2_connection::h2_connection(worker& w, stream& client, io_buffer& in, std::string_view client_ip)
    : h2_server(w.ioc_.get_executor(), limits_of(*w.routes_.get())),
      w_(w),
      client_(client),
      in_(in),
      client_ip_(client_ip),
      writer_wake_(w.ioc_.get_executor()),
      all_done_(w.ioc_.get_executor()) {}

task<> h2_connection::run() {
    w_.buffers_.upgrade(in_);  // the preface may have come in a small buffer
    asio::co_spawn(w_.ioc_, writer(), [this](std::exception_ptr) {
        writer_done_ = true;
        all_done_.cancel();
    });
    co_await reader();
    closing_ = true;
    wake_writer();
    // Every stream's coroutine ends before this frame does: they use the session.
    for (auto& [id, s] : streams_) {
        s->closed = true;
        boost::system::error_code ec;
        if (s->watched) s->watched->stream.sock().close(ec);
        s->wake.cancel();
    }
    while (running_ > 0 || !writer_done_) {
        all_done_.expires_after(std::chrono::seconds(1));
        co_await all_done_.async_wait(nothrow);
    }
}

task<> h2_connection::reader() {
    refresh_deadline();
    // The bytes read before HTTP/2 was recognised: the preface, maybe more.
    if (!in_.empty()) {
        const auto v = in_.view();
        const bool ok = receive(v.data(), v.size());
        in_.consume(v.size());
        wake_writer();
        if (!ok) co_return;
    }
    while (!closing_ &&
           (nghttp2_session_want_read(session_) || nghttp2_session_want_write(session_))) {
        if (running_ == 0) {
            // Idle: the 32 KiB buffer goes back to the worker until the client speaks again
            // (nghttp2 keeps nothing in it), and TLS's buffers too.
            w_.buffers_.put(in_);
            boost::system::error_code ec;
            if (auto* tls = client_.tls()) {
                tls->release_buffers();
                ec = co_await tls->wait_readable();
            } else {
                std::tie(ec) = co_await client_.sock().async_wait(tcp_socket::wait_read, nothrow);
            }
            if (ec) co_return;
            in_ = w_.buffers_.get();
        }
        std::size_t room = 0;
        char* p = in_.space(room);
        auto [ec, n] = co_await client_.read_some(asio::buffer(p, room));
        if (ec) co_return;
        if (!receive(p, n)) {
            wake_writer();
            co_return;
        }
        refresh_deadline();
        wake_writer();
    }
}

task<> h2_connection::writer() {
    for (;;) {
        // One turn of the event loop first: the other streams that are ready add their
        // frames too, and a batch of answers goes out in one write rather than one each.
        co_await asio::post(executor_, nothrow);
        gather_frames(session_, wbuf_);
        if (!wbuf_.empty()) {
            writing_ = true;
            refresh_deadline();
            auto [ec, n] = co_await client_.write(asio::buffer(wbuf_));
            writing_ = false;
            refresh_deadline();
            if (ec) break;
            continue;
        }
        if (closing_ ||
            (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)))
            break;
        writer_wake_.expires_at(timer::time_point::max());
        co_await writer_wake_.async_wait(nothrow);
    }
    closing_ = true;
    boost::system::error_code ec;
    client_.sock().cancel(ec);  // the reader ends too
}

void h2_connection::wake_writer() { writer_wake_.cancel(); }

void h2_connection::refresh_deadline() {
    // Idle, or a write the client does not take: timeouts.idle. Streams waiting for their
    // upstreams keep the connection as long as they need (their own deadlines apply).
    const auto idle = w_.routes_.get()->timeouts.idle;
    if (writing_ || running_ == 0)
        client_.expires_after(idle);
    else
        client_.expires_never();
}

void h2_connection::start(h2_stream& s) {
    ++running_;
    refresh_deadline();
    asio::co_spawn(w_.ioc_, serve(s), asio::detached);
}

void h2_connection::finished(h2_stream& s) {
    consume(s, s.body.size());  // a body the answer came before
    s.body.clear();
    s.running = false;
    --running_;
    if (s.closed) streams_.erase(s.id);  // else nghttp2's close callback erases it
    refresh_deadline();
    if (running_ == 0) all_done_.cancel();
    wake_writer();
}

void h2_connection::drain() {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    wake_writer();
}

void h2_connection::abort() {
    boost::system::error_code ec;
    client_.sock().close(ec);
    for (auto& [id, s] : streams_)
        if (s->watched) s->watched->stream.sock().close(ec);
}

void h2_connection::sweep(std::int64_t now_ns) {
    client_.expire_if_due(now_ns);
    for (auto& [id, s] : streams_)
        if (s->watched) s->watched->stream.expire_if_due(now_ns);
}

task<bool> h2_connection::wait(h2_stream& s, std::chrono::milliseconds limit) {
    return wait_woken(s.wake, limit);
}

}  // namespace veer::proxy
