"""Topic-model metrics shared by dpsgd's estimator, the CLI and the benchmarks.

They take a topic-word matrix, so that models from other libraries (scikit-learn's
``components_``, gensim's ``state.get_lambda()``) are scored by the very same code.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln, logsumexp, psi

from dpsgd._kernels import svi as _svi


def _canonical_csr(X):
    """X as float64 CSR with sorted, unique entries; the caller's matrix is never modified."""
    X = sp.csr_matrix(X, dtype=np.float64)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def _as_corpus(X):
    """X as the kernels' CSR arrays: float64 counts, int32 word ids, int64 indptr."""
    X = _canonical_csr(X)
    return X.data, X.indices.astype(np.int32, copy=False), X.indptr.astype(np.int64, copy=False)


def exp_dirichlet_expectation(a):
    """exp(E[log x]) for x ~ Dirichlet(row of a), row-wise."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    return np.exp(psi(a) - psi(a.sum(axis=1))[:, None])


def infer_doc_topics(topic_word, X, doc_topic_prior, *, max_iter=100, tol=1e-3, n_threads=1, seed=0,
                     sufficient_statistics=False):
    """Variational E-step for every document of X with the topics held fixed.

    Parameters
    ----------
    topic_word : ndarray (K, V)
        Variational Dirichlet parameters lambda of the topics.
    X : sparse (n_docs, V) word counts
    doc_topic_prior : float
    sufficient_statistics : bool, default=False
        Also return the E-step's sufficient statistics, as scikit-learn's
        ``_e_step(X, cal_sstats=True)`` does (full-batch variational EM sets
        lambda = eta + these).

    Returns
    -------
    gamma : ndarray (n_docs, K), unnormalised document-topic parameters
    sstats : ndarray (K, V), only with ``sufficient_statistics``:
        sum over documents of E[phi] times the counts.
    """
    topic_word = np.asarray(topic_word, dtype=np.float64)
    K, V = topic_word.shape
    if X.shape[1] != V:
        raise ValueError(f"X has {X.shape[1]} words, the topics have {V}")
    counts, indices, indptr = _as_corpus(X)
    eb = np.ascontiguousarray(exp_dirichlet_expectation(topic_word).T)  # (V, K)
    n_docs = X.shape[0]
    gamma = np.zeros((n_docs, K))
    docs = np.arange(n_docs, dtype=np.int64)
    dshape, ishape = _svi.scratch_shape(K, V, 0)
    sstats = np.zeros_like(eb) if sufficient_statistics else None
    _, _, status = _svi.svi_run(
        counts, indices, indptr, docs, np.array([0, n_docs], dtype=np.int64), eb, np.zeros(K), gamma,
        np.ones(1), np.zeros(0), np.zeros(0), np.zeros((n_threads, dshape)), np.zeros((n_threads, 1), np.int32),
        mode=int(_svi.Mode.ESTEP), alpha=doc_topic_prior, eta=0.0, max_iter=max_iter, tol=tol,
        seed=seed, n_threads=n_threads, sstats=sstats)
    if status != 0:
        raise FloatingPointError("the E-step produced a non-finite value")
    if sufficient_statistics:
        return gamma, (sstats * eb).T
    return gamma


def split_tokens(X, fraction=0.5, seed=0):
    """Split each document's tokens at random into an observed and a held-out part.

    Every token goes to the held-out part with probability ``fraction``
    (binomially per (document, word) count). Returns (X_observed, X_heldout).
    """
    X = _canonical_csr(X)
    rng = np.random.default_rng(seed)
    held = rng.binomial(np.rint(X.data).astype(np.int64), fraction).astype(np.float64)
    # own copies of the structure: eliminate_zeros works in place
    X_held = sp.csr_matrix((held, X.indices.copy(), X.indptr.copy()), shape=X.shape)
    X_obs = sp.csr_matrix((X.data - held, X.indices.copy(), X.indptr.copy()), shape=X.shape)
    X_held.eliminate_zeros()
    X_obs.eliminate_zeros()
    return X_obs, X_held


def heldout_log_likelihood(topic_word, X, doc_topic_prior: float, *, seed: int = 0, n_threads: int = 1,
                           max_iter: int = 100, tol: float = 1e-3) -> float:
    """Per-word predictive log-likelihood by document completion (nats; higher is better).

    Each document's tokens are split in two halves (:func:`split_tokens`). theta is
    inferred from the observed half with the topics fixed; every held-out token w
    of the document scores ``log sum_k E[theta_k] E[beta_kw]`` with
    ``E[theta] = gamma / sum(gamma)`` and ``E[beta_k] = lambda_k / sum(lambda_k)``
    (Hoffman et al., SVI, JMLR 2013, section 6). Returns the mean over held-out
    tokens. Comparable across libraries: it compares no bounds.
    """
    topic_word = np.asarray(topic_word, dtype=np.float64)
    X_obs, X_held = split_tokens(X, 0.5, seed)
    if X_held.sum() == 0:
        raise ValueError("no held-out tokens: the documents are too short")
    gamma = infer_doc_topics(topic_word, X_obs, doc_topic_prior, max_iter=max_iter, tol=tol,
                             n_threads=n_threads, seed=seed)
    theta = gamma / gamma.sum(axis=1, keepdims=True)
    beta = topic_word / topic_word.sum(axis=1, keepdims=True)
    nnz = X_held.indptr[-1]  # (scipy may leave the arrays longer than nnz)
    rows = np.repeat(np.arange(X_held.shape[0]), np.diff(X_held.indptr))
    words, counts = X_held.indices[:nnz], X_held.data[:nnz]
    total = 0.0
    for start in range(0, nnz, 200_000):  # bounded memory: nnz x K per chunk
        stop = start + 200_000
        p = np.einsum("ik,ki->i", theta[rows[start:stop]], beta[:, words[start:stop]])
        total += float(counts[start:stop] @ np.log(p))
    return total / counts.sum()


def approx_bound(topic_word, X, gamma, doc_topic_prior, topic_word_prior):
    """scikit-learn's variational bound of LDA (``_approx_bound`` without subsampling).

    E[log p(docs | theta, beta)] + E[log p(theta | alpha) - log q(theta | gamma)]
    + E[log p(beta | eta) - log q(beta | lambda)], vectorised over the non-zeros.
    """
    topic_word = np.asarray(topic_word, dtype=np.float64)
    X = sp.csr_matrix(X, dtype=np.float64)
    K, V = topic_word.shape
    elog_theta = psi(gamma) - psi(gamma.sum(axis=1))[:, None]
    elog_beta = psi(topic_word) - psi(topic_word.sum(axis=1))[:, None]
    nnz = X.indptr[-1]
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    score = 0.0
    for start in range(0, nnz, 100_000):
        stop = min(start + 100_000, nnz)
        r, w = rows[start:stop], X.indices[start:stop]
        score += float(X.data[start:stop] @ logsumexp(elog_theta[r] + elog_beta[:, w].T, axis=1))

    def dirichlet_terms(prior, distr, elog, size):
        return (np.sum((prior - distr) * elog) + np.sum(gammaln(distr) - gammaln(prior))
                + np.sum(gammaln(prior * size) - gammaln(distr.sum(axis=1))))

    score += dirichlet_terms(doc_topic_prior, gamma, elog_theta, K)
    score += dirichlet_terms(topic_word_prior, topic_word, elog_beta, V)
    return score


def perplexity(topic_word, X, doc_topic_prior: float, topic_word_prior: float, *, max_iter: int = 100,
               tol: float = 1e-3, n_threads: int = 1) -> float:
    """exp(-bound / tokens) of X (base e, scikit-learn's definition), with gamma from
    :func:`infer_doc_topics` and the bound from :func:`approx_bound`."""
    X = _canonical_csr(X)
    total = X.sum()
    if total <= 0:
        raise ValueError("X has no tokens")
    gamma = infer_doc_topics(topic_word, X, doc_topic_prior, max_iter=max_iter, tol=tol, n_threads=n_threads)
    return float(np.exp(-approx_bound(topic_word, X, gamma, doc_topic_prior, topic_word_prior) / total))


def match_topics(true_topics, learned_topics):
    """Pair learned topics with true ones (Hungarian matching on cosine similarity).

    Returns
    -------
    mean_cosine : float
        Mean cosine similarity of the matched pairs (1 is perfect recovery).
    assignment : ndarray
        ``assignment[i]`` is the learned topic matched to true topic i.
    """
    a = np.asarray(true_topics, dtype=np.float64)
    b = np.asarray(learned_topics, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cosine = a @ b.T
    rows, cols = linear_sum_assignment(-cosine)
    return float(cosine[rows, cols].mean()), cols
