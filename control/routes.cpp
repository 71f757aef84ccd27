// The routing snapshot the data path reads: pools, endpoints and their health, the split
// and the settings requests need, rebuilt and published whole on every change.
#include "control/controller.hpp"

namespace veer::control {
namespace {

template <class IndexOf>
routing::rule to_rule(const config::rule& r, IndexOf index_of) {
    routing::rule rr;
    rr.header = r.header;
    if (r.equals) {
        rr.match = routing::rule_match::equals;
        rr.value = *r.equals;
    } else if (r.prefix) {
        rr.match = routing::rule_match::prefix;
        rr.value = *r.prefix;
    } else {
        rr.match = routing::rule_match::present;
    }
    if (r.pool == "canary") {
        rr.target = routing::rule_target::canary;
    } else if (r.pool == "stable") {
        rr.target = routing::rule_target::stable;
    } else {
        rr.target = routing::rule_target::pool;
        rr.pool = index_of(r.pool);
    }
    return rr;
}

}  // namespace

void controller::publish() {
    auto s = std::make_shared<routing::snapshot>();
    for (const auto& p : cfg_.pools) {
        routing::pool rp;
        rp.name = p.name;
        rp.slot = pool_slot(p.name);
        rp.balance = p.balance_;
        rp.eject_after_failures = p.health.eject_after_failures;
        rp.h2 = p.protocol_ == config::protocol::h2;
        if (p.tls) {
            rp.tls = pool_tls_[p.name];
            rp.tls_name = p.tls->sni;
            rp.tls_verify = p.tls->verify;
        }
        for (const auto& [a, name] : addresses_of(p, names_)) {
            routing::endpoint e;
            e.id = endpoint_id(a);
            e.address = a;
            e.name = name;
            routing::parse_ip_endpoint(a, e);
            const auto& st = endpoints_[e.id];
            e.healthy = st.healthy;
            e.ejected = st.ejected;
            e.drained = st.drained;
            if (e.usable()) rp.usable.push_back(static_cast<std::uint32_t>(rp.endpoints.size()));
            rp.endpoints.push_back(std::move(e));
        }
        s->pools.push_back(std::move(rp));
    }
    auto index_of = [&](const std::string& name) {
        for (std::size_t i = 0; i < s->pools.size(); ++i)
            if (s->pools[i].name == name) return static_cast<int>(i);
        return 0;
    };
    const auto& release = release_.state();
    s->stable = index_of(release.stable);
    s->canary = index_of(release.canary);
    s->canary_weight_bp = release.canary_bp;
    for (const auto& r : cfg_.split.rules)
        s->rules.push_back(to_rule(r, index_of));
    s->sticky_header = cfg_.split.sticky_header;
    s->sticky_cookie = cfg_.split.sticky_cookie;
    s->timeouts = cfg_.timeouts;
    s->limits = cfg_.limits;
    s->retry = cfg_.retry;
    s->errors = cfg_.slo.errors;
    routes_.publish(std::move(s));
}

}  // namespace veer::control
