// Upstreams that misbehave (SPEC section 4): malformed answers are 502 and cost the
// client nothing more, a failure mid-body closes the client connection instead of
// splicing, silence is 504, and refused connects are retried elsewhere.
#include <atomic>
#include <map>
#include <string>

#include "harness.hpp"

namespace veer::it {
namespace {

// The malformed answers a scripted upstream gives for /bad/NAME.
const std::map<std::string, std::string>& bad_answers() {
    static const std::map<std::string, std::string> answers{
        {"length-and-chunked",
         "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"differing-lengths",
         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"},
        {"length-not-a-number", "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nab"},
        {"chunked-twice",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
        {"bad-status-line", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"},
        {"not-http", "SMTP ready\r\n\r\n"},
        {"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
        {"gzip-coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip"},
        {"bad-header-name", "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok"},
    };
    return answers;
}

TEST(UpstreamFaults, MalformedAnswerIs502AndTheClientConnectionGoesOn) {
    temp_dir dir;
    std::atomic<int> bad_sent{0};
    std::atomic<int> closed_by_veer{0};
    scripted_upstream up([&](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
            if (r->target.starts_with("/bad/")) {
                c.send(bad_answers().at(r->target.substr(5)));
                ++bad_sent;
                // veer must not keep (or pool) a connection that spoke nonsense.
                if (c.wait_closed(ms(5000))) ++closed_by_veer;
                return;
            }
            if (!c.send(ok_response("good\n"))) return;
        }
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    for (const auto& [name, bytes] : bad_answers()) {
        SCOPED_TRACE(name);
        auto bad = client.get("/bad/" + name);
        ASSERT_TRUE(bad) << client.last_error();
        EXPECT_EQ(bad->status, 502) << bad->head;
        auto good = client.get("/good");
        ASSERT_TRUE(good) << client.last_error();
        EXPECT_EQ(good->status, 200);
        EXPECT_EQ(good->body, "good\n");
    }
    const int total = static_cast<int>(bad_answers().size());
    EXPECT_TRUE(wait_for([&] { return closed_by_veer.load() == total; }, ms(5000)))
        << closed_by_veer.load() << " of " << bad_sent.load()
        << " bad upstream connections closed by veer";
}

TEST(UpstreamFaults, UpstreamClosingMidBodyClosesTheClientWithoutSplicing) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& r) {
        if (r.target == "/cut-length") {
            c.send("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(1000, 'x'));
        } else {
            c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" +
                   std::string(1000, 'y') + "\r\n");
        }
        c.close();  // mid-body
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    {
        tcp_conn c(v.port());
        ASSERT_TRUE(c.send_all(make_request("GET", "/cut-length")));
        std::string error;
        auto head = read_head(c, ms(5000), &error);
        ASSERT_TRUE(head) << error;
        EXPECT_EQ(head->status, 200);
        EXPECT_EQ(head->get("Content-Length"), "100000");
        EXPECT_TRUE(c.read_until_close(ms(5000))) << "the client connection must close";
        EXPECT_EQ(c.buffer(), std::string(1000, 'x'))
            << "exactly the bytes the upstream sent, nothing spliced";
    }
    {
        tcp_conn c(v.port());
        ASSERT_TRUE(c.send_all(make_request("GET", "/cut-chunked")));
        std::string error;
        auto head = read_head(c, ms(5000), &error);
        ASSERT_TRUE(head) << error;
        EXPECT_EQ(head->status, 200);
        EXPECT_TRUE(c.read_until_close(ms(5000)));
        // The client sees a chunked body that never ends: it knows the answer is cut.
        EXPECT_EQ(c.buffer().find("\r\n0\r\n\r\n"), std::string::npos)
            << "a last chunk was invented";
        EXPECT_EQ(c.buffer().find("HTTP/1.1"), std::string::npos)
            << "a second answer was spliced in";
        EXPECT_NE(c.buffer().find(std::string(1000, 'y')), std::string::npos);
    }
}

TEST(UpstreamFaults, NoAnswerWithinUpstreamResponseTimeoutIs504) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
            if (r->target == "/hang") {
                c.wait_closed(ms(10000));  // never answers
                return;
            }
            if (!c.send(ok_response("fine\n"))) return;
        }
    });
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("timeouts", "upstream_response", "\"300ms\""));
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    auto r = client.request("GET", "/hang", {}, {}, ms(5000));
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 504);
    auto next = client.get("/next");
    ASSERT_TRUE(next) << client.last_error();
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, "fine\n");
}

TEST(UpstreamFaults, RefusedConnectIsRetriedOnTheOtherEndpoint) {
    temp_dir dir;
    upstream live(dir, "live");
    const std::string dead = dead_address();
    // Round robin sends every other request to the dead endpoint first; health checks
    // and ejection are kept out of the way so that only the retry can save them.
    veer_process v(dir, {live.address(), dead}, {dead_address()},
                   toml_config()
                       .set("pools.blue", "balance", "\"round_robin\"")
                       .set("listener", "threads", "1")
                       .set("health", "interval", "\"60s\"")
                       .set("health", "unhealthy_after", "10")
                       .set("health", "eject_after_failures", "1000"));
    ASSERT_TRUE(v.start());

    for (int i = 0; i < 20; ++i) {
        auto r = http_get(v.port(), "/r/" + std::to_string(i));
        ASSERT_TRUE(r) << "request " << i;
        EXPECT_EQ(r->status, 200) << "request " << i;
        EXPECT_EQ(upstream_name_of(*r), "live");
    }
    const auto status = v.status();
    EXPECT_TRUE(json_bool(endpoint_status(status, dead), "healthy"));
    EXPECT_FALSE(json_bool(endpoint_status(status, dead), "ejected"));

    // The metrics show the refused attempts that the retries made up for.
    auto metrics = v.admin_http("/metrics");
    ASSERT_TRUE(metrics);
    const std::string line =
        "veer_requests_total{pool=\"blue\",endpoint=\"" + dead + "\",class=\"connect\"} ";
    const auto at = metrics->body.find(line);
    ASSERT_NE(at, std::string::npos) << metrics->body.substr(0, 2000);
    EXPECT_GE(std::atoi(metrics->body.c_str() + at + line.size()), 5);
}

TEST(UpstreamFaults, RefusedCanaryIsRetriedOnTheStablePool) {
    temp_dir dir;
    upstream blue(dir, "blue");
    const std::string dead_green = dead_address();
    // All traffic to a canary whose only endpoint refuses but still counts as healthy
    // (checks are slow): the retry goes to the stable pool. Fewer requests than
    // min_requests, so the judge does not step in.
    veer_process v(dir, {blue.address()}, {dead_green},
                   toml_config()
                       .set("split", "canary_weight", "100")
                       .set("health", "interval", "\"60s\"")
                       .set("health", "unhealthy_after", "10")
                       .set("health", "eject_after_failures", "1000"));
    ASSERT_TRUE(v.start());

    for (int i = 0; i < 10; ++i) {
        auto r = http_get(v.port(), "/to-canary/" + std::to_string(i));
        ASSERT_TRUE(r) << "request " << i;
        EXPECT_EQ(r->status, 200) << "request " << i;
        EXPECT_EQ(upstream_name_of(*r), "blue");
    }
    auto metrics = v.admin_http("/metrics");
    ASSERT_TRUE(metrics);
    const std::string line =
        "veer_requests_total{pool=\"green\",endpoint=\"" + dead_green + "\",class=\"connect\"} ";
    const auto at = metrics->body.find(line);
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(std::atoi(metrics->body.c_str() + at + line.size()), 10);
}

TEST(UpstreamFaults, WithOneAttemptARefusedConnectIs502) {
    temp_dir dir;
    upstream live(dir, "live");
    veer_process v(dir, {live.address(), dead_address()}, {dead_address()},
                   toml_config()
                       .set("pools.blue", "balance", "\"round_robin\"")
                       .set("listener", "threads", "1")
                       .set("retry", "attempts", "1")
                       .set("health", "interval", "\"60s\"")
                       .set("health", "unhealthy_after", "10")
                       .set("health", "eject_after_failures", "1000"));
    ASSERT_TRUE(v.start());

    int ok = 0, bad_gateway = 0;
    for (int i = 0; i < 10; ++i) {
        auto r = http_get(v.port(), "/once/" + std::to_string(i));
        ASSERT_TRUE(r);
        ok += r->status == 200;
        bad_gateway += r->status == 502;
    }
    EXPECT_EQ(ok, 5);
    EXPECT_EQ(bad_gateway, 5);
}

TEST(UpstreamFaults, EveryEndpointRefusingIs502) {
    temp_dir dir;
    veer_process v(
        dir, {dead_address()}, {dead_address()},
        toml_config().set("health", "interval", "\"60s\"").set("health", "unhealthy_after", "10"));
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    auto r = client.get("/nowhere");
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 502);
    // A bodyless request's connection survives its 502.
    auto again = client.get("/nowhere");
    ASSERT_TRUE(again) << client.last_error();
    EXPECT_EQ(again->status, 502);
}

TEST(UpstreamFaults, NoHealthyEndpointAnywhereIs503) {
    temp_dir dir;
    veer_process v(dir, {dead_address()}, {dead_address()});
    ASSERT_TRUE(v.start());
    // Health checks every 200ms, three failures each: both pools go down.
    ASSERT_TRUE(v.wait_status(
        [](const boost::json::object& s) {
            const auto& pools = s.at("pools").as_object();
            for (const auto& [name, pool] : pools)
                for (const auto& e : pool.as_object().at("endpoints").as_array())
                    if (json_bool(e.as_object(), "healthy")) return false;
            return true;
        },
        ms(5000)));
    auto r = http_get(v.port(), "/nowhere");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
}

}  // namespace
}  // namespace veer::it
