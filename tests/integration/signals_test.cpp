// State, reload and signals (SPEC section 7): SIGTERM drains in-flight requests and exits
// 0, SIGHUP and `reload` apply a new config without dropping connections or keep the
// old one on error, and a corrupt state file is reported and ignored.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "harness.hpp"

namespace veer::it {
namespace {

const std::string canary_rule =
    "[[split.rules]]\nheader = \"X-Canary\"\nequals = \"always\"\npool = \"canary\"\n";

bool has_event(veer_process& v, std::string_view kind) {
    const auto events = v.admin("events 50");
    for (const auto& e : events.at("events").as_array())
        if (json_string(e.as_object(), "kind") == kind) return true;
    return false;
}

// Answers "fast" at once, and /slow only when the test opens the upstream's gate.
void slow_on_gate(script_conn& c, upstream_request& first) {
    for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
        const bool slow = r->target == "/slow";
        if (slow && !c.owner().wait_gate(ms(15000))) return;
        if (!c.send(ok_response(slow ? "slow done\n" : "fast\n"))) return;
    }
}

void drain_in_flight(int sig) {
    temp_dir dir;
    scripted_upstream up(slow_on_gate);
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("timeouts", "drain", "\"10s\""));
    ASSERT_TRUE(v.start());

    http_client idle(v.port());
    ASSERT_TRUE(idle.get("/fast"));
    tcp_conn slow(v.port());
    ASSERT_TRUE(slow.send_all(make_request("GET", "/slow")));
    ASSERT_TRUE(up.wait_requests(2, ms(5000)));  // /slow is at the upstream: in flight

    v.proc().send_signal(sig);
    // Draining: no new connections, idle keep-alive connections closed...
    EXPECT_TRUE(wait_for([&] { return !tcp_accepts(v.port()); }, ms(5000)))
        << "still accepting while draining";
    EXPECT_TRUE(idle.conn().read_until_close(ms(5000)))
        << "an idle keep-alive connection outlived the drain";
    // ...but the request in flight is waited for.
    EXPECT_TRUE(v.proc().running()) << "veer exited with a request in flight";

    up.open_gate();
    std::string error;
    auto r = read_response(slow, ms(5000), false, &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "slow done\n");
    EXPECT_EQ(r->get("Connection"), "close") << r->head;
    const auto code = v.proc().wait_exit(ms(10000));
    ASSERT_TRUE(code) << "veer did not exit after its last request";
    EXPECT_EQ(*code, 0) << v.log();
}

TEST(Signals, SigtermFinishesTheRequestInFlightThenExitsZero) { drain_in_flight(SIGTERM); }

TEST(Signals, SigintDrainsLikeSigterm) { drain_in_flight(SIGINT); }

TEST(Signals, AdminHealthzStopsSaying200WhileDraining) {
    temp_dir dir;
    scripted_upstream up(slow_on_gate);
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("timeouts", "drain", "\"10s\""));
    ASSERT_TRUE(v.start());
    auto healthy = v.admin_http("/healthz");
    ASSERT_TRUE(healthy);
    EXPECT_EQ(healthy->status, 200);

    tcp_conn slow(v.port());
    ASSERT_TRUE(slow.send_all(make_request("GET", "/slow")));
    ASSERT_TRUE(up.wait_requests(1, ms(5000)));
    v.proc().send_signal(SIGTERM);
    ASSERT_TRUE(wait_for([&] { return !tcp_accepts(v.port()); }, ms(5000)));

    // A load balancer in front asks while veer drains: it must hear "not serving" (503),
    // not wait out its own timeout on a listener nobody answers any more.
    tcp_conn probe(v.admin_http_port());
    ASSERT_TRUE(probe.send_all(make_request("GET", "/healthz")));
    std::string error;
    auto during = read_response(probe, ms(2000), false, &error);
    up.open_gate();
    ASSERT_TRUE(during) << "GET /healthz during the drain: " << error;
    EXPECT_EQ(during->status, 503);
    EXPECT_EQ(v.proc().wait_exit(ms(10000)).value_or(-1), 0);
}

TEST(Signals, DrainLimitEndsARequestThatTakesTooLong) {
    temp_dir dir;
    scripted_upstream up(slow_on_gate);  // the gate never opens
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("timeouts", "drain", "\"500ms\""));
    ASSERT_TRUE(v.start());

    // Several requests stuck in flight, on every thread.
    std::vector<std::unique_ptr<tcp_conn>> stuck;
    for (int i = 0; i < 6; ++i) {
        stuck.push_back(std::make_unique<tcp_conn>(v.port()));
        ASSERT_TRUE(stuck.back()->send_all(make_request("GET", "/slow")));
    }
    ASSERT_TRUE(up.wait_requests(stuck.size(), ms(5000)));
    v.proc().send_signal(SIGTERM);
    const auto code = v.proc().wait_exit(ms(5000));
    ASSERT_TRUE(code) << "veer waited past timeouts.drain";
    EXPECT_EQ(*code, 0) << "SPEC 7: finish in-flight requests up to timeouts.drain, then exit 0\n"
                        << v.log();
    for (auto& c : stuck)
        EXPECT_TRUE(c->read_until_close(ms(5000)));
}

TEST(Signals, SighupAppliesANewSplitRuleWithoutDroppingConnections) {
    temp_dir dir;
    upstream blue(dir, "blue");
    upstream green(dir, "green");
    veer_process v(dir, {blue.address()}, {green.address()});
    ASSERT_TRUE(v.start());

    http_client kept(v.port());
    auto before = kept.get("/", {{"X-Canary", "always"}});
    ASSERT_TRUE(before) << kept.last_error();
    EXPECT_EQ(upstream_name_of(*before), "blue");

    v.rewrite_config(toml_config().append(canary_rule));
    v.proc().send_signal(SIGHUP);
    ASSERT_TRUE(wait_for([&] { return has_event(v, "reload"); }, ms(5000))) << v.log();

    auto ruled = kept.get("/", {{"X-Canary", "always"}});
    ASSERT_TRUE(ruled) << "the keep-alive connection did not survive the reload: "
                       << kept.last_error();
    EXPECT_EQ(upstream_name_of(*ruled), "green");
    auto plain = kept.get("/");
    ASSERT_TRUE(plain) << kept.last_error();
    EXPECT_EQ(upstream_name_of(*plain), "blue");
}

TEST(Signals, InvalidConfigOnReloadKeepsTheOldOne) {
    temp_dir dir;
    upstream blue(dir, "blue");
    upstream green(dir, "green");
    veer_process v(dir, {blue.address()}, {green.address()}, toml_config().append(canary_rule));
    ASSERT_TRUE(v.start());

    v.rewrite_config(toml_config().set("slo", "max_error_rate", "5"));
    v.proc().send_signal(SIGHUP);
    const auto r = v.admin("reload");
    EXPECT_FALSE(json_bool(r, "ok")) << boost::json::serialize(r);
    const auto error = json_string(r, "error");
    EXPECT_NE(error.find(v.config_path() + ":"), std::string::npos)
        << "the error should name file:line:col: " << error;
    EXPECT_NE(error.find("slo.max_error_rate"), std::string::npos) << error;

    EXPECT_TRUE(v.proc().running());
    auto ruled = http_get(v.port(), "/", {{"X-Canary", "always"}});
    ASSERT_TRUE(ruled);
    EXPECT_EQ(upstream_name_of(*ruled), "green") << "the old config's rule must still apply";
}

TEST(Signals, ReloadNamesAListenerChangeThatNeedsARestart) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    const int other = free_port();
    v.rewrite_config(toml_config().set("listener", "address",
                                       toml_string("127.0.0.1:" + std::to_string(other))));
    const auto r = v.admin("reload");
    EXPECT_TRUE(json_bool(r, "ok")) << boost::json::serialize(r);
    const auto events = v.admin("events 1");
    const auto text = boost::json::serialize(events);
    EXPECT_NE(text.find("restart"), std::string::npos) << text;
    auto still = http_get(v.port(), "/old-port");
    ASSERT_TRUE(still);
    EXPECT_EQ(still->status, 200);
}

TEST(Signals, ReloadRaisingMaxHeaderBytesServesBiggerHeads) {
    temp_dir dir;
    // Scripted: veer-upstream has a 64 KiB head limit of its own.
    scripted_upstream up(slow_on_gate);
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("timeouts", "header_read", "\"2s\""));
    ASSERT_TRUE(v.start());

    const auto bigger = toml_config()
                            .set("timeouts", "header_read", "\"2s\"")
                            .set("limits", "max_header_bytes", "\"256KiB\"");
    v.rewrite_config(bigger);
    ASSERT_TRUE(json_bool(v.admin("reload"), "ok"));

    // 100 KB of head: over the old limit, well under the new one.
    const auto got = raw_exchange(
        v.port(),
        make_request("GET", "/big-head",
                     {{"X-Big", std::string(100 * 1024, 'h')}, {"Connection", "close"}}),
        ms(5000));
    EXPECT_EQ(got.data.substr(0, 13), "HTTP/1.1 200 ")
        << "after raising limits.max_header_bytes to 256KiB, a 100 KB head got: '"
        << got.data.substr(0, 200) << "' (closed: " << got.closed << ")";
}

TEST(State, CorruptStateFileIsIgnoredAndReplaced) {
    temp_dir dir;
    upstream blue(dir, "blue");
    upstream green(dir, "green");
    veer_process v(dir, {blue.address()}, {green.address()});
    write_file(v.state_path(), "{\"stable\": \"blue\", trailing garbage");
    ASSERT_TRUE(v.start());
    EXPECT_EQ(json_string(v.status(), "state"), "idle");

    ASSERT_TRUE(json_bool(v.admin("set weight 7"), "ok"));
    boost::system::error_code ec;
    boost::json::parse(read_file(v.state_path()), ec);
    EXPECT_FALSE(ec) << "the state file should be valid JSON again: " << read_file(v.state_path());

    // And it is what the next start restores.
    EXPECT_EQ(v.proc().stop(), 0);
    ASSERT_TRUE(v.start());
    EXPECT_EQ(json_number(v.status(), "canary_weight"), 7);
}

}  // namespace
}  // namespace veer::it
