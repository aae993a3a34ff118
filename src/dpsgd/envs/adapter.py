"""Any Gymnasium environment with discrete or Box actions for ``dpsgd.A2C``, stepped in Python.

:class:`GymnasiumVectorEnv` runs ``n_envs`` copies through ``gymnasium.vector.SyncVectorEnv``
with "SameStep" autoreset (as Stable-Baselines3's ``DummyVecEnv``: a finished env resets at
once and its last observation comes in the infos) and checks what comes back, so that a bad
environment fails with its name rather than as NaN parameters. Its step holds the GIL, so an
A2C on it runs one thread (the C environments of :func:`dpsgd.envs.make` are the fast path).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

PREFIX = "gymnasium:"  # "gymnasium:CartPole-v1" asks for Gymnasium's own, not dpsgd's C CartPole


class GymnasiumVectorEnv:
    """``n_envs`` copies of the Gymnasium environment ``env_id``, for A2C's Python rollouts.

    Parameters
    ----------
    env_id : str
        A registered Gymnasium id (``"gymnasium:"`` in front is accepted and dropped).
    n_envs : int
        Copies stepped together.
    seed : int or None
        Seeds the first reset (env i with ``seed + i``, as Gymnasium's vector envs do).

    Raises
    ------
    ValueError
        When Gymnasium is missing, the id is unknown, or the spaces are not a Discrete action
        or a flat Box action with finite bounds, and a flat Box observation (the policies A2C has).

    Attributes
    ----------
    continuous : bool
        Box actions (a Gaussian policy's): ``n_actions`` is then their length and
        ``action_low`` / ``action_high`` their bounds.

    Examples
    --------
    :class:`dpsgd.A2C` makes one for any id that is not a C environment, e.g.
    ``A2C("MlpPolicy", "LunarLander-v3")``; directly (with Gymnasium installed):

    >>> from dpsgd.envs.adapter import GymnasiumVectorEnv
    >>> env = GymnasiumVectorEnv("gymnasium:CartPole-v1", n_envs=4, seed=0)  # doctest: +SKIP
    """

    def __init__(self, env_id: str, n_envs: int = 1, seed: int | None = None) -> None:
        try:
            import gymnasium
        except ImportError:
            raise ValueError(f"env={env_id!r} is not one of dpsgd's C environments, and other environments need "
                             "Gymnasium: pip install gymnasium") from None
        name = env_id.removeprefix(PREFIX)
        try:
            spec = gymnasium.spec(name)
        except gymnasium.error.Error as exc:  # NameNotFound, VersionNotFound, ...
            raise ValueError(f"env={env_id!r}: not a registered Gymnasium environment ({exc})") from None
        if isinstance(n_envs, bool) or not isinstance(n_envs, numbers.Integral) or n_envs < 1:
            raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
        try:
            self._env = gymnasium.vector.SyncVectorEnv(
                [lambda: gymnasium.make(name) for _ in range(int(n_envs))],
                autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
        except gymnasium.error.Error as exc:  # e.g. DependencyNotInstalled: Box2D for LunarLander
            raise ValueError(f"env={env_id!r} could not be made: {exc}") from None
        act, obs = self._env.single_action_space, self._env.single_observation_space
        box_actions = isinstance(act, gymnasium.spaces.Box) and len(act.shape) == 1 \
            and bool(np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high)))
        if not (isinstance(act, gymnasium.spaces.Discrete) or box_actions) \
                or not isinstance(obs, gymnasium.spaces.Box) or len(obs.shape) != 1:
            self._env.close()
            raise ValueError(f"env={env_id!r} has actions {act} and observations {obs}: A2C takes Discrete actions "
                             "or flat Box actions with finite bounds, and a flat Box observation")
        self.spec_id, self.num_envs = env_id, int(n_envs)
        self.continuous = box_actions
        self.obs_dim = int(obs.shape[0])
        self.n_actions = int(act.shape[0]) if box_actions else int(act.n)
        if box_actions:
            self.action_low = np.asarray(act.low, dtype=np.float64)
            self.action_high = np.asarray(act.high, dtype=np.float64)
        self.max_episode_steps = spec.max_episode_steps
        self.reward_threshold = spec.reward_threshold
        self.single_observation_space, self.single_action_space = obs, act
        self.autoreset_mode = "SameStep"
        self._seed = seed

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every env (``seed``, else the constructor's for the first reset)."""
        seed, self._seed = (self._seed if seed is None else seed), None
        obs, infos = self._env.reset(seed=seed)
        return self._checked(obs, "reset"), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every env: ``(obs, rewards, terminated, truncated, infos)``, obs float64 and checked;
        ``infos["final_obs"]`` (float64, rows valid where ``infos["_final_obs"]``) when an episode ended.

        Box actions: finite real numbers, shape (n_envs, n_actions), clipped to the bounds first (as
        Stable-Baselines3's rollout clips a Gaussian policy's draws).
        """
        a = np.asarray(actions)
        if self.continuous:
            if a.shape != (self.num_envs, self.n_actions) or a.dtype == np.bool_ \
                    or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) \
                    or not np.all(np.isfinite(a)):
                raise ValueError(f"actions must be finite real numbers of shape ({self.num_envs}, "
                                 f"{self.n_actions}) for {self.spec_id}, got {a!r}")
            a = np.clip(a, self.action_low, self.action_high).astype(self.single_action_space.dtype)
        elif a.shape != (self.num_envs,) or a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer) \
                or np.any((a < 0) | (a >= self.n_actions)):
            raise ValueError(f"actions must be {self.num_envs} integers in [0, {self.n_actions}) for "
                             f"{self.spec_id}, got {a!r}")
        obs, rewards, terminated, truncated, infos = self._env.step(a)
        rewards = np.asarray(rewards, dtype=np.float64)
        if not np.all(np.isfinite(rewards)):
            raise ValueError(f"{self.spec_id} returned a non-finite reward: {rewards}")
        done = np.asarray(terminated) | np.asarray(truncated)
        if done.any():
            final = np.zeros((self.num_envs, self.obs_dim))
            for i in np.flatnonzero(done):
                final[i] = infos["final_obs"][i]
            self._checked(final[done], "the last step of an episode")
            infos = {**infos, "final_obs": final, "_final_obs": done}
        return self._checked(obs, "step"), rewards, np.asarray(terminated), np.asarray(truncated), infos

    def _checked(self, obs, where: str) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        if not np.all(np.isfinite(obs)):
            row = obs[np.argwhere(~np.isfinite(obs))[0][0]]
            raise ValueError(f"{self.spec_id} returned a non-finite observation at {where}: {row}")
        return obs

    def close(self) -> None:
        self._env.close()
