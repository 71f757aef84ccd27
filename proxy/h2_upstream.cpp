#include "proxy/detail/h2_upstream.hpp"

#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <cstring>

#include "proxy/h2_memory.hpp"

namespace veer::proxy {
namespace {

void poke(h2_upstream::call& c) {
    c.wake->cancel();
    if (c.body_wake != c.wake) c.body_wake->cancel();
}

}  // namespace

struct h2_upstream_callbacks {
    static h2_upstream& up(void* user) { return *static_cast<h2_upstream*>(user); }
    static h2_upstream::call* find(h2_upstream& u, std::int32_t id) {
        const auto it = u.calls_.find(id);
        return it == u.calls_.end() ? nullptr : it->second;
    }

    static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                      std::uint8_t, void* user) {
        auto* c = find(up(user), frame->hd.stream_id);
        if (!c || frame->hd.type != NGHTTP2_HEADERS) return 0;
        std::string n(reinterpret_cast<const char*>(name), namelen);
        std::string v(reinterpret_cast<const char*>(value), valuelen);
        if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && c->head_done) {
            c->trailers.emplace_back(std::move(n), std::move(v));
        } else if (n == ":status") {
            c->status = std::atoi(v.c_str());
        } else {
            c->headers.emplace_back(std::move(n), std::move(v));
        }
        return 0;
    }

    static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto* c = find(up(user), frame->hd.stream_id);
        if (!c) return 0;
        if (frame->hd.type == NGHTTP2_HEADERS) {
            // Interim (1xx) heads are dropped; the final head is what the owner waits for.
            if (c->status >= 200)
                c->head_done = true;
            else if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                c->headers.clear();
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM &&
            (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA))
            c->ended = true;
        poke(*c);
        return 0;
    }

    static int data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id,
                          const std::uint8_t* data, std::size_t len, void* user) {
        auto* c = find(up(user), id);
        if (!c) {
            nghttp2_session_consume(session, id, len);  // a cancelled call's late bytes
            return 0;
        }
        c->data.append(reinterpret_cast<const char*>(data), len);
        poke(*c);
        return 0;
    }

    static int stream_close(nghttp2_session*, std::int32_t id, std::uint32_t error, void* user) {
        auto& u = up(user);
        auto* c = find(u, id);
        if (!c) return 0;
        if (error != NGHTTP2_NO_ERROR || !c->ended) c->failed = true;
        u.calls_.erase(id);
        poke(*c);
        if (u.draining_ && u.calls_.empty()) u.close();
        return 0;
    }

    static ssize_t read_body(nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                             std::size_t length, std::uint32_t* flags, nghttp2_data_source*,
                             void* user) {
        auto* c = find(up(user), id);
        if (!c) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        const std::size_t n = std::min(length, c->body.size());
        std::memcpy(buf, c->body.data(), n);
        c->body.erase(0, n);
        if (c->body.empty() && c->body_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (!c->request_trailers.empty()) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                submit_trailers(session, id, c->request_trailers);
            }
        } else if (n == 0) {
            c->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        poke(*c);  // room for more of the client's body
        return static_cast<ssize_t>(n);
    }
};

h2_upstream::h2_upstream(worker& w, std::unique_ptr<upstream_conn> conn, std::uint32_t endpoint_id)
    : w_(w),
      conn_(std::move(conn)),
      endpoint_id_(endpoint_id),
      writer_wake_(w.ioc_.get_executor()) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &h2_upstream_callbacks::header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &h2_upstream_callbacks::frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              &h2_upstream_callbacks::data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           &h2_upstream_callbacks::stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);  // updates as the owners consume
    nghttp2_session_client_new3(&session_, cbs, this, opt, h2_memory());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 20);
    conn_->stream.expires_never();  // each call has its own deadline
}

h2_upstream::~h2_upstream() { nghttp2_session_del(session_); }

void h2_upstream::start() {
    auto self = shared_from_this();
    asio::co_spawn(w_.ioc_, writer(), [self](std::exception_ptr) {});
    asio::co_spawn(w_.ioc_, reader(), [self](std::exception_ptr) {
        self->dead_ = true;
        self->fail_all();
        self->wake_writer();
        self->w_.forget_h2(self->endpoint_id_, self.get());
    });
}

bool h2_upstream::open() const {
    const auto limit = std::min<std::uint32_t>(
        max_streams, nghttp2_session_get_remote_settings(session_,
                                                         NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
    return !dead_ && !draining_ && nghttp2_session_check_request_allowed(session_) &&
           calls_.size() < limit;
}

bool h2_upstream::submit(call& c, const std::vector<nghttp2_nv>& nva, bool has_body) {
    nghttp2_data_provider body{};
    body.read_callback = &h2_upstream_callbacks::read_body;
    const auto id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                           has_body ? &body : nullptr, nullptr);
    if (id < 0) return false;
    c.id = id;
    calls_[id] = &c;
    wake_writer();
    return true;
}

void h2_upstream::more_body(call& c) {
    if (c.deferred && c.id >= 0) {
        c.deferred = false;
        nghttp2_session_resume_data(session_, c.id);
    }
    wake_writer();
}

void h2_upstream::consume(call& c, std::size_t n) {
    if (n == 0 || dead_) return;
    nghttp2_session_consume(session_, c.id, n);
    wake_writer();
}

void h2_upstream::cancel(call& c) {
    if (c.id < 0 || !calls_.erase(c.id)) return;
    if (!dead_) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, c.id, NGHTTP2_CANCEL);
    wake_writer();
    if (draining_ && calls_.empty()) close();
}

void h2_upstream::drain() {
    draining_ = true;
    if (calls_.empty()) close();
}

void h2_upstream::close() {
    boost::system::error_code ec;
    conn_->stream.sock().close(ec);
}

void h2_upstream::fail_all() {
    for (auto& [id, c] : calls_) {
        c->failed = true;
        poke(*c);
    }
    calls_.clear();
}

void h2_upstream::wake_writer() { writer_wake_.cancel(); }

task<> h2_upstream::reader() {
    char buf[16 * 1024];
    while (!dead_) {
        auto [ec, n] = co_await conn_->stream.read_some(asio::buffer(buf));
        if (ec) co_return;
        if (nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(buf), n) < 0)
            co_return;
        wake_writer();
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_))
            co_return;
    }
}

task<> h2_upstream::writer() {
    while (!dead_) {
        gather_frames(session_, wbuf_);
        if (!wbuf_.empty()) {
            auto [ec, n] = co_await conn_->stream.write(asio::buffer(wbuf_));
            if (ec) {
                close();  // the reader ends, and with it the connection
                co_return;
            }
            continue;
        }
        writer_wake_.expires_at(timer::time_point::max());
        co_await writer_wake_.async_wait(nothrow);
    }
}

std::shared_ptr<h2_upstream> worker::h2_for(std::uint32_t endpoint_id) const {
    const auto it = h2_upstreams_.find(endpoint_id);
    if (it == h2_upstreams_.end()) return nullptr;
    for (const auto& u : it->second)
        if (u->open()) return u;
    return nullptr;  // none, or all full: another connection is opened
}

task<std::shared_ptr<h2_upstream>> worker::h2_session(const routing::snapshot& snap,
                                                      upstream_choice& c, std::int64_t t_start,
                                                      upstream_conn*& watched) {
    if (!c.ep) co_return nullptr;
    const auto id = c.ep->id;
    // A burst of streams opens one connection at a time, not one each: they wait for the
    // one on its way, and take it or (full) the next.
    for (;;) {
        if (auto up = h2_for(id)) co_return up;
        const auto it = h2_connecting_.find(id);
        if (it == h2_connecting_.end()) break;
        const auto pending = it->second;
        co_await pending->ready.async_wait(nothrow);
        if (pending->failed) co_return nullptr;  // as it did, after its retries
    }
    auto pending = std::make_shared<h2_pending>(ioc_.get_executor());
    h2_connecting_[id] = pending;
    c = co_await connect(snap, std::move(c), t_start, true, watched);
    watched = nullptr;
    h2_connecting_.erase(id);
    std::shared_ptr<h2_upstream> up;
    if (c.conn) {
        up = std::make_shared<h2_upstream>(*this, std::move(c.conn), c.ep->id);
        keep_h2(c.ep->id, up);
        up->start();
    }
    pending->failed = !up;
    pending->ready.cancel();
    co_return up;
}

void worker::keep_h2(std::uint32_t endpoint_id, std::shared_ptr<h2_upstream> u) {
    h2_upstreams_[endpoint_id].push_back(std::move(u));
}

void worker::forget_h2(std::uint32_t endpoint_id, const h2_upstream* u) {
    auto& v = h2_upstreams_[endpoint_id];
    std::erase_if(v, [u](const auto& p) { return p.get() == u; });
}

}  // namespace veer::proxy
