"""Side by side: dpsgd's DPSVI against gensim (LdaModel, LdaMulticore) and scikit-learn's online LDA.

    python bench/compare_lda.py [--corpus synthetic|ap|both] [--passes 2] [--threads 1 2]
                                [--docs 33000] [--data-dir ../shared/data]

Every library gets the same corpus, number of topics K, priors alpha = eta = 1/K,
kappa 0.7, tau0 10, minibatch 128 documents, E-step limits (100 iterations,
mean change 1e-3) and number of passes; 10% of the documents are held out.
Every model is scored by the same evaluator: dpsgd.evaluation.heldout_log_likelihood
(per-word predictive log-likelihood by document completion, nats, higher is
better) on its topic-word matrix. Each run is a fresh subprocess: "before MB" is
its resident memory with the libraries and the corpus loaded, "+fit MB" what its
peak grew by during the fit (VmHWM, reset after loading), "worker MB" the largest
peak of a forked worker (LdaMulticore; pages shared with the parent included).
Needs gensim (pip install gensim).
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

import dpsgd
import rcv1like  # bench/rcv1like.py: the generated corpus, cached
from dpsgd.data import load_uci_bow
from dpsgd.evaluation import heldout_log_likelihood

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
COMMON = dict(decay=0.7, offset=10.0, batch=128, iterations=100, tol=1e-3)


def load(corpus, docs=33_000, data_dir=DATA):
    if corpus == "synthetic":
        X = rcv1like.lda_corpus(docs)
        K = 20
    else:
        X, _ = load_uci_bow(os.path.join(data_dir, "ap_associated_press", "docword.ap.txt"))
        K = 50
    order = np.random.default_rng(0).permutation(X.shape[0])
    n_test = X.shape[0] // 10
    return X[order[n_test:]], X[order[:n_test]], K


def fit(library, X, K, passes, threads):
    """Fit one configuration; return its topic-word matrix (K x V)."""
    c = COMMON
    if library == "dpsgd-batch" or library == "dpsgd-hogwild":
        model = dpsgd.LatentDirichletAllocation(
            K, learning_decay=c["decay"], learning_offset=c["offset"], batch_size=c["batch"],
            max_iter=passes, max_doc_update_iter=c["iterations"], mean_change_tol=c["tol"],
            n_threads=threads, parallel=library.split("-")[1], random_state=0).fit(X)
        return model.components_
    if library == "sklearn":
        from sklearn.decomposition import LatentDirichletAllocation

        model = LatentDirichletAllocation(
            K, learning_method="online", learning_decay=c["decay"], learning_offset=c["offset"],
            batch_size=c["batch"], max_iter=passes, max_doc_update_iter=c["iterations"],
            mean_change_tol=c["tol"], n_jobs=threads, total_samples=X.shape[0], random_state=0).fit(X)
        return model.components_
    from gensim.matutils import Sparse2Corpus
    from gensim.models import LdaModel, LdaMulticore

    corpus = Sparse2Corpus(X, documents_columns=False)
    id2word = {i: str(i) for i in range(X.shape[1])}
    kw = dict(num_topics=K, id2word=id2word, chunksize=c["batch"], passes=passes, alpha=1.0 / K, eta=1.0 / K,
              decay=c["decay"], offset=c["offset"], iterations=c["iterations"], gamma_threshold=c["tol"],
              eval_every=None, random_state=0)
    if library == "gensim-LdaModel":
        model = LdaModel(corpus, update_every=1, **kw)
    else:
        model = LdaMulticore(corpus, workers=threads, **kw)
    return model.state.get_lambda()


def _peak_rss_mb():
    """VmHWM: this process's peak resident memory (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def run_one(corpus, library, passes, threads, docs=33_000, data_dir=DATA):
    X_train, X_test, K = load(corpus, docs, data_dir)
    _reset_peak_rss()
    before = _peak_rss_mb()  # interpreter, libraries and the corpus
    tic = time.perf_counter()
    topics = fit(library, X_train, K, passes, threads)
    seconds = time.perf_counter() - tic
    peak = _peak_rss_mb()
    return {
        "library": library, "threads": threads, "seconds": seconds, "n_train": X_train.shape[0],
        "n_test": X_test.shape[0], "V": X_train.shape[1], "K": K,
        "docs_per_s": passes * X_train.shape[0] / seconds,
        "heldout": heldout_log_likelihood(topics, X_test, 1.0 / K),
        "before_mb": before, "fit_mb": peak - before,
        # forked workers (LdaMulticore): their largest peak, pages shared with the parent included
        "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "model_mb": topics.nbytes / 2**20,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["synthetic", "ap", "both"], default="both")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--docs", type=int, default=33_000, help="synthetic documents, 10%% of them held out")
    parser.add_argument("--data-dir", default=DATA, help="the folder holding ap_associated_press/")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one config, print JSON
    args = parser.parse_args(argv)
    if args.one:
        corpus, library, threads = args.one.split(",")
        print(json.dumps(run_one(corpus, library, args.passes, int(threads), args.docs, args.data_dir)))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; dpsgd {dpsgd.__version__}")
    corpora = ["synthetic", "ap"] if args.corpus == "both" else [args.corpus]
    configs = [("dpsgd-batch", t) for t in args.threads] + [("dpsgd-hogwild", t) for t in args.threads if t > 1]
    configs += [("gensim-LdaModel", 1)] + [("gensim-LdaMulticore", t) for t in args.threads]
    configs += [("sklearn", t) for t in args.threads]
    for corpus in corpora:
        rows = []
        for library, threads in configs:
            out = subprocess.run([sys.executable, __file__, "--one", f"{corpus},{library},{threads}",
                                  "--passes", str(args.passes), "--docs", str(args.docs), "--data-dir", args.data_dir],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{library} x{threads}: failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if not rows:
            continue
        r0 = rows[0]
        print(f"\n{corpus}: {r0['n_train']} training documents, {r0['n_test']} held out, V={r0['V']}, "
              f"K={r0['K']} (model {r0['model_mb']:.1f} MB), {args.passes} passes, minibatch {COMMON['batch']}")
        print(f"{'':24s} {'docs/s':>9s} {'vs LdaModel':>11s} {'held-out LL':>12s} {'before MB':>9s} "
              f"{'+fit MB':>8s} {'worker MB':>9s}")
        base = next((r["docs_per_s"] for r in rows if r["library"] == "gensim-LdaModel"), np.nan)
        for r in rows:
            print(f"{r['library'] + ' x' + str(r['threads']):24s} {r['docs_per_s']:9.0f} "
                  f"{r['docs_per_s'] / base:10.2f}x {r['heldout']:12.4f} {r['before_mb']:9.0f} "
                  f"{r['fit_mb']:8.0f} {r['worker_peak_mb']:9.0f}")


if __name__ == "__main__":
    main()
