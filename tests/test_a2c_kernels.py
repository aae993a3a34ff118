"""The actor-critic kernels (dpsgd._kernels.a2c) against NumPy references.

The references: the NumPy forward and loss of dpsgd.tasks.a2c_net (the gradient against central
finite differences of that loss), and NumPy transcriptions of torch's ``clip_grad_norm_`` and
``RMSprop`` and of SB3's ``RolloutBuffer.compute_returns_and_advantage``.
"""

import numpy as np
import pytest

from dpsgd._kernels import a2c
from dpsgd.tasks.a2c_net import ActorCriticLayout, orthogonal


def tiny(n_actions=3, seed=0, T=6, obs_dim=4, hidden=(3, 4), scale=0.7):
    """A tiny network with random (not initial) parameters and a random batch."""
    rng = np.random.default_rng(seed)
    layout = ActorCriticLayout(obs_dim, n_actions, hidden)
    params = rng.normal(0.0, scale, layout.n_params)
    obs = rng.normal(0.0, 1.0, (T, obs_dim))
    actions = rng.integers(0, n_actions, T).astype(np.int64)
    advantages = rng.normal(0.0, 1.0, T)
    returns = rng.normal(0.0, 2.0, T)
    return layout, params, obs, actions, advantages, returns


def central_differences(f, x, h=1e-5):
    g = np.empty_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


# ---------------------------------------------------------------- layout and initialisation

def test_layout_sizes_match_the_kernel():
    for obs_dim, n_actions, hidden in ((4, 2, (64, 64)), (6, 3, (64, 64)), (4, 3, (3, 4)), (8, 4, (5, 7))):
        layout = ActorCriticLayout(obs_dim, n_actions, hidden)
        h1, h2 = hidden
        assert layout.n_params == a2c.n_params(obs_dim, h1, h2, n_actions)
        expected = (h1 * obs_dim + h1 + h2 * h1 + h2 + n_actions * h2 + n_actions) + (h1 * obs_dim + h1 + h2 * h1 + h2 + h2 + 1)
        assert layout.n_params == expected
    # CartPole with SB3's separate 64-64 nets: 4610 actor + 4545 critic parameters
    assert ActorCriticLayout(4, 2).n_params == 9155


def test_views_tile_the_vector_in_layout_order():
    layout = ActorCriticLayout(4, 3, (3, 4))
    params = np.arange(layout.n_params, dtype=np.float64)
    v = layout.views(params)
    assert list(v) == [f"{n}.{k}" for n in ("actor", "critic") for k in ("w1", "b1", "w2", "b2", "w3", "b3")]
    assert np.array_equal(np.concatenate([a.ravel() for a in v.values()]), params)
    assert v["actor.w1"].shape == (3, 4) and v["actor.w3"].shape == (3, 4) and v["critic.w3"].shape == (1, 4)
    v["critic.b3"][0] = -1.0  # views, not copies
    assert params[-1] == -1.0
    with pytest.raises(ValueError, match="flat vector"):
        layout.views(params[:-1])


@pytest.mark.parametrize("rows, cols", [(64, 4), (64, 64), (2, 64), (1, 64), (3, 4), (4, 3)])
def test_orthogonal_is_orthogonal_with_its_gain(rows, cols):
    gain = 1.7
    w = orthogonal(rows, cols, gain, np.random.default_rng(1))
    assert w.shape == (rows, cols)
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_init_params_as_sb3_sets_them():
    layout = ActorCriticLayout(4, 2, (64, 64))
    params = layout.init_params(np.random.default_rng(0))
    v = layout.views(params)
    gains = {"w1": 2.0, "w2": 2.0}
    for net, head in (("actor", 0.01 ** 2), ("critic", 1.0)):
        for name, g2 in {**gains, "w3": head}.items():
            w = v[f"{net}.{name}"]
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
            np.testing.assert_allclose(gram, g2 * np.eye(min(w.shape)), atol=1e-12)
        for name in ("b1", "b2", "b3"):
            assert not v[f"{net}.{name}"].any()
    # seeded: the same seed, the same vector; another seed, another one
    assert np.array_equal(params, layout.init_params(0))
    assert not np.array_equal(params, layout.init_params(1))


def test_layout_rejects_bad_sizes():
    with pytest.raises(ValueError, match="n_actions"):
        ActorCriticLayout(4, 1)
    with pytest.raises(ValueError, match="hidden"):
        ActorCriticLayout(4, 2, (64,))
    with pytest.raises(ValueError, match=">= 1"):
        ActorCriticLayout(0, 2)


# ---------------------------------------------------------------- forward

@pytest.mark.parametrize("n_actions", [2, 3, 5])
def test_forward_equals_numpy(n_actions):
    layout, params, obs, *_ = tiny(n_actions=n_actions, T=9)
    got = a2c.py_forward(params, obs, layout.h1, layout.h2, n_actions)
    want = layout.forward(params, obs)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.exp(got[1]).sum(axis=1), 1.0, rtol=1e-13)


def test_forward_at_sb3_sizes_and_init():
    layout = ActorCriticLayout(6, 3)
    params = layout.init_params(3)
    obs = np.random.default_rng(2).normal(size=(16, 6))
    got = a2c.py_forward(params, obs, 64, 64, 3)
    for g, w in zip(got, layout.forward(params, obs)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    # the 0.01 policy head starts near uniform
    np.testing.assert_allclose(got[2], np.log(3), rtol=1e-3)


@pytest.mark.parametrize("hidden", [(64, 64), (5, 7)])
def test_forward_of_an_observation_is_the_same_in_any_batch(hidden):
    """The rollout forwards n_envs observations at a time, predict() one, the replay a whole
    rollout: an observation gets the same numbers, bit for bit, whatever batch it is in."""
    layout = ActorCriticLayout(4, 3, hidden)
    params = layout.init_params(5)
    obs = np.random.default_rng(5).normal(size=(21, 4))
    whole = a2c.py_forward(params, obs, *hidden, 3)
    for m in (1, 3, 4, 8, 13):
        parts = [a2c.py_forward(params, obs[i:i + m].copy(), *hidden, 3) for i in range(0, 21, m)]
        for k, w in enumerate(whole):
            np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), w)


def test_tanh_kernel_equals_numpy():
    """mlp.h's vectorised tanh: within 2 units in the last place of 1 everywhere and to full
    relative precision near 0, odd, exact at 0 and -0, saturated at +-inf, NaN in NaN out;
    any length (vector body and remainder)."""
    x = np.concatenate([np.linspace(-25, 25, 200_001), np.geomspace(1e-300, 1e3, 5_000),
                        -np.geomspace(1e-300, 1e3, 5_000), [0.0, -0.0, np.inf, -np.inf, np.nan, 19.0, 20.0]])
    got = a2c.py_tanh(x)
    np.testing.assert_allclose(got, np.tanh(x), rtol=0, atol=4.5e-16)
    np.testing.assert_array_equal(a2c.py_tanh(-x[:-3]), -got[:-3])
    assert np.signbit(got[-6]) and not np.signbit(got[-7])
    assert np.isnan(got[-3])
    for n in range(1, 12):
        np.testing.assert_array_equal(a2c.py_tanh(x[1000:1000 + n]), got[1000:1000 + n])
    tiny = np.concatenate([np.geomspace(1e-300, 9.5e-7, 2_000), -np.geomspace(1e-300, 9.5e-7, 2_000)])  # < 2^-20
    np.testing.assert_allclose(a2c.py_tanh(tiny), np.tanh(tiny), rtol=4.5e-16, atol=0)  # 2 ulp, relative


def test_forward_is_stable_for_large_logits():
    layout, params, obs, *_ = tiny(n_actions=3)
    layout.views(params)["actor.b3"][:] = [800.0, -800.0, 0.0]
    _, log_probs, entropy, _ = a2c.py_forward(params, obs, 3, 4, 3)
    assert np.isfinite(log_probs).all() and np.isfinite(entropy).all()
    np.testing.assert_allclose(log_probs[:, 0], 0.0, atol=1e-12)


# ---------------------------------------------------------------- loss and gradient

@pytest.mark.parametrize("n_actions", [2, 3])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01, 0.3])
@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_loss_gradient_equals_finite_differences(n_actions, ent_coef, normalize_advantage):
    layout, params, obs, actions, advantages, returns = tiny(n_actions=n_actions, seed=n_actions)
    vf_coef = 0.5
    grad, stats = a2c.py_loss_grad(params, obs, actions, advantages, returns, 3, 4, n_actions,
                                   ent_coef, vf_coef, normalize_advantage)
    ref = layout.loss(params, obs, actions, advantages, returns, ent_coef, vf_coef, normalize_advantage)
    np.testing.assert_allclose(stats, ref, rtol=1e-12, atol=1e-14)
    fd = central_differences(lambda p: layout.loss(p, obs, actions, advantages, returns, ent_coef, vf_coef,
                                                   normalize_advantage)[0], params)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def gaussian_tiny(action_dim, seed=0, T=7, obs_dim=3, hidden=(3, 4)):
    """A tiny Gaussian-policy network (random parameters, log_std included) and a random batch."""
    rng = np.random.default_rng(seed)
    layout = ActorCriticLayout(obs_dim, action_dim, hidden, continuous=True)
    params = rng.normal(0.0, 0.7, layout.n_params)
    obs = rng.normal(0.0, 1.0, (T, obs_dim))
    actions = rng.normal(0.0, 1.5, (T, action_dim))
    return layout, params, obs, actions, rng.normal(0.0, 1.0, T), rng.normal(0.0, 2.0, T)


@pytest.mark.parametrize("action_dim", [1, 3])
def test_gaussian_forward_equals_numpy_and_torch_normal(action_dim):
    layout, params, obs, actions, *_ = gaussian_tiny(action_dim)
    assert layout.n_params == a2c.n_params(3, 3, 4, action_dim, True)
    assert layout.slots["actor.log_std"][0] == layout.n_params - action_dim  # after the critic
    got = a2c.py_forward(params, obs, 3, 4, action_dim, True)
    for g, w in zip(got, layout.forward(params, obs)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    torch = pytest.importorskip("torch")
    mean, log_std = torch.tensor(got[0]), torch.tensor(got[1])
    dist = torch.distributions.Normal(mean, log_std.exp())
    np.testing.assert_allclose(got[2], dist.entropy().sum(dim=1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("action_dim", [1, 2])
@pytest.mark.parametrize("ent_coef", [0.0, 0.3])
@pytest.mark.parametrize("normalize_advantage", [False, True])
def test_gaussian_loss_gradient_equals_finite_differences(action_dim, ent_coef, normalize_advantage):
    """The mean's and log_std's gradients of the Gaussian policy loss, entropy bonus and value loss."""
    layout, params, obs, actions, advantages, returns = gaussian_tiny(action_dim, seed=action_dim)
    args = (ent_coef, 0.5, normalize_advantage)
    grad, stats = a2c.py_loss_grad(params, obs, actions, advantages, returns, 3, 4, action_dim, *args,
                                   continuous=True)
    ref = layout.loss(params, obs, actions, advantages, returns, *args)
    np.testing.assert_allclose(stats, ref, rtol=1e-12, atol=1e-14)
    fd = central_differences(lambda p: layout.loss(p, obs, actions, advantages, returns, *args)[0], params)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="columns"):
        a2c.py_loss_grad(params, obs, np.zeros((7, action_dim + 1)), advantages, returns, 3, 4, action_dim,
                         continuous=True)
    with pytest.raises(ValueError, match="finite"):
        a2c.py_loss_grad(params, obs, np.full((7, action_dim), np.nan), advantages, returns, 3, 4, action_dim,
                         continuous=True)


def test_each_loss_term_has_its_own_gradient():
    """vf_coef only moves the critic, the policy and entropy terms only the actor."""
    layout, params, obs, actions, advantages, returns = tiny()
    n_actor = layout.slots["critic.w1"][0]
    g_value, _ = a2c.py_loss_grad(params, obs, actions, np.zeros(6), returns, 3, 4, 3, 0.0, 1.0, False)
    assert not g_value[:n_actor].any() and g_value[n_actor:].any()
    g_policy, _ = a2c.py_loss_grad(params, obs, actions, advantages, returns, 3, 4, 3, 0.5, 0.0, False)
    assert g_policy[:n_actor].any() and not g_policy[n_actor:].any()


def test_loss_gradient_at_sb3_sizes():
    """Spot-check 200 coordinates of a 64-64 network (init plus noise) against finite differences."""
    rng = np.random.default_rng(5)
    layout = ActorCriticLayout(4, 2)
    params = layout.init_params(rng) + rng.normal(0, 0.05, layout.n_params)
    obs = rng.normal(size=(10, 4))
    actions = rng.integers(0, 2, 10).astype(np.int64)
    adv, ret = rng.normal(size=10), rng.normal(size=10)
    grad, _ = a2c.py_loss_grad(params, obs, actions, adv, ret, 64, 64, 2, 0.01, 0.5, True)
    idx = rng.choice(layout.n_params, 200, replace=False)
    h = 1e-5
    for i in idx:
        p, m = params.copy(), params.copy()
        p[i] += h
        m[i] -= h
        fd = (layout.loss(p, obs, actions, adv, ret, 0.01, 0.5, True)[0]
              - layout.loss(m, obs, actions, adv, ret, 0.01, 0.5, True)[0]) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-9), i


# ---------------------------------------------------------------- clipping, RMSprop

def torch_clip_grad_norm(g, max_norm):
    """torch.nn.utils.clip_grad_norm_ on one flat tensor (norm_type 2, foreach path)."""
    total = np.sqrt((g * g).sum())
    coef = max_norm / (total + 1e-6)
    return g * min(coef, 1.0), total


@pytest.mark.parametrize("max_norm", [0.01, 0.5, 1e6])
def test_clip_grad_norm_as_torch(max_norm):
    g = np.random.default_rng(0).normal(size=50)
    want, total = torch_clip_grad_norm(g, max_norm)
    got = g.copy()
    norm = a2c.py_clip_grad_norm(got, max_norm)
    assert norm == pytest.approx(total, rel=1e-14)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    if max_norm > 1e3:
        assert np.array_equal(got, g)  # not clipped: untouched
    else:
        assert np.sqrt((got * got).sum()) == pytest.approx(max_norm, rel=1e-5)


@pytest.mark.parametrize("shared", [True, False])
def test_rmsprop_as_torch(shared):
    """Twenty steps of torch's RMSprop(alpha=0.99, eps=1e-5), transcribed from torch/optim/rmsprop.py,
    by the atomic loop (threads share the buffers) and the plain one (one thread)."""
    rng = np.random.default_rng(1)
    params = rng.normal(size=40)
    sq = np.zeros(40)
    p_ref, sq_ref = params.copy(), sq.copy()
    lr, alpha, eps = 7e-4, 0.99, 1e-5
    for _ in range(20):
        g = rng.normal(size=40)
        sq_ref = sq_ref * alpha + (1 - alpha) * g * g        # square_avg.mul_(alpha).addcmul_(g, g, 1 - alpha)
        p_ref = p_ref + (-lr) * (g / (np.sqrt(sq_ref) + eps))  # param.addcdiv_(g, sqrt(avg) + eps, -lr)
        a2c.py_rmsprop_step(params, sq, g, lr, alpha, eps, shared)
    np.testing.assert_allclose(sq, sq_ref, rtol=1e-14)
    np.testing.assert_allclose(params, p_ref, rtol=1e-14)


@pytest.mark.parametrize("shared", [True, False])
def test_adam_as_torch(shared):
    """Twenty steps of torch's Adam(betas=(0.9, 0.999), eps=1e-5), transcribed from torch/optim/adam.py
    (single-tensor path), then against torch itself where it is installed (the bench extra); by
    the atomic loop and the plain one."""
    rng = np.random.default_rng(2)
    params = rng.normal(size=40)
    m, v = np.zeros(40), np.zeros(40)
    p_ref, m_ref, v_ref = params.copy(), m.copy(), v.copy()
    lr, b1, b2, eps = 7e-4, 0.9, 0.999, 1e-5
    grads = rng.normal(size=(20, 40))
    for step, g in enumerate(grads, start=1):
        m_ref = m_ref + (1 - b1) * (g - m_ref)                  # exp_avg.lerp_(grad, 1 - beta1)
        v_ref = v_ref * b2 + (1 - b2) * g * g                   # exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2)
        denom = np.sqrt(v_ref) / np.sqrt(1 - b2 ** step) + eps  # (sqrt / bias_correction2_sqrt).add_(eps)
        p_ref = p_ref - lr / (1 - b1 ** step) * (m_ref / denom)  # param.addcdiv_(exp_avg, denom, -step_size)
        a2c.py_adam_step(params, m, v, g, lr, b1, b2, eps, step, shared)
    np.testing.assert_allclose(m, m_ref, rtol=1e-13)
    np.testing.assert_allclose(v, v_ref, rtol=1e-13)
    np.testing.assert_allclose(params, p_ref, rtol=1e-13)
    torch = pytest.importorskip("torch")
    t = torch.tensor(grads[0] * 0 + rng.normal(size=40), dtype=torch.float64, requires_grad=True)
    ours = t.detach().numpy().copy()
    m, v = np.zeros(40), np.zeros(40)
    opt = torch.optim.Adam([t], lr=lr, betas=(b1, b2), eps=eps)
    for step, g in enumerate(grads, start=1):
        t.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        a2c.py_adam_step(ours, m, v, g, lr, b1, b2, eps, step, shared)
    np.testing.assert_allclose(ours, t.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="step"):
        a2c.py_adam_step(ours, m, v, g, lr, step=0)


def test_train_step_is_gradient_clip_and_rmsprop():
    layout, params, obs, actions, advantages, returns = tiny()
    sq = np.random.default_rng(9).uniform(0, 0.1, layout.n_params)
    args = (0.01, 0.5, True)
    grad, stats = a2c.py_loss_grad(params, obs, actions, advantages, returns, 3, 4, 3, *args)
    want_norm = a2c.py_clip_grad_norm(grad, 0.5)
    p_ref, sq_ref = params.copy(), sq.copy()
    a2c.py_rmsprop_step(p_ref, sq_ref, grad, 7e-4, 0.99, 1e-5)
    norm, got_stats = a2c.train_step(params, sq, obs, actions, advantages, returns, 3, 4, 3, *args,
                                     max_grad_norm=0.5, lr=7e-4)
    assert norm == want_norm and got_stats == stats
    assert np.array_equal(params, p_ref) and np.array_equal(sq, sq_ref)


# ---------------------------------------------------------------- GAE

def sb3_gae(rewards, values, episode_starts, last_values, dones, gamma, gae_lambda):
    """RolloutBuffer.compute_returns_and_advantage, transcribed (stable_baselines3/common/buffers.py)."""
    n_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last_gae_lam = 0
    for step in reversed(range(n_steps)):
        if step == n_steps - 1:
            next_non_terminal = 1.0 - dones.astype(np.float64)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - episode_starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gamma * gae_lambda * next_non_terminal * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages, advantages + values


@pytest.mark.parametrize("gae_lambda", [1.0, 0.95, 0.0])
@pytest.mark.parametrize("n_steps, n_envs", [(5, 8), (1, 3), (32, 1)])
def test_gae_as_sb3(gae_lambda, n_steps, n_envs):
    rng = np.random.default_rng(n_steps * 10 + n_envs)
    rewards = rng.normal(size=(n_steps, n_envs))
    values = rng.normal(size=(n_steps, n_envs))
    episode_starts = (rng.random((n_steps, n_envs)) < 0.3).astype(np.uint8)
    last_values = rng.normal(size=n_envs)
    dones = (rng.random(n_envs) < 0.5).astype(np.uint8)
    dones[0] = 1
    got = a2c.py_gae(rewards, values, episode_starts, last_values, dones, 0.99, gae_lambda)
    want = sb3_gae(rewards, values, episode_starts, last_values, dones, 0.99, gae_lambda)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def test_gae_with_lambda_one_is_the_n_step_return():
    """gae_lambda = 1, no episode ends: returns = discounted rewards + gamma^k bootstrap."""
    rewards = np.array([[1.0], [2.0], [3.0]])
    values = np.array([[0.5], [0.1], [-0.2]])
    _, returns = a2c.py_gae(rewards, values, np.zeros((3, 1), np.uint8), np.array([4.0]),
                            np.zeros(1, np.uint8), 0.9, 1.0)
    np.testing.assert_allclose(returns[:, 0], [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4])
    # an episode that ends after the last step takes no bootstrap
    _, returns = a2c.py_gae(rewards, values, np.zeros((3, 1), np.uint8), np.array([4.0]),
                            np.ones(1, np.uint8), 0.9, 1.0)
    assert returns[2, 0] == pytest.approx(3.0)


# ---------------------------------------------------------------- bad input at the def boundary

def test_bad_shapes_raise_value_errors():
    layout, params, obs, actions, advantages, returns = tiny()
    with pytest.raises(ValueError, match="needs"):
        a2c.py_forward(params[:-1], obs, 3, 4, 3)
    with pytest.raises(ValueError, match="needs"):
        a2c.py_forward(params, np.ascontiguousarray(obs[:, :3]), 3, 4, 3)  # another network size
    with pytest.raises(ValueError, match="n_actions"):
        a2c.py_forward(params, obs, 3, 4, 1)
    with pytest.raises(ValueError, match="empty"):
        a2c.py_forward(params, obs[:0], 3, 4, 3)
    with pytest.raises(ValueError):
        a2c.py_forward(params, obs.astype(np.float32), 3, 4, 3)  # dtype
    with pytest.raises(ValueError):
        a2c.py_forward(params, obs[0], 3, 4, 3)  # ndim
    with pytest.raises(ValueError, match="actions has 5"):
        a2c.py_loss_grad(params, obs, actions[:5], advantages, returns, 3, 4, 3)
    with pytest.raises(ValueError, match="returns has 7"):
        a2c.py_loss_grad(params, obs, actions, advantages, np.zeros(7), 3, 4, 3)
    with pytest.raises(ValueError, match=r"actions\[0\] = 3"):
        a2c.py_loss_grad(params, obs, np.r_[3, actions[1:]].astype(np.int64), advantages, returns, 3, 4, 3)
    with pytest.raises(ValueError, match=r"actions\[1\] = -1"):
        a2c.py_loss_grad(params, obs, np.r_[0, -1, actions[2:]].astype(np.int64), advantages, returns, 3, 4, 3)
    with pytest.raises(ValueError, match="at least 2"):
        a2c.py_loss_grad(params, obs[:1], actions[:1], advantages[:1], returns[:1], 3, 4, 3, 0.0, 0.5, True)
    with pytest.raises(ValueError, match="square_avg"):
        a2c.train_step(params, np.zeros(3), obs, actions, advantages, returns, 3, 4, 3, 0.0, 0.5, False, 0.5, 7e-4)
    with pytest.raises(ValueError, match="max_grad_norm"):
        a2c.train_step(params, np.zeros_like(params), obs, actions, advantages, returns, 3, 4, 3, 0.0, 0.5,
                       False, 0.0, 7e-4)
    with pytest.raises(ValueError, match="max_norm"):
        a2c.py_clip_grad_norm(np.ones(3), -1.0)
    with pytest.raises(ValueError, match="empty"):
        a2c.py_clip_grad_norm(np.ones(0), 1.0)
    with pytest.raises(ValueError, match="one non-zero length"):
        a2c.py_rmsprop_step(np.ones(3), np.ones(2), np.ones(3), 1e-3)


def test_gae_bad_shapes_raise_value_errors():
    r = np.zeros((5, 2))
    s = np.zeros((5, 2), np.uint8)
    lv, d = np.zeros(2), np.zeros(2, np.uint8)
    with pytest.raises(ValueError, match="values has shape"):
        a2c.py_gae(r, np.zeros((4, 2)), s, lv, d, 0.99, 1.0)
    with pytest.raises(ValueError, match="episode_starts has shape"):
        a2c.py_gae(r, r, np.zeros((5, 3), np.uint8), lv, d, 0.99, 1.0)
    with pytest.raises(ValueError, match="last_values has 3"):
        a2c.py_gae(r, r, s, np.zeros(3), d, 0.99, 1.0)
    with pytest.raises(ValueError, match="dones has 1"):
        a2c.py_gae(r, r, s, lv, np.zeros(1, np.uint8), 0.99, 1.0)
    with pytest.raises(ValueError, match="n_steps"):
        a2c.py_gae(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2), np.uint8), lv, d, 0.99, 1.0)
