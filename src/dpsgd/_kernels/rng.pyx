"""Python access to the kernels' RNG, so tests and estimators draw the very
same streams the nogil code draws."""
import numpy as np

from libc.stdint cimport int64_t, uint64_t
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_uniform, rng_shuffle


def permutation(int64_t n, uint64_t seed, uint64_t stream=0):
    """Return the permutation of ``range(n)`` that the SGD kernel draws for ``seed``.

    Parameters
    ----------
    n : int
        Length of the permutation (>= 0).
    seed : int
        Seed, 0 <= seed < 2**64.
    stream : int, default=0
        Stream id; different streams of one seed are independent.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.arange(n, dtype=np.int64)
    cdef int64_t[::1] view = out
    cdef rng_t r
    rng_seed(&r, seed, stream)
    if n > 1:
        with nogil:
            rng_shuffle(&r, &view[0], n)
    return out


def uniform(int64_t n, uint64_t seed, uint64_t stream=0):
    """Return ``n`` uniform doubles in [0, 1) from the stream ``(seed, stream)``."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.empty(n, dtype=np.float64)
    cdef double[::1] view = out
    cdef rng_t r
    cdef int64_t i
    rng_seed(&r, seed, stream)
    with nogil:
        for i in range(n):
            view[i] = rng_uniform(&r)
    return out
