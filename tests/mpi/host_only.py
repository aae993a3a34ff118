"""Rank 0 hosts the window and does no work (it passes no data); the other ranks train.

``host_only.py TASK [SEEDS]``: TASK 'linear' or 'lda'; SEEDS, comma-separated (default 0),
one fit each in this one job; rank 0 prints the quality of each."""
import json
import sys

import numpy as np
from mpi4py import MPI
from sklearn.metrics import log_loss

from dpsgd import LatentDirichletAllocation, SGDClassifier
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a, make_lda_corpus
from dpsgd.stepsize import make_policy

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
seeds = [int(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0]
if sys.argv[1] == "linear":
    X, y, X_test, y_test = load_a9a()
else:
    X, _, _ = make_lda_corpus(3_000, 300, 5, 60, random_state=0)
    X_train, X_test = X[:2_700], X[2_700:]
qualities, pushes, same = [], [], True
for seed in seeds:
    if sys.argv[1] == "linear":
        mine = np.arange(rank - 1, X.shape[0], size - 1) if rank else np.arange(0)
        # 3 processes on a 2-core machine (the idle host spins in MPI): the delay-adaptive policy
        # keeps a descheduled worker's stale pushes small
        model = SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=10, tol=None, sync_every=1024, n_threads=1,
                              random_state=seed, comm=comm,
                              step_policy=make_policy("budget", gamma_prime=1.0, alpha=0.9))
        model.fit(X[mine], y[mine])
        quality = float(log_loss(y_test, model.predict_proba(X_test)))
        params = model.coef_
    else:
        mine = X_train[rank - 1::size - 1] if rank else X_train[:0]
        model = LatentDirichletAllocation(5, max_iter=5, n_threads=1, random_state=seed, comm=comm).fit(mine)
        quality = model.heldout_log_likelihood(X_test)
        params = model.components_
    everything = comm.gather((model.round_stats_["pushes"], params), root=0)
    if rank == 0:
        qualities.append(quality)
        pushes = [p + e[0] for p, e in zip(pushes or [0] * size, everything)]
        same = same and all(np.array_equal(e[1], everything[0][1]) for e in everything)
if rank == 0:
    print(json.dumps({"pushes": pushes, "quality": qualities, "same_model": bool(same)}))
