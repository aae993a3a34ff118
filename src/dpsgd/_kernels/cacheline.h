/* A block of memory whose cache lines no other object shares.
 *
 * What every thread of a parallel region reads on every step (the stop flag, the
 * struct of shared pointers) must not sit in a cache line that some thread writes:
 * each write would invalidate the line in every other core, and each read would miss.
 * On the caller's stack it can: the main thread is also worker 0, and its worker
 * frame lies just below, so whether its spilled locals share a line with the flag
 * depends on the stack depth at the call, i.e. on how Python reached the kernel.
 * dp_private_lines() returns a 64-byte-aligned pointer into a buffer of at least
 * DP_PRIVATE_BYTES(n) bytes, with n usable bytes and whole lines of padding after. */
#ifndef DPSGD_CACHELINE_H
#define DPSGD_CACHELINE_H
#include <stddef.h>
#include <stdint.h>

#define DP_CACHE_LINE 64
/* room for the alignment, n bytes rounded up to whole lines, and one line after */
#define DP_PRIVATE_BYTES(n) ((size_t)(n) + 3 * DP_CACHE_LINE)

static inline void *dp_private_lines(void *buffer) {
    return (void *)(((uintptr_t)buffer + DP_CACHE_LINE - 1) & ~(uintptr_t)(DP_CACHE_LINE - 1));
}
#endif
