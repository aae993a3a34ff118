"""Env steps per second of the Hogwild! A2C loop (dpsgd.tasks.a2c_learn) on CartPole-v1, one run, no assertion.

    python bench/hsa2c_speed.py                    # 1 and 2 threads, 100,000 env steps each
    python bench/hsa2c_speed.py --steps 500000 --threads 1 2 4

RL-Zoo's hyperparameters (n_envs 8 per thread, n_steps 5, 64-64 tanh); the whole loop is timed
(rollout, GAE, gradient, RMSprop), wall-clock and process CPU time.
"""

import argparse
import platform
import time

from dpsgd.tasks.a2c_learn import learn, steps_to_reach


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"# CartPole-v1, {args.steps} env steps, {platform.processor() or platform.machine()}")
    for n in args.threads:
        wall, cpu = time.perf_counter(), time.process_time()
        result = learn("CartPole-v1", args.steps, n_threads=n, seed=args.seed)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"threads={n}: {result.env_steps / wall:,.0f} env steps/s wall, "
              f"{result.env_steps / cpu:,.0f} per CPU-second, solved at {steps_to_reach(result)} steps")


if __name__ == "__main__":
    main()
