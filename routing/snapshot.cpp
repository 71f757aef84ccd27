#include "routing/snapshot.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

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

}  // namespace veer::routing
