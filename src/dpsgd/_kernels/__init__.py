"""Compiled kernels. Importing this package sets how long idle OpenMP threads spin.

An OpenMP thread that waits (for the next parallel region while Python runs between
epochs, or at a barrier for a preempted sibling) spins before it sleeps: libgomp's
default is 300,000 spins when the user set nothing (milliseconds), LLVM libomp's 200 ms.
On a loaded machine (ranks x threads under mpiexec, a shared cluster node) that spinning
takes the cores the other work needs: an LDA fit on 2 threads beside one busy process per
core took 2.81 s and 2.79 CPU-seconds with libgomp's default, 0.87 s and 0.87 with the short
spin; idle, nothing was lost (bench/thread_wait.py, docs/guide/threads.md). Our kernels start few
regions (a few per epoch or minibatch), so waking a sleeping thread costs little. Unless the user chose
(OMP_WAIT_POLICY, GOMP_SPINCOUNT, KMP_BLOCKTIME), the runtime is loaded with a short spin:
the variables are set only while it reads them, so no other library or child process
sees them. A runtime some other module loaded first keeps its own setting.
"""

import os

# libgomp reads GOMP_SPINCOUNT when it is loaded; libomp reads KMP_BLOCKTIME (ms) at its
# first OpenMP call. 10,000 spins are tens of microseconds: enough for back-to-back regions.
_SHORT_SPIN = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}
_USER_CHOICE = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _load_runtime_with_short_spin():
    chosen = any(os.environ.get(name) for name in _USER_CHOICE)
    added = [] if chosen else [name for name in _SHORT_SPIN if name not in os.environ]
    for name in added:
        os.environ[name] = _SHORT_SPIN[name]
    try:
        from dpsgd._kernels.openmp_info import omp_max_threads

        omp_max_threads()  # the first OpenMP call: libomp initialises here
    finally:
        for name in added:
            os.environ.pop(name, None)


_load_runtime_with_short_spin()
