"""Ranks x threads scaling of DPSVI (LDA by stochastic variational inference).

    python bench/scaling_lda.py [--configs 1x1 1x2 2x1 2x2] [--passes 2]

Synthetic corpus from LDA's model (29,700 training documents, V = 5,000, K = 20, as in
compare_lda.py). R x T runs ``mpiexec -n R`` (1 x T without MPI), T threads per rank
(batch-parallel; ranks on one machine split its cores). Reported from rank 0: wall time of
the fit, speed-up over 1 x 1, held-out log-likelihood (document completion, nats), the
share of its time in the window's pulls and pushes, and the delays (global steps by other
ranks between a rank's pull and its push).
"""

import argparse
import json
import time

import numpy as np

from mpi_configs import delay_columns, run_configs


def child(threads, passes):
    from dpsgd import LatentDirichletAllocation
    from dpsgd.comm import abort_on_exception, world
    from dpsgd.data import make_lda_corpus

    comm = world()
    rank, size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
    if comm:
        abort_on_exception(comm)
    X, _, _ = make_lda_corpus(33_000, 5_000, 20, 100, random_state=0)
    order = np.random.default_rng(0).permutation(X.shape[0])
    X_train, X_test = X[order[3_300:]], X[order[:3_300]]
    mine = X_train[rank::size]
    lda = LatentDirichletAllocation(20, max_iter=passes, n_threads=threads, random_state=0, comm=comm)
    if comm:
        comm.Barrier()
    tic = time.perf_counter()
    lda.fit(mine)
    seconds = time.perf_counter() - tic
    if rank == 0:
        print(json.dumps({"seconds": seconds, "heldout": lda.heldout_log_likelihood(X_test),
                          "docs_per_s": passes * X_train.shape[0] / seconds,
                          **getattr(lda, "round_stats_", {})}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["1x1", "1x2", "2x1", "2x2"])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.passes)
    rows = run_configs(__file__, args.configs, ["--passes", args.passes])
    base = rows[0][1]["seconds"]
    print(f"DPSVI, synthetic 29,700 docs, V=5,000, K=20, {args.passes} passes, minibatch 128")
    print(f"{'ranks x threads':16s} {'docs/s':>8s} {'speed-up':>9s} {'held-out LL':>12s} {'comm':>6s} "
          f"{'delay mean/p99/max':>20s}")
    for config, r in rows:
        comm, delays = delay_columns(r)
        print(f"{config:16s} {r['docs_per_s']:8.0f} {base / r['seconds']:8.2f}x {r['heldout']:12.4f} {comm:>6s} "
              f"{delays:>20s}")


if __name__ == "__main__":
    main()
