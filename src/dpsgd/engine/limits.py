"""The global budget of a run: updates or seconds, shared through the exchange."""

import time


class Limits:
    """Stop after ``max_updates`` updates (the exchange's count over every worker) or
    ``max_seconds`` since this object was made (after the exchange's creation, which is
    collective, so the ranks start their clocks together).

    The first worker that finds the budget spent raises the exchange's stop flag; every
    worker reads it before its next round, so all stop within one round (a synchronous
    exchange shares the flag with its next round, and all stop after the same one).

    Parameters
    ----------
    exchange : dpsgd.comm.exchange.Exchange
        The run's exchange: its update count and stop flag.
    max_updates : int, optional
        Updates over every worker.
    max_seconds : float, optional
        Seconds from now.
    clock : callable, default=time.perf_counter
        Tells the seconds (a virtual rank's clock: ``Topology.now``).

    Examples
    --------
    >>> from dpsgd.comm.local import LocalExchange
    >>> from dpsgd.engine import Limits
    >>> Limits(LocalExchange(4), max_updates=10).exhausted()
    False
    """

    def __init__(self, exchange, max_updates=None, max_seconds=None, clock=time.perf_counter):
        self.exchange = exchange
        self.max_updates = max_updates
        self.max_seconds = max_seconds
        self._clock = clock
        self._start = clock()

    @property
    def limited(self):
        return self.max_updates is not None or self.max_seconds is not None

    def exhausted(self):
        """True when this worker must stop (one or two reads of the exchange when limited)."""
        if not self.limited:
            return False
        exchange = self.exchange
        if exchange.stop_requested():
            return True
        if self.max_updates is not None and exchange.updates() >= self.max_updates:
            exchange.request_stop()  # every rank reads the same count: all stop here
            return True
        if self.max_seconds is not None and self._clock() - self._start >= self.max_seconds:
            exchange.request_stop()  # each rank's own clock: stop when the flag is shared
            return exchange.stop_requested()
        return False
