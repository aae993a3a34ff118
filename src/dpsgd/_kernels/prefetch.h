/* Software prefetch of a byte range. SGD visits rows in random order, so the
 * first touch of each row is a cache miss; asking for a row a few visits ahead
 * while the current one is processed hides most of that latency.
 *
 * Why asm volatile: GCC treats __builtin_prefetch as free of side effects, so
 * a loop of them over a range whose length it can bound is deleted as dead
 * code at -O1 and above (checked with gcc 12). A volatile asm cannot be. */
#ifndef DPSGD_PREFETCH_H
#define DPSGD_PREFETCH_H
#include <stddef.h>

static inline void dp_prefetch(const void *p) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __asm__ volatile("prefetcht0 (%0)" : : "r"(p));
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__ volatile("prfm pldl1keep, [%0]" : : "r"(p));
#elif defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}

static inline void dp_prefetch_range(const void *start, size_t nbytes) {
    const char *p = (const char *)start;
    const char *end = p + nbytes;
    for (; p < end; p += 64) dp_prefetch(p);
}
#endif
