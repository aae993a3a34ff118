"""Bad input gets a clear exception (or the documented behaviour) before any kernel runs."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpsgd import SGDClassifier, SGDRegressor, effective_n_threads
from dpsgd.tasks.linear import DivergenceError

X_OK = sp.random(20, 5, density=0.5, format="csr", random_state=0)
Y_OK = np.array([0, 1] * 10)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_X_is_rejected(bad):
    X = X_OK.copy()
    X.data[3] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        SGDClassifier().fit(X, Y_OK)
    dense = X.toarray()
    with pytest.raises(ValueError, match="NaN|infinity"):
        SGDClassifier().fit(dense, Y_OK)


def test_nonfinite_y_is_rejected():
    y = np.linspace(0, 1, 20)
    y[4] = np.nan
    with pytest.raises(ValueError, match="NaN|infinity"):
        SGDRegressor().fit(X_OK, y)


def test_wrong_shapes():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        SGDClassifier().fit(X_OK, Y_OK[:-1])
    clf = SGDClassifier(max_iter=2, tol=None).fit(X_OK, Y_OK)
    with pytest.raises(ValueError, match="features"):
        clf.predict(sp.random(3, 7, density=0.5, format="csr"))
    with pytest.raises(ValueError, match="sample_weight"):
        SGDClassifier().fit(X_OK, Y_OK, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        SGDClassifier().fit(X_OK, Y_OK, sample_weight=-np.ones(20))


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        SGDClassifier().fit(sp.csr_matrix((0, 5)), np.array([]))
    with pytest.raises(ValueError, match="0 feature"):
        SGDClassifier().fit(np.empty((4, 0)), [0, 1, 0, 1])


def test_single_class():
    with pytest.raises(ValueError, match="greater than one"):
        SGDClassifier().fit(X_OK, np.ones(20))
    with pytest.raises(ValueError, match="at least two"):
        SGDClassifier().partial_fit(X_OK, np.ones(20), classes=[1])


def test_partial_fit_needs_classes_and_rejects_unseen_labels():
    with pytest.raises(ValueError, match="classes must be passed"):
        SGDClassifier().partial_fit(X_OK, Y_OK)
    clf = SGDClassifier().partial_fit(X_OK, Y_OK, classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[5\] are not in classes"):
        clf.partial_fit(X_OK, np.array([0, 1, 5] + [0] * 17))


def test_continuous_target_for_classifier():
    with pytest.raises(ValueError, match="Unknown label type"):
        SGDClassifier().fit(X_OK, np.linspace(0, 1, 20))


@pytest.mark.parametrize("params,match", [
    (dict(loss="nope"), "loss='nope' is not supported"),
    (dict(penalty="l3"), "penalty"),
    (dict(alpha=-1.0), "alpha must be >= 0"),
    (dict(alpha=np.nan), "alpha must be finite"),
    (dict(l1_ratio=1.5), "l1_ratio must be <= 1"),
    (dict(max_iter=0), "max_iter must be >= 1"),
    (dict(max_iter=2.5), "max_iter must be an int"),
    (dict(learning_rate="pa1"), "learning_rate=.pa1. is not supported"),
    (dict(learning_rate="constant", eta0=0.0), "eta0 must be > 0"),
    (dict(learning_rate="optimal", alpha=0.0), "alpha must be > 0"),
    (dict(learning_rate="constant", eta0=100.0, alpha=0.1), "step size"),
    (dict(n_threads=0), "n_threads=0"),
    (dict(n_threads=1.5), "n_threads must be an int"),
])
def test_bad_parameters(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        SGDClassifier(**params).fit(X_OK, Y_OK)


def test_n_threads_semantics(monkeypatch):
    import dpsgd._threads as threads

    monkeypatch.setattr(threads, "openmp_enabled", lambda: True)
    monkeypatch.setattr(threads, "available_threads", lambda: 8)
    assert effective_n_threads(None) == 8
    assert effective_n_threads(-1) == 8
    assert effective_n_threads(-2) == 7
    assert effective_n_threads(-100) == 1
    assert effective_n_threads(3) == 3
    assert effective_n_threads(20) == 20  # oversubscribing is the caller's choice
    with pytest.raises(ValueError, match="n_threads=0"):
        effective_n_threads(0)
    with pytest.raises(TypeError):
        effective_n_threads(True)
    monkeypatch.setattr(threads, "openmp_enabled", lambda: False)
    monkeypatch.setattr(threads, "_warned_serial", False)
    with pytest.warns(RuntimeWarning, match="built without OpenMP"):  # pip hides the build's warning
        assert effective_n_threads(8) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per process
        assert effective_n_threads(None) == 1
    monkeypatch.setattr(threads, "_warned_serial", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one thread asked for: nothing to say
        assert effective_n_threads(1) == 1


def test_omp_num_threads_is_honoured():
    import subprocess
    import sys

    code = "import dpsgd; print(dpsgd.effective_n_threads(None))"
    out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def test_non_csr_sparse_formats_and_int64_indices_are_accepted():
    X = sp.random(200, 10, density=0.3, format="csr", random_state=1)
    y = (X @ np.arange(10) > 2).astype(int)
    ref = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1, fit_intercept=False).fit(X, y)
    for fmt in ("coo", "csc", "lil", "dok", "bsr"):
        got = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1,
                            fit_intercept=False).fit(X.asformat(fmt), y)
        np.testing.assert_array_equal(got.coef_, ref.coef_)
    X64 = X.copy()
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    got = SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1, fit_intercept=False).fit(X64, y)
    np.testing.assert_array_equal(got.coef_, ref.coef_)


def test_malformed_csr_is_rejected_not_crashed():
    X = sp.csr_matrix((np.ones(3), np.array([0, 1, 9]), np.array([0, 2, 3])), shape=(2, 4))
    with pytest.raises(ValueError):
        SGDClassifier().fit(X, [0, 1])


def test_unsorted_and_duplicate_entries_are_summed():
    # row 0 holds column 1 twice (1 + 2) and columns out of order
    X = sp.csr_matrix((np.array([1.0, 5.0, 2.0, 4.0]), np.array([1, 0, 1, 2]), np.array([0, 3, 4])), shape=(2, 3))
    canonical = sp.csr_matrix(np.array([[5.0, 3.0, 0.0], [0.0, 0.0, 4.0]]))
    kw = dict(max_iter=5, tol=None, random_state=0, n_threads=1)
    np.testing.assert_allclose(SGDClassifier(**kw).fit(X, [0, 1]).coef_,
                               SGDClassifier(**kw).fit(canonical, [0, 1]).coef_)


def test_unfitted_model():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SGDClassifier().predict(X_OK)
    with pytest.raises(AttributeError, match="predict_proba"):
        SGDClassifier(loss="hinge").predict_proba


def test_failed_fit_leaves_no_fitted_model():
    clf = SGDClassifier()
    with pytest.raises(ValueError):
        clf.fit(X_OK, np.ones(20))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        clf.predict(X_OK)


@st.composite
def sparse_problems(draw):
    n = draw(st.integers(1, 30))
    d = draw(st.integers(1, 12))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed)
    X.data = rng.normal(0, draw(st.sampled_from([1e-3, 1.0, 1e3])), X.nnz)
    if draw(st.booleans()):
        X = X.astype(np.float32)
    if draw(st.booleans()):
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    y = rng.integers(0, draw(st.integers(1, 4)), n)
    return X, y


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_problems(),
       st.sampled_from(["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron"]),
       st.sampled_from(["l2", "l1", "elasticnet", None]),
       st.sampled_from([1, 2]))
def test_random_sparse_inputs_fit_or_fail_cleanly(problem, loss, penalty, n_threads):
    """Any small sparse problem either fits to a finite model or raises a ValueError
    that says why (one class, divergence) - never a crash or a silent NaN."""
    X, y = problem
    clf = SGDClassifier(loss=loss, penalty=penalty, max_iter=3, tol=None, n_threads=n_threads, random_state=0)
    try:
        clf.fit(X, y)
    except DivergenceError:
        assert not hasattr(clf, "coef_")
        return
    except ValueError as exc:
        assert "class" in str(exc)
        assert np.unique(y).size < 2
        return
    assert np.all(np.isfinite(clf.coef_)) and np.all(np.isfinite(clf.intercept_))
    assert clf.predict(X).shape == (X.shape[0],)


@settings(max_examples=40, deadline=None)
@given(sparse_problems(), st.sampled_from(["squared_error", "huber"]))
def test_random_sparse_regression_fits_or_fails_cleanly(problem, loss):
    X, y = problem
    reg = SGDRegressor(loss=loss, max_iter=3, tol=None, random_state=0)
    try:
        reg.fit(X, y.astype(float))
    except DivergenceError:
        return
    assert np.all(np.isfinite(reg.coef_))
