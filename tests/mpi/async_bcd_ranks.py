"""Async-BCD across the ranks on the first 2,000 rows of a9a with L1 (C = 0.05, as
tests/mpi/piag_ranks.py): rank r holds rows [r n / size, (r + 1) n / size); rank 0 prints, as
JSON, what every rank found, how far the final margins are from X w + b, and the history;
then what ``LogisticRegression(solver="async_bcd", comm=comm)`` found on the same ranks.

Arguments: step_policy max_iter tol fit_intercept [rank_policy [n_blocks [n_threads [seed]]]]."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd import LogisticRegression
from dpsgd._kernels import prox
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a
from dpsgd.tasks.async_bcd_ranks import _fit

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
policy, max_iter, tol, fit_intercept = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
rank_policy = sys.argv[5] if len(sys.argv) > 5 else "budget"
n_blocks = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] != "-" else None
n_threads = int(sys.argv[7]) if len(sys.argv) > 7 else 1
seed = int(sys.argv[8]) if len(sys.argv) > 8 else 0
C = 0.05
X, y, _, _ = load_a9a()
X, y = X[:2000].tocsr(), np.where(y[:2000] > 0, 1.0, -1.0)
mine = slice(rank * X.shape[0] // size, (rank + 1) * X.shape[0] // size)
res, model = _fit(X[mine], y[mine], loss="log_loss", C=C, penalty="l1", l1_ratio=None, fit_intercept=fit_intercept,
                  n_blocks=n_blocks, step_policy=policy, alpha=0.9, h=0.99, tau_max=None, max_iter=max_iter, tol=tol,
                  comm=comm, n_threads=n_threads, random_state=seed, callback=None, coef_init=None, intercept_init=0.0,
                  max_seconds=None, rank_policy=rank_policy)
P = prox.objective(X.data, X.indices, X.indptr, y, res.coef, res.intercept, C=C, penalty="l1")
drift = float(np.max(np.abs(model["margins"] - (X @ res.coef + res.intercept))))
# the estimator over the same ranks (labels -1 and 1: coef_ is for class 1, the same problem)
clf = LogisticRegression(C=C, solver="async_bcd", fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                         n_threads=n_threads, comm=comm, random_state=seed).fit(X[mine], y[mine])
P_clf = prox.objective(X.data, X.indices, X.indptr, y, clf.coef_[0], float(clf.intercept_[0]), C=C, penalty="l1")
found = comm.gather({"objective": P, "coef": res.coef.tolist(), "intercept": res.intercept, "n_iter": res.n_iter,
                     "converged": res.converged, "drift": drift, "history": res.history, "estimator": P_clf,
                     "estimator_coef": clf.coef_[0].tolist(), "estimator_solver": clf.solver_}, root=0)
if rank == 0:
    print(json.dumps({"ranks": found, "steps": len(res.steps)}))
