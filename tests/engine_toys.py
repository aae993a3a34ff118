"""Toy problems with known optima, run by the engine in tests (tests/test_engine.py and
tests/mpi/engine_toys.py). Each is also what a minimal new task's problem looks like."""

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
