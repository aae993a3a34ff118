"""Async-BCD across MPI ranks: the column blocks partitioned over the ranks, run by the engine.

:func:`dpsgd.tasks.async_bcd.async_bcd_fit` runs asynchronous proximal block-coordinate
descent on the threads of one process, which share the margins ``m = X w + b`` (one per row):
a block's partial gradient needs only them. Here the ranks share them too, through the
engine's exchange (:func:`dpsgd.engine.run`, the asynchronous ``server``). The exchanged
vector is ``[m (n_rows over every rank), w (n_features), b (with the intercept), each rank's
step mass, updates, done]``. Each rank owns a contiguous range of whole blocks
(:func:`dpsgd._kernels.bcd.block_bounds`, dealt out in order, as evenly as they go) and holds
every row of those columns; rank 0 owns the intercept as well. A round of a rank pulls the
vector, runs the kernel for one local epoch of its own blocks on its threads from the pulled
margins (the other ranks' columns enter only through them), and pushes the change of the
margins, of its own weights and of b. As the margins are linear in (w, b), a change scaled by
the engine's step policy is still a change of margins that matches its change of weights: the
margins in the window stay ``X w + b`` (up to rounding), whatever interleaving of pushes
lands.

The data. As PIAG's, every rank calls :func:`async_bcd` with its own rows. The columns are
handed over once, before the rounds: rank r sends ``X_r[:, cols_q]`` to each rank q, which
stacks what it got in rank order (the global row order is the ranks' rows one after the
other), and every rank gathers every label. A rank then holds ``n_rows x its columns`` and
all the labels: the objective ``P = C sum_i loss(y_i, m_i) + R(w)`` of the global model is
computed from the margins and the weights each round pulls, with no communication.

Delays. The kernel's ``step_policy`` scales each block update for the delays between the
rank's threads, as in one process. Between ranks, a rank's block gradients read margins that
miss the other ranks' pushes since its pull, and the engine's delay policy scales each
round's change for them: with budget, the multipliers of the rounds inside any round's delay
window sum to at most 1, so that concurrent epochs add up to at most one epoch's step, as in
damped block-Jacobi (``P(x + sum_q s_q D_q) <= sum_q s_q P(x + D_q) + (1 - sum_q s_q) P(x)``
by convexity, when the ``s_q`` sum to at most 1 and each ``D_q`` descends from x). Without it
(``rank_policy="none"``) concurrent epochs of correlated columns overshoot: a Lasso on
``X = [A, A, A]``, a copy of A per rank, diverged over 3 ranks (P from 3e3 to 3e13 in 300
epochs), where budget converged. Measured on a9a's first 2,000 rows (L1, C = 0.05, no
intercept, one thread per rank; block updates until P <= (1 + 1e-4) P*, seeds 0-2, on 2 cores
shared with other work, whose scheduling sets the delays and so the scales; 41 updates an
epoch): one rank 2,337-2,911; 2 ranks with budget between them 3,727-11,996 (12 runs, median
about 8,400) with the kernel's budget and 3,686-13,148 (8 runs) with its fixed_or_skip; 3
ranks 11,138-19,365 and 7,790-20,652; 2 ranks without a policy between them 3,506-6,234,
fewer, but unsafe as above. The engine's fixed_or_skip (alpha 0.9) got there in 1 of 6 runs
of 800 epochs (31,361): it skips a round whenever the window holds more than 0.1, and with 2
ranks it holds the other's last round; a skip throws away an epoch of the rank's blocks, not
one block update as in the kernel. Hence budget between ranks whatever the kernel's adaptive
policy ('fixed' gets the engine's fixed_for_delay with the same tau_max, 'none' nothing).
The engine gives that policy the delay of the oldest read any rank still computes from
(``delay_policy(..., delay="oldest_read")``, as issue 11 asks of both algorithms): with each
push's own delay, 3 ranks did not pass tol = 1e-7 in 3,000 epochs (P 2.7e-3 relatively above
P*), with the oldest read they stopped in 2,118-2,360.

Zeros. A weight that a rank's proximal step sets to 0 lands at ``(1 - s)`` of its value
when the engine scales the round by s < 1, and every later round leaves a fraction of that:
L1's zeros would be tiny values (1e-130 on a9a), never 0. At the end, every weight that the
last proximal step of its block set to 0 is set to 0, the margins taking the change
(collective), so that the result has the support the proximal steps found.

Stopping. scikit-learn saga's rule as :func:`async_bcd_fit` has it, on the global weights: a
rank checks it on what it pulled once every rank's blocks have had an epoch's worth of steps
since its last check (each rank's step mass: the scales of its block updates, the engine's
multipliers applied); when it passes, the rank raises ``done`` and the engine stops every
rank. Or ``max_iter`` epochs (``n_blocks`` (+ 1) block updates each, over every rank) or
``max_seconds``. The ``updates`` and ``done`` counters are not steps: the engine's scaling
leaves them as they are.

One process (``comm=None``) runs the same problem with the parameters lent in place, which is
:func:`async_bcd_fit` step for step (same seed: the same iterates).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from dpsgd._kernels import bcd, prox
from dpsgd.comm import Topology
from dpsgd.comm.failure import fail_together
from dpsgd.engine import Dense, Problem, Round, run
from dpsgd.stepsize import delay_policy
from dpsgd.tasks.async_bcd import (
    Records,
    SagaRule,
    block_steps,
    check_blocks,
    check_finite,
    csc_arrays,
    default_n_blocks,
    kernel_arguments,
)
from dpsgd.tasks.composite import CompositeResult, check_arguments
from dpsgd.tasks.piag import _check_X

# the last entries of the exchanged vector are counts (updates, done), not steps: the engine's
# scaling must leave them alone
_COUNTERS = 2

# what scales the rounds for the delays between ranks (async_bcd's rank_policy)
RANK_POLICIES = ("budget", "same", "none")


class _Change(Dense):
    """A dense change whose last :data:`_COUNTERS` entries are counts (updates, stop): the step
    policy's scaling, which applies to steps, leaves them whole."""

    __slots__ = ()

    def scaled(self, factor):
        values = self.values * factor
        values[-_COUNTERS:] = self.values[-_COUNTERS:]
        return _Change(values)


class _ScaleSeen:
    """The engine's delay policy, telling ``problem`` the multiplier it gave each push (the
    records hold the steps as applied: the kernel's scales times that multiplier)."""

    def __init__(self, policy, problem):
        self.policy, self.problem = policy, problem

    @property
    def reference(self):
        return self.policy.reference

    @property
    def delay(self):
        return self.policy.delay

    def delay_scale(self, k, delay, window_scales=None):
        scale = self.policy.delay_scale(k, delay, window_scales)
        self.problem.pushed_at(scale)
        return scale


def partition_blocks(n_blocks, ranks):
    """The blocks of each rank: rank q owns blocks ``first[q]:first[q + 1]``, contiguous, the
    counts differing by at most one (more on the first ranks)."""
    q, r = divmod(n_blocks, ranks)
    counts = np.full(ranks, q, dtype=np.int64)
    counts[:r] += 1
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


class AsyncBcdProblem(Problem):
    """Async-BCD's problem for :func:`dpsgd.engine.run` (module docstring).

    Parameters
    ----------
    Xq : scipy sparse matrix of shape (n_rows, n_columns)
        Every row (over every rank) of this rank's columns ``cols``.
    y : ndarray of shape (n_rows,)
        Every label, in the same row order.
    cols : (int, int)
        This rank's column range in the whole X, of ``n_features`` columns.
    n_blocks : int
        This rank's blocks (>= 1): the whole X's blocks that fall in ``cols``.
    intercept : bool
        This rank updates the intercept (rank 0 with ``fit_intercept``).
    fit_intercept : bool
        The model has an intercept (in the exchanged vector on every rank).
    m0, w0, b0 :
        The start: margins ``X w0 + b0`` of every row, weights and intercept.
    per_epoch : int
        Block updates of a global epoch (every rank's blocks, + 1 with the intercept).
    max_updates : int
        The global budget in block updates (``max_iter`` epochs).
    kernel : dict
        :func:`dpsgd.tasks.async_bcd.kernel_arguments` less what each call sets.
    objective : dict
        ``loss``, ``C``, ``penalty`` and ``l1_ratio`` of P.
    rule : dpsgd.tasks.async_bcd.SagaRule
    seed : int
        This rank's seed: each round's kernel call draws its own from it.
    callback : callable, optional
        As :func:`async_bcd`'s.
    h : float
        For the message of a run that diverges.
    """

    def __init__(self, Xq, y, cols, n_features, n_blocks, intercept, fit_intercept, m0, w0, b0, *, rank, ranks,
                 per_epoch, max_updates, kernel, objective, rule, seed, callback=None, h=0.99):
        self.csc, self.y, self.cols = csc_arrays(Xq), y, cols
        self.n, self.d, self.fb = y.shape[0], n_features, int(bool(fit_intercept))
        self.B = self.n + self.d  # the intercept's entry
        # after the parameters: each rank's step mass (scaled with the change), the counters
        self.mass_at = self.n + self.d + self.fb
        self.updates_at, self.done_at = self.mass_at + ranks, self.mass_at + ranks + 1
        self.size = self.done_at + 1
        self.rank = rank
        self.per_round = n_blocks + int(bool(intercept))
        self.intercept = bool(intercept)
        self.kernel = {**kernel, "n_blocks": n_blocks, "n_updates": self.per_round,
                       "fit_intercept": self.intercept}
        self.per_epoch, self.max_updates = per_epoch, max_updates
        self.loss, self.C = objective["loss"], objective["C"]
        self.R = {"penalty": objective["penalty"], "l1_ratio": objective["l1_ratio"]}
        self.rule, self.callback, self.h = rule, callback, h
        self.seeds = np.random.default_rng(seed)
        self._initial = np.concatenate([m0, w0, [b0] if self.fb else [], np.zeros(ranks + _COUNTERS)])
        self.records, self.history = Records(), []
        self.last = (-1, 1.0)  # tau and scale of this rank's last update
        self.converged = False
        self.zero = np.asarray(w0[cols[0]:cols[1]]) == 0.0
        self._pending = None  # the scales of the round being pushed
        self.start = time.perf_counter()

    # ------------------------------------------------------------------ the engine's calls
    def initial(self):
        return self._initial

    def plan(self, exchange):
        if exchange.synchronous:
            raise ValueError("Async-BCD across ranks runs on the asynchronous exchange ('server'): the "
                             "ranks' changes of the shared margins add, they are not averaged")
        # enough rounds for this rank to spend the budget alone; the global count stops it
        return -(-self.max_updates // self.per_round)

    def local_steps(self, work, r, version, ticket):
        n, d = self.n, self.d
        m, w = work[:n], work[n:n + d]
        b = float(work[self.B]) if self.fb else 0.0
        updates = int(work[self.updates_at])
        if updates > 0:  # the point the other ranks' and this one's last rounds reached
            P = self._objective(m, w)
            seconds = time.perf_counter() - self.start
            check_finite(P, f"update {updates}", self.h)
            self.history.append((updates, seconds, P, *self.last))
            self.converged = self.rule.passed(w, b, work[self.mass_at:self.updates_at])
            stop = self.converged or (self.callback is not None and self.callback(
                {"iteration": updates, "epoch": updates / self.per_epoch, "seconds": seconds, "objective": P,
                 "coef": w, "intercept": b}) is True)
            if stop:  # the pulled point is the result: no step, and every rank stops
                work[self.done_at] += float(self.converged)
                self._pending = None
                return Round(updates=0, stop=True)
        c0, c1 = self.cols
        delays, taus, scales = Records.new(self.per_round)
        w_new, b_new, m_new = bcd.async_bcd(*self.csc, self.y, w[c0:c1], b, margins=m,
                                            seed=int(self.seeds.integers(2 ** 63)), delays=delays, taus=taus,
                                            scales=scales, **self.kernel)
        m[:] = m_new
        # a weight whose proximal step gave 0 is at R's kink: which weights the last step of
        # their block set to 0 (one not updated this round keeps its mark)
        moved = (w_new != w[c0:c1]) | (w_new == 0.0)
        self.zero[moved] = w_new[moved] == 0.0
        w[c0:c1] = w_new
        if self.intercept:
            work[self.B] = b_new
        work[self.mass_at + self.rank] += float(scales.sum())
        work[self.updates_at] += self.per_round
        self.records.add(delays, taus, scales, key=(updates, version))
        self.last = (int(taus[-1]), float(scales[-1]))
        self._pending = scales
        return Round(updates=self.per_round, samples=n)

    def change(self, work, pulled, version, ticket, rows):
        return _Change(work - pulled)

    def pushed_at(self, scale):
        """The engine scaled this rank's round by ``scale``: its steps were the kernel's times it."""
        if self._pending is not None:
            self._pending *= scale
            self.last = (self.last[0], float(self._pending[-1]))

    def model(self, params, version):
        n, d = self.n, self.d
        return {"coef": params[n:n + d].copy(), "intercept": float(params[self.B]) if self.fb else 0.0,
                "margins": params[:n].copy(), "mass": params[self.mass_at:self.updates_at].copy(),
                "updates": int(params[self.updates_at]), "done": bool(params[self.done_at])}

    # ------------------------------------------------------------------ helpers
    def _objective(self, m, w):
        """P of the model whose margins are ``m`` and weights ``w``: the loss of every row from
        its margin, R from the weights."""
        if self.loss == "log_loss":
            f = float(np.sum(np.logaddexp(0.0, -self.y * m)))
        else:
            f = 0.5 * float(np.sum((m - self.y) ** 2))
        return self.C * f + prox.py_penalty_value(np.ascontiguousarray(w), **self.R)


def _redistribute(X, topology, col_bounds):
    """This rank's columns of every rank's rows (collective): rank r sends ``X_r[:, cols_q]``
    to rank q, which stacks them in rank order."""
    parts = [X[:, col_bounds[q]:col_bounds[q + 1]] for q in range(topology.ranks)]
    mine = topology.all_to_all(parts)
    return sp.vstack(mine, format="csr") if len(mine) > 1 else sp.csr_matrix(mine[0])


def async_bcd(X, y, *, loss="log_loss", C=1.0, penalty="l1", l1_ratio=None, fit_intercept=True, n_blocks=None,
              step_policy="budget", alpha=0.9, h=0.99, tau_max=None, max_iter=100, tol=1e-4, comm=None,
              n_threads=None, random_state=0, callback=None, coef_init=None, intercept_init=0.0,
              max_seconds=None, rank_policy="budget", network=None) -> CompositeResult:
    """Minimise ``P(w, b) = C * sum_i loss(y_i, x_i . w + b) + R(w)`` by Async-BCD over the
    ranks of ``comm``, each with its threads (module docstring).

    Parameters
    ----------
    X : scipy sparse matrix or 2-D array
        This rank's rows (with ``comm``; every rank must have the same columns).
    y : array of shape (n_rows,)
        This rank's labels: {-1, +1} for "log_loss", real for "squared_error".
    loss, C, penalty, l1_ratio, fit_intercept, step_policy, alpha, h, tau_max, tol :
        As :func:`dpsgd.tasks.async_bcd.async_bcd_fit`; ``step_policy`` scales the steps for
        the delays between each rank's threads, and ``rank_policy`` says what scales them for
        those between ranks.
    n_blocks : int, optional
        Blocks of the whole X (None: :func:`dpsgd.tasks.async_bcd.default_n_blocks`, at least
        one per rank), dealt out to the ranks in contiguous groups; at least one per rank.
    max_iter : int >= 1
        Most epochs, ``n_blocks`` (+ 1) block updates each, over every rank.
    comm : mpi4py communicator, optional
        The ranks (collective); None: one process, which is ``async_bcd_fit``.
    n_threads : int, optional
        OpenMP threads of each rank (:meth:`dpsgd.comm.Topology.threads`: None every core the
        process may use, shared with the other ranks on the machine).
    random_state : int >= 0
        Seeds the block draws (each rank its own, :meth:`dpsgd.comm.Topology.seed`).
    callback : callable, optional
        ``callback(info)`` before each round of this rank whose pulled model has moved from
        the start (not after the last round), with that global model: ``iteration`` (block
        updates so far, over every rank), ``epoch``, ``seconds``, ``objective``, ``coef`` and
        ``intercept`` (do not modify them). Returning True stops every rank at that model. In
        one process a round is an epoch: the calls are ``async_bcd_fit``'s but the last.
    coef_init, intercept_init :
        The start (rank 0's).
    max_seconds : float, optional
        A wall-clock budget, checked before each round.
    network : optional
        With ``comm``: a network model for the exchange (:func:`dpsgd.engine.run`).
    rank_policy : {'budget', 'same', 'none'}, default='budget'
        What scales each round's change for the delays between ranks (the engine's delay
        policy, :func:`dpsgd.stepsize.delay_policy`). 'budget': budget with ``alpha`` for the
        delay-adaptive step policies, fixed_for_delay with ``tau_max`` (a bound on the rounds'
        delays too) for 'fixed', nothing for 'none'; 'same': the policy of ``step_policy``'s
        name; 'none': nothing. Module docstring, "Delays", for the measurements behind the
        default.

    Returns
    -------
    CompositeResult
        The same on every rank. ``history`` has a row per round of any rank (at the model it
        pulled, in update order) and one for the final model; ``delays``, ``taus`` and
        ``steps`` are the kernel's records of each block update, in the order of the rounds'
        reads, ``steps`` the scales as applied (the kernel's times the engine's), relative to
        each block's gamma'_B (so ``gamma_prime`` is 1.0). The delays and taus are those
        between a rank's threads; the rounds' delays between ranks are the engine's.
    """
    result, _ = _fit(X, y, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                     n_blocks=n_blocks, step_policy=step_policy, alpha=alpha, h=h, tau_max=tau_max,
                     max_iter=max_iter, tol=tol, comm=comm, n_threads=n_threads, random_state=random_state,
                     callback=callback, coef_init=coef_init, intercept_init=intercept_init,
                     max_seconds=max_seconds, rank_policy=rank_policy, network=network)
    return result


def _fit(X, y, *, comm, rank_policy, **kwargs):
    """:func:`async_bcd`, also returning the final exchanged state (the model dict of
    :meth:`AsyncBcdProblem.model`, with the margins), for tests."""
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    # the work is dpsgd's kernel on the threads Topology sized to the cores; a BLAS pool beside
    # them (block_lipschitz's eigenvalues) would spin on those cores between its calls
    with fail_together(comm), threadpool_limits(limits=1, user_api="blas"):
        return _solve(X, y, comm=comm, rank_policy=rank_policy, **kwargs)


def _solve(X, y, *, loss, C, penalty, l1_ratio, fit_intercept, n_blocks, step_policy, alpha, h, tau_max, max_iter,
           tol, comm, n_threads, random_state, callback, coef_init, intercept_init, max_seconds, rank_policy,
           network=None):
    if rank_policy not in RANK_POLICIES:
        raise ValueError(f"rank_policy must be one of {list(RANK_POLICIES)}, got {rank_policy!r}")
    X = _check_X(X)
    topology = Topology(comm)
    y, w0, b0 = check_arguments(y, X.shape[0], X.shape[1], loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                                fit_intercept=fit_intercept, step_policy=step_policy, alpha=alpha, h=h,
                                tau_max=tau_max, max_iter=max_iter, tol=tol, callback=callback,
                                coef_init=coef_init, intercept_init=intercept_init, max_seconds=max_seconds)
    ranks, rank, d = topology.ranks, topology.rank, X.shape[1]
    if n_blocks is None:
        n_blocks = min(d, max(default_n_blocks(d), ranks))
    n_blocks = check_blocks(n_blocks, d, max_iter, random_state, n_threads)
    # every rank owns whole blocks: a rank without one would only push empty rounds, which
    # the other ranks' delay policy would count (checked before any collective: every rank
    # raises it alike)
    if n_blocks < ranks:
        raise ValueError(f"Async-BCD over {ranks} ranks needs a block of features for each rank, got "
                         f"n_blocks = {n_blocks}" + (f" (X has {d} columns)" if d < ranks else "")
                         + ": use more blocks or fewer ranks")
    threads = topology.threads(n_threads)  # raises on 0 or a non-integer
    widths = topology.everyone(d)
    if len(set(widths)) != 1:
        raise ValueError(f"the ranks' X have different numbers of columns: {widths}")
    w0, b0 = topology.from_root((w0, b0))  # one start: rank 0's
    bounds = bcd.block_bounds(d, n_blocks)
    first = partition_blocks(n_blocks, ranks)
    col_bounds = bounds[first]
    Xq = _redistribute(X, topology, col_bounds)
    y = np.concatenate(topology.everyone(y))
    n = y.shape[0]
    if n == 0:
        raise ValueError("X is empty: no rank has a row")
    c0, c1 = int(col_bounds[rank]), int(col_bounds[rank + 1])
    mine = int(first[rank + 1] - first[rank])
    intercept = bool(fit_intercept) and rank == 0
    csc = csc_arrays(Xq)
    steps = block_steps(csc, n, mine, loss=loss, C=C, fit_intercept=intercept, h=h)
    # the margins of the start, X w0 + b0: each rank's columns' share, summed (as the kernel
    # computes them in one process, so that one rank is async_bcd_fit bit for bit)
    Xc = sp.csc_matrix(csc, shape=(n, c1 - c0))
    m0 = np.ascontiguousarray(Xc @ w0[c0:c1] + b0) if ranks == 1 else topology.total(Xc @ w0[c0:c1]) + b0
    per_epoch = n_blocks + bool(fit_intercept)
    max_updates = int(max_iter) * per_epoch
    kernel = kernel_arguments(mine, steps, 0, loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio,
                              fit_intercept=intercept, step_policy=step_policy, alpha=alpha, tau_max=tau_max,
                              n_threads=threads)
    # the rule waits for an epoch's worth of steps of every rank's blocks: one rank's alone
    # (the others descheduled) moves only its columns, which it may have solved for the
    # others' stale ones (3 ranks on 2 cores stopped 4e-2 above P* when the rule summed them)
    shares = np.diff(first) + np.eye(ranks, 1, dtype=np.int64).ravel() * bool(fit_intercept)
    problem = AsyncBcdProblem(Xq, y, (c0, c1), d, mine, intercept, fit_intercept, m0, w0, b0, rank=rank,
                              ranks=ranks, per_epoch=per_epoch, max_updates=max_updates, kernel=kernel,
                              objective=dict(loss=loss, C=C, penalty=penalty, l1_ratio=l1_ratio),
                              rule=SagaRule(tol, shares, step_policy, alpha, tau_max, w0, b0),
                              seed=topology.seed(random_state), callback=callback, h=h)
    policy = None  # one rank has no delay between ranks to scale for
    if ranks > 1 and rank_policy != "none" and step_policy != "none":
        name = {"fixed": "fixed_for_delay", "fixed_or_skip": "fixed_or_skip" if rank_policy == "same" else "budget",
                "budget": "budget"}[step_policy]
        # the delay between ranks is the oldest read's, as issue 11 asks of both algorithms: with
        # each push's own delay, 3 ranks on a9a's first 2,000 rows did not pass tol = 1e-7 in
        # 3,000 epochs (3 of 3 runs), where with the oldest read they stopped in 540-1,400
        policy = _ScaleSeen(delay_policy(name, alpha=alpha, tau_max=tau_max or 0, delay="oldest_read"), problem)
    problem.start = time.perf_counter()
    # in one process the parameters are lent in place: async_bcd_fit's own arithmetic
    engine = run(problem, topology, exchange="server", policy=policy, max_updates=max_updates,
                 max_seconds=max_seconds, in_place=not topology.distributed, network=network)
    model = engine.model
    if policy is not None:
        _settle_zeros(problem, topology, model, Xc)
    return _result(problem, topology, model), model


def _settle_zeros(problem, topology, model, Xc):
    """Set to 0 the weights that the last proximal step of their block set to 0 (collective).

    The engine scaled that step by s < 1, which left ``(1 - s)`` of the weight in the window,
    and every later scaled step that sets it to 0 again leaves a ``(1 - s')`` of that: L1's
    zeros would become tiny values (1e-130 on a9a), never 0. The margins take the change
    (``X_q`` times each rank's, summed), so that they stay ``X w + b``."""
    c0, c1 = problem.cols
    own = model["coef"][c0:c1]
    settle = problem.zero & (own != 0.0)
    # summed in rank order on every rank: the same margins everywhere, to the last bit
    model["margins"] += np.sum(topology.everyone(Xc @ np.where(settle, -own, 0.0)), axis=0)
    for columns in topology.everyone(np.flatnonzero(settle) + c0):
        model["coef"][columns] = 0.0


def _result(problem, topology, model):
    """Every rank's records and history merged (collective), and the final model's row."""
    everyone = topology.everyone((problem.records.parts, problem.history, problem.converged,
                                  time.perf_counter() - problem.start))
    parts = [part for rank in everyone for part in rank[0]]
    delays, taus, scales = problem.records.arrays(parts)
    history = {}
    for row in sorted((row for rank in everyone for row in rank[1]), key=lambda row: row[0]):
        history.setdefault(row[0], row)  # two ranks may pull the same point: the first row
    history = list(history.values())
    # the final model's row (its zeros settled), at the latest clock of the ranks
    updates = model["updates"]
    P = problem._objective(model["margins"], model["coef"])
    check_finite(P, f"update {updates}", problem.h)
    if history and history[-1][0] == updates:  # the stopping rank's pull: no step after it
        history[-1] = (*history[-1][:2], P, *history[-1][3:])
    else:
        history.append((updates, max(rank[3] for rank in everyone), P, int(taus[-1]) if taus.size else -1,
                        float(scales[-1]) if scales.size else 1.0))
    converged = model["done"] or any(rank[2] for rank in everyone)
    return CompositeResult(coef=model["coef"], intercept=model["intercept"], n_iter=updates,
                           epochs=updates / problem.per_epoch, converged=bool(converged), history=history,
                           delays=delays, taus=taus, steps=scales, gamma_prime=1.0)
