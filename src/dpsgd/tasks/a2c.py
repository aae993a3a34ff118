"""``dpsgd.A2C``: Stable-Baselines3's A2C interface over HSA2C (Hogwild! threads, ranks on the engine).

``A2C("MlpPolicy", "CartPole-v1", ...)`` takes SB3's names and defaults (RL-Zoo's CartPole-v1
set-up), so their hyperparameters carry over; ``learn`` runs :func:`dpsgd.tasks.a2c_learn.learn`
(the ``hsa2c`` kernel: ``n_threads`` threads, each with its own ``n_envs`` C environments,
updating the rank's actor-critic without locks; with ``comm`` the ranks exchange their changes
through the engine); ``predict`` and :func:`evaluate_policy` use the kernels' forward
(``dpsgd._kernels.a2c.py_forward``). A fitted model saves and loads with
:func:`dpsgd.save_model` / :func:`dpsgd.load_model` (no pickle).

Other Gymnasium environments train through :mod:`dpsgd.envs.adapter` (one thread). Not yet
here: a Gaussian policy for Box actions.
"""

from __future__ import annotations

import collections
import functools
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from dpsgd import persist, stepsize
from dpsgd._kernels import a2c as _a2c_kernel
from dpsgd._validation import check_number
from dpsgd.comm import Topology, check_exchange
from dpsgd.comm.network import make_network
from dpsgd.comm.failure import ends_job_on_error
from dpsgd.envs import make, names
from dpsgd.envs.adapter import GymnasiumVectorEnv
from dpsgd.envs.vector import ENVS, CVectorEnv, check_seed
from dpsgd.progress import Progress
from dpsgd.tasks import a2c_learn
from dpsgd.tasks.a2c_net import ActorCriticLayout
from dpsgd.tasks.a2c_python import draw_actions

EP_INFO_WINDOW = 100  # SB3's stats_window_size: the episodes ep_info_buffer keeps
RMS_ALPHA = 0.99  # SB3's A2C: torch RMSprop with alpha=0.99


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def hidden_sizes(policy_kwargs: dict | None) -> tuple[int, int]:
    """The hidden sizes (h1, h2) that ``policy_kwargs`` asks for (default 64, 64).

    ``net_arch`` is SB3's: ``dict(pi=[h1, h2], vf=[h1, h2])`` or one list ``[h1, h2]`` for both;
    the C kernel gives the actor and the critic the same sizes, so ``pi`` and ``vf`` must agree.

    Raises
    ------
    ValueError
        When ``policy_kwargs`` holds anything else, or sizes the kernel cannot run.
    """
    if policy_kwargs is None:
        return 64, 64
    if not isinstance(policy_kwargs, dict):
        raise ValueError(f"policy_kwargs must be None or a dict, got {policy_kwargs!r}")
    other = sorted(map(str, set(policy_kwargs) - {"net_arch"}))
    if other:
        raise ValueError(f"policy_kwargs supports only net_arch (two tanh layers, SB3's orthogonal init); "
                         f"got {other}")
    arch = policy_kwargs.get("net_arch", [64, 64])
    if isinstance(arch, dict):
        if set(arch) != {"pi", "vf"}:
            raise ValueError(f"policy_kwargs net_arch must be dict(pi=[h1, h2], vf=[h1, h2]), got {arch!r}")
        pi, vf = arch["pi"], arch["vf"]
        if not (_is_seq(pi) and _is_seq(vf) and list(pi) == list(vf)):
            raise ValueError(f"policy_kwargs net_arch: pi and vf must be the same two sizes (the C kernel "
                             f"shares them), got pi={arch['pi']!r}, vf={arch['vf']!r}")
        arch = arch["pi"]
    if not _is_seq(arch) or len(arch) != 2 or not all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1 for h in arch):
        raise ValueError(f"policy_kwargs net_arch must give two positive layer sizes [h1, h2] "
                         f"(the C kernel has two hidden layers), got {arch!r}")
    return int(arch[0]), int(arch[1])


def _is_seq(value: object) -> bool:
    return isinstance(value, (list, tuple))


@functools.lru_cache(maxsize=64)
def env_dims(env: str) -> a2c_learn.EnvDims:
    """Observation length and actions of a C environment, or of a Gymnasium one (made once to
    read its spaces).

    Raises
    ------
    ValueError
        When ``env`` is neither (the message lists the C environments and how to use others).
    """
    if env in ENVS:
        return a2c_learn.EnvDims.of(env)
    try:
        adapter = GymnasiumVectorEnv(env, 1)
    except ValueError as exc:
        raise ValueError(f"env={env!r} is not a dpsgd C environment ({', '.join(names())}: the fast ones) and "
                         f"could not be used through Gymnasium: {exc}. Any registered Gymnasium id with "
                         f"Discrete or bounded Box actions works (e.g. 'LunarLander-v3'; "
                         f"'gymnasium:CartPole-v1' for Gymnasium's own)") from None
    adapter.close()
    return a2c_learn.EnvDims.of(adapter)


def layout_of(env: str, policy_kwargs: dict | None) -> ActorCriticLayout:
    """The actor-critic layout of a model on ``env`` with ``policy_kwargs`` (both valid)."""
    dims = env_dims(env)
    return ActorCriticLayout(dims.obs_dim, dims.n_actions, hidden_sizes(policy_kwargs), continuous=dims.continuous)


@persist.register
class A2C(BaseEstimator):
    """Advantage actor-critic with Stable-Baselines3's interface, trained by Hogwild! C threads.

    Each of ``n_threads`` threads steps its own ``n_envs`` C environments for ``n_steps``,
    computes SB3's A2C loss and applies a clipped RMSprop (or Adam) update to the shared
    actor-critic without locks. With one thread and a ``seed`` a run is bit-reproducible.

    Parameters
    ----------
    policy : str, default="MlpPolicy"
        Only "MlpPolicy": separate tanh actor and critic with two hidden layers.
    env : str, default="CartPole-v1"
        A C environment of :mod:`dpsgd.envs` by its Gymnasium name (``dpsgd.envs.names()``),
        or any Gymnasium id with Discrete or bounded Box actions (a Gaussian policy) and a
        flat Box observation, stepped in Python on one thread (:class:`dpsgd.envs.adapter.GymnasiumVectorEnv`; prefix
        ``"gymnasium:"`` to use Gymnasium's own CartPole-v1 or Acrobot-v1).
    learning_rate : float, callable or str, default=7e-4
        The optimizer's step size: a constant, SB3's schedule (a callable of
        ``progress_remaining``, 1 at the start of ``learn`` and 0 at its end; such a model
        cannot be saved without pickle), or RL-Zoo's ``"lin_<lr>"``, linear from lr to 0.
    n_steps : int, default=5
        Steps of each environment per update.
    gamma : float, default=0.99
        Discount factor.
    gae_lambda : float, default=1.0
        GAE's lambda (1: n-step returns).
    ent_coef, vf_coef : float, default=0.0, 0.5
        Weights of the entropy loss and the value loss.
    max_grad_norm : float, default=0.5
        Global-norm clipping of each gradient.
    rms_prop_eps : float, default=1e-5
        RMSprop's epsilon (alpha is 0.99, as SB3's A2C).
    use_rms_prop : bool, default=True
        RMSprop; False: Adam as SB3 makes it then (torch's betas 0.9 and 0.999, eps 1e-5),
        its moments shared by the threads as RMSprop's statistics are.
    normalize_advantage : bool, default=False
        Standardise the advantages of each rollout.
    policy_kwargs : dict or None, default=None
        ``dict(net_arch=dict(pi=[h1, h2], vf=[h1, h2]))`` with equal pi and vf sizes, or
        ``net_arch=[h1, h2]``; default 64, 64.
    n_envs : int, default=8
        Environments per thread (SB3's ``make_vec_env(n_envs=...)``).
    normalize : bool, default=False
        SB3's ``VecNormalize`` with its defaults, as RL-Zoo's ``normalize: true`` (Acrobot-v1):
        observations by their running mean and variance and rewards by the running std of
        the discounted return, clipped at 10; each thread keeps its own envs' statistics.
        :meth:`predict` and :func:`evaluate_policy` normalise observations with the fitted
        statistics (``normalizer_``), as a VecNormalize with ``training=False`` does.
    n_threads : int or None, default=None
        Hogwild! threads (None: every core; negative counts back from all cores), never more
        than the cores (a preempted thread would apply a whole time slice's stale update).
    shared_optimizer_stats : bool, default=True
        The threads share RMSprop's (or Adam's) statistics, as A3C's "shared RMSProp"; False:
        each thread keeps its own, and ``optimizer_state_`` is their mean (where the next
        :meth:`learn` starts every thread from).
    seed : int or None, default=None
        Seeds the initial parameters, the environments, the actions drawn in training and
        those :meth:`predict` draws (each rank of ``comm`` draws its own streams from it).
    comm : mpi4py.MPI.Comm, optional
        HSA2C across the ranks of ``comm``: each rank runs ``n_threads`` threads with their
        own environments and exchanges its changes to the actor-critic through the engine;
        ``total_timesteps`` counts the steps of every rank.
    exchange : {'server', 'allreduce', 'gossip', 'async_gossip'}, default='server'
        How the ranks share the parameters: DPSGD's asynchronous server, synchronous
        averaging of each round's changes, D-PSGD's averaging with graph neighbours
        (:mod:`dpsgd.comm.gossip`) or AD-PSGD's asynchronous pairwise averages
        (:mod:`dpsgd.comm.async_gossip`). Ignored without ``comm``.
    step_policy : {None, 'budget', 'fixed_or_skip'} or a dpsgd.stepsize policy, default=None
        Scales each rank's pushed change by its measured delay (asynchronous server only).
        None adds the changes as they are, as A3C's workers do.
    max_seconds : float, optional
        Stop ``learn`` after this many seconds (all ranks together).
    network : str, dict or dpsgd.comm.network.Network, optional
        With ``comm``: run as over a cluster's network (latency, bandwidth, a straggler;
        ``"10GbE"``, ``"1GbE"`` or the fields of :class:`dpsgd.comm.network.Network`).
        None: the exchange as it is.
    compression : {None, 'natural'}, default=None
        With ``comm`` and ``exchange='allreduce'`` or ``'gossip'``: what a rank sends travels
        as natural compression's 2-byte codes (unbiased random rounding to a power of two; a
        quarter of the bytes): its change (:class:`dpsgd.comm.allreduce.AllreduceExchange`), or
        how far its parameters are from the copy its neighbours hold
        (:class:`dpsgd.comm.gossip.GossipExchange`).
    gossip_graph : {'exponential', 'ring'}, default='exponential'
        With ``exchange='gossip'`` or ``'async_gossip'``: the graph of ranks a rank averages
        with (rank i's out-neighbours: i + 1, i + 2, i + 4, ... or i - 1 and i + 1;
        :func:`dpsgd.comm.gossip.neighbours`).
    verbose : int, default=0
        1 prints a summary line after each ``learn``.

    Attributes
    ----------
    num_timesteps : int
        Env steps trained over all ``learn`` calls since the last reset.
    ep_info_buffer : collections.deque
        The last 100 finished training episodes as SB3 keeps them: dicts ``{"r": return, "l": length}``.
    params_ : numpy.ndarray
        The flat actor-critic parameters.
    optimizer_state_ : numpy.ndarray
        RMSprop's square averages (n_params,), or Adam's first and second moments (2, n_params).
    optimizer_steps_ : int
        Updates the optimizer has taken (Adam's step count, on this rank).
    normalizer_ : numpy.ndarray or None
        With ``normalize``: VecNormalize's statistics, (2 obs_dim + 4,): observation mean,
        variance and count, then the discounted return's mean, variance and count.
    n_features_in_ : int
        Length of an observation.
    n_threads_ : int
        Threads the last ``learn`` ran.
    solved_at_ : int or None
        Env steps (of every rank, this ``learn`` call) when a rank's mean return reached
        ``stop_at_reward`` and the run stopped; None when it did not.
    round_stats_ : dict
        The engine's statistics of the last ``learn``'s rounds (delays across ranks, seconds
        computing and exchanging).

    Examples
    --------
    >>> from dpsgd import A2C, evaluate_policy
    >>> model = A2C("MlpPolicy", "CartPole-v1", n_threads=1, seed=3)
    >>> model = model.learn(250_000, stop_at_reward=475)  # about a second
    >>> model.solved_at_ is not None
    True
    >>> action, _ = model.predict([0.0, 0.1, 0.02, -0.1], deterministic=True)
    """

    _saved_state = persist.SavedState(arrays=("params_", "optimizer_state_"), optional=("normalizer_",),
                                      scalars=("n_features_in_", "num_timesteps", "optimizer_steps_"))

    def __init__(self, policy: str = "MlpPolicy", env: str = "CartPole-v1", *, learning_rate: float = 7e-4,
                 n_steps: int = 5, gamma: float = 0.99, gae_lambda: float = 1.0, ent_coef: float = 0.0,
                 vf_coef: float = 0.5, max_grad_norm: float = 0.5, rms_prop_eps: float = 1e-5,
                 use_rms_prop: bool = True, normalize_advantage: bool = False, policy_kwargs: dict | None = None,
                 n_envs: int = 8, normalize: bool = False, n_threads: int | None = None,
                 shared_optimizer_stats: bool = True, seed: int | None = None, comm: Any = None,
                 exchange: str = "server", step_policy: Any = None, max_seconds: float | None = None,
                 verbose: int = 0, network: Any = None, compression: str | None = None,
                 gossip_graph: str = "exponential") -> None:
        self.policy = policy
        self.env = env
        self.learning_rate = learning_rate
        self.n_steps = n_steps
        self.gamma = gamma
        self.gae_lambda = gae_lambda
        self.ent_coef = ent_coef
        self.vf_coef = vf_coef
        self.max_grad_norm = max_grad_norm
        self.rms_prop_eps = rms_prop_eps
        self.use_rms_prop = use_rms_prop
        self.normalize_advantage = normalize_advantage
        self.policy_kwargs = policy_kwargs
        self.n_envs = n_envs
        self.normalize = normalize
        self.n_threads = n_threads
        self.shared_optimizer_stats = shared_optimizer_stats
        self.seed = seed
        self.comm = comm
        self.exchange = exchange
        self.step_policy = step_policy
        self.max_seconds = max_seconds
        self.verbose = verbose
        self.network = network
        self.compression = compression
        self.gossip_graph = gossip_graph
        self._validate_params()  # as SB3, a bad value fails here

    def _validate_params(self) -> None:
        if self.policy != "MlpPolicy":
            raise ValueError(f"policy must be 'MlpPolicy' (separate tanh actor and critic), got {self.policy!r}")
        if not isinstance(self.env, str):
            raise ValueError(f"env must be an environment's name, got {self.env!r}")
        env_dims(self.env)
        a2c_learn.learning_rate_schedule(self.learning_rate)
        check_number("n_steps", self.n_steps, low=1, integer=True)
        check_number("gamma", self.gamma, low=0.0, high=1.0)
        check_number("gae_lambda", self.gae_lambda, low=0.0, high=1.0)
        check_number("ent_coef", self.ent_coef, low=0.0)
        check_number("vf_coef", self.vf_coef, low=0.0)
        check_number("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
        check_number("rms_prop_eps", self.rms_prop_eps, low=0.0, low_open=True)
        _check_bool("use_rms_prop", self.use_rms_prop)
        _check_bool("normalize_advantage", self.normalize_advantage)
        _check_bool("normalize", self.normalize)
        _check_bool("shared_optimizer_stats", self.shared_optimizer_stats)
        hidden_sizes(self.policy_kwargs)
        check_number("n_envs", self.n_envs, low=1, integer=True)
        if self.n_threads is not None:
            check_number("n_threads", self.n_threads, integer=True)
            if self.n_threads == 0:
                raise ValueError("n_threads=0 is not allowed: use None or -1 for all cores, or a positive count")
        if self.seed is not None:
            check_seed(self.seed)
        check_exchange(self.exchange, self.compression, self.gossip_graph)
        make_network(self.network)
        stepsize.estimator_policy(self.step_policy)
        check_number("max_seconds", self.max_seconds, low=0.0, low_open=True, allow_none=True)
        check_number("verbose", self.verbose, low=0, integer=True)

    @property
    def layout_(self) -> ActorCriticLayout:
        """The layout of :attr:`params_` (from ``env`` and ``policy_kwargs``)."""
        return layout_of(self.env, self.policy_kwargs)

    @ends_job_on_error
    def learn(self, total_timesteps: int, callback: Callable[[dict[str, Any]], object] | None = None,
              progress_bar: bool = False, reset_num_timesteps: bool = True, *,
              stop_at_reward: float | None = None) -> A2C:
        """Train for ``total_timesteps`` env steps (over all threads and ranks, rounded up to
        whole updates).

        Parameters
        ----------
        total_timesteps : int
            Env steps to train for.
        callback : callable or None
            ``callback(info)`` after every round of updates (8 per thread) with a dict:
            ``env_steps`` (this rank's, this call), ``updates`` (env steps of every rank),
            ``episodes`` (finished in the round), ``mean_return`` (of this rank's last 100
            episodes), ``seconds``, ``round``, and ``model()`` for the current parameters.
            Returning ``False`` stops training, as an SB3 callback's ``_on_step`` does.
        progress_bar : bool
            Show the env steps of every rank (and the mean return) on stderr, on rank 0: a bar
            on a terminal, a plain line every 10 seconds in a log.
        reset_num_timesteps : bool
            True starts afresh (SB3's initialisation from ``seed``, zero optimizer statistics,
            ``num_timesteps`` and the episode buffer cleared); False continues from the current
            parameters and the optimizer's statistics, adding to ``num_timesteps``. The
            environments start new episodes in
            each call.
        stop_at_reward : float, optional
            Stop once the mean return of a rank's last 100 episodes reaches this (as SB3's
            ``StopTrainingOnRewardThreshold``); every rank stops.

        Returns
        -------
        A2C
            self.
        """
        self._validate_params()
        total_timesteps = a2c_learn._positive_int("total_timesteps", total_timesteps)
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be None or a callable taking a dict, got {callback!r}")
        _check_bool("progress_bar", progress_bar)
        _check_bool("reset_num_timesteps", reset_num_timesteps)
        topology = Topology(self.comm)
        fresh = reset_num_timesteps or not hasattr(self, "params_")
        if fresh:
            seed, params, self.num_timesteps = self.seed, None, 0
            self.ep_info_buffer = collections.deque(maxlen=EP_INFO_WINDOW)
        else:
            # a new stream for each continuation, reproducible from the seed and the steps so far
            seed = None if self.seed is None else int(
                np.random.SeedSequence([self.seed, self.num_timesteps]).generate_state(1, np.uint64)[0])
            params = self.params_
            self._check_fitted_shapes()
        progress = Progress(total_timesteps, "steps", disable=not progress_bar or topology.rank != 0)
        shown = [0]

        def on_round(info):
            progress.update(info["updates"] - shown[0], mean_return=f"{info['mean_return']:.1f}")
            shown[0] = info["updates"]
            return None if callback is None else callback(info)

        try:
            result = self._learn(total_timesteps, on_round if progress_bar or callback else None, fresh, seed,
                                 params, stop_at_reward)
        finally:
            progress.close()
        self._fitted(result)
        return self

    def _learn(self, total_timesteps, callback, fresh, seed, params, stop_at_reward):
        """a2c_learn.learn with this model's hyperparameters and fitted state."""
        # the optimizer continues where it stopped
        state, steps = (None, 0) if fresh else (self.optimizer_state_, int(self.optimizer_steps_))
        normalizer = None if fresh else getattr(self, "normalizer_", None)
        return a2c_learn.learn(
            self.env, total_timesteps, n_envs=int(self.n_envs), n_steps=int(self.n_steps),
            learning_rate=self.learning_rate, gamma=float(self.gamma), gae_lambda=float(self.gae_lambda),
            ent_coef=float(self.ent_coef), vf_coef=float(self.vf_coef), max_grad_norm=float(self.max_grad_norm),
            rms_prop_eps=float(self.rms_prop_eps), rms_alpha=RMS_ALPHA,
            normalize_advantage=bool(self.normalize_advantage), hidden=hidden_sizes(self.policy_kwargs),
            n_threads=self.n_threads, seed=seed, params=params, use_rms_prop=bool(self.use_rms_prop),
            optimizer_state=state, optimizer_steps=steps, shared_optimizer_stats=bool(self.shared_optimizer_stats),
            normalize=bool(self.normalize), normalizer=normalizer,
            timesteps_before=0 if fresh else int(self.num_timesteps),
            comm=self.comm, exchange=self.exchange, policy=stepsize.estimator_policy(self.step_policy), stop_at_reward=stop_at_reward,
            max_seconds=self.max_seconds, callback=callback, network=self.network,
            compression=self.compression, graph=self.gossip_graph)

    def _fitted(self, result):
        """Take the fitted state of a learn's result."""
        self.params_, self.optimizer_state_ = result.params, result.optimizer_state
        self.optimizer_steps_ = result.optimizer_steps
        self.normalizer_ = result.normalizer
        self.n_features_in_ = result.layout.obs_dim
        self.num_timesteps = int(self.num_timesteps) + result.total_env_steps
        self.n_threads_ = result.n_threads
        self.solved_at_ = result.total_env_steps if result.stopped_on_reward else None
        self.round_stats_ = result.stats
        if not hasattr(self, "ep_info_buffer"):  # a loaded model continuing
            self.ep_info_buffer = collections.deque(maxlen=EP_INFO_WINDOW)
        self.ep_info_buffer.extend({"r": float(r), "l": int(n)}
                                   for r, n in zip(result.episode_returns, result.episode_lengths))
        if self.verbose >= 1:
            print(f"A2C {self.env}: {self.num_timesteps} env steps, {result.episode_returns.size} episodes, "
                  f"mean return of the last {len(self.ep_info_buffer)} {self._mean_return():.2f}")

    def _mean_return(self) -> float:
        buf = getattr(self, "ep_info_buffer", ())
        return float(np.mean([e["r"] for e in buf])) if buf else float("nan")

    def _check_fitted_shapes(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError("this A2C model is not trained yet: call learn() (or load a saved model)")
        n = self.layout_.n_params
        for name, shape in (("params_", (n,)), ("optimizer_state_", (n,) if self.use_rms_prop else (2, n))):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                raise ValueError(f"{name} must be an array of shape {shape} for env={self.env!r}, "
                                 f"policy_kwargs={self.policy_kwargs!r} and use_rms_prop={self.use_rms_prop}, "
                                 f"got {getattr(value, 'shape', value)!r}")

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        """The policy's action for one observation or each of a batch, as SB3's ``predict``.

        Parameters
        ----------
        observation : array-like
            One observation, shape (obs_dim,), or a batch, shape (n, obs_dim).
        state, episode_start
            For recurrent policies in SB3; ignored (the MLP policy has no state).
        deterministic : bool
            The most probable action (argmax; a Gaussian policy's mean), or one drawn from the
            policy with a generator seeded by ``seed``.

        Returns
        -------
        actions : numpy.ndarray
            int64, shape () for one observation, (n,) for a batch; for Box actions float64,
            shape (n_actions,) or (n, n_actions), clipped to the Box as SB3's ``predict``.
        state : None
        """
        self._check_fitted_shapes()
        _check_bool("deterministic", deterministic)
        layout = self.layout_
        obs = np.asarray(observation)
        if obs.dtype == np.bool_ or not (np.issubdtype(obs.dtype, np.floating) or np.issubdtype(obs.dtype, np.integer)):
            raise ValueError(f"observation must hold real numbers, got dtype {obs.dtype}")
        single = obs.ndim == 1
        if obs.shape[-1:] != (layout.obs_dim,) or obs.ndim not in (1, 2):
            raise ValueError(f"observation must have shape ({layout.obs_dim},) or (n, {layout.obs_dim}) for "
                             f"{self.env}, got {obs.shape}")
        obs = obs.reshape(-1, layout.obs_dim).astype(np.float64)
        if not np.all(np.isfinite(obs)):
            raise ValueError("observation holds NaN or infinite values")
        actions = self._actions(layout, obs, deterministic)
        return (actions[0] if single else actions), None

    def _actions(self, layout: ActorCriticLayout, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        stats = getattr(self, "normalizer_", None)
        if stats is not None:  # as a VecNormalize with training=False: the fitted statistics, clipped
            d = layout.obs_dim
            obs = np.clip((obs - stats[:d]) / np.sqrt(stats[d:2 * d] + 1e-8), -10.0, 10.0)
        out, log_probs, _, _ = _a2c_kernel.py_forward(self.params_, np.ascontiguousarray(obs),
                                                      layout.h1, layout.h2, layout.n_actions, layout.continuous)
        rng = getattr(self, "_predict_rng", None)
        if rng is None:
            rng = self._predict_rng = np.random.default_rng(self.seed)
        if deterministic:  # the mean, or the most probable action
            actions = out if layout.continuous else log_probs.argmax(axis=1).astype(np.int64)
        else:
            actions = draw_actions(out, log_probs, rng, layout.continuous)
        if layout.continuous:  # clipped to the Box, as SB3's predict clips
            dims = env_dims(self.env)
            actions = np.clip(actions, dims.action_low, dims.action_high)
        return actions


def evaluate_policy(model: A2C, env: CVectorEnv | str, n_eval_episodes: int = 10, deterministic: bool = True,
                    return_episode_rewards: bool = False, *, seed: int | None = None
                    ) -> tuple[float, float] | tuple[list[float], list[int]]:
    """Run ``model`` for ``n_eval_episodes`` episodes, as SB3's ``evaluate_policy``.

    The episodes are spread over the vector env's environments as SB3 spreads them (env i runs
    ``(n_eval_episodes + i) // n_envs``), so the count does not favour short episodes.

    Parameters
    ----------
    model : A2C
        A trained model.
    env : CVectorEnv or str
        A :mod:`dpsgd.envs` vector env (it is reset first), or a name for ``dpsgd.envs.make(name)``.
    n_eval_episodes : int
        Episodes to run.
    deterministic : bool
        Argmax actions, or actions drawn from the policy.
    return_episode_rewards : bool
        Return each episode's return and length instead of the mean and std.
    seed : int or None
        Seeds the resets of an env given by name (not in SB3's signature).

    Returns
    -------
    (mean, std) : tuple of float
        Of the episode returns; or ``(returns, lengths)``, lists, with ``return_episode_rewards``.

    Examples
    --------
    >>> from dpsgd import A2C, evaluate_policy
    >>> model = A2C("MlpPolicy", "CartPole-v1", n_threads=1, seed=3).learn(250_000, stop_at_reward=475)
    >>> mean, std = evaluate_policy(model, "CartPole-v1", n_eval_episodes=10, seed=0)
    >>> bool(mean > 400)
    True
    """
    if not isinstance(model, A2C):
        raise ValueError(f"model must be a dpsgd.A2C, got {type(model).__name__}")
    model._check_fitted_shapes()
    n_eval_episodes = a2c_learn._positive_int("n_eval_episodes", n_eval_episodes)
    _check_bool("deterministic", deterministic)
    _check_bool("return_episode_rewards", return_episode_rewards)
    owned = isinstance(env, str)  # made here: closed here
    if owned:
        env = make(env, n_envs=1, seed=seed) if env in ENVS else GymnasiumVectorEnv(env, 1, seed=seed)
    elif not isinstance(env, (CVectorEnv, GymnasiumVectorEnv)):
        raise ValueError(f"env must be a dpsgd.envs vector env, a GymnasiumVectorEnv or an environment's name, "
                         f"got {type(env).__name__}")
    try:
        returns, lengths = _run_episodes(model, env, n_eval_episodes, deterministic)
    finally:
        if owned:
            env.close()
    if return_episode_rewards:
        return returns, lengths
    return float(np.mean(returns)), float(np.std(returns))


def _run_episodes(model, env, n_eval_episodes, deterministic):
    """evaluate_policy's episodes: (returns, lengths)."""
    layout = model.layout_
    act = env.single_action_space
    fits = act.shape == (layout.n_actions,) if layout.continuous else getattr(act, "n", None) == layout.n_actions
    if env.single_observation_space.shape != (layout.obs_dim,) or not fits:
        raise ValueError(f"env {env.spec_id} does not fit the model: observations of shape "
                         f"{env.single_observation_space.shape} and actions {act}, the model takes "
                         f"({layout.obs_dim},) and {layout.n_actions} {'continuous ' if layout.continuous else ''}"
                         f"actions")
    n = env.num_envs
    targets = np.array([(n_eval_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=np.int64)
    current_r, current_l = np.zeros(n), np.zeros(n, dtype=np.int64)
    stepped = np.zeros(n, dtype=np.bool_)  # a NextStep reset step after an end is no episode step
    returns: list[float] = []
    lengths: list[int] = []
    obs, _ = env.reset()
    while (counts < targets).any():
        actions = model._actions(layout, obs.astype(np.float64), deterministic)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        current_r += np.where(stepped, 0.0, rewards)
        current_l += ~stepped
        done = terminated | truncated
        for i in np.flatnonzero(done & (counts < targets)):
            returns.append(float(current_r[i]))
            lengths.append(int(current_l[i]))
            counts[i] += 1
        current_r[done], current_l[done] = 0.0, 0
        stepped = done if env.autoreset_mode == "NextStep" else np.zeros(n, dtype=np.bool_)
    return returns, lengths
