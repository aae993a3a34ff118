"""Ranks x threads scaling of distributed SGD (DPSGD) on the RCV1-like data.

    python bench/scaling_linear.py [--configs 1x1 1x2 2x1 2x2] [--epochs 5] [--scale 0.5] [--exchange allreduce]
                                   [--network 1GbE] [--data textlike] [--compression natural] [--graph ring]

Each configuration R x T runs ``mpiexec -n R`` (1 x T runs without MPI) with T threads per rank;
every rank fits its share of the rows (rows r, r + R, ...). Reported from rank 0: wall time of
the fit, speed-up over 1 x 1, test log-loss, the share of rank 0's time spent in the window's
pulls and pushes, and the delays it measured. ``--data textlike`` fits text-like rows instead
(rcv1like.textlike: Zipf exponent 1.0, 250 non-zeros per row, 130,000 features, 44,000 x
``--scale`` training rows), where the hot shared words make threads contend.
"""

import argparse
import gc
import json
import sys
from pathlib import Path

import numpy as np
from mpi_configs import Curve, print_table, run_configs

from dpsgd.comm.exchange import EXCHANGES

HERE = Path(__file__).resolve().parent


def child(threads, epochs, scale, sync_every, exchange, network=None, data="rcv1like", compression=None,
          graph="exponential"):
    sys.path.insert(0, str(HERE))
    import rcv1like

    from dpsgd.comm import abort_on_exception, world

    comm = world()
    if comm:
        abort_on_exception(comm)
    arrays = rcv1like.load(scale) if data == "rcv1like" else rcv1like.textlike(scale)
    result = fit_rank(comm, arrays, threads, epochs, sync_every, exchange, network, compression, graph)
    if result is not None:
        print(json.dumps(result))


def fit_rank(comm, arrays, threads, epochs, sync_every, exchange, network=None, compression=None,
             graph="exponential"):
    """One rank's fit (rows r, r + R, ...) of ``arrays`` (X, y, X_test, y_test) over ``comm``
    (None: one process; a virtual communicator: ``bench/simulate.py``); rank 0 returns the
    result's dict (seconds on the rank's clock), the others None."""
    from scipy.special import expit
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier
    from dpsgd.comm import Topology

    topology = Topology(comm)
    rank, size = topology.rank, topology.ranks
    X, y, X_test, y_test = arrays
    mine = np.arange(rank, X.shape[0], size)
    clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=epochs, tol=None, random_state=0,
                        n_threads=threads, comm=comm, sync_every=sync_every, exchange=exchange,
                        network=network if comm else None, compression=compression if comm else None,
                        gossip_graph=graph if comm else "exponential")
    Xr, yr = X[mine], y[mine]
    curve = Curve(topology.now)
    positive = (y_test == 1).astype(int)

    def test_loss(model):  # the global model of the one output
        p = expit(X_test @ model["coef_"][0] + model["intercept_"][0])
        return log_loss(positive, np.column_stack([1 - p, p]), labels=[0, 1])

    updates = []  # the global updates at each point of the curve

    def callback(info):  # after each of this rank's passes
        if rank == 0 and info["end_of_pass"]:
            model = info["model"]()
            curve.add(lambda: test_loss(model))
            updates.append(info["updates"])

    # a full garbage collection now rather than inside the timed fit: one landing there cost
    # 40 ms, a third of a 2 x 1 linear fit of 0.12 s (seen comparing two commits)
    gc.collect()
    topology.barrier()
    tic = topology.now()
    curve.start()
    clf.fit(Xr, yr, callback=callback)
    seconds = topology.now() - tic - curve.evaluating
    if rank != 0:
        return None
    stats = getattr(clf, "round_stats_", {})
    return {"seconds": seconds, "test_log_loss": log_loss(y_test, clf.predict_proba(X_test)),
            "threads_used": clf.n_threads_, "curve": curve.points, "curve_updates": updates, **stats}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["1x1", "1x2", "2x1", "2x2"])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--sync-every", type=lambda v: v if v == "auto" else int(v), default=4096,
                        help="samples between exchanges, or auto (the estimators' default)")
    parser.add_argument("--exchange", choices=EXCHANGES, default="server")
    parser.add_argument("--network", help="a network model for the ranks (dpsgd.comm.network), e.g. 1GbE")
    parser.add_argument("--data", choices=["rcv1like", "textlike"], default="rcv1like")
    parser.add_argument("--compression", choices=["natural"])
    parser.add_argument("--graph", choices=["exponential", "ring"], default="exponential")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.epochs, args.scale, args.sync_every, args.exchange, args.network, args.data,
                     args.compression, args.graph)
    rows = run_configs(__file__, args.configs, ["--epochs", args.epochs, "--scale", args.scale,
                                                "--sync-every", args.sync_every, "--exchange", args.exchange,
                                                "--data", args.data, "--graph", args.graph]
                       + (["--network", args.network] if args.network else [])
                       + (["--compression", args.compression] if args.compression else []))
    print_table(f"DPSGD ({args.exchange}), {args.data} x{args.scale}, {args.epochs} epochs, log loss, alpha 1e-5, sync every "
                f"{args.sync_every}, test loss after each epoch", rows, "test loss", "test_log_loss",
                higher_is_better=False)


if __name__ == "__main__":
    main()
