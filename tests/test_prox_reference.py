"""Serial proximal gradient (dpsgd.tasks.prox_reference), the reference PIAG and Async-BCD are
held to, against references: L against dense spectral norms; scikit-learn's liblinear optimum
on a9a with L1; the closed-form ridge solution; the documented arithmetic of one step.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_csr

from dpsgd._kernels import prox
from dpsgd.tasks.prox_reference import lipschitz, proximal_gradient

# ---------------------------------------------------------------- lipschitz


@pytest.mark.parametrize("loss, factor", [("log_loss", 0.25), ("squared_error", 1.0)])
@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("nonnegative", [False, True])
def test_lipschitz_is_the_dense_spectral_norm(loss, factor, fit_intercept, nonnegative):
    X = random_csr(60, 17, 0.3, 3)
    if nonnegative:
        X.data = np.abs(X.data)
    dense = X.toarray()
    if fit_intercept:
        dense = np.hstack([dense, np.ones((60, 1))])
    exact = 0.7 * factor * np.linalg.norm(dense, 2) ** 2
    L = lipschitz(X, loss, C=0.7, n_iter=2000, fit_intercept=fit_intercept)
    np.testing.assert_allclose(L, exact, rtol=1e-9)
    assert L <= exact * (1 + 1e-12)  # a Rayleigh quotient: from below
    upper = lipschitz(X, loss, C=0.7, n_iter=2000, fit_intercept=fit_intercept, upper_bound=True)
    assert upper >= exact * (1 - 1e-12)
    if nonnegative:  # Collatz-Wielandt: within the eigenvector's error (sqrt of tol)
        np.testing.assert_allclose(upper, exact, rtol=1e-6)


def test_lipschitz_upper_bound_holds_after_one_iteration():
    X = random_csr(40, 30, 0.2, 4)
    exact = np.linalg.norm(X.toarray(), 2) ** 2
    assert lipschitz(X, "squared_error", n_iter=1) <= exact * (1 + 1e-12)
    assert lipschitz(X, "squared_error", n_iter=1, upper_bound=True) >= exact * (1 - 1e-12)
    X.data = np.abs(X.data)
    exact = np.linalg.norm(X.toarray(), 2) ** 2
    assert lipschitz(X, "squared_error", n_iter=1, upper_bound=True) >= exact * (1 - 1e-12)


def test_lipschitz_of_zeros_and_of_a_zero_column():
    assert lipschitz(sp.csr_matrix((5, 3))) == 0.0
    assert lipschitz(sp.csr_matrix((5, 3)), upper_bound=True) == 0.0
    assert lipschitz(sp.csr_matrix((5, 3)), "squared_error", fit_intercept=True) == pytest.approx(5.0)
    X = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 1.0]])
    exact = np.linalg.norm(X, 2) ** 2
    np.testing.assert_allclose(lipschitz(X, "squared_error", upper_bound=True), exact, rtol=1e-6)


# ---------------------------------------------------------------- the documented arithmetic

def test_one_step_is_gradient_then_prox_step():
    """What PIAG with one worker must reproduce to the bit: gradient at x, then one prox_step."""
    X = random_csr(50, 12, 0.4, 5)
    y = np.random.default_rng(5).choice([-1.0, 1.0], 50)
    w0 = np.random.default_rng(6).normal(size=12)
    r = proximal_gradient(X, y, C=0.8, penalty="elasticnet", l1_ratio=0.3, fit_intercept=True,
                          step=0.01, max_iter=1, tol=0.0, coef_init=w0, intercept_init=0.2)
    _, g, gb, _ = prox.gradient(X.data, X.indices, X.indptr, y, w0, 0.2, C=0.8)
    expected = prox.py_prox(w0, 0.01, "elasticnet", l1_ratio=0.3, g=g)
    assert r.n_iter == 1 and not r.converged
    np.testing.assert_array_equal(r.coef, expected)
    assert r.intercept == 0.2 - 0.01 * gb
    P0 = prox.objective(X.data, X.indices, X.indptr, y, w0, 0.2, C=0.8, penalty="elasticnet", l1_ratio=0.3)
    assert r.history[0] == (0, P0)
    assert r.history[1][0] == 1 and r.history[1][1] == r.objective


# ---------------------------------------------------------------- a9a: scikit-learn's optimum

N_A9A = 4000
C_A9A = 0.05  # liblinear keeps 16 of a9a's 123 weights (13%) on the first 4000 rows, no intercept


@pytest.fixture(scope="module")
def a9a_part(a9a):
    return a9a[0][:N_A9A], a9a[1][:N_A9A]


@pytest.fixture(scope="module")
def a9a_optimum(a9a_part):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X, y = a9a_part
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # an unconverged fit proves nothing
        model = LogisticRegression(C=C_A9A, l1_ratio=1.0, solver="liblinear", fit_intercept=False,
                                   tol=1e-10, max_iter=100_000).fit(X, y)
    w = model.coef_.ravel()
    return w, prox.objective(X.data, X.indices, X.indptr, y, w, C=C_A9A, penalty="l1")


def test_a9a_l1_reaches_sklearn_optimum(a9a_part, a9a_optimum):
    X, y = a9a_part
    w_sk, P_sk = a9a_optimum
    assert 0.1 < np.mean(w_sk != 0) < 0.3
    r = proximal_gradient(X, y, C=C_A9A, penalty="l1", accelerated=True, tol=1e-9, max_iter=5000)
    assert r.converged, (r.n_iter, r.optimality)
    assert abs(r.objective - P_sk) <= 1e-6 * P_sk, (r.objective, P_sk)
    np.testing.assert_array_equal(r.coef != 0, w_sk != 0)
    assert r.objective <= P_sk * (1 + 1e-9)  # at least as good as liblinear, to its precision
    assert r.intercept == 0.0 and r.history[-1] == (r.n_iter, r.objective)


def test_a9a_plain_proximal_gradient_never_increases(a9a_part, a9a_optimum):
    """step = 1/L makes every step a descent step: P(x_{k+1}) <= P(x_k), to rounding."""
    X, y = a9a_part
    r = proximal_gradient(X, y, C=C_A9A, penalty="l1", tol=0.0, max_iter=400)
    P = np.array([p for _, p in r.history])
    assert [k for k, _ in r.history] == list(range(401))
    assert np.all(np.diff(P) <= 1e-13 * P[:-1]), np.diff(P).max()
    assert P[-1] < P[0] and P[-1] >= a9a_optimum[1] * (1 - 1e-9)


def test_plain_with_intercept_never_increases_and_matches_fista():
    X = random_csr(200, 15, 0.3, 7)
    y = np.random.default_rng(7).choice([-1.0, 1.0], 200)
    kw = {"C": 2.0, "penalty": "elasticnet", "l1_ratio": 0.5, "fit_intercept": True, "tol": 1e-10,
          "max_iter": 20_000}
    plain = proximal_gradient(X, y, **kw)
    fista = proximal_gradient(X, y, accelerated=True, **kw)
    P = np.array([p for _, p in plain.history])
    assert np.all(np.diff(P) <= 1e-13 * P[:-1])
    assert plain.converged and fista.converged and fista.n_iter < plain.n_iter
    np.testing.assert_allclose(fista.objective, plain.objective, rtol=1e-11)
    np.testing.assert_allclose(fista.coef, plain.coef, atol=1e-7)
    np.testing.assert_allclose(fista.intercept, plain.intercept, atol=1e-7)


# ---------------------------------------------------------------- squared loss: ridge

@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("accelerated", [False, True])
def test_squared_l2_is_closed_form_ridge(fit_intercept, accelerated):
    """P = C/2 ||X w + b - y||^2 + ||w||^2 / 2: (C A^T A + D) (w, b) = C A^T y, A = [X, 1],
    D = diag(1, ..., 1, 0) (the intercept is not penalised)."""
    X = random_csr(120, 10, 0.5, 8)
    y = np.random.default_rng(8).normal(size=120) + 1.5
    C = 0.3
    A = X.toarray()
    if fit_intercept:
        A = np.hstack([A, np.ones((120, 1))])
    D = np.eye(A.shape[1])
    if fit_intercept:
        D[-1, -1] = 0.0
    exact = np.linalg.solve(C * A.T @ A + D, C * A.T @ y)
    r = proximal_gradient(X, y, loss="squared_error", C=C, penalty="l2", fit_intercept=fit_intercept,
                          accelerated=accelerated, tol=1e-12, max_iter=50_000)
    assert r.converged
    got = np.append(r.coef, r.intercept) if fit_intercept else r.coef
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-9 * np.abs(exact).max())


# ---------------------------------------------------------------- callback, divergence

def test_callback_sees_each_iterate_and_can_stop():
    X = random_csr(30, 5, 0.5, 9)
    y = np.random.default_rng(9).choice([-1.0, 1.0], 30)
    seen = []

    def callback(info):
        seen.append((info["iteration"], info["objective"]))
        return info["iteration"] == 3

    r = proximal_gradient(X, y, tol=0.0, max_iter=100, callback=callback)
    assert r.n_iter == 3 and not r.converged
    assert seen == r.history


def test_a_too_long_step_diverges_with_a_clear_message():
    X = random_csr(30, 5, 0.5, 10)
    y = np.random.default_rng(10).normal(size=30)
    with pytest.raises(ValueError, match="diverged .* smaller step"):
        proximal_gradient(X, y, loss="squared_error", penalty="l2", step=1e3, max_iter=5000, tol=0.0)


# ---------------------------------------------------------------- bad input

def bad_inputs():
    X = random_csr(20, 6, 0.4, 11)
    y = np.random.default_rng(11).choice([-1.0, 1.0], 20)
    nan_X = X.copy()
    nan_X.data[0] = np.nan
    return X, y, [
        ({"X": np.zeros(5)}, "X must be"),
        ({"X": sp.csr_matrix((0, 6))}, "empty"),
        ({"X": nan_X}, "non-finite"),
        ({"y": y[:-1]}, "one per row"),
        ({"y": y.astype(str)}, "real numbers"),
        ({"y": np.where(y > 0, 1.0, 0.0)}, r"\{-1, \+1\}"),
        ({"y": np.full(20, np.nan)}, "non-finite"),
        ({"loss": "hinge"}, "loss must be"),
        ({"C": 0.0}, "C must be"),
        ({"C": np.inf}, "C must be"),
        ({"penalty": "l0"}, "penalty must be"),
        ({"penalty": "elasticnet"}, "needs l1_ratio"),
        ({"penalty": "elasticnet", "l1_ratio": 1.5}, "l1_ratio must be"),
        ({"step": -1.0}, "step must be"),
        ({"step": np.nan}, "step must be"),
        ({"max_iter": -1}, "max_iter must be"),
        ({"max_iter": 2.5}, "max_iter must be"),
        ({"tol": -1e-3}, "tol must be"),
        ({"callback": 3}, "callback must be callable"),
        ({"coef_init": np.zeros(5)}, "coef_init"),
        ({"intercept_init": 1.0}, "intercept_init"),
        ({"intercept_init": "0", "fit_intercept": True}, "intercept_init"),
        ({"penalty": "elasticnet", "l1_ratio": "0.5"}, "l1_ratio must be"),
    ]


@pytest.mark.parametrize("case", range(len(bad_inputs()[2])))
def test_bad_input_raises(case):
    X, y, cases = bad_inputs()
    over, match = cases[case]
    kwargs = {"X": X, "y": y, **over}
    with pytest.raises(ValueError, match=match):
        proximal_gradient(kwargs.pop("X"), kwargs.pop("y"), **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "hinge"}, "loss must be"),
    ({"C": -1.0}, "C must be"),
    ({"n_iter": 0}, "n_iter must be"),
    ({"seed": -1}, "seed must be"),
    ({"tol": 0.0}, "tol must be"),
    ({"X": [[1.0, np.inf]]}, "non-finite"),
    ({"X": "abc"}, "X must be"),
])
def test_bad_input_of_lipschitz(kwargs, match):
    kwargs = {"X": random_csr(10, 4, 0.5, 12), **kwargs}
    with pytest.raises(ValueError, match=match):
        lipschitz(kwargs.pop("X"), **kwargs)
