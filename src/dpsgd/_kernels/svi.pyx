"""Stochastic variational inference for LDA (Hoffman, Blei, Wang & Paisley), lock-free.

Corpus: CSR documents x words with float64 counts, int32 word ids, int64 indptr.

Topics.  The variational topic-word parameters lambda (K x V) are stored
word-major, as ``lam`` of shape (V, K), so that a word's K topic values are one
contiguous run (the E-step gathers them, the M-step scatters them). They are
kept in a lazily scaled form::

    lambda[w, k] = A * lam[w, k] + eta * (1 - A)

where A = prod_s (1 - rho_s) over the global steps taken in the current chunk of
minibatches. The global step ``lambda <- (1 - rho) lambda + rho (eta + D/|B| S)``
then costs O(1) for its dense shrink (A *= 1 - rho, and eta (1 - A) follows) and
touches only the batch's word columns: ``lam[w] += rho D/|B| S[w] / A_next``.
A depends only on the step index, so the caller precomputes it (``scale``), and
updates from different threads commute exactly: each one carries its own scale.
``lam_sum[k] = sum_w lam[w, k]`` is kept along, for E[log beta]'s normaliser. At
the end of a call everything is folded back into true lambda.

E[log beta] is needed only for the words of the current minibatch, so it is
computed for those columns, never for all K x V, in single precision (estep.h). The
minibatch's rows (K x |batch vocabulary| floats) are kept where they take at most a tenth of
the model and data (_size_rows); else each document computes the rows of its own words as
its E-step starts, and the step a word's row again, in K floats a non-zero of the document,
but for the rows of the minibatch's most frequent words, computed once into a cache.

Modes.  BATCH: the threads share one minibatch at a time (its E-step over
documents in parallel, then the step added to lambda a range of words a thread, so that no
thread needs an accumulator and a word's shares are added in the same order on any number of
threads), one global step per minibatch: classic online LDA, scikit-learn's update sequence
(the E-step's iterations in single precision, estep.h). HOGWILD: each thread takes whole
minibatches from a shared counter and applies its own global step to the one shared lambda
without locks (atomic adds, no waiting): the DPSVI core layer. ESTEP: fixed topics (lambda,
from which it computes exp(E[log beta]) of every word as floats), documents in parallel; for
transform and evaluation, and, with the sufficient statistics collected, for full-batch
variational EM.
"""
import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport log, fabs, fmax, isfinite, NAN
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memcpy

from dpsgd._kernels.atomics cimport (dp_load, dp_store, dp_add, dp_load_int, dp_store_int,
                                     dp_load_i64, dp_fetch_add_i64)
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_uniform

cdef extern from "prefetch.h" nogil:
    void dp_prefetch_range(const void *start, size_t nbytes)

cdef extern from "omp_shim.h" nogil:
    int omp_get_num_threads()

cdef extern from "estep.h" nogil:
    # in single precision: newg = sum over the n words of counts[i] / (etheta . e_r + eps[r]) e_r,
    # r = rows[i] (through col unless NULL), e_r = eb's row r; AVX2+FMA where the CPU has them.
    # Rows of exp(E[log beta]) are stored divided by their largest value, top, and eps[r] is
    # machine epsilon / top (dp_estep_row): scikit-learn's E-step, in floats' range.
    void dp_estep_pass(const float *etheta, const float *eb, const float *eps, const int32_t *rows,
                       const int32_t *col, const double *counts, int64_t n, int K, float *newg)
    float dp_estep_dot(const float *etheta, const float *e, int K)
    float dp_estep_row(const double *x, float *out, int K, int R)
    void dp_estep_theta(const double *x, float *out, int K, int R)
    # exp(E[log theta]) as floats from gamma (K doubles) and c = psi(sum gamma), zeros up to R,
    # in single precision; -1 (nothing written) where c is beyond its range
    int dp_estep_etheta(const double *g, double c, float *out, int K, int R)
    # a word's row of exp(E[log beta]) scaled by a power of 2, and its eps, from lambda's row
    # (A l + shift) and c = psi of the column sums, split (each -1 where out of its range)
    float dp_estep_beta(const double *l, double A, double shift, int clamp, const float *cr, const int32_t *m,
                        float *out, int32_t *ex, int K, int R)
    int dp_estep_beta_split(const double *c, float *cr, int32_t *m, int K, int R)

cdef extern from "exp_psi.h" nogil:
    # out[k] = exp(psi(x[k]) - (sub[k] if sub != NULL else c)); branch-free and vectorised,
    # relative error below 2e-15 (1 + |psi(x[k]) - c - log y|), y = x[k] + 10 below 10, else x[k],
    # for results that are normal numbers
    void dp_exp_psi(const double *x, const double *sub, double c, double *out, int n)
    int dp_ep_force_base
    int dp_ep_cpu_v3()


def use_baseline(bint on):
    """Run the baseline (SSE2) copies of exp_psi.h's and estep.h's loops even where the
    CPU has AVX2 and FMA (for tests); returns whether the AVX2+FMA copies were in use before."""
    global dp_ep_force_base
    was = bool(dp_ep_cpu_v3())
    dp_ep_force_base = 1 if on else 0
    return was

cpdef enum Mode:
    BATCH = 0
    HOGWILD = 1
    ESTEP = 2

# Taylor coefficients psi^(n)(x0) / n! at psi's positive root x0 (n = 0..18), from
# scipy.special.polygamma: near x0 the recurrence below loses relative accuracy
# to cancellation, the series does not.
cdef double PSI_ROOT = 1.4616321449683623
cdef double[19] PSI_ROOT_TAYLOR = [
    -9.241265521729427e-17, 0.9676722454476214, -0.44276316898359214,
    0.2584997609556512, -0.16394270544240658, 0.10782405069126239,
    -0.07219956125645476, 0.048804288164143145, -0.033161126474847376,
    0.022597648232218125, -0.015424765904948968, 0.010538791616612182,
    -0.007204534386356875, 0.004926781395729858, -0.0033698016554393312,
    0.00230512632673493, -0.0015769367714301987, 0.0010788252019162975,
    -0.000738070938996006
]


cdef inline double digamma(double x) noexcept nogil:
    """psi(x) for x > 0: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 6, then
    the asymptotic series (Bernoulli terms to x**-14, error below 2e-13).

    The recurrence's sum of 1/x_i is kept as one fraction num/den, so it costs
    one division instead of up to six (the E-step calls this K times per
    iteration of every document). Within 0.25 of the positive root x0 a Taylor
    series in (x - x0) keeps the relative error small where psi is near 0."""
    cdef double r = 0.0, f, num = 0.0, den = 1.0, t
    cdef int n
    if not x > 0.0:
        return NAN
    t = x - PSI_ROOT
    if -0.25 < t < 0.25:
        r = PSI_ROOT_TAYLOR[18]
        for n in range(17, -1, -1):
            r = r * t + PSI_ROOT_TAYLOR[n]
        return r
    if x < 1e-6:  # keep den away from underflow
        r = -1.0 / x
        x += 1.0
    while x < 6.0:
        num = num * x + den
        den = den * x
        x += 1.0
    r -= num / den
    f = 1.0 / (x * x)
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (
        1.0 / 240 - f * (1.0 / 132 - f * (691.0 / 32760 - f / 12.0))))))


def py_digamma(x):
    """The kernel's digamma, element-wise (for tests)."""
    arr = np.asarray(x, dtype=np.float64)
    out = np.empty_like(arr)
    cdef double[::1] src = arr.ravel()
    cdef double[::1] dst = out.ravel()
    cdef Py_ssize_t i
    for i in range(src.shape[0]):
        dst[i] = digamma(src[i])
    return out


def py_exp_psi(x, c=0.0):
    """The kernel's exp(psi(x) - c), element-wise (for tests); ``c`` a scalar or like ``x``."""
    arr = np.ascontiguousarray(x, dtype=np.float64).ravel()
    out = np.empty_like(arr)
    cdef const double[::1] src = arr
    cdef double[::1] dst = out
    cdef const double[::1] sub
    if np.ndim(c) == 0:
        if src.shape[0] > 0:
            dp_exp_psi(&src[0], NULL, float(c), &dst[0], src.shape[0])
    else:
        sub = np.ascontiguousarray(np.broadcast_to(c, arr.shape), dtype=np.float64).ravel()
        if src.shape[0] > 0:
            dp_exp_psi(&src[0], &sub[0], 0.0, &dst[0], src.shape[0])
    return out.reshape(np.shape(x))


cdef inline void _etheta_f(const double *g, int K, int R, float *out, double *room) noexcept nogil:
    """out = exp(E[log theta]) of gamma ``g`` as floats, below the floor 0, zeros up to R
    (estep.h, in single precision; in double through ``room``, K doubles, where psi(sum g) is
    beyond the float path's range)."""
    cdef double total = 0.0, c
    cdef int k
    for k in range(K):
        total += g[k]
    c = digamma(total)
    if dp_estep_etheta(g, c, out, K, R) != 0:
        dp_exp_psi(g, NULL, c, room, K)
        dp_estep_theta(room, out, K, R)


def py_estep_etheta(gamma):
    """The E-step's exp(E[log theta]) of each row of ``gamma`` as float32 (for tests)."""
    g = np.ascontiguousarray(np.atleast_2d(gamma), dtype=np.float64)
    cdef int K = g.shape[1], R = _lanes(g.shape[1])
    out = np.empty((g.shape[0], R), dtype=np.float32)
    room = np.empty(K)
    cdef const double[:, ::1] gv = g
    cdef float[:, ::1] ov = out
    cdef double[::1] rv = room
    cdef Py_ssize_t i
    for i in range(g.shape[0]):
        _etheta_f(&gv[i, 0], K, R, &ov[i, 0], &rv[0])
    return out[:, :K]


def gamma_init(int64_t doc, int K, uint64_t seed):
    """Initial gamma of document ``doc``: uniform in [0.8, 1.2), from the stream (seed, doc)."""
    out = np.empty(K)
    cdef double[::1] o = out
    _gamma_init(&o[0], K, seed, doc)
    return out


cdef inline void _gamma_init(double *gamma, int K, uint64_t seed, int64_t doc) noexcept nogil:
    # like scikit-learn's and gensim's Gamma(100, 1/100) start: mean 1, spread 0.1
    cdef rng_t r
    cdef int k
    rng_seed(&r, seed, <uint64_t>doc)
    for k in range(K):
        gamma[k] = 0.8 + 0.4 * rng_uniform(&r)


ctypedef struct Corpus:
    const double *counts
    const int32_t *indices
    const int64_t *indptr


ctypedef struct Params:
    int K
    int R  # a float row's length: K rounded up to whole vectors of 8, the rest zeros (estep.h)
    double alpha
    double eta
    int max_iter
    double tol
    uint64_t seed


ctypedef struct Beta:  # where a minibatch's rows of exp(E[log beta]) come from (_beta_row)
    const double *lam  # rows of K doubles in the scaled form: lambda = A lam + shift
    double A, shift
    bint clamp  # read entries below 0 as 0 (rows pulled across ranks: compression's rounding)
    bint shared  # other threads add to lam meanwhile (HOGWILD): read it atomically
    const double *psi  # K doubles: psi of lambda's column sums
    const float *cr  # R floats and R int32s: psi split for the float path (dp_estep_beta_split),
    const int32_t *m  # or cr NULL: the double path
    # the minibatch's most frequent words' rows, computed once (_cache_words), or slot NULL:
    # word w's slot is slot[local[w]] (-1: not cached), its row cache + slot R, its eps cache_eps[slot]
    const int32_t *local
    const int32_t *slot
    const float *cache
    const float *cache_eps


cdef inline float _beta_row(const Beta *b, int64_t row, int K, int R, double *room, int32_t *ex,
                            float *out) noexcept nogil:
    """Row ``row``'s exp(E[log beta]) into ``out`` (R floats, scaled) and its eps returned
    (estep.h); ``room``: K doubles, ``ex``: R int32s. In single precision (dp_estep_beta) where
    lambda's entries lie in [1e-30, 1e30] and psi in its range; else dp_exp_psi then
    dp_estep_row."""
    cdef const double *l = b.lam + row * K
    cdef double A = b.A, shift = b.shift
    cdef float eps
    cdef int k
    if b.shared:  # a copy read atomically, then as it stands
        for k in range(K):
            room[k] = dp_load(&l[k])
        l = room
    if b.cr != NULL:
        eps = dp_estep_beta(l, A, shift, b.clamp, b.cr, b.m, out, ex, K, R)
        if eps >= 0.0:
            return eps
    for k in range(K):
        room[k] = A * (fmax(l[k], 0.0) if b.clamp else l[k]) + shift
    dp_exp_psi(room, b.psi, 0.0, room, K)
    return dp_estep_row(room, out, K, R)


cdef Beta _beta(const double *lam, double A, double shift, bint clamp, bint shared, const double *psi, int K,
                int R, float *cr, int32_t *m) noexcept nogil:
    """The rows of ``lam`` with the psi sums ``psi``, and the float path's split in ``cr`` and
    ``m`` (R each) where psi is within its range. (Returned by value: a parallel block's
    variable is private to each thread only where the block assigns it.)"""
    cdef Beta b
    b.lam, b.A, b.shift, b.clamp, b.shared, b.psi, b.m = lam, A, shift, clamp, shared, psi, m
    b.cr = cr if dp_estep_beta_split(psi, cr, m, K, R) == 0 else NULL
    b.local, b.slot, b.cache, b.cache_eps = NULL, NULL, NULL, NULL
    return b


cdef int64_t _cache_words(const int32_t *ptr, int64_t nv, int64_t cap, int32_t *slot,
                          int32_t *cached) noexcept nogil:
    """The minibatch's words whose rows are cached: those with the most non-zeros (word u's in
    ptr[u + 1], as _batch_vocabulary and _count_rows leave them), at most ``cap``. slot[u] is
    word u's slot, -1 for the others; cached[s] the word in slot s. Returns their number."""
    cdef int64_t hist[64]  # words by their non-zeros; 63 and more share the last
    cdef int64_t u, n = 0, total = 0
    cdef int t, cu
    for t in range(64):
        hist[t] = 0
    for u in range(nv):
        hist[min(ptr[u + 1], 63)] += 1
    t = 64  # the words of t and above all fit
    while t > 1 and total + hist[t - 1] <= cap:
        t -= 1
        total += hist[t]
    for u in range(nv):  # them, then as many of t - 1's as fit, in the words' order
        cu = min(ptr[u + 1], 63)
        if cu >= t or (cu == t - 1 and total < cap):
            if cu < t:
                total += 1
            slot[u] = <int32_t>n
            cached[n] = <int32_t>u
            n += 1
        else:
            slot[u] = -1
    return n


cdef void _kept_rows(const Beta *b, const int32_t *cached, const int32_t *rows, int64_t s0, int64_t s1, int K,
                     int R, double *room, int32_t *ex, float *eb, float *eps) noexcept nogil:
    """The kept rows s0..s1 into ``eb``'s rows and ``eps``: slot s holds word u = cached[s]'s
    (the cache), or word s's where ``cached`` is NULL (every row kept); its source row is
    rows[u], or u where ``rows`` is NULL."""
    cdef int64_t sl, u
    for sl in range(s0, s1):
        u = cached[sl] if cached != NULL else sl
        eps[sl] = _beta_row(b, rows[u] if rows != NULL else u, K, R, room, ex, eb + sl * R)


def py_estep_beta(x, psi):
    """The E-step's rows of exp(E[log beta]) (float32, each scaled: by a power of 2 to a
    largest value in [1, 2), or to 1 on the double path) and their eps, from ``x`` (n x K,
    lambda's rows) and ``psi`` (K,): psi of the column sums (for tests)."""
    xs = np.ascontiguousarray(np.atleast_2d(x), dtype=np.float64)
    ps = np.ascontiguousarray(psi, dtype=np.float64)
    cdef int K = xs.shape[1], R = _lanes(xs.shape[1])
    if ps.shape != (K,):
        raise ValueError("psi must have one entry a column of x")
    out = np.empty((xs.shape[0], R), dtype=np.float32)
    eps = np.empty(xs.shape[0], dtype=np.float32)
    room = np.empty(K)
    cr = np.empty(R, dtype=np.float32)
    m = np.empty(R, dtype=np.int32)
    ex = np.empty(R, dtype=np.int32)
    cdef const double[:, ::1] xv = xs
    cdef const double[::1] pv = ps
    cdef float[:, ::1] ov = out
    cdef float[::1] ev = eps, crv = cr
    cdef double[::1] rv = room
    cdef int32_t[::1] mv = m, exv = ex
    cdef Beta b
    cdef Py_ssize_t i
    if xs.shape[0] == 0:
        return out[:, :K], eps
    b = _beta(&xv[0, 0], 1.0, 0.0, False, False, &pv[0], K, R, &crv[0], &mv[0])
    for i in range(xs.shape[0]):
        ev[i] = _beta_row(&b, i, K, R, &rv[0], &exv[0], &ov[i, 0])
    return out[:, :K], eps


cdef int _e_step_doc(Corpus *c, int64_t d, int64_t stream, const Beta *beta, const int32_t *col, float *eb,
                     float *eps, int32_t *ex, Params *p, double *gamma, float *fbuf, double *etheta, double *acc,
                     bint atomic_acc) noexcept nogil:
    """E-step of document d against exp(E[log beta]), its rows scaled, each with its ``eps``
    (estep.h).

    With ``beta``, the document's own rows are computed first, into ``eb`` and ``eps`` (room
    for its non-zeros; word w's source row is col[w], or w where ``col`` is NULL; ``ex``: R
    int32s of room). Without, ``eb`` and ``eps`` hold every row it reads (word w's is col[w],
    or w), and unless ``acc`` is NULL the document's sufficient statistics, exp(E[log theta])
    * n / phinorm, are added to ``acc``'s rows (atomically if ``atomic_acc``: other threads
    share ``acc``).

    ``fbuf`` holds 2 R floats (the pass's new gamma and exp(E[log theta]), estep.h's rows of
    R), ``etheta`` K doubles of room (the rows' and _etheta_f's double paths); gamma starts from
    the stream (p.seed, ``stream``). Leaves gamma (prior included) in ``gamma`` and the final
    exp(E[log theta]) as floats in ``fbuf + R`` (what _m_step_rows reads; an empty document
    leaves it as it was, and nothing reads it).

    Returns the number of iterations, or -1 if not finite."""
    cdef int K = p.K, R = p.R
    cdef int64_t start = c.indptr[d], end = c.indptr[d + 1], i, r
    cdef int it, k, iters = 0
    cdef int32_t sl
    cdef double change, s, cnt
    cdef const float *e
    cdef double *a
    cdef float *newg = fbuf
    cdef float *etheta_f = fbuf + R
    cdef const int32_t *rows = c.indices + start
    if beta != NULL:
        for i in range(start, end):
            if beta.slot != NULL:
                sl = beta.slot[beta.local[c.indices[i]]]
                if sl >= 0:  # a cached row: copied, so that the pass reads the document's rows in order
                    memcpy(eb + (i - start) * R, beta.cache + sl * R, R * sizeof(float))
                    eps[i - start] = beta.cache_eps[sl]
                    continue
            if i + 1 < end:  # the next row, from the cache or memory, while this one is computed
                r = col[c.indices[i + 1]] if col != NULL else c.indices[i + 1]
                dp_prefetch_range(beta.lam + r * K, K * sizeof(double))
            r = col[c.indices[i]] if col != NULL else c.indices[i]
            eps[i - start] = _beta_row(beta, r, K, R, etheta, ex, eb + (i - start) * R)
        rows = NULL  # row i of eb is the document's non-zero i
        col = NULL
    _gamma_init(gamma, K, p.seed, stream)
    _etheta_f(gamma, K, R, etheta_f, etheta)
    if start == end:  # an empty document: its gamma is the prior
        for k in range(K):
            gamma[k] = p.alpha
        return 0
    for it in range(p.max_iter):
        iters = it + 1
        dp_estep_pass(etheta_f, eb, eps, rows, col, c.counts + start, end - start, R, newg)
        change = 0.0
        for k in range(K):
            s = p.alpha + <double>etheta_f[k] * newg[k]
            change += fabs(s - gamma[k])
            gamma[k] = s
        _etheta_f(gamma, K, R, etheta_f, etheta)
        if change / K < p.tol:
            break
    if not isfinite(gamma[0]):
        return -1
    if acc != NULL:
        for i in range(start, end):  # (ESTEP's: without beta)
            r = col[c.indices[i]] if col != NULL else c.indices[i]
            e = eb + r * R
            cnt = c.counts[i] / (dp_estep_dot(etheta_f, e, R) + eps[r])
            a = acc + r * K
            if atomic_acc:
                for k in range(K):
                    dp_add(&a[k], etheta_f[k] * cnt)
            else:
                for k in range(K):
                    a[k] += etheta_f[k] * cnt
    return iters


cdef int64_t _batch_vocabulary(Corpus *c, const int64_t *docs, int64_t nd, int32_t *col,
                               int32_t *vocab, int32_t *ptr) noexcept nogil:
    """Distinct words of the documents ``docs``: vocab[u] = w and col[w] = u; each word's
    number of non-zeros in ptr[u + 1] (_row_index's counts), ptr[0] = 0."""
    cdef int64_t j, i, nv = 0
    cdef int32_t w
    ptr[0] = 0
    for j in range(nd):
        for i in range(c.indptr[docs[j]], c.indptr[docs[j] + 1]):
            w = c.indices[i]
            if col[w] < 0:
                col[w] = <int32_t>nv
                vocab[nv] = w
                nv += 1
                ptr[nv] = 0
            ptr[col[w] + 1] += 1
    return nv


cdef void _psi_sum(const double *lam_sum, double A, double eta, int64_t V, int K,
                   double *out) noexcept nogil:
    cdef int k
    for k in range(K):
        out[k] = digamma(A * dp_load(&lam_sum[k]) + V * eta * (1.0 - A))


cdef void _count_rows(Corpus *c, const int64_t *docs, int64_t nd, const int32_t *col, int64_t nv,
                      int32_t *ptr) noexcept nogil:
    """ptr[u + 1] = the number of non-zeros of the documents ``docs`` in local row u = col[w],
    ptr[0] = 0 (what _batch_vocabulary leaves, for rows mapped beforehand)."""
    cdef int64_t j, i, u
    for u in range(nv + 1):
        ptr[u] = 0
    for j in range(nd):
        for i in range(c.indptr[docs[j]], c.indptr[docs[j] + 1]):
            ptr[col[c.indices[i]] + 1] += 1


cdef inline int _entry_shift(int64_t docs, int64_t doc, int bits) noexcept nogil:
    """How _row_index's entries hold a non-zero: (j << shift) | offset in one int32, shift the
    bits of the largest offset (``doc`` - 1), where the positions j < ``docs`` fit in the
    ``bits`` - shift bits left; else -1: j and the offset in two int32s. One int32 halves the
    entries, the largest part of a block (AP: 17,000 non-zeros in a minibatch of 128)."""
    cdef int shift = 0
    while (<int64_t>1 << shift) < doc:
        shift += 1
    if shift <= bits and max(docs - 1, 0) >> (bits - shift) == 0:
        return shift
    return -1


cdef inline int64_t _entry_ints(int shift) noexcept nogil:
    return 1 if shift >= 0 else 2


cdef void _row_index(Corpus *c, const int64_t *docs, int64_t nd, const int32_t *col, int64_t nv,
                     int32_t *ptr, int32_t *ent, int shift) noexcept nogil:
    """The non-zeros of the documents ``docs`` grouped by their local row u = col[w], in the
    documents' order, from the rows' counts in ptr[u + 1] (_batch_vocabulary, _count_rows):
    row u's are entries ptr[u]..ptr[u + 1] (``ptr``: nv + 1 int32s), each its document's
    position j in ``docs`` and its offset in that document's non-zeros, packed as
    _entry_shift's ``shift`` says (``ent``). Needed only by the M-step: BATCH builds it while
    the E-steps run."""
    cdef int64_t j, i, i0, u
    for u in range(nv):
        ptr[u + 1] += ptr[u]
    for j in range(nd):  # ptr[u] is row u's next free entry, then its end
        i0 = c.indptr[docs[j]]
        for i in range(i0, c.indptr[docs[j] + 1]):
            u = col[c.indices[i]]
            if shift >= 0:
                ent[ptr[u]] = <int32_t>((j << shift) | (i - i0))
            else:
                ent[2 * ptr[u]] = <int32_t>j
                ent[2 * ptr[u] + 1] = <int32_t>(i - i0)
            ptr[u] += 1
    for u in range(nv, 0, -1):
        ptr[u] = ptr[u - 1]
    ptr[0] = 0


# what computing a word's row of exp(E[log beta]) costs the step, in non-zeros' shares (a row is
# K exponentials and a gather of lambda; a share a dot product and an axpy of K)
cdef enum:
    ROW_COST = 16


cdef void _split_rows(const int32_t *ptr, int64_t nv, int n_parts, int64_t row_cost,
                      int64_t *bounds) noexcept nogil:
    """Cut the rows 0..nv into ``n_parts`` ranges bounds[t]..bounds[t + 1] that cost about the
    same: a row's entries (``ptr``: _row_index's) plus ``row_cost`` (ROW_COST where the step
    computes its rows of exp(E[log beta]) again, else 0)."""
    cdef int64_t u = 0, total = ptr[nv] + row_cost * nv
    cdef int t
    bounds[0] = 0
    for t in range(1, n_parts):
        while u < nv and (ptr[u] + row_cost * u) * n_parts < total * t:
            u += 1
        bounds[t] = u
    bounds[n_parts] = nv


cdef void _m_step_rows(Corpus *c, const int64_t *docs, const int32_t *ptr, const int32_t *ent, int shift,
                       const Beta *beta, const float *eb, const float *eps_rows,
                       const float *thetas, Params *p, double coef, int64_t u0, int64_t u1, double *out,
                       const int32_t *rows, bint atomic, double *acc, double *partial, float *room,
                       int32_t *ex) noexcept nogil:
    """The step's term for the local rows u0..u1 (_row_index's): row u's sufficient
    statistics, sum over its non-zeros of n etheta_d / (etheta_d . e_u + eps_u) (scikit-learn's,
    for the scaled rows of estep.h; ``thetas``: the documents' exp(E[log theta]) as floats, R a
    document), times ``coef`` e_u, added to ``out``'s row rows[u] (u when ``rows`` is NULL),
    atomically if ``atomic``, and its K sums to ``partial``. e_u and eps_u are row u of the
    kept ``eb`` and ``eps_rows``; where ``eb`` is NULL, ``beta``'s cached row, or computed
    again from its row rows[u] (or u) into ``room`` (R floats; ``ex``: R int32s of room).
    ``acc``: K doubles; ``ent``, ``shift``: _row_index's.

    A row's statistics are summed in the documents' order by one thread. So no thread needs
    an accumulator of its own (vocabulary x K doubles); BATCH's threads take a range of rows
    each, and a row comes out the same on any number of threads (the column sums, grouped by
    thread, are a rounding apart); a hogwild thread writes each row once a step (atomic adds of
    every document's share cost as much as the E-step)."""
    cdef int K = p.K, R = p.R, k
    cdef int64_t u, x, j, row
    # an entry's j and offset: ent[x] >> shift and ent[x] & mask, or (pairs) ent[2 x] and
    # ent[2 x + 1], in one form without a branch
    cdef int64_t stride = _entry_ints(shift), last = stride - 1
    cdef int at = max(shift, 0)
    cdef int32_t mask = <int32_t>((<int64_t>1 << shift) - 1) if shift >= 0 else -1
    cdef const float *th
    cdef const float *e
    cdef float eps
    cdef double cnt, v, dot
    cdef double *o
    for u in range(u0, u1):
        row = rows[u] if rows != NULL else u
        if eb != NULL:
            e = eb + u * R
            eps = eps_rows[u]
        elif beta.slot != NULL and beta.slot[u] >= 0:
            e = beta.cache + beta.slot[u] * R
            eps = beta.cache_eps[beta.slot[u]]
        else:
            if u + 1 < u1:  # as _e_step_doc does
                dp_prefetch_range(beta.lam + (rows[u + 1] if rows != NULL else u + 1) * K, K * sizeof(double))
            eps = _beta_row(beta, row, K, R, acc, ex, room)
            e = room
        for k in range(K):
            acc[k] = 0.0
        for x in range(ptr[u], ptr[u + 1]):
            j = ent[x * stride] >> at
            th = thetas + j * R
            dot = dp_estep_dot(th, e, R)
            if dot == 0.0:  # every term 0 (a failed document's zeroed theta): n / eps could be inf
                continue
            cnt = c.counts[c.indptr[docs[j]] + (ent[x * stride + last] & mask)] / (dot + eps)
            for k in range(K):
                acc[k] += th[k] * cnt
        o = out + row * K
        for k in range(K):
            v = coef * acc[k] * e[k]
            partial[k] += v
            if atomic:
                dp_add(&o[k], v)
            else:
                o[k] += v


# Scratch memory. Every thread has a head of doubles: gamma, a row of K (exp(E[log beta])
# before it is stored as floats, in the double path; an M-step row's statistics), K more
# (exp(E[log theta]) where it takes the double path, _etheta_f), a K-vector of column sums (the
# M-step's), one of psi sums (a hogwild thread's own), 8 more (the hogwild thread's iteration
# count), then room for 2 R floats (the pass's new gamma and exp(E[log theta]); R: K rounded up
# to whole vectors of 8, estep.h), rounded up to whole 64-byte lines so that no two threads'
# heads share one. A thread also has a room: R int32s (estep.h's exponents) and, where the
# rows are computed a document at a time, the rows of exp(E[log beta]) of the document it runs,
# a non-zero each, and their eps (floats).
# A minibatch needs a block: its word map ``col`` (V int32s, -1 for a word not in it) and
# vocabulary (int32s), the float path's split of its psi sums (R floats and R int32s), its
# documents' exp(E[log theta]) (R floats each), its non-zeros grouped by word (_row_index:
# vocabulary + 1 int32s, and one a non-zero, or two where a document's position and offset
# do not fit in one), from which the step is added to lambda a row at a
# time (_m_step_rows), with no accumulators; and, where they are kept, its words' rows of
# exp(E[log beta]) and their eps (vocabulary x (R + 1) floats), or the rows of its most
# frequent words and their slots (_size_rows, _cache_words).
# BATCH's threads share one minibatch, so one block; HOGWILD has a block a thread; ESTEP no
# block or room, but every word's row as floats.
cdef inline int _lanes(int K) noexcept nogil:
    return (K + 7) // 8 * 8


cdef inline int64_t _head(int K) noexcept nogil:
    return (5 * K + 8 + _lanes(K) + 7) // 8 * 8


cdef inline float *_floats(double *head, int K) noexcept nogil:
    return <float *>(head + 5 * K + 8)


cdef inline int64_t _n_blocks(int mode, int n_threads) noexcept nogil:
    return 0 if mode == ESTEP else (1 if mode == BATCH else n_threads)


ctypedef struct Sizes:  # of the blocks and rooms: the vocabulary's size and a minibatch's largest
    int64_t V, vocab, docs, nnz
    int64_t rows  # the rows of exp(E[log beta]) a block keeps: vocab (all), or fewer (the cache)
    int64_t doc  # the largest document's non-zeros where not all rows are kept, else 0
    int64_t blocks
    int shift  # _row_index's entries (_entry_shift)


ctypedef struct Block:  # a minibatch's: see _block
    int32_t *col
    int32_t *vocab
    int32_t *ptr
    int32_t *ent
    int32_t *m
    int32_t *slot  # the cache's (_cache_words), where it keeps some rows but not all
    int32_t *cached
    float *cr
    float *thetas
    float *eb  # the kept rows (all, or the cache's), or NULL
    float *eps


ctypedef struct Room:  # a thread's: see _room
    float *eb
    float *eps
    int32_t *ex


cdef inline bint _caches(Sizes *z) noexcept nogil:
    return 0 < z.rows < z.vocab


cdef inline int64_t _block_ints(Sizes *z, int R) noexcept nogil:
    """A block's int32s: its word map (V), vocabulary, _row_index's ptr and entries, m, and
    the cache's slot and cached."""
    return z.V + 2 * z.vocab + 1 + _entry_ints(z.shift) * z.nnz + R + (z.vocab + z.rows if _caches(z) else 0)


cdef inline int64_t _block_floats(int R, int64_t docs, int64_t rows) noexcept nogil:
    """A block's floats: cr, its documents' exp(E[log theta]), and the kept rows and eps."""
    return R + docs * R + rows * (R + 1)


cdef inline int64_t _room_floats(int R, int64_t doc) noexcept nogil:
    """A room's floats, whole 64-byte lines: a document's rows and their eps."""
    return (doc * (R + 1) + 15) // 16 * 16


cdef inline int64_t _room_ints(int R) noexcept nogil:
    return (R + 15) // 16 * 16


cdef inline int64_t _scratch_ints(Sizes *z, int R, int n_threads) noexcept nogil:
    return z.blocks * _block_ints(z, R) + n_threads * _room_ints(R)


cdef inline int64_t _scratch_floats(Sizes *z, int R, int n_threads) noexcept nogil:
    return z.blocks * _block_floats(R, z.docs, z.rows) + n_threads * _room_floats(R, z.doc)


cdef void _size_rows(Sizes *z, int R, int n_threads, int64_t keep, double model_bytes,
                     double data_bytes) noexcept nogil:
    """How many rows of exp(E[log beta]) a block keeps (z.rows) and the rooms' document
    (z.doc: the largest document's non-zeros, 0 where every row is kept). ``keep`` >= 0 sets
    the rows (tests); -1 chooses by memory: every row of the largest minibatch (computed once a
    word and read by every document's E-step and by the step) where the blocks' rows take at
    most a tenth of the model and data, the memory a fit may add; else each document computes
    the rows of its own non-zeros (and the step a word's row again), and the rows of the
    minibatch's most frequent words are cached (computed once, copied by the documents) in
    what four fifths of that tenth leave beside the rest of the scratch.

    Keeping every row is fastest where documents converge in few iterations (synthetic corpus,
    K = 20: a document at a time, without the cache, took 1.4x as long); a document at a time
    needs only its rows (AP, K = 50: a minibatch's rows would be a third of the model; with
    the cache, 930 of its 5,898 words)."""
    cdef double allow = 0.1 * (model_bytes + data_bytes), other
    cdef int64_t doc = z.doc
    if keep >= 0:
        z.rows = min(keep, z.vocab)
    elif z.blocks * z.vocab * (R + 1) * 4.0 <= allow:
        z.rows = z.vocab
    else:
        z.rows = 0
        other = 4.0 * (_scratch_ints(z, R, n_threads) + _scratch_floats(z, R, n_threads) + z.blocks * z.vocab)
        z.rows = max(0, min(z.vocab, <int64_t>((0.8 * allow - other) / (z.blocks * 4.0 * (R + 2)))))
    z.doc = 0 if z.rows >= z.vocab else doc


cdef Block _block(int32_t *ibuf, float *fbuf, int64_t t, Sizes *z, int R) noexcept nogil:
    """Block t of the scratch: word map col (-1 for a word not in the minibatch), vocabulary,
    _row_index's ptr and entries, m, and the cache's slot and cached; cr, the documents'
    exp(E[log theta]), and the kept rows and their eps."""
    cdef Block k
    k.col = ibuf + t * _block_ints(z, R)
    k.vocab = k.col + z.V
    k.ptr = k.vocab + z.vocab
    k.ent = k.ptr + z.vocab + 1
    k.m = k.ent + _entry_ints(z.shift) * z.nnz
    k.slot = k.m + R if _caches(z) else NULL
    k.cached = k.slot + z.vocab if _caches(z) else NULL
    k.cr = fbuf + t * _block_floats(R, z.docs, z.rows)
    k.thetas = k.cr + R
    k.eb = k.thetas + z.docs * R if z.rows > 0 else NULL
    k.eps = k.eb + z.rows * R if z.rows > 0 else NULL
    return k


cdef Room _room(int32_t *ibuf, float *fbuf, int64_t t, Sizes *z, int R) noexcept nogil:
    """Thread t's room, after the blocks: its document's rows, their eps, and ex."""
    cdef Room r
    r.eb = fbuf + z.blocks * _block_floats(R, z.docs, z.rows) + t * _room_floats(R, z.doc)
    r.eps = r.eb + z.doc * R
    r.ex = ibuf + z.blocks * _block_ints(z, R) + t * _room_ints(R)
    return r


class Scratch:
    """The scratch memory of :func:`svi_run` and :func:`svi_step`, kept between calls: each
    call grows it to what its minibatches need (their largest vocabulary, document count and
    non-zeros, and a thread's rows of exp(E[log beta]) for their largest document), never more.

    Attributes
    ----------
    doubles : ndarray of float64 (each thread's head)
    floats : ndarray of float32 (exp(E[log beta]) of the rows the E-steps read, and the
        documents' exp(E[log theta]))
    ints : ndarray of int32 (word maps, vocabularies, the non-zeros grouped by word)
    """

    def __init__(self):
        self.doubles = np.empty(0)
        self.floats = np.empty(0, dtype=np.float32)
        self.ints = np.empty(0, dtype=np.int32)

    def reserve(self, n_doubles, n_ints, n_floats=0):
        """Make room for ``n_doubles``, ``n_ints`` and ``n_floats`` (the contents are not kept)."""
        if self.doubles.shape[0] < n_doubles:
            self.doubles = None  # freed before the larger one is taken
            self.doubles = np.empty(n_doubles)
        if self.ints.shape[0] < n_ints:
            self.ints = None
            self.ints = np.empty(n_ints, dtype=np.int32)
        if self.floats.shape[0] < max(n_floats, 1):  # never empty: the kernels take its address
            self.floats = None
            self.floats = np.empty(max(n_floats, 1), dtype=np.float32)

    @property
    def nbytes(self):
        return self.doubles.nbytes + self.floats.nbytes + self.ints.nbytes


cdef int64_t _max_vocabulary(Corpus *c, const int64_t[::1] docs, const int64_t[::1] batch_ptr,
                             int32_t *stamp) noexcept nogil:
    """The largest number of distinct words in a minibatch; ``stamp`` (V int32s, each < 0
    on entry) is left holding minibatch numbers."""
    cdef int64_t b, j, i, nv, best = 0
    cdef int32_t w
    for b in range(batch_ptr.shape[0] - 1):
        nv = 0
        for j in range(batch_ptr[b], batch_ptr[b + 1]):
            for i in range(c.indptr[docs[j]], c.indptr[docs[j] + 1]):
                w = c.indices[i]
                if stamp[w] != b:
                    stamp[w] = <int32_t>b
                    nv += 1
        best = max(best, nv)
    return best


def svi_run(const double[::1] counts, const int32_t[::1] indices, const int64_t[::1] indptr,
            const int64_t[::1] docs, const int64_t[::1] batch_ptr,
            double[:, ::1] lam, double[::1] lam_sum, double[:, ::1] gamma_out,
            const double[::1] scale, const double[::1] rho, const double[::1] ratio,
            scratch, *, int mode, double alpha, double eta, int max_iter, double tol,
            unsigned long long seed, int n_threads, double[:, ::1] sstats=None, int keep_rows=-1,
            int entry_bits=31):
    """Run the minibatches ``docs[batch_ptr[b]:batch_ptr[b + 1]]`` (one chunk).

    Parameters
    ----------
    counts, indices, indptr : the corpus (CSR, float64 / int32 / int64).
    docs, batch_ptr : documents of each minibatch, in order (ESTEP: any grouping).
    lam : (V, K) true lambda in and out (ESTEP: in only).
    lam_sum : (K,) column sums of lam, in and out (ESTEP: in only).
    gamma_out : (n_docs, K) or (0, K); row d receives document d's gamma.
    scale : (n_batches + 1,), scale[0] = 1 and scale[b + 1] = scale[b] (1 - rho[b]).
    rho : (n_batches,) step sizes; ratio : (n_batches,) D / |B| of each minibatch.
    scratch : Scratch
        Grown to what this call needs (its contents are not kept).
    mode : Mode.BATCH, Mode.HOGWILD or Mode.ESTEP.
    sstats : (V, K), optional, ESTEP only: set to the sufficient statistics of the documents,
        E[phi] times the counts, summed (full-batch variational EM's lambda is eta + these).
    keep_rows : int, -1 (by the memory they take: _size_rows) or at least 0
        How many of a minibatch's rows of exp(E[log beta]) are kept (all: every document reads
        them; fewer: each document computes its own, but for the cached most frequent words'
        rows). The results are the same; tests choose.
    entry_bits : int, 0..31
        The M-step's non-zeros grouped by word pack a document's position and offset into one
        int32 where both fit in these bits, else take two int32s (_entry_shift). The results
        are the same; tests choose.

    Returns
    -------
    (n_batches_done, E-step iterations, status): status 0, or -1 when a document's
    gamma was not finite (the call stops; lambda is still folded back).
    """
    cdef int64_t V = lam.shape[0]
    cdef int K = lam.shape[1]
    cdef int64_t n_docs = indptr.shape[0] - 1
    cdef int64_t nb = batch_ptr.shape[0] - 1
    cdef int64_t i, j, vocab = 0, blocks
    if K < 1 or lam_sum.shape[0] != K:
        raise ValueError("lam must be (V, K) and lam_sum (K,)")
    if n_docs < 0 or indptr[n_docs] > indices.shape[0] or indices.shape[0] != counts.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    if nb < 0 or batch_ptr[0] != 0 or batch_ptr[nb] != docs.shape[0]:
        raise ValueError("batch_ptr must run from 0 to len(docs)")
    if mode not in (BATCH, HOGWILD, ESTEP):
        raise ValueError(f"unknown mode {mode}")
    if mode != ESTEP and (scale.shape[0] != nb + 1 or rho.shape[0] != nb or ratio.shape[0] != nb):
        raise ValueError("scale, rho and ratio must describe every minibatch")
    if gamma_out.shape[0] not in (0, n_docs) or gamma_out.shape[1] != K:
        raise ValueError("gamma_out must be (0, K) or (n_docs, K)")
    if sstats is not None and (mode != ESTEP or sstats.shape[0] != V or sstats.shape[1] != K):
        raise ValueError("sstats must be (V, K), like lam, and is for ESTEP only")
    if n_threads < 1:
        raise ValueError("n_threads must be at least 1")
    if keep_rows < -1:
        raise ValueError("keep_rows must be -1 or at least 0")
    if not 0 <= entry_bits <= 31:
        raise ValueError("entry_bits must be in 0..31")
    # only the documents of this call: a fit calls once a chunk, and checking the whole
    # corpus each time cost 3% of a 2-thread fit (29,700 documents, 15 chunks a pass)
    cdef int64_t d
    for i in range(docs.shape[0]):
        d = docs[i]
        if d < 0 or d >= n_docs:
            raise ValueError(f"docs[{i}] is not a document")
        if indptr[d] < 0 or indptr[d] > indptr[d + 1] or indptr[d + 1] > indices.shape[0]:
            raise ValueError("inconsistent CSR arrays")
        for j in range(indptr[d], indptr[d + 1]):
            if indices[j] < 0 or indices[j] >= V:
                raise ValueError("word id beyond the vocabulary")
    for i in range(nb):
        if batch_ptr[i + 1] < batch_ptr[i]:
            raise ValueError("batch_ptr must not decrease")

    cdef Corpus c
    cdef Params p
    c.counts = &counts[0] if counts.shape[0] > 0 else NULL
    c.indices = &indices[0] if indices.shape[0] > 0 else NULL
    c.indptr = &indptr[0]
    p.K = K
    p.R = _lanes(K)
    p.alpha = alpha
    p.eta = eta
    p.max_iter = max_iter
    p.tol = tol
    p.seed = seed

    # the scratch: the minibatches' largest vocabulary, document count and non-zeros size the
    # blocks (the vocabulary counted with block 0's word map as the stamps), whose word maps
    # then start at -1; their largest document the rooms
    cdef int32_t[::1] ints
    cdef int64_t max_docs = 0, max_nnz = 0, max_doc = 0, nnz
    blocks = _n_blocks(mode, n_threads)
    if blocks:
        if V > 0:
            scratch.reserve(0, V)
            ints = scratch.ints
            ints[:V] = -1
            vocab = _max_vocabulary(&c, docs, batch_ptr, &ints[0])
            ints = None  # so that reserve frees the array before it takes a larger one
        for i in range(nb):  # (with V = 0 the documents are empty, but their thetas are written)
            max_docs = max(max_docs, batch_ptr[i + 1] - batch_ptr[i])
            nnz = 0
            for j in range(batch_ptr[i], batch_ptr[i + 1]):
                nnz += indptr[docs[j] + 1] - indptr[docs[j]]
                max_doc = max(max_doc, indptr[docs[j] + 1] - indptr[docs[j]])
            max_nnz = max(max_nnz, nnz)
        if max_nnz >= 2**31 or max_docs >= 2**31:
            raise ValueError("a minibatch must have fewer than 2**31 documents and non-zeros")
    cdef Sizes z
    z.V, z.vocab, z.docs, z.nnz, z.doc, z.blocks, z.rows = V, vocab, max_docs, max_nnz, max_doc, blocks, 0
    z.shift = _entry_shift(max_docs, max_doc, entry_bits)
    _size_rows(&z, p.R, n_threads, keep_rows, V * K * 8.0, counts.shape[0] * 12.0 + indptr.shape[0] * 8.0)
    cdef int64_t bi = _block_ints(&z, p.R)
    # ESTEP: every word's row of exp(E[log beta]) and its eps as floats
    scratch.reserve(n_threads * _head(K), _scratch_ints(&z, p.R, n_threads) if blocks else 0,
                    V * (p.R + 1) if mode == ESTEP else _scratch_floats(&z, p.R, n_threads))
    cdef double[::1] dbuf = scratch.doubles
    cdef float[::1] fbuf = scratch.floats
    ints = scratch.ints
    for j in range(blocks):
        ints[j * bi:j * bi + V] = -1

    cdef int status = 0
    cdef int64_t iters = 0, nb_done = 0
    if mode == ESTEP:
        iters = _run_estep(&c, &p, docs, &lam[0, 0], &lam_sum[0], V, gamma_out, &dbuf[0], &fbuf[0], n_threads,
                           &status, &sstats[0, 0] if sstats is not None else NULL)
        return nb, iters, status
    if nb == 0:
        return 0, 0, 0
    if mode == BATCH:
        nb_done = _run_batch(&c, &p, docs, batch_ptr, lam, lam_sum, gamma_out, scale, rho, ratio,
                             &dbuf[0], &fbuf[0], &ints[0] if ints.shape[0] > 0 else NULL, &z, n_threads, &iters,
                             &status)
    else:
        nb_done = _run_hogwild(&c, &p, docs, batch_ptr, lam, lam_sum, gamma_out, scale, rho,
                               ratio, &dbuf[0], &fbuf[0], &ints[0] if ints.shape[0] > 0 else NULL, &z, n_threads,
                               &iters, &status)
    # fold the scale back: true lambda = A lam + eta (1 - A)
    cdef double A = scale[nb_done]
    cdef double shift = eta * (1.0 - A)
    cdef int64_t VK = V * K
    cdef double *L = &lam[0, 0]
    for i in prange(VK, nogil=True, num_threads=n_threads, schedule="static"):
        L[i] = A * L[i] + shift
    for i in range(K):
        lam_sum[i] = A * lam_sum[i] + V * shift
    return nb_done, iters, status


cdef int64_t _run_estep(Corpus *c, Params *p, const int64_t[::1] docs, const double *lam, const double *lam_sum,
                        int64_t V, double[:, ::1] gamma_out, double *dbuf, float *eb, int n_threads,
                        int *status, double *sstats) noexcept:
    """E-steps of ``docs`` against fixed topics ``lam`` (lambda, V x K, and its column sums), in
    parallel over documents; their sufficient statistics are written to ``sstats`` (V x K)
    unless it is NULL. ``eb``: room for V x K floats, exp(E[log beta]) with each row scaled to
    a largest value of 1, then their V eps (estep.h); ``dbuf``: the heads. The statistics
    are collected in ``sstats`` as exp(E[log theta]) n / phinorm (atomically: documents on
    other threads share words), then multiplied by the scaled rows: a row's scale cancels in
    the product."""
    cdef int K = p.K, R = p.R
    cdef int64_t j, d, w, total = 0
    cdef int it, k
    cdef double *buf
    cdef double *psi = dbuf  # thread 0's head until the E-steps start
    cdef float *eps = eb + V * R
    cdef bint keep = gamma_out.shape[0] > 0
    if sstats != NULL:
        for w in prange(V * K, nogil=True, num_threads=n_threads, schedule="static"):
            sstats[w] = 0.0
    for k in range(K):
        psi[k] = digamma(lam_sum[k])
    for w in prange(V, nogil=True, num_threads=n_threads, schedule="static"):
        buf = dbuf + threadid() * _head(K) + K  # the thread's row
        dp_exp_psi(lam + w * K, psi, 0.0, buf, K)
        for k in range(K):  # exp(psi(0)) is exp(-inf) = 0, as SciPy gives it (topics from elsewhere)
            if lam[w * K + k] == 0.0:
                buf[k] = 0.0
        eps[w] = dp_estep_row(buf, eb + w * R, K, R)
    for j in prange(docs.shape[0], nogil=True, num_threads=n_threads, schedule="dynamic", chunksize=4):
        buf = dbuf + threadid() * _head(K)
        d = docs[j]
        it = _e_step_doc(c, d, d, NULL, NULL, eb, eps, NULL, p, buf, _floats(buf, K), buf + 2 * K, sstats,
                         n_threads > 1)
        if it < 0:
            dp_store_int(status, -1)
        else:
            total += it
        if keep:
            for k in range(K):
                gamma_out[d, k] = buf[k]
    if sstats != NULL:
        for w in prange(V, nogil=True, num_threads=n_threads, schedule="static"):
            for k in range(K):
                sstats[w * K + k] *= eb[w * R + k]
    return total


cdef int64_t _run_batch(Corpus *c, Params *p, const int64_t[::1] docs, const int64_t[::1] batch_ptr,
                        double[:, ::1] lam, double[::1] lam_sum, double[:, ::1] gamma_out,
                        const double[::1] scale, const double[::1] rho, const double[::1] ratio,
                        double *dbuf, float *fbuf, int32_t *ibuf, Sizes *z, int n_threads,
                        int64_t *iters, int *status) noexcept:
    """Classic online LDA: one minibatch at a time, its documents shared among threads.

    The minibatch's block is shared; each thread's E-step scratch is its head and its room,
    and each document leaves its exp(E[log theta]) in the block. Then the threads add the step
    to lambda, a range of the minibatch's words each, with about as many non-zeros
    (_m_step_rows); its column sums go to the threads' heads."""
    cdef int K = p.K, R = p.R
    cdef int64_t V = lam.shape[0]
    cdef int64_t H = _head(K)
    cdef int64_t b, nv, i, j, d, nd, chunk, total = 0
    cdef int tid, it, k
    cdef double *buf
    cdef float *fl
    cdef const int64_t *bdocs
    cdef Block B = _block(ibuf, fbuf, 0, z, R)
    cdef Room rm
    cdef Beta beta
    bounds_arr = np.empty(n_threads + 1, dtype=np.int64)
    cdef int64_t[::1] bounds = bounds_arr
    psi_arr = np.empty(K)
    cdef double[::1] psi = psi_arr
    cdef bint keep = gamma_out.shape[0] > 0, full = False
    cdef int64_t ns = 0
    cdef double coef
    for b in range(batch_ptr.shape[0] - 1):
        nd = batch_ptr[b + 1] - batch_ptr[b]
        bdocs = &docs[batch_ptr[b]]
        with nogil:
            nv = _batch_vocabulary(c, bdocs, nd, B.col, B.vocab, B.ptr)
            _psi_sum(&lam_sum[0], scale[b], p.eta, V, K, &psi[0])
            beta = _beta(&lam[0, 0], scale[b], p.eta * (1.0 - scale[b]), False, False, &psi[0], K, R, B.cr, B.m)
            full = nv <= z.rows  # every row kept
            ns = 0
            if not full and B.slot != NULL:
                ns = _cache_words(B.ptr, nv, z.rows, B.slot, B.cached)
                beta.local, beta.slot, beta.cache, beta.cache_eps = B.col, B.slot, B.eb, B.eps
            for j in range(n_threads):
                for k in range(K):
                    dbuf[j * H + 3 * K + k] = 0.0
        if full:
            ns = nv
        if ns > 0:  # the kept rows, as many a thread
            chunk = (ns + n_threads - 1) // n_threads
            for j in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static", chunksize=1):
                rm = _room(ibuf, fbuf, threadid(), z, R)
                _kept_rows(&beta, NULL if full else B.cached, B.vocab, j * chunk, min((j + 1) * chunk, ns), K, R,
                           dbuf + threadid() * H + K, rm.ex, B.eb, B.eps)
        # iteration 0 groups the non-zeros by word (for the M-step) while the others run E-steps
        for i in prange(nd + 1, nogil=True, num_threads=n_threads, schedule="dynamic", chunksize=1):
            if i == 0:
                _row_index(c, bdocs, nd, B.col, nv, B.ptr, B.ent, z.shift)
                continue
            j = i - 1
            tid = threadid()
            buf = dbuf + tid * H
            fl = _floats(buf, K)
            rm = _room(ibuf, fbuf, tid, z, R)
            d = bdocs[j]
            if full:
                it = _e_step_doc(c, d, d, NULL, B.col, B.eb, B.eps, NULL, p, buf, fl, buf + 2 * K, NULL, False)
            else:
                it = _e_step_doc(c, d, d, &beta, NULL, rm.eb, rm.eps, rm.ex, p, buf, fl, buf + 2 * K, NULL, False)
            # written out in each mode's loop: moving these lines into an inline helper
            # made an AP fit (K = 50) 3-7% slower, measured against the same build
            if it < 0:
                dp_store_int(status, -1)
                for k in range(R):  # adds nothing to the step
                    fl[R + k] = 0.0
            else:
                total += it
            for k in range(R):
                B.thetas[j * R + k] = fl[R + k]
            if keep:
                for k in range(K):
                    gamma_out[d, k] = buf[k]
        coef = rho[b] * ratio[b] / scale[b + 1]
        _split_rows(B.ptr, nv, n_threads, 0 if full else ROW_COST, &bounds[0])
        for j in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static", chunksize=1):
            tid = threadid()
            buf = dbuf + tid * H
            rm = _room(ibuf, fbuf, tid, z, R)
            _m_step_rows(c, bdocs, B.ptr, B.ent, z.shift, &beta, B.eb if full else NULL, B.eps, B.thetas, p,
                         coef, bounds[j], bounds[j + 1], &lam[0, 0], B.vocab, False, buf + K, buf + 3 * K, rm.eb,
                         rm.ex)
        for j in range(n_threads):
            for k in range(K):
                lam_sum[k] += dbuf[j * H + 3 * K + k]
        for j in range(nv):
            B.col[B.vocab[j]] = -1
        if dp_load_int(status) != 0:
            iters[0] = total
            return b + 1
    iters[0] = total
    return batch_ptr.shape[0] - 1


cdef int64_t _run_hogwild(Corpus *c, Params *p, const int64_t[::1] docs, const int64_t[::1] batch_ptr,
                          double[:, ::1] lam, double[::1] lam_sum, double[:, ::1] gamma_out,
                          const double[::1] scale, const double[::1] rho, const double[::1] ratio,
                          double *dbuf, float *fbuf, int32_t *ibuf, Sizes *z, int n_threads,
                          int64_t *iters, int *status) noexcept:
    """DPSVI's lock-free layer: each thread takes whole minibatches from a shared
    counter, runs their E-step alone against the lambda it reads, and adds its own
    global step to the shared lambda; nobody waits for anybody. The rows of exp(E[log beta])
    are read from lambda as the thread starts the minibatch (kept rows) or, a document at a
    time, as its E-step starts and a word's again as the thread adds its step (with the psi
    sums and scale of the minibatch's start)."""
    cdef int K = p.K, R = p.R
    cdef int64_t V = lam.shape[0]
    cdef int64_t H = _head(K)
    cdef int64_t nb = batch_ptr.shape[0] - 1
    cdef long long next_batch = 0, applied = 0
    cdef int64_t b, nv, j, d, nd, local_iters, ns
    cdef bint full
    cdef int tid, it, k
    cdef double *buf
    cdef float *fl
    cdef const int64_t *bdocs
    cdef Block B
    cdef Room rm
    cdef Beta beta
    cdef double A_now, coef
    cdef bint keep = gamma_out.shape[0] > 0
    for tid in range(n_threads):  # read below for every head, even if the runtime starts fewer threads
        dbuf[tid * H + 5 * K] = 0.0
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        buf = dbuf + tid * H
        fl = _floats(buf, K)
        B = _block(ibuf, fbuf, tid, z, R)  # the thread's own
        rm = _room(ibuf, fbuf, tid, z, R)
        local_iters = 0
        while True:
            b = dp_fetch_add_i64(&next_batch, 1)
            if b >= nb or dp_load_int(status) != 0:
                break
            nd = batch_ptr[b + 1] - batch_ptr[b]
            bdocs = &docs[batch_ptr[b]]
            nv = _batch_vocabulary(c, bdocs, nd, B.col, B.vocab, B.ptr)
            full = nv <= z.rows  # every row kept
            ns = 0
            if not full and B.slot != NULL:
                ns = _cache_words(B.ptr, nv, z.rows, B.slot, B.cached)
            _row_index(c, bdocs, nd, B.col, nv, B.ptr, B.ent, z.shift)
            # the scale after the steps applied so far (others may be half-way: Hogwild!)
            A_now = scale[dp_load_i64(&applied)]
            _psi_sum(&lam_sum[0], A_now, p.eta, V, K, buf + 4 * K)
            beta = _beta(&lam[0, 0], A_now, p.eta * (1.0 - A_now), False, True, buf + 4 * K, K, R, B.cr, B.m)
            if full:
                _kept_rows(&beta, NULL, B.vocab, 0, nv, K, R, buf + K, rm.ex, B.eb, B.eps)
            elif ns > 0:
                beta.local, beta.slot, beta.cache, beta.cache_eps = B.col, B.slot, B.eb, B.eps
                _kept_rows(&beta, B.cached, B.vocab, 0, ns, K, R, buf + K, rm.ex, B.eb, B.eps)
            for j in range(nd):
                d = bdocs[j]
                if full:
                    it = _e_step_doc(c, d, d, NULL, B.col, B.eb, B.eps, NULL, p, buf, fl, buf + 2 * K, NULL, False)
                else:
                    it = _e_step_doc(c, d, d, &beta, NULL, rm.eb, rm.eps, rm.ex, p, buf, fl, buf + 2 * K, NULL,
                                     False)
                if it < 0:
                    dp_store_int(status, -1)
                    for k in range(R):  # adds nothing to the step
                        fl[R + k] = 0.0
                else:
                    local_iters = local_iters + it
                for k in range(R):
                    B.thetas[j * R + k] = fl[R + k]
                if keep:
                    for k in range(K):
                        gamma_out[d, k] = buf[k]
            # this step's own scale: updates of different steps commute
            coef = rho[b] * ratio[b] / scale[b + 1]
            for k in range(K):
                buf[3 * K + k] = 0.0
            _m_step_rows(c, bdocs, B.ptr, B.ent, z.shift, &beta, B.eb if full else NULL, B.eps, B.thetas, p,
                         coef, 0, nv, &lam[0, 0], B.vocab, True, buf + K, buf + 3 * K, rm.eb, rm.ex)
            for k in range(K):
                dp_add(&lam_sum[k], buf[3 * K + k])
            for j in range(nv):
                B.col[B.vocab[j]] = -1
            dp_fetch_add_i64(&applied, 1)
        buf[5 * K] = <double>local_iters
    for tid in range(n_threads):
        iters[0] += <int64_t>dbuf[tid * H + 5 * K]
    return min(<int64_t>applied, nb)


def svi_step(const double[::1] counts, const int32_t[::1] indices, const int64_t[::1] indptr,
             const int64_t[::1] docs, const int32_t[::1] local, const double[:, ::1] pulled,
             double A_read, double A_next, double rho, double ratio, int64_t V_total,
             double[:, ::1] term, scratch, *, double alpha, double eta, int max_iter, double tol,
             unsigned long long seed, int n_threads, words=None, int keep_rows=-1,
             int entry_bits=31):
    """One global step of DPSVI across ranks on the rows a rank pulled, in the scaled form.

    The exchange holds lambda as ``A_t Lam + eta (1 - A_t)`` (:class:`dpsgd.tasks.lda_state.
    ScaledTopics`). This reads the minibatch's rows of Lam as pulled (at a version whose scale is
    ``A_read``), runs the E-step of the documents ``docs`` against their true form, and adds to
    ``term`` the step's own term ``rho ratio S / A_next`` (S: the sufficient statistics times
    exp(E[log beta])) with its column sums: what the rank pushes. Nothing else is written:
    no true-form copy, no before/after difference.

    Parameters
    ----------
    counts, indices, indptr : the corpus (CSR, float64 / int32 / int64), every document.
    docs : (n_docs,) int64, the minibatch's documents; docs[i]'s gamma starts from the stream
        (seed, i), as the minibatch's own corpus would give it.
    local : (V_total,) int32; local[w] is word w's position among the minibatch's n words
        (``batch_words``), its row in ``pulled`` unless ``words`` is given, for every word of
        ``docs`` (other entries are not read).
    pulled : (n + 1, K) the words' scaled rows, then the scaled column sums (read only;
        entries below 0, which rounding of compressed exchanges can leave, are read as 0);
        with ``words``, (V_total + 1, K): every row, as pulled whole.
    A_read, A_next : the scale at the pull's version and after this step.
    rho, ratio : the step size and D / |B|.
    V_total : the vocabulary's size (the column sums' prior term).
    term : shaped as ``pulled``, added to (with ``words``, on the words' rows only).
    scratch : Scratch
    words : (n,) int64, optional
        The minibatch's words (``batch_words``) when ``pulled`` and ``term`` hold every row:
        on one machine the server moves the whole matrix faster than a quarter of its rows,
        and the rows are then read and written where they lie, with no gather or scatter.
    keep_rows : int, as :func:`svi_run`'s (the model: V_total x K doubles).
    entry_bits : int, as :func:`svi_run`'s.

    Returns
    -------
    (E-step iterations, status): status 0, or -1 when a document's gamma was not finite.
    """
    cdef int64_t S = pulled.shape[0] - 1  # the sums' row
    cdef int K = pulled.shape[1]
    cdef int64_t n_docs = indptr.shape[0] - 1
    cdef int64_t i, j, u, d, w
    cdef bint whole = words is not None
    cdef const int64_t[::1] rows_of
    if S < 0 or K < 1 or term.shape[0] != S + 1 or term.shape[1] != K:
        raise ValueError("pulled and term must both be (n + 1, K)")
    if whole:
        rows_of = words
        if S != V_total or rows_of.shape[0] > V_total:
            raise ValueError("with words, pulled holds every row: (V_total + 1, K)")
        for u in range(rows_of.shape[0]):
            if rows_of[u] < 0 or rows_of[u] >= V_total:
                raise ValueError("words beyond the vocabulary")
    cdef int64_t n = rows_of.shape[0] if whole else S
    if n_docs < 0 or indptr[n_docs] > indices.shape[0] or indices.shape[0] != counts.shape[0]:
        raise ValueError("inconsistent CSR arrays")
    if not (0.0 < A_read <= 1.0 and 0.0 < A_next <= 1.0) or V_total < n or n_threads < 1:
        raise ValueError("scales must be in (0, 1], V_total at least the rows, n_threads at least 1")
    if keep_rows < -1:
        raise ValueError("keep_rows must be -1 or at least 0")
    if not 0 <= entry_bits <= 31:
        raise ValueError("entry_bits must be in 0..31")
    for j in range(docs.shape[0]):
        d = docs[j]
        if d < 0 or d >= n_docs:
            raise ValueError(f"docs[{j}] is not a document")
        for i in range(indptr[d], indptr[d + 1]):
            w = indices[i]
            if w < 0 or w >= local.shape[0] or local[w] < 0 or local[w] >= n or (whole and rows_of[local[w]] != w):
                raise ValueError(f"word {w} of document {d} has no pulled row")
    cdef Corpus c
    cdef Params p
    c.counts = &counts[0] if counts.shape[0] > 0 else NULL
    c.indices = &indices[0] if indices.shape[0] > 0 else NULL
    c.indptr = &indptr[0]
    p.K, p.R, p.alpha, p.eta, p.max_iter, p.tol, p.seed = K, _lanes(K), alpha, eta, max_iter, tol, seed
    cdef int64_t H = _head(K), nd = docs.shape[0], nnz = 0, chunk
    if nd == 0:
        return 0, 0
    for j in range(nd):
        nnz += indptr[docs[j] + 1] - indptr[docs[j]]
    if nnz >= 2**31 or nd >= 2**31:
        raise ValueError("a minibatch must have fewer than 2**31 documents and non-zeros")
    cdef int32_t[::1] rows32  # the rows the term is added to (whole: the words' own)
    if whole and n > 0:
        rows32 = np.asarray(words, dtype=np.int32)
    # the heads in doubles; the block (_block: ``local`` is its word map, its vocabulary unused)
    # and the rooms
    cdef Sizes z
    z.V, z.vocab, z.docs, z.nnz, z.doc, z.blocks, z.rows = 0, n, nd, nnz, 0, 1, 0
    for j in range(nd):
        z.doc = max(z.doc, indptr[docs[j] + 1] - indptr[docs[j]])
    z.shift = _entry_shift(nd, z.doc, entry_bits)
    _size_rows(&z, p.R, n_threads, keep_rows, V_total * K * 8.0, counts.shape[0] * 12.0 + indptr.shape[0] * 8.0)
    scratch.reserve(n_threads * H, _scratch_ints(&z, p.R, n_threads), _scratch_floats(&z, p.R, n_threads))
    cdef double[::1] dbuf_arr = scratch.doubles
    cdef float[::1] fbuf_arr = scratch.floats
    cdef int32_t[::1] ibuf_arr = scratch.ints
    cdef double *dbuf = &dbuf_arr[0]
    cdef float *fbuf = &fbuf_arr[0]
    cdef int32_t *ibuf = &ibuf_arr[0]
    cdef Block B = _block(ibuf, fbuf, 0, &z, p.R)
    cdef Room rm
    cdef const int32_t *rows = &rows32[0] if whole and n > 0 else NULL
    cdef const int32_t *pulled_row = NULL  # a word's row in pulled: its own (whole), else local's
    if not whole:
        pulled_row = &local[0]
    cdef float *fl
    psi_arr = np.empty(K)
    cdef double[::1] psi = psi_arr
    cdef double shift = eta * (1.0 - A_read)
    cdef double coef = rho * ratio / A_next
    cdef int status = 0, it, k, tid
    cdef int64_t total = 0
    cdef double *buf
    cdef Beta beta
    cdef bint full
    cdef int64_t ns = 0
    bounds_arr = np.empty(n_threads + 1, dtype=np.int64)
    cdef int64_t[::1] bounds = bounds_arr
    with nogil:
        for k in range(K):
            psi[k] = digamma(A_read * fmax(pulled[S, k], 0.0) + V_total * shift)
        beta = _beta(&pulled[0, 0], A_read, shift, True, False, &psi[0], K, p.R, B.cr, B.m)
        _count_rows(&c, &docs[0], nd, &local[0], n, B.ptr)
        full = n <= z.rows  # every row kept
        if not full and B.slot != NULL:
            ns = _cache_words(B.ptr, n, z.rows, B.slot, B.cached)
            beta.local, beta.slot, beta.cache, beta.cache_eps = &local[0], B.slot, B.eb, B.eps
        _row_index(&c, &docs[0], nd, &local[0], n, B.ptr, B.ent, z.shift)
        _split_rows(B.ptr, n, n_threads, 0 if full else ROW_COST, &bounds[0])
        for j in range(n_threads):
            for k in range(K):
                dbuf[j * H + 3 * K + k] = 0.0
        if full:
            ns = n
        if ns > 0:  # the kept rows, as many a thread: row u is the pulled row rows_of[u] (whole) or u
            chunk = (ns + n_threads - 1) // n_threads
            for j in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
                rm = _room(ibuf, fbuf, threadid(), &z, p.R)
                _kept_rows(&beta, NULL if full else B.cached, rows, j * chunk, min((j + 1) * chunk, ns), K, p.R,
                           dbuf + threadid() * H + K, rm.ex, B.eb, B.eps)
        for j in prange(nd, num_threads=n_threads, schedule="dynamic", chunksize=1):
            tid = threadid()
            buf = dbuf + tid * H
            fl = _floats(buf, K)
            rm = _room(ibuf, fbuf, tid, &z, p.R)
            if full:
                it = _e_step_doc(&c, docs[j], j, NULL, &local[0], B.eb, B.eps, NULL, &p, buf, fl, buf + 2 * K, NULL,
                                 False)
            else:
                it = _e_step_doc(&c, docs[j], j, &beta, pulled_row, rm.eb, rm.eps, rm.ex, &p, buf, fl, buf + 2 * K,
                                 NULL, False)
            if it < 0:
                dp_store_int(&status, -1)
                for k in range(p.R):  # adds nothing to the term
                    fl[p.R + k] = 0.0
            else:
                total += it
            for k in range(p.R):
                B.thetas[j * p.R + k] = fl[p.R + k]
        # the term, a range of rows a thread
        for j in prange(n_threads, num_threads=n_threads, schedule="static", chunksize=1):
            tid = threadid()
            buf = dbuf + tid * H
            rm = _room(ibuf, fbuf, tid, &z, p.R)
            _m_step_rows(&c, &docs[0], B.ptr, B.ent, z.shift, &beta, B.eb if full else NULL, B.eps, B.thetas,
                         &p, coef, bounds[j], bounds[j + 1], &term[0, 0], rows, False, buf + K, buf + 3 * K, rm.eb,
                         rm.ex)
        for j in range(n_threads):
            for k in range(K):
                term[S, k] += dbuf[j * H + 3 * K + k]
    return total, status


def batch_words(const int32_t[::1] indices, const int64_t[::1] indptr, const int64_t[::1] docs,
                int32_t[::1] local):
    """The distinct words of the documents ``docs``, sorted (int64), with ``local[w]`` set to
    each one's position among them (``local``: one entry per word of the vocabulary; the
    entries of other words are left as they were)."""
    cdef int64_t j, i, n = 0, nnz = 0
    cdef int32_t w
    for j in range(docs.shape[0]):
        if docs[j] < 0 or docs[j] >= indptr.shape[0] - 1:
            raise ValueError(f"docs[{j}] is not a document")
        nnz += indptr[docs[j] + 1] - indptr[docs[j]]
        for i in range(indptr[docs[j]], indptr[docs[j] + 1]):
            if indices[i] < 0 or indices[i] >= local.shape[0]:
                raise ValueError("word id beyond the vocabulary")
            local[indices[i]] = -1
    words_arr = np.empty(nnz, dtype=np.int64)
    cdef int64_t[::1] words = words_arr
    for j in range(docs.shape[0]):
        for i in range(indptr[docs[j]], indptr[docs[j] + 1]):
            w = indices[i]
            if local[w] == -1:
                local[w] = 0
                words[n] = w
                n += 1
    out = np.sort(words_arr[:n])
    words = out
    for j in range(n):
        local[words[j]] = <int32_t>j
    return out
