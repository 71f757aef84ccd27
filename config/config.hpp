// veer's configuration: the whole SPEC section 3 schema as plain data, and its loader.
// No Asio/Beast here: every module may include this cheaply.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace veer::config {

using duration = std::chrono::milliseconds;

struct tls_server {
    std::string cert;
    std::string key;
    // A new session ticket key this often; tickets of the one before still resume.
    std::chrono::milliseconds ticket_key_rotation{3'600'000};
};

struct tls_client {
    std::string sni;
    bool verify = true;
    std::string ca;  // empty: the system store
};

struct listener {
    std::string address = "0.0.0.0:8080";
    int threads = 0;  // 0 = one per core
    std::optional<tls_server> tls;
    bool http2 = true;  // ALPN h2 with tls, h2c with prior knowledge without (SPEC 10)
};

struct admin {
    std::string socket = "/tmp/veer.sock";
    unsigned socket_mode = 0600;
    std::string http = "127.0.0.1:9901";  // empty: no admin HTTP listener
};

struct health {
    bool enabled = true;  // false: no active checks (passive ejection stays)
    std::string path = "/healthz";
    // Only in [pools.NAME.health] (SPEC 12): another port of each endpoint (0: its own),
    // the Host header sent ("": the endpoint's address), the passing status range.
    int port = 0;
    std::string host;
    int expect_min = 200;
    int expect_max = 399;
    duration interval{2000};
    duration timeout{1000};
    int healthy_after = 2;
    int unhealthy_after = 3;
    int eject_after_failures = 5;
    duration eject_for{30000};
    // An h2 pool's endpoints answer grpc.health.v1.Health/Check (SERVING passes) instead of
    // a GET of `path` (SPEC 10). HTTP/1 pools keep the GET.
    bool grpc = false;
};

enum class balance { p2c, round_robin };

enum class protocol { http1, h2 };

struct pool {
    std::string name;
    std::vector<std::string> endpoints;  // "host:port", "[::1]:port"
    balance balance_ = balance::p2c;
    protocol protocol_ = protocol::http1;  // h2: with tls over ALPN h2, else h2c
    std::optional<tls_client> tls;
    struct health health;  // [health] with [pools.NAME.health]'s overrides
};

// One split rule: a header test and the pool it sends to. Exactly one of
// equals / prefix / present is set.
struct rule {
    std::string header;
    std::optional<std::string> equals;
    std::optional<std::string> prefix;
    bool present = false;
    std::string pool;  // "canary", "stable" or a pool name
};

struct split {
    std::string stable = "blue";
    int canary_bp = 0;  // split.canary_weight in basis points, 0..10000
    std::string sticky_header;  // at most one of sticky_header / sticky_cookie
    std::string sticky_cookie;
    std::vector<rule> rules;
};

// What counts as a failed request (slo.errors).
struct error_kinds {
    bool status_4xx = false;
    bool status_5xx = true;
    bool connect = true;
    bool timeout = true;
    bool reset = true;
    // slo.grpc_errors: the gRPC codes (bit n for code n) a call fails with (SPEC 10).
    std::uint32_t grpc = (1u << 2) | (1u << 4) | (1u << 8) | (1u << 13) | (1u << 14) | (1u << 15);
};

// "OK", "CANCELLED", ..., "UNAUTHENTICATED": gRPC's status codes 0..16 by name.
std::string_view grpc_code_name(int code);

struct slo {
    duration window{30000};
    duration evaluate_every{1000};
    std::int64_t min_requests = 100;
    std::optional<double> max_error_rate = 0.05;
    std::optional<duration> max_p95 = duration{200};
    std::optional<duration> max_p99 = duration{500};
    std::optional<duration> max_mean = duration{10000};
    std::optional<double> max_error_rate_increase = 0.02;
    std::optional<double> max_p99_ratio = 1.5;
    bool compare = true;
    double confidence = 0.99;
    int violations_to_rollback = 1;
    error_kinds errors;
    bool dry_run = false;
};

enum class strategy { canary, linear, all_at_once, manual };
// "canary", "linear", "all-at-once", "manual": the config's spelling, also in `status`.
std::string_view strategy_name(strategy s);
// The canary weights (basis points) of a strategy whose steps are not set: canary 10%,
// 100%; linear 10%, 20%, ..., 100%; all-at-once and manual 100%.
std::vector<int> default_steps(strategy s);

struct rollout {
    strategy strategy_ = strategy::canary;
    std::vector<int> steps{1000, 10000};  // basis points; from the strategy when not set
    duration step_interval{300000};
    duration bake{300000};
    bool auto_start = false;
};

struct timeouts {
    duration connect{2000};
    duration header_read{10000};
    duration upstream_response{30000};
    duration idle{60000};
    duration drain{30000};
};

struct limits {
    std::uint64_t max_header_bytes = 64 * 1024;
    std::uint64_t max_body_bytes = 0;  // 0 = unlimited
    std::int64_t max_connections = 10000;
    int max_concurrent_streams = 100;  // per HTTP/2 client connection
};

struct retry {
    bool on_connect = true;
    int attempts = 2;  // total tries
};

struct state {
    std::string path = "/tmp/veer-state.json";
};

enum class log_format { json, text };

struct log {
    std::string level = "info";  // trace debug info warn error
    std::string access_log;  // empty: off
    log_format format = log_format::json;
};

struct notify {
    std::string webhook;  // empty: off
};

// Fleet mode (SPEC 11): instances with the same name run one release through etcd.
struct cluster {
    std::vector<std::string> etcd;  // "http://host:port"; empty: a single instance
    std::string name = "veer";  // keys live under /veer/<name>/
    std::string instance;  // this instance's id; the loader fills "<hostname>:<port>"
    duration lease{2000};  // whole seconds, >= 2 s (etcd's minimum TTL)

    bool enabled() const { return !etcd.empty(); }
};

// Endpoints by DNS name (SPEC 12).
struct dns {
    std::vector<std::string> servers;  // "ip:port" resolvers; empty = the system's
    duration refresh{5000};
};

// External gates (SPEC 13): the service's own signals, judged with the canary.
enum class no_data { hold, pass, fail };

struct prometheus_gate {
    std::string name;
    std::string url;  // "http://host:port" with an optional path prefix
    std::string query;  // PromQL; {{canary}} and {{stable}} stand for the pools' names
    std::optional<double> max;  // exactly one of max / min
    std::optional<double> min;
    duration interval{10000};
    no_data on_no_data = no_data::hold;
};

struct alerts_gate {
    std::string listen;  // "ip:port"; empty: no receiver
    std::string token_file;  // required with listen: "Authorization: Bearer <token>"
    std::vector<std::pair<std::string, std::string>> match;  // labels a firing alert must carry
};

struct gates {
    std::vector<prometheus_gate> prometheus;
    alerts_gate alerts;
};

struct config {
    std::string file;  // where it was loaded from
    struct listener listener;
    struct admin admin;
    std::vector<pool> pools;  // in file order
    struct split split;
    struct health health;
    struct slo slo;
    struct rollout rollout;
    struct timeouts timeouts;
    struct limits limits;
    struct retry retry;
    struct state state;
    struct log log;
    struct notify notify;
    struct cluster cluster;
    struct gates gates;
    struct dns dns;

    const pool* find_pool(const std::string& name) const;
};

// The result of loading: a config, or every error found ("file:line:col: key: message").
struct load_result {
    std::optional<config> cfg;
    std::vector<std::string> errors;
};

// Reads and validates a TOML file. Never throws.
load_result load_file(const std::string& path);
// Same, from text; `file` only names the source in errors.
load_result load_string(const std::string& text, const std::string& file);

// "250ms", "2s", "5m", "1h", "1.5s" -> duration; nullopt on anything else.
std::optional<duration> parse_duration(std::string_view text);
// "64KiB", "1MiB", "512", "0", "10KB" -> bytes; nullopt on anything else.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace veer::config
