"""The ``dpsgd`` command.

    dpsgd info
    dpsgd train linear [--data FILE.svm] [--test FILE.svm] [--loss log_loss] [--epochs 5]
                       [--threads N] [--save model.npz]

With no ``--data``, ``train linear`` trains on the bundled a9a data set.
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


def build_parser():
    parser = argparse.ArgumentParser(prog="dpsgd", description="Lock-free parallel and distributed SGD.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, OpenMP threads, MPI availability")

    train = sub.add_parser("train", help="train a model")
    tasks = train.add_subparsers(dest="task", required=True)
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
        return cmd_train_linear(args)
    except (ValueError, FileNotFoundError, TypeError) as exc:
        print(f"dpsgd: error: {exc}", file=sys.stderr)
        return 2
