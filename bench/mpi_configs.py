"""Shared driver of the ranks x threads benchmarks: run each "RxT" configuration as its own job."""

import json
import os
import subprocess
import sys
from pathlib import Path


def run_configs(script, configs, child_args):
    """Run ``script --child T *child_args`` once per "RxT" config (under ``mpiexec -n R`` when R > 1).

    Returns [(config, the JSON its rank 0 printed last)]; failed configs are reported and skipped.
    """
    mpiexec = Path(sys.executable).parent / "mpiexec"
    rows = []
    for config in configs:
        ranks, threads = map(int, config.split("x"))
        cmd = [sys.executable, script, "--child", str(threads), *map(str, child_args)]
        if ranks > 1:
            cmd = [str(mpiexec), "-n", str(ranks)] + cmd
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=os.environ)
        if out.returncode != 0:
            print(config, "failed:", out.stderr.strip().splitlines()[-1:])
            continue
        rows.append((config, json.loads(out.stdout.strip().splitlines()[-1])))
    return rows


def delay_columns(r):
    """(communication share, "mean/p99/max" delays) of a result, or dashes without MPI."""
    comm = f"{r['comm_share']:.0%}" if "comm_share" in r else "-"
    delays = f"{r['delay_mean']:.1f}/{r['delay_p99']:.0f}/{r['delay_max']:.0f}" if "delay_mean" in r else "-"
    return comm, delays
