"""Asynchronous proximal block-coordinate descent (Async-BCD) in shared memory, without the GIL.

Wu, Magnusson, Feyzmahdavian and Johansson (ICML 2022, "Delay-adaptive step-sizes for
asynchronous learning") analyse Async-BCD on ``min_w P(w) = f(w) + R(w)``: workers repeatedly
read the shared iterate inconsistently, pick a block B of coordinates, and write
``w_B <- prox_{step R_B}(w_B - step * grad_B f(w_read))``; the delay of an update is the
number of updates that other workers wrote between its read and its write. This module is
that loop for ``f = C * sum_i loss(y_i, x_i . w + b)`` (prox.pxd's ``SmoothLoss``) and any
separable ``R`` of prox.pxd (``Penalty``), run by OpenMP threads on one shared ``w``, with
the paper's delay-adaptive steps as an option.

What is shared.  The partial gradient ``grad_B f = C * X_B^T loss'(m)`` needs the margins
``m = X w + b``, not w itself, so the threads share the margins (one per row) and keep them
current: an update adds ``X_B (w_B_new - w_B_old)`` into them with relaxed atomic adds
(``dp_add``: concurrent updates of other blocks touch the same rows, and a lost add would
leave the margins wrong for ever) and publishes ``w_B`` with ``dp_store``. A thread reads the
margins with relaxed loads while others add into them: the inconsistent read of the paper.
X comes as CSC (``data``, ``indices`` = row indices, ``indptr`` of n_features + 1 entries) so
that a block, a contiguous column range (``block_bounds``), is a contiguous slice. A caller
that runs the kernel in pieces (an epoch at a time) passes the margins the last call
returned, so that ``X w + b`` is not recomputed.

The intercept.  With ``fit_intercept=True`` b is a block too, of index n_blocks, drawn
uniformly among the n_blocks + 1 blocks: ``b <- b - step_b * C * sum_i loss'(y_i, m_i)``
(unpenalised: no prox), and the change is added into every margin as a block's is. Its step
is the caller's like any block's; ``block_lipschitz(..., fit_intercept=True)`` appends its
constant ``L_b = C * n_rows * curvature`` (1/4 logistic, 1 squared). Without it b is held
fixed (scikit-learn's ``fit_intercept=False`` when b = 0).

One owner per block.  Two threads updating the same block at once would each add their own
``new - old`` into the margins, and the margins would stop being ``X w + b``. A block is
therefore owned by one thread at a time, through a try-lock made of a fetch-add (the thread
that moves the block's flag from 0 owns it; the others undo their add and draw another
block). With one thread every first draw succeeds, so the block sequence is the thread's
random stream; with more threads than blocks the extra threads could only spin, so the
kernel runs on at most ``n_blocks`` (+ 1 with the intercept) threads.

Delays without a step policy (``policy="none"``, every step ``steps[B]``).  A shared counter
of completed updates (atomic fetch-add, acquire/release) stamps every update: a thread loads
it before it reads the margins (``read``) and increments it after its writes (``k``, the
update's stamp, 0-based). ``k - read`` updates of other threads completed in between, which
is the paper's delay; every update with a stamp below ``read`` is wholly in what the thread
read. No lock is taken. With one thread every delay is 0.

Delay-adaptive steps (``policy="budget" | "fixed_or_skip" | "fixed"``).  The paper's
principle: the steps inside any update's delay window sum to at most gamma'. With
``steps[B] = h / L_B`` playing gamma' and the step of update t ``steps[B] * scale_t``, every
update t of delay tau_t must have ``sum_{s = t - tau_t}^{t} scale_s <= 1``. The rules are
stepsize.py's Budget and FixedOrSkip with gamma' = 1, and FixedForDelay:

    budget:         scale_t = alpha * (1 - W_t)
    fixed_or_skip:  scale_t = alpha if W_t <= 1 - alpha, else 0 (the update is skipped: no
                    write, but it is counted and numbered)
    fixed:          scale_t = 1 / (tau_max + 1), whatever the delay (the worst-case rule)

with ``W_t`` the sum of the scales of updates ``t - tau_hat_t .. t - 1``. The delay the rule
sees, tau_hat_t, is not the update's own delay (own delays jump: a slow thread's write lands
after many fast ones, and the past steps already fill its window) but the age of the oldest
read still in flight, which bounds the own delay and grows by at most one per update (the
case stepsize.OutstandingReads and the audits of tests/test_stepsize.py cover). Two short
sections under one spinlock (an atomic exchange on a flag in a cache line of its own; a
waiting thread polls it and calls sched_yield after every 64 polls, so that 8 threads on 2
cores do not burn the cores the lock holder needs) number the updates by tickets:

    read section (before the margins are read):
        p = min(tickets, W_j over all threads)    W_j: the ticket thread j is writing, or INF
        R_self = p                                 the thread's read stamp, in flight
    choose section (after the block gradient, before the write):
        t = tickets; W_self = t; tickets = t + 1
        tau_hat = t - min(R_j over all threads)    own read included
        W_t = S[t] - S[t - tau_hat]; scale_t by the rule; S[t + 1] = S[t] + scale_t
        R_self = INF
    then the block is written outside the lock, and W_self = INF stored with release order.

Why the rule holds (every position below is in the lock's order; a load of W_j in a section
that follows one that saw INF sees INF too, by coherence):
(a) The read includes every update of ticket < p: each such update had taken its ticket
    (tickets > it) and was not writing (W_j != it), so its writes had ended, and the release
    store of W_j = INF orders them before the acquire load that saw it.
(b) tau_hat_t >= tau_t = t - p: the own read stamp p is among the R_j of the minimum.
(c) tau_hat_t <= tau_hat_{t-1} + 1, i.e. m_t = min R_j (at choose t) >= m_{t-1} (at choose
    t-1). A read in flight at choose t either was in flight at choose t-1 (R >= m_{t-1}) or
    started after it, with p = min(tickets >= t, W_j of the updates writing then). Such a
    writer has ticket >= t - 1, or a ticket s < t - 1 and was writing since before choose
    t-1 until after it; update t-1's own read, made before its choose, then made its stamp
    <= s (read before choose s: tickets <= s; read after choose s: W = s was seen), so
    m_{t-1} <= R_{t-1} <= s. Either way p >= m_{t-1}.
(d) By (c) the window of t, ``t - tau_hat_t .. t - 1``, lies inside that of t-1 with t-1
    added, so ``W_t <= W_{t-1} + scale_{t-1} <= 1`` by induction (W_0 = 0); budget gives
    ``W_t + scale_t = alpha + (1 - alpha) W_t <= 1``, fixed_or_skip ``<= 1`` by its test,
    and by (b) the real window ``t - tau_t .. t`` is inside ``t - tau_hat_t .. t``.
The scales are fixed point, whole multiples of 2^-52 summed in uint64 (the ring S of
cumulative scales, RING = 4096 entries, is modular: differences are exact), so the rule
holds exactly, not up to rounding, and the recorded float64 scales sum exactly too (their
partial sums stay below 2); a tau_hat of RING or more (a thread descheduled for thousands of
updates) gets scale 0 under budget and fixed_or_skip. Each call starts from ticket 0 with an
empty window: no read is in flight between calls, so no window spans two calls.
With one thread every delay and tau_hat is 0 and W_t = 0: budget and fixed_or_skip take
every step at ``alpha * steps[B]`` (alpha rounded down to a multiple of 2^-52).

Records.  The caller's ``delays``, ``blocks``, ``taus`` and ``scales`` arrays receive, at
index k, the delay, the block, tau_hat and the scale of update k (the stamp, or the ticket
under a policy), up to their lengths: for the drivers' step records and for tests that replay
the block sequence serially or audit the window rule. Without a policy the scales are 1 and
``taus`` is not written (no tau_hat is measured).

Step sizes.  The caller gives one step per block; ``h / L_B`` with ``L_B``, the Lipschitz
constant of ``grad_B f`` along block B, from ``block_lipschitz``: ``C ||X_B||_2^2 / 4``
(logistic) or ``C ||X_B||_2^2`` (squared), with the spectral norm computed exactly from the
block's Gram matrix (blocks up to ``MAX_EXACT_WIDTH`` columns) or bounded by the Frobenius
norm (wider blocks: never smaller than the spectral norm, so the step stays safe).

The ``def`` entries check every input and raise ``ValueError`` before the kernel runs; inside
the parallel region nothing is allocated and the GIL is never taken.
"""
import numpy as np

from cython.parallel cimport parallel, threadid
from libc.limits cimport LLONG_MAX
from libc.math cimport INFINITY
from libc.stdint cimport int64_t, uint64_t

from dpsgd._kernels.atomics cimport (dp_load, dp_store, dp_add, dp_load_i64, dp_fetch_add_i64,
                                     dp_exchange_i64, dp_store_i64)
from dpsgd._kernels.prox cimport index_t, Penalty, loss_derivative, prox_step, LOSS_LOGISTIC
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_below
from dpsgd._kernels import prox

cdef extern from "omp_shim.h" nogil:
    int omp_get_num_threads()

cdef extern from "cacheline.h" nogil:
    size_t DP_PRIVATE_BYTES(size_t n)
    void *dp_private_lines(void *buffer)

cdef extern from "<sched.h>" nogil:
    int sched_yield()

# Blocks up to this many columns get their exact spectral norm (a dense Gram matrix of
# width^2 values); wider ones the Frobenius bound.
MAX_EXACT_WIDTH = 2048
# each loss's largest second derivative in the margin: L = C * curvature * ||X_B||_2^2
CURVATURE = {"log_loss": 0.25, "squared_error": 1.0}
# long longs per cache line: each block's ownership flag, each counter and each thread's
# stamps get a line of their own, so that taking one does not invalidate the line another
# thread polls
cdef enum:
    LINE = 8
    SPINS_BEFORE_YIELD = 64
    RING = 4096                 # cumulative scales kept (a power of two)

# the step policies, by name (module docstring)
cdef enum StepPolicy:
    POLICY_NONE = 0
    POLICY_FIXED = 1
    POLICY_BUDGET = 2
    POLICY_FIXED_OR_SKIP = 3
POLICIES = {"none": POLICY_NONE, "fixed": POLICY_FIXED, "budget": POLICY_BUDGET,
            "fixed_or_skip": POLICY_FIXED_OR_SKIP}

# scales in fixed point: whole multiples of 2^-52 (exact as doubles, exact sums in uint64)
cdef uint64_t SCALE_ONE = (<uint64_t>1) << 52
cdef double SCALE_UNIT = 1.0 / 4503599627370496.0  # 2^-52
cdef long long NOT_IN_FLIGHT = LLONG_MAX


ctypedef struct Shared:
    double *w                   # (n_features,) the shared coefficients
    double *b                   # the shared intercept
    double *margins             # (n_rows,) the shared X w + b
    const double *y
    const int64_t *bounds       # (n_blocks + 1,) block k is columns bounds[k] .. bounds[k + 1]
    const double *steps         # (n_blocks + has_b,) the intercept's last
    long long *busy             # ((n_blocks + has_b) * LINE,) block k's ownership flag at k * LINE
    long long *claimed          # updates claimed so far (the stop rule)
    long long *written          # updates completed so far (the stamps without a policy)
    long long *lock             # the spinlock of the policy's sections
    long long *tickets          # updates numbered so far (under the lock)
    long long *stamps           # thread j's read stamp R_j at j * LINE, its ticket W_j at + 1
    uint64_t *ring              # (RING,) cumulative fixed-point scales S[t] at t % RING
    int64_t *delays             # (n_delays,) or NULL
    int64_t *blocks_out         # (n_blocks_out,) or NULL
    int64_t *taus               # (n_taus,) or NULL
    double *scales              # (n_scales,) or NULL
    double *scratch             # per thread: old, new and g, each max_width long
    Penalty pen
    double C
    double alpha
    uint64_t alpha_fixed        # alpha in fixed point, rounded down (fixed_or_skip)
    uint64_t fixed_scale        # 1 / (tau_max + 1) in fixed point, rounded down (fixed)
    int64_t n_rows
    int64_t n_blocks
    int64_t n_updates
    int64_t n_delays
    int64_t n_blocks_out
    int64_t n_taus
    int64_t n_scales
    int64_t n_stamps            # threads with a stamp slot
    int64_t stride              # scratch doubles per thread
    int64_t max_width
    uint64_t seed
    int loss
    int policy
    int has_b


cdef inline int64_t _own_block(Shared *sh, rng_t *rng) noexcept nogil:
    """Draw blocks (the intercept's too) from the thread's stream until one is free; return
    it, owned."""
    cdef int64_t blk
    cdef uint64_t n_draw = <uint64_t>(sh.n_blocks + sh.has_b)
    while True:
        blk = <int64_t>rng_below(rng, n_draw)
        if dp_fetch_add_i64(&sh.busy[blk * LINE], 1) == 0:
            return blk
        dp_fetch_add_i64(&sh.busy[blk * LINE], -1)


cdef inline void _lock(long long *flag) noexcept nogil:
    """Take the spinlock: poll, and yield the core after every SPINS_BEFORE_YIELD polls (the
    holder may be waiting for it when threads outnumber cores)."""
    cdef int spins = 0
    while dp_exchange_i64(flag, 1) != 0:
        while dp_load_i64(flag) != 0:
            spins += 1
            if spins >= SPINS_BEFORE_YIELD:
                sched_yield()
                spins = 0


cdef inline void _unlock(long long *flag) noexcept nogil:
    dp_store_i64(flag, 0)


cdef long long _read_section(Shared *sh, int tid) noexcept nogil:
    """The read stamp p (every update of ticket < p is wholly written), published as in flight."""
    cdef long long p, wj
    cdef int64_t j
    _lock(sh.lock)
    p = dp_load_i64(sh.tickets)
    for j in range(sh.n_stamps):
        wj = dp_load_i64(&sh.stamps[j * LINE + 1])
        if wj < p:
            p = wj
    dp_store_i64(&sh.stamps[tid * LINE], p)
    _unlock(sh.lock)
    return p


cdef inline uint64_t _policy_scale(const Shared *sh, uint64_t window) noexcept nogil:
    """scale_t of the rule for a window W_t (fixed point)."""
    cdef uint64_t s
    if window >= SCALE_ONE:
        return 0
    if sh.policy == POLICY_BUDGET:
        s = <uint64_t>(sh.alpha * <double>(SCALE_ONE - window))
        return s if s <= SCALE_ONE - window else SCALE_ONE - window  # rounding of the product
    if window <= SCALE_ONE - sh.alpha_fixed:  # POLICY_FIXED_OR_SKIP
        return sh.alpha_fixed
    return 0


cdef long long _choose_section(Shared *sh, int tid, long long read, int64_t *tau_out,
                               uint64_t *scale_out) noexcept nogil:
    """The update's ticket t (returned), tau_hat and scale; the write is announced (W = t)."""
    cdef long long t, oldest, r
    cdef int64_t j, tau
    cdef uint64_t scale
    _lock(sh.lock)
    t = dp_load_i64(sh.tickets)
    dp_store_i64(&sh.stamps[tid * LINE + 1], t)
    dp_store_i64(sh.tickets, t + 1)
    oldest = read
    for j in range(sh.n_stamps):
        r = dp_load_i64(&sh.stamps[j * LINE])
        if r < oldest:
            oldest = r
    tau = t - oldest
    if sh.policy == POLICY_FIXED:
        scale = sh.fixed_scale
    elif tau >= RING:
        scale = 0  # S[t - tau] is no longer in the ring
    else:
        scale = _policy_scale(sh, sh.ring[t & (RING - 1)] - sh.ring[(t - tau) & (RING - 1)])
    sh.ring[(t + 1) & (RING - 1)] = sh.ring[t & (RING - 1)] + scale
    dp_store_i64(&sh.stamps[tid * LINE], NOT_IN_FLIGHT)
    _unlock(sh.lock)
    tau_out[0] = tau
    scale_out[0] = scale
    return t


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
    cdef double s, delta, step, scale
    cdef int64_t blk, c0, width, i, j, jj, col, tau = 0
    cdef long long read, k = 0
    cdef uint64_t scale_fx
    cdef bint adaptive = sh.policy != POLICY_NONE
    rng_seed(&rng, sh.seed, <uint64_t>tid)
    while dp_fetch_add_i64(sh.claimed, 1) < sh.n_updates:
        blk = _own_block(sh, &rng)
        read = _read_section(sh, tid) if adaptive else dp_load_i64(sh.written)
        # g_B = C X_B^T loss'(m) (the intercept: C sum_i loss'(m_i)) from margins read now,
        # while other blocks add into them
        if blk == sh.n_blocks:
            width = 1
            s = 0.0
            for i in range(sh.n_rows):
                s += loss_derivative(sh.loss, y[i], dp_load(&m[i]))
            g[0] = sh.C * s
            old[0] = dp_load(sh.b)  # only the owner writes b
        else:
            c0 = sh.bounds[blk]
            width = sh.bounds[blk + 1] - c0
            for j in range(width):
                col = c0 + j
                s = 0.0
                for jj in range(indptr[col], indptr[col + 1]):
                    s += data[jj] * loss_derivative(sh.loss, y[indices[jj]], dp_load(&m[indices[jj]]))
                g[j] = sh.C * s
                old[j] = dp_load(&w[col])  # only the owner writes w_B: this is its current value
        step = sh.steps[blk]
        scale = 1.0
        if adaptive:
            k = _choose_section(sh, tid, read, &tau, &scale_fx)
            scale = <double>scale_fx * SCALE_UNIT
            step = step * scale
        if scale > 0.0:  # else skipped: nothing to write
            if blk == sh.n_blocks:
                new[0] = old[0] - step * g[0]
                delta = new[0] - old[0]
                if delta != 0.0:
                    for i in range(sh.n_rows):
                        dp_add(&m[i], delta)
                    dp_store(sh.b, new[0])
            else:
                for j in range(width):
                    new[j] = old[j]
                prox_step(&sh.pen, new, g, width, step)
                for j in range(width):
                    delta = new[j] - old[j]
                    if delta != 0.0:
                        col = c0 + j
                        for jj in range(indptr[col], indptr[col + 1]):
                            dp_add(&m[indices[jj]], data[jj] * delta)
                        dp_store(&w[col], new[j])
        if adaptive:
            # the write is over (release: the adds are visible to whoever sees INF)
            dp_store_i64(&sh.stamps[tid * LINE + 1], NOT_IN_FLIGHT)
        else:
            # the stamp after the writes (release)
            k = dp_fetch_add_i64(sh.written, 1)
        # the block freed after the stamp
        dp_fetch_add_i64(&sh.busy[blk * LINE], -1)
        if k < sh.n_delays:
            sh.delays[k] = k - read
        if k < sh.n_blocks_out:
            sh.blocks_out[k] = blk
        if adaptive and k < sh.n_taus:
            sh.taus[k] = tau
        if k < sh.n_scales:
            sh.scales[k] = scale


def _run(const double[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
         const double[::1] y, double[::1] w, double b, double[::1] margins,
         const int64_t[::1] bounds, const double[::1] steps, int has_b, int64_t[::1] delays,
         int64_t[::1] blocks_out, int64_t[::1] taus, double[::1] scales, int loss, double C,
         int kind, double lam, double l1_ratio, double lo, double hi, int policy, double alpha,
         int64_t tau_max, int64_t n_updates, int n_threads, uint64_t seed):
    """The kernel on arrays async_bcd has checked; w and margins are updated in place, the
    final b is returned."""
    cdef int64_t n_blocks = bounds.shape[0] - 1
    cdef int64_t max_width = 1, blk, tid
    for blk in range(n_blocks):
        max_width = max(max_width, bounds[blk + 1] - bounds[blk])
    # old, new and g of each thread, rounded up to whole cache lines
    cdef int64_t stride = (3 * max_width + LINE - 1) // LINE * LINE
    # each thread's rows start on a cache line of their own
    scratch = np.zeros(DP_PRIVATE_BYTES(n_threads * stride * sizeof(double)), dtype=np.uint8)
    busy = np.zeros((n_blocks + has_b) * LINE, dtype=np.int64)
    # claimed, written, lock, tickets: a line each
    counters = np.zeros(4 * LINE, dtype=np.int64)
    stamps = np.full(n_threads * LINE, NOT_IN_FLIGHT, dtype=np.int64)
    ring = np.zeros(RING, dtype=np.uint64)
    b_line = np.zeros(2 * LINE, dtype=np.float64)
    b_line[LINE] = b
    cdef unsigned char[::1] scratch_v = scratch
    cdef int64_t[::1] busy_v = busy
    cdef int64_t[::1] counters_v = counters
    cdef int64_t[::1] stamps_v = stamps
    cdef uint64_t[::1] ring_v = ring
    cdef double[::1] b_v = b_line
    # the struct every thread reads on every update, in cache lines no thread writes
    private = np.zeros(DP_PRIVATE_BYTES(sizeof(Shared)), dtype=np.uint8)
    cdef unsigned char[::1] private_v = private
    cdef Shared *sh = <Shared *> dp_private_lines(&private_v[0])
    sh.w = &w[0]
    sh.b = &b_v[LINE]
    sh.margins = &margins[0]
    sh.y = &y[0]
    sh.bounds = &bounds[0]
    sh.steps = &steps[0]
    sh.busy = <long long *> &busy_v[0]
    sh.claimed = <long long *> &counters_v[0]
    sh.written = <long long *> &counters_v[LINE]
    sh.lock = <long long *> &counters_v[2 * LINE]
    sh.tickets = <long long *> &counters_v[3 * LINE]
    sh.stamps = <long long *> &stamps_v[0]
    sh.ring = &ring_v[0]
    sh.delays = &delays[0] if delays.shape[0] else NULL
    sh.blocks_out = &blocks_out[0] if blocks_out.shape[0] else NULL
    sh.taus = &taus[0] if taus.shape[0] else NULL
    sh.scales = &scales[0] if scales.shape[0] else NULL
    sh.scratch = <double *> dp_private_lines(&scratch_v[0])
    sh.pen.kind = kind
    sh.pen.lam = lam
    sh.pen.l1_ratio = l1_ratio
    sh.pen.lo = lo
    sh.pen.hi = hi
    sh.C = C
    sh.alpha = alpha
    sh.alpha_fixed = <uint64_t>(alpha * <double>SCALE_ONE)
    sh.fixed_scale = SCALE_ONE // <uint64_t>(tau_max + 1)
    sh.n_rows = y.shape[0]
    sh.n_blocks = n_blocks
    sh.n_updates = n_updates
    sh.n_delays = delays.shape[0]
    sh.n_blocks_out = blocks_out.shape[0]
    sh.n_taus = taus.shape[0]
    sh.n_scales = scales.shape[0]
    sh.n_stamps = n_threads
    sh.stride = stride
    sh.max_width = max_width
    sh.seed = seed
    sh.loss = loss
    sh.policy = policy
    sh.has_b = has_b
    cdef const double *dp = &data[0] if data.shape[0] else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] else NULL
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        _bcd_worker(dp, ip, &indptr[0], sh, tid)
    return float(b_line[LINE])


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


def block_lipschitz(data, indices, indptr, n_rows, n_blocks, *, loss="log_loss", double C=1.0,
                    fit_intercept=False):
    """Lipschitz constants ``L_B`` of the block gradients of ``f = C * sum_i loss_i``.

    ``L_B = C * ||X_B||_2^2 / 4`` (logistic) or ``C * ||X_B||_2^2`` (squared), the blocks of
    ``block_bounds``; X as CSC. The spectral norm is exact (the block's Gram matrix) up to
    ``MAX_EXACT_WIDTH`` columns, the Frobenius bound above. With ``fit_intercept`` the
    intercept's constant ``L_b = C * n_rows * curvature`` follows (the norm of a column of ones).
    Returns float64 (n_blocks + fit_intercept,); a block without non-zeros gets L = 0 (any
    step is then safe for it).
    """
    n_rows = _count(n_rows, "n_rows")
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    data, indices, indptr, n_features = _check_csc(data, indices, indptr, n_rows)
    bounds = block_bounds(n_features, n_blocks)
    _check_loss(loss)
    prox._check_positive(C=C)
    _check_flag(fit_intercept, "fit_intercept")
    import scipy.sparse as sp

    X = sp.csc_matrix((data, indices, indptr), shape=(n_rows, n_features))
    out = np.empty(len(bounds) - 1 + bool(fit_intercept))
    out[:len(bounds) - 1] = C * CURVATURE[loss] * _block_norms(X, bounds)
    if fit_intercept:
        out[len(bounds) - 1] = C * n_rows * CURVATURE[loss]
    return out


# Blocks up to this many columns get their Gram matrices from diagonals of X^T X, all at once
# (below); wider exact ones one at a time.
BATCHED_WIDTH = 64


def _block_norms(X, bounds):
    """||X_B||_2^2 of every block of a CSC X: exact up to MAX_EXACT_WIDTH columns, else the
    squared Frobenius norm. Narrow blocks, the usual case (thousands of them), are done
    together: the offset-o diagonal of X^T X, ``sum_i x_ij x_i(j+o)``, is one elementwise
    product of two column ranges of X, and every block's Gram matrix is read from those
    diagonals and handed to one batched eigvalsh."""
    widths = np.diff(bounds)
    n_features = X.shape[1]
    exact = widths <= MAX_EXACT_WIDTH
    batched = exact & (widths <= BATCHED_WIDTH)
    n_diagonals = int(widths[batched].max()) if batched.any() else 1
    diagonals = np.zeros((n_diagonals, n_features))
    for o in range(n_diagonals):
        products = X[:, :n_features - o].multiply(X[:, o:])
        diagonals[o, :n_features - o] = np.asarray(products.sum(axis=0)).ravel()
    out = np.add.reduceat(diagonals[0], bounds[:len(bounds) - 1])  # the Frobenius bound (every block has a column)
    for width in np.unique(widths[batched]):
        ks = np.flatnonzero(batched & (widths == width))
        G = np.empty((ks.shape[0], width, width))
        for a in range(width):
            for c in range(width):
                G[:, a, c] = diagonals[abs(c - a), bounds[ks] + min(a, c)]
        out[ks] = np.maximum(np.linalg.eigvalsh(G)[:, -1], 0.0)
    for k in np.flatnonzero(exact & ~batched):
        G = (X[:, bounds[k]:bounds[k + 1]].T @ X[:, bounds[k]:bounds[k + 1]]).toarray()
        out[k] = max(float(np.linalg.eigvalsh(G).max()), 0.0)
    return out


def _check_loss(loss):
    if not isinstance(loss, str) or loss not in prox.LOSSES:
        raise ValueError(f"loss must be one of {list(prox.LOSSES)}, got {loss!r}")
    return prox.LOSSES[loss]


def _check_flag(v, name):
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {v!r}")


def _int64_out(a, name):
    return _out(a, name, np.int64, "int64")


def _out(a, name, dtype, dtype_name):
    if a is None:
        return np.empty(0, dtype=dtype)
    if (not isinstance(a, np.ndarray) or a.dtype != dtype or a.ndim != 1
            or not a.flags.c_contiguous or not a.flags.writeable):
        raise ValueError(f"{name} must be a writeable contiguous 1-D {dtype_name} array")
    return a


def _check_policy(policy, alpha, tau_max):
    """The policy's id, alpha and tau_max (0 where the policy has none), checked."""
    if not isinstance(policy, str) or policy not in POLICIES:
        raise ValueError(f"policy must be one of {list(POLICIES)}, got {policy!r}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ValueError(f"alpha must be a real number, got {alpha!r}")
    alpha = float(alpha)
    if policy == "budget" and not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1) for policy='budget', got {alpha!r}")
    if policy == "fixed_or_skip" and not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1] for policy='fixed_or_skip', got {alpha!r}")
    if policy == "fixed":
        if tau_max is None:
            raise ValueError("policy='fixed' needs tau_max, the largest delay its step is safe for")
        tau_max = _count(tau_max, "tau_max")
        if not 0 <= tau_max < 2 ** 52:
            raise ValueError(f"tau_max must be in [0, 2**52), got {tau_max}")
    elif tau_max is not None:
        raise ValueError(f"tau_max is for policy='fixed' only, got tau_max={tau_max!r} with "
                         f"policy={policy!r}")
    return POLICIES[policy], alpha, (tau_max or 0)


def async_bcd(data, indices, indptr, y, w, double b=0.0, *, n_blocks, steps, n_updates,
              loss="log_loss", double C=1.0, penalty="l1", double lam=1.0, l1_ratio=None,
              double lo=-INFINITY, double hi=INFINITY, fit_intercept=False, margins=None,
              policy="none", alpha=0.9, tau_max=None, n_threads=1, seed=0, delays=None,
              blocks=None, taus=None, scales=None):
    """Async-BCD: ``n_updates`` proximal block updates of ``P = C sum_i loss_i + R(w)``.

    Parameters
    ----------
    data, indices, indptr : CSC arrays of X (float64; int32 or int64 for both index arrays).
    y : (n_rows,) labels in {-1, +1} for ``loss="log_loss"``, real for ``"squared_error"``.
    w : (n_features,) the start; not modified (the result is a new array).
    b : the intercept's start; held fixed unless ``fit_intercept``.
    n_blocks : the blocks of ``block_bounds(n_features, n_blocks)``.
    steps : one step for all blocks, or one per block (n_blocks, + 1 for the intercept's, last,
        with ``fit_intercept``), e.g. ``h / block_lipschitz(..., fit_intercept=...)``; under a
        policy these are gamma' of each block.
    n_updates : block updates over all threads together (the intercept's included).
    loss, C, penalty, lam, l1_ratio, lo, hi : as ``prox.objective``.
    fit_intercept : update b as a block of its own (index n_blocks; module docstring).
    margins : (n_rows,) ``X w + b`` of this w and b, e.g. the margins a previous call returned
        (they are then not recomputed); not modified. None: computed here.
    policy : "none" (every step ``steps[B]``), "budget", "fixed_or_skip" or "fixed": the
        delay-adaptive scales of the module docstring. alpha : their alpha (budget: in (0, 1);
        fixed_or_skip: in (0, 1]). tau_max : fixed's largest safe delay (an int >= 0, required
        for "fixed" and only there).
    n_threads : OpenMP threads (>= 1; at most n_blocks + fit_intercept run).
    seed : the threads' streams.
    delays, blocks, taus : optional writeable int64 arrays; scales : optional float64 array.
        Entry k receives the delay, the block (n_blocks: the intercept), tau_hat and the
        scale of update k, for k below the array's length (``taus`` only under a policy).

    Returns
    -------
    w, b, margins : the final coefficients, intercept, and the shared margins ``X w + b`` as
        the threads left them (equal to a fresh product up to rounding).
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
    kind = _check_loss(loss)
    if kind == LOSS_LOGISTIC and not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError("the logistic loss takes labels y in {-1, +1}")
    if not (-INFINITY < b < INFINITY):
        raise ValueError(f"b must be finite, got {b!r}")
    prox._check_positive(C=C)
    # prox checks the penalty's arguments (R of an empty vector is then 0)
    prox.py_penalty_value(np.zeros(0), penalty, lam, l1_ratio, lo, hi)
    _check_flag(fit_intercept, "fit_intercept")
    has_b = int(bool(fit_intercept))
    n_steps = n_blocks + has_b
    what = f"n_blocks = {n_blocks}" + (" + 1 (the intercept)" if has_b else "")
    steps_a = np.asarray(steps)
    if steps_a.ndim > 1 or not (np.issubdtype(steps_a.dtype, np.floating)
                                or np.issubdtype(steps_a.dtype, np.integer)):
        raise ValueError(f"steps must be a real number or a 1-D array of {what}")
    steps_a = np.ascontiguousarray(np.broadcast_to(steps_a, (n_steps,)) if steps_a.ndim == 0
                                   else steps_a, dtype=np.float64)
    if steps_a.shape[0] != n_steps:
        raise ValueError(f"steps has {steps_a.shape[0]} values, expected {what}")
    if not np.all((steps_a > 0.0) & (steps_a < INFINITY)):
        raise ValueError(f"every step must be finite and > 0, got {steps_a.min()!r} at least")
    policy_id, alpha, tau_max = _check_policy(policy, alpha, tau_max)
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
    taus = _int64_out(taus, "taus")
    scales = _out(scales, "scales", np.float64, "float64")
    # the kernel writes these while it reads X and y: an output over an input (e.g. the row
    # indices given as delays) would send the margins' adds out of bounds
    outputs = {"delays": delays, "blocks": blocks, "taus": taus, "scales": scales}
    for name, out in outputs.items():
        others = [data, indices, indptr, y, w, steps_a] + [o for n, o in outputs.items() if n != name]
        if out.size and any(np.may_share_memory(out, other) for other in others):
            raise ValueError(f"{name} overlaps an input or another output array")
    if margins is None:
        import scipy.sparse as sp

        margins = np.ascontiguousarray(sp.csc_matrix((data, indices, indptr),
                                                     shape=(y.shape[0], n_features)) @ w + b)
    else:
        margins = prox._vector(margins, "margins", y.shape[0]).copy()
    if n_updates:
        pen_l1_ratio = 0.0 if l1_ratio is None else float(l1_ratio)
        b = _run(data, indices, indptr, y, w, b, margins, bounds, steps_a, has_b, delays, blocks,
                 taus, scales, kind, C, prox.PENALTIES[penalty], lam, pen_l1_ratio, lo, hi,
                 policy_id, alpha, tau_max, n_updates, min(n_threads, n_steps), seed)
    return w, b, margins
