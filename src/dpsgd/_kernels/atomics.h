/* Relaxed atomic access to shared parameter buffers.
 *
 * Hogwild! lets threads read and write the same weights without locks. Done
 * with plain loads and stores that is a data race, i.e. undefined behaviour in
 * C, and ThreadSanitizer rightly reports it. Relaxed atomics give the same
 * machine code on x86-64 and AArch64 (plain moves, no fences) while making the
 * races defined: a reader sees some value that was written, never a torn one.
 *
 * dp_load / dp_store: one relaxed load or store (lost updates allowed: that is
 *     Hogwild!'s contract for sparse coordinates).
 * dp_add: relaxed compare-and-swap add, for the few places where a lost
 *     update is not acceptable (merging a thread's buffered deltas).
 * dp_fetch_add_i64 / dp_load_i64: counters (work queues, step counts), with
 *     acquire/release ordering so that what a counter announces is visible.
 * dp_exchange_i64 (acquire) / dp_store_i64 (release): a spinlock's take and give,
 *     and stamps that publish what was written before them.
 * dp_cpu_relax: the pause of a spin-wait's poll.
 */
#ifndef DPSGD_ATOMICS_H
#define DPSGD_ATOMICS_H

#if defined(__GNUC__) || defined(__clang__)

static inline double dp_load(const double *p) {
    double v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}
static inline void dp_store(double *p, double v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }
static inline float dp_loadf(const float *p) {
    float v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}
static inline void dp_storef(float *p, float v) { __atomic_store(p, &v, __ATOMIC_RELAXED); }
static inline void dp_add(double *p, double v) {
    double old, upd;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do {
        upd = old + v;
    } while (!__atomic_compare_exchange(p, &old, &upd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}
static inline int dp_load_int(const int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void dp_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline long long dp_load_i64(const long long *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline long long dp_fetch_add_i64(long long *p, long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL);
}
static inline long long dp_exchange_i64(long long *p, long long v) {
    return __atomic_exchange_n(p, v, __ATOMIC_ACQUIRE);
}
static inline void dp_store_i64(long long *p, long long v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

#else /* other compilers: plain accesses (races are then benign in practice only) */

static inline double dp_load(const double *p) { return *(const volatile double *)p; }
static inline void dp_store(double *p, double v) { *(volatile double *)p = v; }
static inline float dp_loadf(const float *p) { return *(const volatile float *)p; }
static inline void dp_storef(float *p, float v) { *(volatile float *)p = v; }
static inline void dp_add(double *p, double v) { *(volatile double *)p += v; }
static inline int dp_load_int(const int *p) { return *(const volatile int *)p; }
static inline void dp_store_int(int *p, int v) { *(volatile int *)p = v; }
static inline long long dp_load_i64(const long long *p) { return *(const volatile long long *)p; }
static inline long long dp_fetch_add_i64(long long *p, long long v) {
    long long old = *(volatile long long *)p;
    *(volatile long long *)p = old + v;
    return old;
}
static inline long long dp_exchange_i64(long long *p, long long v) {
    long long old = *(volatile long long *)p;
    *(volatile long long *)p = v;
    return old;
}
static inline void dp_store_i64(long long *p, long long v) { *(volatile long long *)p = v; }

#endif

/* One poll of a spin-wait: tells the core (and a hyperthread sibling) that this thread
 * waits, so that it neither floods the memory system with loads nor starves the sibling. */
static inline void dp_cpu_relax(void) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif (defined(__GNUC__) || defined(__clang__)) && defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}
#endif
