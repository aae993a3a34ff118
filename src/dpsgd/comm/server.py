"""DPSGD's own exchange: an asynchronous parameter server on an MPI one-sided window.

Rank 0's window holds the global parameters (:class:`dpsgd.comm.window.ParameterWindow`);
every rank pulls and pushes without waiting for any other. This module chooses how a change
moves. On one machine MPICH's shared-memory path moves a dense block much faster per double
than an indexed datatype (``bench/bench_window.py``; docs/benchmarks.md, "Ranks and
threads"): 60% of 5,001 rows x 20 took 164 us pushed against 60 us for a dense push of
100,000 doubles, and a sparse push of 1% of 100,000 entries 131 us. A sparse push beat the
dense one only below about 1% of a million entries, and never clearly for the 47,237 weights
of the RCV1-like model, where the call's own cost (about 55 us) is that of the whole dense
push (``bench/bench_window.py``, last table). So there a change that touches more than
:data:`ROWS_SHARE_DENSE` of the rows, or more than :data:`ENTRIES_SHARE_DENSE` of the
entries, or any entries of a vector shorter than :data:`SPARSE_FROM_SIZE`, moves as the
whole vector (``sparse_share`` tells the problems). Between machines the bytes count
(:data:`dpsgd.comm.exchange.SPARSE_SHARE`).
"""

import numpy as np

from dpsgd.comm.codecs import Dense, Rows, Sparse
from dpsgd.comm.exchange import WindowExchange
from dpsgd.comm.window import open_window

# on one machine: rows and entries shares above which the whole vector moves instead
ROWS_SHARE_DENSE = 0.25
ENTRIES_SHARE_DENSE = 0.005
SPARSE_FROM_SIZE = 100_000


class ServerExchange(WindowExchange):
    """The exchange interface over a :class:`ParameterWindow` (see :mod:`dpsgd.comm.exchange`).

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
        The ranks (collective: every rank constructs it).
    size : int
        The number of parameters.
    initial : array-like of shape (size,), optional
        Rank 0's initial parameters.
    row_size : int, default=1
        The length of a row, for problems whose parameters are rows (LDA's topics).

    Examples
    --------
    The engine opens it through :func:`dpsgd.comm.open_exchange`; under ``mpiexec``:

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.comm import Topology, open_exchange
    >>> exchange = open_exchange("server", Topology(MPI.COMM_WORLD), 1000)  # doctest: +SKIP
    """

    def __init__(self, topology, size, *, initial=None, row_size=1):
        one_machine = topology.one_machine()
        self.rank, self.ranks = topology.rank, topology.ranks
        self._topology = topology
        self._window = open_window(topology.comm, size, initial=initial, row_size=row_size)
        self.size, self.row_size = self._window.size, self._window.row_size
        self._rows_dense = ROWS_SHARE_DENSE if one_machine else np.inf
        if one_machine:
            self.sparse_share = ENTRIES_SHARE_DENSE if self.size >= SPARSE_FROM_SIZE else 0.0
        self._flat = None  # the whole vector, for rows moved densely

    def _whole(self):
        if self._flat is None:
            self._flat = np.empty(self.size)
        return self._flat

    def pull(self, out=None):
        self.bytes_received += 8 * self.size
        return self._window.pull(out)

    def rows_move_whole(self, n_rows):
        return n_rows > self._rows_dense * (self.size // self.row_size)

    def pull_rows(self, rows, out=None):
        if self.rows_move_whole(rows.size):
            self.bytes_received += 8 * self.size
            flat, version = self._window.pull(self._whole())
            values = flat.reshape(-1, self.row_size)[rows]  # a copy (fancy indexing)
            if out is not None:
                out[...] = values
                values = out
            return values, version
        self.bytes_received += 8 * rows.size * (self.row_size + 1)
        return self._window.pull_rows(rows, out)

    def push(self, change, *, step=0.0, updates=1):
        """Push ``change``, moving it as the whole vector where that is faster (module docstring)."""
        if isinstance(change, Rows) and self.rows_move_whole(change.rows.size):
            flat = self._whole()
            flat[:] = 0.0
            flat.reshape(-1, self.row_size)[change.rows] = change.values
            change = Dense(flat)
        elif isinstance(change, Sparse) and change.indices.size > self.sparse_share * self.size:
            change = Dense(change.dense(self.size))
        self.bytes_sent += change.nbytes
        return self._push_change(change, step, updates)

    def final(self, out=None):
        """The parameters once every rank's pushes are in (collective)."""
        self._topology.barrier()
        return self._window.pull(out)

    def close(self):
        """Free the window (collective; only on success, see ParameterWindow.__exit__)."""
        self._window.close()

    def __exit__(self, exc_type, exc, tb):
        self._window.__exit__(exc_type, exc, tb)
