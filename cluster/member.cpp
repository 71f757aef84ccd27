#include "cluster/member.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include "control/log.hpp"
#include "gating/release.hpp"
#include "metrics/registry.hpp"

namespace veer::cluster {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
using control::log;

// After a failed round: etcd is retried this often (a restarted etcd is back within it).
constexpr std::chrono::milliseconds retry_every{250};

json::object put(const std::string& key, const std::string& value, const std::string& lease = "") {
    json::object p{{"key", base64_encode(key)}, {"value", base64_encode(value)}};
    if (!lease.empty()) p["lease"] = lease;
    return {{"request_put", std::move(p)}};
}

json::object compare(const std::string& key, std::string_view target, std::int64_t revision) {
    const std::string field = target == "MOD" ? "mod_revision" : "create_revision";
    return {{"key", base64_encode(key)},
            {"target", target},
            {"result", "EQUAL"},
            {field, std::to_string(revision)}};
}

const json::object* object_at(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v ? v->if_object() : nullptr;
}

bool flag(const json::object& o, std::string_view name) {
    const auto* v = o.if_contains(name);
    return v && v->is_bool() && v->as_bool();
}

std::int64_t header_revision(const json::object& body) {
    const auto* h = object_at(body, "header");
    return h ? int64_field(*h, "revision") : 0;
}

}  // namespace

std::string default_instance(const std::string& listener_address) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "veer");
    const auto colon = listener_address.rfind(':');
    return std::string(host) + ":" +
           (colon == std::string::npos ? listener_address : listener_address.substr(colon + 1));
}

member::member(asio::io_context& ioc, const config::cluster& settings,
               std::chrono::milliseconds report_every, hooks h)
    : ioc_(ioc),
      settings_(settings),
      report_every_(report_every),
      hooks_(std::move(h)),
      keys_(settings.name),
      instance_(settings.instance),
      // A call waits at most half a lease: a slow etcd is noticed before the lease lapses.
      etcd_(ioc, settings.etcd, std::min(std::chrono::milliseconds(1000), settings.lease / 2)),
      retry_timer_(ioc) {}

member::~member() = default;

void member::start() {
    running_ = true;
    asio::co_spawn(ioc_, run(), asio::detached);
}

void member::stop() {
    running_ = false;
    retry_timer_.cancel();
    if (up_ && !lease_.empty()) {
        // Leaving on purpose: the lease (election key, report) goes now, so another
        // instance leads at once instead of after the lease's TTL. Best effort.
        asio::co_spawn(
            ioc_,
            [this, lease = lease_]() -> asio::awaitable<void> {
                const json::object body{{"ID", lease}};
                co_await etcd_.call("lease/revoke", body);
            },
            asio::detached);
    }
    fail("stopping");
}

asio::awaitable<void> member::run() {
    std::string last_failure;
    while (running_) {
        const auto why = co_await round();
        if (!running_) break;
        if (up_) fail(why);
        if (why != last_failure)
            log("warn", "etcd unreachable; serving on the last state seen",
                {{"cluster", settings_.name}, {"error", why}});
        last_failure = why;
        hooks_.on_role();
        retry_timer_.expires_after(retry_every);
        co_await retry_timer_.async_wait(nothrow);
    }
}

asio::awaitable<std::string> member::round() {
    const auto this_round = ++round_;
    const auto ttl = std::to_string(settings_.lease.count() / 1000);
    // Request bodies are named first: GCC 12 miscompiles braced temporaries in co_await.
    const json::object grant_body{{"TTL", ttl}};
    auto grant = co_await etcd_.call("lease/grant", grant_body);
    if (!grant.ok()) co_return grant.error;
    lease_ = std::to_string(int64_field(grant.body, "ID"));
    // The election key: a put keeps its create_revision if it survived (same instance id,
    // etcd or the watch came back), so a leader that only lost its watch stays leader.
    const auto campaign_body =
        put(keys_.election + instance_, instance_, lease_).at("request_put").as_object();
    auto campaign = co_await etcd_.call("kv/put", campaign_body);
    if (!campaign.ok()) co_return campaign.error;
    std::int64_t revision = 0;
    if (auto err = co_await read_all(revision, true); !err.empty()) co_return err;
    if (!release_) {
        if (auto err = co_await create_release(); !err.empty()) co_return err;
        if (auto err = co_await read_all(revision, true); !err.empty()) co_return err;
        if (!release_) co_return "the release key vanished right after it was written";
    }
    if (my_create_revision_ == 0) co_return "this instance's election key is missing";
    up_ = true;
    log("info", "etcd reached",
        {{"cluster", settings_.name},
         {"instance", instance_},
         {"endpoint", etcd_.current()},
         {"revision", revision}});
    elect();
    hooks_.on_role();
    asio::co_spawn(ioc_, keep_alive(this_round), asio::detached);
    asio::co_spawn(ioc_, publish_reports(this_round), asio::detached);
    const json::object create{{"key", base64_encode(keys_.prefix)},
                              {"range_end", base64_encode(prefix_end(keys_.prefix))},
                              {"start_revision", std::to_string(revision + 1)}};
    auto why =
        co_await etcd_.watch(create, [this](const json::object& m) { return apply_watch(m); });
    co_return why;
}

asio::awaitable<std::string> member::read_all(std::int64_t& revision, bool fresh) {
    const json::object range{{"key", base64_encode(keys_.prefix)},
                             {"range_end", base64_encode(prefix_end(keys_.prefix))}};
    auto r = co_await etcd_.call("kv/range", range);
    if (!r.ok()) co_return r.error;
    revision = header_revision(r.body);
    if (fresh) peers_.clear();
    std::optional<shared_release> next;
    std::map<std::uint64_t, gating::event> events;
    bool has_release = false;
    if (const auto* kvs = r.body.if_contains("kvs"); kvs && kvs->is_array())
        for (const auto& v : kvs->as_array())
            if (auto item = kv_from_json(v)) {
                has_release = has_release || item->key == keys_.release;
                apply_kv(*item, false, fresh, next, events);
            }
    if (!has_release && fresh) {
        release_.reset();
        release_revision_ = 0;
    }
    deliver(std::move(next), std::move(events),
            first_read_done_ ? origin::fleet : origin::first_read);
    co_return "";
}

asio::awaitable<std::string> member::create_release() {
    auto initial = hooks_.initial_release();
    initial.event_seq = 0;
    json::object txn{{"compare", json::array{compare(keys_.release, "CREATE", 0)}},
                     {"success", json::array{put(keys_.release, to_text(initial))}}};
    auto r = co_await etcd_.call("kv/txn", txn);
    if (!r.ok()) co_return r.error;
    if (flag(r.body, "succeeded"))
        log("info", "fleet release created from this instance's state",
            {{"cluster", settings_.name}, {"instance", instance_}});
    co_return "";  // written by this instance or, a moment before, by another
}

asio::awaitable<std::string> member::refresh() {
    std::int64_t revision = 0;
    co_return co_await read_all(revision, false);
}

asio::awaitable<void> member::keep_alive(std::uint64_t this_round) {
    asio::steady_timer timer(ioc_);
    while (this_round == round_) {
        timer.expires_after(settings_.lease / 3);
        co_await timer.async_wait(nothrow);
        if (this_round != round_) break;
        const json::object body{{"ID", lease_}};
        auto r = co_await etcd_.call("lease/keepalive", body);
        if (this_round != round_) break;
        if (!r.ok()) {
            fail(r.error);
            break;
        }
        const auto* result = object_at(r.body, "result");
        if (!result || int64_field(*result, "TTL") <= 0) {
            fail("this instance's lease expired");
            break;
        }
    }
}

asio::awaitable<void> member::publish_reports(std::uint64_t this_round) {
    asio::steady_timer timer(ioc_);
    while (this_round == round_) {
        const auto text = to_text(hooks_.make_report());
        const auto body =
            put(keys_.reports + instance_, text, lease_).at("request_put").as_object();
        auto r = co_await etcd_.call("kv/put", body);
        if (this_round != round_) break;
        if (!r.ok()) {
            fail(r.error);
            break;
        }
        ++writes_;
        report_bytes_ += text.size();
        timer.expires_after(report_every_);
        co_await timer.async_wait(nothrow);
    }
}

void member::fail(const std::string& why) {
    ++round_;
    etcd_.cancel_watch();
    if (!up_) return;
    up_ = false;
    log("warn", "etcd lost", {{"cluster", settings_.name}, {"error", why}});
}

bool member::apply_watch(const json::object& message) {
    if (flag(message, "canceled")) {
        log("info", "etcd watch cancelled; reading the release again",
            {{"compact_revision", int64_field(message, "compact_revision")}});
        return false;
    }
    std::optional<shared_release> next;
    std::map<std::uint64_t, gating::event> events;
    if (const auto* list = message.if_contains("events"); list && list->is_array())
        for (const auto& e : list->as_array()) {
            const auto* o = e.if_object();
            const auto* kv_json = o ? o->if_contains("kv") : nullptr;
            if (!kv_json) continue;
            const auto* type = o->if_contains("type");
            const bool deleted = type && type->is_string() && type->as_string() == "DELETE";
            if (auto item = kv_from_json(*kv_json)) apply_kv(*item, deleted, false, next, events);
        }
    deliver(std::move(next), std::move(events), origin::fleet);
    if (my_create_revision_ == 0) return false;  // deposed: campaign again in a new round
    elect();
    return true;
}

void member::apply_kv(const kv& item, bool deleted, bool fresh,
                      std::optional<shared_release>& next_release,
                      std::map<std::uint64_t, gating::event>& new_events) {
    if (item.key == keys_.release) {
        // A read after reconnecting delivers whatever etcd holds, even unchanged: the
        // controller may have a rollback of its own to write; the watch only what is newer.
        const bool newer = fresh || item.mod_revision > release_revision_;
        if (deleted || !newer) return;
        std::string error;
        auto r = release_from_text(item.value, error);
        if (!r) {
            log("error", "fleet release in etcd ignored", {{"key", item.key}, {"error", error}});
            return;
        }
        next_release = std::move(*r);
        release_revision_ = item.mod_revision;
    } else if (auto seq = keys_.event_seq(item.key)) {
        const auto applied = release_ ? release_->event_seq : 0;
        if (deleted || *seq <= applied) return;
        boost::system::error_code ec;
        if (auto e = gating::event_from_json(json::parse(item.value, ec)); e && !ec)
            new_events[*seq] = std::move(*e);
    } else if (auto id = keys::instance_of(item.key, keys_.election); !id.empty()) {
        auto& p = peers_[std::string(id)];
        p.create_revision = deleted ? 0 : item.create_revision;
        if (id == instance_) my_create_revision_ = p.create_revision;
    } else if (auto id = keys::instance_of(item.key, keys_.reports); !id.empty()) {
        auto& p = peers_[std::string(id)];
        if (deleted) {
            p.last.reset();
        } else if (auto r = report_from_text(item.value)) {
            p.last = std::move(*r);
            p.received_ns = metrics::monotonic_ns();
        }
    }
    // Only a deletion can leave a peer with nothing: no scan of every peer per report.
    if (deleted)
        std::erase_if(peers_,
                      [](const auto& e) { return !e.second.create_revision && !e.second.last; });
}

void member::deliver(std::optional<shared_release> next,
                     std::map<std::uint64_t, gating::event> events, origin from) {
    if (!next) return;  // events only ever come with the release that counts them
    release_ = *next;
    std::vector<gating::event> list;
    for (auto& [seq, e] : events)
        if (seq <= release_->event_seq) list.push_back(std::move(e));
    if (from == origin::first_read) first_read_done_ = true;
    hooks_.on_release(*release_, std::move(list), from);
}

void member::elect() {
    std::string next;
    std::int64_t lowest = 0;
    for (const auto& [id, p] : peers_)
        if (p.create_revision > 0 && (lowest == 0 || p.create_revision < lowest)) {
            lowest = p.create_revision;
            next = id;
        }
    if (next == leader_) return;
    log("info", "fleet leader",
        {{"cluster", settings_.name}, {"leader", next}, {"instance", instance_}});
    leader_ = next;
    hooks_.on_role();
}

asio::awaitable<std::string> member::write(shared_release next, std::vector<gating::event> events,
                                           bool as_leader) {
    // Not gated on up_: the rollback taken alone is written from the first read after etcd
    // returns, before the round counts as up.
    if (as_leader && !leader()) co_return "this instance no longer leads the fleet";
    const std::uint64_t base = release_ ? release_->event_seq : 0;
    next.event_seq = base + events.size();
    json::array guards{compare(keys_.release, "MOD", release_revision_)};
    if (as_leader)
        guards.push_back(compare(keys_.election + instance_, "CREATE", my_create_revision_));
    json::array ops{put(keys_.release, to_text(next))};
    for (std::size_t i = 0; i < events.size(); ++i)
        ops.push_back(put(keys_.event(base + 1 + i), json::serialize(gating::to_json(events[i]))));
    if (next.event_seq > gating::release::max_events) {  // the oldest go
        json::object range{
            {"key", base64_encode(keys_.event(0))},
            {"range_end",
             base64_encode(keys_.event(next.event_seq - gating::release::max_events + 1))}};
        ops.push_back(json::object{{"request_delete_range", std::move(range)}});
    }
    const json::object txn{{"compare", std::move(guards)}, {"success", std::move(ops)}};
    auto r = co_await etcd_.call("kv/txn", txn);
    if (!r.ok()) co_return r.error;
    ++writes_;
    if (!flag(r.body, "succeeded")) {
        ++refused_writes_;
        co_return as_leader ? "refused by etcd: the release changed since this instance read it, "
                              "or this instance no longer leads"
                            : "refused by etcd: the release changed since this instance read it";
    }
    const auto revision = header_revision(r.body);
    if (revision > release_revision_) {  // else the watch has delivered it already
        release_revision_ = revision;
        std::map<std::uint64_t, gating::event> numbered;
        for (std::size_t i = 0; i < events.size(); ++i)
            numbered[base + 1 + i] = std::move(events[i]);
        deliver(std::move(next), std::move(numbered), origin::own_write);
    }
    co_return "";
}

}  // namespace veer::cluster
