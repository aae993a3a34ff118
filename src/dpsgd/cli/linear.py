"""``dpsgd train linear``: a linear classifier by Hogwild! SGD, in one process or under mpiexec."""

import sys
import time

import numpy as np

from dpsgd.cli.checks import UsageError, reading
from dpsgd.cli.common import read_checkpoint, remaining, rounds_summary, save_then_report
from dpsgd.cli.driver import TrainingRun
from dpsgd.cli.parser import given


def _log_loss(y, proba):
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def _binary_log_loss(X, positive, model):
    """Log-loss of a binary logistic model (``{"coef_": (1, d), "intercept_": (1,)}``)."""
    from scipy.special import expit

    z = X @ model["coef_"][0] + model["intercept_"][0]
    return _log_loss(positive.astype(np.intp), np.column_stack([expit(-z), expit(z)]))


def _load_data(args, topology, n_features):
    """Training (and, on rank 0, test) data; under MPI each rank reads only its share."""
    from dpsgd.data import load_a9a, load_svmlight, load_svmlight_shard

    rank, size = topology.rank, topology.ranks
    X_test = y_test = None
    if args.data is None:
        X, y, X_test, y_test = load_a9a()
        source = "bundled a9a (UCI Adult, LIBSVM version)"
        return X[rank::size], y[rank::size], X_test, y_test, source
    with reading("--data", args.data):
        if topology.distributed:  # a byte range per rank; the ranks agree on the columns
            X, y = load_svmlight_shard(args.data, topology, n_features=n_features)
        else:
            X, y = load_svmlight(args.data, n_features=n_features)
    if args.test and rank == 0:
        with reading("--test", args.test):
            X_test, y_test = load_svmlight(args.test, n_features=X.shape[1])
    return X, y, X_test, y_test, args.data


def _check_test_labels(args, classes, y_test):
    """Refuse test labels the model cannot predict (e.g. 0/1 against -1/+1): they would be
    scored as wrong, or as another class, without a word."""
    unseen = np.setdiff1d(np.unique(y_test), classes)
    if unseen.size:
        raise UsageError(f"--test {args.test}: labels {_labels(unseen)} are not among the training "
                         f"labels {_labels(classes)}")


def _labels(values):
    shown = ", ".join(f"{v:g}" for v in values[:10])
    return "{" + shown + (", ..." if values.size > 10 else "") + "}"


def _check_resume(args, arrays, meta, X, classes):
    """The checkpoint was trained on data like this run's: same features, same classes."""
    coef, intercept = arrays["coef_"], arrays["intercept_"]
    n_features = meta.get("n_features", coef.shape[-1])
    if X.shape[1] != n_features:
        raise UsageError(f"--resume {args.resume}: the checkpoint was trained on {n_features} features, "
                         f"this data has {X.shape[1]}")
    if "classes" in meta and not np.array_equal(np.asarray(meta["classes"], dtype=float), classes):
        raise UsageError(f"--resume {args.resume}: the checkpoint was trained on labels "
                         f"{_labels(np.asarray(meta['classes'], dtype=float))}, this data has {_labels(classes)}")
    K = 1 if classes.size == 2 else classes.size
    if coef.shape != (K, n_features) or intercept.shape != (K,):
        raise UsageError(f"--resume {args.resume}: the checkpoint's weights are {coef.shape} and "
                         f"{intercept.shape}; {classes.size} classes x {n_features} features need "
                         f"({K}, {n_features}) and ({K},)")


def _policy(args):
    from dpsgd.stepsize import delay_policy

    return delay_policy(args.step_policy, alpha=args.policy_alpha, tau_max=args.tau_max, delay=args.policy_delay)


def _note_single_process_options(args):
    """Options that act only under mpiexec: say so rather than ignore them in silence (a job
    script may well be run both ways, so this is no error)."""
    ignored = [f"--{o.replace('_', '-')}" for o in ("sync_every", "step_policy", "policy_alpha", "tau_max",
                                                     "policy_delay", "exchange")
               if given(args, o)]
    if ignored:
        print(f"dpsgd: note: one process ignores {', '.join(ignored)} (used only under mpiexec with "
              "several ranks)", file=sys.stderr)


def train_linear(args, comm=None):
    """Run ``dpsgd train linear``; returns the exit code."""
    from dpsgd import SGDClassifier, persist
    from dpsgd.comm import Topology

    topology = Topology(comm)
    root = topology.is_root
    if not topology.distributed:
        _note_single_process_options(args)
    arrays = meta = None
    done = 0
    n_features = args.n_features
    if args.resume:
        arrays, meta = read_checkpoint(args.resume, "linear", ("coef_", "intercept_"), ("t", "epochs_done"))
        done = int(meta["epochs_done"])
        if n_features is None and args.data is not None:  # a file may not reach the last column
            n_features = int(meta.get("n_features", arrays["coef_"].shape[-1]))
    epochs = remaining(args.epochs, done, "--epochs", args.resume) if args.resume else args.epochs
    try:
        X, y, X_test, y_test, source = _load_data(args, topology, n_features)
    except ValueError as exc:
        if n_features == args.n_features:
            raise
        raise UsageError(f"{exc} (the number of features, {n_features}, is the checkpoint's: "
                         f"--resume {args.resume})") from exc
    classes = np.unique(np.concatenate(topology.everyone(np.unique(y))))
    if X_test is not None:
        _check_test_labels(args, classes, y_test)
    if arrays is not None:
        _check_resume(args, arrays, meta, X, classes)
    rows = topology.total(X.shape[0])
    if root:
        ranks = f", {topology.ranks} ranks" if topology.distributed else ""
        print(f"data: {source}: {rows} rows x {X.shape[1]} features{ranks}")
        if args.resume:
            print(f"resuming from {args.resume}: {done} epochs done")
    clf = SGDClassifier(loss=args.loss, penalty=args.penalty, alpha=args.alpha,
                        learning_rate=args.learning_rate, eta0=args.eta0, max_iter=epochs,
                        tol=None, n_threads=args.threads, random_state=args.seed + done, comm=comm,
                        exchange=args.exchange, sync_every=args.sync_every, step_policy=_policy(args),
                        max_seconds=args.max_seconds, max_updates=args.max_updates, network=args.network,
                        compression=args.compression, gossip_graph=args.graph)
    updates_done = int(meta["t"]) - 1 if meta else 0

    def checkpoint(model, epochs_done, t):
        persist.write_checkpoint(args.checkpoint, "linear", model,
                                 {"epochs_done": epochs_done, "t": float(t), "n_features": X.shape[1],
                                  "classes": classes.tolist(), "loss": args.loss})

    evaluate = None
    if X_test is not None and args.loss == "log_loss" and classes.size == 2:
        def evaluate(model):
            return {"test_log_loss": _binary_log_loss(X_test, y_test == classes[1], model)}

    tic = time.perf_counter()
    run = TrainingRun(args, topology, progress=(epochs, "epoch", lambda info: int(info["end_of_pass"])),
                      pass_key="epoch", passes_done=done, updates_done=updates_done, checkpoint=checkpoint,
                      evaluate=evaluate)
    with run:
        coef_init = arrays["coef_"] if arrays else None
        intercept_init = arrays["intercept_"] if arrays else None
        clf.fit(X, y, coef_init=coef_init, intercept_init=intercept_init, callback=run,
                t_start=meta["t"] if meta else None)
    wall = time.perf_counter() - tic
    if not root:
        return 0
    if args.checkpoint:  # the end state: rank 0's last epoch may have ended before others' last pushes
        checkpoint({"coef_": clf.coef_, "intercept_": clf.intercept_}, done + clf.n_iter_, clf.t_)

    seconds = clf.round_stats_["compute_seconds"]

    def parts():
        distributed = topology.distributed
        result = [f"epochs {done + clf.n_iter_}",
                  f"threads {clf.n_threads_}" + (f" x {topology.ranks} ranks ({args.exchange})" if distributed else ""),
                  f"train time {wall:.2f} s",
                  f"throughput {X.nnz * clf.n_iter_ / max(seconds, 1e-12):.3g} nnz/s"
                  + (" (rank 0)" if distributed else ""),
                  f"train accuracy {clf.score(X, y):.4f}"]
        if distributed:
            result.append(rounds_summary(clf.round_stats_))
        if X_test is not None:
            result.append(f"test accuracy {clf.score(X_test, y_test):.4f}")
            if args.loss == "log_loss" and clf.classes_.size == 2:
                encoded = np.searchsorted(clf.classes_, y_test)
                result.append(f"test log-loss {_log_loss(encoded, clf.predict_proba(X_test)):.4f} (nats)")
        return result

    return save_then_report(clf, args.save, parts)
