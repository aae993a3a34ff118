"""pytest-benchmark suite for the SGD kernel (run on purpose: ``pytest bench/``).

Groups compare, in the same run, one epoch of scikit-learn's SGDClassifier, of
dpsgd on 1 and 2 threads, and of the limit kernel (row visits, gathers and
scatters without math). pytest-benchmark reports times; ratios between rows of
a group are the figures that matter on a shared machine.
"""

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier as SkSGD

import rcv1like
from conftest import SCALE
from dpsgd import SGDClassifier
from dpsgd._kernels import sgd as kernels
from dpsgd._kernels.rng import permutation
from dpsgd.data import load_a9a

KW = dict(loss="log_loss", alpha=1e-5, max_iter=1, tol=None, random_state=0)


@pytest.fixture(scope="module")
def rcv1():
    return rcv1like.load(SCALE)


@pytest.fixture(scope="module")
def a9a():
    return load_a9a()


@pytest.mark.benchmark(group="epoch-rcv1like")
def test_sklearn_epoch(benchmark, rcv1):
    X, y, _, _ = rcv1
    benchmark.pedantic(lambda: SkSGD(**KW).fit(X, y), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="epoch-rcv1like")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dpsgd_epoch(benchmark, rcv1, n_threads):
    X, y, _, _ = rcv1
    benchmark.pedantic(lambda: SGDClassifier(**KW, n_threads=n_threads).fit(X, y), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="epoch-rcv1like")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_limit_kernel_epoch(benchmark, rcv1, n_threads):
    X, _, _, _ = rcv1
    coef = np.zeros((X.shape[1], 1))
    perm = permutation(X.shape[0], 1)
    benchmark.pedantic(lambda: kernels.stream_epoch(X.data, X.indices, X.indptr, perm, coef, n_threads, 0.0),
                       rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="fit-a9a-10-epochs")
@pytest.mark.parametrize("n_threads", [1, 2])
def test_dpsgd_a9a(benchmark, a9a, n_threads):
    X, y, _, _ = a9a
    benchmark.pedantic(lambda: SGDClassifier(loss="log_loss", max_iter=10, tol=None, n_threads=n_threads).fit(X, y),
                       rounds=5, warmup_rounds=1)


@pytest.mark.benchmark(group="fit-a9a-10-epochs")
def test_sklearn_a9a(benchmark, a9a):
    X, y, _, _ = a9a
    X = X.copy()
    X.indices, X.indptr = X.indices.astype(np.int32), X.indptr.astype(np.int32)
    benchmark.pedantic(lambda: SkSGD(loss="log_loss", max_iter=10, tol=None).fit(X, y), rounds=5, warmup_rounds=1)
