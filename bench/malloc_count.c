// LD_PRELOAD shim that counts heap allocations, for bench/allocs_per_request: the count
// is written to stderr on SIGUSR2. Not part of veer.
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_ulong allocations;

void* malloc(size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_malloc(n);
}
void* calloc(size_t a, size_t b) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}
void* realloc(void* p, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}
int posix_memalign(void** out, size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    *out = __libc_memalign(align, n);
    return *out ? 0 : 12;
}
void* aligned_alloc(size_t align, size_t n) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    return __libc_memalign(align, n);
}

static void report(int sig) {
    (void)sig;
    char buf[64];
    int len = snprintf(buf, sizeof buf, "allocations %lu\n", atomic_load(&allocations));
    write(2, buf, (size_t)len);
}

__attribute__((constructor)) static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = report;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}
