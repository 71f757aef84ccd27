// Endpoints by DNS name (SPEC 12): resolved at start, refreshed every dns.refresh on the
// control thread, joined and dropped as their answers change.
#include "control/names.hpp"

#include <algorithm>

#include "control/controller.hpp"
#include "control/log.hpp"
#include "dns/resolver.hpp"
#include "routing/snapshot.hpp"

namespace veer::control {
namespace json = boost::json;

std::string resolve_names(const config::config& cfg, resolved_names& known) {
    for (const auto& p : cfg.pools)
        for (const auto& entry : p.endpoints) {
            const auto spec = routing::parse_endpoint_spec(entry);
            if (!spec || !spec->is_name() || known.count(entry)) continue;
            auto a = dns::resolve_now(cfg.dns.servers, spec->name, spec->port);
            if (!a.error.empty())
                return "pools." + p.name + ".endpoints: \"" + entry +
                       "\" does not resolve: " + a.error;
            known[entry] = std::move(a.addresses);
        }
    return "";
}

std::vector<pool_address> addresses_of(const config::pool& p, const resolved_names& names) {
    std::vector<pool_address> out;
    const auto add = [&](const std::string& address, const std::string& name) {
        const bool listed = std::any_of(out.begin(), out.end(),
                                        [&](const auto& a) { return a.address == address; });
        if (!listed) out.push_back({address, name});
    };
    for (const auto& entry : p.endpoints) {
        const auto it = names.find(entry);
        if (it == names.end()) {
            add(entry, "");  // an IP literal
            continue;
        }
        for (const auto& a : it->second)
            add(a, entry);
    }
    return out;
}

namespace {

std::vector<std::string> minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
    std::vector<std::string> out;
    for (const auto& x : a)
        if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
    return out;
}

json::array to_array(const std::vector<std::string>& v) { return json::array(v.begin(), v.end()); }

}  // namespace

void controller::start_resolver() {
    resolver_ = std::make_unique<dns::resolver>(ioc_, cfg_.dns.servers);
    ++dns_generation_;  // answers of an earlier resolver are not waited for any more
    resolving_.clear();
}

void controller::schedule_dns() {
    dns_timer_.expires_after(cfg_.dns.refresh);
    dns_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || draining_) return;
        refresh_names();
        schedule_dns();
    });
}

void controller::refresh_names() {
    for (const auto& [entry, addresses] : names_) {
        // A lookup still under way (a resolver that is slow to answer) is not asked twice.
        if (!resolving_.insert(entry).second) continue;
        const auto spec = routing::parse_endpoint_spec(entry);
        resolver_->resolve(spec->name, spec->port,
                           [this, entry, generation = dns_generation_](dns::answer a) {
                               if (generation != dns_generation_) return;
                               resolving_.erase(entry);
                               on_answer(entry, std::move(a));
                           });
    }
}

const config::pool* controller::pool_listing(const std::string& entry) const {
    for (const auto& p : cfg_.pools)
        if (std::find(p.endpoints.begin(), p.endpoints.end(), entry) != p.endpoints.end())
            return &p;
    return nullptr;
}

void controller::on_answer(const std::string& entry, dns::answer a) {
    const auto* pool = pool_listing(entry);
    const auto known = names_.find(entry);
    if (!pool || known == names_.end()) return;  // reloaded away meanwhile
    // An address another pool already has stays there: one endpoint, one pool.
    std::erase_if(a.addresses, [&](const std::string& address) {
        return std::any_of(endpoints_.begin(), endpoints_.end(), [&](const auto& ep) {
            return ep.address == address && !ep.pool.empty() && ep.pool != pool->name;
        });
    });
    if (a.error.empty() && a.addresses.empty()) a.error = "every address belongs to another pool";
    // Endpoint ids index fixed per-endpoint counters and are never reused in a process's
    // life (a reused id could meet an idle connection to the address it had before).
    const auto fresh = std::count_if(a.addresses.begin(), a.addresses.end(), [&](const auto& x) {
        return std::none_of(endpoints_.begin(), endpoints_.end(),
                            [&](const auto& ep) { return ep.address == x; });
    });
    if (a.error.empty() &&
        endpoints_.size() + static_cast<std::size_t>(fresh) > metrics::max_endpoints)
        a.error = "more than " + std::to_string(metrics::max_endpoints) +
                  " distinct endpoint addresses since start; restart veer to take new ones";
    if (!a.error.empty()) {
        // Keeping the last addresses is the safe side: a resolver's bad minute must not
        // empty a pool, least of all the stable one.
        ++dns_failures_;
        dns_errors_[entry] = a.error;
        log("warn", "DNS refresh failed; the last addresses are kept",
            {{"endpoint", entry}, {"pool", pool->name}, {"error", a.error}});
        return;
    }
    dns_errors_.erase(entry);
    if (a.addresses == known->second) return;
    const auto joined = minus(a.addresses, known->second);
    const auto left = minus(known->second, a.addresses);
    known->second = std::move(a.addresses);
    index_pools();
    start_health_checks();
    json::object figures{{"endpoint", entry},
                         {"pool", pool->name},
                         {"addresses", to_array(known->second)},
                         {"joined", to_array(joined)},
                         {"left", to_array(left)}};
    // Those that left take no new requests from this publish on; theirs in flight finish
    // on the connections they hold.
    record(gating::make_event(now().unix_ms, gating::event_kind::dns, gating::event_by::dns,
                              entry + " now resolves to " + std::to_string(known->second.size()) +
                                  " address(es): " + std::to_string(joined.size()) + " joined, " +
                                  std::to_string(left.size()) + " left pool " + pool->name,
                              std::move(figures)));
}

json::object controller::dns_json() const {
    json::object names;
    for (const auto& [entry, addresses] : names_) {
        json::object o{{"addresses", to_array(addresses)}};
        if (const auto it = dns_errors_.find(entry); it != dns_errors_.end())
            o["error"] = it->second;
        names[entry] = std::move(o);
    }
    return json::object{{"names", std::move(names)},
                        {"refresh_ms", cfg_.dns.refresh.count()},
                        {"failures", dns_failures_}};
}

}  // namespace veer::control
