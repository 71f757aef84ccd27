// Malformed and ambiguous requests (SPEC section 4, RFC 9112 section 6.3): each gets its
// 4xx, the connection closes, and not one byte of it reaches an upstream.
#include <atomic>
#include <string>
#include <vector>

#include "harness.hpp"

namespace veer::it {
namespace {

void answer_ok(script_conn& c, upstream_request& first) {
    for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
        std::string body;
        if (!c.read_body(*r, body) || !c.send(ok_response("ok\n"))) return;
    }
}

struct vector_case {
    const char* name;
    std::string bytes;
};

std::vector<vector_case> smuggling_vectors() {
    const std::string post = "POST /v HTTP/1.1\r\nHost: a\r\n";
    const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
    return {
        {"content-length and transfer-encoding",
         post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"transfer-encoding and content-length",
         post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"},
        {"differing content-lengths",
         post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"},
        {"differing content-length list", post + "Content-Length: 5, 6\r\n\r\nhello!"},
        {"content-length not a number", post + "Content-Length: abc\r\n\r\nabc"},
        {"negative content-length", post + "Content-Length: -5\r\n\r\nhello"},
        {"content-length with a sign", post + "Content-Length: +5\r\n\r\nhello"},
        {"hex content-length", post + "Content-Length: 0x5\r\n\r\nhello"},
        {"empty content-length", post + "Content-Length: \r\n\r\n"},
        {"content-length overflow", post + "Content-Length: 18446744073709551621\r\n\r\nhello"},
        {"transfer-encoding gzip", post + "Transfer-Encoding: gzip\r\n\r\nxxxxx"},
        {"transfer-encoding chunked, chunked",
         post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"},
        {"transfer-encoding xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"},
        {"transfer-encoding chunked, gzip",
         post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"},
        {"transfer-encoding twice",
         post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"transfer-encoding in HTTP/1.0",
         "POST /v HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
        {"space before the colon", post + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"},
        {"chunk size not hex", chunked + "zz\r\nhello\r\n0\r\n\r\n"},
        {"negative chunk size", chunked + "-5\r\nhello\r\n0\r\n\r\n"},
        {"chunk size overflow", chunked + "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
        {"chunk size ended by bare LF", chunked + "5\nhello\r\n0\r\n\r\n"},
        {"chunk data not ended by CRLF", chunked + "5\r\nhelloXX0\r\n\r\n"},
        {"empty chunk size", chunked + "\r\nhello\r\n0\r\n\r\n"},
        {"bare LF in a chunk extension", chunked + "5;a\nb\r\nhello\r\n0\r\n\r\n"},
        {"bare LF in a trailer", chunked + "5\r\nhello\r\n0\r\nX-T: a\nb\r\n\r\n"},
        {"bare LF line ends", "GET /v HTTP/1.1\nHost: a\n\n"},
        {"one bare LF", "GET /v HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"},
        {"bare CR in a value", "GET /v HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n"},
        {"space in a header name", "GET /v HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"},
        {"separator in a header name", "GET /v HTTP/1.1\r\nHost: a\r\nX-A(b): x\r\n\r\n"},
        {"empty header name", "GET /v HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"},
        {"NUL in a value",
         std::string("GET /v HTTP/1.1\r\nHost: a\r\nX-A: a") + '\0' + "b\r\n\r\n"},
        {"missing Host", "GET /v HTTP/1.1\r\nX-A: b\r\n\r\n"},
        {"repeated Host", "GET /v HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        {"repeated identical Host", "GET /v HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"},
        {"two spaces in the request line", "GET  /v HTTP/1.1\r\nHost: a\r\n\r\n"},
        {"bad version", "GET /v HTTP/1.x\r\nHost: a\r\n\r\n"},
    };
}

TEST(BadInput, EverySmugglingVectorIs400ClosedAndNeverReachesTheUpstream) {
    temp_dir dir;
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    for (const auto& vec : smuggling_vectors()) {
        SCOPED_TRACE(vec.name);
        const auto got = raw_exchange(v.port(), vec.bytes);
        EXPECT_EQ(got.data.substr(0, 13), "HTTP/1.1 400 ") << "answer: " << got.data;
        EXPECT_TRUE(got.closed) << "the connection must close after a 400";
        EXPECT_EQ(got.data.find("ok\n"), std::string::npos)
            << "an upstream answer came back: " << got.data;
        EXPECT_EQ(up.data_bytes(), 0u) << "bytes reached the upstream";
    }

    // The upstream was reachable all along: a good request gets through.
    auto good = http_get(v.port(), "/good");
    ASSERT_TRUE(good);
    EXPECT_EQ(good->status, 200);

    // Once veer is gone and the upstream has read every connection to its end, the good
    // request is the only thing that ever arrived.
    EXPECT_EQ(v.proc().stop(), 0);
    ASSERT_TRUE(up.wait_quiet(ms(5000)));
    const auto requests = up.requests();
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(requests[0].target, "/good");
    EXPECT_TRUE(up.fragments().empty())
        << "partial bytes reached the upstream: " << up.fragments().front();
}

TEST(BadInput, ObsFoldIsRefusedOrUnfolded) {
    temp_dir dir;
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    const auto got =
        raw_exchange(v.port(), "GET /fold HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n");
    if (got.data.substr(0, 13) == "HTTP/1.1 400 ") {
        EXPECT_TRUE(got.closed);
        EXPECT_EQ(up.data_bytes(), 0u);
    } else {
        ASSERT_TRUE(up.wait_requests(1, ms(5000))) << got.data;
        const auto r = up.requests().at(0);
        EXPECT_EQ(r.get("X-Folded").find_first_of("\r\n"), std::string::npos) << r.head;
    }
}

TEST(BadInput, BadChunkAfterTheHeadWentUpstreamCutsBothSides) {
    temp_dir dir;
    std::atomic<bool> upstream_saw_close{false};
    std::atomic<bool> upstream_got_body{false};
    scripted_upstream up([&](script_conn& c, upstream_request& first) {
        std::string body;
        upstream_got_body = c.read_body(first, body, ms(5000));
        upstream_saw_close = c.wait_closed(ms(5000));
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all(
        "POST /late HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
    // The head and the first chunk are on their way: only then comes the bad size.
    ASSERT_TRUE(up.wait_requests(1, ms(5000)));
    c.send_all("zz\r\nxx\r\n0\r\n\r\n");
    EXPECT_TRUE(c.read_until_close(ms(5000)));
    EXPECT_EQ(c.buffer().substr(0, 13), "HTTP/1.1 400 ") << c.buffer();
    // The upstream never gets a complete request out of it: veer hangs up on it.
    ASSERT_TRUE(wait_for([&] { return upstream_saw_close.load(); }, ms(5000)));
    EXPECT_FALSE(upstream_got_body.load());
}

TEST(BadInput, HundredKilobyteHeaderIs431) {
    temp_dir dir;
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    const auto got = raw_exchange(v.port(), "GET /big HTTP/1.1\r\nHost: a\r\nX-Big: " +
                                                std::string(100 * 1024, 'a') + "\r\n\r\n");
    EXPECT_EQ(got.data.substr(0, 13), "HTTP/1.1 431 ") << got.data.substr(0, 200);
    EXPECT_TRUE(got.closed);
    EXPECT_EQ(up.data_bytes(), 0u);

    // Just under the limit is fine.
    auto fits = http_get(v.port(), "/fits", {{"X-Big", std::string(60 * 1024, 'a')}});
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->status, 200);
}

TEST(BadInput, BodyOverMaxBodyBytesIs413) {
    temp_dir dir;
    scripted_upstream up(answer_ok);
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("limits", "max_body_bytes", "\"1KiB\""));
    ASSERT_TRUE(v.start());

    const std::string body(2048, 'b');
    const auto by_length = raw_exchange(v.port(), make_request("POST", "/big", {}, body));
    EXPECT_EQ(by_length.data.substr(0, 13), "HTTP/1.1 413 ") << by_length.data;
    EXPECT_TRUE(by_length.closed);
    EXPECT_EQ(up.data_bytes(), 0u);

    const auto chunked =
        raw_exchange(v.port(),
                     "POST /big-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "800\r\n" +
                         body + "\r\n0\r\n\r\n");
    EXPECT_EQ(chunked.data.substr(0, 13), "HTTP/1.1 413 ") << chunked.data;
    EXPECT_TRUE(chunked.closed);

    // Asked first with Expect: 100-continue, the answer is 413 at once, never 100.
    const auto expecting = raw_exchange(v.port(),
                                        "POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n"
                                        "Expect: 100-continue\r\n\r\n");
    EXPECT_EQ(expecting.data.substr(0, 13), "HTTP/1.1 413 ") << expecting.data;
    EXPECT_TRUE(expecting.closed);
    EXPECT_EQ(up.data_bytes(), 0u);

    // Exactly the limit passes.
    auto fits = http_client(v.port()).request("POST", "/fits", {}, std::string(1024, 'c'));
    ASSERT_TRUE(fits);
    EXPECT_EQ(fits->status, 200);
}

}  // namespace
}  // namespace veer::it
