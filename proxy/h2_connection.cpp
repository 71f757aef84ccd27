// The HTTP/2 client connection: nghttp2's callbacks, the reader and the writer.
#include <nghttp2/nghttp2.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "proxy/detail/h2_call.hpp"
#include "proxy/detail/h2_connection.hpp"

namespace veer::proxy {
namespace {

constexpr std::int32_t connection_window = 1 << 20;  // request bodies of all streams

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

// nghttp2 calls these from inside mem_recv/mem_send, on the connection's thread.
struct h2_callbacks {
    static h2_connection& conn(void* user) { return *static_cast<h2_connection*>(user); }

    static int begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto& c = conn(user);
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
            return 0;
        const auto id = frame->hd.stream_id;
        c.opened(id);
        c.streams_[id] = std::make_unique<h2_connection::h2_stream>(id, c.executor_);
        return 0;
    }

    // RFC 9113 5.1.1: a HEADERS on a stream id the client skipped is a connection error
    // (nghttp2 ignores it, as it must for a stream veer reset: that one was opened).
    static int begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
        auto& c = conn(user);
        if (hd->type == NGHTTP2_HEADERS && c.skipped(hd->stream_id))
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        return 0;
    }

    static int header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen,
                      std::uint8_t, void* user) {
        auto& c = conn(user);
        auto* s = c.find(frame->hd.stream_id);
        if (!s) return 0;
        // RFC 9113 6.5.2's accounting (32 bytes per field); over the limit, the stream is
        // reset: an HPACK bomb decodes into nothing larger than this.
        s->header_bytes += namelen + valuelen + 32;
        if (s->header_bytes > c.max_header_bytes_) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        const std::string_view n(reinterpret_cast<const char*>(name), namelen);
        if (s->running) {  // the request's trailers (nghttp2 checked their names and values)
            s->request_trailers.emplace_back(
                std::string(n), std::string(reinterpret_cast<const char*>(value), valuelen));
            return 0;
        }
        std::string v(reinterpret_cast<const char*>(value), valuelen);
        if (n == ":method")
            s->method = std::move(v);
        else if (n == ":scheme")
            s->scheme = std::move(v);
        else if (n == ":authority")
            s->authority = std::move(v);
        else if (n == ":path")
            s->path = std::move(v);
        else if (!n.starts_with(':'))
            s->fields.emplace_back(std::string(n), std::move(v));
        return 0;
    }

    static int frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto& c = conn(user);
        auto* s = c.find(frame->hd.stream_id);
        if (!s) return 0;
        const bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        if (frame->hd.type == NGHTTP2_HEADERS && !s->running) {
            s->end_stream = end;
            c.start(*s);
        } else if (end && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
            s->end_stream = true;
            s->wake.cancel();
        }
        return 0;
    }

    static int data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id,
                          const std::uint8_t* data, std::size_t len, void* user) {
        auto& c = conn(user);
        auto* s = c.find(id);
        if (!s || s->closed) {
            nghttp2_session_consume_connection(session, len);  // nobody will forward it
            return 0;
        }
        if (!s->running) {  // answered already: the rest of its body is thrown away
            nghttp2_session_consume(session, id, len);
            return 0;
        }
        s->body.append(reinterpret_cast<const char*>(data), len);
        s->wake.cancel();
        return 0;
    }

    static int stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t, void* user) {
        auto& c = conn(user);
        auto* s = c.find(id);
        if (!s) return 0;
        s->closed = true;
        if (!s->body.empty()) {  // what the stream never forwarded goes back to the connection
            nghttp2_session_consume_connection(session, s->body.size());
            s->body.clear();
        }
        if (!s->running)
            c.streams_.erase(id);
        else
            s->wake.cancel();
        return 0;
    }

    // The response body nghttp2 frames: what the stream's coroutine put in `out`.
    static ssize_t read_body(nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                             std::size_t length, std::uint32_t* flags, nghttp2_data_source*,
                             void* user) {
        auto& c = conn(user);
        auto* s = c.find(id);
        if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        const std::size_t n = std::min(length, s->out.size());
        std::memcpy(buf, s->out.data(), n);
        s->out.erase(0, n);
        if (s->out.empty() && s->out_eof) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (!s->trailers.empty()) {  // gRPC's status travels here
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                std::vector<nghttp2_nv> nva;
                for (const auto& [k, v] : s->trailers)
                    nva.push_back(h2_nv(k, v));
                nghttp2_submit_trailer(session, id, nva.data(), nva.size());
            }
        } else if (n == 0) {
            s->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        s->wake.cancel();  // room for more of the upstream's body
        return static_cast<ssize_t>(n);
    }
};

h2_connection::h2_connection(worker& w, stream& client, io_buffer& in, std::string_view client_ip)
    : w_(w),
      client_(client),
      in_(in),
      client_ip_(client_ip),
      executor_(w.ioc_.get_executor()),
      writer_wake_(w.ioc_.get_executor()),
      all_done_(w.ioc_.get_executor()) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &h2_callbacks::begin_headers);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &h2_callbacks::begin_frame);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &h2_callbacks::header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &h2_callbacks::frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &h2_callbacks::data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &h2_callbacks::stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Window updates only for bytes forwarded upstream: a stream's body in memory never
    // exceeds its window, nor all of them the connection's.
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, 200, 50);  // CVE-2023-44487
    nghttp2_option_set_max_continuations(opt, 8);  // CVE-2024-28182
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_session_server_new2(&session_, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);

    const auto snap = w_.routes_.get();
    max_header_bytes_ = snap->limits.max_header_bytes;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         static_cast<std::uint32_t>(snap->limits.max_concurrent_streams)},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         static_cast<std::uint32_t>(snap->limits.max_header_bytes)},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

h2_connection::~h2_connection() { nghttp2_session_del(session_); }

void h2_connection::opened(std::int32_t id) {
    if (id > highest_ + 2) {
        if (gaps_.size() == max_gaps) gaps_.erase(gaps_.begin());  // older ones: ignored
        gaps_.push_back({highest_ + 2, id - 2});
    }
    highest_ = std::max(highest_, id);
}

bool h2_connection::skipped(std::int32_t id) const {
    if (id >= highest_) return false;
    return std::any_of(gaps_.begin(), gaps_.end(),
                       [id](const auto& g) { return id >= g.first && id <= g.second; });
}

h2_connection::h2_stream* h2_connection::find(std::int32_t id) {
    const auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

task<> h2_connection::run() {
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
        if (running_ == 0 && !client_.tls()) {
            // Idle: the 32 KiB buffer goes back to the worker until the client speaks again
            // (nghttp2 keeps nothing in it). TLS cannot: OpenSSL may hold bytes already.
            w_.buffers_.put(in_);
            auto [ec] = co_await client_.sock().async_wait(tcp_socket::wait_read, nothrow);
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

bool h2_connection::receive(const char* data, std::size_t n) {
    const auto rv =
        nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), n);
    if (rv >= 0) return true;
    // A fatal error (a flood, a bad preface): the connection ends, with a GOAWAY saying why
    // that the writer sends before it stops.
    const bool flood = rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
    nghttp2_session_terminate_session(session_,
                                      flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    return false;
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
    s.running = true;
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

void h2_connection::consume(h2_stream& s, std::size_t n) {
    if (n == 0) return;
    if (s.closed)
        nghttp2_session_consume_connection(session_, n);
    else
        nghttp2_session_consume(session_, s.id, n);
    wake_writer();  // the WINDOW_UPDATE
}

void h2_connection::reset(h2_stream& s, std::uint32_t error_code) {
    if (!s.closed) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, error_code);
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

void h2_connection::submit_head(h2_stream& s, const http::response_head& resp, bool has_body) {
    std::vector<std::pair<std::string, std::string>> fields;  // lower-cased, as HTTP/2 wants
    fields.reserve(resp.fields.size());
    for (const auto& f : resp.fields)
        if (!http::is_hop_by_hop(f.name, resp.connection_tokens))
            fields.emplace_back(lower(f.name), std::string(f.value));
    submit_fields(s, resp.status, fields, has_body);
}

void h2_connection::submit_interim(h2_stream& s, const http::response_head& resp) {
    if (s.closed) return;
    const std::string name = ":status", value = std::to_string(resp.status);
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& f : resp.fields)
        if (!http::is_hop_by_hop(f.name, resp.connection_tokens))
            fields.emplace_back(lower(f.name), std::string(f.value));
    std::vector<nghttp2_nv> nva{h2_nv(name, value)};
    for (const auto& [n, v] : fields)
        nva.push_back(h2_nv(n, v));
    nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, nva.data(), nva.size(),
                           nullptr);
    wake_writer();
}

void h2_connection::submit_fields(h2_stream& s, int status,
                                  const std::vector<std::pair<std::string, std::string>>& fields,
                                  bool has_body) {
    if (s.closed) return;
    s.status = status;
    const std::string name = ":status", value = std::to_string(status);
    std::vector<nghttp2_nv> nva{h2_nv(name, value)};
    for (const auto& [n, v] : fields)
        nva.push_back(h2_nv(n, v));
    nghttp2_data_provider body{};
    body.read_callback = &h2_callbacks::read_body;
    nghttp2_submit_response(session_, s.id, nva.data(), nva.size(), has_body ? &body : nullptr);
    wake_writer();
}

void h2_connection::respond(h2_stream& s, int status) {
    http::response_head resp;
    resp.status = status;
    const std::string type = "content-type", text = "text/plain";
    s.out = std::string(http::reason_of(status)) + "\n";
    s.out_eof = true;
    http::field f{type, text};
    resp.fields.push_back(f);
    submit_head(s, resp, true);
}

}  // namespace veer::proxy
