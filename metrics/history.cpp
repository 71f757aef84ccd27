#include "metrics/history.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>

namespace veer::metrics {

double quantile_since(const histogram& now, const histogram& before, double q) {
    const auto count = now.count() - std::min(before.count(), now.count());
    if (count == 0) return 0.0;
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(
               std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(count))));
    std::uint64_t seen = 0;
    for (std::size_t i = now.first_nonempty();
         i <= now.last_nonempty() && i < histogram::bucket_count; ++i) {
        const auto a = now.bucket_count_at(i), b = before.bucket_count_at(i);
        seen += a > b ? a - b : 0;
        if (seen >= rank) return histogram::bucket_mid_us(i);
    }
    return histogram::bucket_mid_us(std::min(now.last_nonempty(), histogram::bucket_count - 1));
}

void history::sample(std::int64_t unix_s, double canary_weight,
                     const std::vector<window_stats>& totals) {
    if (last_.size() < totals.size()) last_.resize(totals.size());
    second s{unix_s, canary_weight, {}};
    for (std::size_t slot = 0; slot < totals.size(); ++slot) {
        const auto& now = totals[slot];
        const auto& before = last_[slot];
        pool_second p;
        p.requests = now.requests - std::min(before.requests, now.requests);
        p.failures = now.failures - std::min(before.failures, now.failures);
        p.p99_ms = quantile_since(now.latency, before.latency, 0.99) / 1000.0;
        s.pools.push_back(p);
        last_[slot] = now;
    }
    seconds_.push_back(std::move(s));
    while (seconds_.size() > capacity)
        seconds_.pop_front();
}

boost::json::object history::to_json(const std::vector<std::string>& names) const {
    namespace json = boost::json;
    json::array t, weight;
    std::vector<json::array> requests(names.size()), error_rate(names.size()), p99(names.size());
    for (const auto& s : seconds_) {
        t.push_back(s.unix_s);
        weight.push_back(s.canary_weight);
        for (std::size_t slot = 0; slot < names.size(); ++slot) {
            const auto p = slot < s.pools.size() ? s.pools[slot] : pool_second{};
            requests[slot].push_back(p.requests);
            error_rate[slot].push_back(p.requests
                                           ? std::round(1000.0 * static_cast<double>(p.failures) /
                                                        static_cast<double>(p.requests)) /
                                                 1000.0
                                           : 0.0);
            p99[slot].push_back(std::round(p.p99_ms * 1000.0) / 1000.0);
        }
    }
    json::object pools;
    for (std::size_t slot = 0; slot < names.size(); ++slot)
        pools[names[slot]] = json::object{{"requests", std::move(requests[slot])},
                                          {"error_rate", std::move(error_rate[slot])},
                                          {"p99_ms", std::move(p99[slot])}};
    return {{"interval_s", 1},
            {"t", std::move(t)},
            {"canary_weight", std::move(weight)},
            {"pools", std::move(pools)}};
}

}  // namespace veer::metrics
