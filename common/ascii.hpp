// The few ASCII text helpers HTTP needs (tokens, case-insensitive names, optional
// whitespace), shared by the codec, the routing decision and the config checks.
// Header-only and allocation-free.
#pragma once

#include <array>
#include <string_view>

namespace veer::ascii {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alnum(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

namespace detail {
constexpr std::array<bool, 256> make_tchar() {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[c] = is_alnum(static_cast<char>(c));
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}
inline constexpr auto tchar = make_tchar();
}  // namespace detail

// RFC 9110 5.6.2 tchar: what a method, a field name (or a cookie name) is made of.
inline bool is_tchar(char c) { return detail::tchar[static_cast<unsigned char>(c)]; }
inline bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// Without leading and trailing spaces and tabs (HTTP's OWS).
inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

}  // namespace veer::ascii
