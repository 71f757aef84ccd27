// A rollout event: every decision veer takes (rollback, step, pause, ...) is one of
// these. Plain data; its JSON form is what the state file, the log, `events` and the
// webhook carry (SPEC section 5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/fwd.hpp>
#include <boost/json/object.hpp>  // the figures are held as JSON already

namespace veer::gating {

// Every kind veer emits.
namespace event_kind {
inline constexpr std::string_view started = "started";
inline constexpr std::string_view step = "step";
inline constexpr std::string_view baking = "baking";
inline constexpr std::string_view promoted = "promoted";
inline constexpr std::string_view rollback = "rollback";
inline constexpr std::string_view would_rollback = "would_rollback";
inline constexpr std::string_view weight = "weight";
inline constexpr std::string_view paused = "paused";
inline constexpr std::string_view resumed = "resumed";
inline constexpr std::string_view health = "health";
inline constexpr std::string_view drain = "drain";
inline constexpr std::string_view undrain = "undrain";
inline constexpr std::string_view reload = "reload";
inline constexpr std::string_view alert = "alert";
inline constexpr std::string_view dns = "dns";  // a name's addresses changed (SPEC 12)
inline constexpr std::string_view stable_unhealthy = "stable_unhealthy";
}  // namespace event_kind

// Who took the decision.
namespace event_by {
inline constexpr std::string_view operator_ = "operator";
inline constexpr std::string_view judge = "judge";
inline constexpr std::string_view health = "health";
inline constexpr std::string_view alert = "alert";
inline constexpr std::string_view dns = "dns";
}  // namespace event_by

struct event {
    std::int64_t time_ms = 0;  // unix epoch, milliseconds
    std::string kind;
    std::string by;
    std::string reason;  // human words, e.g. "error_rate 0.48 > max_error_rate 0.05"
    boost::json::object figures;  // the numbers behind the decision
};

// The one way events are made: a kind and a `by` from the lists above.
inline event make_event(std::int64_t time_ms, std::string_view kind, std::string_view by,
                        std::string reason, boost::json::object figures = {}) {
    return event{time_ms, std::string(kind), std::string(by), std::move(reason),
                 std::move(figures)};
}

// {"time":"2026-11-22T14:03:07.123Z","kind":..,"by":..,"reason":..,"figures":{..}}
boost::json::object to_json(const event& e);

// The inverse of to_json; nullopt when a field is missing or has the wrong type.
// "reason" and "figures" may be absent (empty).
std::optional<event> event_from_json(const boost::json::value& v);

// Unix ms -> "2026-11-22T14:03:07.123Z" (UTC, always milliseconds).
std::string format_rfc3339_ms(std::int64_t unix_ms);

// RFC 3339 date-time -> unix ms: "Z" or "+hh:mm"/"-hh:mm", an optional fraction of
// any length (truncated to ms). nullopt on anything else.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);

}  // namespace veer::gating
