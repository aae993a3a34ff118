"""Ranks drawing tickets at once (``ticket_below``, as ranks that share the steps do): each rank
draws until 100 are gone, then 5 more past them without the limit. Rank 0 prints every rank's
tickets as JSON."""
import json

from mpi4py import MPI

from dpsgd.comm import abort_on_exception
from dpsgd.comm.window import ParameterWindow

abort_on_exception()
comm = MPI.COMM_WORLD
with ParameterWindow(comm, 4) as win:
    mine = []
    while (ticket := win.ticket_below(100)) is not None:
        mine.append(ticket)
    past = [win.ticket_below(None) for _ in range(5)]
    everyone = comm.gather((mine, past), root=0)
    comm.Barrier()
if comm.Get_rank() == 0:
    print(json.dumps(everyone))
