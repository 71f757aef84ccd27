// The routing decision: which pool serves a request, and which endpoint within it.
// Pure functions over a snapshot and the request's fields; no allocation, no lock.
#pragma once

#include <cstdint>
#include <string_view>

#include "routing/snapshot.hpp"

namespace veer::routing {

// A fast per-thread random source (wyrand). Not for cryptography.
class fast_random {
public:
    explicit fast_random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        state_ += 0xa0761d6478bd642fULL;
        const __uint128_t m = static_cast<__uint128_t>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
        return static_cast<std::uint64_t>(m >> 64) ^ static_cast<std::uint64_t>(m);
    }
    // Uniform in [0, n), n > 0 (Lemire's multiply-shift; the bias is far below 1e-9).
    std::uint32_t below(std::uint32_t n) {
        return static_cast<std::uint32_t>(
            (static_cast<std::uint64_t>(static_cast<std::uint32_t>(next())) * n) >> 32);
    }

private:
    std::uint64_t state_;
};

// The sticky bucket of a key, 0..9999: the same on every thread, process and restart.
std::uint32_t sticky_bucket(std::string_view key);

// The value of cookie `name` in a Cookie header value, or empty.
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

// Whether rule `r` matches a field value (`present`: the field exists).
bool rule_matches(const rule& r, std::string_view value, bool present);

// The pool of `s` that serves when `wanted` is chosen: itself if it has a usable
// endpoint, else the stable pool, else the canary; -1 when no pool can serve.
int serving_pool(const snapshot& s, int wanted);

// Chooses the pool for a request: rules first, then the sticky key, then the weight
// (`random_bp` uniform in 0..9999). `Fields` is a range of {name, value} string views.
template <class Fields>
int choose_pool(const snapshot& s, const Fields& fields, std::uint32_t random_bp);

// Chooses an endpoint index of pool `p` among its usable ones, skipping `exclude_id`
// when another is usable. `outstanding` is indexed by endpoint id (this thread's counts).
// Returns -1 if the pool has no usable endpoint.
int pick_endpoint(const pool& p, const std::uint32_t* outstanding, fast_random& rng,
                  std::uint32_t& round_robin, std::uint32_t exclude_id = ~0u);

bool header_name_equals(std::string_view a, std::string_view b);

template <class Fields>
int choose_pool(const snapshot& s, const Fields& fields, std::uint32_t random_bp) {
    for (const auto& r : s.rules) {
        bool present = false;
        bool matched = false;
        for (const auto& f : fields) {
            if (!header_name_equals(f.name, r.header)) continue;
            present = true;
            if (rule_matches(r, f.value, true)) {
                matched = true;
                break;
            }
        }
        if (matched || (r.match == rule_match::present && present)) {
            const int wanted = r.target == rule_target::canary   ? s.canary
                               : r.target == rule_target::stable ? s.stable
                                                                 : r.pool;
            return serving_pool(s, wanted);
        }
    }
    std::uint32_t bucket = random_bp;
    if (!s.sticky_header.empty() || !s.sticky_cookie.empty()) {
        for (const auto& f : fields) {
            std::string_view key;
            if (!s.sticky_header.empty()) {
                if (header_name_equals(f.name, s.sticky_header)) key = f.value;
            } else if (header_name_equals(f.name, "cookie")) {
                key = cookie_value(f.value, s.sticky_cookie);
            }
            if (!key.empty()) {
                bucket = sticky_bucket(key);
                break;
            }
        }
    }
    const int wanted = static_cast<int>(bucket) < s.canary_weight_bp ? s.canary : s.stable;
    return serving_pool(s, wanted);
}

}  // namespace veer::routing
