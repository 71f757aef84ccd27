// TLS contexts for the listener (termination) and for pools (upstream TLS), OpenSSL 3
// through Asio. Built on the control thread at start and on reload.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace veer::proxy {

// TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers only, no compression, no renegotiation,
// ALPN h2 (with `http2`) and http/1.1; the certificate chain and key from PEM files. Throws
// std::runtime_error naming the file and OpenSSL's reason (a key that does not match the
// certificate too).
std::shared_ptr<boost::asio::ssl::context> make_server_tls(const config::tls_server& settings,
                                                           bool http2);

// Same protocol floor for upstream connections; verification against `ca` or the system
// store unless verify = false. `key` names the setting in errors ("pools.blue.tls").
// `h2`: ALPN offers h2 alone (a pool with protocol = "h2"), else http/1.1.
std::shared_ptr<boost::asio::ssl::context> make_client_tls(const config::tls_client& settings,
                                                           const std::string& key, bool h2);

}  // namespace veer::proxy
