// The Prometheus text exposition format (0.0.4) for veer's metrics (SPEC section 8).
// prometheus-cpp is not packaged in Debian 12, so the format is written here; the tests
// run its output through `promtool check metrics`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "metrics/registry.hpp"

namespace veer::metrics {

struct exposition_input {
    struct endpoint {
        std::string address;
        bool healthy = true;
        result_counts results{};
        grpc_counts grpc{};  // gRPC calls by status code
    };
    struct pool {
        std::string name;
        window_stats total;  // since start
        window_stats window;  // over slo.window
        std::vector<endpoint> endpoints;
    };
    std::vector<pool> pools;
    int canary_bp = 0;  // basis points
    std::string state;
    std::uint64_t rollbacks = 0;
    std::int64_t active_connections = 0;
    std::uint64_t refused_connections = 0;
    std::vector<std::pair<std::string, std::uint64_t>> events;  // by kind, since start
    std::uint64_t webhook_sent = 0;
    std::uint64_t webhook_dropped = 0;
    std::uint64_t dns_failures = 0;  // refreshes of endpoint names that failed (SPEC 12)
    bool stable_unhealthy = false;  // SPEC 12's stable alarm
    struct cluster {
        bool leader = false;
        std::uint64_t instances = 0;  // live instances (election keys) this one sees
        bool etcd_up = false;
        std::uint64_t etcd_writes = 0;
        std::uint64_t refused_writes = 0;
        std::uint64_t report_bytes = 0;
    };
    std::optional<cluster> fleet;  // fleet mode only (SPEC 11)
    struct gate {
        std::string name;
        std::optional<double> value;  // the last reading, if any
        std::uint64_t errors = 0;
    };
    std::vector<gate> gates;  // SPEC 13
    std::optional<std::pair<std::uint64_t, std::uint64_t>> alerts;  // received, refused
};

std::string render(const exposition_input& in);

}  // namespace veer::metrics
