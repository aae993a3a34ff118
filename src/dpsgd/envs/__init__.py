"""Reinforcement-learning environments in C, batched, with Gymnasium's vector API.

``make("CartPole-v1", n_envs=8, seed=0)`` returns a :class:`CVectorEnv` whose steps equal
Gymnasium 1.x's step for step (tests/test_envs.py compares them from random states); the
physics runs in ``dpsgd._kernels.envs`` without the GIL. CartPole-v1 and Acrobot-v1 take
Discrete actions; Pendulum-v1 takes a Box of one torque per env, actions of shape (n_envs, 1)
(see :class:`CVectorEnv`). Spaces are dpsgd's own light classes
(:mod:`dpsgd.envs.spaces`), so Gymnasium is not needed at run time.
"""

from __future__ import annotations

import numbers

from dpsgd.envs.spaces import Box, Discrete, MultiDiscrete
from dpsgd.envs.vector import ENVS, CVectorEnv, check_seed

__all__ = ["Box", "CVectorEnv", "Discrete", "MultiDiscrete", "make", "names"]


def names() -> list[str]:
    """The environments implemented in C.

    Returns
    -------
    list of str
        Their Gymnasium ids, sorted.

    Examples
    --------
    >>> import dpsgd.envs
    >>> "CartPole-v1" in dpsgd.envs.names()
    True
    """
    return sorted(ENVS)


def make(name: str, n_envs: int = 1, seed: int | None = None, *, autoreset_mode: str = "NextStep") -> CVectorEnv:
    """A vector of ``n_envs`` C environments ``name`` (a Gymnasium id such as "CartPole-v1").

    Parameters
    ----------
    name : str
        One of :func:`names`.
    n_envs : int, default=1
        The environments stepped together.
    seed : int or None, default=None
        Seeds the resets (env i draws from stream i); None draws fresh entropy.
    autoreset_mode : {"NextStep", "SameStep"}, default="NextStep"
        Gymnasium's default, or reset at once with the last observation in
        ``infos["final_obs"]``.

    Returns
    -------
    CVectorEnv
        The environments, with Gymnasium's vector API.

    Raises
    ------
    ValueError
        For an unknown name, or ``n_envs`` that is not a positive integer.

    Examples
    --------
    >>> import dpsgd.envs
    >>> env = dpsgd.envs.make("CartPole-v1", n_envs=8, seed=0)
    >>> obs, infos = env.reset()
    >>> obs.shape, obs.dtype
    ((8, 4), dtype('float32'))
    >>> obs, rewards, terminated, truncated, infos = env.step(env.action_space.sample())
    >>> rewards.tolist() == [1.0] * 8
    True
    >>> env.close()
    """
    if name not in ENVS:
        raise ValueError(f"unknown environment {name!r}: dpsgd has {', '.join(names())} in C; any other "
                         "Gymnasium environment with Discrete or bounded Box actions runs through "
                         "dpsgd.envs.adapter.GymnasiumVectorEnv (dpsgd.A2C takes its id directly)")
    if isinstance(n_envs, bool) or not isinstance(n_envs, numbers.Integral) or n_envs <= 0:
        raise ValueError(f"n_envs must be a positive integer, got {n_envs!r}")
    return CVectorEnv(name, ENVS[name], int(n_envs), None if seed is None else check_seed(seed), autoreset_mode)
