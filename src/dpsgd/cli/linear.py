"""``dpsgd train linear``: a linear classifier by Hogwild! SGD, in one process or under mpiexec."""

import sys
import time

import numpy as np

from dpsgd.cli.checks import UsageError, reading
from dpsgd.cli.common import (ROUND_KEYS, JsonLog, read_checkpoint, remaining, rounds_summary,
                              save_then_report, write_checkpoint)
from dpsgd.cli.parser import given
from dpsgd.cli.progress import Progress


def _log_loss(y, proba):
    p = np.clip(proba, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.log(p[np.arange(y.size), y])))


def _binary_log_loss(X, positive, params):
    """Log-loss of a binary logistic model given as the flat (coef, intercept) parameters."""
    from scipy.special import expit

    z = X @ params[:-1] + params[-1]
    return _log_loss(positive.astype(np.intp), np.column_stack([expit(-z), expit(z)]))


def _load_data(args, comm, n_features):
    """Training (and, on rank 0, test) data; under MPI each rank reads only its share."""
    from dpsgd.data import load_a9a, load_svmlight, load_svmlight_shard

    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    X_test = y_test = None
    if args.data is None:
        X, y, X_test, y_test = load_a9a()
        source = "bundled a9a (UCI Adult, LIBSVM version)"
        if comm:
            X, y = X[rank::size], y[rank::size]
        return X, y, X_test, y_test, source
    with reading("--data", args.data):
        if comm:  # a byte range per rank; the ranks agree on the columns
            X, y = load_svmlight_shard(args.data, comm, n_features=n_features)
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
    from dpsgd.stepsize import make_policy

    if args.step_policy == "none":
        return None
    if args.step_policy == "fixed_for_delay":
        return make_policy(args.step_policy, gamma_prime=1.0, tau_max=args.tau_max)
    return make_policy(args.step_policy, gamma_prime=1.0, alpha=args.policy_alpha)


def _note_single_process_options(args):
    """Options that act only under mpiexec: say so rather than ignore them in silence (a job
    script may well be run both ways, so this is no error)."""
    ignored = [f"--{o.replace('_', '-')}" for o in ("sync_every", "step_policy", "policy_alpha", "tau_max")
               if given(args, o)]
    if ignored:
        print(f"dpsgd: note: one process ignores {', '.join(ignored)} (used only under mpiexec with "
              "several ranks)", file=sys.stderr)


def train_linear(args, comm=None):
    """Run ``dpsgd train linear``; returns the exit code."""
    from dpsgd import SGDClassifier

    root = comm is None or comm.Get_rank() == 0
    if comm is None:
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
        X, y, X_test, y_test, source = _load_data(args, comm, n_features)
    except ValueError as exc:
        if n_features == args.n_features:
            raise
        raise UsageError(f"{exc} (the number of features, {n_features}, is the checkpoint's: "
                         f"--resume {args.resume})") from exc
    classes = np.unique(np.concatenate(comm.allgather(np.unique(y)))) if comm else np.unique(y)
    if X_test is not None:
        _check_test_labels(args, classes, y_test)
    if arrays is not None:
        _check_resume(args, arrays, meta, X, classes)
    rows = comm.allreduce(X.shape[0]) if comm else X.shape[0]
    if root:
        ranks = f", {comm.Get_size()} ranks" if comm else ""
        print(f"data: {source}: {rows} rows x {X.shape[1]} features{ranks}")
        if args.resume:
            print(f"resuming from {args.resume}: {done} epochs done")
    clf = SGDClassifier(loss=args.loss, penalty=args.penalty, alpha=args.alpha,
                        learning_rate=args.learning_rate, eta0=args.eta0, max_iter=epochs,
                        tol=None, n_threads=args.threads, random_state=args.seed + done, comm=comm,
                        sync_every=args.sync_every, step_policy=_policy(args), max_seconds=args.max_seconds,
                        max_updates=args.max_updates)
    progress = Progress(epochs, "epoch", disable=args.quiet or not root)
    log = JsonLog(args.log_json if root else None)
    seconds = 0.0
    tic = time.perf_counter()
    binary_log_loss = X_test is not None and args.loss == "log_loss" and classes.size == 2

    def after_epoch(epoch, info):
        nonlocal seconds
        seconds += info["seconds"]
        progress.update(1, loss=f"{info['loss']:.4f}")
        record = {"time": time.perf_counter() - tic, "epoch": done + epoch, "updates": info["updates"],
                  "loss": info["loss"]}
        if log and binary_log_loss:
            record["test_log_loss"] = _binary_log_loss(X_test, y_test == classes[1], info["params"])
        log.write({**record, **{k: info[k] for k in ROUND_KEYS if k in info}})
        if args.checkpoint and root and (done + epoch) % args.checkpoint_every == 0:
            d = X.shape[1]
            flat = info["params"]
            K = flat.size // (d + 1)
            checkpoint(flat[:d * K].reshape(d, K).T.copy(), flat[d * K:], done + epoch, 1.0 + float(info["updates"]))

    def checkpoint(coef, intercept, epochs_done, t):
        write_checkpoint(args.checkpoint, {"coef_": coef, "intercept_": intercept},
                         {"task": "linear", "epochs_done": epochs_done, "t": t, "n_features": X.shape[1],
                          "classes": classes.tolist(), "loss": args.loss})

    try:
        coef_init = arrays["coef_"] if arrays else None
        intercept_init = arrays["intercept_"] if arrays else None
        clf.fit(X, y, coef_init=coef_init, intercept_init=intercept_init, callback=after_epoch,
                t_start=meta["t"] if meta else None)
    finally:
        progress.close()
        log.close()
    wall = time.perf_counter() - tic
    if not root:
        return 0
    if args.checkpoint:  # the end state: rank 0's last epoch may have ended before others' last pushes
        checkpoint(clf.coef_, clf.intercept_, done + clf.n_iter_, float(clf.t_))

    def parts():
        result = [f"epochs {done + clf.n_iter_}",
                  f"threads {clf.n_threads_}" + (f" x {comm.Get_size()} ranks" if comm else ""),
                  f"train time {wall:.2f} s",
                  f"throughput {X.nnz * clf.n_iter_ / max(seconds, 1e-12):.3g} nnz/s" + (" (rank 0)" if comm else ""),
                  f"train accuracy {clf.score(X, y):.4f}"]
        if comm:
            result.append(rounds_summary(clf.round_stats_))
        if X_test is not None:
            result.append(f"test accuracy {clf.score(X_test, y_test):.4f}")
            if args.loss == "log_loss" and clf.classes_.size == 2:
                encoded = np.searchsorted(clf.classes_, y_test)
                result.append(f"test log-loss {_log_loss(encoded, clf.predict_proba(X_test)):.4f} (nats)")
        return result

    return save_then_report(clf, args.save, parts)
