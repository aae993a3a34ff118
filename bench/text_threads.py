"""Two threads against one on text, as users run a fit: fresh processes, alternating.

    python bench/text_threads.py                          # every data set, 5 rounds
    python bench/text_threads.py --data ap bbc --rounds 3 --threads 1 2 None
    python bench/text_threads.py --base <another build's src>   # that build's 2-thread fits too
    python bench/text_threads.py --env OPENBLAS_NUM_THREADS=1    # the other environment
    python bench/text_threads.py --no-pair                       # without the machine's ceiling
    python bench/text_threads.py --data-dir DIR                  # AP and BBC from DIR

Each round starts one process per configuration, in turn (1 thread, 2 threads, ...), with
BLAS threads left at their default; each process loads the data, fits once and prints the
fit's wall time, CPU-seconds, the seconds the host took from the VM's vCPUs meanwhile
(/proc/stat's steal, all vCPUs: a lockstep fit stops when either is taken) and held-out
log-loss. The table gives medians (range) and the pairwise ratio of each configuration to one
thread of the same round. Each process validates X with scikit-learn once before the fit,
as a script's split or vectorizer does (a process's first validation reads every installed
package's entry points: 3.6-5.0 ms here, in either configuration's fit otherwise), and runs
Python's full garbage collection before its NumPy call and the timer: a fresh process that
imported NumPy, SciPy and scikit-learn owes one (40-60 ms here), which fell inside about a
third of the fits, whatever their threads (timeit likewise times with the collector off).
Before each round, bench/thread_wait.py's C program times a cache line's round trip between
two threads (needs ``cc``): this VM's host moves between states (70-200 ns and 390-570 ns)
that decide what threads that share anything can gain.

Each round also runs two one-thread fits in two processes at once, their timers started
together (``1 + 1``; ``--no-pair`` leaves it out): they share nothing, so half the slower one's
wall is what the machine's two cores can give the one-thread work in that round, and its
speed-up over the round's one thread is the ceiling of any 2-thread fit's (these processes use
one BLAS thread each: an idle OpenBLAS thread's spin would take the other fit's core).

Data (log loss, alpha 1e-5, the 'optimal' schedule, tf-idf rows scaled to unit length):

- textlike: Zipf words (exponent 1.0), 250 draws a row, 130,000 features, 11,000 rows for
  training and 1,000 held out (the rows of bench/thread_wait.py), 40 epochs;
- ap: the Associated Press documents of ../shared/data (2,246, 10,473 words); the label is
  whether a document uses the word "percent", which is removed from its row; x 8 copies
  of the training rows, 10 epochs;
- bbc: the BBC news of ../shared/data (2,225, 2,949 words), its 5 categories one-vs-rest
  (a model of 14,745 weights); x 8 copies, 10 epochs.

A tenth of the documents (every tenth) is held out before copying.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from thread_wait import round_trip_probe

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"  # or $DPSGD_DATA_DIR (--data-dir)
EPOCHS = {"textlike": 40, "ap": 10, "bbc": 10}
PAIR = "1 + 1 (two processes, half the slower's wall)"

CHILD = r"""
import gc, json, os, resource, sys, time
sys.path.insert(0, sys.argv[4])
import numpy as np
from sklearn.metrics import log_loss
sys.path.insert(0, sys.argv[5])
from text_threads import load
from dpsgd import SGDClassifier
name, threads, epochs = sys.argv[1], None if sys.argv[2] == "None" else int(sys.argv[2]), int(sys.argv[3])
X, y, X_test, y_test = load(name)
# a user's script has called scikit-learn's validation before its fit (a split, a vectorizer):
# a process's first one reads every installed package's entry points (3.6-5.0 ms here), once
from sklearn.utils import check_array
check_array(X, accept_sparse="csr")
def steal():  # seconds the host took from this VM's vCPUs (/proc/stat), or 0
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
gc.collect()  # the imports' collection (40-60 ms, in a third of fresh processes' first fits)
a = np.random.rand(300, 300); a @ a  # a user's NumPy call before the fit wakes BLAS threads
if sys.argv[6] == "pair":  # start the timer with the other process of the pair
    print("ready", flush=True)
    sys.stdin.readline()
r0, s0, tic = resource.getrusage(resource.RUSAGE_SELF), steal(), time.perf_counter()
est = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=epochs, tol=None, n_threads=threads,
                    random_state=0).fit(X, y)
wall, r1 = time.perf_counter() - tic, resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall": wall, "cpu": r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime,
                  "steal": steal() - s0, "threads_used": est.n_threads_,
                  "test_loss": log_loss(y_test, est.predict_proba(X_test), labels=est.classes_)}))
"""


def _tfidf(counts):
    """Rows of counts -> tf-idf rows of unit length (scikit-learn's TfidfTransformer defaults)."""
    import numpy as np
    import scipy.sparse as sp

    counts = sp.csr_matrix(counts, dtype=np.float64)
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1 + counts.shape[0]) / (1 + df)) + 1.0
    X = counts.multiply(idf).tocsr()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return sp.csr_matrix(X.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]))


def _split_and_copy(X, y, copies):
    import numpy as np
    import scipy.sparse as sp

    held = np.arange(X.shape[0]) % 10 == 9
    X_train, y_train = X[~held], y[~held]
    X_train = sp.vstack([X_train] * copies, format="csr")
    X_train.sort_indices()
    return X_train, np.tile(y_train, copies), X[held], y[held]


def load(name, copies=8):
    """(X_train, y_train, X_test, y_test) of a data set (module docstring)."""
    import numpy as np
    import scipy.sparse as sp

    if name == "textlike":
        from dpsgd.data import make_sparse_classification

        X, y, _ = make_sparse_classification(12_000, 130_000, 250, zipf_exponent=1.0, zipf_offset=2.0,
                                             random_state=0)
        return X[:11_000], y[:11_000], X[11_000:], y[11_000:]
    data = Path(os.environ.get("DPSGD_DATA_DIR") or SHARED)
    if name == "ap":
        from dpsgd.data.uci_bow import load_uci_bow

        folder = data / "ap_associated_press"
        counts, vocab = load_uci_bow(folder / "docword.ap.txt", folder / "vocab.ap.txt")
        counts = sp.csr_matrix(counts)
        word = list(vocab).index("percent")
        y = np.where(counts[:, word].toarray().ravel() > 0, 1, -1)
        keep = np.arange(counts.shape[1]) != word
        return _split_and_copy(_tfidf(counts[:, keep]), y, copies)
    if name == "bbc":
        folder = data / "bbc_news_octis"
        vocab = {w: i for i, w in enumerate((folder / "vocabulary.txt").read_text().split())}
        rows, cols, labels = [], [], []
        for r, line in enumerate((folder / "corpus.tsv").read_text().splitlines()):
            text, _, label = line.split("\t")
            ids = [vocab[w] for w in text.split() if w in vocab]
            rows += [r] * len(ids)
            cols += ids
            labels.append(label)
        counts = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(labels), len(vocab)))
        counts.sum_duplicates()
        return _split_and_copy(_tfidf(counts), np.array(labels), copies)
    raise ValueError(name)


def _child(name, threads, epochs, src, mode="alone"):
    return [sys.executable, "-c", CHILD, name, str(threads), str(epochs), src, str(HERE), mode]


def run(name, threads, epochs, src, env):
    out = subprocess.run(_child(name, threads, epochs, src), capture_output=True, text=True, env=env, timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_pair(name, epochs, src, env):
    """Two one-thread fits in two processes at once, timers started together: what the
    machine's two cores give two copies of the one-thread work, which share nothing.
    One BLAS thread in each (an idle OpenBLAS thread's spin would take the other fit's core)."""
    env = dict(env, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(_child(name, 1, epochs, src, "pair"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    try:
        for p in procs:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(p.communicate(timeout=900)[1][-2000:])
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            p.kill()
    if any(p.returncode for p in procs):
        raise RuntimeError("".join(err for _, err in outs)[-2000:])
    fits = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    # the pair did two fits' work in the slower one's time: its speed-up is 2 x one thread's wall / that
    return {**fits[0], "wall": max(f["wall"] for f in fits) / 2, "cpu": sum(f["cpu"] for f in fits) / 2,
            "steal": max(f["steal"] for f in fits), "pair_walls": [f["wall"] for f in fits]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["textlike", "ap", "bbc"], choices=list(EPOCHS))
    parser.add_argument("--threads", nargs="+", default=["1", "2"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", help="the src folder of another build: its 2-thread fits join each round")
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--env", nargs="*", default=[], help="NAME=VALUE settings for the fits")
    parser.add_argument("--no-pair", action="store_true", help="leave out the two one-thread processes at once")
    parser.add_argument("--data-dir", help=f"the folder of ap_associated_press/ and bbc_news_octis/ (default {SHARED})")
    args = parser.parse_args(argv)
    env = dict(os.environ, **dict(kv.split("=", 1) for kv in args.env))
    if args.data_dir:
        env["DPSGD_DATA_DIR"] = args.data_dir
    probe = round_trip_probe()
    src = str(HERE.parent / "src")
    configs = [(t, src, t) for t in args.threads]
    if args.base:
        configs.append(("2", args.base, "2 (base)"))
    if not args.no_pair:
        configs.append(("pair", src, PAIR))
    print(f"load before: {os.getloadavg()[0]:.2f}; settings: {args.env or 'none'}", flush=True)
    results = {}
    for name in args.data:
        runs = {label: [] for _, _, label in configs}
        trips = []
        for _ in range(args.rounds):
            if probe:
                trips.append(float(subprocess.run([str(probe)], capture_output=True, text=True).stdout))
            for threads, where, label in configs:
                runs[label].append(run_pair(name, EPOCHS[name], where, env) if threads == "pair"
                                   else run(name, threads, EPOCHS[name], where, env))
        results[name] = {**runs, "round_trip_ns": trips}
        one = runs[args.threads[0]]
        print(f"\n{name} ({EPOCHS[name]} epochs), {args.rounds} fresh processes each, medians (range); a line's "
              f"round trip before each round: {', '.join(f'{t:.0f}' for t in trips) or 'not timed'} ns")
        print("| threads | used | wall s | CPU s | steal s (max) | test log-loss | wall / first's, same round |")
        print("|---|---|---|---|---|---|---|")
        for label, rs in runs.items():
            walls = [r["wall"] for r in rs]
            ratios = [o["wall"] / r["wall"] for o, r in zip(one, rs)]
            print(f"| {label} | {sorted({r['threads_used'] for r in rs})} | {statistics.median(walls):.3f} "
                  f"({min(walls):.3f}-{max(walls):.3f}) | {statistics.median(r['cpu'] for r in rs):.3f} | "
                  f"{statistics.median(r['steal'] for r in rs):.2f} ({max(r['steal'] for r in rs):.2f}) | "
                  f"{statistics.median(r['test_loss'] for r in rs):.4f} | speed-up {statistics.median(ratios):.2f}x "
                  f"({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)
        if PAIR in runs:
            for label in runs:
                if label not in (args.threads[0], PAIR):
                    shares = [p["wall"] / r["wall"] for p, r in zip(runs[PAIR], runs[label])]
                    print(f"{label}: share of the round's ceiling (the pair's wall / this wall) "
                          f"{statistics.median(shares):.2f} ({min(shares):.2f}-{max(shares):.2f})")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
