#include "metrics/exposition.hpp"

#include "common/weight.hpp"

#include <cmath>
#include <cstdio>

namespace veer::metrics {
namespace {

// Bounds of veer_request_duration_seconds, in seconds.
constexpr double le_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,   0.5,   1,      2.5,   5,    10,    30};
constexpr const char* states[] = {"idle", "progressing", "baking", "promoted", "rolled_back"};

std::string num(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// Label values escape backslash, double quote and newline.
std::string esc(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

void head(std::string& out, const char* name, const char* type, const char* help) {
    out.append("# HELP ")
        .append(name)
        .append(" ")
        .append(help)
        .append("\n# TYPE ")
        .append(name)
        .append(" ")
        .append(type)
        .append("\n");
}

}  // namespace

namespace {

// SPEC 11: fleet mode only.
void render_fleet(std::string& out, const exposition_input& in) {
    const auto& f = in.fleet;
    if (!f) return;
    head(out, "veer_cluster_leader", "gauge", "1 while this instance leads the fleet's judging.");
    out += std::string("veer_cluster_leader ") + (f->leader ? "1" : "0") + "\n";
    head(out, "veer_cluster_instances", "gauge", "Live instances of the fleet, this one included.");
    out += "veer_cluster_instances " + std::to_string(f->instances) + "\n";
    head(out, "veer_cluster_etcd_up", "gauge", "1 while this instance reaches etcd.");
    out += std::string("veer_cluster_etcd_up ") + (f->etcd_up ? "1" : "0") + "\n";
    head(out, "veer_cluster_etcd_writes_total", "counter",
         "Writes to etcd: reports, decisions and commands.");
    out += "veer_cluster_etcd_writes_total " + std::to_string(f->etcd_writes) + "\n";
    head(out, "veer_cluster_refused_writes_total", "counter",
         "Guarded writes etcd refused: the release had changed, or the writer no longer led.");
    out += "veer_cluster_refused_writes_total " + std::to_string(f->refused_writes) + "\n";
    head(out, "veer_cluster_report_bytes_total", "counter",
         "Bytes of window reports this instance wrote to etcd.");
    out += "veer_cluster_report_bytes_total " + std::to_string(f->report_bytes) + "\n";
}

// SPEC 13: only the gates configured.
void render_gates(std::string& out, const exposition_input& in) {
    if (!in.gates.empty()) {
        head(out, "veer_gate_value", "gauge", "An external gate's last reading.");
        for (const auto& g : in.gates)
            if (g.value)
                out += "veer_gate_value{gate=\"" + esc(g.name) + "\"} " + num(*g.value) + "\n";
        head(out, "veer_gate_errors_total", "counter",
             "Gate queries that failed or timed out (the gate held).");
        for (const auto& g : in.gates)
            out += "veer_gate_errors_total{gate=\"" + esc(g.name) + "\"} " +
                   std::to_string(g.errors) + "\n";
    }
    if (in.alerts) {
        head(out, "veer_alerts_received_total", "counter",
             "Alertmanager notifications accepted by the alert receiver.");
        out += "veer_alerts_received_total " + std::to_string(in.alerts->first) + "\n";
        head(out, "veer_alerts_refused_total", "counter",
             "Requests the alert receiver refused (path, method, token, size, format).");
        out += "veer_alerts_refused_total " + std::to_string(in.alerts->second) + "\n";
    }
}

// The families with one sample per endpoint: requests by class, gRPC calls by code, health.
void render_endpoints(std::string& out, const exposition_input& in) {
    head(out, "veer_requests_total", "counter",
         "Requests per pool, endpoint and class (status class or failure kind).");
    for (const auto& p : in.pools)
        for (const auto& e : p.endpoints)
            for (std::size_t r = 0; r < result_count; ++r)
                out += "veer_requests_total{pool=\"" + esc(p.name) + "\",endpoint=\"" +
                       esc(e.address) + "\",class=\"" +
                       std::string(result_name(static_cast<result>(r))) + "\"} " +
                       std::to_string(e.results[r]) + "\n";

    head(out, "veer_grpc_calls_total", "counter",
         "gRPC calls by pool, endpoint and status code (those that got one).");
    for (const auto& p : in.pools)
        for (const auto& e : p.endpoints)
            for (std::size_t code = 0; code < e.grpc.size(); ++code)
                if (e.grpc[code])
                    out += "veer_grpc_calls_total{pool=\"" + esc(p.name) + "\",endpoint=\"" +
                           esc(e.address) + "\",code=\"" +
                           std::string(config::grpc_code_name(static_cast<int>(code))) + "\"} " +
                           std::to_string(e.grpc[code]) + "\n";

    head(out, "veer_endpoint_healthy", "gauge",
         "1 while an endpoint passes health checks and is not ejected.");
    for (const auto& p : in.pools)
        for (const auto& e : p.endpoints)
            out += "veer_endpoint_healthy{pool=\"" + esc(p.name) + "\",endpoint=\"" +
                   esc(e.address) + "\"} " + (e.healthy ? "1" : "0") + "\n";
}

}  // namespace

std::string render(const exposition_input& in) {
    std::string out;
    out.reserve(8192);

    render_endpoints(out, in);

    head(out, "veer_request_duration_seconds", "histogram",
         "Latency from the first byte of the request head to the last byte of the response.");
    for (const auto& p : in.pools) {
        const auto& h = p.total.latency;
        for (double le : le_bounds)
            out += "veer_request_duration_seconds_bucket{pool=\"" + esc(p.name) + "\",le=\"" +
                   num(le) + "\"} " + std::to_string(h.count_at_or_below(le * 1e6)) + "\n";
        out += "veer_request_duration_seconds_bucket{pool=\"" + esc(p.name) + "\",le=\"+Inf\"} " +
               std::to_string(h.count()) + "\n";
        out += "veer_request_duration_seconds_sum{pool=\"" + esc(p.name) + "\"} " +
               num(h.sum_us() / 1e6) + "\n";
        out += "veer_request_duration_seconds_count{pool=\"" + esc(p.name) + "\"} " +
               std::to_string(h.count()) + "\n";
    }

    head(out, "veer_canary_weight", "gauge", "Percent of traffic routed to the canary pool.");
    out += "veer_canary_weight " + percent_text(in.canary_bp) + "\n";

    head(out, "veer_rollout_state", "gauge",
         "1 for the rollout's current state, 0 for the others.");
    for (const char* s : states)
        out += std::string("veer_rollout_state{state=\"") + s + "\"} " +
               (in.state == s ? "1" : "0") + "\n";

    head(out, "veer_rollbacks_total", "counter",
         "Rollbacks since start, by the judge or an operator.");
    out += "veer_rollbacks_total " + std::to_string(in.rollbacks) + "\n";

    head(out, "veer_events_total", "counter",
         "Rollout, health and operator events since start, by kind.");
    for (const auto& [kind, n] : in.events)
        out += "veer_events_total{kind=\"" + esc(kind) + "\"} " + std::to_string(n) + "\n";

    head(out, "veer_stable_unhealthy", "gauge",
         "1 while the stable pool breaks a fixed limit or has no healthy endpoint.");
    out += std::string("veer_stable_unhealthy ") + (in.stable_unhealthy ? "1" : "0") + "\n";

    head(out, "veer_connections_active", "gauge", "Client connections open now.");
    out += "veer_connections_active " + std::to_string(in.active_connections) + "\n";

    head(out, "veer_connections_refused_total", "counter",
         "Client connections refused at limits.max_connections.");
    out += "veer_connections_refused_total " + std::to_string(in.refused_connections) + "\n";

    head(out, "veer_webhook_sent_total", "counter", "Events delivered to notify.webhook.");
    out += "veer_webhook_sent_total " + std::to_string(in.webhook_sent) + "\n";
    head(out, "veer_webhook_dropped_total", "counter",
         "Events dropped: webhook queue full or retries exhausted.");
    out += "veer_webhook_dropped_total " + std::to_string(in.webhook_dropped) + "\n";

    head(out, "veer_dns_failures_total", "counter",
         "Refreshes of endpoint names that failed; the last addresses were kept.");
    out += "veer_dns_failures_total " + std::to_string(in.dns_failures) + "\n";

    render_fleet(out, in);
    render_gates(out, in);

    head(out, "veer_slo_window_error_rate", "gauge",
         "Share of failed requests over the SLO window.");
    for (const auto& p : in.pools)
        out += "veer_slo_window_error_rate{pool=\"" + esc(p.name) + "\"} " +
               num(p.window.error_rate()) + "\n";

    head(out, "veer_slo_window_latency_seconds", "summary",
         "Latency percentiles over the SLO window.");
    for (const auto& p : in.pools) {
        const auto& h = p.window.latency;
        for (double q : {0.5, 0.95, 0.99})
            out += "veer_slo_window_latency_seconds{pool=\"" + esc(p.name) + "\",quantile=\"" +
                   num(q) + "\"} " + num(h.quantile(q) / 1e6) + "\n";
        out += "veer_slo_window_latency_seconds_sum{pool=\"" + esc(p.name) + "\"} " +
               num(h.sum_us() / 1e6) + "\n";
        out += "veer_slo_window_latency_seconds_count{pool=\"" + esc(p.name) + "\"} " +
               std::to_string(h.count()) + "\n";
    }
    return out;
}

}  // namespace veer::metrics
