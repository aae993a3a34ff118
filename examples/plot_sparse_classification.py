"""
Sparse classification against scikit-learn
==========================================

:class:`dpsgd.SGDClassifier` takes scikit-learn's parameters and runs scikit-learn's update
sequence, in a compiled kernel with lock-free threads. Here both libraries fit the same logistic
regression (log loss, L2, the ``optimal`` schedule) to two sparse data sets: the bundled a9a
(UCI Adult, 32,561 x 123) and a text-like set of 40,000 rows x 20,000 features with
power-law word frequencies (:func:`dpsgd.data.make_sparse_classification`). The timings are
those of the machine that built this page, one run each: see :doc:`/benchmarks` for measured
ones.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier as SklearnSGD
from sklearn.metrics import log_loss

from dpsgd import SGDClassifier
from dpsgd.data import load_a9a, make_sparse_classification

# %%
# The data sets
# -------------



def int32_indices(A):
    """The same CSR matrix with 32-bit indices: scikit-learn's SGD refuses 64-bit ones."""
    return sp.csr_matrix((A.data, A.indices.astype(np.int32), A.indptr.astype(np.int32)), shape=A.shape)


X, y, X_test, y_test = load_a9a()
Xs, ys, _ = make_sparse_classification(n_samples=44_000, n_features=20_000, nnz_per_row=50, random_state=0)
Xs = int32_indices(Xs)
datasets = {"a9a": (int32_indices(X), y, int32_indices(X_test), y_test),
            "text-like": (Xs[:40_000], ys[:40_000], Xs[40_000:], ys[40_000:])}

# %%
# The same model in both libraries
# --------------------------------
# Ten epochs without a stopping rule, the same ``alpha`` and seed. dpsgd uses one thread here,
# so that the comparison is of the kernels alone.

params = dict(loss="log_loss", alpha=1e-4, max_iter=10, tol=None, random_state=0)
results = {}
for name, (Xtr, ytr, Xte, yte) in datasets.items():
    for library, model in (("scikit-learn", SklearnSGD(**params)), ("dpsgd", SGDClassifier(n_threads=1, **params))):
        start = time.perf_counter()
        model.fit(Xtr, ytr)
        seconds = time.perf_counter() - start
        loss = log_loss(yte, model.predict_proba(Xte))
        results[name, library] = seconds
        print(f"{name:9} {library:12} {seconds:6.3f} s   accuracy {model.score(Xte, yte):.4f}   "
              f"test log-loss {loss:.4f}")

# %%
# Time to fit
# -----------

fig, ax = plt.subplots(figsize=(6, 3))
names = list(datasets)
for i, library in enumerate(("scikit-learn", "dpsgd")):
    ax.bar(np.arange(len(names)) + 0.4 * i, [results[n, library] for n in names], width=0.4, label=library)
ax.set_xticks(np.arange(len(names)) + 0.2, names)
ax.set_ylabel("seconds for 10 epochs")
ax.legend()
fig.tight_layout()
plt.show()
