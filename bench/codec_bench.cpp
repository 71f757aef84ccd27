// Request-head validation and rewriting: the codec's share of every proxied request.
#include <benchmark/benchmark.h>

#include <string>

#include "proxy/http/codec.hpp"

namespace {

using namespace veer::proxy::http;

const std::string request =
    "GET /api/v1/items/12345?expand=true HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abcdef0123456789; theme=dark\r\n"
    "X-User-Id: user-123456\r\n\r\n";

const std::string response =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 1234\r\n"
    "Date: Sun, 22 Nov 2026 14:00:00 GMT\r\n"
    "Connection: keep-alive\r\n\r\n";

void BM_parse_request(benchmark::State& state) {
    request_head head;
    for (auto _ : state) {
        auto r = parse_request(request, 64 * 1024, head);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_parse_request);

void BM_parse_and_rewrite_request(benchmark::State& state) {
    request_head head;
    std::string out;
    out.reserve(4096);
    for (auto _ : state) {
        parse_request(request, 64 * 1024, head);
        out.clear();
        write_upstream_request(head, {"127.0.0.1", false, "0123456789abcdef01234567"}, out);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_parse_and_rewrite_request);

void BM_parse_and_rewrite_response(benchmark::State& state) {
    response_head head;
    std::string out;
    out.reserve(4096);
    for (auto _ : state) {
        parse_response(response, 64 * 1024, false, head);
        out.clear();
        write_client_response(head, 1, true, false, out);
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_parse_and_rewrite_response);

void BM_chunk_decode_16k(benchmark::State& state) {
    std::string body;
    for (int i = 0; i < 4; ++i)
        body += "1000\r\n" + std::string(4096, 'x') + "\r\n";
    body += "0\r\n\r\n";
    for (auto _ : state) {
        chunk_decoder d;
        std::size_t at = 0;
        while (at < body.size() && !d.done())
            at += d.feed(std::string_view(body).substr(at)).consumed;
        benchmark::DoNotOptimize(at);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_chunk_decode_16k);

}  // namespace
