"""Threads on small models (every weight buffered per thread): 2 threads against one, two builds.

    python bench/small_models.py [--base OLD/src] [--data a9a agaricus] [--threads 1 2]
                                 [--repeats 4] [--epochs 5] [--loss log_loss]
                                 [--copies N] [--min-nnz N]

The real data of ../shared/data with few features (a9a: 123, agaricus: 127), stacked
(by default a9a x8: 3.6M non-zeros; agaricus x60: 8.6M), so that the thread count dpsgd
would use is not cut by its minimum of non-zeros a thread; ``--copies`` sets the stacking
and ``--min-nnz`` that minimum (``_MIN_NNZ_PER_THREAD``; 1 runs the threads asked for). Each fit is a fresh process, as users run one,
BLAS threads at their default: it loads the data, fits 1,000 rows (the imports and the
thread pool), then times a fit of ``--epochs`` epochs (alpha 1e-5, no early stopping) and
scores its test loss on the dataset's own test file. Builds ("new": this checkout's src/,
"old": ``--base``) and thread counts alternate within each repeat. Prints medians (range)
of wall and CPU seconds, the speed-up over the same build's one thread, and the mean test
loss.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")
DATA = os.path.join(HERE, "..", "..", "shared", "data")
FILES = {"a9a": ("a9a/a9a", "a9a/a9a.t", 123, 8), "agaricus": ("agaricus_mushroom/agaricus.txt.train",
                                                                 "agaricus_mushroom/agaricus.txt.test", 127, 60)}


def run_one(data, threads, epochs, loss, copies, min_nnz):
    import time

    import scipy.sparse as sp
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier
    from dpsgd.data import load_svmlight

    train, test, d, default_copies = FILES[data]
    copies = copies or default_copies
    if min_nnz:
        SGDClassifier._MIN_NNZ_PER_THREAD = min_nnz
    X, y = load_svmlight(os.path.join(DATA, train), n_features=d)
    X_test, y_test = load_svmlight(os.path.join(DATA, test), n_features=d)
    X, y = sp.vstack([X] * copies, format="csr"), np.tile(y, copies)
    kw = dict(loss=loss, alpha=1e-5, tol=None, n_threads=threads, random_state=0)
    SGDClassifier(max_iter=1, **kw).fit(X[:1000], y[:1000])
    tic, cpu = time.perf_counter(), time.process_time()
    clf = SGDClassifier(max_iter=epochs, **kw).fit(X, y)
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    score = log_loss(y_test, clf.predict_proba(X_test)) if loss == "log_loss" else 1.0 - clf.score(X_test, y_test)
    print(json.dumps({"wall": wall, "cpu": cpu, "loss": score, "threads_used": clf.n_threads_}))


def spawn(src, data, threads, args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, HERE]))
    out = subprocess.run([sys.executable, __file__, "--one", f"{data},{threads}", "--epochs", str(args.epochs),
                          "--loss", args.loss, "--copies", str(args.copies), "--min-nnz", str(args.min_nnz)],
                         env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{data} x{threads} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values, fmt="{:.3f}"):
    v = np.asarray(values, float)
    return f"{fmt.format(np.median(v))} ({fmt.format(v.min())}-{fmt.format(v.max())})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", help="src/ of the old build (default: only this checkout's)")
    p.add_argument("--data", nargs="+", choices=sorted(FILES), default=sorted(FILES))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--loss", default="log_loss", help="log_loss (test log-loss) or another (test error)")
    p.add_argument("--copies", type=int, default=0, help="stack the training rows this many times (0: the default)")
    p.add_argument("--min-nnz", type=int, default=0, help="the estimator's minimum of non-zeros a thread (0: its own)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        data, threads = args.one.split(",")
        run_one(data, int(threads), args.epochs, args.loss, args.copies, args.min_nnz)
        return
    builds = [("new", SRC)] + ([("old", args.base)] if args.base else [])
    print(f"load: {os.getloadavg()}; {args.epochs} epochs, {args.loss}, alpha 1e-5, copies "
          f"{args.copies or 'default'}, minimum non-zeros a thread {args.min_nnz or 'default'}")
    print(f"{'data':9s} {'build':5s} {'threads':>7s} {'wall s':>22s} {'CPU s':>22s} {'speed-up':>18s} "
          f"{'test loss':>9s} used")
    for data in args.data:
        rows = {(b, t): [] for b, _ in builds for t in args.threads}
        for rep in range(args.repeats):
            configs = [(b, src, t) for b, src in builds for t in args.threads]
            for b, src, t in (configs if rep % 2 == 0 else configs[::-1]):
                rows[b, t].append(spawn(src, data, t, args))
        for b, _ in builds:
            one = np.array([r["wall"] for r in rows[b, args.threads[0]]])
            for t in args.threads:
                rs = rows[b, t]
                wall = np.array([r["wall"] for r in rs])
                print(f"{data:9s} {b:5s} {t:7d} {spread(wall):>22s} {spread([r['cpu'] for r in rs]):>22s} "
                      f"{spread(one / wall, '{:.2f}'):>18s} {np.mean([r['loss'] for r in rs]):9.5f} "
                      f"{sorted({r['threads_used'] for r in rs})}", flush=True)


if __name__ == "__main__":
    main()
