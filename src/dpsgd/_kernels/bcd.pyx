"""Asynchronous proximal block-coordinate descent (Async-BCD) in shared memory, without the GIL.

Wu, Magnusson, Feyzmahdavian and Johansson (ICML 2022, "Delay-adaptive step-sizes for
asynchronous learning") analyse Async-BCD on ``min_w P(w) = f(w) + R(w)``: workers repeatedly
read the shared iterate inconsistently, pick a block B of coordinates, and write
``w_B <- prox_{step R_B}(w_B - step * grad_B f(w_read))``; the delay of an update is the
number of updates that other workers wrote between its read and its write. This module is
that loop for ``f = C * sum_i loss(y_i, x_i . w + b)`` (prox.pxd's ``SmoothLoss``) and any
separable ``R`` of prox.pxd (``Penalty``), run by OpenMP threads on one shared ``w``.

What is shared.  The partial gradient ``grad_B f = C * X_B^T loss'(m)`` needs the margins
``m = X w + b``, not w itself, so the threads share the margins (one per row) and keep them
current: an update adds ``X_B (w_B_new - w_B_old)`` into them with relaxed atomic adds
(``dp_add``: concurrent updates of other blocks touch the same rows, and a lost add would
leave the margins wrong for ever) and publishes ``w_B`` with ``dp_store``. A thread reads the
margins with relaxed loads while others add into them: the inconsistent read of the paper.
X comes as CSC (``data``, ``indices`` = row indices, ``indptr`` of n_features + 1 entries) so
that a block, a contiguous column range (``block_bounds``), is a contiguous slice.

One owner per block.  Two threads updating the same block at once would each add their own
``new - old`` into the margins, and the margins would stop being ``X w + b``. A block is
therefore owned by one thread at a time, through a try-lock made of a fetch-add (the thread
that moves the block's flag from 0 owns it; the others undo their add and draw another
block). With one thread every first draw succeeds, so the block sequence is the thread's
random stream; with more threads than blocks the extra threads could only spin, so the
kernel runs on at most ``n_blocks`` threads.

Delays.  A shared counter of completed updates (atomic fetch-add, acquire/release) stamps
every update: a thread loads it before it reads the margins (``read``) and increments it
after its writes (``k``, the update's stamp, 0-based). ``k - read`` updates of other threads
completed in between, which is the paper's delay; every update with a stamp below ``read``
is wholly in what the thread read. With one thread every delay is 0. The stamps number the
updates 0 .. n_updates - 1; the caller's ``delays`` and ``blocks`` arrays receive, at index
k, the delay and the block of update k (up to their lengths), for the delay-adaptive step
policies (issue 11, item 4) and for tests that replay the block sequence serially.

Step sizes.  The caller gives one step per block; ``h / L_B`` with ``L_B``, the Lipschitz
constant of ``grad_B f`` along block B, from ``block_lipschitz``: ``C ||X_B||_2^2 / 4``
(logistic) or ``C ||X_B||_2^2`` (squared), with the spectral norm computed exactly from the
block's Gram matrix (blocks up to ``MAX_EXACT_WIDTH`` columns) or bounded by the Frobenius
norm (wider blocks: never smaller than the spectral norm, so the step stays safe).

The intercept.  ``b`` is held fixed (it enters the margins, it is not updated): this kernel
solves the problem without an intercept, i.e. scikit-learn's ``fit_intercept=False`` when
b = 0. An intercept as a block of its own is left to the estimator (issue 11, item 5).

The ``def`` entries check every input and raise ``ValueError`` before the kernel runs; inside
the parallel region nothing is allocated and the GIL is never taken.
"""
import numpy as np

from cython.parallel cimport parallel, threadid
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint64_t

from dpsgd._kernels.atomics cimport dp_load, dp_store, dp_add, dp_load_i64, dp_fetch_add_i64
from dpsgd._kernels.prox cimport index_t, Penalty, loss_derivative, prox_step, LOSS_LOGISTIC
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_below
from dpsgd._kernels import prox

cdef extern from "omp_shim.h" nogil:
    int omp_get_num_threads()

cdef extern from "cacheline.h" nogil:
    size_t DP_PRIVATE_BYTES(size_t n)
    void *dp_private_lines(void *buffer)

# Blocks up to this many columns get their exact spectral norm (a dense Gram matrix of
# width^2 values); wider ones the Frobenius bound.
MAX_EXACT_WIDTH = 2048
# long longs per cache line: each block's ownership flag and each counter gets a line of its
# own, so that taking one block does not invalidate the line another thread polls
cdef enum:
    LINE = 8


ctypedef struct Shared:
    double *w                   # (n_features,) the shared coefficients
    double *margins             # (n_rows,) the shared X w + b
    const double *y
    const int64_t *bounds       # (n_blocks + 1,) block k is columns bounds[k] .. bounds[k + 1]
    const double *steps         # (n_blocks,)
    long long *busy             # (n_blocks * LINE,) block k's ownership flag at k * LINE
    long long *claimed          # updates claimed so far (the stop rule)
    long long *written          # updates completed so far (the stamps)
    int64_t *delays             # (n_delays,) or NULL
    int64_t *blocks_out         # (n_blocks_out,) or NULL
    double *scratch             # per thread: old, new and g, each max_width long
    Penalty pen
    double C
    int64_t n_blocks
    int64_t n_updates
    int64_t n_delays
    int64_t n_blocks_out
    int64_t stride              # scratch doubles per thread
    int64_t max_width
    uint64_t seed
    int loss


cdef inline int64_t _own_block(Shared *sh, rng_t *rng) noexcept nogil:
    """Draw blocks from the thread's stream until one is free; return it, owned."""
    cdef int64_t blk
    while True:
        blk = <int64_t>rng_below(rng, <uint64_t>sh.n_blocks)
        if dp_fetch_add_i64(&sh.busy[blk * LINE], 1) == 0:
            return blk
        dp_fetch_add_i64(&sh.busy[blk * LINE], -1)


cdef void _bcd_worker(const double *data, const index_t *indices, const index_t *indptr,
                      Shared *sh, int tid) noexcept nogil:
    """One thread's updates until the shared budget of n_updates is claimed."""
    cdef rng_t rng
    cdef double *old = sh.scratch + tid * sh.stride
    cdef double *new = old + sh.max_width
    cdef double *g = new + sh.max_width
    cdef double *w = sh.w
    cdef double *m = sh.margins
    cdef const double *y = sh.y
    cdef double s, delta
    cdef int64_t blk, c0, width, j, jj, col
    cdef long long read, k
    rng_seed(&rng, sh.seed, <uint64_t>tid)
    while dp_fetch_add_i64(sh.claimed, 1) < sh.n_updates:
        blk = _own_block(sh, &rng)
        c0 = sh.bounds[blk]
        width = sh.bounds[blk + 1] - c0
        read = dp_load_i64(sh.written)
        # g_B = C X_B^T loss'(m) from margins read now, while other blocks add into them
        for j in range(width):
            col = c0 + j
            s = 0.0
            for jj in range(indptr[col], indptr[col + 1]):
                s += data[jj] * loss_derivative(sh.loss, y[indices[jj]], dp_load(&m[indices[jj]]))
            g[j] = sh.C * s
            old[j] = dp_load(&w[col])  # only the owner writes w_B: this is its current value
            new[j] = old[j]
        prox_step(&sh.pen, new, g, width, sh.steps[blk])
        for j in range(width):
            delta = new[j] - old[j]
            if delta != 0.0:
                col = c0 + j
                for jj in range(indptr[col], indptr[col + 1]):
                    dp_add(&m[indices[jj]], data[jj] * delta)
                dp_store(&w[col], new[j])
        # the stamp after the writes (release), the block freed after the stamp
        k = dp_fetch_add_i64(sh.written, 1)
        dp_fetch_add_i64(&sh.busy[blk * LINE], -1)
        if k < sh.n_delays:
            sh.delays[k] = k - read
        if k < sh.n_blocks_out:
            sh.blocks_out[k] = blk


def _run(const double[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
         const double[::1] y, double[::1] w, double[::1] margins, const int64_t[::1] bounds,
         const double[::1] steps, int64_t[::1] delays, int64_t[::1] blocks_out, int loss,
         double C, int kind, double lam, double l1_ratio, double lo, double hi,
         int64_t n_updates, int n_threads, uint64_t seed):
    """The kernel on arrays async_bcd has checked; w and margins are updated in place."""
    cdef int64_t n_blocks = steps.shape[0]
    cdef int64_t max_width = 0, blk, tid
    for blk in range(n_blocks):
        max_width = max(max_width, bounds[blk + 1] - bounds[blk])
    # old, new and g of each thread, rounded up to whole cache lines
    cdef int64_t stride = (3 * max_width + LINE - 1) // LINE * LINE
    scratch = np.zeros(n_threads * stride + LINE, dtype=np.float64)
    busy = np.zeros(n_blocks * LINE, dtype=np.int64)
    counters = np.zeros(2 * LINE, dtype=np.int64)
    cdef double[::1] scratch_v = scratch
    cdef int64_t[::1] busy_v = busy
    cdef int64_t[::1] counters_v = counters
    # the struct every thread reads on every update, in cache lines no thread writes
    private = np.zeros(DP_PRIVATE_BYTES(sizeof(Shared)), dtype=np.uint8)
    cdef unsigned char[::1] private_v = private
    cdef Shared *sh = <Shared *> dp_private_lines(&private_v[0])
    sh.w = &w[0]
    sh.margins = &margins[0]
    sh.y = &y[0]
    sh.bounds = &bounds[0]
    sh.steps = &steps[0]
    sh.busy = <long long *> &busy_v[0]
    sh.claimed = <long long *> &counters_v[0]
    sh.written = <long long *> &counters_v[LINE]
    sh.delays = &delays[0] if delays.shape[0] else NULL
    sh.blocks_out = &blocks_out[0] if blocks_out.shape[0] else NULL
    sh.scratch = &scratch_v[0]
    sh.pen.kind = kind
    sh.pen.lam = lam
    sh.pen.l1_ratio = l1_ratio
    sh.pen.lo = lo
    sh.pen.hi = hi
    sh.C = C
    sh.n_blocks = n_blocks
    sh.n_updates = n_updates
    sh.n_delays = delays.shape[0]
    sh.n_blocks_out = blocks_out.shape[0]
    sh.stride = stride
    sh.max_width = max_width
    sh.seed = seed
    sh.loss = loss
    cdef const double *dp = &data[0] if data.shape[0] else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] else NULL
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        _bcd_worker(dp, ip, &indptr[0], sh, tid)
    return int(counters[LINE])


# ---------------------------------------------------------------- def entries (checked)

def block_bounds(n_features, n_blocks):
    """Column ranges of ``n_blocks`` contiguous blocks of ``n_features`` columns.

    Returns ``bounds`` (int64, n_blocks + 1): block k is ``bounds[k]:bounds[k + 1]``, the widths
    differ by at most one (wider blocks first).
    """
    n_features, n_blocks = _count(n_features, "n_features"), _count(n_blocks, "n_blocks")
    if not 1 <= n_blocks <= n_features:
        raise ValueError(f"n_blocks must be in [1, n_features = {n_features}], got {n_blocks}")
    q, r = divmod(n_features, n_blocks)
    widths = np.full(n_blocks, q, dtype=np.int64)
    widths[:r] += 1
    return np.concatenate(([0], np.cumsum(widths))).astype(np.int64)


def _count(v, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    return int(v)


def _check_csc(data, indices, indptr, n_rows):
    """X as CSC, checked by prox's CSR check on the transposed view (rows <-> columns)."""
    try:
        data, indices, indptr, n_features = prox._check_csr(data, indices, indptr, n_rows)
    except ValueError as e:
        raise ValueError(f"X as CSC (indices are row indices, indptr has n_features + 1 "
                         f"entries, rows are y's): {e}") from None
    return data, indices, indptr, n_features


def block_lipschitz(data, indices, indptr, n_rows, n_blocks, *, loss="log_loss", double C=1.0):
    """Lipschitz constants ``L_B`` of the block gradients of ``f = C * sum_i loss_i``.

    ``L_B = C * ||X_B||_2^2 / 4`` (logistic) or ``C * ||X_B||_2^2`` (squared), the blocks of
    ``block_bounds``; X as CSC. The spectral norm is exact (the block's Gram matrix) up to
    ``MAX_EXACT_WIDTH`` columns, the Frobenius bound above. Returns float64 (n_blocks,);
    a block without non-zeros gets L = 0 (any step is then safe for it).
    """
    n_rows = _count(n_rows, "n_rows")
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    data, indices, indptr, n_features = _check_csc(data, indices, indptr, n_rows)
    bounds = block_bounds(n_features, n_blocks)
    if not isinstance(loss, str) or loss not in prox.LOSSES:
        raise ValueError(f"loss must be one of {list(prox.LOSSES)}, got {loss!r}")
    prox._check_positive(C=C)
    import scipy.sparse as sp

    X = sp.csc_matrix((data, indices, indptr), shape=(n_rows, n_features))
    out = np.empty(len(bounds) - 1)
    for k in range(len(bounds) - 1):
        XB = X[:, bounds[k]:bounds[k + 1]]
        if XB.shape[1] <= MAX_EXACT_WIDTH:
            G = (XB.T @ XB).toarray()
            norm2 = max(float(np.linalg.eigvalsh(G).max()), 0.0) if G.size else 0.0
        else:
            norm2 = float(XB.multiply(XB).sum())
        out[k] = C * norm2 * (0.25 if prox.LOSSES[loss] == LOSS_LOGISTIC else 1.0)
    return out


def _int64_out(a, name):
    if a is None:
        return np.empty(0, dtype=np.int64)
    if (not isinstance(a, np.ndarray) or a.dtype != np.int64 or a.ndim != 1
            or not a.flags.c_contiguous or not a.flags.writeable):
        raise ValueError(f"{name} must be a writeable contiguous 1-D int64 array")
    return a


def async_bcd(data, indices, indptr, y, w, double b=0.0, *, n_blocks, steps, n_updates,
              loss="log_loss", double C=1.0, penalty="l1", double lam=1.0, l1_ratio=None,
              double lo=-INFINITY, double hi=INFINITY, n_threads=1, seed=0, delays=None,
              blocks=None):
    """Async-BCD: ``n_updates`` proximal block updates of ``P = C sum_i loss_i + R(w)``.

    Parameters
    ----------
    data, indices, indptr : CSC arrays of X (float64; int32 or int64 for both index arrays).
    y : (n_rows,) labels in {-1, +1} for ``loss="log_loss"``, real for ``"squared_error"``.
    w : (n_features,) the start; not modified (the result is a new array).
    b : the intercept, held fixed.
    n_blocks : the blocks of ``block_bounds(n_features, n_blocks)``.
    steps : one step for all blocks, or (n_blocks,) per block (e.g. ``h / block_lipschitz``).
    n_updates : block updates over all threads together.
    loss, C, penalty, lam, l1_ratio, lo, hi : as ``prox.objective``.
    n_threads : OpenMP threads (>= 1; at most n_blocks run). seed : the threads' streams.
    delays, blocks : optional writeable int64 arrays; entry k receives the delay and the block
        of the update stamped k, for k below the array's length.

    Returns
    -------
    w, margins : the final coefficients and the shared margins ``X w + b`` as the threads
        left them (equal to a fresh product up to rounding).
    """
    w = prox._vector(w, "w").copy()
    y = prox._vector(y, "y")
    if y.shape[0] == 0:
        raise ValueError("y is empty: the problem needs at least one row")
    data, indices, indptr, n_features = _check_csc(data, indices, indptr, y.shape[0])
    if n_features != w.shape[0]:
        raise ValueError(f"X has {n_features} columns (indptr has {n_features + 1} entries), "
                         f"w has {w.shape[0]} values")
    bounds = block_bounds(n_features, n_blocks) if n_features else None
    if bounds is None:
        raise ValueError("X has no columns: there is no block to update")
    n_blocks = bounds.shape[0] - 1
    if not isinstance(loss, str) or loss not in prox.LOSSES:
        raise ValueError(f"loss must be one of {list(prox.LOSSES)}, got {loss!r}")
    kind = prox.LOSSES[loss]
    if kind == LOSS_LOGISTIC and not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError("the logistic loss takes labels y in {-1, +1}")
    if not (-INFINITY < b < INFINITY):
        raise ValueError(f"b must be finite, got {b!r}")
    prox._check_positive(C=C)
    # prox checks the penalty's arguments (R of an empty vector is then 0)
    prox.py_penalty_value(np.zeros(0), penalty, lam, l1_ratio, lo, hi)
    steps_a = np.asarray(steps)
    if steps_a.ndim > 1 or not (np.issubdtype(steps_a.dtype, np.floating)
                                or np.issubdtype(steps_a.dtype, np.integer)):
        raise ValueError(f"steps must be a real number or a 1-D array of n_blocks = {n_blocks}")
    steps_a = np.ascontiguousarray(np.broadcast_to(steps_a, (n_blocks,)) if steps_a.ndim == 0
                                   else steps_a, dtype=np.float64)
    if steps_a.shape[0] != n_blocks:
        raise ValueError(f"steps has {steps_a.shape[0]} values, expected n_blocks = {n_blocks}")
    if not np.all((steps_a > 0.0) & (steps_a < INFINITY)):
        raise ValueError(f"every step must be finite and > 0, got {steps_a.min()!r} at least")
    n_updates = _count(n_updates, "n_updates")
    if n_updates < 0:
        raise ValueError(f"n_updates must be >= 0, got {n_updates}")
    n_threads = _count(n_threads, "n_threads")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    seed = _count(seed, "seed")
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    delays = _int64_out(delays, "delays")
    blocks = _int64_out(blocks, "blocks")
    import scipy.sparse as sp

    margins = np.ascontiguousarray(sp.csc_matrix((data, indices, indptr),
                                                 shape=(y.shape[0], n_features)) @ w + b)
    if n_updates:
        pen_l1_ratio = 0.0 if l1_ratio is None else float(l1_ratio)
        _run(data, indices, indptr, y, w, margins, bounds, steps_a, delays, blocks, kind, C,
             prox.PENALTIES[penalty], lam, pen_l1_ratio, lo, hi, n_updates,
             min(n_threads, n_blocks), seed)
    return w, margins
