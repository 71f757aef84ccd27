// Slow and idle clients (SPEC section 4): a request head must arrive within
// timeouts.header_read however it is trickled, and an idle keep-alive connection closes
// after timeouts.idle, while everyone else is served as usual.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace veer::it {
namespace {

TEST(SlowClients, HalfAHeadIsCutAfterHeaderReadWhileOthersAreServed) {
    temp_dir dir;
    upstream blue(dir, "blue");
    // One thread: the stalled client and the served one share an event loop.
    veer_process v(
        dir, {blue.address()}, {dead_address()},
        toml_config().set("listener", "threads", "1").set("timeouts", "header_read", "\"300ms\""));
    ASSERT_TRUE(v.start());

    tcp_conn stalled(v.port());
    ASSERT_TRUE(stalled.send_all("GET /stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "));

    auto served = http_get(v.port(), "/served");
    ASSERT_TRUE(served);
    EXPECT_EQ(served->status, 200);
    EXPECT_EQ(served->body, "blue GET /served 0\n");

    // ~300ms; the deadline is generous for a loaded machine, not a measurement.
    EXPECT_TRUE(stalled.read_until_close(ms(3000)))
        << "a half-sent head must not hold its connection";
    // veer may say 408 on its way out, never anything the upstream answered.
    EXPECT_TRUE(stalled.buffer().empty() || stalled.buffer().starts_with("HTTP/1.1 408"))
        << stalled.buffer();
}

TEST(SlowClients, SilentConnectionIsCutAfterHeaderReadNotIdle) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config()
                       .set("timeouts", "header_read", "\"300ms\"")
                       .set("timeouts", "idle", "\"60s\""));
    ASSERT_TRUE(v.start());
    tcp_conn silent(v.port());  // connects, never sends a byte
    EXPECT_TRUE(silent.read_until_close(ms(3000)))
        << "a connection that sends nothing was held past header_read";
    EXPECT_TRUE(silent.buffer().empty()) << silent.buffer();
}

TEST(SlowClients, TrickledHeadIsCutAfterHeaderRead) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("timeouts", "header_read", "\"300ms\""));
    ASSERT_TRUE(v.start());

    // One byte of an endless header every 50ms: each byte is progress, the whole head is not.
    tcp_conn slow(v.port());
    ASSERT_TRUE(slow.send_all("GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
    const deadline give_up(ms(3000));
    bool closed = false;
    while (!closed && !give_up.expired()) {
        if (!slow.send_all("a", ms(100))) {
            closed = true;
            break;
        }
        closed = slow.fill(deadline(ms(50))) == tcp_conn::read_status::closed;
    }
    EXPECT_TRUE(closed)
        << "a trickled head kept its connection open for 3 s (header_read is 300ms)";
}

TEST(SlowClients, IdleKeepAliveConnectionIsClosedAfterIdle) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("timeouts", "idle", "\"300ms\""));
    ASSERT_TRUE(v.start());

    // Requests closer together than `idle` keep the connection.
    http_client busy(v.port());
    for (int i = 0; i < 4; ++i) {
        auto r = busy.get("/busy");
        ASSERT_TRUE(r) << "request " << i << ": " << busy.last_error();
        EXPECT_EQ(r->status, 200);
        EXPECT_FALSE(busy.conn().fill(deadline(ms(100))) == tcp_conn::read_status::closed);
    }

    http_client idle(v.port());
    auto r = idle.get("/once");
    ASSERT_TRUE(r) << idle.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_TRUE(idle.conn().read_until_close(ms(3000)))
        << "an idle keep-alive connection outlived timeouts.idle";
    EXPECT_TRUE(idle.conn().buffer().empty()) << idle.conn().buffer();
}

// A keep-alive connection idle for over a second parks: its session ends and the worker
// keeps only the socket. It must still be served when it speaks again, and still close
// after timeouts.idle when it does not.
TEST(SlowClients, ParkedConnectionIsServedWhenItSpeaksAgainAndClosedAfterIdle) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("timeouts", "idle", "\"2500ms\""));
    ASSERT_TRUE(v.start());

    http_client c(v.port());
    for (int i = 0; i < 2; ++i) {
        auto r = c.get("/before-" + std::to_string(i));
        ASSERT_TRUE(r) << "request " << i << ": " << c.last_error();
        EXPECT_EQ(r->status, 200);
        // Idle for 1.5 s: parked after 1 s, but well within timeouts.idle.
        EXPECT_EQ(c.conn().fill(deadline(ms(1500))), tcp_conn::read_status::timeout);
    }
    auto r = c.get("/after-parking");
    ASSERT_TRUE(r) << c.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(upstream_name_of(*r), "blue");

    const auto idle_from = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.conn().read_until_close(ms(5000)))
        << "a parked connection outlived timeouts.idle";
    const auto closed_after = std::chrono::steady_clock::now() - idle_from;
    EXPECT_GE(closed_after, ms(2000)) << "closed well before timeouts.idle (2.5 s)";
    EXPECT_TRUE(c.conn().buffer().empty()) << c.conn().buffer();
}

// More idle connections than may wait with a buffer in hand (worker::max_idle_reads,
// 256, per thread: hence one thread) park at once after their request; every one of
// them is served on its next.
TEST(SlowClients, ManyIdleConnectionsParkAndAreAllServedAgain) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("listener", "threads", "1"));
    ASSERT_TRUE(v.start());

    constexpr int n = 300;
    std::vector<std::unique_ptr<http_client>> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(std::make_unique<http_client>(v.port()));
        auto r = clients.back()->get("/first");
        ASSERT_TRUE(r) << "connection " << i << ": " << clients.back()->last_error();
        ASSERT_EQ(r->status, 200);
    }
    for (int i = 0; i < n; ++i) {
        auto r = clients[i]->get("/second");
        ASSERT_TRUE(r) << "connection " << i << ", second request: " << clients[i]->last_error();
        EXPECT_EQ(r->status, 200);
    }
}

}  // namespace
}  // namespace veer::it
