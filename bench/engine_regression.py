"""One fit, on one thread unless told, timed inside the process: the figures issue 9 must not regress.

    python bench/engine_regression.py CASE [--threads N]
        # CASE: linear-rcv1, linear-a9a, linear-a9a4 (a9a stacked 4 times: a small model with
        # enough rows for threads), lda-ap, lda-synth

Prints one JSON line: the fit's seconds, and seconds per epoch (linear) or documents per
second (LDA). Run it against two checkouts alternately (``PYTHONPATH=<checkout>/src``) to
compare commits; the data loading is outside the timed part.
"""

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

AP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ap_associated_press" / "docword.ap.txt"


def linear(X, y, epochs, threads=1):
    from dpsgd import SGDClassifier

    clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=epochs, tol=None, n_threads=threads, random_state=0)
    gc.collect()  # not inside the timed fit
    tic = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - tic
    return {"fit_seconds": seconds, "seconds_per_epoch": seconds / epochs}


def lda(X, topics, passes, threads=1):
    from dpsgd import LatentDirichletAllocation

    model = LatentDirichletAllocation(topics, max_iter=passes, n_threads=threads, random_state=0)
    gc.collect()
    tic = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - tic
    return {"fit_seconds": seconds, "documents_per_second": X.shape[0] * passes / seconds}


def main(case, threads=1):
    if case == "linear-rcv1":
        import rcv1like

        X, y, _, _ = rcv1like.load(0.5)
        out = linear(X, y, 20, threads)
    elif case in ("linear-a9a", "linear-a9a4"):
        import numpy as np
        import scipy.sparse as sp

        from dpsgd.data import load_a9a

        X, y, _, _ = load_a9a()
        if case == "linear-a9a4":
            X, y = sp.vstack([X] * 4, format="csr"), np.concatenate([y] * 4)
        out = linear(X, y, 200 if case == "linear-a9a" else 50, threads)
    elif case == "lda-ap":
        from dpsgd.data import load_uci_bow

        X, _ = load_uci_bow(AP)
        out = lda(X, 50, 2, threads)
    elif case == "lda-synth":
        from dpsgd.data import make_lda_corpus

        X, _, _ = make_lda_corpus(5000, 2000, 20, 100, random_state=0)
        out = lda(X, 20, 3, threads)
    else:
        raise SystemExit(f"unknown case {case!r}")
    print(json.dumps({"case": case, "threads": threads, **out}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    main(args.case, args.threads)
