// The routing snapshot: everything a request's routing decision reads, as immutable plain
// data. The control side builds a new one on every change (weight, health, drain, reload)
// and publishes it; data-path threads read it without a lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace veer::routing {

inline constexpr int buckets = 10000;  // sticky buckets; weights are in basis points

struct endpoint {
    std::uint32_t id = 0;  // stable for the process's life: indexes per-endpoint state
    std::string address;  // "127.0.0.1:9001": as configured, or an address of `name`
    std::string name;  // the DNS name it is an address of ("api.internal:443"), or ""
    std::array<std::uint8_t, 16> ip{};
    bool v6 = false;
    std::uint16_t port = 0;
    bool healthy = true;  // active checks
    bool ejected = false;  // passive: consecutive failed requests
    bool drained = false;  // operator
    bool usable() const { return healthy && !ejected && !drained; }
};

struct pool {
    std::string name;
    std::uint32_t slot = 0;  // stable index for metrics, by name
    config::balance balance = config::balance::p2c;
    std::vector<endpoint> endpoints;
    std::vector<std::uint32_t> usable;  // indexes into endpoints
    // pools.NAME.tls: an asio::ssl::context, opaque here so routing stays free of Asio;
    // null = plain TCP. `tls_name` is the SNI and the name the certificate must match.
    std::shared_ptr<void> tls;
    std::string tls_name;
    bool tls_verify = true;
    int eject_after_failures = 5;  // the pool's health settings
    bool h2 = false;  // protocol = "h2": streams on pooled HTTP/2 connections
};

enum class rule_match : std::uint8_t { equals, prefix, present };
enum class rule_target : std::uint8_t { canary, stable, pool };

struct rule {
    std::string header;  // compared case-insensitively
    rule_match match = rule_match::equals;
    std::string value;
    rule_target target = rule_target::canary;
    int pool = -1;  // for rule_target::pool
};

struct snapshot {
    std::vector<pool> pools;
    int stable = 0;  // pool index
    int canary = 1;  // pool index
    int canary_weight_bp = 0;  // 0..10000
    std::vector<rule> rules;
    std::string sticky_header;
    std::string sticky_cookie;

    // The data path's settings ride along so that a reload changes them atomically too.
    config::timeouts timeouts;
    config::limits limits;
    config::retry retry;
    config::error_kinds errors;
};

// Holds the current snapshot. publish() from the control thread; threads keep their own
// shared_ptr copy and refresh it only when version() moves, so the per-request cost is one
// atomic load.
class publisher {
public:
    void publish(std::shared_ptr<const snapshot> s) {
        std::lock_guard lock(mutex_);
        current_ = std::move(s);
        version_.fetch_add(1, std::memory_order_release);
    }
    std::shared_ptr<const snapshot> current() const {
        std::lock_guard lock(mutex_);
        return current_;
    }
    std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const snapshot> current_;
    std::atomic<std::uint64_t> version_{0};
};

// A thread's view of the publisher: refreshes lazily. The pointer it hands out shares a
// control block private to this thread, so holding it across a request costs an
// uncontended reference count, not a cache line shared by every thread.
class snapshot_cache {
public:
    explicit snapshot_cache(const publisher& p) : publisher_(p) {}
    std::shared_ptr<const snapshot> get() {
        const auto v = publisher_.version();
        if (v != seen_) {
            local_ = std::make_shared<std::shared_ptr<const snapshot>>(publisher_.current());
            seen_ = v;
        }
        return std::shared_ptr<const snapshot>(local_, local_->get());
    }

private:
    const publisher& publisher_;
    std::shared_ptr<std::shared_ptr<const snapshot>> local_;
    std::uint64_t seen_ = ~std::uint64_t{0};
};

// Parses "1.2.3.4:80" / "[::1]:80" into the endpoint's ip, v6 and port. False if the host
// is not an IP literal.
bool parse_ip_endpoint(std::string_view address, endpoint& out);

// DNS syntax only (RFC 1123 labels, plus '_' as Docker service names use it, and one
// trailing dot); nothing is resolved here.
bool is_hostname(std::string_view host);

// An endpoint as configured (SPEC 12): an IP literal, or a DNS name that stands for every
// address it resolves to. The config checker and the runtime both read endpoints with
// this, so what --check-config accepts is what veer can use.
struct endpoint_spec {
    std::string name;  // lower case, no trailing dot; empty for an IP literal
    std::uint16_t port = 0;
    bool is_name() const { return !name.empty(); }
};
std::optional<endpoint_spec> parse_endpoint_spec(std::string_view address);

}  // namespace veer::routing
