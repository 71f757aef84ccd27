// The upstream pool over real loopback sockets: an idle connection that receives bytes or
// EOF is retired (RFC 9112 9.2: nothing may arrive without a request), one in use is not.
#include "proxy/upstream_pool.hpp"

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

namespace veer::proxy {
namespace {

struct pool_fixture : ::testing::Test {
    pool_fixture()
        : acceptor(ioc.get_executor(), tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {}

    // A connected upstream connection, and the upstream's end of it.
    std::unique_ptr<upstream_conn> connect() {
        auto c = std::make_unique<upstream_conn>(ioc.get_executor());
        c->stream.sock().connect(acceptor.local_endpoint());
        peers.push_back(acceptor.accept());
        return c;
    }
    // Runs the loop until `done` or a bound passes.
    template <class Pred>
    bool run_until(Pred done) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        ioc.restart();  // a poll() that ran out of work stopped the loop
        while (!done() && std::chrono::steady_clock::now() < until)
            ioc.run_one_for(std::chrono::milliseconds(10));
        return done();
    }

    asio::io_context ioc;
    tcp_acceptor acceptor;
    std::vector<tcp_socket> peers;
    upstream_pool pool{1, 60'000'000'000};
};

TEST_F(pool_fixture, SilentIdleConnectionIsKeptAndReturned) {
    auto c = connect();
    const auto* raw = c.get();
    pool.checkin(0, std::move(c), 1);
    ioc.poll();
    EXPECT_EQ(pool.idle(0), 1u);
    auto again = pool.checkout(0, 2);
    EXPECT_EQ(again.get(), raw);
    ioc.poll();  // the cancelled watch's handler runs and touches nothing
    EXPECT_EQ(pool.idle(0), 0u);
}

TEST_F(pool_fixture, BytesOnAnIdleConnectionRetireIt) {
    pool.checkin(0, connect(), 1);
    asio::write(peers.back(),
                asio::buffer("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged", 44));
    EXPECT_TRUE(run_until([&] { return pool.idle(0) == 0; }));
    EXPECT_EQ(pool.checkout(0, 2), nullptr);
}

// The response was read to its end (Asio stops trying reads until epoll reports the
// socket again); then late bytes come before the connection is checked in, and their
// readiness edge passes while nothing waits on the socket.
TEST_F(pool_fixture, BytesThatCameBeforeCheckinRetireIt) {
    auto c = connect();
    asio::write(peers.back(), asio::buffer("resp", 4));
    char buf[64];
    bool read = false;
    c->stream.sock().async_read_some(asio::buffer(buf),
                                     [&](boost::system::error_code, std::size_t) { read = true; });
    ASSERT_TRUE(run_until([&] { return read; }));
    asio::write(peers.back(), asio::buffer("late", 4));
    asio::steady_timer t(ioc, std::chrono::milliseconds(50));  // the loop waits in epoll meanwhile
    bool waited = false;
    t.async_wait([&](boost::system::error_code) { waited = true; });
    ASSERT_TRUE(run_until([&] { return waited; }));
    pool.checkin(0, std::move(c), 1);
    EXPECT_TRUE(run_until([&] { return pool.idle(0) == 0; }));
}

TEST_F(pool_fixture, UpstreamCloseRetiresIt) {
    pool.checkin(0, connect(), 1);
    pool.checkin(0, connect(), 1);
    peers.front().close();
    EXPECT_TRUE(run_until([&] { return pool.idle(0) == 1; }));
    ioc.poll();
    EXPECT_EQ(pool.idle(0), 1u) << "the silent one stays";
}

TEST_F(pool_fixture, ConnectionInUseIsNotWatched) {
    pool.checkin(0, connect(), 1);
    auto c = pool.checkout(0, 2);
    ASSERT_NE(c, nullptr);
    asio::write(peers.back(), asio::buffer("HTTP/1.1 204 No Content\r\n\r\n", 27));
    char buf[64];
    const auto n =
        c->stream.sock().read_some(asio::buffer(buf));  // the response is the user's to read
    EXPECT_EQ(std::string_view(buf, n), "HTTP/1.1 204 No Content\r\n\r\n");
    ioc.poll();
    pool.checkin(0, std::move(c), 3);
    ioc.poll();
    EXPECT_EQ(pool.idle(0), 1u);
}

TEST_F(pool_fixture, ConnectionIdleTooLongIsDropped) {
    upstream_pool short_pool{1, 1000};
    short_pool.checkin(0, connect(), 1);
    EXPECT_EQ(short_pool.checkout(0, 2000), nullptr);
}

}  // namespace
}  // namespace veer::proxy
