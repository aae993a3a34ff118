"""Thread-count semantics shared by every estimator (see DESIGN.md, "Threads")."""

import ctypes
import numbers
import os
import threading
import warnings

from dpsgd._kernels.openmp_info import omp_max_threads, openmp_enabled

__all__ = ["openmp_enabled", "available_threads", "effective_n_threads"]


def available_threads() -> int:
    """Cores this process may use: the CPU affinity mask, capped by ``OMP_NUM_THREADS``.

    Examples
    --------
    >>> from dpsgd._threads import available_threads
    >>> available_threads() >= 1
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    if os.environ.get("OMP_NUM_THREADS"):
        n = min(n, omp_max_threads())
    return max(n, 1)


_warned_serial = False


def _warn_serial_build():
    """Say once per process that threads were asked for but the build has none (pip hides
    the build's own warning)."""
    global _warned_serial
    if not _warned_serial:
        _warned_serial = True
        warnings.warn("dpsgd was built without OpenMP: every kernel runs on one thread. Reinstall "
                      "with a compiler that has OpenMP (see docs/install.md); `dpsgd info` shows "
                      "the build.", RuntimeWarning, stacklevel=3)


def effective_n_threads(n_threads: int | None = None) -> int:
    """Resolve a user's ``n_threads`` into the number of threads a kernel will use.

    Parameters
    ----------
    n_threads : int or None
        ``None``: every core the process may use (the affinity mask, capped by
        ``OMP_NUM_THREADS``). A positive int: that many (more than the cores is
        allowed, and oversubscribes). A negative int counts back from the
        available cores: -1 is all of them, -2 all but one (never fewer than one).
        0 is an error.

    Returns
    -------
    int
        At least 1; always 1 when the build has no OpenMP.

    Raises
    ------
    TypeError
        When ``n_threads`` is not an int or None.
    ValueError
        When ``n_threads`` is 0.

    Examples
    --------
    >>> from dpsgd import effective_n_threads
    >>> effective_n_threads(-1) == effective_n_threads(None) >= 1
    True
    """
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
    ):
        raise TypeError(f"n_threads must be an int or None, got {n_threads!r}")
    if n_threads == 0:
        raise ValueError("n_threads=0 is not allowed: use None or -1 for all cores, or a positive count")
    if not openmp_enabled():
        if n_threads != 1:
            _warn_serial_build()
        return 1
    available = available_threads()
    if n_threads is None:
        return available
    if n_threads < 0:
        return max(available + 1 + int(n_threads), 1)
    return int(n_threads)


def running_other_threads() -> int:
    """How many other threads of this process are running or waiting for a core right now.

    OpenBLAS's worker threads spin for about 0.1 s after every BLAS call (measured: 0.12
    CPU-seconds during a 0.5 s sleep after a 300 x 300 product, NumPy's OpenBLAS 0.3.31 at 2
    threads), so a parallel kernel started right after one shares its cores with them. Read
    from /proc (each thread's state, R); 0 where that is not available. The CPU times of the
    process and of the calling thread cannot tell it over a short window: another thread's
    time is only added at the scheduler's ticks.
    """
    me = str(threading.get_native_id())
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 0
    running = 0
    for tid in tasks:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # the thread ended
            continue
        running += stat[stat.rindex(b")") + 2:].startswith(b"R")
    return running


def runnable_elsewhere() -> int:
    """How many threads of other processes are running or waiting for a core right now.

    The machine's count of runnable threads (/proc/loadavg's fourth field) less this
    process's (the caller and ``running_other_threads``); 0 where /proc is not available.
    One reading: a count of this instant, not an average.
    """
    try:
        with open("/proc/loadavg", "rb") as f:
            runnable = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, runnable - 1 - running_other_threads())


class _ObjectInfo(ctypes.Structure):
    """The first fields of glibc's ``struct dl_phdr_info``: a loaded object's address and path."""
    _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]


_EACH_OBJECT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_ObjectInfo), ctypes.c_size_t, ctypes.c_void_p)


def _openblas_libraries():
    """ctypes handles of the OpenBLAS libraries this process has loaded, from the dynamic
    loader's list (``dl_iterate_phdr``: 0.2 ms here for 195 objects, where reading
    /proc/self/maps took 2.5 ms and threadpoolctl's search of every library 21 ms)."""
    try:
        iterate = ctypes.CDLL(None).dl_iterate_phdr
    except (OSError, AttributeError):  # not glibc, musl or a BSD
        return []
    paths = []

    def visit(info, size, data):
        path = info.contents.name
        if path and b"openblas" in path.rsplit(b"/", 1)[-1].lower():
            paths.append(os.fsdecode(path))
        return 0

    iterate(_EACH_OBJECT(visit), None)
    libs = []
    for path in sorted(set(paths)):
        try:
            libs.append(ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0)))
        except OSError:
            continue
    return libs


def _symbol(lib, name):
    """OpenBLAS's function ``name`` as its plain, 64-bit or SciPy builds export it, or None."""
    for full in (name, name + "64_", "scipy_" + name + "64_", "scipy_" + name):
        try:
            return getattr(lib, full)
        except AttributeError:
            continue
    return None


def stop_idle_blas_threads() -> int:
    """End OpenBLAS's idle worker threads, which would spin for ~0.1 s on the cores a parallel
    kernel is about to take (``running_other_threads``); they start again at the next BLAS call.

    Only where no other Python thread exists (none can be inside a BLAS call:
    ``blas_thread_shutdown_`` must not run beside one) and only for OpenBLAS's own pthreads
    pool (``openblas_get_parallel() == 1``), which every OpenBLAS since 0.2.9 restarts at its
    next call. Measured on this package's 2-vCPU VM after a 300 x 300 product: 0.3 ms to end
    them, no CPU time spent in a 0.3 s sleep afterwards (0.12 s without), 1.5 ms for the next
    product against 0.7.

    Returns
    -------
    int
        How many BLAS libraries' threads were ended (0 where nothing could be done safely).
    """
    if threading.active_count() > 1:
        return 0
    stopped = 0
    for lib in _openblas_libraries():
        parallel = _symbol(lib, "openblas_get_parallel")
        shutdown = getattr(lib, "blas_thread_shutdown_", None)
        if parallel is not None and shutdown is not None and parallel() == 1:
            shutdown()
            stopped += 1
    return stopped
