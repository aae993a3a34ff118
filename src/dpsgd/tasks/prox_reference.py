"""Serial proximal gradient: the deterministic reference for PIAG and Async-BCD (issue 11).

It solves the composite problem of :mod:`dpsgd._kernels.prox`,

    P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w),

with the kernels' own smooth gradient (``prox.gradient``) and proximal step (``py_prox``,
which is ``prox_step``: ``prox_{step R}(w - step * g)`` in one pass), so that PIAG with one
worker, which calls the same kernels, can be compared with it to 1e-12, and so that the
optimum P* of the benchmarks comes from a plain, documented run. One iteration of the plain
method is, in this order::

    f, g_w, g_b = gradient of f at (w, b)         # one pass over the rows (prox.gradient)
    P(w, b)     = f + R(w)                        # recorded in the history, before the step
    w_new       = prox_{step R}(w - step * g_w)   # prox.py_prox(w, step, ..., g=g_w)
    b_new       = b - step * g_b                  # the intercept is not penalised

with ``step = 1 / L`` (:func:`lipschitz`). ``accelerated=True`` runs FISTA instead (the same
step at an extrapolated point) with O'Donoghue and Candes' gradient restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from dpsgd._kernels import prox
from dpsgd._validation import check_sparse_structure

# each loss's largest second derivative in the margin (logistic: 1/4): L = C * it * ||X||_2^2
CURVATURE = {"log_loss": 0.25, "squared_error": 1.0}


def _csr(X):
    """X (scipy sparse or dense 2-D) as a checked float64 CSR matrix with one index dtype."""
    if sp.issparse(X):
        check_sparse_structure(X)
        X = sp.csr_matrix(X, dtype=np.float64)
    else:
        a = np.asarray(X)
        if a.ndim != 2 or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"X must be a scipy sparse matrix or a 2-D real array, got {a.ndim}-D {a.dtype}")
        X = sp.csr_matrix(a.astype(np.float64))
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    if not np.isfinite(X.data).all():
        raise ValueError("X holds a non-finite value")
    # the kernels take one index dtype for indices and indptr
    if X.indices.dtype != X.indptr.dtype:
        X.indices, X.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    return X


def _check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _is_real(value):
    """A real number (bool is not one here: True as C or tol is a slip)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _check_positive(name, value):
    if not _is_real(value) or not 0.0 < value < np.inf:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


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
        raise ValueError(f"y must be a 1-D array of {n_rows} real numbers (one per row of X), "
                         f"got shape {y.shape} of {y.dtype}")
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.isfinite(y).all():
        raise ValueError("y holds a non-finite value")
    if loss == "log_loss" and not np.all((y == 1.0) | (y == -1.0)):
        raise ValueError("y must be -1 or +1 for loss='log_loss' (the logistic loss takes labels in {-1, +1})")
    return y


def check_problem(y, n_rows, n_features, *, loss, C, penalty, l1_ratio, fit_intercept, max_iter, tol, callback,
                  coef_init, intercept_init):
    """The checks of the problem and its start that every composite solver makes before any
    kernel runs; returns ``(y, w0, b0)``: the labels as float64, the start's coefficients (a
    new array) and intercept."""
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
    return y, w, float(intercept_init)


def lipschitz(X, loss="log_loss", C=1.0, n_iter=100, seed=0, *, fit_intercept=False, tol=1e-12,
              upper_bound=False) -> float:
    """Lipschitz constant L of the gradient of ``f = C * sum_i loss_i``.

    ``L = C * ||X||_2^2 / 4`` for the logistic loss (its second derivative is at most 1/4) and
    ``C * ||X||_2^2`` for the squared loss, with ``||X||_2^2`` the largest eigenvalue of
    ``X^T X``, by power iteration.

    Parameters
    ----------
    X : scipy sparse matrix (CSR, or any format scipy converts) or 2-D array, (n_rows, n_features)
    loss : {"log_loss", "squared_error"}
    C : float > 0
        The loss's weight, as in :func:`dpsgd._kernels.prox.objective`.
    n_iter : int >= 1
        Most power iterations.
    seed : int >= 0
        Seed of the random start vector (its absolute value: see ``upper_bound``).
    fit_intercept : bool
        L of the gradient in ``(w, b)``: the norm of ``[X, 1]`` instead of ``X``.
    tol : float > 0
        Stop once the Rayleigh quotient changes by less than ``tol`` relative.
    upper_bound : bool
        Power iteration's Rayleigh quotient never exceeds ``||X||_2^2``: it converges from
        below, so a step of 1 / L may be a hair too long. With ``upper_bound=True`` the result
        is a certified upper bound instead: the smallest of ``||X||_F^2``,
        ``||X||_1 ||X||_inf`` and, when X has no negative entry, the Collatz-Wielandt bound
        ``max_j (X^T X v)_j / v_j`` of the (positive) last iterate v: for such X its relative
        excess is about the square root of the Rayleigh quotient's error (the quotient converges
        twice as fast as the vector), 1e-7 after the default stopping rule.

    Returns
    -------
    float
        L (0.0 when X is all zeros and there is no intercept).
    """
    _check_choice("loss", loss, CURVATURE)
    _check_positive("C", C)
    _check_count("n_iter", n_iter)
    _check_count("seed", seed, 0)
    _check_positive("tol", tol)
    X = _csr(X)
    if fit_intercept:
        X = sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    return C * CURVATURE[loss] * _squared_norm(X, n_iter, seed, tol, upper_bound)


def _squared_norm(X, n_iter, seed, tol, upper_bound, total=None):
    """||X||_2^2 (see lipschitz); ``total`` sums a vector over the ranks when X is one rank's
    rows of a matrix split by rows (X^T X is the sum of the ranks' X_r^T X_r)."""
    XT = X.T.tocsr()
    # a positive start: it keeps the iterates positive for nonnegative X (Collatz-Wielandt)
    v = np.abs(np.random.default_rng(seed).normal(size=X.shape[1])) + 1e-3
    v /= np.linalg.norm(v)
    theta = 0.0
    for _ in range(n_iter):
        Av = XT @ (X @ v)
        if total is not None:
            Av = total(Av)
        new = float(v @ Av)  # the Rayleigh quotient of the unit vector v
        norm = np.linalg.norm(Av)
        if norm == 0.0:  # X v = 0 for a positive v: X is zero (or v hit its null space)
            break
        v = Av / norm
        done = abs(new - theta) <= tol * new
        theta = new
        if done:
            break
    if not upper_bound:
        return theta
    abs_X = abs(X)
    bounds = [float(X.data @ X.data),
              float(abs_X.sum(axis=0).max()) * float(abs_X.sum(axis=1).max())]
    if X.nnz == 0 or X.data.min() >= 0.0:
        # X^T X is then entrywise nonnegative and, for positive v, its spectral radius is at most
        # max_j (X^T X v)_j / v_j; coordinates with v_j = 0 belong to zero columns (their rows of
        # X^T X are zero, a block of eigenvalue 0) and are left out
        Av = XT @ (X @ v)
        inside = v > 0.0
        if inside.any():
            bounds.append(float((Av[inside] / v[inside]).max()))
    # never below the power estimate, which is a lower bound; rounding could put it a hair above
    return max(min(bounds), theta)


@dataclass
class ProxGradientResult:
    """What :func:`proximal_gradient` found.

    Attributes
    ----------
    coef : ndarray of shape (n_features,)
    intercept : float
        0.0 unless the intercept was fitted.
    objective : float
        P(coef, intercept).
    history : list of (int, float)
        ``(k, P(w_k, b_k))`` for every iterate ``k = 0 .. n_iter``; the last is the result.
    n_iter : int
        Proximal steps taken (the result is iterate ``n_iter``).
    converged : bool
        Whether the optimality measure fell to ``tol`` (else ``max_iter`` or the callback ended it).
    optimality : float
        The last prox-gradient mapping's norm (see :func:`proximal_gradient`).
    step : float
        The step used (1 / L unless given).
    """

    coef: np.ndarray
    intercept: float
    objective: float
    history: list = field(repr=False)
    n_iter: int
    converged: bool
    optimality: float
    step: float


def proximal_gradient(X, y, *, loss="log_loss", C=1.0, penalty="l1", l1_ratio=None, fit_intercept=False,
                      step=None, max_iter=10_000, tol=1e-8, accelerated=False, callback=None,
                      coef_init=None, intercept_init=0.0) -> ProxGradientResult:
    """Minimise ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` by proximal gradient.

    The plain method (module docstring for the order of operations) is a descent method at
    ``step <= 1 / L``: ``P(x_{k+1}) <= P(x_k) - (1 / step - L / 2) ||x_{k+1} - x_k||^2``, so its
    history never increases. FISTA (``accelerated=True``) takes the same step from
    ``z_k = x_k + (t_{k-1} - 1) / t_k (x_k - x_{k-1})``; its momentum is reset whenever the step
    points back against the last move, ``(z_k - x_{k+1}) . (x_{k+1} - x_k) > 0`` (O'Donoghue and
    Candes' gradient restart), which keeps its fast rate and removes most of its ripples.

    The stopping rule is first-order optimality: the prox-gradient mapping
    ``G = (z - prox_{step R}(z - step * grad f(z))) / step``, at the point z the step was taken
    from (x_k for the plain method), is zero exactly at a minimiser; the run stops once
    ``||G|| <= tol * ||G_0||``, G_0 the mapping at the start, which makes ``tol`` free of the
    scale of C and of X. Every iteration checks it before stepping, so the result is the
    iterate whose mapping passed (plain method; FISTA's passed at its extrapolated point), and
    ``max_iter`` steps cost ``max_iter + 1`` gradient passes.

    Parameters
    ----------
    X : scipy sparse matrix or 2-D array, (n_rows, n_features)
    y : array of shape (n_rows,)
        Labels in {-1, +1} for ``loss="log_loss"``, real values for ``"squared_error"``.
    loss : {"log_loss", "squared_error"}
    C : float > 0
        The loss's weight; R has weight 1 (scikit-learn's ``LogisticRegression`` scaling).
    penalty : {"l1", "l2", "elasticnet", None}
    l1_ratio : float in [0, 1], optional
        The elastic net's mix (needed for ``penalty="elasticnet"``).
    fit_intercept : bool
        Fit an unpenalised intercept b (L is then the one of ``[X, 1]``).
    step : float > 0, optional
        The step; ``1 / lipschitz(X, loss, C, fit_intercept=fit_intercept)`` when None.
    max_iter : int >= 0
        Most proximal steps.
    tol : float >= 0
        Relative optimality at which to stop (0: run ``max_iter`` steps).
    accelerated : bool
        FISTA with restart instead of plain proximal gradient.
    callback : callable, optional
        ``callback(info)`` once per iterate k that does not stop the run, before its step;
        ``info`` is a dict with ``iteration`` (k), ``objective`` (P(w_k, b_k)), ``optimality``,
        ``coef`` and ``intercept`` (do not modify them). Returning True stops the run at w_k.
    coef_init : array of shape (n_features,), optional
        The start (zeros when None); intercept_init : float, the intercept's start.

    Returns
    -------
    ProxGradientResult
    """
    X = _csr(X)
    y, w, b = check_problem(y, X.shape[0], X.shape[1], loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                            fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, callback=callback,
                            coef_init=coef_init, intercept_init=intercept_init)
    if step is not None:
        _check_positive("step", step)

    if step is None:
        L = lipschitz(X, loss, C, n_iter=1000, fit_intercept=fit_intercept)
        step = 1.0 / L if L > 0.0 else 1.0  # L = 0: f is constant in what is fitted, any step is exact
    csr = (X.data, X.indices, X.indptr)
    R = {"penalty": penalty, "l1_ratio": l1_ratio}
    grad_w, margins = np.empty(X.shape[1]), np.empty(X.shape[0])

    def objective(v, c):
        return prox.objective(*csr, y, v, c, loss=loss, C=C, **R)

    def prox_gradient_step(z, c):
        """f(z) + R(z) and the plain step from (z, c): the order of the module docstring."""
        f, _, gb, _ = prox.gradient(*csr, y, z, c, loss=loss, C=C, out=grad_w, out_margins=margins)
        P = f + prox.py_penalty_value(z, **R)
        z_new = prox.py_prox(z, step, g=grad_w, **R)
        c_new = c - step * gb if fit_intercept else 0.0
        # the prox-gradient mapping's norm: (z - z_new) / step, with the intercept's part; a
        # diverging run overflows here, and the caller reports the non-finite G it gives
        with np.errstate(over="ignore", invalid="ignore"):
            G = np.sqrt(np.dot(z - z_new, z - z_new) + (c - c_new) ** 2) / step
        return P, z_new, c_new, G

    history, converged, G0, k = [], False, None, 0
    w_prev, b_prev, t = w, b, 1.0  # FISTA's previous iterate and momentum
    z, c = w, b  # where the next step is taken from: (w, b) itself unless accelerated
    P = objective(w, b) if accelerated else None
    while True:
        P_z, w_new, b_new, G = prox_gradient_step(z, c)
        if not accelerated:
            P = P_z  # the gradient pass at w_k gave P(w_k): no second pass over the rows
        if not (np.isfinite(P) and np.isfinite(G)):
            raise ValueError(f"proximal gradient diverged at iteration {k} (step {step!r}): "
                             f"the objective or the step is not finite; use a smaller step")
        history.append((k, P))
        if G0 is None:
            G0 = G
        converged = G <= tol * G0
        if converged or k == max_iter or (callback is not None and callback(
                {"iteration": k, "objective": P, "optimality": G, "coef": w, "intercept": b}) is True):
            break
        if accelerated:
            if np.dot(z - w_new, w_new - w) + (c - b_new) * (b_new - b) > 0.0:
                t = 1.0  # restart: the momentum points uphill
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_next
            w_prev, b_prev, w, b, t = w, b, w_new, b_new, t_next
            z, c = w + beta * (w - w_prev), b + beta * (b - b_prev)
            P = objective(w, b)
        else:
            w, b, z, c = w_new, b_new, w_new, b_new
        k += 1
    return ProxGradientResult(coef=w, intercept=b, objective=P, history=history, n_iter=k,
                              converged=bool(converged), optimality=float(G), step=float(step))
