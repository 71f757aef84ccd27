#include "routing/router.hpp"

#include "common/ascii.hpp"

namespace veer::routing {
using ascii::trim;

bool header_name_equals(std::string_view a, std::string_view b) { return ascii::iequals(a, b); }

std::uint32_t sticky_bucket(std::string_view key) {
    // FNV-1a, then a splitmix64 finalizer so that similar keys spread over all buckets.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : key) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return static_cast<std::uint32_t>(h % buckets);
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
    std::size_t pos = 0;
    while (pos < header.size()) {
        std::size_t semi = header.find(';', pos);
        if (semi == std::string_view::npos) semi = header.size();
        const auto pair = trim(header.substr(pos, semi - pos));
        pos = semi + 1;
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) continue;
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        return value;
    }
    return {};
}

bool rule_matches(const rule& r, std::string_view value, bool present) {
    if (!present) return false;
    switch (r.match) {
        case rule_match::equals: return value == r.value;
        case rule_match::prefix: return value.substr(0, r.value.size()) == r.value;
        case rule_match::present: return true;
    }
    return false;
}

int serving_pool(const snapshot& s, int wanted) {
    if (wanted >= 0 && wanted < static_cast<int>(s.pools.size()) && !s.pools[wanted].usable.empty())
        return wanted;
    if (!s.pools[s.stable].usable.empty()) return s.stable;
    if (!s.pools[s.canary].usable.empty()) return s.canary;
    return -1;
}

int pick_endpoint(const pool& p, const std::uint32_t* outstanding, fast_random& rng,
                  std::uint32_t& round_robin, std::uint32_t exclude_id) {
    const auto n = static_cast<std::uint32_t>(p.usable.size());
    if (n == 0) return -1;
    if (n == 1) return static_cast<int>(p.usable[0]);
    auto excluded = [&](std::uint32_t i) { return p.endpoints[i].id == exclude_id; };
    if (p.balance == config::balance::round_robin) {
        std::uint32_t i = p.usable[round_robin++ % n];
        if (excluded(i)) i = p.usable[round_robin++ % n];
        return static_cast<int>(i);
    }
    // Power of two choices: two distinct random endpoints, the one with fewer requests
    // outstanding on this thread wins.
    const std::uint32_t a = rng.below(n);
    std::uint32_t b = rng.below(n - 1);
    if (b >= a) ++b;
    std::uint32_t ia = p.usable[a], ib = p.usable[b];
    if (excluded(ia)) return static_cast<int>(ib);
    if (excluded(ib)) return static_cast<int>(ia);
    return static_cast<int>(outstanding[p.endpoints[ib].id] < outstanding[p.endpoints[ia].id] ? ib
                                                                                              : ia);
}

}  // namespace veer::routing
