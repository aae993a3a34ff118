"""Synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state


def make_sparse_classification(n_samples=10_000, n_features=5_000, nnz_per_row=50, *,
                               zipf_exponent=1.1, zipf_offset=50.0, informative=0.1, noise=0.1,
                               dtype=np.float64, random_state=None) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Sparse text-like binary classification data with a known separating vector.

    Rows have about ``nnz_per_row`` non-zeros. Features are drawn with power-law
    frequencies: the feature of rank r with probability proportional to
    ``(r + zipf_offset) ** -zipf_exponent`` (a Zipf-Mandelbrot law: with the
    defaults and RCV1's shape the most frequent feature is in about a third of
    the rows); ranks are scattered over the column ids. Values are positive and
    every row has unit L2 norm, like RCV1's tf-idf vectors. Labels are
    ``sign(X @ w_true - median + noise * spread * N(0, 1))``, balanced, with
    ``w_true`` non-zero on a share ``informative`` of the features.

    Parameters
    ----------
    n_samples, n_features, nnz_per_row : int, default=10000, 5000 and 50
        Rows, columns and the mean number of non-zeros in a row.
    zipf_exponent, zipf_offset : float, default=1.1 and 50.0
        The Zipf-Mandelbrot law of the features' frequencies.
    informative : float in (0, 1], default=0.1
        The share of the features on which ``w_true`` is non-zero.
    noise : float, default=0.1
        Standard deviation of the label noise relative to the spread of the margins.
    dtype : float32 or float64, default=float64
        The values' dtype.
    random_state : int, RandomState or None
        Seed.

    Returns
    -------
    X : csr_matrix of shape (n_samples, n_features), canonical (sorted, unique)
    y : ndarray of {-1, +1}
    w_true : ndarray of shape (n_features,)

    Raises
    ------
    ValueError
        When a size is below 1 or ``nnz_per_row`` is above ``n_features``.

    Examples
    --------
    >>> from dpsgd.data import make_sparse_classification
    >>> X, y, w_true = make_sparse_classification(n_samples=1000, n_features=500, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((1000, 500), [-1.0, 1.0])
    """
    if n_samples < 1 or n_features < 1 or not 1 <= nnz_per_row <= n_features:
        raise ValueError("need n_samples >= 1, n_features >= 1 and 1 <= nnz_per_row <= n_features")
    rng = check_random_state(random_state)
    ranks = np.arange(1, n_features + 1, dtype=np.float64)
    cdf = np.cumsum((ranks + zipf_offset) ** -zipf_exponent)
    cdf /= cdf[-1]
    column_of_rank = rng.permutation(n_features).astype(np.int64)
    lengths = np.clip(rng.poisson(nnz_per_row, n_samples), 1, n_features)
    rows = np.repeat(np.arange(n_samples, dtype=np.int64), lengths)
    ranks_drawn = np.minimum(np.searchsorted(cdf, rng.random_sample(rows.size)), n_features - 1)
    keys = rows * n_features + column_of_rank[ranks_drawn]
    keys.sort()  # sort + mask: several times faster than np.unique's hashing here
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # repeats within a row dropped
    rows, cols = np.divmod(keys, n_features)
    values = rng.lognormal(0.0, 0.5, keys.size)
    indptr = np.zeros(n_samples + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_samples), out=indptr[1:])
    norms = np.sqrt(np.add.reduceat(values * values, indptr[:-1]))
    values /= np.repeat(norms, np.diff(indptr))
    index_dtype = np.int32 if keys.size < 2**31 else np.int64
    X = sp.csr_matrix((values.astype(dtype), cols.astype(index_dtype), indptr.astype(index_dtype)),
                      shape=(n_samples, n_features))
    X.has_sorted_indices = True
    w_true = np.where(rng.random_sample(n_features) < informative, rng.normal(0, 1, n_features), 0.0)
    margin = X @ w_true
    spread = margin.std() if margin.std() > 0 else 1.0
    y = np.where(margin - np.median(margin) + noise * spread * rng.normal(size=n_samples) > 0, 1.0, -1.0)
    return X, y, w_true


def make_lda_corpus(n_docs=5_000, n_words=500, n_topics=10, doc_length=100, *,
                    doc_topic_prior=0.1, topic_word_prior=0.05,
                    random_state=None) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """A corpus drawn from LDA's generative model, with its true topics.

    Topics: ``beta_k ~ Dirichlet(topic_word_prior)`` over ``n_words`` words.
    Document d: ``theta_d ~ Dirichlet(doc_topic_prior)``, a length drawn from
    Poisson(doc_length) (at least 1), and word counts ~ Multinomial(length,
    theta_d @ beta).

    Parameters
    ----------
    n_docs, n_words, n_topics : int, default=5000, 500 and 10
        Documents, vocabulary size and topics.
    doc_length : int, default=100
        The mean number of tokens in a document.
    doc_topic_prior, topic_word_prior : float, default=0.1 and 0.05
        The Dirichlet priors of the documents' topic proportions and of the topics.
    random_state : int, RandomState or None
        Seed.

    Returns
    -------
    X : csr_matrix of shape (n_docs, n_words), float64 counts
    topics : ndarray (n_topics, n_words), rows sum to 1
    doc_topics : ndarray (n_docs, n_topics), rows sum to 1

    Raises
    ------
    ValueError
        When a count is below 1.

    Examples
    --------
    >>> from dpsgd.data import make_lda_corpus
    >>> X, topics, doc_topics = make_lda_corpus(n_docs=200, n_words=50, n_topics=3, random_state=0)
    >>> X.shape, topics.shape, doc_topics.shape
    ((200, 50), (3, 50), (200, 3))
    """
    if min(n_docs, n_words, n_topics, doc_length) < 1:
        raise ValueError("n_docs, n_words, n_topics and doc_length must be >= 1")
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    topics = rng.dirichlet(np.full(n_words, topic_word_prior), n_topics)
    theta = rng.dirichlet(np.full(n_topics, doc_topic_prior), n_docs)
    lengths = np.maximum(rng.poisson(doc_length, n_docs), 1)
    blocks = []
    step = max(1, 2_000_000 // n_words)  # documents per block: never a dense n_docs x n_words array
    for start in range(0, n_docs, step):
        word_probs = theta[start:start + step] @ topics
        word_probs /= word_probs.sum(axis=1, keepdims=True)
        counts = rng.multinomial(lengths[start:start + step], word_probs)
        blocks.append(sp.csr_matrix(counts.astype(np.float64)))
    return sp.vstack(blocks, format="csr"), topics, theta


def make_imbalanced_binary(n_samples: int = 50_000, n_features: int = 300, positives: float = 0.03, *,
                           random_state=None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary features with skewed frequencies and rare positive labels, like LIBSVM's w8a.

    Feature j is on with probability ``clip(0.01 * Pareto(1.2), 0.001, 0.5)``; labels are 1
    for the top ``positives`` share of a noisy linear score (weights non-zero on 30% of the
    features), else 0.

    Parameters
    ----------
    n_samples, n_features : int, default=50000 and 300
        Rows and columns.
    positives : float in (0, 1), default=0.03
        The share of positive labels.
    random_state : int or None
        Seed.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features), float64 0/1
    y : ndarray of shape (n_samples,), int 0/1

    Raises
    ------
    ValueError
        When ``positives`` is not in (0, 1).

    Examples
    --------
    >>> from dpsgd.data import make_imbalanced_binary
    >>> X, y = make_imbalanced_binary(n_samples=1000, n_features=50, random_state=0)
    >>> X.shape, int(y.sum())
    ((1000, 50), 30)
    """
    if not 0 < positives < 1:
        raise ValueError(f"positives must be in (0, 1), got {positives!r}")
    rng = np.random.default_rng(random_state)
    freq = np.clip(rng.pareto(1.2, n_features) * 0.01, 1e-3, 0.5)
    X = sp.csr_matrix((rng.random((n_samples, n_features)) < freq).astype(np.float64))
    w = rng.normal(size=n_features) * (rng.random(n_features) < 0.3)
    z = X @ w + rng.normal(scale=0.5, size=n_samples)
    return X, (z > np.quantile(z, 1.0 - positives)).astype(int)
