// The HTTP/2 server session without I/O: nghttp2's callbacks build each stream's request
// and feed its answer body; the submits put the answer's frames in nghttp2's queue.
#include "proxy/detail/h2_server.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "proxy/h2_frames.hpp"
#include "proxy/h2_memory.hpp"

namespace veer::proxy {
// nghttp2 calls these from inside mem_recv/mem_send, on the connection's thread.
struct h2_callbacks {
    static h2_server& conn(void* user) { return *static_cast<h2_server*>(user); }

    static int begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        auto& c = conn(user);
        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
            return 0;
        const auto id = frame->hd.stream_id;
        c.opened(id);
        c.streams_[id] = std::make_unique<h2_server::h2_stream>(id, c.executor_);
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
            s->running = true;
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
                submit_trailers(session, id, s->trailers);
            }
        } else if (n == 0) {
            s->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
        s->wake.cancel();  // room for more of the upstream's body
        return static_cast<ssize_t>(n);
    }
};

h2_server::h2_server(const executor& ex, limits l)
    : executor_(ex), max_header_bytes_(l.max_header_bytes) {
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
    nghttp2_session_server_new3(&session_, cbs, this, opt, h2_memory());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);

    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
         l.max_concurrent_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         l.max_header_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, connection_window);
}

h2_server::~h2_server() { nghttp2_session_del(session_); }

void h2_server::opened(std::int32_t id) {
    if (id > highest_ + 2) {
        if (gaps_.size() == max_gaps) gaps_.erase(gaps_.begin());  // older ones: ignored
        gaps_.push_back({highest_ + 2, id - 2});
    }
    highest_ = std::max(highest_, id);
}

bool h2_server::skipped(std::int32_t id) const {
    if (id >= highest_) return false;
    return std::any_of(gaps_.begin(), gaps_.end(),
                       [id](const auto& g) { return id >= g.first && id <= g.second; });
}

h2_server::h2_stream* h2_server::find(std::int32_t id) {
    const auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
}

bool h2_server::receive(const char* data, std::size_t n) {
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

void h2_server::consume(h2_stream& s, std::size_t n) {
    if (n == 0) return;
    if (s.closed)
        nghttp2_session_consume_connection(session_, n);
    else
        nghttp2_session_consume(session_, s.id, n);
    wake_writer();  // the WINDOW_UPDATE
}

void h2_server::reset(h2_stream& s, std::uint32_t error_code) {
    if (!s.closed) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, error_code);
    wake_writer();
}

void h2_server::submit_head(h2_stream& s, const http::response_head& resp, bool has_body) {
    start_nva(resp.status);
    add_h1_fields(resp);
    submit_nva(s, resp.status, has_body, false);
}

void h2_server::submit_interim(h2_stream& s, const http::response_head& resp) {
    start_nva(resp.status);
    add_h1_fields(resp);
    submit_nva(s, resp.status, false, true);
}

void h2_server::submit_fields(h2_stream& s, int status,
                              const std::vector<std::pair<std::string, std::string>>& fields,
                              bool has_body) {
    start_nva(status);
    for (const auto& [n, v] : fields)
        nva_.push_back(h2_nv(n, v));
    submit_nva(s, status, has_body, false);
}

void h2_server::start_nva(int status) {
    const auto end = std::to_chars(status_, status_ + sizeof status_, status).ptr;
    nva_.clear();
    nva_.push_back(h2_nv(":status", std::string_view(status_, end - status_)));
}

// An HTTP/1 head's fields as HTTP/2 wants them: names lower-cased into one buffer, sized
// first so that no pointer into it moves; hop-by-hop fields left out.
void h2_server::add_h1_fields(const http::response_head& resp) {
    std::size_t total = 0;
    for (const auto& f : resp.fields)
        total += f.name.size();
    names_.clear();
    names_.reserve(total);
    for (const auto& f : resp.fields) {
        if (http::is_hop_by_hop(f.name, resp.connection_tokens)) continue;
        const auto at = names_.size();
        for (char c : f.name)
            names_.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        nva_.push_back(h2_nv(std::string_view(names_).substr(at, f.name.size()), f.value));
    }
}

void h2_server::submit_nva(h2_stream& s, int status, bool has_body, bool interim) {
    if (s.closed) return;
    if (interim) {
        nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, nva_.data(),
                               nva_.size(), nullptr);
    } else {
        s.status = status;
        nghttp2_data_provider body{};
        body.read_callback = &h2_callbacks::read_body;
        nghttp2_submit_response(session_, s.id, nva_.data(), nva_.size(),
                                has_body ? &body : nullptr);
    }
    wake_writer();
}

void h2_server::respond(h2_stream& s, int status) {
    http::response_head resp;
    resp.status = status;
    const std::string type = "content-type", text = "text/plain";
    s.out = std::string(http::reason_of(status)) + "\n";
    s.out_eof = true;
    http::field f{type, text};
    resp.fields.push_back(f);
    submit_head(s, resp, true);
}

void h2_server::resume(h2_stream& s) {
    if (!s.deferred) return;
    s.deferred = false;
    nghttp2_session_resume_data(session_, s.id);
}

}  // namespace veer::proxy
