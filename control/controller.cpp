#include "control/controller.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <charconv>
#include <chrono>
#include <thread>

#include "admin/commands.hpp"
#include "common/duration.hpp"
#include "common/weight.hpp"
#include "admin/status_page.hpp"
#include "control/json_reply.hpp"
#include "control/log.hpp"
#include "control/state_file.hpp"
#include "metrics/exposition.hpp"
#include "proxy/address.hpp"
#include "proxy/tls.hpp"

namespace veer::control {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

// With two pools, the one that is not `stable`.
const std::string& canary_of(const config::config& cfg, const std::string& stable) {
    for (const auto& p : cfg.pools)
        if (p.name != stable) return p.name;
    return stable;
}

}  // namespace

controller::controller(config::config cfg)
    : cfg_(std::move(cfg)),
      metrics_(proxy::thread_count(cfg_.listener), cfg_.slo.window, metrics::monotonic_ns()),
      shared_(routes_, metrics_),
      checker_(ioc_, [this](std::uint32_t id, bool healthy,
                            std::string why) { on_health(id, healthy, why); }),
      notifier_(ioc_),
      gates_(
          ioc_,
          [this] {  // queried while the canary is judged here
              return release_.judging() && (!fleet_ || !fleet_->etcd_up() || fleet_->leader());
          },
          [this] {
              return std::pair{release_.state().canary, release_.state().stable};
          }),
      signals_(ioc_, SIGINT, SIGTERM, SIGHUP),
      judge_timer_(ioc_),
      history_timer_(ioc_),
      dns_timer_(ioc_),
      release_(cfg_.split.stable, canary_of(cfg_, cfg_.split.stable), cfg_.split.canary_bp) {
    configure_log(cfg_.log);
    notifier_.set_url(cfg_.notify.webhook);
    // A name that does not resolve at start is a start-up error (SPEC 12).
    if (auto err = resolve_names(cfg_, names_); !err.empty()) throw std::runtime_error(err);
    start_resolver();
    index_pools();
    if (auto err = load_tls(cfg_); !err.empty()) throw std::runtime_error(err);
    restore_state();
    publish();
    shared_.on_eject = [this](std::uint32_t id) { asio::post(ioc_, [this, id] { eject(id); }); };
    if (!cfg_.log.access_log.empty()) {
        shared_.access_log_fd =
            ::open(cfg_.log.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (shared_.access_log_fd < 0)
            throw std::runtime_error("log.access_log: cannot open " + cfg_.log.access_log + ": " +
                                     std::strerror(errno));
    }
    // Bound in this order so that the data listener accepting is the last sign of
    // readiness: by then the admin socket and the admin HTTP listener accept as well.
    if (!cfg_.admin.http.empty()) {
        http_ = std::make_unique<admin::http_server>(
            ioc_, cfg_.admin.http, [this](std::string_view target) { return serve_http(target); });
    }
    admin_ = std::make_unique<admin::socket_server>(
        ioc_, cfg_.admin.socket, cfg_.admin.socket_mode,
        [this](std::string line) { return command(std::move(line)); });
    if (!cfg_.gates.alerts.listen.empty())
        alerts_ = std::make_unique<alert_receiver>(
            ioc_, cfg_.gates.alerts,
            [this](std::vector<gating::alert> a) { on_alerts(std::move(a)); });
    server_ = std::make_unique<proxy::server>(cfg_, shared_);
    if (cfg_.cluster.enabled()) start_fleet();
}

controller::~controller() {
    server_.reset();  // flushes the access log
    if (shared_.access_log_fd >= 0) ::close(shared_.access_log_fd);
}

gating::instant controller::now() const {
    const auto unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    return {unix_ms, metrics::monotonic_ns()};
}

std::uint32_t controller::endpoint_id(const std::string& address) {
    for (std::uint32_t i = 0; i < endpoints_.size(); ++i)
        if (endpoints_[i].address == address) return i;
    if (endpoints_.size() >= metrics::max_endpoints) throw std::runtime_error("too many endpoints");
    endpoints_.push_back({address});
    return static_cast<std::uint32_t>(endpoints_.size() - 1);
}

void controller::index_pools() {
    std::vector<bool> listed(endpoints_.size());
    for (const auto& p : cfg_.pools) {
        pool_slot(p.name);
        for (const auto& a : addresses_of(p, names_)) {
            const auto id = endpoint_id(a.address);
            listed.resize(endpoints_.size());
            listed[id] = true;
            endpoints_[id].pool = p.name;
        }
    }
    // Endpoints dropped from the config, or gone from their name's answer, belong to no
    // pool now: no new requests, no checks.
    for (std::size_t id = 0; id < endpoints_.size(); ++id)
        if (!listed[id]) endpoints_[id].pool.clear();
}

std::uint32_t controller::slot_of(const std::string& name) const {
    const auto it = std::find(pool_slots_.begin(), pool_slots_.end(), name);
    return static_cast<std::uint32_t>(it == pool_slots_.end() ? 0 : it - pool_slots_.begin());
}

std::uint32_t controller::pool_slot(const std::string& name) {
    for (std::uint32_t i = 0; i < pool_slots_.size(); ++i)
        if (pool_slots_[i] == name) return i;
    if (pool_slots_.size() >= metrics::max_pool_slots) throw std::runtime_error("too many pools");
    pool_slots_.push_back(name);
    return static_cast<std::uint32_t>(pool_slots_.size() - 1);
}

std::string controller::load_tls(const config::config& next) {
    try {
        std::shared_ptr<boost::asio::ssl::context> server;
        if (next.listener.tls)
            server = proxy::make_server_tls(*next.listener.tls, next.listener.http2);
        std::map<std::string, std::shared_ptr<void>> pools;
        for (const auto& p : next.pools)
            if (p.tls)
                pools[p.name] = proxy::make_client_tls(*p.tls, "pools." + p.name + ".tls",
                                                       p.protocol_ == config::protocol::h2);
        // Only now that everything loaded: new connections take the new contexts.
        shared_.server_tls.store(std::move(server));
        pool_tls_ = std::move(pools);
        return "";
    } catch (const std::exception& e) {
        return e.what();
    }
}

void controller::restore_state() {
    std::string error;
    auto saved = read_state(cfg_.state.path, error);
    if (!error.empty()) {
        log("warn", "state file ignored", {{"path", cfg_.state.path}, {"error", error}});
    } else if (saved) {
        const auto& r = saved->rollout;
        if (cfg_.find_pool(r.stable) && cfg_.find_pool(r.canary) && r.stable != r.canary) {
            release_.restore(r, std::move(saved->events));
            log("info", "state restored",
                {{"path", cfg_.state.path},
                 {"state", gating::phase_name(r.state)},
                 {"canary_weight", percent_json(r.canary_bp)}});
        } else {
            log("warn", "state file names pools the config does not have; ignored",
                {{"path", cfg_.state.path}});
        }
    }
    if (cfg_.rollout.auto_start && release_.state().state == gating::phase::idle)
        release_.start(now(), cfg_.rollout);
}

void controller::persist() {
    const auto& events = release_.events();
    persisted p{release_.state(), {events.begin(), events.end()}};
    if (auto err = write_state(cfg_.state.path, p); !err.empty())
        log("error", "state not saved", {{"error", err}});
}

void controller::apply(const std::vector<gating::event>& events, bool notify) {
    for (const auto& e : events) {
        auto o = gating::to_json(e);
        log("info", "event", {{"event", o}});
        if (notify) notifier_.post(json::serialize(o));
    }
    persist();
    publish();
}

void controller::record(gating::event e) {
    release_.note(e);
    apply({std::move(e)});
}

void controller::start_health_checks() {
    // A reload that turns checks off (here or for one pool) ends the old loops too.
    std::vector<health::target> targets;
    for (const auto& p : cfg_.pools) {
        if (!p.health.enabled) continue;
        for (const auto& [a, name] : addresses_of(p, names_)) {
            routing::endpoint e;
            if (!routing::parse_ip_endpoint(a, e)) continue;
            health::target t{endpoint_id(a), a, name, proxy::to_tcp(e)};
            if (p.tls) {
                t.tls = pool_tls_[p.name];
                t.tls_name = proxy::tls_name(p.tls->sni, name.empty() ? a : name);
                t.tls_verify = p.tls->verify;
            }
            t.settings = p.health;
            t.h2 = p.protocol_ == config::protocol::h2;
            targets.push_back(std::move(t));
        }
    }
    checker_.run(std::move(targets));
}

void controller::on_health(std::uint32_t id, bool healthy, const std::string& why) {
    auto& ep = endpoints_[id];
    ep.healthy = healthy;
    record(gating::make_event(now().unix_ms, gating::event_kind::health, gating::event_by::health,
                              ep.address + (healthy ? " healthy: " : " unhealthy: ") + why,
                              {{"endpoint", ep.address}, {"pool", ep.pool}, {"healthy", healthy}}));
}

void controller::eject(std::uint32_t id) {
    auto& ep = endpoints_[id];
    if (ep.ejected) return;
    const auto* pool = cfg_.find_pool(ep.pool);
    const auto& settings = pool ? pool->health : cfg_.health;
    ep.ejected = true;
    const auto generation = ++ep.eject_generation;
    record(gating::make_event(
        now().unix_ms, gating::event_kind::health, gating::event_by::health,
        ep.address + " ejected for " + format_duration_ms(settings.eject_for.count()) + " after " +
            std::to_string(settings.eject_after_failures) + " consecutive failed requests",
        {{"endpoint", ep.address}, {"pool", ep.pool}, {"ejected", true}}));
    auto timer = std::make_shared<asio::steady_timer>(ioc_, settings.eject_for);
    timer->async_wait([this, id, generation, timer](const boost::system::error_code& ec) {
        auto& ep = endpoints_[id];
        if (ec || ep.eject_generation != generation || !ep.ejected) return;
        ep.ejected = false;
        shared_.consecutive_failures[id].store(0, std::memory_order_relaxed);
        publish();
    });
}

bool controller::all_unhealthy(const std::string& pool) const {
    int considered = 0;
    for (const auto& ep : endpoints_) {
        if (ep.pool != pool || ep.drained) continue;
        ++considered;
        if (ep.healthy && !ep.ejected) return false;
    }
    return considered > 0;
}

void controller::schedule_evaluation() {
    judge_timer_.expires_after(cfg_.slo.evaluate_every);
    judge_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || draining_) return;
        evaluate();
        schedule_evaluation();
    });
}

metrics::window_stats controller::local_window(const std::string& pool, std::int64_t now_ns) const {
    const auto since = pool == release_.state().canary ? release_.canary_since_ns()
                                                       : std::numeric_limits<std::int64_t>::min();
    return metrics_.window(slot_of(pool), now_ns, since);
}

void controller::watch_stable(gating::instant t) {
    // The stable pool judged alone on the fixed limits: the same words as the canary's.
    auto fixed = cfg_.slo;
    fixed.compare = false;
    const auto& stable = release_.state().stable;
    const bool down = all_unhealthy(stable);
    const auto window = judged_window(stable, t.mono_ns);
    const auto v = gating::judge({}, window, down, fixed, 1);
    const bool broken = v.what == gating::verdict_kind::violation;
    if (broken == stable_unhealthy_) return;
    stable_unhealthy_ = broken;
    if (!broken) {
        log("info", "the stable pool is healthy again", {{"pool", stable}});
        return;
    }
    // One event per episode, and no action: there is nowhere safer to send the traffic.
    auto reason = "stable pool " + stable +
                  " unhealthy: " + (down ? std::string("no healthy endpoint") : v.reason) +
                  "; no action taken (nowhere safer to send the traffic)";
    auto figures = window_json(window);  // the stable pool's own figures, not "canary_..."
    figures["pool"] = stable;
    figures["no_healthy_endpoint"] = down;
    record(gating::make_event(t.unix_ms, gating::event_kind::stable_unhealthy,
                              down ? gating::event_by::health : gating::event_by::judge,
                              std::move(reason), std::move(figures)));
}

void controller::schedule_history() {
    history_timer_.expires_after(std::chrono::seconds(1));
    history_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || draining_) return;
        std::vector<metrics::window_stats> totals;
        for (std::uint32_t slot = 0; slot < pool_slots_.size(); ++slot)
            totals.push_back(metrics_.total(slot));
        history_.sample(now().unix_ms / 1000, release_.state().canary_bp / 100.0, totals);
        schedule_history();
    });
}

void controller::evaluate() {
    const auto t = now();
    watch_stable(t);
    if (fleet_) {
        // The leader judges the fleet; an instance cut off from etcd guards its own traffic.
        if (!fleet_->etcd_up())
            judge_alone(t);
        else if (fleet_->leader())
            judge_fleet(t);
        return;
    }
    if (auto events = judge(release_, t, false, true); !events.empty()) apply(events);
}

std::vector<gating::event> controller::judge(gating::release& r, gating::instant t, bool merged,
                                             bool may_advance) {
    const auto& s = r.state();
    const auto window = [&](const std::string& pool) {
        return merged ? judged_window(pool, t.mono_ns) : local_window(pool, t.mono_ns);
    };
    // Merging the canary's window costs nothing while it has no weight (the stable pool's
    // is merged every evaluation anyway, for its alarm).
    metrics::window_stats stable, canary;
    if (r.judging()) {
        stable = window(s.stable);
        canary = window(s.canary);
    }
    return r.evaluate(stable, canary, all_unhealthy(s.canary), t, cfg_.slo, cfg_.rollout,
                      gate_readings(t), may_advance);
}

std::vector<gating::gate_reading> controller::gate_readings(gating::instant t) const {
    const auto since_ns = release_.canary_since_ns();
    const auto since_ms = since_ns == std::numeric_limits<std::int64_t>::min()
                              ? std::numeric_limits<std::int64_t>::min()
                              : t.unix_ms - (t.mono_ns - since_ns) / 1'000'000;
    return gates_.readings(since_ms, t.unix_ms);
}

void controller::on_alerts(std::vector<gating::alert> alerts) {
    const auto t = now();
    const gating::alert* trigger = nullptr;
    std::vector<gating::event> events;
    for (const auto& a : alerts) {
        events.push_back(
            gating::make_event(t.unix_ms, gating::event_kind::alert, gating::event_by::alert,
                               "alert " + a.name() + " " + a.status + ": " + gating::label_text(a),
                               gating::figures(a)));
        release_.note(events.back());
        if (!trigger && a.firing() && gating::matches(a, cfg_.gates.alerts.match)) trigger = &a;
    }
    apply(events);  // one state-file write for the notification, not one per alert
    if (!trigger || !release_.judging()) return;  // an alert can roll back, never promote
    auto reason = "alert " + trigger->name() + " firing: " + gating::label_text(*trigger);
    auto change = [this, reason, f = gating::figures(*trigger)](gating::release& r,
                                                                std::vector<std::string>&) {
        return r.rollback(now(), reason, gating::event_by::alert, f);
    };
    if (!fleet_) {
        std::vector<std::string> unused;
        if (auto r = change(release_, unused); r.ok()) apply(r.events);
        return;
    }
    asio::co_spawn(
        ioc_,
        [this, change]() -> asio::awaitable<void> {
            const auto answer = co_await fleet_change(change, true);
            if (answer.find("\"ok\":false") != std::string::npos)
                log("error", "the alert's rollback was not written", {{"answer", answer}});
        },
        asio::detached);
}

std::string controller::command_reply() const {
    const auto& state = release_.state();
    json::object o;
    o["state"] = gating::phase_name(state.state);
    o["canary_weight"] = percent_json(state.canary_bp);
    o["paused"] = state.paused;
    return ok_json(std::move(o));
}

gating::command_result controller::run_command(const admin::command& cmd, gating::release& r,
                                               std::vector<std::string>& drained) {
    const auto now = this->now();
    using admin::verb;
    switch (cmd.what) {
        case verb::set_weight: return r.set_weight(cmd.number, now, cfg_.rollout);
        case verb::start: return r.start(now, cfg_.rollout);
        case verb::pause: return r.pause(now);
        case verb::resume: return r.resume(now);
        case verb::promote: return r.promote(now, cfg_.rollout);
        case verb::rollback: return r.rollback(now, cmd.text);
        case verb::drain:
        case verb::undrain: break;
        default: return {"not a release command"};
    }
    const bool drain = cmd.what == verb::drain;
    // A DNS name stands for each of its addresses now (SPEC 12).
    const auto name = names_.find(cmd.text);
    const auto targets = name != names_.end() ? name->second : std::vector<std::string>{cmd.text};
    for (const auto& t : targets) {
        const bool known = std::any_of(endpoints_.begin(), endpoints_.end(), [&](const auto& ep) {
            return ep.address == t && !ep.pool.empty();
        });
        if (!known) return {"unknown endpoint: " + cmd.text};
    }
    for (const auto& t : targets) {
        std::erase(drained, t);
        if (drain) drained.push_back(t);
    }
    auto e = gating::make_event(now.unix_ms,
                                drain ? gating::event_kind::drain : gating::event_kind::undrain,
                                gating::event_by::operator_,
                                cmd.text + (drain ? " drained by operator" : " back in rotation"),
                                {{"endpoint", cmd.text}});
    r.note(e);
    return {"", {std::move(e)}};
}

asio::awaitable<std::string> controller::command(std::string line) {
    const auto cmd = admin::parse_command(line);
    if (!cmd.error.empty()) co_return error_json(cmd.error);
    using admin::verb;
    const bool shared = cmd.what != verb::status && cmd.what != verb::help &&
                        cmd.what != verb::reload && cmd.what != verb::events;
    if (fleet_ && shared) co_return co_await fleet_command(cmd);
    co_return local_command(cmd);
}

std::string controller::local_command(const admin::command& cmd) {
    using admin::verb;
    switch (cmd.what) {
        case verb::status: return ok_json(status());
        case verb::help: {
            json::object o;
            o["commands"] = admin::help_text();
            return ok_json(std::move(o));
        }
        case verb::reload: {
            auto err = reload();
            if (!err.empty()) return error_json(err);
            json::object o;
            o["reloaded"] = cfg_.file;
            return ok_json(std::move(o));
        }
        case verb::events: {
            json::array a;
            const auto& events = release_.events();
            const std::size_t n =
                std::min<std::size_t>(static_cast<std::size_t>(cmd.number), events.size());
            for (std::size_t i = events.size() - n; i < events.size(); ++i)
                a.push_back(gating::to_json(events[i]));
            json::object o;
            o["events"] = std::move(a);
            return ok_json(std::move(o));
        }
        case verb::drain:
        case verb::undrain: {
            std::vector<std::string> drained;
            for (const auto& ep : endpoints_)
                if (ep.drained) drained.push_back(ep.address);
            auto r = run_command(cmd, release_, drained);
            if (!r.ok()) return error_json(r.error);
            for (auto& ep : endpoints_)
                ep.drained = std::find(drained.begin(), drained.end(), ep.address) != drained.end();
            apply(r.events);
            json::object o;
            o["endpoint"] = cmd.text;
            o["drained"] = cmd.what == verb::drain;
            return ok_json(std::move(o));
        }
        default: {
            std::vector<std::string> unused;
            auto r = run_command(cmd, release_, unused);
            if (!r.ok()) return error_json(r.error);
            apply(r.events);
            return command_reply();
        }
    }
}

int controller::run() {
    server_->start();
    admin_->start();
    if (http_) http_->start();
    start_health_checks();
    schedule_evaluation();
    schedule_history();
    schedule_dns();
    gates_.run(cfg_.gates.prometheus);
    if (alerts_) alerts_->start();
    if (fleet_) fleet_->start();
    log("info", "veer started",
        {{"listener", cfg_.listener.address},
         {"threads", static_cast<std::uint64_t>(server_->threads())},
         {"admin_socket", cfg_.admin.socket},
         {"version", VEER_VERSION}});
    std::function<void()> wait_signal = [&] {
        signals_.async_wait([&](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (sig == SIGHUP) {
                if (auto err = reload(); !err.empty()) log("error", err);
                wait_signal();
                return;
            }
            log("info", "draining", {{"signal", sig}, {"limit_ms", cfg_.timeouts.drain.count()}});
            draining_ = true;  // /healthz says 503 from now on; the admin side keeps answering
            server_->drain();
            checker_.stop();
            judge_timer_.cancel();
            history_timer_.cancel();
            dns_timer_.cancel();
            if (fleet_) fleet_->stop();
            if (alerts_) alerts_->close();
            gates_.run({});
            watch_drain(std::chrono::steady_clock::now() + cfg_.timeouts.drain);
        });
    };
    wait_signal();
    ioc_.run();
    if (!server_->finished()) {
        log("warn", "drain limit reached; closing the remaining connections");
        // Closing their sockets ends the sessions' coroutines on their own threads.
        server_->abort();
        if (!server_->wait(std::chrono::seconds(2))) {
            log("error", "connections did not close; exiting without waiting for them");
            std::fflush(stderr);
            std::_Exit(0);
        }
    }
    server_->stop();
    admin_->close();
    log("info", "veer stopped");
    return 0;
}

void controller::watch_drain(std::chrono::steady_clock::time_point deadline) {
    if (server_->finished() || std::chrono::steady_clock::now() >= deadline) {
        ioc_.stop();
        return;
    }
    judge_timer_.expires_after(std::chrono::milliseconds(20));
    judge_timer_.async_wait(
        [this, deadline](const boost::system::error_code&) { watch_drain(deadline); });
}

}  // namespace veer::control
