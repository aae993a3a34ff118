"""A new task in one file: least squares by minibatch SGD, on the engine, in one process or
under mpiexec, with either exchange.

    python examples/new_task.py
    mpiexec -n 2 python examples/new_task.py --exchange allreduce

What a task needs is a problem (what a round does to the parameters) and an estimator (what
the user calls); the engine, the exchanges, the budget, the delays and the callback shape
come with dpsgd. The linear models and LDA are built the same way
(dpsgd/tasks/linear_problem.py, lda_problem.py).
"""

import argparse

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from dpsgd import engine, persist, save_model
from dpsgd.comm import Topology, abort_on_exception, world
from dpsgd.data import contiguous_share


class LeastSquaresProblem(engine.Problem):
    """min_w mean((X w - y)^2) / 2: a round is one minibatch step on this rank's rows."""

    def __init__(self, X, y, *, batch_size, passes, learning_rate, seed):
        self.X, self.y, self.batch, self.passes, self.lr = X, y, batch_size, passes, learning_rate
        self.size = X.shape[1]
        self.rng = np.random.default_rng(seed)

    def initial(self):
        return np.zeros(self.size)

    def plan(self, exchange):
        self.per_pass = -(-self.X.shape[0] // self.batch)
        return self.passes * self.per_pass if self.X.shape[0] else 0

    def local_steps(self, w, r, version, ticket):
        pass_, i = divmod(r, self.per_pass)
        if i == 0:
            self.order = self.rng.permutation(self.X.shape[0])
        rows = self.order[i * self.batch:(i + 1) * self.batch]
        Xb, yb = self.X[rows], self.y[rows]
        w -= self.lr * Xb.T @ (Xb @ w - yb) / rows.size  # in place: the engine makes the change
        return engine.Round(updates=1, samples=rows.size, end_of_pass=i == self.per_pass - 1,
                            report={"pass": pass_ + 1})

    def model(self, params, version):
        return {"coef_": params.copy()}


@persist.register
class LeastSquaresSGD(RegressorMixin, BaseEstimator):
    """Linear regression by minibatch SGD across the ranks of ``comm`` (None: one process)."""

    _saved_state = persist.SavedState(arrays=("coef_",), scalars=("n_features_in_",))

    def __init__(self, *, learning_rate=0.05, batch_size=32, max_iter=20, comm=None, exchange="server",
                 random_state=0):
        self.learning_rate, self.batch_size, self.max_iter = learning_rate, batch_size, max_iter
        self.comm, self.exchange, self.random_state = comm, exchange, random_state

    def fit(self, X, y, callback=None):
        topology = Topology(self.comm)
        problem = LeastSquaresProblem(np.asarray(X, float), np.asarray(y, float), batch_size=self.batch_size,
                                      passes=self.max_iter, learning_rate=self.learning_rate,
                                      seed=topology.seed(self.random_state))
        result = engine.run(problem, topology, exchange=self.exchange, callback=callback)
        self.coef_, self.n_features_in_ = result.model["coef_"], X.shape[1]
        self.round_stats_ = result.stats.summary()
        return self

    def predict(self, X):
        return np.asarray(X, float) @ self.coef_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", choices=["server", "allreduce"], default="server")
    parser.add_argument("--save", default="least-squares-example.npz")
    args = parser.parse_args()
    comm = world()  # None in one process
    abort_on_exception(comm)
    topology = Topology(comm)
    rng = np.random.default_rng(0)  # the same data on every rank; each fits its own share
    X = rng.normal(size=(4000, 10))
    w_true = rng.normal(size=10)
    y = X @ w_true + 0.01 * rng.normal(size=4000)
    first, last = contiguous_share(X.shape[0], topology.rank, topology.ranks)
    model = LeastSquaresSGD(comm=comm, exchange=args.exchange).fit(X[first:last], y[first:last])
    if topology.is_root:
        error = np.abs(model.coef_ - w_true).max()
        print(f"{topology.ranks} ranks ({args.exchange}): largest coefficient error {error:.4f}, "
              f"R^2 {model.score(X, y):.4f}, delay mean {model.round_stats_['delay_mean']:.2f}")
        save_model(model, args.save)
        print(f"saved: {args.save}")


if __name__ == "__main__":
    main()
