"""DPSVI across ranks: each rank fits its own documents; rank 0 reports quality."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd import LatentDirichletAllocation
from dpsgd.comm import abort_on_exception
from dpsgd.data import make_lda_corpus
from dpsgd.evaluation import match_topics

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
threads = int(sys.argv[1])
transfer = sys.argv[2] if len(sys.argv) > 2 else "auto"
if transfer != "auto":  # force whole-matrix or row transfers in every round
    LatentDirichletAllocation._DENSE_ROWS_SHARE = 0.0 if transfer == "dense" else np.inf
X, topics, _ = make_lda_corpus(4_400, 300, 8, 80, random_state=2)
X_train, X_test = X[:4_000], X[4_000:]
mine = np.arange(rank, X_train.shape[0], size)
lda = LatentDirichletAllocation(8, max_iter=5, batch_size=64, n_threads=threads, random_state=0, comm=comm,
                                reseed_topics=True)  # known topics: plain online VB merges some (test_comm.py)
lda.fit(X_train[mine])
everyone = comm.gather(lda.components_, root=0)
if rank == 0:
    print(json.dumps({"heldout": lda.heldout_log_likelihood(X_test), "recovery": match_topics(topics, lda.components_)[0],
                      "same_topics": bool(all(np.array_equal(c, everyone[0]) for c in everyone)),
                      "n_batch_iter": lda.n_batch_iter_}))
