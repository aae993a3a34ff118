"""dpsgd's A2C against Stable-Baselines3's A2C (issue 10): learning fidelity and speed per core.

    python bench/a2c_vs_sb3.py                                  # both envs, seeds 0-4, 5e5 steps
    python bench/a2c_vs_sb3.py --envs CartPole-v1 --seeds 0 1 --budget 100000 --out runs.json

Stable-Baselines3 and torch come from the ``bench`` extra (``pip install -e .[bench]``).

What it measures, for CartPole-v1 and Acrobot-v1 with RL-Zoo's A2C hyperparameters for both
systems (n_steps 5, lr 7e-4, gamma 0.99, gae_lambda 1.0, ent_coef 0.0, vf_coef 0.5,
max_grad_norm 0.5, RMSprop eps 1e-5, separate 64-64 tanh policy and value nets; n_envs 8 for
CartPole-v1, 16 for Acrobot-v1), 1 rank x 1 thread, one run per (system, env, seed):

* steps-to-solve: env steps at which the mean return of the last 100 training episodes first
  reached the threshold (475 for CartPole-v1, -100 for Acrobot-v1); both systems stop there,
  so the wall-clock and CPU seconds of a solved run are its time to solve;
* wall-clock (time.perf_counter) and CPU seconds (getrusage(RUSAGE_SELF) user+sys) of the
  learn call only (imports, and SB3's env and model construction, are outside it);
* env steps per CPU-second.

Acrobot-v1: RL-Zoo wraps SB3's envs in ``VecNormalize`` (observations and rewards; the
returns checked are the raw ones recorded by ``Monitor``); dpsgd runs with ``normalize=True``,
the same statistics in its C loop.

Every run is a fresh process (this script with ``--one``, printing one JSON line), in the order
dpsgd, SB3, dpsgd, SB3, ... (both systems for a seed before the next seed). The SB3 child runs
with OMP_NUM_THREADS=MKL_NUM_THREADS=OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1); the
dpsgd child runs in the environment as given (n_threads=1 is passed to ``learn``).

Output: ``uptime``, a per-run table, per env and system the solved count, median (min-max)
steps-to-solve, CPU-s and wall-s to solve, median env steps per CPU-second, then the ratios
dpsgd/SB3 of the medians. ``--out FILE`` writes every run's record as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

THRESHOLDS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0}
N_ENVS = {"CartPole-v1": 8, "Acrobot-v1": 16}
NORMALIZE = {"CartPole-v1": False, "Acrobot-v1": True}  # RL-Zoo: VecNormalize (obs and reward) for SB3
WINDOW = 100
# RL-Zoo (hyperparams/a2c.yml) sets ent_coef 0.0 and leaves SB3's A2C defaults otherwise
ZOO_KWARGS = {"learning_rate": 7e-4, "n_steps": 5, "gamma": 0.99, "gae_lambda": 1.0, "ent_coef": 0.0, "vf_coef": 0.5,
              "max_grad_norm": 0.5, "rms_prop_eps": 1e-5, "use_rms_prop": True, "normalize_advantage": False}
SYSTEMS = ("dpsgd", "sb3")
SB3_PINS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_dpsgd(env_id: str, seed: int, budget: int) -> dict:
    from dpsgd.tasks.a2c_learn import learn, steps_to_reach

    threshold = THRESHOLDS[env_id]
    kwargs = {k: v for k, v in ZOO_KWARGS.items() if k != "use_rms_prop"}
    wall, cpu = time.perf_counter(), _cpu_seconds()
    result = learn(env_id, budget, n_envs=N_ENVS[env_id], n_threads=1, seed=seed, stop_at_reward=threshold,
                   normalize=NORMALIZE[env_id], **kwargs)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    return {"env_steps": int(result.env_steps), "steps_to_solve": steps_to_reach(result, threshold, WINDOW),
            "episodes": int(result.episode_returns.shape[0]), "wall_s": wall, "cpu_s": cpu,
            "normalize": NORMALIZE[env_id]}


def run_sb3(env_id: str, seed: int, budget: int) -> dict:
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    threshold = THRESHOLDS[env_id]

    class StopAtReward(BaseCallback):
        """Stops once the last 100 episodes' mean (Monitor's raw returns) reaches the threshold."""

        def __init__(self):
            super().__init__()
            self.solved_at = None

        def _on_step(self) -> bool:
            return self.solved_at is None

        def _on_rollout_end(self) -> None:
            buf = self.model.ep_info_buffer
            if self.solved_at is None and len(buf) == buf.maxlen and np.mean([e["r"] for e in buf]) >= threshold:
                self.solved_at = int(self.num_timesteps)

    env = make_vec_env(env_id, n_envs=N_ENVS[env_id], seed=seed)
    if NORMALIZE[env_id]:
        env = VecNormalize(env)  # RL-Zoo's `normalize: true`: observations and rewards, gamma 0.99
    model = A2C("MlpPolicy", env, seed=seed, verbose=0, device="cpu", **ZOO_KWARGS)
    callback = StopAtReward()
    wall, cpu = time.perf_counter(), _cpu_seconds()
    model.learn(budget, callback=callback)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    env.close()
    return {"env_steps": int(model.num_timesteps), "steps_to_solve": callback.solved_at,
            "episodes": None, "wall_s": wall, "cpu_s": cpu, "normalize": NORMALIZE[env_id]}


def run_one(system: str, env_id: str, seed: int, budget: int) -> dict:
    record = (run_dpsgd if system == "dpsgd" else run_sb3)(env_id, seed, budget)
    record.update(system=system, env=env_id, seed=seed, budget=budget, n_envs=N_ENVS[env_id],
                  steps_per_cpu_s=record["env_steps"] / record["cpu_s"] if record["cpu_s"] > 0 else None)
    return record


def spawn(system: str, env_id: str, seed: int, budget: int) -> dict:
    env = dict(os.environ)
    if system == "sb3":
        env.update(SB3_PINS)
    cmd = [sys.executable, os.path.abspath(__file__), "--one", system, env_id, str(seed), "--budget", str(budget)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"{system} {env_id} seed {seed} failed with exit status {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _fmt(x, spec=",.0f"):
    return "-" if x is None else format(x, spec)


def _med_range(values, spec=",.0f"):
    if not values:
        return "-"
    return f"{format(statistics.median(values), spec)} ({format(min(values), spec)}-{format(max(values), spec)})"


def _median(values):
    return statistics.median(values) if values else None


def summarize(records: list[dict], envs: list[str]) -> None:
    print("\n# per run")
    print(f"{'env':<12} {'system':<6} {'seed':>4} {'env steps':>10} {'solved at':>10} {'wall s':>8} {'CPU s':>8} "
          f"{'steps/CPU-s':>12}")
    for r in records:
        print(f"{r['env']:<12} {r['system']:<6} {r['seed']:>4} {r['env_steps']:>10,} {_fmt(r['steps_to_solve']):>10} "
              f"{r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {_fmt(r['steps_per_cpu_s']):>12}")

    for env_id in envs:
        print(f"\n# {env_id}: solved = mean of the last {WINDOW} training episodes >= {THRESHOLDS[env_id]:g}")
        if NORMALIZE[env_id]:
            print("#   both with VecNormalize's observations and rewards (RL-Zoo's normalize: true)")
        med = {}
        for system in SYSTEMS:
            runs = [r for r in records if r["env"] == env_id and r["system"] == system]
            if not runs:
                continue
            solved = [r for r in runs if r["steps_to_solve"] is not None]
            steps = [r["steps_to_solve"] for r in solved]
            cpu = [r["cpu_s"] for r in solved]
            wall = [r["wall_s"] for r in solved]
            speed = [r["steps_per_cpu_s"] for r in runs if r["steps_per_cpu_s"] is not None]
            med[system] = {"steps": _median(steps), "cpu": _median(cpu), "wall": _median(wall), "speed": _median(speed)}
            print(f"{system:<6} solved {len(solved)}/{len(runs)}; steps-to-solve {_med_range(steps)}; "
                  f"CPU-s to solve {_med_range(cpu, '.1f')}; wall-s to solve {_med_range(wall, '.1f')}; "
                  f"env steps/CPU-s {_fmt(_median(speed))}")
        if len(med) == 2:
            d, s = med["dpsgd"], med["sb3"]

            def ratio(a, b):
                return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"

            print(f"dpsgd/SB3 (medians): steps-to-solve {ratio(d['steps'], s['steps'])}; "
                  f"env steps per CPU-s {ratio(d['speed'], s['speed'])}; "
                  f"CPU-s to solve {ratio(d['cpu'], s['cpu'])}; wall-s to solve {ratio(d['wall'], s['wall'])}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=list(THRESHOLDS), choices=list(THRESHOLDS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=500_000, help="env steps per run (default 500000)")
    parser.add_argument("--out", default=None, help="write every run's record to this JSON file")
    parser.add_argument("--one", nargs=3, metavar=("SYSTEM", "ENV", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        system, env_id, seed = args.one
        if system not in SYSTEMS or env_id not in THRESHOLDS:
            parser.error(f"--one: unknown system or env {args.one}")
        print(json.dumps(run_one(system, env_id, int(seed), args.budget)), flush=True)
        return

    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"# uptime: {uptime}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"# envs {args.envs}, seeds {args.seeds}, budget {args.budget:,} env steps, 1 rank x 1 thread, "
          "RL-Zoo A2C hyperparameters; each run a fresh process, order dpsgd, SB3 per seed")
    records = []
    for env_id in args.envs:
        for seed in args.seeds:
            for system in SYSTEMS:
                r = spawn(system, env_id, seed, args.budget)
                records.append(r)
                print(f"  {env_id} {system} seed {seed}: {r['env_steps']:,} steps, solved at "
                      f"{_fmt(r['steps_to_solve'])}, {r['wall_s']:.1f} wall-s, {r['cpu_s']:.1f} CPU-s", flush=True)
    summarize(records, args.envs)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(records, f, indent=1)
        print(f"\n# records written to {args.out}")


if __name__ == "__main__":
    main()
