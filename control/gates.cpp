#include "control/gates.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <openssl/crypto.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

#include "control/json_reply.hpp"
#include "control/log.hpp"
#include "proxy/address.hpp"

namespace veer::control {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A query's answer is one sample; anything this large is not a gate's.
constexpr std::uint64_t max_answer = 1024 * 1024;
constexpr std::chrono::milliseconds max_query_time{5000};
constexpr std::chrono::seconds request_time{10};

std::string url_encode(std::string_view text) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::chrono::milliseconds query_timeout(const config::prometheus_gate& g) {
    return std::min(g.interval, max_query_time);
}

std::string read_token(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("gates.alerts.token_file: cannot read " + path);
    std::string token{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' '))
        token.pop_back();
    if (token.empty()) throw std::runtime_error("gates.alerts.token_file: " + path + " is empty");
    return token;
}

// "Bearer <token>" against the configured token, in time independent of where they differ.
bool token_ok(std::string_view header, const std::string& token) {
    constexpr std::string_view scheme = "Bearer ";
    if (!header.starts_with(scheme)) return false;
    header.remove_prefix(scheme.size());
    return header.size() == token.size() &&
           CRYPTO_memcmp(header.data(), token.data(), token.size()) == 0;
}

}  // namespace

gate_poller::gate_poller(asio::io_context& ioc, wanted_fn wanted, pools_fn pools)
    : ioc_(ioc), wanted_(std::move(wanted)), pools_(std::move(pools)) {}

void gate_poller::run(std::vector<config::prometheus_gate> gates) {
    ++generation_;
    gates_ = std::move(gates);
    readings_.assign(gates_.size(), {});
    errors_.resize(gates_.size(), 0);
    clear();
    for (std::size_t i = 0; i < gates_.size(); ++i)
        asio::co_spawn(ioc_, loop(i, generation_), asio::detached);
}

void gate_poller::clear() {
    for (std::size_t i = 0; i < gates_.size(); ++i) {
        readings_[i] = {};
        readings_[i].name = gates_[i].name;
        readings_[i].limit = gating::limit_text(gates_[i]);
        readings_[i].query = gates_[i].query;
        readings_[i].detail = "not read yet";
    }
}

std::vector<gating::gate_reading> gate_poller::readings(std::int64_t since_ms,
                                                        std::int64_t now_ms) const {
    auto out = readings_;
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& r = out[i];
        const auto fresh_for = 2 * gates_[i].interval.count() + query_timeout(gates_[i]).count();
        if (r.checked_ms == 0 || r.checked_ms < since_ms) {
            r.what = gating::verdict_kind::holding;
            r.detail = "not read since the canary got traffic";
        } else if (now_ms - r.checked_ms > fresh_for) {
            r.what = gating::verdict_kind::holding;
            r.detail = "the last reading is stale";
        }
    }
    return out;
}

asio::awaitable<void> gate_poller::loop(std::size_t i, std::uint64_t generation) {
    asio::steady_timer timer(ioc_);
    while (generation == generation_) {
        if (wanted_()) {
            const auto [canary, stable] = pools_();
            auto promql = gating::substitute(gates_[i].query, canary, stable);
            const auto answer = co_await query(gates_[i], promql);
            if (generation != generation_) break;
            const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
            readings_[i] = gating::judge_gate(gates_[i], answer, std::move(promql), now_ms);
            if (answer.what == gating::query_result::kind::error) {
                ++errors_[i];
                log("warn", "gate query failed; the gate holds",
                    {{"gate", gates_[i].name}, {"error", answer.error}});
            }
        }
        timer.expires_after(gates_[i].interval);
        co_await timer.async_wait(nothrow);
    }
}

asio::awaitable<gating::query_result> gate_poller::query(const config::prometheus_gate& gate,
                                                         const std::string& promql) {
    using gating::query_result;
    const auto rest = gate.url.substr(7);  // the loader checked "http://host:port[/prefix]"
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    const auto prefix = slash == std::string::npos ? std::string() : rest.substr(slash);
    const auto colon = authority.rfind(':');
    auto host = authority.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    const auto fail = [&](const std::string& why) {
        return query_result{query_result::kind::error, 0, gate.url + ": " + why};
    };
    tcp::resolver resolver(ioc_);
    auto [rec, found] = co_await resolver.async_resolve(host, authority.substr(colon + 1), nothrow);
    if (rec) co_return fail(rec.message());
    beast::tcp_stream s(ioc_);
    s.expires_after(query_timeout(gate));
    auto [cec, ep] = co_await s.async_connect(found, nothrow);
    if (cec) co_return fail(cec.message());
    http::request<http::empty_body> req{http::verb::get,
                                        prefix + "/api/v1/query?query=" + url_encode(promql), 11};
    req.set(http::field::host, authority);
    req.set(http::field::user_agent, "veer");
    auto [wec, wn] = co_await http::async_write(s, req, nothrow);
    if (wec) co_return fail(wec.message());
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_answer);
    auto [ec, n] = co_await http::async_read(s, buf, parser, nothrow);
    if (ec) co_return fail(ec.message());
    // Prometheus answers a bad query 400 with its JSON error: the parser reads both.
    auto result = gating::parse_query_response(parser.get().body());
    if (result.what == query_result::kind::error && parser.get().result() != http::status::ok)
        result.error = "HTTP " + std::to_string(parser.get().result_int()) + ": " + result.error;
    co_return result;
}

alert_receiver::alert_receiver(asio::io_context& ioc, const config::alerts_gate& settings,
                               handler h)
    : ioc_(ioc), acceptor_(ioc), token_(read_token(settings.token_file)), handler_(std::move(h)) {
    const auto at = proxy::parse_tcp(settings.listen);
    if (!at) throw std::runtime_error("gates.alerts.listen: not an IP:port: " + settings.listen);
    boost::system::error_code ec;
    acceptor_.open(at->protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(*at, ec);
    if (!ec) acceptor_.listen(64, ec);
    if (ec)
        throw std::runtime_error("gates.alerts.listen: cannot listen on " + settings.listen + ": " +
                                 ec.message());
}

void alert_receiver::start() { asio::co_spawn(ioc_, accept_loop(), asio::detached); }

void alert_receiver::close() {
    boost::system::error_code ec;
    acceptor_.close(ec);
}

asio::awaitable<void> alert_receiver::accept_loop() {
    for (;;) {
        auto [ec, s] = co_await acceptor_.async_accept(nothrow);
        if (!acceptor_.is_open()) co_return;
        if (!ec) asio::co_spawn(ioc_, serve(std::move(s)), asio::detached);
    }
}

alert_receiver::answer alert_receiver::refuse(unsigned status, std::string why) {
    ++refused_;
    log("warn", "alert webhook request refused", {{"status", status}, {"error", why}});
    return {status, error_json(why)};
}

asio::awaitable<void> alert_receiver::serve(tcp::socket socket) {
    beast::tcp_stream s(std::move(socket));
    beast::flat_buffer buf;
    for (bool keep = true; keep;) {
        s.expires_after(request_time);
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        // Beast would fail the head itself on a Content-Length over the limit, leaving no
        // answer: the size is checked below, the limit set once the head is read.
        parser.body_limit(boost::none);
        auto [hec, hn] = co_await http::async_read_header(s, buf, parser, nothrow);
        if (hec) co_return;
        parser.body_limit(max_body);
        const auto& head = parser.get();
        // Checked before the body is read: an unauthenticated or oversized body is never.
        answer a{200, ""};
        if (head.target() != "/alerts")
            a = refuse(404, "not found: the receiver serves POST /alerts only");
        else if (head.method() != http::verb::post)
            a = refuse(405, "method not allowed: POST /alerts only");
        else if (!token_ok(head[http::field::authorization], token_))
            a = refuse(401, "missing or wrong bearer token");
        else if (parser.content_length() && *parser.content_length() > max_body)
            a = refuse(413, "body larger than 1 MiB");
        if (a.status == 200) {
            auto [bec, bn] = co_await http::async_read(s, buf, parser, nothrow);
            std::string error;
            if (bec == http::error::body_limit)
                a = refuse(413, "body larger than 1 MiB");
            else if (bec)
                co_return;
            else if (auto alerts = gating::parse_webhook(parser.get().body(), error)) {
                ++received_;
                const auto count = alerts->size();
                handler_(std::move(*alerts));
                a = {200, ok_json({{"alerts", count}})};
            } else {
                a = refuse(400, "bad webhook: " + error);
            }
        }
        keep = a.status == 200 && parser.get().keep_alive();
        http::response<http::string_body> res{static_cast<http::status>(a.status), 11};
        res.set(http::field::content_type, "application/json");
        res.keep_alive(keep);
        res.body() = std::move(a.body) + "\n";
        res.prepare_payload();
        auto [wec, wn] = co_await http::async_write(s, res, nothrow);
        if (wec) co_return;
        if (!keep) co_await linger(s);
    }
}

// A refused request's body may still be arriving: closing now would reset the connection
// and could destroy the answer before the sender reads it. Read and drop what comes for a
// while (bounded in bytes and time), then close.
asio::awaitable<void> alert_receiver::linger(beast::tcp_stream& s) {
    boost::system::error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
    s.expires_after(std::chrono::seconds(2));
    char sink[16 * 1024];
    for (std::size_t dropped = 0; dropped < 8 * max_body;) {
        auto [rec, n] = co_await s.async_read_some(asio::buffer(sink), nothrow);
        if (rec) break;
        dropped += n;
    }
}

}  // namespace veer::control
