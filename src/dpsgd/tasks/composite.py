"""What the composite solvers (PIAG, Async-BCD) return, and the record they keep of a run.

Both solve ``min_(w, b) P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` (see
:mod:`dpsgd._kernels.prox`) and hand the estimators one shape of result, so that
``LogisticRegression(solver=...)`` reads either the same way.
"""

from dataclasses import dataclass, field

import numpy as np

from dpsgd.tasks.prox_reference import _check_choice, _check_count, _check_positive, check_problem, check_real

# the columns of CompositeResult.history, in order
HISTORY_FIELDS = ("iteration", "seconds", "objective", "delay", "step")
# the step policies of both solvers: the delay-adaptive ones, the worst-case fixed step (which
# needs tau_max) and none (gamma' whatever the delay)
STEP_POLICIES = ("budget", "fixed_or_skip", "fixed", "none")
# the most per-update records (delays, taus, steps) a result keeps: the last ones
MAX_RECORDED = 1_000_000


def check_arguments(y, n_rows, n_features, *, loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha, h,
                    tau_max, max_iter, tol, callback, coef_init, intercept_init, max_seconds):
    """The checks both solvers make before any kernel runs (the problem's and the start's:
    :func:`dpsgd.tasks.prox_reference.check_problem`; then the step policy's); returns
    ``(y, w0, b0)``: the labels as float64, the start's coefficients (a new array) and
    intercept."""
    y, w, b = check_problem(y, n_rows, n_features, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, callback=callback,
                            coef_init=coef_init, intercept_init=intercept_init)
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
    if max_seconds is not None:
        _check_positive("max_seconds", max_seconds)
    return y, w, b


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
