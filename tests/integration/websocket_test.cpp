// Upgrade: websocket is tunneled to the chosen pool, bytes relayed both ways (SPEC 4).
#include <atomic>
#include <string>

#include "harness.hpp"

namespace veer::it {
namespace {

constexpr std::string_view switching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

std::string upgrade_request(std::string_view target) {
    return make_request("GET", target,
                        {{"Upgrade", "websocket"},
                         {"Connection", "Upgrade"},
                         {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                         {"Sec-WebSocket-Version", "13"}});
}

// Reads until `want` bytes are in the buffer; false if they did not come in time.
bool read_exactly(tcp_conn& c, std::size_t want, ms timeout) {
    const deadline d(timeout);
    while (c.buffer().size() < want)
        if (c.fill(d) != tcp_conn::read_status::data) return false;
    return true;
}

TEST(WebSocket, UpgradeIsTunneledAndBytesAreEchoed) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& r) {
        if (r.get("Upgrade") != "websocket") {
            c.send(ok_response("not an upgrade\n"));
            return;
        }
        c.send(switching);
        c.echo_until_closed(ms(10000));
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all(upgrade_request("/ws")));
    std::string error;
    auto head = read_head(c, ms(5000), &error);
    ASSERT_TRUE(head) << error;
    ASSERT_EQ(head->status, 101) << head->head;
    EXPECT_EQ(head->get("Upgrade"), "websocket");
    EXPECT_EQ(head->get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    // A masked text frame, then raw bytes: the tunnel does not look at them.
    const std::string frame = std::string("\x81\x85\x37\xfa\x21\x3d", 6) + "\x7f\x9f\x4d\x51\x58";
    ASSERT_TRUE(c.send_all(frame));
    ASSERT_TRUE(read_exactly(c, frame.size(), ms(5000))) << "echo did not come back";
    EXPECT_EQ(c.buffer(), frame);
    c.buffer().clear();

    const std::string more(100000, 'w');
    ASSERT_TRUE(c.send_all(more));
    ASSERT_TRUE(read_exactly(c, more.size(), ms(5000)));
    EXPECT_EQ(c.buffer(), more);

    ASSERT_TRUE(up.wait_requests(1, ms(5000)));
    const auto got = up.requests().at(0);
    EXPECT_EQ(got.get("Upgrade"), "websocket") << got.head;
    EXPECT_NE(got.get("Connection").find("pgrade"), std::string::npos) << got.head;
    EXPECT_EQ(got.get("Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==") << got.head;
    EXPECT_EQ(got.get("Sec-WebSocket-Version"), "13") << got.head;
}

TEST(WebSocket, EitherSideClosingEndsTheTunnel) {
    temp_dir dir;
    std::atomic<int> upstream_saw_close{0};
    scripted_upstream up([&](script_conn& c, upstream_request& r) {
        c.send(switching);
        if (r.target == "/upstream-hangs-up") {
            c.close();
            return;
        }
        c.echo_until_closed(ms(10000));
        ++upstream_saw_close;
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    {
        // Firefox says "Connection: keep-alive, Upgrade".
        tcp_conn c(v.port());
        ASSERT_TRUE(c.send_all(make_request("GET", "/client-hangs-up",
                                            {{"Upgrade", "websocket"},
                                             {"Connection", "keep-alive, Upgrade"},
                                             {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                             {"Sec-WebSocket-Version", "13"}})));
        auto head = read_head(c, ms(5000));
        ASSERT_TRUE(head);
        ASSERT_EQ(head->status, 101);
        ASSERT_TRUE(c.send_all("ping"));
        ASSERT_TRUE(read_exactly(c, 4, ms(5000)));
        c.close();
        EXPECT_TRUE(wait_for([&] { return upstream_saw_close.load() == 1; }, ms(5000)))
            << "the upstream side of the tunnel outlived the client";
    }
    {
        tcp_conn c(v.port());
        ASSERT_TRUE(c.send_all(upgrade_request("/upstream-hangs-up")));
        auto head = read_head(c, ms(5000));
        ASSERT_TRUE(head);
        ASSERT_EQ(head->status, 101);
        EXPECT_TRUE(c.read_until_close(ms(5000)))
            << "the client side of the tunnel outlived the upstream";
    }
}

TEST(WebSocket, SwitchingProtocolsToAPlainRequestIs502) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request&) {
        c.send(switching);
        c.wait_closed(ms(5000));
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    auto r = http_get(v.port(), "/plain");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 502);
}

}  // namespace
}  // namespace veer::it
