#include "gating/event.hpp"

#include <cstdio>

#include <boost/json.hpp>

namespace veer::gating {
namespace {

constexpr std::int64_t ms_per_day = 86'400'000;

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's days_from_civil).
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct civil {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

// The inverse of days_from_civil.
constexpr civil civil_from_days(std::int64_t z) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}

constexpr bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

constexpr unsigned days_in_month(std::int64_t y, unsigned m) {
    constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

// Reads exactly `n` digits at `pos`, advancing it.
bool read_digits(std::string_view s, std::size_t& pos, std::size_t n, unsigned& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<unsigned>(c - '0');
    }
    pos += n;
    return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
    if (pos >= s.size() || s[pos] != c) return false;
    ++pos;
    return true;
}

}  // namespace

std::string format_rfc3339_ms(std::int64_t unix_ms) {
    // Floor division so times before 1970 still format (they never should occur).
    std::int64_t days = unix_ms / ms_per_day;
    std::int64_t in_day = unix_ms % ms_per_day;
    if (in_day < 0) {
        in_day += ms_per_day;
        --days;
    }
    const civil date = civil_from_days(days);
    const auto ms = static_cast<unsigned>(in_day % 1000);
    const auto secs = static_cast<unsigned>(in_day / 1000);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
                  static_cast<long long>(date.year), date.month, date.day, secs / 3600,
                  secs / 60 % 60, secs % 60, ms);
    return buf;
}

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view s) {
    std::size_t pos = 0;
    unsigned year, month, day, hour, minute, second;
    if (!read_digits(s, pos, 4, year) || !expect(s, pos, '-') || !read_digits(s, pos, 2, month) ||
        !expect(s, pos, '-') || !read_digits(s, pos, 2, day))
        return std::nullopt;
    if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
    ++pos;
    if (!read_digits(s, pos, 2, hour) || !expect(s, pos, ':') || !read_digits(s, pos, 2, minute) ||
        !expect(s, pos, ':') || !read_digits(s, pos, 2, second))
        return std::nullopt;
    if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
        minute > 59 || second > 60)  // 60: a leap second, folded into the next minute
        return std::nullopt;

    unsigned ms = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (digits < 3) ms = ms * 10 + static_cast<unsigned>(s[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) return std::nullopt;
        for (std::size_t i = digits; i < 3; ++i)
            ms *= 10;
    }

    std::int64_t offset_min = 0;
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const bool negative = s[pos] == '-';
        ++pos;
        unsigned oh, om;
        if (!read_digits(s, pos, 2, oh) || !expect(s, pos, ':') || !read_digits(s, pos, 2, om) ||
            oh > 23 || om > 59)
            return std::nullopt;
        offset_min = (negative ? -1 : 1) * static_cast<std::int64_t>(oh * 60 + om);
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;

    const std::int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 +
                              minute * 60 + second - offset_min * 60;
    return secs * 1000 + ms;
}

boost::json::object to_json(const event& e) {
    boost::json::object out;
    out["time"] = format_rfc3339_ms(e.time_ms);
    out["kind"] = e.kind;
    out["by"] = e.by;
    out["reason"] = e.reason;
    out["figures"] = e.figures;
    return out;
}

std::optional<event> event_from_json(const boost::json::value& v) {
    const auto* obj = v.if_object();
    if (!obj) return std::nullopt;

    const auto* time = obj->if_contains("time");
    const auto* kind = obj->if_contains("kind");
    const auto* by = obj->if_contains("by");
    if (!time || !time->is_string() || !kind || !kind->is_string() || kind->as_string().empty() ||
        !by || !by->is_string())
        return std::nullopt;
    const auto time_ms = parse_rfc3339_ms(time->as_string());
    if (!time_ms) return std::nullopt;

    event e;
    e.time_ms = *time_ms;
    e.kind = kind->as_string();
    e.by = by->as_string();
    if (const auto* reason = obj->if_contains("reason")) {
        if (!reason->is_string()) return std::nullopt;
        e.reason = reason->as_string();
    }
    if (const auto* figures = obj->if_contains("figures")) {
        if (figures->is_object())
            e.figures = figures->as_object();
        else if (!figures->is_null())
            return std::nullopt;
    }
    return e;
}

}  // namespace veer::gating
