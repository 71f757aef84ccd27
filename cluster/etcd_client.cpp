#include "cluster/etcd_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace veer::cluster {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A unary reply is small (a range of one release's keys); bounded all the same.
constexpr std::uint64_t max_reply_bytes = 8 * 1024 * 1024;
// Connections kept open for the next calls (reports, keepalives and commands overlap).
constexpr std::size_t max_idle = 4;

struct host_port {
    std::string host;
    std::string port;
};

// "http://host:port" (checked by the config loader) -> host, port.
host_port split_url(const std::string& url) {
    auto rest = url.substr(url.find("://") + 3);
    const auto colon = rest.rfind(':');
    auto host = rest.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    return {host, rest.substr(colon + 1)};
}

// The gateway's error body: {"error":"...","code":N,"message":"..."}.
std::string error_text(const std::string& body, unsigned status) {
    boost::system::error_code ec;
    const auto v = json::parse(body, ec);
    if (!ec && v.is_object())
        if (const auto* m = v.as_object().if_contains("message"); m && m->is_string())
            return std::string(m->as_string());
    return "HTTP " + std::to_string(status);
}

}  // namespace

struct etcd_client::connection {
    explicit connection(asio::io_context& ioc) : stream(ioc) {}
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    std::size_t endpoint = 0;
    std::string host;
};

etcd_client::etcd_client(asio::io_context& ioc, std::vector<std::string> urls,
                         std::chrono::milliseconds timeout)
    : ioc_(ioc), urls_(std::move(urls)), timeout_(timeout) {}

etcd_client::~etcd_client() = default;

asio::awaitable<std::unique_ptr<etcd_client::connection>> etcd_client::connect(std::size_t endpoint,
                                                                               std::string& error) {
    const auto [host, port] = split_url(urls_[endpoint]);
    asio::ip::tcp::resolver resolver(ioc_);
    auto [rec, results] = co_await resolver.async_resolve(host, port, nothrow);
    if (rec) {
        error = urls_[endpoint] + ": " + rec.message();
        co_return nullptr;
    }
    auto c = std::make_unique<connection>(ioc_);
    c->endpoint = endpoint;
    c->host = host + ":" + port;
    c->stream.expires_after(timeout_);
    auto [cec, ep] = co_await c->stream.async_connect(results, nothrow);
    if (cec) {
        error = urls_[endpoint] + ": " + cec.message();
        co_return nullptr;
    }
    c->stream.socket().set_option(asio::ip::tcp::no_delay(true));
    co_return c;
}

asio::awaitable<etcd_client::attempt> etcd_client::exchange(connection& c, std::string_view method,
                                                            const std::string& body) {
    http::request<http::string_body> req{http::verb::post, "/v3/" + std::string(method), 11};
    req.set(http::field::host, c.host);
    req.set(http::field::content_type, "application/json");
    req.set("Grpc-Metadata-Hasleader", "true");
    req.body() = body;
    req.prepare_payload();
    c.stream.expires_after(timeout_);
    auto [wec, wn] = co_await http::async_write(c.stream, req, nothrow);
    if (wec) co_return attempt{{{}, urls_[c.endpoint] + ": " + wec.message()}, true, false};
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_reply_bytes);
    auto [rec, rn] = co_await http::async_read(c.stream, c.buffer, parser, nothrow);
    if (rec) co_return attempt{{{}, urls_[c.endpoint] + ": " + rec.message()}, true, false};
    auto& res = parser.get();
    const bool keep = res.keep_alive();
    if (res.result() != http::status::ok)
        co_return attempt{
            {{}, urls_[c.endpoint] + ": " + error_text(res.body(), res.result_int())}, false, keep};
    boost::system::error_code jec;
    auto v = json::parse(res.body(), jec);
    if (jec || !v.is_object())
        co_return attempt{
            {{}, urls_[c.endpoint] + ": the reply is not a JSON object"}, false, false};
    co_return attempt{{std::move(v.as_object()), ""}, false, keep};
}

asio::awaitable<etcd_client::reply> etcd_client::call(std::string_view method,
                                                      const json::object& body) {
    const auto text = json::serialize(body);
    std::string last_error = "no etcd endpoint";
    // Each endpoint once, starting with the one that answered last.
    for (std::size_t tried = 0; tried < urls_.size(); ++tried) {
        std::unique_ptr<connection> c;
        if (!idle_.empty() && idle_.back()->endpoint == current_) {
            c = std::move(idle_.back());
            idle_.pop_back();
        }
        const bool reused = c != nullptr;
        if (!c) c = co_await connect(current_, last_error);
        if (c) {
            auto a = co_await exchange(*c, method, text);
            // A kept-alive connection etcd closed meanwhile fails before any reply.
            if (a.transport && reused) {
                c = co_await connect(current_, last_error);
                if (c) a = co_await exchange(*c, method, text);
            }
            if (c && !a.transport) {  // etcd answered: success or its error, the caller's to judge
                if (a.keep && idle_.size() < max_idle) idle_.push_back(std::move(c));
                co_return std::move(a.r);
            }
            if (c) last_error = a.r.error;
        }
        idle_.clear();
        current_ = (current_ + 1) % urls_.size();
    }
    co_return reply{{}, last_error};
}

asio::awaitable<std::string> etcd_client::watch(const json::object& create,
                                                watch_handler on_message) {
    std::string error;
    std::unique_ptr<connection> c;
    watch_cancelled_ = false;
    for (std::size_t tried = 0; tried < urls_.size() && !c; ++tried) {
        c = co_await connect(current_, error);
        if (!c) current_ = (current_ + 1) % urls_.size();
    }
    if (!c) co_return error;
    if (watch_cancelled_) co_return "watch cancelled";  // while it connected
    watching_ = c.get();
    json::object body;
    body["create_request"] = create;
    http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
    req.set(http::field::host, c->host);
    req.set(http::field::content_type, "application/json");
    // etcd's "require leader": a member that loses quorum ends the watch instead of
    // keeping it open and silent.
    req.set("Grpc-Metadata-Hasleader", "true");
    req.body() = json::serialize(body);
    req.prepare_payload();
    auto [wec, wn] = co_await http::async_write(c->stream, req, nothrow);
    if (wec || !watching_) {
        watching_ = nullptr;
        co_return wec ? urls_[c->endpoint] + ": " + wec.message() : "watch cancelled";
    }
    c->stream
        .expires_never();  // a watch may be quiet for hours; the lease keepalive notices a dead etcd
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    auto [hec, hn] = co_await http::async_read_header(c->stream, c->buffer, parser, nothrow);
    if (!hec && parser.get().result() != http::status::ok)
        error = "watch refused: HTTP " + std::to_string(parser.get().result_int());
    if (hec) error = urls_[c->endpoint] + ": " + hec.message();
    json::stream_parser messages;
    while (error.empty()) {
        auto [rec, rn] = co_await http::async_read_some(c->stream, c->buffer, parser, nothrow);
        if (rec) {
            error = watching_ ? urls_[c->endpoint] + ": watch ended: " + rec.message()
                              : "watch cancelled";
            break;
        }
        auto& text = parser.get().body();
        const auto [used, stop] = take_messages(text, messages, on_message, error);
        text.erase(0, used);
        if (stop) {
            watching_ = nullptr;
            co_return "watch stopped";
        }
        if (parser.is_done()) error = "watch: the stream ended";
    }
    watching_ = nullptr;
    co_return error;
}

// Messages are whole JSON objects, one after another; a read may end inside one. Hands
// each complete one ("result" unwrapped) to `on_message`: {bytes used, it said stop}.
std::pair<std::size_t, bool> etcd_client::take_messages(const std::string& text,
                                                        boost::json::stream_parser& messages,
                                                        const watch_handler& on_message,
                                                        std::string& error) {
    std::size_t used = 0;
    while (used < text.size() && error.empty()) {
        while (used < text.size() &&
               (text[used] == '\n' || text[used] == '\r' || text[used] == ' '))
            ++used;
        if (used == text.size()) break;
        boost::system::error_code pec;
        used += messages.write_some(text.data() + used, text.size() - used, pec);
        if (pec) error = "watch: bad message: " + pec.message();
        if (!messages.done()) break;
        auto v = messages.release();
        messages.reset();
        const auto* o = v.if_object();
        const auto* result = o ? o->if_contains("result") : nullptr;
        if (!result || !result->is_object())
            error = "watch: error message: " + json::serialize(v);
        else if (!on_message(result->as_object()))
            return {used, true};
    }
    return {used, false};
}

void etcd_client::cancel_watch() {
    watch_cancelled_ = true;
    if (!watching_) return;
    boost::system::error_code ec;
    watching_->stream.socket().close(ec);
    watching_ = nullptr;
}

}  // namespace veer::cluster
