// External gates' pure rules (SPEC 13): Prometheus answers, a gate's verdict, the gates
// folded into the judge's, Alertmanager's webhook format and the alert match.
#include "gating/alert.hpp"
#include "gating/gate.hpp"

#include <cmath>

#include <gtest/gtest.h>

namespace veer::gating {
namespace {

config::prometheus_gate gate_max(double max, config::no_data on_no_data = config::no_data::hold) {
    config::prometheus_gate g;
    g.name = "checkout";
    g.query = "q";
    g.max = max;
    g.on_no_data = on_no_data;
    return g;
}

TEST(GateQuery, SubstitutesBothPools) {
    EXPECT_EQ(
        substitute(R"(rate(x{v="{{canary}}"}[1m]) / rate(x{v="{{stable}}"}[1m]))", "green", "blue"),
        R"(rate(x{v="green"}[1m]) / rate(x{v="blue"}[1m]))");
    EXPECT_EQ(substitute("{{canary", "g", "b"), "{{canary");
}

TEST(GateQuery, VectorOfOneSeriesAndScalarGiveValues) {
    auto r = parse_query_response(
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"v":"green"},"value":[1764590000.1,"0.25"]}]}})");
    ASSERT_EQ(r.what, query_result::kind::value) << r.error;
    EXPECT_DOUBLE_EQ(r.value, 0.25);
    r = parse_query_response(
        R"({"status":"success","data":{"resultType":"scalar","result":[1764590000.1,"3"]}})");
    ASSERT_EQ(r.what, query_result::kind::value);
    EXPECT_DOUBLE_EQ(r.value, 3);
    r = parse_query_response(
        R"({"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}})");
    ASSERT_EQ(r.what, query_result::kind::value);
    EXPECT_TRUE(std::isnan(r.value));
}

TEST(GateQuery, EmptyIsNoDataAndTheRestAreErrors) {
    EXPECT_EQ(
        parse_query_response(R"({"status":"success","data":{"resultType":"vector","result":[]}})")
            .what,
        query_result::kind::no_data);
    const auto two = parse_query_response(
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},{"metric":{},"value":[1,"2"]}]}})");
    EXPECT_EQ(two.what, query_result::kind::error);
    EXPECT_NE(two.error.find("2 series"), std::string::npos) << two.error;
    const auto bad = parse_query_response(
        R"({"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"})");
    EXPECT_EQ(bad.what, query_result::kind::error);
    EXPECT_NE(bad.error.find("parse error"), std::string::npos);
    EXPECT_EQ(parse_query_response("<html>").what, query_result::kind::error);
    // Found by fuzz_signals: an error answer with an empty message still carries a reason.
    EXPECT_FALSE(parse_query_response(R"({"status":"error","error":""})").error.empty());
    EXPECT_EQ(
        parse_query_response(R"({"status":"success","data":{"resultType":"matrix","result":[]}})")
            .what,
        query_result::kind::error);
    EXPECT_EQ(
        parse_query_response(
            R"({"status":"success","data":{"resultType":"vector","result":[{"value":[1,"x"]}]}})")
            .what,
        query_result::kind::error);
}

TEST(GateVerdict, LimitsNoDataAndErrors) {
    const query_result v{query_result::kind::value, 0.5, ""};
    auto r = judge_gate(gate_max(0.01), v, "q", 5);
    EXPECT_EQ(r.what, verdict_kind::violation);
    EXPECT_EQ(r.detail, "0.5 > max 0.01");
    EXPECT_EQ(judge_gate(gate_max(1), v, "q", 5).what, verdict_kind::ok);
    auto min_gate = gate_max(0);
    min_gate.max.reset();
    min_gate.min = 0.9;
    EXPECT_EQ(judge_gate(min_gate, v, "q", 5).what, verdict_kind::violation);
    EXPECT_EQ(judge_gate(gate_max(1), {query_result::kind::value, std::nan(""), ""}, "q", 5).what,
              verdict_kind::violation)
        << "NaN is no evidence of health";
    const query_result none{query_result::kind::no_data, 0, ""};
    EXPECT_EQ(judge_gate(gate_max(1), none, "q", 5).what, verdict_kind::holding);
    EXPECT_EQ(judge_gate(gate_max(1, config::no_data::pass), none, "q", 5).what, verdict_kind::ok);
    EXPECT_EQ(judge_gate(gate_max(1, config::no_data::fail), none, "q", 5).what,
              verdict_kind::violation);
    const auto err = judge_gate(gate_max(1), {query_result::kind::error, 0, "down"}, "q", 5);
    EXPECT_EQ(err.what, verdict_kind::holding);
    EXPECT_TRUE(err.error);
    EXPECT_EQ(to_json(err).at("verdict").as_string(), "error");
}

TEST(GateVerdict, FoldedIntoTheJudgesVerdict) {
    verdict ok;
    std::vector<gate_reading> gates{
        judge_gate(gate_max(0.01), {query_result::kind::value, 0.5, ""}, "q2", 5)};
    fold_gates(ok, gates);
    EXPECT_EQ(ok.what, verdict_kind::violation);
    EXPECT_EQ(ok.reason, "gate checkout: 0.5 > max 0.01");
    const auto j = to_json(ok);
    EXPECT_EQ(j.at("gate").as_string(), "checkout");
    EXPECT_EQ(j.at("query").as_string(), "q2");
    EXPECT_DOUBLE_EQ(j.at("value").as_double(), 0.5);
    EXPECT_EQ(j.at("limit").as_string(), "max 0.01");

    verdict fine;
    std::vector<gate_reading> holding{gate_reading{}};
    holding[0].name = "slow";
    fold_gates(fine, holding);
    EXPECT_EQ(fine.what, verdict_kind::holding) << "an ok verdict waits for the gate";

    verdict broken;
    broken.what = verdict_kind::violation;
    broken.reason = "error_rate 0.5 > max_error_rate 0.05";
    fold_gates(broken, holding);
    EXPECT_EQ(broken.what, verdict_kind::violation) << "a holding gate never saves a broken canary";
}

TEST(AlertWebhook, ReadsAlertmanagersFormat) {
    std::string error;
    const auto alerts =
        parse_webhook(R"({"version":"4","groupKey":"{}:{}","status":"firing","receiver":"veer",
        "alerts":[{"status":"firing","labels":{"alertname":"CheckoutFailing","severity":"critical","version":"green"},
        "annotations":{},"startsAt":"2026-12-01T13:00:00Z","endsAt":"0001-01-01T00:00:00Z"},
        {"status":"resolved","labels":{"alertname":"Old"},"startsAt":"2026-12-01T12:00:00Z"}]})",
                      error);
    ASSERT_TRUE(alerts) << error;
    ASSERT_EQ(alerts->size(), 2u);
    const auto& a = (*alerts)[0];
    EXPECT_TRUE(a.firing());
    EXPECT_EQ(a.name(), "CheckoutFailing");
    EXPECT_TRUE(matches(a, {{"severity", "critical"}}));
    EXPECT_FALSE(matches(a, {{"severity", "warning"}}));
    EXPECT_FALSE(matches(a, {{"severity", "critical"}, {"team", "x"}}));
    EXPECT_TRUE(matches(a, {}));
    EXPECT_EQ(label_text(a), "alertname=CheckoutFailing, severity=critical, version=green");
    EXPECT_FALSE((*alerts)[1].firing());
}

TEST(AlertWebhook, RefusesWhatIsNotAVersion4Notification) {
    std::string error;
    EXPECT_FALSE(parse_webhook("not json", error));
    EXPECT_FALSE(parse_webhook(R"({"version":"3","alerts":[]})", error));
    EXPECT_FALSE(parse_webhook(R"({"version":"4"})", error));
    EXPECT_FALSE(
        parse_webhook(R"({"version":"4","alerts":[{"status":"weird","labels":{}}]})", error));
    EXPECT_FALSE(
        parse_webhook(R"({"version":"4","alerts":[{"status":"firing","labels":{"a":1}}]})", error));
    EXPECT_FALSE(error.empty());
    EXPECT_TRUE(parse_webhook(R"({"version":"4","alerts":[]})", error));
}

}  // namespace
}  // namespace veer::gating
