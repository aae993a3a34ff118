"""LunarLander-v3 through the Gymnasium adapter against Stable-Baselines3: a fidelity check.

    python bench/a2c_lunarlander.py                 # seeds 0 1 2, RL-Zoo's budget of 2e5 steps
    python bench/a2c_lunarlander.py --seeds 0 --budget 50000

RL-Zoo's A2C hyperparameters for LunarLander (8 envs, n_steps 5, gamma 0.995, learning rate
``lin_0.00083``, ent_coef 1e-5) for both systems; dpsgd steps Gymnasium's env in Python through
``dpsgd.envs.adapter`` (one thread). Each run is a fresh process, dpsgd and SB3 alternating by
seed; SB3 with torch and BLAS pinned to one thread. Per run: the mean return of the last 100
training episodes at the end of the budget, CPU and wall seconds. Needs the bench extra and
Box2D (``pip install "gymnasium[box2d]"``). No assertion.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ZOO = dict(n_envs=8, n_steps=5, gamma=0.995, ent_coef=1e-5, learning_rate=0.00083)
ENV = "LunarLander-v3"


def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_dpsgd(seed, budget):
    import numpy as np

    from dpsgd.tasks.a2c_learn import learn

    wall, cpu = time.perf_counter(), _cpu()
    result = learn(ENV, budget, n_envs=ZOO["n_envs"], n_steps=ZOO["n_steps"], gamma=ZOO["gamma"],
                   ent_coef=ZOO["ent_coef"], learning_rate=f"lin_{ZOO['learning_rate']}", n_threads=1, seed=seed)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return {"score": float(np.mean(result.episode_returns[-100:])), "wall_s": wall, "cpu_s": cpu,
            "env_steps": result.env_steps}


def run_sb3(seed, budget):
    import numpy as np
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    env = make_vec_env(ENV, n_envs=ZOO["n_envs"], seed=seed)
    lr = ZOO["learning_rate"]
    model = A2C("MlpPolicy", env, n_steps=ZOO["n_steps"], gamma=ZOO["gamma"], ent_coef=ZOO["ent_coef"],
                learning_rate=lambda progress: progress * lr, seed=seed, device="cpu", verbose=0)
    wall, cpu = time.perf_counter(), _cpu()
    model.learn(budget)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return {"score": float(np.mean([e["r"] for e in model.ep_info_buffer])), "wall_s": wall, "cpu_s": cpu,
            "env_steps": int(model.num_timesteps)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=200_000)
    parser.add_argument("--one", nargs=2, metavar=("SYSTEM", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        system, seed = args.one
        print(json.dumps((run_dpsgd if system == "dpsgd" else run_sb3)(int(seed), args.budget)))
        return
    print(f"# {ENV}, {args.budget} env steps, RL-Zoo's A2C set-up; uptime: {subprocess.getoutput('uptime').strip()}")
    pinned = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    runs = {"dpsgd": [], "sb3": []}
    for seed in args.seeds:
        for system in runs:
            out = subprocess.run([sys.executable, __file__, "--budget", str(args.budget), "--one", system, str(seed)],
                                 capture_output=True, text=True, env=pinned if system == "sb3" else None, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            runs[system].append(r)
            print(f"  {system:<5} seed {seed}: mean return of the last 100 episodes {r['score']:8.1f}, "
                  f"{r['cpu_s']:6.1f} CPU-s, {r['wall_s']:6.1f} wall-s, {r['env_steps'] / r['cpu_s']:,.0f} steps/CPU-s",
                  flush=True)
    for system, rs in runs.items():
        scores = [r["score"] for r in rs]
        print(f"{system}: score median {statistics.median(scores):.1f} ({min(scores):.1f} to {max(scores):.1f}); "
              f"CPU-s median {statistics.median(r['cpu_s'] for r in rs):.1f}")


if __name__ == "__main__":
    main()
