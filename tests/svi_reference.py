"""Plain NumPy SVI for LDA: the update sequence of dpsgd's svi kernel, written as
scikit-learn's online LDA writes it (topic-word matrix K x V, dense shrink,
E[log beta] for every word). Slow and obvious: the oracle for the kernel."""

import numpy as np
from scipy.special import psi

from dpsgd._kernels.svi import gamma_init

EPS = np.finfo(float).eps


def exp_dirichlet_expectation(a):
    """exp(E[log x]) for x ~ Dirichlet(a), row-wise."""
    a = np.atleast_2d(a)
    return np.exp(psi(a) - psi(a.sum(axis=1))[:, None])


def e_step(X, docs, lam, alpha, max_iter, tol, seed):
    """gamma of each document in ``docs`` and the sufficient statistics (K x V)."""
    K, V = lam.shape
    eb = exp_dirichlet_expectation(lam)
    sstats = np.zeros((K, V))
    gammas = {}
    for d in docs:
        ids = X.indices[X.indptr[d]:X.indptr[d + 1]]
        cnts = X.data[X.indptr[d]:X.indptr[d + 1]]
        gamma = gamma_init(d, K, seed)
        etheta = exp_dirichlet_expectation(gamma)[0]
        if ids.size == 0:
            gammas[d] = np.full(K, alpha)
            continue
        ebd = eb[:, ids]
        for _ in range(max_iter):
            last = gamma
            phinorm = etheta @ ebd + EPS
            gamma = alpha + etheta * (ebd @ (cnts / phinorm))
            etheta = exp_dirichlet_expectation(gamma)[0]
            if np.mean(np.abs(gamma - last)) < tol:
                break
        gammas[d] = gamma
        phinorm = etheta @ ebd + EPS
        sstats[:, ids] += np.outer(etheta, cnts / phinorm)
    return gammas, sstats * eb


def online_lda(X, batches, lam, *, alpha, eta, tau0, kappa, t_start, total, max_iter, tol, seed):
    """scikit-learn's online update over ``batches``; returns lambda (K x V) and gammas."""
    lam = lam.copy()
    gammas = {}
    for b, docs in enumerate(batches):
        g, sstats = e_step(X, docs, lam, alpha, max_iter, tol, seed)
        gammas.update(g)
        rho = (tau0 + t_start + b) ** -kappa
        lam = (1 - rho) * lam + rho * (eta + total / len(docs) * sstats)
    return lam, gammas
