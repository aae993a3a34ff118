"""Async-BCD in shared memory (dpsgd._kernels.bcd) against references.

The references: serial randomised proximal BCD in NumPy, replaying the block sequence the
kernel records (one thread must equal it to 1e-12); the block Lipschitz constants against
dense spectral norms; and scikit-learn's liblinear on a9a with L1, whose optimum one and two
threads must reach (objective within 1e-6 relative, same support).
"""

import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_csr

from dpsgd._kernels import bcd, prox

INF = np.inf


def csc(X):
    X = sp.csc_matrix(X)
    return X.data, X.indices, X.indptr


def problem(seed, n=150, d=23, density=0.3, loss="log_loss", index_dtype=np.int32):
    X = random_csr(n, d, density, seed, index_dtype=index_dtype).tocsc()
    X.indices, X.indptr = X.indices.astype(index_dtype), X.indptr.astype(index_dtype)
    rng = np.random.default_rng(seed)
    y = rng.choice([-1.0, 1.0], n) if loss == "log_loss" else rng.normal(size=n)
    return X, y


def dloss(loss, y, m):
    if loss == "squared_error":
        return m - y
    return -y / (1.0 + np.exp(y * m))


def prox_reference(x, step, penalty, lam, l1_ratio, lo, hi):
    a, c = {"l1": (1.0, 0.0), "l2": (0.0, 1.0), None: (0.0, 0.0)}.get(
        penalty, (l1_ratio, 1.0 - (l1_ratio or 0.0)))
    p = np.sign(x) * np.maximum(np.abs(x) - step * lam * a, 0.0) / (1.0 + step * lam * c)
    return np.clip(p, lo, hi)


def serial_bcd(X, y, w, b, bounds, steps, sequence, loss, C, penalty, lam, l1_ratio, lo, hi):
    """Randomised proximal BCD, one block after the other, in NumPy: the paper's Async-BCD
    with every delay 0."""
    X = sp.csc_matrix(X)
    w = np.array(w, dtype=np.float64)
    m = X @ w + b
    for k in sequence:
        c0, c1 = bounds[k], bounds[k + 1]
        XB = X[:, c0:c1]
        g = C * (XB.T @ dloss(loss, y, m))
        new = prox_reference(w[c0:c1] - steps[k] * g, steps[k], penalty, lam, l1_ratio, lo, hi)
        m += XB @ (new - w[c0:c1])
        w[c0:c1] = new
    return w, m


# ---------------------------------------------------------------- one thread is serial BCD

@pytest.mark.parametrize("loss, penalty, l1_ratio, lo, hi, index_dtype", [
    ("log_loss", "l1", None, -INF, INF, np.int32),
    ("log_loss", "elasticnet", 0.4, -INF, INF, np.int64),
    ("squared_error", "l1", None, -INF, INF, np.int64),
    ("squared_error", "l2", None, 0.0, INF, np.int32),
    ("log_loss", None, None, -0.3, 0.5, np.int32),
])
def test_one_thread_equals_serial_bcd(loss, penalty, l1_ratio, lo, hi, index_dtype):
    X, y = problem(1, loss=loss, index_dtype=index_dtype)
    d, n_blocks, n_updates, C, lam, b = X.shape[1], 5, 800, 0.7, 0.6, 0.25
    L = bcd.block_lipschitz(*csc(X), X.shape[0], n_blocks, loss=loss, C=C)
    steps = 0.9 / L
    w0 = np.clip(np.random.default_rng(2).normal(0.0, 0.1, d), lo, hi)
    delays = np.full(n_updates, -1, dtype=np.int64)
    blocks = np.full(n_updates, -1, dtype=np.int64)
    args = dict(n_blocks=n_blocks, steps=steps, n_updates=n_updates, loss=loss, C=C,
                penalty=penalty, lam=lam, l1_ratio=l1_ratio, lo=lo, hi=hi, seed=3)
    w, m = bcd.async_bcd(*csc(X), y, w0, b, **args, delays=delays, blocks=blocks)
    assert np.all(delays == 0)  # one thread: no update lands between a read and its write
    assert set(blocks) == set(range(n_blocks))
    ref_w, ref_m = serial_bcd(X, y, w0, b, bcd.block_bounds(d, n_blocks), steps, blocks, loss, C,
                              penalty, lam, l1_ratio, lo, hi)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m, ref_m, rtol=0, atol=1e-12)
    assert np.abs(m - (X @ w + b)).max() < 1e-12  # the shared margins stayed X w + b
    # same seed, same run (bit for bit); another seed, another block sequence
    w2, _ = bcd.async_bcd(*csc(X), y, w0, b, **args)
    assert np.array_equal(w, w2)
    blocks4 = np.empty(n_updates, dtype=np.int64)
    bcd.async_bcd(*csc(X), y, w0, b, **{**args, "seed": 4}, blocks=blocks4)
    assert not np.array_equal(blocks, blocks4)


def test_outputs_shorter_than_the_run_and_more_threads_than_blocks():
    X, y = problem(5)
    delays, blocks = np.full(7, -1, dtype=np.int64), np.full(7, -1, dtype=np.int64)
    w, m = bcd.async_bcd(*csc(X), y, np.zeros(X.shape[1]), n_blocks=2, steps=0.05, n_updates=300,
                         n_threads=4, delays=delays, blocks=blocks, C=0.3)
    assert np.all(delays >= 0) and np.all((blocks >= 0) & (blocks < 2))
    assert np.abs(m - X @ w).max() < 1e-12


def test_block_bounds_and_lipschitz(monkeypatch):
    np.testing.assert_array_equal(bcd.block_bounds(10, 3), [0, 4, 7, 10])
    np.testing.assert_array_equal(bcd.block_bounds(4, 4), [0, 1, 2, 3, 4])
    X, _ = problem(6, d=12)
    bounds = bcd.block_bounds(12, 4)
    dense = X.toarray()
    spectral = np.array([np.linalg.norm(dense[:, a:z], 2) ** 2 for a, z in zip(bounds, bounds[1:])])
    frobenius = np.array([np.linalg.norm(dense[:, a:z]) ** 2 for a, z in zip(bounds, bounds[1:])])
    for loss, scale in (("log_loss", 0.25), ("squared_error", 1.0)):
        L = bcd.block_lipschitz(*csc(X), X.shape[0], 4, loss=loss, C=0.5)
        np.testing.assert_allclose(L, 0.5 * scale * spectral, rtol=1e-12)
    monkeypatch.setattr(bcd, "MAX_EXACT_WIDTH", 2)  # wider blocks: the Frobenius bound
    L = bcd.block_lipschitz(*csc(X), X.shape[0], 4, loss="squared_error", C=0.5)
    np.testing.assert_allclose(L, 0.5 * frobenius, rtol=1e-12)
    assert np.all(frobenius >= spectral * (1 - 1e-12))


# ---------------------------------------------------------------- a9a: scikit-learn's optimum

C_A9A = 0.005  # liblinear keeps 17 of a9a's 123 weights (14%) at this C, without an intercept
N_BLOCKS_A9A = 41  # 3 columns a block
N_UPDATES_A9A = 12_000  # ~290 passes over the columns: 8e-10 relative gap with one thread (measured)


@pytest.fixture(scope="module")
def a9a_optimum(a9a):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X, y = sp.csr_matrix(a9a[0]), a9a[1]
    Xs = X.copy()
    Xs.indices, Xs.indptr = Xs.indices.astype(np.int32), Xs.indptr.astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=C_A9A, l1_ratio=1.0, solver="liblinear", fit_intercept=False,
                                   tol=1e-10, max_iter=100_000).fit(Xs, y)
    w = model.coef_.ravel()
    return X, y, w, objective(X, y, w)


def objective(X, y, w):
    return prox.objective(X.data, X.indices, X.indptr, y, w, C=C_A9A, penalty="l1")


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a9a_l1_reaches_sklearn_optimum(a9a_optimum, n_threads):
    X, y, w_sk, P_sk = a9a_optimum
    assert 0.1 < np.mean(w_sk != 0) < 0.3
    data, indices, indptr = csc(X)
    L = bcd.block_lipschitz(data, indices, indptr, X.shape[0], N_BLOCKS_A9A, C=C_A9A)
    delays = np.empty(N_UPDATES_A9A, dtype=np.int64)
    start = time.perf_counter()
    w, m = bcd.async_bcd(data, indices, indptr, y, np.zeros(X.shape[1]), n_blocks=N_BLOCKS_A9A,
                         steps=1.0 / L, n_updates=N_UPDATES_A9A, C=C_A9A, n_threads=n_threads,
                         seed=7, delays=delays)
    seconds = time.perf_counter() - start
    P = objective(X, y, w)
    assert abs(P - P_sk) <= 1e-6 * P_sk, (P, P_sk, seconds)
    np.testing.assert_array_equal(w != 0, w_sk != 0)
    assert np.all(delays >= 0)
    if n_threads == 1:
        assert np.all(delays == 0)
    assert np.abs(m - X @ w).max() < 1e-9  # the margins the threads kept are still X w


# ---------------------------------------------------------------- bad input

def bad_inputs():
    X, y = problem(8, n=20, d=6)
    data, indices, indptr = csc(X)
    good = dict(data=data, indices=indices, indptr=indptr, y=y, w=np.zeros(6))
    kw = dict(n_blocks=2, steps=0.1, n_updates=10)
    nan_y = y.copy()
    nan_y[0] = np.nan
    bad_rows = indices.copy()
    bad_rows[0] = 20
    return good, kw, [
        ({"data": data.astype(np.float32)}, {}, "data"),
        ({"indices": indices.astype(np.int64)}, {}, "one dtype"),
        ({"indices": bad_rows}, {}, "CSC"),
        ({"indptr": indptr[:-1]}, {}, "columns"),
        ({"y": y[:, None]}, {}, "1-D"),
        ({"y": y[:0]}, {}, "empty"),
        ({"y": nan_y}, {}, "non-finite"),
        ({"y": np.abs(y) * 2}, {}, "labels"),
        ({"w": np.zeros(5)}, {}, "w has 5"),
        ({"w": np.full(6, np.inf)}, {}, "non-finite"),
        ({}, {"n_blocks": 0}, "n_blocks"),
        ({}, {"n_blocks": 7}, "n_blocks"),
        ({}, {"n_blocks": 2.0}, "n_blocks"),
        ({}, {"steps": 0.0}, "step"),
        ({}, {"steps": -1.0}, "step"),
        ({}, {"steps": np.nan}, "step"),
        ({}, {"steps": [0.1, 0.1, 0.1]}, "steps has 3"),
        ({}, {"steps": [0.1, -0.1]}, "step"),
        ({}, {"steps": "0.1"}, "steps"),
        ({}, {"n_updates": -1}, "n_updates"),
        ({}, {"n_threads": 0}, "n_threads"),
        ({}, {"seed": -1}, "seed"),
        ({}, {"C": 0.0}, "C"),
        ({}, {"loss": "hinge"}, "loss"),
        ({}, {"penalty": "l0"}, "penalty"),
        ({}, {"lo": 1.0, "hi": 0.0}, "box"),
        ({}, {"b": np.inf}, "b must be finite"),
        ({}, {"delays": np.zeros(5, dtype=np.int32)}, "delays"),
        ({}, {"blocks": np.zeros(5)}, "blocks"),
    ]


@pytest.mark.parametrize("case", range(len(bad_inputs()[2])))
def test_bad_input_raises_before_the_kernel(case):
    good, kw, cases = bad_inputs()
    over, kwover, match = cases[case]
    args = {**good, **over}
    kwargs = {**kw, **kwover}
    b = kwargs.pop("b", 0.0)
    with pytest.raises(ValueError, match=match):
        bcd.async_bcd(args["data"], args["indices"], args["indptr"], args["y"], args["w"], b, **kwargs)


def test_bad_input_of_the_helpers():
    X, _ = problem(9, n=20, d=6)
    with pytest.raises(ValueError, match="n_blocks"):
        bcd.block_bounds(6, 7)
    with pytest.raises(ValueError, match="n_rows"):
        bcd.block_lipschitz(*csc(X), -1, 2)
    with pytest.raises(ValueError, match="CSC"):
        bcd.block_lipschitz(*csc(X), 10, 2)  # row indices beyond 10 rows
    with pytest.raises(ValueError, match="C must"):
        bcd.block_lipschitz(*csc(X), 20, 2, C=-1.0)
