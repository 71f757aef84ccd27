// veer-upstream: a small, fast, scriptable HTTP/1.1 server that plays a backend for the
// demo, the integration tests and the benchmarks.
//
//   veer-upstream --name blue --port 9001 [--address 127.0.0.1] [--error-rate 0.1]
//                 [--delay 20] [--threads 2] [--unhealthy]
//
// Every request is answered "NAME METHOD TARGET BODYBYTES\n" (200, or 500 for the
// --error-rate share of answers) with "X-Upstream: NAME". Special paths:
//   /healthz                  200 "NAME health" while healthy, else 503
//   /admin/health/on|off      toggle /healthz
//   /admin/error-rate/F       share of 500 answers from now on (0..1)
//   /admin/delay/MS           delay added before each answer from now on
//   /sleep/SECONDS            wait that long (fractional) before answering
//   /bytes/N                  answer N bytes of body, streamed in chunks
//
// Design: one io_context per thread; one acceptor (thread 0) hands each connection to
// the threads in turn, so no SO_REUSEPORT (which would silently share the port with a
// stale instance) and no locks. One coroutine per connection; request bodies are
// counted into a per-thread scratch buffer and never held.

#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>

namespace veer::upstream {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct limits {
    static constexpr std::uint32_t max_header_bytes = 64 * 1024;
    static constexpr std::size_t chunk_bytes = 64 * 1024;  // body read/write granularity
    static constexpr std::chrono::seconds idle{120};  // keep-alive wait for a request
    static constexpr std::chrono::seconds io{60};  // each body read / write step
};

struct options {
    std::string name = "upstream";
    std::string address = "127.0.0.1";
    int port = -1;
    double error_rate = 0;
    double delay_ms = 0;
    int threads = 1;
    bool unhealthy = false;
};

// Behaviour that /admin changes at run time, read by every thread.
struct runtime {
    std::atomic<bool> healthy{true};
    std::atomic<double> error_rate{0};
    std::atomic<std::int64_t> delay_us{0};
};

// Per thread: discarded request bodies land here (their content is never looked at, so
// the connections of one thread may share it), and the error-rate accumulator.
thread_local std::unique_ptr<char[]> body_sink;
thread_local double error_credit = 0;

// Exactly the configured share of answers fail, spread evenly (per thread): a
// deterministic backend makes SLO tests reproducible.
bool next_answer_fails(double rate) {
    if (rate <= 0) return false;
    error_credit += rate;
    if (error_credit >= 1.0) {
        error_credit -= 1.0;
        return true;
    }
    return false;
}

// The bytes /bytes/N sends, in chunks of this buffer.
const std::string& filler() {
    static const std::string text = [] {
        std::string s(limits::chunk_bytes, 'x');
        for (std::size_t i = 63; i < s.size(); i += 64)
            s[i] = '\n';
        return s;
    }();
    return text;
}

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default: return "Unknown";
    }
}

template <class Number>
void append_number(std::string& out, Number n) {
    char buf[32];
    const auto result = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, result.ptr);
}

template <class Number>
std::optional<Number> parse_number(std::string_view text) {
    Number value{};
    const auto* end = text.data() + text.size();
    const auto result = std::from_chars(text.data(), end, value);
    if (text.empty() || result.ec != std::errc{} || result.ptr != end) return std::nullopt;
    return value;
}

bool iequals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// What one request gets back, decided before anything is written.
struct answer {
    int status = 200;
    std::uint64_t body_bytes = 0;  // /bytes/N: the filler's length; else body_text's
    bool filler_body = false;
    double sleep_seconds = 0;
    bool delayed = true;  // behaviour knobs apply (not to /healthz or /admin)
};

class connection {
public:
    connection(tcp::socket socket, const options& opts, runtime& rt)
        : stream_(std::move(socket)), opts_(opts), rt_(rt), timer_(stream_.get_executor()) {
        out_.reserve(512);
    }

    asio::awaitable<void> run() {
        if (!body_sink) body_sink = std::make_unique<char[]>(limits::chunk_bytes);
        for (;;) {
            parser_.emplace();  // a fresh parser per message
            parser_->header_limit(limits::max_header_bytes);
            parser_->body_limit(boost::none);  // bodies are counted, never held

            stream_.expires_after(limits::idle);
            auto [ec, n] = co_await http::async_read_header(stream_, buffer_, *parser_, use_tuple);
            if (ec) {
                co_await on_bad_request(ec);
                break;
            }
            const auto& req = parser_->get();
            // curl and proxies wait for this before sending a large body.
            if (req.version() >= 11 && !parser_->is_done() &&
                iequals(req[http::field::expect], "100-continue")) {
                static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
                stream_.expires_after(limits::io);
                auto [wec, wn] =
                    co_await asio::async_write(stream_, asio::buffer(go_on), use_tuple);
                if (wec) break;
            }
            std::uint64_t body_bytes = 0;
            if (!co_await read_body(body_bytes)) break;
            const bool keep_alive = req.keep_alive();
            if (!co_await respond(body_bytes, keep_alive) || !keep_alive) break;
        }
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.close();
    }

private:
    // Reads and counts the body into the thread's sink; false when the connection must
    // end (a broken body, a timeout, a reset).
    asio::awaitable<bool> read_body(std::uint64_t& count) {
        auto& body = parser_->get().body();
        while (!parser_->is_done()) {
            body.data = body_sink.get();
            body.size = limits::chunk_bytes;
            stream_.expires_after(limits::io);
            auto [ec, n] = co_await http::async_read(stream_, buffer_, *parser_, use_tuple);
            count += limits::chunk_bytes - body.size;
            if (ec == http::error::need_buffer) continue;  // sink full: go round again
            if (ec) {
                co_await on_bad_request(ec);
                co_return false;
            }
        }
        co_return true;
    }

    // A malformed request gets 400 (431 for a huge head) and the connection closes; a
    // closed or timed-out connection just ends.
    asio::awaitable<void> on_bad_request(beast::error_code ec) {
        if (ec.category() != http::make_error_code(http::error::bad_target).category() ||
            ec == http::error::end_of_stream || ec == http::error::partial_message)
            co_return;
        const int status = ec == http::error::header_limit ? 431 : 400;
        out_.clear();
        write_head(status, 0, false, false, 0);
        stream_.expires_after(limits::io);
        co_await asio::async_write(stream_, asio::buffer(out_), use_tuple);
    }

    answer decide(std::string_view path, http::verb method) {
        answer a;
        text_.clear();
        const std::string& name = opts_.name;
        if (path == "/healthz") {
            a.delayed = false;
            const bool healthy = rt_.healthy.load(std::memory_order_relaxed);
            a.status = healthy ? 200 : 503;
            text_ = name + (healthy ? " health\n" : " unhealthy\n");
            return a;
        }
        if (path.starts_with("/admin/")) {
            a.delayed = false;
            if (method != http::verb::get && method != http::verb::post &&
                method != http::verb::head) {
                a.status = 405;
                text_ = name + " admin: use GET or POST\n";
                return a;
            }
            admin(path.substr(7), a);
            return a;
        }
        if (path.starts_with("/sleep/")) {
            const auto seconds = parse_number<double>(path.substr(7));
            if (!seconds || !std::isfinite(*seconds) || *seconds < 0 || *seconds > 86400) {
                a.status = 400;
                a.delayed = false;
                text_ = name + " bad sleep: " + std::string(path.substr(7)) + "\n";
                return a;
            }
            a.sleep_seconds = *seconds;
        } else if (path.starts_with("/bytes/")) {
            const auto n = parse_number<std::uint64_t>(path.substr(7));
            if (!n) {
                a.status = 400;
                a.delayed = false;
                text_ = name + " bad byte count: " + std::string(path.substr(7)) + "\n";
                return a;
            }
            a.filler_body = true;
            a.body_bytes = *n;
        }
        if (next_answer_fails(rt_.error_rate.load(std::memory_order_relaxed))) {
            a.status = 500;
            a.filler_body = false;  // a failure answers with the echo line, not N bytes
        }
        return a;
    }

    void admin(std::string_view command, answer& a) {
        const std::string& name = opts_.name;
        if (command == "health/on" || command == "health/off") {
            const bool on = command == "health/on";
            rt_.healthy.store(on, std::memory_order_relaxed);
            text_ = name + (on ? " health on\n" : " health off\n");
        } else if (command.starts_with("error-rate/")) {
            const auto value = command.substr(11);
            const auto rate = parse_number<double>(value);
            if (!rate || !(*rate >= 0 && *rate <= 1)) {
                a.status = 400;
                text_ = name + " bad error rate (0..1): " + std::string(value) + "\n";
                return;
            }
            rt_.error_rate.store(*rate, std::memory_order_relaxed);
            text_ = name + " error-rate " + std::string(value) + "\n";
        } else if (command.starts_with("delay/")) {
            const auto value = command.substr(6);
            const auto ms = parse_number<double>(value);
            if (!ms || !(*ms >= 0 && *ms <= 3'600'000)) {
                a.status = 400;
                text_ = name + " bad delay (ms): " + std::string(value) + "\n";
                return;
            }
            rt_.delay_us.store(std::llround(*ms * 1000), std::memory_order_relaxed);
            text_ = name + " delay " + std::string(value) + "\n";
        } else {
            a.status = 404;
            text_ = name + " unknown admin command: " + std::string(command) + "\n";
        }
    }

    void write_head(int status, std::uint64_t content_length, bool keep_alive, bool http10,
                    std::size_t reserve_body) {
        out_.reserve(256 + reserve_body);
        out_ += "HTTP/1.1 ";
        append_number(out_, status);
        out_ += ' ';
        out_ += reason_phrase(status);
        out_ += "\r\nServer: veer-upstream\r\nX-Upstream: ";
        out_ += opts_.name;
        out_ += "\r\nContent-Type: text/plain\r\nContent-Length: ";
        append_number(out_, content_length);
        if (!keep_alive)
            out_ += "\r\nConnection: close";
        else if (http10)  // HTTP/1.0 closes unless told otherwise
            out_ += "\r\nConnection: keep-alive";
        out_ += "\r\n\r\n";
    }

    asio::awaitable<void> wait(std::chrono::microseconds duration) {
        if (duration.count() <= 0) co_return;
        timer_.expires_after(duration);
        co_await timer_.async_wait(use_tuple);
    }

    // Writes the answer; false when the connection broke.
    asio::awaitable<bool> respond(std::uint64_t request_body_bytes, bool keep_alive) {
        const auto& req = parser_->get();
        const std::string_view target = req.target();
        const auto query = target.find('?');
        const std::string_view path = target.substr(0, query);
        const http::verb method = req.method();

        answer a = decide(path, method);
        if (a.delayed) {
            co_await wait(std::chrono::microseconds(rt_.delay_us.load(std::memory_order_relaxed)));
            co_await wait(std::chrono::microseconds(std::llround(a.sleep_seconds * 1e6)));
            if (!a.filler_body && text_.empty()) {
                // The echo line: "NAME METHOD TARGET BODYBYTES\n".
                text_ += opts_.name;
                text_ += ' ';
                text_ += req.method_string();
                text_ += ' ';
                text_ += target;
                text_ += ' ';
                append_number(text_, request_body_bytes);
                text_ += '\n';
            }
        }
        const std::uint64_t length = a.filler_body ? a.body_bytes : text_.size();
        const bool head_only = method == http::verb::head;

        out_.clear();
        write_head(a.status, length, keep_alive, req.version() < 11, text_.size());
        if (!head_only && !a.filler_body) out_ += text_;  // one write for the common case
        stream_.expires_after(limits::io);
        auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out_), use_tuple);
        if (ec) co_return false;
        if (head_only || !a.filler_body) co_return true;

        // /bytes/N: stream the filler, a chunk at a time.
        const std::string& chunk = filler();
        for (std::uint64_t left = a.body_bytes; left > 0;) {
            const std::size_t size =
                left < chunk.size() ? static_cast<std::size_t>(left) : chunk.size();
            stream_.expires_after(limits::io);
            auto [wec, wn] =
                co_await asio::async_write(stream_, asio::buffer(chunk.data(), size), use_tuple);
            if (wec) co_return false;
            left -= size;
        }
        co_return true;
    }

    beast::tcp_stream stream_;
    const options& opts_;
    runtime& rt_;
    asio::steady_timer timer_;
    beast::flat_buffer buffer_;  // kept across requests: pipelined bytes stay in it
    std::optional<http::request_parser<http::buffer_body>> parser_;
    std::string out_;  // the response head (and small body), reused
    std::string text_;  // the response body text, reused
};

// Connection coroutines never throw (every operation returns its error code); should one
// anyway, say so instead of dying silently.
void report_failure(std::exception_ptr failure) {
    if (!failure) return;
    try {
        std::rethrow_exception(failure);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "veer-upstream: connection failed: %s\n", e.what());
    }
}

asio::awaitable<void> serve(tcp::socket socket, const options& opts, runtime& rt) {
    connection conn(std::move(socket), opts, rt);
    co_await conn.run();
}

// Accepts on thread 0 and hands connections to every thread's io_context in turn.
asio::awaitable<void> accept_loop(tcp::acceptor& acceptor,
                                  std::vector<std::unique_ptr<asio::io_context>>& contexts,
                                  const options& opts, runtime& rt) {
    std::size_t next = 0;
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
        auto& target = *contexts[next];
        next = (next + 1) % contexts.size();
        auto [ec, socket] = co_await acceptor.async_accept(target.get_executor(), use_tuple);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) {
            // Out of descriptors and the like: wait rather than spin.
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(use_tuple);
            continue;
        }
        beast::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);  // answers go out at once
        asio::co_spawn(target, serve(std::move(socket), opts, rt), report_failure);
    }
}

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: veer-upstream --port N [--name NAME] [--address ADDR] "
                 "[--error-rate F] [--delay MS] [--threads N] [--unhealthy]\n"
                 "  --name NAME        answers name themselves NAME (default \"upstream\")\n"
                 "  --port N           port to listen on (required; 0 picks a free one)\n"
                 "  --address ADDR     address to listen on (default 127.0.0.1)\n"
                 "  --error-rate F     share of answers that are 500, 0..1 (default 0)\n"
                 "  --delay MS         added before each answer, in ms (default 0)\n"
                 "  --threads N        threads (default 1)\n"
                 "  --unhealthy        start with /healthz answering 503\n");
}

// Parses argv by hand ("--flag value" or "--flag=value"); an error message or "".
std::string parse_options(int argc, char** argv, options& opts) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view value;
        bool has_value = false;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_value = true;
        }
        const auto take_value = [&]() -> bool {
            if (has_value) return true;
            if (i + 1 >= argc) return false;
            value = argv[++i];
            return true;
        };
        const auto bad = [&](std::string_view why) {
            return std::string(arg) + ": " + std::string(why) + " (got \"" + std::string(value) +
                   "\")";
        };

        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            std::exit(0);
        } else if (arg == "--unhealthy") {
            if (has_value) return "--unhealthy takes no value";
            opts.unhealthy = true;
        } else if (arg == "--name" || arg == "--address" || arg == "--port" ||
                   arg == "--error-rate" || arg == "--delay" || arg == "--threads") {
            if (!take_value()) return std::string(arg) + ": needs a value";
            if (arg == "--name") {
                if (value.empty() || value.find_first_of("\r\n") != std::string_view::npos)
                    return bad("must be a non-empty single-line name");
                opts.name = value;
            } else if (arg == "--address") {
                opts.address = value;
            } else if (arg == "--port") {
                const auto port = parse_number<int>(value);
                if (!port || *port < 0 || *port > 65535) return bad("must be 0..65535");
                opts.port = *port;
            } else if (arg == "--error-rate") {
                const auto rate = parse_number<double>(value);
                if (!rate || !(*rate >= 0 && *rate <= 1)) return bad("must be between 0 and 1");
                opts.error_rate = *rate;
            } else if (arg == "--delay") {
                const auto ms = parse_number<double>(value);
                if (!ms || !(*ms >= 0 && *ms <= 3'600'000)) return bad("must be 0..3600000 ms");
                opts.delay_ms = *ms;
            } else {
                const auto threads = parse_number<int>(value);
                if (!threads || *threads < 1 || *threads > 256) return bad("must be 1..256");
                opts.threads = *threads;
            }
        } else {
            return "unknown argument: " + std::string(arg);
        }
    }
    if (opts.port < 0) return "--port is required";
    return {};
}

int run(int argc, char** argv) {
    options opts;
    if (const auto error = parse_options(argc, argv, opts); !error.empty()) {
        std::fprintf(stderr, "veer-upstream: %s\n", error.c_str());
        usage(stderr);
        return 2;
    }
    runtime rt;
    rt.healthy = !opts.unhealthy;
    rt.error_rate = opts.error_rate;
    rt.delay_us = std::llround(opts.delay_ms * 1000);

    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (int i = 0; i < opts.threads; ++i)
        contexts.push_back(std::make_unique<asio::io_context>(1));  // one thread each

    beast::error_code ec;
    const auto address = asio::ip::make_address(opts.address, ec);
    if (ec) {
        std::fprintf(stderr, "veer-upstream: --address: not an IP address: %s\n",
                     opts.address.c_str());
        return 2;
    }
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(opts.port));
    tcp::acceptor acceptor(*contexts[0]);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::fprintf(stderr, "veer-upstream: cannot listen on %s:%d: %s\n", opts.address.c_str(),
                     opts.port, ec.message().c_str());
        return 1;
    }
    const auto bound = acceptor.local_endpoint();

    asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
    signals.async_wait([&](beast::error_code, int) {
        for (auto& ctx : contexts)
            ctx->stop();
    });
    asio::co_spawn(*contexts[0], accept_loop(acceptor, contexts, opts, rt), report_failure);

    // Keeps the other threads' loops alive while they have no connection yet.
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& ctx : contexts)
        guards.push_back(asio::make_work_guard(*ctx));

    const std::string shown = bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                      : bound.address().to_string();
    std::fprintf(stderr, "veer-upstream %s listening on %s:%u\n", opts.name.c_str(), shown.c_str(),
                 static_cast<unsigned>(bound.port()));
    std::fflush(stderr);

    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts.size(); ++i)
        threads.emplace_back([&ctx = *contexts[i]] { ctx.run(); });
    contexts[0]->run();
    for (auto& t : threads)
        t.join();
    return 0;
}

}  // namespace
}  // namespace veer::upstream

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a client that went away is an error code, not a death
    return veer::upstream::run(argc, argv);
}
