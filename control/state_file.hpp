// Durable runtime state (SPEC section 7): the rollout state and the last events, written
// atomically on every change and read back on start so a restart never re-routes traffic
// to a rolled-back canary. Blocking file I/O: call from the control thread, never from an
// I/O thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "gating/event.hpp"
#include "gating/rollout.hpp"

namespace veer::control {

struct persisted {
    gating::rollout_state rollout;
    std::vector<gating::event> events;  // oldest first
};

// At most this many events (the newest) go into the file.
inline constexpr std::size_t max_persisted_events = 200;

// Writes `path` + ".tmp" (mode 0600), fsyncs it, renames it over `path` and fsyncs the
// directory. Returns "" on success, else an error naming the path and the cause.
std::string write_state(const std::string& path, const persisted& state);

// The state in `path`. nullopt with an empty `error` when the file does not exist;
// nullopt with `error` set when it cannot be read, is not JSON or has wrong fields.
// A leftover `path` + ".tmp" is ignored.
std::optional<persisted> read_state(const std::string& path, std::string& error);

// The rollout state's JSON object, as the file and fleet mode's etcd keys hold it.
boost::json::object rollout_to_json(const gating::rollout_state& r);
// Its inverse; nullopt with `error` set on missing or ill-typed fields.
std::optional<gating::rollout_state> rollout_from_json(const boost::json::value& v,
                                                       std::string& error);

// The JSON document itself, for callers that show or ship it:
// {"version":1,"rollout":{...},"events":[...]}.
std::string serialize_state(const persisted& state);
// The inverse of serialize_state; nullopt with `error` set on bad input.
std::optional<persisted> parse_state(std::string_view text, std::string& error);

}  // namespace veer::control
