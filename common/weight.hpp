// Canary weights: percentages with up to two decimals (SPEC 12), held exactly as basis
// points (1/100 of a percent) so that a weight never drifts through floating point. People
// and JSON see percent: 0.5, 12.25, 10.
#pragma once

#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace veer {

inline constexpr int full_bp = 10000;  // 100%

// 50 -> "0.5", 1225 -> "12.25", 1000 -> "10".
inline std::string percent_text(int bp) {
    std::string out = bp < 0 ? "-" : "";
    if (bp < 0) bp = -bp;
    out += std::to_string(bp / 100);
    if (const int frac = bp % 100; frac != 0) {
        out += '.';
        out += static_cast<char>('0' + frac / 10);
        if (frac % 10 != 0) out += static_cast<char>('0' + frac % 10);
    }
    return out;
}

// A whole percent stays a JSON integer (what clients of earlier versions read); a
// fraction is a double.
inline boost::json::value percent_json(int bp) {
    if (bp % 100 == 0) return bp / 100;
    return bp / 100.0;
}

// A percent from 0 to 100 with at most two decimals -> basis points; nullopt otherwise.
inline std::optional<int> percent_bp(double percent) {
    if (!std::isfinite(percent) || percent < 0 || percent > 100) return std::nullopt;
    const double bp = std::round(percent * 100);
    if (std::fabs(bp - percent * 100) > 1e-6) return std::nullopt;  // a third decimal
    return static_cast<int>(bp);
}

// A JSON number (integer or double) as a percent -> basis points.
inline std::optional<int> percent_bp(const boost::json::value& v) {
    if (v.is_int64()) return percent_bp(static_cast<double>(v.get_int64()));
    if (v.is_uint64()) return percent_bp(static_cast<double>(v.get_uint64()));
    if (v.is_double()) return percent_bp(v.get_double());
    return std::nullopt;
}

// "7", "0.5", "12.25" -> basis points; nullopt for anything else (signs, exponents, "1.",
// a third decimal, more than 100).
inline std::optional<int> parse_percent(std::string_view text) {
    const auto dot = text.find('.');
    const auto whole = text.substr(0, dot);
    const auto frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
    const auto digits = [](std::string_view s) {
        return !s.empty() && s.size() <= 3 && s.find_first_not_of("0123456789") == s.npos;
    };
    if (!digits(whole) || (dot != std::string_view::npos && (!digits(frac) || frac.size() > 2)))
        return std::nullopt;
    int w = 0;
    std::from_chars(whole.data(), whole.data() + whole.size(), w);
    int f = 0;
    for (std::size_t i = 0; i < 2; ++i)
        f = f * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    const int bp = w * 100 + f;
    if (bp > full_bp) return std::nullopt;
    return bp;
}

}  // namespace veer
