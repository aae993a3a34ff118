"""Decentralised averaging (D-PSGD): each rank averages only with its neighbours in a graph.

Lian et al. (2017) replace the parameter server's global model by one model per rank: after
its local steps a rank averages its parameters with those of its graph neighbours, weighted
by a doubly stochastic matrix W, so the ranks' average moves exactly as synchronous SGD's
model would while no rank talks to more than a few others. dpsgd takes the order BlueFog's
``neighbor_allreduce`` takes after an optimiser step ("adapt, then combine"): a round's change
is added to the rank's own parameters, then ``x_i <- sum_j W_ij x_j`` over its in-neighbours
and itself, each weighted ``1 / (degree + 1)`` (the graphs are regular, so W is doubly
stochastic and the average over the ranks is kept, up to rounding).

Graphs: ``"exponential"`` (rank i sends to i + 1, i + 2, i + 4, ... mod n: BlueFog's default,
log2(n) neighbours, a spectral gap that shrinks slowly with n) and ``"ring"`` (i - 1 and
i + 1). The averaging is one ``MPI_Neighbor_allgather`` on a distributed-graph communicator;
the round's counts (the global budget's updates, the step sum, the stop flag) travel in one
small non-blocking ``MPI_Iallreduce`` beside it, so that every rank leaves after the same
round, as with allreduce. ``final`` is the ranks' average (one ``MPI_Allreduce``), which every
rank then holds; :attr:`GossipExchange.consensus_distance` says how far apart the ranks were
before it.

``compression="natural"``: a rank's parameters cannot travel compressed themselves, because
natural compression's error is relative to the value sent and would not shrink as training
converges. So, as in CHOCO-gossip (Koloskova et al. 2019), every rank keeps public copies
``y_j`` of its in-neighbours' parameters and of its own, the same on every rank that holds
them. A round sends ``q_i = C(x_i - y_i)`` (2-byte codes), every holder adds the decoded
``q_i`` to ``y_i``, and ``x_i <- x_i + sum_j W_ij (y_j - y_i)``. Without compression this is
exactly D-PSGD's ``sum_j W_ij x_j``; with it, what travels shrinks as the ranks agree. The sum of
the ranks' parameters is kept exactly (W's columns sum to 1 as its rows do), up to rounding.
"""

import numpy as np

from dpsgd._kernels import natural
from dpsgd.comm.allreduce import _SEED_STRIDE, ReplicaExchange
from dpsgd.comm.exchange import GRAPHS, check_compression


def neighbours(graph, rank, ranks):
    """(in-neighbours, out-neighbours) of ``rank`` in ``graph`` over ``ranks`` ranks: distinct,
    never the rank itself, as many in as out (a regular graph)."""
    if graph not in GRAPHS:
        raise ValueError(f"graph must be one of {list(GRAPHS)}, got {graph!r}")
    if graph == "ring":
        offsets = [1, ranks - 1]
    else:
        offsets = [1 << j for j in range(max(ranks - 1, 1).bit_length()) if (1 << j) < ranks]
    offsets = sorted({o % ranks for o in offsets} - {0})
    return [(rank - o) % ranks for o in offsets], [(rank + o) % ranks for o in offsets]


class GossipExchange(ReplicaExchange):
    """The exchange interface (see :mod:`dpsgd.comm.exchange`) by neighbour averaging.

    Parameters
    ----------
    topology : dpsgd.comm.topology.Topology
        The ranks (collective: every rank constructs it and takes part in every round).
    size : int
        The number of parameters.
    initial : array-like of shape (size,), optional
        Rank 0's initial parameters: every rank starts from them.
    row_size : int, default=1
        The length of a row, for problems whose parameters are rows.
    graph : {'exponential', 'ring'}, default='exponential'
        Where a rank's neighbours are (:func:`neighbours`).
    compression : {None, 'natural'}, default=None
        What the changes travel as.

    Examples
    --------
    Under ``mpiexec``, as the estimators' ``exchange="gossip"`` opens it:

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.comm import Topology, open_exchange
    >>> exchange = open_exchange("gossip", Topology(MPI.COMM_WORLD), 1000)  # doctest: +SKIP
    """

    def __init__(self, topology, size, *, initial=None, row_size=1, graph="exponential", compression=None):
        sources, destinations = neighbours(graph, topology.rank, topology.ranks)
        super().__init__(topology, size, initial=initial, row_size=row_size, agree=(graph, compression))
        self.graph = graph
        self.compression = check_compression(compression)
        self._graph = self.comm.Create_dist_graph_adjacent(sources, destinations, reorder=False)
        self._weight = 1.0 / (len(sources) + 1)
        self._cells, self._totals = np.zeros(4), np.zeros(4)
        self.consensus_distance = None  # set by final
        if self.compression is None:
            self._received = np.empty((len(sources), self.size))
        else:
            # public copies: row 0 this rank's, then its in-neighbours' (all start from the
            # initial parameters every rank holds)
            self._public = np.tile(self._params, (len(sources) + 1, 1))
            self._codes = np.zeros(self.size, dtype=np.uint16)
            self._received_codes = np.empty((len(sources), self.size), dtype=np.uint16)

    def push(self, change, *, step=0.0, updates=1):
        """Add ``change`` to this rank's parameters, then average with the neighbours
        (collective); returns the version."""
        self._params += self._change_values(change)
        return self._mix(contributed=1.0, step=step, updates=updates)

    def skip(self):
        """Take part in a round's averaging without a change (collective)."""
        return self._mix(contributed=0.0, step=0.0, updates=0)

    def _mix(self, contributed, step, updates):
        self._tail(self._cells, contributed, step, updates)
        counting = self.comm.Iallreduce(self._cells, self._totals, op=self._MPI.SUM)
        if self.compression is None:
            self.bytes_sent += self._params.nbytes * len(self._received)  # to each out-neighbour
            self.bytes_received += self._received.nbytes
            self._graph.Neighbor_allgather(self._params, self._received)
            self._params += self._received.sum(axis=0)
            self._params *= self._weight
        else:
            self._mix_compressed()
        counting.Wait()
        return self._count(self._totals)

    def _mix_compressed(self):
        """One CHOCO-gossip round (module docstring): codes of x_i - y_i to the out-neighbours,
        every public copy moved by its decoded codes, then x_i moved towards them."""
        public = self._public
        # a seed of this rank's own for each round: the ranks' roundings are independent
        natural.encode_into(self._params - public[0], (self._clock * self.ranks + self.rank) * _SEED_STRIDE % 2**64,
                            self._codes)
        self.bytes_sent += self._codes.nbytes * len(self._received_codes)
        self.bytes_received += self._received_codes.nbytes
        self._graph.Neighbor_allgather(self._codes, self._received_codes)
        natural.decode_add(self._codes, public[0])  # as the out-neighbours decode it
        for row, codes in enumerate(self._received_codes, start=1):
            natural.decode_add(codes, public[row])
        self._params += self._weight * (public[1:].sum(axis=0) - (public.shape[0] - 1) * public[0])

    def final(self, out=None):
        """The ranks' average, which every rank then holds (collective); records
        :attr:`consensus_distance`, the root mean square over the ranks of ``||x_i - mean||``
        before it."""
        MPI = self._MPI
        mean = np.empty(self.size)
        self.comm.Allreduce(self._params, mean, op=MPI.SUM)
        mean /= self.ranks
        spread = self.comm.allreduce(float(np.sum((self._params - mean) ** 2)), op=MPI.SUM)
        self.consensus_distance = float(np.sqrt(spread / self.ranks))
        self._params = mean
        return self.pull(out)

    def close(self):
        """Free the graph communicator (collective; only on success, as the server's window)."""
        if self._graph is not None:
            self._graph.Free()
            self._graph = None

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:  # a rank leaving with an exception is ended by MPI_Abort instead
            self.close()
