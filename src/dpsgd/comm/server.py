"""DPSGD's own exchange: an asynchronous parameter server on an MPI one-sided window.

Rank 0's window holds the global parameters (:class:`dpsgd.comm.window.ParameterWindow`);
every rank pulls and pushes without waiting for any other. This module chooses how a change
moves. On one machine MPICH's shared-memory path moves a dense block much faster per double
than an indexed datatype (``bench/bench_window.py``, README "Distributed"): 60% of 5,001
rows x 20 took 164 us pushed against 60 us for a dense push of 100,000 doubles, and a sparse
push of 1% of 100,000 entries 131 us. A sparse push beat the dense one only below about 1%
of a million entries, and never clearly for the 47,237 weights of the RCV1-like model, where
the call's own cost (about 55 us) is that of the whole dense push (``bench/bench_window.py``,
last table). So there a change that touches more than :data:`ROWS_SHARE_DENSE` of the
rows, or more than :data:`ENTRIES_SHARE_DENSE` of the entries, or any entries of a vector
shorter than :data:`SPARSE_FROM_SIZE`, moves as the whole vector. Between machines the bytes
count, and changes move as they are (not measured).
"""

import numpy as np

from dpsgd.comm.codecs import Dense, Rows, Sparse
from dpsgd.comm.window import ParameterWindow

# on one machine: rows and entries shares above which the whole vector moves instead
ROWS_SHARE_DENSE = 0.25
ENTRIES_SHARE_DENSE = 0.005
SPARSE_FROM_SIZE = 100_000


class ServerExchange:
    """The exchange interface over a :class:`ParameterWindow` (see :mod:`dpsgd.comm.exchange`).

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
    size, initial, row_size : as for :class:`ParameterWindow` (collective)
    """

    synchronous = False
    in_place = False

    def __init__(self, topology, size, *, initial=None, row_size=1):
        one_machine = topology.one_machine()
        self.rank, self.ranks = topology.rank, topology.ranks
        self._topology = topology
        self._window = ParameterWindow(topology.comm, size, initial=initial, row_size=row_size)
        self.size, self.row_size = self._window.size, self._window.row_size
        self._rows_dense = ROWS_SHARE_DENSE if one_machine else np.inf
        self._entries_dense = np.inf
        if one_machine:
            self._entries_dense = ENTRIES_SHARE_DENSE if self.size >= SPARSE_FROM_SIZE else 0.0
        self._flat = None  # the whole vector, for rows moved densely

    def _whole(self):
        if self._flat is None:
            self._flat = np.empty(self.size)
        return self._flat

    def pull(self, out=None):
        return self._window.pull(out)

    def pull_rows(self, rows, out=None):
        if rows.size > self._rows_dense * (self.size // self.row_size):
            flat, version = self._window.pull(self._whole())
            values = flat.reshape(-1, self.row_size)[rows]
            if out is not None:
                out[...] = values
                values = out
            return values, version
        return self._window.pull_rows(rows, out)

    def push(self, change, *, step=0.0, updates=1):
        window = self._window
        if isinstance(change, Rows):
            if change.rows.size > self._rows_dense * (self.size // self.row_size):
                flat = self._whole()
                flat[:] = 0.0
                flat.reshape(-1, self.row_size)[change.rows] = change.values
                return window.push(flat, step=step, updates=updates)
            return window.push_rows(change.rows, change.values, step=step, updates=updates)
        if isinstance(change, Sparse):
            if change.indices.size > self._entries_dense * self.size:
                return window.push(change.dense(self.size), step=step, updates=updates)
            return window.push_sparse(change.indices, change.values, step=step, updates=updates)
        if isinstance(change, Dense):
            return window.push(change.values, step=step, updates=updates)
        raise TypeError(f"cannot push a {type(change).__name__}")

    def skip(self):
        """Nothing to do: no rank waits for another's rounds."""

    def agree_rounds(self, rounds):
        return rounds  # each rank runs its own

    def final(self, out=None):
        """The parameters once every rank's pushes are in (collective)."""
        self._topology.barrier()
        return self._window.pull(out)

    def clock(self):
        return self._window.clock()

    def updates(self):
        return self._window.updates()

    def step_sum(self):
        return self._window.step_sum()

    def ticket(self):
        return self._window.ticket()

    def request_stop(self):
        self._window.request_stop()

    def stop_requested(self):
        return self._window.stop_requested()

    def close(self):
        """Free the window (collective; only on success, see ParameterWindow.__exit__)."""
        self._window.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self._window.__exit__(exc_type, exc, tb)
