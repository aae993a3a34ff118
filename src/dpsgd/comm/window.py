"""Global parameters shared by asynchronous workers.

Interface (both classes):

- ``push(delta, step=0.0, updates=1) -> version``: add ``delta`` to the parameters;
  ``version`` is the global clock before this push (pushes are numbered 0, 1, 2, ...).
  ``step`` is added to a running sum of applied step sizes (for delay-adaptive policies),
  ``updates`` (the optimisation steps the push carries) to a count of updates (for a global
  budget).
- ``push_sparse(indices, values) -> version``: the same for a sparse delta.
- ``push_rows(rows, values) -> version`` and ``pull_rows(rows) -> (values, version)``: the
  parameters seen as a matrix of rows of ``row_size`` (set at creation), e.g. LDA's
  word-major topics, where a minibatch touches only its words' rows.
- ``pull(out=None) -> (params, version)``: a copy of the parameters and the clock read just
  before it: every push numbered below ``version`` is in the copy.
- ``ticket()``: a number from a second counter, each one handed out once (a worker reserves
  the index of the global step it is computing before it pushes it).
- ``request_stop()`` / ``stop_requested()``: a flag any worker can raise and every
  worker reads (a global budget of updates or seconds, or an early stop).
- ``lock()`` / ``unlock()`` (``ParameterWindow``: ``lock(which)``, one of ``mutexes``): a
  mutex every worker shares, for a read-modify-write of the
  parameters that must not interleave with another's (PIAG's master step, taken by the
  worker that pushes: :mod:`dpsgd.tasks.piag`); pushes and pulls do not take it.
- ``publish_read()`` / ``retire_read()`` / ``oldest_read()``: each worker's read in flight
  (the clock and the step sum when it began reading), so that a worker can see the oldest
  read any worker still computes from: the delay the step policies are given
  (:func:`dpsgd.engine.run`, PAPERS.md 9.1).
- ``clock()``, ``step_sum()``, ``updates()``, ``close()``; both are context managers.

A worker's delay for a push is ``push(...) - version_of_its_pull``: how many pushes other
workers made between its read and its write.

MPI layout (``ParameterWindow``): the parameters live in a window allocated with
``Win.Allocate`` on rank 0 (or in contiguous blocks over all ranks with
``sharded=True``, in whole rows); the clock, the stop flag and the ticket counter (int64)
and the step sum and the update count (float64) live in a second window on rank 0. Both windows stay in one
passive-target epoch (``Lock_all``) for their whole life.
Pushes are ``Accumulate(SUM)`` then ``Flush``; pulls are ``Get_accumulate(NO_OP)``, which
MPI makes element-wise atomic with respect to concurrent accumulates (a ``Get`` would
not be); counters are ``Fetch_and_op``. The clock is incremented only after the push's
data is flushed, so a reader that sees version v also sees every push numbered below v.
The counters window also holds the mutex cell and each rank's read in flight (two float64).
"""

import threading
import time

import numpy as np

# the cells of the counters window (8 bytes each, on rank 0)
# the step sum and the count of updates are float64 side by side (one Accumulate adds both;
# a float64 counts updates exactly up to 2**53)
# then, from cell _READS, two float64 per rank: the clock and the step sum when its read in
# flight began (+inf while it has none), after the step sum so that one read gets them all
_CLOCK, _STOP, _TICKETS, _MUTEX, _STEP_SUM, _UPDATES, _READS = 0, 1, 2, 3, 4, 5, 6

# a worker waiting for the mutex yields its core for the first tries, then sleeps this long
# between tries: the holder may be a rank sharing the core (more ranks than cores)
_MUTEX_YIELDS = 8
_MUTEX_SLEEP = 50e-6


class LocalWindow:
    """The window interface in one process (no MPI): a NumPy buffer and a lock.

    It has :class:`ParameterWindow`'s methods, so the exchanges and their tests run without
    MPI.

    Parameters
    ----------
    size : int
        The number of parameters.
    initial : array-like of shape (size,), optional
        Their first values; zeros by default.
    row_size : int, default=1
        The length of a row, for the row pushes and pulls; divides ``size``.
    copy : bool, default=True
        Hold a copy of ``initial``; False holds ``initial`` itself when it is a writeable,
        contiguous float64 array (the pushes then write it).

    Raises
    ------
    ValueError
        When ``initial`` does not have ``size`` values, or ``row_size`` does not divide it.

    Examples
    --------
    >>> from dpsgd.comm import LocalWindow
    >>> window = LocalWindow(3)
    >>> window.push([1.0, 2.0, 3.0])  # the push's number on the clock
    0
    >>> params, clock = window.pull()
    >>> params.tolist(), clock
    ([1.0, 2.0, 3.0], 1)
    """

    def __init__(self, size, initial=None, row_size=1, copy=True):
        self.size = int(size)
        self.row_size = _check_row_size(self.size, row_size)
        if initial is None:
            self._params = np.zeros(self.size)
        elif copy or not (isinstance(initial, np.ndarray) and initial.flags.writeable and initial.flags.c_contiguous):
            self._params = np.array(initial, dtype=np.float64)
        else:
            self._params = np.asarray(initial, dtype=np.float64)
        if self._params.shape != (self.size,):
            raise ValueError(f"initial has shape {self._params.shape}, expected ({self.size},)")
        self._clock = 0
        self._step_sum = 0.0
        self._updates = 0
        self._tickets = 0
        self._stop = False
        self._lock = threading.Lock()
        self._mutex = threading.Lock()
        self._reads = {}  # thread -> (clock, step sum) when its read in flight began

    def push(self, delta, step=0.0, updates=1):
        delta = _as_delta(delta, self.size)
        with self._lock:
            self._params += delta
            return self._advance(step, updates)

    def push_sparse(self, indices, values, step=0.0, updates=1):
        indices, values = _as_sparse(indices, values, self.size)
        with self._lock:
            np.add.at(self._params, indices, values)
            return self._advance(step, updates)

    def push_rows(self, rows, values, step=0.0, updates=1):
        rows, values = _as_rows(rows, values, self.size // self.row_size, self.row_size)
        with self._lock:
            self._params.reshape(-1, self.row_size)[rows] += values
            return self._advance(step, updates)

    def advance(self, step=0.0, updates=1):
        """Count a push whose change is already in the parameters (see :meth:`buffer`)."""
        with self._lock:
            return self._advance(step, updates)

    def buffer(self):
        """The parameters themselves, not a copy: for a single process whose local steps
        write them in place (:class:`dpsgd.comm.local.LocalExchange`)."""
        return self._params

    def pull_rows(self, rows, out=None):
        rows, out = _rows_out(rows, out, self.size // self.row_size, self.row_size)
        with self._lock:
            out[...] = self._params.reshape(-1, self.row_size)[rows]
            return out, self._clock

    def lock(self):
        self._mutex.acquire()

    def unlock(self):
        self._mutex.release()

    def publish_read(self):
        """Record that the calling thread begins a read; returns (clock, step sum) then."""
        with self._lock:
            read = self._reads[threading.get_ident()] = (self._clock, self._step_sum)
            return read

    def retire_read(self):
        """The calling thread's read is no longer in flight (its update is applied)."""
        with self._lock:
            self._reads.pop(threading.get_ident(), None)

    def oldest_read(self):
        """``(clock, oldest clock, oldest step sum, step sum)``: the present clock and step sum
        with the oldest read in flight's (the present ones when none is)."""
        with self._lock:
            reads = self._reads.values()
            if not reads:
                return self._clock, self._clock, self._step_sum, self._step_sum
            return self._clock, min(c for c, _ in reads), min(s for _, s in reads), self._step_sum

    def request_stop(self):
        self._stop = True

    def stop_requested(self):
        return self._stop

    def _advance(self, step, updates):
        version = self._clock
        self._clock += 1
        self._step_sum += float(step)
        self._updates += int(updates)
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
        return self.ticket_below()

    def ticket_below(self, limit=None):
        with self._lock:
            if limit is not None and self._tickets >= limit:
                return None
            self._tickets += 1
            return self._tickets - 1

    def step_sum(self):
        return self._step_sum

    def updates(self):
        return self._updates

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
    row_size : int, default=1
        Length of a row for ``push_rows`` / ``pull_rows``; must divide ``size``. Shards
        hold whole rows.
    mutexes : int, default=1
        Mutexes for ``lock(which)`` / ``unlock(which)`` (asynchronous gossip locks a pair of
        ranks' copies with one each).

    Examples
    --------
    Under ``mpiexec -n 2``: rank 1 pushes a change, and every rank pulls the sum with the
    clock read before it (:class:`LocalWindow` shows the same interface in one process):

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.comm import ParameterWindow
    >>> window = ParameterWindow(MPI.COMM_WORLD, 1000)  # doctest: +SKIP
    >>> if MPI.COMM_WORLD.rank == 1:  # doctest: +SKIP
    ...     window.push(np.ones(1000), step=0.1)
    >>> params, clock = window.pull()  # doctest: +SKIP
    """

    def __init__(self, comm, size, *, initial=None, sharded=False, sparse_method="indexed", row_size=1,
                 mutexes=1):
        from mpi4py import MPI  # the only place dpsgd needs MPI

        self._MPI = MPI
        self.comm = comm
        self.size = int(size)
        if sparse_method not in ("indexed", "runs"):
            raise ValueError("sparse_method must be 'indexed' or 'runs'")
        self.sparse_method = sparse_method
        self.row_size = _check_row_size(self.size, row_size)
        sizes = comm.allgather((self.size, self.row_size))
        if len(set(sizes)) != 1:
            raise ValueError(f"ranks disagree on the parameter size (size, row_size): {sizes}")
        rank, nranks = comm.Get_rank(), comm.Get_size()
        if sharded:
            rows = self.size // self.row_size
            self._bounds = np.linspace(0, rows, nranks + 1).round().astype(np.int64) * self.row_size
        else:
            self._bounds = np.array([0] + [self.size] * nranks, dtype=np.int64)
        self._owners = [r for r in range(nranks) if self._bounds[r + 1] > self._bounds[r]]
        local = int(self._bounds[rank + 1] - self._bounds[rank])
        self._win = MPI.Win.Allocate(local * 8, 8, comm=comm)
        self._rank, self._n_reads = rank, nranks
        if int(mutexes) < 1:
            raise ValueError(f"mutexes must be >= 1, got {mutexes}")
        # mutex 0 is the cell _MUTEX, the others follow the reads
        self._mutex_cells = [_MUTEX] + [_READS + 2 * nranks + m for m in range(int(mutexes) - 1)]
        cells = _READS + 2 * nranks + int(mutexes) - 1
        self._counters = MPI.Win.Allocate(8 * cells if rank == 0 else 0, 8, comm=comm)  # _CLOCK ...
        if local:
            block = np.frombuffer(self._win.tomemory(), dtype=np.float64)
            start, stop = self._bounds[rank], self._bounds[rank + 1]
            initial_values = comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
            block[:] = 0.0 if initial_values is None else initial_values[start:stop]
        else:
            comm.bcast(None if initial is None else np.asarray(initial, np.float64), root=0)
        if rank == 0:
            np.frombuffer(self._counters.tomemory(), dtype=np.int64)[:_READS] = 0
            np.frombuffer(self._counters.tomemory(), dtype=np.float64)[_READS:_READS + 2 * nranks] = np.inf
            np.frombuffer(self._counters.tomemory(), dtype=np.int64)[_READS + 2 * nranks:] = 0
        comm.Barrier()
        self._win.Lock_all()
        self._counters.Lock_all()
        self._one = np.ones(1, dtype=np.int64)
        self._read_cells = np.empty(_READS - _STEP_SUM + 2 * nranks)  # oldest_read's buffer
        self._step_after_clock = False  # see _advance
        self._tickets_seen = 0  # ticket_below's first guess
        self._closed = False

    # ---------------------------------------------------------------- writes
    def push(self, delta, step=0.0, updates=1):
        delta = _as_delta(delta, self.size)
        MPI = self._MPI
        for r in self._owners:
            start, stop = self._bounds[r], self._bounds[r + 1]
            self._win.Accumulate(delta[start:stop], r, op=MPI.SUM)
        for r in self._owners:
            self._win.Flush(r)
        return self._advance(step, updates)

    def push_sparse(self, indices, values, step=0.0, updates=1):
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
                self._indexed(r, local, 1, part, MPI.SUM)
            else:
                breaks = np.flatnonzero(np.diff(local) != 1) + 1
                for a, b in zip(np.r_[0, breaks], np.r_[breaks, local.size]):
                    self._win.Accumulate(part[a:b], r, target=(int(local[a]), int(b - a), MPI.DOUBLE),
                                         op=MPI.SUM)
                self._win.Flush(r)
        return self._advance(step, updates)

    def push_rows(self, rows, values, step=0.0, updates=1):
        rows, values = _as_rows(rows, values, self.size // self.row_size, self.row_size)
        self._rows(rows, values, self._MPI.SUM)
        return self._advance(step, updates)

    def _rows(self, rows, values, op):
        """Accumulate ``values`` into (op SUM) or read them from (op NO_OP) the given rows:
        one indexed-block Accumulate or Get_accumulate per owning rank."""
        cuts = np.searchsorted(rows * self.row_size, self._bounds)
        for r in self._owners:
            lo, hi = cuts[r], cuts[r + 1]
            if lo < hi:
                local = rows[lo:hi] * self.row_size - self._bounds[r]
                self._indexed(r, local, self.row_size, values[lo:hi], op)

    def _indexed(self, r, displacements, block, values, op):
        """One RMA call on rank r's block with an indexed target datatype (``block``
        doubles at each displacement); flushed before the datatype is freed."""
        MPI = self._MPI
        dtype = MPI.DOUBLE.Create_indexed_block(block, displacements.astype(np.int32).tolist()).Commit()
        try:
            if op == MPI.NO_OP:
                self._win.Get_accumulate(values, values, r, target=(0, 1, dtype), op=op)
            else:
                self._win.Accumulate(values, r, target=(0, 1, dtype), op=op)
            self._win.Flush(r)
        finally:
            dtype.Free()

    def _advance(self, step, updates):
        """Add ``step`` to the step sum and ``updates`` to their count, and take a version
        number (after the data is flushed). Once this rank publishes its reads, the version
        first and the step after it, in two flushes (:meth:`publish_read` relies on it);
        before, both in one flush."""
        MPI = self._MPI
        if not (step or updates):
            return self._counter(_CLOCK, MPI.SUM)
        counts = np.array([float(step), float(updates)])
        if self._step_after_clock:
            version = self._counter(_CLOCK, MPI.SUM)
            self._counters.Accumulate(counts, 0, target=(_STEP_SUM, 2, MPI.DOUBLE), op=MPI.SUM)
            self._counters.Flush(0)
            return version
        self._counters.Accumulate(counts, 0, target=(_STEP_SUM, 2, MPI.DOUBLE), op=MPI.SUM)
        return self._counter(_CLOCK, MPI.SUM)

    def _counter(self, cell, op, value=1):
        """Fetch_and_op of ``value`` on an int64 counter cell of rank 0; returns the old value."""
        old = np.zeros(1, dtype=np.int64)
        self._counters.Fetch_and_op(self._one if value == 1 else np.array([value], dtype=np.int64), old, 0, cell, op)
        self._counters.Flush(0)
        return int(old[0])

    def lock(self, which=0):
        """Take mutex ``which``: a compare-and-swap of its cell on rank 0 from 0 to 1, retried
        (yielding, then sleeping) until it succeeds."""
        cell = self._mutex_cells[which]
        zero, result = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        tries = 0
        while True:
            self._counters.Compare_and_swap(self._one, zero, result, 0, cell)
            self._counters.Flush(0)
            if result[0] == 0:
                return
            tries += 1
            time.sleep(0 if tries <= _MUTEX_YIELDS else _MUTEX_SLEEP)

    def unlock(self, which=0):
        """Release mutex ``which``; the holder's pushes were flushed before (they complete in
        :meth:`push`), so the next holder's pulls see them."""
        self._counter(self._mutex_cells[which], self._MPI.REPLACE, value=0)

    def publish_read(self):
        """Publish that this rank begins a read, in its read cells, before the read itself:
        the clock c and the step sum s. Published again if the clock moved before the cells
        were written; so s holds no step of a push numbered c or later (a push of a rank that
        publishes adds its step after it moves the clock: every rank of a run publishes before
        its first push) and may lack some of the earlier ones': the steps since,
        S - s, are never fewer than those of the pushes from c on. And every push numbered
        after c sees the cells (the engine's pushes with a step policy are serialised by the
        mutex), so the oldest read's clock grows by at most one a push. Returns (c, s); the
        next call replaces them."""
        MPI = self._MPI
        self._step_after_clock = True  # every rank of a run publishes before its first push
        read, step = np.zeros(1, dtype=np.int64), np.zeros(1)
        while True:
            # the clock and the step sum in one flush: in either order, a push counted in the
            # step sum and not in the clock moves the clock before the check below
            self._counters.Fetch_and_op(read, read, 0, _CLOCK, MPI.NO_OP)
            self._counters.Get_accumulate(step, step, 0, target=(_STEP_SUM, 1, MPI.DOUBLE), op=MPI.NO_OP)
            self._counters.Flush(0)
            clock, steps = int(read[0]), float(step[0])
            self._set_read(np.array([float(clock), steps]))
            if self.clock() == clock:
                return clock, steps

    def retire_read(self):
        """This rank's read is no longer in flight."""
        self._set_read(np.array([np.inf, np.inf]))

    def _set_read(self, cells):
        MPI = self._MPI
        self._counters.Accumulate(cells, 0, target=(_READS + 2 * self._rank, 2, MPI.DOUBLE), op=MPI.REPLACE)
        self._counters.Flush(0)

    def oldest_read(self):
        """``(clock, oldest clock, oldest step sum, step sum)``: the present clock and step sum
        with the oldest read any rank has in flight (the smallest of each published: the same
        read's, as both grow with time; the present ones when no rank has one), read together
        (one flush)."""
        MPI = self._MPI
        cells, clock = self._read_cells, np.zeros(1, dtype=np.int64)
        self._counters.Fetch_and_op(clock, clock, 0, _CLOCK, MPI.NO_OP)
        self._counters.Get_accumulate(cells, cells, 0, target=(_STEP_SUM, cells.size, MPI.DOUBLE), op=MPI.NO_OP)
        self._counters.Flush(0)
        values = cells.tolist()  # a few values: Python's min is faster than NumPy's calls
        steps, reads = values[0], values[_READS - _STEP_SUM:]
        oldest = min(reads[0::2])
        if oldest == np.inf:
            return int(clock[0]), int(clock[0]), steps, steps
        return int(clock[0]), int(oldest), min(reads[1::2]), steps

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

    def pull_rows(self, rows, out=None):
        rows, out = _rows_out(rows, out, self.size // self.row_size, self.row_size)
        version = self.clock()
        self._rows(rows, out, self._MPI.NO_OP)
        return out, version

    def clock(self):
        return self._counter(_CLOCK, self._MPI.NO_OP)

    def ticket(self):
        return self._counter(_TICKETS, self._MPI.SUM)

    def ticket_below(self, limit=None):
        """The next ticket, unless ``limit`` (None: no limit) were drawn: then None, and the
        count stays (so the tickets drawn are 0, 1, ... with no gap). A compare-and-swap of
        the count, retried while other ranks draw. A run draws all its tickets this way: with
        MPI's default ``accumulate_ops`` (``same_op_no_op``) concurrent atomics on one cell
        are atomic only among one operation and ``MPI_NO_OP``. The first guess is the count
        after this rank's last ticket (it only grows), so an uncontended draw is one swap."""
        expected, new, found = (np.array([self._tickets_seen], dtype=np.int64), np.zeros(1, dtype=np.int64),
                                np.zeros(1, dtype=np.int64))
        while limit is None or expected[0] < limit:
            new[0] = expected[0] + 1
            self._counters.Compare_and_swap(new, expected, found, 0, _TICKETS)
            self._counters.Flush(0)
            if found[0] == expected[0]:
                self._tickets_seen = int(new[0])
                return int(expected[0])
            expected[0] = found[0]
        self._tickets_seen = int(expected[0])
        return None

    def updates(self):
        return int(self._double(_UPDATES))

    def request_stop(self):
        self._counter(_STOP, self._MPI.REPLACE)

    def stop_requested(self):
        return self._counter(_STOP, self._MPI.NO_OP) != 0

    def step_sum(self):
        return self._double(_STEP_SUM)

    def _double(self, cell):
        """The float64 counter in ``cell`` of rank 0 (an atomic read)."""
        MPI = self._MPI
        value = np.zeros(1)
        self._counters.Get_accumulate(value, value, 0, target=(cell, 1, MPI.DOUBLE), op=MPI.NO_OP)
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

    def __exit__(self, exc_type, exc, tb):
        # Freeing is collective: a rank leaving with an exception would wait there for
        # ranks that are waiting for it elsewhere. Leave the window to MPI_Abort
        # (dpsgd.comm.failure), which ends every rank; free it together only on success.
        if exc_type is None:
            self.close()
        else:
            self._closed = True


def open_window(comm, size, *, initial=None, sharded=False, row_size=1, mutexes=1):
    """A :class:`ParameterWindow` over ``comm`` (collective), or, over the virtual ranks of
    :func:`dpsgd.comm.virtual.simulate`, their shared window (where sharding changes nothing).

    Parameters are :class:`ParameterWindow`'s.

    Returns
    -------
    ParameterWindow or dpsgd.comm.virtual.VirtualWindow
    """
    if getattr(comm, "virtual", False):
        return comm.window(size, initial=initial, row_size=row_size, mutexes=mutexes)
    return ParameterWindow(comm, size, initial=initial, sharded=sharded, row_size=row_size, mutexes=mutexes)


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


def _check_row_size(size, row_size):
    row_size = int(row_size)
    if row_size < 1 or size % row_size:
        raise ValueError(f"row_size must be a positive divisor of size {size}, got {row_size}")
    return row_size


def _check_rows(rows, n_rows):
    rows = np.asarray(rows, dtype=np.int64).ravel()
    if rows.size and (rows[0] < 0 or rows[-1] >= n_rows):
        raise ValueError(f"rows outside [0, {n_rows})")
    if np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be strictly increasing")
    return rows


def _as_rows(rows, values, n_rows, row_size):
    rows = _check_rows(rows, n_rows)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.shape != (rows.size, row_size):
        raise ValueError(f"values has shape {values.shape}, expected ({rows.size}, {row_size})")
    if not np.all(np.isfinite(values)):
        raise ValueError("values contain NaN or infinity: refusing to push them")
    return rows, values


def _rows_out(rows, out, n_rows, row_size):
    rows = _check_rows(rows, n_rows)
    if out is None:
        return rows, np.empty((rows.size, row_size))
    if out.shape != (rows.size, row_size) or out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a contiguous float64 array of shape ({rows.size}, {row_size})")
    return rows, out
