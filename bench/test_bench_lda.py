"""pytest-benchmark groups for DPSVI (run on purpose: ``pytest bench/``).

One pass over a synthetic corpus (10,000 documents, V = 5,000, K = 20): dpsgd on
1 and 2 threads (batch and hogwild), scikit-learn's online LDA and, when
installed, gensim's LdaModel, in the same run.
"""

import numpy as np
import pytest

from dpsgd import LatentDirichletAllocation
from dpsgd.data import make_lda_corpus

K, PASSES = 20, 1


@pytest.fixture(scope="module")
def corpus():
    X, _, _ = make_lda_corpus(10_000, 5_000, K, 100, random_state=0)
    return X


@pytest.mark.benchmark(group="lda-one-pass")
@pytest.mark.parametrize("n_threads,parallel", [(1, "batch"), (2, "batch"), (2, "hogwild")])
def test_dpsgd(benchmark, corpus, n_threads, parallel):
    benchmark.pedantic(lambda: LatentDirichletAllocation(K, max_iter=PASSES, n_threads=n_threads, parallel=parallel,
                                                         random_state=0).fit(corpus), rounds=3, warmup_rounds=1)


@pytest.mark.benchmark(group="lda-one-pass")
def test_sklearn(benchmark, corpus):
    from sklearn.decomposition import LatentDirichletAllocation as SkLDA

    benchmark.pedantic(lambda: SkLDA(K, learning_method="online", max_iter=PASSES, batch_size=128,
                                     total_samples=corpus.shape[0], random_state=0).fit(corpus), rounds=3)


@pytest.mark.benchmark(group="lda-one-pass")
def test_gensim(benchmark, corpus):
    gensim = pytest.importorskip("gensim")
    bow = gensim.matutils.Sparse2Corpus(corpus, documents_columns=False)
    id2word = {i: str(i) for i in range(corpus.shape[1])}
    benchmark.pedantic(lambda: gensim.models.LdaModel(bow, num_topics=K, id2word=id2word, chunksize=128,
                                                      passes=PASSES, alpha=1 / K, eta=1 / K, eval_every=None,
                                                      random_state=0), rounds=3)


@pytest.mark.benchmark(group="lda-dense-vs-batch-expelogbeta")
def test_dense_exp_elog_beta_per_minibatch(benchmark):
    """What scikit-learn and gensim pay per minibatch and dpsgd does not: exp(E[log beta])
    for all K x V entries (AP's V = 10,473, K = 50)."""
    from scipy.special import psi

    lam = np.random.default_rng(0).gamma(100, 0.01, (50, 10_473))
    benchmark(lambda: np.exp(psi(lam) - psi(lam.sum(axis=1))[:, None]))
