#include "proxy/h2_memory.hpp"

#include <nghttp2/nghttp2.h>

#include <cstdlib>
#include <cstring>

namespace veer::proxy {
namespace {

// Each block starts with a header naming its class, so free needs no size (16 bytes keep
// the payload 16-byte aligned, as malloc's is).
struct alignas(16) header {
    std::size_t klass;
};
constexpr std::size_t classes = 7;  // payloads of 64, 128, ... 4096 bytes
constexpr std::size_t unpooled = classes;
// Each class keeps at most 512 KiB of free blocks per thread (3.5 MiB in all), and
// h2_memory_trim frees what no session needed since its last call.
constexpr std::size_t max_free_bytes = 512 * 1024;

struct free_block {
    free_block* next;
};
// Set once the thread's lists are gone (its exit): a late free goes straight to free().
thread_local bool lists_gone = false;

struct free_lists {
    free_block* head[classes] = {};
    std::size_t count[classes] = {};
    std::size_t low_water[classes] = {};  // the fewest free at any moment since the trim
    ~free_lists() {
        lists_gone = true;
        for (auto* b : head)
            while (b) {
                auto* next = b->next;
                std::free(b);
                b = next;
            }
    }
};
thread_local free_lists lists;

constexpr std::size_t payload_of(std::size_t k) { return std::size_t{64} << k; }
constexpr std::size_t max_free(std::size_t k) { return max_free_bytes / payload_of(k); }

std::size_t class_of(std::size_t n) {
    for (std::size_t k = 0; k < classes; ++k)
        if (n <= payload_of(k)) return k;
    return unpooled;
}

void* take(std::size_t n) {
    const auto k = lists_gone ? unpooled : class_of(n);
    void* raw = nullptr;
    if (k != unpooled && lists.head[k]) {
        auto* b = lists.head[k];
        lists.head[k] = b->next;
        if (--lists.count[k] < lists.low_water[k]) lists.low_water[k] = lists.count[k];
        raw = b;
    } else {
        raw = std::malloc(sizeof(header) + (k == unpooled ? n : payload_of(k)));
        if (!raw) return nullptr;
    }
    static_cast<header*>(raw)->klass = k == unpooled ? unpooled + n : k;
    return static_cast<header*>(raw) + 1;
}

std::size_t size_of(void* p) {
    const auto k = (static_cast<header*>(p) - 1)->klass;
    return k < classes ? payload_of(k) : k - unpooled;
}

void give(void* p) {
    if (!p) return;
    auto* raw = static_cast<header*>(p) - 1;
    const auto k = raw->klass;
    if (k >= classes || lists_gone || lists.count[k] >= max_free(k)) {
        std::free(raw);
        return;
    }
    auto* b = reinterpret_cast<free_block*>(raw);
    b->next = lists.head[k];
    lists.head[k] = b;
    ++lists.count[k];
}

void* mem_malloc(std::size_t n, void*) { return take(n); }
void mem_free(void* p, void*) { give(p); }
void* mem_calloc(std::size_t count, std::size_t n, void*) {
    if (n && count > static_cast<std::size_t>(-1) / n) return nullptr;
    void* p = take(count * n);
    if (p) std::memset(p, 0, count * n);
    return p;
}
void* mem_realloc(void* p, std::size_t n, void*) {
    if (!p) return take(n);
    const auto old = size_of(p);
    if (n <= old && class_of(n) == class_of(old)) return p;
    void* q = take(n);
    if (!q) return nullptr;
    std::memcpy(q, p, old < n ? old : n);
    give(p);
    return q;
}

nghttp2_mem mem{nullptr, &mem_malloc, &mem_free, &mem_calloc, &mem_realloc};

}  // namespace

nghttp2_mem* h2_memory() { return &mem; }

std::size_t h2_memory_trim() {
    std::size_t freed = 0;
    for (std::size_t k = 0; k < classes; ++k) {
        for (auto n = lists.low_water[k]; n > 0; --n, ++freed) {
            auto* b = lists.head[k];
            lists.head[k] = b->next;
            --lists.count[k];
            std::free(b);
        }
        lists.low_water[k] = lists.count[k];
    }
    return freed;
}

std::size_t h2_memory_free_blocks() {
    std::size_t n = 0;
    for (auto c : lists.count)
        n += c;
    return n;
}

}  // namespace veer::proxy
