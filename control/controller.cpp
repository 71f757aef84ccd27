#include "control/controller.hpp"

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
#include "admin/status_page.hpp"
#include "control/log.hpp"
#include "control/state_file.hpp"
#include "metrics/exposition.hpp"
#include "proxy/address.hpp"
#include "proxy/tls.hpp"

namespace veer::control {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;

constexpr std::size_t max_events = 200;

std::string ok_json(json::object o = {}) {
    o.emplace("ok", true);
    // "ok" first reads better; boost::json keeps insertion order.
    json::object out;
    out["ok"] = true;
    for (auto& kv : o)
        if (kv.key() != "ok") out[kv.key()] = kv.value();
    return json::serialize(out);
}

std::string error_json(std::string_view error) {
    json::object o;
    o["ok"] = false;
    o["error"] = error;
    return json::serialize(o);
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

controller::controller(config::config cfg)
    : cfg_(std::move(cfg)),
      metrics_(proxy::thread_count(cfg_.listener), cfg_.slo.window, metrics::monotonic_ns()),
      shared_(routes_, metrics_),
      checker_(ioc_, [this](std::uint32_t id, bool healthy, std::string why) { on_health(id, healthy, why); }),
      notifier_(ioc_),
      signals_(ioc_, SIGINT, SIGTERM, SIGHUP),
      judge_timer_(ioc_) {
    configure_log(cfg_.log);
    notifier_.set_url(cfg_.notify.webhook);
    for (const auto& p : cfg_.pools) {
        pool_slot(p.name);
        for (const auto& a : p.endpoints) endpoints_[endpoint_id(a)].pool = p.name;
    }
    if (auto err = load_tls(cfg_); !err.empty()) throw std::runtime_error(err);
    restore_state();
    seen_weight_ = rollout_.canary_weight;
    seen_canary_ = rollout_.canary;
    publish();
    shared_.on_eject = [this](std::uint32_t id) { asio::post(ioc_, [this, id] { eject(id); }); };
    if (!cfg_.log.access_log.empty()) {
        shared_.access_log_fd = ::open(cfg_.log.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (shared_.access_log_fd < 0)
            throw std::runtime_error("log.access_log: cannot open " + cfg_.log.access_log + ": " + std::strerror(errno));
    }
    // Bound in this order so that the data listener accepting is the last sign of
    // readiness: by then the admin socket and the admin HTTP listener accept as well.
    if (!cfg_.admin.http.empty()) {
        http_ = std::make_unique<admin::http_server>(ioc_, cfg_.admin.http, [this](std::string_view target) {
            admin::http_response r;
            if (target == "/metrics") {
                r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                r.body = prometheus();
            } else if (target == "/status") {
                r.content_type = "application/json";
                auto s = status();
                r.body = ok_json(std::move(s));
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
        });
    }
    admin_ = std::make_unique<admin::socket_server>(ioc_, cfg_.admin.socket, cfg_.admin.socket_mode,
                                                    [this](std::string_view line) { return command(line); });
    server_ = std::make_unique<proxy::server>(cfg_, shared_);
}

controller::~controller() {
    server_.reset();  // flushes the access log
    if (shared_.access_log_fd >= 0) ::close(shared_.access_log_fd);
}

std::int64_t controller::now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

std::uint32_t controller::endpoint_id(const std::string& address) {
    for (std::uint32_t i = 0; i < endpoints_.size(); ++i)
        if (endpoints_[i].address == address) return i;
    if (endpoints_.size() >= metrics::max_endpoints) throw std::runtime_error("too many endpoints");
    endpoints_.push_back({address});
    return static_cast<std::uint32_t>(endpoints_.size() - 1);
}

std::uint32_t controller::pool_slot(const std::string& name) {
    for (std::uint32_t i = 0; i < pool_slots_.size(); ++i)
        if (pool_slots_[i] == name) return i;
    if (pool_slots_.size() >= metrics::max_pool_slots) throw std::runtime_error("too many pools");
    pool_slots_.push_back(name);
    return static_cast<std::uint32_t>(pool_slots_.size() - 1);
}

const std::string& controller::canary_of(const std::string& stable) const {
    for (const auto& p : cfg_.pools)
        if (p.name != stable) return p.name;
    return stable;
}

std::string controller::load_tls(const config::config& next) {
    try {
        std::shared_ptr<boost::asio::ssl::context> server;
        if (next.listener.tls) server = proxy::make_server_tls(*next.listener.tls);
        std::map<std::string, std::shared_ptr<void>> pools;
        for (const auto& p : next.pools)
            if (p.tls) pools[p.name] = proxy::make_client_tls(*p.tls, "pools." + p.name + ".tls");
        // Only now that everything loaded: new connections take the new contexts.
        shared_.server_tls.store(std::move(server));
        pool_tls_ = std::move(pools);
        return "";
    } catch (const std::exception& e) {
        return e.what();
    }
}

void controller::restore_state() {
    rollout_.stable = cfg_.split.stable;
    rollout_.canary = canary_of(rollout_.stable);
    rollout_.canary_weight = cfg_.split.canary_weight;
    std::string error;
    auto saved = read_state(cfg_.state.path, error);
    if (!error.empty()) {
        log("warn", "state file ignored", {{"path", cfg_.state.path}, {"error", error}});
    } else if (saved) {
        if (cfg_.find_pool(saved->rollout.stable) && cfg_.find_pool(saved->rollout.canary) &&
            saved->rollout.stable != saved->rollout.canary) {
            rollout_ = saved->rollout;
            for (auto& e : saved->events) events_.push_back(std::move(e));
            log("info", "state restored", {{"path", cfg_.state.path},
                                           {"state", gating::phase_name(rollout_.state)},
                                           {"canary_weight", rollout_.canary_weight}});
        } else {
            log("warn", "state file names pools the config does not have; ignored", {{"path", cfg_.state.path}});
        }
    }
    if (cfg_.rollout.auto_start && (rollout_.state == gating::phase::idle)) {
        auto r = gating::start(rollout_, now_ms(), cfg_.rollout);
        if (r.ok()) {
            for (auto& e : r.events) events_.push_back(std::move(e));
        }
    }
}

void controller::publish() {
    auto s = std::make_shared<routing::snapshot>();
    for (const auto& p : cfg_.pools) {
        routing::pool rp;
        rp.name = p.name;
        rp.slot = pool_slot(p.name);
        rp.balance = p.balance_;
        if (p.tls) {
            rp.tls = pool_tls_[p.name];
            rp.tls_name = p.tls->sni;
            rp.tls_verify = p.tls->verify;
        }
        for (const auto& a : p.endpoints) {
            routing::endpoint e;
            e.id = endpoint_id(a);
            e.address = a;
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
    s->stable = index_of(rollout_.stable);
    s->canary = index_of(rollout_.canary);
    s->canary_weight_bp = rollout_.canary_weight * 100;
    for (const auto& r : cfg_.split.rules) {
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
        if (r.pool == "canary") rr.target = routing::rule_target::canary;
        else if (r.pool == "stable") rr.target = routing::rule_target::stable;
        else {
            rr.target = routing::rule_target::pool;
            rr.pool = index_of(r.pool);
        }
        s->rules.push_back(std::move(rr));
    }
    s->sticky_header = cfg_.split.sticky_header;
    s->sticky_cookie = cfg_.split.sticky_cookie;
    s->timeouts = cfg_.timeouts;
    s->limits = cfg_.limits;
    s->retry = cfg_.retry;
    s->errors = cfg_.slo.errors;
    s->eject_after_failures = cfg_.health.eject_after_failures;
    s->version = ++snapshot_version_;
    routes_.publish(std::move(s));
}

void controller::persist() {
    persisted p{rollout_, {events_.begin(), events_.end()}};
    if (auto err = write_state(cfg_.state.path, p); !err.empty()) log("error", "state not saved", {{"error", err}});
}

void controller::apply(std::vector<gating::event> events) {
    const bool started = std::any_of(events.begin(), events.end(),
                                     [](const gating::event& e) { return e.kind == gating::event_kind::started; });
    if (rollout_.canary_weight > 0 && (started || seen_weight_ == 0 || seen_canary_ != rollout_.canary)) {
        canary_since_ns_ = metrics::monotonic_ns();
        evaluation_index_ = 0;
    }
    seen_weight_ = rollout_.canary_weight;
    seen_canary_ = rollout_.canary;
    for (auto& e : events) {
        auto o = gating::to_json(e);
        log("info", "event", {{"event", o}});
        notifier_.post(json::serialize(o));
        ++events_by_kind_[e.kind];
        events_.push_back(std::move(e));
        if (events_.size() > max_events) events_.pop_front();
    }
    persist();
    publish();
}

void controller::start_health_checks() {
    std::vector<health::target> targets;
    if (!cfg_.health.enabled) {
        checker_.run({}, cfg_.health);  // a reload that turns checks off stops the old ones
        return;
    }
    for (const auto& p : cfg_.pools)
        for (const auto& a : p.endpoints) {
            routing::endpoint e;
            if (!routing::parse_ip_endpoint(a, e)) continue;
            health::target t{endpoint_id(a), a, proxy::to_tcp(e)};
            if (p.tls) {
                t.tls = pool_tls_[p.name];
                t.tls_name = proxy::tls_name(p.tls->sni, a);
                t.tls_verify = p.tls->verify;
            }
            targets.push_back(std::move(t));
        }
    checker_.run(std::move(targets), cfg_.health);
}

void controller::on_health(std::uint32_t id, bool healthy, const std::string& why) {
    auto& ep = endpoints_[id];
    ep.healthy = healthy;
    gating::event e;
    e.time_ms = now_ms();
    e.kind = "health";
    e.by = gating::event_by::health;
    e.reason = ep.address + (healthy ? " healthy: " : " unhealthy: ") + why;
    e.figures["endpoint"] = ep.address;
    e.figures["pool"] = ep.pool;
    e.figures["healthy"] = healthy;
    apply({std::move(e)});
}

void controller::eject(std::uint32_t id) {
    auto& ep = endpoints_[id];
    if (ep.ejected) return;
    ep.ejected = true;
    const auto generation = ++ep.eject_generation;
    gating::event e;
    e.time_ms = now_ms();
    e.kind = "health";
    e.by = gating::event_by::health;
    e.reason = ep.address + " ejected for " + format_duration_ms(cfg_.health.eject_for.count()) + " after " +
               std::to_string(cfg_.health.eject_after_failures) + " consecutive failed requests";
    e.figures["endpoint"] = ep.address;
    e.figures["pool"] = ep.pool;
    e.figures["ejected"] = true;
    apply({std::move(e)});
    auto timer = std::make_shared<asio::steady_timer>(ioc_, cfg_.health.eject_for);
    timer->async_wait([this, id, generation, timer](const boost::system::error_code& ec) {
        auto& ep = endpoints_[id];
        if (ec || ep.eject_generation != generation || !ep.ejected) return;
        ep.ejected = false;
        shared_.consecutive_failures[id].store(0, std::memory_order_relaxed);
        publish();
    });
}

bool controller::canary_all_unhealthy() const {
    int considered = 0;
    for (const auto& ep : endpoints_) {
        if (ep.pool != rollout_.canary || ep.drained) continue;
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

void controller::evaluate() {
    if (rollout_.canary_weight == 0) {
        evaluation_index_ = 0;
        last_verdict_ = {};
        return;
    }
    const auto now = metrics::monotonic_ns();
    const auto stable = metrics_.window(pool_slot(rollout_.stable), now);
    const auto canary = metrics_.window(pool_slot(rollout_.canary), now, canary_since_ns_);
    last_verdict_ = gating::judge(stable, canary, canary_all_unhealthy(), cfg_.slo, ++evaluation_index_);
    gating::judgement j;
    j.what = static_cast<gating::judgement::kind>(last_verdict_.what);
    j.reason = last_verdict_.reason;
    j.figures = gating::to_json(last_verdict_);
    auto events = gating::tick(rollout_, j, now_ms(), cfg_.rollout, cfg_.slo.violations_to_rollback, cfg_.slo.dry_run);
    if (!events.empty()) apply(std::move(events));
}

boost::json::object controller::status() const {
    json::object o;
    const bool judging = rollout_.canary_weight > 0;
    o["state"] = gating::phase_name(rollout_.state);
    o["holding"] = judging && last_verdict_.what == gating::verdict::kind::holding;
    o["needed_requests"] = judging && last_verdict_.what == gating::verdict::kind::holding ? last_verdict_.needed_requests : 0;
    o["stable"] = rollout_.stable;
    o["canary"] = rollout_.canary;
    o["canary_weight"] = rollout_.canary_weight;
    o["step"] = rollout_.step;
    o["paused"] = rollout_.paused;
    o["strategy"] = config::strategy_name(cfg_.rollout.strategy_);
    json::array steps;
    for (int w : gating::steps_for(cfg_.rollout)) steps.push_back(w);
    o["steps"] = std::move(steps);
    o["step_started"] = rollout_.step_started_ms ? json::value(gating::format_rfc3339_ms(rollout_.step_started_ms)) : json::value(nullptr);
    o["step_elapsed_ms"] = rollout_.step_started_ms ? std::max<std::int64_t>(0, now_ms() - rollout_.step_started_ms) : 0;
    o["step_interval_ms"] = cfg_.rollout.step_interval.count();
    o["bake_ms"] = cfg_.rollout.bake.count();
    o["verdict"] = judging ? json::value(gating::to_json(last_verdict_)) : json::value(nullptr);
    o["window_s"] = std::chrono::duration<double>(cfg_.slo.window).count();
    const auto now = metrics::monotonic_ns();
    json::object pools;
    for (const auto& p : cfg_.pools) {
        const auto slot = const_cast<controller*>(this)->pool_slot(p.name);
        const auto w = metrics_.window(slot, now, p.name == rollout_.canary ? canary_since_ns_ : std::numeric_limits<std::int64_t>::min());
        json::object po;
        po["role"] = p.name == rollout_.stable ? "stable" : p.name == rollout_.canary ? "canary" : "other";
        po["requests"] = w.requests;
        po["failures"] = w.failures;
        po["error_rate"] = round3(w.error_rate());
        po["p50_ms"] = round3(w.latency.quantile(0.50) / 1000.0);
        po["p95_ms"] = round3(w.latency.quantile(0.95) / 1000.0);
        po["p99_ms"] = round3(w.latency.quantile(0.99) / 1000.0);
        po["rps"] = round3(w.rps());
        json::array eps;
        for (const auto& a : p.endpoints) {
            for (const auto& ep : endpoints_) {
                if (ep.address != a) continue;
                eps.push_back(json::object{{"address", a}, {"healthy", ep.healthy}, {"ejected", ep.ejected}, {"drained", ep.drained}});
            }
        }
        po["endpoints"] = std::move(eps);
        pools[p.name] = std::move(po);
    }
    o["pools"] = std::move(pools);
    json::array recent;
    const std::size_t from = events_.size() > 5 ? events_.size() - 5 : 0;
    for (std::size_t i = from; i < events_.size(); ++i) recent.push_back(gating::to_json(events_[i]));
    o["events"] = std::move(recent);
    o["connections"] = shared_.active_connections.load(std::memory_order_relaxed);
    return o;
}

std::string controller::prometheus() const {
    metrics::exposition_input in;
    in.canary_weight = rollout_.canary_weight;
    in.state = std::string(gating::phase_name(rollout_.state));
    const auto rollbacks = events_by_kind_.find(std::string(gating::event_kind::rollback));
    in.rollbacks = rollbacks == events_by_kind_.end() ? 0 : rollbacks->second;
    in.active_connections = shared_.active_connections.load(std::memory_order_relaxed);
    in.refused_connections = shared_.refused_connections.load(std::memory_order_relaxed);
    in.events = {events_by_kind_.begin(), events_by_kind_.end()};
    in.webhook_sent = notifier_.sent();
    in.webhook_dropped = notifier_.dropped();
    const auto now = metrics::monotonic_ns();
    for (const auto& p : cfg_.pools) {
        const auto slot = const_cast<controller*>(this)->pool_slot(p.name);
        metrics::exposition_input::pool ip;
        ip.name = p.name;
        ip.total = metrics_.total(slot);
        ip.window = metrics_.window(slot, now);
        for (std::uint32_t id = 0; id < endpoints_.size(); ++id) {
            const auto& ep = endpoints_[id];
            if (ep.pool != p.name) continue;
            ip.endpoints.push_back({ep.address, ep.healthy && !ep.ejected, metrics_.endpoint_totals(id)});
        }
        in.pools.push_back(std::move(ip));
    }
    return metrics::render(in);
}

std::string controller::command(std::string_view line) {
    const auto cmd = admin::parse_command(line);
    if (!cmd.error.empty()) return error_json(cmd.error);
    const auto now = now_ms();
    auto done = [&](gating::command_result r) {
        if (!r.ok()) return error_json(r.error);
        apply(std::move(r.events));
        json::object o;
        o["state"] = gating::phase_name(rollout_.state);
        o["canary_weight"] = rollout_.canary_weight;
        o["paused"] = rollout_.paused;
        return ok_json(std::move(o));
    };
    using admin::verb;
    switch (cmd.what) {
        case verb::status: return ok_json(status());
        case verb::help: {
            json::object o;
            o["commands"] = admin::help_text();
            return ok_json(std::move(o));
        }
        case verb::set_weight: return done(gating::set_weight(rollout_, cmd.number, now, cfg_.rollout));
        case verb::start:
            return done(gating::start(rollout_, now, cfg_.rollout));
        case verb::pause: return done(gating::pause(rollout_, now));
        case verb::resume: return done(gating::resume(rollout_, now));
        case verb::promote: return done(gating::promote(rollout_, now, cfg_.rollout));
        case verb::rollback: return done(gating::rollback(rollout_, now, cmd.text));
        case verb::drain:
        case verb::undrain: {
            const bool drain = cmd.what == verb::drain;
            for (auto& ep : endpoints_) {
                if (ep.address != cmd.text || ep.pool.empty()) continue;
                ep.drained = drain;
                gating::event e;
                e.time_ms = now;
                e.kind = drain ? "drain" : "undrain";
                e.by = gating::event_by::operator_;
                e.reason = ep.address + (drain ? " drained by operator" : " back in rotation");
                e.figures["endpoint"] = ep.address;
                apply({std::move(e)});
                json::object o;
                o["endpoint"] = ep.address;
                o["drained"] = drain;
                return ok_json(std::move(o));
            }
            return error_json("unknown endpoint: " + cmd.text);
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
            const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(cmd.number), events_.size());
            for (std::size_t i = events_.size() - n; i < events_.size(); ++i) a.push_back(gating::to_json(events_[i]));
            json::object o;
            o["events"] = std::move(a);
            return ok_json(std::move(o));
        }
    }
    return error_json("unknown command");
}

std::string controller::reload() {
    auto loaded = config::load_file(cfg_.file);
    if (!loaded.cfg) {
        std::string all;
        for (const auto& e : loaded.errors) all += (all.empty() ? "" : "; ") + e;
        log("error", "reload rejected", {{"errors", all}});
        return "reload rejected, old config kept: " + all;
    }
    auto& next = *loaded.cfg;
    if (!next.find_pool(rollout_.stable) || !next.find_pool(rollout_.canary))
        return "reload rejected: pools " + rollout_.stable + " and " + rollout_.canary + " must stay defined";
    std::string note;
    if (next.listener.address != cfg_.listener.address) {
        note = "listener.address change needs a restart; still listening on " + cfg_.listener.address;
        next.listener.address = cfg_.listener.address;
        log("warn", note);
    }
    if (auto err = load_tls(next); !err.empty()) {
        log("error", "reload rejected", {{"errors", err}});
        return "reload rejected, old config kept: " + err;
    }
    // The window's length is fixed by the shards' rings; it changes on restart.
    next.slo.window = cfg_.slo.window;
    next.admin = cfg_.admin;
    cfg_ = std::move(next);
    configure_log(cfg_.log);
    notifier_.set_url(cfg_.notify.webhook);
    for (const auto& p : cfg_.pools) {
        pool_slot(p.name);
        for (const auto& a : p.endpoints) endpoints_[endpoint_id(a)].pool = p.name;
    }
    for (auto& ep : endpoints_)  // endpoints dropped from the config belong to no pool now
        if (!cfg_.find_pool(ep.pool) ||
            std::find(cfg_.find_pool(ep.pool)->endpoints.begin(), cfg_.find_pool(ep.pool)->endpoints.end(), ep.address) ==
                cfg_.find_pool(ep.pool)->endpoints.end())
            ep.pool.clear();
    start_health_checks();
    gating::event e;
    e.time_ms = now_ms();
    e.kind = "reload";
    e.by = gating::event_by::operator_;
    e.reason = note.empty() ? "config reloaded from " + cfg_.file : "config reloaded; " + note;
    apply({std::move(e)});
    return "";
}

int controller::run() {
    server_->start();
    admin_->start();
    if (http_) http_->start();
    start_health_checks();
    schedule_evaluation();
    log("info", "veer started", {{"listener", cfg_.listener.address},
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
    judge_timer_.async_wait([this, deadline](const boost::system::error_code&) { watch_drain(deadline); });
}

}  // namespace veer::control
