"""LogisticRegression across 2 real ranks with and without a network model of 10 ms a message:
``logistic_network.py EPOCHS``. Rank 0 prints each fit's seconds, its updates and objective."""
import json
import sys
import time

import numpy as np
from mpi4py import MPI

from dpsgd import LogisticRegression
from dpsgd._kernels import prox
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
epochs = int(sys.argv[1])
X, y, _, _ = load_a9a()
X, y = X[:2000].tocsr(), np.where(y[:2000] > 0, 1.0, -1.0)
mine = slice(rank, None, size)
found = {}
for name, network in (("plain", None), ("network", "latency=0.01,bandwidth=1e9")):
    comm.Barrier()
    tic = time.perf_counter()
    clf = LogisticRegression(C=0.05, solver="piag", fit_intercept=False, max_iter=epochs, tol=0.0, comm=comm,
                             network=network).fit(X[mine], y[mine])
    seconds = time.perf_counter() - tic
    P = prox.objective(X.data, X.indices, X.indptr, y, clf.coef_[0], 0.0, C=0.05, penalty="l1")
    found[name] = {"seconds": seconds, "updates": int(clf.n_iter_[0]), "objective": P}
if rank == 0:
    print(json.dumps(found))
