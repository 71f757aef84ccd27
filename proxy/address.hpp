// routing::endpoint (plain data) to an Asio TCP endpoint, for the modules that connect or
// listen: the data path, health checks, the admin HTTP listener.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

#include "routing/snapshot.hpp"

namespace veer::proxy {

inline boost::asio::ip::tcp::endpoint to_tcp(const routing::endpoint& e) {
    namespace ip = boost::asio::ip;
    if (e.v6) {
        ip::address_v6::bytes_type b;
        std::copy(e.ip.begin(), e.ip.end(), b.begin());
        return {ip::address_v6(b), e.port};
    }
    return {ip::address_v4({e.ip[0], e.ip[1], e.ip[2], e.ip[3]}), e.port};
}

// "127.0.0.1:80" / "[::1]:80" -> endpoint; nullopt if not an IP literal and port.
inline std::optional<boost::asio::ip::tcp::endpoint> parse_tcp(std::string_view address) {
    routing::endpoint e;
    if (!routing::parse_ip_endpoint(address, e)) return std::nullopt;
    return to_tcp(e);
}

// The name an upstream's TLS certificate must match: the pool's sni, else the endpoint's
// host ("10.0.0.1:443", "[::1]:443") without the port or an IPv6 literal's brackets.
inline std::string tls_name(std::string_view sni, std::string_view address) {
    if (!sni.empty()) return std::string(sni);
    auto host = address.substr(0, address.rfind(':'));
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    return std::string(host);
}

}  // namespace veer::proxy
