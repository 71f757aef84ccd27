// libFuzzer: a hostile HTTP/2 client's bytes into veer's server session (h2_server, the
// protocol half of h2_connection, no I/O). The preface goes first; the input follows in
// pieces whose size its first byte picks. After each piece every new request is answered
// as a stream's coroutine would (veer's refusal, a body, a body with trailers, or not at
// all while its body is forwarded), and the frames that produces are drained, so both
// directions run. Checks what flow control and the limits promise: no stream holds more
// request body than its window nor all of them more than the connection's, and no stream
// keeps a header list larger than limits.max_header_bytes.
#include <nghttp2/nghttp2.h>

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/detail/h2_server.hpp"
#include "proxy/h2_frames.hpp"

namespace {

using veer::proxy::h2_server;

constexpr std::uint32_t max_header_bytes = 4096;

class fuzz_server : public h2_server {
public:
    using h2_server::h2_server;

    // What a stream's coroutine would do, in one of four ways chosen by its id.
    void serve_started() {
        for (const auto id : started_) {
            auto* s = find(id);
            if (!s) continue;
            switch ((id >> 1) % 4) {
                case 0: respond(*s, 503); break;
                case 1: answer(*s, {}); break;
                case 2: answer(*s, {{"grpc-status", "0"}}); break;
                default:  // still forwarding: its body is taken as an upstream would
                    consume(*s, s->body.size());
                    s->body.clear();
                    forwarding_.push_back(id);
                    continue;
            }
            finish(*s);
        }
        started_.clear();
    }

    void check_bounds() {
        std::size_t held = 0;
        for (const auto& [id, s] : streams_) {
            std::size_t fields = 0;
            for (const auto& [n, v] : s->fields)
                fields += n.size() + v.size() + 32;
            if (s->body.size() > stream_window || fields > max_header_bytes) __builtin_trap();
            held += s->body.size();
        }
        if (held > static_cast<std::size_t>(connection_window)) __builtin_trap();
    }

    // The forwarding streams end too, so the session's close path runs for them.
    void finish_all() {
        for (const auto id : forwarding_)
            if (auto* s = find(id)) finish(*s);
        forwarding_.clear();
    }

    nghttp2_session* session() { return session_; }

private:
    void start(h2_stream& s) override { started_.push_back(s.id); }
    void wake_writer() override {}

    void answer(h2_stream& s, std::vector<std::pair<std::string, std::string>> trailers) {
        submit_fields(s, 200, {{"content-type", "text/plain"}}, true);
        s.out = "hello";
        s.out_eof = true;
        s.trailers = std::move(trailers);
        resume(s);
    }

    // As h2_connection::finished: the body it never forwarded goes back, then it is erased
    // once nghttp2 closed it.
    void finish(h2_stream& s) {
        consume(s, s.body.size());
        s.body.clear();
        s.running = false;
        if (s.closed) streams_.erase(s.id);
    }

    std::vector<std::int32_t> started_, forwarding_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static boost::asio::io_context ioc;  // the streams' timers need one; it never runs
    if (size < 1) return 0;
    const std::size_t piece = 1 + data[0];
    fuzz_server server(ioc.get_executor(), {8, max_header_bytes});
    static constexpr char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    bool alive = server.receive(preface, sizeof preface - 1);
    std::string out;
    for (std::size_t at = 1; alive && at < size; at += piece) {
        const auto n = std::min(piece, size - at);
        alive = server.receive(reinterpret_cast<const char*>(data + at), n);
        server.serve_started();
        server.check_bounds();
        veer::proxy::gather_frames(server.session(), out);
    }
    server.finish_all();
    veer::proxy::gather_frames(server.session(), out);
    return 0;
}
