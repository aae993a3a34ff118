"""What an LDA fit allocates beyond its data: tracemalloc's peak and the resident peak's growth.

    python bench/fit_memory.py [--corpus synthetic ap] [--configs dpsgd-batch,1 dpsgd-batch,2 ...]
    python bench/fit_memory.py --linear [--threads 1 2]

``--linear`` measures dpsgd's ``SGDClassifier`` instead (log loss, 5 epochs) on the RCV1-like
rows (x0.5: 100,000 x 47,236) and the text-like rows of bench/rcv1like.py, the same way.

The corpora and settings of bench/compare_lda.py (2 passes, its K). Each config runs in a fresh
process that loads the corpus, fits 200 documents once (the imports and thread pools a first
fit brings: compare_lda.py's "+fit MB" counts them), then measures a fit of the whole corpus:

- "traced MB": tracemalloc's peak during the fit (NumPy's arrays are traced, thread stacks
  and the interpreter's own caches are not);
- "+RSS MB": how much the resident peak (VmHWM, reset before the fit) grew;
- the model (the K x V topics) and the data (the CSR arrays) for scale: the target of issue 13
  is a peak of at most model + data + 10%, that is traced MB <= model + 10% of (model + data)
  while the data is already loaded.
"""

import argparse
import json
import os
import subprocess
import sys
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))


def one(corpus, library, threads):
    sys.path.insert(0, HERE)
    import compare_lda

    X, _, K = compare_lda.load(corpus)
    data_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    compare_lda.fit(library, X[:200], K, 1, threads)
    compare_lda._reset_peak_rss()
    before = compare_lda._peak_rss_mb()
    tracemalloc.start()
    topics = compare_lda.fit(library, X, K, 2, threads)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    model_mb = topics.nbytes / 2**20
    return {"corpus": corpus, "config": f"{library} x{threads}", "data_mb": data_mb, "model_mb": model_mb,
            "traced_mb": peak / 2**20, "rss_mb": compare_lda._peak_rss_mb() - before,
            "allowed_mb": model_mb + 0.1 * (model_mb + data_mb)}


def one_linear(data, threads):
    sys.path.insert(0, HERE)
    import compare_lda
    import rcv1like

    from dpsgd import SGDClassifier

    X, y = (rcv1like.load(0.5) if data == "rcv1like" else rcv1like.textlike(1.0))[:2]
    data_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + y.nbytes) / 2**20
    kw = dict(loss="log_loss", tol=None, n_threads=threads, random_state=0)
    SGDClassifier(max_iter=1, **kw).fit(X[:1000], y[:1000])
    compare_lda._reset_peak_rss()
    before = compare_lda._peak_rss_mb()
    tracemalloc.start()
    clf = SGDClassifier(max_iter=5, **kw).fit(X, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    model_mb = (clf.coef_.nbytes + clf.intercept_.nbytes) / 2**20
    return {"corpus": data, "config": f"SGDClassifier x{threads}", "data_mb": data_mb, "model_mb": model_mb,
            "traced_mb": peak / 2**20, "rss_mb": compare_lda._peak_rss_mb() - before,
            "allowed_mb": model_mb + 0.1 * (model_mb + data_mb)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", nargs="+", choices=["synthetic", "ap"], default=["synthetic", "ap"])
    p.add_argument("--configs", nargs="+", default=["dpsgd-batch,1", "dpsgd-batch,2", "dpsgd-hogwild,2"])
    p.add_argument("--linear", action="store_true", help="dpsgd's SGDClassifier on RCV1-like and text-like rows")
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="with --linear")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        corpus, library, threads = args.one.split(",")
        if library == "linear":
            print(json.dumps(one_linear(corpus, int(threads))))
        else:
            print(json.dumps(one(corpus, library, int(threads))))
        return
    if args.linear:
        args.corpus, args.configs = ["rcv1like", "textlike"], [f"linear,{t}" for t in args.threads]
    print(f"{'corpus':10s} {'config':18s} {'data MB':>8s} {'model MB':>9s} {'traced MB':>10s} {'+RSS MB':>8s} "
          f"{'allowed MB':>11s}")
    for corpus in args.corpus:
        for config in args.configs:
            out = subprocess.run([sys.executable, __file__, "--one", f"{corpus},{config}"], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['corpus']:10s} {r['config']:18s} {r['data_mb']:8.1f} {r['model_mb']:9.2f} "
                  f"{r['traced_mb']:10.3f} {r['rss_mb']:8.1f} {r['allowed_mb']:11.3f}", flush=True)


if __name__ == "__main__":
    main()
