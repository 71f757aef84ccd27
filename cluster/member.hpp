// One instance's membership in a fleet (SPEC 11), on the control thread: it holds a lease
// in etcd, campaigns for leadership (lease + lowest create_revision, as etcd's
// concurrency/election.go), publishes this instance's report every slo.evaluate_every,
// watches /veer/<name>/ and hands every change of the shared release to the controller.
// Writes are etcd transactions guarded by the release's revision last seen and, for the
// leader's, by its election key: a stale instance or a deposed leader cannot overwrite
// what the fleet decided. When etcd cannot be reached it says so (etcd_up) and tries
// again, from a fresh read of the whole prefix, until it can.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/etcd_client.hpp"
#include "cluster/records.hpp"
#include "config/config.hpp"

namespace veer::cluster {

// Another instance (or this one) as the watch shows it.
struct peer {
    std::int64_t create_revision = 0;  // of its election key; 0 when it has none (not live)
    std::optional<report> last;  // its latest report
    std::int64_t received_ns = 0;  // when that report arrived (monotonic clock)
};

// Where a release change comes from.
enum class origin {
    first_read,  // the first read of etcd since start: its events replace the local ones
    fleet,  // another instance's write (watch, or a read after etcd came back)
    own_write,  // this instance's write, which etcd has just taken
};

class member {
public:
    struct hooks {
        // The shared release changed; `events` are the ones that came with the change.
        std::function<void(const shared_release&, std::vector<gating::event>, origin)> on_release;
        // What this instance writes when etcd holds no release yet.
        std::function<shared_release()> initial_release;
        // This instance's report, every report_every.
        std::function<report()> make_report;
        // Leadership or etcd's reachability changed.
        std::function<void()> on_role;
    };

    member(boost::asio::io_context& ioc, const config::cluster& settings,
           std::chrono::milliseconds report_every, hooks h);
    ~member();

    void start();
    void stop();

    const std::string& instance() const { return instance_; }
    bool etcd_up() const { return up_; }
    bool leader() const { return up_ && leader_ == instance_; }
    const std::string& leader_id() const { return leader_; }
    const std::map<std::string, peer>& peers() const { return peers_; }
    const std::optional<shared_release>& release() const { return release_; }
    std::uint64_t refused_writes() const { return refused_writes_; }
    std::uint64_t writes() const { return writes_; }
    std::uint64_t report_bytes() const { return report_bytes_; }

    // Writes `next` with `events` appended (numbered from release().event_seq + 1), if
    // the release is still the one this instance last saw and, with `as_leader`, while it
    // leads. "" on success (on_release has run with origin::own_write), else why not.
    boost::asio::awaitable<std::string> write(shared_release next,
                                              std::vector<gating::event> events, bool as_leader);
    // Reads the release again (after a refused write): on_release runs if it changed.
    boost::asio::awaitable<std::string> refresh();

private:
    boost::asio::awaitable<void> run();
    // One connected round: lease, campaign, read, watch, until something fails.
    boost::asio::awaitable<std::string> round();
    // Reads the whole prefix at `revision`; `fresh` (a new round) forgets the peers and
    // takes whatever release etcd holds, else only what is newer than applied.
    boost::asio::awaitable<std::string> read_all(std::int64_t& revision, bool fresh);
    boost::asio::awaitable<std::string> create_release();
    boost::asio::awaitable<void> keep_alive(std::uint64_t round);
    boost::asio::awaitable<void> publish_reports(std::uint64_t round);
    // Ends the current round (its loops stop, the watch is cancelled).
    void fail(const std::string& why);
    bool apply_watch(const boost::json::object& message);
    // One key's new value (or its deletion) into peers_/release_; events and a release
    // change are collected for on_release.
    void apply_kv(const kv& item, bool deleted, bool fresh,
                  std::optional<shared_release>& next_release,
                  std::map<std::uint64_t, gating::event>& new_events);
    void deliver(std::optional<shared_release> next, std::map<std::uint64_t, gating::event> events,
                 origin from);
    void elect();

    boost::asio::io_context& ioc_;
    config::cluster settings_;
    std::chrono::milliseconds report_every_;
    hooks hooks_;
    keys keys_;
    std::string instance_;
    etcd_client etcd_;
    boost::asio::steady_timer retry_timer_;

    bool running_ = false;
    bool up_ = false;
    std::uint64_t round_ = 0;
    std::string lease_;  // etcd's int64 lease id, kept as the string it sends
    std::int64_t my_create_revision_ = 0;
    std::string leader_;
    std::map<std::string, peer> peers_;
    std::optional<shared_release> release_;
    std::int64_t release_revision_ = 0;  // mod_revision of release_
    bool first_read_done_ = false;
    std::uint64_t refused_writes_ = 0;
    std::uint64_t writes_ = 0;
    std::uint64_t report_bytes_ = 0;
};

// "<hostname>:<port of listener.address>": cluster.instance's default.
std::string default_instance(const std::string& listener_address);

}  // namespace veer::cluster
