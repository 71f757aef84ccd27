#include "routing/snapshot.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "common/ascii.hpp"

namespace veer::routing {

bool parse_ip_endpoint(std::string_view address, endpoint& out) {
    std::string_view host, port;
    if (!address.empty() && address.front() == '[') {
        const auto close = address.find(']');
        if (close == std::string_view::npos || close + 1 >= address.size() ||
            address[close + 1] != ':')
            return false;
        host = address.substr(1, close - 1);
        port = address.substr(close + 2);
    } else {
        const auto colon = address.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = address.substr(0, colon);
        port = address.substr(colon + 1);
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) return false;
    const std::string h(host);
    if (inet_pton(AF_INET, h.c_str(), out.ip.data()) == 1) {
        out.v6 = false;
    } else if (inet_pton(AF_INET6, h.c_str(), out.ip.data()) == 1) {
        out.v6 = true;
    } else {
        return false;
    }
    out.port = static_cast<std::uint16_t>(p);
    return true;
}

bool is_hostname(std::string_view host) {
    if (host.ends_with('.')) host.remove_suffix(1);  // "api.internal." is fully qualified
    if (host.empty() || host.size() > 253) return false;
    // All digits and dots is an IPv4 literal that inet_pton already refused.
    if (std::all_of(host.begin(), host.end(), [](char c) { return ascii::is_digit(c) || c == '.'; }))
        return false;
    std::size_t start = 0;
    while (start <= host.size()) {
        const std::size_t dot = std::min(host.find('.', start), host.size());
        const std::string_view label = host.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        const auto label_char = [](char c) { return ascii::is_alnum(c) || c == '-' || c == '_'; };
        if (!std::all_of(label.begin(), label.end(), label_char)) return false;
        start = dot + 1;
    }
    return true;
}

std::optional<endpoint_spec> parse_endpoint_spec(std::string_view address) {
    if (endpoint ip; parse_ip_endpoint(address, ip)) return endpoint_spec{"", ip.port};
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto host = address.substr(0, colon);
    const auto port = address.substr(colon + 1);
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
        p == 0 || p > 65535 || !is_hostname(host))
        return std::nullopt;
    if (host.ends_with('.')) host.remove_suffix(1);
    std::string name(host);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return endpoint_spec{std::move(name), static_cast<std::uint16_t>(p)};
}

}  // namespace veer::routing
