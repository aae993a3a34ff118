"""Every rank reads its share of a svmlight file; rank 0 checks the shares against the whole file.

Any number of ranks: the shares, stacked in rank order, must be the whole file's rows."""
import json
import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from dpsgd.comm import abort_on_exception
from dpsgd.data import load_svmlight, load_svmlight_shard

abort_on_exception()
comm = MPI.COMM_WORLD
path = sys.argv[1]
X, y = load_svmlight_shard(path, comm)
shares = comm.gather((X, y), root=0)
if comm.Get_rank() == 0:
    whole_X, whole_y = load_svmlight(path)
    X_all = sp.vstack([s[0] for s in shares]).tocsr()
    print(json.dumps({"shape": list(X_all.shape), "whole_shape": list(whole_X.shape),
                      "same_rows": bool(X_all.shape == whole_X.shape and (X_all != whole_X).nnz == 0),
                      "same_labels": bool(np.array_equal(np.concatenate([s[1] for s in shares]), whole_y)),
                      "rows_per_rank": [s[0].shape[0] for s in shares], "ranks": comm.Get_size()}))
