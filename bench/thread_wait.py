"""CPU-seconds and wall time of 1- and 2-thread fits, idle and under load, in fresh processes.

Threads that wait for each other (at the end of a parallel region, or for the next one
while Python runs between epochs) spin for a while before they sleep. On an idle machine
spinning costs nothing but power; on a loaded one (ranks x threads under mpiexec, a shared
cluster node) it takes the cores other work needs. Each figure is one fresh process, as
users run a fit, with BLAS threads left at their default, alternating the configurations.

    python bench/thread_wait.py                 # both tasks, idle and loaded, 3 rounds
    python bench/thread_wait.py --env OMP_WAIT_POLICY=passive   # compare a setting

"Loaded" runs one busy process per core beside the fit.

Before each fit a small C program (compiled once with ``cc``; skipped without one) times a
cache line's round trip between two threads. On a 2-vCPU VM it moved between 70-200 ns and
390-570 ns over minutes, whatever ran, and every 2-thread SGD fit on text-like rows in the
second state took 0.6 s instead of 0.26-0.33 (one thread: 0.37-0.42 s): Hogwild! threads pay
that latency for every weight the other thread wrote. The column makes such states visible.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
task, threads = sys.argv[1], None if sys.argv[2] == "None" else int(sys.argv[2])
if task == "linear":
    from dpsgd import SGDClassifier
    from dpsgd.data import make_sparse_classification
    # text-like: Zipf-distributed words, 250 per document, 130k features, tf-idf rows
    X, y, _ = make_sparse_classification(11_000, 130_000, 250, zipf_exponent=1.0, zipf_offset=2.0,
                                         random_state=0)
    a = np.random.rand(300, 300); a @ a  # a user's NumPy call before the fit wakes BLAS threads
    fit = lambda: SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=40, tol=None, n_threads=threads,
                                random_state=0).fit(X, y)
else:
    from dpsgd import LatentDirichletAllocation
    from dpsgd.data import make_lda_corpus
    X, _, _ = make_lda_corpus(4000, 2000, 20, 100, random_state=0)
    fit = lambda: LatentDirichletAllocation(n_components=20, max_iter=2, n_threads=threads,
                                            random_state=0).fit(X)
r0, tic = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
est = fit()
wall, r1 = time.perf_counter() - tic, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
                  "threads_used": getattr(est, "n_threads_", threads)}))
"""


ROUND_TRIP_C = r"""
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#define N 200000
static _Atomic int flag;
static void *pong(void *arg) {
    for (int i = 0; i < N; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1);
        atomic_store_explicit(&flag, 2, memory_order_release);
    }
    return 0;
}
int main(void) {
    struct timespec a, b;
    pthread_t t;
    pthread_create(&t, 0, pong, 0);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++) {
        atomic_store_explicit(&flag, 1, memory_order_release);
        while (atomic_load_explicit(&flag, memory_order_acquire) != 2);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, 0);
    printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / N);
    return 0;
}
"""


def round_trip_probe():
    """Path of the compiled round-trip program, or None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="dpsgd-rtt-"))
    (folder / "rtt.c").write_text(ROUND_TRIP_C)
    built = subprocess.run([cc, "-O2", "-pthread", str(folder / "rtt.c"), "-o", str(folder / "rtt")],
                           capture_output=True)
    return folder / "rtt" if built.returncode == 0 else None


def run(task, threads, env, probe=None):
    rtt = float(subprocess.run([str(probe)], capture_output=True, text=True).stdout) if probe else float("nan")
    out = subprocess.run([sys.executable, "-c", CHILD, task, str(threads)], capture_output=True, text=True,
                         env=env, check=True)
    return {**json.loads(out.stdout.splitlines()[-1]), "round_trip_ns": rtt}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["linear", "lda"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the fits")
    args = parser.parse_args()
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env))
    probe = round_trip_probe()
    print(f"load average before: {os.getloadavg()[0]:.2f}; settings: {args.env or 'none'}")
    for loaded in (False, True):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
            if loaded else []
        try:
            time.sleep(0.5 if loaded else 0)
            for task in args.tasks:
                runs = {1: [], 2: [], None: []}
                for _ in range(args.rounds):
                    for threads in runs:  # alternating, each a fresh process
                        runs[threads].append(run(task, threads, env, probe))
                for threads, rs in runs.items():
                    wall = [r["wall"] for r in rs]
                    cpu = [r["cpu"] for r in rs]
                    rtt = [r["round_trip_ns"] for r in rs]
                    print(f"{'loaded' if loaded else 'idle':6s} {task:6s} n_threads={str(threads):4s}: wall median "
                          f"{statistics.median(wall):.3f} s [{min(wall):.3f}-{max(wall):.3f}], CPU median "
                          f"{statistics.median(cpu):.3f} s [{min(cpu):.3f}-{max(cpu):.3f}], threads used "
                          f"{sorted({r['threads_used'] for r in rs})}; line round trip before each "
                          f"{', '.join(f'{v:.0f}' for v in rtt)} ns", flush=True)
        finally:
            for h in hogs:
                h.kill()


if __name__ == "__main__":
    main()
