"""Advantage actor-critic kernels: an MLP actor (categorical or Gaussian) and an MLP critic on one flat vector.

The reference is Stable-Baselines3's A2C (``a2c/a2c.py``, ``common/policies.py``
``ActorCriticPolicy`` with ``net_arch=dict(pi=[h1, h2], vf=[h1, h2])`` and tanh,
``common/buffers.py`` ``RolloutBuffer.compute_returns_and_advantage``) with torch's
``clip_grad_norm_`` and ``RMSprop``. Everything here is float64.

Parameter layout (``dpsgd.tasks.a2c_net.ActorCriticLayout`` computes the same offsets):
the actor, then the critic, each layer as torch's ``nn.Linear`` keeps it, the weight
``(out, in)`` row-major followed by the bias::

    actor:  W1 (h1, obs_dim)  b1 (h1)  W2 (h2, h1)  b2 (h2)  W3 (n_actions, h2)  b3 (n_actions)
    critic: V1 (h1, obs_dim)  c1 (h1)  V2 (h2, h1)  c2 (h2)  V3 (1, h2)          c3 (1)
    log_std (n_actions)                                       only for continuous actions

Discrete actions: the actor's outputs are the logits of a categorical policy. Continuous
actions (``continuous``, n_actions = the action's dimension): they are the mean of a
diagonal Gaussian whose log standard deviations are the state-independent parameters
``log_std``, as SB3's ``DiagGaussianDistribution`` (``log_std_init=0``); actions are
float64 vectors, sampled unclipped (the environment clips them, as SB3's rollout does).

Threads (Hogwild!-style as A3C, hsa2c.pyx): a thread copies the shared parameters into
its own buffer with relaxed loads (``a2c_snapshot``), computes the loss gradient of
its rollout on that private copy with plain arithmetic (``a2c_loss_grad``), clips it
(``a2c_clip_grad_norm``) and applies it to the shared parameters and the RMSprop (or
Adam) statistics, shared or its own, with relaxed loads and stores (``a2c_rmsprop_step``,
``shared``): lost updates are allowed, torn values and undefined behaviour are not. Per-thread scratch comes
from the caller (``a2c_*_scratch`` say how many doubles); the kernels allocate nothing.

The forward and backward of a batch are small matrix products and a vectorised tanh
(``mlp.h``); a sample's forward does not depend on the batch it is in.

The ``def`` functions at the end check shapes and raise ``ValueError`` before any
kernel runs; the ``py_*`` ones exist so that tests reach each piece.
"""
import numpy as np

from libc.math cimport exp, log, pow, sqrt
from libc.stdint cimport int64_t, uint8_t

from dpsgd._kernels.atomics cimport dp_load, dp_store


cdef extern from "mlp.h" nogil:
    # C (M x N) += A (M x K) B (K x N); A's (i, k) at a[i * ars + k * acs]; B, C row-major
    void dp_gemm_acc(int M, int N, int K, const double *a, Py_ssize_t ars, Py_ssize_t acs,
                     const double *b, Py_ssize_t ldb, double *c, Py_ssize_t ldc)
    void dp_tanh(double *x, Py_ssize_t n)

cdef extern from "simd.h" nogil:
    double dp_dot(const double *a, const double *b, int n)


# A2cNet (sizes, offsets, the length of one sample's activations) is declared in a2c.pxd.


cdef void a2c_net_init(A2cNet *net, int obs_dim, int h1, int h2, int n_actions, bint continuous) noexcept nogil:
    """Fill in sizes and offsets (the layout in the module docstring)."""
    cdef Py_ssize_t o = 0
    net.continuous = continuous
    net.obs_dim = obs_dim
    net.h1 = h1
    net.h2 = h2
    net.n_actions = n_actions
    net.a_w1 = o; o += <Py_ssize_t>h1 * obs_dim
    net.a_b1 = o; o += h1
    net.a_w2 = o; o += <Py_ssize_t>h2 * h1
    net.a_b2 = o; o += h2
    net.a_w3 = o; o += <Py_ssize_t>n_actions * h2
    net.a_b3 = o; o += n_actions
    net.c_w1 = o; o += <Py_ssize_t>h1 * obs_dim
    net.c_b1 = o; o += h1
    net.c_w2 = o; o += <Py_ssize_t>h2 * h1
    net.c_b2 = o; o += h2
    net.c_w3 = o; o += h2
    net.c_b3 = o; o += 1
    net.a_logstd = o
    if continuous:
        o += n_actions
    net.n_params = o
    net.fwd_row = 2 * <Py_ssize_t>h1 + 2 * <Py_ssize_t>h2 + n_actions  # a1, a2, logp, c1, c2


cdef inline double _log_softmax(const double *z, int n, double *logp) noexcept nogil:
    """logp = z - logsumexp(z) (stable); returns the entropy -sum p log p."""
    cdef int j
    cdef double m = z[0], s = 0.0, lse, h = 0.0
    for j in range(1, n):
        if z[j] > m:
            m = z[j]
    for j in range(n):
        s += exp(z[j] - m)
    lse = m + log(s)
    for j in range(n):
        logp[j] = z[j] - lse
        h -= exp(logp[j]) * logp[j]
    return h


cdef double HALF_LOG_2PI = 0.91893853320467274178  # log(2 pi) / 2


cdef inline double _gaussian_entropy(const double *log_std, int n) noexcept nogil:
    """Entropy of a diagonal Gaussian: sum of (1/2 + log(2 pi)/2 + log_std), as torch's Normal."""
    cdef double h = 0.0
    cdef int j
    for j in range(n):
        h += 0.5 + HALF_LOG_2PI + log_std[j]
    return h


cdef inline void _dense_t(const double *w, const double *b, const double *xt, int n_in, int n_out, Py_ssize_t m,
                          bint squash, double *ot) noexcept nogil:
    """ot (n_out, m) = W xt + b, or tanh of it, for m inputs at once (xt: (n_in, m), W (n_out, n_in)).

    Feature-major, so that the m inputs of one feature are one row of the product (mlp.h);
    each output adds the bias, then its n_in products in ascending order.
    """
    cdef int i
    cdef Py_ssize_t e
    for i in range(n_out):
        for e in range(m):
            ot[i * m + e] = b[i]
    dp_gemm_acc(n_out, <int>m, n_in, w, n_in, 1, xt, m, ot, m)
    if squash:
        dp_tanh(ot, n_out * m)


cdef inline Py_ssize_t _padded(Py_ssize_t m) noexcept nogil:
    """m rounded up to whole blocks of 8 columns: mlp.h's product then computes every column in
    its register blocks, never in its scalar remainder, so that an observation's forward is the
    same in a batch of any size (and predict(obs) equals the rollout's action probabilities)."""
    return (m + 7) // 8 * 8


cdef Py_ssize_t a2c_batch_scratch(const A2cNet *net, Py_ssize_t m) noexcept nogil:
    """Doubles of scratch a2c_forward_batch needs for m observations."""
    return (net.obs_dim + 2 * <Py_ssize_t>net.h1 + 2 * <Py_ssize_t>net.h2 + net.n_actions + 1) * _padded(m)


cdef void a2c_forward_batch(const A2cNet *net, const double *p, const double *obs, Py_ssize_t m, double *acts,
                            double *logits, double *entropy, double *values, double *scratch) noexcept nogil:
    """Forward of m observations (m, obs_dim) at once.

    Writes each sample's activations to ``acts`` (m, fwd_row): a1 (h1), a2 (h2), logp
    (n_actions; continuous: the mean), c1 (h1), c2 (h2), what :func:`a2c_loss_grad_from`
    reads; its logits (the mean), entropy and value. ``scratch``: a2c_batch_scratch(net, m) doubles.
    """
    cdef int h1 = net.h1, h2 = net.h2, na = net.n_actions, d = net.obs_dim, j
    cdef Py_ssize_t e, row = net.fwd_row, mp = _padded(m)
    cdef double *xt = scratch  # feature-major, mp columns, the last mp - m zero
    cdef double *a1t = xt + d * mp
    cdef double *a2t = a1t + h1 * mp
    cdef double *zt = a2t + h2 * mp
    cdef double *c1t = zt + na * mp
    cdef double *c2t = c1t + h1 * mp
    cdef double *vt = c2t + h2 * mp
    cdef double *out
    for j in range(d):
        for e in range(m):
            xt[j * mp + e] = obs[e * d + j]
        for e in range(m, mp):
            xt[j * mp + e] = 0.0
    _dense_t(p + net.a_w1, p + net.a_b1, xt, d, h1, mp, True, a1t)
    _dense_t(p + net.a_w2, p + net.a_b2, a1t, h1, h2, mp, True, a2t)
    _dense_t(p + net.a_w3, p + net.a_b3, a2t, h2, na, mp, False, zt)
    _dense_t(p + net.c_w1, p + net.c_b1, xt, d, h1, mp, True, c1t)
    _dense_t(p + net.c_w2, p + net.c_b2, c1t, h1, h2, mp, True, c2t)
    _dense_t(p + net.c_w3, p + net.c_b3, c2t, h2, 1, mp, False, vt)
    for e in range(m):
        out = acts + e * row
        for j in range(h1):
            out[j] = a1t[j * mp + e]
            out[h1 + h2 + na + j] = c1t[j * mp + e]
        for j in range(h2):
            out[h1 + j] = a2t[j * mp + e]
            out[2 * h1 + h2 + na + j] = c2t[j * mp + e]
        for j in range(na):
            logits[e * na + j] = zt[j * mp + e]
        if net.continuous:  # the mean in the log-probabilities' place; the entropy is the state's own
            for j in range(na):
                out[h1 + h2 + j] = logits[e * na + j]
            entropy[e] = _gaussian_entropy(p + net.a_logstd, na)
        else:
            entropy[e] = _log_softmax(logits + e * na, na, out + h1 + h2)
        values[e] = vt[e]


cdef Py_ssize_t a2c_forward_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil:
    """Doubles of scratch a2c_forward needs for n observations."""
    return n * net.fwd_row + a2c_batch_scratch(net, n)


cdef void a2c_forward(const A2cNet *net, const double *params, const double *obs, Py_ssize_t n,
                      double *logits, double *log_probs, double *entropy, double *values,
                      double *scratch) noexcept nogil:
    """Forward of n observations (n, obs_dim): logits and log-probabilities (n, n_actions; continuous:
    the mean twice), entropy, value.

    ``scratch``: a2c_forward_scratch(net, n) doubles.
    """
    cdef Py_ssize_t t, row = net.fwd_row, lp_at = net.h1 + net.h2
    cdef int j, na = net.n_actions
    a2c_forward_batch(net, params, obs, n, scratch, logits, entropy, values, scratch + n * row)
    for t in range(n):
        for j in range(na):
            log_probs[t * na + j] = scratch[t * row + lp_at + j]


cdef inline void _layer_back(int n, int n_out, int n_in, const double *dz, const double *w, const double *x,
                             Py_ssize_t ldx, double *gw, double *gb, double *dx) noexcept nogil:
    """Back through one layer ``z = W x + b`` of n samples, given dz = dloss/dz (n, n_out): adds
    ``dz^T x`` to gw (n_out, n_in) and the column sums of dz to gb; with dx, writes
    dloss/d(pre-activation of x) = ``(dz W) * (1 - x^2)`` (x came out of a tanh) to dx (n, n_in)."""
    cdef Py_ssize_t t, k
    cdef int i
    dp_gemm_acc(n_out, n_in, n, dz, 1, n_out, x, ldx, gw, n_in)
    for t in range(n):
        for i in range(n_out):
            gb[i] += dz[t * n_out + i]
    if dx == NULL:
        return
    for k in range(<Py_ssize_t>n * n_in):
        dx[k] = 0.0
    dp_gemm_acc(n, n_in, n_out, dz, n_out, 1, w, n_in, dx, n_in)
    for t in range(n):
        for k in range(n_in):
            dx[t * n_in + k] *= 1.0 - x[t * ldx + k] * x[t * ldx + k]


cdef inline void _backward_mlp(const A2cNet *net, const double *p, double *g, const double *obs, Py_ssize_t n,
                               Py_ssize_t w1, Py_ssize_t b1, Py_ssize_t w2, Py_ssize_t b2, Py_ssize_t w3,
                               Py_ssize_t b3, int n_out, const double *a1, const double *a2, Py_ssize_t row,
                               const double *dz, double *d1, double *d2) noexcept nogil:
    """Add the gradient of n samples to g, given dloss/d(output) dz (n, n_out) and the activations
    a1, a2 (rows of ``row`` doubles). d1 (n, h1), d2 (n, h2): scratch. Each weight's gradient
    adds its samples in order, as matrix products (mlp.h) over the batch."""
    cdef int N = <int>n
    _layer_back(N, n_out, net.h2, dz, p + w3, a2, row, g + w3, g + b3, d2)
    _layer_back(N, net.h2, net.h1, d2, p + w2, a1, row, g + w2, g + b2, d1)
    _layer_back(N, net.h1, net.obs_dim, d1, p + w1, obs, net.obs_dim, g + w1, g + b1, NULL)


cdef Py_ssize_t a2c_grad_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil:
    """Doubles of scratch a2c_loss_grad_from needs for n samples (a2c_loss_grad: see there)."""
    return n * (net.n_actions + 1 + net.h1 + net.h2)


cdef void a2c_loss_grad(const A2cNet *net, const double *params, const double *obs, const int64_t *actions,
                        const double *cactions, const double *advantages, const double *returns, Py_ssize_t n, double ent_coef,
                        double vf_coef, bint normalize_advantage, double *grad, double *stats,
                        double *scratch) noexcept nogil:
    """Gradient of SB3's A2C loss over n samples, written (not added) into grad (n_params).

    ``loss = -mean(A * log pi(a|s)) - ent_coef * mean(H) + vf_coef * mean((R - V)^2)``, with
    A and R constants; with ``normalize_advantage`` A is ``(A - mean) / (std + 1e-8)``, std
    with n - 1 degrees of freedom as torch's (n >= 2: the caller checks). stats receives
    (loss, policy_loss, value_loss, entropy_loss). Discrete actions (``actions``) must be in
    range (the caller checks); continuous ones are ``cactions`` (n, n_actions), actions NULL.
    Runs the forward first; :func:`a2c_loss_grad_from` takes it from a rollout instead.
    ``scratch``: a2c_loss_scratch(net, n) doubles.
    """
    cdef Py_ssize_t row = net.fwd_row
    cdef double *acts = scratch
    cdef double *entropy = acts + n * row
    cdef double *values = entropy + n
    cdef double *logits = values + n
    cdef double *rest = logits + n * net.n_actions
    a2c_forward_batch(net, params, obs, n, acts, logits, entropy, values, rest)
    a2c_loss_grad_from(net, params, obs, actions, cactions, advantages, returns, n, ent_coef, vf_coef,
                       normalize_advantage, acts, entropy, values, grad, stats, rest)


cdef Py_ssize_t a2c_loss_scratch(const A2cNet *net, Py_ssize_t n) noexcept nogil:
    """Doubles of scratch a2c_loss_grad needs for n samples."""
    cdef Py_ssize_t fwd = a2c_batch_scratch(net, n), grad = a2c_grad_scratch(net, n)
    return n * (net.fwd_row + 2 + net.n_actions) + (fwd if fwd > grad else grad)


cdef void a2c_loss_grad_from(const A2cNet *net, const double *params, const double *obs, const int64_t *actions,
                             const double *cactions, const double *advantages, const double *returns, Py_ssize_t n, double ent_coef,
                             double vf_coef, bint normalize_advantage, const double *acts, const double *entropy,
                             const double *values, double *grad, double *stats, double *scratch) noexcept nogil:
    """``a2c_loss_grad`` from the forward a rollout already ran on the same ``params``
    (``a2c_forward_batch``'s acts, entropy and values): the same gradient without a second
    forward. ``scratch``: a2c_grad_scratch(net, n) doubles."""
    cdef int h1 = net.h1, h2 = net.h2, na = net.n_actions, j
    cdef Py_ssize_t row = net.fwd_row, t, i
    cdef double *dz = scratch          # (n, n_actions): dloss / dlogits
    cdef double *dv = dz + n * na      # (n): dloss / dvalue
    cdef double *d1 = dv + n           # (n, h1)
    cdef double *d2 = d1 + n * h1      # (n, h2)
    cdef const double *logp
    cdef double inv_n = 1.0 / n
    cdef double mean_adv = 0.0, std_adv = 0.0, adv, h, v, pj, z, logp_a
    cdef double policy_loss = 0.0, value_loss = 0.0, entropy_sum = 0.0
    for i in range(net.n_params):
        grad[i] = 0.0
    if normalize_advantage:
        for t in range(n):
            mean_adv += advantages[t]
        mean_adv = mean_adv / n
        for t in range(n):
            std_adv += (advantages[t] - mean_adv) * (advantages[t] - mean_adv)
        std_adv = sqrt(std_adv / (n - 1)) + 1e-8
    for t in range(n):
        logp = acts + t * row + h1 + h2
        h = entropy[t]
        v = values[t]
        adv = (advantages[t] - mean_adv) / std_adv if normalize_advantage else advantages[t]
        value_loss += (returns[t] - v) * (returns[t] - v)
        entropy_sum += h
        dv[t] = vf_coef * 2.0 * inv_n * (v - returns[t])
        if net.continuous:
            # logp(a) = sum_j -z_j^2 / 2 - log_std_j - log(2 pi) / 2, z_j = (a_j - mu_j) / std_j (mu: logp's place)
            # d(-adv/n logp)/d mu_j = -adv/n z_j / std_j; d/d log_std_j = -adv/n (z_j^2 - 1)
            logp_a = 0.0
            for j in range(na):
                z = (cactions[t * na + j] - logp[j]) * exp(-params[net.a_logstd + j])
                logp_a -= 0.5 * z * z + params[net.a_logstd + j] + HALF_LOG_2PI
                dz[t * na + j] = -inv_n * adv * z * exp(-params[net.a_logstd + j])
                grad[net.a_logstd + j] -= inv_n * adv * (z * z - 1.0)
            policy_loss -= adv * logp_a
            continue
        policy_loss -= adv * logp[actions[t]]
        # d/dz_j of -adv/n * logp[a] - ent_coef/n * H: -adv/n (1[j=a] - p_j) + ent_coef/n p_j (logp_j + H)
        for j in range(na):
            pj = exp(logp[j])
            dz[t * na + j] = inv_n * (adv * pj + ent_coef * pj * (logp[j] + h))
        dz[t * na + actions[t]] -= inv_n * adv
    if net.continuous:  # the entropy bonus: d(-ent_coef mean(H))/d log_std_j = -ent_coef
        for j in range(na):
            grad[net.a_logstd + j] -= ent_coef
    _backward_mlp(net, params, grad, obs, n, net.a_w1, net.a_b1, net.a_w2, net.a_b2, net.a_w3, net.a_b3,
                  na, acts, acts + h1, row, dz, d1, d2)
    _backward_mlp(net, params, grad, obs, n, net.c_w1, net.c_b1, net.c_w2, net.c_b2, net.c_w3, net.c_b3,
                  1, acts + h1 + h2 + na, acts + 2 * h1 + h2 + na, row, dv, d1, d2)
    policy_loss *= inv_n
    value_loss *= inv_n
    stats[1] = policy_loss
    stats[2] = value_loss
    stats[3] = -entropy_sum * inv_n
    stats[0] = policy_loss + ent_coef * stats[3] + vf_coef * value_loss


cdef double a2c_clip_grad_norm(double *grad, Py_ssize_t n, double max_norm) noexcept nogil:
    """torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6) when that is < 1; returns the norm."""
    cdef Py_ssize_t i
    cdef double total = sqrt(dp_dot(grad, grad, <int>n)), coef
    coef = max_norm / (total + 1e-6)
    if not coef >= 1.0:  # NaN norms scale to NaN, as torch's
        for i in range(n):
            grad[i] = grad[i] * coef
    return total


cdef void a2c_snapshot(const double *shared, double *local, Py_ssize_t n) noexcept nogil:
    """A thread's private copy of the shared parameters, read with relaxed loads."""
    cdef Py_ssize_t i
    for i in range(n):
        local[i] = dp_load(&shared[i])


cdef void a2c_rmsprop_step(double *params, double *square_avg, const double *grad, Py_ssize_t n,
                           double lr, double alpha, double eps, bint shared) noexcept nogil:
    """torch.optim.RMSprop (no momentum, not centred, no weight decay).

    ``square_avg = alpha * square_avg + (1 - alpha) * g^2``; ``p -= lr * g / (sqrt(square_avg) + eps)``.
    With ``shared``, other threads may read and write params and square_avg meanwhile: relaxed
    atomics. Without, the caller is their only user and the loop vectorises (same results).
    """
    cdef Py_ssize_t i
    cdef double g, sq
    if not shared:
        for i in range(n):
            g = grad[i]
            sq = alpha * square_avg[i] + (1.0 - alpha) * g * g
            square_avg[i] = sq
            params[i] = params[i] - lr * (g / (sqrt(sq) + eps))
        return
    for i in range(n):
        g = grad[i]
        sq = alpha * dp_load(&square_avg[i]) + (1.0 - alpha) * g * g
        dp_store(&square_avg[i], sq)
        dp_store(&params[i], dp_load(&params[i]) - lr * (g / (sqrt(sq) + eps)))


cdef void a2c_adam_step(double *params, double *exp_avg, double *exp_avg_sq, const double *grad, Py_ssize_t n,
                        double lr, double beta1, double beta2, double eps, long long step,
                        bint shared) noexcept nogil:
    """torch.optim.Adam (not amsgrad, no weight decay) step ``step`` (1-based).

    As torch computes it: ``m += (1 - beta1) (g - m)``, ``v = beta2 v + (1 - beta2) g^2``,
    ``p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)``. With
    ``shared``, other threads may use the moments and parameters meanwhile: relaxed loads
    and stores; without, a plain loop that vectorises (same results).
    """
    cdef Py_ssize_t i
    cdef double g, m, v
    cdef double step_size = lr / (1.0 - pow(beta1, <double>step))
    cdef double bc2_sqrt = sqrt(1.0 - pow(beta2, <double>step))
    if not shared:
        for i in range(n):
            g = grad[i]
            m = exp_avg[i] + (1.0 - beta1) * (g - exp_avg[i])
            v = beta2 * exp_avg_sq[i] + (1.0 - beta2) * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            params[i] = params[i] - step_size * (m / (sqrt(v) / bc2_sqrt + eps))
        return
    for i in range(n):
        g = grad[i]
        m = dp_load(&exp_avg[i])
        m = m + (1.0 - beta1) * (g - m)
        v = beta2 * dp_load(&exp_avg_sq[i]) + (1.0 - beta2) * g * g
        dp_store(&exp_avg[i], m)
        dp_store(&exp_avg_sq[i], v)
        dp_store(&params[i], dp_load(&params[i]) - step_size * (m / (sqrt(v) / bc2_sqrt + eps)))


cdef void a2c_gae(const double *rewards, const double *values, const uint8_t *episode_starts,
                  const double *last_values, const uint8_t *dones, Py_ssize_t n_steps, Py_ssize_t n_envs,
                  double gamma, double gae_lambda, double *advantages, double *returns) noexcept nogil:
    """SB3's RolloutBuffer.compute_returns_and_advantage over (n_steps, n_envs) arrays.

    ``episode_starts[t]`` says the observation of step t began an episode; ``dones`` and
    ``last_values`` belong to the observation after the last step. returns = advantages + values.
    """
    cdef Py_ssize_t t, e, k
    cdef double next_non_terminal, next_value, delta, last_gae
    for e in range(n_envs):
        last_gae = 0.0
        t = n_steps - 1
        while t >= 0:
            k = t * n_envs + e
            if t == n_steps - 1:
                next_non_terminal = 1.0 - dones[e]
                next_value = last_values[e]
            else:
                next_non_terminal = 1.0 - episode_starts[k + n_envs]
                next_value = values[k + n_envs]
            delta = rewards[k] + gamma * next_value * next_non_terminal - values[k]
            last_gae = delta + gamma * gae_lambda * next_non_terminal * last_gae
            advantages[k] = last_gae
            returns[k] = last_gae + values[k]
            t -= 1


cdef double a2c_train_step(const A2cNet *net, double *shared_params, double *square_avg, const double *obs,
                           const int64_t *actions, const double *advantages, const double *returns,
                           Py_ssize_t n, double ent_coef, double vf_coef, bint normalize_advantage,
                           double max_grad_norm, double lr, double alpha, double eps, double *local_params,
                           double *grad, double *stats, double *scratch) noexcept nogil:
    """One A2C update of one rollout (discrete actions): snapshot, loss gradient, clipping, RMSprop;
    returns the grad norm."""
    cdef double norm
    a2c_snapshot(shared_params, local_params, net.n_params)
    a2c_loss_grad(net, local_params, obs, actions, NULL, advantages, returns, n, ent_coef, vf_coef,
                  normalize_advantage, grad, stats, scratch)
    norm = a2c_clip_grad_norm(grad, net.n_params, max_grad_norm)
    a2c_rmsprop_step(shared_params, square_avg, grad, net.n_params, lr, alpha, eps, True)
    return norm


# ---------------------------------------------------------------- def entries (checked)

cdef A2cNet _checked_net(Py_ssize_t n_params, int obs_dim, int h1, int h2, int n_actions,
                         bint continuous=False) except *:
    cdef A2cNet net
    if obs_dim < 1 or h1 < 1 or h2 < 1:
        raise ValueError(f"obs_dim, h1 and h2 must be >= 1, got {obs_dim}, {h1}, {h2}")
    if n_actions < (1 if continuous else 2):
        raise ValueError(f"n_actions must be >= {1 if continuous else 2}, got {n_actions}")
    a2c_net_init(&net, obs_dim, h1, h2, n_actions, continuous)
    if n_params != net.n_params:
        raise ValueError(f"params has {n_params} values; obs_dim={obs_dim}, hidden=({h1}, {h2}), "
                         f"n_actions={n_actions}{', continuous' if continuous else ''} needs {net.n_params}")
    return net


def n_params(int obs_dim, int h1, int h2, int n_actions, bint continuous=False):
    """Length of the flat parameter vector of this network."""
    cdef A2cNet net
    a2c_net_init(&net, obs_dim, h1, h2, n_actions, continuous)
    return net.n_params


def _check_batch(obs, Py_ssize_t obs_dim, Py_ssize_t n, **arrays):
    if obs.shape[1] != obs_dim:
        raise ValueError(f"obs has {obs.shape[1]} columns, the network takes {obs_dim}")
    if n < 1:
        raise ValueError("the batch is empty")
    for name, a in arrays.items():
        if a.shape[0] != n:
            raise ValueError(f"{name} has {a.shape[0]} values for {n} observations")


def _check_actions(const int64_t[::1] actions, int n_actions):
    cdef Py_ssize_t t
    for t in range(actions.shape[0]):
        if actions[t] < 0 or actions[t] >= n_actions:
            raise ValueError(f"actions[{t}] = {actions[t]} is not in [0, {n_actions})")


def py_tanh(const double[::1] x):
    """tanh of each value by the kernels' vectorised routine (``mlp.h``), for tests."""
    out = np.array(x, dtype=np.float64)
    cdef double[::1] o = out
    if o.shape[0]:
        with nogil:
            dp_tanh(&o[0], o.shape[0])
    return out


def py_forward(const double[::1] params, const double[:, ::1] obs, int h1, int h2, int n_actions,
               bint continuous=False):
    """Forward of a batch: ``(logits, log_probs, entropy, values)``, shapes (T, A), (T, A), (T,), (T,).

    With ``continuous``: ``(mean, log_std, entropy, values)``, log_std repeated on every row.
    """
    cdef A2cNet net = _checked_net(params.shape[0], obs.shape[1], h1, h2, n_actions, continuous)
    cdef Py_ssize_t n = obs.shape[0]
    _check_batch(obs, net.obs_dim, n)
    logits = np.empty((n, n_actions))
    log_probs = np.empty((n, n_actions))
    entropy = np.empty(n)
    values = np.empty(n)
    # batches of at most 64 observations: their activations stay in the L1 cache
    cdef Py_ssize_t chunk = min(n, 64), start, m, e, j, lp_at = net.h1 + net.h2
    acts = np.empty((chunk, net.fwd_row))
    scratch = np.empty(a2c_batch_scratch(&net, chunk))
    cdef double[:, ::1] lg = logits, lp = log_probs, ac = acts
    cdef double[::1] en = entropy, va = values, sc = scratch
    start = 0
    with nogil:
        while start < n:
            m = min(chunk, n - start)
            a2c_forward_batch(&net, &params[0], &obs[start, 0], m, &ac[0, 0], &lg[start, 0], &en[start],
                              &va[start], &sc[0])
            for e in range(m):
                for j in range(n_actions):
                    lp[start + e, j] = params[net.a_logstd + j] if continuous else ac[e, lp_at + j]
            start += m
    return logits, log_probs, entropy, values


def py_loss_grad(const double[::1] params, const double[:, ::1] obs, actions,
                 const double[::1] advantages, const double[::1] returns, int h1, int h2, int n_actions,
                 double ent_coef=0.0, double vf_coef=0.5, bint normalize_advantage=False, bint continuous=False):
    """``(grad, (loss, policy_loss, value_loss, entropy_loss))`` of SB3's A2C loss on a batch.

    ``actions``: int64 (T,) in [0, n_actions); with ``continuous``, float64 (T, n_actions).
    """
    cdef A2cNet net = _checked_net(params.shape[0], obs.shape[1], h1, h2, n_actions, continuous)
    cdef Py_ssize_t n = obs.shape[0]
    cdef const int64_t[::1] da = None
    cdef const double[:, ::1] ca = None
    if continuous:
        ca = actions
        if ca.shape[1] != n_actions:
            raise ValueError(f"actions have {ca.shape[1]} columns, the policy {n_actions}")
        if not np.isfinite(np.asarray(ca)).all():
            raise ValueError("actions must be finite")
        _check_batch(obs, net.obs_dim, n, actions=ca, advantages=advantages, returns=returns)
    else:
        da = actions
        _check_batch(obs, net.obs_dim, n, actions=da, advantages=advantages, returns=returns)
        _check_actions(da, n_actions)
    if normalize_advantage and n < 2:
        raise ValueError("normalize_advantage needs at least 2 samples (the std of one is undefined)")
    grad = np.empty(net.n_params)
    stats = np.empty(4)
    scratch = np.empty(a2c_loss_scratch(&net, n))
    cdef double[::1] g = grad, st = stats, sc = scratch
    cdef const int64_t *pa = NULL if continuous else &da[0]
    cdef const double *pc = &ca[0, 0] if continuous else NULL
    with nogil:
        a2c_loss_grad(&net, &params[0], &obs[0, 0], pa, pc, &advantages[0], &returns[0], n,
                      ent_coef, vf_coef, normalize_advantage, &g[0], &st[0], &sc[0])
    return grad, tuple(stats)


def py_clip_grad_norm(double[::1] grad, double max_norm):
    """Clip ``grad`` in place as torch's ``clip_grad_norm_``; returns the norm before clipping."""
    if grad.shape[0] == 0:
        raise ValueError("grad is empty")
    if not max_norm > 0.0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    cdef double norm
    with nogil:
        norm = a2c_clip_grad_norm(&grad[0], grad.shape[0], max_norm)
    return norm


def py_rmsprop_step(double[::1] params, double[::1] square_avg, const double[::1] grad, double lr,
                    double alpha=0.99, double eps=1e-5, bint shared=True):
    """One torch RMSprop step on ``params`` and ``square_avg`` in place (``shared``: the atomic loop)."""
    cdef Py_ssize_t n = params.shape[0]
    if n == 0 or square_avg.shape[0] != n or grad.shape[0] != n:
        raise ValueError(f"params, square_avg and grad must have one non-zero length, got "
                         f"{n}, {square_avg.shape[0]}, {grad.shape[0]}")
    with nogil:
        a2c_rmsprop_step(&params[0], &square_avg[0], &grad[0], n, lr, alpha, eps, shared)


def py_adam_step(double[::1] params, double[::1] exp_avg, double[::1] exp_avg_sq, const double[::1] grad,
                 double lr, double beta1=0.9, double beta2=0.999, double eps=1e-5, long long step=1,
                 bint shared=True):
    """Adam step ``step`` (1-based) on ``params`` and the moments in place, as torch's (``shared``: the atomic loop)."""
    cdef Py_ssize_t n = params.shape[0]
    if n == 0 or exp_avg.shape[0] != n or exp_avg_sq.shape[0] != n or grad.shape[0] != n:
        raise ValueError(f"params, exp_avg, exp_avg_sq and grad must have one non-zero length, got "
                         f"{n}, {exp_avg.shape[0]}, {exp_avg_sq.shape[0]}, {grad.shape[0]}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    with nogil:
        a2c_adam_step(&params[0], &exp_avg[0], &exp_avg_sq[0], &grad[0], n, lr, beta1, beta2, eps, step, shared)


def py_gae(const double[:, ::1] rewards, const double[:, ::1] values, const uint8_t[:, ::1] episode_starts,
           const double[::1] last_values, const uint8_t[::1] dones, double gamma, double gae_lambda):
    """``(advantages, returns)`` as SB3's ``compute_returns_and_advantage``; arrays (n_steps, n_envs)."""
    cdef Py_ssize_t n_steps = rewards.shape[0], n_envs = rewards.shape[1]
    if n_steps < 1 or n_envs < 1:
        raise ValueError(f"rewards must be (n_steps, n_envs) with both >= 1, got ({n_steps}, {n_envs})")
    for name, a in (("values", values), ("episode_starts", episode_starts)):
        if a.shape[0] != n_steps or a.shape[1] != n_envs:
            raise ValueError(f"{name} has shape ({a.shape[0]}, {a.shape[1]}), rewards ({n_steps}, {n_envs})")
    for name, a in (("last_values", last_values), ("dones", dones)):
        if a.shape[0] != n_envs:
            raise ValueError(f"{name} has {a.shape[0]} values for {n_envs} envs")
    advantages = np.empty((n_steps, n_envs))
    returns = np.empty((n_steps, n_envs))
    cdef double[:, ::1] adv = advantages, ret = returns
    with nogil:
        a2c_gae(&rewards[0, 0], &values[0, 0], &episode_starts[0, 0], &last_values[0], &dones[0],
                n_steps, n_envs, gamma, gae_lambda, &adv[0, 0], &ret[0, 0])
    return advantages, returns


def train_step(double[::1] params, double[::1] square_avg, const double[:, ::1] obs,
               const int64_t[::1] actions, const double[::1] advantages, const double[::1] returns,
               int h1, int h2, int n_actions, double ent_coef, double vf_coef, bint normalize_advantage,
               double max_grad_norm, double lr, double alpha=0.99, double eps=1e-5):
    """One A2C update in place (snapshot, gradient, clipping, RMSprop); returns ``(grad_norm, stats)``."""
    cdef A2cNet net = _checked_net(params.shape[0], obs.shape[1], h1, h2, n_actions)
    cdef Py_ssize_t n = obs.shape[0]
    _check_batch(obs, net.obs_dim, n, actions=actions, advantages=advantages, returns=returns)
    _check_actions(actions, n_actions)
    if square_avg.shape[0] != net.n_params:
        raise ValueError(f"square_avg has {square_avg.shape[0]} values for {net.n_params} parameters")
    if normalize_advantage and n < 2:
        raise ValueError("normalize_advantage needs at least 2 samples (the std of one is undefined)")
    if not max_grad_norm > 0.0:
        raise ValueError(f"max_grad_norm must be > 0, got {max_grad_norm}")
    local = np.empty(net.n_params)
    grad = np.empty(net.n_params)
    stats = np.empty(4)
    scratch = np.empty(a2c_loss_scratch(&net, n))
    cdef double[::1] lo = local, g = grad, st = stats, sc = scratch
    cdef double norm
    with nogil:
        norm = a2c_train_step(&net, &params[0], &square_avg[0], &obs[0, 0], &actions[0], &advantages[0],
                              &returns[0], n, ent_coef, vf_coef, normalize_advantage, max_grad_norm, lr,
                              alpha, eps, &lo[0], &g[0], &st[0], &sc[0])
    return norm, tuple(stats)
