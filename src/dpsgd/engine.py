"""The DPSGD loop that every worker runs: pull -> local lock-free steps -> delta -> step -> push.

Each worker (an MPI rank, with its own OpenMP threads) repeats rounds: it pulls the global
parameters and their version v from the window, lets the task run ``sync_every`` local
steps on its own data shard with the kernel's threads (Hogwild! inside the process), and
pushes the change it made, scaled by a step-size policy given the delay it measured. Nobody
waits for anybody: the window's pushes are one-sided.

Delay of a round = pushes by others between its pull and its push (``clock - v`` read just
before pushing; the push's own version number would also count pushes that land in between).
"""

import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RoundStats:
    """What a worker saw: one delay per push, and where its time went."""

    delays: list = field(default_factory=list)
    seconds_compute: float = 0.0
    seconds_comm: float = 0.0
    pushes: int = 0

    def summary(self):
        d = np.asarray(self.delays, dtype=float)
        total = self.seconds_compute + self.seconds_comm
        return {
            "pushes": self.pushes,
            "delay_mean": float(d.mean()) if d.size else 0.0,
            "delay_p99": float(np.percentile(d, 99)) if d.size else 0.0,
            "delay_max": float(d.max()) if d.size else 0.0,
            "delay_histogram": np.bincount(d.astype(np.int64)).tolist() if d.size else [],  # pushes per delay
            "comm_share": self.seconds_comm / total if total else 0.0,
        }


class Budget:
    """A global stop shared through the window: ``max_updates`` pushes (the window's clock)
    or ``max_seconds`` since this object was made (after the window's creation, which is
    collective, so the ranks start their clocks together).

    The first worker that finds the budget spent raises the window's stop flag; every
    worker reads the flag before its next round, so all stop within one round.
    """

    def __init__(self, window, max_updates=None, max_seconds=None):
        self.window = window
        self.max_updates = max_updates
        self.max_seconds = max_seconds
        self._start = time.perf_counter()

    @property
    def limited(self):
        return self.max_updates is not None or self.max_seconds is not None

    def exhausted(self):
        """True when this worker must stop (one or two atomic reads when a limit is set)."""
        if not self.limited:
            return False
        if self.window.stop_requested():
            return True
        spent = ((self.max_updates is not None and self.window.clock() >= self.max_updates)
                 or (self.max_seconds is not None and time.perf_counter() - self._start >= self.max_seconds))
        if spent:
            self.window.request_stop()
        return spent


def run_rounds(window, local_update, n_rounds, policy=None, stats=None, budget=None):
    """Run ``n_rounds`` asynchronous rounds against ``window``.

    Parameters
    ----------
    window : dpsgd.comm.ParameterWindow or LocalWindow
    local_update : callable
        ``local_update(params, version, round) -> new_params``: the task's local steps,
        started from the pulled ``params`` (a private copy it may modify).
    n_rounds : int
    policy : dpsgd.stepsize policy, optional
        Scales each pushed change by ``policy.delay_scale``: the policy's step for the
        measured delay over gamma', where the delay-adaptive policies see the sum of the
        multipliers of every worker's pushes since the pull (the window's step sum, read
        before the pull and before the push: a little more than the delay window, never
        less). None pushes the change as the local steps made it (their own schedule sets
        the step sizes).
    stats : RoundStats, optional
        Accumulates delays and timings.
    budget : Budget, optional
        Checked before every round: a global stop (updates or seconds) ends the rounds early.

    Returns
    -------
    RoundStats
    """
    stats = RoundStats() if stats is None else stats
    params = np.empty(window.size)
    for r in range(n_rounds):
        if budget is not None and budget.exhausted():
            break
        tic = time.perf_counter()
        steps_before = window.step_sum() if policy is not None else 0.0
        params, version = window.pull(params)
        start = params.copy()
        toc = time.perf_counter()
        updated = local_update(params, version, r)
        tac = time.perf_counter()
        delay = window.clock() - version
        scale = 1.0
        if policy is not None:  # the steps every worker pushed since this round's pull
            scale = policy.delay_scale(version, delay, window.step_sum() - steps_before)
        window.push((updated - start) * scale, step=scale)
        stats.delays.append(delay)
        stats.pushes += 1
        stats.seconds_compute += tac - toc
        stats.seconds_comm += (toc - tic) + (time.perf_counter() - tac)
    return stats
