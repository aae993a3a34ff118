"""Ranks x threads scaling of DPSVI (LDA by stochastic variational inference).

    python bench/scaling_lda.py [--configs 1x1 1x2 2x1 2x2] [--passes 2] [--exchange allreduce] [--docs 33000]
                                [--data ap] [--network 1GbE] [--compression natural] [--graph ring]
                                [--plain] [--repeats 1]

Synthetic corpus from LDA's model (29,700 training documents, V = 5,000, K = 20, as in
compare_lda.py; ``--docs`` sets the number before the 10% held out; cached by rcv1like.py).
R x T runs ``mpiexec -n R`` (1 x T without MPI), T threads per rank (batch-parallel; ranks on
one machine split its cores). ``--data ap`` fits AP (../shared/data, one document in ten held
out) instead. Reported from rank 0: wall time of
the fit, speed-up over 1 x 1, held-out log-likelihood (document completion, nats), the
share of its time in the window's pulls and pushes, and the delays (global steps by other
ranks between a rank's pull and its push). ``--plain`` fits without the evaluations after each
pass (rank 0 pausing to evaluate changes what the other ranks do meanwhile): fit seconds and
the final held-out LL only. ``--repeats R`` runs the configs R times in turn (1x1 1x2 2x1 1x1
...), each in fresh processes, and prints each table; with one config, a JSON line of its fit
seconds follows (what ``bench/compare_commits.py`` reads).
"""

import argparse
import gc
import json
from pathlib import Path

import numpy as np

import rcv1like
from mpi_configs import Curve, print_table, run_configs

from dpsgd.comm.exchange import EXCHANGES

AP = Path(__file__).resolve().parents[2] / "shared" / "data" / "ap_associated_press" / "docword.ap.txt"


def child(threads, passes, exchange, docs=33_000, network=None, compression=None, graph="exponential", data="synthetic",
          plain=False):
    from dpsgd.comm import abort_on_exception, world

    comm = world()
    if comm:
        abort_on_exception(comm)
    result = fit_rank(comm, corpus(data, docs), threads, passes, exchange, network, compression, graph, plain)
    if result is not None:
        print(json.dumps(result))


def corpus(data, docs=33_000):
    """(training documents, held-out documents): the synthetic corpus (``docs`` before 10% are
    held out), or AP (``../shared/data``, 2,246 documents, V = 10,473; one in ten held out)."""
    if data == "ap":
        from dpsgd.data import load_uci_bow

        X, _ = load_uci_bow(AP)
    else:
        X = rcv1like.lda_corpus(docs)
    order = np.random.default_rng(0).permutation(X.shape[0])
    held = X.shape[0] // 10
    return X[order[held:]], X[order[:held]]


def fit_rank(comm, data, threads, passes, exchange, network=None, compression=None, graph="exponential", plain=False):
    """One rank's fit of its documents (r, r + R, ...) over ``comm`` (None, MPI's, or a virtual
    one); rank 0 returns the result's dict (seconds on the rank's clock), the others None."""
    from dpsgd import LatentDirichletAllocation
    from dpsgd.comm import Topology
    from dpsgd.evaluation import heldout_log_likelihood

    topology = Topology(comm)
    rank, size = topology.rank, topology.ranks
    X_train, X_test = data
    mine = X_train[rank::size]
    lda = LatentDirichletAllocation(20, max_iter=passes, n_threads=threads, random_state=0, comm=comm,
                                    exchange=exchange, network=network if comm else None,
                                    compression=compression if comm else None,
                                    gossip_graph=graph if comm else "exponential")
    curve = Curve(topology.now)
    alpha = 1.0 / 20
    updates = []

    def callback(info):  # rank 0, after each of its passes, from the global topics
        if rank == 0 and info["end_of_pass"]:
            curve.add(lambda: heldout_log_likelihood(info["model"]()["components_"], X_test, alpha,
                                                     n_threads=threads))
            updates.append(info["updates"])

    # a full garbage collection now rather than inside the timed fit: one landing there cost
    # 40 ms, a third of a 2 x 1 linear fit of 0.12 s (seen comparing two commits)
    gc.collect()
    topology.barrier()
    tic = topology.now()
    curve.start()
    lda.fit(mine, callback=None if plain else callback)
    seconds = topology.now() - tic - curve.evaluating
    if rank != 0:
        return None
    return {"seconds": seconds, "heldout": lda.heldout_log_likelihood(X_test),
            "docs_per_s": passes * X_train.shape[0] / seconds, "curve": curve.points, "curve_updates": updates,
            **getattr(lda, "round_stats_", {})}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["1x1", "1x2", "2x1", "2x2"])
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--exchange", choices=EXCHANGES, default="server")
    parser.add_argument("--docs", type=int, default=33_000)
    parser.add_argument("--data", choices=["synthetic", "ap"], default="synthetic")
    parser.add_argument("--network", help="a network model for the ranks (dpsgd.comm.network), e.g. 1GbE")
    parser.add_argument("--compression", choices=["natural"])
    parser.add_argument("--graph", choices=["exponential", "ring"], default="exponential")
    parser.add_argument("--plain", action="store_true", help="no evaluation after each pass (fit seconds only)")
    parser.add_argument("--repeats", type=int, default=1, help="run the configs this many times in turn")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, args.passes, args.exchange, args.docs, args.network, args.compression, args.graph,
                     args.data, args.plain)
    name = "AP" if args.data == "ap" else f"synthetic {args.docs - args.docs // 10:,} docs, V=5,000"
    for _ in range(args.repeats):
        rows = run_configs(__file__, args.configs, ["--passes", args.passes, "--exchange", args.exchange,
                                                    "--docs", args.docs, "--data", args.data, "--graph", args.graph]
                           + (["--network", args.network] if args.network else [])
                           + (["--compression", args.compression] if args.compression else [])
                           + (["--plain"] if args.plain else []))
        print_table(f"DPSVI ({args.exchange}), {name}, K=20, {args.passes} passes, minibatch 128, "
                    + ("no evaluation during the fit" if args.plain else "held-out LL after each pass"),
                    rows, "held-out LL", "heldout", higher_is_better=True,
                    # one fit's held-out LL varies by about 1% with the seed alone (local optima)
                    tolerance=0.02)
        if len(rows) == 1:  # one config: its rank 0's fit seconds for bench/compare_commits.py
            print(json.dumps({"seconds": rows[0][1]["seconds"], "comm_share": rows[0][1].get("comm_share")}))


if __name__ == "__main__":
    main()
