"""Held-out quality of LDA: dpsgd (re-seeding off and on), scikit-learn and gensim, one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python bench/lda_quality.py \
        [--corpora ap bbc synthetic] [--seeds 0 1 2 3] [--passes ap=10 bbc=5 synthetic=5]

Every library fits the same training documents (tests/lda_corpora.py: AP and BBC News from
../shared/data, and the generated corpus of ``dpsgd train lda``; 10% of the documents held
out, the same split for all) with the same settings: K = 20, alpha = eta = 1/K, kappa 0.7,
tau0 10, minibatch 128, E-step limits 100 iterations / mean change 1e-3, one thread. Every
model is scored by the same code on its topic-word matrix (dpsgd.evaluation):

- held-out LL: per-word predictive log-likelihood by document completion (nats; higher is
  better; half of each held-out document's tokens infer theta, the other half are scored);
- perplexity: exp(-variational bound / tokens) of the held-out documents (base e, scikit-
  learn's definition; lower is better);
- recovery (generated corpus only): mean cosine of the learned topics matched to the true ones.

It measures quality, not speed: run it on any machine, busy or not.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the shared corpus definitions

import lda_corpora  # noqa: E402

from dpsgd import LatentDirichletAllocation  # noqa: E402
from dpsgd.evaluation import heldout_log_likelihood, match_topics, perplexity  # noqa: E402

K = 20
COMMON = dict(decay=0.7, offset=10.0, batch=128, iterations=100, tol=1e-3)
METHODS = ("dpsgd", "dpsgd reseed", "scikit-learn", "gensim LdaModel")
DEFAULT_PASSES = {"ap": 10, "bbc": 5, "synthetic": 5}


def fit(method, X, passes, seed):
    """Fit one model; return its topic-word matrix (K x V) and the topics it re-seeded."""
    c = COMMON
    if method.startswith("dpsgd"):
        model = LatentDirichletAllocation(
            K, learning_decay=c["decay"], learning_offset=c["offset"], batch_size=c["batch"], max_iter=passes,
            max_doc_update_iter=c["iterations"], mean_change_tol=c["tol"], n_threads=1,
            reseed_topics=method == "dpsgd reseed", random_state=seed).fit(X)
        return model.components_, model.n_reseeded_
    if method == "scikit-learn":
        from sklearn.decomposition import LatentDirichletAllocation as SkLDA

        model = SkLDA(K, learning_method="online", learning_decay=c["decay"], learning_offset=c["offset"],
                      batch_size=c["batch"], max_iter=passes, max_doc_update_iter=c["iterations"],
                      mean_change_tol=c["tol"], total_samples=X.shape[0], n_jobs=1, random_state=seed).fit(X)
        return model.components_, 0
    from gensim.matutils import Sparse2Corpus
    from gensim.models import LdaModel

    model = LdaModel(Sparse2Corpus(X, documents_columns=False), num_topics=K,
                     id2word={i: str(i) for i in range(X.shape[1])}, chunksize=c["batch"], passes=passes,
                     update_every=1, alpha=1.0 / K, eta=1.0 / K, decay=c["decay"], offset=c["offset"],
                     iterations=c["iterations"], gamma_threshold=c["tol"], eval_every=None, random_state=seed)
    return model.state.get_lambda(), 0


def score(topics, X_test, true_topics):
    row = {"heldout_ll": heldout_log_likelihood(topics, X_test, 1.0 / K),
           "perplexity": perplexity(topics, X_test, 1.0 / K, 1.0 / K)}
    if true_topics is not None:
        row["recovery"] = match_topics(true_topics, topics)[0]
    return row


def run_corpus(name, passes, seeds):
    X, true_topics = lda_corpora.load(name, K)
    X_train, X_test = lda_corpora.split(X)
    print(f"\n{name}: {X_train.shape[0]} training documents, {X_test.shape[0]} held out, V={X.shape[1]}, "
          f"{int(X.sum())} tokens; K={K}, {passes} passes, minibatch {COMMON['batch']}, seeds {seeds}", flush=True)
    rows = {m: [] for m in METHODS}
    for seed in seeds:
        for method in METHODS:
            tic = time.perf_counter()
            topics, reseeded = fit(method, X_train, passes, seed)
            rows[method].append({**score(topics, X_test, true_topics), "reseeded": reseeded,
                                 "seconds": time.perf_counter() - tic})
    print_table(rows, true_topics is not None)


def print_table(rows, with_recovery):
    head = (f"| {'method':16s} | {'held-out LL (mean)':>18s} | {'held-out LL per seed':30s} | "
            f"{'perplexity (mean)':>17s} | {'perplexity per seed':30s} |")
    head += " recovery |" if with_recovery else ""
    head += " re-seeded |"
    print(head)
    print("|" + "|".join("-" * (len(cell) + 0) for cell in head.split("|")[1:-1]) + "|")
    for method, runs in rows.items():
        ll = [r["heldout_ll"] for r in runs]
        ppl = [r["perplexity"] for r in runs]
        line = (f"| {method:16s} | {np.mean(ll):18.4f} | {' '.join(f'{v:.4f}' for v in ll):30s} | "
                f"{np.mean(ppl):17.1f} | {' '.join(f'{v:.1f}' for v in ppl):30s} |")
        if with_recovery:
            line += f" {np.mean([r['recovery'] for r in runs]):8.4f} |"
        line += f" {' '.join(str(r['reseeded']) for r in runs):>9s} |"
        print(line, flush=True)


def parse_passes(items):
    passes = dict(DEFAULT_PASSES)
    for item in items:
        name, _, value = item.partition("=")
        if name not in passes or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"--passes: expected corpus=count with a corpus of {sorted(passes)}, got {item!r}")
        passes[name] = int(value)
    return passes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", choices=["ap", "bbc", "synthetic"], default=["ap", "bbc", "synthetic"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--passes", nargs="*", default=[], help="corpus=passes, e.g. ap=10 bbc=5")
    args = parser.parse_args(argv)
    passes = parse_passes(args.passes)
    for name in args.corpora:
        if name != "synthetic" and lda_corpora.corpus_path(name) is None:
            print(f"\n{name}: skipped, {lda_corpora.SHARED_DATA / lda_corpora.FOLDERS[name]} is absent")
            continue
        run_corpus(name, passes[name], args.seeds)


if __name__ == "__main__":
    main()
