// The release: rollout state, events and verdicts together, driven with a fake clock and
// hand-made windows. What was only tested end to end before: when the canary's evidence
// restarts, the role swap on promotion, and that every change returns its events (the
// controller persists and publishes on each).
#include "gating/release.hpp"

#include <gtest/gtest.h>

namespace veer::gating {
namespace {

constexpr std::int64_t second_ms = 1000;
constexpr std::int64_t second_ns = 1'000'000'000;

struct release_test : ::testing::Test {
    release_test() {
        settings.steps = {1000, 10000};
        settings.step_interval = config::duration{60 * second_ms};
        settings.bake = config::duration{60 * second_ms};
        slo.min_requests = 10;
        slo.max_error_rate = 0.05;
        slo.compare = false;
    }
    // Both clocks move together, from an arbitrary start.
    instant at(std::int64_t seconds) const {
        return {1'795'000'000'000 + seconds * second_ms, 7 * second_ns + seconds * second_ns};
    }
    static metrics::window_stats window(std::uint64_t requests, std::uint64_t failures) {
        metrics::window_stats w;
        w.requests = requests;
        w.failures = failures;
        w.latency.add(1000, requests);
        w.seconds = 30;
        return w;
    }
    std::vector<event> evaluate(std::int64_t seconds, std::uint64_t failures = 0) {
        return rel.evaluate(window(100, 0), window(100, failures), false, at(seconds), slo,
                            settings);
    }

    config::rollout settings;
    config::slo slo;
    release rel{"blue", "green", 0};
};

TEST_F(release_test, StartRestartsTheCanarysEvidence) {
    EXPECT_EQ(rel.canary_since_ns(), std::numeric_limits<std::int64_t>::min());
    const auto r = rel.start(at(5), settings);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_FALSE(r.events.empty());
    EXPECT_EQ(r.events.front().kind, event_kind::started);
    EXPECT_EQ(rel.canary_since_ns(), at(5).mono_ns);
    EXPECT_EQ(rel.state().canary_bp, 1000);
}

TEST_F(release_test, WeightRaisedFromZeroRestartsTheEvidenceAndRaisedFurtherDoesNot) {
    ASSERT_TRUE(rel.set_weight(500, at(3), settings).ok());
    EXPECT_EQ(rel.canary_since_ns(), at(3).mono_ns);
    ASSERT_TRUE(rel.set_weight(2000, at(9), settings).ok());
    EXPECT_EQ(rel.canary_since_ns(), at(3).mono_ns) << "the same version kept its traffic";
    ASSERT_TRUE(rel.set_weight(0, at(10), settings).ok());
    ASSERT_TRUE(rel.set_weight(1000, at(12), settings).ok());
    EXPECT_EQ(rel.canary_since_ns(), at(12).mono_ns);
}

TEST_F(release_test, ViolationRollsBackAndIsCountedAndKept) {
    ASSERT_TRUE(rel.start(at(0), settings).ok());
    const auto events = evaluate(1, 50);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, event_kind::rollback);
    EXPECT_EQ(events[0].by, event_by::judge);
    EXPECT_EQ(rel.state().state, phase::rolled_back);
    EXPECT_EQ(rel.state().canary_bp, 0);
    EXPECT_EQ(rel.count(event_kind::rollback), 1u);
    EXPECT_EQ(rel.events().back().kind, event_kind::rollback);
    EXPECT_EQ(rel.last_verdict().what, verdict::kind::violation);
    EXPECT_TRUE(evaluate(2, 50).empty()) << "nothing is judged at weight 0";
    EXPECT_EQ(rel.last_verdict().what, verdict::kind::ok);
}

TEST_F(release_test, TooFewRequestsHold) {
    ASSERT_TRUE(rel.start(at(0), settings).ok());
    EXPECT_TRUE(rel.evaluate(window(100, 0), window(3, 3), false, at(1), slo, settings).empty());
    EXPECT_EQ(rel.last_verdict().what, verdict::kind::holding);
    EXPECT_EQ(rel.last_verdict().needed_requests, 7);
}

TEST_F(release_test, PromotionSwapsRolesAndTheNewCanaryStartsWithoutEvidence) {
    ASSERT_TRUE(rel.start(at(0), settings).ok());
    EXPECT_EQ(evaluate(61).front().kind, event_kind::baking);  // 10 -> 100
    const auto promoted = evaluate(122);
    ASSERT_FALSE(promoted.empty());
    EXPECT_EQ(promoted.back().kind, event_kind::promoted);
    EXPECT_EQ(rel.state().stable, "green");
    EXPECT_EQ(rel.state().canary, "blue");
    EXPECT_EQ(rel.state().canary_bp, 0);
    // The next release goes to blue: its evidence starts when it gets traffic, not before.
    ASSERT_TRUE(rel.start(at(200), settings).ok());
    EXPECT_EQ(rel.canary_since_ns(), at(200).mono_ns);
}

TEST_F(release_test, EveryChangeReturnsItsEventsAndRefusalsChangeNothing) {
    for (auto r : {rel.start(at(0), settings), rel.pause(at(1)), rel.resume(at(2)),
                   rel.promote(at(3), settings), rel.rollback(at(4), "")}) {
        EXPECT_TRUE(r.ok()) << r.error;
        EXPECT_FALSE(r.events.empty());
    }
    const auto kept = rel.events().size();
    const auto before = rel.state().state;
    const auto refused = rel.pause(at(5));  // nothing to pause after a rollback
    EXPECT_FALSE(refused.ok());
    EXPECT_TRUE(refused.events.empty());
    EXPECT_EQ(rel.events().size(), kept);
    EXPECT_EQ(rel.state().state, before);
}

TEST_F(release_test, RestoreReplacesTheStateAndKeepsTheNewestEvents) {
    rollout_state saved;
    saved.stable = "green";
    saved.canary = "blue";
    saved.canary_bp = 3000;
    saved.state = phase::progressing;
    std::vector<event> events;
    for (std::size_t i = 0; i < release::max_events + 5; ++i)
        events.push_back(
            make_event(static_cast<std::int64_t>(i), event_kind::step, event_by::judge, "x"));
    rel.restore(saved, events);
    EXPECT_EQ(rel.state().stable, "green");
    EXPECT_EQ(rel.state().canary_bp, 3000);
    ASSERT_EQ(rel.events().size(), release::max_events);
    EXPECT_EQ(rel.events().front().time_ms, 5);
    // A restored weight is not "raised from 0": raising it further keeps the evidence span.
    ASSERT_TRUE(rel.set_weight(4000, at(1), settings).ok());
    EXPECT_EQ(rel.canary_since_ns(), std::numeric_limits<std::int64_t>::min());
}

TEST_F(release_test, NotedEventsAreKeptAndCounted) {
    rel.note(make_event(1, event_kind::health, event_by::health, "127.0.0.1:1 unhealthy"));
    EXPECT_EQ(rel.count(event_kind::health), 1u);
    EXPECT_EQ(rel.events().back().kind, event_kind::health);
}

}  // namespace
}  // namespace veer::gating

namespace veer::gating {
namespace {

TEST_F(release_test, CutOffFromTheFleetItRollsBackButNeverSteps) {
    ASSERT_TRUE(rel.start(at(0), settings).ok());
    const auto rel_before = rel.state();
    auto held = rel.evaluate(window(100, 0), window(100, 0), false, at(120), slo, settings, {},
                             /*may_advance=*/false);
    EXPECT_TRUE(held.empty());
    EXPECT_EQ(rel.state().canary_bp, rel_before.canary_bp) << "no step without etcd";
    auto rolled = rel.evaluate(window(100, 0), window(100, 50), false, at(121), slo, settings, {},
                               /*may_advance=*/false);
    ASSERT_EQ(rolled.size(), 1u);
    EXPECT_EQ(rolled.front().kind, event_kind::rollback);
    EXPECT_EQ(rel.state().canary_bp, 0);
}

TEST_F(release_test, AdoptedStateRestartsEvidenceLikeItsOwnAndKeepsItsEvents) {
    rollout_state fleet = rel.state();
    fleet.canary_bp = 2500;
    fleet.state = phase::progressing;
    const auto e = make_event(at(4).unix_ms, event_kind::weight, event_by::operator_, "w");
    const auto applied = rel.adopt(fleet, {e}, at(4));
    ASSERT_EQ(applied.size(), 1u);
    EXPECT_EQ(rel.state(), fleet);
    EXPECT_EQ(rel.canary_since_ns(), at(4).mono_ns) << "the canary got traffic: new evidence";
    EXPECT_EQ(rel.events().back().reason, "w");
    EXPECT_EQ(rel.count(event_kind::weight), 1u);
}

TEST_F(release_test, AJudgedCopysVerdictIsKeptWithoutItsState) {
    ASSERT_TRUE(rel.start(at(0), settings).ok());
    release copy = rel;
    copy.evaluate(window(100, 0), window(3, 0), false, at(1), slo, settings);
    ASSERT_EQ(copy.last_verdict().what, verdict::kind::holding);
    rel.keep_verdict(copy);
    EXPECT_EQ(rel.last_verdict().what, verdict::kind::holding);
    EXPECT_EQ(rel.last_verdict().needed_requests, 7);
}

}  // namespace
}  // namespace veer::gating
