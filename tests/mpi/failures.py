"""One rank fails inside a distributed fit, in the way named by argv[1]; the job must end.

No ``abort_on_exception`` here: the estimators themselves must end every rank, as a user's
own script would run them."""
import sys

import numpy as np
from mpi4py import MPI

from dpsgd import LatentDirichletAllocation, SGDClassifier
from dpsgd.data import load_a9a, make_lda_corpus

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
how = sys.argv[1]
FAILING = 1


def fail(*_):
    if rank == FAILING:
        raise RuntimeError(f"rank {rank} failed on purpose")


if how in ("lda_callback", "lda_bad_input", "lda_sleep"):
    X, _, _ = make_lda_corpus(600, 200, 5, 50, random_state=0)
    X = X[rank::size]
    if how == "lda_bad_input" and rank == FAILING:
        X = X.astype(np.float64)
        X.data[0] = np.nan  # only this rank's shard is bad: the others wait in a collective
    callback = (lambda info: fail() if info["end_of_pass"] else None) if how == "lda_callback" else None
    passes = 1000 if how == "lda_sleep" else 5
    if how == "lda_sleep":  # for the Ctrl-C test: tell the parent when the ranks are training
        def callback(info):
            if rank == 0 and info["end_of_pass"] and info["pass"] == 1:
                print("training", flush=True)
    LatentDirichletAllocation(n_components=5, max_iter=passes, batch_size=16, n_threads=1, comm=comm,
                              random_state=0).fit(X, callback=callback)
else:
    X, y, _, _ = load_a9a()
    X, y = X[rank::size], y[rank::size]
    kw = {}
    if how == "linear_diverge" and rank == FAILING:
        X = X * 1e300  # only this rank's steps overflow
        kw = dict(learning_rate="constant", eta0=1.0)
    callback = fail if how == "linear_callback" else None
    SGDClassifier(loss="log_loss", max_iter=50, n_threads=1, comm=comm, sync_every=256, tol=None,
                  random_state=0, **kw).fit(X, y, callback=callback)
comm.Barrier()
print("not reached: every rank finished", flush=True)
