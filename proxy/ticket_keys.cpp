#include "proxy/ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstring>
#include <stdexcept>

namespace veer::proxy {
namespace {

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int use_mac_key(EVP_MAC_CTX* mac, const unsigned char* hmac) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(hmac),
                                          32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(mac, params);
}

}  // namespace

ticket_keys& ticket_keys::instance() {
    static ticket_keys keys;
    return keys;
}

ticket_keys::ticket_keys() {
    if (!make(slots_[0], now_ns()))
        throw std::runtime_error("TLS: no randomness for a session ticket key");
}

// False (the slot unchanged in use) if OpenSSL has no randomness: the key in use stays.
bool ticket_keys::make(key& k, std::int64_t made_ns) {
    key fresh;
    if (RAND_bytes(fresh.name, sizeof fresh.name) != 1 ||
        RAND_bytes(fresh.aes, sizeof fresh.aes) != 1 ||
        RAND_bytes(fresh.hmac, sizeof fresh.hmac) != 1)
        return false;
    fresh.made_ns = made_ns;
    k = fresh;
    return true;
}

const ticket_keys::key& ticket_keys::current(std::int64_t now) {
    const auto g = generation_.load(std::memory_order_acquire);
    const key& k = slots_[g % 4];
    if (now - k.made_ns < rotation_ns_.load(std::memory_order_relaxed)) return k;
    if (rotating_.exchange(true, std::memory_order_acquire)) return k;  // another thread does
    // Another thread may have rotated between our look and our claim: then its key stands.
    const auto now_g = generation_.load(std::memory_order_acquire);
    if (now_g != g) {
        rotating_.store(false, std::memory_order_release);
        return slots_[now_g % 4];
    }
    const bool made = make(slots_[(g + 1) % 4], now);
    if (made) generation_.store(g + 1, std::memory_order_release);
    rotating_.store(false, std::memory_order_release);
    return slots_[(made ? g + 1 : g) % 4];
}

int ticket_keys::callback(SSL*, unsigned char name[16], unsigned char iv[16],
                          EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
    auto& self = instance();
    if (encrypt) {
        const key& k = self.current(now_ns());
        if (RAND_bytes(iv, 16) != 1) return -1;
        std::memcpy(name, k.name, 16);
        if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
        return use_mac_key(mac, k.hmac) == 1 ? 1 : -1;
    }
    // The current key, or the one before (then the ticket is renewed); else a full handshake.
    const auto g = self.generation_.load(std::memory_order_acquire);
    for (std::uint64_t back = 0; back < 2 && back <= g; ++back) {
        const key& k = self.slots_[(g - back) % 4];
        if (std::memcmp(name, k.name, 16) != 0) continue;
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, k.aes, iv) != 1) return -1;
        if (use_mac_key(mac, k.hmac) != 1) return -1;
        return back == 0 ? 1 : 2;
    }
    return 0;
}

}  // namespace veer::proxy
