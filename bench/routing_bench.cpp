// The routing decision on the hot path: rules, sticky hash, weight, endpoint choice.
#include <benchmark/benchmark.h>

#include <array>
#include <string>

#include "routing/router.hpp"

namespace {

using namespace veer::routing;

struct field {
    std::string_view name, value;
};

snapshot make_snapshot(bool sticky) {
    snapshot s;
    for (int p = 0; p < 2; ++p) {
        pool pl;
        pl.name = p ? "green" : "blue";
        pl.slot = static_cast<std::uint32_t>(p);
        for (std::uint32_t e = 0; e < 3; ++e) {
            endpoint ep;
            ep.id = static_cast<std::uint32_t>(p * 3 + e);
            ep.address = "127.0.0.1:" + std::to_string(9000 + ep.id);
            pl.usable.push_back(e);
            pl.endpoints.push_back(ep);
        }
        s.pools.push_back(pl);
    }
    s.stable = 0;
    s.canary = 1;
    s.canary_weight_bp = 1000;
    rule r;
    r.header = "X-Canary";
    r.value = "always";
    s.rules.push_back(r);
    if (sticky) s.sticky_header = "X-User-Id";
    return s;
}

// A typical request head's fields, as the codec hands them over.
const std::array<field, 6> fields{{{"Host", "example.com"},
                                   {"User-Agent", "curl/7.88.1"},
                                   {"Accept", "*/*"},
                                   {"X-User-Id", "user-123456"},
                                   {"Cookie", "a=1; session=abcdef"},
                                   {"Accept-Encoding", "gzip"}}};

// Arg 0: by weight; arg 1: by the sticky header's hash.
void BM_route(benchmark::State& state) {
    const auto s = make_snapshot(state.range(0) == 1);
    fast_random rng(42);
    std::array<std::uint32_t, 8> outstanding{};
    std::uint32_t rr = 0;
    for (auto _ : state) {
        const int p = choose_pool(s, fields, rng.below(buckets));
        const int e = pick_endpoint(s.pools[p], outstanding.data(), rng, rr);
        benchmark::DoNotOptimize(e);
    }
    state.SetLabel(state.range(0) == 1 ? "sticky" : "weighted");
}
BENCHMARK(BM_route)->Arg(0)->Arg(1);

void BM_sticky_bucket(benchmark::State& state) {
    for (auto _ : state)
        benchmark::DoNotOptimize(sticky_bucket("user-123456"));
}
BENCHMARK(BM_sticky_bucket);

}  // namespace
