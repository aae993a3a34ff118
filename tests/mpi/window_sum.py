"""Every rank pushes integer deltas many times; rank 0 checks the window against the exact sum."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd.comm import ParameterWindow

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
pushes, n, sharded, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "sharded", sys.argv[4]
rng = np.random.default_rng(rank)
expected = np.zeros(n)
tickets = []
row = 10  # n is a multiple of it
with ParameterWindow(comm, n, sharded=sharded, sparse_method=method, row_size=row) as win:
    for i in range(pushes):
        if i % 3 == 2:
            rows = np.sort(rng.choice(n // row, size=max(1, n // row // 5), replace=False))
            vals = rng.integers(-4, 5, (rows.size, row)).astype(float)
            win.push_rows(rows, vals, step=1.0)
            expected.reshape(-1, row)[rows] += vals
        elif i % 3 == 1:
            idx = rng.choice(n, size=max(1, n // 7), replace=False)
            vals = rng.integers(-3, 4, idx.size).astype(float)
            win.push_sparse(idx, vals, step=1.0)
            np.add.at(expected, idx, vals)
        else:
            delta = rng.integers(-5, 6, n).astype(float)
            win.push(delta, step=1.0)
            expected += delta
        tickets.append(win.ticket())
    comm.Barrier()
    params, version = win.pull()
    some_rows = np.arange(1, n // row, 3)
    rows_match = bool(np.array_equal(win.pull_rows(some_rows)[0], params.reshape(-1, row)[some_rows]))
    if rank == size - 1:
        win.request_stop()
    comm.Barrier()
    stopped = comm.gather(win.stop_requested(), root=0)
    total = comm.reduce(expected, op=MPI.SUM, root=0)
    all_tickets = comm.gather(tickets, root=0)
    if rank == 0:
        flat = sorted(t for ts in all_tickets for t in ts)
        print(json.dumps({"exact": bool(np.array_equal(params, total)), "clock": version,
                          "step_sum": win.step_sum(), "max_error": float(np.abs(params - total).max()),
                          "tickets_unique": flat == list(range(len(flat))),
                          "rows_match": rows_match, "every_rank_sees_the_stop": all(stopped)}))
