"""Lock-free (Hogwild!) SGD epochs for sparse linear models.

One ``def`` entry point per kernel; everything inside runs without the GIL.

Weights.  The shared coefficient matrix ``coef`` has shape (n_features, K),
feature-major, so one row touch reads the K outputs of a feature from one
cache line (K = 1 for binary and regression, K = n_classes for one-vs-rest,
where all classes are updated in the same pass).

L2 decay at O(nnz) per step, exactly.  Inside the kernel the true weights are
``w = s_i * u``: ``s_i`` is the product of the decay factors
``(1 - (1 - l1_ratio) * eta_t * alpha)`` of the steps before position ``i`` of
the epoch. Because ``s_i`` depends only on the position (the step-size schedule
is known in advance), it is a precomputed array that no thread writes, unlike
scikit-learn's single mutable ``wscale``; a thread simply uses the scale of its
own step. ``u`` is folded back into true weights at the end of a segment (an
epoch, split further only when the scale would underflow).

Time.  Thread ``p`` of ``P`` processes positions ``p, p + P, p + 2P, ...`` of the
epoch's permutation, so all threads advance through the schedule together and
with one thread the update sequence is exactly the sequential one.

Hot coordinates.  Features present in a large share of rows (and the
intercept) would bounce one cache line between cores on every update. With
several threads the caller may mark them "hot": each thread then updates a
private copy and, every ``merge_every`` samples, adds its change since the last
merge to the shared value (an atomic add) and re-reads it (bounded staleness instead of
cache-line ping-pong). With one thread nothing is hot and ``merge_every`` is 1,
which keeps the exact sequential semantics. The caller buffers every feature of
a small model and none of a large one: on text-like rows (130,000 features)
buffering the 64 most frequent ones made one thread 2x slower (looking up every
non-zero's slot in a table of n_features entries, then its value) and 2 threads
slower than without (0.81 s against 0.64 in one measurement).

Threads that own features.  Hogwild! threads that share a large model on text wait for
each other's cache lines on nearly every non-zero: a word's weight moves to the core of
whichever thread last wrote it, and on text most words recur within a few rows (2 threads
0.7-0.9x one on text-like rows). Given ``row_split``, thread t of T instead owns a
contiguous range of features (``feature_bounds``: equal shares of the non-zeros) and
visits every row of the epoch, in order, for the non-zeros of its own features only
(``row_splits`` finds where each sorted row crosses the ranges): at step s it computes its
part of row s's K dot products and puts it in its ring, and takes the step of row
q = s - ``delay``: it sums the T threads' parts of row q (always in the order 0..T-1), computes
the loss gradient and the intercepts' change (every thread the same, from the same
numbers), and updates its own features of row q, with the L2 scale, the average and the L1
penalty exactly as one thread does. No weight is written by two threads, so no weight's
line moves between cores, and an owner reads and writes its weights with plain loads and
stores (``_own_dot``, ``_own_step``; Hogwild!'s relaxed atomic ones cost 10-20% there); what
crosses is a row's partial sums and a counter per thread,
published every ``delay`` / 8 .. / 4 rows. The result is sequential SGD in which each row's
prediction misses the steps of the ``delay`` rows before it (the intercepts' excepted),
whatever the threads' timing: deterministic for a given thread count and checked against
``tests/sgd_reference.py`` with that delay. A thread waits (spinning, then yielding its
core) only when another has not yet published its part of the row it needs. A thread at
step s has seen every other publish past s - delay, so every other thread is at step
s - delay - 1 or later and reads ring rows s - 2 delay - 1 or later: a ring of 2 delay + 2
rows is never overwritten while it is read.

Averaged SGD at O(nnz) per step (Xu 2011; scikit-learn's ``average_a`` /
``average_b``).  From global step ``average_start`` on, the average of the
iterates after each step is kept as ``avg = (aw + A_i * u) / B_i``: a step
that adds ``delta`` to ``u`` subtracts ``A_i * delta`` from ``aw``, on the
touched coordinates only. Like the scale, ``A_i`` and ``B_i`` depend only on
the position, so they are precomputed arrays no thread writes, and the
average is folded back into true values at the end of a segment. With
several threads the result is the exact average of the iterates obtained by
applying the updates in the order of their positions in the epoch (each update
computed, Hogwild!-style, from what its thread read), up to lost updates of
``aw`` as rare as those of the weights; hot coordinates buffer their ``aw``
changes with their deltas.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange, threadid
from libc.math cimport exp, log1p, pow, fabs, isfinite
from libc.stdint cimport int32_t, int64_t, uint64_t

from dpsgd._kernels.atomics cimport (dp_add, dp_cpu_relax, dp_load, dp_load_i64, dp_load_int, dp_store,
                                     dp_store_i64, dp_store_int)
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_below

cdef extern from "omp_shim.h" nogil:
    int omp_get_num_threads()
    double omp_get_wtime()

cdef extern from "cacheline.h" nogil:
    size_t DP_PRIVATE_BYTES(size_t n)
    void *dp_private_lines(void *buffer)

cdef extern from "<sched.h>" nogil:
    int sched_yield()

cdef extern from "prefetch.h" nogil:
    void dp_prefetch(const void *p)
    void dp_prefetch_range(const void *start, size_t nbytes)

# Loss ids (mirrored in dpsgd.tasks.linear.LOSSES).
cpdef enum Loss:
    HINGE = 0
    LOG_LOSS = 1
    MODIFIED_HUBER = 2
    SQUARED_HINGE = 3
    SQUARED_ERROR = 4
    HUBER = 5
    EPSILON_INSENSITIVE = 6
    SQUARED_EPSILON_INSENSITIVE = 7

# Learning-rate ids.
cpdef enum LearningRate:
    CONSTANT = 0
    OPTIMAL = 1
    INVSCALING = 2

# Status codes returned by sgd_epoch.
cpdef enum Status:
    OK = 0
    NONFINITE = 1

ctypedef fused index_t:
    int32_t
    int64_t

cdef double MAX_DLOSS = 1e12
# A segment ends before the scale would drop below this (u = w / s stays finite).
cdef double TINY_SCALE = 1e-150
# With averaging, sooner: avg = (aw + A u) / B cancels terms of size |w| / s, so
# the average keeps a relative precision of about 2.2e-16 / s (scikit-learn folds
# at 1e-9). The 'optimal' schedule's scale falls by about (t0 + n) / t0 an epoch,
# so this costs a fold or two per epoch at most.
cdef double AVERAGE_MIN_SCALE = 1e-6
# With several threads and averaging, a segment (and so the threads' barrier and the
# average's fold) ends after this many positions. The lazy average weighs each update
# by its position, as if applied in order; a thread running far behind the others
# (preempted, or started late) would mix updates of very different times into the
# averaged iterates (a 2-thread epoch run one thread after the other: average off by
# more than its size). The barrier bounds that lag to a segment.
cdef int64_t AVERAGE_SEGMENT = 4096
# The largest delay of threads that own features (their rings hold 2 delay + 2 rows).
cdef int64_t MAX_DELAY = 4096


cdef inline double _loss_grad(int kind, double y, double p, double param,
                              double *grad) noexcept nogil:
    """Loss of prediction p for target y; its derivative in p goes to grad.

    Classification losses take y in {-1, +1}; param is the threshold of the
    hinge losses. Regression losses take real y; param is the epsilon of
    Huber and of the epsilon-insensitive losses. Formulas follow
    scikit-learn's _sgd_fast / _loss.
    """
    cdef double z, r, e
    if kind == LOG_LOSS:
        # one exp instead of two: with e = exp(-|z|), both branches are stable
        z = p * y
        if z > 18.0:
            e = exp(-z)
            grad[0] = -y * e
            return e
        if z < -18.0:
            grad[0] = -y
            return -z
        if z >= 0.0:
            e = exp(-z)
            grad[0] = -y * e / (1.0 + e)
            return log1p(e)
        e = exp(z)
        grad[0] = -y / (1.0 + e)
        return log1p(e) - z
    if kind == HINGE:
        z = p * y
        if z <= param:
            grad[0] = -y
            return param - z
        grad[0] = 0.0
        return 0.0
    if kind == MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            grad[0] = 0.0
            return 0.0
        if z >= -1.0:
            grad[0] = 2.0 * (1.0 - z) * -y
            return (1.0 - z) * (1.0 - z)
        grad[0] = -4.0 * y
        return -4.0 * z
    if kind == SQUARED_HINGE:
        z = param - p * y
        if z > 0.0:
            grad[0] = -2.0 * y * z
            return z * z
        grad[0] = 0.0
        return 0.0
    if kind == SQUARED_ERROR:
        r = p - y
        grad[0] = r
        return 0.5 * r * r
    r = p - y
    if kind == HUBER:
        if fabs(r) <= param:
            grad[0] = r
            return 0.5 * r * r
        grad[0] = param if r > 0.0 else -param
        return param * (fabs(r) - 0.5 * param)
    z = fabs(r) - param
    if z <= 0.0:
        grad[0] = 0.0
        return 0.0
    if kind == EPSILON_INSENSITIVE:
        grad[0] = 1.0 if r > 0.0 else -1.0
        return z
    # SQUARED_EPSILON_INSENSITIVE
    grad[0] = 2.0 * z if r > 0.0 else -2.0 * z
    return z * z


def py_loss_grad(int kind, double y, double p, double param=1.0):
    """Return ``(loss, dloss/dp)`` as the kernel computes them (for tests)."""
    cdef double g = 0.0
    cdef double value = _loss_grad(kind, y, p, param, &g)
    return value, g


cdef inline double _eta(int kind, double t, double eta0, double alpha,
                        double power_t, double optimal_init) noexcept nogil:
    """Step size of global step t (t starts at 1), as scikit-learn defines it."""
    if kind == OPTIMAL:
        return 1.0 / (alpha * (optimal_init + t - 1.0))
    if kind == INVSCALING:
        return eta0 / pow(t, power_t)
    return eta0


cdef enum:
    PREFETCH_AHEAD = 2

cdef inline void _prefetch_next(const floating *data, const index_t *indices,
                               const index_t *indptr, const int64_t *perm, int64_t i,
                               int64_t step, int64_t end, const double *targets,
                               int n_targets) noexcept nogil:
    """Prefetch the row (and its targets) this thread visits PREFETCH_AHEAD visits
    from now, and the indptr entry of the one after it."""
    cdef int64_t r
    cdef int64_t ahead = i + PREFETCH_AHEAD * step
    if ahead < end:
        r = perm[ahead]
        dp_prefetch_range(&data[indptr[r]], (indptr[r + 1] - indptr[r]) * sizeof(floating))
        dp_prefetch_range(&indices[indptr[r]], (indptr[r + 1] - indptr[r]) * sizeof(index_t))
        if targets != NULL:
            dp_prefetch(&targets[r * n_targets])
    if ahead + step < end:
        dp_prefetch_range(&indptr[perm[ahead + step]], sizeof(index_t))


cdef inline double _dot1(const floating *data, const index_t *indices, int64_t start,
                        int64_t end, const double *w) noexcept nogil:
    """Sparse row . w with four accumulators (the gathers overlap instead of
    waiting on one chain of additions)."""
    cdef double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef int64_t jj = start
    while jj + 4 <= end:
        a0 += dp_load(&w[indices[jj]]) * data[jj]
        a1 += dp_load(&w[indices[jj + 1]]) * data[jj + 1]
        a2 += dp_load(&w[indices[jj + 2]]) * data[jj + 2]
        a3 += dp_load(&w[indices[jj + 3]]) * data[jj + 3]
        jj += 4
    while jj < end:
        a0 += dp_load(&w[indices[jj]]) * data[jj]
        jj += 1
    return (a0 + a1) + (a2 + a3)


cdef inline void _axpy1(const floating *data, const index_t *indices, int64_t start,
                        int64_t end, double *w, double c) noexcept nogil:
    """w[row] += c * row, one relaxed load and store per non-zero (Hogwild!)."""
    cdef int64_t jj
    cdef index_t j
    for jj in range(start, end):
        j = indices[jj]
        dp_store(&w[j], dp_load(&w[j]) + c * data[jj])


cdef inline double _dot1_hot(const floating *data, const index_t *indices, int64_t start,
                            int64_t end, const double *w, const int32_t *hot_slot,
                            const double *hval) noexcept nogil:
    """_dot1 with the hot features read from this thread's values (K = 1). Each non-zero
    picks its address without a branch, as hot and cold features are interleaved at
    random in a row (2 threads on a9a x4, all 123 features hot: 0.91x the time of the
    generic path, which branches on every non-zero and loops over K)."""
    cdef double a0 = 0.0, a1 = 0.0
    cdef int64_t jj = start, j0, j1
    cdef int32_t s0, s1
    cdef const double *p0
    cdef const double *p1
    while jj + 2 <= end:
        j0 = indices[jj]
        j1 = indices[jj + 1]
        s0 = hot_slot[j0]
        s1 = hot_slot[j1]
        p0 = hval + s0 if s0 >= 0 else w + j0
        p1 = hval + s1 if s1 >= 0 else w + j1
        a0 += dp_load(p0) * data[jj]
        a1 += dp_load(p1) * data[jj + 1]
        jj += 2
    if jj < end:
        j0 = indices[jj]
        s0 = hot_slot[j0]
        p0 = hval + s0 if s0 >= 0 else w + j0
        a0 += dp_load(p0) * data[jj]
    return a0 + a1


cdef inline void _axpy1_hot(const floating *data, const index_t *indices, int64_t start,
                            int64_t end, double *w, double c, const int32_t *hot_slot,
                            double *hval) noexcept nogil:
    """_axpy1 with the hot features' changes made to this thread's values (K = 1)."""
    cdef int64_t jj, j
    cdef int32_t s
    cdef double *p
    for jj in range(start, end):
        j = indices[jj]
        s = hot_slot[j]
        p = hval + s if s >= 0 else w + j
        dp_store(p, dp_load(p) + c * data[jj])


ctypedef struct Flags:
    int stop                # set by the thread that sees a non-finite value
    int64_t bad_sample      # row where that happened


ctypedef struct Shared:
    # model, shared by all threads
    double *coef            # (d, K), scaled units u inside a segment
    double *intercept       # (K,)
    double *q               # (d, K) cumulative L1 penalty applied, or NULL
    # data
    const double *Y         # (n_samples, K) targets
    const double *sw        # (n_samples,) sample weights, or NULL
    const int64_t *perm     # (n,) order of the epoch
    # schedule of the epoch
    const double *eta       # (n,) step size at each position
    const double *scale     # scale[i - a] for positions a..b of the segment
    const double *ucum      # (n,) cumulative L1 penalty, or NULL
    # class weights: cw[2k] for a positive target of output k, cw[2k + 1] for a
    # negative one (scikit-learn's weight_pos / weight_neg), or NULL
    const double *cw
    # averaged SGD (module docstring), or NULL
    double *avg_coef        # (d, K) aw
    double *avg_intercept   # (K,) the intercept's aw
    const double *avg_a     # A for positions a..b (index i - a), coefficients
    const double *avg_ab    # the same for the intercept (its scale is always 1)
    # hot coordinates
    const int32_t *hot_slot  # (d,) slot or -1, or NULL when nothing is hot
    const int64_t *hot_feat  # (n_hot,) feature of each slot
    int64_t n_hot
    # per-thread scratch
    double *tbuf
    int64_t tstride
    int K
    int loss
    double loss_param
    double intercept_decay
    bint fit_intercept
    bint l1
    int merge_every
    int *stop               # set by the thread that sees a non-finite value
    int64_t *bad_sample     # row where that happened
    # threads that own features (module docstring), or row_split = NULL
    const int64_t *row_split  # (n_samples, n_split + 1) non-zero offsets
    int n_split
    long long *progress     # a counter per thread, LINE_I64 apart: rows whose part is in its ring
    double *ring            # per thread ring_stride doubles: K partial dot products per row
    int64_t ring_stride
    int64_t ring_mask       # ring rows - 1 (a power of two)
    int64_t delay
    int64_t publish_every   # a power of two, at most delay
    # per-epoch statistics (sgd_epoch's epoch_stats), or epoch_rows = 0
    int64_t epoch_rows
    int64_t n_epochs
    int64_t stats_threads
    double *epoch_stats     # (n_epochs, stats_threads, 3): loss, sum of w^2, sum of |w|
    const int64_t *owner_bounds  # (T + 1,) the owners' feature ranges, or NULL
    int64_t d


cdef enum:
    LINE_I64 = 8            # int64 counters a cache line apart
    SPINS_BEFORE_YIELD = 64  # then yield: a thread that shares its core with the one it waits for


cdef inline void _merge(Shared *sh, double *bbase, double *bdelta,
                        double *hbase, double *hval, double *iavg,
                        double *havg) noexcept nogil:
    """Add this thread's buffered changes to the shared model, re-read the hot values.

    A hot feature's change is its value now less its value at the last merge, added
    atomically: threads merge the same features in the same order, often at the same
    time, so a plain load and store would lose whole merges."""
    cdef int K = sh.K
    cdef int k
    cdef int64_t h, jk
    cdef double *w
    for k in range(K):
        if bdelta[k] != 0.0:
            dp_add(&sh.intercept[k], bdelta[k])
            bdelta[k] = 0.0
        bbase[k] = dp_load(&sh.intercept[k])
    for h in range(sh.n_hot * K):
        jk = sh.hot_feat[h // K] * K + h % K
        w = &sh.coef[jk]
        if hval[h] != hbase[h]:
            dp_add(w, hval[h] - hbase[h])
        hbase[h] = dp_load(w)
        hval[h] = hbase[h]
    if sh.avg_coef != NULL:
        for k in range(K):
            if iavg[k] != 0.0:
                dp_add(&sh.avg_intercept[k], iavg[k])
                iavg[k] = 0.0
        for h in range(sh.n_hot * K):
            if havg[h] != 0.0:
                dp_add(&sh.avg_coef[sh.hot_feat[h // K] * K + h % K], havg[h])
                havg[h] = 0.0


cdef inline void _average_step(Shared *sh, const floating *data, const index_t *indices,
                               int64_t start, int64_t end, const double *cupd,
                               const double *upd, double decay, double a_i, double ab_i,
                               double *iavg, double *havg) noexcept nogil:
    """Keep avg = (aw + A u) / B unchanged in u's step: aw -= A_i * (the step)."""
    cdef int K = sh.K
    cdef double *aw = sh.avg_coef
    cdef const int32_t *hot_slot = sh.hot_slot
    cdef int64_t jj, j
    cdef int32_t slot
    cdef int k
    cdef double x
    for k in range(K):
        iavg[k] -= ab_i * upd[k] * decay
    if a_i == 0.0:  # before average_start
        return
    if K == 1 and hot_slot == NULL:
        if cupd[0] != 0.0:
            _axpy1(data, indices, start, end, aw, -a_i * cupd[0])
        return
    for jj in range(start, end):
        j = indices[jj]
        x = data[jj]
        slot = hot_slot[j] if hot_slot != NULL else -1
        for k in range(K):
            if cupd[k] == 0.0:
                continue
            if slot >= 0:
                havg[slot * K + k] -= a_i * cupd[k] * x
            else:
                dp_store(&aw[j * K + k], dp_load(&aw[j * K + k]) - a_i * cupd[k] * x)


cdef void _dot_outputs(const floating *data, const index_t *indices, int64_t start, int64_t end,
                       const double *coef, int K, double *dot) noexcept nogil:
    """The K > 1 dot products of non-zeros start..end, four non-zeros a pass: dot[k] lives in
    memory (K is not known here), and one addition a non-zero would wait for the last one's
    store each time. Not inline: the one-output paths keep their code as it was (inlined,
    this made 2 threads on one output 5-7% slower)."""
    cdef int64_t jj = start
    cdef int k
    cdef double x, x1, x2, x3
    cdef const double *w
    cdef const double *w1
    cdef const double *w2
    cdef const double *w3
    for k in range(K):
        dot[k] = 0.0
    while jj + 4 <= end:
        w = &coef[indices[jj] * K]
        w1 = &coef[indices[jj + 1] * K]
        w2 = &coef[indices[jj + 2] * K]
        w3 = &coef[indices[jj + 3] * K]
        x, x1, x2, x3 = data[jj], data[jj + 1], data[jj + 2], data[jj + 3]
        for k in range(K):
            dot[k] += ((dp_load(&w[k]) * x + dp_load(&w1[k]) * x1)
                       + (dp_load(&w2[k]) * x2 + dp_load(&w3[k]) * x3))
        jj += 4
    while jj < end:
        w = &coef[indices[jj] * K]
        x = data[jj]
        for k in range(K):
            dot[k] += dp_load(&w[k]) * x
        jj += 1


cdef void _step_outputs(const floating *data, const index_t *indices, int64_t start, int64_t end,
                        double *coef, int K, const double *cupd) noexcept nogil:
    """Add ``cupd[k] * x`` to the K > 1 weights of non-zeros start..end, every cupd[k] non-zero
    (the log loss: no output's test in the loop)."""
    cdef int64_t jj
    cdef int k
    cdef double x
    cdef double *w
    for jj in range(start, end):
        w = &coef[indices[jj] * K]
        x = data[jj]
        for k in range(K):
            dp_store(&w[k], dp_load(&w[k]) + cupd[k] * x)


cdef void _own_dot(const floating *data, const index_t *indices, int64_t start, int64_t end,
                   const double *coef, int K, double *dot) noexcept nogil:
    """The K dot products of non-zeros start..end for a thread no other reads or writes
    alongside (an owner of these features, or a lone thread): plain loads. The relaxed atomic
    ones of _dot1 / _dot_outputs keep each weight's access apart, which the Hogwild! threads
    need and these do not (2 owners: AP 0.91x the time, BBC's 5 outputs 0.81x)."""
    cdef int64_t jj = start
    cdef int k
    cdef double x, x1, a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0
    cdef const double *w
    cdef const double *w1
    if K == 1:
        while jj + 4 <= end:
            a0 += coef[indices[jj]] * data[jj]
            a1 += coef[indices[jj + 1]] * data[jj + 1]
            a2 += coef[indices[jj + 2]] * data[jj + 2]
            a3 += coef[indices[jj + 3]] * data[jj + 3]
            jj += 4
        while jj < end:
            a0 += coef[indices[jj]] * data[jj]
            jj += 1
        dot[0] = (a0 + a1) + (a2 + a3)
        return
    for k in range(K):
        dot[k] = 0.0
    while jj + 2 <= end:
        w = &coef[indices[jj] * K]
        w1 = &coef[indices[jj + 1] * K]
        x, x1 = data[jj], data[jj + 1]
        for k in range(K):
            dot[k] += w[k] * x + w1[k] * x1
        jj += 2
    while jj < end:
        w = &coef[indices[jj] * K]
        x = data[jj]
        for k in range(K):
            dot[k] += w[k] * x
        jj += 1


cdef void _own_step(const floating *data, const index_t *indices, int64_t start, int64_t end,
                    double *coef, int K, const double *cupd) noexcept nogil:
    """Add ``cupd[k] * x`` to the weights of non-zeros start..end, for a thread no other reads
    or writes alongside (see _own_dot): plain loads and stores."""
    cdef int64_t jj
    cdef int k, moved = 0
    cdef double x, c = cupd[0]
    cdef double *w
    if K == 1:
        if c != 0.0:
            for jj in range(start, end):
                coef[indices[jj]] += c * data[jj]
        return
    for k in range(K):
        moved += cupd[k] != 0.0
    if moved == K:  # (the log loss)
        for jj in range(start, end):
            w = &coef[indices[jj] * K]
            x = data[jj]
            for k in range(K):
                w[k] += cupd[k] * x
    elif moved:  # (hinge losses: the outputs with a margin to make up)
        for jj in range(start, end):
            w = &coef[indices[jj] * K]
            x = data[jj]
            for k in range(K):
                if cupd[k] != 0.0:
                    w[k] += cupd[k] * x


cdef inline void _row_dot(Shared *sh, const floating *data, const index_t *indices, int64_t start,
                          int64_t end, const double *hval, double *dot) noexcept nogil:
    """The K dot products of non-zeros start..end with the weights (scaled units), hot
    features read from this thread's values ``hval``."""
    cdef int K = sh.K
    cdef const double *coef = sh.coef
    cdef const int32_t *hot_slot = sh.hot_slot
    cdef int64_t jj, j
    cdef int32_t slot
    cdef int k
    cdef double x
    cdef const double *w
    if K == 1:
        if hot_slot == NULL:
            dot[0] = _dot1(data, indices, start, end, coef)
        else:
            dot[0] = _dot1_hot(data, indices, start, end, coef, hot_slot, hval)
        return
    if hot_slot == NULL:
        _dot_outputs(data, indices, start, end, coef, K, dot)
        return
    for k in range(K):
        dot[k] = 0.0
    for jj in range(start, end):  # (with buffered features)
        j = indices[jj]
        x = data[jj]
        slot = hot_slot[j]
        if slot >= 0:
            for k in range(K):
                dot[k] += hval[slot * K + k] * x
        else:
            w = &coef[j * K]
            for k in range(K):
                dot[k] += dp_load(&w[k]) * x


cdef inline void _row_step(Shared *sh, const floating *data, const index_t *indices, int64_t start,
                           int64_t end, const double *cupd, double *hval) noexcept nogil:
    """Add ``cupd[k] * x`` to the weights of non-zeros start..end (hot ones: to ``hval``)."""
    cdef int K = sh.K
    cdef double *coef = sh.coef
    cdef const int32_t *hot_slot = sh.hot_slot
    cdef int64_t jj, j
    cdef int32_t slot
    cdef int k, moved = 0
    cdef double x
    cdef double *w
    if K == 1:
        if cupd[0] != 0.0:
            if hot_slot == NULL:
                _axpy1(data, indices, start, end, coef, cupd[0])
            else:
                _axpy1_hot(data, indices, start, end, coef, cupd[0], hot_slot, hval)
        return
    for k in range(K):
        moved += cupd[k] != 0.0
    if moved == 0:
        return
    if moved == K and hot_slot == NULL:
        _step_outputs(data, indices, start, end, coef, K, cupd)
        return
    for jj in range(start, end):
        j = indices[jj]
        x = data[jj]
        slot = hot_slot[j] if hot_slot != NULL else -1
        if slot >= 0:
            for k in range(K):
                hval[slot * K + k] += cupd[k] * x
        else:
            w = &coef[j * K]
            for k in range(K):
                if cupd[k] != 0.0:
                    dp_store(&w[k], dp_load(&w[k]) + cupd[k] * x)


cdef inline bint _gradient(Shared *sh, int64_t r, double s_i, double s_n, double eta, double wgt,
                           double decay, const double *dot, const double *bbase, double *bdelta,
                           double *upd, double *cupd, double *sumloss) noexcept nogil:
    """Row r's step from its K dot products (scaled units): its true-unit update ``upd``,
    the same in scaled units ``cupd``, the intercepts' change into ``bdelta`` and its loss
    into ``sumloss``. True when a prediction is not finite (nothing is then complete)."""
    cdef int K = sh.K
    cdef const double *Y = sh.Y
    cdef const double *cw = sh.cw
    cdef int k
    cdef double p, g
    for k in range(K):
        p = s_i * dot[k] + bbase[k] + bdelta[k]
        if not isfinite(p):
            return True
        sumloss[0] += _loss_grad(sh.loss, Y[r * K + k], p, sh.loss_param, &g)
        if g < -MAX_DLOSS:
            g = -MAX_DLOSS
        elif g > MAX_DLOSS:
            g = MAX_DLOSS
        upd[k] = -eta * g * wgt
        if cw != NULL:
            upd[k] *= cw[2 * k] if Y[r * K + k] > 0.0 else cw[2 * k + 1]
        cupd[k] = upd[k] / s_n
        bdelta[k] += upd[k] * decay
    return False


cdef inline void _l1_step(Shared *sh, const index_t *indices, int64_t start, int64_t end,
                          double u, double s_n, double a_n, double *hval,
                          double *havg) noexcept nogil:
    """The cumulative L1 penalty (Tsuruoka et al. 2009) on the coordinates of non-zeros
    start..end, after the gradient step; ``u`` is the penalty so far (ucum[i])."""
    cdef int K = sh.K
    cdef double *coef = sh.coef
    cdef double *q = sh.q
    cdef double *aw = sh.avg_coef
    cdef const int32_t *hot_slot = sh.hot_slot
    cdef int64_t jj, j
    cdef int32_t slot
    cdef int k
    cdef double z, wt, qv, nz
    for jj in range(start, end):
        j = indices[jj]
        slot = hot_slot[j] if hot_slot != NULL else -1
        for k in range(K):
            if slot >= 0:
                z = hval[slot * K + k]
            else:
                z = dp_load(&coef[j * K + k])
            wt = s_n * z
            qv = dp_load(&q[j * K + k])
            if wt > 0.0:
                nz = z - (u + qv) / s_n
                if nz < 0.0:
                    nz = 0.0
            elif wt < 0.0:
                nz = z + (u - qv) / s_n
                if nz > 0.0:
                    nz = 0.0
            else:
                continue
            if slot >= 0:
                hval[slot * K + k] = nz
                if a_n != 0.0:
                    havg[slot * K + k] -= a_n * (nz - z)
            else:
                dp_store(&coef[j * K + k], nz)
                if a_n != 0.0:
                    dp_store(&aw[j * K + k], dp_load(&aw[j * K + k]) - a_n * (nz - z))
            dp_store(&q[j * K + k], qv + s_n * (nz - z))


cdef inline void _weight_sums(Shared *sh, int64_t j0, int64_t j1, double s, double *row) noexcept nogil:
    """row[1], row[2] = the sum of squares and of absolute values of the true weights
    (``s`` times the scaled units) of features j0..j1."""
    cdef double sq = 0.0, ab = 0.0, w
    cdef int64_t jk
    for jk in range(j0 * sh.K, j1 * sh.K):
        w = s * dp_load(&sh.coef[jk])
        sq += w * w
        ab += fabs(w)
    row[1] = sq
    row[2] = ab


cdef inline double *_stats_row(Shared *sh, int64_t epoch, int tid) noexcept nogil:
    """Thread tid's statistics of the epoch ``epoch`` of the call."""
    return sh.epoch_stats + (epoch * sh.stats_threads + tid) * 3


cdef void _sgd_worker(const floating *data, const index_t *indices, const index_t *indptr,
                      Shared *sh, int64_t a, int64_t b, int tid, int nthreads) noexcept nogil:
    """One thread's share of positions [a, b) of the epoch (see module docstring)."""
    # Everything the loop reads goes into locals: through ``sh`` the compiler would
    # have to reload each field after every store to a double.
    cdef int K = sh.K
    cdef const double *Y = sh.Y
    cdef const double *sw = sh.sw
    cdef const int64_t *perm = sh.perm
    cdef const double *eta_at = sh.eta
    cdef const double *scale = sh.scale
    cdef const double *ucum = sh.ucum
    cdef double *aw = sh.avg_coef
    cdef const double *avg_a = sh.avg_a
    cdef const double *avg_ab = sh.avg_ab
    cdef double decay = sh.intercept_decay if sh.fit_intercept else 0.0
    cdef bint l1 = sh.l1
    cdef int merge_every = sh.merge_every
    cdef int *stop = sh.stop
    # a lone thread without buffered features: nothing else touches the weights meanwhile.
    # With one output its inlined relaxed loads and stores cost the same as plain ones, and a
    # call a row costs more on short rows (a9a's 14 words)
    cdef bint alone = nthreads == 1 and sh.hot_slot == NULL and K > 1

    cdef double *buf = sh.tbuf + tid * sh.tstride
    cdef double *bbase = buf            # intercept snapshot
    cdef double *bdelta = buf + K       # intercept delta since the last merge
    cdef double *dot = buf + 2 * K
    cdef double *upd = buf + 3 * K      # true-unit update -eta * dloss * weight
    cdef double *cupd = buf + 4 * K     # the same in scaled units
    cdef double *hbase = buf + 5 * K              # hot values at the last merge
    cdef double *hval = hbase + sh.n_hot * K      # hot values now, as this thread sees them
    cdef double *iavg = hval + sh.n_hot * K      # intercept aw delta since the last merge
    cdef double *havg = iavg + K                 # hot coordinates' aw deltas
    cdef double sumloss = 0.0
    cdef int64_t i, r, start, end, j
    cdef int k, since = 0
    cdef double s_i, s_n, eta, wgt, a_n
    # per-epoch statistics: this thread's loss in each epoch of the call; with one thread
    # the weight sums at each epoch's end (Hogwild! threads are not in step: one that
    # starts late can be a whole epoch of small rows behind, so no sums are taken)
    cdef int64_t E_n = sh.epoch_rows
    cdef int64_t epoch = -1, epoch_end = 0
    cdef double at_boundary = 0.0
    if E_n > 0 and a + tid < b:
        epoch = (a + tid) // E_n
        epoch_end = (epoch + 1) * E_n

    for k in range(K):
        bdelta[k] = 0.0
    for k in range(K):
        iavg[k] = 0.0
    for j in range(sh.n_hot * K):
        hval[j] = 0.0
        hbase[j] = 0.0
        havg[j] = 0.0
    _merge(sh, bbase, bdelta, hbase, hval, iavg, havg)

    i = a + tid
    while i < b:
        if dp_load_int(stop):
            break
        r = perm[i]
        s_i = scale[i - a]
        s_n = scale[i - a + 1]
        eta = eta_at[i]
        start = indptr[r]
        end = indptr[r + 1]
        wgt = sw[r] if sw != NULL else 1.0
        _prefetch_next(data, indices, indptr, perm, i, nthreads, b, Y, K)

        # prediction with the current (possibly stale) weights
        if alone:
            _own_dot(data, indices, start, end, sh.coef, K, dot)
        else:
            _row_dot(sh, data, indices, start, end, hval, dot)

        if _gradient(sh, r, s_i, s_n, eta, wgt, decay, dot, bbase, bdelta, upd, cupd, &sumloss):
            dp_store_int(stop, 1)
            sh.bad_sample[0] = r
            break

        # gradient step; the L2 decay of this step is the move from s_i to s_n
        if alone:
            _own_step(data, indices, start, end, sh.coef, K, cupd)
        else:
            _row_step(sh, data, indices, start, end, cupd, hval)

        if aw != NULL:
            _average_step(sh, data, indices, start, end, cupd, upd, decay,
                          avg_a[i - a], avg_ab[i - a], iavg, havg)
        a_n = avg_a[i - a + 1] if aw != NULL else 0.0

        if l1:
            _l1_step(sh, indices, start, end, ucum[i], s_n, a_n, hval, havg)

        since += 1
        if since >= merge_every:
            _merge(sh, bbase, bdelta, hbase, hval, iavg, havg)
            since = 0
        if E_n > 0 and i + nthreads >= epoch_end:  # this thread's last row of the epoch
            if nthreads == 1:
                _merge(sh, bbase, bdelta, hbase, hval, iavg, havg)  # hot values into coef
                since = 0
                _weight_sums(sh, 0, sh.d, s_n, _stats_row(sh, epoch, 0))
            _stats_row(sh, epoch, tid)[0] += sumloss - at_boundary
            at_boundary = sumloss
            epoch = (i + nthreads) // E_n
            epoch_end = (epoch + 1) * E_n
        i += nthreads

    _merge(sh, bbase, bdelta, hbase, hval, iavg, havg)
    buf[sh.tstride - 1] = sumloss
    if E_n > 0 and 0 <= epoch < sh.n_epochs:  # an epoch the segment ends inside
        _stats_row(sh, epoch, tid)[0] += sumloss - at_boundary


cdef void _sgd_worker_split(const floating *data, const index_t *indices, const index_t *indptr,
                            Shared *sh, int64_t a, int64_t b, int tid, int nthreads) noexcept nogil:
    """Thread tid's features in every row of positions [a, b) (module docstring, "Threads that
    own features"). Every thread computes every row's step from the same partial sums, so
    all of them take the same decisions (including a stop) without talking."""
    cdef int K = sh.K
    cdef const double *sw = sh.sw
    cdef const int64_t *perm = sh.perm
    cdef const double *eta_at = sh.eta
    cdef const double *scale = sh.scale
    cdef const double *ucum = sh.ucum
    cdef double *aw = sh.avg_coef
    cdef const double *avg_a = sh.avg_a
    cdef const double *avg_ab = sh.avg_ab
    cdef const int64_t *split = sh.row_split
    cdef double decay = sh.intercept_decay if sh.fit_intercept else 0.0
    cdef bint l1 = sh.l1
    cdef int T = nthreads
    cdef int64_t n = b - a
    cdef int64_t L = sh.delay
    cdef int64_t G = sh.publish_every
    cdef int64_t mask = sh.ring_mask
    cdef int64_t rstride = sh.ring_stride
    cdef long long *progress = sh.progress
    cdef double *ring = sh.ring
    cdef double *buf = sh.tbuf + tid * sh.tstride
    cdef double *bbase = buf            # the intercepts at the start
    cdef double *bdelta = buf + K       # their change since
    cdef double *dot = buf + 2 * K
    cdef double *upd = buf + 3 * K
    cdef double *cupd = buf + 4 * K
    cdef double *iavg = buf + 5 * K     # the intercepts' aw change
    cdef double sumloss = 0.0
    cdef int64_t s, q, r, i, start, end, ready = 0, seen
    cdef const int64_t *cut
    cdef int k, t, spins
    cdef double s_i, s_n, a_n, since, waited = 0.0
    # per-epoch statistics: when its step of an epoch's last row is taken, a thread's own
    # features are exactly the weights after that epoch
    cdef int64_t E_n = sh.epoch_rows
    cdef int64_t epoch = a // E_n if E_n > 0 else -1
    cdef int64_t epoch_end = (epoch + 1) * E_n
    cdef double at_boundary = 0.0
    cdef double *row

    for k in range(K):
        bbase[k] = dp_load(&sh.intercept[k])
        bdelta[k] = 0.0
        iavg[k] = 0.0
    for s in range(n + L):
        if s < n:
            # this thread's share of row s's dot products, with the steps of rows < s - L
            if s + 4 < n:
                dp_prefetch(&split[perm[a + s + 4] * (T + 1) + tid])
            if s + 2 < n:
                cut = &split[perm[a + s + 2] * (T + 1) + tid]
                dp_prefetch_range(&data[cut[0]], (cut[1] - cut[0]) * sizeof(floating))
                dp_prefetch_range(&indices[cut[0]], (cut[1] - cut[0]) * sizeof(index_t))
            r = perm[a + s]
            # row s's targets (and weight), read when its step is taken, L rows from now: at
            # a random row, several outputs' targets missed the cache (BBC, 5 outputs: a
            # tenth of the owners' samples in perf)
            dp_prefetch(&sh.Y[r * K])
            if sw != NULL:
                dp_prefetch(&sw[r])
            cut = &split[r * (T + 1) + tid]
            _own_dot(data, indices, cut[0], cut[1], sh.coef, K, ring + tid * rstride + (s & mask) * K)
            if (s + 1) & (G - 1) == 0 or s + 1 == n:
                dp_store_i64(&progress[tid * LINE_I64], s + 1)
        q = s - L  # the row whose step this thread takes now
        if q < 0:
            continue
        if ready <= q:  # wait until every thread has its part of row q in its ring
            spins = 0
            since = omp_get_wtime()
            while True:
                ready = n
                for t in range(T):
                    if t != tid:
                        seen = dp_load_i64(&progress[t * LINE_I64])
                        if seen < ready:
                            ready = seen
                if ready > q or dp_load_int(sh.stop):
                    break
                spins += 1
                if spins >= SPINS_BEFORE_YIELD:
                    sched_yield()
                    spins = 0
                else:
                    dp_cpu_relax()
            waited += omp_get_wtime() - since
            if ready <= q:
                break
        i = a + q
        r = perm[i]
        for k in range(K):
            dot[k] = 0.0
        for t in range(T):  # the same order in every thread: the same sums
            for k in range(K):
                dot[k] += ring[t * rstride + (q & mask) * K + k]
        s_i = scale[q]
        s_n = scale[q + 1]
        if _gradient(sh, r, s_i, s_n, eta_at[i], sw[r] if sw != NULL else 1.0, decay, dot, bbase,
                     bdelta, upd, cupd, &sumloss):
            if tid == 0:
                dp_store_int(sh.stop, 1)
                sh.bad_sample[0] = r
            break
        start = split[r * (T + 1) + tid]
        end = split[r * (T + 1) + tid + 1]
        _own_step(data, indices, start, end, sh.coef, K, cupd)
        a_n = 0.0
        if aw != NULL:
            _average_step(sh, data, indices, start, end, cupd, upd, decay, avg_a[q], avg_ab[q], iavg, NULL)
            a_n = avg_a[q + 1]
        if l1:
            _l1_step(sh, indices, start, end, ucum[i], s_n, a_n, NULL, NULL)
        if E_n > 0 and i + 1 == epoch_end:
            row = _stats_row(sh, epoch, tid)
            if sh.owner_bounds != NULL:
                _weight_sums(sh, sh.owner_bounds[tid], sh.owner_bounds[tid + 1], s_n, row)
            if tid == 0:
                row[0] += sumloss - at_boundary
                at_boundary = sumloss
            epoch += 1
            epoch_end += E_n
    # every thread computed the same intercepts and losses: thread 0 keeps them
    if tid == 0:
        for k in range(K):
            dp_store(&sh.intercept[k], bbase[k] + bdelta[k])
            if sh.avg_intercept != NULL:
                sh.avg_intercept[k] += iavg[k]
        if E_n > 0 and epoch < sh.n_epochs:  # an epoch the segment ends inside
            _stats_row(sh, epoch, 0)[0] += sumloss - at_boundary
    buf[sh.tstride - 1] = sumloss if tid == 0 else 0.0
    buf[sh.tstride - 2] += waited


cdef void _fold_average(Shared *sh, int64_t dK, double a_end, double ab_end, double b_end,
                        int n_threads) noexcept:
    """Turn the lazily kept average into true values (aw = avg, A = 0, B = 1)."""
    cdef int64_t jk
    cdef int k
    for k in range(sh.K):
        sh.avg_intercept[k] = (sh.avg_intercept[k] + ab_end * sh.intercept[k]) / b_end
    if dK == 0:
        return
    for jk in prange(dK, nogil=True, num_threads=n_threads, schedule="static"):
        sh.avg_coef[jk] = (sh.avg_coef[jk] + a_end * sh.coef[jk]) / b_end


def thread_buffer_stride(int n_outputs, int64_t n_hot):
    """Length of one thread's scratch row for sgd_epoch (padded to whole cache lines)."""
    cdef int64_t need = 6 * n_outputs + 3 * n_hot * n_outputs + 1
    return ((need + 7) // 8 + 1) * 8


def sgd_epoch(const floating[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
              const double[:, ::1] Y, const double[::1] sample_weight,
              const int64_t[::1] perm, double[:, ::1] coef, double[::1] intercept,
              double[:, ::1] q, double[::1] l1_state,
              const int32_t[::1] hot_slot, const int64_t[::1] hot_feat,
              double[:, ::1] tbuf, *,
              int loss, double loss_param, double alpha, double l1_ratio,
              bint l2, bint l1, int learning_rate, double eta0, double power_t,
              double optimal_init, double t_start, double intercept_decay,
              bint fit_intercept, int n_threads, int merge_every,
              const double[:, ::1] class_weight=None, double[:, ::1] avg_coef=None,
              double[::1] avg_intercept=None, double average_start=1.0,
              const int64_t[:, ::1] row_split=None, int delay=0, int64_t epoch_rows=0,
              double[:, :, ::1] epoch_stats=None, const int64_t[::1] owner_bounds=None):
    """Run one epoch of lock-free SGD over the rows ``perm`` of a CSR matrix.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of X (float32/float64; int32/int64).
    Y : (n_samples, K) float64, targets (+-1 per output for classification).
    sample_weight : (n_samples,) or (0,) for none.
    perm : (n,) int64, the rows in the order they are visited.
    coef : (n_features, K) float64, updated in place (true weights in and out).
    intercept : (K,) float64, updated in place.
    q : (n_features, K) cumulative L1 state when ``l1``, else any (0, 0) array.
    l1_state : (1,) float64, cumulative L1 penalty ``u`` so far, updated in place.
    hot_slot : (n_features,) int32 slot of each buffered feature or -1; (0,) for none.
    hot_feat : (n_hot,) int64, the feature of each slot.
    tbuf : (>= n_threads, thread_buffer_stride(K, n_hot)) float64 scratch. With
        ``row_split``, ``tbuf[t, -2]`` receives the seconds thread t waited for the others.
    Remaining keywords: the loss, penalty and schedule (see ``dpsgd.tasks.linear``);
    ``t_start`` is the global step of the first position (1-based).
    class_weight : (K, 2) float64, optional
        Weight of a positive and of a negative target of each output, multiplied
        into the sample weight (scikit-learn's weight_pos / weight_neg).
    avg_coef, avg_intercept : (n_features, K) and (K,) float64, optional
        Averaged SGD: the average of the iterates, updated in place, over the
        steps from global step ``average_start`` on (scikit-learn's ``average``).
    row_split : (n_samples, n_threads + 1) int64, optional
        Threads that own features (module docstring): thread t takes the non-zeros
        ``row_split[r, t]:row_split[r, t + 1]`` of every row r (``row_splits``), and the
        threads' column ranges must not overlap. Needs no hot features.
    delay : int
        With ``row_split``: a row's prediction misses the steps of the ``delay`` rows
        before it (>= 1).
    epoch_rows : int, default=0
        Positions an epoch: ``perm`` may hold several epochs one after the other (one
        call, so the threads stay awake between them), and ``epoch_stats`` receives
        each one's statistics. 0: none.
    epoch_stats : (ceil(n / epoch_rows), >= n_threads, 3) float64, optional
        Filled with epoch_rows: ``[e, t]`` holds thread t's losses in epoch e (their sum
        over t is the epoch's sum of losses) and its share of the sum of squares and of
        absolute values of the weights at the epoch's end (their sums over t: those of
        the whole model). Sums are taken by one thread and by threads that own features
        with ``owner_bounds``; ``[e, 0, 1:]`` stays NaN where none was taken (Hogwild!
        threads, an epoch the call did not finish).
    owner_bounds : (n_threads + 1,) int64, optional
        With ``row_split`` and ``epoch_rows``: the feature ranges the threads own, from
        ``feature_bounds`` (the same that made ``row_split``).

    Returns
    -------
    sumloss : float
        Sum of the losses of the visited samples (all outputs).
    status : int
        ``Status.OK`` or ``Status.NONFINITE``.
    bad_sample : int
        Row whose prediction was not finite, or -1.

    The caller validates the contents (finite values, indices in range); this
    function checks every shape so that it cannot read out of bounds.
    """
    cdef int64_t n = perm.shape[0]
    cdef int64_t n_samples = indptr.shape[0] - 1
    cdef int64_t d = coef.shape[0]
    cdef int K = coef.shape[1]
    cdef int64_t n_hot = hot_feat.shape[0]
    cdef int64_t tstride = thread_buffer_stride(K, n_hot)

    if n_samples < 0 or Y.shape[0] != n_samples or Y.shape[1] != K:
        raise ValueError("Y must have shape (n_samples, K)")
    if intercept.shape[0] != K or K < 1:
        raise ValueError("intercept must have K >= 1 entries")
    if sample_weight.shape[0] not in (0, n_samples):
        raise ValueError("sample_weight must be empty or have n_samples entries")
    if indptr[n_samples] > indices.shape[0] or indices.shape[0] != data.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    if l1 and (q.shape[0] != d or q.shape[1] != K):
        raise ValueError("q must have the shape of coef when l1 is on")
    if l1_state.shape[0] < 1:
        raise ValueError("l1_state must have one entry")
    if hot_slot.shape[0] not in (0, d) or (hot_slot.shape[0] == 0 and n_hot > 0):
        raise ValueError("hot_slot must be empty or have n_features entries")
    if class_weight is not None and (class_weight.shape[0] != K or class_weight.shape[1] != 2):
        raise ValueError("class_weight must have shape (K, 2)")
    if (avg_coef is None) != (avg_intercept is None):
        raise ValueError("avg_coef and avg_intercept go together")
    if avg_coef is not None and (avg_coef.shape[0] != d or avg_coef.shape[1] != K
                                 or avg_intercept.shape[0] != K):
        raise ValueError("avg_coef and avg_intercept must have the shapes of coef and intercept")
    if not average_start >= 1.0:
        raise ValueError("average_start must be >= 1")
    if n_threads < 1 or merge_every < 1:
        raise ValueError("n_threads and merge_every must be >= 1")
    if tbuf.shape[0] < n_threads or tbuf.shape[1] != tstride:
        raise ValueError(f"tbuf must have shape (>= {n_threads}, {tstride})")
    cdef int64_t i
    cdef int t
    cdef bint split = row_split is not None and n_threads > 1
    if split:
        if row_split.shape[0] != n_samples or row_split.shape[1] != n_threads + 1:
            raise ValueError(f"row_split must have shape (n_samples, {n_threads + 1})")
        if n_hot > 0:
            raise ValueError("row_split takes no hot features")
        if not 1 <= delay <= MAX_DELAY:
            raise ValueError(f"delay must be in [1, {MAX_DELAY}] with row_split")
        for i in range(n_samples):
            if row_split[i, 0] != indptr[i] or row_split[i, n_threads] != indptr[i + 1]:
                raise ValueError(f"row_split[{i}] does not span row {i}")
            for t in range(n_threads):
                if row_split[i, t] > row_split[i, t + 1]:
                    raise ValueError(f"row_split[{i}] is not sorted")
    for i in range(n):
        if perm[i] < 0 or perm[i] >= n_samples:
            raise ValueError(f"perm[{i}] = {perm[i]} is not a row of X")
    cdef int64_t n_epochs = 0
    if epoch_rows < 0 or (epoch_rows > 0) != (epoch_stats is not None):
        raise ValueError("epoch_rows (>= 1) and epoch_stats go together")
    if epoch_rows > 0:
        n_epochs = (n + epoch_rows - 1) // epoch_rows
        if (epoch_stats.shape[0] != n_epochs or epoch_stats.shape[1] < n_threads
                or epoch_stats.shape[2] != 3):
            raise ValueError(f"epoch_stats must have shape ({n_epochs}, >= {n_threads}, 3)")
    if owner_bounds is not None and split and epoch_rows > 0:
        if owner_bounds.shape[0] != n_threads + 1 or owner_bounds[0] != 0 or owner_bounds[n_threads] != d:
            raise ValueError(f"owner_bounds must have {n_threads + 1} entries from 0 to n_features")
        for t in range(n_threads):
            if owner_bounds[t] > owner_bounds[t + 1]:
                raise ValueError("owner_bounds must be increasing")
    # hot_slot must be hot_feat's inverse: the kernel indexes thread buffers by its slots
    cdef int64_t n_marked = 0
    for i in range(n_hot):
        if hot_feat[i] < 0 or hot_feat[i] >= d or hot_slot[hot_feat[i]] != i:
            raise ValueError(f"hot_feat[{i}] is not a feature whose hot_slot is {i}")
    if n_hot > 0:
        for i in range(d):
            n_marked += hot_slot[i] >= 0
        if n_marked != n_hot:
            raise ValueError("hot_slot marks features that hot_feat does not list")
    if epoch_rows > 0:
        epoch_stats[:, :, :] = 0.0
        epoch_stats[:, 0, 1:] = np.nan
    if n == 0:
        return 0.0, OK, -1

    eta_arr = np.empty(n, dtype=np.float64)
    scale_arr = np.empty(n + 1, dtype=np.float64)
    ucum_arr = np.empty(n if l1 else 0, dtype=np.float64)
    cdef bint averaged = avg_coef is not None
    avg_a_arr = np.zeros(n + 1 if averaged else 0, dtype=np.float64)
    avg_ab_arr = np.zeros(n + 1 if averaged else 0, dtype=np.float64)
    cdef double[::1] eta_v = eta_arr
    cdef double[::1] scale_v = scale_arr
    cdef double[::1] ucum_v = ucum_arr
    cdef double[::1] avg_a_v = avg_a_arr
    cdef double[::1] avg_ab_v = avg_ab_arr
    cdef double avg_b, mu, m
    cdef double min_scale = AVERAGE_MIN_SCALE if averaged else TINY_SCALE
    cdef double l2_coef = (1.0 - l1_ratio) * alpha if l2 else 0.0
    cdef double l1_coef = l1_ratio * alpha if l1 else 0.0
    cdef double u = l1_state[0]
    cdef double f, s_end
    cdef int64_t a, b, jk, dK = d * K
    cdef int tid, nt
    # the struct every thread reads and the flags they poll live in cache lines of their
    # own, not on this stack (see cacheline.h); Flags = (stop, bad_sample)
    cdef size_t flags_at = (sizeof(Shared) + 63) // 64 * 64
    private = np.zeros(DP_PRIVATE_BYTES(flags_at + sizeof(Flags)), dtype=np.uint8)
    cdef unsigned char[::1] private_v = private
    cdef Shared *sh = <Shared *> dp_private_lines(&private_v[0])
    cdef Flags *flags = <Flags *> (<unsigned char *> sh + flags_at)
    flags.stop = 0
    flags.bad_sample = -1

    with nogil:
        for i in range(n):
            eta_v[i] = _eta(learning_rate, t_start + i, eta0, alpha, power_t, optimal_init)

    sh.coef = &coef[0, 0] if dK > 0 else NULL
    sh.intercept = &intercept[0]
    sh.q = &q[0, 0] if l1 else NULL
    sh.Y = &Y[0, 0] if n_samples > 0 else NULL
    sh.sw = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    sh.perm = &perm[0]
    sh.eta = &eta_v[0]
    sh.ucum = &ucum_v[0] if l1 else NULL
    sh.cw = &class_weight[0, 0] if class_weight is not None else NULL
    sh.avg_coef = &avg_coef[0, 0] if averaged and dK > 0 else NULL
    sh.avg_intercept = &avg_intercept[0] if averaged else NULL
    sh.avg_a = &avg_a_v[0] if averaged else NULL
    sh.avg_ab = &avg_ab_v[0] if averaged else NULL
    sh.hot_slot = &hot_slot[0] if n_hot > 0 else NULL
    sh.hot_feat = &hot_feat[0] if n_hot > 0 else NULL
    sh.n_hot = n_hot
    sh.tbuf = &tbuf[0, 0]
    sh.tstride = tstride
    sh.K = K
    sh.loss = loss
    sh.loss_param = loss_param
    sh.intercept_decay = intercept_decay
    sh.fit_intercept = fit_intercept
    sh.l1 = l1
    sh.merge_every = merge_every
    sh.stop = &flags.stop
    sh.bad_sample = &flags.bad_sample
    # the threads that own features: their counters and rings (see _sgd_worker_split for
    # why 2 delay + 2 rows suffice)
    cdef int64_t publish = 1, rows = 1
    while split and publish * 8 <= delay:  # publish every delay / 4 rows or so
        publish *= 2
    while split and rows < 2 * delay + 2:
        rows *= 2
    cdef int64_t rstride = (rows * K + 7) // 8 * 8 + 8
    progress = np.zeros(LINE_I64 * n_threads + 2 * LINE_I64 if split else 0, dtype=np.int64)
    ring = np.zeros(n_threads * rstride if split else 0, dtype=np.float64)
    cdef long long[::1] progress_v = progress
    cdef double[::1] ring_v = ring
    sh.row_split = &row_split[0, 0] if split and n_samples > 0 else NULL
    sh.n_split = n_threads if split else 0
    sh.progress = <long long *> dp_private_lines(&progress_v[0]) if split else NULL
    sh.ring = &ring_v[0] if split else NULL
    sh.ring_stride = rstride
    sh.ring_mask = rows - 1
    sh.delay = delay
    sh.publish_every = publish
    sh.epoch_rows = epoch_rows
    sh.n_epochs = n_epochs
    sh.stats_threads = epoch_stats.shape[1] if epoch_rows > 0 else 0
    sh.epoch_stats = &epoch_stats[0, 0, 0] if epoch_rows > 0 else NULL
    sh.owner_bounds = &owner_bounds[0] if owner_bounds is not None and split and epoch_rows > 0 else NULL
    sh.d = d

    for tid in range(tbuf.shape[0]):
        tbuf[tid, tstride - 1] = 0.0
        tbuf[tid, tstride - 2] = 0.0
    sumloss = 0.0
    a = 0
    while a < n and not flags.stop:
        # the segment's scales: s[0] = 1, s[i + 1] = s[i] * (1 - l2_coef * eta_i),
        # and the averaging's A (B is one number: avg_b)
        with nogil:
            scale_v[0] = 1.0
            avg_b = 1.0
            b = a
            while b < n:
                f = 1.0 - l2_coef * eta_v[b]
                # a segment always takes its first step unless even that underflows
                if scale_v[b - a] * f < min_scale and (b > a or f < TINY_SCALE):
                    break
                if averaged and n_threads > 1 and b - a >= AVERAGE_SEGMENT:
                    break
                scale_v[b - a + 1] = scale_v[b - a] * f
                if l1:
                    u = u + l1_coef * eta_v[b]
                    ucum_v[b] = u
                if averaged:
                    # the step after which the average has m terms
                    m = t_start + b - average_start + 1.0
                    avg_a_v[b - a + 1] = avg_a_v[b - a]
                    avg_ab_v[b - a + 1] = avg_ab_v[b - a]
                    if m >= 1.0:
                        mu = 1.0 / m
                        if m > 1.0:
                            avg_b = avg_b / (1.0 - mu)
                        avg_a_v[b - a + 1] += mu * scale_v[b - a + 1] * avg_b
                        avg_ab_v[b - a + 1] += mu * avg_b
                b = b + 1
        if b == a:
            raise ValueError("step size times alpha is too large: the L2 decay factor "
                             f"{1.0 - l2_coef * eta_v[a]!r} leaves the weights no scale")
        sh.scale = &scale_v[0]
        for t in range(n_threads if split else 0):
            sh.progress[t * LINE_I64] = 0
        with nogil, parallel(num_threads=n_threads):
            tid = threadid()
            nt = omp_get_num_threads()
            # (OpenMP may give fewer threads than asked for: then nobody owns some features)
            if sh.row_split != NULL and nt == sh.n_split:
                _sgd_worker_split(&data[0], &indices[0], &indptr[0], sh, a, b, tid, nt)
            else:
                _sgd_worker(&data[0], &indices[0], &indptr[0], sh, a, b, tid, nt)
        for tid in range(n_threads):
            sumloss += tbuf[tid, tstride - 1]
            tbuf[tid, tstride - 1] = 0.0
        if averaged:  # avg = (aw + A u) / B, before u becomes true weights
            _fold_average(sh, dK, avg_a_v[b - a], avg_ab_v[b - a], avg_b, n_threads)
            avg_a_v[0] = 0.0
            avg_ab_v[0] = 0.0
        # fold the segment's final scale back into true weights
        s_end = scale_v[b - a]
        if s_end != 1.0:
            for jk in prange(dK, nogil=True, num_threads=n_threads, schedule="static"):
                sh.coef[jk] = sh.coef[jk] * s_end
        a = b
    l1_state[0] = u
    return sumloss, (NONFINITE if flags.stop else OK), flags.bad_sample


def feature_bounds(const index_t[::1] indices, int64_t n_features, int n_parts):
    """Bounds of ``n_parts`` contiguous feature ranges with about equal numbers of non-zeros.

    Returns an (n_parts + 1,) int64 array from 0 to n_features, for ``row_splits``. Counts in
    a scratch array of n_features entries, without copying ``indices``. Beyond 2^17
    non-zeros it counts a sample of about 2^16: one at a random place in each of as many
    equal stretches (AP x 8's 2.2 million counted whole took 1.0-1.1 ms, a fiftieth of a
    2-thread fit). A share then errs by about 0.2% of the non-zeros; the random place keeps
    rows of one length (one-hot fields) from putting every sample at the same place in a row.
    """
    cdef int64_t nnz = indices.shape[0], jj, j, start, total = 0, counted = 0
    cdef int64_t stride = 1 if nnz <= (1 << 17) else nnz >> 16
    cdef int t = 1
    cdef rng_t rng
    if n_parts < 1 or n_features < 0:
        raise ValueError("n_parts must be >= 1 and n_features >= 0")
    counts = np.zeros(n_features, dtype=np.int64)
    bounds = np.full(n_parts + 1, n_features, dtype=np.int64)
    cdef int64_t[::1] c = counts
    cdef int64_t[::1] b = bounds
    b[0] = 0
    rng_seed(&rng, <uint64_t>nnz, 0)
    with nogil:
        start = 0
        while start < nnz:
            jj = start if stride == 1 else start + <int64_t>rng_below(&rng, <uint64_t>min(stride, nnz - start))
            j = indices[jj]
            if 0 <= j < n_features:
                c[j] += 1
                counted += 1
            start += stride
        for j in range(n_features):
            total += c[j]
            while t < n_parts and total * n_parts >= t * counted:
                b[t] = j + 1
                t += 1
    return bounds


def row_splits(const index_t[::1] indices, const index_t[::1] indptr, const int64_t[::1] bounds,
               bint check=True):
    """Where each row's non-zeros cross the features ``bounds``, for sgd_epoch's ``row_split``.

    Parameters
    ----------
    indices, indptr : CSR arrays of X; each row's indices must be sorted.
    bounds : (T + 1,) int64
        Increasing feature bounds: thread t owns features ``bounds[t]:bounds[t + 1]``
        (bounds[0] = 0, bounds[T] = n_features).

    check : bool
        Scan every non-zero and return None when a row's indices are not sorted (the owners'
        parts would not be contiguous). False: binary searches, for a caller whose rows are
        known to be sorted (RCV1-like, 15 million non-zeros: 45 ms scanned). On unsorted rows
        the offsets then still lie within each row, in order.

    Returns
    -------
    (n_samples, T + 1) int64 array whose entry [r, t] is the first non-zero of row r with a
    feature >= bounds[t] (indptr[r + 1] at t = T), or None (see ``check``).
    """
    cdef int64_t n = indptr.shape[0] - 1
    cdef int T = bounds.shape[0] - 1
    cdef int64_t r, jj
    cdef int t
    if T < 1 or n < 0:
        raise ValueError("bounds needs two entries or more and indptr one")
    for t in range(T):
        if bounds[t] > bounds[t + 1]:
            raise ValueError("bounds must be increasing")
    if indptr[n] > indices.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    out = np.empty((n, T + 1), dtype=np.int64)
    cdef int64_t[:, ::1] o = out
    cdef bint ok = True
    cdef int64_t lo, hi, mid
    if not check:
        with nogil:
            for r in range(n):
                o[r, 0] = indptr[r]
                o[r, T] = indptr[r + 1]
                lo = indptr[r]
                for t in range(1, T):  # the first non-zero at or after lo with a feature >= bounds[t]
                    hi = indptr[r + 1]
                    while lo < hi:
                        mid = lo + (hi - lo) // 2
                        if indices[mid] < bounds[t]:
                            lo = mid + 1
                        else:
                            hi = mid
                    o[r, t] = lo
        return out
    with nogil:
        for r in range(n):
            t = 0
            o[r, 0] = indptr[r]
            for jj in range(indptr[r], indptr[r + 1]):
                if jj > indptr[r] and indices[jj] <= indices[jj - 1]:
                    ok = False
                    break
                while t < T and indices[jj] >= bounds[t + 1]:
                    t += 1
                    o[r, t] = jj
            if not ok:
                break
            while t < T:
                t += 1
                o[r, t] = indptr[r + 1]
    return out if ok else None


def stream_epoch(const floating[::1] data, const index_t[::1] indices,
                 const index_t[::1] indptr, const int64_t[::1] perm,
                 double[:, ::1] coef, int n_threads, double c=0.0):
    """The memory-traffic floor of ``sgd_epoch``: same visiting order and threads,
    the same gather (dot product) and scatter (``coef[j] += c * x``), no loss,
    schedule, scale or buffering. ``c = 0`` leaves coef unchanged but the compiler
    cannot drop the stores. Returns the sum of the dot products.
    """
    cdef int64_t n = perm.shape[0]
    cdef int64_t n_samples = indptr.shape[0] - 1
    cdef int K = coef.shape[1]
    cdef int64_t i, jj, j, r
    cdef int k, tid, nt
    cdef double x, acc, total = 0.0
    cdef double *w
    if n_threads < 1:
        raise ValueError("n_threads must be >= 1")
    if n_samples < 0 or indptr[n_samples] > indices.shape[0] or indices.shape[0] != data.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    for i in range(n):
        if perm[i] < 0 or perm[i] >= n_samples:
            raise ValueError(f"perm[{i}] is not a row of X")
    if n == 0 or coef.shape[0] == 0:
        return 0.0
    totals = np.zeros((n_threads, 8), dtype=np.float64)
    cdef double[:, ::1] tot = totals
    cdef double *cw = &coef[0, 0]
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        nt = omp_get_num_threads()
        acc = 0.0
        i = tid
        while i < n:
            r = perm[i]
            _prefetch_next(&data[0], &indices[0], &indptr[0], &perm[0], i, nt, n, NULL, 0)
            if K == 1:
                acc = acc + _dot1(&data[0], &indices[0], indptr[r], indptr[r + 1], cw)
                _axpy1(&data[0], &indices[0], indptr[r], indptr[r + 1], cw, c)
            else:
                for jj in range(indptr[r], indptr[r + 1]):
                    w = cw + indices[jj] * K
                    for k in range(K):
                        acc = acc + dp_load(&w[k]) * data[jj]
                for jj in range(indptr[r], indptr[r + 1]):
                    w = cw + indices[jj] * K
                    for k in range(K):
                        dp_store(&w[k], dp_load(&w[k]) + c * data[jj])
            i = i + nt
        tot[tid, 0] = acc
    return float(totals[:, 0].sum())
