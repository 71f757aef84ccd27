// The fleet leader's cost per evaluation (SPEC 11): merging the live instances' windows
// (3, 100, 1,000 instances, two pools each), and reading one instance's report as the
// watch delivers it (every instance, every report). Also prints a report's size.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "cluster/records.hpp"

namespace {

using veer::cluster::report;
using veer::metrics::window_stats;

// A window of `requests` lognormal latencies around 20 ms, as one instance reports it.
window_stats sample_window(std::uint64_t requests, std::uint64_t seed) {
    std::mt19937_64 gen(seed);
    std::lognormal_distribution<double> dist(std::log(20'000.0), 0.7);
    window_stats w;
    for (std::uint64_t i = 0; i < requests; ++i)
        w.latency.add(static_cast<std::uint64_t>(dist(gen)));
    w.requests = requests;
    w.failures = requests / 100;
    w.by_result[1] = requests - w.failures;
    w.by_result[4] = w.failures;
    w.seconds = 30;
    return w;
}

report sample_report(std::uint64_t seed) {
    report r;
    r.time_ms = 1;
    r.pools["blue"] = sample_window(27'000, seed);  // 30 s at 900 rps
    r.pools["green"] = sample_window(3'000, seed + 1);  // and 100 rps at weight 10
    return r;
}

void bm_merge_reports(benchmark::State& state) {
    const auto n = static_cast<std::size_t>(state.range(0));
    std::vector<report> reports;
    for (std::size_t i = 0; i < n; ++i)
        reports.push_back(sample_report(i * 2));
    for (auto _ : state) {
        window_stats stable, canary;
        for (const auto& r : reports) {
            veer::cluster::merge_window(stable, r.pools.at("blue"));
            veer::cluster::merge_window(canary, r.pools.at("green"));
        }
        benchmark::DoNotOptimize(stable.latency.quantile(0.99));
        benchmark::DoNotOptimize(canary.latency.quantile(0.99));
    }
    state.SetLabel(std::to_string(n) + " instances");
}
BENCHMARK(bm_merge_reports)->Arg(3)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

void bm_read_report(benchmark::State& state) {
    const auto text = veer::cluster::to_text(sample_report(7));
    for (auto _ : state)
        benchmark::DoNotOptimize(veer::cluster::report_from_text(text));
    state.SetLabel(std::to_string(text.size()) + " bytes per report");
}
BENCHMARK(bm_read_report)->Unit(benchmark::kMicrosecond);

void bm_write_report(benchmark::State& state) {
    const auto r = sample_report(9);
    for (auto _ : state)
        benchmark::DoNotOptimize(veer::cluster::to_text(r));
}
BENCHMARK(bm_write_report)->Unit(benchmark::kMicrosecond);

}  // namespace
