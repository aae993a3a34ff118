"""Distributed SGDClassifier with its defaults: each rank fits its contiguous share of each
data set (as `dpsgd train linear --data` reads a file) for 10 epochs; rank 0 prints the test
log-loss of each data set and seed. argv: the data sets, then the seeds."""
import json
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI
from sklearn.metrics import log_loss

from dpsgd import SGDClassifier
from dpsgd.comm import abort_on_exception
from dpsgd.data import load_a9a, load_svmlight, make_sparse_classification

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
names, seeds = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")]


def load(name):
    if name == "a9a":
        return load_a9a()
    if name == "rcv1-like":
        X, y, _ = make_sparse_classification(30_000, 20_000, 75, random_state=0)
        return X[:24_000], y[:24_000], X[24_000:], y[24_000:]
    folder = Path(name)  # the agaricus folder of the shared data
    X, y = load_svmlight(folder / "agaricus.txt.train", n_features=127)
    X_test, y_test = load_svmlight(folder / "agaricus.txt.test", n_features=127)
    return X, y, X_test, y_test


results = {}
for name in names:
    X, y, X_test, y_test = load(name)
    first, last = np.linspace(0, X.shape[0], size + 1).round().astype(int)[rank:rank + 2]
    losses = []
    for seed in seeds:
        clf = SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=10, tol=None, n_threads=1, random_state=seed,
                            comm=comm).fit(X[first:last], y[first:last])
        losses.append(log_loss(y_test, clf.predict_proba(X_test)))
    results[name] = losses
if rank == 0:
    print(json.dumps(results))
