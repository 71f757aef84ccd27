#include "gating/release.hpp"

#include <algorithm>
#include <utility>

namespace veer::gating {

release::release(std::string stable, std::string canary, int canary_bp) {
    state_.stable = std::move(stable);
    state_.canary = std::move(canary);
    state_.canary_bp = canary_bp;
    seen_weight_ = canary_bp;
    seen_canary_ = state_.canary;
}

void release::restore(const rollout_state& saved, std::vector<event> events) {
    state_ = saved;
    seen_weight_ = state_.canary_bp;
    seen_canary_ = state_.canary;
    events_.clear();
    for (auto& e : events)
        events_.push_back(std::move(e));
    while (events_.size() > max_events)
        events_.pop_front();
}

command_result release::start(instant now, const config::rollout& settings) {
    return take(gating::start(state_, now.unix_ms, settings), now);
}
command_result release::pause(instant now) { return take(gating::pause(state_, now.unix_ms), now); }
command_result release::resume(instant now) {
    return take(gating::resume(state_, now.unix_ms), now);
}
command_result release::promote(instant now, const config::rollout& settings) {
    return take(gating::promote(state_, now.unix_ms, settings), now);
}
command_result release::rollback(instant now, std::string_view reason, std::string_view by,
                                 boost::json::object figures) {
    return take(gating::rollback(state_, now.unix_ms, reason, by, std::move(figures)), now);
}
command_result release::set_weight(int bp, instant now, const config::rollout& settings) {
    return take(gating::set_weight(state_, bp, now.unix_ms, settings), now);
}

std::vector<event> release::evaluate(const metrics::window_stats& stable,
                                     const metrics::window_stats& canary, bool canary_all_unhealthy,
                                     instant now, const config::slo& slo,
                                     const config::rollout& settings,
                                     const std::vector<gate_reading>& gates, bool may_advance) {
    if (!judging()) {
        evaluation_index_ = 0;
        last_verdict_ = {};
        return {};
    }
    last_verdict_ = judge(stable, canary, canary_all_unhealthy, slo, ++evaluation_index_);
    fold_gates(last_verdict_, gates);
    auto what = last_verdict_.what;
    if (!may_advance && what == verdict::kind::ok) what = verdict::kind::holding;
    const judgement j{what, last_verdict_.reason, to_json(last_verdict_)};
    return take(tick(state_, j, now.unix_ms, settings, slo.violations_to_rollback, slo.dry_run),
                now);
}

std::vector<event> release::adopt(const rollout_state& s, std::vector<event> events, instant now) {
    state_ = s;
    return take(std::move(events), now);
}

void release::keep_verdict(const release& judged) {
    last_verdict_ = judged.last_verdict_;
    evaluation_index_ = judged.evaluation_index_;
}

void release::note(const event& e) {
    ++by_kind_[e.kind];
    events_.push_back(e);
    if (events_.size() > max_events) events_.pop_front();
}

std::uint64_t release::count(std::string_view kind) const {
    const auto it = by_kind_.find(std::string(kind));
    return it == by_kind_.end() ? 0 : it->second;
}

std::vector<event> release::take(std::vector<event> events, instant now) {
    const bool started = std::any_of(events.begin(), events.end(),
                                     [](const event& e) { return e.kind == event_kind::started; });
    if (state_.canary_bp > 0 &&
        (started || seen_weight_ == 0 || seen_canary_ != state_.canary)) {
        canary_since_ns_ = now.mono_ns;
        evaluation_index_ = 0;
    }
    seen_weight_ = state_.canary_bp;
    seen_canary_ = state_.canary;
    for (const auto& e : events)
        note(e);
    return events;
}

command_result release::take(command_result r, instant now) {
    if (r.ok()) r.events = take(std::move(r.events), now);
    return r;
}

}  // namespace veer::gating
