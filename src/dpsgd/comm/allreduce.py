"""Synchronous averaging (SSGD / local SGD): the baseline DPSGD is compared against.

Every rank runs a round of local steps from the same parameters; ``push`` is collective:
the ranks' changes are averaged with one ``Allreduce`` and every rank adds the average, so
all hold the same parameters after each round. With rounds of one step this is
synchronous SGD on the union of the minibatches; with rounds of H steps it is local SGD.

The same ``Allreduce`` carries, after the change, how many ranks contributed one (a rank
whose own rounds are done still takes part, with nothing: :meth:`skip`), whether any rank
asks to stop, the updates and the step sizes: so every rank sees the same clock, the same
budget and the same stop, and all leave the loop after the same round.
"""

import numpy as np

from dpsgd.comm.codecs import Dense
from dpsgd.comm.exchange import Exchange

# the cells after the change in the Allreduce buffer
_CONTRIBUTED, _STOP, _UPDATES, _STEPS = range(4)


class AllreduceExchange(Exchange):
    """The exchange interface (see :mod:`dpsgd.comm.exchange`) by synchronous averaging.

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
    size : int
    initial : array, optional
        Rank 0's initial parameters, broadcast.
    row_size : int
    """

    synchronous = True
    sparse_share = 0.0  # the Allreduce moves the whole vector

    def __init__(self, topology, size, *, initial=None, row_size=1):
        from mpi4py import MPI  # comm/ is the only package that imports mpi4py

        self._MPI = MPI
        self.comm = topology.comm
        self.rank, self.ranks = topology.rank, topology.ranks
        self.size, self.row_size = int(size), int(row_size)
        sizes = self.comm.allgather((self.size, self.row_size))
        if len(set(sizes)) != 1:
            raise ValueError(f"ranks disagree on the parameter size (size, row_size): {sizes}")
        start = self.comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
        self._params = np.zeros(self.size) if start is None else np.array(start, dtype=np.float64)
        self._send = np.zeros(self.size + 4)
        self._sum = np.empty(self.size + 4)
        self._clock = self._updates = 0
        self._step_sum = 0.0
        self._stop = self._want_stop = False

    def pull(self, out=None):
        if out is None:
            return self._params.copy(), self._clock
        out[...] = self._params
        return out, self._clock

    def pull_rows(self, rows, out=None):
        values = self._params.reshape(-1, self.row_size)[rows]
        if out is not None:
            out[...] = values
            values = out
        return values, self._clock

    def push(self, change, *, step=0.0, updates=1):
        """Average ``change`` with the other ranks' (collective); returns the version."""
        values = change.values if isinstance(change, Dense) else change.dense(self.size, self.row_size)
        if not np.all(np.isfinite(values)):
            raise ValueError("the change contains NaN or infinity: refusing to push it")
        self._send[:self.size] = values
        return self._reduce(contributed=1.0, step=step, updates=updates)

    def skip(self):
        """Take part in a round without a change (collective)."""
        self._send[:self.size] = 0.0
        return self._reduce(contributed=0.0, step=0.0, updates=0)

    def _reduce(self, contributed, step, updates):
        tail = self._send[self.size:]
        tail[_CONTRIBUTED], tail[_STOP], tail[_UPDATES], tail[_STEPS] = contributed, self._want_stop, updates, step
        self.comm.Allreduce(self._send, self._sum, op=self._MPI.SUM)
        total = self._sum[self.size:]
        if total[_CONTRIBUTED]:
            self._params += self._sum[:self.size] / total[_CONTRIBUTED]
        version = self._clock
        self._clock += 1
        self._updates += int(round(total[_UPDATES]))
        self._step_sum += float(total[_STEPS])
        self._stop = self._stop or total[_STOP] > 0
        return version

    def agree_rounds(self, rounds):
        """The most rounds of any rank: every rank takes part in every round (collective)."""
        return self.comm.allreduce(rounds, op=self._MPI.MAX)

    def final(self, out=None):
        return self.pull(out)

    def clock(self):
        return self._clock

    def updates(self):
        return self._updates

    def step_sum(self):
        return self._step_sum

    def ticket(self):
        """The index of the round's step: the same on every rank (one averaged step a round)."""
        return self._clock

    def request_stop(self):
        """Ask to stop; every rank sees it after the next round's Allreduce."""
        self._want_stop = True

    def stop_requested(self):
        return self._stop
