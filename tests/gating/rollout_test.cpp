// The rollout state machine, driven by hand: time is a plain integer (a fake clock),
// verdicts are given, and every test asserts the resulting state and events.
#include "gating/rollout.hpp"

#include "common/duration.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace veer::gating {
namespace {

constexpr std::int64_t second = 1000;
constexpr std::int64_t minute = 60 * second;
constexpr std::int64_t t0 = 1'795'000'000'000;  // some time in 2026, unix ms

judgement ok() { return {judgement::kind::ok, "", {{"requests", 500}}}; }
judgement holding() { return {judgement::kind::holding, "needs 100 requests", {}}; }
judgement violation(std::string reason = "error_rate 0.48 > max_error_rate 0.05") {
    return {
        judgement::kind::violation, std::move(reason), {{"error_rate", 0.48}, {"requests", 250}}};
}

class rollout_test : public ::testing::Test {
protected:
    rollout_test() {
        settings_.strategy_ = config::strategy::canary;
        settings_.steps = {1000, 5000, 10000};
        settings_.step_interval = config::duration{5 * minute};
        settings_.bake = config::duration{10 * minute};
        state_.stable = "blue";
        state_.canary = "green";
    }

    std::vector<event> tick_at(std::int64_t now, const judgement& j, int to_rollback = 1,
                               bool dry_run = false) {
        return tick(state_, j, now, settings_, to_rollback, dry_run);
    }

    // Starts at t0 and checks it took.
    void start_rollout() {
        const auto r = start(state_, t0, settings_);
        ASSERT_TRUE(r.ok()) << r.error;
    }

    // Everything in the state, to check that a refused command changed nothing.
    static auto fields(const rollout_state& s) {
        return std::tuple(s.stable, s.canary, s.canary_bp, s.state, s.step, s.paused,
                          s.step_started_ms, s.consecutive_violations);
    }

    config::rollout settings_;
    rollout_state state_;
};

TEST(phase_names, round_trip) {
    for (auto p :
         {phase::idle, phase::progressing, phase::baking, phase::promoted, phase::rolled_back}) {
        const auto back = parse_phase(phase_name(p));
        ASSERT_TRUE(back.has_value());
        EXPECT_EQ(*back, p);
    }
    EXPECT_EQ(phase_name(phase::rolled_back), "rolled_back");
    EXPECT_FALSE(parse_phase("rolledback").has_value());
    EXPECT_FALSE(parse_phase("").has_value());
}

TEST(steps_for_strategy, defaults_and_configured) {
    config::rollout r;
    r.steps.clear();
    r.strategy_ = config::strategy::canary;
    EXPECT_EQ(steps_for(r), (std::vector<int>{1000, 10000}));
    r.strategy_ = config::strategy::linear;
    EXPECT_EQ(steps_for(r), (std::vector<int>{1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000}));
    r.strategy_ = config::strategy::all_at_once;
    EXPECT_EQ(steps_for(r), (std::vector<int>{10000}));
    r.steps = {500, 2500};
    EXPECT_EQ(steps_for(r), (std::vector<int>{500, 2500, 10000}));  // always ends at 100
    r.steps = {100, 10000};
    EXPECT_EQ(steps_for(r), (std::vector<int>{100, 10000}));
}

TEST(duration_text, shortest_exact_spelling) {
    EXPECT_EQ(format_duration_ms(250), "250ms");
    EXPECT_EQ(format_duration_ms(0), "0s");
    EXPECT_EQ(format_duration_ms(30 * second), "30s");
    EXPECT_EQ(format_duration_ms(1500), "1.5s");
    EXPECT_EQ(format_duration_ms(1050), "1.05s");
    EXPECT_EQ(format_duration_ms(5 * minute), "5m");
    EXPECT_EQ(format_duration_ms(90 * second), "90s");
    EXPECT_EQ(format_duration_ms(60 * minute), "1h");
}

TEST_F(rollout_test, start_goes_to_step_zero) {
    const auto r = start(state_, t0, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.step, 0);
    EXPECT_EQ(state_.canary_bp, 1000);
    EXPECT_FALSE(state_.paused);
    EXPECT_EQ(state_.step_started_ms, t0);
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "started");
    EXPECT_EQ(r.events[0].by, "operator");
    EXPECT_EQ(r.events[0].time_ms, t0);
    EXPECT_NE(r.events[0].reason.find("canary weight 0 -> 10"), std::string::npos)
        << r.events[0].reason;
}

TEST_F(rollout_test, full_rollout_steps_bakes_and_promotes) {
    start_rollout();
    // Not yet held long enough.
    EXPECT_TRUE(tick_at(t0 + 5 * minute - 1, ok()).empty());
    EXPECT_EQ(state_.canary_bp, 1000);

    auto events = tick_at(t0 + 5 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "step");
    EXPECT_EQ(events[0].by, "judge");
    EXPECT_EQ(events[0].reason, "step 1 of 3 held 5m with SLOs met: canary weight 10 -> 50");
    EXPECT_EQ(events[0].figures.at("requests").as_int64(), 500);  // the evidence
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.step, 1);
    EXPECT_EQ(state_.canary_bp, 5000);
    EXPECT_EQ(state_.step_started_ms, t0 + 5 * minute);

    // The new step holds its own interval.
    EXPECT_TRUE(tick_at(t0 + 9 * minute, ok()).empty());
    events = tick_at(t0 + 10 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "baking");
    EXPECT_EQ(events[0].by, "judge");
    EXPECT_EQ(state_.state, phase::baking);
    EXPECT_EQ(state_.step, 2);
    EXPECT_EQ(state_.canary_bp, 10000);

    // Bake (10m) is respected.
    EXPECT_TRUE(tick_at(t0 + 19 * minute, ok()).empty());
    EXPECT_EQ(state_.state, phase::baking);
    events = tick_at(t0 + 20 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "promoted");
    EXPECT_EQ(events[0].by, "judge");
    EXPECT_EQ(state_.state, phase::promoted);
    // Roles swap: green is stable now and blue, the next canary, gets nothing.
    EXPECT_EQ(state_.stable, "green");
    EXPECT_EQ(state_.canary, "blue");
    EXPECT_EQ(state_.canary_bp, 0);
    EXPECT_FALSE(state_.paused);
}

TEST_F(rollout_test, next_release_goes_to_the_other_pool) {
    settings_.steps = {10000};
    start_rollout();
    ASSERT_EQ(state_.state, phase::baking);
    ASSERT_EQ(tick_at(t0 + 10 * minute, ok()).size(), 1u);
    ASSERT_EQ(state_.state, phase::promoted);
    ASSERT_EQ(state_.stable, "green");

    const auto r = start(state_, t0 + 11 * minute, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(state_.canary, "blue");
    EXPECT_EQ(state_.canary_bp, 10000);
}

TEST_F(rollout_test, holding_never_advances) {
    start_rollout();
    for (std::int64_t t = t0; t <= t0 + 60 * minute; t += minute)
        EXPECT_TRUE(tick_at(t, holding()).empty());
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.canary_bp, 1000);
    // Evidence arrives: the step has long held, so it advances at once.
    const auto events = tick_at(t0 + 61 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(state_.canary_bp, 5000);
}

TEST_F(rollout_test, holding_never_promotes) {
    ASSERT_TRUE(promote(state_, t0, settings_).ok());
    for (std::int64_t t = t0; t <= t0 + 60 * minute; t += minute)
        EXPECT_TRUE(tick_at(t, holding()).empty());
    EXPECT_EQ(state_.state, phase::baking);
    EXPECT_EQ(state_.stable, "blue");
}

TEST_F(rollout_test, holding_does_not_roll_back_or_count) {
    start_rollout();
    tick_at(t0 + second, violation(), 2);
    EXPECT_EQ(state_.consecutive_violations, 1);
    EXPECT_TRUE(tick_at(t0 + 2 * second, holding(), 2).empty());
    EXPECT_EQ(state_.consecutive_violations, 0);
    EXPECT_TRUE(tick_at(t0 + 3 * second, violation(), 2).empty());
    EXPECT_EQ(state_.state, phase::progressing);
}

TEST_F(rollout_test, violation_rolls_back_with_reason_and_figures) {
    start_rollout();
    tick_at(t0 + 5 * minute, ok());
    ASSERT_EQ(state_.canary_bp, 5000);
    const auto events = tick_at(t0 + 6 * minute, violation("p99 812ms > max_p99 500ms"));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "rollback");
    EXPECT_EQ(events[0].by, "judge");
    EXPECT_EQ(events[0].reason, "p99 812ms > max_p99 500ms");
    EXPECT_DOUBLE_EQ(events[0].figures.at("error_rate").as_double(), 0.48);
    EXPECT_EQ(events[0].time_ms, t0 + 6 * minute);
    EXPECT_EQ(state_.state, phase::rolled_back);
    EXPECT_EQ(state_.canary_bp, 0);
    EXPECT_EQ(state_.stable, "blue");  // no swap on rollback
    EXPECT_EQ(state_.canary, "green");
    EXPECT_EQ(state_.consecutive_violations, 0);
}

TEST_F(rollout_test, violation_while_baking_rolls_back) {
    ASSERT_TRUE(promote(state_, t0, settings_).ok());
    const auto events = tick_at(t0 + 9 * minute, violation());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "rollback");
    EXPECT_EQ(state_.state, phase::rolled_back);
    EXPECT_EQ(state_.canary_bp, 0);
    EXPECT_EQ(state_.stable, "blue");
}

TEST_F(rollout_test, idle_with_weight_is_judged) {
    state_.canary_bp = 500;  // split.canary_weight from the config
    EXPECT_TRUE(tick_at(t0, ok()).empty());
    EXPECT_EQ(state_.state, phase::idle);  // idle never advances by itself
    EXPECT_EQ(state_.canary_bp, 500);
    const auto events = tick_at(t0 + second, violation());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "rollback");
    EXPECT_EQ(state_.state, phase::rolled_back);
    EXPECT_EQ(state_.canary_bp, 0);
}

TEST_F(rollout_test, zero_weight_is_not_judged) {
    EXPECT_TRUE(tick_at(t0, violation()).empty());
    EXPECT_EQ(state_.state, phase::idle);
}

TEST_F(rollout_test, two_consecutive_violations_needed) {
    start_rollout();
    EXPECT_TRUE(tick_at(t0 + 1 * second, violation(), 2).empty());
    EXPECT_EQ(state_.consecutive_violations, 1);
    EXPECT_EQ(state_.canary_bp, 1000);
    // An ok in between ends the streak.
    EXPECT_TRUE(tick_at(t0 + 2 * second, ok(), 2).empty());
    EXPECT_EQ(state_.consecutive_violations, 0);
    EXPECT_TRUE(tick_at(t0 + 3 * second, violation(), 2).empty());
    EXPECT_EQ(state_.state, phase::progressing);
    const auto events = tick_at(t0 + 4 * second, violation(), 2);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "rollback");
    EXPECT_EQ(state_.state, phase::rolled_back);
}

TEST_F(rollout_test, violation_restarts_the_step_timer) {
    start_rollout();
    tick_at(t0 + 4 * minute, violation(), 3);
    EXPECT_EQ(state_.step_started_ms, t0 + 4 * minute);
    // 5m after start but only 1m after the violation: no advance.
    EXPECT_TRUE(tick_at(t0 + 5 * minute, ok(), 3).empty());
    EXPECT_EQ(state_.canary_bp, 1000);
    EXPECT_EQ(tick_at(t0 + 9 * minute, ok(), 3).size(), 1u);
    EXPECT_EQ(state_.canary_bp, 5000);
}

TEST_F(rollout_test, dry_run_reports_once_per_streak_and_keeps_weight) {
    start_rollout();
    auto events = tick_at(t0 + 1 * second, violation(), 2, true);
    EXPECT_TRUE(events.empty());
    events = tick_at(t0 + 2 * second, violation(), 2, true);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "would_rollback");
    EXPECT_EQ(events[0].by, "judge");
    EXPECT_EQ(events[0].reason, "error_rate 0.48 > max_error_rate 0.05");
    EXPECT_EQ(events[0].figures.at("requests").as_int64(), 250);
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.canary_bp, 1000);
    // The next tick starts a new streak: no spam every evaluation.
    EXPECT_TRUE(tick_at(t0 + 3 * second, violation(), 2, true).empty());
    EXPECT_EQ(tick_at(t0 + 4 * second, violation(), 2, true).size(), 1u);
    EXPECT_EQ(state_.canary_bp, 1000);
}

TEST_F(rollout_test, pause_freezes_advance_and_resume_restarts_timer) {
    start_rollout();
    auto r = pause(state_, t0 + minute);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "paused");
    EXPECT_EQ(r.events[0].by, "operator");
    EXPECT_TRUE(state_.paused);

    EXPECT_TRUE(tick_at(t0 + 30 * minute, ok()).empty());
    EXPECT_EQ(state_.canary_bp, 1000);

    r = resume(state_, t0 + 31 * minute);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "resumed");
    EXPECT_FALSE(state_.paused);
    EXPECT_EQ(state_.step_started_ms, t0 + 31 * minute);

    // The step holds a full interval again from the resume.
    EXPECT_TRUE(tick_at(t0 + 35 * minute, ok()).empty());
    EXPECT_EQ(tick_at(t0 + 36 * minute, ok()).size(), 1u);
    EXPECT_EQ(state_.canary_bp, 5000);
}

TEST_F(rollout_test, pause_freezes_bake) {
    ASSERT_TRUE(promote(state_, t0, settings_).ok());
    ASSERT_TRUE(pause(state_, t0 + minute).ok());
    EXPECT_TRUE(tick_at(t0 + 60 * minute, ok()).empty());
    EXPECT_EQ(state_.state, phase::baking);
    ASSERT_TRUE(resume(state_, t0 + 61 * minute).ok());
    EXPECT_TRUE(tick_at(t0 + 70 * minute, ok()).empty());
    EXPECT_EQ(tick_at(t0 + 71 * minute, ok()).size(), 1u);
    EXPECT_EQ(state_.state, phase::promoted);
}

TEST_F(rollout_test, rollback_while_paused) {
    start_rollout();
    ASSERT_TRUE(pause(state_, t0 + minute).ok());
    const auto events = tick_at(t0 + 2 * minute, violation());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "rollback");
    EXPECT_EQ(state_.state, phase::rolled_back);
    EXPECT_EQ(state_.canary_bp, 0);
    EXPECT_FALSE(state_.paused);
}

TEST_F(rollout_test, operator_rollback_while_paused) {
    start_rollout();
    ASSERT_TRUE(pause(state_, t0 + minute).ok());
    const auto r = rollback(state_, t0 + 2 * minute, "bad deploy");
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "rollback");
    EXPECT_EQ(r.events[0].by, "operator");
    EXPECT_EQ(r.events[0].reason, "bad deploy");
    EXPECT_EQ(state_.state, phase::rolled_back);
    EXPECT_EQ(state_.canary_bp, 0);
    EXPECT_FALSE(state_.paused);
}

TEST_F(rollout_test, operator_rollback_default_reason) {
    state_.canary_bp = 2000;
    const auto r = rollback(state_, t0, "");
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.events[0].reason, "rollback by operator");
    EXPECT_EQ(state_.state, phase::rolled_back);
}

TEST_F(rollout_test, operator_promote_from_progressing_bakes) {
    start_rollout();
    const auto r = promote(state_, t0 + minute, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "baking");
    EXPECT_EQ(r.events[0].by, "operator");
    EXPECT_NE(r.events[0].reason.find("promoted by operator"), std::string::npos);
    EXPECT_EQ(state_.state, phase::baking);
    EXPECT_EQ(state_.canary_bp, 10000);
    EXPECT_EQ(state_.step, 2);
    EXPECT_EQ(state_.step_started_ms, t0 + minute);
    // Still baked and judged.
    EXPECT_TRUE(tick_at(t0 + 10 * minute, ok()).empty());
    EXPECT_EQ(tick_at(t0 + 11 * minute, ok()).size(), 1u);
    EXPECT_EQ(state_.state, phase::promoted);
}

TEST_F(rollout_test, operator_promote_from_idle) {
    const auto r = promote(state_, t0, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(state_.state, phase::baking);
    EXPECT_EQ(state_.canary_bp, 10000);
}

TEST_F(rollout_test, set_weight_pauses_a_rollout) {
    start_rollout();
    const auto r = set_weight(state_, 5000, t0 + minute, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].kind, "weight");
    EXPECT_EQ(r.events[0].by, "operator");
    EXPECT_EQ(r.events[0].reason.rfind("canary weight 10 -> 50", 0), 0u) << r.events[0].reason;
    EXPECT_EQ(state_.canary_bp, 5000);
    EXPECT_TRUE(state_.paused);
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_TRUE(tick_at(t0 + 60 * minute, ok()).empty());
    EXPECT_EQ(state_.canary_bp, 5000);
}

TEST_F(rollout_test, set_weight_outside_a_rollout_only_sets_weight) {
    const auto r = set_weight(state_, 3000, t0, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.events[0].reason, "canary weight 0 -> 30");
    EXPECT_EQ(state_.canary_bp, 3000);
    EXPECT_EQ(state_.state, phase::idle);
    EXPECT_FALSE(state_.paused);
}

TEST_F(rollout_test, set_weight_100_does_not_promote) {
    start_rollout();
    ASSERT_TRUE(set_weight(state_, 10000, t0 + minute, settings_).ok());
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_TRUE(tick_at(t0 + 60 * minute, ok()).empty());
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.stable, "blue");
    // After resume it still has to hold, then bake, before it is promoted.
    ASSERT_TRUE(resume(state_, t0 + 61 * minute).ok());
    auto events = tick_at(t0 + 66 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "baking");
    EXPECT_EQ(state_.state, phase::baking);
}

TEST_F(rollout_test, set_weight_below_100_while_baking_returns_to_progressing) {
    ASSERT_TRUE(promote(state_, t0, settings_).ok());
    ASSERT_TRUE(set_weight(state_, 5000, t0 + minute, settings_).ok());
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.step, 1);
    EXPECT_TRUE(state_.paused);
    ASSERT_TRUE(resume(state_, t0 + 2 * minute).ok());
    const auto events = tick_at(t0 + 7 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "baking");
    EXPECT_EQ(state_.canary_bp, 10000);
}

TEST_F(rollout_test, resume_after_lowering_weight_climbs_from_the_current_step) {
    start_rollout();
    tick_at(t0 + 5 * minute, ok());  // step 1: 50%
    ASSERT_TRUE(set_weight(state_, 2000, t0 + 6 * minute, settings_).ok());
    ASSERT_TRUE(resume(state_, t0 + 7 * minute).ok());
    const auto events = tick_at(t0 + 12 * minute, ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, "step");
    EXPECT_EQ(state_.canary_bp, 5000);
    EXPECT_EQ(state_.step, 1);
}

TEST_F(rollout_test, start_from_rolled_back_restarts) {
    start_rollout();
    tick_at(t0 + minute, violation());
    ASSERT_EQ(state_.state, phase::rolled_back);
    state_.consecutive_violations = 0;
    const auto r = start(state_, t0 + 2 * minute, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(state_.state, phase::progressing);
    EXPECT_EQ(state_.canary_bp, 1000);
    EXPECT_EQ(state_.step_started_ms, t0 + 2 * minute);
}

TEST_F(rollout_test, start_all_at_once_goes_straight_to_baking) {
    settings_.strategy_ = config::strategy::all_at_once;
    settings_.steps = {10000};
    const auto r = start(state_, t0, settings_);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].kind, "started");
    EXPECT_EQ(r.events[1].kind, "baking");
    EXPECT_EQ(state_.state, phase::baking);
    EXPECT_EQ(state_.canary_bp, 10000);
}

TEST_F(rollout_test, refused_commands_change_nothing) {
    const auto check_refused = [this](auto&& command) {
        const auto before = fields(state_);
        const command_result r = command();
        EXPECT_FALSE(r.ok());
        EXPECT_FALSE(r.error.empty());
        EXPECT_TRUE(r.events.empty());
        EXPECT_EQ(fields(state_), before);
    };

    // Idle, weight 0.
    check_refused([&] { return pause(state_, t0); });
    check_refused([&] { return resume(state_, t0); });
    check_refused([&] { return rollback(state_, t0, "x"); });
    check_refused([&] { return set_weight(state_, 10100, t0, settings_); });
    check_refused([&] { return set_weight(state_, -1, t0, settings_); });

    start_rollout();
    check_refused([&] { return start(state_, t0 + 1, settings_); });
    check_refused([&] { return resume(state_, t0 + 1); });
    ASSERT_TRUE(pause(state_, t0 + 2).ok());
    check_refused([&] { return pause(state_, t0 + 3); });
    check_refused([&] { return start(state_, t0 + 3, settings_); });

    ASSERT_TRUE(promote(state_, t0 + 4, settings_).ok());
    check_refused([&] { return promote(state_, t0 + 5, settings_); });
    check_refused([&] { return start(state_, t0 + 5, settings_); });

    ASSERT_TRUE(rollback(state_, t0 + 6, "").ok());
    check_refused([&] { return promote(state_, t0 + 7, settings_); });
    check_refused([&] { return rollback(state_, t0 + 7, ""); });
    check_refused([&] { return pause(state_, t0 + 7); });
}

TEST_F(rollout_test, manual_strategy_refuses_start) {
    settings_.strategy_ = config::strategy::manual;
    const auto before = fields(state_);
    const auto r = start(state_, t0, settings_);
    EXPECT_EQ(r.error, "strategy manual: use set weight");
    EXPECT_EQ(fields(state_), before);
    EXPECT_TRUE(set_weight(state_, 1000, t0, settings_).ok());
}

TEST_F(rollout_test, events_serialize_with_rfc3339_time) {
    start_rollout();
    const auto json = to_json(tick_at(t0 + 5 * minute, ok()).at(0));
    EXPECT_EQ(json.at("kind").as_string(), "step");
    EXPECT_EQ(json.at("by").as_string(), "judge");
    EXPECT_EQ(json.at("figures").at("requests").as_int64(), 500);
    const auto back = event_from_json(json);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->time_ms, t0 + 5 * minute);
}

}  // namespace
}  // namespace veer::gating
