"""The vector environment over the C kernels (``dpsgd._kernels.envs``).

``CVectorEnv`` keeps every env's float64 state, elapsed steps, pending-reset flag and RNG in
NumPy arrays and hands them to one nogil kernel call per ``step``; this class validates what
comes in and shapes what goes out the way Gymnasium's ``SyncVectorEnv`` does.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpsgd._kernels import envs as _kernel
from dpsgd.envs.spaces import Box, Discrete, MultiDiscrete

AUTORESET_MODES = {"NextStep": _kernel.Autoreset.NEXT_STEP, "SameStep": _kernel.Autoreset.SAME_STEP}


@dataclass(frozen=True)
class EnvInfo:
    """What the Python side knows about one C environment.

    A discrete env has ``n_actions`` actions (Discrete); a continuous one has ``n_actions`` 0 and
    a float32 Box of actions, ``-action_high .. action_high`` (``action_dim`` values).
    """

    kernel_id: int
    n_actions: int  # 0: continuous actions
    obs_high: tuple[float, ...]  # float32 bounds, low = -high, as Gymnasium's observation_space
    max_episode_steps: int  # Gymnasium's TimeLimit
    reward_threshold: float | None  # Gymnasium's spec: "solved" at this mean return (None: not set)
    action_high: tuple[float, ...] = ()  # continuous envs: the action Box's float32 bounds, low = -high

    @property
    def state_dim(self) -> int:
        return _kernel.STATE_DIM[self.kernel_id]

    @property
    def obs_dim(self) -> int:
        return _kernel.OBS_DIM[self.kernel_id]

    @property
    def action_dim(self) -> int:
        """Length of a continuous action; 0 for a discrete env."""
        return _kernel.ACTION_DIM[self.kernel_id]

    @property
    def continuous(self) -> bool:
        return self.action_dim > 0


ENVS = {
    "CartPole-v1": EnvInfo(_kernel.EnvId.CARTPOLE, 2, (2.4 * 2, math.inf, 12 * 2 * math.pi / 360 * 2, math.inf), 500, 475.0),
    "Acrobot-v1": EnvInfo(_kernel.EnvId.ACROBOT, 3, (1.0, 1.0, 1.0, 1.0, 4 * math.pi, 9 * math.pi), 500, -100.0),
    # Gymnasium registers Pendulum-v1 without a reward_threshold
    "Pendulum-v1": EnvInfo(_kernel.EnvId.PENDULUM, 0, (1.0, 1.0, 8.0), 200, None, action_high=(2.0,)),
}


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be None or an integer in [0, 2**64), got {seed!r}")
    return int(seed)


def check_real_finite(x: np.ndarray, what: str) -> None:
    """TypeError unless ``x`` holds real numbers (bools are not); ValueError naming the first
    non-finite entry of the (n_envs, k) array ``x``."""
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == np.bool_:
        raise TypeError(f"{what} must be real numbers, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{what} must be finite: env {bad[0]} coordinate {bad[1]} is {x[tuple(bad)]}")


class CVectorEnv:
    """``n_envs`` copies of one C environment, stepped together, with Gymnasium's vector API.

    Auto-reset follows ``gymnasium.make_vec(name, num_envs, vectorization_mode="sync")``: by
    default "NextStep" (the step after an env terminated or was truncated resets it, ignores its
    action and returns the reset observation with reward 0 and both flags False); "SameStep"
    resets at once and returns the final observation in ``infos["final_obs"]`` (a float32 array,
    rows valid where ``infos["_final_obs"]``). Env i's resets draw from stream i of the seed.

    Actions: a discrete env takes ``n_envs`` integers; a continuous one (Pendulum-v1) takes real
    numbers of shape ``(n_envs, action_dim)``, as Gymnasium's vector env (which fails on
    ``(n_envs,)``), unclipped (the env clips, as Gymnasium's does). They are stepped as float64:
    Gymnasium given the same float64 array computes the same bits; given float32, it computes the
    torque's terms in float32 (NumPy's promotion rules), so results differ in the last bits.

    Made by :func:`dpsgd.envs.make`, which checks the name and count.

    Parameters
    ----------
    name : str
        The Gymnasium id.
    info : EnvInfo
        The C environment's description (its spaces and kernel id).
    n_envs : int
        The environments stepped together.
    seed : int or None
        Seeds the resets.
    autoreset_mode : {"NextStep", "SameStep"}, default="NextStep"
        As Gymnasium's vector envs.

    Raises
    ------
    ValueError
        For another ``autoreset_mode``.

    Examples
    --------
    >>> import dpsgd.envs
    >>> env = dpsgd.envs.make("Acrobot-v1", n_envs=4, seed=0)
    >>> env.num_envs, env.single_observation_space.shape
    (4, (6,))
    """

    def __init__(self, name: str, info: EnvInfo, n_envs: int, seed: int | None,
                 autoreset_mode: str = "NextStep") -> None:
        self.spec_id = name
        self._info = info
        self.num_envs = n_envs
        mode = getattr(autoreset_mode, "value", autoreset_mode)  # gymnasium's AutoresetMode enum too
        if mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(AUTORESET_MODES)}, got {autoreset_mode!r}")
        self.autoreset_mode = mode
        self.metadata = {"autoreset_mode": mode}
        self.max_episode_steps = info.max_episode_steps
        high = np.array(info.obs_high, dtype=np.float32)
        self.single_observation_space = Box(-high, high)
        self.observation_space = Box(np.tile(-high, (n_envs, 1)), np.tile(high, (n_envs, 1)))
        if info.continuous:
            a_high = np.array(info.action_high, dtype=np.float32)
            self.single_action_space = Box(-a_high, a_high)
            self.action_space = Box(np.tile(-a_high, (n_envs, 1)), np.tile(a_high, (n_envs, 1)))
        else:
            self.single_action_space = Discrete(info.n_actions)
            self.action_space = MultiDiscrete(np.full(n_envs, info.n_actions))
        self._state = np.zeros((n_envs, info.state_dim))
        self._obs = np.zeros((n_envs, info.obs_dim), dtype=np.float32)
        self._elapsed = np.zeros(n_envs, dtype=np.int64)
        self._needs_reset = np.zeros(n_envs, dtype=np.uint8)
        self._rngs = np.zeros((n_envs, 4), dtype=np.uint64)
        self._seed_rngs(np.random.SeedSequence().generate_state(1, np.uint64)[0] if seed is None else seed)
        self._ready = False  # reset() or set_state() comes before step()
        self._closed = False

    def _seed_rngs(self, seed: int) -> None:
        _kernel.seed(self._rngs, np.uint64(seed))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"this {self.spec_id} vector env is closed")

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env; ``seed`` reseeds env i's RNG with stream i of it first."""
        self._check_open()
        if options:
            raise ValueError(f"reset options are not supported by the C environments, got {options!r}")
        if seed is not None:
            self._seed_rngs(check_seed(seed))
        _kernel.reset(self._info.kernel_id, self._state, self._elapsed, self._needs_reset, self._rngs,
                      self._obs, np.ones(self.num_envs, dtype=np.uint8))
        self._ready = True
        return self._obs.copy(), {}

    def step(self, actions: np.ndarray | list) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                       dict[str, Any]]:
        """Step every env: ``(obs, rewards, terminated, truncated, infos)`` as Gymnasium's vector envs."""
        self._check_open()
        if not self._ready:
            raise RuntimeError("call reset() (or set_state()) before step()")
        a = self._check_actions(actions)
        n, info = self.num_envs, self._info
        rewards = np.empty(n)
        terminated = np.empty(n, dtype=np.bool_)
        truncated = np.empty(n, dtype=np.bool_)
        same_step = self.autoreset_mode == "SameStep"
        final_obs = np.zeros((n if same_step else 0, info.obs_dim), dtype=np.float32)
        has_final = np.zeros(n if same_step else 0, dtype=np.bool_)
        _kernel.step(info.kernel_id, self._state, a, self._elapsed, self._needs_reset, self._rngs,
                     info.max_episode_steps, AUTORESET_MODES[self.autoreset_mode], self._obs, rewards,
                     terminated.view(np.uint8), truncated.view(np.uint8), final_obs, has_final.view(np.uint8))
        infos: dict[str, Any] = {}
        if same_step and has_final.any():
            infos = {"final_obs": final_obs, "_final_obs": has_final}
        return self._obs.copy(), rewards, terminated, truncated, infos

    def _check_actions(self, actions: object) -> np.ndarray:
        """The actions as the kernel takes them: int64 (n_envs, 1) or float64 (n_envs, action_dim)."""
        a = np.asarray(actions)
        if self._info.continuous:
            return self._check_box_actions(a)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},) (one per env), got shape {a.shape}")
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"actions must be integers (Discrete({self._info.n_actions})), got dtype {a.dtype}")
        bad = np.flatnonzero((a < 0) | (a >= self._info.n_actions))
        if bad.size:
            raise ValueError(f"actions must be in [0, {self._info.n_actions}) for {self.spec_id}: env {bad[0]} "
                             f"got {a[bad[0]]}")
        return np.ascontiguousarray(a, dtype=np.int64).reshape(self.num_envs, 1)

    def _check_box_actions(self, a: np.ndarray) -> np.ndarray:
        shape = (self.num_envs, self._info.action_dim)
        if a.shape != shape:
            raise ValueError(f"actions must have shape {shape} (one row of {shape[1]} per env), got shape {a.shape}")
        check_real_finite(a, "actions")
        return np.ascontiguousarray(a, dtype=np.float64)

    def get_state(self) -> np.ndarray:
        """A copy of the float64 states, shape (n_envs, state_dim), laid out as Gymnasium's
        ``env.unwrapped.state``."""
        return self._state.copy()

    def set_state(self, states: np.ndarray, elapsed_steps: np.ndarray | None = None) -> None:
        """Put every env in ``states`` (float64, shape (n_envs, state_dim)); ``elapsed_steps`` (default 0)
        sets the TimeLimit counters. Pending auto-resets are cancelled: the next step steps."""
        self._check_open()
        s = np.asarray(states)
        shape = (self.num_envs, self._info.state_dim)
        if s.shape != shape:
            raise ValueError(f"states must have shape {shape}, got {s.shape}")
        check_real_finite(s, "states")
        if elapsed_steps is None:
            elapsed = np.zeros(self.num_envs, dtype=np.int64)
        else:
            elapsed = np.asarray(elapsed_steps)
            if elapsed.shape != (self.num_envs,) or not np.issubdtype(elapsed.dtype, np.integer) \
                    or elapsed.dtype == np.bool_ or np.any(elapsed < 0):
                raise ValueError(f"elapsed_steps must be {self.num_envs} non-negative integers, got {elapsed!r}")
        self._state[...] = s
        self._elapsed[...] = elapsed
        self._needs_reset[...] = 0
        _kernel.observe(self._info.kernel_id, self._state, self._obs)
        self._ready = True

    @property
    def elapsed_steps(self) -> np.ndarray:
        """Steps of each env's current episode (Gymnasium's TimeLimit ``_elapsed_steps``)."""
        return self._elapsed.copy()

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> CVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CVectorEnv({self.spec_id}, num_envs={self.num_envs})"
