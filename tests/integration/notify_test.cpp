// The operator's outputs besides the admin socket: notify.webhook (every event POSTed as
// JSON, retried while the receiver fails) and log.access_log (one JSON line per request).
#include <boost/json.hpp>

#include "harness.hpp"

namespace veer::it {
namespace {

TEST(Notify, WebhookReceivesEveryEventAndRetries) {
    temp_dir dir;
    upstream blue(dir, "blue");
    upstream green(dir, "green");
    std::atomic<int> refused{1};  // the first delivery fails: veer must retry it
    std::mutex m;
    std::vector<std::string> bodies;
    scripted_upstream hook([&](script_conn& c, upstream_request& r) {
        for (;;) {
            std::string body;
            if (!c.read_body(r, body)) return;
            if (refused.fetch_sub(1) > 0) {
                c.send(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: "
                    "close\r\n\r\n");
                return;
            }
            {
                std::lock_guard lock(m);
                bodies.push_back(r.method + " " + r.target + " " + r.get("Content-Type") + " " +
                                 body);
            }
            c.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
    });
    veer_process v(dir, {blue.address()}, {green.address()},
                   toml_config().set("notify", "webhook",
                                     toml_string("http://" + hook.address() + "/hooks/veer")));
    ASSERT_TRUE(v.start());
    ASSERT_TRUE(json_bool(v.admin("set weight 30"), "ok"));
    ASSERT_TRUE(json_bool(v.admin("rollback bad build 42"), "ok"));
    ASSERT_TRUE(wait_for(
        [&] {
            std::lock_guard lock(m);
            return bodies.size() >= 2;
        },
        ms(10000)))
        << v.log();
    std::lock_guard lock(m);
    ASSERT_EQ(bodies.size(), 2u);
    for (const auto& b : bodies)
        EXPECT_EQ(b.rfind("POST /hooks/veer application/json {", 0), 0u) << b;
    const auto weight = boost::json::parse(bodies[0].substr(bodies[0].find('{'))).as_object();
    EXPECT_EQ(weight.at("kind").as_string(),
              "weight");  // delivered although its first POST got a 503
    EXPECT_EQ(weight.at("by").as_string(), "operator");
    const auto rollback = boost::json::parse(bodies[1].substr(bodies[1].find('{'))).as_object();
    EXPECT_EQ(rollback.at("kind").as_string(), "rollback");
    EXPECT_EQ(rollback.at("reason").as_string(), "bad build 42");
    EXPECT_TRUE(rollback.contains("time"));
    const auto metrics = v.admin_http("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("veer_webhook_sent_total 2"), std::string::npos) << metrics->body;
}

TEST(Notify, AccessLogHasOneJsonLinePerRequest) {
    temp_dir dir;
    upstream blue(dir, "blue");
    upstream green(dir, "green");
    const auto path = dir.file("access.log");
    veer_process v(dir, {blue.address()}, {green.address()},
                   toml_config().set("log", "access_log", toml_string(path)));
    ASSERT_TRUE(v.start());
    http_client c(v.port());
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(c.get("/item/" + std::to_string(i) + "?q=\"x\""));
    ASSERT_EQ(v.proc().stop(), 0);  // the last lines are flushed on the way out
    const auto text = read_file(path);
    std::vector<boost::json::object> lines;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find('\n', pos);
        ASSERT_NE(end, std::string::npos) << "unterminated line";
        lines.push_back(boost::json::parse(text.substr(pos, end - pos)).as_object());
        pos = end + 1;
    }
    ASSERT_EQ(lines.size(), 5u) << text;
    EXPECT_EQ(lines[3].at("request").as_string(), "GET /item/3?q=\"x\"");
    EXPECT_EQ(lines[3].at("status").as_int64(), 200);
    EXPECT_EQ(lines[3].at("pool").as_string(), "blue");
    EXPECT_EQ(lines[3].at("endpoint").as_string(), blue.address());
    EXPECT_EQ(lines[3].at("client").as_string(), "127.0.0.1");
}

}  // namespace
}  // namespace veer::it
