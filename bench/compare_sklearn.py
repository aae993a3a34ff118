"""Side by side: dpsgd's Hogwild! SGD against scikit-learn's SGDClassifier, in one run.

    python bench/compare_sklearn.py [--epochs 5] [--repeats 3] [--threads 1 2] [--scale 1.0]

Data: bench/rcv1like.py (200,000 x 47,236, ~75 nnz/row). Both libraries get
the same data (float64, int32 indices), loss (log_loss), alpha (1e-5), schedule
('optimal'), number of epochs and no early stopping. Reported per run: the
best-of-repeats time of one epoch (fit with E epochs minus fit with 1, divided
by E - 1, so set-up costs do not count), non-zeros per second, test log-loss,
and ratios to scikit-learn measured in the same run. Then the a9a (123
features) thread check and the "limit" kernel (dpsgd._kernels.sgd.stream_epoch:
the same row visits, gathers and scatters with no math).
"""

import argparse
import os
import platform
import time

import numpy as np
from sklearn.linear_model import SGDClassifier as SkSGD
from sklearn.metrics import log_loss

import dpsgd
from dpsgd import SGDClassifier
from dpsgd._kernels import sgd as kernels
from dpsgd._kernels.rng import permutation
from dpsgd.data import load_a9a

try:
    import rcv1like
except ImportError:  # run from the repository root
    from bench import rcv1like


def fit_seconds(make, X, y, epochs, repeats):
    best = np.inf
    model = None
    for _ in range(repeats):
        model = make(epochs)
        tic = time.perf_counter()
        model.fit(X, y)
        best = min(best, time.perf_counter() - tic)
    return best, model


def epoch_seconds(make, X, y, epochs, repeats):
    """Seconds per epoch, set-up excluded; and the model fitted with ``epochs``."""
    full, model = fit_seconds(make, X, y, epochs, repeats)
    one, _ = fit_seconds(make, X, y, 1, repeats)
    return (full - one) / (epochs - 1), model


def limit_seconds(X, n_threads, repeats):
    coef = np.zeros((X.shape[1], 1))
    perm = permutation(X.shape[0], 1)
    best = np.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        kernels.stream_epoch(X.data, X.indices, X.indptr, perm, coef, n_threads, 0.0)
        best = min(best, time.perf_counter() - tic)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--scale", type=float, default=1.0, help="shrink the data (quick runs)")
    args = parser.parse_args(argv)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus; "
          f"dpsgd {dpsgd.__version__}, OpenMP {'on' if dpsgd.openmp_enabled() else 'off'}")
    X, y, X_test, y_test = rcv1like.load(args.scale)
    nnz = X.nnz
    print(f"data: rcv1-like {X.shape[0]} x {X.shape[1]}, {nnz / X.shape[0]:.1f} nnz/row; "
          f"log_loss, alpha=1e-5, optimal schedule, {args.epochs} epochs\n")
    kw = dict(loss="log_loss", alpha=1e-5, tol=None, random_state=0)

    sk_epoch, sk_model = epoch_seconds(lambda e: SkSGD(max_iter=e, **kw), X, y, args.epochs, args.repeats)
    sk_loss = log_loss(y_test, sk_model.predict_proba(X_test))
    rows = [("scikit-learn SGDClassifier", sk_epoch, sk_loss)]
    ours = {}
    for threads in args.threads:
        seconds, model = epoch_seconds(lambda e: SGDClassifier(max_iter=e, n_threads=threads, **kw),
                                       X, y, args.epochs, args.repeats)
        ours[threads] = seconds
        rows.append((f"dpsgd, {model.n_threads_} thread(s)", seconds, log_loss(y_test, model.predict_proba(X_test))))
    print(f"{'':32s} {'s/epoch':>8s} {'Mnnz/s':>8s} {'test log-loss':>14s} {'vs sklearn':>11s}")
    for name, seconds, loss in rows:
        print(f"{name:32s} {seconds:8.4f} {nnz / seconds / 1e6:8.1f} {loss:14.5f} {sk_epoch / seconds:10.2f}x")
    base = ours[args.threads[0]]
    for threads in args.threads[1:]:
        print(f"dpsgd {threads} threads / {args.threads[0]}: {base / ours[threads]:.2f}x throughput")

    print("\nlimit kernel (same visits, gather + scatter, no math), same data:")
    for threads in args.threads:
        floor = limit_seconds(X, threads, args.repeats)
        print(f"  {threads} thread(s): {floor:.4f} s/epoch ({nnz / floor / 1e6:.1f} Mnnz/s); "
              f"SGD reaches {floor / ours[threads]:.0%} of it")

    Xa, ya, Xa_test, ya_test = load_a9a()
    print("\na9a (123 features, 451,592 nnz): 10 epochs, alpha=1e-4, whole fit")
    for threads in args.threads:
        seconds, model = fit_seconds(lambda e: SGDClassifier(max_iter=e, n_threads=threads, **{**kw, "alpha": 1e-4}),
                                     Xa, ya, 10, args.repeats)
        print(f"  n_threads={threads}: used {model.n_threads_}, {seconds:.4f} s, "
              f"test log-loss {log_loss(ya_test, model.predict_proba(Xa_test)):.4f}")


if __name__ == "__main__":
    main()
