"""What the composite solvers (PIAG, Async-BCD) return, and the record they keep of a run.

Both solve ``min_(w, b) P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` (see
:mod:`dpsgd._kernels.prox`) and hand the estimators one shape of result, so that
``LogisticRegression(solver=...)`` reads either the same way.
"""

from dataclasses import dataclass, field

import numpy as np

# the columns of CompositeResult.history, in order
HISTORY_FIELDS = ("iteration", "seconds", "objective", "delay", "step")


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
