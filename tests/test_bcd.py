"""Async-BCD in shared memory (dpsgd._kernels.bcd) against references.

The references: serial randomised proximal BCD in NumPy, replaying the block sequence the
kernel records (one thread must equal it to 1e-12, with and without the intercept block, with
full steps and with the delay-adaptive policies' one-thread steps alpha * h / L_B); the block
Lipschitz constants against dense spectral norms; scikit-learn's liblinear on a9a with L1,
whose optimum one and two threads must reach on its first 4,000 rows (objective within 1e-6
relative, same support);
and the window rule of the delay-adaptive steps, audited on every recorded update of 2- and
8-thread runs (8 oversubscribe the 2 cores of CI). The audits assume no scheduling: on a
loaded machine every delay may be 0, and they hold then too.
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


def serial_bcd(X, y, w, b, bounds, steps, sequence, loss, C, penalty, lam, l1_ratio, lo, hi,
               scale=1.0):
    """Randomised proximal BCD, one block after the other, in NumPy: the paper's Async-BCD
    with every delay 0. Block len(bounds) - 1 is the intercept (a plain gradient step); every
    step is ``steps[k] * scale``."""
    X = sp.csc_matrix(X)
    w = np.array(w, dtype=np.float64)
    m = X @ w + b
    for k in sequence:
        step = steps[k] * scale
        if k == len(bounds) - 1:
            new_b = b - step * (C * dloss(loss, y, m).sum())
            m += new_b - b
            b = new_b
            continue
        c0, c1 = bounds[k], bounds[k + 1]
        XB = X[:, c0:c1]
        g = C * (XB.T @ dloss(loss, y, m))
        new = prox_reference(w[c0:c1] - step * g, step, penalty, lam, l1_ratio, lo, hi)
        m += XB @ (new - w[c0:c1])
        w[c0:c1] = new
    return w, b, m


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
    w, b_out, m = bcd.async_bcd(*csc(X), y, w0, b, **args, delays=delays, blocks=blocks)
    assert np.all(delays == 0)  # one thread: no update lands between a read and its write
    assert set(blocks) == set(range(n_blocks))
    assert b_out == b  # held fixed without fit_intercept
    ref_w, _, ref_m = serial_bcd(X, y, w0, b, bcd.block_bounds(d, n_blocks), steps, blocks, loss, C,
                                 penalty, lam, l1_ratio, lo, hi)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m, ref_m, rtol=0, atol=1e-12)
    assert np.abs(m - (X @ w + b)).max() < 1e-12  # the shared margins stayed X w + b
    # same seed, same run (bit for bit), also when the margins are handed in; another seed,
    # another block sequence
    w2, _, m2 = bcd.async_bcd(*csc(X), y, w0, b, **args, margins=X @ w0 + b)
    assert np.array_equal(w, w2) and np.array_equal(m, m2)
    blocks4 = np.empty(n_updates, dtype=np.int64)
    bcd.async_bcd(*csc(X), y, w0, b, **{**args, "seed": 4}, blocks=blocks4)
    assert not np.array_equal(blocks, blocks4)


def test_outputs_shorter_than_the_run_and_more_threads_than_blocks():
    X, y = problem(5)
    delays, blocks = np.full(7, -1, dtype=np.int64), np.full(7, -1, dtype=np.int64)
    w, _, m = bcd.async_bcd(*csc(X), y, np.zeros(X.shape[1]), n_blocks=2, steps=0.05, n_updates=300,
                            n_threads=4, delays=delays, blocks=blocks, C=0.3)
    assert np.all(delays >= 0) and np.all((blocks >= 0) & (blocks < 2))
    assert np.abs(m - X @ w).max() < 1e-12


# ---------------------------------------------------------------- the intercept block

@pytest.mark.parametrize("loss", ["log_loss", "squared_error"])
@pytest.mark.parametrize("policy", ["none", "budget"])
def test_one_thread_with_the_intercept_equals_serial_bcd(loss, policy):
    X, y = problem(11, loss=loss)
    d, n_blocks, n_updates, C, h, alpha = X.shape[1], 4, 600, 0.8, 0.99, 0.7
    L = bcd.block_lipschitz(*csc(X), X.shape[0], n_blocks, loss=loss, C=C, fit_intercept=True)
    assert L.shape == (n_blocks + 1,)
    assert L[-1] == C * X.shape[0] * {"log_loss": 0.25, "squared_error": 1.0}[loss]
    steps = h / L
    blocks = np.full(n_updates, -1, dtype=np.int64)
    w, b, m = bcd.async_bcd(*csc(X), y, np.zeros(d), 0.1, n_blocks=n_blocks, steps=steps,
                            n_updates=n_updates, loss=loss, C=C, fit_intercept=True, policy=policy,
                            alpha=alpha, seed=5, blocks=blocks)
    assert set(blocks) == set(range(n_blocks + 1))  # the intercept is block n_blocks
    ref_w, ref_b, ref_m = serial_bcd(X, y, np.zeros(d), 0.1, bcd.block_bounds(d, n_blocks), steps,
                                     blocks, loss, C, "l1", 1.0, None, -INF, INF,
                                     scale=1.0 if policy == "none" else alpha)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-12)
    assert abs(b - ref_b) < 1e-12 and b != 0.1
    np.testing.assert_allclose(m, ref_m, rtol=0, atol=1e-12)
    assert np.abs(m - (X @ w + b)).max() < 1e-12


def test_resuming_from_the_returned_margins_continues_the_run():
    """A driver calls the kernel an epoch at a time, handing back the margins and b."""
    X, y = problem(12)
    d, n_blocks = X.shape[1], 5
    steps = 0.99 / bcd.block_lipschitz(*csc(X), X.shape[0], n_blocks, fit_intercept=True)
    w, b, m = np.zeros(d), 0.0, None
    for epoch in range(20):
        w, b, m = bcd.async_bcd(*csc(X), y, w, b, n_blocks=n_blocks, steps=steps, n_updates=6,
                                fit_intercept=True, margins=m, policy="budget", seed=epoch,
                                n_threads=2, C=0.5)
    assert b != 0.0 and np.abs(m - (X @ w + b)).max() < 1e-12


# ---------------------------------------------------------------- delay-adaptive steps

ONE = 2.0 ** 52  # the kernel's scales are whole multiples of 2^-52


@pytest.mark.parametrize("policy, alpha, tau_max, expected", [
    ("budget", 0.9, None, 0.9),
    ("budget", 0.3, None, 0.3),
    ("fixed_or_skip", 0.6, None, 0.6),
    ("fixed", 0.9, 4, 0.2),
])
def test_one_thread_under_a_policy_is_serial_bcd_at_scaled_steps(policy, alpha, tau_max, expected):
    """One thread: every delay and tau_hat is 0, so budget and fixed_or_skip give alpha on
    every update (W_t = 0), fixed 1 / (tau_max + 1)."""
    X, y = problem(13)
    d, n_blocks, n_updates = X.shape[1], 5, 500
    steps = 0.99 / bcd.block_lipschitz(*csc(X), X.shape[0], n_blocks, C=0.7)
    out = {k: np.full(n_updates, -1, dtype=np.int64) for k in ("delays", "blocks", "taus")}
    scales = np.full(n_updates, -1.0)
    w0 = np.random.default_rng(3).normal(0.0, 0.1, d)
    w, _, m = bcd.async_bcd(*csc(X), y, w0, 0.2, n_blocks=n_blocks, steps=steps, n_updates=n_updates,
                            C=0.7, policy=policy, alpha=alpha, tau_max=tau_max, seed=9, scales=scales,
                            **out)
    assert np.all(out["delays"] == 0) and np.all(out["taus"] == 0)
    np.testing.assert_allclose(scales, expected, rtol=1e-15)
    assert np.all(scales <= expected)  # rounded down to a multiple of 2^-52
    ref_w, _, ref_m = serial_bcd(X, y, w0, 0.2, bcd.block_bounds(d, n_blocks), steps, out["blocks"],
                                 "log_loss", 0.7, "l1", 1.0, None, -INF, INF, scale=expected)
    np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m, ref_m, rtol=0, atol=1e-12)
    # policy "none" writes scale 1 and leaves taus alone
    taus = np.full(10, -7, dtype=np.int64)
    bcd.async_bcd(*csc(X), y, w0, n_blocks=n_blocks, steps=steps, n_updates=10, taus=taus,
                  scales=scales)
    assert np.all(taus == -7) and np.all(scales[:10] == 1.0)


def audit_window_rule(delays, taus, scales):
    """The paper's rule on every update t: sum_{s = t - delays[t]}^{t} scales[s] <= 1, and the
    oldest read in flight bounds the delay and grows by at most one per update."""
    n = len(delays)
    t = np.arange(n)
    assert np.all((delays >= 0) & (delays <= t))
    assert np.all(taus >= delays)
    assert np.all(np.diff(taus) <= 1)
    assert np.all((scales >= 0.0) & (scales <= 1.0))
    for k in range(n):  # as the brief states it, in floating point
        assert scales[k - delays[k]:k + 1].sum() <= 1.0 + 1e-12, k
    # and exactly: whole multiples of 2^-52 summed in integers (uint64 wraps; differences are exact)
    units = scales * ONE
    assert np.array_equal(units, np.floor(units))
    # (a leading [0] would make the concatenation float64, whose rounding above 2^53 broke it)
    S = np.concatenate((np.zeros(1, np.uint64), np.cumsum(units.astype(np.uint64), dtype=np.uint64)))
    assert S.dtype == np.uint64
    window = S[t + 1] - S[t - delays]
    assert np.all(window <= np.uint64(ONE))


@pytest.mark.parametrize("n_threads", [2, 8])
@pytest.mark.parametrize("policy, alpha", [("budget", 0.9), ("budget", 0.5), ("fixed_or_skip", 0.5),
                                           ("fixed_or_skip", 0.3)])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_window_rule_holds_on_every_update_with_threads(n_threads, policy, alpha, fit_intercept):
    X, y = problem(14, n=300, d=48, density=0.2)
    n_blocks, n_updates = 16, 3000
    steps = 0.99 / bcd.block_lipschitz(*csc(X), X.shape[0], n_blocks, C=0.5, fit_intercept=fit_intercept)
    delays, taus, blocks = (np.full(n_updates, -1, dtype=np.int64) for _ in range(3))
    scales = np.full(n_updates, -1.0)
    w, b, m = bcd.async_bcd(*csc(X), y, np.zeros(X.shape[1]), n_blocks=n_blocks, steps=steps,
                            n_updates=n_updates, C=0.5, fit_intercept=fit_intercept, policy=policy,
                            alpha=alpha, n_threads=n_threads, seed=n_threads, delays=delays,
                            taus=taus, blocks=blocks, scales=scales)
    assert np.all(blocks >= 0) and np.all(blocks < n_blocks + fit_intercept)
    audit_window_rule(delays, taus, scales)
    assert np.abs(m - (X @ w + b)).max() < 1e-12  # skipped or not, the margins stayed X w + b
    assert fit_intercept or b == 0.0


def test_the_audit_catches_a_broken_window():
    delays = np.array([0, 1, 2, 0])
    taus = np.array([0, 1, 2, 0])
    with pytest.raises(AssertionError):
        audit_window_rule(delays, taus, np.array([0.5, 0.5, 0.5, 1.0]))
    audit_window_rule(delays, taus, np.array([0.5, 0.25, 0.125, 1.0]))


def test_fixed_policy_takes_one_step_whatever_the_measured_delay():
    X, y = problem(15, n=300, d=48, density=0.2)
    n_updates, tau_max = 2000, 3
    steps = 0.99 / bcd.block_lipschitz(*csc(X), X.shape[0], 16)
    delays, taus = np.empty(n_updates, dtype=np.int64), np.empty(n_updates, dtype=np.int64)
    scales = np.empty(n_updates)
    bcd.async_bcd(*csc(X), y, np.zeros(48), n_blocks=16, steps=steps, n_updates=n_updates,
                  policy="fixed", tau_max=tau_max, n_threads=4, delays=delays, taus=taus, scales=scales)
    assert np.all(scales == np.floor(ONE / (tau_max + 1)) / ONE)
    assert np.all(taus >= delays) and np.all(np.diff(taus) <= 1)


def test_outputs_over_inputs_are_refused():
    """The kernel writes its records while it reads X: an output array sharing memory with an
    input (or another output) is refused before it runs."""
    X, y = problem(16)
    data, indices, indptr = csc(X)
    indices = indices.astype(np.int64)
    indptr = indptr.astype(np.int64)
    delays = np.empty(50, dtype=np.int64)
    for kwargs in ({"delays": indices}, {"blocks": indptr}, {"delays": delays, "taus": delays}):
        with pytest.raises(ValueError, match="overlaps"):
            bcd.async_bcd(data, indices, indptr, y, np.zeros(X.shape[1]), n_blocks=4, steps=0.1, n_updates=50,
                          policy="budget", **kwargs)


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
    monkeypatch.setattr(bcd, "BATCHED_WIDTH", 0)  # each block's Gram matrix on its own
    L = bcd.block_lipschitz(*csc(X), X.shape[0], 4, loss="log_loss", C=0.5)
    np.testing.assert_allclose(L, 0.5 * 0.25 * spectral, rtol=1e-12)
    monkeypatch.setattr(bcd, "MAX_EXACT_WIDTH", 2)  # wider blocks: the Frobenius bound
    L = bcd.block_lipschitz(*csc(X), X.shape[0], 4, loss="squared_error", C=0.5)
    np.testing.assert_allclose(L, 0.5 * frobenius, rtol=1e-12)
    assert np.all(frobenius >= spectral * (1 - 1e-12))


# ---------------------------------------------------------------- a9a: scikit-learn's optimum

# the first 4,000 rows (the driver's tests use them too): each run well under a second
N_ROWS_A9A = 4000
C_A9A = 0.03  # liblinear keeps 15 of a9a's 123 weights (12%) at this C, without an intercept
N_BLOCKS_A9A = 41  # 3 columns a block
N_UPDATES_A9A = 12_000  # ~290 passes over the columns


@pytest.fixture(scope="module")
def a9a_optimum(a9a):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X, y = sp.csr_matrix(a9a[0][:N_ROWS_A9A]), np.asarray(a9a[1][:N_ROWS_A9A], dtype=np.float64)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = LogisticRegression(C=C_A9A, l1_ratio=1.0, solver="liblinear", fit_intercept=False,
                                   tol=1e-10, max_iter=100_000).fit(X, y)
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
    w, _, m = bcd.async_bcd(data, indices, indptr, y, np.zeros(X.shape[1]), n_blocks=N_BLOCKS_A9A,
                            steps=1.0 / L, n_updates=N_UPDATES_A9A, C=C_A9A, n_threads=n_threads,
                            seed=7, delays=delays)
    seconds = time.perf_counter() - start
    P = objective(X, y, w)
    assert abs(P - P_sk) <= 1e-6 * P_sk, (P, P_sk, seconds)
    # the same support, except where the optimum leaves it undecided (as in test_async_bcd, whose
    # 2-thread run on these rows differed from liblinear on one such coordinate in CI, the
    # objective agreeing; liblinear's own run is not seeded either): a zero weight whose
    # gradient is within 1e-4 of the L1 threshold, or a non-zero below 1e-6
    _, grad, _, _ = prox.gradient(X.data, X.indices, X.indptr, y, w_sk, 0.0, C=C_A9A)
    differ = np.flatnonzero((w != 0) != (w_sk != 0))
    undecided = ((w_sk == 0) & (np.abs(grad) > 1 - 1e-4)) | ((w_sk != 0) & (np.abs(w_sk) < 1e-6))
    assert np.all(undecided[differ]) and differ.size <= 1, \
        (differ, w_sk[differ], w[differ], np.abs(grad[differ]))
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
        ({}, {"taus": np.zeros(5)}, "taus"),
        ({}, {"scales": np.zeros(5, dtype=np.int64)}, "scales"),
        ({}, {"fit_intercept": 1}, "fit_intercept"),
        ({}, {"fit_intercept": True, "steps": [0.1, 0.1]}, "the intercept"),
        ({}, {"margins": np.zeros(19)}, "margins"),
        ({}, {"margins": np.full(20, np.nan)}, "margins"),
        ({}, {"policy": "adaptive"}, "policy"),
        ({}, {"policy": "budget", "alpha": 1.0}, "alpha"),
        ({}, {"policy": "budget", "alpha": "0.5"}, "alpha"),
        ({}, {"policy": "fixed_or_skip", "alpha": 0.0}, "alpha"),
        ({}, {"policy": "fixed"}, "tau_max"),
        ({}, {"policy": "fixed", "tau_max": -1}, "tau_max"),
        ({}, {"policy": "fixed", "tau_max": 2.0}, "tau_max"),
        ({}, {"policy": "budget", "tau_max": 3}, "tau_max"),
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
    with pytest.raises(ValueError, match="fit_intercept"):
        bcd.block_lipschitz(*csc(X), 20, 2, fit_intercept="yes")
