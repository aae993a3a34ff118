"""
Quickstart: L1 models with delay-adaptive steps
===============================================

:class:`dpsgd.LogisticRegression` and :class:`dpsgd.Lasso` solve L1 (and elastic-net)
problems to high precision by the algorithms of Wu et al. (ICML 2022): asynchronous
block-coordinate descent on threads (here), and PIAG across MPI ranks. Their step sizes follow
the delays that happen. Here a sparse logistic regression of the bundled a9a, its non-zero
weights, and how its objective fell: ``objective_history_`` holds one record per logged update
(fields ``classifier``, ``iteration``, ``seconds``, ``objective``, ``delay``, ``step``). See :doc:`/guide/l1_models`.
"""

import matplotlib.pyplot as plt
from dpsgd import Lasso, LogisticRegression
from dpsgd.data import load_a9a

X, y, X_test, y_test = load_a9a()
clf = LogisticRegression(penalty="l1", C=0.005, solver="async_bcd", n_threads=1, tol=1e-3, max_iter=200,
                         random_state=0).fit(X, y)
print((clf.coef_ != 0).sum(), "of", clf.coef_.size, "weights non-zero; test accuracy",
      round(clf.score(X_test, y_test), 4))
reg = Lasso(alpha=0.01, n_threads=1).fit(X[:2000], y[:2000])  # scikit-learn's Lasso objective
print("Lasso:", (reg.coef_ != 0).sum(), "non-zero weights")

# %%
# The objective against the iterations
# ------------------------------------

history = clf.objective_history_  # a structured array: one field per column
gap = history["objective"] - history["objective"].min()
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(history["iteration"][:-1], gap[:-1])
ax.set_yscale("log")
ax.set_xlabel("iteration")
ax.set_ylabel("objective - its last value")
fig.tight_layout()
plt.show()
