"""The Hogwild! A2C loop kernel (_kernels/hsa2c.pyx) and its Python entry (tasks/a2c_learn.py).

The rollout bookkeeping is checked against a NumPy replay: the recorded actions are stepped
through ``dpsgd.envs``' vector env in SameStep mode (thread 0's envs draw their resets from the
same RNG streams), the values come from the NumPy forward of ``ActorCriticLayout``, the truncation
bootstrap and the GAE are written out here from SB3's ``collect_rollouts`` and
``compute_returns_and_advantage``, and every update must equal ``a2c.train_step`` on the recorded
batch. A short time limit makes truncations (the bootstrap case) frequent.
"""

import dataclasses

import numpy as np
import pytest

import dpsgd
from dpsgd._kernels import a2c as a2c_kernel
from dpsgd._kernels import hsa2c
from dpsgd.envs.vector import ENVS, CVectorEnv
from dpsgd.tasks.a2c_learn import learn, steps_to_reach
from dpsgd.tasks.a2c_net import ActorCriticLayout

CARTPOLE = ENVS["CartPole-v1"]
HP = dict(gamma=0.99, gae_lambda=0.95, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, learning_rate=7e-4,
          rms_alpha=0.99, rms_eps=1e-5)


def record(params, n_envs, n_steps, n_updates, seed, max_episode_steps, normalize_advantage=False, hidden=(8, 8),
           normalize=False):
    square_avg = np.zeros_like(params)
    out = hsa2c.rollout_record(params, square_avg, CARTPOLE.kernel_id, n_envs, n_steps, n_updates, seed,
                               HP["gamma"], HP["gae_lambda"], HP["ent_coef"], HP["vf_coef"], HP["max_grad_norm"],
                               HP["learning_rate"], HP["rms_alpha"], HP["rms_eps"], normalize_advantage,
                               hidden[0], hidden[1], max_episode_steps, normalize)
    return out, square_avg


def gae_reference(rewards, values, starts, last_values, dones, gamma, lam):
    """SB3's RolloutBuffer.compute_returns_and_advantage, transcribed."""
    n_steps = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(n_steps)):
        if t == n_steps - 1:
            non_terminal, next_values = 1.0 - dones, last_values
        else:
            non_terminal, next_values = 1.0 - starts[t + 1], values[t + 1]
        delta = rewards[t] + gamma * next_values * non_terminal - values[t]
        last = delta + gamma * lam * non_terminal * last
        adv[t] = last
    return adv, adv + values


@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_rollout_matches_numpy_replay(normalize_advantage):
    n_envs, n_steps, n_updates, seed, limit = 4, 5, 12, 7, 9
    layout = ActorCriticLayout(4, 2, (8, 8))
    params0 = layout.init_params(3)
    params = params0.copy()
    out, square_avg = record(params, n_envs, n_steps, n_updates, seed, limit, normalize_advantage)
    assert not out["diverged"]

    env = CVectorEnv("CartPole-v1", dataclasses.replace(CARTPOLE, max_episode_steps=limit), n_envs, seed, "SameStep")
    obs, _ = env.reset()
    starts = np.ones(n_envs, dtype=np.uint8)
    ep_ret, ep_len = np.zeros(n_envs), np.zeros(n_envs, dtype=np.int64)
    episodes, n_bootstrapped, n_terminated = [], 0, 0
    p_ref, sq_ref = params0.copy(), np.zeros_like(params0)
    for u in range(n_updates):
        np.testing.assert_array_equal(out["params"][u], p_ref)  # the snapshot is the previous update's result
        exp_rewards = np.zeros((n_steps, n_envs))
        for t in range(n_steps):
            np.testing.assert_array_equal(out["obs"][u, t], obs.astype(np.float64))
            np.testing.assert_array_equal(out["episode_starts"][u, t], starts)
            values = layout.forward(p_ref, obs)[3]
            np.testing.assert_allclose(out["values"][u, t], values, rtol=0, atol=1e-12)
            obs, rewards, terminated, truncated, infos = env.step(out["actions"][u, t])
            ep_ret += rewards
            ep_len += 1
            r = rewards.copy()
            boot = truncated & ~terminated
            if boot.any():  # SB3: rewards[idx] += gamma * V(terminal_observation) when TimeLimit.truncated
                v_final = layout.forward(p_ref, infos["final_obs"][boot])[3]
                r[boot] += HP["gamma"] * v_final
                n_bootstrapped += int(boot.sum())
            n_terminated += int(terminated.sum())
            exp_rewards[t] = r
            done = terminated | truncated
            for e in np.flatnonzero(done):
                episodes.append((ep_ret[e], ep_len[e], u * n_envs * n_steps + (t + 1) * n_envs))
                ep_ret[e], ep_len[e] = 0.0, 0
            starts = done.astype(np.uint8)
        np.testing.assert_allclose(out["rewards"][u], exp_rewards, rtol=0, atol=1e-12)
        last_values = layout.forward(p_ref, obs)[3]
        np.testing.assert_allclose(out["last_values"][u], last_values, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(out["dones"][u], starts)
        adv, ret = gae_reference(exp_rewards, out["values"][u], out["episode_starts"][u], last_values,
                                 starts, HP["gamma"], HP["gae_lambda"])
        np.testing.assert_allclose(out["advantages"][u], adv, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["returns"][u], ret, rtol=0, atol=1e-10)
        # the update: the a2c kernel's train_step on the recorded batch, bit for bit
        a2c_kernel.train_step(p_ref, sq_ref, out["obs"][u].reshape(-1, 4), out["actions"][u].reshape(-1),
                              out["advantages"][u].reshape(-1), out["returns"][u].reshape(-1), 8, 8, 2,
                              HP["ent_coef"], HP["vf_coef"], normalize_advantage, HP["max_grad_norm"],
                              HP["learning_rate"], HP["rms_alpha"], HP["rms_eps"])
    np.testing.assert_array_equal(params, p_ref)
    np.testing.assert_array_equal(square_avg, sq_ref)
    assert n_bootstrapped >= 5 and n_terminated >= 1  # both cases were exercised
    exp_r, exp_l, exp_s = (np.array(x) for x in zip(*episodes))
    np.testing.assert_array_equal(out["episode_returns"], exp_r)
    np.testing.assert_array_equal(out["episode_lengths"], exp_l)
    np.testing.assert_array_equal(out["episode_steps"], exp_s)


def test_gaussian_rollout_matches_numpy_replay():
    """Pendulum-v1 (continuous actions): the recorded float actions stepped through the vector
    env give the recorded rewards (with the truncation bootstrap), the actions are the policy's
    mean plus its std times standard normal draws, and each update is the Gaussian loss's
    gradient (a2c kernel), clipped, through RMSprop, bit for bit."""
    n_envs, n_steps, n_updates, seed, limit = 4, 5, 20, 3, 9
    layout = ActorCriticLayout(3, 1, (8, 8), continuous=True)
    params = layout.init_params(1)
    layout.views(params)["actor.log_std"][:] = -0.5
    p_ref, sq_ref = params.copy(), np.zeros_like(params)
    square_avg = np.zeros_like(params)
    out = hsa2c.rollout_record(params, square_avg, ENVS["Pendulum-v1"].kernel_id, n_envs, n_steps, n_updates, seed,
                               HP["gamma"], HP["gae_lambda"], HP["ent_coef"], HP["vf_coef"], HP["max_grad_norm"],
                               HP["learning_rate"], HP["rms_alpha"], HP["rms_eps"], False, 8, 8, limit)
    assert out["actions"].shape == (n_updates, n_steps, n_envs, 1)
    env = CVectorEnv("Pendulum-v1", dataclasses.replace(ENVS["Pendulum-v1"], max_episode_steps=limit), n_envs, seed,
                     "SameStep")
    obs, _ = env.reset()
    z = []
    for u in range(n_updates):
        np.testing.assert_array_equal(out["params"][u], p_ref)
        for t in range(n_steps):
            np.testing.assert_array_equal(out["obs"][u, t], obs.astype(np.float64))
            mean, log_std, _, values = layout.forward(p_ref, obs)
            z.append((out["actions"][u, t] - mean) / np.exp(log_std))
            obs, rewards, terminated, truncated, infos = env.step(out["actions"][u, t])
            assert not terminated.any()
            r = rewards.copy()
            if truncated.any():
                r[truncated] += HP["gamma"] * layout.forward(p_ref, infos["final_obs"][truncated])[3]
            np.testing.assert_allclose(out["rewards"][u, t], r, rtol=0, atol=1e-12)
        grad, _ = a2c_kernel.py_loss_grad(p_ref, out["obs"][u].reshape(-1, 3), out["actions"][u].reshape(-1, 1),
                                          out["advantages"][u].reshape(-1), out["returns"][u].reshape(-1), 8, 8, 1,
                                          HP["ent_coef"], HP["vf_coef"], False, True)
        a2c_kernel.py_clip_grad_norm(grad, HP["max_grad_norm"])
        a2c_kernel.py_rmsprop_step(p_ref, sq_ref, grad, HP["learning_rate"], HP["rms_alpha"], HP["rms_eps"])
    np.testing.assert_array_equal(params, p_ref)
    z = np.concatenate(z).ravel()  # 400 standardised draws
    assert abs(z.mean()) < 0.2 and abs(z.std() - 1.0) < 0.15


class RunningMeanStd:
    """SB3's common/running_mean_std.py, transcribed (float64)."""

    def __init__(self, shape):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 1e-4

    def update(self, x):
        batch_mean, batch_var, batch_count = x.mean(axis=0), x.var(axis=0), x.shape[0]
        delta = batch_mean - self.mean
        tot = self.count + batch_count
        m_2 = self.var * self.count + batch_var * batch_count + np.square(delta) * self.count * batch_count / tot
        self.mean, self.var, self.count = self.mean + delta * batch_count / tot, m_2 / tot, tot


def test_normalize_is_vecnormalize():
    """With normalize, the observations the network saw and the rewards it learned from are
    SB3's VecNormalize(DummyVecEnv) with its defaults (observations and rewards, clip 10,
    epsilon 1e-8), transcribed in float64: statistics updated once a step with every env's
    new observation (the reset one where an episode ended) and discounted return, and a
    truncated episode bootstrapped from its normalised last observation."""
    n_envs, n_steps, n_updates, seed, limit = 4, 5, 8, 7, 9
    layout = ActorCriticLayout(4, 2, (8, 8))
    out, _ = record(layout.init_params(3), n_envs, n_steps, n_updates, seed, limit, normalize=True)
    env = CVectorEnv("CartPole-v1", dataclasses.replace(CARTPOLE, max_episode_steps=limit), n_envs, seed, "SameStep")
    obs_rms, ret_rms = RunningMeanStd((4,)), RunningMeanStd(())

    def norm(x):
        return np.clip((x - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8), -10.0, 10.0)

    raw, _ = env.reset()
    obs_rms.update(raw.astype(np.float64))
    obs, returns, n_bootstrapped = norm(raw), np.zeros(n_envs), 0
    for u in range(n_updates):
        for t in range(n_steps):
            np.testing.assert_allclose(out["obs"][u, t], obs, rtol=0, atol=1e-12)
            raw, rewards, terminated, truncated, infos = env.step(out["actions"][u, t])
            obs_rms.update(raw.astype(np.float64))
            obs = norm(raw)
            returns = returns * HP["gamma"] + rewards
            ret_rms.update(returns)
            r = np.clip(rewards / np.sqrt(ret_rms.var + 1e-8), -10.0, 10.0)
            boot = truncated & ~terminated
            if boot.any():
                r[boot] += HP["gamma"] * layout.forward(out["params"][u], norm(infos["final_obs"][boot]))[3]
                n_bootstrapped += int(boot.sum())
            np.testing.assert_allclose(out["rewards"][u, t], r, rtol=0, atol=1e-10)
            returns[terminated | truncated] = 0.0
    assert n_bootstrapped >= 3
    assert not np.allclose(out["rewards"], 1.0)  # the rewards were scaled


def test_bootstrap_is_not_applied_at_true_terminations():
    """With an unreachable time limit, rewards are CartPole's 1.0 exactly: no bootstrap anywhere."""
    params = ActorCriticLayout(4, 2, (8, 8)).init_params(0)
    out, _ = record(params, 3, 8, 10, 1, 10**9)
    assert out["dones"].any() or out["episode_starts"][:, 1:].any()
    np.testing.assert_array_equal(out["rewards"], 1.0)


def test_one_thread_is_reproducible():
    a = learn("CartPole-v1", 20_000, n_threads=1, seed=5)
    b = learn("CartPole-v1", 20_000, n_threads=1, seed=5)
    c = learn("CartPole-v1", 20_000, n_threads=1, seed=6)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.optimizer_state, b.optimizer_state)
    np.testing.assert_array_equal(a.episode_returns, b.episode_returns)
    np.testing.assert_array_equal(a.episode_steps, b.episode_steps)
    assert not np.array_equal(a.params, c.params)
    assert a.n_updates == 500 and a.env_steps == 20_000
    assert a.episode_lengths.sum() <= a.env_steps


# RL-Zoo's CartPole-v1 hyperparameters are learn()'s defaults. Measured (2026-12, 2-core machine):
# one thread, seeds 0-3 solved after 152,896 / 161,088 / 177,232 / 133,152 env steps; two threads,
# seeds 0-2, after 171,736 / 166,440 / 145,168. The budgets leave room for another platform's libm.
# Both stop at the reward, so a solving run costs only its steps.
@pytest.mark.slow
def test_one_thread_learns_cartpole():
    result = learn("CartPole-v1", 250_000, n_threads=1, seed=3, stop_at_reward=475.0)
    solved = steps_to_reach(result, 475.0, 100)
    assert solved is not None and solved <= 250_000, result.episode_returns[-100:].mean()
    # the run stops at the end of the round in which the mean reached 475 (8 updates of 40 steps)
    assert result.solved_at == result.env_steps and solved <= result.env_steps < solved + 320


@pytest.mark.slow
def test_two_threads_learn_cartpole():
    """Hogwild! threads interleave differently on every run, so the budget is the issue's
    500,000 steps, about 3x what 2 threads took (145k-172k)."""
    result = learn("CartPole-v1", 500_000, n_threads=2, seed=2, stop_at_reward=475.0)
    solved = steps_to_reach(result, 475.0, 100)
    assert solved is not None and solved <= 500_000, result.episode_returns[-100:].mean()
    assert np.all(np.diff(result.episode_steps) >= 0)


@pytest.mark.parametrize("adam", [False, True])
def test_per_thread_optimizer_statistics(adam):
    """shared_stats=False: with one thread the same run, bit for bit, as shared statistics;
    with two, each thread's own statistics (they differ), and square_avg is their mean."""
    layout = ActorCriticLayout(4, 2, (16, 16))
    k = 2 if adam else 1

    def run(n_threads, shared):
        params, sq = layout.init_params(0), np.zeros(k * layout.n_params)
        learner = hsa2c.Learner(CARTPOLE.kernel_id, 4, 5, n_threads, 0, 0.99, 1.0, 0.0, 0.5, 0.5, 7e-4, 0.99, 1e-5,
                                False, 16, 16, 500, adam, shared_stats=shared)
        er, el, es = np.zeros(500), np.zeros(500, dtype=np.int64), np.zeros(500, dtype=np.int64)
        for r in range(3):  # the threads' statistics carry on from run to run
            learner.run(params, sq, 40, er, el, es, adam_steps=r * 40)
        return params, sq, learner.thread_stats()

    p_shared, sq_shared, none = run(1, True)
    p_own, sq_own, rows = run(1, False)
    assert none is None and rows.shape == (1, k * layout.n_params)
    np.testing.assert_array_equal(p_own, p_shared)
    np.testing.assert_array_equal(sq_own, sq_shared)
    if not dpsgd.openmp_enabled():  # a serial build runs thread 0 alone
        return
    params, sq, rows = run(2, False)
    assert np.all(np.isfinite(params))
    np.testing.assert_array_equal(sq, rows.mean(axis=0))
    # which thread claims how many updates is the scheduler's choice (under load one thread
    # may take them all, its partner's statistics then stay at the start): the threads that
    # updated have statistics of their own
    worked = (rows != 0).any(axis=1)
    assert worked.any()
    if worked.all():
        assert not np.array_equal(rows[0], rows[1])


def test_runs_of_a_learner_continue_one_run():
    """The engine cuts training into rounds: with one thread, a Learner's runs of 3 and 5
    updates give what one run of 8 gives, bit for bit, episodes and all."""
    layout = ActorCriticLayout(4, 2, (8, 8))

    def learner():
        return hsa2c.Learner(CARTPOLE.kernel_id, 4, 5, 1, 7, 0.99, 1.0, 0.0, 0.5, 0.5, 7e-3, 0.99, 1e-5, False,
                             8, 8, 500)

    def buffers():
        return np.zeros(400), np.zeros(400, dtype=np.int64), np.zeros(400, dtype=np.int64)

    p_one, sq_one = layout.init_params(0), np.zeros(layout.n_params)
    p_cut, sq_cut = p_one.copy(), sq_one.copy()
    one, cut = learner(), learner()
    r1, l1, s1 = buffers()
    n_one = one.run(p_one, sq_one, 200, r1, l1, s1)[0]
    episodes = []
    for n in (30, 50, 120):
        r, l, s = buffers()
        k, done, diverged = cut.run(p_cut, sq_cut, n, r, l, s)
        assert done == n and not diverged
        episodes.append((r[:k], l[:k], s[:k]))
    np.testing.assert_array_equal(p_one, p_cut)
    np.testing.assert_array_equal(sq_one, sq_cut)
    assert cut.env_steps == one.env_steps == 200 * 20
    for got, want in zip(map(np.concatenate, zip(*episodes)), (r1[:n_one], l1[:n_one], s1[:n_one])):
        np.testing.assert_array_equal(got, want)  # the steps count on from the earlier runs
    assert n_one > 5


@pytest.mark.parametrize("kwargs, match", [
    (dict(env="Pong-v5"), "not a registered Gymnasium environment"),
    (dict(n_envs=0), "n_envs"),
    (dict(n_steps=-1), "n_steps"),
    (dict(total_timesteps=0), "total_timesteps"),
    (dict(hidden=(64,)), "hidden"),
    (dict(hidden=(64, 0)), "hidden"),
    (dict(gamma=1.5), "gamma"),
    (dict(max_grad_norm=0.0), "max_grad_norm"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(params=np.zeros(3)), "params"),
    (dict(params=np.full(ActorCriticLayout(4, 2).n_params, np.nan)), "finite"),
    (dict(seed=-1), "seed"),
    (dict(n_threads=0), "n_threads"),
])
def test_bad_inputs_raise(kwargs, match):
    kwargs = {"total_timesteps": 100, **kwargs}
    with pytest.raises(ValueError, match=match):
        learn(**kwargs)


def test_kernel_checks_its_arguments():
    p = ActorCriticLayout(4, 2, (8, 8)).init_params(0)
    sq = np.zeros_like(p)
    r, i = np.zeros(4), np.zeros(4, dtype=np.int64)
    args = dict(params=p, square_avg=sq, env_id=CARTPOLE.kernel_id, n_envs=2, n_steps=2, n_updates=1, n_threads=1,
                seed=0, gamma=0.99, gae_lambda=1.0, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                learning_rate=7e-4, rms_alpha=0.99, rms_eps=1e-5, normalize_advantage=False, h1=8, h2=8,
                max_episode_steps=500, episode_returns=r, episode_lengths=i, episode_steps=i)
    hsa2c.learn(*args.values())  # the base case runs
    for key, bad, match in [("env_id", 7, "env_id"), ("h1", 9, "params"), ("square_avg", np.zeros(3), "square_avg"),
                            ("n_threads", 0, "n_threads"), ("episode_steps", np.zeros(2, dtype=np.int64), "length"),
                            ("max_episode_steps", 0, "max_episode_steps"), ("rms_alpha", 2.0, "rms_alpha")]:
        with pytest.raises(ValueError, match=match):
            hsa2c.learn(*{**args, key: bad}.values())
    with pytest.raises(ValueError, match="normalize_advantage"):
        hsa2c.learn(*{**args, "n_envs": 1, "n_steps": 1, "normalize_advantage": True}.values())


def test_divergence_stops_with_a_message():
    with pytest.raises(FloatingPointError, match="diverged"):
        learn("CartPole-v1", 4_000, seed=0, learning_rate=1e300)
