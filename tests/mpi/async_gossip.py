"""The asynchronous gossip exchange's pairwise averages across real ranks:
``async_gossip.py ROUNDS``. Every rank pushes integer-valued changes, some ranks slower; the
copies must sum to the start times the ranks plus every change, up to rounding (which
holds even for torn averages: every write is an addition), and every pair must have been
averaged whole: each row's averages, in the order applied, read exactly what the previous
one left. Then the ranks average without changes until their
copies agree, and ``final`` is their average on every rank."""
import json
import sys
import time

import numpy as np
from mpi4py import MPI

from dpsgd.comm import Topology, abort_on_exception
from dpsgd.comm.async_gossip import AsyncGossipExchange
from dpsgd.comm.codecs import Dense

abort_on_exception()
comm = MPI.COMM_WORLD
rank, ranks = comm.Get_rank(), comm.Get_size()
rounds = int(sys.argv[1])
rng = np.random.default_rng(rank)
n = 40
start = np.arange(n, dtype=float)
pushed = np.zeros(n)
versions = []
ex = AsyncGossipExchange(Topology(comm), n, initial=start if rank == 0 else None, seed=7, record=True)
for r in range(rounds):
    own, version = ex.pull()
    if rank % 2:  # ranks at different paces
        time.sleep(rng.uniform(0, 1e-4))
    delta = rng.integers(-8, 9, n).astype(float)
    versions.append(ex.push(Dense(delta), step=1.0))
    pushed += delta
comm.Barrier()
copies = ex.copies()
total = comm.allreduce(pushed)
before = float(np.abs(copies - copies.mean(axis=0)).max())
for _ in range(40):
    ex.push(Dense(np.zeros(n)), updates=0)
comm.Barrier()
after = float(np.abs(ex.copies() - ex.copies().mean(axis=0)).max())
final = ex.final()[0]
finals = comm.gather(final, root=0)
all_versions = comm.gather(versions, root=0)
averages = comm.gather(ex.averages, root=0)
clock = ex.clock()
# each push reads and writes both copies of its pair; each round's pull reads the own copy
bytes_right = comm.gather(ex.bytes_sent == (rounds + 40) * 16 * n
                          and ex.bytes_received == (rounds + 40) * 16 * n + rounds * 8 * n, root=0)
ex.close()
if rank == 0:
    flat = sorted(v for vs in all_versions for v in vs)
    # each row's history in the order the pairs were applied: every average read what the
    # last one touching that row left (its read plus its change), the first one the start
    last, whole = {}, True
    for version, pair, read, change in sorted((a for avs in averages for a in avs), key=lambda a: a[0]):
        for side, row in enumerate(pair):
            whole &= bool(np.array_equal(read[side], last.get(row, start)))
            last[row] = read[side] + change[side]
    print(json.dumps({
        "pairs_whole": whole, "bytes_right": all(bytes_right), "averages": sum(map(len, averages)),
        "sum_error": float(np.abs(copies.sum(axis=0) - (start * ranks + total)).max()),
        "spread_before": before, "spread_after": after,
        "same_final": all(np.array_equal(f, finals[0]) for f in finals),
        "versions_unique": len(set(flat)) == len(flat), "clock": clock, "pushes": rounds * ranks + 40 * ranks,
    }))
