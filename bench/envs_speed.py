"""Env steps per second of dpsgd's C environments against Gymnasium's, one run, no assertion.

    python bench/envs_speed.py                 # CartPole-v1 and Acrobot-v1
    python bench/envs_speed.py --seconds 2

Rows: dpsgd through its Python vector API with 8 envs (one call per 8 steps, the Python
boundary included) and with 4096 envs (the kernel's own rate: the call cost is spread over
4096 steps); Gymnasium's make_vec(..., vectorization_mode="sync") with 8 envs. Random actions,
drawn beforehand; auto-reset on. Gymnasium is needed (pip install gymnasium).
"""

import argparse
import platform
import time

import numpy as np

import dpsgd.envs


def rate(env, n_envs, n_actions, seconds):
    """Env steps per second of ``env.step`` over about ``seconds``."""
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, n_actions, (256, n_envs))
    steps, start = 0, time.perf_counter()
    while True:
        for a in actions:
            env.step(a)
        steps += actions.size
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row")
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1"])
    args = parser.parse_args()
    import gymnasium as gym

    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"gymnasium {gym.__version__}; env steps/s, one run")
    for name in args.envs:
        n_actions = dpsgd.envs.make(name).single_action_space.n
        rows = []
        for n in (8, 4096):
            rows.append((f"dpsgd C, {n} envs", rate(dpsgd.envs.make(name, n_envs=n, seed=0), n, n_actions,
                                                     args.seconds)))
        genv = gym.make_vec(name, num_envs=8, vectorization_mode="sync")
        rows.append(("gymnasium sync, 8 envs", rate(genv, 8, n_actions, args.seconds)))
        genv.close()
        base = rows[-1][1]
        for label, r in rows:
            print(f"{name:12s} {label:24s} {r:14,.0f}  ({r / base:,.0f}x gymnasium)")


if __name__ == "__main__":
    main()
