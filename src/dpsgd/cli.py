"""The ``dpsgd`` command.

    dpsgd info
    dpsgd train lda [--corpus docword.txt[.gz] --vocab vocab.txt] [--topics K] [--threads N]
                    [--passes P] [--batch-size B] [--parallel batch|hogwild] [--save model.npz]
    dpsgd train linear [--data FILE.svm] [--test FILE.svm] [--loss log_loss] [--epochs 5]
                       [--threads N] [--save model.npz]

With no ``--corpus``, ``train lda`` runs on a corpus drawn from LDA's generative
model and reports how well the true topics were recovered; with no ``--data``,
``train linear`` trains on the bundled a9a data set.
"""

import argparse
import importlib.util
import sys
import time

import numpy as np


def _mpi_status():
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py not installed (pip install 'dpsgd[mpi]')"
    try:
        import mpi4py
        from mpi4py import MPI

        library = MPI.Get_library_version().strip().splitlines()[0]
        return f"mpi4py {mpi4py.__version__}, MPI {'.'.join(map(str, MPI.Get_version()))}: {library}"
    except Exception as exc:  # a broken MPI install must not break `dpsgd info`
        return f"mpi4py installed but MPI failed to load: {exc}"


def cmd_info(args):
    import dpsgd
    from dpsgd._threads import available_threads

    print(f"dpsgd {dpsgd.__version__}")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    omp = dpsgd.openmp_enabled()
    print(f"OpenMP: {'on' if omp else 'off (serial build)'}; threads available: {available_threads()}; "
          f"n_threads=None uses {dpsgd.effective_n_threads(None)}")
    print(f"MPI: {_mpi_status()}")
    return 0


def _log_loss(y, proba):
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def cmd_train_linear(args):
    from tqdm import tqdm

    from dpsgd import SGDClassifier, save_model
    from dpsgd.data import load_a9a, load_svmlight

    if args.data is None:
        X, y, X_test, y_test = load_a9a()
        source = "bundled a9a (UCI Adult, LIBSVM version)"
    else:
        X, y = load_svmlight(args.data, n_features=args.n_features)
        X_test = y_test = None
        if args.test:
            X_test, y_test = load_svmlight(args.test, n_features=X.shape[1])
        source = args.data
    print(f"data: {source}: {X.shape[0]} rows x {X.shape[1]} features, {X.nnz} non-zeros")

    clf = SGDClassifier(loss=args.loss, penalty=args.penalty, alpha=args.alpha,
                        learning_rate=args.learning_rate, eta0=args.eta0, max_iter=args.epochs,
                        tol=None, n_threads=args.threads, random_state=args.seed)
    bar = tqdm(total=args.epochs, unit="epoch", disable=args.quiet, file=sys.stderr)
    seconds = 0.0

    def progress(epoch, info):
        nonlocal seconds
        seconds += info["seconds"]
        bar.set_postfix(loss=f"{info['loss']:.4f}", nnz_per_s=f"{info['nnz'] / max(info['seconds'], 1e-12):.3g}")
        bar.update(1)

    tic = time.perf_counter()
    clf.fit(X, y, callback=progress)
    wall = time.perf_counter() - tic
    bar.close()
    parts = [f"epochs {clf.n_iter_}", f"threads {clf.n_threads_}", f"train time {wall:.2f} s",
             f"throughput {X.nnz * clf.n_iter_ / max(seconds, 1e-12):.3g} nnz/s",
             f"train accuracy {clf.score(X, y):.4f}"]
    if X_test is not None:
        parts.append(f"test accuracy {clf.score(X_test, y_test):.4f}")
        if args.loss == "log_loss" and clf.classes_.size == 2:
            encoded = np.searchsorted(clf.classes_, y_test)
            parts.append(f"test log-loss {_log_loss(encoded, clf.predict_proba(X_test)):.4f} (nats)")
    print("result: " + ", ".join(parts))
    if args.save:
        save_model(clf, args.save)
        print(f"saved: {args.save}")
    return 0


def cmd_train_lda(args):
    from tqdm import tqdm

    from dpsgd import LatentDirichletAllocation, save_model
    from dpsgd.data import load_uci_bow, make_lda_corpus
    from dpsgd.evaluation import match_topics

    true_topics = None
    if args.corpus is None:
        X, true_topics, _ = make_lda_corpus(args.docs, args.words, args.topics, 100, random_state=args.seed)
        vocabulary = [f"w{i}" for i in range(X.shape[1])]
        source = (f"generated from LDA's model: {args.docs} documents, {args.words} words, "
                  f"{args.topics} true topics")
    else:
        X, vocabulary = load_uci_bow(args.corpus, args.vocab)
        vocabulary = vocabulary or [f"w{i}" for i in range(X.shape[1])]
        source = args.corpus
    print(f"corpus: {source}: {X.shape[0]} documents x {X.shape[1]} words, {int(X.sum())} tokens")
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(X.shape[0])
    n_test = max(1, X.shape[0] // 10)
    X_test, X_train = X[order[:n_test]], X[order[n_test:]]

    lda = LatentDirichletAllocation(n_components=args.topics, max_iter=args.passes, batch_size=args.batch_size,
                                    n_threads=args.threads, parallel=args.parallel, random_state=args.seed)
    bar = tqdm(total=args.passes * X_train.shape[0], unit="doc", unit_scale=True, disable=args.quiet,
               file=sys.stderr, desc="training")
    tic = time.perf_counter()
    lda.fit(X_train, callback=lambda n, seconds: bar.update(n))
    wall = time.perf_counter() - tic
    bar.close()
    for k, words in enumerate(lda.show_topics(vocabulary, n_words=args.top_words)):
        print(f"topic {k:3d}: {' '.join(words)}")
    loglik = lda.heldout_log_likelihood(X_test)
    parts = [f"passes {args.passes}", f"threads {lda.n_threads_} ({args.parallel})", f"train time {wall:.2f} s",
             f"{args.passes * X_train.shape[0] / wall:.0f} documents/s",
             f"held-out perplexity {lda.perplexity(X_test):.1f} (base e, variational bound)",
             f"held-out log-likelihood {loglik:.4f} nats/word (document completion)"]
    if true_topics is not None:
        parts.append(f"topic recovery {match_topics(true_topics, lda.components_)[0]:.4f} (mean matched cosine)")
    print("result: " + ", ".join(parts))
    if args.save:
        save_model(lda, args.save)
        print(f"saved: {args.save}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="dpsgd", description="Lock-free parallel and distributed SGD.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, OpenMP threads, MPI availability")

    train = sub.add_parser("train", help="train a model")
    tasks = train.add_subparsers(dest="task", required=True)
    lda = tasks.add_parser("lda", help="LDA topic model by parallel stochastic variational inference")
    lda.add_argument("--corpus", help="UCI bag-of-words docword file (.gz ok). Default: a generated corpus")
    lda.add_argument("--vocab", help="UCI vocab file (one word per line)")
    lda.add_argument("--topics", type=int, default=10)
    lda.add_argument("--passes", type=int, default=10)
    lda.add_argument("--batch-size", type=int, default=128)
    lda.add_argument("--parallel", choices=["batch", "hogwild"], default="batch")
    lda.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    lda.add_argument("--docs", type=int, default=5000, help="documents of the generated corpus")
    lda.add_argument("--words", type=int, default=500, help="vocabulary of the generated corpus")
    lda.add_argument("--top-words", type=int, default=10)
    lda.add_argument("--seed", type=int, default=0)
    lda.add_argument("--save", help="write the model here (.npz with JSON metadata, no pickle)")
    lda.add_argument("--quiet", action="store_true", help="no progress bar")

    lin = tasks.add_parser("linear", help="linear classifier on a LIBSVM / svmlight file")
    lin.add_argument("--data", help="training file (svmlight; .gz/.bz2 ok). Default: bundled a9a")
    lin.add_argument("--test", help="test file (svmlight)")
    lin.add_argument("--n-features", type=int, default=None, help="number of features (default: inferred)")
    lin.add_argument("--loss", default="log_loss",
                     choices=["log_loss", "hinge", "modified_huber", "squared_hinge", "perceptron"])
    lin.add_argument("--penalty", default="l2", choices=["l2", "l1", "elasticnet"])
    lin.add_argument("--alpha", type=float, default=1e-4)
    lin.add_argument("--learning-rate", default="optimal", choices=["optimal", "constant", "invscaling"])
    lin.add_argument("--eta0", type=float, default=0.01)
    lin.add_argument("--epochs", type=int, default=20)
    lin.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    lin.add_argument("--seed", type=int, default=0)
    lin.add_argument("--save", help="write the model here (.npz with JSON metadata, no pickle)")
    lin.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
            return cmd_info(args)
        if args.task == "lda":
            return cmd_train_lda(args)
        return cmd_train_linear(args)
    except (ValueError, FileNotFoundError, TypeError, FloatingPointError) as exc:
        print(f"dpsgd: error: {exc}", file=sys.stderr)
        return 2
