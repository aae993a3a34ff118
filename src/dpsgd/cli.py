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
import json
import importlib.util
import sys
import time

import numpy as np


# what a --log-json line reports of a distributed run's rounds (dpsgd.engine.RoundStats)
_ROUND_KEYS = ("delay_mean", "delay_p99", "delay_max", "delay_histogram", "comm_seconds")


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


def _load_linear_data(args, comm):
    """Training (and, on rank 0, test) data; under MPI each rank reads only its share."""
    from dpsgd.data import load_a9a, load_svmlight, load_svmlight_shard

    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    X_test = y_test = None
    if args.data is None:
        X, y, X_test, y_test = load_a9a()
        source = "bundled a9a (UCI Adult, LIBSVM version)"
        if comm:
            X, y = X[rank::size], y[rank::size]
    else:
        source = args.data
        if comm:  # a byte range per rank; the ranks agree on the columns
            X, y = load_svmlight_shard(args.data, comm, n_features=args.n_features)
        else:
            X, y = load_svmlight(args.data, n_features=args.n_features)
        if args.test and rank == 0:
            X_test, y_test = load_svmlight(args.test, n_features=X.shape[1])
    return X, y, X_test, y_test, source


def _binary_log_loss(X, positive, params):
    """Log-loss of a binary logistic model given as the flat (coef, intercept) parameters."""
    from scipy.special import expit

    z = X @ params[:-1] + params[-1]
    return _log_loss(positive.astype(np.intp), np.column_stack([expit(-z), expit(z)]))


def cmd_train_linear(args, comm=None):
    from tqdm import tqdm

    from dpsgd import SGDClassifier
    from dpsgd.persist import atomic_savez
    from dpsgd.stepsize import make_policy

    root = comm is None or comm.Get_rank() == 0
    X, y, X_test, y_test, source = _load_linear_data(args, comm)
    rows = comm.allreduce(X.shape[0]) if comm else X.shape[0]
    if root:
        ranks = f", {comm.Get_size()} ranks" if comm else ""
        print(f"data: {source}: {rows} rows x {X.shape[1]} features{ranks}")

    policy = None
    if args.step_policy != "none":
        policy = make_policy(args.step_policy, gamma_prime=1.0, **({"tau_max": args.tau_max}
                             if args.step_policy == "fixed_for_delay" else {"alpha": args.policy_alpha}))
    coef_init = intercept_init = t_start = None
    done = 0
    if args.resume:
        arrays, meta = _read_checkpoint(args.resume, "linear")
        coef_init, intercept_init = arrays["coef_"], arrays["intercept_"]
        t_start, done = meta["t"], meta["epochs_done"]
        if root:
            print(f"resuming from {args.resume}: {done} epochs done")
    epochs = _remaining(args.epochs, done, args.resume)
    clf = SGDClassifier(loss=args.loss, penalty=args.penalty, alpha=args.alpha,
                        learning_rate=args.learning_rate, eta0=args.eta0, max_iter=epochs,
                        tol=None, n_threads=args.threads, random_state=args.seed + done, comm=comm,
                        sync_every=args.sync_every, step_policy=policy, max_seconds=args.max_seconds,
                        max_updates=args.max_updates)
    bar = tqdm(total=epochs, unit="epoch", disable=args.quiet or not root, file=sys.stderr)
    classes = np.unique(np.concatenate(comm.allgather(np.unique(y)))) if comm else np.unique(y)
    log = open(args.log_json, "w") if args.log_json and root else None
    seconds = 0.0
    tic = time.perf_counter()

    def progress(epoch, info):
        nonlocal seconds
        seconds += info["seconds"]
        bar.set_postfix(loss=f"{info['loss']:.4f}", nnz_per_s=f"{info['nnz'] / max(info['seconds'], 1e-12):.3g}")
        bar.update(1)
        if log:
            record = {"time": time.perf_counter() - tic, "epoch": done + epoch, "updates": info["updates"],
                      "loss": info["loss"]}
            if X_test is not None and args.loss == "log_loss" and len(classes) == 2:
                record["test_log_loss"] = _binary_log_loss(X_test, y_test == classes[1], info["params"])
            record.update({k: info[k] for k in _ROUND_KEYS if k in info})
            log.write(json.dumps(record) + "\n")
            log.flush()
        if args.checkpoint and (done + epoch) % args.checkpoint_every == 0 and root:
            d, K = X.shape[1], info["params"].size // (X.shape[1] + 1)
            flat = info["params"]
            atomic_savez(args.checkpoint, {"coef_": flat[:d * K].reshape(d, K).T.copy(), "intercept_": flat[d * K:]},
                         {"format": "dpsgd-checkpoint", "task": "linear", "epochs_done": done + epoch,
                          "t": 1.0 + float(info["updates"])})

    clf.fit(X, y, coef_init=coef_init, intercept_init=intercept_init, callback=progress, t_start=t_start)
    wall = time.perf_counter() - tic
    bar.close()
    if log:
        log.close()
    if not root:
        return 0
    parts = [f"epochs {done + clf.n_iter_}", f"threads {clf.n_threads_}" + (f" x {comm.Get_size()} ranks" if comm else ""),
             f"train time {wall:.2f} s", f"throughput {X.nnz * clf.n_iter_ / max(seconds, 1e-12):.3g} nnz/s"
             + (" (rank 0)" if comm else ""), f"train accuracy {clf.score(X, y):.4f}"]
    if comm:
        parts.append(_rounds_summary(clf.round_stats_))
    if X_test is not None:
        parts.append(f"test accuracy {clf.score(X_test, y_test):.4f}")
        if args.loss == "log_loss" and clf.classes_.size == 2:
            encoded = np.searchsorted(clf.classes_, y_test)
            parts.append(f"test log-loss {_log_loss(encoded, clf.predict_proba(X_test)):.4f} (nats)")
    return _report(parts, clf, args.save)


def _lda_corpus(args, comm):
    """This rank's training documents, the held-out documents (rank 0 only), the vocabulary
    (rank 0), the true topics of a generated corpus, and a description of the source.

    Every rank takes a contiguous range of documents (reading only that range of a docword
    file); one document in ten, the same ones whatever the number of ranks, is held out."""
    from dpsgd.data import load_uci_bow, make_lda_corpus, read_uci_bow_header

    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    true_topics = vocabulary = None
    if args.corpus is None:
        X_all, true_topics, _ = make_lda_corpus(args.docs, args.words, args.topics, 100, random_state=args.seed)
        n_docs, n_words = X_all.shape
        source = (f"generated from LDA's model: {args.docs} documents, {args.words} words, "
                  f"{args.topics} true topics")
    else:
        n_docs, n_words, _ = read_uci_bow_header(args.corpus)
        source = args.corpus
    first, last = np.linspace(0, n_docs, size + 1).round().astype(int)[rank:rank + 2]
    if args.corpus is None:
        X = X_all[first:last]
    else:
        X, vocabulary = load_uci_bow(args.corpus, args.vocab if rank == 0 else None, docs=(first, last))
    if rank == 0:
        vocabulary = vocabulary or [f"w{i}" for i in range(n_words)]
    held_out = np.random.default_rng(args.seed).permutation(n_docs)[:max(1, n_docs // 10)]
    is_test = np.zeros(X.shape[0], dtype=bool)
    is_test[held_out[(held_out >= first) & (held_out < last)] - first] = True
    X_train, X_test = X[~is_test], X[is_test]
    tokens = float(X.sum())
    if comm:
        import scipy.sparse as sp

        parts = comm.gather(X_test, root=0)
        X_test = sp.vstack(parts).tocsr() if rank == 0 else None
        tokens = comm.allreduce(tokens)
    description = f"{source}: {n_docs} documents x {n_words} words, {int(tokens)} tokens"
    return X_train, X_test, vocabulary, true_topics, description


def cmd_train_lda(args, comm=None):
    from tqdm import tqdm

    from dpsgd import LatentDirichletAllocation
    from dpsgd.evaluation import heldout_log_likelihood, match_topics, perplexity
    from dpsgd.persist import atomic_savez

    root = comm is None or comm.Get_rank() == 0
    X_train, X_test, vocabulary, true_topics, description = _lda_corpus(args, comm)
    if root:
        print(f"corpus: {description}" + (f", {comm.Get_size()} ranks" if comm else ""))
    lda = LatentDirichletAllocation(n_components=args.topics, batch_size=args.batch_size, n_threads=args.threads,
                                    parallel=args.parallel, comm=comm, max_seconds=args.max_seconds,
                                    max_updates=args.max_updates)
    done = 0
    if args.resume:
        arrays, meta = _read_checkpoint(args.resume, "lda")
        if arrays["components_"].shape != (args.topics, X_train.shape[1]):
            raise ValueError(f"{args.resume}: the checkpoint's topics are {arrays['components_'].shape}, "
                             f"this run has ({args.topics}, {X_train.shape[1]})")
        # continue the same step-size schedule from the saved topics (warm_start)
        lda.components_, lda.n_batch_iter_ = arrays["components_"], int(meta["n_batch_iter"])
        lda.n_features_in_, lda.warm_start, done = X_train.shape[1], True, int(meta["passes_done"])
        if root:
            print(f"resuming from {args.resume}: {done} passes done")
    passes = _remaining(args.passes, done, args.resume)
    lda.set_params(max_iter=passes, random_state=args.seed + done)
    bar = tqdm(total=passes * (1 if comm else X_train.shape[0]), unit="pass" if comm else "doc",
               unit_scale=not comm, disable=args.quiet or not root, file=sys.stderr, desc="training")
    log = open(args.log_json, "w") if args.log_json and root else None
    tic = time.perf_counter()

    def evaluate(info):
        """After each pass (rank 0's, under MPI; the others go on): log, checkpoint, progress."""
        if comm:
            bar.update(1)
        record = {"time": time.perf_counter() - tic, "pass": done + info["pass"], "updates": info["updates"]}
        if log or args.checkpoint:
            topics = info["topics"]()
        if log:
            kw = dict(n_threads=lda.n_threads_)
            record["perplexity"] = perplexity(topics, X_test, lda.doc_topic_prior_, lda.topic_word_prior_, **kw)
            record["heldout_log_likelihood"] = heldout_log_likelihood(topics, X_test, lda.doc_topic_prior_, **kw)
            record.update({k: info[k] for k in _ROUND_KEYS if k in info})
            log.write(json.dumps(record) + "\n")
            log.flush()
        if args.checkpoint and (done + info["pass"]) % args.checkpoint_every == 0:
            atomic_savez(args.checkpoint, {"components_": topics},
                         {"format": "dpsgd-checkpoint", "task": "lda", "passes_done": done + info["pass"],
                          "n_batch_iter": info["updates"] + 1})

    lda.fit(X_train, callback=lambda n, seconds: bar.update(n), monitor=evaluate if root else None)
    wall = time.perf_counter() - tic
    bar.close()
    if log:
        log.close()
    docs = comm.allreduce(X_train.shape[0]) if comm else X_train.shape[0]  # collective: every rank
    if not root:
        return 0
    for k, words in enumerate(lda.show_topics(vocabulary, n_words=args.top_words)):
        print(f"topic {k:3d}: {' '.join(words)}")
    parts = [f"passes {done + lda.n_iter_}", f"global steps {lda.n_batch_iter_ - 1}",
             f"threads {lda.n_threads_} ({args.parallel})"
             + (f" x {comm.Get_size()} ranks" if comm else ""), f"train time {wall:.2f} s",
             f"{lda.n_iter_ * docs / wall:.0f} documents/s",
             f"held-out perplexity {lda.perplexity(X_test):.1f} (base e, variational bound)",
             f"held-out log-likelihood {lda.heldout_log_likelihood(X_test):.4f} nats/word (document completion)"]
    if comm:
        parts.append(_rounds_summary(lda.round_stats_))
    if true_topics is not None:
        parts.append(f"topic recovery {match_topics(true_topics, lda.components_)[0]:.4f} (mean matched cosine)")
    return _report(parts, lda, args.save)


def _rounds_summary(stats):
    """The result line's part on a distributed run's delays and communication (rank 0's)."""
    return (f"delay mean {stats['delay_mean']:.2f} / p99 {stats['delay_p99']:.0f} / max "
            f"{stats['delay_max']:.0f}, communication {stats['comm_share']:.0%} of the time (rank 0)")


def _report(parts, estimator, save):
    """Print the result line and save the model when asked; the command's exit code."""
    from dpsgd import save_model

    print("result: " + ", ".join(parts))
    if save:
        save_model(estimator, save)
        print(f"saved: {save}")
    return 0


def _read_checkpoint(path, task):
    from dpsgd.persist import read_npz

    arrays, meta = read_npz(path)
    if meta.get("format") != "dpsgd-checkpoint":
        raise ValueError(f"{path}: not a dpsgd checkpoint")
    if meta.get("task") != task:
        raise ValueError(f"{path}: a checkpoint of 'train {meta.get('task')}', not of 'train {task}'")
    return arrays, meta


def _remaining(total, done, resume):
    if total - done < 1:
        raise ValueError(f"the checkpoint {resume} has {done} done; {total} leaves nothing to run")
    return total - done


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
    _add_run_control(lda, "pass", "minibatch steps")

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
    lin.add_argument("--sync-every", type=int, default=4096, help="samples between exchanges (under mpiexec)")
    lin.add_argument("--step-policy", default="budget",
                     choices=["none", "budget", "fixed_or_skip", "fixed_for_delay"],
                     help="scale pushed changes by the measured delay (under mpiexec; "
                          "'none' pushes them unscaled)")
    lin.add_argument("--policy-alpha", type=float, default=0.9, help="alpha of budget / fixed_or_skip")
    lin.add_argument("--tau-max", type=int, default=16, help="tau_max of fixed_for_delay")
    _add_run_control(lin, "epoch", "SGD steps (samples)")
    return parser


def _add_run_control(parser, unit, updates):
    """Options shared by the training commands: budgets, evaluation log, checkpoints."""
    parser.add_argument("--max-seconds", type=float, help="stop after this many seconds (all ranks together)")
    parser.add_argument("--max-updates", type=int, help=f"stop after this many {updates}, over all ranks")
    parser.add_argument("--log-json", help=f"write one JSON line per {unit}: time, updates, held-out "
                        "quality (rank 0, from the global model), delays, communication seconds")
    parser.add_argument("--checkpoint", help="checkpoint file (.npz + JSON, written atomically)")
    parser.add_argument("--checkpoint-every", type=int, default=1, help=f"{unit}s between checkpoints")
    parser.add_argument("--resume", help="continue from this checkpoint")


def main(argv=None):
    args = build_parser().parse_args(argv)
    comm = None
    if args.command == "train":
        from dpsgd.comm import abort_on_exception, world

        comm = world()  # set when started by mpiexec with several ranks
        if comm is not None:
            abort_on_exception(comm)
    try:
        if args.command == "info":
            return cmd_info(args)
        if args.task == "lda":
            return cmd_train_lda(args, comm)
        return cmd_train_linear(args, comm)
    except (ValueError, FileNotFoundError, TypeError, FloatingPointError) as exc:
        where = f" (rank {comm.Get_rank()})" if comm is not None else ""
        print(f"dpsgd: error{where}: {exc}", file=sys.stderr)
        if comm is not None:  # the other ranks may be waiting in a collective: end them all
            from dpsgd.comm.failure import abort

            abort(comm, 2)
        return 2
