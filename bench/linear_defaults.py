"""Choose the round length and step policy of distributed linear models from real data.

For each data set, each number of ranks and each configuration, every rank fits its
contiguous share of the training rows (as ``mpiexec -n R dpsgd train linear --data`` does)
for the same number of epochs as one process, and rank 0 reports the test log-loss of the
final global model. The table gives each configuration's log-loss relative to one process
(mean over seeds), so a default can be read off as the one that is within a few percent
everywhere.

    python bench/linear_defaults.py                       # the sweep behind the defaults
    python bench/linear_defaults.py --ranks 2 4 --seeds 0 1 2

Data: a9a and agaricus from ../shared/data (skipped where absent), an RCV1-like set and an
imbalanced w8a-like set (300 binary features, 3% positives) generated here. Settings as the
issue that asked for it: log loss, alpha 1e-5, 10 epochs, optimal schedule, one thread per rank.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
EPOCHS = 10
# (name, sync_every: an int, or "auto" = the estimator's default, or "shard/m" = m rounds per
# pass over the rank's rows, policy)
SWEEP = [("H=256", 256, None), ("H=1024", 1024, None), ("H=4096", 4096, None),
           ("H=256 budget", 256, "budget"), ("H=1024 budget", 1024, "budget"), ("H=4096 budget", 4096, "budget"),
           ("shard/32", "shard/32", None), ("shard/128", "shard/128", None),
           ("shard/32 budget", "shard/32", "budget"), ("defaults", "auto", "auto")]
# the second, finer sweep around the first one's best (python bench/linear_defaults.py --fine)
FINE = [(f"shard/{m}{' budget' if p else ''}", f"shard/{m}", p) for m in (16, 32, 64) for p in (None, "budget")]
# the defaults against the old ones and the policy
FINAL = [("old: 4096 + budget", 4096, "budget"), ("auto + unscaled", "auto", None),
         ("defaults: auto + budget", "auto", "auto")]
SHORT = [(f"H={h}{' budget' if p else ''}", h, p) for h in (16, 64) for p in (None, "budget")] + \
    [(f"shard/{m}{' budget' if p else ''}", f"shard/{m}", p) for m in (128, 512) for p in (None, "budget")]


def load(name):
    """(X, y, X_test, y_test) of a data set, or None when its files are absent."""
    from dpsgd.data import load_a9a, load_svmlight, make_imbalanced_binary, make_sparse_classification

    if name == "a9a":
        return load_a9a()
    if name in ("agaricus", "agaricus-shuffled"):
        folder = SHARED / "agaricus_mushroom"
        if not folder.exists():
            return None
        X, y = load_svmlight(folder / "agaricus.txt.train", n_features=127)
        X_test, y_test = load_svmlight(folder / "agaricus.txt.test", n_features=127)
        if name == "agaricus-shuffled":  # the file holds its classes in blocks: contiguous shards
            order = np.random.default_rng(0).permutation(X.shape[0])  # are far from alike
            X, y = X[order], y[order]
        return X, y, X_test, y_test
    if name == "rcv1-like":
        X, y, _ = make_sparse_classification(60_000, 20_000, 75, random_state=0)
        return X[:50_000], y[:50_000], X[50_000:], y[50_000:]
    if name == "w8a-like":
        X, y = make_imbalanced_binary(50_000, 300, random_state=0)
        return X[:35_000], y[:35_000], X[35_000:], y[35_000:]
    raise ValueError(name)


def child(dataset, seeds, configs, alpha):
    """Run under mpiexec (or alone for one process): every configuration, every seed."""
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier
    from dpsgd.comm import world

    comm = world()
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    X, y, X_test, y_test = load(dataset)
    first, last = np.linspace(0, X.shape[0], size + 1).round().astype(int)[rank:rank + 2]
    mine = slice(first, last)
    results = {}
    for name, sync, policy in (configs if comm else [("one process", 1, None)]):
        kw = {}
        if comm:
            kw["comm"] = comm
            if sync != "auto":
                kw["sync_every"] = max(1, (last - first) // int(sync[6:])) if str(sync).startswith("shard/") \
                    else sync
            if policy != "auto":
                kw["step_policy"] = policy
        losses = []
        for seed in seeds:
            clf = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=EPOCHS, tol=None, n_threads=1,
                                random_state=seed, **kw).fit(X[mine], y[mine])
            if rank == 0:
                losses.append(log_loss(y_test, clf.predict_proba(X_test)))
        results[name] = losses
    if rank == 0:
        print(json.dumps(results))


def _configs(args):
    return FINE if args.fine else SHORT if args.short else FINAL if args.final else SWEEP


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["a9a", "agaricus", "agaricus-shuffled", "rcv1-like",
                                                      "w8a-like"])
    parser.add_argument("--ranks", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--alpha", type=float, default=1e-5)
    parser.add_argument("--fine", action="store_true", help="the finer sweep around shard/32")
    parser.add_argument("--short", action="store_true", help="short rounds (agaricus)")
    parser.add_argument("--final", action="store_true", help="the defaults against the old ones")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.seeds, _configs(args), args.alpha)
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    seeds = [str(s) for s in args.seeds]
    names = [c[0] for c in _configs(args)]
    print(f"test log-loss relative to one process (and itself) (mean of seeds {args.seeds}); {EPOCHS} epochs, "
          f"alpha {args.alpha}")
    print("| data | ranks | one process | " + " | ".join(names) + " |")
    print("|---" * (3 + len(names)) + "|")
    for dataset in args.data:
        if load(dataset) is None:
            print(f"{dataset}: absent, skipped")
            continue
        base = [sys.executable, __file__, "--child", dataset, "--seeds", *seeds, "--alpha", str(args.alpha)]
        base += [f"--{k}" for k in ("fine", "short", "final") if getattr(args, k)]
        one = json.loads(subprocess.run(base, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        ref = np.mean(one["one process"])
        for ranks in args.ranks:
            out = subprocess.run([mpiexec, "-n", str(ranks), *base], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{dataset} x{ranks} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            res = json.loads(out.stdout.splitlines()[-1])
            # a near-separable set (agaricus) has a log-loss near 0: its ratios say little, so
            # every cell also gives the loss itself
            cells = [f"{np.mean(res[n]) / ref:.3f} ({np.mean(res[n]):.4f})" for n in names]
            print(f"| {dataset} | {ranks} | {ref:.4f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
