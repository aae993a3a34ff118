"""Where a process stands among the ranks, and the few collectives the tasks need.

Tasks never call MPI: they ask a :class:`Topology` for their rank, their share of the
machine's cores and a seed of their own, for the totals and unions that every rank must agree
on before training (the number of rows, the classes), and for the data they hand each other
once (the columns of Async-BCD's blocks). With no communicator each of these is the
one-process answer, so a task has one code path.
"""

import time

from dpsgd._threads import available_threads, effective_n_threads

# rank r's seed is seed + _SEED_STRIDE * r: a prime, so that nearby seeds of nearby ranks
# do not collide for any practical number of ranks
_SEED_STRIDE = 7919


class Topology:
    """The ranks of ``comm`` (an mpi4py communicator), or one process when ``comm`` is None.

    Every method whose docstring says *collective* must be called by every rank, in the
    same order.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None, default=None
        The ranks; None: this process alone.

    Examples
    --------
    >>> from dpsgd.comm import Topology
    >>> one = Topology()
    >>> one.rank, one.ranks, one.distributed
    (0, 1, False)
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.ranks = 1 if comm is None else comm.Get_size()
        self._node_ranks = None

    @property
    def distributed(self):
        return self.comm is not None

    @property
    def virtual(self):
        """The ranks are virtual ranks of one process (:func:`dpsgd.comm.virtual.simulate`)."""
        return getattr(self.comm, "virtual", False)

    def now(self):
        """Seconds on this rank's clock: ``time.perf_counter``, or a virtual rank's simulated clock."""
        return self.comm.now() if self.virtual else time.perf_counter()

    def sleep(self, seconds):
        """Wait ``seconds`` (a virtual rank's clock moves on instead)."""
        if self.virtual:
            self.comm.sleep(seconds)
        else:
            time.sleep(seconds)

    def mpi(self):
        """The module that names MPI's operations (``SUM``, ``MAX``) for this communicator."""
        if self.virtual:
            return self.comm.MPI
        from mpi4py import MPI

        return MPI

    @property
    def is_root(self):
        return self.rank == 0

    def node_ranks(self):
        """How many ranks share this machine (collective on first use)."""
        if self._node_ranks is None:
            if self.comm is None:
                self._node_ranks = 1
            elif self.virtual:  # as the real ranks they stand for: all on this machine
                self._node_ranks = self.ranks
            else:
                from mpi4py import MPI

                node = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
                self._node_ranks = node.Get_size()
                node.Free()
        return self._node_ranks

    def one_machine(self):
        """Whether every rank runs on this machine (collective on first use)."""
        return self.node_ranks() == self.ranks

    def threads(self, requested):
        """Threads for this rank: the user's ``n_threads`` (see
        :func:`dpsgd.effective_n_threads`), never more than the cores, shared with the other
        ranks on this machine (collective on first use). More busy threads than cores
        stalls everything: 2 ranks x 2 threads on 2 cores ran 10x slower than 1 x 1.
        Virtual ranks compute on one thread (their clocks are their threads' CPU time)."""
        if self.virtual:
            return 1
        return max(1, min(effective_n_threads(requested), available_threads() // self.node_ranks()))

    def seed(self, seed):
        """This rank's seed, derived from the run's ``seed``."""
        return int(seed) + _SEED_STRIDE * self.rank

    # --------------------------------------------------------------- collectives
    def total(self, value):
        """The sum of ``value`` over the ranks (collective)."""
        return value if self.comm is None else self.comm.allreduce(value)

    def everyone(self, value):
        """The list of every rank's ``value``, in rank order (collective)."""
        return [value] if self.comm is None else self.comm.allgather(value)

    def all_to_all(self, values):
        """What every rank sent to this one, in rank order, where ``values[q]`` is what this
        rank sends to rank q (collective; ``values`` has one entry per rank)."""
        if len(values) != self.ranks:
            raise ValueError(f"all_to_all needs one value per rank ({self.ranks}), got {len(values)}")
        return list(values) if self.comm is None else self.comm.alltoall(values)

    def to_root(self, value):
        """The list of every rank's ``value`` on rank 0, None elsewhere (collective)."""
        return [value] if self.comm is None else self.comm.gather(value, root=0)

    def from_root(self, value):
        """Rank 0's ``value`` on every rank (collective)."""
        return value if self.comm is None else self.comm.bcast(value, root=0)

    def barrier(self):
        """Wait for every rank (collective)."""
        if self.comm is not None:
            self.comm.Barrier()
