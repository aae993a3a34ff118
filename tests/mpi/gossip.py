"""The gossip exchange's arithmetic across real ranks: ``gossip.py GRAPH ROUNDS [COMPRESSION]``.

Every rank pushes integer-valued changes (rank 1 sits out every third round: ``skip``) for
ROUNDS rounds; rank 0 then checks that the ranks' average equals the start plus every change
over the number of ranks (the doubly stochastic averaging keeps it), that further rounds
without changes bring the ranks together, and that ``final`` leaves every rank the average.
With COMPRESSION (natural) the codes of 2 bytes a value travel instead, and the average is
kept as exactly."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd.comm import Topology, abort_on_exception
from dpsgd.comm.codecs import Dense, Rows
from dpsgd.comm.gossip import GossipExchange

abort_on_exception()
comm = MPI.COMM_WORLD
rank, ranks = comm.Get_rank(), comm.Get_size()
graph, rounds = sys.argv[1], int(sys.argv[2])
compression = sys.argv[3] if len(sys.argv) > 3 else None
rng = np.random.default_rng(rank)
n, row = 60, 6
start = np.arange(n, dtype=float)
pushed = np.zeros(n)
ex = GossipExchange(Topology(comm), n, initial=start if rank == 0 else None, row_size=row, graph=graph,
                    compression=compression)
for r in range(rounds):
    if rank == 1 and r % 3 == 2:
        ex.skip()
    elif r % 2:
        rows = np.sort(rng.choice(n // row, 3, replace=False))
        values = rng.integers(-4, 5, (3, row)).astype(float)
        ex.push(Rows(rows, values), step=1.0)
        pushed.reshape(-1, row)[rows] += values
    else:
        delta = rng.integers(-5, 6, n).astype(float)
        ex.push(Dense(delta), step=1.0)
        pushed += delta
params = ex.pull()[0]
mean = comm.allreduce(params) / ranks
expected = start + comm.allreduce(pushed) / ranks
spread_before = max(comm.allgather(float(np.abs(params - mean).max())))
for _ in range(60):
    ex.skip()
spread_after = max(comm.allgather(float(np.abs(ex.pull()[0] - mean).max())))
final = ex.final()[0]
finals = comm.gather(final, root=0)
counts = (ex.clock(), ex.updates(), ex.step_sum())
degree = len(ex._received if compression is None else ex._received_codes)
bytes_right = ex.bytes_sent == (rounds + 60) * (8 if compression is None else 2) * n * degree == ex.bytes_received
ex.close()
if rank == 0:
    print(json.dumps({
        "average_kept": float(np.abs(mean - expected).max()),
        "spread_before": spread_before, "spread_after": spread_after,
        "final_is_the_average": float(max(np.abs(f - mean).max() for f in finals)),
        "same_final": all(np.array_equal(f, finals[0]) for f in finals),
        "counts": counts, "bytes_right": bytes_right, "expected_updates": rounds * ranks - (len(range(2, rounds, 3)) if ranks > 1 else 0),
    }))
