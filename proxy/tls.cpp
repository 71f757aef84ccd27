#include "proxy/tls.hpp"

#include "proxy/ticket_keys.hpp"

#include <boost/asio/ssl/context.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace veer::proxy {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: forward secrecy (ECDHE) and authenticated encryption (GCM, ChaCha20)
// only. TLS 1.3's suites are all AEAD already.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_reason() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

void harden(SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(
        ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // OpenSSL's record buffers (about 34 KiB a connection) are freed while empty, as nginx
    // has them: an idle keep-alive TLS connection holds none.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1)
        throw std::runtime_error("TLS: cipher list: " + openssl_reason());
}

// The protocols the listener offers, in its order of preference (ALPN wire format).
constexpr unsigned char h2_http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char http11_only[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned inlen, void* http2) {
    const unsigned char* ours = http2 ? h2_http11 : http11_only;
    const unsigned ours_len = http2 ? sizeof h2_http11 : sizeof http11_only;
    unsigned char* selected = nullptr;
    // The server's preference wins (SSL_select_next_proto walks `ours` first).
    if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;  // nothing in common: no ALPN, not a failure
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_tls(const config::tls_server& settings, bool http2) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    harden(native);
    if (SSL_CTX_use_certificate_chain_file(native, settings.cert.c_str()) != 1)
        throw std::runtime_error("listener.tls.cert: " + settings.cert + ": " + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(native, settings.key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("listener.tls.key: " + settings.key + ": " + openssl_reason());
    if (SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error("listener.tls.key: " + settings.key + " does not match " +
                                 settings.cert);
    // Resumption by stateless tickets only (TLS 1.2 and 1.3): no server-side cache to hold
    // sessions in memory, nor to share between threads. Their keys rotate (ticket_keys.hpp).
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    ticket_keys::instance().set_rotation(settings.ticket_key_rotation);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(native, &ticket_keys::callback);
    // The flag rides in the callback's argument: no state to keep per context.
    SSL_CTX_set_alpn_select_cb(native, select_alpn, http2 ? native : nullptr);
    return ctx;
}

std::shared_ptr<ssl::context> make_client_tls(const config::tls_client& settings,
                                              const std::string& key, bool h2) {
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    harden(native);
    if (settings.verify) {
        if (!settings.ca.empty()) {
            if (SSL_CTX_load_verify_locations(native, settings.ca.c_str(), nullptr) != 1)
                throw std::runtime_error(key + ".ca: cannot load " + settings.ca + ": " +
                                         openssl_reason());
        } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
            throw std::runtime_error(key + ": system CA store: " + openssl_reason());
        }
        SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    }
    static constexpr unsigned char h2_only[] = {2, 'h', '2'};
    if (h2)
        SSL_CTX_set_alpn_protos(native, h2_only, sizeof h2_only);
    else
        SSL_CTX_set_alpn_protos(native, http11_only, sizeof http11_only);
    return ctx;
}

}  // namespace veer::proxy
