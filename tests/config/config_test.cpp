// Tests for config/config.cpp: the SPEC section 3 schema, its defaults, and errors that
// name file, line, column and key.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace veer::config {
namespace {

using namespace std::chrono_literals;
using errors = std::vector<std::string>;

constexpr std::string_view two_pools = R"(
[pools.blue]
endpoints = ["127.0.0.1:9001"]
[pools.green]
endpoints = ["127.0.0.1:9101"]
)";

// The text as the whole file: line numbers are the ones in the test.
load_result load_exact(std::string_view text) {
    return load_string(std::string(text), "test.toml");
}

// The text first, then two valid pools, so the text's line numbers stay as written.
load_result load(std::string_view text) {
    return load_string(std::string(text) + std::string(two_pools), "test.toml");
}

errors errors_of(std::string_view text) {
    auto result = load(text);
    EXPECT_FALSE(result.cfg.has_value());
    return result.errors;
}

errors errors_of_exact(std::string_view text) {
    auto result = load_exact(text);
    EXPECT_FALSE(result.cfg.has_value());
    return result.errors;
}

config valid(std::string_view text) {
    auto result = load(text);
    EXPECT_TRUE(result.errors.empty())
        << "first error: " << (result.errors.empty() ? "" : result.errors.front());
    return result.cfg.value_or(config{});
}

// --- whole documents -------------------------------------------------------------

TEST(config_load, full_config_with_every_key) {
    const auto result = load_exact(R"(
[listener]
address = "[::1]:8443"
threads = 4
tls = { cert = "conf/tls/cert.pem", key = "conf/tls/key.pem" }

[admin]
socket = "/run/veer/admin.sock"
socket_mode = "0660"
http = ""

[pools.green]
endpoints = ["10.0.0.1:80", "[fe80::1]:80"]
balance = "round_robin"
tls = { sni = "green.internal", verify = false, ca = "conf/ca.pem" }

[pools.blue]
endpoints = ["10.0.0.2:80", "10.0.0.3:8080"]
balance = "p2c"

[split]
stable = "green"
canary_weight = 25
sticky = { cookie = "session" }

[[split.rules]]
header = "X-Canary"
equals = "always"
pool = "canary"

[[split.rules]]
header = "X-Beta"
prefix = "team-"
pool = "blue"

[[split.rules]]
header = "X-Debug"
present = true
pool = "stable"

[health]
enabled = false
path = "/ready"
interval = "500ms"
timeout = "250ms"
healthy_after = 1
unhealthy_after = 2
eject_after_failures = 10
eject_for = "1m"

[slo]
window = "1m"
evaluate_every = "2s"
min_requests = 0
max_error_rate = 0.1
max_p95 = "1.5s"
max_p99 = "2s"
max_mean = "800ms"
max_error_rate_increase = 0
max_p99_ratio = 2
compare = false
confidence = 0.95
violations_to_rollback = 3
errors = ["4xx", "timeout"]
dry_run = true

[rollout]
strategy = "linear"
steps = [5, 25, 50, 100]
step_interval = "0s"
bake = "1h"
auto_start = true

[timeouts]
connect = "100ms"
header_read = "5s"
upstream_response = "1m"
idle = "90s"
drain = "10s"

[limits]
max_header_bytes = "16KiB"
max_body_bytes = "10MB"
max_connections = 500

[retry]
on = []
attempts = 1

[state]
path = "/var/lib/veer/state.json"

[log]
level = "debug"
access_log = "/var/log/veer/access.log"
format = "text"

[notify]
webhook = "http://127.0.0.1:9000/hook"
)");
    ASSERT_TRUE(result.errors.empty()) << result.errors.front();
    ASSERT_TRUE(result.cfg);
    const config& c = *result.cfg;
    EXPECT_EQ(c.file, "test.toml");

    EXPECT_EQ(c.listener.address, "[::1]:8443");
    EXPECT_EQ(c.listener.threads, 4);
    ASSERT_TRUE(c.listener.tls);
    EXPECT_EQ(c.listener.tls->cert, "conf/tls/cert.pem");
    EXPECT_EQ(c.listener.tls->key, "conf/tls/key.pem");

    EXPECT_EQ(c.admin.socket, "/run/veer/admin.sock");
    EXPECT_EQ(c.admin.socket_mode, 0660u);
    EXPECT_EQ(c.admin.http, "");

    // File order, not name order.
    ASSERT_EQ(c.pools.size(), 2u);
    EXPECT_EQ(c.pools[0].name, "green");
    EXPECT_EQ(c.pools[0].endpoints, (errors{"10.0.0.1:80", "[fe80::1]:80"}));
    EXPECT_EQ(c.pools[0].balance_, balance::round_robin);
    ASSERT_TRUE(c.pools[0].tls);
    EXPECT_EQ(c.pools[0].tls->sni, "green.internal");
    EXPECT_FALSE(c.pools[0].tls->verify);
    EXPECT_EQ(c.pools[0].tls->ca, "conf/ca.pem");
    EXPECT_EQ(c.pools[1].name, "blue");
    EXPECT_EQ(c.pools[1].endpoints, (errors{"10.0.0.2:80", "10.0.0.3:8080"}));
    EXPECT_EQ(c.pools[1].balance_, balance::p2c);
    EXPECT_FALSE(c.pools[1].tls);

    EXPECT_EQ(c.split.stable, "green");
    EXPECT_EQ(c.split.canary_bp, 2500);
    EXPECT_EQ(c.split.sticky_header, "");
    EXPECT_EQ(c.split.sticky_cookie, "session");
    ASSERT_EQ(c.split.rules.size(), 3u);
    EXPECT_EQ(c.split.rules[0].header, "X-Canary");
    EXPECT_EQ(c.split.rules[0].equals, "always");
    EXPECT_FALSE(c.split.rules[0].prefix);
    EXPECT_FALSE(c.split.rules[0].present);
    EXPECT_EQ(c.split.rules[0].pool, "canary");
    EXPECT_EQ(c.split.rules[1].prefix, "team-");
    EXPECT_FALSE(c.split.rules[1].equals);
    EXPECT_EQ(c.split.rules[1].pool, "blue");
    EXPECT_TRUE(c.split.rules[2].present);
    EXPECT_EQ(c.split.rules[2].pool, "stable");

    EXPECT_FALSE(c.health.enabled);
    EXPECT_EQ(c.health.path, "/ready");
    EXPECT_EQ(c.health.interval, 500ms);
    EXPECT_EQ(c.health.timeout, 250ms);
    EXPECT_EQ(c.health.healthy_after, 1);
    EXPECT_EQ(c.health.unhealthy_after, 2);
    EXPECT_EQ(c.health.eject_after_failures, 10);
    EXPECT_EQ(c.health.eject_for, 1min);

    EXPECT_EQ(c.slo.window, 1min);
    EXPECT_EQ(c.slo.evaluate_every, 2s);
    EXPECT_EQ(c.slo.min_requests, 0);
    EXPECT_EQ(c.slo.max_error_rate, 0.1);
    EXPECT_EQ(c.slo.max_p95, 1500ms);
    EXPECT_EQ(c.slo.max_p99, 2s);
    EXPECT_EQ(c.slo.max_mean, 800ms);
    EXPECT_EQ(c.slo.max_error_rate_increase, 0.0);
    EXPECT_EQ(c.slo.max_p99_ratio, 2.0);
    EXPECT_FALSE(c.slo.compare);
    EXPECT_EQ(c.slo.confidence, 0.95);
    EXPECT_EQ(c.slo.violations_to_rollback, 3);
    EXPECT_TRUE(c.slo.errors.status_4xx);
    EXPECT_FALSE(c.slo.errors.status_5xx);
    EXPECT_FALSE(c.slo.errors.connect);
    EXPECT_TRUE(c.slo.errors.timeout);
    EXPECT_FALSE(c.slo.errors.reset);
    EXPECT_TRUE(c.slo.dry_run);

    EXPECT_EQ(c.rollout.strategy_, strategy::linear);
    EXPECT_EQ(c.rollout.steps, (std::vector<int>{500, 2500, 5000, 10000}));
    EXPECT_EQ(c.rollout.step_interval, 0ms);
    EXPECT_EQ(c.rollout.bake, 1h);
    EXPECT_TRUE(c.rollout.auto_start);

    EXPECT_EQ(c.timeouts.connect, 100ms);
    EXPECT_EQ(c.timeouts.header_read, 5s);
    EXPECT_EQ(c.timeouts.upstream_response, 1min);
    EXPECT_EQ(c.timeouts.idle, 90s);
    EXPECT_EQ(c.timeouts.drain, 10s);

    EXPECT_EQ(c.limits.max_header_bytes, 16u * 1024);
    EXPECT_EQ(c.limits.max_body_bytes, 10'000'000u);
    EXPECT_EQ(c.limits.max_connections, 500);

    EXPECT_FALSE(c.retry.on_connect);
    EXPECT_EQ(c.retry.attempts, 1);

    EXPECT_EQ(c.state.path, "/var/lib/veer/state.json");

    EXPECT_EQ(c.log.level, "debug");
    EXPECT_EQ(c.log.access_log, "/var/log/veer/access.log");
    EXPECT_EQ(c.log.format, log_format::text);

    EXPECT_EQ(c.notify.webhook, "http://127.0.0.1:9000/hook");
}

// The example in SPEC section 3, as printed there, must stay valid.
TEST(config_load, spec_example_is_valid) {
    const auto result = load_exact(R"(
[listener]
address = "0.0.0.0:8080"        # host:port; [::1]:8080 for IPv6
threads = 0                      # 0 = one per core
tls = { cert = "conf/tls/cert.pem", key = "conf/tls/key.pem" }  # optional; TLS >= 1.2

[admin]
socket = "/tmp/veer.sock"
socket_mode = "0600"
http = "127.0.0.1:9901"

[pools.blue]
endpoints = ["127.0.0.1:9001", "127.0.0.1:9002"]
[pools.green]
endpoints = ["127.0.0.1:9101"]

[split]
stable = "blue"
canary_weight = 0
sticky = { header = "X-User-Id" }

[[split.rules]]
header = "X-Canary"
equals = "always"
pool = "canary"

[health]
path = "/healthz"
interval = "2s"
timeout = "1s"
healthy_after = 2
unhealthy_after = 3
eject_after_failures = 5
eject_for = "30s"

[slo]
window = "30s"
evaluate_every = "1s"
min_requests = 100
max_error_rate = 0.05
max_p95 = "200ms"
max_p99 = "500ms"
max_mean = "10s"
max_error_rate_increase = 0.02
max_p99_ratio = 1.5
compare = true
confidence = 0.99
violations_to_rollback = 1
errors = ["5xx", "connect", "timeout", "reset"]
dry_run = false

[rollout]
strategy = "canary"
steps = [10, 100]
step_interval = "5m"
bake = "5m"
auto_start = false

[timeouts]
connect = "2s"
header_read = "10s"
upstream_response = "30s"
idle = "60s"
drain = "30s"

[limits]
max_header_bytes = "64KiB"
max_body_bytes = "0"
max_connections = 10000

[retry]
on = ["connect"]
attempts = 2

[state]
path = "/tmp/veer-state.json"

[log]
level = "info"
access_log = ""
format = "json"

[notify]
webhook = ""
)");
    EXPECT_TRUE(result.errors.empty()) << result.errors.front();
    ASSERT_TRUE(result.cfg);
    EXPECT_EQ(result.cfg->split.sticky_header, "X-User-Id");
    EXPECT_EQ(result.cfg->pools[0].endpoints.size(), 2u);
}

TEST(config_load, two_pools_get_every_default) {
    const auto result = load_exact(two_pools);
    ASSERT_TRUE(result.errors.empty()) << result.errors.front();
    ASSERT_TRUE(result.cfg);
    const config& c = *result.cfg;

    EXPECT_EQ(c.listener.address, "0.0.0.0:8080");
    EXPECT_EQ(c.listener.threads, 0);
    EXPECT_FALSE(c.listener.tls);
    EXPECT_EQ(c.admin.socket, "/tmp/veer.sock");
    EXPECT_EQ(c.admin.socket_mode, 0600u);
    EXPECT_EQ(c.admin.http, "127.0.0.1:9901");

    ASSERT_EQ(c.pools.size(), 2u);
    EXPECT_EQ(c.pools[0].name, "blue");
    EXPECT_EQ(c.pools[0].endpoints, errors{"127.0.0.1:9001"});
    EXPECT_EQ(c.pools[0].balance_, balance::p2c);
    EXPECT_FALSE(c.pools[0].tls);
    EXPECT_EQ(c.pools[1].name, "green");

    EXPECT_EQ(c.split.stable, "blue");
    EXPECT_EQ(c.split.canary_bp, 0);
    EXPECT_EQ(c.split.sticky_header, "");
    EXPECT_EQ(c.split.sticky_cookie, "");
    EXPECT_TRUE(c.split.rules.empty());

    EXPECT_TRUE(c.health.enabled);
    EXPECT_EQ(c.health.path, "/healthz");
    EXPECT_EQ(c.health.interval, 2s);
    EXPECT_EQ(c.health.timeout, 1s);
    EXPECT_EQ(c.health.healthy_after, 2);
    EXPECT_EQ(c.health.unhealthy_after, 3);
    EXPECT_EQ(c.health.eject_after_failures, 5);
    EXPECT_EQ(c.health.eject_for, 30s);

    EXPECT_EQ(c.slo.window, 30s);
    EXPECT_EQ(c.slo.evaluate_every, 1s);
    EXPECT_EQ(c.slo.min_requests, 100);
    EXPECT_EQ(c.slo.max_error_rate, 0.05);
    EXPECT_EQ(c.slo.max_p95, 200ms);
    EXPECT_EQ(c.slo.max_p99, 500ms);
    EXPECT_EQ(c.slo.max_mean, 10s);
    EXPECT_EQ(c.slo.max_error_rate_increase, 0.02);
    EXPECT_EQ(c.slo.max_p99_ratio, 1.5);
    EXPECT_TRUE(c.slo.compare);
    EXPECT_EQ(c.slo.confidence, 0.99);
    EXPECT_EQ(c.slo.violations_to_rollback, 1);
    EXPECT_FALSE(c.slo.errors.status_4xx);
    EXPECT_TRUE(c.slo.errors.status_5xx);
    EXPECT_TRUE(c.slo.errors.connect);
    EXPECT_TRUE(c.slo.errors.timeout);
    EXPECT_TRUE(c.slo.errors.reset);
    EXPECT_FALSE(c.slo.dry_run);

    EXPECT_EQ(c.rollout.strategy_, strategy::canary);
    EXPECT_EQ(c.rollout.steps, (std::vector<int>{1000, 10000}));
    EXPECT_EQ(c.rollout.step_interval, 5min);
    EXPECT_EQ(c.rollout.bake, 5min);
    EXPECT_FALSE(c.rollout.auto_start);

    EXPECT_EQ(c.timeouts.connect, 2s);
    EXPECT_EQ(c.timeouts.header_read, 10s);
    EXPECT_EQ(c.timeouts.upstream_response, 30s);
    EXPECT_EQ(c.timeouts.idle, 60s);
    EXPECT_EQ(c.timeouts.drain, 30s);

    EXPECT_EQ(c.limits.max_header_bytes, 64u * 1024);
    EXPECT_EQ(c.limits.max_body_bytes, 0u);
    EXPECT_EQ(c.limits.max_connections, 10000);

    EXPECT_TRUE(c.retry.on_connect);
    EXPECT_EQ(c.retry.attempts, 2);
    EXPECT_EQ(c.state.path, "/tmp/veer-state.json");
    EXPECT_EQ(c.log.level, "info");
    EXPECT_EQ(c.log.access_log, "");
    EXPECT_EQ(c.log.format, log_format::json);
    EXPECT_EQ(c.notify.webhook, "");
}

TEST(config_load, stable_defaults_to_first_pool_when_there_is_no_blue) {
    const auto c = load_exact(R"(
pools.zeta.endpoints = ["127.0.0.1:1"]
pools.alpha.endpoints = ["127.0.0.1:2"]
)");
    ASSERT_TRUE(c.cfg) << c.errors.front();
    EXPECT_EQ(c.cfg->split.stable, "zeta");
    EXPECT_EQ(c.cfg->pools[1].name, "alpha");
}

TEST(config_load, find_pool) {
    const auto c = valid("");
    ASSERT_NE(c.find_pool("green"), nullptr);
    EXPECT_EQ(c.find_pool("green")->endpoints, errors{"127.0.0.1:9101"});
    EXPECT_EQ(c.find_pool("purple"), nullptr);
    EXPECT_EQ(c.find_pool(""), nullptr);
}

TEST(config_load, steps_default_per_strategy) {
    EXPECT_EQ(valid("rollout.strategy = \"canary\"").rollout.steps, (std::vector<int>{1000, 10000}));
    EXPECT_EQ(valid("rollout.strategy = \"linear\"").rollout.steps,
              (std::vector<int>{1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000}));
    EXPECT_EQ(valid("rollout.strategy = \"all-at-once\"").rollout.steps, (std::vector<int>{10000}));
    EXPECT_EQ(valid("rollout.strategy = \"manual\"").rollout.steps, (std::vector<int>{10000}));
    EXPECT_EQ(valid("rollout.steps = [100]").rollout.steps, (std::vector<int>{10000}));
}

TEST(config_load, error_lists_switch_on_only_what_they_name) {
    const auto c = valid("slo.errors = [\"connect\"]\nretry.on = [\"connect\"]");
    EXPECT_FALSE(c.slo.errors.status_4xx);
    EXPECT_FALSE(c.slo.errors.status_5xx);
    EXPECT_TRUE(c.slo.errors.connect);
    EXPECT_FALSE(c.slo.errors.timeout);
    EXPECT_FALSE(c.slo.errors.reset);
    EXPECT_TRUE(c.retry.on_connect);

    const auto none = valid("slo.errors = []");
    EXPECT_FALSE(none.slo.errors.status_5xx || none.slo.errors.connect || none.slo.errors.timeout);
}

TEST(config_load, listen_addresses_may_use_port_zero) {
    const auto c = valid("listener.address = \"127.0.0.1:0\"\nadmin.http = \"[::1]:0\"");
    EXPECT_EQ(c.listener.address, "127.0.0.1:0");
    EXPECT_EQ(c.admin.http, "[::1]:0");
}

TEST(config_load, sizes_as_integers_are_bytes) {
    const auto c = valid("[limits]\nmax_header_bytes = 1024\nmax_body_bytes = 1048576");
    EXPECT_EQ(c.limits.max_header_bytes, 1024u);
    EXPECT_EQ(c.limits.max_body_bytes, 1048576u);
}

// --- errors, one kind at a time, with line, column and key ---------------------------

TEST(config_errors, out_of_range_names_line_of_the_key) {
    EXPECT_EQ(errors_of(R"([slo]
window = "30s"
evaluate_every = "1s"
min_requests = 100
# the next limit is a percentage by mistake

max_error_rate = 5
)"),
              errors{"test.toml:7:1: slo.max_error_rate: must be between 0 and 1 (got 5)"});
}

TEST(config_errors, wrong_types) {
    EXPECT_EQ(errors_of(R"([listener]
threads = "4"
address = 8080
[slo]
compare = "yes"
confidence = "high"
errors = "5xx"
[split]
rules = 3
sticky = "X-User"
)"),
              (errors{
                  "test.toml:2:1: listener.threads: must be an integer (got a string)",
                  "test.toml:3:1: listener.address: must be a string (got an integer)",
                  "test.toml:5:1: slo.compare: must be a boolean (got a string)",
                  "test.toml:6:1: slo.confidence: must be a number (got a string)",
                  "test.toml:7:1: slo.errors: must be an array (got a string)",
                  "test.toml:9:1: split.rules: must be an array of tables (got an integer)",
                  "test.toml:10:1: split.sticky: must be a table (got a string)",
              }));
    EXPECT_EQ(errors_of("slo = 5"), errors{"test.toml:1:1: slo: must be a table (got an integer)"});
    EXPECT_EQ(errors_of("slo.errors = [\"5xx\", 4]"),
              errors{"test.toml:1:22: slo.errors[1]: must be a string (got an integer)"});
    EXPECT_EQ(errors_of("threads = 1.5"), errors{"test.toml:1:1: threads: unknown key"});
    EXPECT_EQ(errors_of("listener.threads = 1.5"),
              errors{"test.toml:1:10: listener.threads: must be an integer (got a float)"});
}

TEST(config_errors, durations) {
    EXPECT_EQ(
        errors_of(R"([health]
interval = 2
timeout = "1 s"
eject_for = "0s"
[timeouts]
connect = "1.5ms"
[rollout]
bake = "-1s"
)"),
        (errors{
            "test.toml:2:1: health.interval: must be a duration string like \"250ms\" (got an "
            "integer)",
            "test.toml:3:1: health.timeout: must be a duration string like \"250ms\" (got \"1 s\")",
            "test.toml:4:1: health.eject_for: must be greater than 0 (got \"0s\")",
            "test.toml:6:1: timeouts.connect: must be a duration string like \"250ms\" (got "
            "\"1.5ms\")",
            "test.toml:8:1: rollout.bake: must be a duration string like \"250ms\" (got \"-1s\")",
        }));
    // Zero is fine where waiting is optional.
    EXPECT_EQ(valid("rollout.step_interval = \"0s\"\nrollout.bake = \"0ms\"").rollout.bake, 0ms);
}

TEST(config_errors, evaluate_every_longer_than_window) {
    EXPECT_EQ(errors_of("[slo]\nwindow = \"5s\"\nevaluate_every = \"10s\""),
              errors{"test.toml:3:1: slo.evaluate_every: must not be longer than slo.window, "
                     "\"5s\" (got \"10s\")"});
    // Against the default window too.
    EXPECT_EQ(errors_of("slo.evaluate_every = \"1m\""),
              errors{"test.toml:1:5: slo.evaluate_every: must not be longer than slo.window, "
                     "\"30s\" (got \"1m\")"});
}

TEST(config_errors, sizes) {
    EXPECT_EQ(
        errors_of(R"([limits]
max_header_bytes = "2MiB"
max_body_bytes = -1
)"),
        (errors{
            "test.toml:2:1: limits.max_header_bytes: must be between 1KiB and 1MiB (got 2MiB)",
            "test.toml:3:1: limits.max_body_bytes: must not be negative (got -1)",
        }));
    EXPECT_EQ(
        errors_of(
            "[limits]\nmax_header_bytes = 1023\nmax_body_bytes = \"lots\"\nmax_connections = 0"),
        (errors{
            "test.toml:2:1: limits.max_header_bytes: must be between 1KiB and 1MiB (got 1023)",
            "test.toml:3:1: limits.max_body_bytes: must be a size like \"64KiB\" or a number of "
            "bytes (got \"lots\")",
            "test.toml:4:1: limits.max_connections: must be at least 1 (got 0)",
        }));
    EXPECT_EQ(errors_of("limits.max_body_bytes = true"),
              errors{"test.toml:1:8: limits.max_body_bytes: must be a size like \"64KiB\" or a "
                     "number of bytes (got a boolean)"});
}

TEST(config_errors, numeric_ranges) {
    EXPECT_EQ(
        errors_of(R"([listener]
threads = 257
[split]
canary_weight = 101
[health]
healthy_after = 0
unhealthy_after = 0
eject_after_failures = -1
[slo]
min_requests = -1
max_error_rate_increase = 1.5
max_p99_ratio = 0.5
confidence = 1
violations_to_rollback = 0
[retry]
attempts = 11
)"),
        (errors{
            "test.toml:2:1: listener.threads: must be between 0 and 256 (got 257)",
            "test.toml:4:1: split.canary_weight: must be a percent from 0 to 100 with at most two decimals (got 101)",
            "test.toml:6:1: health.healthy_after: must be at least 1 (got 0)",
            "test.toml:7:1: health.unhealthy_after: must be at least 1 (got 0)",
            "test.toml:8:1: health.eject_after_failures: must be at least 1 (got -1)",
            "test.toml:10:1: slo.min_requests: must be at least 0 (got -1)",
            "test.toml:11:1: slo.max_error_rate_increase: must be between 0 and 1 (got 1.5)",
            "test.toml:12:1: slo.max_p99_ratio: must be at least 1 (got 0.5)",
            "test.toml:13:1: slo.confidence: must be greater than 0.5 and less than 1 (got 1)",
            "test.toml:14:1: slo.violations_to_rollback: must be at least 1 (got 0)",
            "test.toml:16:1: retry.attempts: must be between 1 and 10 (got 11)",
        }));
    // An integer too large for the field is out of range, not truncated.
    EXPECT_EQ(errors_of("health.healthy_after = 4294967297"),
              errors{"test.toml:1:8: health.healthy_after: must be between 1 and 2147483647 (got "
                     "4294967297)"});
    EXPECT_EQ(
        errors_of("slo.confidence = 0.5"),
        errors{
            "test.toml:1:5: slo.confidence: must be greater than 0.5 and less than 1 (got 0.5)"});
    EXPECT_EQ(
        errors_of("slo.confidence = nan"),
        errors{
            "test.toml:1:5: slo.confidence: must be greater than 0.5 and less than 1 (got nan)"});
    EXPECT_EQ(errors_of("slo.max_error_rate = nan"),
              errors{"test.toml:1:5: slo.max_error_rate: must be between 0 and 1 (got nan)"});
}

TEST(config_errors, choices_and_strings) {
    EXPECT_EQ(errors_of(R"([rollout]
strategy = "yolo"
[log]
level = "verbose"
format = "xml"
[pools.red]
endpoints = ["127.0.0.1:7"]
balance = "random"
)"),
              (errors{
                  "test.toml:2:1: rollout.strategy: must be one of \"canary\", \"linear\", "
                  "\"all-at-once\", \"manual\" (got \"yolo\")",
                  "test.toml:4:1: log.level: must be one of \"trace\", \"debug\", \"info\", "
                  "\"warn\", \"error\" (got \"verbose\")",
                  "test.toml:5:1: log.format: must be one of \"json\", \"text\" (got \"xml\")",
                  "test.toml:8:1: pools.red.balance: must be one of \"p2c\", \"round_robin\" (got "
                  "\"random\")",
              }));
    EXPECT_EQ(errors_of(R"([admin]
socket = ""
socket_mode = "0800"
http = "localhost"
[health]
path = "healthz"
[state]
path = ""
[notify]
webhook = "https://hooks.example.com/x"
[listener]
address = "0.0.0.0"
)"),
              (errors{
                  "test.toml:2:1: admin.socket: must not be empty",
                  "test.toml:3:1: admin.socket_mode: must be octal digits from \"0000\" to "
                  "\"0777\" like \"0600\" (got \"0800\")",
                  "test.toml:4:1: admin.http: must be \"host:port\" or \"[v6]:port\" with a port "
                  "from 0 to 65535 (got \"localhost\")",
                  "test.toml:6:1: health.path: must be a request path starting with \"/\" (got "
                  "\"healthz\")",
                  "test.toml:8:1: state.path: must not be empty",
                  "test.toml:10:1: notify.webhook: must be empty or an \"http://\" URL (got "
                  "\"https://hooks.example.com/x\")",
                  "test.toml:12:1: listener.address: must be \"host:port\" or \"[v6]:port\" with a "
                  "port from 0 to 65535 (got \"0.0.0.0\")",
              }));
    EXPECT_EQ(errors_of("admin.socket_mode = \"1777\""),
              errors{"test.toml:1:7: admin.socket_mode: must be octal digits from \"0000\" to "
                     "\"0777\" like \"0600\" (got \"1777\")"});
    EXPECT_EQ(valid("admin.socket_mode = \"640\"").admin.socket_mode, 0640u);
}

TEST(config_errors, socket_path_length) {
    const std::string longest = "/tmp/" + std::string(101, 's');  // 106 bytes: fits
    EXPECT_EQ(valid("admin.socket = \"" + longest + "\"").admin.socket, longest);
    EXPECT_EQ(errors_of("admin.socket = \"" + longest + "s\""),
              errors{"test.toml:1:7: admin.socket: must be shorter than 107 bytes (got 107)"});
}

// SPEC 10: listener.http2, limits.max_concurrent_streams, pools.NAME.protocol and
// slo.grpc_errors.
TEST(config_load, http2_and_grpc_keys) {
    const auto d = valid("");
    EXPECT_TRUE(d.listener.http2);
    EXPECT_EQ(d.limits.max_concurrent_streams, 100);
    EXPECT_EQ(d.pools.front().protocol_, protocol::http1);
    EXPECT_EQ(d.slo.errors.grpc, (1u << 2) | (1u << 4) | (1u << 8) | (1u << 13) | (1u << 14) | (1u << 15));
    const auto c = load_exact(
        "listener.http2 = false\nlimits.max_concurrent_streams = 7\n"
        "slo.grpc_errors = [\"UNAVAILABLE\", \"NOT_FOUND\"]\n"
        "[pools.blue]\nendpoints = [\"127.0.0.1:1\"]\nprotocol = \"h2\"\n"
        "[pools.green]\nendpoints = [\"127.0.0.1:2\"]\n");
    ASSERT_TRUE(c.cfg) << c.errors.front();
    EXPECT_FALSE(c.cfg->listener.http2);
    EXPECT_EQ(c.cfg->limits.max_concurrent_streams, 7);
    EXPECT_EQ(c.cfg->slo.errors.grpc, (1u << 14) | (1u << 5));
    EXPECT_EQ(c.cfg->find_pool("blue")->protocol_, protocol::h2);
    EXPECT_EQ(grpc_code_name(14), "UNAVAILABLE");
    EXPECT_EQ(errors_of("slo.grpc_errors = [\"UNAVAIL\"]"),
              (errors{"test.toml:1:20: slo.grpc_errors[0]: must be a gRPC status code name such "
                      "as \"UNAVAILABLE\" (got \"UNAVAIL\")"}));
    EXPECT_FALSE(load("limits.max_concurrent_streams = 0").errors.empty());
}

TEST(config_load, ticket_key_rotation) {
    const auto tls = [](const std::string& extra) {
        return "[listener]\ntls = { cert = \"c.pem\", key = \"k.pem\"" + extra + " }\n";
    };
    EXPECT_EQ(valid(tls("")).listener.tls->ticket_key_rotation, std::chrono::hours(1));
    EXPECT_EQ(valid(tls(", ticket_key_rotation = \"10m\"")).listener.tls->ticket_key_rotation,
              std::chrono::minutes(10));
    EXPECT_FALSE(load(tls(", ticket_key_rotation = \"0s\"")).errors.empty());
}

TEST(config_load, grpc_health_checks_need_an_h2_pool) {
    EXPECT_FALSE(valid("").health.grpc);
    const auto c = load_exact(
        "[pools.blue]\nendpoints = [\"127.0.0.1:1\"]\nprotocol = \"h2\"\n"
        "[pools.blue.health]\ngrpc = true\n"
        "[pools.green]\nendpoints = [\"127.0.0.1:2\"]\n");
    ASSERT_TRUE(c.cfg) << c.errors.front();
    EXPECT_TRUE(c.cfg->find_pool("blue")->health.grpc);
    EXPECT_FALSE(c.cfg->find_pool("green")->health.grpc);
    EXPECT_TRUE(valid("health.grpc = true").health.grpc);  // for whichever pools are h2
    const auto bad = load_exact(
        "[pools.blue]\nendpoints = [\"127.0.0.1:1\"]\n[pools.blue.health]\ngrpc = true\n"
        "[pools.green]\nendpoints = [\"127.0.0.1:2\"]\n");
    EXPECT_EQ(bad.errors, errors{"test.toml:4:1: pools.blue.health.grpc: needs protocol = \"h2\" "
                                 "(gRPC health checks are HTTP/2)"});
}

TEST(config_load, weights_take_two_decimals) {
    // SPEC 12: percentages with up to two decimals, held as basis points.
    EXPECT_EQ(valid("split.canary_weight = 0.5").split.canary_bp, 50);
    EXPECT_EQ(valid("split.canary_weight = 12.25").split.canary_bp, 1225);
    EXPECT_EQ(valid("split.canary_weight = 0.01").split.canary_bp, 1);
    EXPECT_EQ(valid("rollout.steps = [0.1, 0.5, 2.25, 100]").rollout.steps,
              (std::vector<int>{10, 50, 225, 10000}));
    EXPECT_EQ(errors_of("split.canary_weight = 0.125"),
              (errors{"test.toml:1:7: split.canary_weight: must be a percent from 0 to 100 with "
                      "at most two decimals (got 0.125)"}));
    EXPECT_EQ(errors_of("rollout.steps = [0.001, 100]"),
              (errors{"test.toml:1:18: rollout.steps[0]: must be a percent above 0 and up to 100 "
                      "with at most two decimals (got 0.001)"}));
}

TEST(config_errors, steps) {
    EXPECT_EQ(
        errors_of("[rollout]\nsteps = [10, 5, 0, 50]"),
        (errors{
            "test.toml:2:1: rollout.steps: must end at 100 (got 50)",
            "test.toml:2:14: rollout.steps[1]: must be greater than the step before, 10 (got 5)",
            "test.toml:2:17: rollout.steps[2]: must be a percent above 0 and up to 100 with at most two decimals (got 0)",
        }));
    EXPECT_EQ(errors_of("[rollout]\nsteps = []"),
              errors{"test.toml:2:1: rollout.steps: must list at least one step"});
    EXPECT_EQ(errors_of("[rollout]\nsteps = [50, 150]"),
              (errors{"test.toml:2:1: rollout.steps: must end at 100 (got 150)",
                      "test.toml:2:14: rollout.steps[1]: must be a percent above 0 and up to 100 with at most two decimals (got 150)"}));
    EXPECT_EQ(errors_of("[rollout]\nstrategy = \"manual\"\nsteps = [100]"),
              errors{"test.toml:3:1: rollout.steps: must be left out with strategy \"manual\", "
                     "which sets its own"});
    EXPECT_EQ(errors_of("[rollout]\nsteps = [10, \"20\", 100]"),
              errors{"test.toml:2:14: rollout.steps[1]: must be a number (got a string)"});
}

TEST(config_errors, error_and_retry_kinds) {
    EXPECT_EQ(errors_of("[slo]\nerrors = [\"5xx\", \"oops\"]\n[retry]\non = [\"timeout\"]"),
              (errors{
                  "test.toml:2:18: slo.errors[1]: must be one of \"4xx\", \"5xx\", \"connect\", "
                  "\"timeout\", \"reset\" (got \"oops\")",
                  "test.toml:4:7: retry.on[0]: must be one of \"connect\" (got \"timeout\")",
              }));
}

TEST(config_errors, tls_and_sticky_tables) {
    EXPECT_EQ(errors_of(R"([listener]
tls = { cert = "c.pem" }
[split]
sticky = { header = "X-User", cookie = "session" }
[pools.red]
endpoints = ["127.0.0.1:7"]
tls = { verify = "yes" }
)"),
              (errors{
                  "test.toml:2:7: listener.tls.key: is required",
                  "test.toml:4:10: split.sticky: needs exactly one of header or cookie",
                  "test.toml:7:9: pools.red.tls.verify: must be a boolean (got a string)",
              }));
    EXPECT_EQ(errors_of("split.sticky = {}"),
              errors{"test.toml:1:16: split.sticky: needs exactly one of header or cookie"});
    EXPECT_EQ(errors_of("split.sticky = { header = \"\" }"),
              errors{"test.toml:1:18: split.sticky.header: must be a header name made of token "
                     "characters (got \"\")"});
    EXPECT_EQ(errors_of("listener.tls = { cert = \"\", key = \"k\" }"),
              errors{"test.toml:1:18: listener.tls.cert: must not be empty"});
}

TEST(config_errors, parse_error_has_location) {
    const auto result = load_exact("[slo]\nwindow = \"30s\"\nmax_error_rate = \n");
    ASSERT_FALSE(result.cfg);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].rfind("test.toml:3:18: parse error: ", 0), 0u) << result.errors[0];

    const auto duplicate = load_exact("[slo]\nwindow = \"1s\"\nwindow = \"2s\"\n");
    ASSERT_EQ(duplicate.errors.size(), 1u);
    EXPECT_EQ(duplicate.errors[0].rfind("test.toml:3:", 0), 0u) << duplicate.errors[0];
    EXPECT_NE(duplicate.errors[0].find("parse error"), std::string::npos);
}

TEST(config_errors, several_errors_at_once_in_file_order) {
    EXPECT_EQ(errors_of(R"([timeouts]
idle = "forever"
[split]
canary_weight = 150
[listener]
threads = -1
[slo]
max_eror_rate = 0.1
)"),
              (errors{
                  "test.toml:2:1: timeouts.idle: must be a duration string like \"250ms\" (got "
                  "\"forever\")",
                  "test.toml:4:1: split.canary_weight: must be a percent from 0 to 100 with at most two decimals (got 150)",
                  "test.toml:6:1: listener.threads: must be between 0 and 256 (got -1)",
                  "test.toml:8:1: slo.max_eror_rate: unknown key",
              }));
}

// --- unknown keys ---------------------------------------------------------------

TEST(config_unknown_keys, at_every_level) {
    EXPECT_EQ(errors_of(R"(verbose = true
[slo]
max_eror_rate = 0.1
[listener]
tls = { cert = "c.pem", key = "k.pem", chain = "x.pem" }
[split]
sticky = { header = "X-User", hash = "fnv" }
[[split.rules]]
header = "X-Canary"
equals = "1"
pool = "canary"
weight = 5
[pools.red]
endpoints = ["127.0.0.1:7"]
weight = 3
tls = { sni = "x", insecure = true }
[metrics]
path = "/metrics"
)"),
              (errors{
                  "test.toml:1:1: verbose: unknown key",
                  "test.toml:3:1: slo.max_eror_rate: unknown key",
                  "test.toml:5:40: listener.tls.chain: unknown key",
                  "test.toml:7:31: split.sticky.hash: unknown key",
                  "test.toml:12:1: split.rules[0].weight: unknown key",
                  "test.toml:15:1: pools.red.weight: unknown key",
                  "test.toml:16:20: pools.red.tls.insecure: unknown key",
                  // Only the unknown table, not each key inside it.
                  "test.toml:17:2: metrics: unknown key",
              }));
}

// --- pools and endpoints --------------------------------------------------------

TEST(config_pools, need_two_pools_with_endpoints) {
    EXPECT_EQ(
        errors_of_exact("[pools.blue]\nendpoints = [\"127.0.0.1:1\"]\n"),
        errors{
            "test.toml:1:2: pools: needs at least two pools, a stable one and a canary (got 1)"});
    EXPECT_EQ(
        errors_of_exact("[listener]\n"),
        errors{
            "test.toml:1:1: pools: needs at least two pools, a stable one and a canary (got 0)"});
    EXPECT_EQ(errors_of_exact(R"([pools.blue]
[pools.green]
endpoints = []
[pools.red]
endpoints = "127.0.0.1:1"
)"),
              (errors{
                  "test.toml:1:1: pools.blue.endpoints: is required",
                  "test.toml:3:1: pools.green.endpoints: must list at least one endpoint",
                  "test.toml:5:1: pools.red.endpoints: must be an array (got a string)",
              }));
    EXPECT_EQ(errors_of_exact("pools.blue = 1\npools.green.endpoints = [\"127.0.0.1:1\"]"),
              errors{"test.toml:1:7: pools.blue: must be a table (got an integer)"});
}

TEST(config_pools, endpoint_syntax) {
    const auto check = [](const std::string& endpoint) {
        return load_exact("pools.blue.endpoints = [\"" + endpoint +
                          "\"]\npools.green.endpoints = [\"127.0.0.1:1\"]")
            .errors;
    };
    for (const char* good : {"10.0.0.1:1", "127.0.0.1:65535", "[::1]:8080", "[2001:db8::7]:443",
                             "[::ffff:10.0.0.1]:80"})
        EXPECT_TRUE(check(good).empty()) << good << ": " << check(good).front();
    // DNS names (SPEC 12): accepted by the same parser the runtime resolves them with.
    for (const char* name : {"localhost:80", "backend-1.internal:8080", "my_service:80",
                             "Api.Internal.:443"})
        EXPECT_TRUE(check(name).empty()) << name << ": " << check(name).front();
    // Well-formed, but not what veer can connect to (a zone): refused here rather than
    // accepted and then answered 502.
    EXPECT_EQ(check("[fe80::1%eth0]:80"),
              errors{"test.toml:1:25: pools.blue.endpoints[0]: must be an IP address or a DNS "
                     "name with a port: \"1.2.3.4:80\", \"[::1]:80\" or \"api.internal:80\" (got "
                     "\"[fe80::1%eth0]:80\")"});
    for (const char* bad :
         {"10.0.0.1",     "10.0.0.1:0",    "10.0.0.1:65536", "10.0.0.1:+80",       "10.0.0.1:8o",
          "10.0.0.1:",    ":80",           "::1:8080",       "[::1]8080",          "[::1]",
          "[::g]:80",     "[fe80::1%]:80", "256.0.0.1:80",   "1.2.3:80",           "-bad.host:80",
          "bad-.host:80", "a..b:80",       "host name:80",   "http://10.0.0.1:80", ""}) {
        EXPECT_EQ(check(bad), errors{"test.toml:1:25: pools.blue.endpoints[0]: must be "
                                     "\"host:port\" or \"[v6]:port\" with a "
                                     "port from 1 to 65535 (got \"" +
                                     std::string(bad) + "\")"})
            << bad;
    }
}

TEST(config_pools, endpoint_listed_twice) {
    EXPECT_EQ(errors_of_exact(R"([pools.blue]
endpoints = ["127.0.0.1:9001", "[::1]:80", "[2001:DB8::1]:81"]
[pools.green]
endpoints = ["127.0.0.1:9001",
             "[0:0::1]:80",
             "[2001:db8:0::1]:81"]
[pools.red]
endpoints = ["10.0.0.1:1", "10.0.0.1:1"]
)"),
              (errors{
                  "test.toml:4:14: pools.green.endpoints[0]: \"127.0.0.1:9001\" is already listed "
                  "as pools.blue.endpoints[0]",
                  "test.toml:5:14: pools.green.endpoints[1]: \"[0:0::1]:80\" is already listed as "
                  "pools.blue.endpoints[1]",
                  "test.toml:6:14: pools.green.endpoints[2]: \"[2001:db8:0::1]:81\" is already "
                  "listed as pools.blue.endpoints[2]",
                  "test.toml:8:28: pools.red.endpoints[1]: \"10.0.0.1:1\" is already listed as "
                  "pools.red.endpoints[0]",
              }));
}

TEST(config_pools, names) {
    EXPECT_EQ(errors_of_exact(R"([pools.canary]
endpoints = ["127.0.0.1:1"]
[pools."a b"]
endpoints = ["127.0.0.1:2"]
)"),
              (errors{
                  "test.toml:1:1: pools.canary: \"canary\" and \"stable\" name roles in "
                  "split.rules; pick another pool name",
                  "test.toml:3:1: pools.a b: a pool name may use letters, digits, '_' and '-' only",
              }));
}

TEST(config_pools, split_stable_must_name_a_pool) {
    EXPECT_EQ(errors_of("[split]\nstable = \"purple\""),
              errors{"test.toml:2:1: split.stable: must name a pool in [pools] (got \"purple\")"});
}

// --- split rules ----------------------------------------------------------------

TEST(config_rules, unknown_pool) {
    EXPECT_EQ(errors_of(R"([[split.rules]]
header = "X-Canary"
equals = "1"
pool = "purple"
)"),
              errors{"test.toml:4:1: split.rules[0].pool: must be \"canary\", \"stable\" or a pool "
                     "in [pools] (got \"purple\")"});
}

TEST(config_rules, exactly_one_test) {
    EXPECT_EQ(errors_of(R"([[split.rules]]
header = "X-Canary"
equals = "1"
prefix = "1"
pool = "canary"

[[split.rules]]
header = "X-Canary"
pool = "canary"

[[split.rules]]
header = "X-Canary"
present = false
pool = "canary"
)"),
              (errors{
                  "test.toml:1:1: split.rules[0]: must have only one of equals, prefix or present",
                  "test.toml:7:1: split.rules[1]: needs one of equals, prefix or present",
                  "test.toml:13:1: split.rules[2].present: must be true (leave it out to test "
                  "equals or prefix instead)",
              }));
}

TEST(config_rules, header_and_pool_are_required) {
    EXPECT_EQ(errors_of(R"(
[[split.rules]]
equals = "1"

[[split.rules]]
header = "X Canary"
present = true
pool = "green"
)"),
              (errors{
                  "test.toml:2:1: split.rules[0].header: is required",
                  "test.toml:2:1: split.rules[0].pool: is required",
                  "test.toml:6:1: split.rules[1].header: must be a header name made of token "
                  "characters (got \"X Canary\")",
              }));
    EXPECT_EQ(errors_of("split.rules = [1]"),
              errors{"test.toml:1:16: split.rules[0]: must be a table"});
}

TEST(config_rules, inline_array_of_rules) {
    const auto c = valid(R"(split.rules = [
  { header = "X-Canary", equals = "always", pool = "green" },
  { header = "X-Beta", prefix = "b", pool = "stable" },
])");
    ASSERT_EQ(c.split.rules.size(), 2u);
    EXPECT_EQ(c.split.rules[0].pool, "green");
    EXPECT_EQ(c.split.rules[1].prefix, "b");
}

// --- value parsers --------------------------------------------------------------

TEST(parse_duration, accepts) {
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("2s"), 2s);
    EXPECT_EQ(parse_duration("5m"), 5min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("1.5s"), 1500ms);
    EXPECT_EQ(parse_duration("0.25s"), 250ms);
    EXPECT_EQ(parse_duration("0.001s"), 1ms);
    EXPECT_EQ(parse_duration("1.5m"), 90s);
    EXPECT_EQ(parse_duration("1.500s"), 1500ms);
    EXPECT_EQ(parse_duration("1.000000000000s"), 1s);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    EXPECT_EQ(parse_duration("0ms"), 0ms);
    EXPECT_EQ(parse_duration("007s"), 7s);
    EXPECT_EQ(parse_duration("9223372036854775807ms"), duration::max());
}

TEST(parse_duration, rejects) {
    for (const char* bad : {"",
                            "s",
                            "5",
                            "0",
                            "-1s",
                            "+1s",
                            "1.5ms",
                            "0.0001s",
                            ".5s",
                            "1.s",
                            "1 s",
                            " 1s",
                            "1s ",
                            "1sec",
                            "1S",
                            "1d",
                            "1us",
                            "1e3ms",
                            "1m30s",
                            "1,5s",
                            "0x10s",
                            "99999999999999999999ms",
                            "9223372036854775808ms",
                            "2562047788016h",
                            "9223372036854775.808s"}) {
        EXPECT_EQ(parse_duration(bad), std::nullopt) << bad;
    }
    // Right at the top of the range.
    EXPECT_EQ(parse_duration("9223372036854775.807s"), duration::max());
    EXPECT_EQ(parse_duration("2562047788015h"), duration{2562047788015LL * 3'600'000});
}

TEST(parse_size, accepts) {
    EXPECT_EQ(parse_size("64KiB"), 65536u);
    EXPECT_EQ(parse_size("1MiB"), 1048576u);
    EXPECT_EQ(parse_size("1GiB"), 1073741824u);
    EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
    EXPECT_EQ(parse_size("10KB"), 10000u);
    EXPECT_EQ(parse_size("10kB"), 10000u);
    EXPECT_EQ(parse_size("3MB"), 3'000'000u);
    EXPECT_EQ(parse_size("512"), 512u);
    EXPECT_EQ(parse_size("512B"), 512u);
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("0KiB"), 0u);
    EXPECT_EQ(parse_size("18446744073709551615"), 18446744073709551615ull);
    EXPECT_EQ(parse_size("16777215TiB"), 16777215ull << 40);
}

TEST(parse_size, rejects) {
    for (const char* bad :
         {"", "KiB", "-1", "+1", "1.5MiB", "64 KiB", " 64KiB", "64KiB ", "64kib", "64K", "64k",
          "64Kb", "1e3", "0x10", "18446744073709551616", "16777216TiB", "18446744073709552KB"}) {
        EXPECT_EQ(parse_size(bad), std::nullopt) << bad;
    }
}

// --- files ----------------------------------------------------------------------

TEST(load_file, reads_a_file_and_names_it_in_errors) {
    const std::filesystem::path dir = testing::TempDir();
    const std::string path = (dir / "veer_config_test.toml").string();
    {
        std::ofstream out(path);
        out << two_pools << "[slo]\nmax_error_rate = 5\n";
    }
    const auto bad = load_file(path);
    EXPECT_FALSE(bad.cfg);
    EXPECT_EQ(bad.errors,
              errors{path + ":7:1: slo.max_error_rate: must be between 0 and 1 (got 5)"});

    {
        std::ofstream out(path);
        out << two_pools;
    }
    const auto good = load_file(path);
    ASSERT_TRUE(good.cfg);
    EXPECT_EQ(good.cfg->file, path);
    std::filesystem::remove(path);
}

TEST(load_file, missing_file_is_an_error_not_an_exception) {
    const auto result = load_file("/nonexistent/veer.toml");
    EXPECT_FALSE(result.cfg);
    EXPECT_EQ(result.errors,
              errors{"/nonexistent/veer.toml: cannot read: No such file or directory"});
    const auto dir = load_file(testing::TempDir());
    EXPECT_FALSE(dir.cfg);
    EXPECT_EQ(dir.errors.size(), 1u);
}

}  // namespace
}  // namespace veer::config

namespace veer::config {
namespace {

// Inputs that break toml++ 3.3's own assumptions (an assert, or UB in a release build),
// found by fuzz_config and kept in tests/fuzz/seeds/config: each is a clean parse error.
TEST(config_fuzz_regressions, table_header_starting_with_a_non_key_character) {
    EXPECT_EQ(errors_of("[+tate]\npath = \"x\"\n"),
              (errors{"test.toml:1:2: parse error: expected a key in the table header"}));
    EXPECT_EQ(errors_of("[[ +rules]]\n"),
              (errors{"test.toml:1:4: parse error: expected a key in the table header"}));
}

TEST(config_fuzz_regressions, non_ascii_outside_comments) {
    // U+FEFB at the start of the file sent toml++ into an unreachable branch.
    EXPECT_EQ(errors_of("\xEF\xBB\xBB[slo]\n"),
              (errors{"test.toml:1:1: parse error: non-ASCII character outside a comment"}));
    // In a comment anything goes, also after a quoted '#'.
    const auto c = valid(
        "# r\xC3\xA9sum\xC3\xA9 \xE2\x86\x92 fine\n[slo]\nwindow = \"10s\" # \xE2\x80\x94 also "
        "fine\n");
    EXPECT_EQ(c.slo.window, duration(10000));
}

}  // namespace
}  // namespace veer::config

namespace veer::config {
namespace {

TEST(config_load, cluster_and_gates) {
    const auto r = load(R"toml([cluster]
etcd = ["http://127.0.0.1:2379", "http://etcd-2:2379"]
name = "shop"
lease = "3s"
[[gates.prometheus]]
name = "checkout-failures"
url = "http://127.0.0.1:9090"
query = 'sum(rate(checkout_failed_total{version="{{canary}}"}[1m]))'
max = 0.01
interval = "10s"
on_no_data = "fail"
[[gates.prometheus]]
name = "queue"
url = "http://prom:9090/prometheus"
query = "min(up)"
min = 1
[gates.alerts]
listen = "127.0.0.1:9902"
token_file = "/etc/veer/alert-token"
match = { severity = "critical", team = "shop" }
)toml");
    ASSERT_TRUE(r.cfg) << (r.errors.empty() ? "" : r.errors.front());
    const auto& c = *r.cfg;
    EXPECT_TRUE(c.cluster.enabled());
    EXPECT_EQ(c.cluster.etcd.size(), 2u);
    EXPECT_EQ(c.cluster.lease, duration{3000});
    ASSERT_EQ(c.gates.prometheus.size(), 2u);
    EXPECT_EQ(c.gates.prometheus[0].max, 0.01);
    EXPECT_EQ(c.gates.prometheus[0].on_no_data, no_data::fail);
    EXPECT_EQ(c.gates.prometheus[1].min, 1.0);
    EXPECT_EQ(c.gates.prometheus[1].interval, duration{10000});
    ASSERT_EQ(c.gates.alerts.match.size(), 2u);
    EXPECT_EQ(c.gates.alerts.match[0],
              (std::pair<std::string, std::string>{"severity", "critical"}));
    EXPECT_FALSE(load("").cfg->cluster.enabled());
}

TEST(config_errors, cluster_and_gates) {
    EXPECT_EQ(errors_of("[cluster]\netcd = [\"127.0.0.1:2379\"]").size(), 1u);
    EXPECT_EQ(errors_of("[cluster]\nlease = \"1s\"").size(), 1u);
    EXPECT_EQ(errors_of("[cluster]\nlease = \"2500ms\"").size(), 1u);
    EXPECT_EQ(errors_of("[cluster]\nname = \"a/b\"").size(), 1u);
    EXPECT_EQ(
        errors_of("[[gates.prometheus]]\nname = \"g\"\nurl = \"http://p:9090\"\nquery = \"up\"")
            .size(),
        1u)
        << "needs max or min";
    EXPECT_EQ(
        errors_of("[[gates.prometheus]]\nname = \"g\"\nurl = \"http://p:9090\"\nquery = \"up\"\n"
                  "max = 1\nmin = 0")
            .size(),
        1u);
    EXPECT_EQ(
        errors_of(
            "[[gates.prometheus]]\nname = \"g\"\nurl = \"https://p\"\nquery = \"up\"\nmax = 1")
            .size(),
        1u);
    EXPECT_EQ(
        errors_of(
            "[[gates.prometheus]]\nname = \"g\"\nurl = \"http://p:1\"\nquery = \"up\"\nmax = 1\n"
            "[[gates.prometheus]]\nname = \"g\"\nurl = \"http://p:1\"\nquery = \"up\"\nmax = 2")
            .size(),
        1u)
        << "two gates of one name";
    EXPECT_EQ(errors_of("[gates.alerts]\nlisten = \"127.0.0.1:9902\"").size(), 1u)
        << "no token_file";
    EXPECT_EQ(errors_of("[gates.alerts]\nlisten = \"here\"\ntoken_file = \"/t\"").size(), 1u);
}

}  // namespace
}  // namespace veer::config

namespace veer::config {
namespace {

TEST(config_load, pool_health_overrides_the_defaults) {
    const auto r = load_exact(R"toml([health]
interval = "5s"
eject_after_failures = 7
[pools.blue]
endpoints = ["127.0.0.1:9001"]
[pools.blue.health]
port = 9002
host = "shop.internal"
expect = [200, 204]
interval = "1s"
[pools.green]
endpoints = ["127.0.0.1:9101"]
[pools.green.health]
enabled = false
)toml");
    ASSERT_TRUE(r.cfg) << (r.errors.empty() ? "" : r.errors.front());
    const auto& blue = r.cfg->find_pool("blue")->health;
    EXPECT_EQ(blue.port, 9002);
    EXPECT_EQ(blue.host, "shop.internal");
    EXPECT_EQ(blue.expect_min, 200);
    EXPECT_EQ(blue.expect_max, 204);
    EXPECT_EQ(blue.interval, duration{1000});
    EXPECT_EQ(blue.eject_after_failures, 7) << "what the pool does not set comes from [health]";
    const auto& green = r.cfg->find_pool("green")->health;
    EXPECT_FALSE(green.enabled);
    EXPECT_EQ(green.interval, duration{5000});
    EXPECT_EQ(green.port, 0);
}

TEST(config_errors, pool_health) {
    const auto bad = [](std::string_view body) {
        return load_exact(
                   std::string(
                       "[pools.blue]\nendpoints = [\"127.0.0.1:9001\"]\n[pools.blue.health]\n") +
                   std::string(body) + "\n[pools.green]\nendpoints = [\"127.0.0.1:9101\"]\n")
            .errors.size();
    };
    EXPECT_EQ(bad("expect = [399, 200]"), 1u);
    EXPECT_EQ(bad("expect = [200]"), 1u);
    EXPECT_EQ(bad("expect = [0, 700]"), 1u);
    EXPECT_EQ(bad("port = 70000"), 1u);
    EXPECT_EQ(bad("hots = \"x\""), 1u);
    EXPECT_EQ(bad("port = 9002"), 0u);
    EXPECT_EQ(load("[health]\nport = 9002").errors.size(), 1u) << "port is per pool only";
}

}  // namespace
}  // namespace veer::config
