"""The benchmarks' data: a synthetic RCV1-like problem, generated on demand and cached.

About 200,000 training rows x 47,236 features with ~75 non-zeros per row (77 drawn, repeats in a row dropped),
power-law feature frequencies, unit-norm rows and labels from a sparse true
weight vector with noise (dpsgd.data.make_sparse_classification), plus a
20,000-row test set. Cached under bench/.cache/ (ignored by git) as .npz.
"""

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dpsgd.data import make_sparse_classification

CACHE = Path(__file__).resolve().parent / ".cache"
N_TRAIN, N_TEST, N_FEATURES, NNZ_PER_ROW = 200_000, 20_000, 47_236, 77  # ~75 after repeats are dropped


def load(scale=1.0):
    """(X_train, y_train, X_test, y_test); ``scale`` < 1 shrinks the row counts."""
    n_train, n_test = int(N_TRAIN * scale), int(N_TEST * scale)
    path = CACHE / f"rcv1like-{n_train}-{n_test}-{N_FEATURES}-{NNZ_PER_ROW}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            X = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            y = f["y"]
    else:
        X, y, _ = make_sparse_classification(n_train + n_test, N_FEATURES, NNZ_PER_ROW,
                                             noise=0.1, random_state=0)
        CACHE.mkdir(exist_ok=True)
        np.savez(path, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), y=y)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]
