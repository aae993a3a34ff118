"""A2C's rollouts in Python for a Gymnasium environment (:class:`dpsgd.envs.adapter.GymnasiumVectorEnv`).

:class:`PythonLearner` has the ``hsa2c.Learner`` interface that
:class:`~dpsgd.tasks.a2c_problem.A2cProblem` drives (``run``, ``env_steps``, ``normalizers``),
so the engine, the ranks and the estimator are the same; only the loop differs. The env steps
in Python and holds the GIL, so it runs on one thread; the network's forward, the gradient,
the clipping and the optimizer step are the C kernels of :mod:`dpsgd._kernels.a2c`, in the
order of the C loop: roll out ``n_steps`` on the current parameters, SB3's truncation
bootstrap, GAE, the clipped gradient, RMSprop or Adam.
"""

from __future__ import annotations

import numpy as np

from dpsgd._kernels import a2c as _a2c


def draw_actions(out, log_probs, rng, continuous):
    """Actions drawn from the policy of a forward's ``(out, log_probs)``: categorical (out: the
    logits, int64 actions), or Gaussian (out: the mean, log_probs: log_std) left unclipped."""
    if continuous:
        return out + np.exp(log_probs) * rng.standard_normal(out.shape)
    cdf = np.cumsum(np.exp(log_probs), axis=1)
    drawn = (cdf < rng.random(len(cdf))[:, None] * cdf[:, -1:]).sum(axis=1)
    return np.minimum(drawn, log_probs.shape[1] - 1).astype(np.int64)


class PythonLearner:
    """The rollout-and-update loop of ``hsa2c.Learner`` over a Python vector env (one thread)."""

    n_threads = 1

    def __init__(self, env, layout, seed, *, n_steps, gamma, gae_lambda, ent_coef, vf_coef, max_grad_norm,
                 learning_rate, rms_alpha, rms_eps, normalize_advantage, adam):
        self.env, self.layout = env, layout
        self.n_steps, self.gamma, self.gae_lambda = n_steps, gamma, gae_lambda
        self.ent_coef, self.vf_coef, self.max_grad_norm = ent_coef, vf_coef, max_grad_norm
        self.lr, self.rms_alpha, self.rms_eps = learning_rate, rms_alpha, rms_eps
        self.normalize_advantage, self.adam = normalize_advantage, adam
        self.rng = np.random.default_rng(seed)
        self.obs, _ = env.reset(seed=int(seed % 2**31))
        n = env.num_envs
        self.starts = np.ones(n, dtype=np.uint8)
        self.ep_ret, self.ep_len = np.zeros(n), np.zeros(n, dtype=np.int64)
        self.env_steps = 0

    def normalizers(self):
        raise NotImplementedError("normalize is not available for Gymnasium environments yet")

    def _forward(self, params, obs):
        L = self.layout
        return _a2c.py_forward(params, np.ascontiguousarray(obs), L.h1, L.h2, L.n_actions, L.continuous)

    def run(self, params, state, n_updates, episode_returns, episode_lengths, episode_steps, adam_steps=0,
            learning_rate=-1.0):
        """``n_updates`` updates in place on ``params`` and the optimizer ``state`` (flat);
        returns ``(n_episodes, n_updates_done, diverged)`` as ``hsa2c.Learner.run``."""
        if learning_rate >= 0.0:  # a schedule's value from this run on
            self.lr = learning_rate
        env, ns, ne, od = self.env, self.n_steps, self.env.num_envs, self.layout.obs_dim
        P = self.layout.n_params
        L = self.layout
        obs_buf = np.empty((ns, ne, od))
        actions = np.empty((ns, ne, L.n_actions)) if L.continuous else np.empty((ns, ne), dtype=np.int64)
        rewards, values = np.empty((ns, ne)), np.empty((ns, ne))
        starts = np.empty((ns, ne), dtype=np.uint8)
        n_episodes = 0
        for u in range(n_updates):
            for t in range(ns):
                obs_buf[t], starts[t] = self.obs, self.starts
                out, log_probs, _, values[t] = self._forward(params, self.obs)
                # Gaussian draws stay unclipped, as SB3 keeps them for the gradient (the env clips)
                actions[t] = draw_actions(out, log_probs, self.rng, self.layout.continuous)
                self.obs, r, terminated, truncated, infos = env.step(actions[t])
                self.ep_ret += r
                self.ep_len += 1
                cut = truncated & ~terminated
                if cut.any():  # SB3: rewards[idx] += gamma * V(terminal_observation) when TimeLimit.truncated
                    r = r.copy()
                    r[cut] += self.gamma * self._forward(params, infos["final_obs"][cut])[3]
                rewards[t] = r
                done = terminated | truncated
                for e in np.flatnonzero(done):
                    if n_episodes < episode_returns.size:
                        episode_returns[n_episodes] = self.ep_ret[e]
                        episode_lengths[n_episodes] = self.ep_len[e]
                        episode_steps[n_episodes] = self.env_steps + (t + 1) * ne
                    n_episodes += 1
                    self.ep_ret[e], self.ep_len[e] = 0.0, 0
                self.starts = done.astype(np.uint8)
            last_values = self._forward(params, self.obs)[3]
            advantages, returns = _a2c.py_gae(rewards, values, starts, last_values, self.starts, self.gamma,
                                              self.gae_lambda)
            flat = actions.reshape(ns * ne, L.n_actions) if L.continuous else actions.reshape(-1)
            grad, _ = _a2c.py_loss_grad(params, obs_buf.reshape(-1, od), flat, advantages.reshape(-1),
                                        returns.reshape(-1), L.h1, L.h2, L.n_actions, self.ent_coef, self.vf_coef,
                                        self.normalize_advantage, L.continuous)
            self.env_steps += ns * ne
            if not np.isfinite(_a2c.py_clip_grad_norm(grad, self.max_grad_norm)):
                return n_episodes, u, True
            if self.adam:
                _a2c.py_adam_step(params, state[:P], state[P:], grad, self.lr, 0.9, 0.999, self.rms_eps,
                                  adam_steps + u + 1, shared=False)  # one thread: the vectorised loop
            else:
                _a2c.py_rmsprop_step(params, state, grad, self.lr, self.rms_alpha, self.rms_eps, shared=False)
        return n_episodes, n_updates, False
