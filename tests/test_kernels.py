"""The compiled kernels against plain NumPy implementations of the same updates."""

import itertools

import numpy as np
import pytest

import dpsgd

from conftest import random_csr
from dpsgd._kernels import rng, sgd
from sgd_reference import loss_grad, sgd_epoch_reference

LOSS_IDS = {
    "hinge": sgd.Loss.HINGE,
    "log_loss": sgd.Loss.LOG_LOSS,
    "modified_huber": sgd.Loss.MODIFIED_HUBER,
    "squared_hinge": sgd.Loss.SQUARED_HINGE,
    "squared_error": sgd.Loss.SQUARED_ERROR,
    "huber": sgd.Loss.HUBER,
    "epsilon_insensitive": sgd.Loss.EPSILON_INSENSITIVE,
    "squared_epsilon_insensitive": sgd.Loss.SQUARED_EPSILON_INSENSITIVE,
}
REGRESSION = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")
SCHEDULES = {"constant": sgd.LearningRate.CONSTANT, "optimal": sgd.LearningRate.OPTIMAL,
             "invscaling": sgd.LearningRate.INVSCALING}
L1_RATIO = {"l2": 0.0, "l1": 1.0, "elasticnet": 0.15}
needs_openmp = pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="one thread without OpenMP")


def run_kernel(X, Y, perm, *, loss, penalty, schedule, epochs=1, n_threads=1, hot=False,
               merge_every=1, sample_weight=None, coef=None, alpha=0.01, eta0=0.05,
               power_t=0.5, optimal_init=20.0, loss_param=1.0, intercept_decay=1.0,
               class_weight=None, average_start=None, owners=0, delay=0):
    """owners: that many threads own contiguous feature ranges (row_split), with ``delay``."""
    n, d = X.shape
    K = Y.shape[1]
    coef = np.zeros((d, K)) if coef is None else coef.copy()
    intercept = np.zeros(K)
    q = np.zeros((d, K))
    l1_state = np.zeros(1)
    # hot: True buffers every feature, an array of features buffers those
    hot_feat = np.arange(d, dtype=np.int64) if hot is True else np.asarray(hot if hot is not False else [], np.int64)
    hot_slot = np.full(d, -1, np.int32) if hot_feat.size else np.empty(0, np.int32)
    hot_slot[hot_feat] = np.arange(hot_feat.size, dtype=np.int32)
    tbuf = np.zeros((n_threads, sgd.thread_buffer_stride(K, hot_feat.size)))
    sw = np.empty(0) if sample_weight is None else sample_weight
    total = 0.0
    averaged = {} if average_start is None else dict(
        avg_coef=np.zeros((d, K)), avg_intercept=np.zeros(K), average_start=average_start)
    split = {}
    if owners:
        n_threads = owners
        tbuf = np.zeros((n_threads, sgd.thread_buffer_stride(K, 0)))
        bounds = np.linspace(0, d, owners + 1).astype(np.int64)
        split = dict(row_split=sgd.row_splits(X.indices, X.indptr, bounds), delay=delay)
    for epoch in range(epochs):
        sumloss, status, bad = sgd.sgd_epoch(
            X.data, X.indices, X.indptr, Y, sw, perm, coef, intercept, q, l1_state, hot_slot,
            hot_feat, tbuf, **split, loss=int(LOSS_IDS[loss]), loss_param=loss_param, alpha=alpha,
            l1_ratio=L1_RATIO[penalty], l2=penalty != "l1", l1=penalty != "l2",
            learning_rate=int(SCHEDULES[schedule]), eta0=eta0, power_t=power_t,
            optimal_init=optimal_init, t_start=1.0 + epoch * len(perm),
            intercept_decay=intercept_decay, fit_intercept=True, n_threads=n_threads,
            merge_every=merge_every, class_weight=class_weight, **averaged)
        assert status == sgd.Status.OK and bad == -1
        total = sumloss
    if averaged:
        return coef, intercept, total, averaged["avg_coef"], averaged["avg_intercept"]
    return coef, intercept, total


def run_reference(X, Y, perm, *, loss, penalty, schedule, epochs=1, sample_weight=None,
                  coef=None, alpha=0.01, eta0=0.05, power_t=0.5, optimal_init=20.0,
                  loss_param=1.0, intercept_decay=1.0, class_weight=None, average_start=None,
                  delay=0):
    d, K = X.shape[1], Y.shape[1]
    c = np.zeros((d, K)) if coef is None else coef.copy()
    b = np.zeros(K)
    q, u = None, 0.0
    average = None if average_start is None else [np.zeros((d, K)), np.zeros(K), average_start]
    for epoch in range(epochs):
        c, b, sumloss, q, u = sgd_epoch_reference(
            X, Y, perm, c, b, loss=loss, loss_param=loss_param, penalty=penalty, alpha=alpha,
            l1_ratio=0.15, schedule=schedule, eta0=eta0, power_t=power_t,
            optimal_init=optimal_init, t_start=1.0 + epoch * len(perm),
            intercept_decay=intercept_decay, sample_weight=sample_weight, q=q, u=u,
            class_weight=class_weight, average=average, delay=delay)
    if average is not None:
        return c, b, sumloss, average[0], average[1]
    return c, b, sumloss


def targets(loss, n, K, seed):
    rng_ = np.random.default_rng(seed)
    if loss in REGRESSION:
        return rng_.normal(size=(n, K))
    return np.where(rng_.random((n, K)) > 0.5, 1.0, -1.0)


def assert_close(actual, expected, tol):
    scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tol * scale)


# the 'optimal' schedule's first steps (eta = 5 here) with the doubled gradient of the
# squared epsilon-insensitive loss diverge in the reference too: nothing to compare
@pytest.mark.parametrize("loss,penalty,schedule",
                         [c for c in itertools.product(LOSS_IDS, ["l2", "l1", "elasticnet"], SCHEDULES)
                          if c[::2] != ("squared_epsilon_insensitive", "optimal")])
def test_single_thread_matches_numpy_reference(loss, penalty, schedule):
    X = random_csr(40, 15, 0.3, seed=1)
    # unit rows keep every combination (squared error with the 'optimal' schedule too) stable
    X = X.multiply(1.0 / np.sqrt(X.multiply(X).sum(axis=1))).tocsr()
    Y = targets(loss, 40, 1, seed=2)
    perm = rng.permutation(40, 7)
    kw = dict(loss=loss, penalty=penalty, schedule=schedule, epochs=3,
              loss_param={"huber": 0.3, "epsilon_insensitive": 0.1,
                          "squared_epsilon_insensitive": 0.1}.get(loss, 1.0))
    coef, b, sumloss = run_kernel(X, Y, perm, **kw)
    rcoef, rb, rsum = run_reference(X, Y, perm, **kw)
    assert np.all(np.isfinite(rcoef))
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)
    assert sumloss == pytest.approx(rsum, rel=1e-12)
    assert np.abs(rcoef).max() > 1e-3  # the comparison is not between two zero vectors


@pytest.mark.parametrize("dtype,index_dtype", [(np.float32, np.int32), (np.float64, np.int64),
                                               (np.float32, np.int64)])
def test_dtypes_match_reference(dtype, index_dtype):
    X = random_csr(50, 20, 0.25, seed=3, dtype=dtype, index_dtype=index_dtype)
    Y = targets("log_loss", 50, 1, seed=4)
    perm = rng.permutation(50, 1)
    coef, b, _ = run_kernel(X, Y, perm, loss="log_loss", penalty="elasticnet", schedule="optimal", epochs=2)
    # the reference sees the same float32 values, widened to float64
    rcoef, rb, _ = run_reference(X.astype(np.float64), Y, perm, loss="log_loss", penalty="elasticnet",
                                 schedule="optimal", epochs=2)
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)


@pytest.mark.parametrize("loss", ["hinge", "log_loss"])
def test_multiclass_outputs_and_sample_weights_match_reference(loss):
    X = random_csr(60, 12, 0.3, seed=5)
    Y = targets(loss, 60, 3, seed=6)
    sw = np.random.default_rng(7).uniform(0.2, 2.0, 60)
    perm = rng.permutation(60, 9)
    kw = dict(loss=loss, penalty="elasticnet", schedule="invscaling", epochs=2, sample_weight=sw)
    coef, b, s = run_kernel(X, Y, perm, **kw)
    rcoef, rb, rs = run_reference(X, Y, perm, **kw)
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)
    assert s == pytest.approx(rs, rel=1e-12)


@pytest.mark.parametrize("penalty", ["l2", "l1", "elasticnet"])
@pytest.mark.parametrize("K,hot", [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("average_start", [1.0, 57.0])
def test_averaged_sgd_matches_reference(penalty, K, hot, average_start):
    """The lazily kept average (aw, A, B) is the running mean of scikit-learn's
    iterates, starting at any step, across epochs and L1 steps, also buffered."""
    X = random_csr(40, 15, 0.3, seed=10)
    Y = targets("log_loss", 40, K, seed=11)
    perm = rng.permutation(40, 3)
    kw = dict(loss="log_loss", penalty=penalty, schedule="optimal", epochs=3,
              average_start=average_start)
    coef, b, _, avg, avg_b = run_kernel(X, Y, perm, hot=hot, **kw)
    rcoef, rb, _, ravg, ravg_b = run_reference(X, Y, perm, **kw)
    assert_close(coef, rcoef, 1e-12)
    assert_close(avg, ravg, 1e-12)
    assert_close(avg_b, ravg_b, 1e-12)
    assert np.abs(avg - coef).max() > 1e-3  # the average is not the last iterate


def test_average_spans_a_scale_underflow_split():
    """With a tiny scale the epoch is split into segments; the average is folded at each."""
    X = random_csr(30, 8, 0.5, seed=12)
    Y = targets("hinge", 30, 1, seed=13)
    perm = rng.permutation(30, 4)
    kw = dict(loss="hinge", penalty="l2", schedule="constant", alpha=1e3, eta0=9.9e-4,
              average_start=1.0)
    coef, b, _, avg, avg_b = run_kernel(X, Y, perm, **kw)
    rcoef, rb, _, ravg, ravg_b = run_reference(X, Y, perm, **kw)
    assert_close(avg, ravg, 1e-10)
    assert_close(avg_b, ravg_b, 1e-10)


@pytest.mark.parametrize("K", [1, 3])
def test_class_weights_match_reference(K):
    X = random_csr(50, 12, 0.3, seed=14)
    Y = targets("hinge", 50, K, seed=15)
    cw = np.column_stack([np.linspace(0.5, 3.0, K), np.linspace(2.0, 0.7, K)])
    perm = rng.permutation(50, 5)
    kw = dict(loss="hinge", penalty="l2", schedule="invscaling", epochs=2, class_weight=cw)
    coef, b, _ = run_kernel(X, Y, perm, **kw)
    rcoef, rb, _ = run_reference(X, Y, perm, **kw)
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)
    plain, _, _ = run_kernel(X, Y, perm, **{**kw, "class_weight": None})
    assert np.abs(plain - coef).max() > 1e-3


@pytest.mark.parametrize("K", [1, 2])
@pytest.mark.parametrize("hot", [True, [0, 3, 4, 9]], ids=["all", "some"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
def test_buffered_path_on_one_thread_matches_reference(K, hot, penalty):
    """The per-thread buffers (used for small models with several threads) do the
    same arithmetic; merged after every sample they must give the sequential result,
    also with only some features buffered (K = 1 picks each one's address without a branch)."""
    X = random_csr(50, 10, 0.4, seed=8)
    Y = targets("modified_huber", 50, K, seed=9)
    perm = rng.permutation(50, 2)
    kw = dict(loss="modified_huber", penalty=penalty, schedule="optimal", epochs=2)
    coef, b, _ = run_kernel(X, Y, perm, hot=hot, **kw)
    rcoef, rb, _ = run_reference(X, Y, perm, **kw)
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)


def test_buffered_slots_must_invert_the_buffered_features():
    """A slot outside the thread buffer would be written out of bounds: refused first."""
    X = random_csr(20, 6, 0.5, seed=8)
    Y = targets("hinge", 20, 1, seed=9)
    args = (X.data, X.indices, X.indptr, Y, np.empty(0), np.arange(20, dtype=np.int64), np.zeros((6, 1)),
            np.zeros(1), np.zeros((0, 0)), np.zeros(1))
    kw = dict(loss=int(LOSS_IDS["hinge"]), loss_param=1.0, alpha=0.01, l1_ratio=0.0, l2=True, l1=False,
              learning_rate=int(SCHEDULES["optimal"]), eta0=0.0, power_t=0.5, optimal_init=20.0, t_start=1.0,
              intercept_decay=1.0, fit_intercept=True, n_threads=1, merge_every=1)
    tbuf = np.zeros((1, sgd.thread_buffer_stride(1, 2)))
    feat = np.array([1, 4], np.int64)
    for slot in ([-1, 0, -1, -1, 7, -1], [-1, 0, -1, -1, 1, 1], [-1, 1, -1, -1, 0, -1]):
        with pytest.raises(ValueError, match="hot"):
            sgd.sgd_epoch(*args, np.array(slot, np.int32), feat, tbuf, **kw)
    sgd.sgd_epoch(*args, np.array([-1, 0, -1, -1, 1, -1], np.int32), feat, tbuf, **kw)


def test_scale_underflow_splits_the_epoch_into_segments():
    """A strong L2 decay drives the internal scale below 1e-150 within an epoch; the
    kernel must fold and restart it and still match the reference."""
    X = random_csr(400, 8, 0.5, seed=10)
    Y = targets("squared_error", 400, 1, seed=11)
    perm = rng.permutation(400, 3)
    kw = dict(loss="squared_error", penalty="l2", schedule="constant", alpha=2.0, eta0=0.45)
    coef, b, _ = run_kernel(X, Y, perm, **kw)
    rcoef, rb, _ = run_reference(X, Y, perm, **kw)
    assert (1 - 0.9) ** 400 < 1e-150  # the decay really underflows the scale
    assert_close(coef, rcoef, 1e-12)
    assert_close(b, rb, 1e-12)


@pytest.mark.parametrize("owners", [0, pytest.param(2, marks=needs_openmp)])
def test_nonfinite_prediction_stops_the_epoch(owners):
    """Also when the threads own features: the one whose features are infinite stops the
    others (every thread takes the same decision from the same sums)."""
    X = random_csr(40, 6, 0.5, seed=12)
    Y = targets("squared_error", 40, 1, seed=13)
    coef = np.zeros((6, 1))
    coef[5] = np.inf  # the second owner's features only
    split = {} if not owners else dict(
        row_split=sgd.row_splits(X.indices, X.indptr, np.array([0, 3, 6], np.int64)), delay=4)
    sumloss, status, bad = sgd.sgd_epoch(
        X.data, X.indices, X.indptr, Y, np.empty(0), rng.permutation(40, 0), coef, np.zeros(1),
        np.zeros((0, 0)), np.zeros(1), np.empty(0, np.int32), np.empty(0, np.int64),
        np.zeros((max(owners, 1), sgd.thread_buffer_stride(1, 0))), loss=int(sgd.Loss.SQUARED_ERROR),
        loss_param=0.0, alpha=1e-4, l1_ratio=0.0, l2=True, l1=False,
        learning_rate=int(sgd.LearningRate.CONSTANT), eta0=0.01, power_t=0.5, optimal_init=0.0,
        t_start=1.0, intercept_decay=1.0, fit_intercept=True, n_threads=max(owners, 1), merge_every=1,
        **split)
    assert status == sgd.Status.NONFINITE
    assert X[bad, 5] != 0

def plain_call(X, n_threads):
    """The positional arguments and keywords of a hinge-loss epoch over X (4 features)."""
    n = X.shape[0]
    args = [X.data, X.indices, X.indptr, np.ones((n, 1)), np.empty(0), np.arange(n, dtype=np.int64),
            np.zeros((4, 1)), np.zeros(1), np.zeros((0, 0)), np.zeros(1), np.empty(0, np.int32),
            np.empty(0, np.int64), np.zeros((n_threads, sgd.thread_buffer_stride(1, 0)))]
    kw = dict(loss=0, loss_param=1.0, alpha=1e-4, l1_ratio=0.0, l2=True, l1=False, learning_rate=0,
              eta0=0.1, power_t=0.5, optimal_init=0.0, t_start=1.0, intercept_decay=1.0,
              fit_intercept=True, n_threads=n_threads, merge_every=1)
    return args, kw


def test_kernel_rejects_inconsistent_shapes():
    X = random_csr(10, 4, 0.5, seed=14)
    args, kw = plain_call(X, 1)
    bad_perm = list(args)
    bad_perm[5] = np.array([0, 10], dtype=np.int64)
    with pytest.raises(ValueError, match="perm"):
        sgd.sgd_epoch(*bad_perm, **kw)
    bad_y = list(args)
    bad_y[3] = np.ones((9, 1))
    with pytest.raises(ValueError, match="Y must"):
        sgd.sgd_epoch(*bad_y, **kw)
    with pytest.raises(ValueError, match="tbuf"):
        sgd.sgd_epoch(*args, **{**kw, "n_threads": 2})


@pytest.mark.parametrize("n_threads", [1, 2, 4])
def test_multithreaded_epochs_reach_the_single_thread_loss(n_threads):
    """Hogwild! is not bit-reproducible; its training loss must be statistically the same."""
    X = random_csr(4000, 200, 0.05, seed=15)
    w = np.random.default_rng(16).normal(size=200)
    Y = np.where(X @ w > 0, 1.0, -1.0).reshape(-1, 1)
    perm = rng.permutation(4000, 4)
    _, _, one = run_kernel(X, Y, perm, loss="log_loss", penalty="l2", schedule="optimal",
                           epochs=5, alpha=1e-3)
    _, _, many = run_kernel(X, Y, perm, loss="log_loss", penalty="l2", schedule="optimal",
                            epochs=5, alpha=1e-3, n_threads=n_threads, merge_every=32)
    assert many == pytest.approx(one, rel=0.02)



@needs_openmp
@pytest.mark.parametrize("owners,delay", [(2, 1), (2, 4), (3, 8), (4, 2)])
@pytest.mark.parametrize("loss,penalty,K", [("log_loss", "l2", 1), ("hinge", "elasticnet", 3),
                                            ("squared_error", "l1", 1), ("modified_huber", "l2", 2)])
def test_threads_that_own_features_match_the_delayed_reference(owners, delay, loss, penalty, K):
    """Threads that own features take every row's step from the weights of ``delay`` rows
    before, whatever the threads' timing: the sequential reference with that delay."""
    X = random_csr(60, 14, 0.4, seed=20)
    Y = targets(loss, 60, K, seed=21)
    sw = np.random.default_rng(22).uniform(0.5, 1.5, 60)
    perm = rng.permutation(60, 6)
    kw = dict(loss=loss, penalty=penalty, schedule="optimal" if loss != "squared_error" else "invscaling",
              epochs=3, sample_weight=sw, alpha=0.01)
    coef, b, s = run_kernel(X, Y, perm, owners=owners, delay=delay, **kw)
    rcoef, rb, rs = run_reference(X, Y, perm, delay=delay, **kw)
    assert_close(coef, rcoef, 1e-10)
    assert_close(b, rb, 1e-10)
    assert s == pytest.approx(rs, rel=1e-10)
    plain, _, _ = run_reference(X, Y, perm, **kw)
    assert np.abs(plain - rcoef).max() > 1e-6  # the delay changes the result: it was tested


@needs_openmp
@pytest.mark.parametrize("average_start", [1.0, 75.0])
def test_threads_that_own_features_average_and_weigh_classes(average_start):
    X = random_csr(50, 12, 0.4, seed=23)
    Y = targets("log_loss", 50, 3, seed=24)
    cw = np.column_stack([np.linspace(0.5, 3.0, 3), np.linspace(2.0, 0.7, 3)])
    perm = rng.permutation(50, 7)
    kw = dict(loss="log_loss", penalty="elasticnet", schedule="optimal", epochs=3, class_weight=cw,
              average_start=average_start)
    coef, b, _, avg, avg_b = run_kernel(X, Y, perm, owners=2, delay=3, **kw)
    rcoef, rb, _, ravg, ravg_b = run_reference(X, Y, perm, delay=3, **kw)
    assert_close(coef, rcoef, 1e-10)
    assert_close(avg, ravg, 1e-10)
    assert_close(avg_b, ravg_b, 1e-10)


def test_feature_bounds_sample_rows_of_one_length_evenly():
    # 2^20 non-zeros in rows of 16 one-hot fields (8 values each): counted as a sample, which
    # at fixed places would hold one field only (every 16th non-zero)
    rng = np.random.default_rng(5)
    n, fields, values = 1 << 16, 16, 8
    indices = (np.arange(fields) * values + rng.integers(0, values, (n, fields))).astype(np.int32).ravel()
    counts = np.bincount(indices, minlength=fields * values)
    for parts in (2, 4):
        b = sgd.feature_bounds(indices, fields * values, parts)
        shares = np.array([counts[b[t]:b[t + 1]].sum() for t in range(parts)]) / indices.size
        np.testing.assert_allclose(shares, 1 / parts, atol=counts.max() / indices.size + 0.01)


def test_row_splits_cut_sorted_rows_at_the_bounds():
    X = random_csr(30, 10, 0.4, seed=27)
    bounds = np.array([0, 3, 7, 10], np.int64)
    split = sgd.row_splits(X.indices, X.indptr, bounds)
    for r in range(30):
        cols = X.indices[X.indptr[r]:X.indptr[r + 1]]
        expected = X.indptr[r] + np.searchsorted(cols, bounds)
        np.testing.assert_array_equal(split[r], expected)
    np.testing.assert_array_equal(sgd.row_splits(X.indices, X.indptr, bounds, check=False), split)
    # feature ranges with equal shares of the non-zeros
    for parts in (1, 2, 3):
        b = sgd.feature_bounds(X.indices, 10, parts)
        counts = np.bincount(X.indices, minlength=10)
        shares = [counts[b[t]:b[t + 1]].sum() for t in range(parts)]
        assert b[0] == 0 and b[-1] == 10 and np.all(np.diff(b) >= 0)
        assert max(shares) - min(shares) <= 2 * counts.max()
    unsorted = X.copy()
    row = next(r for r in range(30) if X.indptr[r + 1] - X.indptr[r] >= 2)
    a, b = unsorted.indptr[row], unsorted.indptr[row + 1]
    unsorted.indices[a:b] = unsorted.indices[a:b][::-1].copy()
    assert sgd.row_splits(unsorted.indices, unsorted.indptr, bounds) is None
    # unchecked, unsorted rows still get offsets inside each row, in order (no bad access)
    loose = sgd.row_splits(unsorted.indices, unsorted.indptr, bounds, check=False)
    assert np.all(np.diff(loose, axis=1) >= 0)
    np.testing.assert_array_equal(loose[:, 0], X.indptr[:-1])
    np.testing.assert_array_equal(loose[:, -1], X.indptr[1:])


def test_kernel_rejects_a_row_split_that_does_not_span_the_rows():
    X = random_csr(10, 4, 0.5, seed=28)
    args, kw = plain_call(X, 2)
    split = sgd.row_splits(X.indices, X.indptr, np.array([0, 2, 4], np.int64))
    with pytest.raises(ValueError, match="delay"):
        sgd.sgd_epoch(*args, **kw, row_split=split, delay=0)
    with pytest.raises(ValueError, match="shape"):
        sgd.sgd_epoch(*args, **kw, row_split=split[:, :2].copy(), delay=2)
    bad = split.copy()
    bad[3, 2] += 1
    with pytest.raises(ValueError, match="span"):
        sgd.sgd_epoch(*args, **kw, row_split=bad, delay=2)


def epochs_in_one_call(X, Y, perm, epochs, *, owners=0, delay=0, n_threads=1, owner_bounds=True,
                       alpha=0.01, eta0=0.05, schedule="optimal", average_start=None, hot=False):
    """``epochs`` passes over ``perm`` in one kernel call (elastic net, log loss); returns
    (coef, sumloss, epoch_stats). ``hot``: every feature buffered, merged every 8 rows."""
    n, d = X.shape
    K = Y.shape[1]
    coef, intercept, q = np.zeros((d, K)), np.zeros(K), np.zeros((d, K))
    threads = owners or n_threads
    split = {}
    if owners:
        bounds = np.linspace(0, d, owners + 1).astype(np.int64)
        split = dict(row_split=sgd.row_splits(X.indices, X.indptr, bounds), delay=delay)
        if owner_bounds:
            split["owner_bounds"] = bounds
    averaged = {} if average_start is None else dict(
        avg_coef=np.zeros((d, K)), avg_intercept=np.zeros(K), average_start=average_start)
    stats = np.empty((epochs, threads, 3))
    hot_feat = np.arange(d if hot else 0, dtype=np.int64)
    hot_slot = np.arange(d if hot else 0, dtype=np.int32)
    sumloss, status, _ = sgd.sgd_epoch(
        X.data, X.indices, X.indptr, Y, np.empty(0), np.tile(perm, epochs), coef, intercept, q, np.zeros(1),
        hot_slot, hot_feat, np.zeros((threads, sgd.thread_buffer_stride(K, hot_feat.size))),
        **split, **averaged, loss=int(sgd.Loss.LOG_LOSS), loss_param=1.0, alpha=alpha, l1_ratio=0.15, l2=True,
        l1=True, learning_rate=int(SCHEDULES[schedule]), eta0=eta0, power_t=0.5, optimal_init=20.0,
        t_start=1.0, intercept_decay=1.0, fit_intercept=True, n_threads=threads, merge_every=8 if hot else 1,
        epoch_rows=len(perm), epoch_stats=stats)
    assert status == sgd.Status.OK
    return coef, sumloss, stats


@pytest.mark.parametrize("owners,delay,hot", [(0, 0, False), (0, 0, True), (2, 3, False), (3, 1, False)])
def test_epochs_in_one_call_report_each_epochs_loss_and_weights(owners, delay, hot):
    """Several epochs in one call (the threads stay awake between them): each epoch's loss
    and the weights' sums at its end are the sequential reference's after that epoch
    (threads that own features: with the delay running across the epochs; one thread with
    buffered features: merged before the sums)."""
    if owners and not dpsgd.openmp_enabled():
        pytest.skip("one thread without OpenMP")
    X = random_csr(50, 12, 0.4, seed=40)
    Y = targets("log_loss", 50, 2, seed=41)
    perm = rng.permutation(50, 8)
    coef, sumloss, stats = epochs_in_one_call(X, Y, perm, 3, owners=owners, delay=delay, hot=hot)
    before = 0.0
    for e in range(3):  # the reference over the first e + 1 epochs, as one sequence
        rcoef, _, rloss, _, _ = sgd_epoch_reference(
            X, Y, np.tile(perm, e + 1), np.zeros((12, 2)), np.zeros(2), loss="log_loss", loss_param=1.0,
            penalty="elasticnet", alpha=0.01, l1_ratio=0.15, schedule="optimal", eta0=0.05, power_t=0.5,
            optimal_init=20.0, t_start=1.0, delay=delay)
        assert stats[e, :, 0].sum() == pytest.approx(rloss - before, rel=1e-10)
        assert stats[e, :, 1].sum() == pytest.approx(np.sum(rcoef ** 2), rel=1e-10)
        assert stats[e, :, 2].sum() == pytest.approx(np.sum(np.abs(rcoef)), rel=1e-10)
        before = rloss
    assert stats[:, :, 0].sum() == pytest.approx(sumloss, rel=1e-12)
    assert_close(coef, rcoef, 1e-10)


def test_epoch_stats_add_up_across_the_segments_of_an_epoch():
    """Averaging folds the weights every few hundred steps here (the L2 scale falls below
    1e-6): epochs end inside those segments and segments inside epochs."""
    X = random_csr(60, 10, 0.4, seed=42)
    Y = targets("log_loss", 60, 1, seed=43)
    perm = rng.permutation(60, 9)
    _, sumloss, stats = epochs_in_one_call(X, Y, perm, 4, alpha=0.5, eta0=0.2, schedule="constant",
                                           average_start=1.0)
    for e in range(4):
        rcoef, _, rloss, _, _ = sgd_epoch_reference(
            X, Y, np.tile(perm, e + 1), np.zeros((10, 1)), np.zeros(1), loss="log_loss", loss_param=1.0,
            penalty="elasticnet", alpha=0.5, l1_ratio=0.15, schedule="constant", eta0=0.2, power_t=0.5,
            optimal_init=20.0, t_start=1.0, average=[np.zeros((10, 1)), np.zeros(1), 1.0])
        assert stats[e, 0, 1] == pytest.approx(np.sum(rcoef ** 2), rel=1e-9)
    assert stats[:, 0, 0].sum() == pytest.approx(sumloss, rel=1e-12)


@needs_openmp
def test_hogwild_epoch_stats_count_every_row_once_and_take_no_sums():
    """Each Hogwild! thread adds its rows' losses to their epochs, whatever its timing: with
    steps too short to move the weights every row's log loss is log 2, and each of 2 threads
    takes half of every epoch's positions."""
    X = random_csr(400, 30, 0.2, seed=44)
    Y = targets("log_loss", 400, 1, seed=45)
    perm = rng.permutation(400, 10)
    _, sumloss, stats = epochs_in_one_call(X, Y, perm, 3, n_threads=2, schedule="constant", eta0=1e-12)
    np.testing.assert_allclose(stats[:, :, 0], 200 * np.log(2.0), rtol=1e-9)
    assert stats[:, :, 0].sum() == pytest.approx(sumloss, rel=1e-12)
    assert np.all(np.isnan(stats[:, 0, 1:]))  # no sums: the threads are not in step
    # owners without their bounds take no sums
    _, _, unsummed = epochs_in_one_call(X, Y, perm, 2, owners=2, delay=2, owner_bounds=False)
    assert np.all(np.isnan(unsummed[:, 0, 1])) and np.all(unsummed[:, 0, 0] > 0)


def test_kernel_rejects_bad_epoch_statistics_arguments():
    X = random_csr(10, 4, 0.5, seed=29)
    args, kw = plain_call(X, 2)
    with pytest.raises(ValueError, match="go together"):
        sgd.sgd_epoch(*args, **kw, epoch_rows=5)
    with pytest.raises(ValueError, match="go together"):
        sgd.sgd_epoch(*args, **kw, epoch_stats=np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, >= 2, 3\)"):
        sgd.sgd_epoch(*args, **kw, epoch_rows=5, epoch_stats=np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"shape \(4, >= 2, 3\)"):
        sgd.sgd_epoch(*args, **kw, epoch_rows=3, epoch_stats=np.zeros((4, 1, 3)))
    split = dict(row_split=sgd.row_splits(X.indices, X.indptr, np.array([0, 2, 4], np.int64)), delay=2,
                 epoch_rows=10, epoch_stats=np.zeros((1, 2, 3)))
    for bounds in ([0, 2], [0, 3, 2], [1, 2, 4], [0, 2, 5]):
        with pytest.raises(ValueError, match="owner_bounds"):
            sgd.sgd_epoch(*args, **kw, **split, owner_bounds=np.array(bounds, np.int64))


def test_loss_functions_match_reference():
    for name, kind in LOSS_IDS.items():
        for y in (-1.0, 1.0, 0.3):
            for p in (-30.0, -2.0, -0.5, 0.0, 0.7, 1.0, 3.0, 30.0):
                value, grad = sgd.py_loss_grad(int(kind), y, p, 0.5 if name == "huber" else 1.0)
                ref_value, ref_grad = loss_grad(name, y, p, 0.5 if name == "huber" else 1.0)
                assert value == pytest.approx(ref_value, rel=1e-12, abs=1e-15), (name, y, p)
                assert grad == pytest.approx(ref_grad, rel=1e-12, abs=1e-15), (name, y, p)


def test_log_loss_gradient_is_the_derivative():
    for p in (-5.0, -0.3, 0.0, 0.4, 6.0):
        h = 1e-6
        up, _ = sgd.py_loss_grad(int(sgd.Loss.LOG_LOSS), 1.0, p + h)
        down, _ = sgd.py_loss_grad(int(sgd.Loss.LOG_LOSS), 1.0, p - h)
        _, grad = sgd.py_loss_grad(int(sgd.Loss.LOG_LOSS), 1.0, p)
        assert grad == pytest.approx((up - down) / (2 * h), rel=1e-6)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_stream_kernel_gathers_and_scatters(n_threads):
    X = random_csr(30, 9, 0.4, seed=17)
    perm = rng.permutation(30, 5)
    coef = np.random.default_rng(18).normal(size=(9, 1))
    before = coef.copy()
    total = sgd.stream_epoch(X.data, X.indices, X.indptr, perm, coef, n_threads, 0.0)
    np.testing.assert_array_equal(coef, before)  # c = 0 stores the same values back
    assert total == pytest.approx(float((X @ before).sum()), rel=1e-12)
    sgd.stream_epoch(X.data, X.indices, X.indptr, perm, coef, 1, 0.5)
    expected = before[:, 0] + 0.5 * np.asarray(X.sum(axis=0)).ravel()
    np.testing.assert_allclose(coef[:, 0], expected, rtol=1e-12)


def test_rng_permutation_is_a_reproducible_permutation():
    p = rng.permutation(1000, 42)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, rng.permutation(1000, 42))
    assert not np.array_equal(p, rng.permutation(1000, 43))
    assert not np.array_equal(p, rng.permutation(1000, 42, stream=1))
    assert rng.permutation(0, 1).size == 0 and rng.permutation(1, 1).tolist() == [0]


def test_rng_is_uniform():
    u = rng.uniform(200_000, 7)
    assert u.min() >= 0.0 and u.max() < 1.0
    counts = np.histogram(u, bins=20, range=(0, 1))[0]
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 43.8  # 99.9% quantile of chi-square with 19 degrees of freedom
    # each position of a permutation of 5 is uniform over its 5 values
    first = np.array([rng.permutation(5, s)[0] for s in range(5000)])
    counts = np.bincount(first, minlength=5)
    assert ((counts - 1000) ** 2 / 1000).sum() < 18.5  # 99.9% quantile, 4 dof
