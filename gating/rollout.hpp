// The rollout state machine (SPEC section 5): idle -> progressing -> baking -> promoted,
// or rolled_back at any time. Pure functions over plain data: every operation takes the
// state, the current time and the settings, mutates the state and returns the events it
// produced. No clock, no I/O, no locks: the caller (the control loop, one thread) owns
// the state, persists it and publishes the events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "gating/event.hpp"
#include "gating/verdict_kind.hpp"

namespace veer::gating {

enum class phase { idle, progressing, baking, promoted, rolled_back };

// "idle", "progressing", "baking", "promoted", "rolled_back".
std::string_view phase_name(phase p);
// The inverse of phase_name; nullopt on anything else.
std::optional<phase> parse_phase(std::string_view name);

// Everything the machine needs to survive a restart; times are unix ms.
struct rollout_state {
    std::string stable;
    std::string canary;
    int canary_bp = 0;  // basis points, 0..10000 (SPEC 12: two decimals of a percent)
    phase state = phase::idle;
    int step = 0;  // index into steps_for(settings)
    bool paused = false;
    std::int64_t step_started_ms = 0;  // when the current step (or the bake) began holding
    int consecutive_violations = 0;

    bool operator==(const rollout_state&) const = default;
};

// What the judge concluded on one evaluation, reduced to what the machine needs.
struct judgement {
    using kind = verdict_kind;
    kind what = kind::holding;
    std::string reason;  // for a violation: the limit, e.g. "p99 812ms > max_p99 500ms"
    boost::json::object figures;  // copied into the events it causes
};

// An operator command's outcome: an error (the state is untouched) or the events.
struct command_result {
    std::string error;  // empty on success
    std::vector<event> events;

    bool ok() const { return error.empty(); }
};

// The canary weights per step (basis points): rollout.steps when set, else
// config::default_steps. Always ends at 100% (appended when a configured list stops short).
std::vector<int> steps_for(const config::rollout& settings);

// One evaluation, every slo.evaluate_every while canary_bp > 0 (in any phase).
// - violation: counts towards violations_to_rollback; the streak's last one rolls back
//   (canary weight 0, rolled_back, "rollback" by judge with the judgement's reason and
//   figures), or in dry run emits one "would_rollback" per streak and changes nothing
//   else. Any violation also restarts the current step's (or the bake's) hold timer: a
//   step advances only after holding step_interval with no violation.
// - ok / holding: ends a violation streak.
// - progressing, not paused: the step has held step_interval and the judgement is ok
//   (never on holding) -> next step ("step"), or at 100% -> baking ("baking").
// - baking, not paused: held `bake` and ok -> promoted: stable and canary swap, the new
//   canary gets weight 0 ("promoted").
std::vector<event> tick(rollout_state& state, const judgement& verdict, std::int64_t now_ms,
                        const config::rollout& settings, int violations_to_rollback, bool dry_run);

// Operator commands; every event they produce is by "operator".

// From idle, promoted or rolled_back: step 0 at steps[0] ("started"; then "baking" as
// well when the first step is already 100). Refused while progressing or baking, and
// for strategy manual.
command_result start(rollout_state& state, std::int64_t now_ms, const config::rollout& settings);
// Freezes step advance and bake (judging and rollback go on). Progressing/baking only.
command_result pause(rollout_state& state, std::int64_t now_ms);
// Un-pauses; the current step's hold timer restarts now.
command_result resume(rollout_state& state, std::int64_t now_ms);
// From idle or progressing: weight 100, last step, baking (still judged and baked).
command_result promote(rollout_state& state, std::int64_t now_ms, const config::rollout& settings);
// Canary weight 0 at once, rolled_back. An empty reason becomes "rollback by operator".
// Refused only when there is nothing to roll back (weight 0 outside a rollout).
// `by` is operator unless an alert (SPEC 13) took the decision.
command_result rollback(rollout_state& state, std::int64_t now_ms, std::string_view reason,
                        std::string_view by = event_by::operator_,
                        boost::json::object figures = {});
// Canary weight in basis points, 0..10000; pauses a running rollout. Never promotes by itself; lowering the
// weight while baking returns the rollout to (paused) progressing at the matching step.
command_result set_weight(rollout_state& state, int weight, std::int64_t now_ms,
                          const config::rollout& settings);

}  // namespace veer::gating
