"""The one loop that runs every problem, in one process and across ranks.

Each worker (a process, or an MPI rank with its own OpenMP threads) repeats rounds: it
pulls the global parameters and their version v, lets the problem run its local lock-free
steps on them with the process's threads (Hogwild! inside the process), and pushes the
change, scaled by the step policy for its delay (its own, or that of the oldest read still in
flight: each worker then publishes its read's clock and step sum; PAPERS.md 9.1). With the
asynchronous server nobody waits for anybody; with allreduce the push is collective; in one process the
parameters are lent in place and a push only counts the round.

A problem with a master's step (``Problem.exclusive``: PIAG, whose master turns each
worker's gradient into a proximal step) runs :func:`_master_rounds` instead: the worker
computes at its point, then, holding the exchange's mutex, pulls the parameters, lets the
problem take the master's step on them and pushes it; the problem hands back the next point
(the paper's master sends it to the worker that reported).
"""

import numpy as np

from dpsgd.comm.exchange import open_exchange
from dpsgd.engine.limits import Limits
from dpsgd.engine.stats import RoundStats


# Where the ranks share the steps (Problem.global_steps), a rank runs between 1 - this share
# and 1 + this share of the rounds it planned (shared_rounds): the ranks end together where
# their speeds differ by less (AP's two halves of the documents: about 15%), and a rank that
# pauses or lags (rank 0 evaluating each pass for the CLI's log: 1 of 3 passes in a test
# without the floor; a straggler among many ranks) still sees its data at least 3/4 as often
# as planned
SHARED_STEPS_SLACK = 0.25


def shared_rounds(own):
    """The fewest and the most rounds a rank that planned ``own`` runs where the ranks share
    the steps (:attr:`Problem.global_steps`): it stops at the first ticket past them once it
    has run the fewest, and at the most whatever the tickets.

    Examples
    --------
    >>> from dpsgd.engine.loop import shared_rounds
    >>> shared_rounds(40)
    (30, 50)
    """
    return own - int(SHARED_STEPS_SLACK * own), own + int(np.ceil(SHARED_STEPS_SLACK * own))


class Result:
    """What :func:`run` returns.

    Parameters
    ----------
    model : dict
        The problem's model (:meth:`Problem.model`: a dict of arrays) of the final parameters.
    version : int
        The final version: pushes over every worker.
    updates : int
        Optimisation steps over every worker.
    rounds : int
        The rounds this worker ran with steps of its own.
    stats : RoundStats
        This worker's delays, seconds and bytes.
    """

    def __init__(self, model, version, updates, rounds, stats):
        self.model, self.version, self.updates, self.rounds, self.stats = model, version, updates, rounds, stats


def run(problem, topology, *, exchange="server", policy=None, max_updates=None, max_seconds=None,
        callback=None, in_place=True, network=None, compression=None, graph="exponential"):
    """Run ``problem`` over an exchange between the ranks of ``topology``.

    Parameters
    ----------
    problem : dpsgd.engine.Problem
    topology : dpsgd.comm.topology.Topology
        The ranks (one process when it has no communicator).
    exchange : {'server', 'allreduce', 'gossip', 'async_gossip'} or an exchange, default='server'
        How the ranks share the parameters (one process always uses the in-process one).
        An exchange object already open (e.g. a test's) is used as it is and left open.
    policy : dpsgd.stepsize policy, optional
        For a problem with a master's step (``exclusive``), handed to its ``master_step``,
        which takes its steps from it. Otherwise it scales each pushed change by
        ``policy.delay_scale``: the policy's step over gamma' for the delay ``policy.delay``
        names (:data:`dpsgd.stepsize.DELAYS`). "push" (default): the push's own delay, given
        the sum of the multipliers of every worker's pushes since the pull (the exchange's
        step sum read at the pull and at the push). "oldest_read": the age of the oldest read
        any worker has in flight, given at least the multipliers of the pushes that read
        missed (:func:`_scaled_push`: the pushes then take the exchange's mutex). None pushes
        changes as the local steps made them. Not used where the delay is always 0 (one
        process, allreduce, gossip) nor by asynchronous gossip (``delay_scaled``).
    max_updates, max_seconds : optional
        The global budget (:class:`dpsgd.engine.Limits`), checked before every round.
    callback : callable, optional
        ``callback(info)`` after every round (see :func:`round_info`).
    in_place : bool, default=True
        In one process, lend the parameters to the local steps (False runs the
        distributed path: copies and pushed changes).
    network : optional
        Across ranks, a network model added to the exchange (latency, bandwidth, a straggler:
        :mod:`dpsgd.comm.network`); None: the exchange as it is.
    compression : {None, 'natural'}
        What the changes travel as across ranks (with 'allreduce' or 'gossip'; :func:`open_exchange`).
    graph : {'exponential', 'ring'}, default='exponential'
        The graph of ranks of the gossip exchanges (:func:`dpsgd.comm.gossip.neighbours`).

    Returns
    -------
    Result

    Examples
    --------
    A problem whose round adds one to every parameter, run in one process for 3 rounds:

    >>> import numpy as np
    >>> from dpsgd.comm import Topology
    >>> from dpsgd.engine import Problem, Round, run
    >>> class Count(Problem):
    ...     size = 4
    ...     def initial(self):
    ...         return np.zeros(self.size)
    ...     def plan(self, exchange):
    ...         return 3
    ...     def local_steps(self, params, r, version, ticket):
    ...         params += 1.0
    ...         return Round()
    ...     def model(self, params, version):
    ...         return {"w": params.copy()}
    >>> run(Count(), Topology(None)).model["w"]
    array([3., 3., 3., 3.])
    """
    if not isinstance(exchange, str):
        return _run(problem, exchange, policy, max_updates, max_seconds, callback, topology.now)
    with open_exchange(exchange, topology, problem.size, initial=problem.initial(), row_size=problem.row_size,
                       in_place=in_place, adopt=problem.runs_on_initial, network=network,
                       compression=compression, graph=graph) as ex:
        return _run(problem, ex, policy, max_updates, max_seconds, callback, topology.now)


def _run(problem, ex, policy, max_updates, max_seconds, callback, clock):
    """:func:`run` over the open exchange ``ex``; ``clock`` tells the seconds (``Topology.now``:
    a virtual rank's simulated clock, else ``time.perf_counter``)."""
    own = problem.plan(ex)
    total = ex.agree_rounds(own)
    limits = Limits(ex, max_updates, max_seconds, clock)
    stats = RoundStats()
    if problem.exclusive and ex.in_place:  # its master's step reads what it pulled, then pushes a change
        raise ValueError("a problem with a master's step needs a copying exchange: run(..., in_place=False)")
    loop = _master_rounds if problem.exclusive else _rounds
    rounds = loop(problem, ex, own, total, policy, limits, stats, callback, clock)
    final, version = ex.final()
    stats.take_counts(ex)
    return Result(problem.model(final, version), version, ex.updates(), rounds, stats)


def _rounds(problem, ex, own, total, policy, limits, stats, callback, clock):
    """The rounds of :func:`run`; returns how many this worker ran with steps of its own."""
    start = clock()
    buf = None
    done = 0
    # a delay of 0 (one process, allreduce) needs no scaling; the delay-adaptive policies'
    # step for it (alpha gamma') would only shorten every round
    adaptive = policy is not None and not ex.in_place and not ex.synchronous and ex.delay_scaled
    oldest = adaptive and getattr(policy, "delay", "push") == "oldest_read"
    # the ranks share the steps (Problem.global_steps): each round first draws its ticket
    shared = (problem.uses_ticket and problem.global_steps is not None and own > 0
              and not ex.in_place and not ex.synchronous)
    least, most = shared_rounds(own) if shared else (own, own)
    for r in (range(most) if shared else range(total)):
        if limits.exhausted():
            break
        if r >= own and not shared:  # a synchronous exchange: this rank's rounds are done, the others' not
            ex.skip()
            continue
        start_round = clock()
        ticket = None
        if shared:  # below its fewest rounds a rank goes on past the shared steps
            ticket = ex.ticket_below(problem.global_steps if r >= least else None)
            if ticket is None:
                break
        drawn = clock()
        rows = problem.rows(r)  # the problem's own work (e.g. LDA's minibatch): computing
        tic = clock()
        if problem.uses_ticket and not shared:
            ticket = ex.ticket()
        if oldest:  # this rank's read is in flight from before its pull until its push lands
            ex.publish_read()
        elif adaptive:
            steps_before = ex.step_sum()
        if rows is None:
            if buf is None and not ex.in_place:
                buf = np.empty(ex.size)
            pulled, version = ex.pull(buf)
        else:
            pulled, version = ex.pull_rows(rows)
        toc = clock()
        work = pulled if ex.in_place else problem.working(pulled, version)
        result = problem.local_steps(work, r, version, ticket)
        change = None if ex.in_place else problem.change(work, pulled, version, ticket, rows)
        tac = clock()
        if oldest:
            delay = _scaled_push(ex, policy, change, result.updates, version, stats)
        else:
            delay = ex.clock() - version
            scale = 1.0
            if adaptive:  # the steps pushed since the pull: its step sum then and now
                scale = policy.delay_scale(version, delay, ex.step_sum() - steps_before)
                if scale != 1.0:
                    change = change.scaled(scale)
            ex.push(change, step=scale, updates=result.updates)
        stats.delays.append(delay)
        stats.pushes += 1
        stats.seconds_compute += (tac - toc) + (tic - drawn)
        stats.seconds_comm += (drawn - start_round) + (toc - tic) + (clock() - tac)
        stats.take_counts(ex)
        done += 1
        if callback is not None:
            callback(round_info(problem, ex, r, result, stats, clock() - start))
        if result.stop:  # every rank stops: after the next round (synchronous), or at its next
            ex.request_stop()  # check of the budget (asynchronous: the flag is read there)
            if not ex.synchronous:
                break
    if oldest:  # no read in flight any more: the others' steps no longer wait for it
        ex.retire_read()
    return done


def _scaled_push(ex, policy, change, updates, version, stats):
    """Push ``change`` scaled by the policy's step for the oldest read in flight; returns the
    push's own delay.

    Every push of the run holds the exchange's mutex, so the clock and the step sum read
    under it are k and S_k, just before this push. The oldest read any worker has in flight
    (this one's included) began at clock c with step sum s <= S_c (``publish_read``: every
    push numbered below c is in its parameters and its step in s, maybe with part of the
    next). The policy gets tau = k - c, which bounds the delay of every computation in flight
    and grows by at most one per push, and S_k - s, at least the steps of the pushes since
    that read: so the window rule sum_{t=k-tau}^{k} step_t <= gamma' holds on every push by
    construction (PAPERS.md 9.1), where a push's own delay can jump (a slow worker's push
    lands after many fast ones). The push's own delay, k less its pull's version, goes to
    the statistics beside tau.
    """
    with ex.exclusive():
        k, oldest_clock, oldest_steps, steps = ex.oldest_read()
        tau = k - oldest_clock
        scale = policy.delay_scale(k, tau, steps - oldest_steps)
        if scale != 1.0:
            change = change.scaled(scale)
        ex.push(change, step=scale, updates=updates)
    # this read stays published until the next one replaces it (one call fewer a round): the
    # pushes meanwhile see an older read than there is, already counted in their tau
    stats.taus.append(tau)
    return k - version


def _master_rounds(problem, ex, own, total, policy, limits, stats, callback, clock):
    """The rounds of a problem with a master's step (module docstring); the policy is the
    problem's to apply, to the delay it measures in the parameters it pulled."""
    start = clock()
    current = np.empty(ex.size)
    with ex.exclusive():  # a consistent first read: no master's step half written
        work = problem.working(*ex.pull(current))
    done = 0
    for r in range(own):
        if limits.exhausted():
            break
        tic = clock()
        result = problem.local_steps(work, r, None, None)
        toc = clock()
        with ex.exclusive():
            pulled, _version = ex.pull(current)
            step = problem.master_step(pulled, work, policy)  # moves ``work`` to the next point
            ex.push(step.change, step=step.step, updates=step.updates)
        stats.delays.append(step.delay)
        stats.taus.append(step.tau)
        stats.pushes += 1
        stats.seconds_compute += toc - tic
        stats.seconds_comm += clock() - toc
        stats.take_counts(ex)
        done += 1
        if callback is not None:
            callback(round_info(problem, ex, r, result, stats, clock() - start))
        if step.stop:
            ex.request_stop()
            break
    return done


def _snapshot(ex):
    """The global parameters and their version, as a copy where the exchange lends its buffer
    (a callback's model must not change as the run goes on)."""
    params, version = ex.pull()
    return (params.copy() if ex.in_place else params), version


def round_info(problem, ex, r, result, stats, seconds):
    """The callback's ``info`` after round ``r``: ``round`` (1-based), ``samples`` (this
    round's), ``seconds`` (since the rounds began), ``end_of_pass``, the problem's report
    (e.g. ``pass``, ``loss``), and at the end of a pass ``updates`` (over every worker), this
    worker's delay statistics and ``model()``, which returns the global model (a dict of
    arrays, as :meth:`Problem.model`)."""
    info = {"round": r + 1, "samples": result.samples, "seconds": seconds, "end_of_pass": result.end_of_pass,
            **result.report}
    if result.end_of_pass:  # the reads of the exchange only here: a round's own costs nothing
        info["updates"] = ex.updates()
        info.update(stats.summary())
        info["model"] = lambda: problem.model(*_snapshot(ex))
    return info
