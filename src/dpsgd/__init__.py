"""dpsgd: lock-free parallel and asynchronous distributed stochastic gradient methods.

Inside a process, OpenMP threads apply Hogwild! updates to one shared parameter
buffer in Cython kernels that hold no GIL.

The estimators are imported on first use (``dpsgd.SGDClassifier``, ``from dpsgd import
SGDClassifier``), so that importing a lower module (``dpsgd.persist``, ``dpsgd.data``)
does not import every task.
"""

from typing import TYPE_CHECKING

from dpsgd._threads import effective_n_threads, openmp_enabled
from dpsgd._version import __version__
from dpsgd.persist import load_model, save_model

if TYPE_CHECKING:
    from dpsgd.tasks.a2c import A2C, evaluate_policy
    from dpsgd.tasks.lda import LatentDirichletAllocation
    from dpsgd.tasks.linear import SGDClassifier, SGDRegressor
    from dpsgd.tasks.logistic import Lasso, LogisticRegression

# public name -> the module that defines it, imported by __getattr__ on first use
_LAZY = {
    "A2C": "dpsgd.tasks.a2c",
    "LatentDirichletAllocation": "dpsgd.tasks.lda",
    "Lasso": "dpsgd.tasks.logistic",
    "LogisticRegression": "dpsgd.tasks.logistic",
    "SGDClassifier": "dpsgd.tasks.linear",
    "SGDRegressor": "dpsgd.tasks.linear",
    "evaluate_policy": "dpsgd.tasks.a2c",
}

__all__ = [
    "A2C",
    "LatentDirichletAllocation",
    "Lasso",
    "LogisticRegression",
    "SGDClassifier",
    "SGDRegressor",
    "effective_n_threads",
    "evaluate_policy",
    "load_model",
    "openmp_enabled",
    "save_model",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups do not come here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
