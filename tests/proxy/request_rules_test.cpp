// The request cycle's decisions that wait for nothing (proxy/request_rules): refuse or
// route, failure to result and status, the next pool after a failed connect, and whether
// the client connection stays open.
#include "proxy/request_rules.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace veer::proxy {
namespace {

// Pools "blue" (stable, ids first..) and "green" (canary) with `n` usable endpoints each.
routing::pool make_pool(std::string name, std::uint32_t first_id, int n) {
    routing::pool p;
    p.name = std::move(name);
    for (int i = 0; i < n; ++i) {
        routing::endpoint e;
        e.id = first_id + static_cast<std::uint32_t>(i);
        p.endpoints.push_back(e);
        p.usable.push_back(static_cast<std::uint32_t>(i));
    }
    return p;
}

routing::snapshot two_pools(int blue_endpoints, int green_endpoints, int canary_weight_bp = 10000) {
    routing::snapshot s;
    s.pools.push_back(make_pool("blue", 0, blue_endpoints));
    s.pools.push_back(make_pool("green", 10, green_endpoints));
    s.stable = 0;
    s.canary = 1;
    s.canary_weight_bp = canary_weight_bp;
    return s;
}

struct parsed {
    explicit parsed(std::string text) : in(std::move(text)) {
        EXPECT_EQ(http::parse_request(in, 8192, head).status, http::parse_status::done) << in;
    }
    std::string in;  // the head's views point into it
    http::request_head head;
};

TEST(Admit, RoutesByTheSnapshotOrRefuses) {
    const parsed get("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    auto snap = two_pools(1, 1);
    EXPECT_EQ(admit(get.head, snap, 0).pool, 1);  // weight 100%: the canary
    EXPECT_EQ(admit(get.head, snap, 0).status, 0);
    snap.pools[0].usable.clear();
    snap.pools[1].usable.clear();
    EXPECT_EQ(admit(get.head, snap, 0).status, 503);
}

TEST(Admit, DeclaredBodyOverTheLimitIs413BeforeRouting) {
    const parsed post("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n");
    auto snap = two_pools(0, 0);  // nothing could serve it either: 413 comes first
    snap.limits.max_body_bytes = 1000;
    EXPECT_EQ(admit(post.head, snap, 0).status, 413);
    snap.limits.max_body_bytes = 0;  // unlimited
    EXPECT_EQ(admit(post.head, snap, 0).status, 503);
}

TEST(AnswerFor, EachFailureHasItsResultAndStatus) {
    EXPECT_EQ(answer_for(head_result::timeout).status, 504);
    EXPECT_EQ(answer_for(head_result::timeout).result, metrics::result::timeout);
    EXPECT_EQ(answer_for(head_result::bad).status, 502);
    EXPECT_EQ(answer_for(head_result::bad).result, metrics::result::s5xx);
    EXPECT_EQ(answer_for(head_result::closed).result, metrics::result::reset);
    EXPECT_EQ(answer_for(head_result::reset).status, 502);
}

TEST(PoolAfterConnectFailure, SamePoolThenStableThenNothing) {
    const auto snap = two_pools(2, 2);
    EXPECT_EQ(pool_after_connect_failure(snap, 1, 10), 1) << "green has another endpoint";
    const auto lone_canary = two_pools(2, 1);
    EXPECT_EQ(pool_after_connect_failure(lone_canary, 1, 10), 0) << "the stable pool takes over";
    const auto lone_stable = two_pools(1, 1);
    EXPECT_EQ(pool_after_connect_failure(lone_stable, 0, 0), -1)
        << "the stable pool's only endpoint failed";
    auto stable_down = two_pools(1, 1);
    stable_down.pools[0].usable.clear();
    EXPECT_EQ(pool_after_connect_failure(stable_down, 1, 10), -1)
        << "the canary's only endpoint failed and the stable pool has none";
    auto stable_down_two = two_pools(1, 2);
    stable_down_two.pools[0].usable.clear();
    EXPECT_EQ(pool_after_connect_failure(stable_down_two, 1, 10), 1);
}

TEST(KeepOpen, AfterVeersOwnReply) {
    const parsed get("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const parsed close("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(keep_open_after_reply(get.head, 503, false));
    EXPECT_FALSE(keep_open_after_reply(get.head, 413, false));
    EXPECT_FALSE(keep_open_after_reply(get.head, 502, true))
        << "the unread body would be read as a request";
    EXPECT_FALSE(keep_open_after_reply(close.head, 502, false));
}

TEST(KeepOpen, AfterARelayedResponse) {
    const parsed v11("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    const parsed v10("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    http::response_head resp;
    resp.body = http::body_kind::length;
    EXPECT_TRUE(keep_open_after_response(v11.head, resp, false, false));
    EXPECT_FALSE(keep_open_after_response(v11.head, resp, true, false)) << "draining";
    EXPECT_FALSE(keep_open_after_response(v11.head, resp, false, true)) << "upload cut";
    EXPECT_TRUE(keep_open_after_response(v10.head, resp, false, false));
    resp.body = http::body_kind::chunked;
    EXPECT_TRUE(keep_open_after_response(v11.head, resp, false, false));
    EXPECT_FALSE(keep_open_after_response(v10.head, resp, false, false))
        << "de-chunked: ends by closing";
    resp.body = http::body_kind::until_close;
    EXPECT_FALSE(keep_open_after_response(v11.head, resp, false, false));
}

}  // namespace
}  // namespace veer::proxy
