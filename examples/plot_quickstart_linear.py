"""
Quickstart: linear models
=========================

:class:`dpsgd.SGDClassifier` (and :class:`dpsgd.SGDRegressor`) are scikit-learn's estimators
of the same names, trained by Hogwild! SGD in a compiled kernel. Here a logistic regression of
the bundled a9a, its test accuracy, its epoch-by-epoch progress through a ``callback``, and
the model saved and loaded again (``save_model`` writes NumPy arrays and JSON, no pickle).
See :doc:`/guide/linear_models`.
"""

import os
import tempfile

from dpsgd import SGDClassifier, load_model, save_model
from dpsgd.data import load_a9a

X, y, X_test, y_test = load_a9a()  # or: X, y = dpsgd.data.load_svmlight("train.svm")


def report(info):
    """Called after every epoch in one process."""
    print(f"epoch {info['pass']}: {info['samples']} samples, {info['seconds']:.3f} s")


clf = SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=5, tol=None, n_threads=None, random_state=0)
clf.fit(X, y, callback=report)
print("test accuracy:", round(clf.score(X_test, y_test), 4), "on", clf.n_threads_, "thread(s)")

path = os.path.join(tempfile.mkdtemp(), "model.npz")
save_model(clf, path)
print("loaded again:", round(load_model(path).score(X_test, y_test), 4))
