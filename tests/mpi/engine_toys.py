"""The engine's toy problems across ranks: ``engine_toys.py EXCHANGE KIND``.

KIND: dense / sparse / rows (the optimum is reached, every rank ends with the same model),
budget-updates / budget-seconds (every rank stops early), fail (rank 1 raises in round 3)."""
import json
import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine_toys import LeastSquares, RowTargets, least_squares  # noqa: E402

from dpsgd import engine  # noqa: E402
from dpsgd.comm import Topology, abort_on_exception  # noqa: E402

abort_on_exception()
comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
exchange, kind = sys.argv[1], sys.argv[2]
topology = Topology(comm)
A, b, w = least_squares(n=600, d=6)
mine = slice(rank * 600 // size, (rank + 1) * 600 // size)
budget = {}
if kind == "rows":
    C = np.random.default_rng(3).normal(size=(20, 4))
    problem, target, key = RowTargets(C, rounds=400, seed=rank), C, "W"
else:
    passes = 10**6 if kind.startswith("budget") else 30
    problem = LeastSquares(A[mine], b[mine], passes=passes, lr=0.01, sparse=kind == "sparse")
    target, key = w, "coef_"
    if kind == "budget-updates":
        budget = {"max_updates": 500}
    elif kind == "budget-seconds":
        budget = {"max_seconds": 1.0}
    elif kind == "fail":
        class Failing(LeastSquares):
            def local_steps(self, w, r, version, ticket):
                if rank == 1 and r == 3:
                    raise RuntimeError("rank 1 failed in round 3")
                return super().local_steps(w, r, version, ticket)

        problem = Failing(A[mine], b[mine])
versions = []
tic = time.perf_counter()
result = engine.run(problem, topology, exchange=exchange, **budget,
                    callback=lambda info: versions.append(info["round"]))
seconds = time.perf_counter() - tic
everything = comm.gather((result.model[key], result.version, result.updates, result.stats.summary(), seconds),
                         root=0)
if rank == 0:
    models = [e[0] for e in everything]
    expected = sum(mine_rows * 30 for mine_rows in
                   [(r + 1) * 600 // size - r * 600 // size for r in range(size)])
    if kind == "rows":
        expected = 400 * size
    print(json.dumps({
        "error": float(np.abs(models[0] - target).max()),
        "same_model": bool(all(np.allclose(m, models[0], rtol=0, atol=1e-12) for m in models)),
        "ranks": size, "updates": int(everything[0][2]), "expected_updates": int(expected),
        "versions_agree": len({e[1] for e in everything}) == 1,
        "delay_max": max(e[3]["delay_max"] for e in everything),
        "stopped_early": int(everything[0][2]) < 10**6 * 600,
        "seconds": max(e[4] for e in everything),
    }))
