"""A2C with Hogwild! threads in each rank and the engine between ranks: allocate, initialise, run.

The environment is a C one (``dpsgd.envs``: the ``hsa2c`` kernel's threads step it), or any
Gymnasium one through :mod:`dpsgd.envs.adapter` (stepped in Python on one thread by
:class:`~dpsgd.tasks.a2c_python.PythonLearner`).

``learn("CartPole-v1", total_timesteps, ...)`` takes Stable-Baselines3's A2C names and
RL-Zoo's CartPole-v1 defaults, initialises the actor-critic as SB3 does
(:class:`~dpsgd.tasks.a2c_net.ActorCriticLayout`), starts RMSprop's square averages at 0
as torch does, and runs :class:`~dpsgd.tasks.a2c_problem.A2cProblem` on the engine: every
thread owns ``n_envs`` environments and applies its updates to its rank's parameters without
locks; with ``comm`` the ranks exchange their changes (asynchronous server by default). The
run stops after ``ceil(total_timesteps / (n_envs * n_steps))`` updates over all threads and
ranks, or when ``stop_at_reward`` is reached.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from dpsgd import engine
from dpsgd._kernels import hsa2c as _kernel
from dpsgd._validation import check_number
from dpsgd.comm.topology import Topology
from dpsgd.envs.adapter import GymnasiumVectorEnv
from dpsgd.envs.vector import ENVS, check_seed
from dpsgd.tasks.a2c_net import ActorCriticLayout
from dpsgd.tasks.a2c_problem import A2cProblem, learning_rate_at, linear_schedule
from dpsgd.tasks.a2c_python import PythonLearner

# updates per thread between two exchanges: 8 of CartPole's 40-step updates are ~10 ms of one
# core, against ~0.1 ms to pull and push its 9k parameters between ranks of one machine
ROUND_UPDATES_PER_THREAD = 8
# SB3's ActorCriticPolicy gives Adam eps=1e-5, whatever rms_prop_eps says
ADAM_EPS = 1e-5


@dataclass(frozen=True)
class EnvDims:
    """What A2C's network and its actions need of an environment.

    Attributes
    ----------
    obs_dim : int
        Length of an observation.
    n_actions : int
        Discrete actions: how many; continuous (Box) actions: their length.
    continuous : bool
        Box actions, for a Gaussian policy.
    action_low, action_high : tuple of float
        Continuous actions: the Box's bounds (what predict() clips to).
    """

    obs_dim: int
    n_actions: int
    continuous: bool = False
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()

    @classmethod
    def of(cls, env: str | GymnasiumVectorEnv) -> EnvDims:
        """A C environment's (by name), or a Gymnasium adapter's."""
        if isinstance(env, str):
            info = ENVS[env]
            if info.continuous:
                return cls(info.obs_dim, info.action_dim, True, tuple(-h for h in info.action_high), info.action_high)
            return cls(info.obs_dim, info.n_actions)
        if env.continuous:
            return cls(env.obs_dim, env.n_actions, True, tuple(map(float, env.action_low)),
                       tuple(map(float, env.action_high)))
        return cls(env.obs_dim, env.n_actions)


@dataclass
class LearnResult:
    """What :func:`learn` returns.

    Attributes
    ----------
    params : numpy.ndarray
        The trained flat parameters (layout of :class:`ActorCriticLayout`).
    optimizer_state : numpy.ndarray
        RMSprop's square averages (n_params,), or Adam's first and second moments (2, n_params).
    optimizer_steps : int
        Updates the optimizer state has seen (Adam's step count).
    layout : ActorCriticLayout
        The network the parameters belong to.
    episode_returns, episode_lengths, episode_steps : numpy.ndarray
        This rank's finished episodes in the order they finished: return, length, and the
        rank's env steps when it finished.
    n_updates, env_steps : int
        This rank's updates and env steps (``n_updates * n_envs * n_steps``).
    total_env_steps : int
        Env steps over every rank.
    solved_at : int or None
        This rank's env steps when its mean return reached ``stop_at_reward``.
    stopped_on_reward : bool
        Some rank's mean return reached ``stop_at_reward`` and stopped the run.
    stats : dict
        The engine's round statistics (delays, seconds computing and exchanging).
    normalizer : numpy.ndarray or None
        With ``normalize``: VecNormalize's statistics after the run (see :func:`merge_normalizers`).
    n_threads : int
        Threads this rank ran (1 for a Gymnasium environment, whose step holds the GIL).
    """

    params: np.ndarray
    optimizer_state: np.ndarray
    layout: ActorCriticLayout
    episode_returns: np.ndarray
    episode_lengths: np.ndarray
    episode_steps: np.ndarray
    n_updates: int
    env_steps: int
    optimizer_steps: int = 0
    total_env_steps: int = 0
    solved_at: int | None = None
    stopped_on_reward: bool = False
    stats: dict | None = None
    normalizer: np.ndarray | None = None
    n_threads: int = 1


def _non_negative_int(name: str, value: object) -> int:
    check_number(name, value, low=0, integer=True)
    return int(value)


def _positive_int(name: str, value: object) -> int:
    check_number(name, value, low=1, integer=True)
    return int(value)


def learn(env: str = "CartPole-v1", total_timesteps: int = 500_000, *, n_envs: int = 8, n_steps: int = 5,
          learning_rate=7e-4, gamma: float = 0.99, gae_lambda: float = 1.0, ent_coef: float = 0.0,
          vf_coef: float = 0.5, max_grad_norm: float = 0.5, rms_prop_eps: float = 1e-5, rms_alpha: float = 0.99,
          normalize_advantage: bool = False, hidden: tuple[int, int] = (64, 64), n_threads: int | None = 1,
          seed: int | None = None, params: np.ndarray | None = None,
          use_rms_prop: bool = True, optimizer_state: np.ndarray | None = None, optimizer_steps: int = 0,
          shared_optimizer_stats: bool = True, normalize: bool = False, normalizer: np.ndarray | None = None, timesteps_before: int = 0,
          comm=None, exchange="server", policy=None,
          stop_at_reward: float | None = None, max_seconds: float | None = None,
          callback=None, network=None, compression=None, graph="exponential") -> LearnResult:
    """Train an A2C actor-critic with Hogwild! threads (one for a Gymnasium environment).

    Parameters
    ----------
    env : str
        A C environment's Gymnasium name (``dpsgd.envs.names()``), or another Gymnasium id
        (``"gymnasium:"`` in front for Gymnasium's own CartPole-v1 or Acrobot-v1).
    total_timesteps : int
        Env steps over all threads; rounded up to whole updates of ``n_envs * n_steps`` steps.
    n_envs, n_steps : int
        Environments per thread and steps per rollout (one update per rollout).
    learning_rate : float, callable or str
        A constant; SB3's schedule, a callable of ``progress_remaining`` (1 at the start, 0 at
        the end), set before every round; or RL-Zoo's ``"lin_<lr>"`` (linear from lr to 0).
    gamma, gae_lambda, ent_coef, vf_coef, max_grad_norm, rms_prop_eps, normalize_advantage
        As Stable-Baselines3's ``A2C``; ``rms_alpha`` is torch RMSprop's ``alpha``.
    hidden : tuple of int
        Hidden sizes of the actor and of the critic (tanh).
    n_threads : int or None
        Threads (``None``: every core; negative counts back), never more than the cores.
    seed : int or None
        Seeds the initial parameters, the env resets and the action draws; ``None`` draws entropy.
    params : numpy.ndarray, optional
        Initial parameters (a copy is trained) instead of SB3's initialisation.
    use_rms_prop : bool
        RMSprop (``rms_alpha``, ``rms_prop_eps``), or Adam as SB3's A2C makes it without
        RMSprop (torch's defaults, betas 0.9 and 0.999, eps 1e-5).
    optimizer_state : numpy.ndarray, optional
        The optimizer's statistics to continue from (a copy), e.g. a previous result's:
        RMSprop's square averages (n_params,) or Adam's moments (2, n_params); zeros by
        default, as a fresh torch optimizer starts.
    optimizer_steps : int
        Adam's steps before this call (its bias correction continues from there).
    shared_optimizer_stats : bool
        The threads share the optimizer's statistics (A3C's "shared RMSProp", which its
        authors found the more robust); False: each thread keeps its own, started from
        ``optimizer_state``, and the result holds their mean. A Gymnasium environment's
        single thread makes no difference.
    normalize : bool
        SB3's ``VecNormalize`` with its defaults, as RL-Zoo's ``normalize: true``: observations
        by their running mean and variance, rewards by the running std of the discounted
        return, both clipped at 10. Each thread keeps the statistics of its own envs.
    normalizer : numpy.ndarray, optional
        Statistics to start from (a previous result's ``normalizer``).
    timesteps_before : int
        Env steps of the earlier calls this one continues: a schedule's progress counts on
        from them, as SB3's does with ``reset_num_timesteps=False``.
    comm : mpi4py communicator, optional
        Ranks that train together (each with ``n_threads`` threads); None: this process.
    exchange : {'server', 'allreduce', 'gossip', 'async_gossip'}
        How the ranks share the parameters (see :func:`dpsgd.engine.run`).
    policy : dpsgd.stepsize policy, optional
        Scales each rank's pushed change by its delay; None pushes them as they are (A3C).
    stop_at_reward : float, optional
        Stop every rank once one rank's last 100 episodes average at least this.
    max_seconds : float, optional
        Stop after this many seconds.
    callback : callable, optional
        ``callback(info)`` after each round (see :func:`dpsgd.engine.round_info`; with
        ``env_steps``, ``episodes`` and ``mean_return`` of this rank); returning ``False``
        stops every rank.
    network : optional
        A network model for the exchange across ranks (:func:`dpsgd.engine.run`).
    compression : {None, 'natural'}
        What the changes travel as across ranks (:func:`dpsgd.engine.run`).
    graph : {'exponential', 'ring'}, default='exponential'
        The gossip exchanges' graph of ranks (:func:`dpsgd.engine.run`).

    Returns
    -------
    LearnResult
    """
    total_timesteps = _positive_int("total_timesteps", total_timesteps)
    n_envs = _positive_int("n_envs", n_envs)
    adapter = None
    if env not in ENVS:  # a Gymnasium environment, stepped in Python
        if normalize:
            raise ValueError(f"normalize is available for dpsgd's C environments ({', '.join(sorted(ENVS))}), "
                             f"not yet for Gymnasium's {env!r}")
        adapter = GymnasiumVectorEnv(env, n_envs)
    dims = EnvDims.of(env if adapter is None else adapter)
    n_steps = _positive_int("n_steps", n_steps)
    if not (isinstance(hidden, (tuple, list)) and len(hidden) == 2):
        raise ValueError(f"hidden must be two sizes (h1, h2), got {hidden!r}")
    h1, h2 = (_positive_int("hidden sizes", h) for h in hidden)
    # never more than the cores: a preempted Hogwild! thread applies a whole time slice's stale update
    topology = Topology(comm)
    threads = topology.threads(n_threads) if adapter is None else 1  # a Python env step holds the GIL
    seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) if seed is None else check_seed(seed)
    layout = ActorCriticLayout(dims.obs_dim, dims.n_actions, (h1, h2), continuous=dims.continuous)
    if params is None:
        p = layout.init_params(np.random.default_rng(seed))
    else:
        p = np.array(params, dtype=np.float64, copy=True)
        if p.shape != (layout.n_params,):
            raise ValueError(f"params must be a flat vector of {layout.n_params} values, got shape {p.shape}")
    state = check_optimizer_state(optimizer_state, layout.n_params, use_rms_prop)
    optimizer_steps = _non_negative_int("optimizer_steps", optimizer_steps)
    if stop_at_reward is not None and not (isinstance(stop_at_reward, numbers.Real)
                                           and math.isfinite(stop_at_reward)):
        raise ValueError(f"stop_at_reward must be None or a finite number, got {stop_at_reward!r}")
    schedule = learning_rate_schedule(learning_rate)
    timesteps_before = _non_negative_int("timesteps_before", timesteps_before)
    learning_rate = learning_rate_at(schedule, 1.0 - timesteps_before / (timesteps_before + total_timesteps)) \
        if schedule else float(learning_rate)
    batch = n_envs * n_steps
    n_updates = math.ceil(total_timesteps / batch)
    rank_seed = (seed + 0x9E3779B97F4A7C15 * topology.rank) % 2**64  # rank 0: the seed itself
    eps = rms_prop_eps if use_rms_prop else ADAM_EPS
    if adapter is None:
        learner = _kernel.Learner(ENVS[env].kernel_id, n_envs, n_steps, threads, np.uint64(rank_seed), gamma,
                                  gae_lambda, ent_coef, vf_coef, max_grad_norm, learning_rate, rms_alpha, eps,
                                  bool(normalize_advantage), h1, h2, ENVS[env].max_episode_steps, not use_rms_prop,
                                  norm_obs=bool(normalize), norm_reward=bool(normalize), norm_init=normalizer,
                                  shared_stats=bool(shared_optimizer_stats))
    else:
        learner = PythonLearner(adapter, layout, rank_seed, n_steps=n_steps, gamma=gamma, gae_lambda=gae_lambda,
                                ent_coef=ent_coef, vf_coef=vf_coef, max_grad_norm=max_grad_norm,
                                learning_rate=learning_rate, rms_alpha=rms_alpha, rms_eps=eps,
                                normalize_advantage=bool(normalize_advantage), adam=not use_rms_prop)
    problem = A2cProblem(learner, p, state.reshape(-1), batch=batch, n_updates=n_updates,
                         optimizer_steps=int(optimizer_steps),
                         normalizer=(lambda: merge_normalizers(learner.normalizers(), normalizer, dims.obs_dim))
                         if normalize else None,
                         schedule=schedule, ranks=topology.ranks, timesteps_before=timesteps_before,
                         round_updates=ROUND_UPDATES_PER_THREAD * threads, stop_at_reward=stop_at_reward)

    def on_round(info):
        if not problem.halt and callback(info) is False:  # SB3: a callback's _on_step returning False stops training
            problem.halt = True

    try:
        result = engine.run(problem, topology, exchange=exchange, policy=policy, max_updates=n_updates * batch,
                            max_seconds=max_seconds, callback=None if callback is None else on_round,
                            network=network, compression=compression,
                            graph=graph)
    finally:
        if adapter is not None:
            adapter.close()
    returns, lengths, steps = problem.episodes.arrays()
    stopped_on_reward = any(at is not None for at in topology.everyone(problem.solved_at))
    return LearnResult(result.model["params_"], state, layout, returns, lengths, steps, problem.done,
                       problem.done * batch, int(optimizer_steps) + problem.done, result.updates, problem.solved_at,
                       stopped_on_reward, result.stats.summary(), result.model["normalizer_"], threads)


def merge_normalizers(rows: np.ndarray, start: np.ndarray | None, obs_dim: int) -> np.ndarray:
    """One set of VecNormalize statistics from each thread's (rows of obs mean, obs var, obs
    count, return mean, return var, return count), as SB3's ``RunningMeanStd`` over all the
    threads' data. Every thread began from ``start`` (None: SB3's initial statistics: mean 0,
    var 1, count 1e-4): it is taken out of each row but the first before they are combined,
    so that it counts once."""
    rows = np.asarray(rows, dtype=np.float64)
    d = obs_dim
    if start is None:
        start = np.concatenate([np.zeros(d), np.ones(d), [1e-4, 0.0, 1.0, 1e-4]])
    parts = [(slice(0, d), slice(d, 2 * d), 2 * d), (slice(2 * d + 1, 2 * d + 2), slice(2 * d + 2, 2 * d + 3), 2 * d + 3)]
    merged = rows[0].copy()
    for row in rows[1:]:
        for mean, var, count in parts:
            c0, c = start[count], row[count]
            n = c - c0  # what this thread saw
            if n <= 0:
                continue
            # the thread's own data: its row is start combined with it (Chan et al.), undone
            m = start[mean] + (row[mean] - start[mean]) * c / n
            v = np.maximum((c * row[var] - c0 * start[var] - (m - start[mean]) ** 2 * c0 * n / c) / n, 0.0)
            delta, total = m - merged[mean], merged[count] + n
            merged[var] = (merged[var] * merged[count] + v * n + delta * delta * merged[count] * n / total) / total
            merged[mean] = merged[mean] + delta * n / total
            merged[count] = total
    return merged


def learning_rate_schedule(learning_rate):
    """The schedule ``learning_rate`` asks for (a callable of progress_remaining), or None for a
    constant; RL-Zoo's ``"lin_<lr>"`` is a linear one.

    Raises
    ------
    ValueError
        For a string that is not ``"lin_<positive number>"``, or a number that is not > 0.
    """
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, str):
        try:
            start = float(learning_rate.removeprefix("lin_")) if learning_rate.startswith("lin_") else -1.0
        except ValueError:
            start = -1.0
        if not (math.isfinite(start) and start > 0):
            raise ValueError(f"learning_rate must be a number, a callable of progress_remaining or "
                             f"'lin_<lr>' (RL-Zoo's linear schedule), got {learning_rate!r}")
        return linear_schedule(learning_rate)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) or not (
            math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    return None


def check_optimizer_state(state, n_params: int, use_rms_prop: bool) -> np.ndarray:
    """A copy of ``state`` checked for the optimizer (zeros when None): RMSprop's square
    averages (n_params,), finite and non-negative; Adam's moments (2, n_params), finite, the
    second row non-negative."""
    shape = (n_params,) if use_rms_prop else (2, n_params)
    if state is None:
        return np.zeros(shape)
    state = np.array(state, dtype=np.float64, copy=True)
    squares = state if use_rms_prop else state[1:]
    if state.shape != shape or not np.all(np.isfinite(state)) or np.any(squares < 0):
        what = "RMSprop's square averages" if use_rms_prop else "Adam's first and second moments"
        raise ValueError(f"optimizer_state must hold {what}, shape {shape}, finite, the squares non-negative; "
                         f"got shape {state.shape}")
    return state


def steps_to_reach(result: LearnResult, threshold: float = 475.0, window: int = 100) -> int | None:
    """Env steps at which the mean return of the last ``window`` episodes first reached ``threshold``.

    ``None`` when it never did (or fewer than ``window`` episodes finished).
    """
    r = result.episode_returns
    if r.shape[0] < window:
        return None
    means = np.convolve(r, np.ones(window) / window, mode="valid")
    hit = np.flatnonzero(means >= threshold)
    return None if hit.size == 0 else int(result.episode_steps[hit[0] + window - 1])
