// Endpoint health as traffic sees it (SPEC sections 3 and 5): active checks, operator
// drain, passive ejection. Round robin makes "every endpoint gets some" deterministic.
#include <map>
#include <string>

#include <boost/json/serialize.hpp>

#include "harness.hpp"

namespace veer::it {
namespace {

// Sends `n` requests on fresh connections; how many each upstream name answered.
std::map<std::string, int> spread(int port, int n) {
    std::map<std::string, int> seen;
    for (int i = 0; i < n; ++i) {
        auto r = http_get(port, "/spread/" + std::to_string(i));
        std::string key = "no answer";
        if (r) {
            key = upstream_name_of(*r);
            if (r->status != 200) key.append(":").append(std::to_string(r->status));
        }
        ++seen[key];
    }
    return seen;
}

std::string show(const std::map<std::string, int>& seen) {
    std::string out;
    for (const auto& [name, n] : seen)
        out += name + "=" + std::to_string(n) + " ";
    return out;
}

auto endpoint_is(std::string address, std::string field, bool value) {
    return [address, field, value](const boost::json::object& s) {
        const auto e = endpoint_status(s, address);
        return !e.empty() && json_bool(e, field) == value;
    };
}

// Round robin is per data-path thread: one thread makes the split exact.
toml_config round_robin() {
    return toml_config()
        .set("pools.blue", "balance", "\"round_robin\"")
        .set("listener", "threads", "1");
}

TEST(HealthAndDrain, UnhealthyEndpointGetsNoTrafficUntilItRecovers) {
    temp_dir dir;
    upstream b1(dir, "b1");
    upstream b2(dir, "b2");
    veer_process v(dir, {b1.address(), b2.address()}, {dead_address()}, round_robin());
    ASSERT_TRUE(v.start());
    auto before = spread(v.port(), 10);
    EXPECT_EQ(before["b1"], 5) << show(before);
    EXPECT_EQ(before["b2"], 5) << show(before);

    ASSERT_TRUE(b2.get("/admin/health/off"));
    boost::json::object last;
    ASSERT_TRUE(v.wait_status(endpoint_is(b2.address(), "healthy", false), ms(5000), &last))
        << boost::json::serialize(last);
    auto during = spread(v.port(), 20);
    EXPECT_EQ(during["b1"], 20) << show(during);

    ASSERT_TRUE(b2.get("/admin/health/on"));
    ASSERT_TRUE(v.wait_status(endpoint_is(b2.address(), "healthy", true), ms(5000), &last))
        << boost::json::serialize(last);
    auto after = spread(v.port(), 10);
    EXPECT_EQ(after["b2"], 5) << show(after);

    // Each change of health is an event.
    const auto events = v.admin("events 100");
    int health_events = 0;
    for (const auto& e : events.at("events").as_array())
        if (json_string(e.as_object(), "kind") == "health" &&
            json_string(e.as_object(), "reason").find(b2.address()) != std::string::npos)
            ++health_events;
    EXPECT_GE(health_events, 2) << boost::json::serialize(events);
}

TEST(HealthAndDrain, DrainTakesAnEndpointOutOfRotationAndUndrainBringsItBack) {
    temp_dir dir;
    upstream b1(dir, "b1");
    upstream b2(dir, "b2");
    veer_process v(dir, {b1.address(), b2.address()}, {dead_address()}, round_robin());
    ASSERT_TRUE(v.start());

    // A keep-alive client too: draining is about new requests, not about its connection.
    http_client kept(v.port());
    ASSERT_TRUE(kept.get("/warm"));

    auto drained = v.admin("drain " + b2.address());
    EXPECT_TRUE(json_bool(drained, "ok")) << boost::json::serialize(drained);
    EXPECT_TRUE(json_bool(endpoint_status(v.status(), b2.address()), "drained"));
    auto during = spread(v.port(), 20);
    EXPECT_EQ(during["b1"], 20) << show(during);
    for (int i = 0; i < 6; ++i) {
        auto r = kept.get("/kept");
        ASSERT_TRUE(r) << kept.last_error();
        EXPECT_EQ(upstream_name_of(*r), "b1");
    }

    auto undrained = v.admin("undrain " + b2.address());
    EXPECT_TRUE(json_bool(undrained, "ok")) << boost::json::serialize(undrained);
    EXPECT_FALSE(json_bool(endpoint_status(v.status(), b2.address()), "drained"));
    auto after = spread(v.port(), 10);
    EXPECT_EQ(after["b2"], 5) << show(after);

    for (const char* bad : {"drain 127.0.0.1:1", "undrain 127.0.0.1:1", "drain", "drain a b"}) {
        auto r = v.admin(bad);
        EXPECT_FALSE(json_bool(r, "ok")) << bad << ": " << boost::json::serialize(r);
        EXPECT_FALSE(json_string(r, "error").empty()) << bad;
    }
}

TEST(HealthAndDrain, EndpointFailingRequestsIsEjectedAndComesBackAfterEjectFor) {
    temp_dir dir;
    upstream good(dir, "good");
    upstream bad(dir, "bad", {"--error-rate", "1"});
    veer_process v(dir, {good.address(), bad.address()}, {dead_address()},
                   round_robin()
                       .set("health", "eject_after_failures", "3")
                       .set("health", "eject_for", "\"1s\""));
    ASSERT_TRUE(v.start());

    // Every other request fails on `bad` (its /healthz stays fine: only requests fail).
    int sent = 0;
    bool ejected = false;
    while (!ejected && sent < 40) {
        http_get(v.port(), "/eject/" + std::to_string(sent++));
        ejected = json_bool(endpoint_status(v.status(), bad.address()), "ejected");
    }
    ASSERT_TRUE(ejected) << "not ejected after " << sent << " requests";
    EXPECT_LE(sent, 8) << "three consecutive failures should eject it";
    EXPECT_TRUE(json_bool(endpoint_status(v.status(), bad.address()), "healthy"));

    auto during = spread(v.port(), 10);
    EXPECT_EQ(during["good"], 10) << show(during);

    // After eject_for it is tried again.
    ASSERT_TRUE(v.wait_status(endpoint_is(bad.address(), "ejected", false), ms(5000)));
    auto after = spread(v.port(), 4);
    EXPECT_GE(after["bad:500"], 1) << show(after);
}

// [pools.NAME.health] (SPEC 12): a pool's checks go to another port, send another Host
// and pass on another status range; the other pool keeps the [health] defaults.
TEST(HealthAndDrain, PoolHealthSettingsOverrideTheDefaults) {
    temp_dir dir;
    upstream b1(dir, "b1");  // its own /healthz passes ...
    upstream check(dir, "check", {"--unhealthy"});  // ... the port blue checks does not
    // Green answers every request 503; its checks arrive as requests (another health path).
    scripted_upstream g(
        [](script_conn& c, upstream_request&) {
            c.send(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: "
                "close\r\n\r\n");
        },
        "/not-the-health-path");
    const auto cfg = toml_config()
                         .set("pools.blue.health", "port", std::to_string(check.port()))
                         .set("pools.green.health", "path", toml_string("/ready"))
                         .set("pools.green.health", "host", toml_string("shop.internal"))
                         .set("pools.green.health", "expect", "[200, 503]")
                         .set("health", "unhealthy_after", "2");
    veer_process v(dir, {b1.address()}, {g.address()}, cfg);
    ASSERT_TRUE(v.start());
    boost::json::object last;
    EXPECT_TRUE(v.wait_status(endpoint_is(b1.address(), "healthy", false), ms(5000), &last))
        << "blue's checks must go to the check port: " << boost::json::serialize(last);
    ASSERT_TRUE(g.wait_requests(4, ms(5000)));
    const auto checks = g.requests();
    EXPECT_EQ(checks.front().method, "GET");
    EXPECT_EQ(checks.front().target, "/ready");
    EXPECT_EQ(checks.front().get("host"), "shop.internal");
    EXPECT_TRUE(json_bool(endpoint_status(v.status(), g.address()), "healthy"))
        << "503 is within green's expect = [200, 503]";
}

// SPEC 12's stable alarm: the stable pool breaking a fixed limit raises one
// stable_unhealthy event per episode and veer_stable_unhealthy, and changes no routing.
TEST(HealthAndDrain, StablePoolBreakingItsLimitsRaisesOneAlarmAndActsNot) {
    temp_dir dir;
    upstream b1(dir, "b1", {"--error-rate", "1"});
    upstream g1(dir, "g1");
    const auto cfg = toml_config().set("health", "eject_after_failures", "100000");
    veer_process v(dir, {b1.address()}, {g1.address()}, cfg);
    ASSERT_TRUE(v.start());
    const auto alarm = [&] {
        const auto m = v.admin_http("/metrics");
        return m && m->body.find("\nveer_stable_unhealthy 1\n") != std::string::npos;
    };
    EXPECT_FALSE(alarm());
    for (int i = 0; i < 30; ++i)
        http_get(v.port(), "/bad/" + std::to_string(i));
    ASSERT_TRUE(wait_for(alarm, ms(3000)));
    for (int i = 0; i < 10; ++i)  // still broken on the next evaluations: no second event
        http_get(v.port(), "/still-bad/" + std::to_string(i));
    const auto s = v.status();
    EXPECT_EQ(json_string(s, "state"), "idle") << "no action";
    EXPECT_EQ(s.at("canary_weight").as_int64(), 0);
    EXPECT_TRUE(json_bool(s, "stable_unhealthy"));
    int alarms = 0;
    const auto events = v.admin("events 100");
    for (const auto& e : events.at("events").as_array()) {
        const auto& o = e.as_object();
        if (json_string(o, "kind") != "stable_unhealthy") continue;
        ++alarms;
        EXPECT_EQ(json_string(o, "by"), "judge");
        EXPECT_NE(json_string(o, "reason").find("max_error_rate"), std::string::npos)
            << json_string(o, "reason");
    }
    EXPECT_EQ(alarms, 1);

    // Healthy again once the window's error rate is back under the limit.
    ASSERT_TRUE(b1.get("/admin/error-rate/0"));
    for (int i = 0; i < 900 && alarm(); ++i)
        http_get(v.port(), "/good/" + std::to_string(i));
    EXPECT_TRUE(wait_for([&] { return !alarm(); }, ms(3000)));
}

}  // namespace
}  // namespace veer::it
