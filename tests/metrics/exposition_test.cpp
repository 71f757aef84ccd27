// The Prometheus exposition: the names of SPEC section 8, and clean under `promtool check
// metrics` (Debian's prometheus package; scripts/deps test installs it).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "metrics/exposition.hpp"

namespace veer::metrics {
namespace {

exposition_input sample() {
    exposition_input in;
    in.canary_bp = 1000;
    in.state = "progressing";
    in.rollbacks = 2;
    in.active_connections = 7;
    in.events = {{"rollback", 2}, {"step", 3}};
    for (const char* name : {"blue", "green"}) {
        exposition_input::pool p;
        p.name = name;
        for (int i = 0; i < 100; ++i) {
            p.total.latency.add(static_cast<std::uint64_t>(100 + i * 50));
            p.window.latency.add(static_cast<std::uint64_t>(100 + i * 50));
        }
        p.window.requests = 100;
        p.window.failures = 3;
        exposition_input::endpoint e;
        e.address = std::string("127.0.0.1:") + (name[0] == 'b' ? "9001" : "9101");
        e.results[static_cast<std::size_t>(result::s2xx)] = 97;
        e.results[static_cast<std::size_t>(result::s5xx)] = 3;
        e.grpc[0] = 95;  // OK
        e.grpc[14] = 2;  // UNAVAILABLE
        p.endpoints.push_back(e);
        in.pools.push_back(p);
    }
    return in;
}

TEST(exposition, has_the_spec_names) {
    const auto text = render(sample());
    for (const char* name :
         {"veer_requests_total{pool=\"blue\",endpoint=\"127.0.0.1:9001\",class=\"2xx\"} 97",
          "veer_request_duration_seconds_bucket{pool=\"green\",le=\"+Inf\"} 100",
          "veer_request_duration_seconds_sum",
          "veer_request_duration_seconds_count{pool=\"blue\"} 100", "veer_canary_weight 10",
          "veer_rollout_state{state=\"progressing\"} 1", "veer_rollout_state{state=\"idle\"} 0",
          "veer_rollbacks_total 2", "veer_events_total{kind=\"step\"} 3",
          "veer_endpoint_healthy{pool=\"blue\",endpoint=\"127.0.0.1:9001\"} 1",
          "veer_connections_active 7", "veer_slo_window_error_rate{pool=\"blue\"} 0.03",
          "veer_slo_window_latency_seconds{pool=\"blue\",quantile=\"0.99\"}",
          "veer_slo_window_latency_seconds_count",
          "veer_grpc_calls_total{pool=\"green\",endpoint=\"127.0.0.1:9101\",code=\"UNAVAILABLE\"} 2",
          "veer_grpc_calls_total{pool=\"blue\",endpoint=\"127.0.0.1:9001\",code=\"OK\"} 95"})
        EXPECT_NE(text.find(name), std::string::npos) << name;
}

TEST(exposition, fine_weights_keep_their_decimals) {
    auto in = sample();
    in.canary_bp = 50;
    EXPECT_NE(render(in).find("\nveer_canary_weight 0.5\n"), std::string::npos);
    in.canary_bp = 1225;
    EXPECT_NE(render(in).find("\nveer_canary_weight 12.25\n"), std::string::npos);
}

TEST(exposition, buckets_are_cumulative) {
    const auto text = render(sample());
    auto bucket = [&](const std::string& le) {
        const std::string key =
            "veer_request_duration_seconds_bucket{pool=\"blue\",le=\"" + le + "\"} ";
        const auto at = text.find(key);
        EXPECT_NE(at, std::string::npos) << key;
        return at == std::string::npos ? -1L : std::stol(text.substr(at + key.size()));
    };
    // 100 samples from 100us to 5.05ms in steps of 50us.
    const long half_ms = bucket("0.0005"), one_ms = bucket("0.001"), ten_ms = bucket("0.01");
    EXPECT_GE(half_ms, 8);  // 100..450us for sure; 500us sits in a bucket that straddles the bound
    EXPECT_LE(half_ms, 9);
    EXPECT_GE(one_ms, 18);
    EXPECT_LE(one_ms, 19);
    EXPECT_EQ(ten_ms, 100);
    EXPECT_EQ(bucket("+Inf"), 100);
}

TEST(exposition, passes_promtool) {
    const std::string path = ::testing::TempDir() + "veer_metrics.txt";
    {
        std::ofstream out(path);
        out << render(sample());
    }
    ASSERT_EQ(std::system("command -v promtool >/dev/null"), 0)
        << "promtool not found: install Debian's prometheus package (scripts/deps test)";
    const std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
    const int rc = std::system(cmd.c_str());
    std::ifstream in(path + ".out");
    const std::string said((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(rc, 0) << said;
}

}  // namespace
}  // namespace veer::metrics
