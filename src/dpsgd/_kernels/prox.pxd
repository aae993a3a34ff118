# Proximal operators and the composite objective P = C * sum(loss) + R, for kernels that solve
# L1 / elastic-net problems with them (PIAG, Async-BCD). prox.pyx defines and documents these
# (zeros, NaN, the box, the CSR layout, what is scaled by what).
from libc.stdint cimport int32_t, int64_t

ctypedef fused index_t:
    int32_t
    int64_t

# What R is besides its box (the names are scikit-learn's penalties; prox.PENALTIES maps them).
cpdef enum PenaltyKind:
    PENALTY_NONE = 0        # R = 0 (the box alone)
    PENALTY_L1 = 1          # R = lam * ||x||_1
    PENALTY_L2 = 2          # R = lam / 2 * ||x||^2
    PENALTY_ELASTICNET = 3  # R = lam * (l1_ratio * ||x||_1 + (1 - l1_ratio) / 2 * ||x||^2)

# The smooth part's loss of a margin m = x_i . w + b (prox.LOSSES maps scikit-learn's names).
cpdef enum SmoothLoss:
    LOSS_LOGISTIC = 0       # log(1 + exp(-y m)), y in {-1, +1}
    LOSS_SQUARED = 1        # (m - y)^2 / 2

from libc.math cimport exp, fabs


cdef inline double loss_derivative(int loss, double y, double m) noexcept nogil:
    """d loss(y, m) / dm for a margin m. Logistic with one exp: e = exp(-|y m|) <= 1, so
    e / (1 + e) neither overflows nor loses small values, on both sides of 0."""
    cdef double z, e
    if loss == LOSS_SQUARED:
        return m - y
    z = y * m
    e = exp(-fabs(z))
    if z >= 0.0:
        return -y * e / (1.0 + e)
    return -y / (1.0 + e)


# The penalty R of one coordinate block, passed as one value: its kind's term (above) plus the
# indicator of the box lo <= x_j <= hi (-inf and +inf for no box), so that PENALTY_NONE with
# finite bounds is the box constraint alone and any kind may be boxed (e.g. nonnegative L1).
ctypedef struct Penalty:
    int kind                # PenaltyKind
    double lam              # strength (scikit-learn's LogisticRegression: 1, with C on the loss)
    double l1_ratio         # PENALTY_ELASTICNET's mix, in [0, 1]; the other kinds ignore it
    double lo               # the box; lo <= hi, lo < +inf, hi > -inf
    double hi

cdef void prox_l1(double *x, Py_ssize_t n, double step, double lam) noexcept nogil
cdef void prox_l2(double *x, Py_ssize_t n, double step, double lam) noexcept nogil
cdef void prox_elastic_net(double *x, Py_ssize_t n, double step, double lam,
                           double l1_ratio) noexcept nogil
cdef void prox_box(double *x, Py_ssize_t n, double lo, double hi) noexcept nogil
cdef void prox_apply(const Penalty *pen, double *x, Py_ssize_t n, double step) noexcept nogil
cdef void prox_step(const Penalty *pen, double *x, const double *g, Py_ssize_t n,
                    double step) noexcept nogil
cdef double penalty_value(const Penalty *pen, const double *x, Py_ssize_t n) noexcept nogil

cdef void csr_margins(const double *data, const index_t *indices, const index_t *indptr,
                      Py_ssize_t n_rows, const double *w, double b, double *margins) noexcept nogil
cdef double smooth_value(int loss, double C, const double *y, const double *margins,
                         Py_ssize_t n_rows) noexcept nogil
cdef double smooth_gradient(int loss, double C, const double *data, const index_t *indices,
                            const index_t *indptr, Py_ssize_t n_rows, const double *y,
                            const double *w, Py_ssize_t n_features, double b, double *margins,
                            double *grad_w, double *grad_b) noexcept nogil
cdef double composite_objective(const Penalty *pen, int loss, double C, const double *data,
                                const index_t *indices, const index_t *indptr, Py_ssize_t n_rows,
                                const double *y, const double *w, Py_ssize_t n_features, double b,
                                double *margins) noexcept nogil
