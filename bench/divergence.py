"""Large learning rates: how often synchronous allreduce and decentralised gossip diverge (issue 12).

    python bench/divergence.py [--ranks 4 16] [--etas 0.5 1 2 4 8] [--seeds 5] [--epochs 5]
                               [--exchanges allreduce gossip gossip:ring server] [--real]

IBM's study, as issue 12 cites it (it is not in PAPERS.md), found decentralised averaging
converging where synchronous SGD diverges at large learning rates and batches. Here: a9a, the logistic loss, alpha 1e-4, a constant
learning rate ``eta0`` (``learning_rate="constant"``), the default rounds (``sync_every="auto"``),
``--epochs`` passes, 1 thread a rank, seeds 0..``--seeds``-1 (the seed shuffles each rank's rows).
A run diverged when SGD raised ``DivergenceError`` (weights no longer finite) on any rank, or
ended with a test log-loss no better than knowing nothing (predicting the training rows' share
of each class: 0.55 on a9a). Log loss's gradient is bounded, so its weights stay finite at
any step; too large a step leaves them oscillating far from the optimum instead (accuracy,
which ignores their scale, hardly moves). Every run is
simulated (``dpsgd.comm.simulate``: the real code on virtual ranks; the synchronous exchanges
compute exactly what real ranks would); ``--real`` also runs each cell with ranks <= 4 under
``mpiexec`` and prints the count beside the simulated one.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from exchanges import exchange_spec, parse_spec
from mpi_configs import mpiexec

def fit(comm, data, exchange, eta0, seed, epochs):
    """One rank's fit; rank 0 returns (diverged, test log-loss or None)."""
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier
    from dpsgd.tasks.linear import DivergenceError

    X, y, X_test, y_test = data
    name, graph, compression = parse_spec(exchange)
    r, n = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)
    clf = SGDClassifier(loss="log_loss", alpha=1e-4, learning_rate="constant", eta0=eta0, max_iter=epochs,
                        tol=None, random_state=seed, n_threads=1, comm=comm, exchange=name,
                        gossip_graph=graph, compression=compression)
    try:
        clf.fit(X[r::n], y[r::n])
    except DivergenceError:
        return True, None
    with np.errstate(all="ignore"):
        proba = clf.predict_proba(X_test)
    if not np.all(np.isfinite(proba)):
        return True, None
    loss = log_loss(y_test, np.clip(proba, 1e-15, 1 - 1e-15))
    prior = np.mean(y == y.max())  # the training rows' share of the positive class
    knowing_nothing = log_loss(y_test, np.tile([1 - prior, prior], (len(y_test), 1)))
    return loss >= knowing_nothing, loss


def simulated(data, ranks, exchange, eta0, seed, epochs):
    from dpsgd.comm import simulate

    try:
        return simulate(fit, ranks, data, exchange, eta0, seed, epochs).results[0]
    except RuntimeError as error:  # a rank raised: divergence unless it was something else
        from dpsgd.tasks.linear import DivergenceError

        if isinstance(error.__cause__, DivergenceError):
            return True, None
        raise


def real(ranks, exchange, eta0, seed, epochs):
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, __file__, "--child", exchange, str(eta0), str(seed),
           str(epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        if "DivergenceError" in out.stderr or "diverged" in out.stderr:
            return True, None
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return tuple(json.loads(out.stdout.strip().splitlines()[-1]))


def child(exchange, eta0, seed, epochs):
    from dpsgd.comm import abort_on_exception, world
    from dpsgd.data import load_a9a

    comm = world()
    abort_on_exception(comm)
    result = fit(comm, load_a9a(), exchange, float(eta0), int(seed), int(epochs))
    if comm.Get_rank() == 0:
        print(json.dumps(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--etas", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0, 8.0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--exchanges", nargs="+", type=exchange_spec, default=["allreduce", "gossip", "gossip:ring"])
    parser.add_argument("--real", action="store_true", help="also run ranks <= 4 under mpiexec")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    from dpsgd.data import load_a9a

    data = load_a9a()
    tic = time.perf_counter()
    print(f"a9a, log loss, alpha 1e-4, constant eta0, {args.epochs} epochs, seeds 0-{args.seeds - 1}; "
          f"diverged runs of {args.seeds} (simulated{'; real under mpiexec' if args.real else ''}), "
          f"median test log-loss of the others")
    for ranks in args.ranks:
        for exchange in args.exchanges:
            for eta0 in args.etas:
                runs = [simulated(data, ranks, exchange, eta0, s, args.epochs) for s in range(args.seeds)]
                diverged = sum(d for d, _ in runs)
                losses = [loss for d, loss in runs if not d]
                line = (f"{exchange:14s} ranks {ranks:3d} eta0 {eta0:7.3f}: diverged {diverged}/{args.seeds}"
                        f"  log-loss {statistics.median(losses) if losses else float('nan'):.4f}")
                if args.real and ranks <= 4:
                    real_runs = [real(ranks, exchange, eta0, s, args.epochs) for s in range(args.seeds)]
                    real_losses = [loss for d, loss in real_runs if not d]
                    line += (f"   real: diverged {sum(d for d, _ in real_runs)}/{args.seeds}  log-loss "
                             f"{statistics.median(real_losses) if real_losses else float('nan'):.4f}")
                print(line, flush=True)
    print(f"({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
