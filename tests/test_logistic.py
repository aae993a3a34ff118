"""LogisticRegression and Lasso (dpsgd.tasks.logistic): scikit-learn's objectives, solved by
async_bcd and piag, and scikit-learn's estimator conventions.

The comparisons with scikit-learn use problems whose minimiser is unique, so that the
supports can be compared: without an intercept, since a9a's one-hot groups sum to 1 and with
an intercept an L1 minimiser is then an interval (saga and FISTA then agree on P to 1e-14
and differ in the support).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso as SkLasso
from sklearn.linear_model import LogisticRegression as SkLogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from dpsgd import Lasso, LogisticRegression, load_model, save_model
from dpsgd._kernels import prox
from dpsgd.tasks import logistic
from dpsgd.tasks.prox_reference import proximal_gradient

SOLVERS = ["async_bcd", "piag"]


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def objective(X, y, coef, intercept, C, loss="log_loss", **R):
    """P(w, b) of the kernels (R: penalty and l1_ratio; L1 by default)."""
    X = sp.csr_matrix(X)
    return prox.objective(X.data, X.indices, X.indptr, np.asarray(y, np.float64), np.ravel(coef),
                          float(np.ravel(intercept)[0]) if np.size(intercept) else 0.0, loss=loss, C=C,
                          **{"penalty": "l1", **R})


def int32_csr(X):
    """scikit-learn's saga takes 32-bit indices only."""
    return sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)), shape=X.shape)


# a tol per solver for P within 1e-6 of P*: async_bcd stops by saga's rule (the largest change
# of a weight over an epoch against the largest weight), piag by the prox-gradient mapping
TIGHT = {"async_bcd": 1e-7, "piag": 1e-5}


def compare_with_saga(X, y, C, solver, **kw):
    signs = np.where(y == 1, 1.0, -1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = SkLogisticRegression(l1_ratio=1.0, C=C, solver="saga", tol=1e-10, max_iter=100_000,
                                      fit_intercept=False).fit(int32_csr(X), y)
    ours = LogisticRegression(C=C, solver=solver, fit_intercept=False, n_threads=1, random_state=0, **kw).fit(X, y)
    P_theirs = objective(X, signs, theirs.coef_, [], C)
    P_ours = objective(X, signs, ours.coef_, [], C)
    assert abs(P_ours - P_theirs) <= 1e-6 * P_theirs
    np.testing.assert_array_equal(np.flatnonzero(ours.coef_), np.flatnonzero(theirs.coef_))
    return ours, theirs


@pytest.mark.parametrize("solver", SOLVERS)
def test_l1_matches_scikit_learns_saga_on_a9a_rows(a9a, solver):
    """The first 5,000 rows of a9a, C = 0.03: 15 of the 123 weights are non-zero (12%)."""
    X, y = a9a[0][:5000], a9a[1][:5000]
    ours, _ = compare_with_saga(X, y, 0.03, solver, tol=TIGHT[solver], max_iter=20_000)
    assert 0.1 <= np.count_nonzero(ours.coef_) / X.shape[1] <= 0.3
    assert ours.solver_ == solver and ours.n_iter_.shape == (1,) and ours.n_iter_[0] >= 1


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_l1_matches_scikit_learns_saga_on_the_whole_of_a9a(a9a, solver):
    """All 32,561 rows, C = 0.005: 17 of the 123 weights are non-zero (14%)."""
    ours, _ = compare_with_saga(a9a[0], a9a[1], 0.005, solver, tol=TIGHT[solver], max_iter=20_000)
    assert np.count_nonzero(ours.coef_) == 17


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("penalty,l1_ratio", [("l1", None), ("elasticnet", 0.5), ("l2", None), (None, None)])
def test_every_penalty_with_an_intercept_reaches_the_reference_optimum(solver, penalty, l1_ratio):
    """Against FISTA (prox_reference) on noisy labels, where even no penalty has a minimiser."""
    X, y = make_classification(n_samples=300, n_features=10, n_informative=4, flip_y=0.1, shift=1.0, random_state=0)
    signs = np.where(y == 1, 1.0, -1.0)
    C, R = 0.1, dict(penalty=penalty, l1_ratio=l1_ratio)
    best = proximal_gradient(X, signs, C=C, fit_intercept=True, accelerated=True, tol=1e-12, max_iter=100_000, **R)
    ours = LogisticRegression(C=C, solver=solver, n_threads=1, random_state=0, tol=TIGHT[solver], max_iter=20_000,
                              **R).fit(X, y)
    P = objective(X, signs, ours.coef_, ours.intercept_, C, **R)
    assert abs(P - best.objective) <= 1e-6 * best.objective
    assert ours.intercept_[0] != 0.0


@pytest.mark.parametrize("solver", SOLVERS)
def test_multiclass_is_one_vs_rest_and_scores_well_on_digits(solver):
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    clf = LogisticRegression(C=1.0, solver=solver, n_threads=1, random_state=0, max_iter=100, tol=1e-3)
    clf.fit(X[:1200], y[:1200])
    assert clf.coef_.shape == (10, 64) and clf.intercept_.shape == (10,) and clf.n_iter_.shape == (10,)
    assert clf.score(X[1200:], y[1200:]) > 0.85  # scikit-learn's multinomial L1 (saga): 0.93
    proba = clf.predict_proba(X[1200:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[1200:]))
    assert 0.05 < np.mean(clf.coef_ == 0) < 0.95  # L1 zeroes some weights, not all
    history = clf.objective_history_
    assert set(history["classifier"]) == set(range(10)) and len(clf.delays_) == 10
    assert clf.gamma_prime_.shape == (10,) and np.all(clf.gamma_prime_ > 0)


def test_one_row_per_problem_and_its_history():
    X, y = load_digits(n_class=2, return_X_y=True)
    clf = LogisticRegression(C=0.01, n_threads=1, random_state=0).fit(X, y)
    assert clf.coef_.shape == (1, 64) and clf.classes_.tolist() == [0, 1]
    h = clf.objective_history_
    assert h.dtype.names == ("classifier", "iteration", "seconds", "objective", "delay", "step")
    assert len(h) >= 2 and np.all(h["classifier"] == 0) and np.all(np.diff(h["iteration"]) > 0)
    assert h["objective"][-1] < h["objective"][0]
    assert np.all(np.isfinite(h["objective"])) and np.all(h["delay"] >= 0)
    assert clf.delays_[0].dtype == np.int64
    scores = clf.decision_function(X)
    assert scores.shape == (X.shape[0],)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(scores > 0).astype(int)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))


@pytest.mark.parametrize("solver", SOLVERS)
def test_lasso_matches_scikit_learns_lasso(solver):
    """C = 1 / (n alpha): the same minimiser, objective values 1 / alpha times scikit-learn's."""
    X, y, _ = make_regression(n_samples=300, n_features=40, n_informative=8, noise=5.0, coef=True, random_state=0)
    alpha = 2.0
    theirs = SkLasso(alpha=alpha, tol=1e-12, max_iter=100_000).fit(X, y)
    ours = Lasso(alpha=alpha, solver=solver, n_threads=1, random_state=0, tol=1e-8, max_iter=50_000).fit(X, y)
    C = 1.0 / (X.shape[0] * alpha)

    def P(model):
        return objective(X, y, model.coef_, [model.intercept_], C, loss="squared_error")

    assert abs(P(ours) - P(theirs)) <= 1e-6 * P(theirs)
    np.testing.assert_array_equal(np.flatnonzero(ours.coef_), np.flatnonzero(theirs.coef_))
    assert ours.coef_.shape == (40,) and isinstance(ours.intercept_, float) and isinstance(ours.n_iter_, int)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-4)


def test_warm_start_continues_from_the_last_solution(a9a):
    """PIAG in one process is proximal gradient with a constant step: 30 epochs and 30 more from
    there are the iterates of 60 epochs."""
    X, y = a9a[0][:2000], a9a[1][:2000]
    kw = dict(C=0.05, solver="piag", tol=0.0)
    clf = LogisticRegression(max_iter=30, warm_start=True, **kw).fit(X, y).fit(X, y)
    whole = LogisticRegression(max_iter=60, **kw).fit(X, y)
    np.testing.assert_allclose(clf.coef_, whole.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(clf.intercept_, whole.intercept_, rtol=0, atol=1e-10)
    cold = LogisticRegression(max_iter=30, **kw).fit(X, y)
    assert not np.allclose(cold.coef_, whole.coef_)


@pytest.mark.parametrize("model", [LogisticRegression(C=0.1, n_threads=1, random_state=0),
                                   Lasso(alpha=0.5, n_threads=1, random_state=0)], ids=["logistic", "lasso"])
def test_save_and_load(tmp_path, model):
    X, y = load_digits(n_class=3, return_X_y=True)
    model.fit(X / 16.0, y)
    path = tmp_path / "model.npz"
    save_model(model, path)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.get_params()["C" if "C" in model.get_params() else "alpha"] \
        == model.get_params()["C" if "C" in model.get_params() else "alpha"]
    np.testing.assert_array_equal(loaded.predict(X / 16.0), model.predict(X / 16.0))
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X / 16.0), model.predict_proba(X / 16.0))
        np.testing.assert_array_equal(loaded.n_iter_, model.n_iter_)


BAD_PARAMETERS = [
    (dict(penalty="l3"), "penalty='l3' is not supported"),
    (dict(C=0), "C must be > 0"),
    (dict(C=-1.0), "C must be > 0"),
    (dict(C=np.inf), "C must be finite"),
    (dict(penalty="elasticnet"), "needs l1_ratio"),
    (dict(penalty="elasticnet", l1_ratio=1.5), "l1_ratio must be <= 1"),
    (dict(solver="saga"), "solver='saga' is not supported"),
    (dict(step_policy="none"), "step_policy='none' is not supported"),
    (dict(step_policy="fixed"), "needs tau_max"),
    (dict(tau_max=3), "tau_max is used only by step_policy='fixed'"),
    (dict(policy_alpha=1.0), "policy_alpha must be < 1"),
    (dict(policy_alpha=0.0), "policy_alpha must be > 0"),
    (dict(tol=-1e-3), "tol must be >= 0"),
    (dict(max_iter=0), "max_iter must be >= 1"),
    (dict(max_iter=2.5), "max_iter must be an int"),
    (dict(n_threads=0), "n_threads"),
    (dict(n_blocks=0), "n_blocks must be >= 1"),
    (dict(solver="piag", n_blocks=4), "n_blocks is used only by solver='async_bcd'"),
    (dict(fit_intercept="yes"), "fit_intercept must be True or False"),
    (dict(max_seconds=0), "max_seconds must be > 0"),
]


@pytest.mark.parametrize("params,message", BAD_PARAMETERS)
def test_bad_parameters_are_refused_before_any_solver_runs(monkeypatch, params, message):
    monkeypatch.setattr(logistic, "_solver_function", lambda name: pytest.fail("a solver ran"))
    with pytest.raises(ValueError, match=message):
        LogisticRegression(**params).fit(np.eye(4), [0, 1, 0, 1])


def test_bad_data_is_refused_before_any_solver_runs(monkeypatch):
    monkeypatch.setattr(logistic, "_solver_function", lambda name: pytest.fail("a solver ran"))
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(np.eye(3), [1, 1, 1])
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit([[np.nan, 1.0], [0.0, 1.0]], [0, 1])
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(np.eye(3), [0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LogisticRegression().fit(np.eye(3), [0, 1])
    bad = sp.csr_matrix(np.eye(3))
    bad.indices[0] = 7
    with pytest.raises(ValueError, match="indices outside"):
        LogisticRegression().fit(bad, [0, 1, 0])
    with pytest.raises(ValueError, match="alpha must be > 0"):
        Lasso(alpha=0.0).fit(np.eye(3), [0.0, 1.0, 2.0])


def test_l1_ratio_without_the_elastic_net_is_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="l1_ratio is used only with penalty='elasticnet'"):
        LogisticRegression(l1_ratio=0.5, max_iter=1, tol=0).fit(np.eye(2), [0, 1])


# no expected failures: both estimators pass every check
@parametrize_with_checks([LogisticRegression(n_threads=1, random_state=0),
                          LogisticRegression(solver="piag", n_threads=1),
                          Lasso(n_threads=1, random_state=0)])
def test_scikit_learn_check_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("model, member, wrong", [
    (LogisticRegression(C=0.1, n_threads=1, max_iter=5), "coef_", np.zeros((2, 64))),
    (LogisticRegression(C=0.1, n_threads=1, max_iter=5), "intercept_", np.zeros(2)),
    (Lasso(alpha=0.5, n_threads=1, max_iter=5), "coef_", np.zeros(63)),
    (Lasso(alpha=0.5, n_threads=1, max_iter=5), "intercept_", np.zeros(2)),
], ids=["logistic-coef", "logistic-intercept", "lasso-coef", "lasso-intercept"])
def test_a_file_with_arrays_of_the_wrong_shape_is_refused(tmp_path, model, member, wrong):
    """load_model checks these estimators' arrays against n_features_in_ and the classes, and a
    Lasso comes back with a float intercept_, as scikit-learn's has."""
    import warnings

    from test_persist import rewrite

    X, y = load_digits(n_class=3, return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X / 16.0, y)
    path = tmp_path / "model.npz"
    save_model(model, path)
    if isinstance(model, Lasso):
        assert type(load_model(path).intercept_) is float
    rewrite(path, arrays={member: wrong})
    with pytest.raises(ValueError, match=member):
        load_model(path)
