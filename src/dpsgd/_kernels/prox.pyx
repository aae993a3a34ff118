"""Proximal operators and the composite objective P(w, b) = C * sum_i loss_i + R(w), without the GIL.

The building blocks of the composite-problem solvers (PIAG, asynchronous block-coordinate
descent): they take a step on the smooth part f and then the proximal step of the non-smooth
R, ``x <- prox_{step R}(x - step * grad f)``, so they need both, on raw buffers.

Penalties (``Penalty`` in ``prox.pxd``).  Every kind is, coordinate by coordinate, an L1
weight, an L2 weight and a box::

    R(x) = lam * (a * ||x||_1 + c / 2 * ||x||^2) + indicator(lo <= x_j <= hi for all j)

with (a, c) = (1, 0) for L1, (0, 1) for L2, (l1_ratio, 1 - l1_ratio) for the elastic net
(scikit-learn's parametrisation) and (0, 0) for none, so the box alone is ``PENALTY_NONE``
with finite bounds. The proximal operator of such a separable R is, per coordinate,
``clip(soft_threshold(v, step * lam * a) / (1 + step * lam * c), lo, hi)``: the elastic
net's closed form, and the box composes by clipping because a convex function of one
variable restricted to an interval is minimised at the projection of its free minimiser.
One loop serves every kind; its divisions are one reciprocal per call.

Zeros and NaN.  A zero that comes out of a proximal operator is always +0.0 (a -0.0 in, or
a -0.0 bound, gives +0.0), so the sign bit of a result says what its value says. A NaN in
stays NaN (never thresholded to 0 nor clipped to a bound): soft-thresholding is written as
``v - clamp(v, -t, t)`` with selects that a NaN falls through, and the box's selects keep
it. ``penalty_value`` is NaN when x holds a NaN, +inf when x leaves the box, else finite
or +inf by overflow.

Shared buffers.  The operators use plain loads and stores on x: a caller whose x other
threads read at the same time (Hogwild!) applies them to a private copy and publishes it
with ``dp_store`` (atomics.pxd), as a2c's optimizer steps do.

The smooth part.  Rows are CSR as scipy and scikit-learn keep them: float64 ``data``,
int32 or int64 ``indices`` and ``indptr`` (one type for both, as ``sgd.pyx`` takes them),
unsorted column indices allowed. With margins ``m_i = x_i . w + b``::

    logistic (y_i in {-1, +1}):  loss_i = log(1 + exp(-y_i m_i))
    squared  (y_i real):         loss_i = (m_i - y_i)^2 / 2

and ``P = C * sum_i loss_i + R(w)``, the intercept b unpenalised: scikit-learn's
``LogisticRegression`` objective with lam = 1 (R(w) = ||w||_1, ||w||^2 / 2, or
l1_ratio ||w||_1 + (1 - l1_ratio) / 2 ||w||^2); with the squared loss, scikit-learn's
``Lasso(alpha)`` is C = 1 / (n_samples * alpha). The row kernels are serial: a caller that
splits rows over threads or ranks passes ``indptr + first_row`` and its rows' ``y`` and
``margins`` (``data`` and ``indices`` stay whole, indptr holds absolute offsets).

The ``def`` functions at the end check types, shapes and values and raise ``ValueError``
before any kernel runs; the ``py_*`` ones exist so that tests reach each operator.
"""
import numpy as np

from cython.parallel cimport prange

from libc.math cimport exp, fabs, log1p, INFINITY, NAN


# ---------------------------------------------------------------- proximal operators

cdef inline void _weights(const Penalty *pen, double *l1, double *l2) noexcept nogil:
    """lam * (a, c) of the module docstring: the L1 and L2 weights of pen's kind."""
    if pen.kind == PENALTY_L1:
        l1[0], l2[0] = pen.lam, 0.0
    elif pen.kind == PENALTY_L2:
        l1[0], l2[0] = 0.0, pen.lam
    elif pen.kind == PENALTY_ELASTICNET:
        l1[0], l2[0] = pen.lam * pen.l1_ratio, pen.lam * (1.0 - pen.l1_ratio)
    else:
        l1[0], l2[0] = 0.0, 0.0


cdef inline double _prox1(double v, double t, double inv, double lo, double hi) noexcept nogil:
    """clip(soft_threshold(v, t) * inv, lo, hi) of one value (t >= 0, inv > 0).

    The selects are ordered so that a NaN v falls through each of them (it compares false)
    and the clamp c = clamp(v, -t, t) is -0.0 rather than +0.0 at v = -0.0 or t = 0:
    v - c is then +0.0 whenever it is zero. lo and hi are never -0.0 (the callers add 0.0).
    """
    cdef double c = v if v < t else t
    c = c if c > -t else -t
    v = (v - c) * inv
    v = lo if v < lo else v
    return hi if v > hi else v


cdef inline void _prox_loop(double *x, const double *g, Py_ssize_t n, double step, double t,
                            double inv, double lo, double hi) noexcept nogil:
    """x <- prox(x - step * g), or prox(x) when g is NULL; the constants of _prox1."""
    cdef Py_ssize_t j
    lo = lo + 0.0  # a -0.0 bound would put -0.0 into x
    hi = hi + 0.0
    if g == NULL:
        for j in range(n):
            x[j] = _prox1(x[j], t, inv, lo, hi)
    else:
        for j in range(n):
            x[j] = _prox1(x[j] - step * g[j], t, inv, lo, hi)


cdef void prox_l1(double *x, Py_ssize_t n, double step, double lam) noexcept nogil:
    """x <- prox of step * lam * ||x||_1: soft-thresholding by step * lam."""
    _prox_loop(x, NULL, n, step, step * lam, 1.0, -INFINITY, INFINITY)


cdef void prox_l2(double *x, Py_ssize_t n, double step, double lam) noexcept nogil:
    """x <- prox of step * lam / 2 * ||x||^2: x / (1 + step * lam)."""
    _prox_loop(x, NULL, n, step, 0.0, 1.0 / (1.0 + step * lam), -INFINITY, INFINITY)


cdef void prox_elastic_net(double *x, Py_ssize_t n, double step, double lam,
                           double l1_ratio) noexcept nogil:
    """x <- prox of step * lam * (l1_ratio ||x||_1 + (1 - l1_ratio) / 2 ||x||^2)."""
    _prox_loop(x, NULL, n, step, step * lam * l1_ratio,
               1.0 / (1.0 + step * lam * (1.0 - l1_ratio)), -INFINITY, INFINITY)


cdef void prox_box(double *x, Py_ssize_t n, double lo, double hi) noexcept nogil:
    """x <- its projection onto [lo, hi] (lo <= hi; infinite bounds allowed)."""
    _prox_loop(x, NULL, n, 0.0, 0.0, 1.0, lo, hi)


cdef void prox_apply(const Penalty *pen, double *x, Py_ssize_t n, double step) noexcept nogil:
    """x <- prox_{step R}(x) for pen's R (module docstring), in one pass."""
    cdef double l1, l2
    _weights(pen, &l1, &l2)
    _prox_loop(x, NULL, n, step, step * l1, 1.0 / (1.0 + step * l2), pen.lo, pen.hi)


cdef void prox_step(const Penalty *pen, double *x, const double *g, Py_ssize_t n,
                    double step) noexcept nogil:
    """x <- prox_{step R}(x - step * g): the proximal gradient step, in one pass."""
    cdef double l1, l2
    _weights(pen, &l1, &l2)
    _prox_loop(x, g, n, step, step * l1, 1.0 / (1.0 + step * l2), pen.lo, pen.hi)


cdef double penalty_value(const Penalty *pen, const double *x, Py_ssize_t n) noexcept nogil:
    """R(x): NaN when x holds a NaN, +inf when x leaves the box."""
    cdef double l1, l2, v, s1 = 0.0, s2 = 0.0, r = 0.0
    cdef bint outside = False
    cdef Py_ssize_t j
    _weights(pen, &l1, &l2)
    for j in range(n):
        v = x[j]
        s1 += fabs(v)
        s2 += v * v
        outside = outside | (v < pen.lo) | (v > pen.hi)
    if s1 != s1:
        return NAN
    if outside:
        return INFINITY
    # a zero weight contributes nothing, even where the sum overflowed (0 * inf is NaN)
    if l1 != 0.0:
        r += l1 * s1
    if l2 != 0.0:
        r += 0.5 * l2 * s2
    return r


# ---------------------------------------------------------------- the smooth part on CSR rows

cdef inline double _loss(int loss, double y, double m, double *dloss) noexcept nogil:
    """loss(y, m), and its derivative in the margin m into dloss (prox.pxd's loss_derivative).

    Logistic as log1p(exp(-|y m|)) (- y m below 0): no overflow, small values kept.
    """
    cdef double z
    dloss[0] = loss_derivative(loss, y, m)
    if loss == LOSS_SQUARED:
        return 0.5 * (m - y) * (m - y)
    z = y * m
    if z >= 0.0:
        return log1p(exp(-z))
    return log1p(exp(z)) - z


cdef inline double _row_dot(const double *data, const index_t *indices, Py_ssize_t start,
                            Py_ssize_t end, const double *w) noexcept nogil:
    cdef double s = 0.0
    cdef Py_ssize_t jj
    for jj in range(start, end):
        s += data[jj] * w[indices[jj]]
    return s


cdef void csr_margins(const double *data, const index_t *indices, const index_t *indptr,
                      Py_ssize_t n_rows, const double *w, double b, double *margins) noexcept nogil:
    """margins[i] = x_i . w + b for the n_rows rows of indptr."""
    cdef Py_ssize_t i
    for i in range(n_rows):
        margins[i] = _row_dot(data, indices, indptr[i], indptr[i + 1], w) + b


cdef double smooth_value(int loss, double C, const double *y, const double *margins,
                         Py_ssize_t n_rows) noexcept nogil:
    """f = C * sum_i loss(y_i, margins_i)."""
    cdef double f = 0.0, dloss
    cdef Py_ssize_t i
    for i in range(n_rows):
        f += _loss(loss, y[i], margins[i], &dloss)
    return C * f


cdef double smooth_gradient(int loss, double C, const double *data, const index_t *indices,
                            const index_t *indptr, Py_ssize_t n_rows, const double *y,
                            const double *w, Py_ssize_t n_features, double b, double *margins,
                            double *grad_w, double *grad_b) noexcept nogil:
    """f and its gradient in one pass over the rows; returns f.

    Writes the margins (n_rows), grad_w = C * X^T dloss (n_features, overwritten) and, unless
    grad_b is NULL, grad_b[0] = C * sum_i dloss_i. f equals smooth_value of these margins
    bit for bit (same terms, same order).
    """
    cdef double f = 0.0, gb = 0.0, m, dloss
    cdef Py_ssize_t i, j, jj
    for j in range(n_features):
        grad_w[j] = 0.0
    for i in range(n_rows):
        m = _row_dot(data, indices, indptr[i], indptr[i + 1], w) + b
        margins[i] = m
        f += _loss(loss, y[i], m, &dloss)
        dloss = C * dloss
        gb += dloss
        for jj in range(indptr[i], indptr[i + 1]):
            grad_w[indices[jj]] += dloss * data[jj]
    if grad_b != NULL:
        grad_b[0] = gb
    return C * f


cdef double composite_objective(const Penalty *pen, int loss, double C, const double *data,
                                const index_t *indices, const index_t *indptr, Py_ssize_t n_rows,
                                const double *y, const double *w, Py_ssize_t n_features, double b,
                                double *margins) noexcept nogil:
    """P(w, b) = C * sum_i loss_i + R(w); the margins go to ``margins`` (n_rows)."""
    csr_margins(data, indices, indptr, n_rows, w, b, margins)
    return smooth_value(loss, C, y, margins, n_rows) + penalty_value(pen, w, n_features)


# ---------------------------------------------------------------- def entries (checked)

# scikit-learn's names; None is its "no penalty"
PENALTIES = {None: PENALTY_NONE, "l1": PENALTY_L1, "l2": PENALTY_L2, "elasticnet": PENALTY_ELASTICNET}
LOSSES = {"log_loss": LOSS_LOGISTIC, "squared_error": LOSS_SQUARED}


cdef Penalty _checked_penalty(penalty, double lam, l1_ratio, double lo, double hi) except *:
    cdef Penalty pen
    if not isinstance(penalty, (str, type(None))) or penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {list(PENALTIES)}, got {penalty!r}")
    if not (0.0 <= lam < INFINITY):
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    if penalty == "elasticnet" and l1_ratio is None:
        raise ValueError("penalty='elasticnet' needs l1_ratio in [0, 1]")
    if l1_ratio is not None and not (0.0 <= l1_ratio <= 1.0):
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
    if not (lo <= hi and lo < INFINITY and hi > -INFINITY):
        raise ValueError(f"the box needs lo <= hi, lo < inf and hi > -inf (no NaN), got [{lo!r}, {hi!r}]")
    pen.kind = PENALTIES[penalty]
    pen.lam = lam
    pen.l1_ratio = 0.0 if l1_ratio is None else l1_ratio
    pen.lo = lo
    pen.hi = hi
    return pen


cdef int _checked_loss(loss) except -1:
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    return LOSSES[loss]


def _check_positive(**values):
    for name, v in values.items():
        if not (0.0 < v < INFINITY):
            raise ValueError(f"{name} must be finite and > 0, got {v!r}")


def _vector(x, name, n=None, *, finite=True):
    """x as a contiguous float64 vector (converted from any real dtype), of n values if given."""
    a = np.asarray(x)
    if a.ndim != 1 or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D array of real numbers, got {a.ndim}-D {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} values, expected {n}")
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} holds a non-finite value at index {int(np.flatnonzero(~np.isfinite(a))[0])}")
    return a


def _buffer(out, name, n):
    """A caller's output buffer: written in place, so it must already be float64, contiguous, n long."""
    if out is None:
        return np.empty(n, dtype=np.float64)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.ndim != 1
            or not out.flags.c_contiguous or not out.flags.writeable or out.shape[0] != n):
        raise ValueError(f"{name} must be a writeable contiguous float64 array of shape ({n},)")
    return out


def _check_csr(data, indices, indptr, n_features):
    """The CSR arrays, checked: float64 data, one int32/int64 type for indices and indptr,
    indptr non-decreasing from 0, column indices in [0, n_features), finite values."""
    data, indices, indptr = np.asarray(data), np.asarray(indices), np.asarray(indptr)
    if data.ndim != 1 or data.dtype != np.float64:
        raise ValueError(f"data must be a 1-D float64 array, got {data.ndim}-D {data.dtype}")
    for name, a in (("indices", indices), ("indptr", indptr)):
        if a.ndim != 1 or a.dtype not in (np.int32, np.int64):
            raise ValueError(f"{name} must be a 1-D int32 or int64 array, got {a.ndim}-D {a.dtype}")
    if indices.dtype != indptr.dtype:
        raise ValueError(f"indices ({indices.dtype}) and indptr ({indptr.dtype}) must have one dtype")
    if indptr.shape[0] < 1 or indptr[0] != 0:
        raise ValueError("indptr must start with 0 (n_rows + 1 entries)")
    # no negative indices here: this module is compiled with wraparound=False
    if np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    nnz = int(indptr[indptr.shape[0] - 1])
    if indices.shape[0] != data.shape[0] or nnz > indices.shape[0]:
        raise ValueError(f"inconsistent CSR arrays: {data.shape[0]} data, {indices.shape[0]} indices, "
                         f"indptr ends at {nnz}")
    if nnz and (indices[:nnz].min() < 0 or indices[:nnz].max() >= n_features):
        raise ValueError(f"a column index is outside [0, {n_features}) (the length of w)")
    if not np.isfinite(data[:nnz]).all():
        raise ValueError("data holds a non-finite value")
    return (np.ascontiguousarray(data), np.ascontiguousarray(indices),
            np.ascontiguousarray(indptr), indptr.shape[0] - 1)


def _check_problem(data, indices, indptr, y, w, double b, loss, double C):
    """Everything the row kernels read, checked; returns the arrays and the loss id."""
    w = _vector(w, "w")
    data, indices, indptr, n_rows = _check_csr(data, indices, indptr, w.shape[0])
    y = _vector(y, "y", n_rows)
    kind = _checked_loss(loss)
    if kind == LOSS_LOGISTIC and not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError("the logistic loss takes labels y in {-1, +1}")
    if not (-INFINITY < b < INFINITY):
        raise ValueError(f"b must be finite, got {b!r}")
    _check_positive(C=C)
    return data, indices, indptr, y, w, kind


def _margins_run(const double[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                 const double[::1] w, double b, double[::1] out):
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1
    if n_rows == 0:
        return
    with nogil:
        csr_margins(&data[0] if data.shape[0] else NULL, &indices[0] if indices.shape[0] else NULL,
                    &indptr[0], n_rows, &w[0] if w.shape[0] else NULL, b, &out[0])


def _gradient_run(const double[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                  const double[::1] y, const double[::1] w, double b, int loss, double C,
                  double[::1] grad_w, double[::1] margins, int n_threads=1):
    cdef Py_ssize_t n_rows = indptr.shape[0] - 1, d = w.shape[0], t, j, lo, hi
    cdef double f, gb = 0.0
    cdef const double *dp = &data[0] if data.shape[0] else NULL
    cdef const index_t *ip = &indices[0] if indices.shape[0] else NULL
    cdef const double *yp = &y[0] if y.shape[0] else NULL
    cdef const double *wp = &w[0] if d else NULL
    cdef double *mp = &margins[0] if margins.shape[0] else NULL
    if n_threads <= 1 or n_rows < 2 * n_threads:
        with nogil:
            f = smooth_gradient(loss, C, dp, ip, &indptr[0], n_rows, yp, wp, d, b, mp,
                                &grad_w[0] if d else NULL, &gb)
        return f, gb
    # each thread its own contiguous rows and its own gradient; the parts are summed in thread
    # order, so a run is deterministic for a given n_threads
    parts = np.empty((n_threads, max(d, 1)))
    sums = np.zeros((n_threads, 2))
    cdef double[:, ::1] pv = parts
    cdef double[:, ::1] sv = sums
    for t in prange(n_threads, nogil=True, num_threads=n_threads, schedule="static"):
        lo = n_rows * t // n_threads
        hi = n_rows * (t + 1) // n_threads
        sv[t, 0] = smooth_gradient(loss, C, dp, ip, &indptr[lo], hi - lo, yp + lo if yp != NULL else NULL,
                                   wp, d, b, mp + lo if mp != NULL else NULL, &pv[t, 0], &sv[t, 1])
    f = 0.0
    for j in range(d):
        grad_w[j] = pv[0, j]
    for t in range(1, n_threads):
        for j in range(d):
            grad_w[j] += pv[t, j]
    for t in range(n_threads):
        f += sv[t, 0]
        gb += sv[t, 1]
    return f, gb


def _objective_run(const double[::1] data, const index_t[::1] indices, const index_t[::1] indptr,
                   const double[::1] y, const double[::1] w, double b, int loss, double C,
                   double[::1] margins, penalty, double lam, l1_ratio, double lo, double hi):
    # the penalty is checked here, before the kernel, as every other argument was by the caller
    cdef Penalty pen = _checked_penalty(penalty, lam, l1_ratio, lo, hi)
    cdef double P
    with nogil:
        P = composite_objective(&pen, loss, C, &data[0] if data.shape[0] else NULL,
                                &indices[0] if indices.shape[0] else NULL, &indptr[0],
                                indptr.shape[0] - 1, &y[0] if y.shape[0] else NULL,
                                &w[0] if w.shape[0] else NULL, w.shape[0], b,
                                &margins[0] if margins.shape[0] else NULL)
    return P


def margins(data, indices, indptr, w, double b=0.0, *, out=None):
    """Margins ``X w + b`` of a CSR matrix (``data``, ``indices``, ``indptr``).

    Returns ``out`` (float64, n_rows; allocated when None).
    """
    w = _vector(w, "w")
    data, indices, indptr, n_rows = _check_csr(data, indices, indptr, w.shape[0])
    if not (-INFINITY < b < INFINITY):
        raise ValueError(f"b must be finite, got {b!r}")
    out = _buffer(out, "out", n_rows)
    if np.may_share_memory(out, w):  # margin i is written before the rows after it read w
        raise ValueError("out overlaps w")
    _margins_run(data, indices, indptr, w, b, out)
    return out


def objective(data, indices, indptr, y, w, double b=0.0, *, loss="log_loss", double C=1.0,
              penalty="l2", double lam=1.0, l1_ratio=None, double lo=-INFINITY,
              double hi=INFINITY):
    """Composite objective ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)``.

    Parameters
    ----------
    data, indices, indptr : CSR arrays of X (float64; int32 or int64 for both index arrays).
    y : (n_rows,) labels in {-1, +1} for ``loss="log_loss"``, real for ``"squared_error"``.
    w : (n_features,) coefficients; b : the intercept (not penalised).
    C : the loss's weight (scikit-learn's ``LogisticRegression(C=)``).
    penalty, lam, l1_ratio, lo, hi : R (module docstring); ``lam=1`` is scikit-learn's scaling.
    """
    data, indices, indptr, y, w, kind = _check_problem(data, indices, indptr, y, w, b, loss, C)
    return _objective_run(data, indices, indptr, y, w, b, kind, C, np.empty(y.shape[0]),
                          penalty, lam, l1_ratio, lo, hi)


def gradient(data, indices, indptr, y, w, double b=0.0, *, loss="log_loss", double C=1.0,
             out=None, out_margins=None, n_threads=1):
    """The smooth part ``f = C * sum_i loss_i`` and its gradient, in one pass over the rows.

    Returns ``(f, grad_w, grad_b, margins)``: ``grad_w = C * X^T dloss`` is written into ``out``
    (float64, n_features) and the margins ``X w + b`` into ``out_margins`` (float64, n_rows),
    each allocated when None; ``grad_b = C * sum_i dloss_i``. Arguments as :func:`objective`;
    ``n_threads`` > 1 splits the rows between OpenMP threads, each with its own gradient, summed
    in thread order (deterministic for a given count; 1 thread is the one-pass sum exactly).
    """
    data, indices, indptr, y, w, kind = _check_problem(data, indices, indptr, y, w, b, loss, C)
    grad_w = _buffer(out, "out", w.shape[0])
    m = _buffer(out_margins, "out_margins", y.shape[0])
    # the kernel zeroes grad_w before it reads w, and writes margin i before it reads y_i
    for name, buf, other in (("out", grad_w, w), ("out", grad_w, y), ("out_margins", m, w),
                             ("out_margins", m, y), ("out", grad_w, m)):
        if np.may_share_memory(buf, other):
            raise ValueError(f"{name} overlaps an input or the other output buffer")
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(f"n_threads must be an integer >= 1, got {n_threads!r}")
    f, gb = _gradient_run(data, indices, indptr, y, w, b, kind, C, grad_w, m, int(n_threads))
    return f, grad_w, gb, m


def _prox_input(x, double step):
    """A float64 copy of x (NaN and infinities kept: the operators define them); step checked."""
    if not (0.0 <= step < INFINITY):
        raise ValueError(f"step must be finite and >= 0, got {step!r}")
    return _vector(x, "x", finite=False).copy()


def py_prox(x, double step, penalty="l1", double lam=1.0, l1_ratio=None, double lo=-INFINITY,
            double hi=INFINITY, g=None):
    """``prox_{step R}(x)`` by ``prox_apply``, or ``prox_{step R}(x - step * g)`` by ``prox_step``
    when g is given; a new array. R's arguments as :func:`objective`."""
    cdef Penalty pen = _checked_penalty(penalty, lam, l1_ratio, lo, hi)
    out = _prox_input(x, step)
    cdef double[::1] o = out
    cdef const double[::1] gm = None if g is None else _vector(g, "g", out.shape[0])
    if o.shape[0] == 0:
        return out
    with nogil:
        if gm is None:
            prox_apply(&pen, &o[0], o.shape[0], step)
        else:
            prox_step(&pen, &o[0], &gm[0], o.shape[0], step)
    return out


# each operator of prox.pxd and the penalty whose proximal operator it is
OPERATORS = {"prox_l1": "l1", "prox_l2": "l2", "prox_elastic_net": "elasticnet", "prox_box": None}


def py_operator(name, x, double step=0.0, double lam=0.0, l1_ratio=None, double lo=-INFINITY,
                double hi=INFINITY):
    """One of the OPERATORS, called by its own name, on a copy of x (the arguments it takes)."""
    if name not in OPERATORS:
        raise ValueError(f"name must be one of {list(OPERATORS)}, got {name!r}")
    _checked_penalty(OPERATORS[name], lam, l1_ratio, lo, hi)
    out = _prox_input(x, step)
    cdef double[::1] o = out
    cdef Py_ssize_t n = o.shape[0]
    if n == 0:
        return out
    if name == "prox_l1":
        prox_l1(&o[0], n, step, lam)
    elif name == "prox_l2":
        prox_l2(&o[0], n, step, lam)
    elif name == "prox_elastic_net":
        prox_elastic_net(&o[0], n, step, lam, l1_ratio)
    else:
        prox_box(&o[0], n, lo, hi)
    return out


def py_penalty_value(x, penalty="l1", double lam=1.0, l1_ratio=None, double lo=-INFINITY,
                     double hi=INFINITY):
    """``penalty_value``: R(x) (NaN for a NaN in x, inf outside the box)."""
    cdef Penalty pen = _checked_penalty(penalty, lam, l1_ratio, lo, hi)
    xv = _vector(x, "x", finite=False)
    cdef const double[::1] v = xv
    return penalty_value(&pen, &v[0] if v.shape[0] else NULL, v.shape[0])
