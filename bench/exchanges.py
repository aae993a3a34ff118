"""Every exchange side by side, with and without a simulated network and a straggler (issue 12).

    python bench/exchanges.py [--task linear] [--ranks 2 4] [--epochs 5] [--scale 0.25]
                              [--networks none 10GbE 1GbE slow]
                              [--exchanges server gossip gossip:ring gossip+natural allreduce+natural ...]

Distributed SGD (log loss, alpha 1e-5, the default sync_every and step policy, 1 thread a rank) on the
RCV1-like set of ``bench/rcv1like.py``, under each exchange of ``dpsgd.comm.EXCHANGES`` (an
exchange may name its gossip graph, ``gossip:ring``, and its compression, ``gossip+natural``) and each
network model (``dpsgd.comm.network``: ``slow`` is rank 1 three times slower at computing, on
no network). One process (1 x 1) is the yardstick: the target is its final test log-loss, 1%
worse. Per run, from rank 0: fit seconds, seconds to the target, final test log-loss, share of
the time in the exchange, megabytes it sent, seconds the network model added. Each run is a
fresh ``mpiexec`` (``bench/scaling_linear.py``'s child); one run each, so read ratios, not
digits. The ranks share this machine's cores: with more ranks than cores they also wait for
each other's compute.

``--task lda``: LDA (DPSVI) on AP instead (``bench/scaling_lda.py --data ap``: K = 20, one
document in ten held out, ``--epochs`` passes); the quality is the held-out log-likelihood
(nats a word), the target one process's final, 2% worse.
"""

import argparse
from pathlib import Path

from mpi_configs import run_configs, target_columns

from dpsgd.comm.exchange import EXCHANGES

HERE = Path(__file__).resolve().parent
NETWORKS = {"none": None, "10GbE": "10GbE", "1GbE": "1GbE", "slow": "slow_rank=1,slow_factor=3"}


def parse_spec(spec):
    """(exchange, graph, compression or None) of ``NAME[:GRAPH][+COMPRESSION]``."""
    rest, _, compression = spec.partition("+")
    name, _, graph = rest.partition(":")
    return name, graph or "exponential", compression or None


def exchange_spec(spec):
    name, graph, compression = parse_spec(spec)
    if name not in EXCHANGES or graph not in ("exponential", "ring") or compression not in (None, "natural"):
        raise argparse.ArgumentTypeError(f"{spec!r} is not NAME[:GRAPH][+natural] (NAME: {', '.join(EXCHANGES)})")
    return spec


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["linear", "lda"], default="linear")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--epochs", type=int, default=5, help="epochs (linear) or passes (lda)")
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--exchanges", nargs="+", type=exchange_spec, default=list(EXCHANGES),
                        help="NAME[:GRAPH][+natural], NAME one of " + ", ".join(EXCHANGES))
    args = parser.parse_args()
    if args.task == "linear":
        script, quality, higher = "scaling_linear.py", "test_log_loss", False
        common = ["--epochs", args.epochs, "--scale", args.scale, "--sync-every", "auto"]
    else:
        script, quality, higher = "scaling_lda.py", "heldout", True
        common = ["--passes", args.epochs, "--data", "ap"]
    script = str(HERE / script)
    rows = run_configs(script, ["1x1"], common)
    labels = [("one process", "-", "1")]
    for network in args.networks:
        for exchange in args.exchanges:
            name, graph, compression = parse_spec(exchange)
            extra = (["--exchange", name, "--graph", graph] + (["--compression", compression] if compression else [])
                     + (["--network", NETWORKS[network]] if NETWORKS[network] else []))
            for config, result in run_configs(script, [f"{r}x1" for r in args.ranks], common + extra):
                rows.append((config, result))
                labels.append((exchange, network, config.split("x")[0]))
    # LDA: one fit's held-out LL moves by about 1% with the seed alone (bench/scaling_lda.py)
    target, cells = target_columns(rows, higher_is_better=higher, tolerance=0.01 if args.task == "linear" else 0.02)
    what = (f"RCV1-like x{args.scale}, {args.epochs} epochs" if args.task == "linear"
            else f"LDA on AP, K = 20, {args.epochs} passes")
    print(f"{what}, 1 thread a rank; target: {quality} {target:.5f} (one process's final, "
          f"{'1' if args.task == 'linear' else '2'}% worse)")
    print(f"{'exchange':20s} {'network':8s} {'ranks':>5s} {'seconds':>8s} {'to target':>10s} {quality:>13s} "
          f"{'comm':>5s} {'MB sent':>8s} {'net s':>6s}")
    for (exchange, network, ranks), (_, r), (to_target, _) in zip(labels, rows, cells):
        sent = f"{r['bytes_sent'] / 1e6:8.1f}" if "bytes_sent" in r else f"{'-':>8s}"
        net = f"{r.get('network_seconds', 0.0):6.2f}"
        comm = f"{r['comm_share']:.0%}" if "comm_share" in r else "-"
        print(f"{exchange:20s} {network:8s} {ranks:>5s} {r['seconds']:8.2f} {to_target:>10s} "
              f"{r[quality]:13.5f} {comm:>5s} {sent} {net}")


if __name__ == "__main__":
    main()
