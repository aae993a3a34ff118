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

from dpsgd._kernels import natural
from dpsgd.comm.codecs import Dense
from dpsgd.comm.exchange import Exchange, check_compression

# the cells after the change in the Allreduce buffer
_CONTRIBUTED, _STOP, _UPDATES, _STEPS = range(4)

# spreads the natural-compression seeds of (round, rank) over the 64-bit seeds: odd, so that
# no two (round, rank) of a run share one
_SEED_STRIDE = 0x9E3779B97F4A7C15


class ReplicaExchange(Exchange):
    """What the synchronous exchanges share: every rank holds a copy of the parameters, takes
    part in every round, and counts the rounds, updates and steps that every rank agreed on
    (``_count``). Subclasses define ``push``, ``skip`` and ``final``.

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
    size : int
    initial : array, optional
        Rank 0's initial parameters, broadcast.
    row_size : int
    agree : tuple, optional
        More settings every rank must share (checked with the sizes).
    """

    synchronous = True
    sparse_share = 0.0  # a round moves the whole vector

    def __init__(self, topology, size, *, initial=None, row_size=1, agree=()):
        self._MPI = topology.mpi()  # mpi4py's module (comm/ is the only package that imports it)
        self.comm = topology.comm
        self.rank, self.ranks = topology.rank, topology.ranks
        self.size, self.row_size = int(size), int(row_size)
        settings = self.comm.allgather((self.size, self.row_size, *agree))
        if len(set(settings)) != 1:
            raise ValueError(f"ranks disagree on the parameter size (size, row_size, ...): {settings}")
        start = self.comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
        self._params = np.zeros(self.size) if start is None else np.array(start, dtype=np.float64)
        self._clock = self._updates = 0
        self._step_sum = 0.0
        self._stop = self._want_stop = False

    def _change_values(self, change):
        """A pushed change as the whole vector, checked finite."""
        values = change.values if isinstance(change, Dense) else change.dense(self.size, self.row_size)
        if not np.all(np.isfinite(values)):
            raise ValueError("the change contains NaN or infinity: refusing to push it")
        return values

    def _tail(self, cells, contributed, step, updates):
        """Fill the four count cells a rank adds to a round's reduction."""
        cells[_CONTRIBUTED], cells[_STOP], cells[_UPDATES], cells[_STEPS] = contributed, self._want_stop, updates, step

    def _count(self, totals):
        """Count a round from the four cells summed over the ranks; returns its version."""
        version = self._clock
        self._clock += 1
        self._updates += int(round(totals[_UPDATES]))
        self._step_sum += float(totals[_STEPS])
        self._stop = self._stop or totals[_STOP] > 0
        return version

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

    def agree_rounds(self, rounds):
        """The most rounds of any rank: every rank takes part in every round (collective)."""
        return self.comm.allreduce(rounds, op=self._MPI.MAX)

    def clock(self):
        return self._clock

    def updates(self):
        return self._updates

    def step_sum(self):
        return self._step_sum

    def ticket(self):
        """The index of the round's step: the same on every rank (one step a round)."""
        return self._clock

    def request_stop(self):
        """Ask to stop; every rank sees it after the next round."""
        self._want_stop = True

    def stop_requested(self):
        return self._stop


class AllreduceExchange(ReplicaExchange):
    """The exchange interface (see :mod:`dpsgd.comm.exchange`) by synchronous averaging
    (parameters as :class:`ReplicaExchange`).

    ``compression="natural"``: each rank's change travels as natural compression's 2-byte
    codes (:mod:`dpsgd._kernels.natural`: each value rounded at random to a neighbouring power
    of two, unbiased, variance at most 1/8 of its square), gathered by one ``MPI_Allgather``
    and decoded into the sum on every rank (a quarter of the bytes a rank sends; every rank
    adds the same decoded values, so all keep the same parameters). The counts travel in a
    small ``MPI_Iallreduce`` beside it.

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
        The ranks (collective: every rank constructs it and takes part in every round).
    size : int
        The number of parameters.
    initial : array-like of shape (size,), optional
        Rank 0's initial parameters, broadcast.
    row_size : int, default=1
        The length of a row, for problems whose parameters are rows.
    compression : {None, "natural"}, default=None
        How a change travels.

    Examples
    --------
    Under ``mpiexec``, as the estimators' ``exchange="allreduce"`` opens it:

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.comm import Topology, open_exchange
    >>> exchange = open_exchange("allreduce", Topology(MPI.COMM_WORLD), 1000,
    ...                          compression="natural")  # doctest: +SKIP
    """

    def __init__(self, topology, size, *, initial=None, row_size=1, compression=None):
        super().__init__(topology, size, initial=initial, row_size=row_size, agree=(compression,))
        self.compression = check_compression(compression)
        self._send = np.zeros(self.size + 4)
        self._sum = np.empty(self.size + 4)
        if self.compression is not None:
            self._codes = np.zeros(self.size, dtype=np.uint16)
            self._gathered = np.empty((self.ranks, self.size), dtype=np.uint16)
            self._counts = np.empty(4)

    def push(self, change, *, step=0.0, updates=1):
        """Average ``change`` with the other ranks' (collective); returns the version."""
        values = self._change_values(change)
        if self.compression is not None:
            # a seed of this rank's own for each round: the ranks' roundings are independent
            natural.encode_into(values, (self._clock * self.ranks + self.rank) * _SEED_STRIDE % 2**64, self._codes)
            return self._gather(contributed=1.0, step=step, updates=updates)
        self._send[:self.size] = values
        return self._reduce(contributed=1.0, step=step, updates=updates)

    def skip(self):
        """Take part in a round without a change (collective)."""
        if self.compression is not None:
            self._codes[:] = 0  # the code of +0.0
            return self._gather(contributed=0.0, step=0.0, updates=0)
        self._send[:self.size] = 0.0
        return self._reduce(contributed=0.0, step=0.0, updates=0)

    def _gather(self, contributed, step, updates):
        self._tail(self._counts, contributed, step, updates)
        counting = self.comm.Iallreduce(self._counts, self._sum[self.size:], op=self._MPI.SUM)
        self.comm.Allgather(self._codes, self._gathered)
        self.bytes_sent += self._codes.nbytes
        self.bytes_received += self._gathered.nbytes
        total = self._sum[:self.size]
        total[:] = 0.0
        for codes in self._gathered:  # in rank order on every rank: the same sum everywhere
            natural.decode_add(codes, total)
        counting.Wait()
        counts = self._sum[self.size:]
        if counts[_CONTRIBUTED]:
            self._params += total / counts[_CONTRIBUTED]
        return self._count(counts)

    def _reduce(self, contributed, step, updates):
        self._tail(self._send[self.size:], contributed, step, updates)
        self.bytes_sent += 8 * self.size  # and as many received: the sum comes back
        self.bytes_received += 8 * self.size
        self.comm.Allreduce(self._send, self._sum, op=self._MPI.SUM)
        total = self._sum[self.size:]
        if total[_CONTRIBUTED]:
            self._params += self._sum[:self.size] / total[_CONTRIBUTED]
        return self._count(total)

    def final(self, out=None):
        return self.pull(out)
