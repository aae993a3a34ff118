"""The server exchange's mutex across ranks: every rank adds 1 to a parameter 200 times by a
read-modify-write (pull, then push of the new value less the old) under ``exclusive()``;
without the mutex increments would be lost. Rank 0 prints the final value as JSON."""
import json

import numpy as np
from mpi4py import MPI

from dpsgd.comm import Topology, abort_on_exception
from dpsgd.comm.server import ServerExchange
from dpsgd.engine import Dense

abort_on_exception()
comm = MPI.COMM_WORLD
with ServerExchange(Topology(comm), 2) as ex:
    for _ in range(200):
        with ex.exclusive():
            value, _ = ex.pull()
            ex.push(Dense(np.array([value[0] + 1.0, 0.0]) - value))
    final, _ = ex.final()
if comm.Get_rank() == 0:
    print(json.dumps({"value": float(final[0]), "expected": 200 * comm.Get_size()}))
