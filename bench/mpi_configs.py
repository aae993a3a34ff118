"""Shared driver of the ranks x threads benchmarks: run each "RxT" configuration as its own job."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def mpiexec():
    """The mpiexec beside this Python (MPICH from PyPI installs it there), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else (shutil.which("mpiexec") or "mpiexec")


def run_config(script, config, child_args, timeout=1800):
    """Run ``script --child T *child_args`` for one "RxT" config (under ``mpiexec -n R`` when R > 1).

    Returns the JSON its rank 0 printed last, with ``cpu_s``: the CPU-seconds of every process
    of the run (user + system). Raises RuntimeError with the last line of its errors when it
    fails, and subprocess.TimeoutExpired past ``timeout`` seconds.
    """
    ranks, threads = map(int, config.split("x"))
    cmd = [sys.executable, script, "--child", str(threads), *map(str, child_args)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks)] + cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # mpiexec waits for its ranks, so they count
    if out.returncode != 0:
        raise RuntimeError(f"{config} failed: {out.stderr.strip().splitlines()[-1:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "cpu_s": cpu}


def run_configs(script, configs, child_args):
    """:func:`run_config` for each config; returns [(config, result)], failed configs reported and skipped."""
    rows = []
    for config in configs:
        try:
            rows.append((config, run_config(script, config, child_args)))
        except RuntimeError as error:
            print(error)
    return rows


def delay_columns(r):
    """(communication share, "mean/p99/max" delays) of a result, or dashes without MPI."""
    comm = f"{r['comm_share']:.0%}" if "comm_share" in r else "-"
    delays = f"{r['delay_mean']:.1f}/{r['delay_p99']:.0f}/{r['delay_max']:.0f}" if "delay_mean" in r else "-"
    return comm, delays


class Curve:
    """Quality against training time on rank 0, leaving out the time spent evaluating."""

    def __init__(self, clock=time.perf_counter):
        self.points = []
        self._clock = clock  # a virtual rank's clock in bench/simulate.py
        self.start()

    def start(self):
        self._start = self._clock()
        self.evaluating = 0.0  # seconds spent in add()

    def add(self, evaluate):
        tic = self._clock()
        value = float(evaluate())
        self.points.append((tic - self._start - self.evaluating, value))
        self.evaluating += self._clock() - tic


def time_to_target(points, target, higher_is_better):
    """Seconds of the first point that reaches ``target``, or None."""
    for seconds, value in points:
        if (value >= target) if higher_is_better else (value <= target):
            return seconds
    return None


def target_columns(rows, higher_is_better, tolerance=0.01):
    """Target = 1 x 1's final quality, ``tolerance`` (relative) worse; per config the time to
    reach it and the speed-up over 1 x 1 at that target, as printable strings."""
    if not rows[0][1]["curve"]:  # fits without evaluations (e.g. scaling_lda.py --plain)
        return float("nan"), [("-", "-")] * len(rows)
    final = rows[0][1]["curve"][-1][1]
    target = final * (1 - tolerance if (final > 0) == higher_is_better else 1 + tolerance)
    times = [time_to_target(r["curve"], target, higher_is_better) for _, r in rows]
    base = times[0]
    cells = [("-", "-") if t is None else (f"{t:.2f}s", f"{base / t:.2f}x") for t in times]
    return target, cells


def print_table(title, rows, quality_name, quality_key, higher_is_better, tolerance=0.01):
    """One line per config: fit seconds and speed-up over 1 x 1, time to the target quality
    and speed-up there, final quality, communication share and delays (rank 0)."""
    target, cells = target_columns(rows, higher_is_better, tolerance)
    base = rows[0][1]["seconds"]
    print(f"{title}; target: {quality_name} {target:.5f} (1 x 1's final, {tolerance:.0%} worse)")
    print(f"{'ranks x threads':16s} {'seconds':>8s} {'speed-up':>9s} {'to target':>10s} {'speed-up':>9s} "
          f"{quality_name:>12s} {'comm':>6s} {'delay mean/p99/max':>20s}")
    for (config, r), (seconds, speedup) in zip(rows, cells):
        comm, delays = delay_columns(r)
        print(f"{config:16s} {r['seconds']:8.2f} {base / r['seconds']:8.2f}x {seconds:>10s} {speedup:>9s} "
              f"{r[quality_key]:12.5f} {comm:>6s} {delays:>20s}")
