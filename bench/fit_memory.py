"""What an LDA fit allocates beyond its data: tracemalloc's peak and the resident peak's growth.

    python bench/fit_memory.py [--corpus synthetic ap] [--configs dpsgd-batch,1 dpsgd-batch,2 ...]

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", nargs="+", choices=["synthetic", "ap"], default=["synthetic", "ap"])
    p.add_argument("--configs", nargs="+", default=["dpsgd-batch,1", "dpsgd-batch,2", "dpsgd-hogwild,2"])
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        corpus, library, threads = args.one.split(",")
        print(json.dumps(one(corpus, library, int(threads))))
        return
    print(f"{'corpus':10s} {'config':18s} {'data MB':>8s} {'model MB':>9s} {'traced MB':>10s} {'+RSS MB':>8s} "
          f"{'allowed MB':>11s}")
    for corpus in args.corpus:
        for config in args.configs:
            out = subprocess.run([sys.executable, __file__, "--one", f"{corpus},{config}"], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['corpus']:10s} {r['config']:18s} {r['data_mb']:8.1f} {r['model_mb']:9.2f} "
                  f"{r['traced_mb']:10.1f} {r['rss_mb']:8.1f} {r['allowed_mb']:11.1f}", flush=True)


if __name__ == "__main__":
    main()
