"""Asynchronous decentralised averaging (AD-PSGD): one neighbour at a time, nobody waits.

Lian et al. (2018) let each worker, after computing on its own copy, average that copy with
one neighbour's, picked at random, without waiting for anyone else; the pairwise average
must be atomic (no third worker sees or writes either copy half averaged), and the worker
then applies its own change. dpsgd does it with one-sided communication: every rank's copy is
one row of a :class:`dpsgd.comm.window.ParameterWindow` sharded by rank (rank i hosts row i),
and every row has a mutex of its own in the counters window. A push by rank i with neighbour
j (an out-neighbour of i in the exponential graph, :func:`dpsgd.comm.gossip.neighbours`):

    lock(min(i, j)); lock(max(i, j))             (ascending: no two pushes wait on each other)
    x_i, x_j <- one read of both rows
    add (x_i + x_j) / 2 - x_i + change to row i and (x_i + x_j) / 2 - x_j to row j
    unlock both

Every write to a row happens under its mutex, so each pair is averaged whole: the sum of
the copies changes by exactly the pushed changes (``tests/mpi/async_gossip.py`` checks it to
the last bit). A rank reads its own row without a lock, as Hogwild! reads (a pair being
averaged into it may be half written). The clock, the budget's count of updates, the step
sum and the stop flag are the window's, as with the server, so the engine's delays and
step policies work as there; ``final`` is the average of the copies, which every rank then
holds. The exchange's own mutex (``exclusive``, the step policies') is mutex 0, taken
before any row's.
"""

import contextlib

import numpy as np

from dpsgd.comm.codecs import Dense
from dpsgd.comm.exchange import WindowExchange
from dpsgd.comm.gossip import neighbours
from dpsgd.comm.window import open_window


class AsyncGossipExchange(WindowExchange):
    """The exchange interface (see :mod:`dpsgd.comm.exchange`) by pairwise averaging.

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
        The ranks (collective: every rank constructs it).
    size : int
        The number of parameters.
    initial : array, optional
        Rank 0's initial parameters: every rank's copy starts from them.
    row_size : int
        The problem's rows (``pull_rows``); the copies move whole.
    seed : int, default=0
        Seeds each rank's choice of neighbours (rank r uses ``seed + r``).
    graph : {'exponential', 'ring'}, default='exponential'
        Where a rank's neighbours are (its out-neighbours in :func:`dpsgd.comm.gossip.neighbours`).
    record : bool, default=False
        Keep every pairwise average this rank made in :attr:`averages` as ``(version, pair,
        rows read, changes added)``: the history that shows each pair was averaged whole
        (every row's next reader read what its last writer left; ``tests/mpi/async_gossip.py``).

    Examples
    --------
    Under ``mpiexec``, as the estimators' ``exchange="async_gossip"`` opens it:

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.comm import Topology, open_exchange
    >>> exchange = open_exchange("async_gossip", Topology(MPI.COMM_WORLD), 1000)  # doctest: +SKIP
    """

    sparse_share = 0.0  # a pairwise average moves whole copies
    # a change lands on its own rank's copy, which no other rank's step made stale: scaled by
    # delays counted over every rank it under-steps (RCV1-like x0.25, 5 epochs, test log-loss
    # with budget against unscaled: 4 ranks 0.4644-0.4654 against 0.4487-0.4488, 2 ranks
    # 0.4539-0.4586 against 0.4390-0.4392; a9a 4 ranks 0.3250-0.3257 against 0.3245-0.3246)
    delay_scaled = False

    def __init__(self, topology, size, *, initial=None, row_size=1, seed=0, record=False, graph="exponential"):
        self.rank, self.ranks = topology.rank, topology.ranks
        self._topology = topology
        self.size, self.row_size = int(size), int(row_size)
        start = None
        if initial is not None and self.rank == 0:
            start = np.tile(np.asarray(initial, dtype=np.float64), self.ranks)
        # row r is rank r's copy; mutex 0 is the exchange's, mutex 1 + r guards row r
        self._window = open_window(topology.comm, self.size * self.ranks, initial=start, sharded=True,
                                       row_size=self.size, mutexes=1 + self.ranks)
        self.graph = graph
        self._neighbours = neighbours(graph, self.rank, self.ranks)[1] or [self.rank]
        self._rng = np.random.default_rng(int(seed) + self.rank)
        self._own = np.array([self.rank])
        self.averages = [] if record else None

    def pull(self, out=None):
        self.bytes_received += 8 * self.size
        values, version = self._window.pull_rows(self._own)
        if out is None:
            return values[0], version
        out[...] = values[0]
        return out, version

    def pull_rows(self, rows, out=None):
        own, version = self.pull()
        values = own.reshape(-1, self.row_size)[rows]
        if out is not None:
            out[...] = values
            values = out
        return values, version

    def push(self, change, *, step=0.0, updates=1):
        """Average this rank's copy with a random neighbour's, atomically, and add ``change``
        to it; returns the version."""
        values = change.values if isinstance(change, Dense) else change.dense(self.size, self.row_size)
        if not np.all(np.isfinite(values)):
            raise ValueError("the change contains NaN or infinity: refusing to push it")
        j = int(self._rng.choice(self._neighbours))
        if j == self.rank:  # one rank: no one to average with
            self.bytes_sent += 8 * self.size
            return self._window.push_rows(self._own, values[None, :], step=step, updates=updates)
        pair = np.array(sorted((self.rank, j)))
        self.bytes_received += 16 * self.size  # both copies read, both written
        self.bytes_sent += 16 * self.size
        with self._locked(pair):
            both, _ = self._window.pull_rows(pair)
            average = 0.5 * (both[0] + both[1])
            read = both.copy() if self.averages is not None else None
            both -= average
            np.negative(both, out=both)  # each row's change to the average
            both[0 if pair[0] == self.rank else 1] += values
            version = self._window.push_rows(pair, both, step=step, updates=updates)
        if self.averages is not None:
            self.averages.append((version, pair.tolist(), read, both.copy()))
        return version

    @contextlib.contextmanager
    def _locked(self, pair):
        """Hold the mutexes of both rows, taken in ascending order."""
        self._window.lock(1 + int(pair[0]))
        try:
            self._window.lock(1 + int(pair[1]))
            try:
                yield
            finally:
                self._window.unlock(1 + int(pair[1]))
        finally:
            self._window.unlock(1 + int(pair[0]))

    def final(self, out=None):
        """The average of every rank's copy, once every rank's pushes are in (collective)."""
        self._topology.barrier()
        copies, version = self._window.pull()
        mean = copies.reshape(self.ranks, self.size).mean(axis=0)
        if out is not None:
            out[...] = mean
            mean = out
        return mean, version

    def copies(self):
        """Every rank's copy, one row each (a snapshot, not atomic across rows)."""
        return self._window.pull()[0].reshape(self.ranks, self.size)

    def close(self):
        self._window.close()

    def __exit__(self, exc_type, exc, tb):
        self._window.__exit__(exc_type, exc, tb)
