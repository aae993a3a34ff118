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
"""

import numpy as np

from dpsgd.comm.allreduce import ReplicaExchange

GRAPHS = ("exponential", "ring")


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
    topology, size, initial, row_size : as :class:`dpsgd.comm.allreduce.ReplicaExchange`
        (every rank starts from rank 0's model).
    graph : {'exponential', 'ring'}, default='exponential'
    """

    def __init__(self, topology, size, *, initial=None, row_size=1, graph="exponential"):
        sources, destinations = neighbours(graph, topology.rank, topology.ranks)
        super().__init__(topology, size, initial=initial, row_size=row_size, agree=(graph,))
        self.graph = graph
        self._graph = self.comm.Create_dist_graph_adjacent(sources, destinations, reorder=False)
        self._received = np.empty((len(sources), self.size))
        self._weight = 1.0 / (len(sources) + 1)
        self._cells, self._totals = np.zeros(4), np.zeros(4)
        self.consensus_distance = None  # set by final

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
        self.bytes_sent += self._params.nbytes * len(self._received)  # to each out-neighbour
        self.bytes_received += self._received.nbytes
        self._graph.Neighbor_allgather(self._params, self._received)
        self._params += self._received.sum(axis=0)
        self._params *= self._weight
        counting.Wait()
        return self._count(self._totals)

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
