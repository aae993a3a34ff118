"""Async-BCD with delay-adaptive steps: the driver of :mod:`dpsgd._kernels.bcd` (issue 11).

Wu, Magnusson, Feyzmahdavian and Johansson (ICML 2022) run asynchronous proximal
block-coordinate descent on ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` with steps
that adapt to the delays that happen instead of the worst case. The kernel does the work
(OpenMP threads on shared margins, the step policy inside, the intercept as a block of its
own); this module checks the input, computes each block's gamma' = h / L_B
(:func:`dpsgd._kernels.bcd.block_lipschitz`), and calls the kernel one epoch at a time,
handing it back the margins it returned (no ``X w + b`` recomputed), so that it can record
the objective, stop by scikit-learn's rule, call the callback and honour a time budget
between epochs. An epoch is ``n_blocks`` (+ 1 with the intercept) block updates over all
threads: one pass over the columns in expectation.

    result = async_bcd_fit(X, y, C=0.005, penalty="l1", n_threads=2)
    result.coef, result.intercept, result.history

The kernel's docstring has the step policies, the delay they see (the age of the oldest
read in flight) and why the window rule holds.
"""

from __future__ import annotations

import numbers
import time
from collections import deque

import numpy as np
import scipy.sparse as sp

from dpsgd._kernels import bcd, prox
from dpsgd._threads import effective_n_threads
from dpsgd.tasks.composite import MAX_RECORDED, CompositeResult, check_arguments
from dpsgd.tasks.prox_reference import _check_count, _csr


def default_n_blocks(n_features):
    """Blocks of about 3 columns (n_features // 3, at least 1).

    Measured (2026-12, one thread, budget, h = 0.99, L1 with the intercept, epochs to
    P <= (1 + 1e-4) P*, median of 3 seeds; block updates counted, not timed): a9a (123 columns,
    C = 0.005) 176 epochs at 1 column a block, 184 at 3, 184 at 4, 178 at 8, 256 at 15;
    the RCV1-like set of bench/rcv1like.py at 5% of its rows (10,000 x 47,236, C = 1) 32 at 1
    column, 34 at 3, 50 at 8, 56 at 32. An epoch touches every non-zero of X once whatever the
    blocks, so epochs are the cost: narrow blocks do best, as a block's L_B (its spectral norm)
    grows with its width and shrinks its step. 3 columns cost about the epochs of 1 while
    tripling the work per update, over which the lock sections of a policy and the block draws
    are spread; and they leave many blocks per thread, so that threads rarely collide.
    """
    return max(1, n_features // 3)


def check_blocks(n_blocks, n_features, max_iter, random_state, n_threads):
    """The checks Async-BCD adds to :func:`dpsgd.tasks.composite.check_arguments`; returns
    ``n_blocks`` (:func:`default_n_blocks` for None)."""
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)):
        raise ValueError(f"n_threads must be an int or None, got {n_threads!r}")
    if n_blocks is None:
        n_blocks = default_n_blocks(n_features)
    _check_count("n_blocks", n_blocks)
    if n_blocks > n_features:
        raise ValueError(f"n_blocks must be in [1, n_features = {n_features}], got {n_blocks}")
    if max_iter == 0:
        raise ValueError("max_iter must be an integer >= 1, got 0")
    _check_count("random_state", random_state, 0)
    return int(n_blocks)


def csc_arrays(X):
    """The kernel's CSC arrays of a sparse X: data, row indices and column pointers, both
    index arrays of one dtype."""
    Xc = sp.csc_matrix(X)
    index = np.result_type(Xc.indices, Xc.indptr)
    return Xc.data, Xc.indices.astype(index), Xc.indptr.astype(index)


def block_steps(csc, n_rows, n_blocks, *, loss, C, fit_intercept, h):
    """gamma'_B = h / L_B of each block of the CSC arrays ``csc`` (of ``n_rows`` rows), the
    intercept's last with ``fit_intercept``."""
    L = bcd.block_lipschitz(*csc, n_rows, n_blocks, loss=loss, C=C, fit_intercept=bool(fit_intercept))
    # a column block without non-zeros (L_B = 0) has no smooth part, and any step is exact
    # for it: a huge one sets it to R's minimiser at once
    return float(h) / np.maximum(L, 1e-300)


def kernel_arguments(n_blocks, steps, n_updates, *, loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha,
                     tau_max, n_threads):
    """The keyword arguments of :func:`dpsgd._kernels.bcd.async_bcd` that stay the same from
    one call to the next."""
    return dict(n_blocks=n_blocks, steps=steps, n_updates=n_updates, loss=loss, C=C, penalty=penalty,
                l1_ratio=l1_ratio, fit_intercept=bool(fit_intercept), policy=step_policy, alpha=float(alpha),
                tau_max=tau_max if step_policy == "fixed" else None, n_threads=n_threads)


def check_finite(P, where, h):
    """Stop a run whose objective is no longer finite, with the remedy."""
    if not np.isfinite(P):
        raise ValueError(f"Async-BCD diverged in {where} (h = {h}): the objective is not finite; use a smaller h")


class SagaRule:
    """scikit-learn saga's stopping rule, checked once per epoch's worth of steps (the ``tol``
    of :func:`async_bcd_fit`).

    Parameters
    ----------
    tol : float
        0 never stops.
    per_epoch : int or array of int
        Block updates of an epoch (the intercept's included); or of each part of the blocks
        (each rank's), whose steps are then counted apart: the rule waits for an epoch's worth
        of steps in every part.
    step_policy, alpha, tau_max :
        The kernel's policy: an epoch without delays has steps of ``per_epoch`` times its
        scale for no delay.
    w, b :
        The start, the first point the rule compares against.
    """

    def __init__(self, tol, per_epoch, step_policy, alpha, tau_max, w, b):
        scale0 = {"none": 1.0, "fixed": 1.0 / ((tau_max or 0) + 1), "budget": alpha,
                  "fixed_or_skip": alpha}[step_policy]
        self.tol = float(tol)
        # the kernel rounds scales down by < 2^-52
        self.full_epoch = np.asarray(per_epoch, dtype=np.float64) * scale0 * (1.0 - 1e-9)
        self.w, self.b, self.mass = np.array(w, dtype=np.float64), float(b), np.zeros_like(self.full_epoch)

    def passed(self, w, b, mass):
        """Whether the rule stops at ``(w, b)``, reached after steps whose scales sum to
        ``mass`` since the start (relative to each block's gamma'; one sum per part with parts);
        a check that is made remembers the point for the next."""
        mass = np.array(mass, dtype=np.float64)
        if not (self.tol > 0.0 and np.all(mass - self.mass >= self.full_epoch)):
            return False
        change = max(np.max(np.abs(w - self.w), initial=0.0), abs(b - self.b))
        largest = max(np.max(np.abs(w), initial=0.0), abs(b))
        self.w, self.b, self.mass = np.array(w, dtype=np.float64), float(b), mass
        return bool(change <= self.tol * largest if largest > 0.0 else change == 0.0)


class Records:
    """The per-update records (delays, taus, scales) of the last :data:`MAX_RECORDED` updates,
    kept as the kernel calls wrote them, each call's under a key that orders them."""

    def __init__(self):
        self.parts = deque()  # (key, delays, taus, scales) of the calls kept
        self._kept = 0

    @staticmethod
    def new(n):
        """Arrays for a call of ``n`` updates (taus -1: a policy of none measures none)."""
        return np.empty(n, np.int64), np.full(n, -1, np.int64), np.empty(n)

    def add(self, delays, taus, scales, key=0):
        self.parts.append((key, delays, taus, scales))
        self._kept += len(delays)
        while self._kept - len(self.parts[0][1]) >= MAX_RECORDED:
            self._kept -= len(self.parts.popleft()[1])

    def arrays(self, parts=None):
        """delays, taus and scales of ``parts`` (this object's when None), in the order of their
        keys (a stable sort), the last :data:`MAX_RECORDED`."""
        parts = sorted(self.parts if parts is None else parts, key=lambda part: part[0])
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate([p[i] for p in parts])[-MAX_RECORDED:] for i in (1, 2, 3))


def async_bcd_fit(X, y, *, loss="log_loss", C=1.0, penalty="l1", l1_ratio=None, fit_intercept=True,
                  n_blocks=None, step_policy="budget", alpha=0.9, h=0.99, tau_max=None, max_iter=100,
                  tol=1e-4, n_threads=None, random_state=0, callback=None, coef_init=None,
                  intercept_init=0.0, max_seconds=None) -> CompositeResult:
    """Minimise ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` by Async-BCD.

    Parameters
    ----------
    X, y, loss, C, penalty, l1_ratio :
        The problem, as :func:`dpsgd.tasks.prox_reference.proximal_gradient` takes it (X sparse
        or dense, (n_rows, n_features); y in {-1, +1} for "log_loss", real for "squared_error").
    fit_intercept : bool
        Fit an unpenalised intercept, updated as a block of its own.
    n_blocks : int in [1, n_features], optional
        Contiguous column blocks (:func:`dpsgd._kernels.bcd.block_bounds`); None:
        :func:`default_n_blocks`. At most ``n_blocks`` (+ 1) threads run.
    step_policy : {"budget", "fixed_or_skip", "fixed", "none"}
        The step of an update of block B is ``gamma'_B * scale``, gamma'_B = h / L_B; the scale
        comes from the delay the kernel measures (``bcd`` module docstring): "budget"
        ``alpha (1 - window)``, "fixed_or_skip" ``alpha`` or 0, "fixed" ``1 / (tau_max + 1)``,
        "none" 1 (plain Async-BCD; one thread is then serial randomised proximal BCD).
    alpha : float
        In (0, 1) for "budget", (0, 1] for "fixed_or_skip"; the others ignore it.
    h : float in (0, 2)
        gamma'_B = h / L_B. Below 1 is what the paper's analysis covers; one thread with
        "none" descends for any h < 2.
    tau_max : int >= 0
        The delay bound of "fixed" (required there, refused elsewhere).
    max_iter : int >= 1
        Most epochs.
    tol : float >= 0
        scikit-learn saga's rule: stop when the largest change of a weight (the intercept
        included) over an epoch is at most ``tol`` times the largest weight in absolute value;
        0: never stop early. The epoch here is an epoch's worth of steps: the rule is checked
        once the scales since the last check add up to those of an epoch without delays
        (``n_blocks`` (+ 1) updates at scale 1, alpha or 1 / (tau_max + 1)), i.e. after every
        epoch with one thread, and after several when delays shrink the steps. Checked every
        epoch, the rule stopped 2-thread runs far from the optimum (relative gap 1e-2 on an a9a
        subset): an epoch in which a straggling thread's read held every scale near 0 hardly
        moves w.
    n_threads : int, optional
        OpenMP threads, with dpsgd's meaning (:func:`dpsgd._threads.effective_n_threads`:
        None all the cores this process may use, negative counts back from them).
    random_state : int >= 0
        Seeds the threads' block draws (one seed per epoch); one thread is reproducible.
    callback : callable, optional
        ``callback(info)`` after each epoch, ``info`` a dict with ``iteration`` (updates so far),
        ``epoch``, ``seconds``, ``objective``, ``coef`` and ``intercept`` (do not modify them).
        Returning True stops the run.
    coef_init : array of shape (n_features,), optional
        The start (zeros when None); intercept_init : float (0 without fit_intercept).
    max_seconds : float > 0, optional
        Stop after the first epoch that ends past this many seconds.

    Returns
    -------
    CompositeResult
        ``history`` has one row per epoch: the updates so far, the seconds, ``P(w, b)``, the
        epoch's last update's tau_hat (the delay its policy saw; -1 under "none", which
        measures none) and its scale. ``steps`` are the scales too, relative to each block's
        gamma'_B (so ``gamma_prime`` is 1.0 and the window rule reads
        ``sum(steps[t - delays[t]:t + 1]) <= gamma_prime``); ``delays``, ``taus`` and ``steps``
        keep the last :data:`MAX_RECORDED` updates (all of a smaller run), in order. The
        delays are measured within each epoch's kernel call (no read spans two calls).
    """
    X = _csr(X)
    n_rows, n_features = X.shape
    y, w, b = check_arguments(y, n_rows, n_features, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                              fit_intercept=fit_intercept, step_policy=step_policy, alpha=alpha, h=h,
                              tau_max=tau_max, max_iter=max_iter, tol=tol, callback=callback,
                              coef_init=coef_init, intercept_init=intercept_init, max_seconds=max_seconds)
    n_blocks = check_blocks(n_blocks, n_features, max_iter, random_state, n_threads)
    n_threads = effective_n_threads(n_threads)  # ValueError for 0

    csc = csc_arrays(X)
    gamma = block_steps(csc, n_rows, n_blocks, loss=loss, C=C, fit_intercept=fit_intercept, h=h)
    per_epoch = n_blocks + bool(fit_intercept)
    run = kernel_arguments(n_blocks, gamma, per_epoch, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                           fit_intercept=fit_intercept, step_policy=step_policy, alpha=alpha, tau_max=tau_max,
                           n_threads=n_threads)
    seeds = np.random.default_rng(random_state)

    def objective(w, b):
        return prox.objective(X.data, X.indices, X.indptr, y, w, b, loss=loss, C=C, penalty=penalty,
                              l1_ratio=l1_ratio)

    margins = None
    records = Records()
    rule = SagaRule(tol, per_epoch, step_policy, alpha, tau_max, w, b)
    history, converged, updates, epoch, mass = [], False, 0, 0, 0.0
    start = time.perf_counter()
    while epoch < max_iter:
        delays, taus, scales = records.new(per_epoch)
        w_new, b_new, margins = bcd.async_bcd(*csc, y, w, b, margins=margins, seed=int(seeds.integers(2 ** 63)),
                                              delays=delays, taus=taus, scales=scales, **run)
        epoch += 1
        updates += per_epoch
        records.add(delays, taus, scales)
        P = objective(w_new, b_new)
        seconds = time.perf_counter() - start
        check_finite(P, f"epoch {epoch}", h)
        history.append((updates, seconds, P, int(taus[-1]), float(scales[-1])))
        mass += float(scales.sum())
        converged = rule.passed(w_new, b_new, mass)
        w, b = w_new, b_new
        if converged or (max_seconds is not None and seconds >= max_seconds):
            break
        if callback is not None and callback({"iteration": updates, "epoch": epoch, "seconds": seconds,
                                              "objective": P, "coef": w, "intercept": b}) is True:
            break
    delays, taus, scales = records.arrays()
    return CompositeResult(coef=w, intercept=b, n_iter=updates, epochs=updates / per_epoch,
                           converged=bool(converged), history=history, delays=delays, taus=taus,
                           steps=scales, gamma_prime=1.0)
