"""What a problem hands the engine: the base class of every task's problem, and a round's result.

A problem owns its parameters' layout and its local steps; the engine moves the parameters
(see :func:`dpsgd.engine.run`). A minimal problem sets ``size`` and defines ``initial``,
``plan``, ``local_steps`` and ``model``; the other methods have defaults for a flat vector
whose change is the difference of the local steps' result and what was pulled.
"""

from dataclasses import dataclass, field

from dpsgd.comm.codecs import Dense, Rows


@dataclass
class Round:
    """What a round of local steps did (:meth:`Problem.local_steps` returns it).

    Parameters
    ----------
    updates : int, default=1
        Optimisation steps it took (the global budget counts these).
    samples : int, default=0
        Samples (rows, documents) it visited.
    end_of_pass : bool, default=False
        It finished a pass over this rank's data.
    stop : bool, default=False
        The problem has converged: the engine stops this rank now and asks the others to stop
        (a synchronous exchange stops every rank after the next round; asynchronous ranks
        read the flag before each round of a run with a budget).
    report : dict, optional
        Numbers for the callback (e.g. ``loss`` of a pass).

    Examples
    --------
    >>> from dpsgd.engine import Round
    >>> Round(updates=128, samples=128, end_of_pass=True, report={"loss": 0.25}).report
    {'loss': 0.25}
    """

    updates: int = 1
    samples: int = 0
    end_of_pass: bool = False
    stop: bool = False
    report: dict = field(default_factory=dict)


@dataclass
class MasterStep:
    """What a master's step (:meth:`Problem.master_step`) did.

    Parameters
    ----------
    change : Dense, Rows or Sparse
        A :mod:`dpsgd.comm.codecs` change, pushed while the exchange's mutex is held.
    step : float
        The step size (joins the exchange's step sum).
    updates : int
        Updates it counts for the budget (0 for a step not taken).
    delay : int
        The update's own delay.
    tau : int
        The delay its step policy saw.
    stop : bool, default=False
        The problem has converged (every rank stops).

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.engine import Dense, MasterStep
    >>> MasterStep(Dense(np.zeros(3)), step=0.1, updates=1, delay=0, tau=0).updates
    1
    """

    change: object
    step: float
    updates: int
    delay: int
    tau: int
    stop: bool = False


class Problem:
    """Base of the problems; see the module docstring.

    Attributes
    ----------
    size : int
        Float64 parameters exchanged.
    row_size : int
        1 for a flat vector; K when the parameters are rows of K that rounds pull and push
        by row (``rows``).
    uses_ticket : bool
        The engine reserves a step index from the exchange before each round's pull (the
        problem's steps depend on it, as LDA's step sizes do).
    exclusive : bool
        The problem has a master's step (PIAG): each round's ``local_steps`` computes at the
        worker's point without writing the parameters, and :meth:`master_step` turns that
        into the change, holding the exchange's mutex (see :func:`dpsgd.engine.run`).
    runs_on_initial : bool
        In one process, with the parameters lent in place, the exchange lends the array
        ``initial`` returns rather than a copy, and ``model`` may return views of the final
        parameters: the fitted model is then the buffer the run wrote, held once (LDA's
        topics).
    global_steps : int or None
        Set by ``plan`` for a problem that ``uses_ticket``: the step indices the run's rounds
        share. Over an asynchronous exchange a rank then draws its ticket before each round
        and stops at the first one past them, so a faster rank runs more of the steps and a
        slower one fewer, and none waits for another at the end (LDA: the steps of
        ``max_iter`` passes over every rank's documents). Each rank still runs between 3/4
        and 5/4 of the rounds ``plan`` returned (:func:`dpsgd.engine.loop.shared_rounds`),
        so tickets reach the sum over the ranks of their most rounds. None: each rank runs
        the rounds ``plan`` returned.
    """

    size = 0
    row_size = 1
    uses_ticket = False
    exclusive = False
    runs_on_initial = False
    global_steps = None

    def initial(self):
        """The initial parameters, flat, in the exchanged form (rank 0's are used)."""
        raise NotImplementedError

    def plan(self, exchange):
        """Prepare for running over ``exchange`` (whose ``in_place`` and ``ranks`` may shape the
        rounds); return the number of rounds this rank runs."""
        raise NotImplementedError

    def rows(self, r):
        """The rows round ``r`` reads and writes (sorted int64), or None for every parameter."""
        return None

    def working(self, pulled, version):
        """The working form of pulled parameters; the local steps change it in place."""
        return pulled.copy()

    def local_steps(self, work, r, version, ticket):
        """Run round ``r``'s lock-free steps on ``work`` in place; return a :class:`Round`."""
        raise NotImplementedError

    def change(self, work, pulled, version, ticket, rows):
        """What to push after the local steps: a :mod:`dpsgd.comm.codecs` change."""
        if rows is None:
            return Dense(work - pulled)
        return Rows(rows, work - pulled)

    def master_step(self, params, work, policy):
        """For ``exclusive`` problems: the master's step on ``params`` (pulled under the
        mutex) from what the round computed at ``work``; moves ``work`` to the worker's next
        point and returns a :class:`MasterStep`."""
        raise NotImplementedError

    def model(self, params, version):
        """The model of global parameters ``params`` (a dict of arrays, named as the
        estimator's fitted attributes). ``params`` may be the live buffer: copy, unless
        ``runs_on_initial`` (then the run's end hands over its buffer, and a callback a
        snapshot)."""
        raise NotImplementedError
