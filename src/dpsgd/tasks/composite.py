"""What the composite solvers (PIAG, Async-BCD) return, and the record they keep of a run.

Both solve ``min_(w, b) P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` (see
:mod:`dpsgd._kernels.prox`) and hand the estimators one shape of result, so that
``LogisticRegression(solver=...)`` reads either the same way.
"""

from dataclasses import dataclass, field

import numpy as np

from dpsgd._kernels import prox
from dpsgd.tasks.prox_reference import (
    CURVATURE,
    _check_choice,
    _check_count,
    _check_positive,
    _is_real,
)

# the columns of CompositeResult.history, in order
HISTORY_FIELDS = ("iteration", "seconds", "objective", "delay", "step")
# the step policies of both solvers: the delay-adaptive ones, the worst-case fixed step (which
# needs tau_max) and none (gamma' whatever the delay)
STEP_POLICIES = ("budget", "fixed_or_skip", "fixed", "none")
# the most per-update records (delays, taus, steps) a result keeps: the last ones
MAX_RECORDED = 1_000_000


def check_real(name, value, lo, hi, lo_open=True, hi_open=True):
    """A real number in the interval (lo, hi), each end open or closed; returns it as a float."""
    ok = _is_real(value) and (lo < value if lo_open else lo <= value) and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ValueError(f"{name} must be a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}, "
                         f"got {value!r}")
    return float(value)


def check_labels(y, n_rows, loss):
    """y as contiguous float64, one real value per row; -1 or +1 for the logistic loss."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_rows or not (np.issubdtype(y.dtype, np.floating)
                                                   or np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"y must be a 1-D array of {n_rows} real values (one per row of X), "
                         f"got shape {y.shape} of {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y holds a non-finite value")
    if loss == "log_loss" and not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError("y must be -1 or +1 for loss='log_loss' (the logistic loss)")
    return y


def check_arguments(y, n_rows, n_features, *, loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha, h,
                    tau_max, max_iter, tol, callback, coef_init, intercept_init, max_seconds):
    """The checks both solvers make before any kernel runs; returns ``(y, w0, b0)``: the labels
    as float64, the start's coefficients (a new array) and intercept."""
    _check_choice("loss", loss, CURVATURE)
    y = check_labels(y, n_rows, loss)
    _check_positive("C", C)
    if penalty is not None:
        _check_choice("penalty", penalty, [p for p in prox.PENALTIES if p is not None])
    if l1_ratio is not None:
        check_real("l1_ratio", l1_ratio, 0.0, 1.0, lo_open=False, hi_open=False)
    elif penalty == "elasticnet":
        raise ValueError("penalty='elasticnet' needs l1_ratio in [0, 1]")
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise ValueError(f"fit_intercept must be True or False, got {fit_intercept!r}")
    _check_choice("step_policy", step_policy, STEP_POLICIES)
    if step_policy == "budget":
        check_real("alpha", alpha, 0.0, 1.0)
    elif step_policy == "fixed_or_skip":
        check_real("alpha", alpha, 0.0, 1.0, hi_open=False)
    check_real("h", h, 0.0, 2.0)
    if step_policy == "fixed":
        if tau_max is None:
            raise ValueError("step_policy='fixed' needs tau_max, the largest delay it is safe for (an int >= 0)")
        _check_count("tau_max", tau_max, 0)
    elif tau_max is not None:
        raise ValueError(f"tau_max is for step_policy='fixed' only, got tau_max={tau_max!r} with "
                         f"step_policy={step_policy!r}")
    _check_count("max_iter", max_iter, 0)
    check_real("tol", tol, 0.0, np.inf, lo_open=False)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable, got {callback!r}")
    w = np.zeros(n_features) if coef_init is None else np.array(coef_init, dtype=np.float64)
    if w.shape != (n_features,) or not np.isfinite(w).all():
        raise ValueError(f"coef_init must be {n_features} finite values, got shape {w.shape}")
    if not (_is_real(intercept_init) and np.isfinite(intercept_init)) or (intercept_init != 0 and not fit_intercept):
        raise ValueError(f"intercept_init must be a finite number, and 0 without fit_intercept, "
                         f"got {intercept_init!r}")
    if max_seconds is not None:
        _check_positive("max_seconds", max_seconds)
    return y, w, float(intercept_init)


@dataclass
class CompositeResult:
    """A composite solver's result.

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
    intercept : float
        0.0 unless the intercept was fitted.
    n_iter : int
        Updates applied over every worker (PIAG: master steps; Async-BCD: block updates).
    epochs : float
        Passes over the data those updates amount to (PIAG: updates / workers; Async-BCD:
        updates / blocks).
    converged : bool
        Whether the stopping rule of ``tol`` was met (else ``max_iter`` or the budget ended it).
    history : list of tuple
        One row per recorded point, :data:`HISTORY_FIELDS`: the update count, seconds since
        the start, ``P(w, b)`` there, the delay the step policy saw at that update and the
        step it gave (the step is relative to gamma' where the solver says so).
    delays : ndarray of int64
        Each recorded update's own delay (updates applied between its read and its write).
    taus : ndarray of int64
        The delay the step policy saw at each recorded update: the age of the oldest read
        still in flight (PIAG: of the oldest gradient in the table), which bounds ``delays``
        and grows by at most one per update.
    steps : ndarray of float64
        The step of each recorded update.
    gamma_prime : float
        gamma' = h / L of the run (the window rule's bound on the steps of a delay window).
    """

    coef: np.ndarray
    intercept: float
    n_iter: int
    epochs: float
    converged: bool
    history: list = field(default_factory=list, repr=False)
    delays: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    taus: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    gamma_prime: float = 0.0
