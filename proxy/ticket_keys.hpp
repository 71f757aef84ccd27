// Session ticket keys (RFC 8446 4.6.1, RFC 5077), one set for the process and every
// listener context, so a reload does not end resumption. The current key seals new
// tickets; it and the one before open them (a ticket of the older key is renewed). A new
// key comes every `rotation`, made by the first handshake that finds the current one too
// old: no thread or timer of its own, and no lock. The keys sit in a ring of four slots and
// a slot is written only when no handshake can still be reading it (two rotations later).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace veer::proxy {

class ticket_keys {
public:
    static ticket_keys& instance();
    void set_rotation(std::chrono::nanoseconds every) { rotation_ns_.store(every.count()); }
    // SSL_CTX_set_tlsext_ticket_key_evp_cb's callback.
    static int callback(SSL* ssl, unsigned char name[16], unsigned char iv[16],
                        EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt);

private:
    struct key {
        unsigned char name[16];
        unsigned char aes[32];
        unsigned char hmac[32];
        std::int64_t made_ns;
    };
    ticket_keys();
    const key& current(std::int64_t now_ns);
    static bool make(key& k, std::int64_t now_ns);

    key slots_[4];
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> rotating_{false};
    std::atomic<std::int64_t> rotation_ns_{3'600'000'000'000};
};

}  // namespace veer::proxy
