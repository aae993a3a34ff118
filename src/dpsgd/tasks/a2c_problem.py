"""HSA2C as a problem of the one engine: Hogwild! threads inside a rank, the exchange between ranks.

A round is ``round_updates`` A2C updates by this rank's threads (the ``hsa2c`` kernel's
:class:`~dpsgd._kernels.hsa2c.Learner`, whose environments and RNGs continue from round to
round) on the parameters the engine pulled; the change pushed is what they moved. In one
process the parameters are lent in place, so a run cut into rounds is the one long run of the
kernel. The optimizer's statistics (RMSprop's square averages, Adam's moments) stay with the
rank (as A3C's shared statistics stay with a process): they follow the gradients it computes.

The engine's budget counts env steps (a round's ``updates``), so ``total_timesteps`` is global:
the ranks stop together when their steps add up to it. A round reports every finished
episode; a rank whose last ``window`` episodes reach ``stop_at_reward`` stops every rank.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from dpsgd.engine import Problem, Round


class EpisodeLog:
    """Finished episodes of one rank, in the order they finished: return, length and the
    rank's env steps when it finished."""

    def __init__(self):
        self._returns, self._lengths, self._steps = [], [], []

    def extend(self, returns, lengths, steps):
        order = np.argsort(steps, kind="stable")  # with threads, indices follow the claims, not the steps
        self._returns.append(returns[order].copy())
        self._lengths.append(lengths[order].copy())
        self._steps.append(steps[order].copy())

    def arrays(self):
        """(returns, lengths, steps) as arrays."""
        if not self._returns:
            return np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64)
        return (np.concatenate(self._returns), np.concatenate(self._lengths), np.concatenate(self._steps))

    def mean_return(self, window):
        """Mean return of the last ``window`` episodes (NaN with fewer)."""
        tail, have = [], 0
        for chunk in reversed(self._returns):
            tail.append(chunk[-(window - have):])
            have += tail[-1].size
            if have >= window:
                break
        return float(np.mean(np.concatenate(tail))) if have >= window else float("nan")


def learning_rate_at(schedule, progress_remaining):
    """A schedule's learning rate, checked: a finite number >= 0."""
    lr = schedule(progress_remaining)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr >= 0):
        raise ValueError(f"the learning_rate schedule returned {lr!r} at progress_remaining="
                         f"{progress_remaining:.4f}; it must return a finite number >= 0")
    return float(lr)


def linear_schedule(text):
    """RL-Zoo's ``"lin_<lr>"``: the learning rate falls linearly from lr to 0 over the budget."""
    start = float(text.removeprefix("lin_"))
    return lambda progress_remaining: progress_remaining * start


class A2cProblem(Problem):
    """A2C's rollouts and updates as rounds of the engine (see the module docstring).

    Parameters
    ----------
    learner : dpsgd._kernels.hsa2c.Learner
        The rank's threads, environments and scratch.
    initial : numpy.ndarray
        The initial parameters (rank 0's are used).
    optimizer_state : numpy.ndarray
        The optimizer's statistics, flat, updated in place.
    optimizer_steps : int
        Updates they saw before (Adam's bias correction counts on from there).
    normalizer : callable, optional
        ``normalizer()``: the VecNormalize statistics now (for the model), or None.
    schedule : callable, optional
        ``schedule(progress_remaining)``: the learning rate, as SB3's (1 at the start, 0 at
        the end of the budget), set before every round (SB3 sets it before every update).
    ranks : int
        Ranks sharing the budget (this rank's progress counts for each of them).
    timesteps_before : int
        Env steps of the earlier ``learn`` calls this one continues: the progress counts on
        from them, over their sum with this budget (SB3 with ``reset_num_timesteps=False``).
    batch : int
        Env steps of one update (``n_envs * n_steps``).
    n_updates : int
        Updates this rank runs at most (the whole budget: ranks stop earlier through it).
    round_updates : int
        Updates (over the threads) between two exchanges.
    stop_at_reward : float or None
        Stop every rank once this rank's last ``window`` episodes average at least this.
    window : int
        Episodes of the mean return (SB3's 100).
    """

    def __init__(self, learner, initial, optimizer_state, *, batch, n_updates, round_updates, optimizer_steps=0,
                 normalizer=None, schedule=None, ranks=1, timesteps_before=0, stop_at_reward=None, window=100):
        self.learner, self._initial, self.optimizer_state = learner, initial, optimizer_state
        self.optimizer_steps = optimizer_steps
        self.normalizer = normalizer
        self.schedule, self.ranks, self.timesteps_before = schedule, ranks, timesteps_before
        self.size = initial.size
        self.batch, self.n_updates, self.round_updates = batch, n_updates, round_updates
        self.stop_at_reward, self.window = stop_at_reward, window
        self.episodes = EpisodeLog()
        self.done = 0
        self.halt = False  # set by the caller (e.g. a callback that returned False): stop every rank
        self.solved_at = None  # this rank's env steps when it reached stop_at_reward
        capacity = round_updates * batch  # an episode lasts at least one step
        self._returns = np.empty(capacity)
        self._lengths = np.empty(capacity, dtype=np.int64)
        self._steps = np.empty(capacity, dtype=np.int64)

    def initial(self):
        return self._initial

    def plan(self, exchange):
        return -(-self.n_updates // self.round_updates)

    def local_steps(self, work, r, version, ticket):
        if self.halt:
            return Round(updates=0, end_of_pass=False, stop=True)
        n = min(self.round_updates, self.n_updates - self.done)
        lr = -1.0 if self.schedule is None else learning_rate_at(self.schedule, self.progress_remaining())
        n_episodes, done, diverged = self.learner.run(work, self.optimizer_state, n, self._returns, self._lengths,
                                                      self._steps, self.optimizer_steps + self.done, lr)
        if diverged:
            raise FloatingPointError(f"A2C diverged: a gradient norm was not finite after "
                                     f"{self.done + done} updates of this rank")
        self.done += done
        k = min(n_episodes, self._returns.size)
        self.episodes.extend(self._returns[:k], self._lengths[:k], self._steps[:k])
        mean = self.episodes.mean_return(self.window)
        stop = self.stop_at_reward is not None and mean >= self.stop_at_reward
        if stop and self.solved_at is None:
            self.solved_at = self.learner.env_steps
        steps = done * self.batch
        report = {"env_steps": self.learner.env_steps, "episodes": k, "mean_return": mean}
        return Round(updates=steps, samples=steps, end_of_pass=True, stop=stop, report=report)

    def progress_remaining(self):
        """1 - the share of all the steps (earlier calls' and this budget) done so far."""
        total = self.timesteps_before + self.n_updates * self.batch
        done = self.timesteps_before + self.ranks * self.done * self.batch
        return max(0.0, 1.0 - done / total)

    def model(self, params, version):
        # the optimizer's statistics are this rank's own
        state = self.optimizer_state.reshape(-1, self.size)
        return {"params_": np.array(params, copy=True),
                "optimizer_state_": (state[0] if state.shape[0] == 1 else state).copy(),
                "optimizer_steps_": self.optimizer_steps + self.done,
                "normalizer_": None if self.normalizer is None else self.normalizer()}
