#include "gating/rollout.hpp"

#include "common/duration.hpp"
#include "common/weight.hpp"

#include <algorithm>
#include <array>
#include <utility>

#include <boost/json.hpp>

namespace veer::gating {
namespace {

constexpr int full_weight = full_bp;

constexpr std::array<std::string_view, 5> phase_names = {"idle", "progressing", "baking",
                                                         "promoted", "rolled_back"};

boost::json::object weight_figures(int from, int to) {
    boost::json::object figures;
    figures["from_weight"] = percent_json(from);
    figures["to_weight"] = percent_json(to);
    return figures;
}

std::string weight_change(int from, int to) {
    return "canary weight " + percent_text(from) + " -> " + percent_text(to);
}

// "step 2 of 3": steps are counted from 1 for people, from 0 in `status`.
std::string step_label(int index, std::size_t count) {
    return "step " + std::to_string(index + 1) + " of " + std::to_string(count);
}

int last_index(const std::vector<int>& steps) { return static_cast<int>(steps.size()) - 1; }

// The first step from `current` on that raises the weight above `weight` (after an
// operator's set weight it may be the current step itself); nullopt when none does, so
// the rollout's next stop is 100%.
std::optional<int> next_step(const std::vector<int>& steps, int current, int weight) {
    for (int i = std::max(current, 0); i <= last_index(steps); ++i)
        if (steps[static_cast<std::size_t>(i)] > weight) return i;
    return std::nullopt;
}

bool in_rollout(const rollout_state& s) {
    return s.state == phase::progressing || s.state == phase::baking;
}

std::vector<event> on_violation(rollout_state& s, const judgement& verdict, std::int64_t now_ms,
                                int violations_to_rollback, bool dry_run) {
    std::vector<event> events;
    // A step (or the bake) must hold with no violation at all: its timer starts over.
    if (in_rollout(s)) s.step_started_ms = now_ms;
    if (++s.consecutive_violations < std::max(violations_to_rollback, 1)) return events;

    s.consecutive_violations = 0;
    if (dry_run) {
        // One report per streak, not one per tick; nothing else changes.
        events.push_back(make_event(now_ms, event_kind::would_rollback, event_by::judge,
                                    verdict.reason, verdict.figures));
        return events;
    }
    s.canary_bp = 0;
    s.state = phase::rolled_back;
    s.paused = false;
    events.push_back(
        make_event(now_ms, event_kind::rollback, event_by::judge, verdict.reason, verdict.figures));
    return events;
}

}  // namespace

std::string_view phase_name(phase p) {
    const auto index = static_cast<std::size_t>(p);
    return index < phase_names.size() ? phase_names[index] : "unknown";
}

std::optional<phase> parse_phase(std::string_view name) {
    for (std::size_t i = 0; i < phase_names.size(); ++i)
        if (phase_names[i] == name) return static_cast<phase>(i);
    return std::nullopt;
}

std::vector<int> steps_for(const config::rollout& settings) {
    std::vector<int> steps;
    for (int w : settings.steps)
        steps.push_back(std::clamp(w, 1, full_weight));
    if (steps.empty()) steps = config::default_steps(settings.strategy_);
    if (steps.back() != full_weight) steps.push_back(full_weight);
    return steps;
}

std::vector<event> tick(rollout_state& s, const judgement& verdict, std::int64_t now_ms,
                        const config::rollout& settings, int violations_to_rollback, bool dry_run) {
    if (s.canary_bp <= 0) {
        // Nothing is exposed, so nothing is judged; a later exposure starts a fresh streak.
        s.consecutive_violations = 0;
        return {};
    }
    if (verdict.what == judgement::kind::violation)
        return on_violation(s, verdict, now_ms, violations_to_rollback, dry_run);

    s.consecutive_violations = 0;
    // Advancing needs evidence: holding (too little traffic) only lets the clock run.
    if (verdict.what != judgement::kind::ok || s.paused) return {};

    std::vector<event> events;
    const std::int64_t held_ms = now_ms - s.step_started_ms;
    if (s.state == phase::progressing && held_ms >= settings.step_interval.count()) {
        const auto steps = steps_for(settings);
        const int from = s.canary_bp;
        const std::string held = step_label(s.step, steps.size()) + " held " +
                                 format_duration_ms(settings.step_interval.count()) +
                                 " with SLOs met: ";
        const auto next = next_step(steps, s.step, from);
        const int to = next ? steps[static_cast<std::size_t>(*next)] : full_weight;
        s.step = next ? *next : last_index(steps);
        s.canary_bp = to;
        s.step_started_ms = now_ms;
        if (to >= full_weight) {
            s.state = phase::baking;
            events.push_back(make_event(now_ms, event_kind::baking, event_by::judge,
                                        held + weight_change(from, to) + ", baking for " +
                                            format_duration_ms(settings.bake.count()),
                                        verdict.figures));
        } else {
            events.push_back(make_event(now_ms, event_kind::step, event_by::judge,
                                        held + weight_change(from, to), verdict.figures));
        }
    } else if (s.state == phase::baking && held_ms >= settings.bake.count()) {
        std::swap(s.stable, s.canary);
        s.canary_bp = 0;  // the old stable pool waits, idle, for the next release
        s.state = phase::promoted;
        s.step = 0;
        s.step_started_ms = now_ms;
        events.push_back(make_event(now_ms, event_kind::promoted, event_by::judge,
                                    "baked " + format_duration_ms(settings.bake.count()) +
                                        " at 100% with SLOs met: " + s.stable + " is now stable, " +
                                        s.canary + " the canary at weight 0",
                                    verdict.figures));
    }
    return events;
}

command_result start(rollout_state& s, std::int64_t now_ms, const config::rollout& settings) {
    if (settings.strategy_ == config::strategy::manual)
        return {"strategy manual: use set weight", {}};
    if (in_rollout(s))
        return {"a rollout is already " + std::string(phase_name(s.state)) +
                    (s.paused ? " (paused): resume, promote or rollback it" : ""),
                {}};
    if (s.canary.empty() || s.canary == s.stable) return {"no canary pool to roll out", {}};

    const auto steps = steps_for(settings);
    const int from = s.canary_bp;
    const int to = steps.front();
    s.state = to >= full_weight ? phase::baking : phase::progressing;
    s.step = 0;
    s.canary_bp = to;
    s.paused = false;
    s.step_started_ms = now_ms;
    s.consecutive_violations = 0;

    command_result result;
    result.events.push_back(make_event(now_ms, event_kind::started, event_by::operator_,
                                       "rollout of " + s.canary +
                                           " started: " + step_label(0, steps.size()) + ", " +
                                           weight_change(from, to),
                                       weight_figures(from, to)));
    if (s.state == phase::baking)
        result.events.push_back(make_event(
            now_ms, event_kind::baking, event_by::operator_,
            "first step is 100%: baking for " + format_duration_ms(settings.bake.count()),
            weight_figures(from, to)));
    return result;
}

command_result pause(rollout_state& s, std::int64_t now_ms) {
    if (!in_rollout(s))
        return {"no rollout to pause (state " + std::string(phase_name(s.state)) + ")", {}};
    if (s.paused) return {"the rollout is already paused", {}};
    s.paused = true;
    command_result result;
    result.events.push_back(make_event(
        now_ms, event_kind::paused, event_by::operator_,
        "rollout paused by operator at canary weight " + percent_text(s.canary_bp)));
    return result;
}

command_result resume(rollout_state& s, std::int64_t now_ms) {
    if (!s.paused) return {"the rollout is not paused", {}};
    s.paused = false;
    // The step must hold a full interval again from now: time spent paused is not evidence.
    s.step_started_ms = now_ms;
    command_result result;
    result.events.push_back(make_event(
        now_ms, event_kind::resumed, event_by::operator_,
        "rollout resumed by operator at canary weight " + percent_text(s.canary_bp)));
    return result;
}

command_result promote(rollout_state& s, std::int64_t now_ms, const config::rollout& settings) {
    if (s.state != phase::idle && s.state != phase::progressing)
        return {"cannot promote while " + std::string(phase_name(s.state)) +
                    (s.state == phase::baking ? ": already at 100%" : ": start a rollout first"),
                {}};
    if (s.canary.empty() || s.canary == s.stable) return {"no canary pool to promote", {}};

    const auto steps = steps_for(settings);
    const int from = s.canary_bp;
    s.canary_bp = full_weight;
    s.state = phase::baking;
    s.step = last_index(steps);
    s.paused = false;  // an explicit "go to 100%" overrides an earlier pause
    s.step_started_ms = now_ms;
    s.consecutive_violations = 0;
    command_result result;
    result.events.push_back(make_event(now_ms, event_kind::baking, event_by::operator_,
                                       "promoted by operator: " + weight_change(from, full_weight) +
                                           ", baking for " +
                                           format_duration_ms(settings.bake.count()),
                                       weight_figures(from, full_weight)));
    return result;
}

command_result rollback(rollout_state& s, std::int64_t now_ms, std::string_view reason,
                        std::string_view by, boost::json::object figures) {
    if (s.canary_bp == 0 && !in_rollout(s))
        return {"nothing to roll back: canary weight is 0 (state " +
                    std::string(phase_name(s.state)) + ")",
                {}};
    const int from = s.canary_bp;
    s.canary_bp = 0;
    s.state = phase::rolled_back;
    s.paused = false;
    s.consecutive_violations = 0;
    command_result result;
    auto all = weight_figures(from, 0);
    for (auto& f : figures)
        all[f.key()] = f.value();
    result.events.push_back(
        make_event(now_ms, event_kind::rollback, by,
                   reason.empty() ? "rollback by operator" : std::string(reason), std::move(all)));
    return result;
}

command_result set_weight(rollout_state& s, int weight, std::int64_t now_ms,
                          const config::rollout& settings) {
    if (weight < 0 || weight > full_weight)
        return {"weight must be between 0 and 100 (got " + percent_text(weight) + ")", {}};

    const int from = s.canary_bp;
    std::string reason = weight_change(from, weight);
    s.canary_bp = weight;
    if (in_rollout(s)) {
        if (!s.paused) reason += ", rollout paused";
        s.paused = true;
        if (s.state == phase::baking && weight < full_weight) {
            // Baking means 100%: below it the rollout is back to the step that fits.
            const auto steps = steps_for(settings);
            s.state = phase::progressing;
            s.step = 0;
            for (int i = 0; i <= last_index(steps); ++i)
                if (steps[static_cast<std::size_t>(i)] <= weight) s.step = i;
            reason += ", back to progressing";
        }
        s.step_started_ms = now_ms;
    }
    command_result result;
    result.events.push_back(make_event(now_ms, event_kind::weight, event_by::operator_,
                                       std::move(reason), weight_figures(from, weight)));
    return result;
}

}  // namespace veer::gating
