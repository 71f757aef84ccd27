// Active health: the pure part. An endpoint flips to unhealthy after `unhealthy_after`
// consecutive failed checks and back after `healthy_after` consecutive passes.
#pragma once

namespace veer::health {

struct check_state {
    bool healthy = true;  // endpoints count as healthy from the start
    int passes = 0;
    int fails = 0;
};

// Records one check; true when the endpoint's health flipped.
inline bool observe(check_state& s, bool passed, int healthy_after, int unhealthy_after) {
    if (passed) {
        s.fails = 0;
        if (++s.passes >= healthy_after && !s.healthy) {
            s.healthy = true;
            return true;
        }
    } else {
        s.passes = 0;
        if (++s.fails >= unhealthy_after && s.healthy) {
            s.healthy = false;
            return true;
        }
    }
    return false;
}

}  // namespace veer::health
