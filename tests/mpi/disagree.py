"""Ranks that disagree on the parameter size, or one rank that raises: all must exit non-zero."""
import sys

from mpi4py import MPI

from dpsgd.comm import ParameterWindow, abort_on_exception

abort_on_exception()
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
if sys.argv[1] == "size":
    ParameterWindow(comm, 10 + rank)
else:
    if rank == 1:
        raise RuntimeError("rank 1 failed on purpose")
    comm.Barrier()  # the others wait here for rank 1, which never comes
