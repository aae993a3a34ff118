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
    """exp(E[log x]) for x ~ Dirichlet(row of a), row-wise.

    Parameters
    ----------
    a : array-like of shape (n, K) or (K,)
        Dirichlet parameters, one distribution a row.

    Returns
    -------
    ndarray of shape (n, K)
        ``exp(digamma(a) - digamma(a.sum(axis=1)))``, row-wise.

    Examples
    --------
    >>> from dpsgd.evaluation import exp_dirichlet_expectation
    >>> exp_dirichlet_expectation([[1.0, 1.0]]).round(4).tolist()
    [[0.3679, 0.3679]]
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    # one C-ordered array the size of ``a``, then in place: the row sums come out the same
    # whatever a's memory order (a fitted LDA's topics are Fortran-ordered, a loaded one's not)
    out = np.empty(a.shape)
    out[...] = a
    sums = psi(out.sum(axis=1))
    psi(out, out=out)
    out -= sums[:, None]
    return np.exp(out, out=out)


def infer_doc_topics(topic_word, X, doc_topic_prior, *, max_iter=100, tol=1e-3, n_threads=1, seed=0,
                     sufficient_statistics=False):
    """Variational E-step for every document of X with the topics held fixed.

    Parameters
    ----------
    topic_word : ndarray (K, V)
        Variational Dirichlet parameters lambda of the topics.
    X : sparse matrix of shape (n_docs, V)
        Word counts.
    doc_topic_prior : float
        alpha, the Dirichlet prior of the documents' topic proportions.
    max_iter : int, default=100
        The most E-step iterations a document gets.
    tol : float, default=1e-3
        A document stops when the mean change of its gamma falls below ``tol``.
    n_threads : int, default=1
        OpenMP threads.
    seed : int, default=0
        Seeds each document's initial gamma.
    sufficient_statistics : bool, default=False
        Also return the E-step's sufficient statistics, as scikit-learn's
        ``_e_step(X, cal_sstats=True)`` does (full-batch variational EM sets
        lambda = eta + these).

    Returns
    -------
    gamma : ndarray (n_docs, K), unnormalised document-topic parameters
    sstats : ndarray (K, V), only with ``sufficient_statistics``:
        sum over documents of E[phi] times the counts.

    Raises
    ------
    ValueError
        When X and the topics have different numbers of words.
    FloatingPointError
        When the E-step produces a non-finite value.

    Examples
    --------
    >>> from dpsgd.data import make_lda_corpus
    >>> X, topics, _ = make_lda_corpus(n_docs=200, n_words=50, n_topics=3, random_state=0)
    >>> topic_word = 1000 * topics + 0.01  # lambda: the true topics, as a fitted model's
    >>> from dpsgd.evaluation import infer_doc_topics
    >>> gamma = infer_doc_topics(topic_word, X, doc_topic_prior=0.1)
    >>> gamma.shape
    (200, 3)
    """
    topic_word = np.asarray(topic_word, dtype=np.float64)
    K, V = topic_word.shape
    if X.shape[1] != V:
        raise ValueError(f"X has {X.shape[1]} words, the topics have {V}")
    counts, indices, indptr = _as_corpus(X)
    # word-major (V, K), the kernel's layout: a view, not a copy, of a fitted model's
    # Fortran-ordered components_; the kernel computes exp(E[log beta]) from it as floats
    lam = np.ascontiguousarray(topic_word.T)
    if not lam.flags.writeable:  # the kernel's argument is writeable (its fitting modes write it)
        lam = lam.copy()
    n_docs = X.shape[0]
    gamma = np.zeros((n_docs, K))
    docs = np.arange(n_docs, dtype=np.int64)
    sstats = np.empty_like(lam) if sufficient_statistics else None
    _, _, status = _svi.svi_run(
        counts, indices, indptr, docs, np.array([0, n_docs], dtype=np.int64), lam, topic_word.sum(axis=1), gamma,
        np.ones(1), np.zeros(0), np.zeros(0), _svi.Scratch(), mode=int(_svi.Mode.ESTEP),
        alpha=doc_topic_prior, eta=0.0, max_iter=max_iter, tol=tol, seed=seed, n_threads=n_threads,
        sstats=sstats)
    if status != 0:
        raise FloatingPointError("the E-step produced a non-finite value")
    if sufficient_statistics:
        return gamma, sstats.T
    return gamma


def split_tokens(X, fraction=0.5, seed=0):
    """Split each document's tokens at random into an observed and a held-out part.

    Every token goes to the held-out part with probability ``fraction``
    (binomially per (document, word) count).

    Parameters
    ----------
    X : sparse matrix of shape (n_docs, V)
        Word counts.
    fraction : float, default=0.5
        The probability that a token is held out.
    seed : int, default=0
        Seed of the split.

    Returns
    -------
    X_observed, X_heldout : csr_matrix of shape (n_docs, V)
        Two matrices of counts that add up to X.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from dpsgd.evaluation import split_tokens
    >>> X = sp.csr_matrix([[10.0, 0.0, 4.0]])
    >>> observed, heldout = split_tokens(X)
    >>> (observed + heldout).toarray().tolist()
    [[10.0, 0.0, 4.0]]
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
    (Hoffman et al., SVI, JMLR 2013, section 6). Comparable across libraries: it
    compares no bounds.

    Parameters
    ----------
    topic_word : array-like of shape (K, V)
        The topics' variational Dirichlet parameters lambda (e.g. ``components_``).
    X : sparse matrix of shape (n_docs, V)
        The held-out documents' word counts.
    doc_topic_prior : float
        alpha, the Dirichlet prior of the documents' topic proportions.
    seed : int, default=0
        Seed of the split into halves and of the E-step.
    n_threads : int, default=1
        OpenMP threads of the E-step.
    max_iter, tol : int and float, default=100 and 1e-3
        The E-step's limits, as in :func:`infer_doc_topics`.

    Returns
    -------
    float
        The mean log-likelihood of a held-out token, in nats.

    Raises
    ------
    ValueError
        When the documents are too short to hold out any token.

    Examples
    --------
    >>> from dpsgd.data import make_lda_corpus
    >>> X, topics, _ = make_lda_corpus(n_docs=200, n_words=50, n_topics=3, random_state=0)
    >>> topic_word = 1000 * topics + 0.01  # lambda: the true topics, as a fitted model's
    >>> import numpy as np
    >>> from dpsgd.evaluation import heldout_log_likelihood
    >>> true = heldout_log_likelihood(topic_word, X, doc_topic_prior=0.1)
    >>> flat = heldout_log_likelihood(np.ones((3, 50)), X, doc_topic_prior=0.1)
    >>> bool(flat < true < 0)  # the true topics predict the held-out words better
    True
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

    Parameters
    ----------
    topic_word : array-like of shape (K, V)
        The topics' variational parameters lambda.
    X : sparse matrix of shape (n_docs, V)
        Word counts.
    gamma : ndarray of shape (n_docs, K)
        The documents' variational parameters (:func:`infer_doc_topics`).
    doc_topic_prior, topic_word_prior : float
        alpha and eta, the Dirichlet priors.

    Returns
    -------
    float
        The bound, in nats (for the whole of X, not per token).

    Examples
    --------
    >>> from dpsgd.data import make_lda_corpus
    >>> X, topics, _ = make_lda_corpus(n_docs=200, n_words=50, n_topics=3, random_state=0)
    >>> topic_word = 1000 * topics + 0.01  # lambda: the true topics, as a fitted model's
    >>> from dpsgd.evaluation import approx_bound, infer_doc_topics
    >>> gamma = infer_doc_topics(topic_word, X, 0.1)
    >>> bool(approx_bound(topic_word, X, gamma, 0.1, 0.05) < 0)
    True
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
    """exp(-bound / tokens) of X (base e, scikit-learn's definition).

    gamma comes from :func:`infer_doc_topics` and the bound from :func:`approx_bound`. The
    bound holds a term of the topics that does not depend on X, so short held-out sets get
    large perplexities: compare models by :func:`heldout_log_likelihood`.

    Parameters
    ----------
    topic_word : array-like of shape (K, V)
        The topics' variational parameters lambda.
    X : sparse matrix of shape (n_docs, V)
        Word counts.
    doc_topic_prior, topic_word_prior : float
        alpha and eta, the Dirichlet priors.
    max_iter, tol : int and float, default=100 and 1e-3
        The E-step's limits, as in :func:`infer_doc_topics`.
    n_threads : int, default=1
        OpenMP threads of the E-step.

    Returns
    -------
    float
        The perplexity, base e (lower is better).

    Raises
    ------
    ValueError
        When X holds no tokens.

    Examples
    --------
    >>> from dpsgd.data import make_lda_corpus
    >>> X, topics, _ = make_lda_corpus(n_docs=200, n_words=50, n_topics=3, random_state=0)
    >>> topic_word = 1000 * topics + 0.01  # lambda: the true topics, as a fitted model's
    >>> from dpsgd.evaluation import perplexity
    >>> bool(1 < perplexity(topic_word, X, 0.1, 0.05) < 50)  # 50 words: at most 50 if it learnt anything
    True
    """
    X = _canonical_csr(X)
    total = X.sum()
    if total <= 0:
        raise ValueError("X has no tokens")
    gamma = infer_doc_topics(topic_word, X, doc_topic_prior, max_iter=max_iter, tol=tol, n_threads=n_threads)
    return float(np.exp(-approx_bound(topic_word, X, gamma, doc_topic_prior, topic_word_prior) / total))


def match_topics(true_topics, learned_topics):
    """Pair learned topics with true ones (Hungarian matching on cosine similarity).

    Parameters
    ----------
    true_topics : array-like of shape (K, V)
        The true topics (word distributions, or any non-negative weights).
    learned_topics : array-like of shape (K, V)
        The learnt ones, e.g. a model's ``components_``.

    Returns
    -------
    mean_cosine : float
        Mean cosine similarity of the matched pairs (1 is perfect recovery).
    assignment : ndarray
        ``assignment[i]`` is the learned topic matched to true topic i.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.evaluation import match_topics
    >>> true = np.array([[0.9, 0.1, 0.0], [0.0, 0.1, 0.9]])
    >>> score, assignment = match_topics(true, true[::-1])
    >>> round(score, 6), assignment.tolist()
    (1.0, [1, 0])
    """
    a = np.asarray(true_topics, dtype=np.float64)
    b = np.asarray(learned_topics, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cosine = a @ b.T
    rows, cols = linear_sum_assignment(-cosine)
    return float(cosine[rows, cols].mean()), cols
