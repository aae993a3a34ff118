"""HSA2C across ranks: every rank trains dpsgd.A2C with ``comm`` on CartPole-v1 until one
rank's last 100 episodes average 475 (or the budget ends). Rank 0 prints one JSON line: the
env steps of every rank together, each rank's episodes, mean return and the steps at which it
reached 475, whether the ranks hold the same final parameters, the delays, and the greedy
policy's mean return over 20 episodes.
argv: exchange, threads, budget, seed[, 'fail': rank 1's callback raises]."""
import json
import sys

import numpy as np
from mpi4py import MPI

from dpsgd import A2C
from dpsgd.comm import abort_on_exception
from dpsgd.tasks.a2c import evaluate_policy

abort_on_exception()
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
exchange, threads, budget, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fail = len(sys.argv) > 5 and sys.argv[5] == "fail"


def callback(info):
    if fail and rank == 1 and info["round"] == 3:
        raise RuntimeError("rank 1 failed on purpose in round 3")


model = A2C("MlpPolicy", "CartPole-v1", n_threads=threads, seed=seed, comm=comm, exchange=exchange)
model.learn(budget, callback=callback, stop_at_reward=475.0)
mine = {"episodes": len(model.ep_info_buffer), "solved_at": model.solved_at_, "steps": model.num_timesteps,
        "mean_return": float(np.mean([e["r"] for e in model.ep_info_buffer])) if model.ep_info_buffer else None}
ranks = comm.gather(mine)
params = comm.gather(model.params_)
if rank == 0:
    print(json.dumps({
        "num_timesteps": int(model.num_timesteps),
        "ranks": ranks,
        "same_params": all(np.array_equal(params[0], p) for p in params),
        "delay_mean": model.round_stats_.get("delay_mean"),
        "greedy": evaluate_policy(model, "CartPole-v1", n_eval_episodes=20, seed=0)[0],
    }))
