"""Natural compression of float64 vectors (Horvath et al., arXiv 1905.10988), without the GIL.

The operator.  Each finite x with 2^e <= |x| < 2^(e+1) becomes sign(x) * 2^e with probability
(2^(e+1) - |x|) / 2^e and sign(x) * 2^(e+1) otherwise: unbiased, E[C(x)] = x, with
E[(C(x) - x)^2] = (|x| - 2^e)(2^(e+1) - |x|) <= x^2 / 8 (equality at |x| = 4/3 * 2^e), so
E||C(x) - x||^2 <= ||x||^2 / 8 for a vector (the paper's omega = 1/8). Zeros stay zeros,
with their sign.

On the bits.  With |x| = 2^e (1 + m / 2^52), m the 52-bit mantissa field, the probability
of rounding up is m / 2^52: the code keeps x's sign and 11-bit exponent field and adds one to
the exponent when 52 uniform random bits r satisfy r < m, which happens with probability
exactly m / 2^52. No log2, pow or division, and no floating point at all in the loop.

The two ends of the range, decided so that every finite input has a finite, exact rule:

- Subnormals (|x| < 2^-1022, exponent field 0, zeros included): the same bit rule rounds
  them to 0 or to the smallest normal 2^-1022, with probability m / 2^52 = |x| / 2^-1022
  of going up. That is still unbiased; its variance |x| (2^-1022 - |x|) <= 2^-2046 is not
  below x^2 / 8, but it underflows to 0 in float64 arithmetic anyway. A subnormal power of
  two is therefore not reproduced (it is not a sign-and-exponent code).
- The top binade (2^1023 <= |x| <= DBL_MAX): rounding up would give 2^1024 = inf, so it
  saturates: every such x becomes sign(x) * 2^1023, which is biased (down, by less than
  |x| / 2). 2^1023 itself is exact.

The packed format.  One uint16 per value, in native byte order: the top 16 bits of the
rounded double, that is bit 15 the sign, bits 14..4 the IEEE exponent field (0 for a zero,
never 0x7FF) and bits 3..0 zero (the rounded value has no mantissa). 16 bits per value, 2
bytes: a quarter of float64's. Decoding is a shift, ``bits = code << 48``. (Sign and exponent
need only 12 bits; packing two codes into three bytes would save another quarter at the cost
of that shift being a nibble shuffle.)

Randomness.  The values are cut into chunks of ``CHUNK`` values; chunk c draws its bits from
the project's xoshiro256** stream ``(seed, c)`` (rng.pxd), one 64-bit draw per value, of
which the top 52 bits are r. The threads split the chunks, so the codes depend on the seed
and not on the number of threads. Use a fresh seed for every encoding (for example derived
from a rank's seed and a push counter): the same seed on the same values rounds them the same
way, and unbiasedness over pushes needs independent draws. Nor reuse a seed another kernel
draws from: stream (seed, c) is also what thread c of a kernel seeded with it draws.

The ``def`` functions check their input and raise before any code is written (a NaN or an
inf in the values, a malformed code); inside the kernels nothing is allocated and the GIL is
never taken. ``py_encode_bits`` takes the random bits from the caller so that tests can
compare the rounding with a NumPy reference.
"""
import numbers

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport uint16_t, uint32_t, uint64_t

from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_next

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #define DP_NATURAL_CHUNK 4096
    #define DP_NATURAL_MANTISSA ((UINT64_C(1) << 52) - 1)
    #define DP_NATURAL_EXPONENT (UINT64_C(0x7FF) << 52)
    #define DP_NATURAL_EXPONENT_ONE (UINT64_C(1) << 52)
    /* the double whose IEEE bits these are (memcpy: no aliasing undefined behaviour) */
    static inline double dp_natural_double(uint64_t bits) {
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    """
    # values per chunk: one RNG stream each, the unit of work of a thread. Part of what a
    # seed means (the codes of a seed depend on it), so changing it changes every encoding.
    const Py_ssize_t _CHUNK "DP_NATURAL_CHUNK"
    const uint64_t MANTISSA "DP_NATURAL_MANTISSA"
    const uint64_t EXPONENT "DP_NATURAL_EXPONENT"
    const uint64_t EXPONENT_ONE "DP_NATURAL_EXPONENT_ONE"
    double dp_natural_double(uint64_t bits) noexcept nogil

CHUNK = _CHUNK


# ---------------------------------------------------------------- the rounding

cdef inline uint16_t _code(uint64_t bits, uint64_t r) noexcept nogil:
    """The code of the double with these IEEE ``bits`` (finite) for 52 random bits ``r``.

    Sign and exponent field are bits 15..4 of ``bits >> 48``; adding 1 << 4 adds one to
    the exponent (it cannot carry into the sign: a finite exponent field is <= 0x7FE). A
    result of 0x7FF (inf) is taken back to 0x7FE: the top binade saturates.
    """
    cdef uint32_t c = <uint32_t>((bits >> 48) & 0xFFF0)
    c += <uint32_t>(r < (bits & MANTISSA)) << 4
    c -= <uint32_t>((c & 0x7FF0) == 0x7FF0) << 4
    return <uint16_t>c


# Work on one chunk: chunk c covers values [c * CHUNK, min((c + 1) * CHUNK, n)) of src and
# dst; the result is OR-ed over chunks (the checks' flags; 0 for the others). One signature
# lets one driver split any of them over threads.
ctypedef uint64_t (*chunk_fn)(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                              uint64_t seed) noexcept nogil


cdef inline Py_ssize_t _stop(Py_ssize_t c, Py_ssize_t n) noexcept nogil:
    return (c + 1) * _CHUNK if (c + 1) * _CHUNK < n else n


cdef uint64_t _encode_chunk(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                            uint64_t seed) noexcept nogil:
    """Codes of the chunk's values (IEEE bits) from the stream (seed, chunk)."""
    cdef const uint64_t *x = <const uint64_t *>src
    cdef uint16_t *out = <uint16_t *>dst
    cdef Py_ssize_t i
    cdef rng_t rng
    rng_seed(&rng, seed, <uint64_t>chunk)
    for i in range(chunk * _CHUNK, _stop(chunk, n)):
        out[i] = _code(x[i], rng_next(&rng) >> 12)
    return 0


cdef uint64_t _nonfinite_chunk(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                               uint64_t seed) noexcept nogil:
    """1 when the chunk's values (IEEE bits) hold an inf or a NaN.

    A finite exponent field is <= 0x7FE, so (bits & EXPONENT) + 2^52 stays below 2^63 and
    reaches it only for 0x7FF; an OR of those (no branch) vectorises.
    """
    cdef const uint64_t *x = <const uint64_t *>src
    cdef uint64_t acc = 0
    cdef Py_ssize_t i
    for i in range(chunk * _CHUNK, _stop(chunk, n)):
        acc |= (x[i] & EXPONENT) + EXPONENT_ONE
    return acc >> 63


cdef uint64_t _malformed_chunk(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                               uint64_t seed) noexcept nogil:
    """Nonzero when the chunk holds a code with low bits set or an exponent field of 0x7FF
    (which + 0x10 carries into bit 15)."""
    cdef const uint16_t *codes = <const uint16_t *>src
    cdef uint32_t acc = 0, c
    cdef Py_ssize_t i
    for i in range(chunk * _CHUNK, _stop(chunk, n)):
        c = codes[i]
        acc |= (c & 0xF) | ((c & 0x7FF0) + 0x10)
    return acc & 0x800F


cdef uint64_t _decode_chunk(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                            uint64_t seed) noexcept nogil:
    """The chunk's doubles, written as IEEE bits: a code is their top 16 bits."""
    cdef const uint16_t *codes = <const uint16_t *>src
    cdef uint64_t *out = <uint64_t *>dst
    cdef Py_ssize_t i
    for i in range(chunk * _CHUNK, _stop(chunk, n)):
        out[i] = <uint64_t>codes[i] << 48
    return 0


cdef uint64_t _decode_add_chunk(const void *src, void *dst, Py_ssize_t n, Py_ssize_t chunk,
                                uint64_t seed) noexcept nogil:
    cdef const uint16_t *codes = <const uint16_t *>src
    cdef double *out = <double *>dst
    cdef Py_ssize_t i
    for i in range(chunk * _CHUNK, _stop(chunk, n)):
        out[i] += dp_natural_double(<uint64_t>codes[i] << 48)
    return 0


cdef uint64_t _over_chunks(chunk_fn fn, const void *src, void *dst, Py_ssize_t n,
                           uint64_t seed, int n_threads) noexcept nogil:
    """fn on every chunk of n values, on n_threads threads (in the caller's thread when one
    thread or one chunk: no parallel region to start); the OR of its results."""
    cdef Py_ssize_t c, n_chunks = (n + _CHUNK - 1) // _CHUNK
    cdef uint64_t acc = 0
    if n_threads == 1 or n_chunks == 1:
        for c in range(n_chunks):
            acc |= fn(src, dst, n, c, seed)
    else:
        for c in prange(n_chunks, num_threads=n_threads, schedule="static"):
            acc |= fn(src, dst, n, c, seed)
    return acc


# ---------------------------------------------------------------- checks at the boundary

def _check_int(v, name, lo, hi):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if not lo <= v < hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}), got {v}")
    return int(v)


def _check_values(values):
    """``values`` as a C-contiguous float64 vector (whether finite is checked by the caller)."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"values must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"values must be 1-d, got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _raise_nonfinite(arr):
    i = int(np.flatnonzero(~np.isfinite(arr))[0])
    raise ValueError(f"values[{i}] is {arr[i]}: natural compression takes finite values only")


def _check_codes(packed):
    codes = np.asarray(packed)
    if codes.dtype != np.uint16:
        raise TypeError(f"packed must be a uint16 array (encode's output), got dtype {codes.dtype}")
    if codes.ndim != 1:
        raise ValueError(f"packed must be 1-d, got shape {codes.shape}")
    return np.ascontiguousarray(codes)


def _check_out(out, dtype, n, what):
    """Raise unless ``out`` can receive n values of ``dtype`` in place."""
    if not (isinstance(out, np.ndarray) and out.dtype == dtype and out.ndim == 1
            and out.flags.c_contiguous and out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous 1-d {np.dtype(dtype).name} array")
    if out.shape[0] != n:
        raise ValueError(f"out has {out.shape[0]} entries for {n} {what}")


def _raise_malformed(codes):
    bad = ((codes & 0xF) != 0) | ((codes & 0x7FF0) == 0x7FF0)
    i = int(np.flatnonzero(bad)[0])
    raise ValueError(f"packed[{i}] = {int(codes[i]):#06x} is not a natural-compression code "
                     "(low 4 bits must be 0, the exponent field below 0x7FF)")


# ---------------------------------------------------------------- Python entries

def encode_into(values, seed, out, n_threads=1):
    """Natural-compress ``values`` into the codes ``out``.

    Parameters
    ----------
    values : array_like, shape (n,)
        Finite real numbers (converted to float64).
    seed : int
        0 <= seed < 2**64; chunk c of ``CHUNK`` values draws from the stream (seed, c).
    out : ndarray of uint16, shape (n,), C-contiguous
        Receives one code per value (module docstring, "The packed format").
    n_threads : int, default=1
        OpenMP threads (>= 1). The codes do not depend on it.

    Returns
    -------
    out : ndarray of uint16

    Raises
    ------
    ValueError
        On a NaN or an infinite value (``out`` is then left as it was), or on shapes.
    """
    arr = _check_values(values)
    cdef uint64_t s = _check_int(seed, "seed", 0, 1 << 64)
    cdef int threads = _check_int(n_threads, "n_threads", 1, 1 << 16)
    _check_out(out, np.uint16, arr.shape[0], "values")
    cdef Py_ssize_t n = arr.shape[0]
    if n == 0:
        return out
    cdef const uint64_t[::1] x = arr.view(np.uint64)
    cdef uint16_t[::1] o = out
    cdef bint bad
    with nogil:
        bad = _over_chunks(_nonfinite_chunk, &x[0], NULL, n, 0, threads) != 0
    if bad:
        _raise_nonfinite(arr)
    with nogil:
        _over_chunks(_encode_chunk, &x[0], &o[0], n, s, threads)
    return out


def encode(values, seed, n_threads=1):
    """Natural-compress ``values``: one uint16 code per value.

    Parameters
    ----------
    values : array_like, shape (n,)
        Finite real numbers (converted to float64).
    seed : int
        0 <= seed < 2**64; use a fresh one per encoding.
    n_threads : int, default=1
        OpenMP threads (>= 1). The codes do not depend on it.

    Returns
    -------
    ndarray of uint16, shape (n,)
        ``decode`` gives each value rounded to a power of two (or 0), unbiased; 2 bytes a
        value (module docstring).
    """
    arr = _check_values(values)
    return encode_into(arr, seed, np.empty(arr.shape[0], dtype=np.uint16), n_threads)


cdef _decode_into(codes, double[::1] out, chunk_fn fn, n_threads):
    """Check the (checked-shape) codes, then run decode's or decode_add's chunks into out."""
    cdef int threads = _check_int(n_threads, "n_threads", 1, 1 << 16)
    cdef Py_ssize_t n = codes.shape[0]
    if n == 0:
        return
    cdef const uint16_t[::1] c = codes
    cdef bint bad
    with nogil:
        bad = _over_chunks(_malformed_chunk, &c[0], NULL, n, 0, threads) != 0
    if bad:
        _raise_malformed(codes)
    with nogil:
        _over_chunks(fn, &c[0], &out[0], n, 0, threads)


def decode(packed, n_threads=1):
    """The float64 values of natural-compression codes.

    Parameters
    ----------
    packed : ndarray of uint16, shape (n,)
        Codes from ``encode``.
    n_threads : int, default=1
        OpenMP threads (>= 1).

    Returns
    -------
    ndarray of float64, shape (n,)
        Signed powers of two and signed zeros, exactly.

    Raises
    ------
    ValueError
        On a code ``encode`` never writes (low 4 bits set, exponent field 0x7FF).
    """
    codes = _check_codes(packed)
    out = np.empty(codes.shape[0], dtype=np.float64)
    _decode_into(codes, out, _decode_chunk, n_threads)
    return out


def decode_add(packed, out, n_threads=1):
    """``out += decode(packed)`` in place, without a temporary: how a receiver applies a push.

    Parameters
    ----------
    packed : ndarray of uint16, shape (n,)
        Codes from ``encode``.
    out : ndarray of float64, shape (n,), C-contiguous, writeable
    n_threads : int, default=1
        OpenMP threads (>= 1).

    Returns
    -------
    out : ndarray of float64

    Raises
    ------
    ValueError
        On a malformed code (``out`` is then left as it was), or on shapes.
    """
    codes = _check_codes(packed)
    _check_out(out, np.float64, codes.shape[0], "codes")
    _decode_into(codes, out, _decode_add_chunk, n_threads)
    return out


def py_encode_bits(values, random_bits):
    """The codes of ``values`` for the caller's random bits (one per value, each < 2**52):
    value i rounds up when random_bits[i] < its mantissa field. For tests."""
    arr = _check_values(values)
    if not np.all(np.isfinite(arr)):
        _raise_nonfinite(arr)
    r = np.ascontiguousarray(random_bits, dtype=np.uint64)
    if r.shape != arr.shape or (r.size and r.max() >= (1 << 52)):
        raise ValueError("random_bits must hold one value below 2**52 per value")
    out = np.empty(arr.shape[0], dtype=np.uint16)
    cdef const uint64_t[::1] x = arr.view(np.uint64)
    cdef const uint64_t[::1] rb = r
    cdef uint16_t[::1] o = out
    cdef Py_ssize_t i
    for i in range(arr.shape[0]):
        o[i] = _code(x[i], rb[i])
    return out
