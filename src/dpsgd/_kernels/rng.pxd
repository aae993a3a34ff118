# A small per-thread random number generator usable without the GIL.
#
# xoshiro256** (Blackman & Vigna) seeded through splitmix64 from (seed, stream):
# every thread builds its own state from the run's seed and its thread id, so
# streams are independent and a run with a given seed is reproducible.
from libc.stdint cimport uint64_t, int64_t

cdef extern from *:
    # gcc/clang 128-bit integer, for the multiply in rng_below
    ctypedef unsigned long long u128_t "unsigned __int128"

ctypedef struct rng_t:
    uint64_t s0
    uint64_t s1
    uint64_t s2
    uint64_t s3


cdef inline uint64_t _splitmix64(uint64_t *x) noexcept nogil:
    x[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    cdef uint64_t z = x[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline void rng_seed(rng_t *r, uint64_t seed, uint64_t stream) noexcept nogil:
    cdef uint64_t x = seed ^ (stream * <uint64_t>0xD1B54A32D192ED03ULL)
    r.s0 = _splitmix64(&x)
    r.s1 = _splitmix64(&x)
    r.s2 = _splitmix64(&x)
    r.s3 = _splitmix64(&x)


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t rng_next(rng_t *r) noexcept nogil:
    cdef uint64_t result = _rotl(r.s1 * 5, 7) * 9
    cdef uint64_t t = r.s1 << 17
    r.s2 ^= r.s0
    r.s3 ^= r.s1
    r.s1 ^= r.s2
    r.s0 ^= r.s3
    r.s2 ^= t
    r.s3 = _rotl(r.s3, 45)
    return result


cdef inline double rng_uniform(rng_t *r) noexcept nogil:
    """Uniform double in [0, 1) with 53 random bits."""
    return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0)


cdef inline uint64_t rng_below(rng_t *r, uint64_t n) noexcept nogil:
    """Uniform integer in [0, n), without modulo bias (Lemire's method, 128-bit multiply)."""
    cdef uint64_t x = rng_next(r)
    cdef u128_t m = <u128_t>x * n
    cdef uint64_t low = <uint64_t>m
    cdef uint64_t threshold
    if low < n:
        threshold = (-n) % n
        while low < threshold:
            x = rng_next(r)
            m = <u128_t>x * n
            low = <uint64_t>m
    return <uint64_t>(m >> 64)


cdef inline void rng_shuffle(rng_t *r, int64_t *a, int64_t n) noexcept nogil:
    """Fisher-Yates shuffle of a[0:n] in place."""
    cdef int64_t i, j, tmp
    i = n - 1
    while i > 0:
        j = <int64_t>rng_below(r, <uint64_t>(i + 1))
        tmp = a[i]
        a[i] = a[j]
        a[j] = tmp
        i -= 1
