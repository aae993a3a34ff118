"""``dpsgd info``: what this installation can do, printed once (rank 0 under mpiexec)."""

import importlib.util
import sys

import numpy as np


def _mpi_status():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py not installed (pip install 'dpsgd[mpi]')"
    try:
        import mpi4py
        from mpi4py import MPI

        library = MPI.Get_library_version().strip().splitlines()[0]
        return f"mpi4py {mpi4py.__version__}, MPI {'.'.join(map(str, MPI.Get_version()))}: {library}"
    except Exception as exc:  # a broken MPI install must not break `dpsgd info`
        return f"mpi4py installed but MPI failed to load: {exc}"


def info(args, comm=None):
    """Print the version, OpenMP threads, MPI and the number of ranks; the exit code."""
    import dpsgd
    from dpsgd._threads import available_threads

    if comm is not None and comm.Get_rank() != 0:
        return 0
    print(f"dpsgd {dpsgd.__version__}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    omp = dpsgd.openmp_enabled()
    print(f"OpenMP: {'on' if omp else 'off (serial build)'}; threads available: {available_threads()}; "
          f"n_threads=None uses {dpsgd.effective_n_threads(None)}")
    print(f"MPI: {_mpi_status()}")
    if comm is None:
        print("ranks: 1 (one process; start several with mpiexec -n N dpsgd ...)")
    else:
        print(f"ranks: {comm.Get_size()} (under mpiexec; this is rank 0, the others print nothing)")
    return 0
