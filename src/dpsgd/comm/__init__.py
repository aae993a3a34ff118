"""Parameter exchange between workers: the only package that imports mpi4py, and lazily.

``ParameterWindow`` keeps the global parameters in an MPI one-sided (RMA) window;
``LocalWindow`` offers the same interface inside one process, with no MPI.
"""

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mpi4py import MPI

from dpsgd.comm.failure import abort_on_exception, ends_job_on_error, fail_together
from dpsgd.comm.window import LocalWindow, ParameterWindow, open_window

__all__ = ["LocalWindow", "ParameterWindow", "abort_on_exception", "ends_job_on_error", "fail_together",
           "open_window", "world"]

# set by the process managers of MPICH (hydra), Open MPI and Slurm's srun
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS")


def world() -> "MPI.Comm | None":
    """MPI.COMM_WORLD when this process was started by mpiexec with more than one rank, else None.

    mpi4py is imported only then, so that a single-process run never needs MPI."""
    if not any(int(os.environ.get(name, "1") or 1) > 1 for name in _LAUNCHER_SIZE):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
