"""An exception on one rank must end the whole job, promptly and with that rank's message.

Without this, a rank that raises runs MPI_Finalize on its way out while the other
ranks wait for it in a collective or keep pushing: the job hangs until a time limit.
(This is what ``python -m mpi4py script.py`` does for a script.)
"""

import sys
import time
import traceback

# MPI_Abort tears the job down at once; mpiexec may not have forwarded the message just
# written to stderr by then (seen now and then with MPICH's hydra). A short pause lets it.
_FORWARD_SECONDS = 0.2


def abort(comm, code):
    """Flush stderr, give mpiexec a moment to forward it, then Abort ``comm``."""
    sys.stderr.flush()
    time.sleep(_FORWARD_SECONDS)
    comm.Abort(code)


def abort_on_exception(comm=None):
    """Install a ``sys.excepthook`` that prints the traceback, then ``Abort``s ``comm``.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The communicator to abort; ``MPI.COMM_WORLD`` by default.
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        rank = comm.Get_rank()
        sys.stderr.write(f"dpsgd: rank {rank} of {comm.Get_size()} failed; aborting the job\n")
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        try:
            abort(comm, 1)
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return hook
