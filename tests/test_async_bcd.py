"""The Async-BCD driver (dpsgd.tasks.async_bcd) against scikit-learn, and its checks.

The problems: the first 4,000 rows of a9a with L1, so that each run stays near a second on
the 2 cores of CI. Without the intercept at C = 0.03 liblinear keeps 15 of the 123 weights
(12%): the zero weights' subgradient margins (1 - |grad_j f|) are at least 0.17 and the smallest
non-zero weight is 0.012, so the support is well defined, and one and two threads must reach
liblinear's objective within 1e-6 relative with its support. With the intercept (C = 0.05,
saga's 16 non-zero weights, 13%; liblinear penalises the intercept, so the reference is saga)
the optimum is not unique: a9a's one-hot groups each sum to the intercept's column of ones, and
at least one weight (column 74) has |grad_j f| = 1 - 2e-10 at the optimum, a flat direction
along which saga, FISTA and Async-BCD stop at different values (0 to 0.04) with the same
objective to 1e-11. There the support is compared where it is defined: the reference's zeros
with a subgradient margin above 1e-3 and its weights above 1e-3 in absolute value.
"""

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_liblinears_support, run_mpi

from dpsgd._kernels import prox
from dpsgd.tasks import async_bcd as driver
from dpsgd.tasks.async_bcd import async_bcd_fit
from dpsgd.tasks.async_bcd_ranks import async_bcd
from dpsgd.tasks.composite import CompositeResult

N_ROWS = 4000
C_NO_INTERCEPT, C_INTERCEPT = 0.03, 0.05


@pytest.fixture(scope="module")
def subset(a9a):
    X, y = sp.csr_matrix(a9a[0][:N_ROWS]), np.asarray(a9a[1][:N_ROWS], dtype=np.float64)
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    return X, y


def objective(X, y, w, b, C):
    return prox.objective(X.data, X.indices, X.indptr, y, w, b, C=C, penalty="l1")


@pytest.fixture(scope="module")
def references(subset):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    X, y = subset
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for fit_intercept, C, solver in ((False, C_NO_INTERCEPT, "liblinear"), (True, C_INTERCEPT, "saga")):
            m = LogisticRegression(C=C, l1_ratio=1.0, solver=solver, fit_intercept=fit_intercept,
                                   tol=1e-10 if solver == "liblinear" else 1e-8, max_iter=100_000).fit(X, y)
            w, b = m.coef_.ravel(), float(m.intercept_[0]) if fit_intercept else 0.0
            out[fit_intercept] = (w, b, objective(X, y, w, b, C))
    return out


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a9a_l1_reaches_the_sklearn_optimum(subset, references, fit_intercept, n_threads):
    X, y = subset
    w_sk, b_sk, P_sk = references[fit_intercept]
    assert 0.1 < np.mean(w_sk != 0) < 0.3
    C = C_INTERCEPT if fit_intercept else C_NO_INTERCEPT
    seen = []
    result = async_bcd_fit(X, y, C=C, fit_intercept=fit_intercept, n_threads=n_threads, tol=1e-7,
                           max_iter=5000, callback=seen.append)
    assert isinstance(result, CompositeResult) and result.converged
    P = objective(X, y, result.coef, result.intercept, C)
    assert abs(P - P_sk) <= 1e-6 * P_sk, (P, P_sk, result.epochs)
    if fit_intercept:
        _, grad, _, _ = prox.gradient(X.data, X.indices, X.indptr, y, w_sk, b_sk, C=C)
        zero = (w_sk == 0) & (np.abs(grad) < 1 - 1e-3)
        assert np.all(result.coef[zero] == 0) and np.all(result.coef[np.abs(w_sk) > 1e-3] != 0)
        assert zero.sum() + (np.abs(w_sk) > 1e-3).sum() >= 120  # all but a few columns
    else:
        # the same support, except where the optimum leaves it undecided: a zero weight whose
        # gradient is within 1e-4 of the L1 threshold, or a non-zero below 1e-6 (one CI run
        # with 2 threads differed from liblinear on one coordinate, the objective agreeing)
        _, grad, _, _ = prox.gradient(X.data, X.indices, X.indptr, y, w_sk, 0.0, C=C)
        differ = np.flatnonzero((result.coef != 0) != (w_sk != 0))
        undecided = ((w_sk == 0) & (np.abs(grad) > 1 - 1e-4)) | ((w_sk != 0) & (np.abs(w_sk) < 1e-6))
        assert np.all(undecided[differ]), (differ, w_sk[differ], result.coef[differ], np.abs(grad[differ]))
        assert differ.size <= 1
        assert result.intercept == 0.0
    # the record: one history row per epoch, the last at the result
    per_epoch = X.shape[1] // 3 + fit_intercept
    assert result.n_iter == len(result.history) * per_epoch and result.epochs == len(result.history)
    iteration, seconds, P_last, tau, step = result.history[-1]
    assert iteration == result.n_iter and P_last == pytest.approx(P, rel=1e-12)
    assert [row[0] for row in result.history] == [info["iteration"] for info in seen] + [iteration]
    assert len(result.delays) == len(result.taus) == len(result.steps) == result.n_iter
    assert tau == result.taus[-1] and step == result.steps[-1]
    assert np.all(result.taus >= result.delays) and result.gamma_prime == 1.0
    if n_threads == 1:
        assert np.all(result.taus == 0) and np.allclose(result.steps, 0.9)


def test_the_window_rule_holds_on_the_recorded_updates(subset):
    X, y = subset
    result = async_bcd_fit(X, y, C=C_INTERCEPT, n_threads=8, step_policy="fixed_or_skip", alpha=0.5,
                           max_iter=20, tol=0.0)
    assert not result.converged and result.epochs == 20
    for t, d in enumerate(result.delays):
        assert result.steps[t - d:t + 1].sum() <= result.gamma_prime * (1 + 1e-12)
    assert set(np.unique(result.steps)) <= {0.0, 0.5}


def test_one_thread_is_reproducible_and_policies_and_stops(subset):
    X, y = subset
    kw = dict(C=C_NO_INTERCEPT, n_threads=1, max_iter=5, tol=0.0, random_state=3)
    a, b = async_bcd_fit(X, y, **kw), async_bcd_fit(X, y, **kw)
    assert np.array_equal(a.coef, b.coef) and a.intercept == b.intercept
    assert not np.array_equal(a.coef, async_bcd_fit(X, y, **{**kw, "random_state": 4}).coef)
    none = async_bcd_fit(X, y, **kw, step_policy="none")
    assert np.all(none.steps == 1.0) and np.all(none.taus == -1)
    fixed = async_bcd_fit(X, y, **kw, step_policy="fixed", tau_max=3)
    assert np.all(fixed.steps == 0.25)
    # the callback stops the run; so does the time budget
    stopped = async_bcd_fit(X, y, **{**kw, "max_iter": 50}, callback=lambda info: info["epoch"] == 2)
    assert stopped.epochs == 2
    timed = async_bcd_fit(X, y, **{**kw, "max_iter": 50}, max_seconds=1e-9)
    assert timed.epochs == 1
    # a dense X gives the same run
    dense = async_bcd_fit(X.toarray(), y, **kw)
    assert np.allclose(dense.coef, a.coef, atol=1e-12)


def test_history_and_records_are_capped(subset, monkeypatch):
    X, y = subset
    monkeypatch.setattr(driver, "MAX_RECORDED", 100)
    result = async_bcd_fit(X, y, C=C_NO_INTERCEPT, n_threads=1, max_iter=10, tol=0.0, n_blocks=41,
                           fit_intercept=False)
    assert result.n_iter == 410 and len(result.history) == 10
    assert len(result.delays) == len(result.taus) == len(result.steps) == 100


# ---------------------------------------------------------------- bad input

def bad_cases():
    return [
        (dict(X=np.zeros((3, 2, 1))), "X must"),
        (dict(X=np.full((20, 6), np.nan)), "non-finite"),
        (dict(y=np.ones(19)), "y must"),
        (dict(y=np.full(20, 2.0)), "y must be -1 or \\+1"),
        (dict(y=np.full(20, np.nan)), "non-finite"),
        (dict(loss="hinge"), "loss"),
        (dict(C=0.0), "C must"),
        (dict(C=True), "C must"),
        (dict(penalty="l0"), "penalty"),
        (dict(penalty="elasticnet"), "l1_ratio"),
        (dict(l1_ratio=1.5), "l1_ratio"),
        (dict(fit_intercept="yes"), "fit_intercept"),
        (dict(n_blocks=0), "n_blocks"),
        (dict(n_blocks=7), "n_blocks"),
        (dict(n_blocks=2.0), "n_blocks"),
        (dict(step_policy="adaptive"), "step_policy"),
        (dict(step_policy="budget", alpha=1.0), "alpha"),
        (dict(step_policy="fixed_or_skip", alpha=0.0), "alpha"),
        (dict(step_policy="fixed"), "tau_max"),
        (dict(step_policy="fixed", tau_max=-1), "tau_max"),
        (dict(step_policy="fixed", tau_max=1.5), "tau_max"),
        (dict(tau_max=3), "tau_max"),
        (dict(h=0.0), "h must"),
        (dict(h=2.0), "h must"),
        (dict(max_iter=0), "max_iter"),
        (dict(tol=-1.0), "tol"),
        (dict(tol=np.inf), "tol"),
        (dict(n_threads=0), "n_threads"),
        (dict(n_threads=1.5), "n_threads"),
        (dict(random_state=-1), "random_state"),
        (dict(callback=3), "callback"),
        (dict(coef_init=np.zeros(5)), "coef_init"),
        (dict(coef_init=np.full(6, np.inf)), "coef_init"),
        (dict(intercept_init=np.nan), "intercept_init"),
        (dict(intercept_init=1.0, fit_intercept=False), "intercept_init"),
        (dict(max_seconds=0.0), "max_seconds"),
    ]


@pytest.mark.parametrize("fit", [async_bcd_fit, async_bcd], ids=["one process", "engine"])
@pytest.mark.parametrize("case", range(len(bad_cases())))
def test_bad_input_raises_before_the_kernel(case, fit, monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("the kernel ran")

    monkeypatch.setattr(driver.bcd, "async_bcd", no_kernel)
    rng = np.random.default_rng(0)
    args = dict(X=rng.normal(size=(20, 6)), y=rng.choice([-1.0, 1.0], 20))
    over, match = bad_cases()[case]
    args.update(over)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        fit(X, y, **args)


# ---------------------------------------------------------------- across ranks (async_bcd_ranks)

@pytest.mark.parametrize("step_policy", ["none", "budget"])
def test_one_process_through_the_engine_is_async_bcd_fit(subset, step_policy):
    """The engine's problem lent the parameters in place takes the driver's steps: the same
    iterates, records and stopping point, bit for bit (the objective from the margins)."""
    X, y = subset
    kw = dict(C=C_INTERCEPT, step_policy=step_policy, n_threads=1, tol=1e-4, max_iter=300, random_state=5)
    alone, engine = async_bcd_fit(X, y, **kw), async_bcd(X, y, **kw)
    assert alone.converged and engine.converged and engine.n_iter == alone.n_iter and engine.epochs == alone.epochs
    assert np.array_equal(engine.coef, alone.coef) and engine.intercept == alone.intercept
    for name in ("delays", "taus", "steps"):
        assert np.array_equal(getattr(engine, name), getattr(alone, name)), name
    assert len(engine.history) == len(alone.history)
    for mine, theirs in zip(engine.history, alone.history):
        assert mine[0] == theirs[0] and mine[3:] == theirs[3:]
        assert mine[2] == pytest.approx(theirs[2], rel=1e-12)


def test_the_callback_stops_the_engines_run(subset):
    X, y = subset
    seen = []
    result = async_bcd(X, y, C=C_INTERCEPT, n_threads=1, tol=0.0, max_iter=50,
                       callback=lambda info: seen.append(info["epoch"]) or info["epoch"] >= 3)
    assert seen == [1.0, 2.0, 3.0] and result.epochs == 3.0 and not result.converged


class _TwoRanks:
    """What Topology reads of a communicator of 2 ranks before any collective."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2


@pytest.mark.parametrize("columns, n_blocks, match", [
    (6, 1, "needs a block of features for each rank, got n_blocks = 1"),
    (1, None, "got n_blocks = 1 \\(X has 1 columns\\)"),
])
def test_a_rank_without_a_block_is_refused(columns, n_blocks, match):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        async_bcd(rng.normal(size=(20, columns)), rng.choice([-1.0, 1.0], 20), n_blocks=n_blocks, comm=_TwoRanks())


# Real ranks, each with its own rows of a9a's first 2,000 (tests/mpi/async_bcd_ranks.py), the
# budget policy on the kernel's threads and between the ranks: the solver and the estimator
# reach liblinear's optimum with its support, every rank with the same model, the margins
# in the final window X w + b.
# Their support is liblinear's but where the optimum leaves it undecided
# (conftest.assert_liblinears_support): in 16 runs over 2 and 3 ranks, column 35 was 0 in 7 and
# 21 in 1, their |grad_j f| within 1e-6 of the L1 threshold.
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_reach_liblinears_optimum_with_its_support(ranks, a9a_2000, a9a_2000_optimum):
    # epochs to tol (2026-12-02, 2 vCPUs): 2 ranks 886-1,159 in 4 runs, 3 ranks 2,506-6,940 in 12
    # (three ranks on two cores: a rank descheduled for a while makes the delays long); one CI
    # run of 3 ranks used up a budget of 8,000. The budget bounds the run, not its speed.
    out = run_mpi("async_bcd_ranks.py", ranks, "budget", 30000, 1e-7, 0, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    (X, y), P_star = a9a_2000, a9a_2000_optimum[0]
    assert len(r["ranks"]) == out.ranks
    first = r["ranks"][0]
    for found in r["ranks"]:
        assert found["coef"] == first["coef"] and found["history"] == first["history"]
        assert found["converged"] and found["drift"] <= 1e-9
        for P, coef in ((found["objective"], found["coef"]), (found["estimator"], found["estimator_coef"])):
            assert abs(P - P_star) <= 1e-6 * P_star, (P, P_star, found["n_iter"])
            assert_liblinears_support(X, y, coef, a9a_2000_optimum)
    iterations = [row[0] for row in first["history"]]
    assert iterations == sorted(set(iterations)) and iterations[-1] == first["n_iter"]
