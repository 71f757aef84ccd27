// What the controller shows: the `status` object (SPEC 6), the Prometheus text (SPEC 8)
// and the admin HTTP listener's pages.
#include <boost/json.hpp>

#include "common/weight.hpp"

#include <algorithm>
#include <cmath>

#include "admin/status_page.hpp"
#include "control/controller.hpp"
#include "control/json_reply.hpp"
#include "metrics/exposition.hpp"

namespace veer::control {
namespace {

namespace json = boost::json;

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

json::object window_json(const metrics::window_stats& w) {
    json::object po;
    po["requests"] = w.requests;
    po["failures"] = w.failures;
    po["error_rate"] = round3(w.error_rate());
    po["p50_ms"] = round3(w.latency.quantile(0.50) / 1000.0);
    po["p95_ms"] = round3(w.latency.quantile(0.95) / 1000.0);
    po["p99_ms"] = round3(w.latency.quantile(0.99) / 1000.0);
    po["rps"] = round3(w.rps());
    return po;
}

json::object controller::status() const {
    const auto t = now();
    const auto& r = release_.state();
    const auto& verdict = release_.last_verdict();
    const bool judging = release_.judging();
    const bool holding = judging && verdict.what == gating::verdict::kind::holding;
    json::object o;
    o["state"] = gating::phase_name(r.state);
    o["holding"] = holding;
    o["needed_requests"] = holding ? verdict.needed_requests : 0;
    o["stable"] = r.stable;
    o["canary"] = r.canary;
    o["canary_weight"] = percent_json(r.canary_bp);
    o["step"] = r.step;
    o["paused"] = r.paused;
    o["strategy"] = config::strategy_name(cfg_.rollout.strategy_);
    json::array steps;
    for (int w : gating::steps_for(cfg_.rollout))
        steps.push_back(percent_json(w));
    o["steps"] = std::move(steps);
    o["step_started"] = r.step_started_ms
                            ? json::value(gating::format_rfc3339_ms(r.step_started_ms))
                            : json::value(nullptr);
    o["step_elapsed_ms"] =
        r.step_started_ms ? std::max<std::int64_t>(0, t.unix_ms - r.step_started_ms) : 0;
    o["step_interval_ms"] = cfg_.rollout.step_interval.count();
    o["bake_ms"] = cfg_.rollout.bake.count();
    o["verdict"] = judging ? json::value(gating::to_json(verdict)) : json::value(nullptr);
    o["window_s"] = std::chrono::duration<double>(cfg_.slo.window).count();
    o["pools"] = pools_json(t.mono_ns);
    if (!gates_.gates().empty()) {
        json::array gates;
        for (const auto& g : gate_readings(t))
            gates.push_back(gating::to_json(g));
        o["gates"] = std::move(gates);
    }
    if (!names_.empty()) o["dns"] = dns_json();
    if (alerts_)
        o["alerts"] = json::object{{"listen", cfg_.gates.alerts.listen},
                                   {"received", alerts_->received()},
                                   {"refused", alerts_->refused()}};
    if (fleet_) {
        o["cluster"] = cluster_json(t.mono_ns);
        // The leader's verdict, from its report, on every instance.
        const auto& peers = fleet_->peers();
        const auto leader = peers.find(fleet_->leader_id());
        if (!fleet_->leader() && judging && leader != peers.end() && leader->second.last &&
            !leader->second.last->verdict.empty()) {
            const auto& v = leader->second.last->verdict;
            const auto* kind = v.if_contains("verdict");
            const bool fleet_holding = kind && kind->is_string() && kind->as_string() == "holding";
            o["holding"] = fleet_holding;
            o["needed_requests"] = fleet_holding && v.contains("needed_requests")
                                       ? v.at("needed_requests")
                                       : json::value(0);
            o["verdict"] = v;
        }
    }
    json::array recent;
    const auto& events = release_.events();
    for (std::size_t i = events.size() > 5 ? events.size() - 5 : 0; i < events.size(); ++i)
        recent.push_back(gating::to_json(events[i]));
    o["events"] = std::move(recent);
    o["stable_unhealthy"] = stable_unhealthy_;
    o["connections"] = shared_.active_connections.load(std::memory_order_relaxed);
    return o;
}

json::object controller::pools_json(std::int64_t now_ns) const {
    const auto& r = release_.state();
    json::object pools;
    for (const auto& p : cfg_.pools) {
        auto po = window_json(judged_window(p.name, now_ns));
        po.emplace("role", p.name == r.stable ? "stable" : p.name == r.canary ? "canary" : "other");
        json::array eps;
        for (const auto& [a, name] : addresses_of(p, names_))
            for (const auto& ep : endpoints_)
                if (ep.address == a) {
                    json::object e{{"address", a},
                                   {"healthy", ep.healthy},
                                   {"ejected", ep.ejected},
                                   {"drained", ep.drained}};
                    if (!name.empty()) e["name"] = name;
                    eps.push_back(std::move(e));
                }
        po["endpoints"] = std::move(eps);
        pools[p.name] = std::move(po);
    }
    return pools;
}

std::string controller::prometheus() const {
    metrics::exposition_input in;
    in.canary_bp = release_.state().canary_bp;
    in.state = std::string(gating::phase_name(release_.state().state));
    in.rollbacks = release_.count(gating::event_kind::rollback);
    in.active_connections = shared_.active_connections.load(std::memory_order_relaxed);
    in.refused_connections = shared_.refused_connections.load(std::memory_order_relaxed);
    const auto& by_kind = release_.events_by_kind();
    in.events = {by_kind.begin(), by_kind.end()};
    in.webhook_sent = notifier_.sent();
    in.dns_failures = dns_failures_;
    in.webhook_dropped = notifier_.dropped();
    in.stable_unhealthy = stable_unhealthy_;
    const auto readings = gate_readings(now());
    for (std::size_t i = 0; i < readings.size(); ++i)
        in.gates.push_back({readings[i].name, readings[i].value, gates_.errors(i)});
    if (alerts_) in.alerts = std::pair{alerts_->received(), alerts_->refused()};
    if (fleet_) {
        metrics::exposition_input::cluster f;
        f.leader = fleet_->leader();
        for (const auto& [id, p] : fleet_->peers())
            f.instances += p.create_revision > 0;
        f.etcd_up = fleet_->etcd_up();
        f.etcd_writes = fleet_->writes();
        f.refused_writes = fleet_->refused_writes();
        f.report_bytes = fleet_->report_bytes();
        in.fleet = f;
    }
    const auto now = metrics::monotonic_ns();
    for (const auto& p : cfg_.pools) {
        const auto slot = slot_of(p.name);
        metrics::exposition_input::pool ip;
        ip.name = p.name;
        ip.total = metrics_.total(slot);
        ip.window = metrics_.window(slot, now);
        for (std::uint32_t id = 0; id < endpoints_.size(); ++id) {
            const auto& ep = endpoints_[id];
            if (ep.pool != p.name) continue;
            ip.endpoints.push_back({ep.address, ep.healthy && !ep.ejected,
                                    metrics_.endpoint_totals(id), metrics_.grpc_totals(id)});
        }
        in.pools.push_back(std::move(ip));
    }
    return metrics::render(in);
}

json::object controller::history_json() const {
    auto o = history_.to_json(pool_slots_);
    json::array events;  // every event kept, for the chart's marks
    for (const auto& e : release_.events())
        events.push_back(gating::to_json(e));
    o["events"] = std::move(events);
    return o;
}

admin::http_response controller::serve_http(std::string_view target) const {
    admin::http_response r;
    if (target == "/metrics") {
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = prometheus();
    } else if (target == "/status") {
        r.content_type = "application/json";
        r.body = ok_json(status());
    } else if (target == "/history") {
        r.content_type = "application/json";
        r.body = ok_json(history_json());
    } else if (target == "/healthz") {
        r.status = draining_ ? 503 : 200;
        r.body = draining_ ? "draining\n" : "ok\n";
    } else if (target == "/" || target == "/index.html") {
        r.content_type = "text/html; charset=utf-8";
        r.body = std::string(admin::status_page_html());
    } else {
        r.status = 404;
        r.body = "not found\n";
    }
    return r;
}

}  // namespace veer::control
