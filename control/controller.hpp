// The control side of veer: one thread, one event loop. It owns the configuration, the
// rollout state, endpoint health and the events; it judges the canary every
// slo.evaluate_every, answers the admin socket, and publishes a new routing snapshot for
// the data path whenever any of that changes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "admin/commands.hpp"
#include "admin/http_server.hpp"
#include "admin/socket_server.hpp"
#include "cluster/member.hpp"
#include "dns/resolver.hpp"
#include "config/config.hpp"
#include "control/gates.hpp"
#include "control/names.hpp"
#include "control/notifier.hpp"
#include "gating/release.hpp"
#include "health/checker.hpp"
#include "metrics/history.hpp"
#include "metrics/registry.hpp"
#include "proxy/server.hpp"
#include "routing/snapshot.hpp"

namespace veer::control {

class controller {
public:
    // Binds the listeners and the admin socket; throws std::runtime_error on failure.
    explicit controller(config::config cfg);
    ~controller();

    // Serves until SIGTERM/SIGINT, then drains; returns the exit code.
    int run();

    // One admin command line -> one JSON object (control thread only). A coroutine: in
    // fleet mode a command that changes the release waits for etcd to take it.
    boost::asio::awaitable<std::string> command(std::string line);
    boost::json::object status() const;
    std::string prometheus() const;

private:
    struct endpoint_state {
        std::string address;
        std::string pool;
        bool healthy = true;
        bool ejected = false;
        bool drained = false;
        std::uint64_t eject_generation = 0;
    };

    void restore_state();
    // Builds the TLS contexts `next` asks for into tls_; "" or the error (nothing changed).
    std::string load_tls(const config::config& next);
    void publish();
    std::uint32_t endpoint_id(const std::string& address);
    // Each configured endpoint's pool and each pool's metrics slot (start and reload).
    void index_pools();
    // The pool's metrics slot, registered on first use (config load and reload).
    std::uint32_t pool_slot(const std::string& name);
    // The slot of a registered pool.
    std::uint32_t slot_of(const std::string& name) const;
    boost::json::object pools_json(std::int64_t now_ns) const;
    admin::http_response serve_http(std::string_view target) const;
    // Logs and notifies a change's events (the release keeps them), persists, publishes.
    // Only the instance that decided notifies the webhook (fleet mode: one copy per event).
    void apply(const std::vector<gating::event>& events, bool notify = true);
    // An event of the controller's own (health, drain, reload): kept by the release, applied.
    void record(gating::event e);
    void persist();
    void start_health_checks();
    void evaluate();
    void schedule_evaluation();
    // Once a second: the history's next second (SPEC 12).
    void schedule_history();
    boost::json::object history_json() const;
    // During a drain: stops the control loop once every connection is done or at `deadline`.
    void watch_drain(std::chrono::steady_clock::time_point deadline);
    void on_health(std::uint32_t id, bool healthy, const std::string& why);
    void eject(std::uint32_t id);
    std::string reload();
    // Every endpoint of `pool` (drained ones aside) unhealthy or ejected.
    bool all_unhealthy(const std::string& pool) const;
    // SPEC 12's stable alarm: one stable_unhealthy event per episode of the stable pool
    // breaking a fixed limit or having no healthy endpoint; no action.
    void watch_stable(gating::instant t);
    gating::instant now() const;
    // A command on this instance's release alone (no fleet, or one that is not shared).
    std::string local_command(const admin::command& cmd);
    // The release command `cmd` on `r`; drain/undrain change `drained` instead.
    gating::command_result run_command(const admin::command& cmd, gating::release& r,
                                       std::vector<std::string>& drained);
    std::string command_reply() const;
    // The window `pool` is judged on: this instance's, or in fleet mode the fleet's merged.
    metrics::window_stats judged_window(const std::string& pool, std::int64_t now_ns) const;
    metrics::window_stats local_window(const std::string& pool, std::int64_t now_ns) const;
    // One evaluation of `r` on this instance's windows or the fleet's merged ones.
    std::vector<gating::event> judge(gating::release& r, gating::instant t, bool merged,
                                     bool may_advance);

    // The gates' readings for the judge: those taken since the canary got traffic.
    std::vector<gating::gate_reading> gate_readings(gating::instant t) const;
    // A firing alert that matches rolls the canary back (SPEC 13); every alert is an event.
    void on_alerts(std::vector<gating::alert> alerts);

    // Endpoints by DNS name (control/names.cpp).
    void start_resolver();
    void schedule_dns();
    void refresh_names();
    void on_answer(const std::string& entry, dns::answer a);
    // The pool whose endpoints list `entry` as configured, or null.
    const config::pool* pool_listing(const std::string& entry) const;
    boost::json::object dns_json() const;

    // Fleet mode (control/fleet.cpp).
    using release_change =
        std::function<gating::command_result(gating::release&, std::vector<std::string>& drained)>;
    void start_fleet();
    boost::asio::awaitable<std::string> fleet_command(const admin::command& cmd);
    // A change of the shared release, written through etcd (retried on a newer release);
    // a rollback is taken alone while etcd is unreachable, anything else refused.
    boost::asio::awaitable<std::string> fleet_change(release_change change, bool is_rollback);
    void on_fleet_release(const cluster::shared_release& shared, std::vector<gating::event> events,
                          cluster::origin from);
    // Writes the rollback this instance took alone while etcd was away, if the fleet still
    // runs the release it rolled back; true when that write is under way.
    bool reconcile(const cluster::shared_release& shared);
    cluster::shared_release shared_now() const;
    cluster::report make_report() const;
    void judge_fleet(gating::instant t);
    void judge_alone(gating::instant t);
    boost::json::object cluster_json(std::int64_t now_ns) const;

    config::config cfg_;
    boost::asio::io_context ioc_{1};
    routing::publisher routes_;
    metrics::registry metrics_;
    proxy::shared_state shared_;
    std::unique_ptr<proxy::server> server_;
    std::unique_ptr<admin::socket_server> admin_;
    std::unique_ptr<admin::http_server> http_;
    health::checker checker_;
    notifier notifier_;
    gate_poller gates_;
    std::unique_ptr<alert_receiver> alerts_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer judge_timer_;
    boost::asio::steady_timer history_timer_;
    boost::asio::steady_timer dns_timer_;
    metrics::history history_;

    std::vector<endpoint_state> endpoints_;  // by endpoint id
    resolved_names names_;  // every configured name's addresses, by entry as configured
    std::unique_ptr<dns::resolver> resolver_;
    std::uint64_t dns_generation_ = 0;  // of resolver_: older answers are ignored
    std::set<std::string> resolving_;  // names whose refresh is under way
    std::map<std::string, std::string> dns_errors_;  // the last refresh's error, by name
    std::uint64_t dns_failures_ = 0;
    std::map<std::string, std::shared_ptr<void>> pool_tls_;  // by pool name: asio::ssl::context
    std::vector<std::string> pool_slots_;  // by metrics slot
    gating::release release_;
    bool draining_ = false;
    bool stable_unhealthy_ = false;

    std::unique_ptr<cluster::member> fleet_;
    bool fleet_writing_ = false;  // a decision of this instance's is on its way to etcd
    bool reconciling_ = false;  // that decision is the rollback taken while etcd was away
    std::vector<gating::event> pending_rollback_;  // taken alone, not yet in etcd
};

}  // namespace veer::control
