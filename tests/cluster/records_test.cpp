// The fleet's records in etcd: etcd's JSON conventions and the round trips of the release
// and the window reports.
#include "cluster/records.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

namespace veer::cluster {
namespace {

namespace json = boost::json;

TEST(Base64, RoundTripsEveryLength) {
    const std::string bytes = std::string("/veer/shop/\0\xff\x01", 14) + "release";
    for (std::size_t n = 0; n <= bytes.size(); ++n) {
        const auto text = base64_encode(bytes.substr(0, n));
        EXPECT_EQ(text.size() % 4, 0u);
        EXPECT_EQ(base64_decode(text), bytes.substr(0, n)) << n;
    }
    EXPECT_EQ(base64_encode("/veer/w/x"), "L3ZlZXIvdy94");
}

TEST(Base64, RefusesWhatIsNotCanonical) {
    EXPECT_FALSE(base64_decode("abc"));
    EXPECT_FALSE(base64_decode("ab=c"));
    EXPECT_FALSE(base64_decode("a==="));
    EXPECT_FALSE(base64_decode("ab!d"));
    EXPECT_FALSE(base64_decode("/0==")) << "stray bits past the last byte";
    EXPECT_EQ(base64_decode("/w=="), std::string("\xff"));
}

TEST(Keys, LayoutAndEventNumbers) {
    const keys k("shop");
    EXPECT_EQ(k.release, "/veer/shop/release");
    EXPECT_EQ(k.event(42), "/veer/shop/events/00000000000000000042");
    EXPECT_EQ(k.event_seq(k.event(42)), 42u);
    EXPECT_FALSE(k.event_seq("/veer/shop/events/42"));
    EXPECT_FALSE(k.event_seq(k.release));
    EXPECT_EQ(keys::instance_of("/veer/shop/election/a:8080", k.election), "a:8080");
    EXPECT_EQ(keys::instance_of("/veer/shop/reports/a", k.election), "");
    // Event keys sort by number, so a range delete drops the oldest.
    EXPECT_LT(k.event(9), k.event(10));
}

TEST(Keys, PrefixEndCoversThePrefixOnly) {
    EXPECT_EQ(prefix_end("/veer/shop/"), "/veer/shop0");
    EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
}

TEST(Etcd, Int64FieldsComeAsStringsAndDefaultsAreOmitted) {
    const auto o = json::parse(R"({"ID":"7587869445335719936","TTL":"2","n":5})").as_object();
    EXPECT_EQ(int64_field(o, "ID"), 7587869445335719936);  // above 2^53: not a double
    EXPECT_EQ(int64_field(o, "TTL"), 2);
    EXPECT_EQ(int64_field(o, "n"), 5);
    EXPECT_EQ(int64_field(o, "missing"), 0);
    EXPECT_EQ(int64_field(json::parse(R"({"x":"12a"})").as_object(), "x"), 0);
}

TEST(Etcd, KvOfAPutAndOfADeleteEvent) {
    const auto put = kv_from_json(json::parse(
        R"({"key":"L3ZlZXIvdy94","create_revision":"12","mod_revision":"13","version":"2","value":"aGVsbG8=","lease":"2324035741636373821"})"));
    ASSERT_TRUE(put);
    EXPECT_EQ(put->key, "/veer/w/x");
    EXPECT_EQ(put->value, "hello");
    EXPECT_EQ(put->create_revision, 12);
    EXPECT_EQ(put->mod_revision, 13);
    EXPECT_EQ(put->lease, 2324035741636373821);
    // A deletion's kv holds the key and the revision only; an empty value is omitted.
    const auto del = kv_from_json(json::parse(R"({"key":"L3ZlZXIvdy94","mod_revision":"14"})"));
    ASSERT_TRUE(del);
    EXPECT_EQ(del->value, "");
    EXPECT_EQ(del->create_revision, 0);
    EXPECT_FALSE(kv_from_json(json::parse(R"({"key":"not base64!"})")));
    EXPECT_FALSE(kv_from_json(json::parse(R"({"value":"aGVsbG8="})")));
}

TEST(SharedRelease, RoundTrips) {
    shared_release r;
    r.rollout.stable = "blue";
    r.rollout.canary = "green";
    r.rollout.canary_bp = 3000;
    r.rollout.state = gating::phase::progressing;
    r.rollout.step = 1;
    r.rollout.step_started_ms = 1764590000123;
    r.rollout.consecutive_violations = 2;
    r.drained = {"127.0.0.1:9001"};
    r.event_seq = 1234;
    std::string error;
    const auto back = release_from_text(to_text(r), error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, r);
    EXPECT_FALSE(release_from_text("{\"stable\":1}", error));
    EXPECT_FALSE(error.empty());
    EXPECT_FALSE(release_from_text("not json", error));
}

TEST(Report, WindowsRoundTripSparseAndMerge) {
    metrics::window_stats w;
    w.requests = 3;
    w.failures = 1;
    w.by_result[1] = 2;
    w.by_result[4] = 1;
    w.latency.add(120);
    w.latency.add(120);
    w.latency.add(90000);
    w.seconds = 9.5;
    report r;
    r.time_ms = 17;
    r.pools["green"] = w;
    r.verdict = {{"verdict", "holding"}, {"needed_requests", 5}};
    const auto text = to_text(r);
    EXPECT_LT(text.size(), 300u) << text;  // sparse: 3 requests, 2 buckets
    const auto back = report_from_text(text);
    ASSERT_TRUE(back);
    const auto& g = back->pools.at("green");
    EXPECT_EQ(g.requests, 3u);
    EXPECT_EQ(g.failures, 1u);
    EXPECT_EQ(g.by_result, w.by_result);
    EXPECT_EQ(g.latency.count(), 3u);
    EXPECT_DOUBLE_EQ(g.latency.quantile(0.99), w.latency.quantile(0.99));
    EXPECT_DOUBLE_EQ(g.latency.sum_us(), w.latency.sum_us());
    EXPECT_EQ(back->verdict.at("needed_requests").as_int64(), 5);

    metrics::window_stats merged;
    merge_window(merged, g);
    merge_window(merged, g);
    EXPECT_EQ(merged.requests, 6u);
    EXPECT_EQ(merged.latency.count(), 6u);
    EXPECT_DOUBLE_EQ(merged.seconds, 9.5);
    EXPECT_DOUBLE_EQ(merged.error_rate(), 1.0 / 3.0);
}

TEST(Report, BadReportsAreRefused) {
    EXPECT_FALSE(report_from_text("[]"));
    EXPECT_FALSE(report_from_text(R"({"pools":{"g":{"n":1}}})"));
    EXPECT_FALSE(
        report_from_text(R"({"pools":{"g":{"n":1,"f":0,"r":[0,1,0,0,0,0,0,0],"h":[99999,1]}}})"));
    EXPECT_TRUE(
        report_from_text(R"({"pools":{"g":{"n":1,"f":0,"r":[0,1,0,0,0,0,0,0],"h":[3,1]}}})"));
}

}  // namespace
}  // namespace veer::cluster
