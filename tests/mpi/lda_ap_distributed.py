"""DPSVI across ranks on the AP corpus (path given); rank 0 reports the held-out likelihood."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd import LatentDirichletAllocation
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_uci_bow

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
X, _ = load_uci_bow(sys.argv[1])
order = np.random.default_rng(0).permutation(X.shape[0])
X_train, X_test = X[order[225:]], X[order[:225]]
mine = np.arange(rank, X_train.shape[0], size)
lda = LatentDirichletAllocation(20, max_iter=3, n_threads=1, random_state=0, comm=comm).fit(X_train[mine])
if rank == 0:
    print(json.dumps({"heldout": lda.heldout_log_likelihood(X_test)}))
