"""Global parameters shared by asynchronous workers.

Interface (both classes):

- ``push(delta, step=0.0, advance=True) -> version``: add ``delta`` to the parameters;
  ``version`` is the global clock before this push (pushes are numbered 0, 1, 2, ...).
  ``step`` is added to a running sum of applied step sizes (for delay-adaptive policies).
  ``advance=False`` writes a correction that is not a step: the clock does not move.
- ``push_sparse(indices, values) -> version``: the same for a sparse delta.
- ``pull(out=None) -> (params, version)``: a copy of the parameters and the clock read just
  before it: every push numbered below ``version`` is in the copy.
- ``ticket()``: a number from a second counter, each one handed out once (a worker reserves
  the index of the global step it is computing before it pushes it).
- ``clock()``, ``step_sum()``, ``close()``; both are context managers.

A worker's delay for a push is ``push(...) - version_of_its_pull``: how many pushes other
workers made between its read and its write.

MPI layout (``ParameterWindow``): the parameters live in a window allocated with
``Win.Allocate`` on rank 0 (or in contiguous blocks over all ranks with
``sharded=True``); the clock (int64), the step sum (float64) and the ticket counter (int64) live in
a second window on rank 0. Both windows stay in one passive-target epoch (``Lock_all``) for their whole life.
Pushes are ``Accumulate(SUM)`` then ``Flush``; pulls are ``Get_accumulate(NO_OP)``, which
MPI makes element-wise atomic with respect to concurrent accumulates (a ``Get`` would
not be); counters are ``Fetch_and_op``. The clock is incremented only after the push's
data is flushed, so a reader that sees version v also sees every push numbered below v.
"""

import threading

import numpy as np


class LocalWindow:
    """The window interface in one process (no MPI): a NumPy buffer and a lock."""

    def __init__(self, size, initial=None):
        self.size = int(size)
        self._params = np.zeros(self.size) if initial is None else np.array(initial, dtype=np.float64)
        if self._params.shape != (self.size,):
            raise ValueError(f"initial has shape {self._params.shape}, expected ({self.size},)")
        self._clock = 0
        self._step_sum = 0.0
        self._tickets = 0
        self._lock = threading.Lock()

    def push(self, delta, step=0.0, advance=True):
        delta = _as_delta(delta, self.size)
        with self._lock:
            self._params += delta
            return self._advance(step) if advance else self._clock

    def push_sparse(self, indices, values, step=0.0):
        indices, values = _as_sparse(indices, values, self.size)
        with self._lock:
            np.add.at(self._params, indices, values)
            return self._advance(step)

    def _advance(self, step):
        version = self._clock
        self._clock += 1
        self._step_sum += float(step)
        return version

    def pull(self, out=None):
        with self._lock:
            version = self._clock
            if out is None:
                return self._params.copy(), version
            out[...] = self._params
            return out, version

    def clock(self):
        return self._clock

    def ticket(self):
        with self._lock:
            self._tickets += 1
            return self._tickets - 1

    def step_sum(self):
        return self._step_sum

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ParameterWindow:
    """Global parameters in an MPI RMA window (see the module docstring).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm
        Every rank of ``comm`` must create the window (collective).
    size : int
        Number of float64 parameters; must be the same on every rank.
    initial : array, optional
        Initial values, taken from rank 0.
    sharded : bool, default=False
        Spread the parameters in contiguous blocks over all ranks instead of
        keeping them on rank 0.
    sparse_method : {'indexed', 'runs'}, default='indexed'
        How ``push_sparse`` writes: one Accumulate with an indexed target datatype,
        or one Accumulate per run of consecutive indices.
    """

    def __init__(self, comm, size, *, initial=None, sharded=False, sparse_method="indexed"):
        from mpi4py import MPI  # the only place dpsgd needs MPI

        self._MPI = MPI
        self.comm = comm
        self.size = int(size)
        if sparse_method not in ("indexed", "runs"):
            raise ValueError("sparse_method must be 'indexed' or 'runs'")
        self.sparse_method = sparse_method
        sizes = comm.allgather(self.size)
        if len(set(sizes)) != 1:
            raise ValueError(f"ranks disagree on the parameter size: {sizes}")
        rank, nranks = comm.Get_rank(), comm.Get_size()
        if sharded:
            self._bounds = np.linspace(0, self.size, nranks + 1).round().astype(np.int64)
        else:
            self._bounds = np.array([0] + [self.size] * nranks, dtype=np.int64)
        self._owners = [r for r in range(nranks) if self._bounds[r + 1] > self._bounds[r]]
        local = int(self._bounds[rank + 1] - self._bounds[rank])
        self._win = MPI.Win.Allocate(local * 8, 8, comm=comm)
        self._counters = MPI.Win.Allocate(24 if rank == 0 else 0, 8, comm=comm)  # clock, step sum, tickets
        if local:
            block = np.frombuffer(self._win.tomemory(), dtype=np.float64)
            start, stop = self._bounds[rank], self._bounds[rank + 1]
            initial_values = comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
            block[:] = 0.0 if initial_values is None else initial_values[start:stop]
        else:
            comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
        if rank == 0:
            np.frombuffer(self._counters.tomemory(), dtype=np.int64)[:] = 0
        comm.Barrier()
        self._win.Lock_all()
        self._counters.Lock_all()
        self._one = np.ones(1, dtype=np.int64)
        self._closed = False

    # ---------------------------------------------------------------- writes
    def push(self, delta, step=0.0, advance=True):
        delta = _as_delta(delta, self.size)
        MPI = self._MPI
        for r in self._owners:
            start, stop = self._bounds[r], self._bounds[r + 1]
            self._win.Accumulate(delta[start:stop], r, op=MPI.SUM)
        for r in self._owners:
            self._win.Flush(r)
        return self._advance(step) if advance else self.clock()

    def push_sparse(self, indices, values, step=0.0):
        indices, values = _as_sparse(indices, values, self.size)
        MPI = self._MPI
        order = np.argsort(indices, kind="stable")
        indices, values = indices[order], values[order]
        cuts = np.searchsorted(indices, self._bounds)
        for r in self._owners:
            lo, hi = cuts[r], cuts[r + 1]
            if lo == hi:
                continue
            local = indices[lo:hi] - self._bounds[r]
            part = np.ascontiguousarray(values[lo:hi])
            if self.sparse_method == "indexed":
                dtype = MPI.DOUBLE.Create_indexed_block(1, local.astype(np.int32).tolist()).Commit()
                self._win.Accumulate(part, r, target=(0, 1, dtype), op=MPI.SUM)
                self._win.Flush(r)
                dtype.Free()
            else:
                breaks = np.flatnonzero(np.diff(local) != 1) + 1
                for a, b in zip(np.r_[0, breaks], np.r_[breaks, local.size]):
                    self._win.Accumulate(part[a:b], r, target=(int(local[a]), int(b - a), MPI.DOUBLE),
                                         op=MPI.SUM)
                self._win.Flush(r)
        return self._advance(step)

    def _advance(self, step):
        """Add ``step`` to the step sum, then take a version number (after the data is flushed)."""
        MPI = self._MPI
        if step:
            self._counters.Accumulate(np.array([float(step)]), 0, target=(1, 1, MPI.DOUBLE), op=MPI.SUM)
        old = np.zeros(1, dtype=np.int64)
        self._counters.Fetch_and_op(self._one, old, 0, 0, MPI.SUM)
        self._counters.Flush(0)
        return int(old[0])

    # ----------------------------------------------------------------- reads
    def pull(self, out=None):
        MPI = self._MPI
        version = self.clock()
        if out is None:
            out = np.empty(self.size)
        elif out.shape != (self.size,) or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous float64 array of shape ({self.size},)")
        for r in self._owners:
            start, stop = self._bounds[r], self._bounds[r + 1]
            block = out[start:stop]
            self._win.Get_accumulate(block, block, r, op=MPI.NO_OP)
        for r in self._owners:
            self._win.Flush(r)
        return out, version

    def clock(self):
        MPI = self._MPI
        old = np.zeros(1, dtype=np.int64)
        self._counters.Fetch_and_op(self._one, old, 0, 0, MPI.NO_OP)
        self._counters.Flush(0)
        return int(old[0])

    def ticket(self):
        MPI = self._MPI
        old = np.zeros(1, dtype=np.int64)
        self._counters.Fetch_and_op(self._one, old, 0, 2, MPI.SUM)
        self._counters.Flush(0)
        return int(old[0])

    def step_sum(self):
        MPI = self._MPI
        value = np.zeros(1)
        self._counters.Get_accumulate(value, value, 0, target=(1, 1, MPI.DOUBLE), op=MPI.NO_OP)
        self._counters.Flush(0)
        return float(value[0])

    # ------------------------------------------------------------- lifetime
    def close(self):
        """End the epochs and free the windows (collective: every rank must call it)."""
        if self._closed:
            return
        self._closed = True
        self._win.Unlock_all()
        self._counters.Unlock_all()
        self._win.Free()
        self._counters.Free()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_window(size, comm=None, **kwargs):
    """A ParameterWindow over ``comm``, or a LocalWindow when ``comm`` is None."""
    if comm is None:
        return LocalWindow(size, initial=kwargs.get("initial"))
    return ParameterWindow(comm, size, **kwargs)


def _as_delta(delta, size):
    delta = np.ascontiguousarray(delta, dtype=np.float64)
    if delta.shape != (size,):
        raise ValueError(f"delta has shape {delta.shape}, expected ({size},)")
    if not np.all(np.isfinite(delta)):
        raise ValueError("delta contains NaN or infinity: refusing to push it")
    return delta


def _as_sparse(indices, values, size):
    indices = np.asarray(indices, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if indices.shape != values.shape:
        raise ValueError("indices and values must have the same length")
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(f"indices outside [0, {size})")
    if np.unique(indices).size != indices.size:
        raise ValueError("indices must be unique")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinity: refusing to push them")
    return indices, values
