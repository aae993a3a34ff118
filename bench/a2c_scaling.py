"""HSA2C's two layers on CartPole-v1: threads in one process and ranks through the engine.

    python bench/a2c_scaling.py                          # 1x1, 1x2, 2x1 (ranks x threads), seeds 0-4
    python bench/a2c_scaling.py --layouts 1x1 4x4 16x1 --seeds 0 1 2
    python bench/a2c_scaling.py --layouts 1x1 2x1:server 2x1:allreduce 2x1:gossip+natural@1GbE --seeds 0 1 2

Each run is a fresh ``[mpiexec -n R] python -m dpsgd train a2c --threads T --seed S`` (RL-Zoo's
CartPole-v1 set-up, until the mean return of a rank's last 100 episodes reaches 475), in the
order layout by layout within a seed, seeds one after the other. Per run: env steps of every
rank until the stop, wall-clock of the training (the command's own "train time"), and env
steps per second. Then per layout: medians with min-max, and ratios to the first layout's
medians. No assertion: the figures go to the README and the issue.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path


def run(layout: str, seed: int, timeout: float = 900) -> dict:
    shape, _, network = layout.partition("@")
    shape, _, exchange = shape.partition(":")
    ranks, threads = (int(x) for x in shape.split("x"))
    command = [sys.executable, "-m", "dpsgd", "train", "a2c", "--quiet", "--threads", str(threads),
               "--seed", str(seed)]
    if exchange:  # NAME[-GRAPH][+natural]
        exchange, _, compression = exchange.partition("+")
        name, _, graph = exchange.partition("-")
        command += ["--exchange", name] + (["--graph", graph] if graph else []) + (
            ["--compression", compression] if compression else [])
    if network:
        command += ["--network", network]
    if ranks > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        command = [str(mpiexec if mpiexec.exists() else "mpiexec"), "-n", str(ranks), *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr}")
    line = out.stdout.strip().splitlines()[-1]
    steps = int(re.search(r"env steps (\d+)", line).group(1))
    wall = float(re.search(r"train time ([\d.]+) s", line).group(1))
    return {"layout": layout, "seed": seed, "env_steps": steps, "wall_s": wall, "steps_per_s": steps / wall,
            "solved": "reached 475" in line}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", nargs="+", default=["1x1", "1x2", "2x1"],
                        help="RANKSxTHREADS[:EXCHANGE[-GRAPH][+natural]][@NETWORK], e.g. 2x1:gossip-ring@1GbE")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    print(f"# {os.uname().nodename}: {os.cpu_count()} CPUs; uptime: {subprocess.getoutput('uptime').strip()}")
    records = []
    for seed in args.seeds:
        for layout in args.layouts:
            r = run(layout, seed)
            records.append(r)
            print(f"  {layout} seed {seed}: {r['env_steps']:,} env steps, {r['wall_s']:.2f} s, "
                  f"{r['steps_per_s']:,.0f} steps/s{'' if r['solved'] else ' (not solved)'}", flush=True)
    base = None
    for layout in args.layouts:
        runs = [r for r in records if r["layout"] == layout]
        med = {k: statistics.median(r[k] for r in runs) for k in ("env_steps", "wall_s", "steps_per_s")}
        spread = {k: (min(r[k] for r in runs), max(r[k] for r in runs)) for k in med}
        base = base or med
        print(f"{layout}: solved {sum(r['solved'] for r in runs)}/{len(runs)}; steps to solve "
              f"{med['env_steps']:,.0f} ({spread['env_steps'][0]:,}-{spread['env_steps'][1]:,}); wall to solve "
              f"{med['wall_s']:.2f} s ({spread['wall_s'][0]:.2f}-{spread['wall_s'][1]:.2f}); "
              f"{med['steps_per_s']:,.0f} steps/s; vs {args.layouts[0]}: steps "
              f"{med['env_steps'] / base['env_steps']:.2f}x, wall {med['wall_s'] / base['wall_s']:.2f}x, "
              f"speed {med['steps_per_s'] / base['steps_per_s']:.2f}x")


if __name__ == "__main__":
    main()
