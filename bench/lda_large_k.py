"""LDA documents/s on one thread at several K: two dpsgd builds (A B A B), gensim's LdaModel and scikit-learn.

    python bench/lda_large_k.py --base /tmp/svi-base/src [--corpus ap synthetic] [--K 20 50 100]
                                [--repeats 3] [--passes 2] [--docs 8000] [--gensim-repeats 1]
                                [--sklearn-repeats 0]

Every fit is a fresh subprocess, with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set to 1 (so gensim's BLAS runs on one thread too), and takes the
settings of bench/compare_lda.py (its load and fit: 10% held out, minibatch 128,
alpha = eta = 1/K, kappa 0.7, tau0 10, E-step limits 100 iterations / 1e-3) at the K given.
"old" runs with PYTHONPATH=--base (a built checkout's src/, e.g. a git worktree of the base
commit built in place), "new" with this checkout's src/; within each repeat the order of the
runs alternates. All topic matrices are scored by this checkout's
dpsgd.evaluation.heldout_log_likelihood. Prints one row per (corpus, K): medians of docs/s with
their range, the new/old ratios of each repeat's pair, new/gensim, and the held-out LLs.

Measured 2026-12-01 (2 shared cores, AVX2+FMA, load 0.6-1.4; two runs of 3 A B pairs and 2
gensim fits each; old = c2dc12c, new = exp_psi.h + estep.h; docs/s medians, the two runs'):

    corpus           K    old        new          gensim     new/old    new/gensim
    AP (2022 docs)   20   4126/3754  8366/7549    1250/1234  2.03/2.05  6.69/6.12
                     50   2371/2367  5158/4923    1033/963   2.18/2.09  4.99/5.11
                    100   1395/1279  3438/3017     806/716   2.51/2.36  4.27/4.22
                    200    738/711   1894/1747     491/445   2.56/2.49  3.86/3.93
    synthetic (7200) 20   9267/9513  19017/19770  2148/2196  2.04/2.08  8.85/9.00
                     50   5126/5399  11598/12004  1767/1830  2.26/2.23  6.56/6.56
                    100   2710/2954  6673/7326    1252/1355  2.46/2.54  5.33/5.41
                    200   1550/1650  3782/4177     831/939   2.46/2.52  4.55/4.45

Held-out LL: new equal to old to 4 decimals at every K; new against gensim -0.81% to +0.72%.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "src")


def run_one(corpus, library, K, passes, docs, out_path):
    """In the subprocess: load, fit, save the topics; print seconds and docs/s as JSON."""
    import time

    import compare_lda  # bench/, next to this file

    X_train, _, _ = compare_lda.load(corpus, docs)
    tic = time.perf_counter()
    topics = compare_lda.fit(library, X_train, K, passes, 1)
    seconds = time.perf_counter() - tic
    np.save(out_path, topics)
    print(json.dumps({"seconds": seconds, "docs_per_s": passes * X_train.shape[0] / seconds}))


def spawn(corpus, library, K, passes, docs, src, tmp):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([src, HERE]))
    path = os.path.join(tmp, f"{corpus}-{library}-{K}-{len(os.listdir(tmp))}.npy")
    out = subprocess.run([sys.executable, __file__, "--one", f"{corpus},{library},{K}", "--passes", str(passes),
                          "--docs", str(docs), "--out", path], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{library} K={K} failed: {out.stderr[-2000:]}")
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["topics"] = path
    return row


def spread(values):
    v = np.asarray(values, float)
    return f"{np.median(v):8.1f} ({v.min():.1f}-{v.max():.1f})"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=False, help="src/ of the old build (default: only the new build)")
    p.add_argument("--corpus", nargs="+", choices=["ap", "synthetic"], default=["ap"])
    p.add_argument("--K", type=int, nargs="+", default=[20, 50, 100])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--gensim-repeats", type=int, default=1)
    p.add_argument("--sklearn-repeats", type=int, default=0,
                   help="fits of scikit-learn's online LDA (one job) per cell, beside gensim's")
    p.add_argument("--passes", type=int, default=2)
    p.add_argument("--docs", type=int, default=8000, help="synthetic documents, 10%% of them held out")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        corpus, library, K = args.one.split(",")
        run_one(corpus, library, int(K), args.passes, args.docs, args.out)
        return
    sys.path.insert(0, HERE)
    import compare_lda

    from dpsgd.evaluation import heldout_log_likelihood

    builds = [("new", SRC)] + ([("old", args.base)] if args.base else [])
    print(f"load: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in args.corpus:
            _, X_test, _ = compare_lda.load(corpus, args.docs)
            for K in args.K:
                rows = {"old": [], "new": [], "gensim": [], "sklearn": []}
                for rep in range(max(args.repeats, args.gensim_repeats, args.sklearn_repeats)):
                    order = builds if rep % 2 else builds[::-1]
                    if rep < args.repeats:
                        for name, src in order:
                            rows[name].append(spawn(corpus, "dpsgd-batch", K, args.passes, args.docs, src, tmp))
                    if rep < args.gensim_repeats:
                        rows["gensim"].append(spawn(corpus, "gensim-LdaModel", K, args.passes, args.docs, SRC, tmp))
                    if rep < args.sklearn_repeats:
                        rows["sklearn"].append(spawn(corpus, "sklearn", K, args.passes, args.docs, SRC, tmp))
                ll = {name: np.mean([heldout_log_likelihood(np.load(r["topics"]), X_test, 1.0 / K) for r in rs])
                      for name, rs in rows.items() if rs}
                dps = {name: [r["docs_per_s"] for r in rs] for name, rs in rows.items() if rs}
                line = f"{corpus:9s} K={K:<4d}"
                for name in ("old", "new", "gensim", "sklearn"):
                    if name in dps:
                        line += f" {name} {spread(dps[name])} LL {ll[name]:.4f} |"
                if "old" in dps:
                    r = np.array(dps["new"]) / np.array(dps["old"])
                    line += f" new/old {np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})"
                if "gensim" in dps:
                    g = np.median(dps["gensim"])
                    r = np.array(dps["new"]) / g
                    line += f" new/gensim {np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})"
                    if "old" in dps:
                        line += f" old/gensim {np.median(dps['old']) / g:.2f}"
                    line += f" LL (new-gensim)/|gensim| {(ll['new'] - ll['gensim']) / abs(ll['gensim']):+.2%}"
                if "sklearn" in dps:
                    r = np.array(dps["new"]) / np.median(dps["sklearn"])
                    line += (f" new/sklearn {np.median(r):.2f} ({r.min():.2f}-{r.max():.2f})"
                             f" LL (new-sklearn)/|sklearn| {(ll['new'] - ll['sklearn']) / abs(ll['sklearn']):+.2%}")
                print(line, flush=True)
                print("  raw: " + json.dumps({k: [round(x, 1) for x in v] for k, v in dps.items()}), flush=True)
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
