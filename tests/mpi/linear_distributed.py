"""Distributed SGDClassifier on a9a: each rank fits its own rows; rank 0 reports the test loss."""
import json
import sys

import numpy as np
from mpi4py import MPI
from sklearn.metrics import log_loss

from dpsgd import SGDClassifier
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a
from dpsgd.stepsize import make_policy

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
seed, policy, sync_every = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
exchange = sys.argv[4] if len(sys.argv) > 4 else "server"
compression = sys.argv[5] if len(sys.argv) > 5 else None
X, y, X_test, y_test = load_a9a()
mine = np.arange(rank, X.shape[0], size)  # this rank's shard
clf = SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=10, tol=None, random_state=seed, comm=comm,
                    sync_every=sync_every, n_threads=1, exchange=exchange, compression=compression,
                    step_policy=None if policy == "none" else make_policy(policy, gamma_prime=1.0, alpha=0.9))
clf.fit(X[mine], y[mine])
coefs = comm.gather(np.concatenate([clf.coef_.ravel(), clf.intercept_]), root=0)
stats = comm.gather(clf.round_stats_, root=0)
if rank == 0:
    print(json.dumps({
        "test_log_loss": log_loss(y_test, clf.predict_proba(X_test)),
        "accuracy": clf.score(X_test, y_test),
        "same_model_on_all_ranks": bool(all(np.array_equal(c, coefs[0]) for c in coefs)),
        "delays": stats,
    }))
