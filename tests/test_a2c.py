"""dpsgd.A2C: Stable-Baselines3's interface over HSA2C (tasks/a2c.py), in one process and on ranks."""

import json

import numpy as np
import pytest
from conftest import run_mpi

import dpsgd
from dpsgd import A2C, evaluate_policy
from dpsgd.envs import make


@pytest.fixture(scope="module")
def solved():
    # one thread, seed 3: tests/test_hsa2c.py measured it solving CartPole-v1 after 133,152 env steps
    stats = {}
    model = A2C("MlpPolicy", "CartPole-v1", n_threads=1, seed=3).learn(250_000, callback=stats.update)
    return model, stats


@pytest.mark.parametrize("name, value", [
    ("policy", "CnnPolicy"), ("env", "Pong-v5"), ("learning_rate", 0.0), ("learning_rate", "lin_x"),
    ("n_steps", 0), ("n_steps", 2.5), ("gamma", 1.5), ("gae_lambda", -0.1), ("ent_coef", -1.0),
    ("vf_coef", float("nan")), ("max_grad_norm", 0.0), ("rms_prop_eps", -1e-5),
    ("use_rms_prop", "yes"), ("normalize_advantage", 1), ("n_envs", 0), ("n_threads", 0), ("seed", -1),
    ("verbose", -1), ("step_policy", "sometimes"), ("exchange", "carrier_pigeon"), ("max_seconds", 0),
    ("shared_optimizer_stats", "no")])
def test_bad_parameters_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        A2C(**{name: value})


def test_unknown_env_lists_the_known_ones():
    with pytest.raises(ValueError, match="CartPole-v1.*Acrobot-v1|Acrobot-v1.*CartPole-v1"):
        A2C("MlpPolicy", "Pong-v5")


@pytest.mark.parametrize("kwargs", [
    dict(net_arch=dict(pi=[64, 64], vf=[32, 32])), dict(net_arch=[64]), dict(net_arch=dict(pi=[8, 8])),
    dict(net_arch=[8, 0]), dict(activation_fn="relu"), "net_arch"])
def test_bad_policy_kwargs(kwargs):
    with pytest.raises(ValueError, match="policy_kwargs"):
        A2C(policy_kwargs=kwargs)


def test_bad_learn_arguments():
    model = A2C(n_threads=1, seed=0)
    with pytest.raises(ValueError, match="total_timesteps"):
        model.learn(0)
    with pytest.raises(ValueError, match="callback"):
        model.learn(100, callback=3)
    with pytest.raises(ValueError, match="not trained"):
        model.predict(np.zeros(4))


def test_learns_cartpole(solved):
    model, stats = solved
    # the callback's last round: this process's steps, every rank's (here the same)
    assert model.num_timesteps == 250_000 and stats["env_steps"] == stats["updates"] == 250_000
    assert model.n_threads_ == 1
    assert len(model.ep_info_buffer) == 100
    mean = np.mean([e["r"] for e in model.ep_info_buffer])
    assert mean >= 475 and stats["mean_return"] == pytest.approx(mean)
    assert evaluate_policy(model, "CartPole-v1", n_eval_episodes=10)[0] >= 475


def test_a_callback_returning_false_stops_and_stop_at_reward_stops():
    rounds = []

    def three_rounds(info):
        rounds.append(info["env_steps"])
        return len(rounds) < 3

    model = A2C(n_threads=1, seed=0).learn(100_000, callback=three_rounds)
    # 8 updates of 8 envs x 5 steps a round: the run ends after the third
    assert rounds == [320, 640, 960] and model.num_timesteps == 960
    model = A2C(n_threads=1, seed=3).learn(250_000, stop_at_reward=150.0)
    means = [e["r"] for e in model.ep_info_buffer]
    assert model.solved_at_ is not None and model.num_timesteps < 250_000 and np.mean(means) >= 150.0
    with pytest.raises(ValueError, match="stop_at_reward"):
        A2C(n_threads=1).learn(100, stop_at_reward="high")


def test_evaluate_policy_on_a_vector_env(solved):
    model, _ = solved
    returns, lengths = evaluate_policy(model, make("CartPole-v1", n_envs=3, seed=1), n_eval_episodes=7,
                                       return_episode_rewards=True)
    assert len(returns) == len(lengths) == 7
    assert returns == [float(n) for n in lengths]  # CartPole pays 1 a step
    with pytest.raises(ValueError, match="does not fit"):
        evaluate_policy(model, make("Acrobot-v1"))


def test_predict_shapes(solved):
    model, _ = solved
    obs, _ = make("CartPole-v1", n_envs=5, seed=0).reset()
    action, state = model.predict(obs[0], deterministic=True)
    assert state is None and action.shape == () and action.dtype == np.int64
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (5,) and actions[0] == action
    drawn, _ = model.predict(obs)
    assert drawn.shape == (5,) and np.all((drawn >= 0) & (drawn < 2))
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.zeros(3))


def test_save_load_round_trip(solved, tmp_path):
    model, _ = solved
    dpsgd.save_model(model, tmp_path / "a2c.npz")
    loaded = dpsgd.load_model(tmp_path / "a2c.npz")
    assert isinstance(loaded, A2C) and loaded.num_timesteps == model.num_timesteps
    np.testing.assert_array_equal(loaded.params_, model.params_)
    np.testing.assert_array_equal(loaded.optimizer_state_, model.optimizer_state_)
    assert loaded.optimizer_steps_ == model.optimizer_steps_ == 250_000 // 40
    obs = np.random.default_rng(0).uniform(-0.2, 0.2, (64, 4))
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0],
                                  model.predict(obs, deterministic=True)[0])


def test_learn_continues():
    model = A2C(n_envs=4, n_threads=1, seed=0, policy_kwargs=dict(net_arch=dict(pi=[8, 8], vf=[8, 8])))
    model.learn(1000)
    first = model.params_.copy()
    model.learn(1000, reset_num_timesteps=False)
    assert model.num_timesteps == 2000
    assert not np.array_equal(model.params_, first)
    model.learn(1000)
    assert model.num_timesteps == 1000


@pytest.mark.parametrize("use_rms_prop", [True, False])
def test_learn_continues_the_optimizer_statistics(monkeypatch, use_rms_prop):
    """reset_num_timesteps=False goes on from the fitted optimizer statistics (RMSprop's square
    averages; Adam's moments and step count), not from zeros."""
    from dpsgd.tasks import a2c_learn

    kw = dict(n_envs=2, n_steps=5, n_threads=1, hidden=(4, 4), use_rms_prop=use_rms_prop)
    first = a2c_learn.learn("CartPole-v1", 50, seed=0, **kw)
    assert first.optimizer_state.shape == ((first.layout.n_params,) if use_rms_prop else (2, first.layout.n_params))
    resumed = a2c_learn.learn("CartPole-v1", 10, seed=1, params=first.params, optimizer_state=first.optimizer_state,
                              optimizer_steps=first.optimizer_steps, **kw)
    fresh = a2c_learn.learn("CartPole-v1", 10, seed=1, params=first.params, **kw)
    assert not np.array_equal(resumed.params, fresh.params)  # the statistics scale the step
    assert resumed.optimizer_steps == first.optimizer_steps + 1 == 6
    with pytest.raises(ValueError, match="optimizer_state"):
        a2c_learn.learn("CartPole-v1", 10, seed=1, params=first.params, optimizer_state=-first.optimizer_state - 1,
                        **kw)

    seen = []
    real = a2c_learn.learn

    def spy(*args, **kwargs):
        seen.append((kwargs.get("optimizer_state"), kwargs.get("optimizer_steps")))
        return real(*args, **kwargs)

    monkeypatch.setattr(a2c_learn, "learn", spy)
    model = A2C(n_envs=2, n_threads=1, seed=0, policy_kwargs=dict(net_arch=[4, 4]), use_rms_prop=use_rms_prop)
    model.learn(100)
    stats = model.optimizer_state_.copy()
    model.learn(100, reset_num_timesteps=False)
    assert seen[0] == (None, 0) and np.array_equal(seen[1][0], stats) and seen[1][1] == 10


def test_adam_learns_cartpole_and_saves(tmp_path):
    """SB3's A2C with use_rms_prop=False: Adam (lr 7e-4, eps 1e-5). Seeds 0 / 1 / 2 reached a
    mean return of 200 after 27k / 72k / 30k env steps and 475 after 120k / 155k / 171k here;
    the test asks seed 0 for 200 within 250,000."""
    model = A2C(n_threads=1, seed=0, use_rms_prop=False).learn(250_000, stop_at_reward=200.0)
    assert model.solved_at_ is not None and model.optimizer_state_.shape == (2, model.layout_.n_params)
    dpsgd.save_model(model, tmp_path / "adam.npz")
    loaded = dpsgd.load_model(tmp_path / "adam.npz")
    np.testing.assert_array_equal(loaded.optimizer_state_, model.optimizer_state_)
    assert loaded.optimizer_steps_ == model.optimizer_steps_ and not loaded.use_rms_prop


@pytest.mark.parametrize("exchange", ["server", "allreduce"])
def test_two_ranks_learn_cartpole(exchange):
    """2 ranks x 1 thread through the engine (real mpiexec) solve CartPole-v1: the run stops on
    the reward (seed 3: 169k steps of both ranks with the server, against 133k for one rank
    alone; seed 4 where seed 3's run does not solve), both ranks' episodes count, and every rank
    ends with the same parameters."""
    # the ranks' interleaving differs run to run: under a loaded CI one server run of seed 3 was
    # at a mean return of 135 after 500k steps, and another (2026-12-01) solved at 141k with a
    # greedy policy of 97 from its final parameters (A2C's policy can collapse between the
    # last episodes counted and the last push; 0 of 20 runs here did): seed 4 gets a second run
    for seed in (3, 4):
        out = run_mpi("a2c_ranks.py", 2, exchange, 1, 500_000, seed, timeout=300)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result["num_timesteps"] < 500_000 and result["greedy"] >= 200:
            break
    assert result["num_timesteps"] < 500_000, result  # stopped by the reward, not the budget
    assert any(r["mean_return"] >= 475 for r in result["ranks"]), result  # the rank that stopped the run
    # every rank knows the run stopped on the reward, after the steps of both
    assert all(r["solved_at"] == r["steps"] == result["num_timesteps"] for r in result["ranks"]), result
    assert all(r["episodes"] > 0 for r in result["ranks"]) and result["same_params"]
    assert result["greedy"] >= 200, result  # a random policy scores about 20


def test_a_failing_rank_ends_the_job_with_its_message():
    out = run_mpi("a2c_ranks.py", 2, "server", 1, 500_000, 3, "fail", timeout=120)
    assert out.returncode != 0
    assert "rank 1 failed on purpose in round 3" in out.stderr


def test_normalize_learns_acrobot_and_predicts_with_its_statistics(tmp_path):
    """RL-Zoo's Acrobot-v1 set-up (16 envs, normalize: true). Seeds 0 / 1 reached a mean return
    of -100 after 55k / 37k env steps here (SB3, measured for the issue: 36k-47k)."""
    model = A2C("MlpPolicy", "Acrobot-v1", n_envs=16, normalize=True, n_threads=1, seed=1)
    model.learn(200_000, stop_at_reward=-100.0)
    assert model.solved_at_ is not None and model.normalizer_.shape == (2 * 6 + 4,)
    mean, var = model.normalizer_[:6], model.normalizer_[6:12]
    assert model.normalizer_[12] == pytest.approx(model.num_timesteps + 16)  # every observation, and the resets'
    obs = np.random.default_rng(0).uniform(-1, 1, (32, 6))
    seen = np.clip((obs - mean) / np.sqrt(var + 1e-8), -10, 10)  # VecNormalize with training=False
    greedy = model.layout_.forward(model.params_, seen)[1].argmax(axis=1)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], greedy)
    dpsgd.save_model(model, tmp_path / "acrobot.npz")
    loaded = dpsgd.load_model(tmp_path / "acrobot.npz")
    np.testing.assert_array_equal(loaded.normalizer_, model.normalizer_)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], greedy)
    assert evaluate_policy(loaded, "Acrobot-v1", n_eval_episodes=10, seed=0)[0] > -200
    # its discounted returns are negative: the statistics go on (a negative mean is no error)
    assert loaded.normalizer_[13] < 0
    loaded.learn(1_600, reset_num_timesteps=False)
    assert loaded.normalizer_[12] == pytest.approx(model.normalizer_[12] + 1_600 + 16)


def test_merged_normalizers_are_the_pooled_statistics():
    """Threads that began from the same statistics and saw different data merge to the
    statistics of all the data, the starting ones counted once."""
    from dpsgd.tasks.a2c_learn import merge_normalizers

    rng = np.random.default_rng(0)
    first, seen = rng.normal(2.0, 3.0, (400, 2)), [rng.normal(-1.0, 0.5, (n, 2)) for n in (100, 300, 50)]
    ret_first, ret_seen = rng.normal(-40, 5, 400), [rng.normal(-60, 9, n) for n in (100, 300, 50)]

    def stats(x, r, prior=None):  # SB3's RunningMeanStd after one update from its initial state
        out = np.concatenate([x.mean(0), x.var(0), [len(x), r.mean(), r.var(), len(r)]])
        if prior is None:
            return out
        both_x, both_r = np.concatenate([prior[0], x]), np.concatenate([prior[1], r])
        return np.concatenate([both_x.mean(0), both_x.var(0), [len(both_x), both_r.mean(), both_r.var(), len(both_r)]])

    start = stats(first, ret_first)
    rows = [stats(x, r, (first, ret_first)) for x, r in zip(seen, ret_seen)]
    pooled = stats(np.concatenate([first, *seen]), np.concatenate([ret_first, *ret_seen]))
    np.testing.assert_allclose(merge_normalizers(np.array(rows), start, 2), pooled, rtol=1e-10)


def test_adam_takes_sb3s_eps_whatever_rms_prop_eps_says():
    a = A2C(n_threads=1, seed=0, use_rms_prop=False).learn(2_000)
    b = A2C(n_threads=1, seed=0, use_rms_prop=False, rms_prop_eps=1e-2).learn(2_000)
    np.testing.assert_array_equal(a.params_, b.params_)


def test_a_gymnasium_environment_through_the_adapter():
    """Any Gymnasium id with Discrete actions trains through the Python adapter (one thread):
    Gymnasium's own CartPole-v1, seed 0, reached a mean return of 150 after 19,696 env steps
    (and 475 after 149,456, at 60 microseconds of CPU a step against 18 for the C env)."""
    pytest.importorskip("gymnasium")
    model = A2C("MlpPolicy", "gymnasium:CartPole-v1", n_threads=1, seed=0).learn(150_000, stop_at_reward=150.0)
    assert model.solved_at_ is not None and model.n_threads_ == 1
    assert evaluate_policy(model, "gymnasium:CartPole-v1", n_eval_episodes=5, seed=0)[0] >= 100


def test_bad_gymnasium_environments_fail_clearly():
    gymnasium = pytest.importorskip("gymnasium")

    class UnboundedActions(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,))
        action_space = gymnasium.spaces.Box(-np.inf, np.inf, (1,))

    gymnasium.register("DpsgdTestUnbounded-v0", entry_point=UnboundedActions, max_episode_steps=50)
    with pytest.raises(ValueError, match="finite bounds"):
        A2C("MlpPolicy", "DpsgdTestUnbounded-v0")

    class NanAfterThree(gymnasium.Env):
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,))
        action_space = gymnasium.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(3, dtype=np.float32), {}

        def step(self, action):
            self.t += 1
            obs = np.full(3, np.nan if self.t == 3 else 0.0, dtype=np.float32)
            return obs, 1.0, False, False, {}

    from dpsgd.envs.adapter import GymnasiumVectorEnv

    env = GymnasiumVectorEnv("gymnasium:CartPole-v1", n_envs=2, seed=0)
    env.reset()
    for bad in ([0], [0.5, 1.0], [0, 2], np.array([True, False])):
        with pytest.raises(ValueError, match="actions must be 2 integers"):
            env.step(bad)
    env.close()
    gymnasium.register("DpsgdTestNan-v0", entry_point=NanAfterThree, max_episode_steps=50)
    with pytest.raises(ValueError, match="DpsgdTestNan-v0 returned a non-finite observation"):
        A2C("MlpPolicy", "DpsgdTestNan-v0", n_envs=2, n_threads=1, seed=0).learn(1_000)


def test_gaussian_policy_learns_pendulum_and_predicts_in_the_box(tmp_path):
    """Continuous actions: RL-Zoo's Pendulum-v1 A2C settings without gSDE (dpsgd has none) take
    the mean return of the last 100 training episodes from about -1,200 (a random policy) to
    -754 / -320 / -233 in 1e6 steps (seeds 0, 1, 2; 4.5 s each on this 2-core machine): the
    median is held to -800."""
    kwargs = dict(n_envs=8, n_steps=8, gamma=0.9, gae_lambda=0.9, vf_coef=0.4, learning_rate="lin_7e-4",
                  normalize=True, n_threads=1)
    finals = []
    for seed in (0, 1, 2):
        model = A2C("MlpPolicy", "Pendulum-v1", seed=seed, **kwargs).learn(1_000_000)
        finals.append(np.mean([e["r"] for e in model.ep_info_buffer]))
    assert np.median(finals) > -800, finals
    assert model.params_.shape == (model.layout_.n_params,) and model.layout_.continuous
    actions, _ = model.predict(np.random.default_rng(0).normal(0, 3, (50, 3)))
    assert actions.shape == (50, 1) and np.all(np.abs(actions) <= 2.0)
    assert model.predict(np.array([1.0, 0.0, 0.0]), deterministic=True)[0].shape == (1,)
    path = tmp_path / "pendulum.npz"
    dpsgd.save_model(model, path)
    loaded = dpsgd.load_model(path)
    obs = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    mean, _ = evaluate_policy(loaded, "Pendulum-v1", n_eval_episodes=4, seed=0)
    assert mean > -1000


def test_box_actions_through_the_adapter():
    """A Gymnasium environment with Box actions (Gymnasium's own Pendulum-v1) trains in Python
    with the Gaussian policy; the adapter clips actions to the Box and refuses bad ones."""
    pytest.importorskip("gymnasium")
    from dpsgd.envs.adapter import GymnasiumVectorEnv

    model = A2C("MlpPolicy", "gymnasium:Pendulum-v1", n_envs=4, n_steps=8, seed=0).learn(2_000)
    assert model.layout_.continuous and model.n_threads_ == 1 and len(model.ep_info_buffer) == 8
    env = GymnasiumVectorEnv("gymnasium:Pendulum-v1", n_envs=2, seed=0)
    env.reset()
    env.step(np.array([[5.0], [-5.0]]))  # clipped to [-2, 2], as SB3 clips a Gaussian's draws
    env.step(np.array([[1], [0]]))  # integers are real numbers too, as the C envs take them
    for bad in (np.zeros(2), np.zeros((2, 2)), np.array([[np.nan], [0.0]]), np.array([[True], [False]])):
        with pytest.raises(ValueError, match="finite real numbers"):
            env.step(bad)
    env.close()
    assert np.all(np.abs(model.predict(np.full((3, 3), 9.0))[0]) <= 2.0)


def test_per_thread_optimizer_statistics_learn_cartpole():
    """shared_optimizer_stats=False on 2 threads (seeds 0 / 1 / 2 reached 475 after 135k-152k /
    172k-184k / 175k-182k env steps in two runs, against 160k / 170k / 185k with shared statistics;
    seed 0 in 6 more runs 118k-151k). The budget leaves room for a loaded machine's threads: in
    one CI run seed 0 had not reached 475 after 400k."""
    model = A2C(n_threads=2, seed=0, shared_optimizer_stats=False).learn(1_000_000, stop_at_reward=475)
    assert model.solved_at_ is not None and model.n_threads_ == (2 if dpsgd.openmp_enabled() else 1)
    assert model.optimizer_state_.shape == model.params_.shape and (model.optimizer_state_ > 0).any()


def test_learning_rate_schedules():
    """SB3's callable schedules and RL-Zoo's "lin_<lr>": set before every round from the
    progress remaining, so a linear schedule ends near 0 and a constant one stays."""
    seen = []

    def schedule(progress_remaining):
        seen.append(progress_remaining)
        return 7e-4 * progress_remaining

    model = A2C(n_threads=1, seed=0, learning_rate=schedule).learn(3_200)  # 80 updates: 10 rounds of 8
    assert seen[:2] == [1.0, 1.0] and seen[-1] == pytest.approx(1 - 72 / 80) and len(seen) == 11
    seen.clear()  # a continuation counts on, over both budgets (SB3 with reset_num_timesteps=False)
    model.learn(3_200, reset_num_timesteps=False)
    assert seen[:2] == [0.5, 0.5] and seen[-1] == pytest.approx(1 - (3_200 + 72 * 40) / 6_400)
    lin = A2C(n_threads=1, seed=0, learning_rate="lin_7e-4").learn(3_200)
    call = A2C(n_threads=1, seed=0, learning_rate=lambda p: 7e-4 * p).learn(3_200)
    np.testing.assert_array_equal(lin.params_, call.params_)
    assert not np.array_equal(lin.params_, A2C(n_threads=1, seed=0).learn(3_200).params_)
    with pytest.raises(ValueError, match="schedule returned"):
        A2C(n_threads=1, learning_rate=lambda p: float("nan")).learn(100)
    with pytest.raises(ValueError, match="learning_rate is a callable"):
        dpsgd.save_model(call, "unused.npz")


def test_progress_bar_writes_the_steps_and_the_mean_return(capsys):
    A2C(n_threads=1, seed=0).learn(4_000, progress_bar=True)
    err = capsys.readouterr().err
    assert "4000/4000 steps" in err and "mean_return" in err
