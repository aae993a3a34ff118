"""What the compiled build knows about OpenMP."""
from dpsgd._kernels.atomics cimport DPSGD_HAVE_OPENMP, omp_get_max_threads


def openmp_enabled():
    """Return True when the kernels were compiled with OpenMP.

    Returns
    -------
    bool
        False for a serial build (no OpenMP found at build time): every kernel then runs
        on one thread, whatever ``n_threads`` asks.

    Examples
    --------
    >>> import dpsgd
    >>> dpsgd.openmp_enabled() in (True, False)
    True
    """
    return bool(DPSGD_HAVE_OPENMP)


def omp_max_threads():
    """Return OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()
