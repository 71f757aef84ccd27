// Hot-path costs of measuring and judging (SPEC 9): recording a request into the window
// (< 50 ns), a status' percentiles over a 30 s window (< 50 us), one judge evaluation.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "config/config.hpp"
#include "gating/judge.hpp"
#include "metrics/window.hpp"

namespace {

using namespace std::chrono_literals;
using veer::metrics::pool_window;
using veer::metrics::result;
using veer::metrics::window_stats;

std::vector<std::uint64_t> latencies(std::size_t n, double median_us, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::lognormal_distribution<double> dist(std::log(median_us), 0.7);
    std::vector<std::uint64_t> out(n);
    for (auto& v : out)
        v = static_cast<std::uint64_t>(dist(gen));
    return out;
}

// One request recorded: a thread at 1M requests/s, so a slice switch every ~940k calls.
void bm_pool_window_record(benchmark::State& state) {
    pool_window window(30s, 0);
    const auto lat = latencies(4096, 20'000, 1);
    std::int64_t now = 0;
    std::size_t i = 0;
    for (auto _ : state) {
        const bool failed = (i & 63) == 0;
        window.record(failed ? result::s5xx : result::s2xx, failed, lat[i & 4095], now);
        now += 1000;
        ++i;
    }
    window_stats st;
    window.collect(st, now);
    benchmark::DoNotOptimize(st.requests);
}
BENCHMARK(bm_pool_window_record);

// A full 30 s window (10k requests/s, one slice per ~0.94 s) collected over `shards`
// threads' windows, then p50/p95/p99: what `status` and the judge pay per pool.
void bm_collect_30s_window_percentiles(benchmark::State& state) {
    const auto shards = static_cast<std::size_t>(state.range(0));
    std::vector<std::unique_ptr<pool_window>> windows;
    const auto lat = latencies(1 << 16, 20'000, 2);
    const std::int64_t end = 60'000'000'000;  // 60 s of traffic, the last 30 s in view
    for (std::size_t s = 0; s < shards; ++s) {
        windows.push_back(std::make_unique<pool_window>(30s, 0));
        std::size_t i = s;
        for (std::int64_t t = 0; t < end; t += 100'000 * static_cast<std::int64_t>(shards), ++i)
            windows.back()->record(result::s2xx, (i % 100) == 0, lat[i & 0xffff], t);
    }
    for (auto _ : state) {
        window_stats st;
        for (const auto& w : windows)
            w->collect(st, end);
        benchmark::DoNotOptimize(st.latency.quantile(0.50));
        benchmark::DoNotOptimize(st.latency.quantile(0.95));
        benchmark::DoNotOptimize(st.latency.quantile(0.99));
    }
}
BENCHMARK(bm_collect_30s_window_percentiles)->Arg(1)->Arg(2)->Arg(8)->Unit(benchmark::kMicrosecond);

window_stats simulated(std::size_t n, double error_rate, double median_us, std::uint64_t seed) {
    window_stats w;
    const auto lat = latencies(n, median_us, seed);
    std::mt19937_64 gen(seed + 100);
    std::bernoulli_distribution failed(error_rate);
    for (auto v : lat) {
        const bool f = failed(gen);
        w.requests += 1;
        w.failures += f ? 1 : 0;
        w.latency.add(v);
    }
    w.seconds = 30;
    return w;
}

// One evaluation over a 90/10 split at 1000 requests/s: equal pools (the usual "ok")
// and a regressed canary (the violation path, which also measures its confidence).
void bm_judge(benchmark::State& state) {
    const bool regressed = state.range(0) != 0;
    const window_stats stable = simulated(27'000, 0.01, 20'000, 3);
    const window_stats canary =
        simulated(3'000, regressed ? 0.08 : 0.01, regressed ? 60'000 : 20'000, 4);
    const veer::config::slo policy;
    std::uint64_t k = 1;
    for (auto _ : state) {
        auto v = veer::gating::judge(stable, canary, false, policy, k++);
        benchmark::DoNotOptimize(v.what);
    }
    state.SetLabel(regressed ? "violation" : "ok");
}
BENCHMARK(bm_judge)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
