// SIGHUP and `reload` (SPEC 7): the config file read again and applied whole, or refused
// with its errors and the old one kept.
#include <algorithm>

#include "control/controller.hpp"
#include "control/log.hpp"

namespace veer::control {

std::string controller::reload() {
    auto loaded = config::load_file(cfg_.file);
    if (!loaded.cfg) {
        std::string all;
        for (const auto& e : loaded.errors)
            all += (all.empty() ? "" : "; ") + e;
        log("error", "reload rejected", {{"errors", all}});
        return "reload rejected, old config kept: " + all;
    }
    auto& next = *loaded.cfg;
    const auto& release = release_.state();
    if (!next.find_pool(release.stable) || !next.find_pool(release.canary))
        return "reload rejected: pools " + release.stable + " and " + release.canary +
               " must stay defined";
    std::string note;
    if (next.listener.address != cfg_.listener.address) {
        note =
            "listener.address change needs a restart; still listening on " + cfg_.listener.address;
        next.listener.address = cfg_.listener.address;
        log("warn", note);
    }
    if (next.listener.http2 != cfg_.listener.http2) {
        const auto c = "listener.http2 change needs a restart";
        note += (note.empty() ? "" : "; ") + std::string(c);
        next.listener.http2 = cfg_.listener.http2;
        log("warn", c);
    }
    // Names already known keep their last answer (the refresh goes on); new ones must
    // resolve now, as at start. This blocks the control thread for at most the resolver's
    // timeout, only for a name that was not configured before.
    auto names = names_;
    std::erase_if(names, [&](const auto& known) {
        return std::none_of(next.pools.begin(), next.pools.end(), [&](const auto& p) {
            return std::find(p.endpoints.begin(), p.endpoints.end(), known.first) !=
                   p.endpoints.end();
        });
    });
    if (next.dns.servers != cfg_.dns.servers) names.clear();  // asked again, of the new ones
    if (auto err = resolve_names(next, names); !err.empty()) {
        log("error", "reload rejected", {{"errors", err}});
        return "reload rejected, old config kept: " + err;
    }
    if (auto err = load_tls(next); !err.empty()) {
        log("error", "reload rejected", {{"errors", err}});
        return "reload rejected, old config kept: " + err;
    }
    if (next.cluster.etcd != cfg_.cluster.etcd || next.cluster.name != cfg_.cluster.name ||
        next.cluster.instance != cfg_.cluster.instance ||
        next.cluster.lease != cfg_.cluster.lease) {
        const auto c =
            "[cluster] change needs a restart; still in the fleet as configured at start";
        note += (note.empty() ? "" : "; ") + std::string(c);
        log("warn", c);
    }
    next.cluster = cfg_.cluster;
    if (next.gates.alerts.listen != cfg_.gates.alerts.listen ||
        next.gates.alerts.token_file != cfg_.gates.alerts.token_file) {
        const auto c = "gates.alerts listen/token_file change needs a restart";
        note += (note.empty() ? "" : "; ") + std::string(c);
        log("warn", c);
        next.gates.alerts.listen = cfg_.gates.alerts.listen;
        next.gates.alerts.token_file = cfg_.gates.alerts.token_file;
    }
    // The window's length is fixed by the shards' rings; it changes on restart.
    next.slo.window = cfg_.slo.window;
    next.admin = cfg_.admin;
    const bool new_servers = next.dns.servers != cfg_.dns.servers;
    cfg_ = std::move(next);
    names_ = std::move(names);
    if (new_servers) start_resolver();
    dns_errors_.clear();
    schedule_dns();  // the new refresh interval from now
    configure_log(cfg_.log);
    notifier_.set_url(cfg_.notify.webhook);
    index_pools();
    start_health_checks();
    gates_.run(cfg_.gates.prometheus);
    record(gating::make_event(
        now().unix_ms, gating::event_kind::reload, gating::event_by::operator_,
        note.empty() ? "config reloaded from " + cfg_.file : "config reloaded; " + note));
    return "";
}

}  // namespace veer::control
