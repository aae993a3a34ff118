"""L1 (and L2, elastic-net) logistic regression and the Lasso by the composite solvers (issue 11).

``LogisticRegression`` and ``Lasso`` follow scikit-learn's estimators of the same names: the
same objective, parameter names and fitted attributes. They differ in how the problem is
solved: by the delay-adaptive solvers of Wu, Magnusson, Feyzmahdavian and Johansson (ICML
2022), asynchronous block-coordinate descent over the threads of one process
(:func:`dpsgd.tasks.async_bcd.async_bcd_fit`) and over MPI ranks, each owning some of the
blocks (:func:`dpsgd.tasks.async_bcd_ranks.async_bcd`), or proximal incremental aggregated
gradient over MPI ranks (:func:`dpsgd.tasks.piag.piag`), all of which return a
:class:`dpsgd.tasks.composite.CompositeResult`. The estimator validates and prepares; the
solvers are imported when ``fit`` runs, so that a missing one never breaks ``import dpsgd``.

Both solve ``min_(w, b) P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` with the
intercept b unpenalised and R one of ``||w||_1``, ``||w||^2 / 2``, ``l1_ratio ||w||_1 +
(1 - l1_ratio) ||w||^2 / 2`` (scikit-learn's ``LogisticRegression`` scaling). scikit-learn's
``Lasso(alpha)`` minimises ``||y - Xw - b||^2 / (2 n) + alpha ||w||_1``, which is
``alpha * P`` for the squared loss ``(m - y)^2 / 2`` and ``C = 1 / (n * alpha)``, n the rows over
every rank: the same minimiser.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from dpsgd import persist
from dpsgd._threads import effective_n_threads
from dpsgd._validation import (
    as_kernel_csr,
    check_choice,
    check_number,
    check_sparse_structure,
)
from dpsgd.comm import Topology
from dpsgd.comm.network import make_network
from dpsgd.comm.failure import ends_job_on_error
from dpsgd.tasks import composite
from dpsgd.tasks.linear import _BaseSGD

PENALTIES = ("l1", "l2", "elasticnet", None)
SOLVERS = ("auto", "async_bcd", "piag")
# the solvers' policies but 'none', which has no safe step for several workers
STEP_POLICIES = tuple(p for p in composite.STEP_POLICIES if p != "none")
# the columns of objective_history_: which one-vs-rest classifier (row of coef_), then the
# solver's own record (dpsgd.tasks.composite.HISTORY_FIELDS)
HISTORY_DTYPE = np.dtype([("classifier", np.int64), ("iteration", np.int64), ("seconds", np.float64),
                          ("objective", np.float64), ("delay", np.int64), ("step", np.float64)])


def _solver_function(name):
    """The solver ``name`` ("piag", "async_bcd" or "async_bcd_ranks": async_bcd across the
    ranks of a communicator), imported now."""
    if name == "piag":
        from dpsgd.tasks.piag import piag

        return piag
    if name == "async_bcd_ranks":
        from dpsgd.tasks.async_bcd_ranks import async_bcd

        return async_bcd
    from dpsgd.tasks.async_bcd import async_bcd_fit

    return async_bcd_fit


class _CompositeModel(BaseEstimator):
    """What LogisticRegression and Lasso share: checks, data, the solver calls; not for direct use."""

    _loss = None  # the solvers' name of the loss

    def __init__(self, *, fit_intercept, solver, step_policy, policy_alpha, tau_max, tol, max_iter, n_threads,
                 n_blocks, warm_start, comm, random_state, max_seconds, network):
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.step_policy = step_policy
        self.policy_alpha = policy_alpha
        self.tau_max = tau_max
        self.tol = tol
        self.max_iter = max_iter
        self.n_threads = n_threads
        self.n_blocks = n_blocks
        self.warm_start = warm_start
        self.comm = comm
        self.random_state = random_state
        self.max_seconds = max_seconds
        self.network = network

    # ------------------------------------------------------------------ checks
    def _validate_params(self):
        """Every hyperparameter, checked before any data is read (also by load_model)."""
        check_choice("penalty", self._penalty(), PENALTIES)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("step_policy", self.step_policy, STEP_POLICIES)
        check_number("policy_alpha", self.policy_alpha, low=0.0, high=1.0, low_open=True)
        if self.policy_alpha == 1.0:
            raise ValueError("policy_alpha must be < 1, got 1.0")
        check_number("tau_max", self.tau_max, low=0, integer=True, allow_none=True)
        if self.step_policy == "fixed" and self.tau_max is None:
            raise ValueError("step_policy='fixed' needs tau_max, the largest delay of the run (an int >= 0)")
        if self.step_policy != "fixed" and self.tau_max is not None:
            raise ValueError(f"tau_max is used only by step_policy='fixed', not {self.step_policy!r}")
        check_number("tol", self.tol, low=0.0)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("n_blocks", self.n_blocks, low=1, integer=True, allow_none=True)
        check_number("max_seconds", self.max_seconds, low=0.0, low_open=True, allow_none=True)
        make_network(self.network)  # raises on a model it cannot read
        for name in ("fit_intercept", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")  # noqa: TRY004
        effective_n_threads(self.n_threads)  # raises on 0 or a non-integer
        solver = self._solver()
        if solver == "piag" and self.n_blocks is not None:
            raise ValueError("n_blocks is used only by solver='async_bcd'")

    def _penalty(self):
        return "l1"

    def _solver(self):
        """The solver that runs: 'auto' is async_bcd in one process, piag with comm."""
        if self.solver == "auto":
            return "piag" if self.comm is not None else "async_bcd"
        return self.solver

    def _prepare(self, X, y, y_numeric):
        """X as a checked CSR matrix and y as an array (this rank's rows, with comm)."""
        # before validate_data, whose conversion of another sparse format trusts its arrays
        if not (sp.issparse(X) and X.format == "csr"):
            check_sparse_structure(X)
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32], order="C",
                             accept_large_sparse=True, y_numeric=y_numeric,
                             ensure_min_samples=0 if self.comm is not None else 1)
        if Topology(self.comm).total(X.shape[0]) == 0:
            raise ValueError("X has 0 samples on every rank; at least one is required")
        return as_kernel_csr(X, X.shape[1]), y

    # --------------------------------------------------------------- training
    def _solve_all(self, X, targets, C, starts, callback):
        """Run the solver once per column of ``targets`` (n, K), from ``starts`` (K of
        (coef, intercept), or None); set coef_ (K, d), intercept_ (K,) and the run's records."""
        solver = self._solver()
        solve = _solver_function("async_bcd_ranks" if solver == "async_bcd" and self.comm is not None else solver)
        rng = check_random_state(self.random_state)
        penalty = self._penalty()
        common = dict(loss=self._loss, C=C, penalty=penalty, fit_intercept=bool(self.fit_intercept),
                      l1_ratio=self.l1_ratio if penalty == "elasticnet" else None,
                      step_policy=self.step_policy, alpha=self.policy_alpha, tau_max=self.tau_max,
                      max_iter=self.max_iter, tol=self.tol, max_seconds=self.max_seconds)
        common["n_threads"] = self.n_threads
        if solver == "piag" or self.comm is not None:
            common["comm"] = self.comm
            common["network"] = self.network
        if solver == "async_bcd":
            common["n_blocks"] = self.n_blocks
        K, d = targets.shape[1], X.shape[1]
        coef, intercept = np.zeros((K, d)), np.zeros(K)
        n_iter, gamma_prime, delays, history = np.zeros(K, np.int32), np.zeros(K), [], []
        for k in range(K):
            coef_init, intercept_init = starts[k] if starts is not None else (None, 0.0)
            extra = {} if solver == "piag" else {"random_state": int(rng.randint(np.iinfo(np.int32).max))}
            result = solve(X, targets[:, k], callback=_for_classifier(callback, k), coef_init=coef_init,
                           intercept_init=intercept_init, **common, **extra)
            coef[k], intercept[k] = result.coef, result.intercept
            n_iter[k] = math.ceil(result.epochs)
            gamma_prime[k] = result.gamma_prime
            delays.append(np.asarray(result.delays, dtype=np.int64))
            history.extend((k, *row) for row in result.history)
            if not result.converged and self.tol > 0:
                warnings.warn(f"{solver} did not reach tol={self.tol:g} within max_iter={self.max_iter} epochs"
                              + (f" (classifier {k})" if K > 1 else "") + "; increase max_iter or tol",
                              ConvergenceWarning, stacklevel=3)
        self.coef_, self.intercept_, self.n_iter_ = coef, intercept, n_iter
        self.solver_, self.gamma_prime_, self.delays_ = solver, gamma_prime, delays
        self.objective_history_ = np.array(history, dtype=HISTORY_DTYPE)

    def _starts(self, K, d):
        """Where each of K problems starts: the fitted model with warm_start, else None."""
        if not (self.warm_start and hasattr(self, "coef_")):
            return None
        coef = np.asarray(self.coef_, dtype=np.float64).reshape(-1, d) if self.coef_.size == K * d else None
        if coef is None or coef.shape[0] != K:
            return None
        intercept = np.broadcast_to(np.asarray(self.intercept_, dtype=np.float64), (K,))
        return [(coef[k], float(intercept[k]) if self.fit_intercept else 0.0) for k in range(K)]

    # a fitted linear model's X w + b (validated as fit validates) and fitted test: the SGD
    # estimators' own; coef_ of shape (K, d) gives (n, K), the Lasso's (d,) gives (n,)
    _decision = _BaseSGD._decision
    __sklearn_is_fitted__ = _BaseSGD.__sklearn_is_fitted__

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _for_classifier(callback, k):
    """The solver's callback: the user's, with ``classifier`` (the row of coef_) in its info."""
    if callback is None:
        return None
    return lambda info: callback({**info, "classifier": k})


_SHARED_PARAMETERS = """
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.
    solver : {'auto', 'async_bcd', 'piag'}, default='auto'
        'async_bcd': asynchronous block-coordinate descent, lock-free over the threads of this
        process (:func:`dpsgd.tasks.async_bcd.async_bcd_fit`); with ``comm`` the blocks of
        features are dealt out to the ranks, which share the margins ``X w + b`` through the
        engine (:func:`dpsgd.tasks.async_bcd_ranks.async_bcd`). 'piag': proximal incremental
        aggregated gradient, one worker per MPI rank of ``comm`` (:func:`dpsgd.tasks.piag.piag`);
        in one process it is proximal gradient. 'auto': async_bcd in one process, piag with
        ``comm``.
    step_policy : {'budget', 'fixed_or_skip', 'fixed'}, default='budget'
        The delay-adaptive step of Wu et al. (2022) from the delay each update sees, with
        gamma' = h / L: 'budget' ``policy_alpha * (gamma' - the steps of the delay window)``,
        'fixed_or_skip' ``policy_alpha * gamma'`` or 0, 'fixed' ``gamma' / (tau_max + 1)``.
    policy_alpha : float in (0, 1), default=0.9
        The alpha of 'budget' and 'fixed_or_skip' (named so because ``alpha`` is the Lasso's
        regularisation in scikit-learn).
    tau_max : int, optional
        The largest delay of the run: needed by, and only by, ``step_policy='fixed'``.
    tol : float >= 0, default=1e-4
        When to stop, by the solver's rule (0: run ``max_iter`` epochs). async_bcd:
        scikit-learn saga's, the largest change of a weight over an epoch at most ``tol`` times
        the largest weight. piag: the prox-gradient mapping down to ``tol`` times its first
        value, so that from a ``warm_start`` near the optimum it runs on to ``max_iter``.
    max_iter : int, default={max_iter}
        Most epochs (passes over the data; for async_bcd, over the blocks of features).
    n_threads : int or None, default=None
        Threads of each process: None every core this process may use (with ``comm``, shared
        with the other ranks on the machine), negative counts back from that (-1 all), 0 is an
        error. async_bcd's threads update blocks; piag's split each worker's gradient pass.
        Several threads are not bit-reproducible.
    n_blocks : int, optional
        async_bcd's blocks of features (None: the solver's default); with ``comm``, at least
        one per rank.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (when the classes and features agree).
    comm : mpi4py.MPI.Comm, optional
        Fit across the ranks of ``comm`` (piag, or async_bcd): every rank calls ``fit`` with its
        own rows (collective), and all end with the same model. Call
        ``dpsgd.comm.abort_on_exception()`` in MPI scripts so that a failing rank ends the job.
    random_state : int, RandomState or None, default=None
        Seeds async_bcd's choice of blocks.
    max_seconds : float, optional
        Stop each solver run after about this many seconds.
    network : str, dict or dpsgd.comm.network.Network, optional
        With ``comm``: run as over a cluster's network, adding its latency and bandwidth to
        each exchange (``"10GbE"``, ``"1GbE"`` or the fields of
        :class:`dpsgd.comm.network.Network`). None: the exchange as it is."""

_SHARED_ATTRIBUTES = """
    n_features_in_ : int
    solver_ : str
        The solver that ran ('auto' resolved).
    objective_history_ : structured ndarray
        One row per point the solver recorded, fields ``classifier`` (the row of ``coef_``;
        0 for a single problem), ``iteration`` (updates), ``seconds``, ``objective`` (P(w, b)
        in the module docstring's scaling), ``delay`` (what the step policy saw) and ``step``.
    delays_ : list of ndarray of int64 (the Lasso: one ndarray)
        Per row of ``coef_``, each recorded update's own delay, as the solver reports them.
    gamma_prime_ : ndarray of shape (n_classifiers,)
        gamma' of each row of ``coef_``'s run: h / L for piag; 1.0 for async_bcd, whose steps
        are scales of each block's own h / L_B."""


@persist.register
class LogisticRegression(ClassifierMixin, _CompositeModel):
    __doc__ = """Logistic regression with an L1 (or L2, elastic-net) penalty by delay-adaptive
    asynchronous solvers.

    The objective is scikit-learn's :class:`sklearn.linear_model.LogisticRegression`'s,
    ``C * sum_i log(1 + exp(-y_i (x_i . w + b))) + R(w)``, with the intercept b unpenalised.
    Multi-class problems are one-vs-rest: one binary problem per class, solved one after the
    other (scikit-learn's default is the multinomial loss, so its multi-class models differ).
    Binary problems have one row of weights, for ``classes_[1]``.

    Parameters
    ----------
    penalty : {'l1', 'l2', 'elasticnet', None}, default='l1'
        R(w): ``||w||_1``, ``||w||^2 / 2``, ``l1_ratio ||w||_1 + (1 - l1_ratio) ||w||^2 / 2``
        or 0. (scikit-learn 1.8 deprecates ``penalty`` for ``l1_ratio`` alone; here it stays,
        and its default is L1.)
    C : float > 0, default=1.0
        Weight of the loss (inverse regularisation strength).
    l1_ratio : float in [0, 1], optional
        The elastic net's mix; needed by, and only used with, ``penalty='elasticnet'``.""" + \
        _SHARED_PARAMETERS.replace("{max_iter}", "100") + """

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Zeros without ``fit_intercept``.
    n_iter_ : ndarray of shape (1,) or (n_classes,)
        Epochs run for each row of ``coef_``.""" + _SHARED_ATTRIBUTES + """

    Examples
    --------
    >>> from dpsgd import LogisticRegression
    >>> from dpsgd.data import load_a9a
    >>> X, y, X_test, y_test = load_a9a()
    >>> clf = LogisticRegression(penalty="l1", C=0.005, n_threads=1, tol=1e-3, max_iter=200,
    ...                          random_state=0).fit(X, y)
    >>> int((clf.coef_ != 0).sum()) < 30, clf.score(X_test, y_test) > 0.83
    (True, True)
    """

    _loss = "log_loss"
    _saved_state = persist.SavedState(arrays=("classes_", "coef_", "intercept_", "n_iter_"),
                                      scalars=("n_features_in_",))

    def __init__(self, *, penalty="l1", C=1.0, l1_ratio=None, fit_intercept=True, solver="auto",
                 step_policy="budget", policy_alpha=0.9, tau_max=None, tol=1e-4, max_iter=100, n_threads=None,
                 n_blocks=None, warm_start=False, comm=None, random_state=None, max_seconds=None, network=None):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        super().__init__(fit_intercept=fit_intercept, solver=solver, step_policy=step_policy,
                         policy_alpha=policy_alpha, tau_max=tau_max, tol=tol, max_iter=max_iter,
                         n_threads=n_threads, n_blocks=n_blocks, warm_start=warm_start, comm=comm,
                         random_state=random_state, max_seconds=max_seconds, network=network)

    def _penalty(self):
        return self.penalty

    def _validate_params(self):
        super()._validate_params()
        check_number("C", self.C, low=0.0, low_open=True)
        check_number("l1_ratio", self.l1_ratio, low=0.0, high=1.0, allow_none=True)
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("penalty='elasticnet' needs l1_ratio, a number in [0, 1]")
        if self.penalty != "elasticnet" and self.l1_ratio is not None:
            warnings.warn(f"l1_ratio is used only with penalty='elasticnet'; penalty={self.penalty!r} "
                          "ignores it", UserWarning, stacklevel=3)

    @ends_job_on_error
    def fit(self, X, y, callback=None) -> LogisticRegression:
        """Fit the model: one run of the solver per row of ``coef_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            This rank's rows with ``comm``.
        y : array-like of shape (n_samples,)
            Class labels; with ``comm`` the classes are those of every rank together.
        callback : callable, optional
            ``callback(info)`` as the solver calls it, with ``classifier`` (the row of
            ``coef_`` being fitted) added to ``info``. async_bcd calls it after each epoch
            (``iteration``, ``epoch``, ``seconds``, ``objective``, ``coef``, ``intercept``), and
            True returned stops that run; with ``comm``, at each round of this rank, with the
            global model it pulled (a round is an epoch of this rank's blocks); piag after each of this rank's updates, with the
            engine's round report (``round``, ``seconds``, ...), and ignores what it returns.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = self._prepare(X, y, y_numeric=False)
        check_classification_targets(y)
        classes = np.unique(y)
        if self.comm is not None:  # every rank must know every class
            classes = np.unique(np.concatenate(Topology(self.comm).everyone(classes)))
        if classes.size < 2:
            raise ValueError(f"This solver needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {classes[0]!r}")
        if classes.size == 2:
            targets = np.where(y == classes[1], 1.0, -1.0).reshape(-1, 1)
        else:
            targets = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
        same_classes = np.array_equal(getattr(self, "classes_", []), classes)
        starts = self._starts(targets.shape[1], X.shape[1]) if same_classes else None
        self.classes_ = classes
        self._solve_all(X, targets, float(self.C), starts, callback)
        return self

    def decision_function(self, X) -> np.ndarray:
        """x . w + b: shape (n_samples,) for two classes (positive: ``classes_[1]``), else
        (n_samples, n_classes)."""
        scores = self._decision(X)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        """The class of each sample."""
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``: the logistic of the
        decision; one-vs-rest, each class's normalised over the classes."""
        prob = expit(self.decision_function(X))
        if prob.ndim == 1:
            return np.column_stack([1.0 - prob, prob])
        return prob / prob.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


@persist.register
class Lasso(RegressorMixin, _CompositeModel):
    __doc__ = """Linear regression with an L1 penalty by delay-adaptive asynchronous solvers.

    The objective is scikit-learn's :class:`sklearn.linear_model.Lasso`'s,
    ``||y - X w - b||^2 / (2 n_samples) + alpha ||w||_1`` (n_samples over every rank with
    ``comm``), solved as ``C * sum_i (x_i . w + b - y_i)^2 / 2 + ||w||_1`` with
    ``C = 1 / (n_samples * alpha)``: the same minimiser, objective values 1 / alpha times
    scikit-learn's (``objective_history_`` is in this scaling). Single target only.

    Parameters
    ----------
    alpha : float > 0, default=1.0
        Weight of the L1 penalty.""" + _SHARED_PARAMETERS.replace("{max_iter}", "1000") + """

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
        0.0 without ``fit_intercept``.
    n_iter_ : int
        Epochs run.""" + _SHARED_ATTRIBUTES + """

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd import Lasso
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 10))
    >>> y = X[:, 0] - 2 * X[:, 3] + 0.01 * rng.normal(size=200)
    >>> reg = Lasso(alpha=0.05, n_threads=1, random_state=0).fit(X, y)
    >>> np.flatnonzero(np.abs(reg.coef_) > 0.1).tolist()
    [0, 3]
    """

    _loss = "squared_error"
    _saved_state = persist.SavedState(arrays=("coef_", "intercept_"), scalars=("n_features_in_", "n_iter_"))

    def __init__(self, alpha=1.0, *, fit_intercept=True, solver="auto", step_policy="budget", policy_alpha=0.9,
                 tau_max=None, tol=1e-4, max_iter=1000, n_threads=None, n_blocks=None, warm_start=False,
                 comm=None, random_state=None, max_seconds=None, network=None):
        self.alpha = alpha
        super().__init__(fit_intercept=fit_intercept, solver=solver, step_policy=step_policy,
                         policy_alpha=policy_alpha, tau_max=tau_max, tol=tol, max_iter=max_iter,
                         n_threads=n_threads, n_blocks=n_blocks, warm_start=warm_start, comm=comm,
                         random_state=random_state, max_seconds=max_seconds, network=network)

    def _validate_params(self):
        super()._validate_params()
        check_number("alpha", self.alpha, low=0.0, low_open=True)

    @ends_job_on_error
    def fit(self, X, y, callback=None) -> Lasso:
        """Fit the model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            This rank's rows with ``comm``.
        y : array-like of shape (n_samples,)
        callback : callable, optional
            ``callback(info)`` as the solver calls it.

        Returns
        -------
        self
        """
        self._validate_params()
        X, y = self._prepare(X, y, y_numeric=True)
        n = Topology(self.comm).total(X.shape[0])
        targets = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        self._solve_all(X, targets, 1.0 / (n * float(self.alpha)), self._starts(1, X.shape[1]), callback)
        self.coef_, self.intercept_, self.n_iter_ = self.coef_[0], float(self.intercept_[0]), int(self.n_iter_[0])
        self.delays_ = self.delays_[0]
        return self

    def predict(self, X) -> np.ndarray:
        """x . w + b of each sample."""
        return self._decision(X).ravel()
