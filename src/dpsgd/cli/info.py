"""``dpsgd info``: what this installation can do, printed once (rank 0 under mpiexec)."""

import sys

import numpy as np


def info(args, comm=None):
    """Print the version, OpenMP threads, MPI and the number of ranks; the exit code."""
    import dpsgd
    from dpsgd._threads import available_threads
    from dpsgd.comm import Topology, mpi_library

    topology = Topology(comm)
    if not topology.is_root:
        return 0
    print(f"dpsgd {dpsgd.__version__}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    omp = dpsgd.openmp_enabled()
    print(f"OpenMP: {'on' if omp else 'off (serial build)'}; threads available: {available_threads()}; "
          f"n_threads=None uses {dpsgd.effective_n_threads(None)}")
    print(f"MPI: {mpi_library()}")
    if comm is None:
        print("ranks: 1 (one process; start several with mpiexec -n N dpsgd ...)")
    else:
        print(f"ranks: {topology.ranks} (under mpiexec; this is rank 0, the others print nothing)")
    return 0
