"""Natural compression on the allreduce exchange across real ranks: ``compressed.py ROUNDS``.
Every rank pushes the same vector v every round; the parameters must move by ROUNDS v on
average (unbiased), every rank keep the same ones, and a rank send 2 bytes a value."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd.comm import Topology, abort_on_exception
from dpsgd.comm.allreduce import AllreduceExchange
from dpsgd.comm.codecs import Dense

abort_on_exception()
comm = MPI.COMM_WORLD
rounds = int(sys.argv[1])
v = np.random.default_rng(0).normal(size=200) * np.logspace(-3, 3, 200)
ex = AllreduceExchange(Topology(comm), v.size, compression="natural")
for r in range(rounds):
    if comm.Get_rank() == 1 and r % 4 == 3:
        ex.skip()
    else:
        ex.push(Dense(v), step=1.0)
params = ex.pull()[0]
everyone = comm.gather(params, root=0)
if comm.Get_rank() == 0:
    relative = params / (rounds * v) - 1.0
    # each round's average of k decoded values has a relative sd of at most sqrt(1/8 / k)
    print(json.dumps({"same": all(np.array_equal(p, params) for p in everyone),
                      "mean_relative_error": float(np.mean(relative)), "max_relative_error": float(np.max(np.abs(relative))),
                      "bytes_sent": ex.bytes_sent, "expected_sent": 2 * v.size * rounds,
                      "clock": ex.clock(), "updates": ex.updates()}))
