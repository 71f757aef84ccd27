// The upstream pool on the request path: take an idle keep-alive connection for a request
// and give it back after the response, over real loopback sockets.
#include <benchmark/benchmark.h>

#include <vector>

#include "proxy/upstream_pool.hpp"

namespace {

using namespace veer::proxy;

// `n` connected loopback connections to one endpoint, checked in; the accepted ends stay
// open, silent, so that no watch retires them.
struct pooled_connections {
    explicit pooled_connections(int n) : pool(1, 60'000'000'000) {
        tcp_acceptor acceptor(ioc.get_executor(),
                              tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        for (int i = 0; i < n; ++i) {
            auto c = std::make_unique<upstream_conn>(ioc.get_executor());
            c->stream.sock().connect(acceptor.local_endpoint());
            peers.push_back(acceptor.accept());
            pool.checkin(0, std::move(c), 0);
        }
    }
    asio::io_context ioc;
    upstream_pool pool;
    std::vector<tcp_socket> peers;
};

// A request takes a connection and gives it back: the idle watch is cancelled and armed
// again (one recv(MSG_PEEK) that finds nothing), and its aborted handler runs.
void BM_checkout_checkin(benchmark::State& state) {
    pooled_connections p(static_cast<int>(state.range(0)));
    std::int64_t now = 1;
    for (auto _ : state) {
        auto c = p.pool.checkout(0, now);
        benchmark::DoNotOptimize(c.get());
        p.pool.checkin(0, std::move(c), now);
        p.ioc.poll();
        ++now;
    }
}
BENCHMARK(BM_checkout_checkin)->Arg(1)->Arg(64);

}  // namespace
