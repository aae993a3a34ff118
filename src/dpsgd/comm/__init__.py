"""Parameter exchange between workers: the only package that imports mpi4py, and lazily.

- :mod:`~dpsgd.comm.exchange`: the exchange interface and :func:`open_exchange`; the kinds
  are :mod:`~dpsgd.comm.server` (asynchronous parameter server on an RMA window),
  :mod:`~dpsgd.comm.allreduce` (synchronous averaging), :mod:`~dpsgd.comm.gossip`
  (D-PSGD: averaging with graph neighbours), :mod:`~dpsgd.comm.async_gossip` (AD-PSGD: atomic
  pairwise averages, nobody waiting) and :mod:`~dpsgd.comm.local` (one process, no MPI);
- :mod:`~dpsgd.comm.codecs`: what a push carries (dense, rows, sparse) and its byte count, and
  natural compression of any of them (:mod:`dpsgd._kernels.natural`; not yet moved by an
  exchange);
- :mod:`~dpsgd.comm.window`: the RMA window itself (``ParameterWindow``) and its one-process
  twin (``LocalWindow``);
- :mod:`~dpsgd.comm.topology`: ranks, threads per rank, rank seeds, and the collectives
  tasks need;
- :mod:`~dpsgd.comm.failure`: one failing rank ends every rank;
- :mod:`~dpsgd.comm.network`: a cluster's links and stragglers, modelled on one machine;
- :mod:`~dpsgd.comm.virtual`: :func:`simulate`, many virtual ranks of the real code in one
  process, on simulated clocks.
"""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mpi4py import MPI

from dpsgd.comm.failure import abort_on_exception, ends_job_on_error, fail_together
from dpsgd.comm.exchange import EXCHANGES, check_exchange, open_exchange
# every fit in one process opens this exchange: loaded with the package, not inside a timed fit
from dpsgd.comm.local import LocalExchange  # noqa: F401
from dpsgd.comm.topology import Topology
from dpsgd.comm.virtual import simulate
from dpsgd.comm.window import LocalWindow, ParameterWindow

__all__ = ["EXCHANGES", "LocalWindow", "ParameterWindow", "Topology", "abort_on_exception", "check_exchange",
           "ends_job_on_error", "fail_together", "mpi_library", "open_exchange", "simulate", "world"]

# set by the process managers of MPICH (hydra), Open MPI and Slurm's srun
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS")


def mpi_library() -> str:
    """One line on mpi4py and the MPI library it loads (for ``dpsgd info``); never raises.

    Returns
    -------
    str
        mpi4py's version and the MPI library's, or why there is none.

    Examples
    --------
    >>> from dpsgd.comm import mpi_library
    >>> mpi_library()  # doctest: +SKIP
    'mpi4py 4.1.2, MPI 5.0: MPICH Version:      5.0.2'
    """
    import importlib.util

    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py not installed (pip install 'dpsgd[mpi]')"
    try:
        import mpi4py
        from mpi4py import MPI

        library = MPI.Get_library_version().strip().splitlines()[0]
        return f"mpi4py {mpi4py.__version__}, MPI {'.'.join(map(str, MPI.Get_version()))}: {library}"
    except Exception as exc:  # a broken MPI install must not break `dpsgd info`
        return f"mpi4py installed but MPI failed to load: {exc}"


def world() -> "MPI.Comm | None":
    """MPI.COMM_WORLD when this process was started by mpiexec with more than one rank, else None.

    mpi4py is imported only then, so that a single-process run never needs MPI.

    Returns
    -------
    mpi4py.MPI.Comm or None
        The world communicator, or None in one process.

    Examples
    --------
    A script that runs alike in one process and under ``mpiexec -n 4``:

    >>> from dpsgd import SGDClassifier
    >>> from dpsgd.comm import world
    >>> clf = SGDClassifier(comm=world())  # None (one process) unless started by mpiexec
    """
    if not any(int(os.environ.get(name, "1") or 1) > 1 for name in _LAUNCHER_SIZE):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
