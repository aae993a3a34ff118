"""The simulator (dpsgd.comm.virtual) against real ranks, then every exchange at 2 to 64 virtual ranks (issue 12).

    python bench/simulate.py validate [--repeat 2] [--exchanges server allreduce ...] [--networks none 1GbE slow]
    python bench/simulate.py scale [--ranks 2 4 8 16 32 64] [--exchanges ...] [--networks none 10GbE 1GbE]
                                   [--json rows.json] [--logs DIR]

Both fit distributed SGD on the RCV1-like set (``bench/scaling_linear.py``'s ``fit_rank``: log
loss, alpha 1e-5, the default ``sync_every``, 1 thread a rank, ``--epochs`` passes). The target
is a real one-process fit's final test log-loss, 1% worse; "to target" is when rank 0's
curve (after each of its passes) first reaches it.

``validate`` runs each exchange x network on 2 real ranks (``mpiexec -n 2``) and on 2 virtual
ranks, each a fresh process, alternating real, simulated, real, simulated (``--repeat``
pairs), and prints the ratio simulated / real of the fit's seconds (the clock: the same
passes, real and simulated) and of the time to the target (the issue asks for 15%). The
synchronous exchanges learn the same curve in both, so their time to target compares clocks
only; the asynchronous ones learn a curve of their schedule, which varies from run to run
in real runs as well. ``scale`` runs only virtual
ranks: every figure it prints is simulated (a virtual rank's clock is its thread's CPU time
plus its waits and the network model's delays).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from exchanges import NETWORKS, exchange_spec, parse_spec
from mpi_configs import run_config, time_to_target

HERE = Path(__file__).resolve().parent


def sim_child(ranks, scale, epochs, spec, network):
    """One simulated run, printed as one JSON line: rank 0's result with the simulation's
    events and real seconds."""
    sys.path.insert(0, str(HERE))
    import rcv1like
    from scaling_linear import fit_rank

    from dpsgd.comm.virtual import simulate

    name, graph, compression = parse_spec(spec)
    arrays = rcv1like.load(scale)
    sim = simulate(fit_rank, ranks, arrays, 1, epochs, "auto", name, NETWORKS[network], compression, graph)
    print(json.dumps({**sim.results[0], "events": sim.events, "wall_seconds": sim.wall_seconds,
                      "clock_max": max(sim.seconds)}))


def run_simulated(ranks, scale, epochs, spec, network, timeout=3600):
    cmd = [sys.executable, __file__, "--sim-child", str(ranks), "--scale", str(scale), "--epochs", str(epochs),
           "--exchanges", spec, "--networks", network]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"simulated {spec} {network} x{ranks} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_real(ranks, scale, epochs, spec, network):
    name, graph, compression = parse_spec(spec)
    args = ["--epochs", epochs, "--scale", scale, "--sync-every", "auto", "--exchange", name, "--graph", graph]
    args += (["--compression", compression] if compression else []) + (
        ["--network", NETWORKS[network]] if NETWORKS[network] else [])
    return run_config(str(HERE / "scaling_linear.py"), f"{ranks}x1", args)


def target_of(scale, epochs):
    one = run_config(str(HERE / "scaling_linear.py"), "1x1", ["--epochs", epochs, "--scale", scale])
    return one["curve"][-1][1] * 1.01, one


def validate(args):
    target, one = target_of(args.scale, args.epochs)
    print(f"RCV1-like x{args.scale}, {args.epochs} epochs, 2 ranks x 1 thread; target test log-loss {target:.5f} "
          f"(one process: {one['seconds']:.2f} s, final {one['curve'][-1][1]:.5f}); load {load()}")
    print("fit s: the fit's seconds on rank 0's clock (real / simulated, median), and their ratio simulated / real "
          "(median, range over pairs); to target: each run's, real then simulated, and the ratio of the medians")
    print(f"{'exchange':16s} {'network':7s} {'fit s real/sim':>15s} {'ratio':>17s} {'real to target':>16s} "
          f"{'simulated':>16s} {'ratio':>6s} {'log-loss real/sim':>18s}")
    for network in args.networks:
        for spec in args.exchanges:
            real, sim = [], []
            for _ in range(args.repeat):  # real, simulated, real, simulated: the same minutes for both
                real.append(run_real(2, args.scale, args.epochs, spec, network))
                sim.append(run_simulated(2, args.scale, args.epochs, spec, network))
            fit = [s["seconds"] / r["seconds"] for s, r in zip(sim, real)]
            t_real = [time_to_target(r["curve"], target, False) for r in real]
            t_sim = [time_to_target(r["curve"], target, False) for r in sim]
            reached = None not in t_real and None not in t_sim
            ratio = f"{statistics.median(t_sim) / statistics.median(t_real):.2f}" if reached else "-"
            print(f"{spec:16s} {network:7s} {_median(real, 'seconds'):7.2f}/{_median(sim, 'seconds'):.2f} "
                  f"{statistics.median(fit):6.2f} ({min(fit):.2f}-{max(fit):.2f}) {_times(t_real):>16s} "
                  f"{_times(t_sim):>16s} {ratio:>6s} {_median(real, 'test_log_loss'):8.5f}/"
                  f"{_median(sim, 'test_log_loss'):.5f}", flush=True)


def _median(results, key):
    return statistics.median(r[key] for r in results)


def scale(args):
    target, one = target_of(args.scale, args.epochs)
    print(f"SIMULATED: RCV1-like x{args.scale}, {args.epochs} epochs, 1 thread a virtual rank; target test log-loss "
          f"{target:.5f} (a real one-process fit: {one['seconds']:.2f} s to its final {one['curve'][-1][1]:.5f}, "
          f"to the target {time_to_target(one['curve'], target, False):.2f} s); load {load()}")
    print(f"{'exchange':16s} {'network':7s} {'ranks':>5s} {'seconds':>8s} {'to target':>9s} {'log-loss':>8s} "
          f"{'comm':>5s} {'MB/rank':>8s} {'net s':>6s} {'consensus':>9s} {'delay':>6s} {'real s':>7s}")
    rows = []
    for network in args.networks:
        for spec in args.exchanges:
            for ranks in args.ranks:
                try:
                    r = run_simulated(ranks, args.scale, args.epochs, spec, network)
                except (RuntimeError, subprocess.TimeoutExpired) as error:
                    print(error, flush=True)
                    continue
                t = time_to_target(r["curve"], target, False)
                rows.append({**r, "exchange": spec, "network": network, "ranks": ranks, "to_target": t})
                if args.logs:  # as --log-json writes them, for dpsgd plot
                    Path(args.logs).mkdir(parents=True, exist_ok=True)
                    with open(Path(args.logs) / f"{spec.replace(':', '-')}_{network}_{ranks}.jsonl", "w") as f:
                        for (seconds, loss), updates in zip(r["curve"], r["curve_updates"]):
                            f.write(json.dumps({"time": seconds, "updates": updates, "test_log_loss": loss,
                                                "ranks": ranks, "exchange": spec, "clock": "simulated"}) + "\n")
                consensus = r.get("consensus_distance")
                print(f"{spec:16s} {network:7s} {ranks:5d} {r['seconds']:8.2f} "
                      f"{'-' if t is None else f'{t:.2f}':>9s} {r['test_log_loss']:8.5f} {r['comm_share']:5.0%} "
                      f"{r['bytes_sent'] / 1e6:8.1f} {r.get('network_seconds', 0.0):6.2f} "
                      f"{'-' if consensus is None else f'{consensus:.3g}':>9s} {r['delay_mean']:6.1f} "
                      f"{r['wall_seconds']:7.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"target": target, "one_process": one, "rows": rows}))


def _times(values):
    return "/".join("-" if v is None else f"{v:.2f}" for v in values)


def load():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["validate", "scale"], default="validate")
    parser.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=["none", "1GbE", "slow"])
    parser.add_argument("--exchanges", nargs="+", type=exchange_spec,
                        default=["server", "allreduce", "gossip", "async_gossip", "gossip+natural"])
    parser.add_argument("--json", help="scale: write the rows here")
    parser.add_argument("--logs", help="scale: write each run's curve here as a --log-json log (dpsgd plot draws them)")
    parser.add_argument("--sim-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sim_child is not None:
        return sim_child(args.sim_child, args.scale, args.epochs, args.exchanges[0], args.networks[0])
    tic = time.perf_counter()
    (validate if args.mode == "validate" else scale)(args)
    print(f"({time.perf_counter() - tic:.0f} s)")


if __name__ == "__main__":
    main()
