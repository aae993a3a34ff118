"""The benchmarks' generated data sets, made on demand and cached under bench/.cache/ (ignored by git) as .npz.

- :func:`load`: the RCV1-like problem. About 200,000 training rows x 47,236 features with ~75
  non-zeros per row (77 drawn, repeats in a row dropped), power-law feature frequencies,
  unit-norm rows and labels from a sparse true weight vector with noise
  (dpsgd.data.make_sparse_classification), plus a 20,000-row test set.
- :func:`textlike`: text-like rows (Zipf exponent 1.0, 250 non-zeros per row, 130,000
  features), where a few hot words are in most rows.
- :func:`lda_corpus`: documents drawn from LDA's model (V = 5,000, K = 20, 100 words each);
  drawing 33,000 of them takes about 9 s, which each process of a scaling run would repeat.
"""

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dpsgd.data import make_lda_corpus, make_sparse_classification

CACHE = Path(__file__).resolve().parent / ".cache"
N_TRAIN, N_TEST, N_FEATURES, NNZ_PER_ROW = 200_000, 20_000, 47_236, 77  # ~75 after repeats are dropped


def _cached(name, make):
    """(CSR matrix, vector) ``make()`` returns, saved under CACHE/name.npz the first time."""
    path = CACHE / f"{name}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as f:
            return sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"])), f["y"]
    X, y = make()
    CACHE.mkdir(exist_ok=True)
    # written aside and renamed, so that ranks starting together never read half a file
    tmp = CACHE / f"{name}.{np.random.randint(1 << 30)}.tmp.npz"
    np.savez(tmp, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), y=y)
    tmp.replace(path)
    return X, y


def load(scale=1.0):
    """(X_train, y_train, X_test, y_test) of the RCV1-like problem; ``scale`` < 1 shrinks the row counts."""
    n_train, n_test = int(N_TRAIN * scale), int(N_TEST * scale)
    X, y = _cached(f"rcv1like-{n_train}-{n_test}-{N_FEATURES}-{NNZ_PER_ROW}", lambda: make_sparse_classification(
        n_train + n_test, N_FEATURES, NNZ_PER_ROW, noise=0.1, random_state=0)[:2])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def textlike(scale=1.0):
    """(X_train, y_train, X_test, y_test) of the text-like rows: 44,000 x ``scale`` training rows, a tenth as many held out."""
    n_train = int(44_000 * scale)
    n = n_train + n_train // 10
    X, y = _cached(f"textlike-{n}", lambda: make_sparse_classification(
        n, 130_000, 250, zipf_exponent=1.0, zipf_offset=2.0, random_state=0)[:2])
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def lda_corpus(docs=33_000):
    """``docs`` documents of ``make_lda_corpus(docs, 5_000, 20, 100, random_state=0)`` (the true topics are not kept)."""
    X, _ = _cached(f"lda-{docs}-5000-20-100", lambda: (make_lda_corpus(docs, 5_000, 20, 100, random_state=0)[0],
                                                        np.zeros(0)))
    return X
