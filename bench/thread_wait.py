"""CPU-seconds and wall time of 1- and 2-thread fits, idle and under load, in fresh processes.

Threads that wait for each other (at the end of a parallel region, or for the next one
while Python runs between epochs) spin for a while before they sleep. On an idle machine
spinning costs nothing but power; on a loaded one (ranks x threads under mpiexec, a shared
cluster node) it takes the cores other work needs. Each figure is one fresh process, as
users run a fit, with BLAS threads left at their default, alternating the configurations.

    python bench/thread_wait.py                 # both tasks, idle and loaded, 3 rounds
    python bench/thread_wait.py --env OMP_WAIT_POLICY=passive   # compare a setting

"Loaded" runs one busy process per core beside the fit.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

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


def run(task, threads, env):
    out = subprocess.run([sys.executable, "-c", CHILD, task, str(threads)], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["linear", "lda"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the fits")
    args = parser.parse_args()
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env))
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
                        runs[threads].append(run(task, threads, env))
                for threads, rs in runs.items():
                    wall = [r["wall"] for r in rs]
                    cpu = [r["cpu"] for r in rs]
                    print(f"{'loaded' if loaded else 'idle':6s} {task:6s} n_threads={str(threads):4s}: wall median "
                          f"{statistics.median(wall):.3f} s [{min(wall):.3f}-{max(wall):.3f}], CPU median "
                          f"{statistics.median(cpu):.3f} s [{min(cpu):.3f}-{max(cpu):.3f}], threads used "
                          f"{sorted({r['threads_used'] for r in rs})}", flush=True)
        finally:
            for h in hogs:
                h.kill()


if __name__ == "__main__":
    main()
