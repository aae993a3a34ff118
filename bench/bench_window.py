"""Push / pull latency and bandwidth of dpsgd.comm.ParameterWindow against message size.

    mpiexec -n 2 python bench/bench_window.py

Rank 0 hosts the window and stays idle in a barrier; rank 1 times dense pushes (Accumulate +
Flush + clock increment), pulls (Get_accumulate(NO_OP) + Flush) and sparse pushes of 1% and
10% of the entries with each method (one indexed target datatype, or one Accumulate per run of
consecutive indices; random indices, so runs are short), then row pushes and pulls as DPSVI
makes them (rows of K = 20 doubles, 5% / 20% / 60% of 5,001 rows, one indexed-block datatype).
Median of repeats, microseconds. Last, where a sparse push stops paying on this machine:
sparse pushes (indexed) of 0.1% to 2% of a linear model's weights (RCV1-like: 47,237) and of
a million, against the dense push of the same vector (dpsgd.comm.server.ENTRIES_SHARE_DENSE).
"""

import time

import numpy as np
from mpi4py import MPI

from dpsgd.comm import ParameterWindow

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def median_us(fn, repeats):
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return 1e6 * float(np.median(times))


rows = []
for n in (10, 1_000, 100_000, 1_000_000):
    repeats = 200 if n <= 1_000 else 20
    for method in ("indexed", "runs"):
        with ParameterWindow(comm, n, sparse_method=method) as win:
            if rank == 1:
                delta = np.ones(n)
                out = np.empty(n)
                rng = np.random.default_rng(0)
                if method == "indexed":
                    push = median_us(lambda: win.push(delta), repeats)
                    pull = median_us(lambda: win.pull(out), repeats)
                    rows.append((n, "dense push", push, 8 * n / push))
                    rows.append((n, "dense pull", pull, 8 * n / pull))
                for share in (0.01, 0.1):
                    k = max(1, int(n * share))
                    idx = np.sort(rng.choice(n, k, replace=False))
                    vals = np.ones(k)
                    t = median_us(lambda: win.push_sparse(idx, vals), repeats)
                    rows.append((n, f"sparse {share:.0%} {method}", t, 8 * k / t))
            comm.Barrier()
K, V = 20, 5_000
with ParameterWindow(comm, (V + 1) * K, row_size=K) as win:
    if rank == 1:
        rng = np.random.default_rng(0)
        for share in (0.05, 0.2, 0.6):
            picked = np.append(np.sort(rng.choice(V, int(V * share), replace=False)), V)
            block = np.ones((picked.size, K))
            push = median_us(lambda: win.push_rows(picked, block), 100)
            pull = median_us(lambda: win.pull_rows(picked, block), 100)
            rows.append((block.size, f"rows {share:.0%} push", push, 8 * block.size / push))
            rows.append((block.size, f"rows {share:.0%} pull", pull, 8 * block.size / pull))
    comm.Barrier()
for n in (47_237, 1_000_000):
    with ParameterWindow(comm, n) as win:
        if rank == 1:
            rng = np.random.default_rng(0)
            dense = median_us(lambda: win.push(np.ones(n)), 50)
            rows.append((n, "dense push", dense, 8 * n / dense))
            for share in (0.001, 0.002, 0.005, 0.01, 0.02):
                k = max(1, int(n * share))
                idx = np.sort(rng.choice(n, k, replace=False))
                t = median_us(lambda: win.push_sparse(idx, np.ones(k)), 50)
                rows.append((n, f"sparse {share:.1%} / dense {t / dense:.2f}", t, 8 * k / t))
        comm.Barrier()
if rank == 1:
    print(f"{'doubles':>9s}  {'operation':24s} {'us':>10s} {'MB/s':>9s}")
    for n, op, us, mbps in rows:
        print(f"{n:9d}  {op:24s} {us:10.1f} {mbps:9.1f}")
