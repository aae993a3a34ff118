"""PIAG across the ranks on the first 2,000 rows of a9a with L1 (C = 0.05, no intercept: 12%
of the weights are non-zero): each rank holds every size-th row; rank 0 prints, as JSON, what
every rank found and the run's delays and steps, for tests/test_piag.py."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd._kernels import prox
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a
from dpsgd.tasks.piag import piag

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
policy, max_iter, tol, alpha = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
C = 0.05
X, y, _, _ = load_a9a()
X, y = X[:2000].tocsr(), np.where(y[:2000] > 0, 1.0, -1.0)
mine = slice(rank, None, size)
res = piag(X[mine], y[mine], C=C, penalty="l1", fit_intercept=False, step_policy=policy, alpha=alpha,
           tau_max=2 * size if policy == "fixed" else None,
           max_iter=max_iter, tol=tol, comm=comm)
P = prox.objective(X.data, X.indices, X.indptr, y, res.coef, 0.0, C=C, penalty="l1")
found = comm.gather({"objective": P, "coef": res.coef.tolist(), "n_iter": res.n_iter,
                     "converged": res.converged}, root=0)
if rank == 0:
    print(json.dumps({"ranks": found, "delays": res.delays.tolist(), "taus": res.taus.tolist(),
                      "steps": res.steps.tolist(), "gamma_prime": res.gamma_prime, "history": res.history}))
