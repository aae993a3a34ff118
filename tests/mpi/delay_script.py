"""A scripted interleaving: rank 1 reads, rank 0 pushes k times, rank 1 pushes: its delay is k."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd.comm import ParameterWindow

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
k = int(sys.argv[1])
with ParameterWindow(comm, 10) as win:
    if rank == 1:
        _, read_version = win.pull()
    comm.Barrier()
    if rank == 0:
        for _ in range(k):
            win.push(np.ones(10))
    comm.Barrier()
    if rank == 1:
        version = win.push(np.ones(10))
        print(json.dumps({"read": read_version, "push": version, "delay": version - read_version}))
    comm.Barrier()
