"""HSA2C inside one process: A2C's rollout + learn loop with Hogwild! threads, in C.

Each OpenMP thread owns ``n_envs`` C environments (``envs.pxd``; env ``e`` of thread
``tid`` resets from RNG stream ``tid * n_envs + e`` of the seed, so thread 0's envs draw
as ``dpsgd.envs.make(name, n_envs, seed)``'s do) and its own policy RNG (stream
``2**63 + tid``), and repeats until ``n_updates`` updates were claimed by all threads
together (a shared counter, atomic fetch-add):

1. snapshot the shared parameters with relaxed loads (``a2c_snapshot``);
2. roll out ``n_steps`` steps of its envs on that snapshot, actions drawn from the
   categorical policy (or, for a continuous env, the Gaussian: mean + std * a Box-Muller
   normal draw, unclipped: the env clips), observations float32 -> float64 for the network;
3. bootstrap as Stable-Baselines3's ``OnPolicyAlgorithm.collect_rollouts`` does with a
   ``DummyVecEnv`` (which resets a finished env at once, "SameStep"): an episode cut by
   the time limit (truncated and not terminated) gets ``gamma * V(terminal observation)``
   added to its last reward; ``dones`` = terminated or truncated, the next step's
   ``episode_starts``; the values after the last step bootstrap the GAE (``a2c_gae``);
4. the gradient of SB3's A2C loss on the snapshot (``a2c_loss_grad``), clipped
   (``a2c_clip_grad_norm``), applied by RMSprop (or Adam) to the shared parameters and the
   shared optimizer statistics with relaxed loads and stores, without locks
   (``a2c_rmsprop_step``, ``a2c_adam_step``: Adam's step is the update's ticket), or to
   the thread's own statistics with ``shared_stats=False`` (Adam's step: its own count).

Finished episodes (the env's own rewards, not the bootstrapped ones) are written at an
index taken by an atomic fetch-add: return, length, and the env steps of the run when the
episode ended, counted as ``update_ticket * n_envs * n_steps + (t + 1) * n_envs`` (with one
thread, SB3's ``num_timesteps`` at that step). One thread with a seed is bit-reproducible;
with more, the episode order and the parameters depend on the interleaving.

All scratch is allocated (NumPy, per-thread rows) before the parallel region; the region
holds no GIL and allocates nothing. ``rollout_record`` runs the same loop on one thread and
keeps every rollout buffer, so that tests can check the bookkeeping against NumPy.
"""
import numpy as np

from cython.parallel cimport parallel, threadid
from libc.math cimport cos, exp, isfinite, log, sqrt, M_PI
from libc.stdint cimport int64_t, uint8_t, uint64_t

from dpsgd._kernels.a2c cimport (A2cNet, a2c_net_init, a2c_forward, a2c_forward_batch, a2c_batch_scratch,
                                 a2c_forward_scratch, a2c_grad_scratch, a2c_loss_grad_from, a2c_clip_grad_norm,
                                 a2c_snapshot, a2c_rmsprop_step, a2c_adam_step, a2c_gae)
from dpsgd._kernels.atomics cimport dp_fetch_add_i64, dp_load_i64
from dpsgd._kernels.envs cimport EnvSpec, spec_of, CARTPOLE, ACROBOT, PENDULUM
from dpsgd._kernels.rng cimport rng_t, rng_seed, rng_uniform

# the policy's outputs for each env id: discrete actions (the envs kernel does not know them;
# dpsgd.envs.ENVS says the same), or the length of a continuous action (the kernel's action_dim)
N_ACTIONS = {CARTPOLE: 2, ACROBOT: 3, PENDULUM: 1}

# counters: cells on separate cache lines
cdef enum:
    C_UPDATES = 0    # update tickets handed out
    C_EPISODES = 8   # episode indices handed out
    C_DIVERGED = 16  # non-zero: a gradient norm was not finite
    N_COUNTERS = 24

cdef uint64_t POLICY_STREAM = (<uint64_t>1) << 63


ctypedef struct Config:
    A2cNet net
    EnvSpec spec
    int n_envs
    int n_steps
    int n_threads           # 1: the optimizer's loops need no atomics and vectorise
    long long n_updates
    int64_t step_base       # env steps before this run (added to the episodes' steps)
    int64_t max_episode_steps
    uint64_t seed
    double gamma, gae_lambda, ent_coef, vf_coef, max_grad_norm, lr, alpha, eps
    bint normalize_advantage
    bint adam               # Adam (beta1, beta2, eps) instead of RMSprop (alpha, eps)
    bint norm_obs           # VecNormalize: observations by running mean and variance, clipped
    bint norm_reward        # VecNormalize: rewards by the running std of the discounted return, clipped
    const double *norm_init # the statistics every thread starts from (NORM_SIZE(obs_dim) values)
    double beta1, beta2
    long long adam_steps    # Adam's steps before this run
    double *params          # shared
    double *square_avg      # shared: RMSprop's square averages, or Adam's first moments then second
    bint private_stats      # each thread keeps its own optimizer statistics (A3C's unshared variant)
    double *tstats          # private_stats: thread tid's at tstats + tid * tstats_row
    Py_ssize_t tstats_row
    long long *tsteps       # private_stats: Adam steps of thread tid at tsteps[8 * tid] (own cache line)
    long long *counters     # shared (C_UPDATES, C_EPISODES, C_DIVERGED)
    double *ep_returns
    int64_t *ep_lengths
    int64_t *ep_steps
    long long ep_capacity
    # per-thread scratch rows (row tid of each)
    double *dmem
    Py_ssize_t dmem_row
    float *fmem
    Py_ssize_t fmem_row
    int64_t *imem
    Py_ssize_t imem_row
    uint8_t *umem
    Py_ssize_t umem_row
    uint64_t *rmem
    Py_ssize_t rmem_row
    # what rollout_record keeps, per update (NULL: off; one thread only)
    double *rec_params
    double *rec_obs
    int64_t *rec_actions
    double *rec_cactions    # continuous actions (instead of rec_actions)
    double *rec_rewards
    double *rec_values
    uint8_t *rec_starts
    double *rec_last_values
    uint8_t *rec_dones
    double *rec_advantages
    double *rec_returns


cdef inline Py_ssize_t _pad(Py_ssize_t n) noexcept nogil:
    """Round up to whole 64-byte lines of 8-byte values, plus one line, so that rows share no line."""
    return (n + 7) // 8 * 8 + 8


cdef inline Py_ssize_t _net_scratch(const Config *c) noexcept nogil:
    """Scratch of the gradient of a rollout, or of the forward of every env's observation."""
    cdef Py_ssize_t g = a2c_grad_scratch(&c.net, <Py_ssize_t>c.n_envs * c.n_steps)
    cdef Py_ssize_t f = a2c_forward_scratch(&c.net, c.n_envs)
    return g if g > f else f


cdef void _sizes(const Config *c, Py_ssize_t *d, Py_ssize_t *f, Py_ssize_t *i, Py_ssize_t *u,
                 Py_ssize_t *r) noexcept nogil:
    cdef Py_ssize_t P = c.net.n_params, ne = c.n_envs, N = <Py_ssize_t>c.n_envs * c.n_steps
    cdef Py_ssize_t od = c.spec.obs_dim, na = c.net.n_actions
    # local params, grad, net scratch, stats (4), states, rollout obs, rewards, values, advantages,
    # returns, last values, episode returns, logits and log-probs (of every env), one float64
    # observation, the rollout's activations and entropies, the batched forward's scratch, each
    # env's network input and truncated last observation, raw rewards, the normaliser, the
    # discounted returns, a batch's moments, the last entropies, the continuous actions
    d[0] = _pad(2 * P + _net_scratch(c) + 4 + ne * c.spec.state_dim + N * od + 4 * N + 2 * ne + 2 * ne * na + od
                + N * c.net.fwd_row + N + a2c_batch_scratch(&c.net, ne)
                + 2 * ne * od + ne + _norm_size(od) + ne + 2 * od + ne + N * na)
    f[0] = 2 * _pad(ne * od)              # current float32 observations (whole lines)
    i[0] = _pad(N + 2 * ne)               # actions, elapsed, episode lengths
    u[0] = _pad(N + 2 * ne) * 8           # episode_starts, current starts, truncations (bytes, whole lines)
    r[0] = _pad(4 * (ne + 1))             # env RNGs, then the policy RNG


ctypedef struct Rows:
    # one thread's scratch, carved from its rows of the Config's memory
    double *local
    double *grad
    double *scratch
    double *stats
    double *state
    double *obs_buf
    double *rewards
    double *values
    double *advantages
    double *returns
    double *last_values
    double *ep_ret
    double *logits
    double *logp
    double *xd
    double *acts       # the rollout's activations (N, fwd_row), for the gradient
    double *entropy    # the rollout's entropies (N)
    double *batch      # a2c_forward_batch's scratch
    double *nobs       # each env's observation as the network sees it (normalised or not) (ne, od)
    double *tobs       # the last observation of an episode cut by the time limit (ne, od)
    double *raw_reward # this step's rewards as the envs gave them (ne)
    double *norm       # the normaliser: obs mean, obs var, obs count, return mean, var, count
    double *disc       # the discounted returns the reward normaliser tracks (ne)
    double *moments    # a batch's mean and variance of the observations (2 od)
    double *last_h     # the entropies of the observations after a rollout (ne)
    double *cact       # continuous actions, as sampled (N, n_actions)
    float *fobs
    int64_t *actions
    int64_t *elapsed
    int64_t *ep_len
    uint8_t *starts
    uint8_t *cur_start
    uint8_t *cut       # the env's episode ended by the time limit, not a termination (ne)
    rng_t *env_rng
    rng_t *pol


cdef void _carve(const Config *c, int tid, Rows *w) noexcept nogil:
    """Thread ``tid``'s rows, in the order ``_sizes`` counts them."""
    cdef Py_ssize_t P = c.net.n_params, ne = c.n_envs, N = <Py_ssize_t>c.n_envs * c.n_steps
    cdef Py_ssize_t od = c.spec.obs_dim, na = c.net.n_actions
    w.local = c.dmem + tid * c.dmem_row
    w.grad = w.local + P
    w.scratch = w.grad + P
    w.stats = w.scratch + _net_scratch(c)
    w.state = w.stats + 4
    w.obs_buf = w.state + ne * c.spec.state_dim
    w.rewards = w.obs_buf + N * od
    w.values = w.rewards + N
    w.advantages = w.values + N
    w.returns = w.advantages + N
    w.last_values = w.returns + N
    w.ep_ret = w.last_values + ne
    w.logits = w.ep_ret + ne
    w.logp = w.logits + ne * na
    w.xd = w.logp + ne * na
    w.acts = w.xd + od
    w.entropy = w.acts + N * c.net.fwd_row
    w.batch = w.entropy + N
    w.nobs = w.batch + a2c_batch_scratch(&c.net, ne)
    w.tobs = w.nobs + ne * od
    w.raw_reward = w.tobs + ne * od
    w.norm = w.raw_reward + ne
    w.disc = w.norm + _norm_size(od)
    w.moments = w.disc + ne
    w.last_h = w.moments + 2 * od
    w.cact = w.last_h + ne
    w.fobs = c.fmem + tid * c.fmem_row
    w.actions = c.imem + tid * c.imem_row
    w.elapsed = w.actions + N
    w.ep_len = w.elapsed + ne
    w.starts = c.umem + tid * c.umem_row
    w.cur_start = w.starts + N
    w.cut = w.cur_start + ne
    w.env_rng = <rng_t *>(c.rmem + tid * c.rmem_row)
    w.pol = w.env_rng + ne


cdef inline Py_ssize_t _norm_size(Py_ssize_t od) noexcept nogil:
    """Values of a normaliser: obs mean (od), obs var (od), obs count, return mean, var, count."""
    return 2 * od + 4


# SB3's VecNormalize defaults
cdef double NORM_EPS = 1e-8
cdef double CLIP_OBS = 10.0
cdef double CLIP_REWARD = 10.0


cdef void _update_moments(double *mean, double *var, double *count, const double *batch_mean,
                          const double *batch_var, double batch_count, Py_ssize_t n) noexcept nogil:
    """SB3's RunningMeanStd.update_from_moments (Chan et al.'s parallel update) on n values."""
    cdef Py_ssize_t j
    cdef double delta, tot = count[0] + batch_count
    for j in range(n):
        delta = batch_mean[j] - mean[j]
        mean[j] = mean[j] + delta * batch_count / tot
        var[j] = (var[j] * count[0] + batch_var[j] * batch_count
                  + delta * delta * count[0] * batch_count / tot) / tot
    count[0] = tot


cdef void _observe_batch(const Config *c, Rows *w) noexcept nogil:
    """The envs' new observations (fobs) as the network sees them (nobs): VecNormalize's
    step first adds them to the running statistics (one batch of n_envs), then normalises."""
    cdef Py_ssize_t ne = c.n_envs, od = c.spec.obs_dim, e, j
    cdef double *mean = w.norm
    cdef double *var = mean + od
    cdef double *bm = w.moments
    cdef double *bv = bm + od
    cdef double x
    if not c.norm_obs:
        for j in range(ne * od):
            w.nobs[j] = <double>w.fobs[j]
        return
    for j in range(od):
        bm[j] = 0.0
        bv[j] = 0.0
    for e in range(ne):
        for j in range(od):
            bm[j] += <double>w.fobs[e * od + j]
    for j in range(od):
        bm[j] /= ne
    for e in range(ne):
        for j in range(od):
            x = <double>w.fobs[e * od + j] - bm[j]
            bv[j] += x * x
    for j in range(od):
        bv[j] /= ne
    _update_moments(mean, var, var + od, bm, bv, <double>ne, od)
    for e in range(ne):
        _normalize(c, w, w.fobs + e * od, NULL, w.nobs + e * od)


cdef inline void _normalize(const Config *c, const Rows *w, const float *xf, const double *xd,
                            double *out) noexcept nogil:
    """One observation (float32 xf, or float64 xd) as the network sees it."""
    cdef Py_ssize_t od = c.spec.obs_dim, j
    cdef double x
    for j in range(od):
        x = <double>xf[j] if xf != NULL else xd[j]
        if c.norm_obs:
            x = (x - w.norm[j]) / sqrt(w.norm[od + j] + NORM_EPS)
            x = min(max(x, -CLIP_OBS), CLIP_OBS)
        out[j] = x


cdef void _normalize_rewards(const Config *c, Rows *w) noexcept nogil:
    """VecNormalize's rewards: the discounted returns (reset where an episode ended) feed the
    running variance, one batch of n_envs; each reward is divided by its std, clipped."""
    cdef Py_ssize_t ne = c.n_envs, od = c.spec.obs_dim, e
    cdef double *ret = w.norm + 2 * od + 1  # mean, var, count
    cdef double bm = 0.0, bv = 0.0, x, scale
    for e in range(ne):
        w.disc[e] = w.disc[e] * c.gamma + w.raw_reward[e]
        bm += w.disc[e]
    bm /= ne
    for e in range(ne):
        x = w.disc[e] - bm
        bv += x * x
    bv /= ne
    _update_moments(ret, ret + 1, ret + 2, &bm, &bv, <double>ne, 1)
    scale = sqrt(ret[1] + NORM_EPS)
    for e in range(ne):
        w.raw_reward[e] = min(max(w.raw_reward[e] / scale, -CLIP_REWARD), CLIP_REWARD)
        if w.cur_start[e]:
            w.disc[e] = 0.0


cdef inline int64_t _sample(rng_t *r, const double *logp, int n) noexcept nogil:
    """An action drawn from the categorical distribution of log-probabilities logp."""
    cdef double u = rng_uniform(r), cum = 0.0
    cdef int j
    for j in range(n - 1):
        cum += exp(logp[j])
        if u < cum:
            return j
    return n - 1


cdef inline double _normal(rng_t *r) noexcept nogil:
    """A standard normal draw (Box-Muller, the cosine branch; 1 - u keeps the log's argument > 0).
    The two draws are taken in order, not inside one expression (C leaves that order open)."""
    cdef double u1 = rng_uniform(r)
    cdef double u2 = rng_uniform(r)
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2)


cdef void run_thread(const Config *c, int tid) noexcept nogil:
    """One thread's loop: claim an update, roll out on a snapshot, GAE, gradient, shared RMSprop or Adam."""
    cdef const A2cNet *net = &c.net
    cdef EnvSpec spec = c.spec
    cdef Py_ssize_t P = net.n_params, ne = c.n_envs, ns = c.n_steps, N = ne * ns
    cdef Py_ssize_t od = spec.obs_dim, sd = spec.state_dim, na = net.n_actions
    cdef Rows w
    _carve(c, tid, &w)
    cdef double *local = w.local
    cdef double *grad = w.grad
    cdef double *scratch = w.scratch
    cdef double *stats = w.stats
    cdef double *state = w.state
    cdef double *obs_buf = w.obs_buf
    cdef double *rewards = w.rewards
    cdef double *values = w.values
    cdef double *advantages = w.advantages
    cdef double *returns = w.returns
    cdef double *last_values = w.last_values
    cdef double *ep_ret = w.ep_ret
    cdef double *logits = w.logits
    cdef double *logp = w.logp
    cdef double *xd = w.xd
    cdef double *acts = w.acts
    cdef double *entropy = w.entropy
    cdef double *batch = w.batch
    cdef Py_ssize_t row = net.fwd_row
    cdef float *fobs = w.fobs
    cdef int64_t *actions = w.actions
    cdef int64_t *elapsed = w.elapsed
    cdef int64_t *ep_len = w.ep_len
    cdef uint8_t *starts = w.starts
    cdef uint8_t *cur_start = w.cur_start
    cdef rng_t *env_rng = w.env_rng
    cdef rng_t *pol = w.pol
    cdef Py_ssize_t e, t, k, j
    cdef long long u, idx
    cdef int64_t a
    cdef double r, h, vterm, norm
    cdef double *stats_at
    cdef long long step
    cdef bint term, trunc, done
    cdef double *s

    while True:
        if dp_load_i64(&c.counters[C_DIVERGED]):
            break
        u = dp_fetch_add_i64(&c.counters[C_UPDATES], 1)
        if u >= c.n_updates:
            break
        a2c_snapshot(c.params, local, P)
        for t in range(ns):
            k = t * ne
            for j in range(ne * od):
                obs_buf[k * od + j] = w.nobs[j]
            # every env's forward at once (the gradient reuses these activations)
            a2c_forward_batch(net, local, obs_buf + k * od, ne, acts + k * row, logits, entropy + k, values + k,
                              batch)
            for e in range(ne):  # act and step every env (a finished one resets at once, as SB3's DummyVecEnv)
                k = t * ne + e
                starts[k] = cur_start[e]
                s = state + e * sd
                if net.continuous:  # mean + std * N(0, 1), unclipped (the env clips, as SB3's rollout does)
                    for j in range(na):
                        w.cact[k * na + j] = (acts[k * row + net.h1 + net.h2 + j]
                                              + exp(local[net.a_logstd + j]) * _normal(pol))
                    spec.cdynamics(s, w.cact + k * na, &r, &term)
                else:
                    a = _sample(pol, acts + k * row + net.h1 + net.h2, <int>na)
                    actions[k] = a
                    spec.dynamics(s, a, &r, &term)
                elapsed[e] += 1
                trunc = elapsed[e] >= c.max_episode_steps
                spec.observe(s, fobs + e * od)
                ep_ret[e] += r
                ep_len[e] += 1
                done = term or trunc
                w.raw_reward[e] = r
                w.cut[e] = trunc and not term
                if w.cut[e]:  # its last observation, for the bootstrap below
                    for j in range(od):
                        w.tobs[e * od + j] = <double>fobs[e * od + j]
                if done:
                    idx = dp_fetch_add_i64(&c.counters[C_EPISODES], 1)
                    if idx < c.ep_capacity:
                        c.ep_returns[idx] = ep_ret[e]
                        c.ep_lengths[idx] = ep_len[e]
                        c.ep_steps[idx] = c.step_base + u * N + (t + 1) * ne
                    spec.reset(&env_rng[e], s)
                    elapsed[e] = 0
                    spec.observe(s, fobs + e * od)
                    ep_ret[e] = 0.0
                    ep_len[e] = 0
                cur_start[e] = done
            _observe_batch(c, &w)  # VecNormalize's step: statistics, then the observations
            if c.norm_reward:
                _normalize_rewards(c, &w)
            for e in range(ne):
                r = w.raw_reward[e]
                if w.cut[e]:
                    # SB3: rewards[idx] += gamma * V(terminal_observation) when TimeLimit.truncated
                    _normalize(c, &w, NULL, w.tobs + e * od, xd)
                    a2c_forward(net, local, xd, 1, logits, logp, &h, &vterm, scratch)
                    r = r + c.gamma * vterm
                rewards[t * ne + e] = r
        a2c_forward(net, local, w.nobs, ne, logits, logp, w.last_h, last_values, scratch)
        a2c_gae(rewards, values, starts, last_values, cur_start, ns, ne, c.gamma, c.gae_lambda,
                advantages, returns)
        if c.rec_params != NULL:
            _record(c, u, local, obs_buf, actions, w.cact, rewards, values, starts, last_values, cur_start,
                    advantages, returns)
        a2c_loss_grad_from(net, local, obs_buf, actions, w.cact, advantages, returns, N, c.ent_coef, c.vf_coef,
                           c.normalize_advantage, acts, entropy, values, grad, stats, scratch)
        norm = a2c_clip_grad_norm(grad, P, c.max_grad_norm)
        if not isfinite(norm):
            dp_fetch_add_i64(&c.counters[C_DIVERGED], 1)
            break
        # the statistics: shared by the threads (A3C's choice), or each thread's own; an Adam
        # step's bias correction counts the updates its statistics have seen
        stats_at = c.square_avg
        step = c.adam_steps + u + 1
        if c.private_stats:
            stats_at = c.tstats + tid * c.tstats_row
            c.tsteps[8 * tid] += 1
            step = c.tsteps[8 * tid]
        if c.adam:
            a2c_adam_step(c.params, stats_at, stats_at + P, grad, P, c.lr, c.beta1, c.beta2, c.eps, step,
                          c.n_threads > 1)
        else:
            a2c_rmsprop_step(c.params, stats_at, grad, P, c.lr, c.alpha, c.eps, c.n_threads > 1)


cdef void init_thread(const Config *c, int tid) noexcept nogil:
    """Seed thread ``tid``'s env and policy RNGs and reset its envs (once per Learner)."""
    cdef Rows w
    _carve(c, tid, &w)
    cdef Py_ssize_t od = c.spec.obs_dim, sd = c.spec.state_dim, e
    for e in range(c.n_envs):
        rng_seed(&w.env_rng[e], c.seed, <uint64_t>(tid * c.n_envs + e))
        c.spec.reset(&w.env_rng[e], w.state + e * sd)
        w.elapsed[e] = 0
        c.spec.observe(w.state + e * sd, w.fobs + e * od)
        w.ep_ret[e] = 0.0
        w.ep_len[e] = 0
        w.cur_start[e] = 1
    rng_seed(w.pol, c.seed, POLICY_STREAM + <uint64_t>tid)
    for e in range(_norm_size(od)):
        w.norm[e] = c.norm_init[e]
    for e in range(c.n_envs):
        w.disc[e] = 0.0
    _observe_batch(c, &w)  # VecNormalize's reset: the first observations count too


cdef void _record(const Config *c, long long u, const double *local, const double *obs_buf,
                  const int64_t *actions, const double *cact, const double *rewards, const double *values,
                  const uint8_t *starts, const double *last_values, const uint8_t *dones,
                  const double *advantages, const double *returns) noexcept nogil:
    cdef Py_ssize_t P = c.net.n_params, ne = c.n_envs, N = <Py_ssize_t>c.n_envs * c.n_steps
    cdef Py_ssize_t od = c.spec.obs_dim, j, k
    for j in range(P):
        c.rec_params[u * P + j] = local[j]
    for j in range(N * od):
        c.rec_obs[u * N * od + j] = obs_buf[j]
    for j in range(N):
        if c.net.continuous:
            for k in range(c.net.n_actions):
                c.rec_cactions[(u * N + j) * c.net.n_actions + k] = cact[j * c.net.n_actions + k]
        else:
            c.rec_actions[u * N + j] = actions[j]
        c.rec_rewards[u * N + j] = rewards[j]
        c.rec_values[u * N + j] = values[j]
        c.rec_starts[u * N + j] = starts[j]
        c.rec_advantages[u * N + j] = advantages[j]
        c.rec_returns[u * N + j] = returns[j]
    for j in range(ne):
        c.rec_last_values[u * ne + j] = last_values[j]
        c.rec_dones[u * ne + j] = dones[j]


# ---------------------------------------------------------------- def entries (checked)

cdef class Learner:
    """The threads' environments, RNGs and scratch, kept between runs.

    ``Learner(env_id, n_envs, n_steps, n_threads, seed, gamma, ...)`` seeds and resets every
    thread's envs once; each :meth:`run` continues their episodes, so that a training cut
    into rounds (the engine's) steps the envs as one long run would: with one thread, runs
    of 3 and 5 updates give the parameters of one run of 8 bit for bit.
    """
    cdef Config c
    cdef readonly int n_threads
    cdef readonly Py_ssize_t n_params
    cdef readonly int n_actions         # discrete: how many; continuous: the action's dimension
    cdef readonly bint continuous       # a Gaussian policy over float actions (Pendulum-v1)
    cdef readonly long long env_steps   # over every run so far
    cdef object _memory                 # the NumPy arrays behind the Config's pointers
    cdef object _tstats, _tsteps        # shared_stats=False: each thread's optimizer statistics, Adam steps
    cdef bint _stats_started

    def __init__(self, int env_id, int n_envs, int n_steps, int n_threads, uint64_t seed, double gamma,
                 double gae_lambda, double ent_coef, double vf_coef, double max_grad_norm, double learning_rate,
                 double rms_alpha, double rms_eps, bint normalize_advantage, int h1, int h2,
                 int64_t max_episode_steps, bint adam=False, double beta1=0.9, double beta2=0.999,
                 bint norm_obs=False, bint norm_reward=False, norm_init=None, bint shared_stats=True):
        if env_id not in N_ACTIONS:
            raise ValueError(f"env_id must be one of {sorted(N_ACTIONS)}, got {env_id}")
        if n_envs < 1 or n_steps < 1:
            raise ValueError(f"n_envs and n_steps must be >= 1, got {n_envs}, {n_steps}")
        if n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {n_threads}")
        if h1 < 1 or h2 < 1:
            raise ValueError(f"the hidden sizes must be >= 1, got ({h1}, {h2})")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if normalize_advantage and <long long>n_envs * n_steps < 2:
            raise ValueError("normalize_advantage needs n_envs * n_steps >= 2 (the std of one is undefined)")
        for name, v in (("gamma", gamma), ("gae_lambda", gae_lambda)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if not rms_alpha >= 0.0 or not rms_alpha <= 1.0:
            raise ValueError(f"rms_alpha must be in [0, 1], got {rms_alpha}")
        for name, v in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        for name, v in (("max_grad_norm", max_grad_norm), ("learning_rate", learning_rate), ("rms_eps", rms_eps)):
            if not (v > 0.0 and isfinite(v)):
                raise ValueError(f"{name} must be a finite number > 0, got {v}")
        for name, v in (("ent_coef", ent_coef), ("vf_coef", vf_coef)):
            if not isfinite(v):
                raise ValueError(f"{name} must be finite, got {v}")
        cdef Config *c = &self.c
        c.spec = spec_of(env_id)
        a2c_net_init(&c.net, c.spec.obs_dim, h1, h2, N_ACTIONS[env_id], c.spec.action_dim > 0)
        c.n_envs, c.n_steps, c.max_episode_steps, c.seed = n_envs, n_steps, max_episode_steps, seed
        c.gamma, c.gae_lambda, c.ent_coef, c.vf_coef = gamma, gae_lambda, ent_coef, vf_coef
        c.max_grad_norm, c.lr, c.alpha, c.eps = max_grad_norm, learning_rate, rms_alpha, rms_eps
        c.normalize_advantage = normalize_advantage
        c.adam, c.beta1, c.beta2 = adam, beta1, beta2
        c.norm_obs, c.norm_reward = norm_obs, norm_reward
        c.rec_params = NULL
        c.rec_cactions = NULL
        c.private_stats = not shared_stats
        self._stats_started = False
        self.n_threads, self.n_params, self.env_steps = n_threads, c.net.n_params, 0
        self.n_actions, self.continuous = c.net.n_actions, c.net.continuous
        c.n_threads = n_threads
        cdef Py_ssize_t d, f, i, u, r
        _sizes(c, &d, &f, &i, &u, &r)
        dmem = np.zeros((n_threads, d))
        fmem = np.zeros((n_threads, f), dtype=np.float32)
        imem = np.zeros((n_threads, i), dtype=np.int64)
        umem = np.zeros((n_threads, u), dtype=np.uint8)
        rmem = np.zeros((n_threads, r), dtype=np.uint64)
        counters = np.zeros(N_COUNTERS + 8, dtype=np.int64)
        od = c.spec.obs_dim
        if norm_init is None:  # SB3's RunningMeanStd(epsilon=1e-4): mean 0, var 1, count 1e-4
            norm_init = np.concatenate([np.zeros(od), np.ones(od), [1e-4, 0.0, 1.0, 1e-4]])
        norm_init = np.array(norm_init, dtype=np.float64)
        if norm_init.shape != (_norm_size(od),) or not np.all(np.isfinite(norm_init)) or np.any(
                norm_init[od:2 * od] < 0) or norm_init[2 * od] <= 0 or norm_init[2 * od + 2] < 0 \
                or norm_init[2 * od + 3] <= 0:  # the return's mean may be negative (Acrobot's rewards are)
            raise ValueError(f"norm_init must be {_norm_size(od)} finite values: obs mean, obs var (>= 0), obs count "
                             f"(> 0), return mean, var (>= 0), count (> 0)")
        self._memory = (dmem, fmem, imem, umem, rmem, counters, norm_init)
        cdef double[::1] ni = norm_init
        c.norm_init = &ni[0]
        cdef double[:, ::1] dm = dmem
        cdef float[:, ::1] fm = fmem
        cdef int64_t[:, ::1] im = imem
        cdef uint8_t[:, ::1] um = umem
        cdef uint64_t[:, ::1] rm = rmem
        cdef int64_t[::1] cnt = counters
        c.dmem, c.dmem_row = &dm[0, 0], d
        c.fmem, c.fmem_row = &fm[0, 0], f
        c.imem, c.imem_row = &im[0, 0], i
        c.umem, c.umem_row = &um[0, 0], u
        c.rmem, c.rmem_row = &rm[0, 0], r
        c.counters = <long long *>&cnt[0]
        cdef int tid
        for tid in range(n_threads):
            init_thread(c, tid)

    def normalizers(self):
        """Each thread's VecNormalize statistics, (n_threads, 2 obs_dim + 4): obs mean, obs var,
        obs count, return mean, return var, return count."""
        cdef Rows w
        out = np.empty((self.n_threads, _norm_size(self.c.spec.obs_dim)))
        cdef int tid
        cdef Py_ssize_t j
        for tid in range(self.n_threads):
            _carve(&self.c, tid, &w)
            for j in range(out.shape[1]):
                out[tid, j] = w.norm[j]
        return out

    def run(self, double[::1] params, double[::1] square_avg, long long n_updates, double[::1] episode_returns,
            int64_t[::1] episode_lengths, int64_t[::1] episode_steps, long long adam_steps=0,
            double learning_rate=-1.0):
        """``n_updates`` more updates over the threads, in place on ``params`` and ``square_avg``
        (RMSprop's square averages; with Adam its first moments then its second, 2 n_params
        values, and ``adam_steps`` the steps it took before this run). ``learning_rate`` >= 0
        replaces the step size from this run on (a schedule's value; negative: unchanged).

        Finished episodes go to ``episode_returns`` / ``episode_lengths`` / ``episode_steps``
        (env steps since the Learner began) up to their length. Returns ``(n_episodes,
        n_updates_done, diverged)``: episodes finished in this run (may exceed the arrays),
        updates applied, and whether a gradient norm was not finite (the run stopped there).

        With ``shared_stats=False`` every thread starts from ``square_avg`` (and its share of
        ``adam_steps``) at the first run and keeps its own statistics from then on; after each run
        ``square_avg`` holds their mean (what a model saves and a new Learner starts from).
        """
        cdef Config *c = &self.c
        if n_updates < 0:
            raise ValueError(f"n_updates must be >= 0, got {n_updates}")
        cdef Py_ssize_t k = 2 if c.adam else 1
        if params.shape[0] != c.net.n_params or square_avg.shape[0] != k * c.net.n_params:
            raise ValueError(f"params and square_avg must have {c.net.n_params} and {k} x {c.net.n_params} values "
                             f"(obs_dim={c.spec.obs_dim}, hidden=({c.net.h1}, {c.net.h2}), n_actions="
                             f"{c.net.n_actions}), got {params.shape[0]} and {square_avg.shape[0]}")
        if adam_steps < 0:
            raise ValueError(f"adam_steps must be >= 0, got {adam_steps}")
        if not isfinite(learning_rate):
            raise ValueError(f"learning_rate must be finite (negative: unchanged), got {learning_rate}")
        if not np.all(np.isfinite(np.asarray(params))) or not np.all(np.isfinite(np.asarray(square_avg))):
            raise ValueError("params and square_avg must be finite")
        if episode_returns.shape[0] != episode_lengths.shape[0] or episode_returns.shape[0] != episode_steps.shape[0]:
            raise ValueError(f"episode_returns, episode_lengths and episode_steps must have one length, got "
                             f"{episode_returns.shape[0]}, {episode_lengths.shape[0]}, {episode_steps.shape[0]}")
        dummy_d = np.zeros(1)
        dummy_i = np.zeros(1, dtype=np.int64)
        cdef double[::1] er = episode_returns if episode_returns.shape[0] else dummy_d
        cdef int64_t[::1] el = episode_lengths if episode_lengths.shape[0] else dummy_i
        cdef int64_t[::1] es = episode_steps if episode_steps.shape[0] else dummy_i
        c.params, c.square_avg = &params[0], &square_avg[0]
        c.ep_returns, c.ep_lengths, c.ep_steps = &er[0], &el[0], &es[0]
        c.ep_capacity = episode_returns.shape[0]
        c.n_updates, c.step_base, c.adam_steps = n_updates, self.env_steps, adam_steps
        if learning_rate >= 0.0:  # a schedule's value, from this run on
            c.lr = learning_rate
        counters = self._memory[5]
        counters[:] = 0
        cdef double[:, ::1] ts
        cdef int64_t[::1] tk
        if c.private_stats:
            if not self._stats_started:  # every thread from the given statistics
                self._tstats = np.tile(np.asarray(square_avg), (self.n_threads, 1))
                # Adam's bias correction: each thread's share of the steps taken before
                self._tsteps = np.full(8 * self.n_threads, adam_steps // self.n_threads, dtype=np.int64)
                self._stats_started = True
            ts, tk = self._tstats, self._tsteps
            c.tstats, c.tstats_row, c.tsteps = &ts[0, 0], ts.shape[1], <long long *>&tk[0]
        cdef int tid = 0
        if self.n_threads == 1:  # no parallel region: nothing to start
            with nogil:
                run_thread(c, 0)
        else:
            with nogil, parallel(num_threads=self.n_threads):
                tid = threadid()
                run_thread(c, tid)
        done = min(int(counters[C_UPDATES]), n_updates)
        self.env_steps += done * c.n_envs * c.n_steps
        if c.private_stats:
            np.asarray(square_avg)[:] = self._tstats.mean(axis=0)
        return int(counters[C_EPISODES]), done, bool(counters[C_DIVERGED])

    def thread_stats(self):
        """Each thread's optimizer statistics, (n_threads, len(square_avg)) (shared_stats=False,
        after a run; None before)."""
        return None if self._tstats is None else self._tstats.copy()

    def _record_into(self, dict out):
        """Point the recording of every update's buffers at ``out``'s arrays (one thread; the
        Learner keeps ``out`` alive for as long as it may write there)."""
        cdef Config *c = &self.c
        if self.n_threads != 1:
            raise ValueError("recording needs one thread")
        self._memory = (*self._memory, out)
        cdef double[:, ::1] rp = out["params"]
        cdef double[:, :, :, ::1] ro = out["obs"]
        cdef int64_t[:, :, ::1] ra
        cdef double[:, :, :, ::1] rca
        if c.net.continuous:
            rca = out["actions"]
            c.rec_cactions = &rca[0, 0, 0, 0]
        else:
            ra = out["actions"]
            c.rec_actions = &ra[0, 0, 0]
        cdef double[:, :, ::1] rr = out["rewards"], rv = out["values"], rad = out["advantages"], rre = out["returns"]
        cdef uint8_t[:, :, ::1] rs = out["episode_starts"]
        cdef double[:, ::1] rl = out["last_values"]
        cdef uint8_t[:, ::1] rd = out["dones"]
        c.rec_params = &rp[0, 0]
        c.rec_obs = &ro[0, 0, 0, 0]
        c.rec_rewards = &rr[0, 0, 0]
        c.rec_values = &rv[0, 0, 0]
        c.rec_starts = &rs[0, 0, 0]
        c.rec_last_values = &rl[0, 0]
        c.rec_dones = &rd[0, 0]
        c.rec_advantages = &rad[0, 0, 0]
        c.rec_returns = &rre[0, 0, 0]


def learn(double[::1] params, double[::1] square_avg, int env_id, int n_envs, int n_steps, long long n_updates,
          int n_threads, uint64_t seed, double gamma, double gae_lambda, double ent_coef, double vf_coef,
          double max_grad_norm, double learning_rate, double rms_alpha, double rms_eps,
          bint normalize_advantage, int h1, int h2, int64_t max_episode_steps, double[::1] episode_returns,
          int64_t[::1] episode_lengths, int64_t[::1] episode_steps):
    """Train in place: ``n_updates`` A2C updates over ``n_threads`` Hogwild! threads (module
    docstring): one :class:`Learner` run. Returns ``(n_episodes, n_updates_done, diverged)``."""
    learner = Learner(env_id, n_envs, n_steps, n_threads, seed, gamma, gae_lambda, ent_coef, vf_coef,
                      max_grad_norm, learning_rate, rms_alpha, rms_eps, normalize_advantage, h1, h2,
                      max_episode_steps)
    return learner.run(params, square_avg, n_updates, episode_returns, episode_lengths, episode_steps)


def rollout_record(double[::1] params, double[::1] square_avg, int env_id, int n_envs, int n_steps,
                   long long n_updates, uint64_t seed, double gamma, double gae_lambda, double ent_coef,
                   double vf_coef, double max_grad_norm, double learning_rate, double rms_alpha, double rms_eps,
                   bint normalize_advantage, int h1, int h2, int64_t max_episode_steps, bint normalize=False):
    """``learn`` on one thread that also returns every update's buffers, for tests
    (``normalize``: VecNormalize's observations and rewards).

    Returns a dict of arrays with a leading axis of updates: ``params`` (the snapshot the
    rollout used), ``obs`` (n_steps, n_envs, obs_dim), ``actions``, ``rewards`` (bootstrapped
    as SB3's), ``values``, ``episode_starts``, ``advantages``, ``returns`` (n_steps, n_envs),
    ``last_values``, ``dones`` (n_envs); and ``episode_returns``, ``episode_lengths``,
    ``episode_steps``, ``diverged``.
    """
    learner = Learner(env_id, n_envs, n_steps, 1, seed, gamma, gae_lambda, ent_coef, vf_coef, max_grad_norm,
                      learning_rate, rms_alpha, rms_eps, normalize_advantage, h1, h2, max_episode_steps,
                      norm_obs=normalize, norm_reward=normalize)
    if n_updates < 0:
        raise ValueError(f"n_updates must be >= 0, got {n_updates}")
    cdef Py_ssize_t U = max(n_updates, 1), N = <Py_ssize_t>n_envs * n_steps, P = learner.n_params
    od = spec_of(env_id).obs_dim
    out = {
        "params": np.zeros((U, P)),
        "obs": np.zeros((U, n_steps, n_envs, od)),
        "actions": (np.zeros((U, n_steps, n_envs, learner.n_actions)) if learner.continuous
                    else np.zeros((U, n_steps, n_envs), dtype=np.int64)),
        "rewards": np.zeros((U, n_steps, n_envs)),
        "values": np.zeros((U, n_steps, n_envs)),
        "episode_starts": np.zeros((U, n_steps, n_envs), dtype=np.uint8),
        "advantages": np.zeros((U, n_steps, n_envs)),
        "returns": np.zeros((U, n_steps, n_envs)),
        "last_values": np.zeros((U, n_envs)),
        "dones": np.zeros((U, n_envs), dtype=np.uint8),
    }
    learner._record_into(out)
    cap = max(n_updates * N, 1)
    er, el, es = np.zeros(cap), np.zeros(cap, dtype=np.int64), np.zeros(cap, dtype=np.int64)
    n_ep, _, diverged = learner.run(params, square_avg, n_updates, er, el, es)
    n_ep = min(n_ep, cap)
    out.update(episode_returns=er[:n_ep], episode_lengths=el[:n_ep], episode_steps=es[:n_ep], diverged=diverged)
    if n_updates == 0:
        for key in ("params", "obs", "actions", "rewards", "values", "episode_starts", "advantages", "returns",
                    "last_values", "dones"):
            out[key] = out[key][:0]
    return out
