"""``dpsgd train prox``: L1 (L2, elastic-net) logistic regression by async_bcd or piag.

In one process the default solver is async_bcd (threads); under ``mpiexec`` it is piag, each
rank reading its share of ``--data`` as ``train linear`` does (``--solver async_bcd`` deals the
blocks of features out to the ranks instead). Only rank 0 prints and writes.
The model file is a :class:`dpsgd.LogisticRegression` (``dpsgd.load_model``); the JSON log
has one line per point the solver recorded: ``time``, ``updates``, ``objective``, ``delay``,
``step`` and ``classifier`` (the one-vs-rest problem, 0 for two classes).
"""

import sys
import time
import warnings

import numpy as np

from dpsgd.cli.checks import UsageError, check_input, check_output
from dpsgd.cli.parser import (
    given,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    thread_count,
)


def _l1_ratio(text):
    """A float in [0, 1] (argparse type of --l1-ratio)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a number in [0, 1] expected, got {text!r}")
    return value


def _policy_alpha(text):
    """A float in (0, 1) (argparse type of --policy-alpha)."""
    value = positive_float(text)
    if value >= 1.0:
        import argparse

        raise argparse.ArgumentTypeError(f"a number in (0, 1) expected, got {text!r}")
    return value


def add_arguments(p):
    """The options of ``dpsgd train prox``."""
    p.add_argument("--data", metavar="FILE", help="training file (svmlight; .gz/.bz2 ok); None: bundled a9a")
    p.add_argument("--test", metavar="FILE", help="test file (svmlight; needs --data: a9a brings its own)")
    p.add_argument("--n-features", type=positive_int, metavar="N",
                   help="number of features (needs --data; None: the largest index)")
    p.add_argument("--solver", choices=["auto", "async_bcd", "piag"], default="auto",
                   help="async_bcd (threads of one process; under mpiexec each rank owns some blocks of "
                   "features) or piag (one worker per rank); auto: async_bcd in one process, piag under mpiexec")
    p.add_argument("--penalty", choices=["l1", "l2", "elasticnet", "none"], default="l1", help="R(w)")
    p.add_argument("--C", type=positive_float, default=1.0,
                   help="weight of the loss: C * sum_i log-loss_i + R(w) (scikit-learn's scaling)")
    p.add_argument("--l1-ratio", type=_l1_ratio, metavar="R", help="the elastic net's mix (--penalty elasticnet)")
    p.add_argument("--step-policy", choices=["budget", "fixed_or_skip", "fixed"], default="budget",
                   help="the delay-adaptive step (Wu et al. 2022)")
    p.add_argument("--policy-alpha", type=_policy_alpha, default=0.9, help="alpha of budget and fixed_or_skip")
    p.add_argument("--tau-max", type=non_negative_int, metavar="N", help="the largest delay (--step-policy fixed)")
    p.add_argument("--tol", type=non_negative_float, default=1e-4, help="the solver's stopping tolerance (0: never)")
    p.add_argument("--max-iter", type=positive_int, default=100, metavar="N", help="most epochs per problem")
    p.add_argument("--n-blocks", type=positive_int, metavar="N",
                   help="async_bcd's blocks of features (None: about 3 columns a block; under mpiexec at least "
                        "one per rank)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="OpenMP threads of each process: async_bcd's block updates, piag's gradient passes "
                        "(default: every core the process may use, shared by the ranks on a machine; -1 all, "
                        "-2 all but one)")
    p.add_argument("--seed", type=int, default=0, help="random seed (async_bcd's block draws)")
    p.add_argument("--max-seconds", type=positive_float, metavar="S", help="stop each problem after about S seconds")
    p.add_argument("--save", metavar="FILE", help="write the model here (.npz with JSON metadata, no pickle)")
    p.add_argument("--log-json", metavar="FILE",
                   help="write one JSON line per recorded point: time, updates, objective, delay, step")
    p.add_argument("--quiet", action="store_true", help="no progress report")


def _check_args(args, topology):
    """Refuse options that would be ignored or cannot work, and unusable paths, before any work."""
    def needs(option, other, reason):
        if given(args, option) and getattr(args, other) is None:
            raise UsageError(f"--{option.replace('_', '-')} needs --{other.replace('_', '-')}: {reason}")

    needs("test", "data", "the bundled a9a is tested on its own test file")
    needs("n_features", "data", "the bundled a9a has 123 features")
    if args.penalty == "elasticnet" and args.l1_ratio is None:
        raise UsageError("--penalty elasticnet needs --l1-ratio")
    if args.penalty != "elasticnet" and args.l1_ratio is not None:
        raise UsageError("--l1-ratio is used only by --penalty elasticnet")
    if args.step_policy == "fixed" and args.tau_max is None:
        raise UsageError("--step-policy fixed needs --tau-max, the largest delay of the run")
    if args.step_policy != "fixed" and args.tau_max is not None:
        raise UsageError("--tau-max is used only by --step-policy fixed")
    if given(args, "policy_alpha") and args.step_policy == "fixed":
        raise UsageError("--policy-alpha is used only by --step-policy budget and fixed_or_skip")
    solver = _solver(args, topology)
    if solver == "piag" and given(args, "n_blocks"):
        raise UsageError("--n-blocks is used only by --solver async_bcd (piag's workers are ranks)")
    if topology.is_root:
        check_output("--save", args.save)
        check_output("--log-json", args.log_json)
    check_input("--data", args.data)
    check_input("--test", args.test)


def _solver(args, topology):
    if args.solver == "auto":
        return "piag" if topology.distributed else "async_bcd"
    return args.solver


def _objective(clf, X, y, topology):
    """P(w, b) of the fitted model over every rank's rows, summed over its one-vs-rest
    problems (collective)."""
    from dpsgd._kernels import prox

    R = {"penalty": clf.penalty, "l1_ratio": clf.l1_ratio if clf.penalty == "elasticnet" else None}
    X = X.tocsr().astype(np.float64)
    binary = clf.classes_.size == 2
    f = 0.0
    for k, (w, b) in enumerate(zip(clf.coef_, clf.intercept_)):
        signs = np.where(y == clf.classes_[1 if binary else k], 1.0, -1.0)
        if X.shape[0]:
            f += prox.objective(X.data, X.indices, X.indptr, signs, w, float(b), C=clf.C, penalty=None)
    penalty = sum(prox.py_penalty_value(np.ascontiguousarray(w), **R) for w in clf.coef_) if R["penalty"] else 0.0
    return topology.total(f) + penalty


def _log(path, clf):
    from dpsgd.cli.common import JsonLog

    log = JsonLog(path)
    for row in clf.objective_history_:
        log.write({"time": float(row["seconds"]), "updates": int(row["iteration"]),
                   "objective": float(row["objective"]), "delay": int(row["delay"]), "step": float(row["step"]),
                   "classifier": int(row["classifier"])})
    log.close()


def _delays(clf):
    delays = np.concatenate(clf.delays_) if clf.delays_ else np.zeros(0, np.int64)
    if delays.size == 0:
        return "delays none recorded"
    return (f"delay mean {delays.mean():.2f} / p99 {np.percentile(delays, 99):.0f} / max {delays.max()} "
            f"(updates)")


def train_prox(args, comm=None):
    """Run ``dpsgd train prox``; returns the exit code."""
    from sklearn.exceptions import ConvergenceWarning

    from dpsgd import LogisticRegression
    from dpsgd.cli.common import save_then_report
    from dpsgd.cli.linear import _check_test_labels, _load_data
    from dpsgd.comm import Topology
    from dpsgd.progress import Progress

    topology = Topology(comm)
    _check_args(args, topology)
    root, solver = topology.is_root, _solver(args, topology)
    threads = topology.threads(args.threads)  # collective on first use: every rank, here
    X, y, X_test, y_test, source = _load_data(args, topology, args.n_features)
    classes = np.unique(np.concatenate(topology.everyone(np.unique(y))))
    if X_test is not None:
        _check_test_labels(args, classes, y_test)
    rows = topology.total(X.shape[0])
    if root:
        ranks = f", {topology.ranks} ranks" if topology.distributed else ""
        print(f"data: {source}: {rows} rows x {X.shape[1]} features{ranks}")
    clf = LogisticRegression(penalty=None if args.penalty == "none" else args.penalty, C=args.C,
                             l1_ratio=args.l1_ratio, solver=solver, step_policy=args.step_policy,
                             policy_alpha=args.policy_alpha, tau_max=args.tau_max, tol=args.tol,
                             max_iter=args.max_iter, n_threads=threads,
                             n_blocks=args.n_blocks, comm=comm, random_state=args.seed, max_seconds=args.max_seconds)
    problems = 1 if classes.size == 2 else classes.size
    progress = Progress(args.max_iter * problems, "epoch", disable=args.quiet or not root)
    tic = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # said below, in the command's words
            clf.fit(X, y, callback=lambda info: progress.update(1))
    finally:
        progress.close()

    wall = time.perf_counter() - tic
    P = _objective(clf, X, y, topology)
    correct = topology.total(int(np.sum(clf.predict(X) == y)) if X.shape[0] else 0)
    if not root:
        return 0
    if args.log_json:
        _log(args.log_json, clf)
    if args.tol > 0 and np.any(clf.n_iter_ >= args.max_iter):
        print(f"dpsgd: note: {solver} stopped at --max-iter {args.max_iter} before --tol {args.tol:g}",
              file=sys.stderr)

    def parts():
        each = f"{threads} thread{'s' if threads > 1 else ''}"
        workers = f"{topology.ranks} ranks x {each}" if topology.distributed else each
        result = [f"solver {solver} ({workers})",
                  f"objective {P:.10g}" + (f" (sum of {problems} one-vs-rest problems)" if problems > 1 else ""),
                  f"non-zeros {np.count_nonzero(clf.coef_)} of {clf.coef_.size}",
                  f"epochs {int(clf.n_iter_.max())}" + (f" (most of {problems} problems)" if problems > 1 else ""),
                  f"train time {wall:.2f} s",
                  f"train accuracy {correct / rows:.4f}",
                  _delays(clf)]
        if X_test is not None:
            result.append(f"test accuracy {clf.score(X_test, y_test):.4f}")
        return result

    return save_then_report(clf, args.save, parts)
