"""PIAG: proximal incremental aggregated gradient across ranks, with delay-adaptive steps.

Wu, Magnusson, Feyzmahdavian and Johansson (ICML 2022) run PIAG as a master and workers on
``min_x P(x) = sum_i f_i(x) + R(x)``, worker i holding the data shard of ``f_i``::

    MASTER: x_0; G_i <- grad f_i(x_0) for every i; g <- sum_i G_i; k <- 0
    loop: receive (grad f_i(x_s), s) from some worker i
          g <- g - G_i + grad f_i(x_s); G_i <- grad f_i(x_s); s_i <- s
          tau_k <- k - min_i s_i                   # the age of the oldest gradient in g
          gamma_k <- policy(k, tau_k, past steps)
          x_{k+1} <- prox_{gamma_k R}(x_k - gamma_k g)
          send (x_{k+1}, k + 1) to worker i;  k <- k + 1
    WORKER i: loop { receive (x, s); send (grad f_i(x), s) }

How dpsgd maps it onto one-sided communication (:mod:`dpsgd.engine`, ``exclusive``
problem). There is no master process: every rank is a worker, and the master's state lives
in the exchange's window on rank 0 (layout in :class:`PiagProblem`): x, the aggregated
gradient g, the stamp s_i of each worker's gradient in g, the update count k and a ring of
the running step sum. A worker computes ``grad f_i`` at its point (its shard, one pass over
its rows), then takes the master's step itself: holding the window's mutex it pulls the
state, adds ``G_i_new - G_i_old`` to g, sets its stamp, measures ``tau_k``, asks the policy
for ``gamma_k`` (the window sum ``sum_{t = k - tau_k}^{k-1} gamma_t`` comes from the ring),
computes ``x_{k+1}``, and pushes all of it as one accumulate; ``x_{k+1}`` is its next point,
as the master would have sent it. Only the master's step is serial (O(n_features) under the
mutex); the gradients, the work, run on all ranks at once. The workers never wait for each
other except for the mutex, and the master's loop is the paper's, step for step: the same
iterates for the same order of arrivals.

The table starts as the paper's: every worker computes ``grad f_i(x_0)`` and their sum is
g_0 (collective, before the rounds), with every stamp 0; a worker's first round sends that
gradient again (stamp 0) instead of recomputing it. With one worker every tau is 0 and the
run is serial proximal gradient (``dpsgd.tasks.prox_reference.proximal_gradient``): same
steps, same stopping rule, the same iterates up to the rounding of ``g + (G_new - G_old)``.

Delays. tau_k, the age of the oldest gradient in g, is what the policy sees: it grows by at
most one per update, so the policies' window rule holds by construction (PAPERS.md 2.4).
Each update's own delay, ``k - s`` of the gradient it brings, is kept in the statistics.

Stopping. As proximal gradient: the prox-gradient mapping ``||x_k - x_{k+1}|| / gamma_k``
(here from the aggregated gradient) falls to ``tol`` times the first step's; the step that
finds it is not applied. With several workers a stale table can pass once by chance (stopping
at the first pass, 2 ranks on a9a stopped 6e-6 above P* at tol=1e-9), so the mapping must pass
on 2 epochs of consecutive updates. Or the budget of ``max_iter`` epochs (``max_iter * workers``
updates), or ``max_seconds``.
"""

import collections
import math
import time

import numpy as np

from dpsgd._kernels import prox
from dpsgd.comm import Topology
from dpsgd.comm.failure import fail_together
from dpsgd.engine import Dense, MasterStep, Problem, Round, run
from dpsgd.stepsize import make_policy
from dpsgd.tasks.composite import (
    MAX_RECORDED,
    CompositeResult,
    check_arguments,
    check_real,
)
from dpsgd.tasks.prox_reference import CURVATURE, _check_count, _csr, _squared_norm

# the running step sum S_j = gamma_0 + ... + gamma_{j-1} is kept for the last RING updates; a
# delay window longer than that (a worker RING updates behind) gets a step of 0
RING = 4096


class PiagProblem(Problem):
    """PIAG as an engine problem (module docstring).

    The window holds, in order: x (p = n_features + fit_intercept values, the intercept
    last), g (p), the stamps of the workers' gradients in g (one per worker), k, the first
    step's prox-gradient mapping (for ``tol``), a converged flag, the count of consecutive
    updates whose mapping passed ``tol``, and the ring of step sums (:data:`RING` cells).
    """

    exclusive = True

    def __init__(self, X, y, topology, *, loss, C, penalty, l1_ratio, fit_intercept,
                 gamma_prime, max_updates, tol, x0, record_every, n_threads=1):
        self.X, self.y, self.topology, self.n_threads = X, y, topology, n_threads
        self.loss, self.C, self.R = loss, C, {"penalty": penalty, "l1_ratio": l1_ratio}
        self.fit_intercept, self.gamma_prime = fit_intercept, gamma_prime
        self.max_updates, self.tol, self.record_every = max_updates, tol, record_every
        self.d = X.shape[1]
        self.p = p = self.d + bool(fit_intercept)
        self.n, self.me = topology.ranks, topology.rank
        self.STAMPS = 2 * p
        self.K = self.STAMPS + self.n
        self.MAP0, self.DONE, self.PASSED, self.RING_AT = self.K + 1, self.K + 2, self.K + 3, self.K + 4
        self.size = self.RING_AT + RING
        self._grad_w, self._margins = np.empty(self.d), np.empty(X.shape[0])
        # the table's start: every worker's gradient at x0, summed (collective)
        self._G = self._gradient(x0)
        self._g0 = topology.total(self._G.copy())
        self._x0 = x0
        self._G_new, self._stamp = self._G, 0
        # of the steps this worker took: (k, delay, tau, step), the last MAX_RECORDED; iterates
        self.records, self.snapshots = collections.deque(maxlen=MAX_RECORDED), []
        self.start = time.perf_counter()

    def _gradient(self, x):
        """grad f_i at x: this worker's shard, one pass over its rows."""
        if self.X.shape[0] == 0:
            return np.zeros(self.p)
        b = x[self.d] if self.fit_intercept else 0.0
        _, gw, gb, _ = prox.gradient(self.X.data, self.X.indices, self.X.indptr, self.y, x[:self.d], b,
                                     loss=self.loss, C=self.C, out=self._grad_w, out_margins=self._margins,
                                     n_threads=self.n_threads)
        return np.append(gw, gb) if self.fit_intercept else gw.copy()

    def initial(self):
        params = np.zeros(self.size)
        params[:self.p], params[self.p:2 * self.p] = self._x0, self._g0
        return params

    def plan(self, exchange):
        if exchange.synchronous:
            raise ValueError("PIAG runs on an asynchronous exchange ('server'): its master's step "
                             "reads and rewrites the parameters under a mutex")
        return self.max_updates

    def working(self, pulled, version):
        point = pulled[:self.p].copy()
        self._stamp = int(pulled[self.K])
        return point

    def local_steps(self, work, r, version, ticket):
        # the first round brings the table's own gradient at x0 unless x moved before the pull
        self._G_new = self._G if (r == 0 and self._stamp == 0) else self._gradient(work)
        return Round(updates=1, samples=self.X.shape[0])

    def master_step(self, params, work, policy):
        p, d = self.p, self.d
        # another worker's step converged, or the budget is spent (another worker took the last
        # update while this one computed): take no step after it
        if params[self.DONE] or params[self.K] >= self.max_updates:
            work[:] = params[:p]
            return MasterStep(Dense(np.zeros(self.size)), step=0.0, updates=0, delay=0, tau=0, stop=True)
        x, g = params[:p], params[p:2 * p]
        stamps = params[self.STAMPS:self.K]
        k = int(params[self.K])
        dG = self._G_new - self._G
        g_new = g + dG
        old_stamp = stamps[self.me]
        stamps[self.me] = self._stamp  # (params is the engine's scratch copy)
        tau, delay = k - int(stamps.min()), k - self._stamp
        gamma = self._step(params, k, tau, policy)
        change = np.zeros(self.size)
        change[p:2 * p] = dG
        change[self.STAMPS + self.me] = self._stamp - old_stamp
        x_new, mapping = x, 0.0
        if gamma > 0.0:
            x_new = np.empty(p)
            x_new[:d] = prox.py_prox(x[:d], gamma, g=g_new[:d], **self.R)
            if self.fit_intercept:
                x_new[d] = x[d] - gamma * g_new[d]
            move = x - x_new
            # numpy's own sum, not BLAS's dot (np.linalg.norm): OpenBLAS's threads, woken by a
            # dot of 47k values on every update, spun on the cores of the other ranks and made
            # 2 ranks on 2 cores 16x slower (RCV1-like: 36 ms an update against 2.3)
            mapping = math.sqrt(float(np.sum(move * move))) / gamma
            if not np.isfinite(mapping):
                raise ValueError(f"PIAG diverged at update {k} (step {gamma!r}): the iterate is not "
                                 f"finite; use a smaller h")
        first = params[self.MAP0] if k else mapping
        passed = self.tol > 0.0 and gamma > 0.0 and mapping <= self.tol * first
        # a stale table can pass once by chance: stop after 2 epochs of passing updates (one
        # worker: the first, as proximal gradient); a skipped step (gamma 0) tells nothing
        streak = params[self.PASSED]
        if passed:
            streak += 1
        elif gamma > 0.0:
            streak = 0
        stop = bool(passed and streak >= (1 if self.n == 1 else 2 * self.n))
        change[self.PASSED] = streak - params[self.PASSED]
        if k == 0:
            change[self.MAP0] = mapping
        if stop:  # as proximal gradient: the iterate whose mapping passed is the result
            change[self.DONE] = 1.0
            x_new, gamma = x, 0.0
        else:
            change[:p] = x_new - x
            change[self.K] = 1.0
            j, j1 = self.RING_AT + k % RING, self.RING_AT + (k + 1) % RING
            change[j1] = params[j] + gamma - params[j1]  # S_{k+1} = S_k + gamma_k
        work[:] = x + change[:p]  # the next point, as the window will hold it
        self._G, self._stamp = self._G_new, k + (not stop)
        self._record(k, x_new, delay, tau, gamma, stop)
        return MasterStep(Dense(change), step=gamma, updates=0 if stop else 1, delay=delay, tau=tau, stop=stop)

    def _step(self, params, k, tau, policy):
        """gamma_k from the policy, for the delay window of tau_k updates (a window longer
        than the ring's memory counts as spent: the adaptive policies give 0 for it)."""
        if policy is None:
            return self.gamma_prime
        window = (params[self.RING_AT + k % RING] - params[self.RING_AT + (k - tau) % RING]
                  if tau < RING else math.inf)
        return policy.step(k, tau, window_sum=window)

    def _record(self, k, x_new, delay, tau, gamma, stop):
        """Keep update k's delays and step, and every record_every-th iterate (seconds since
        ``self.start``, set before the run: each rank's own clock)."""
        seconds = time.perf_counter() - self.start
        if not stop:
            self.records.append((k, delay, tau, gamma))
        if stop or (k + 1) % self.record_every == 0 or k + 1 >= self.max_updates:
            self.snapshots.append((k + (not stop), seconds, x_new.copy()))

    def model(self, params, version):
        return {"x": params[:self.p].copy(), "k": int(params[self.K]), "converged": bool(params[self.DONE])}


def _check_X(X):
    """X as checked float64 CSR; with comm a rank may hold no rows."""
    if getattr(X, "shape", (1,))[0] == 0:
        import scipy.sparse as sp

        return sp.csr_matrix(X, dtype=np.float64)
    return _csr(X)


def lipschitz(X, topology, loss, C, fit_intercept, n_iter=1000):
    """L of the gradient of the whole ``f = C sum_i loss_i`` when each rank holds ``X``, its
    rows (collective): power iteration on the sum of the ranks' ``X_r^T X_r``; in one process
    :func:`dpsgd.tasks.prox_reference.lipschitz` with its defaults."""
    import scipy.sparse as sp

    if fit_intercept:
        X = sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")
    total = topology.total if topology.distributed else None
    return C * CURVATURE[loss] * _squared_norm(X, n_iter, 0, 1e-12, False, total=total)


def piag(X, y, *, loss="log_loss", C=1.0, penalty="l1", l1_ratio=None, fit_intercept=True,
         step_policy="budget", alpha=0.9, h=0.99, tau_max=None, max_iter=100, tol=1e-4, comm=None,
         n_threads=None, step=None, callback=None, coef_init=None, intercept_init=0.0, max_seconds=None,
         history_points=50, network=None):
    """Minimise ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` by PIAG (module docstring).

    Parameters
    ----------
    X : scipy sparse matrix or 2-D array
        This rank's rows (with ``comm``; every rank must have the same columns).
    y : array of shape (n_rows,)
        Labels in {-1, +1} (``log_loss``) or real values (``squared_error``).
    loss, C, penalty, l1_ratio, fit_intercept :
        The problem, as :func:`dpsgd.tasks.prox_reference.proximal_gradient`.
    step_policy : {'budget', 'fixed_or_skip', 'fixed', 'none'}
        gamma_k from the delay tau_k (:mod:`dpsgd.stepsize`) with gamma' = h / L: 'budget'
        ``alpha (gamma' - window sum)``, 'fixed_or_skip' ``alpha gamma'`` or 0, 'fixed'
        ``gamma' / (tau_max + 1)`` (the worst-case rule), 'none' gamma' whatever the delay
        (one worker: proximal gradient).
    alpha : float in (0, 1)
    h : float in (0, 1]
        gamma' = h / L, L the Lipschitz constant of grad f (power iteration over all rows).
    tau_max : int, the delay bound of 'fixed'.
    max_iter : int
        Most epochs: ``max_iter * workers`` updates.
    tol : float
        Stop when the prox-gradient mapping falls to ``tol`` times the first step's (0: never).
    comm : mpi4py communicator, optional
        One worker per rank (collective); None: one worker.
    n_threads : int, optional
        OpenMP threads of each worker's gradient (its rows split between them): None every
        core the process may use, shared with the other ranks on the machine
        (:meth:`dpsgd.comm.Topology.threads`). One thread sums the rows in order; more sum
        them per thread, so the iterates differ by rounding.
    step : float, optional
        gamma' itself instead of h / L.
    callback : callable, optional
        ``callback(info)`` after each of this worker's updates (the engine's round info).
    coef_init, intercept_init : the start.
    max_seconds : float, optional
        A wall-clock budget.
    history_points : int
        About how many iterates to keep and evaluate P at, after the run, for ``history``.
    network : optional
        With ``comm``: a network model for the exchange (:func:`dpsgd.engine.run`).

    Returns
    -------
    CompositeResult
        The same on every rank. Its ``steps`` are gamma_k themselves.
    """
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    # the work is dpsgd's kernels on the threads Topology sized to the cores; a BLAS pool beside
    # them (numpy's dots in the power iteration) spins on those cores between its calls
    with fail_together(comm), threadpool_limits(limits=1, user_api="blas"):
        return _piag(X, y, loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha, h, tau_max, max_iter,
                     tol, comm, n_threads, step, callback, coef_init, intercept_init, max_seconds, history_points,
                     network)


def _piag(X, y, loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha, h, tau_max, max_iter, tol, comm,
          n_threads, step, callback, coef_init, intercept_init, max_seconds, history_points, network=None):
    X = _check_X(X)
    y, w0, b0 = check_arguments(y, X.shape[0], X.shape[1], loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept, step_policy=step_policy, alpha=alpha, h=h,
                                tau_max=tau_max, max_iter=max_iter, tol=tol, callback=callback,
                                coef_init=coef_init, intercept_init=intercept_init, max_seconds=max_seconds)
    if step is not None:
        check_real("step", step, 0.0, math.inf)
    _check_count("history_points", history_points)
    topology = Topology(comm)
    threads = topology.threads(n_threads)  # raises on 0 or a non-integer
    widths = topology.everyone(X.shape[1])
    if len(set(widths)) != 1:
        raise ValueError(f"the ranks' X have different numbers of columns: {widths}")
    if topology.total(X.shape[0]) == 0:
        raise ValueError("X is empty: no rank has a row")
    d = X.shape[1]
    x0 = np.append(w0, b0) if fit_intercept else w0
    if step is None:
        L = lipschitz(X, topology, loss, C, fit_intercept)
        gamma_prime = h / L if L > 0.0 else 1.0
    else:
        gamma_prime = float(step)
    policy = None  # 'none': gamma' whatever the delay
    if step_policy == "fixed":
        policy = make_policy("fixed_for_delay", gamma_prime=gamma_prime, tau_max=tau_max)
    elif step_policy != "none":
        policy = make_policy(step_policy, gamma_prime=gamma_prime, alpha=alpha)
    workers = topology.ranks
    max_updates = int(max_iter) * workers
    problem = PiagProblem(X, y, topology, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                          fit_intercept=fit_intercept, gamma_prime=gamma_prime,
                          max_updates=max_updates, tol=tol, x0=x0,
                          record_every=max(1, -(-max_updates // max(1, history_points))), n_threads=threads)
    problem.start = time.perf_counter()
    result = run(problem, topology, exchange="server", policy=policy, max_updates=max_updates,
                 max_seconds=max_seconds, callback=callback, in_place=False, network=network)
    model = result.model
    x, k = model["x"], model["k"]
    history, delays, taus, steps = _history(problem, topology, x0)
    return CompositeResult(coef=x[:d].copy(), intercept=float(x[d]) if fit_intercept else 0.0, n_iter=k,
                           epochs=k / workers, converged=model["converged"], history=history, delays=delays,
                           taus=taus, steps=steps, gamma_prime=gamma_prime)


def _history(problem, topology, x0):
    """Every worker's records merged in update order, and P at the kept iterates (collective:
    each rank evaluates its rows' f)."""
    records = sorted(r for part in topology.everyone(problem.records) for r in part)
    snaps = sorted((s for part in topology.everyone(problem.snapshots) for s in part), key=lambda s: s[0])
    snaps = [(0, 0.0, x0)] + snaps
    d, fit_intercept = problem.d, problem.fit_intercept
    f = np.zeros(len(snaps))
    X = problem.X
    if X.shape[0]:
        for i, (_, _, x) in enumerate(snaps):
            f[i] = prox.objective(X.data, X.indices, X.indptr, problem.y, x[:d], x[d] if fit_intercept else 0.0,
                                  loss=problem.loss, C=problem.C, penalty=None)
    f = topology.total(f)
    by_k = {r[0]: r for r in records}
    history = []
    for (j, t, x), fj in zip(snaps, f):
        _, _, tau, gamma = by_k.get(j - 1, (0, 0, 0, 0.0))  # the update that produced iterate j
        history.append((j, t, float(fj + prox.py_penalty_value(x[:d], **problem.R)), tau, gamma))
    return (history, np.array([r[1] for r in records], np.int64), np.array([r[2] for r in records], np.int64),
            np.array([r[3] for r in records], np.float64))
