// Fleet mode (SPEC 11) on the controller's side: commands and the leader's decisions go
// to etcd and come back to every instance through cluster::member; an instance cut off
// from etcd judges alone, may only roll back, and writes that rollback when etcd returns.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <algorithm>

#include "control/controller.hpp"
#include "control/json_reply.hpp"
#include "control/log.hpp"

namespace veer::control {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

bool has_rollback(const std::vector<gating::event>& events) {
    return std::any_of(events.begin(), events.end(), [](const gating::event& e) {
        return e.kind == gating::event_kind::rollback;
    });
}

}  // namespace

void controller::start_fleet() {
    auto settings = cfg_.cluster;
    if (settings.instance.empty())
        settings.instance = cluster::default_instance(cfg_.listener.address);
    cluster::member::hooks hooks;
    hooks.on_release = [this](const cluster::shared_release& r, std::vector<gating::event> events,
                              cluster::origin from) {
        on_fleet_release(r, std::move(events), from);
    };
    hooks.initial_release = [this] { return shared_now(); };
    hooks.make_report = [this] { return make_report(); };
    hooks.on_role = [] {};
    fleet_ = std::make_unique<cluster::member>(ioc_, settings, cfg_.slo.evaluate_every,
                                               std::move(hooks));
}

cluster::shared_release controller::shared_now() const {
    cluster::shared_release s;
    if (fleet_ && fleet_->release()) s = *fleet_->release();
    s.rollout = release_.state();
    s.drained.clear();
    for (const auto& ep : endpoints_)
        if (ep.drained && !ep.pool.empty()) s.drained.push_back(ep.address);
    return s;
}

cluster::report controller::make_report() const {
    const auto t = now();
    cluster::report r;
    r.time_ms = t.unix_ms;
    for (const auto& p : cfg_.pools)
        r.pools[p.name] = local_window(p.name, t.mono_ns);
    if (fleet_->leader() && release_.judging())
        r.verdict = gating::to_json(release_.last_verdict());
    return r;
}

metrics::window_stats controller::judged_window(const std::string& pool,
                                                std::int64_t now_ns) const {
    auto merged = local_window(pool, now_ns);
    if (!fleet_) return merged;
    // This instance's own window is fresher than its last report: the others' reports.
    for (const auto& [id, p] : fleet_->peers()) {
        if (id == fleet_->instance() || !p.last) continue;
        if (const auto it = p.last->pools.find(pool); it != p.last->pools.end())
            cluster::merge_window(merged, it->second);
    }
    return merged;
}

void controller::judge_fleet(gating::instant t) {
    if (fleet_writing_) return;  // the last decision first
    gating::release next = release_;
    auto events = judge(next, t, /*merged=*/true, /*may_advance=*/true);
    release_.keep_verdict(next);
    if (events.empty() && next.state() == release_.state()) return;
    auto shared = shared_now();
    shared.rollout = next.state();
    fleet_writing_ = true;
    asio::co_spawn(
        ioc_,
        [this, shared = std::move(shared), events = std::move(events)]() -> asio::awaitable<void> {
            const auto err = co_await fleet_->write(shared, events, true);
            fleet_writing_ = false;
            if (!err.empty()) log("warn", "the judge's decision was not written", {{"error", err}});
        },
        asio::detached);
}

void controller::judge_alone(gating::instant t) {
    auto events = judge(release_, t, /*merged=*/false, /*may_advance=*/false);
    if (events.empty()) return;
    if (has_rollback(events)) {
        pending_rollback_.insert(pending_rollback_.end(), events.begin(), events.end());
        log("warn", "rolled back alone: etcd is unreachable; written to the fleet when it returns");
    }
    apply(events);
}

asio::awaitable<std::string> controller::fleet_command(const admin::command& cmd) {
    co_return co_await fleet_change(
        [this, &cmd](gating::release& r, std::vector<std::string>& drained) {
            return run_command(cmd, r, drained);
        },
        cmd.what == admin::verb::rollback);
}

asio::awaitable<std::string> controller::fleet_change(release_change change, bool is_rollback) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        gating::release next = release_;
        auto shared = shared_now();
        auto r = change(next, shared.drained);
        if (!r.ok()) co_return error_json(r.error);
        if (!fleet_->etcd_up()) {
            // Failing toward stable needs nobody's agreement; everything else waits for etcd.
            if (!is_rollback)
                co_return error_json(
                    "etcd is unreachable: this instance serves on the last state it saw and takes "
                    "only rollback until etcd returns");
            release_.adopt(next.state(), r.events, now());
            pending_rollback_.insert(pending_rollback_.end(), r.events.begin(), r.events.end());
            apply(r.events);
            co_return command_reply();
        }
        shared.rollout = next.state();
        const auto err = co_await fleet_->write(shared, r.events, false);
        if (err.empty()) co_return command_reply();
        if (err.find("refused") == std::string::npos) co_return error_json(err);
        // Someone else changed the release first: run the change on what they wrote.
        if (auto read = co_await fleet_->refresh(); !read.empty()) co_return error_json(read);
    }
    co_return error_json("the fleet's release kept changing under this command; try again");
}

bool controller::reconcile(const cluster::shared_release& shared) {
    const auto& s = shared.rollout;
    const auto& mine = release_.state();
    // The fleet still exposes the canary this instance rolled back: write the rollback.
    if (s.canary != mine.canary || s.canary_bp == 0 || s.state == gating::phase::rolled_back) {
        pending_rollback_.clear();
        return false;
    }
    if (fleet_writing_) return true;
    auto next = shared;
    next.rollout = mine;
    fleet_writing_ = true;
    asio::co_spawn(
        ioc_,
        [this, next = std::move(next), events = pending_rollback_]() -> asio::awaitable<void> {
            reconciling_ = true;
            const auto err = co_await fleet_->write(next, events, false);
            reconciling_ = false;
            fleet_writing_ = false;
            if (err.empty()) {
                pending_rollback_.clear();
                log("info", "the rollback taken while etcd was away is now the fleet's");
                co_return;
            }
            log("warn", "the rollback taken while etcd was away was not written", {{"error", err}});
            // The release changed meanwhile (its delivery waited for this write): again on it.
            if (err.find("refused") != std::string::npos && fleet_->release())
                on_fleet_release(*fleet_->release(), {}, cluster::origin::fleet);
        },
        asio::detached);
    return true;
}

void controller::on_fleet_release(const cluster::shared_release& shared,
                                  std::vector<gating::event> events, cluster::origin from) {
    if (!pending_rollback_.empty() && from != cluster::origin::own_write && reconcile(shared))
        return;
    const auto t = now();
    // The rollback this instance took alone is in release_ and its events already.
    if (reconciling_ && from == cluster::origin::own_write) events.clear();
    if (from == cluster::origin::first_read && !events.empty())
        release_.restore(shared.rollout, events);  // etcd's history replaces the local copy
    else
        events = release_.adopt(shared.rollout, std::move(events), t);
    for (auto& ep : endpoints_)
        ep.drained = std::find(shared.drained.begin(), shared.drained.end(), ep.address) !=
                     shared.drained.end();
    apply(events, from == cluster::origin::own_write);
}

json::object controller::cluster_json(std::int64_t now_ns) const {
    json::object c;
    c["name"] = cfg_.cluster.name;
    c["instance"] = fleet_->instance();
    c["leader"] = fleet_->leader_id();
    c["etcd_up"] = fleet_->etcd_up();
    json::array instances;
    for (const auto& [id, p] : fleet_->peers()) {
        json::object i;
        i["instance"] = id;
        i["live"] = p.create_revision > 0;
        i["leader"] = id == fleet_->leader_id();
        i["report_age_ms"] =
            p.last ? json::value((now_ns - p.received_ns) / 1'000'000) : json::value(nullptr);
        json::object pools;
        if (p.last)
            for (const auto& [name, w] : p.last->pools)
                pools[name] = window_json(w);
        i["pools"] = std::move(pools);
        instances.push_back(std::move(i));
    }
    c["instances"] = std::move(instances);
    return c;
}

}  // namespace veer::control
