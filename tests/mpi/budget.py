"""A global budget (updates or seconds) shared through the window stops every rank."""
import json
import sys
import time

import numpy as np
from mpi4py import MPI

from dpsgd import LatentDirichletAllocation, SGDClassifier
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a, make_lda_corpus

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
task, kind, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
budget = {"max_updates": int(limit)} if kind == "updates" else {"max_seconds": limit}
if task == "lda":
    X, _, _ = make_lda_corpus(3_000, 300, 5, 60, random_state=0)
    model = LatentDirichletAllocation(5, max_iter=10_000, batch_size=32, n_threads=1, random_state=0,
                                      comm=comm, **budget)
    data = (X[rank::size],)
else:
    X, y, _, _ = load_a9a()
    model = SGDClassifier(loss="log_loss", max_iter=10_000, tol=None, sync_every=256, n_threads=1,
                          random_state=0, comm=comm, **budget)
    data = (X[rank::size], y[rank::size])
comm.Barrier()
tic = time.perf_counter()
model.fit(*data)
seconds = time.perf_counter() - tic
params = model.components_ if task == "lda" else model.coef_
steps = model.n_batch_iter_ - 1 if task == "lda" else model.t_ - 1
everything = comm.gather((seconds, params.copy(), steps, model.n_iter_), root=0)
if rank == 0:
    print(json.dumps({"seconds": [e[0] for e in everything], "steps": [e[2] for e in everything],
                      "passes": [e[3] for e in everything],
                      "same_model": bool(all(np.array_equal(e[1], everything[0][1]) for e in everything))}))
