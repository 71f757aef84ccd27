// The data path end to end (SPEC section 4): keep-alive, pipelining, bodiless answers,
// 100-continue, large bodies both ways, HTTP/1.0 and hop-by-hop headers.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace veer::it {
namespace {

// A scripted upstream that answers every request on a connection with
// "METHOD TARGET BODYBYTES\n", keep-alive, until the connection ends.
void echo_requests(script_conn& c, upstream_request& first) {
    for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
        std::string body;
        if (!c.read_body(*r, body)) return;
        const std::string text =
            r->method + " " + r->target + " " + std::to_string(body.size()) + "\n";
        if (r->method == "HEAD") {
            if (!c.send("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(text.size()) +
                        "\r\n\r\n"))
                return;
        } else if (!c.send(ok_response(text))) {
            return;
        }
    }
}

TEST(DataPath, KeepAliveCarriesTwentyRequestsOnOneConnectionEachSide) {
    temp_dir dir;
    scripted_upstream up(echo_requests);
    // One thread: a client connection and the upstream pool it uses live on the same loop.
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("listener", "threads", "1"));
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    for (int i = 0; i < 20; ++i) {
        const std::string target = "/keep/" + std::to_string(i);
        auto r = client.get(target);
        ASSERT_TRUE(r) << "request " << i << ": " << client.last_error();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "GET " + target + " 0\n");
        EXPECT_NE(r->get("Connection"), "close") << "request " << i;
    }
    EXPECT_FALSE(client.conn().peer_closed());
    // Twenty requests in sequence need one pooled upstream connection, not twenty.
    EXPECT_EQ(up.data_connections(), 1u);
    EXPECT_EQ(up.requests().size(), 20u);
}

TEST(DataPath, PipelinedRequestsAreAnsweredInOrder) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all(make_request("GET", "/p1") + make_request("GET", "/p2") +
                           make_request("GET", "/p3")));
    for (const char* target : {"/p1", "/p2", "/p3"}) {
        std::string error;
        auto r = read_response(c, ms(5000), false, &error);
        ASSERT_TRUE(r) << target << ": " << error;
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, std::string("blue GET ") + target + " 0\n");
    }
    EXPECT_TRUE(c.buffer().empty()) << "bytes after the third answer: " << c.buffer();
}

TEST(DataPath, PipelinedRequestsAfterBodiesAreFramedExactly) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    // A Content-Length body, a chunked body with a trailer, then a GET, in one write:
    // veer must stop each body exactly where it ends.
    tcp_conn c(v.port());
    const std::string three =
        make_request("POST", "/len", {}, "12345") +
        "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n" +
        make_request("GET", "/last");
    ASSERT_TRUE(c.send_all(three));
    for (const char* expected :
         {"blue POST /len 5\n", "blue POST /chunked 7\n", "blue GET /last 0\n"}) {
        std::string error;
        auto r = read_response(c, ms(5000), false, &error);
        ASSERT_TRUE(r) << expected << ": " << error;
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, expected);
    }
}

TEST(DataPath, HeadAnswerKeepsContentLengthAndHasNoBody) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    auto r = client.request("HEAD", "/h");
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->get("Content-Length"), std::to_string(std::string("blue HEAD /h 0\n").size()));
    EXPECT_TRUE(r->body.empty());
    // Had veer sent body bytes after the HEAD answer, they would garble this one.
    auto next = client.get("/after-head");
    ASSERT_TRUE(next) << client.last_error();
    EXPECT_EQ(next->status, 200);
    EXPECT_EQ(next->body, "blue GET /after-head 0\n");
}

TEST(DataPath, NoContentAndNotModifiedAreBodiless) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request()) {
            bool sent = false;
            if (r->target == "/204")
                sent = c.send("HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n");
            // A 304's Content-Length describes the cached entity: no body follows it.
            else if (r->target == "/304")
                sent = c.send(
                    "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n");
            else
                sent = c.send(ok_response("after\n"));
            if (!sent) return;
        }
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    auto r204 = client.get("/204");
    ASSERT_TRUE(r204) << client.last_error();
    EXPECT_EQ(r204->status, 204);
    EXPECT_EQ(r204->get("X-Kind"), "none");
    EXPECT_FALSE(r204->has("Transfer-Encoding"));

    auto r304 = client.get("/304", {{"If-None-Match", "\"v1\""}});
    ASSERT_TRUE(r304) << client.last_error();
    EXPECT_EQ(r304->status, 304);
    EXPECT_EQ(r304->get("ETag"), "\"v1\"");

    auto after = client.get("/after");
    ASSERT_TRUE(after) << client.last_error();
    EXPECT_EQ(after->status, 200);
    EXPECT_EQ(after->body, "after\n");
}

TEST(DataPath, ExpectContinueGetsInterimAnswerThenTheResponse) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    const std::string body = "hello, continue";
    ASSERT_TRUE(c.send_all("POST /continue HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n\r\n"));
    std::string error;
    auto interim = read_head(c, ms(5000), &error);
    ASSERT_TRUE(interim) << error;
    EXPECT_EQ(interim->status, 100);
    EXPECT_EQ(interim->head, "HTTP/1.1 100 Continue\r\n\r\n");

    ASSERT_TRUE(c.send_all(body));
    auto r = read_response(c, ms(5000), false, &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "blue POST /continue " + std::to_string(body.size()) + "\n");
}

TEST(DataPath, FiveMebibyteUploadsAreRelayedWithLengthOrChunked) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());
    constexpr std::size_t size = 5 * 1024 * 1024;

    http_client client(v.port());
    const std::string body(size, 'a');
    auto r = client.request("POST", "/upload", {}, body, ms(30000));
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "blue POST /upload " + std::to_string(size) + "\n");

    // The same bytes chunked, 64 KiB a chunk, with an extension on one and a trailer.
    std::string chunked;
    for (std::size_t sent = 0; sent < size; sent += 65536) {
        chunked += sent == 0 ? "10000;note=first\r\n" : "10000\r\n";
        chunked.append(65536, 'b');
        chunked += "\r\n";
    }
    chunked += "0\r\nX-Trailer: done\r\n\r\n";
    auto rc = client.request("POST", "/upload-chunked", {{"Transfer-Encoding", "chunked"}}, chunked,
                             ms(30000));
    ASSERT_TRUE(rc) << client.last_error();
    EXPECT_EQ(rc->status, 200);
    EXPECT_EQ(rc->body, "blue POST /upload-chunked " + std::to_string(size) + "\n");
}

TEST(DataPath, TwentyMebibyteDownloadArrivesWhole) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());
    constexpr std::size_t size = 20 * 1024 * 1024;

    http_client client(v.port());
    auto r = client.request("GET", "/bytes/" + std::to_string(size), {}, {}, ms(30000));
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 200);
    ASSERT_EQ(r->body.size(), size);
    // veer-upstream's filler: 'x', with '\n' closing every 64-byte line.
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < size; ++i)
        wrong += r->body[i] != (i % 64 == 63 ? '\n' : 'x');
    EXPECT_EQ(wrong, 0u);
    auto next = client.get("/after-download");
    ASSERT_TRUE(next) << client.last_error();
    EXPECT_EQ(next->body, "blue GET /after-download 0\n");
}

TEST(DataPath, Http10ClientGetsTheResponseThenTheConnectionCloses) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all("GET /ten HTTP/1.0\r\n\r\n"));
    std::string error;
    auto r = read_response(c, ms(5000), false, &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "blue GET /ten 0\n");
    EXPECT_TRUE(c.read_until_close(ms(5000)))
        << "an HTTP/1.0 request without keep-alive must end with a close";
    EXPECT_TRUE(c.buffer().empty()) << c.buffer();
}

TEST(DataPath, Http10KeepAliveClientKeepsItsConnection) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    for (const char* target : {"/ka1", "/ka2"}) {
        ASSERT_TRUE(c.send_all(std::string("GET ") + target +
                               " HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        std::string error;
        auto r = read_response(c, ms(5000), false, &error);
        ASSERT_TRUE(r) << target << ": " << error;
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, std::string("blue GET ") + target + " 0\n");
        // An HTTP/1.0 client closes unless told the connection stays.
        EXPECT_EQ(r->get("Connection"), "keep-alive") << r->head;
    }
}

TEST(DataPath, AnswerDelimitedByCloseReachesTheClientWhole) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request&) {
        c.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + std::string(300000, 'z'));
        c.close();
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all(make_request("GET", "/until-close")));
    std::string error;
    auto r = read_response(c, ms(5000), false, &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body.size(), 300000u);
    EXPECT_EQ(r->body.find_first_not_of('z'), std::string::npos);
}

TEST(DataPath, MaxConnectionsRefusesTheOneTooMany) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()},
                   toml_config().set("limits", "max_connections", "2"));
    ASSERT_TRUE(v.start());
    // The readiness probe's connection must be gone from the count first.
    ASSERT_TRUE(v.wait_status(
        [](const boost::json::object& s) { return json_number(s, "connections") == 0; }, ms(5000)));

    // A probe connection the kernel queued but veer had not accepted yet when `status`
    // said 0 still takes a slot for a moment: a refused client tries again (bounded).
    auto served_client = [&](std::string_view target) {
        for (int attempt = 0; attempt < 20; ++attempt) {
            auto c = std::make_unique<http_client>(v.port());
            if (c->get(target)) return c;
            std::this_thread::sleep_for(ms(50));
        }
        return std::unique_ptr<http_client>();
    };
    auto first_client = served_client("/one");
    ASSERT_TRUE(first_client);
    auto second_client = served_client("/two");
    ASSERT_TRUE(second_client);
    http_client& first = *first_client;
    tcp_conn third(v.port());
    third.send_all(make_request("GET", "/three"));
    EXPECT_TRUE(third.read_until_close(ms(5000)))
        << "a third connection over max_connections = 2 was kept";
    EXPECT_TRUE(third.buffer().empty() || !third.buffer().starts_with("HTTP/1.1 200"))
        << third.buffer();

    // Once one leaves, a newcomer is served again.
    first.conn().close();
    EXPECT_TRUE(wait_for(
        [&] {
            auto r = http_get(v.port(), "/later");
            return r && r->status == 200;
        },
        ms(5000)));
}

TEST(DataPath, ChunkedAnswerIsUnwrappedForAnHttp10Client) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request&) {
        c.send(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, "
            "world\r\n0\r\n\r\n");
        c.wait_closed(ms(5000));
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    const auto got = raw_exchange(v.port(), "GET /chunks HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(got.closed) << got.data;
    std::string rest = got.data;
    std::string error;
    auto head = take_head(rest, &error);
    ASSERT_TRUE(head) << error;
    EXPECT_EQ(head->status, 200);
    // HTTP/1.0 knows no chunked coding: the body is the data, delimited by the close.
    EXPECT_FALSE(head->has("Transfer-Encoding")) << head->head;
    EXPECT_EQ(rest, "hello, world");
}

TEST(DataPath, UpstreamSayingCloseIsNotPooledAndTheClientKeepsItsConnection) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request&) {
        c.send(ok_response("once\n", "Connection: close\r\n"));
        c.close();
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    for (int i = 0; i < 3; ++i) {
        auto r = client.get("/once");
        ASSERT_TRUE(r) << "request " << i << ": " << client.last_error();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "once\n");
        // The upstream's Connection: close is about its own connection, not the client's.
        EXPECT_NE(r->get("Connection"), "close") << r->head;
    }
    EXPECT_EQ(up.data_connections(), 3u);
}

TEST(DataPath, StalePooledConnectionIsNotUsedForTheNextRequest) {
    temp_dir dir;
    std::atomic<int> closed{0};
    scripted_upstream up([&](script_conn& c, upstream_request& first) {
        std::string body;
        c.read_body(first, body);
        c.send(ok_response("first of its connection\n"));
        // Keep-alive by the book, then gone, as an upstream's own idle timeout does it.
        if (first.target == "/then-close") {
            c.close();
            ++closed;
            return;
        }
        for (auto r = c.read_request(); r; r = c.read_request())
            if (!c.read_body(*r, body) || !c.send(ok_response("again\n"))) return;
    });
    veer_process v(dir, {up.address()}, {dead_address()},
                   toml_config().set("listener", "threads", "1"));
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    ASSERT_TRUE(client.get("/then-close"));
    ASSERT_TRUE(wait_for([&] { return closed.load() == 1; }, ms(5000)));
    // A request with a body cannot be replayed: veer must not send it on the dead connection.
    auto r = client.request("POST", "/after-close", {}, "payload");
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "first of its connection\n");
}

TEST(DataPath, InterimAnswersBeforeTheFinalOneDoNotConfuseTheClient) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request())
            if (!c.send("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
                        ok_response("final\n")))
                return;
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(client.conn().send_all(make_request("GET", "/hints")));
        std::optional<http_response> r;
        // Forwarding the 103 is allowed, not required; the final answer must follow intact.
        for (int interim = 0; interim < 3; ++interim) {
            std::string error;
            r = read_response(client.conn(), ms(5000), false, &error);
            ASSERT_TRUE(r) << error;
            if (r->status >= 200) break;
        }
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->body, "final\n");
    }
}

TEST(DataPath, ChunkExtensionsAndTrailersReachAnHttp11ClientIntact) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request())
            if (!c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                        "5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Sum: 42\r\n\r\n"))
                return;
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    http_client client(v.port());
    for (int i = 0; i < 2; ++i) {
        auto r = client.get("/chunked");
        ASSERT_TRUE(r) << client.last_error();
        EXPECT_EQ(r->status, 200);
        EXPECT_TRUE(r->chunked);
        EXPECT_EQ(r->body, "hello!");
    }
}

TEST(DataPath, HalfClosedClientStillGetsItsAnswer) {
    temp_dir dir;
    upstream blue(dir, "blue");
    veer_process v(dir, {blue.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    tcp_conn c(v.port());
    ASSERT_TRUE(c.send_all(make_request("GET", "/half")));
    c.shutdown_write();  // "that was my last request"
    std::string error;
    auto r = read_response(c, ms(5000), false, &error);
    ASSERT_TRUE(r) << error;
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "blue GET /half 0\n");
    EXPECT_TRUE(c.read_until_close(ms(5000)));
}

TEST(DataPath, Ipv6ListenerAndUpstreams) {
    temp_dir dir;
    upstream six(dir, "six", {"--address", "::1"});
    scripted_upstream four(echo_requests);
    // IPv6 in, to an IPv6 blue endpoint; X-Canary sends a request to the IPv4 green one,
    // which shows what veer tells it about the client.
    veer_process v(dir, {six.address()}, {four.address()});
    v.rewrite_config(
        toml_config()  // the listener's port is only known once v exists
            .set("listener", "address", toml_string("[::1]:" + std::to_string(v.port())))
            .append("[[split.rules]]\nheader = \"X-Canary\"\nequals = \"always\"\npool = "
                    "\"canary\"\n"));
    ASSERT_TRUE(v.start(ms(15000), "::1"));

    http_client client(v.port(), "::1");
    auto r = client.get("/v6");
    ASSERT_TRUE(r) << client.last_error();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "six GET /v6 0\n");
    auto to_four = client.get("/v4", {{"X-Canary", "always"}});
    ASSERT_TRUE(to_four) << client.last_error();
    EXPECT_EQ(to_four->body, "GET /v4 0\n");
    ASSERT_TRUE(four.wait_requests(1, ms(5000)));
    EXPECT_EQ(four.requests().at(0).get("X-Forwarded-For"), "::1") << four.requests().at(0).head;
}

TEST(DataPath, HopByHopHeadersAreNotForwardedAndVeerAddsItsOwn) {
    temp_dir dir;
    scripted_upstream up([](script_conn& c, upstream_request& first) {
        for (std::optional<upstream_request> r = first; r; r = c.read_request())
            if (!c.send(ok_response(
                    "ok\n",
                    "Connection: X-Up-Secret\r\nX-Up-Secret: 1\r\nKeep-Alive: timeout=5\r\n"
                    "Proxy-Connection: keep-alive\r\nX-Up-Kept: yes\r\n")))
                return;
    });
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    {
        http_client client(v.port());
        auto r = client.get("/hop", {{"Connection", "keep-alive, X-Secret"},
                                     {"Keep-Alive", "timeout=5"},
                                     {"TE", "trailers"},
                                     {"Trailer", "X-Checksum"},
                                     {"Proxy-Connection", "keep-alive"},
                                     {"Upgrade", "h2c"},
                                     {"X-Secret", "s3cr3t"},
                                     {"X-Kept", "yes"}});
        ASSERT_TRUE(r) << client.last_error();
        EXPECT_EQ(r->status, 200);
        // Nor in the other direction.
        EXPECT_FALSE(r->has("X-Up-Secret")) << r->head;
        EXPECT_FALSE(r->has("Keep-Alive")) << r->head;
        EXPECT_FALSE(r->has("Proxy-Connection")) << r->head;
        EXPECT_EQ(r->get("Connection").find("X-Up-Secret"), std::string::npos) << r->head;
        EXPECT_EQ(r->get("X-Up-Kept"), "yes");
    }
    ASSERT_TRUE(up.wait_requests(1, ms(5000)));
    {
        const auto got = up.requests().at(0);
        for (const char* name : {"Connection", "Keep-Alive", "TE", "Trailer", "Proxy-Connection",
                                 "Upgrade", "X-Secret"})
            EXPECT_FALSE(got.has(name)) << name << " reached the upstream:\n" << got.head;
        EXPECT_EQ(got.get("X-Kept"), "yes");
        EXPECT_EQ(got.get("X-Forwarded-For"), "127.0.0.1") << got.head;
        EXPECT_EQ(got.get("X-Forwarded-Proto"), "http") << got.head;
        EXPECT_EQ(got.count("X-Request-Id"), 1) << got.head;
        EXPECT_FALSE(got.get("X-Request-Id").empty()) << got.head;
    }

    // Naming veer's own headers in Connection cannot remove them.
    {
        http_client client(v.port());
        auto r = client.get(
            "/named", {{"Connection", "close, X-Forwarded-For"}, {"X-Forwarded-For", "10.0.0.1"}});
        ASSERT_TRUE(r) << client.last_error();
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->get("Connection"), "close");
        EXPECT_TRUE(client.conn().read_until_close(ms(5000)));
    }
    {
        http_client client(v.port());
        auto r = client.get("/named-2", {{"Connection", "X-Request-Id, X-Forwarded-Proto"},
                                         {"X-Request-Id", "client-chosen-id"},
                                         {"X-Forwarded-Proto", "https"}});
        ASSERT_TRUE(r) << client.last_error();
        EXPECT_EQ(r->status, 200);
    }
    // A client's own X-Request-Id is kept, and not doubled.
    {
        http_client client(v.port());
        auto r = client.get("/own-id", {{"X-Request-Id", "abc-123"}});
        ASSERT_TRUE(r) << client.last_error();
    }
    ASSERT_TRUE(up.wait_requests(4, ms(5000)));
    const auto all = up.requests();
    const auto& named = all.at(1);
    EXPECT_EQ(named.count("X-Forwarded-For"), 1) << named.head;
    const auto xff = named.get("X-Forwarded-For");
    EXPECT_TRUE(xff.size() >= 9 && xff.substr(xff.size() - 9) == "127.0.0.1") << named.head;
    EXPECT_FALSE(named.has("Connection")) << named.head;

    const auto& named2 = all.at(2);
    EXPECT_EQ(named2.get("X-Forwarded-Proto"), "http") << named2.head;
    EXPECT_EQ(named2.count("X-Request-Id"), 1)
        << "X-Request-Id named in Connection must not leave the request without one:\n"
        << named2.head;

    const auto& own = all.at(3);
    EXPECT_EQ(own.count("X-Request-Id"), 1) << own.head;
    EXPECT_EQ(own.get("X-Request-Id"), "abc-123") << own.head;
}

// Several X-Forwarded-For fields are one list (RFC 9110 5.3): veer appends the client's
// address to all of it, no hop may be lost.
TEST(DataPath, SeveralXForwardedForFieldsKeepEveryHop) {
    temp_dir dir;
    scripted_upstream up(echo_requests);
    veer_process v(dir, {up.address()}, {dead_address()});
    ASSERT_TRUE(v.start());

    auto r = http_get(v.port(), "/two-xff",
                      {{"X-Forwarded-For", "192.0.2.1"}, {"X-Forwarded-For", "198.51.100.2"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    ASSERT_TRUE(up.wait_requests(1, ms(5000)));
    const auto got = up.requests().at(0);
    EXPECT_EQ(got.count("X-Forwarded-For"), 1) << got.head;
    EXPECT_EQ(got.get("X-Forwarded-For"), "192.0.2.1, 198.51.100.2, 127.0.0.1") << got.head;
}

}  // namespace
}  // namespace veer::it
