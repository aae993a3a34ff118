"""The proximal operators and the composite objective (dpsgd._kernels.prox) against references.

The references: each operator's closed form and the optimality of its output (the proximal
point p of x satisfies (x - p) / step in the subdifferential of R at p, and minimises
R(p) + ||p - x||^2 / (2 step)), written here in NumPy; the objective and its gradient in
NumPy / SciPy, on random sparse matrices and on the bundled a9a, the gradient also against
central finite differences; and scikit-learn's LogisticRegression, whose solution must be the
minimiser of our objective when the scaling (C on the loss, R unscaled) is the same.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_csr

from dpsgd._kernels import prox

INF = np.inf
# (penalty, l1_ratio): every kind, the elastic net at both ends of its mix too
KINDS = [("l1", None), ("l2", None), ("elasticnet", 0.3), ("elasticnet", 1.0), ("elasticnet", 0.0), (None, None)]
BOXES = [(-INF, INF), (-0.4, 0.7), (0.0, INF), (-INF, 0.0), (0.25, 0.25)]


def weights(penalty, lam, l1_ratio):
    """lam * (L1 weight, L2 weight) of R = lam * (a ||x||_1 + c / 2 ||x||^2)."""
    a, c = {"l1": (1.0, 0.0), "l2": (0.0, 1.0), None: (0.0, 0.0)}.get(
        penalty, (l1_ratio, 1.0 - (l1_ratio or 0.0)))
    return lam * a, lam * c


def prox_reference(x, step, penalty, lam, l1_ratio, lo=-INF, hi=INF):
    """The closed form: soft-threshold, divide (elastic net), then clip to the box."""
    a, c = weights(penalty, lam, l1_ratio)
    p = np.sign(x) * np.maximum(np.abs(x) - step * a, 0.0) / (1.0 + step * c)
    return np.clip(p, lo, hi)


def value_reference(x, penalty, lam, l1_ratio, lo=-INF, hi=INF):
    a, c = weights(penalty, lam, l1_ratio)
    if np.any((x < lo) | (x > hi)):
        return INF
    return a * np.abs(x).sum() + 0.5 * c * (x @ x)


def random_vector(seed, n=400):
    """Normal values, with exact zeros, -0.0 and values at +-threshold-like magnitudes mixed in."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    x[::17] = 0.0
    x[5::23] = -0.0
    x[7::29] = 0.5  # on the threshold of step * lam = 0.5 in some cases below
    x[9::31] = -0.5
    return x


# ---------------------------------------------------------------- the operators

@pytest.mark.parametrize("step, lam", [(1.0, 0.5), (0.1, 3.0), (2.5, 0.0), (0.0, 1.0)])
@pytest.mark.parametrize("penalty, l1_ratio", KINDS)
@pytest.mark.parametrize("lo, hi", BOXES)
def test_prox_is_its_closed_form(step, lam, penalty, l1_ratio, lo, hi):
    x = random_vector(1)
    out = prox.py_prox(x, step, penalty, lam, l1_ratio, lo, hi)
    ref = prox_reference(x, step, penalty, lam, l1_ratio, lo, hi)
    # the kernel multiplies by 1 / (1 + step * c) where the reference divides: one rounding apart
    np.testing.assert_allclose(out, ref, rtol=4e-16, atol=0)
    assert out is not x and np.array_equal(x, random_vector(1))  # py_prox works on a copy


@pytest.mark.parametrize("step, lam", [(1.0, 0.5), (0.3, 2.0)])
def test_each_operator_is_the_dispatchers(step, lam):
    x = random_vector(2)
    assert np.array_equal(prox.py_operator("prox_l1", x, step, lam), prox.py_prox(x, step, "l1", lam))
    np.testing.assert_array_equal(prox.py_operator("prox_l1", x, step, lam),
                                  prox_reference(x, step, "l1", lam, None))
    assert np.array_equal(prox.py_operator("prox_l2", x, step, lam), prox.py_prox(x, step, "l2", lam))
    for r in (0.0, 0.4, 1.0):
        assert np.array_equal(prox.py_operator("prox_elastic_net", x, step, lam, r),
                              prox.py_prox(x, step, "elasticnet", lam, r))
    for lo, hi in BOXES:
        box = prox.py_operator("prox_box", x, lo=lo, hi=hi)
        assert np.array_equal(box, prox.py_prox(x, step, None, lam, None, lo, hi))
        assert np.array_equal(box, np.clip(x, lo, hi))


def in_subdifferential(x, p, step, penalty, lam, l1_ratio, lo, hi, tol=1e-12):
    """Coordinatewise: (x - p) / step - c p in a * d|p| + the box's normal cone at p."""
    a, c = weights(penalty, lam, l1_ratio)
    r = (x - p) / step - c * p
    lower = np.where(p > 0, a, -a)
    upper = np.where(p < 0, -a, a)
    lower = np.where(p == lo, -INF, lower)  # at a bound the normal cone opens one way
    upper = np.where(p == hi, INF, upper)
    scale = 1.0 + np.abs(x) / step
    return (lower - tol * scale <= r) & (r <= upper + tol * scale) & (p >= lo) & (p <= hi)


@pytest.mark.parametrize("step, lam", [(1.0, 0.5), (0.05, 4.0), (3.0, 0.2)])
@pytest.mark.parametrize("penalty, l1_ratio", KINDS)
@pytest.mark.parametrize("lo, hi", BOXES)
def test_prox_output_is_optimal(step, lam, penalty, l1_ratio, lo, hi):
    x = random_vector(3) * 2.0
    p = prox.py_prox(x, step, penalty, lam, l1_ratio, lo, hi)
    ok = in_subdifferential(x, p, step, penalty, lam, l1_ratio, lo, hi)
    assert ok.all(), np.flatnonzero(~ok)[:5]

    # and p minimises R(q) + ||q - x||^2 / (2 step): no feasible neighbour does better
    def moreau(q):
        return prox.py_penalty_value(q, penalty, lam, l1_ratio, lo, hi) + (q - x) @ (q - x) / (2 * step)

    best = moreau(p)
    rng = np.random.default_rng(4)
    for _ in range(50):
        q = np.clip(p + rng.normal(0.0, 1e-3, p.size) * (rng.random(p.size) < 0.2), lo, hi)
        assert best <= moreau(q) + 1e-12 * abs(best)


def test_prox_step_is_prox_of_the_gradient_step():
    rng = np.random.default_rng(5)
    x, g = rng.normal(size=300), rng.normal(size=300)
    for penalty, l1_ratio in KINDS:
        for lo, hi in BOXES:
            out = prox.py_prox(x, 0.7, penalty, 0.8, l1_ratio, lo, hi, g=g)
            ref = prox.py_prox(x - 0.7 * g, 0.7, penalty, 0.8, l1_ratio, lo, hi)
            # x - step * g may be one fused multiply-add in the kernel
            np.testing.assert_allclose(out, ref, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("penalty, l1_ratio", KINDS)
def test_zeros_come_out_positive_and_nan_stays_nan(penalty, l1_ratio):
    x = np.array([-0.0, 0.0, -1e-300, 0.2, -0.2, np.nan, INF, -INF, -3.0, 3.0])
    for lo, hi in BOXES + [(-0.0, 1.0), (-1.0, -0.0)]:
        for step in (0.0, 1.0):
            p = prox.py_prox(x, step, penalty, 0.5, l1_ratio, lo, hi)
            assert not np.signbit(p[p == 0.0]).any(), (lo, hi, step, p)
            assert np.isnan(p[5]) and not np.isnan(np.delete(p, 5)).any()
            assert ((p[~np.isnan(p)] >= lo) & (p[~np.isnan(p)] <= hi)).all()
    # infinities: thresholded and scaled they stay infinite, boxed they are clipped
    p = prox.py_prox(x, 1.0, penalty, 0.5, l1_ratio)
    assert p[6] == INF and p[7] == -INF


def test_penalty_value():
    rng = np.random.default_rng(6)
    x = rng.normal(size=200)
    for penalty, l1_ratio in KINDS:
        for lam in (0.0, 0.7):
            for lo, hi in [(-INF, INF), (-10.0, 10.0), (0.0, INF)]:
                ref = value_reference(x, penalty, lam, l1_ratio, lo, hi)
                got = prox.py_penalty_value(x, penalty, lam, l1_ratio, lo, hi)
                assert got == ref or abs(got - ref) <= 1e-13 * abs(ref), (penalty, lam, lo, got, ref)
    assert np.isnan(prox.py_penalty_value([1.0, np.nan], "l1"))
    assert np.isnan(prox.py_penalty_value([np.nan], None))  # NaN even where R is 0
    assert prox.py_penalty_value([INF, 1.0], "l1") == INF
    assert prox.py_penalty_value([INF, 1.0], None) == 0.0  # no 0 * inf
    assert prox.py_penalty_value([-1e-3], "l1", lo=0.0) == INF
    assert prox.py_penalty_value([], "l2") == 0.0


def test_operators_refuse_bad_parameters():
    x = np.ones(3)
    for kwargs, match in [
        (dict(penalty="lasso"), "penalty must be one of"),
        (dict(penalty=["l1"]), "penalty must be one of"),
        (dict(penalty="l1", lam=-1.0), "lam must be finite"),
        (dict(penalty="l1", lam=np.nan), "lam must be finite"),
        (dict(penalty="elasticnet"), "needs l1_ratio"),
        (dict(penalty="elasticnet", l1_ratio=1.5), "l1_ratio must be in"),
        (dict(penalty="l1", lo=1.0, hi=0.0), "the box"),
        (dict(penalty="l1", lo=np.nan), "the box"),
        (dict(penalty="l1", lo=INF, hi=INF), "the box"),
    ]:
        with pytest.raises(ValueError, match=match):
            prox.py_prox(x, 1.0, **kwargs)
    for step in (-1.0, np.nan, INF):
        with pytest.raises(ValueError, match="step must be"):
            prox.py_prox(x, step, "l1")
    with pytest.raises(ValueError, match="1-D"):
        prox.py_prox(np.ones((2, 2)), 1.0)
    with pytest.raises(ValueError, match="g has 2 values"):
        prox.py_prox(x, 1.0, g=np.ones(2))
    with pytest.raises(ValueError, match="non-finite"):
        prox.py_prox(x, 1.0, g=[1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="the box"):
        prox.py_operator("prox_box", x, lo=2.0, hi=1.0)
    with pytest.raises(ValueError, match="needs l1_ratio"):
        prox.py_operator("prox_elastic_net", x, 1.0, 1.0)
    with pytest.raises(ValueError, match="name must be one of"):
        prox.py_operator("prox_huber", x)


# ---------------------------------------------------------------- objective and gradient

def smooth_reference(X, y, w, b, loss, C):
    """(f, grad_w, grad_b, margins) in NumPy / SciPy; log(1 + exp(-z)) by logaddexp."""
    m = X @ w + b
    if loss == "log_loss":
        z = y * m
        f = np.logaddexp(0.0, -z).sum()
        dloss = -y * np.exp(-np.logaddexp(0.0, z))  # -y * sigmoid(-z)
    else:
        f = 0.5 * ((m - y) ** 2).sum()
        dloss = m - y
    return C * f, C * (X.T @ dloss), C * dloss.sum(), m


def problem(seed, n=300, d=40, density=0.1, loss="log_loss", index_dtype=np.int32, scale=0.5):
    rng = np.random.default_rng(seed)
    X = random_csr(n, d, density, seed, index_dtype=index_dtype)
    w = rng.normal(0.0, scale, d)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0) if loss == "log_loss" else rng.normal(size=n)
    return X, y, w


def csr(X):
    return X.data, X.indices, X.indptr


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("penalty, l1_ratio", KINDS)
def test_objective_and_gradient_match_numpy(loss, index_dtype, penalty, l1_ratio):
    X, y, w = problem(7, loss=loss, index_dtype=index_dtype)
    b, C = 0.3, 2.5
    f, gw, gb, m = smooth_reference(X, y, w, b, loss, C)
    P = prox.objective(*csr(X), y, w, b, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio)
    np.testing.assert_allclose(P, f + value_reference(w, penalty, 1.0, l1_ratio), rtol=1e-13)
    f2, gw2, gb2, m2 = prox.gradient(*csr(X), y, w, b, loss=loss, C=C)
    np.testing.assert_allclose(f2, f, rtol=1e-13)
    np.testing.assert_allclose(gw2, gw, rtol=1e-12, atol=1e-13 * np.abs(gw).max())
    np.testing.assert_allclose(gb2, gb, rtol=1e-12)
    np.testing.assert_allclose(m2, m, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(prox.margins(*csr(X), w, b), m, rtol=1e-13, atol=1e-15)
    # the gradient's f and the objective's smooth part are the same sum, term for term
    assert f2 + prox.py_penalty_value(w, penalty, 1.0, l1_ratio) == P


@pytest.mark.parametrize("n_threads", [2, 3, 8])
def test_threaded_gradient_matches_numpy_and_is_deterministic(n_threads):
    """Rows split between threads, each with its own gradient: NumPy's sums to rounding, the
    same bits on every call with the same count; fewer rows than 2 per thread run serially."""
    X, y, w = problem(9)
    f, gw, gb, m = smooth_reference(X, y, w, 0.2, "log_loss", 1.5)
    one = prox.gradient(*csr(X), y, w, 0.2, C=1.5, n_threads=n_threads)
    np.testing.assert_allclose(one[0], f, rtol=1e-13)
    np.testing.assert_allclose(one[1], gw, rtol=1e-12, atol=1e-13 * np.abs(gw).max())
    np.testing.assert_allclose(one[2], gb, rtol=1e-12)
    np.testing.assert_allclose(one[3], m, rtol=1e-13, atol=1e-15)
    again = prox.gradient(*csr(X), y, w, 0.2, C=1.5, n_threads=n_threads)
    assert again[0] == one[0] and again[2] == one[2] and np.array_equal(again[1], one[1])
    tiny = prox.gradient(*csr(X[:3]), y[:3], w, 0.2, C=1.5, n_threads=n_threads)
    serial = prox.gradient(*csr(X[:3]), y[:3], w, 0.2, C=1.5)
    assert tiny[0] == serial[0] and np.array_equal(tiny[1], serial[1])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_threads"):
            prox.gradient(*csr(X), y, w, 0.2, n_threads=bad)


def test_gradient_writes_into_the_callers_buffers():
    X, y, w = problem(8)
    out, out_m = np.full(w.size, np.nan), np.full(y.size, np.nan)
    f, gw, gb, m = prox.gradient(*csr(X), y, w, 0.1, C=0.5, out=out, out_margins=out_m)
    assert gw is out and m is out_m
    f_ref, gw_ref, gb_ref, m_ref = smooth_reference(X, y, w, 0.1, "log_loss", 0.5)
    np.testing.assert_allclose(out, gw_ref, rtol=1e-12, atol=1e-14)
    buf = np.full(y.size, np.nan)
    assert prox.margins(*csr(X), w, 0.1, out=buf) is buf
    np.testing.assert_allclose(buf, m_ref, rtol=1e-13, atol=1e-15)


def test_logistic_loss_is_stable_at_large_margins():
    X, y, w = problem(9, scale=400.0)  # margins of hundreds to thousands
    f_ref, gw_ref, gb_ref, m = smooth_reference(X, y, w, 0.0, "log_loss", 1.0)
    assert np.abs(m).max() > 800  # exp(800) overflows: a naive log(1 + exp(-z)) would not be finite
    f, gw, gb, _ = prox.gradient(*csr(X), y, w)
    assert np.isfinite(f) and np.isfinite(gw).all()
    np.testing.assert_allclose(f, f_ref, rtol=1e-13)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-12, atol=1e-13 * np.abs(gw_ref).max())
    # a tiny loss keeps its relative precision (log1p, not log(1 + e))
    one = sp.csr_matrix(np.array([[1.0]]))
    assert prox.objective(*csr(one), [1.0], [40.0], penalty=None) == pytest.approx(np.exp(-40.0), rel=1e-15)


@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
def test_gradient_against_finite_differences(loss):
    X, y, w = problem(10, n=60, d=12, density=0.3, loss=loss)
    b, C, h = -0.2, 1.7, 1e-6

    def f(v):
        return prox.objective(*csr(X), y, v[:-1], v[-1], loss=loss, C=C, penalty=None)

    v = np.append(w, b)
    fd = np.array([(f(v + h * e) - f(v - h * e)) / (2 * h) for e in np.eye(v.size)])
    _, gw, gb, _ = prox.gradient(*csr(X), y, w, b, loss=loss, C=C)
    np.testing.assert_allclose(np.append(gw, gb), fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_a9a_objective_and_gradient(a9a):
    X, y, _, _ = a9a
    rng = np.random.default_rng(11)
    w, b, C = rng.normal(0.0, 0.1, X.shape[1]), -0.5, 0.25
    f, gw, gb, m = smooth_reference(X, y, w, b, "log_loss", C)
    for penalty, l1_ratio in [("l1", None), ("elasticnet", 0.5)]:
        P = prox.objective(*csr(X), y, w, b, C=C, penalty=penalty, l1_ratio=l1_ratio)
        np.testing.assert_allclose(P, f + value_reference(w, penalty, 1.0, l1_ratio), rtol=1e-12)
    f2, gw2, gb2, m2 = prox.gradient(*csr(X), y, w, b, C=C)
    np.testing.assert_allclose(f2, f, rtol=1e-12)
    np.testing.assert_allclose(gw2, gw, rtol=1e-11, atol=1e-12 * np.abs(gw).max())
    np.testing.assert_allclose(gb2, gb, rtol=1e-11)
    np.testing.assert_allclose(m2, m, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- scikit-learn's objective

def sklearn_fit(X, y, C, l1_ratio, **kwargs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an unconverged fit proves nothing
        return LogisticRegression(C=C, l1_ratio=l1_ratio, tol=1e-10, max_iter=100_000, **kwargs).fit(X, y)


def test_sklearn_l1_solution_minimises_our_objective(a9a):
    """liblinear minimises C * sum log-loss + ||w||_1: its coef_ must be our objective's minimiser."""
    X, y = a9a[0][:2000], a9a[1][:2000]
    C = 0.05
    w = sklearn_fit(X, y, C, 1.0, solver="liblinear", fit_intercept=False).coef_.ravel()
    support = w != 0
    assert 5 < support.sum() < X.shape[1] - 5  # a real L1 problem: some in, some out

    def P(v, C=C):
        return prox.objective(*csr(X), y, v, C=C, penalty="l1")

    best = P(w)
    rng = np.random.default_rng(12)
    for eps in (1e-3, 1e-4):
        for _ in range(30):
            assert best <= P(w + eps * rng.normal(size=w.size)) + 1e-12 * best
        for j in range(w.size):  # every coordinate, both ways
            e = np.zeros(w.size)
            e[j] = eps
            assert best <= P(w + e) + 1e-12 * best and best <= P(w - e) + 1e-12 * best

    # optimality through our gradient: -grad f in the subdifferential of ||w||_1
    _, g, _, _ = prox.gradient(*csr(X), y, w, C=C)
    assert np.abs(g[support] + np.sign(w[support])).max() < 1e-6
    assert np.abs(g[~support]).max() <= 1.0 + 1e-6
    # and the check has teeth: under another scaling of the loss the same w is not optimal
    _, g2, _, _ = prox.gradient(*csr(X), y, w, C=2 * C)
    assert np.abs(g2[support] + np.sign(w[support])).max() > 0.1


def test_sklearn_l2_solution_with_intercept_is_stationary(a9a):
    """lbfgs with an unpenalised intercept: grad f + w = 0 and grad_b = 0 at scikit-learn's solution."""
    X, y = a9a[0][:2000], a9a[1][:2000]
    C = 0.3
    model = sklearn_fit(X, y, C, 0.0, solver="lbfgs")
    w, b = model.coef_.ravel(), float(model.intercept_[0])
    _, g, gb, _ = prox.gradient(*csr(X), y, w, b, C=C)
    assert np.abs(g + w).max() < 1e-5 and abs(gb) < 1e-5
    best = prox.objective(*csr(X), y, w, b, C=C, penalty="l2")
    rng = np.random.default_rng(13)
    for _ in range(20):
        d = 1e-3 * rng.normal(size=w.size + 1)
        assert best <= prox.objective(*csr(X), y, w + d[:-1], b + d[-1], C=C, penalty="l2")


# ---------------------------------------------------------------- bad input

def bad_inputs():
    X, y, w = problem(14, n=20, d=6, density=0.4)
    data, indices, indptr = csr(X)
    good = dict(data=data, indices=indices, indptr=indptr, y=y, w=w)
    unsorted = indptr.copy()
    unsorted[3], unsorted[4] = unsorted[4], unsorted[3]
    out_of_range = indices.copy()
    out_of_range[0] = 6
    nan_data = data.copy()
    nan_data[1] = np.nan
    cases = [
        (dict(data=data.astype(np.float32)), "data must be a 1-D float64"),
        (dict(indices=indices.astype(np.int16)), "indices must be a 1-D int32 or int64"),
        (dict(indices=indices.astype(np.int64)), "must have one dtype"),
        (dict(indptr=indptr[1:]), "indptr must start with 0"),
        (dict(indptr=unsorted), "non-decreasing"),
        (dict(data=data[:-1]), "inconsistent CSR"),
        (dict(indices=out_of_range), "column index is outside"),
        (dict(w=w[:-1]), "column index is outside"),
        (dict(data=nan_data), "data holds a non-finite"),
        (dict(y=y[:-1]), "y has 19 values, expected 20"),
        (dict(y=np.where(y > 0, 1.0, 0.0)), "labels y in"),
        (dict(y=np.where(y > 0, np.inf, -1.0)), "y holds a non-finite"),
        (dict(w=np.full(6, np.nan)), "w holds a non-finite"),
        (dict(w=np.ones((6, 1))), "w must be a 1-D array"),
        (dict(w=np.array(["a"] * 6)), "w must be a 1-D array of real numbers"),
    ]
    return good, cases


def test_bad_inputs_raise_value_error():
    good, cases = bad_inputs()
    for change, match in cases:
        args = {**good, **change}
        with pytest.raises(ValueError, match=match):
            prox.objective(**args)
        with pytest.raises(ValueError, match=match):
            prox.gradient(**args)
        if "y" not in change:
            args.pop("y")
            with pytest.raises(ValueError, match=match):
                prox.margins(**args)
    for kwargs, match in [(dict(C=0.0), "C must be finite and > 0"), (dict(C=np.inf), "C must be"),
                          (dict(b=np.nan), "b must be finite"), (dict(loss="hinge"), "loss must be one of"),
                          (dict(penalty="l3"), "penalty must be one of")]:
        with pytest.raises(ValueError, match=match):
            prox.objective(**good, **kwargs)
    with pytest.raises(ValueError, match="out must be a writeable contiguous float64"):
        prox.gradient(**good, out=np.empty(5))
    with pytest.raises(ValueError, match="out_margins must be"):
        prox.gradient(**good, out_margins=np.empty(20, dtype=np.float32))
    with pytest.raises(ValueError, match="out must be"):
        prox.margins(good["data"], good["indices"], good["indptr"], good["w"], out=np.empty(40)[::2])
    w = good["w"]
    with pytest.raises(ValueError, match="out overlaps"):
        prox.gradient(**good, out=w)
    with pytest.raises(ValueError, match="out_margins overlaps"):
        prox.gradient(**good, out_margins=good["y"])
    with pytest.raises(ValueError, match="out overlaps w"):
        prox.margins(*csr(sp.csr_matrix((6, 6))), w, out=w)
    # real labels are fine for the squared loss
    prox.objective(**{**good, "y": np.linspace(-3, 3, 20)}, loss="squared_error")


def test_empty_rows_and_no_rows():
    X = sp.csr_matrix((3, 4))
    assert prox.objective(*csr(X), [1.0, -1.0, 1.0], np.ones(4), penalty="l1") == pytest.approx(3 * np.log(2) + 4)
    none = sp.csr_matrix((0, 4))
    f, g, gb, m = prox.gradient(*csr(none), [], np.ones(4))
    assert f == 0.0 and gb == 0.0 and m.size == 0 and np.array_equal(g, np.zeros(4))
