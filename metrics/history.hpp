// What happened recently, for people (SPEC 12): per pool, per second, the last 15 minutes
// of requests, error rate and p99, with the canary weight, served as GET /history so that
// the status page's chart is full when it opens. Fed once a second from the pools'
// cumulative totals (the difference from the last second), on the control thread.
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "metrics/window.hpp"

namespace veer::metrics {

// The q-quantile of what `now` holds beyond `before` (an earlier copy of the same
// cumulative histogram), by nearest rank as histogram::quantile; 0 when nothing new.
double quantile_since(const histogram& now, const histogram& before, double q);

class history {
public:
    static constexpr std::size_t capacity = 900;  // seconds: 15 minutes

    // One second; `totals` are the pools' cumulative figures by metrics slot.
    void sample(std::int64_t unix_s, double canary_weight, const std::vector<window_stats>& totals);
    std::size_t size() const { return seconds_.size(); }

    // {"interval_s":1,"t":[unix s..],"canary_weight":[..],"pools":{NAME:{"requests":[..],
    //  "error_rate":[..],"p99_ms":[..]}}}; `names` by metrics slot.
    boost::json::object to_json(const std::vector<std::string>& names) const;

private:
    struct pool_second {
        std::uint64_t requests = 0;
        std::uint64_t failures = 0;
        double p99_ms = 0;
    };
    struct second {
        std::int64_t unix_s = 0;
        double canary_weight = 0;
        std::vector<pool_second> pools;  // by metrics slot
    };

    std::deque<second> seconds_;
    std::vector<window_stats> last_;  // the totals a second ago
};

}  // namespace veer::metrics
