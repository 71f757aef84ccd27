// One release as this instance runs it: the rollout's state, its events, the judge's last
// verdict and since when the canary's traffic counts as evidence. Every change goes
// through here and comes back as the events it produced; the caller (the controller)
// owns the I/O: it logs and notifies those events, persists `state()` and `events()`, and
// publishes a routing snapshot. Time and the two pools' windows are arguments, so the
// release's rules are tested with a fake clock. Fleet mode takes its decisions from the
// same place, whichever instance judged.
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gating/event.hpp"
#include "gating/gate.hpp"
#include "gating/judge.hpp"
#include "gating/rollout.hpp"
#include "metrics/window.hpp"

namespace veer::gating {

// One reading of both clocks: wall time for events, monotonic time for windows.
struct instant {
    std::int64_t unix_ms = 0;
    std::int64_t mono_ns = 0;
};

class release {
public:
    static constexpr std::size_t max_events = 200;

    // A release from the config alone: `stable` and `canary` at `canary_bp` basis points, idle.
    release(std::string stable, std::string canary, int canary_bp);

    // The state and events a state file held (they replace the config's).
    void restore(const rollout_state& saved, std::vector<event> events);

    // Operator commands (gating/rollout.hpp); refused ones change nothing.
    command_result start(instant now, const config::rollout& settings);
    command_result pause(instant now);
    command_result resume(instant now);
    command_result promote(instant now, const config::rollout& settings);
    command_result rollback(instant now, std::string_view reason,
                            std::string_view by = event_by::operator_,
                            boost::json::object figures = {});
    command_result set_weight(int bp, instant now, const config::rollout& settings);

    // One evaluation: judges `canary` (the window since canary_since_ns()) against
    // `stable` while the canary has weight, with the external gates folded into the
    // verdict (gating/gate.hpp), and steps the rollout on the verdict. Without
    // `may_advance` (a fleet instance cut off from etcd) it still rolls back but never
    // steps, bakes or promotes: an ok verdict counts as holding.
    std::vector<event> evaluate(const metrics::window_stats& stable,
                                const metrics::window_stats& canary, bool canary_all_unhealthy,
                                instant now, const config::slo& slo,
                                const config::rollout& settings,
                                const std::vector<gate_reading>& gates = {},
                                bool may_advance = true);
    // Fleet mode: the state the fleet decided (another instance's decision, or this one's
    // once etcd took it) with the events that came with it.
    std::vector<event> adopt(const rollout_state& s, std::vector<event> events, instant now);
    // Fleet mode: the judge's last verdict from a copy that evaluated (the leader judges on
    // a copy and adopts the state only once etcd took it).
    void keep_verdict(const release& judged);
    // An event of another origin (health, drain, reload): kept and counted as the rest.
    void note(const event& e);

    const rollout_state& state() const { return state_; }
    const std::deque<event>& events() const { return events_; }
    // The last evaluation's verdict while the canary has weight (ok before the first).
    const verdict& last_verdict() const { return last_verdict_; }
    bool judging() const { return state_.canary_bp > 0; }
    // The canary is judged on requests since it last got traffic (a start, a weight
    // raised from 0, or a new canary after promotion): what the same pool served before
    // is another version's evidence.
    std::int64_t canary_since_ns() const { return canary_since_ns_; }
    // Events per kind since this process started (for /metrics).
    const std::map<std::string, std::uint64_t>& events_by_kind() const { return by_kind_; }
    std::uint64_t count(std::string_view kind) const;

private:
    // Applies a change's events: the canary's evidence restarts when it (re)gets traffic.
    std::vector<event> take(std::vector<event> events, instant now);
    command_result take(command_result r, instant now);

    rollout_state state_;
    std::deque<event> events_;
    std::map<std::string, std::uint64_t> by_kind_;
    verdict last_verdict_;
    std::uint64_t evaluation_index_ = 0;
    std::int64_t canary_since_ns_ = std::numeric_limits<std::int64_t>::min();
    int seen_weight_ = 0;
    std::string seen_canary_;
};

}  // namespace veer::gating
