// Slow and idle clients (SPEC section 4): a request head must arrive within
// timeouts.header_read however it is trickled, and an idle keep-alive connection closes
// after timeouts.idle, while everyone else is served as usual.
#include <string>

#include "harness.hpp"

namespace veer::it {
namespace {

TEST(SlowClients, HalfAHeadIsCutAfterHeaderReadWhileOthersAreServed) {
    temp_dir dir;
    upstream blue(dir, "blue");
    // One thread: the stalled client and the served one share an event loop.
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("listener", "threads", "1").set("timeouts", "header_read", "\"300ms\""));
    ASSERT_TRUE(v.start());

    tcp_conn stalled(v.port());
    ASSERT_TRUE(stalled.send_all("GET /stalled HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "));

    auto served = http_get(v.port(), "/served");
    ASSERT_TRUE(served);
    EXPECT_EQ(served->status, 200);
    EXPECT_EQ(served->body, "blue GET /served 0\n");

    // ~300ms; the deadline is generous for a loaded machine, not a measurement.
    EXPECT_TRUE(stalled.read_until_close(ms(3000))) << "a half-sent head must not hold its connection";
    // veer may say 408 on its way out, never anything the upstream answered.
    EXPECT_TRUE(stalled.buffer().empty() || stalled.buffer().starts_with("HTTP/1.1 408")) << stalled.buffer();
}

TEST(SlowClients, SilentConnectionIsCutAfterHeaderReadNotIdle) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("timeouts", "header_read", "\"300ms\"").set("timeouts", "idle", "\"60s\""));
    ASSERT_TRUE(v.start());
    tcp_conn silent(v.port());  // connects, never sends a byte
    EXPECT_TRUE(silent.read_until_close(ms(3000))) << "a connection that sends nothing was held past header_read";
    EXPECT_TRUE(silent.buffer().empty()) << silent.buffer();
}

TEST(SlowClients, TrickledHeadIsCutAfterHeaderRead) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()}, toml_config().set("timeouts", "header_read", "\"300ms\""));
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
    EXPECT_TRUE(closed) << "a trickled head kept its connection open for 3 s (header_read is 300ms)";
}

TEST(SlowClients, IdleKeepAliveConnectionIsClosedAfterIdle) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()}, toml_config().set("timeouts", "idle", "\"300ms\""));
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
    EXPECT_TRUE(idle.conn().read_until_close(ms(3000))) << "an idle keep-alive connection outlived timeouts.idle";
    EXPECT_TRUE(idle.conn().buffer().empty()) << idle.conn().buffer();
}

}  // namespace
}  // namespace veer::it
