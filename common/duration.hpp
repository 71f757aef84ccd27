// Durations as people read them, for config errors and event reasons alike.
#pragma once

#include <cstdint>
#include <string>

namespace veer {

// "250ms", "30s", "5m", "1h", "1.5s": the shortest exact spelling, one the config accepts.
inline std::string format_duration_ms(std::int64_t ms) {
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    if (ms < 1000) return std::to_string(ms) + "ms";
    // Seconds with the fraction, trailing zeros dropped: 1500 -> "1.5s".
    std::string fraction = std::to_string(1000 + ms % 1000).substr(1);
    while (fraction.back() == '0')
        fraction.pop_back();
    return std::to_string(ms / 1000) + "." + fraction + "s";
}

}  // namespace veer
