// SIGHUP and `reload` (SPEC 7): the config file read again and applied whole, or refused
// with its errors and the old one kept.
#include <algorithm>

#include "control/controller.hpp"
#include "control/log.hpp"

namespace veer::control {

namespace {

// Settings a reload cannot change (they need a restart) are put back as they were, and
// said so in the note; the rest of `next` applies.
std::string keep_restart_settings(const config::config& now, config::config& next) {
    std::string note;
    const auto keep = [&](bool changed, const std::string& what) {
        if (!changed) return;
        note += (note.empty() ? "" : "; ") + what;
        log("warn", what);
    };
    keep(next.listener.address != now.listener.address,
         "listener.address change needs a restart; still listening on " + now.listener.address);
    keep(next.listener.http2 != now.listener.http2, "listener.http2 change needs a restart");
    keep(next.cluster.etcd != now.cluster.etcd || next.cluster.name != now.cluster.name ||
             next.cluster.instance != now.cluster.instance ||
             next.cluster.lease != now.cluster.lease,
         "[cluster] change needs a restart; still in the fleet as configured at start");
    keep(next.gates.alerts.listen != now.gates.alerts.listen ||
             next.gates.alerts.token_file != now.gates.alerts.token_file,
         "gates.alerts listen/token_file change needs a restart");
    next.listener.address = now.listener.address;
    next.listener.http2 = now.listener.http2;
    next.cluster = now.cluster;
    next.gates.alerts.listen = now.gates.alerts.listen;
    next.gates.alerts.token_file = now.gates.alerts.token_file;
    // The window's length is fixed by the shards' rings; it changes on restart.
    next.slo.window = now.slo.window;
    next.admin = now.admin;
    return note;
}

std::string rejected(const std::string& err) {
    log("error", "reload rejected", {{"errors", err}});
    return "reload rejected, old config kept: " + err;
}

}  // namespace

std::string controller::reload() {
    auto loaded = config::load_file(cfg_.file);
    if (!loaded.cfg) {
        std::string all;
        for (const auto& e : loaded.errors)
            all += (all.empty() ? "" : "; ") + e;
        return rejected(all);
    }
    auto& next = *loaded.cfg;
    const auto& release = release_.state();
    if (!next.find_pool(release.stable) || !next.find_pool(release.canary))
        return "reload rejected: pools " + release.stable + " and " + release.canary +
               " must stay defined";
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
    const bool new_servers = next.dns.servers != cfg_.dns.servers;
    if (new_servers) names.clear();  // asked again, of the new ones
    if (auto err = resolve_names(next, names); !err.empty()) return rejected(err);
    const auto note = keep_restart_settings(cfg_, next);
    if (auto err = load_tls(next); !err.empty()) return rejected(err);
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
