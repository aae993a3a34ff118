"""Progress: a push completes while the hosting rank computes and makes no MPI call."""
import json
import time

import numpy as np
from mpi4py import MPI

from dpsgd.comm import ParameterWindow

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
BUSY = 3.0
with ParameterWindow(comm, 100_000) as win:
    comm.Barrier()
    if rank == 0:
        tic = time.perf_counter()
        x = np.ones(200_000)
        while time.perf_counter() - tic < BUSY:  # a long computation, no MPI inside
            x = np.sqrt(x * 1.0000001)
    else:
        time.sleep(0.2)  # make sure rank 0 is inside its computation
        tic = time.perf_counter()
        win.push(np.ones(100_000))
        elapsed = time.perf_counter() - tic
        print(json.dumps({"push_seconds": elapsed, "host_busy_seconds": BUSY}))
    comm.Barrier()
