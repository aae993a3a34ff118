"""dpsgd: lock-free parallel and asynchronous distributed stochastic gradient methods.

Inside a process, OpenMP threads apply Hogwild! updates to one shared parameter
buffer in Cython kernels that hold no GIL.
"""

__version__ = "0.1.0"

from dpsgd._threads import effective_n_threads, openmp_enabled
from dpsgd.persist import load_model, save_model
from dpsgd.tasks.lda import LatentDirichletAllocation
from dpsgd.tasks.linear import SGDClassifier, SGDRegressor

__all__ = [
    "LatentDirichletAllocation",
    "SGDClassifier",
    "SGDRegressor",
    "effective_n_threads",
    "load_model",
    "openmp_enabled",
    "save_model",
    "__version__",
]
