"""The C environments (dpsgd.envs) against Gymnasium's, step for step, and their vector API."""

import inspect
import math

import numpy as np
import pytest

import dpsgd.envs
from dpsgd._kernels import envs as _kernel
from dpsgd.envs import make
from dpsgd.envs.vector import ENVS

NAMES = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"]
N_PAIRS = 100_000  # per env; the Gymnasium side loops in Python (Acrobot ~8k steps/s on the 2-core box)


def random_pairs(name, n, rng):
    """States (float64), actions and elapsed steps, a third of them on the edges: states near
    the termination thresholds (and exactly on them), angles at the wrap points, velocities past
    Acrobot's bounds, Pendulum's angles far outside [-pi, pi] (on and next to odd multiples of pi,
    where angle_normalize's modulo is 0 or rounds to 2 pi), its speeds at and past 8 and torques
    past 2, and TimeLimit counters at max - 2 and max - 1. Pendulum's actions are float64 (n, 1)."""
    third = n // 3
    max_steps = ENVS[name].max_episode_steps
    elapsed = rng.integers(0, max_steps, n)
    elapsed[rng.random(n) < 0.1] = max_steps - 1
    elapsed[rng.random(n) < 0.02] = max_steps - 2
    if name == "Pendulum-v1":
        states = np.column_stack([rng.uniform(-math.pi, math.pi, n), rng.uniform(-8, 8, n)])
        q = third // 4
        states[:third, 0] = rng.uniform(-1e3, 1e3, third)
        states[:q // 10, 0] = rng.uniform(-1e7, 1e7, q // 10)
        states[q:2 * q, 0] = rng.integers(-1000, 1001, q) * math.pi
        states[2 * q:3 * q, 0] = np.nextafter(states[q:2 * q, 0], rng.choice([-np.inf, np.inf], q))
        speeds = states[third:2 * third, 1]  # at, next to and past max_speed
        speeds[:] = rng.choice([-8.0, 8.0], third) * rng.choice([1.0, 1.0, 1.0 + 1e-15, 1.01, 3.0], third)
        speeds[third // 2:] = rng.choice([-8.0, 8.0], third - third // 2) + rng.uniform(-1.5, 1.5, third - third // 2)
        actions = rng.uniform(-3, 3, (n, 1))
        edge = rng.random(n)
        actions[edge < 0.1, 0] = rng.choice([-2.0, 2.0], (edge < 0.1).sum())
        actions[(0.1 <= edge) & (edge < 0.15), 0] = rng.uniform(-1e3, 1e3, ((0.1 <= edge) & (edge < 0.15)).sum())
        actions[(0.15 <= edge) & (edge < 0.17), 0] = np.nextafter(2.0, np.inf) * rng.choice([-1, 1])
        actions[(0.17 <= edge) & (edge < 0.18), 0] = rng.choice([0.0, -0.0])
        # at rest upright the cost is 0.001 * u**2 alone: there, torques whose square NumPy's pow
        # and x * x round differently tell which of the two the C side computes
        u = rng.uniform(-2, 2, 50_000)
        u = u[[np.float64(v) ** 2 != v * v for v in u]]
        states[2 * third:2 * third + u.size] = 0.0
        actions[2 * third:2 * third + u.size, 0] = u
        return states, actions, elapsed
    if name == "CartPole-v1":
        thr = 12 * 2 * math.pi / 360
        states = rng.uniform([-2.4, -3, -thr, -3.5], [2.4, 3, thr, 3.5], (n, 4))
        edge = states[:third]
        edge[:, 0] = rng.choice([-2.4, 2.4], third) + rng.uniform(-0.05, 0.05, third)
        edge[third // 2:, 2] = rng.choice([-thr, thr], third - third // 2) + rng.uniform(-0.01, 0.01, third - third // 2)
        exact = states[third:third + 100]
        exact[:, 0] = rng.choice([-2.4, 2.4], 100)
        exact[:, 1] = 0.0
        exact[50:, 2] = rng.choice([-thr, thr], 50)
        exact[50:, 3] = 0.0
        n_actions = 2
    else:
        states = rng.uniform([-math.pi, -math.pi, -4 * math.pi, -9 * math.pi],
                             [math.pi, math.pi, 4 * math.pi, 9 * math.pi], (n, 4))
        edge = states[:third]
        edge[:, 0] = rng.choice([-math.pi, math.pi], third) + rng.uniform(-0.3, 0.3, third)  # near terminal
        edge[third // 2:, 1] = rng.choice([-math.pi, math.pi], third - third // 2) + rng.uniform(-0.05, 0.05, third - third // 2)
        states[third:2 * third, 2:] *= 1.3  # velocities past the bounds
        n_actions = 3
    return states, rng.integers(0, n_actions, n), elapsed


@pytest.mark.parametrize("name", NAMES)
def test_step_equals_gymnasium_bit_for_bit(name):
    """From 100,000 random (state, action, elapsed steps): the same next state, bit for bit, and the
    same observation, reward, terminated and truncated. Bitwise holds for all three envs on this
    machine (glibc's cos/sin/pow are what NumPy's float64 scalars call; checked below). Pendulum's
    actions go to Gymnasium as the same float64 arrays (float32 ones would make it compute the
    torque's terms in float32)."""
    gym = pytest.importorskip("gymnasium")
    probe = np.random.default_rng(0).uniform(-10, 10, 1000) * np.repeat([1, 1e5], 500)
    if any(np.cos(np.float64(x)) != math.cos(x) or np.sin(np.float64(x)) != math.sin(x) for x in probe):
        pytest.skip("this NumPy's float64 sin/cos differ from libm's: bitwise equality cannot hold")
    states, actions, elapsed = random_pairs(name, N_PAIRS, np.random.default_rng(42))

    env = make(name, n_envs=N_PAIRS, seed=0)
    env.set_state(states, elapsed)
    obs, rewards, terminated, truncated, infos = env.step(actions)
    next_states = env.get_state()
    assert infos == {}

    g = gym.make(name, disable_env_checker=True)
    g.reset(seed=0)
    u = g.unwrapped
    g_next = np.empty_like(states)
    g_obs = np.empty_like(obs)
    g_rew = np.empty(N_PAIRS)
    g_term = np.empty(N_PAIRS, dtype=bool)
    g_trunc = np.empty(N_PAIRS, dtype=bool)
    for i in range(N_PAIRS):
        u.state = states[i].copy()
        if name == "CartPole-v1":
            u.steps_beyond_terminated = None  # a fresh step, not one after termination
        g._elapsed_steps = int(elapsed[i])
        action = actions[i].copy() if name == "Pendulum-v1" else int(actions[i])
        g_obs[i], g_rew[i], g_term[i], g_trunc[i], _ = g.step(action)
        g_next[i] = u.state
    g.close()

    assert next_states.dtype == np.float64 and obs.dtype == np.float32
    np.testing.assert_array_equal(next_states, g_next)
    np.testing.assert_array_equal(obs, g_obs)
    np.testing.assert_array_equal(rewards, g_rew)
    np.testing.assert_array_equal(terminated, g_term)
    np.testing.assert_array_equal(truncated, g_trunc)
    # the sample reaches every edge it is meant to
    assert truncated.sum() > 0.05 * N_PAIRS
    if name == "Pendulum-v1":
        assert not terminated.any()
        speed = next_states[:, 1]
        assert (np.abs(speed) == 8).sum() > 0.05 * N_PAIRS and (np.abs(speed) < 8).sum() > 0.5 * N_PAIRS
        # squares where NumPy's x**2 (pow) and x * x differ: x * x would fail the reward
        for x in (states[:, 1], actions[states[:, 0] == 0, 0]):
            assert np.count_nonzero([np.float64(v) ** 2 != v * v for v in x]) > 10
        return
    assert 0.05 < terminated.mean() < 0.95
    assert (terminated & truncated).any()
    if name == "Acrobot-v1":
        assert (np.abs(next_states[:, 2]) == 4 * math.pi).any() and (np.abs(next_states[:, 3]) == 9 * math.pi).any()


@pytest.mark.parametrize("name", NAMES)
def test_auto_reset_and_time_limit_follow_gymnasiums_sync_vector_env(name):
    """Episodes through gymnasium.make_vec(vectorization_mode="sync") (its default NextStep
    autoreset) and ours under the same actions: equal rewards, flags, elapsed steps, states and
    observations on every step. The RNGs differ, so after each reset Gymnasium's env takes our
    fresh state."""
    gym = pytest.importorskip("gymnasium")
    n = 4
    genv = gym.make_vec(name, num_envs=n, vectorization_mode="sync")
    assert genv.metadata["autoreset_mode"].value == "NextStep"
    genv.reset(seed=1)
    env = make(name, n_envs=n, seed=1)
    assert env.autoreset_mode == env.metadata["autoreset_mode"] == "NextStep"
    obs, _ = env.reset()

    def adopt(mask):
        for i in np.flatnonzero(mask):
            genv.envs[i].unwrapped.state = env.get_state()[i]

    adopt(np.ones(n, dtype=bool))
    rng = np.random.default_rng(0)
    seen_reset_steps = seen_truncations = 0
    for _ in range(1100):
        if name == "Pendulum-v1":
            actions = rng.uniform(-3, 3, (n, 1))
        else:
            actions = rng.integers(0, env.single_action_space.n, n)
        if name == "CartPole-v1":
            actions[:2] = 1  # two envs fail fast, two play on
        g_obs, g_rew, g_term, g_trunc, _ = genv.step(actions)
        obs, rew, term, trunc, infos = env.step(actions)
        assert infos == {}
        np.testing.assert_array_equal(rew, g_rew)
        np.testing.assert_array_equal(term, g_term)
        np.testing.assert_array_equal(trunc, g_trunc)
        elapsed = env.elapsed_steps
        np.testing.assert_array_equal(elapsed, [e._elapsed_steps for e in genv.envs])
        fresh = elapsed == 0  # the reset steps: reward 0, both flags False, the action ignored
        assert np.all(rew[fresh] == 0) and not (term | trunc)[fresh].any()
        seen_reset_steps += fresh.sum()
        seen_truncations += trunc.sum()
        adopt(fresh)
        np.testing.assert_array_equal(env.get_state(), [e.unwrapped.state for e in genv.envs])
        np.testing.assert_array_equal(obs[~fresh], g_obs[~fresh])
    genv.close()
    assert seen_reset_steps > 0
    if name != "CartPole-v1":
        assert seen_truncations > 0


def test_same_step_autoreset_returns_the_final_observation():
    env = make("CartPole-v1", n_envs=3, seed=0, autoreset_mode="SameStep")
    env.reset()
    states = np.zeros((3, 4))
    states[1, 0] = 2.399
    states[1, 1] = 1.0  # x crosses 2.4 on the next step
    env.set_state(states, elapsed_steps=np.array([0, 0, 499]))
    obs, rew, term, trunc, infos = env.step(np.array([0, 1, 1]))
    np.testing.assert_array_equal(term, [False, True, False])
    np.testing.assert_array_equal(trunc, [False, False, True])
    np.testing.assert_array_equal(rew, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(infos["_final_obs"], [False, True, True])
    assert infos["final_obs"][1, 0] == np.float32(2.399 + 0.02)
    np.testing.assert_array_equal(env.elapsed_steps, [1, 0, 0])
    assert np.all(np.abs(obs[1:]) <= 0.05)  # already the reset observations
    np.testing.assert_array_equal(obs, env.get_state().astype(np.float32))
    assert env.step(np.zeros(3, dtype=np.int64))[4] == {}


@pytest.mark.parametrize("name, bound", [("CartPole-v1", 0.05), ("Acrobot-v1", 0.1), ("Pendulum-v1", (math.pi, 1.0))])
def test_reset_distribution_and_seeding(name, bound):
    bound = np.asarray(bound)
    env = make(name, n_envs=20_000, seed=7)
    env.reset()
    s = env.get_state()
    assert s.shape == (20_000, ENVS[name].state_dim) and s.dtype == np.float64
    assert np.all((s >= -bound) & (s <= bound))
    np.testing.assert_array_less(np.abs(s.mean(0)), 5 * bound / math.sqrt(3 * 20_000))
    np.testing.assert_allclose(s.std(0), 2 * bound / math.sqrt(12), rtol=0.02)
    if name == "Acrobot-v1":  # Gymnasium draws float64 and keeps float32 (.astype(np.float32))
        np.testing.assert_array_equal(s, s.astype(np.float32))
    # same seed, same states; reset(seed=) equals make(seed=); another seed, other states
    again = make(name, n_envs=20_000, seed=7)
    again.reset()
    np.testing.assert_array_equal(again.get_state(), s)
    other = make(name, n_envs=20_000, seed=8)
    other.reset()
    assert not np.any(other.get_state() == s)
    other.reset(seed=7)
    np.testing.assert_array_equal(other.get_state(), s)
    # an env's stream does not depend on how many envs there are
    small = make(name, n_envs=3, seed=7)
    small.reset()
    np.testing.assert_array_equal(small.get_state(), s[:3])
    # a later reset without a seed goes on with the streams
    env.reset()
    assert not np.any(env.get_state() == s)
    unseeded = make(name, n_envs=4)
    unseeded.reset()
    assert not np.array_equal(unseeded.get_state(), make(name, n_envs=4).reset()[0])


def test_a_whole_run_is_reproducible():
    def run(seed):
        env = make("CartPole-v1", n_envs=8, seed=seed)
        obs, _ = env.reset()
        rng = np.random.default_rng(3)
        out = [obs]
        for _ in range(300):
            out += env.step(rng.integers(0, 2, 8))[:4]
        return out

    a, b = run(5), run(5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, run(6)))


@pytest.mark.parametrize("name", NAMES)
def test_spaces_match_gymnasiums(name):
    gym = pytest.importorskip("gymnasium")
    env = make(name, n_envs=5, seed=0)
    genv = gym.make_vec(name, num_envs=5, vectorization_mode="sync")
    for ours, theirs in ((env.single_observation_space, genv.single_observation_space),
                         (env.observation_space, genv.observation_space)):
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours.low, theirs.low)
        np.testing.assert_array_equal(ours.high, theirs.high)
    assert ENVS[name].reward_threshold == gym.spec(name).reward_threshold
    assert ENVS[name].max_episode_steps == gym.spec(name).max_episode_steps
    if name == "Pendulum-v1":
        assert env.action_space.shape == genv.action_space.shape == (5, 1)
        for ours, theirs in ((env.single_action_space, genv.single_action_space),
                             (env.action_space, genv.action_space)):
            assert type(ours).__name__ == type(theirs).__name__ == "Box"
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours.low, theirs.low)
            np.testing.assert_array_equal(ours.high, theirs.high)
    else:
        assert env.single_action_space.n == genv.single_action_space.n
        assert env.action_space.shape == genv.action_space.shape == (5,)
        np.testing.assert_array_equal(env.action_space.nvec, genv.action_space.nvec)
    obs, infos = env.reset()
    assert obs.shape == (5, env.single_observation_space.shape[0]) and obs.dtype == np.float32 and infos == {}
    assert env.action_space.contains(env.action_space.sample())
    assert env.single_action_space.contains(env.single_action_space.sample())
    obs, rew, term, trunc, _ = env.step(env.action_space.sample())
    assert rew.dtype == np.float64 and term.dtype == trunc.dtype == np.bool_ and rew.shape == (5,)
    genv.close()
    env.close()


def test_bad_inputs_are_refused_with_a_message():
    with pytest.raises(ValueError, match=r"unknown environment 'LunarLander-v3'.*Acrobot-v1, CartPole-v1.*adapter"):
        make("LunarLander-v3")
    for n in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="n_envs must be a positive integer"):
            make("CartPole-v1", n_envs=n)
    for seed in (-1, 2**64, 1.0, "0"):
        with pytest.raises(ValueError, match="seed must be None or an integer"):
            make("CartPole-v1", seed=seed)
    with pytest.raises(ValueError, match="autoreset_mode"):
        make("CartPole-v1", autoreset_mode="Disabled")

    env = make("Acrobot-v1", n_envs=2, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.array([0, 1]))
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        env.step(1)
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integers"):
        env.step(np.array([True, False]))
    with pytest.raises(ValueError, match=r"\[0, 3\).*env 1 got 3"):
        env.step([0, 3])
    with pytest.raises(ValueError, match=r"env 0 got -1"):
        env.step([-1, 0])
    with pytest.raises(ValueError, match="reset options"):
        env.reset(options={"low": -0.2})
    with pytest.raises(ValueError, match="seed must be"):
        env.reset(seed=-3)

    before = env.get_state()
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        env.set_state(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"finite: env 1 coordinate 2 is nan"):
        env.set_state(np.array([[0.0, 0, 0, 0], [0, 0, np.nan, 0]]))
    with pytest.raises(ValueError, match="finite"):
        env.set_state(np.full((2, 4), np.inf))
    with pytest.raises(TypeError, match="real numbers"):
        env.set_state(np.full((2, 4), "a"))
    with pytest.raises(ValueError, match="elapsed_steps"):
        env.set_state(np.zeros((2, 4)), elapsed_steps=np.array([-1, 0]))
    np.testing.assert_array_equal(env.get_state(), before)  # nothing changed by a refused call

    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.array([0, 1]))


def test_continuous_actions_are_clipped_and_bad_ones_refused():
    """Pendulum takes (n_envs, 1) real numbers, clipped to [-2, 2] by the env as Gymnasium's step
    does; Gymnasium's vector env fails on shape (n_envs,) (its Box rows are then scalars), so we
    refuse it, as other shapes, non-finite values and non-numbers, with a message."""
    env = make("Pendulum-v1", n_envs=3, seed=0)
    env.reset()
    start = env.get_state()
    env.step(np.array([[2.0], [-2.0], [0.0]]))
    clipped = env.get_state()
    for actions in ([[5.0], [-1e300], [0]], np.array([[2], [-3], [0]], dtype=np.int32),
                    np.array([[2.5], [-2.0], [0.0]], dtype=np.float32)):
        env.set_state(start)
        env.step(actions)
        np.testing.assert_array_equal(env.get_state(), clipped)

    env.set_state(start)
    for bad in (np.zeros(3), np.zeros((3, 2)), np.zeros((2, 1)), 0.5, [[0.0], [1.0]]):
        with pytest.raises(ValueError, match=r"actions must have shape \(3, 1\)"):
            env.step(bad)
    with pytest.raises(ValueError, match=r"actions must be finite: env 1 coordinate 0 is nan"):
        env.step(np.array([[0.0], [np.nan], [0.0]]))
    with pytest.raises(ValueError, match=r"finite: env 2 coordinate 0 is -inf"):
        env.step(np.array([[0.0], [1.0], [-np.inf]]))
    with pytest.raises(TypeError, match="real numbers"):
        env.step(np.ones((3, 1), dtype=bool))
    with pytest.raises(TypeError, match="real numbers"):
        env.step(np.full((3, 1), "a"))
    np.testing.assert_array_equal(env.get_state(), start)  # nothing stepped by a refused call
    np.testing.assert_array_equal(env.elapsed_steps, 0)

    # the kernel itself refuses actions of the other kind (a NULL dynamics otherwise)
    out = (np.empty((3, 3), np.float32), np.empty(3), np.empty(3, np.uint8), np.empty(3, np.uint8),
           np.empty((0, 3), np.float32), np.empty(0, np.uint8))
    with pytest.raises(TypeError, match="float64 actions"):
        _kernel.step(_kernel.EnvId.PENDULUM, env._state, np.zeros((3, 1), np.int64), env._elapsed,
                     env._needs_reset, env._rngs, 200, 0, *out)
    with pytest.raises(TypeError, match="int64 actions"):
        _kernel.step(_kernel.EnvId.CARTPOLE, np.zeros((3, 4)), np.zeros((3, 1)), env._elapsed,
                     env._needs_reset, env._rngs, 200, 0, np.empty((3, 4), np.float32), *out[1:])


def test_the_public_api_is_annotated():
    functions = [dpsgd.envs.make, dpsgd.envs.names]
    functions += [f for name, f in vars(dpsgd.envs.CVectorEnv).items()
                  if inspect.isfunction(f) and not name.startswith("_")]
    missing = [f.__qualname__ for f in functions if inspect.signature(f).return_annotation is inspect.Signature.empty]
    assert not missing, missing
