// What a fleet keeps in etcd (SPEC 11) and how it is spelled there: the key layout under
// /veer/<name>/, the shared release, the instances' window reports, and etcd's own JSON
// conventions (base64 keys and values, int64 fields as strings, defaults omitted). Pure:
// no I/O, so every record is tested on its own.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gating/event.hpp"
#include "gating/rollout.hpp"
#include "metrics/window.hpp"

namespace veer::cluster {

std::string base64_encode(std::string_view bytes);
// nullopt on anything but canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

// The keys of one release.
struct keys {
    explicit keys(std::string_view name);

    std::string prefix;  // "/veer/<name>/": everything below, watched as one range
    std::string release;  // the shared release
    std::string events;  // "<prefix>events/": one key per event, "events/<20-digit seq>"
    std::string election;  // "<prefix>election/<instance>": one per live instance
    std::string reports;  // "<prefix>reports/<instance>": each instance's windows

    std::string event(std::uint64_t seq) const;
    // The event sequence number a key under `events` names; nullopt for other keys.
    std::optional<std::uint64_t> event_seq(std::string_view key) const;
    // The instance a key under `dir` (election or reports) names, or "".
    static std::string_view instance_of(std::string_view key, std::string_view dir);
};

// etcd's range_end for every key starting with `prefix`.
std::string prefix_end(std::string_view prefix);

// The release as every instance of the fleet routes from it.
struct shared_release {
    gating::rollout_state rollout;
    std::vector<std::string> drained;  // endpoints drained by an operator, fleet-wide
    std::uint64_t event_seq = 0;  // events written so far: the newest is events/<event_seq>

    bool operator==(const shared_release&) const = default;
};

std::string to_text(const shared_release& r);
std::optional<shared_release> release_from_text(std::string_view text, std::string& error);

// One instance's report, written every slo.evaluate_every under its lease: its windows
// per pool (the canary's since it last got traffic), and from the leader the verdict it
// reached on the merged windows, so that every instance shows it.
struct report {
    std::int64_t time_ms = 0;
    std::map<std::string, metrics::window_stats> pools;
    boost::json::object verdict;  // empty unless written by the leader
};

std::string to_text(const report& r);
std::optional<report> report_from_text(std::string_view text);

// A window in JSON, the histogram sparse: {"n":..,"f":..,"r":[8 counts],"s":seconds,
// "sum":us,"h":[index,count,index,count,...]}.
boost::json::object window_to_json(const metrics::window_stats& w);
bool window_from_json(const boost::json::value& v, metrics::window_stats& out);
// Adds `w` into `into` (counts, histogram; the longer span).
void merge_window(metrics::window_stats& into, const metrics::window_stats& w);

// One key-value pair as the gateway returns it, decoded.
struct kv {
    std::string key;
    std::string value;
    std::int64_t create_revision = 0;
    std::int64_t mod_revision = 0;
    std::int64_t lease = 0;
};

std::optional<kv> kv_from_json(const boost::json::value& v);
// An int64 field etcd sends as a JSON string ("123"); 0 when absent (etcd omits defaults).
std::int64_t int64_field(const boost::json::object& o, std::string_view name);

}  // namespace veer::cluster
