"""Virtual ranks: many ranks of the real code in one process, on simulated clocks.

:func:`simulate` runs ``fn(comm)`` once per virtual rank, each in a thread of its own, where
``comm`` is a :class:`VirtualComm`: the part of mpi4py's communicator that dpsgd uses (the
collectives of :class:`~dpsgd.comm.topology.Topology`, ``Allreduce``, ``Allgather``,
``Iallreduce``, a distributed-graph communicator with ``Neighbor_allgather``, and windows:
:func:`dpsgd.comm.window.open_window`). So the estimators, the engine and every exchange run
unchanged, with their own update code, on as many ranks as memory holds; only the MPI calls
underneath are simulated.

A discrete-event simulation, conservative and exact in its order:

- Exactly one virtual rank runs at a time. A rank's clock is its own thread's CPU time
  (``time.thread_time``: what it computed, whatever else runs on the machine) plus the time
  it waited and the network model's delays (:mod:`dpsgd.comm.network` adds them with
  :meth:`VirtualComm.sleep`).
- Every call that touches what ranks share (a window's read or write, a mutex, a collective)
  is an event. At each, the running rank stops, and the rank whose clock is least goes on
  (ties by rank): so shared state changes in the order of the virtual clocks, as it would in
  real time if every rank had a core of its own.
- A collective ends at its last member's arrival, plus each member's share of the CPU time
  its reduction took; a mutex passes to its first waiter when its holder releases it, at the
  holder's clock.
- Virtual ranks compute on one thread each (``Topology.threads`` gives them 1, and BLAS
  pools are limited to 1 thread during the run), so a rank's CPU time is its computing time.

What is not simulated: a transport. A call costs the CPU time of the copies and sums it makes
in NumPy (a virtual 2-rank ``Allreduce`` of 1e5 doubles moves its clock about 190 us, where
MPICH's over shared memory took 121-180 us here), and nothing models contention between
ranks for memory bandwidth or cache lines. Add a network model (``network=`` of the
estimators) for a cluster's links; ``bench/simulate.py`` compares simulated and real 2-rank
runs.
"""

import operator
import threading
import time
from functools import reduce

import numpy as np

__all__ = ["Simulation", "VirtualComm", "simulate"]


class VirtualOps:
    """The reduction operations the virtual collectives take (as ``mpi4py.MPI.SUM`` ...)."""

    SUM, MAX, MIN = "sum", "max", "min"


_REDUCE = {VirtualOps.SUM: operator.add, VirtualOps.MAX: max, VirtualOps.MIN: min}
_REDUCE_ARRAYS = {VirtualOps.SUM: np.add, VirtualOps.MAX: np.maximum, VirtualOps.MIN: np.minimum}


class VirtualAbort(BaseException):
    """Raised in every virtual rank once one has failed (a BaseException, as MPI_Abort's end
    is not an error a rank may catch and go on from)."""


class _Slot:
    """A collective in progress: what each member brought, and when."""

    def __init__(self, name, members):
        self.name, self.members = name, members
        self.values, self.arrived, self.waiting = {}, {}, {}
        self.results, self.done, self.taken = None, None, 0


class Clockwork:
    """The virtual clocks, the turn, the collectives in progress and the windows' mutexes of
    one simulation (module docstring). Every method is called from the thread of the rank
    named, while it holds the turn."""

    def __init__(self, ranks):
        self.ranks = ranks
        self._offset = [0.0] * ranks  # a rank's clock less its thread's CPU time
        self._turn = [threading.Semaphore(0) for _ in range(ranks)]
        self._ready = {}  # rank -> the clock at which it asks to go on
        self._wake = {}  # rank -> the clock it goes on with, once chosen
        self._blocked = {}  # rank -> what it waits for
        self._finished = set()
        self._slots = {}
        self._next_uid = 1
        self.failure = None  # (rank, exception) of the first rank that failed
        self.events = 0
        self.seconds = [0.0] * ranks  # each rank's clock when it finished

    # ------------------------------------------------------------------ clocks
    def now(self, rank):
        return time.thread_time() + self._offset[rank]

    def sleep(self, rank, seconds):
        self._offset[rank] += seconds

    def _set_now(self, rank, seconds):
        self._offset[rank] = seconds - time.thread_time()

    # ------------------------------------------------------------------ the turn
    def start(self):
        """Every rank ready at 0: let the first go (called by the thread that starts them)."""
        self._ready = dict.fromkeys(range(self.ranks), 0.0)
        self._turn[self._choose()].release()

    def enter(self, rank):
        """A rank's thread, first thing: wait for its turn."""
        self._turn[rank].acquire()
        self._check()
        self._set_now(rank, self._wake.pop(rank))

    def sync(self, rank):
        """An event of ``rank`` at its present clock: go on when no rank is behind it."""
        self._ready[rank] = self.now(rank)
        self._pass(rank)

    def _pass(self, rank):
        """Give the turn to the rank that is least far on (maybe ``rank``); return once ``rank``
        has it again, its clock set to when it goes on."""
        self.events += 1
        chosen = self._choose()
        if chosen != rank:
            self._turn[chosen].release()
            self._turn[rank].acquire()
            self._check()
        self._set_now(rank, self._wake.pop(rank))

    def _choose(self):
        if not self._ready:
            stuck = ", ".join(f"rank {r} in {what}" for r, what in sorted(self._blocked.items()))
            self._fail(None, RuntimeError(f"virtual ranks deadlocked: {stuck or 'none left to run'}"))
            self._check()
        chosen = min(self._ready, key=lambda r: (self._ready[r], r))
        self._wake[chosen] = self._ready.pop(chosen)
        return chosen

    def finish(self, rank, exc=None):
        """A rank's thread, last thing: it has returned (or raised ``exc``)."""
        self.seconds[rank] = self.now(rank)
        self._finished.add(rank)
        if exc is not None and not isinstance(exc, VirtualAbort):
            self._fail(rank, exc)
        if self.failure is not None or len(self._finished) == self.ranks:
            return
        try:
            chosen = self._choose()
        except VirtualAbort:  # the others wait for ever: reported, and every rank woken to end
            return
        self._turn[chosen].release()

    def _fail(self, rank, exc):
        if self.failure is None:
            self.failure = (rank, exc)
        for r in range(self.ranks):  # wake everyone: each ends at its next event
            if r not in self._finished:
                self._turn[r].release()

    def _check(self):
        if self.failure is not None:
            raise VirtualAbort(f"virtual rank {self.failure[0]} failed")

    # ------------------------------------------------------------ collectives
    def uid(self):
        self._next_uid += 1
        return self._next_uid

    def arrive(self, rank, key, name, members, value, combine):
        """``rank`` brings ``value`` to collective ``key`` (non-blocking); when every member's
        value is in, ``combine(values)`` (a dict rank -> value) gives the dict of results."""
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(name, members)
        elif slot.name != name:
            self._fail(rank, RuntimeError(f"virtual rank {rank} called {name} where another called {slot.name}: "
                                          f"every rank must call the same collectives in the same order"))
            self._check()
        slot.values[rank], slot.arrived[rank] = value, self.now(rank)
        if len(slot.values) == len(members):
            tic = time.thread_time()
            slot.results = combine(slot.values)
            # the members share the combining, as MPI's reduce-scatter + allgather does: each
            # pays its part (a sum of n vectors here is n - 1 additions; each member of a ring
            # allreduce makes (n - 1) / n of one)
            slot.done = max(slot.arrived.values()) + (time.thread_time() - tic) / len(members)
            slot.values = None
            for waiter, since in slot.waiting.items():
                del self._blocked[waiter]
                self._ready[waiter] = max(slot.done, since)

    def wait(self, rank, key):
        """``rank``'s result of collective ``key``, once every member has arrived."""
        slot = self._slots[key]
        if slot.results is not None:
            self._ready[rank] = max(slot.done, self.now(rank))
        else:
            slot.waiting[rank] = self.now(rank)
            self._blocked[rank] = slot.name
        self._pass(rank)
        result = slot.results[rank]
        slot.taken += 1
        if slot.taken == len(slot.members):
            del self._slots[key]
        return result

    # ------------------------------------------------------------------ mutexes
    def lock(self, rank, mutex):
        """Take ``mutex`` (a list: [holder, waiters...]) at an event, waiting for its release."""
        self.sync(rank)
        if mutex[0] is None:
            mutex[0] = rank
            return
        mutex.append(rank)
        self._blocked[rank] = "a window's mutex"
        self._pass(rank)

    def unlock(self, rank, mutex):
        self.sync(rank)
        if mutex[0] != rank:
            raise RuntimeError(f"virtual rank {rank} released a mutex it does not hold")
        if len(mutex) > 1:  # the first waiter has it from now
            waiter = mutex.pop(1)
            mutex[0] = waiter
            del self._blocked[waiter]
            self._ready[waiter] = self.now(rank)
        else:
            mutex[0] = None


def _combine_reduce(op):
    def combine(values):
        ranks = sorted(values)
        if isinstance(values[ranks[0]], np.ndarray):
            total = reduce(_REDUCE_ARRAYS[op], (values[r] for r in ranks))
        else:
            total = reduce(_REDUCE[op], (values[r] for r in ranks))
        return dict.fromkeys(ranks, total)

    return combine


class VirtualRequest:
    """A non-blocking collective's request: ``Wait()`` as mpi4py's."""

    def __init__(self, comm, key, recv):
        self._comm, self._key, self._recv = comm, key, recv

    def Wait(self):
        comm = self._comm
        self._recv[...] = comm._clockwork.wait(comm._rank, self._key)


class VirtualComm:
    """A virtual rank's communicator: the part of ``mpi4py.MPI.Comm`` dpsgd calls, on the
    simulated clocks of :class:`Clockwork` (module docstring). Made by :func:`simulate`.

    Every collective must be called by every rank of the communicator, in the same order,
    as with MPI; one called out of order fails the simulation, and ranks that wait for each
    other for ever are reported as deadlocked instead of hanging.
    """

    virtual = True
    MPI = VirtualOps  # the operations' names, where mpi4py's module would be asked

    def __init__(self, clockwork, rank, members=None, uid=0, sources=None):
        self._clockwork, self._rank = clockwork, rank
        self._members = tuple(range(clockwork.ranks)) if members is None else members
        self._uid, self._seq = uid, 0
        self._sources = sources  # a graph communicator's in-neighbours

    @property
    def rank(self):
        return self._rank

    @property
    def size(self):
        return len(self._members)

    def Get_rank(self):
        return self._rank

    def Get_size(self):
        return len(self._members)

    def now(self):
        """This rank's virtual clock, in seconds since the simulation began."""
        return self._clockwork.now(self._rank)

    def sleep(self, seconds):
        """Move this rank's clock on by ``seconds`` (a wait that costs no CPU)."""
        self._clockwork.sleep(self._rank, seconds)

    def sync(self):
        """An event: go on once no rank's clock is behind this one's."""
        self._clockwork.sync(self._rank)

    # --------------------------------------------------------------- collectives
    def _collective(self, name, value, combine, wait=True):
        key = (self._uid, self._seq)
        self._seq += 1
        self._clockwork.arrive(self._rank, key, name, self._members, value, combine)
        return self._clockwork.wait(self._rank, key) if wait else key

    def allreduce(self, value, op=VirtualOps.SUM):
        return self._collective("allreduce", value, _combine_reduce(op))

    def allgather(self, value):
        return self._collective("allgather", value, lambda v: {key: [v[r] for r in sorted(v)] for key in v})

    def alltoall(self, values):
        if len(values) != self.size:
            raise ValueError(f"alltoall needs one value per rank ({self.size}), got {len(values)}")
        return self._collective("alltoall", list(values),
                                lambda v: {q: [v[r][q] for r in sorted(v)] for q in v})

    def gather(self, value, root=0):
        return self._collective("gather", value,
                                lambda v: {r: ([v[q] for q in sorted(v)] if r == root else None) for r in v})

    def bcast(self, value, root=0):
        return self._collective("bcast", value, lambda v: dict.fromkeys(v, v[root]))

    def Barrier(self):
        self._collective("barrier", None, lambda v: dict.fromkeys(v))

    barrier = Barrier

    def Allreduce(self, send, recv, op=VirtualOps.SUM):
        recv[...] = self._collective("Allreduce", np.array(send, dtype=np.float64), _combine_reduce(op))

    def Iallreduce(self, send, recv, op=VirtualOps.SUM):
        key = self._collective("Allreduce", np.array(send, dtype=np.float64), _combine_reduce(op), wait=False)
        return VirtualRequest(self, key, recv)

    def Allgather(self, send, recv):
        gathered = self._collective("Allgather", np.array(send),
                                    lambda v: dict.fromkeys(v, np.stack([v[r] for r in sorted(v)])))
        recv[...] = gathered.reshape(recv.shape)

    def Create_dist_graph_adjacent(self, sources, destinations, reorder=False):
        """A graph communicator over the same ranks where this one receives from ``sources``
        (the destinations are only checked to mirror the sources, as every rank names both)."""
        edges = self._collective("Create_dist_graph_adjacent", (list(sources), list(destinations)),
                                 lambda v: dict.fromkeys(v, (self._clockwork.uid(), v)))
        uid, every = edges
        sent = sorted((r, d) for r, (_, dests) in every.items() for d in dests)
        received = sorted((s, r) for r, (srcs, _) in every.items() for s in srcs)
        if sent != received:
            raise ValueError("the graph's sources and destinations do not match across the ranks")
        return VirtualComm(self._clockwork, self._rank, self._members, uid, tuple(sources))

    def Neighbor_allgather(self, send, recv):
        if self._sources is None:
            raise ValueError("Neighbor_allgather needs a graph communicator (Create_dist_graph_adjacent)")

        def combine(v):  # each rank gets its in-neighbours' sends, in its sources' order
            return {r: [v[s][0] for s in sources] for r, (_, sources) in v.items()}

        rows = self._collective("Neighbor_allgather", (np.array(send), self._sources), combine)
        for row, values in zip(recv.reshape(len(rows), -1) if rows else (), rows):
            row[...] = values.reshape(-1)

    def Free(self):
        pass

    # ------------------------------------------------------------------ windows
    def window(self, size, *, initial=None, row_size=1, mutexes=1):
        """A shared window of ``size`` parameters (collective): :class:`VirtualWindow`."""
        from dpsgd.comm.window import LocalWindow

        def make(values):
            start = values[self._members[0]]
            shared = LocalWindow(size, initial=start, row_size=row_size)
            locks = [[None] for _ in range(int(mutexes))]
            return dict.fromkeys(values, (shared, locks))

        shared, locks = self._collective("window", None if initial is None else np.array(initial, np.float64),
                                         make)
        return VirtualWindow(self, shared, locks)


class VirtualWindow:
    """A window shared by the virtual ranks: :class:`~dpsgd.comm.window.ParameterWindow`'s
    methods, each an event (:meth:`Clockwork.sync`) on one :class:`~dpsgd.comm.window.LocalWindow`
    that holds the parameters and the counters, with mutexes that make a rank wait in virtual
    time. What a call copies costs the caller its CPU time, as the copies of a shared-memory
    window would."""

    def __init__(self, comm, shared, locks):
        self._comm, self._shared, self._locks = comm, shared, locks
        self.size, self.row_size = shared.size, shared.row_size

    def _event(name):
        def call(self, *args, **kwargs):
            self._comm.sync()
            return getattr(self._shared, name)(*args, **kwargs)

        call.__name__ = name
        call.__doc__ = f"LocalWindow.{name}, at this rank's turn."
        return call

    push = _event("push")
    push_sparse = _event("push_sparse")
    push_rows = _event("push_rows")
    advance = _event("advance")
    pull = _event("pull")
    pull_rows = _event("pull_rows")
    publish_read = _event("publish_read")
    retire_read = _event("retire_read")
    oldest_read = _event("oldest_read")
    request_stop = _event("request_stop")
    stop_requested = _event("stop_requested")
    clock = _event("clock")
    ticket = _event("ticket")
    ticket_below = _event("ticket_below")
    step_sum = _event("step_sum")
    updates = _event("updates")
    del _event

    def lock(self, which=0):
        """Take mutex ``which``, waiting (in virtual time) while another rank holds it."""
        comm = self._comm
        comm._clockwork.lock(comm.rank, self._locks[which])

    def unlock(self, which=0):
        comm = self._comm
        comm._clockwork.unlock(comm.rank, self._locks[which])

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Simulation:
    """What :func:`simulate` returns.

    Attributes
    ----------
    results : list
        What ``fn`` returned on each virtual rank, in rank order.
    seconds : list of float
        Each rank's virtual clock when ``fn`` returned.
    events : int
        Events simulated (calls on shared state and collectives).
    wall_seconds : float
        The real time the simulation took.
    """

    def __init__(self, results, seconds, events, wall_seconds):
        self.results, self.seconds, self.events, self.wall_seconds = results, seconds, events, wall_seconds

    def __repr__(self):
        return (f"Simulation(ranks={len(self.results)}, seconds={max(self.seconds):.4g}, events={self.events}, "
                f"wall_seconds={self.wall_seconds:.3g})")


def simulate(fn, ranks, *args, **kwargs):
    """Run ``fn(comm, *args, **kwargs)`` on ``ranks`` virtual ranks of one process (module docstring).

    ``fn`` is what each rank of an ``mpiexec`` job would run, with ``comm`` in place of
    ``MPI.COMM_WORLD``: pass it to the estimators' ``comm=`` and they train across the
    virtual ranks with the exchange, compression and network model they are given. Timing
    inside ``fn`` reads ``comm.now()``, the rank's virtual clock.

    Parameters
    ----------
    fn : callable
        ``fn(comm, *args, **kwargs)``; its return value is kept.
    ranks : int >= 1
        Virtual ranks.
    *args, **kwargs
        Passed to ``fn``.

    Returns
    -------
    Simulation
        Each rank's result and final virtual clock.

    Raises
    ------
    RuntimeError
        When a rank raised (chained to its exception) or the ranks deadlocked.

    Examples
    --------
    Two virtual ranks sum their ranks; rank 1 waits 5 ms (say, a slow link) before it joins:

    >>> from dpsgd.comm.virtual import simulate
    >>> def fn(comm):
    ...     if comm.rank == 1:
    ...         comm.sleep(0.005)
    ...     return comm.allreduce(comm.rank), comm.now() >= 0.005
    >>> simulate(fn, 2).results
    [(1, True), (1, True)]
    """
    if isinstance(ranks, bool) or not isinstance(ranks, (int, np.integer)) or ranks < 1:
        raise ValueError(f"ranks must be an int >= 1, got {ranks!r}")
    from threadpoolctl import threadpool_limits

    clockwork = Clockwork(int(ranks))
    results = [None] * clockwork.ranks

    def body(rank):
        exc = None
        try:
            clockwork.enter(rank)
            results[rank] = fn(VirtualComm(clockwork, rank), *args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - every failure ends every rank
            exc = error
        clockwork.finish(rank, exc)

    tic = time.perf_counter()
    threads = [threading.Thread(target=body, args=(r,), name=f"virtual-rank-{r}", daemon=True)
               for r in range(clockwork.ranks)]
    with threadpool_limits(1):  # a virtual rank computes on one thread: its CPU time is its time
        for thread in threads:
            thread.start()
        clockwork.start()
        for thread in threads:
            thread.join()
    if clockwork.failure is not None:
        rank, exc = clockwork.failure
        where = "the virtual ranks" if rank is None else f"virtual rank {rank}"
        raise RuntimeError(f"{where} failed: {exc}") from exc
    return Simulation(results, clockwork.seconds, clockwork.events, time.perf_counter() - tic)
