"""DPSVI across ranks: each rank fits its own documents; rank 0 reports quality.

``lda_distributed.py THREADS [TRANSFER [EXCHANGE]]``: TRANSFER 'rows' / 'dense' forces how
the server moves every round's rows ('auto': its own rule); EXCHANGE 'server' (default,
with re-seeding) or 'allreduce' (without: it refuses re-seeding)."""
import json
import sys

import numpy as np
from mpi4py import MPI

import dpsgd.comm.server
from dpsgd import LatentDirichletAllocation
from dpsgd.comm import abort_on_exception
from dpsgd.data import make_lda_corpus
from dpsgd.evaluation import match_topics

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
threads = int(sys.argv[1])
transfer = sys.argv[2] if len(sys.argv) > 2 else "auto"
exchange = sys.argv[3] if len(sys.argv) > 3 else "server"
if transfer != "auto":  # force whole-matrix or row transfers in every round
    dpsgd.comm.server.ROWS_SHARE_DENSE = 0.0 if transfer == "dense" else np.inf
X, topics, _ = make_lda_corpus(4_400, 300, 8, 80, random_state=2)
X_train, X_test = X[:4_000], X[4_000:]
mine = np.arange(rank, X_train.shape[0], size)
passes = []
lda = LatentDirichletAllocation(8, max_iter=5, batch_size=64, n_threads=threads, random_state=0, comm=comm,
                                exchange=exchange,
                                # known topics: plain online VB merges some (test_comm.py)
                                reseed_topics=exchange == "server")
lda.fit(X_train[mine], callback=lambda info: passes.append(info["pass"]) if info["end_of_pass"] else None)
everyone = comm.gather((lda.components_, lda.n_iter_, passes), root=0)
if rank == 0:
    print(json.dumps({"heldout": lda.heldout_log_likelihood(X_test), "recovery": match_topics(topics, lda.components_)[0],
                      "same_topics": bool(all(np.array_equal(e[0], everyone[0][0]) for e in everyone)),
                      "n_iter": [e[1] for e in everyone], "pass_ends": [e[2] for e in everyone],
                      "n_batch_iter": lda.n_batch_iter_, "round_stats": lda.round_stats_}))
