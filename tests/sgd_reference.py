"""A plain NumPy implementation of the update sequence of dpsgd's SGD kernel.

Dense true weights, the L2 decay applied to every coordinate at every step,
the L1 cumulative penalty exactly as scikit-learn's ``l1penalty`` (with
wscale = 1). Slow and obvious on purpose: it is the oracle the compiled
kernel is compared with.
"""

import numpy as np

MAX_DLOSS = 1e12


def loss_grad(kind, y, p, param):
    """(loss, dloss/dp) for the kernel's loss ids (see dpsgd._kernels.sgd.Loss)."""
    if kind == "log_loss":
        z = p * y
        if z > 18:
            return np.exp(-z), -y * np.exp(-z)
        if z < -18:
            return -z, -y
        return np.log1p(np.exp(-z)), -y / (np.exp(z) + 1.0)
    if kind == "hinge":
        z = p * y
        return (param - z, -y) if z <= param else (0.0, 0.0)
    if kind == "modified_huber":
        z = p * y
        if z >= 1:
            return 0.0, 0.0
        if z >= -1:
            return (1 - z) ** 2, -2 * (1 - z) * y
        return -4 * z, -4 * y
    if kind == "squared_hinge":
        z = param - p * y
        return (z * z, -2 * y * z) if z > 0 else (0.0, 0.0)
    if kind == "squared_error":
        return 0.5 * (p - y) ** 2, p - y
    if kind == "huber":
        r = p - y
        if abs(r) <= param:
            return 0.5 * r * r, r
        return param * (abs(r) - 0.5 * param), (param if r > 0 else -param)
    if kind == "epsilon_insensitive":  # scikit-learn's EpsilonInsensitive
        if y - p > param:
            return y - p - param, -1.0
        if p - y > param:
            return p - y - param, 1.0
        return 0.0, 0.0
    if kind == "squared_epsilon_insensitive":
        z = y - p
        if z > param:
            return (z - param) ** 2, -2 * (z - param)
        if z < -param:
            return (-z - param) ** 2, 2 * (-z - param)
        return 0.0, 0.0
    raise ValueError(kind)


def eta_at(schedule, t, eta0, alpha, power_t, optimal_init):
    if schedule == "optimal":
        return 1.0 / (alpha * (optimal_init + t - 1.0))
    if schedule == "invscaling":
        return eta0 / t**power_t
    return eta0


def sgd_epoch_reference(X, Y, perm, coef, intercept, *, loss, loss_param, penalty, alpha,
                        l1_ratio, schedule, eta0, power_t, optimal_init, t_start,
                        intercept_decay=1.0, fit_intercept=True, sample_weight=None,
                        q=None, u=0.0, class_weight=None, average=None, delay=0):
    """One epoch; returns (coef (d, K), intercept (K,), sumloss, q, u).

    ``delay``: the prediction of the row at position ``pos`` uses the weights from before
    the steps of positions ``pos - delay .. pos - 1`` (those of the epoch only), decayed by
    those steps' L2 factors, and the current intercept (the kernel's threads that own
    features).

    ``class_weight`` (K, 2): weight of a positive / negative target of each output.
    ``average``: (avg_coef, avg_intercept, average_start), updated in place as
    scikit-learn's ``_plain_sgd`` does: after the gradient step, before the L1 step.
    """
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    coef = coef.astype(np.float64).copy()
    intercept = intercept.astype(np.float64).copy()
    d, K = coef.shape
    q = np.zeros((d, K)) if q is None else q.copy()
    l2 = penalty in ("l2", "elasticnet")
    l1 = penalty in ("l1", "elasticnet")
    l1r = {"l2": 0.0, "l1": 1.0, "elasticnet": l1_ratio, None: 0.0}[penalty]
    sumloss = 0.0
    before, decays = [], []  # the weights before each step of the epoch, its L2 factor
    for pos, r in enumerate(perm):
        t = t_start + pos
        eta = eta_at(schedule, t, eta0, alpha, power_t, optimal_init)
        decay = max(0.0, 1.0 - (1.0 - l1r) * eta * alpha) if l2 else 1.0
        before.append(coef.copy())
        decays.append(decay)
        m = max(pos - delay, 0)
        seen = before[m] * np.prod(decays[m:pos])
        x = X[r]
        nz = np.flatnonzero(x)
        wgt = 1.0 if sample_weight is None else sample_weight[r]
        upd = np.zeros(K)
        for k in range(K):
            p = x @ seen[:, k] + intercept[k]
            value, g = loss_grad(loss, Y[r, k], p, loss_param)
            sumloss += value
            g = min(max(g, -MAX_DLOSS), MAX_DLOSS)
            upd[k] = -eta * g * wgt
            if class_weight is not None:
                upd[k] *= class_weight[k, 0] if Y[r, k] > 0 else class_weight[k, 1]
        if l2:
            coef *= decay
        coef += np.outer(x, upd)
        if fit_intercept:
            intercept += upd * intercept_decay
        if average is not None and t >= average[2]:
            m = t - average[2] + 1
            average[0] += (coef - average[0]) / m
            average[1] += (intercept - average[1]) / m
        if l1:
            u += l1r * eta * alpha
            for j in nz:
                for k in range(K):
                    z = coef[j, k]
                    if z > 0:
                        coef[j, k] = max(0.0, z - (u + q[j, k]))
                    elif z < 0:
                        coef[j, k] = min(0.0, z + (u - q[j, k]))
                    q[j, k] += coef[j, k] - z
    return coef, intercept, sumloss, q, u
