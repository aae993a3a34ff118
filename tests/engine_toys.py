"""Toy problems with known optima, run by the engine in tests (tests/test_engine.py and
tests/mpi/engine_toys.py). Each is also what a minimal new task's problem looks like."""

import time

import numpy as np

from dpsgd.engine import Problem, Round, Sparse


def least_squares(n=400, d=8, seed=0):
    """A consistent least-squares system A w = b and its solution."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    return A, A @ w, w


class LeastSquares(Problem):
    """min_w mean((A w - b)^2) / 2 by SGD: each round takes ``steps`` rows of this rank's
    share in turn, for ``passes`` passes; ``sparse`` pushes the change as its non-zero entries."""

    def __init__(self, A, b, *, steps=10, passes=20, lr=0.02, sparse=False):
        self.A, self.b, self.steps, self.passes, self.lr, self.sparse = A, b, steps, passes, lr, sparse
        self.size = A.shape[1]

    def initial(self):
        return np.zeros(self.size)

    def plan(self, exchange):
        self.per_pass = -(-self.A.shape[0] // self.steps) if self.A.shape[0] else 0
        return self.passes * self.per_pass

    def local_steps(self, w, r, version, ticket):
        pass_, j = divmod(r, self.per_pass)
        rows = range(j * self.steps, min((j + 1) * self.steps, self.A.shape[0]))
        for i in rows:
            w -= self.lr * (self.A[i] @ w - self.b[i]) * self.A[i]
        return Round(updates=len(rows), samples=len(rows), end_of_pass=j == self.per_pass - 1,
                     report={"pass": pass_ + 1})

    def change(self, work, pulled, version, ticket, rows):
        delta = work - pulled
        if self.sparse:
            touched = np.flatnonzero(delta)
            return Sparse(touched, delta[touched])
        return super().change(work, pulled, version, ticket, rows)

    def model(self, params, version):
        return {"coef_": params.copy()}


class RowTargets(Problem):
    """min_W sum_i ||W_i - C_i||^2 / 2 over rows of ``C``: each round pulls ``per_round``
    rows (a fresh random choice), moves them halfway to their targets and pushes those rows."""

    def __init__(self, C, *, rounds=200, per_round=3, seed=0):
        self.C, self.n_rounds, self.per_round = C, rounds, per_round
        self.size, self.row_size = C.size, C.shape[1]
        self.rng = np.random.default_rng(seed)

    def initial(self):
        return np.zeros(self.size)

    def plan(self, exchange):
        self.in_place = exchange.in_place
        return self.n_rounds

    def rows(self, r):
        self._rows = None if self.in_place else np.sort(self.rng.choice(self.C.shape[0], self.per_round,
                                                                           replace=False))
        return self._rows

    def local_steps(self, work, r, version, ticket):
        target = self.C.ravel() if self._rows is None else self.C[self._rows]
        work += 0.5 * (target - work)
        return Round(updates=1, samples=1)

    def model(self, params, version):
        return {"W": params.reshape(self.C.shape).copy()}


class Paced(Problem):
    """Rounds that take ``seconds`` each and add 1 to every parameter: the pushed changes'
    scales add up in the parameters (nothing lost), and a slow worker's pushes land after
    many fast ones (its own delay jumps)."""

    size = 2

    def __init__(self, rounds, seconds):
        self.rounds, self.seconds = rounds, seconds

    def initial(self):
        return np.zeros(self.size)

    def plan(self, exchange):
        return self.rounds

    def local_steps(self, work, r, version, ticket):
        time.sleep(self.seconds)
        work += 1.0
        return Round()

    def model(self, params, version):
        return {"w": params.copy()}


class Recording:
    """A step policy that records what the engine gave it: (k, tau, window, scale) per push."""

    def __init__(self, policy):
        self.policy, self.records = policy, []
        self.delay = policy.delay

    def delay_scale(self, k, delay, window_scales=None):
        scale = self.policy.delay_scale(k, delay, window_scales)
        self.records.append((k, delay, window_scales, scale))
        return scale


def audit_oldest_read(records, delays, gamma_prime=1.0):
    """Check the engine's pushes (every worker's ``Recording.records`` and own delays, pooled)
    against the oldest-read contract; returns a dict of what was found (True = holds)."""
    order = np.argsort([r[0] for r in records])
    k, tau, window, scale = (np.array([records[i][j] for i in order], dtype=float) for j in range(4))
    delay = np.asarray(delays, dtype=float)[order]
    sums = np.concatenate([[0.0], np.cumsum(scale)])  # sums[j] = scales of pushes 0 .. j-1
    t, lo = k.astype(np.int64), (k - tau).astype(np.int64)
    return {
        "pushes_numbered_once": bool(np.array_equal(t, np.arange(t.size))),
        "tau_bounds_the_delay": bool(np.all(tau >= delay)),
        "tau_grows_by_at_most_one": bool(np.all(np.diff(tau) <= 1)),
        # the window sum the policy got, less the steps of the pushes since the oldest read
        "window_excess": (float(np.min(window - (sums[t] - sums[lo]))), float(np.max(window - (sums[t] - sums[lo])))),
        "largest_window_sum": float(np.max(sums[t + 1] - sums[lo])) / gamma_prime,
        "delay_jumps": float(np.max(np.diff(delay))) if delay.size > 1 else 0.0,
        "tau_above_delay": float(np.max(tau - delay)),
        "scale_sum": float(scale.sum()),
    }
