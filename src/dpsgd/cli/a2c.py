"""``dpsgd train a2c``: advantage actor-critic (HSA2C) on a C environment, in one process or under mpiexec.

With no options it trains RL-Zoo's CartPole-v1 set-up until the mean return of the last 100
episodes reaches 475 (Gymnasium's threshold): seconds on one core. Rank 0 draws the progress
(env steps of every rank, the mean return), writes a log line and a checkpoint every
``--log-interval`` of its own env steps, and the model at the end.
"""

import time

import numpy as np

from dpsgd.cli.common import JsonLog, read_checkpoint, rounds_summary, save_then_report
from dpsgd.comm.topology import Topology
from dpsgd.envs.vector import ENVS
from dpsgd.progress import Progress


def _checkpointer(args, model_args):
    """``write(state, num_timesteps)``: a checkpoint of the run (``state``: the model's ``params_``,
    ``optimizer_state_`` and ``optimizer_steps_``), or None without --checkpoint."""
    if not args.checkpoint:
        return None
    from dpsgd import persist

    def write(state, num_timesteps):
        arrays = {"params_": state["params_"], "optimizer_state_": state["optimizer_state_"]}
        if state.get("normalizer_") is not None:
            arrays["normalizer_"] = state["normalizer_"]
        persist.write_checkpoint(args.checkpoint, "a2c", arrays,
                                 {"num_timesteps": int(num_timesteps), "optimizer_steps": int(state["optimizer_steps_"]),
                                  **model_args})

    return write


def train_a2c(args, comm):
    from dpsgd import A2C

    topology = Topology(comm)
    root = topology.is_root
    threshold = {None: ENVS[args.env].reward_threshold, "none": None}.get(args.stop_at_reward, args.stop_at_reward)
    model_args = {"env": args.env, "n_envs": args.n_envs, "n_steps": args.n_steps, "optimizer": args.optimizer,
                  "normalize": args.normalize}
    model = A2C("MlpPolicy", args.env, learning_rate=args.learning_rate, n_steps=args.n_steps, gamma=args.gamma,
                gae_lambda=args.gae_lambda, ent_coef=args.ent_coef, vf_coef=args.vf_coef,
                max_grad_norm=args.max_grad_norm, normalize_advantage=args.normalize_advantage,
                use_rms_prop=args.optimizer == "rmsprop", normalize=args.normalize,
                shared_optimizer_stats=args.optimizer_stats == "shared",
                n_envs=args.n_envs, n_threads=args.threads, seed=args.seed, comm=comm, exchange=args.exchange,
                step_policy=None if args.step_policy == "none" else args.step_policy,
                max_seconds=args.max_seconds, network=args.network,
                compression=args.compression, gossip_graph=args.graph)
    done = 0
    if args.resume:
        arrays, meta = read_checkpoint(args.resume, "a2c", ("params_", "optimizer_state_"),
                                       ("num_timesteps", "optimizer_steps", *model_args))
        if any(meta[key] != value for key, value in model_args.items()):
            from dpsgd.cli.checks import UsageError

            raise UsageError(f"--resume {args.resume}: the checkpoint trained {meta['env']} with --n-envs "
                             f"{meta['n_envs']} --n-steps {meta['n_steps']} --optimizer {meta['optimizer']}"
                             f"{' --normalize' if meta['normalize'] else ''}; give the same")
        model.params_, model.optimizer_state_ = arrays["params_"], arrays["optimizer_state_"]
        model.optimizer_steps_ = int(meta["optimizer_steps"])
        model.normalizer_ = arrays.get("normalizer_")
        model.num_timesteps = done = int(meta["num_timesteps"])
        model.n_features_in_ = ENVS[args.env].obs_dim
        model._check_fitted_shapes()
    left = args.timesteps - done
    if left <= 0:
        from dpsgd.cli.checks import UsageError

        raise UsageError(f"--resume {args.resume}: the checkpoint has {done} env steps done; --timesteps "
                         f"{args.timesteps} leaves nothing to run (give more than {done})")
    if root:
        ranks = f" x {topology.ranks} ranks ({args.exchange})" if topology.distributed else ""
        stop = "the whole budget" if threshold is None else f"until the mean return reaches {threshold:g}"
        print(f"env: {args.env}, {args.n_envs} envs x {args.n_steps} steps a thread{ranks}; "
              f"{left} env steps, {stop}")
        if args.resume:
            print(f"resuming from {args.resume}: {done} env steps done")
    write = _checkpointer(args, model_args)
    progress = Progress(left, "steps", disable=args.quiet or not root)
    log = JsonLog(args.log_json if root else None)
    tic = time.perf_counter()
    state = {"shown": 0, "next_log": args.log_interval}

    def on_round(info):
        if not root:
            return
        progress.update(info["updates"] - state["shown"], mean_return=f"{info['mean_return']:.1f}")
        state["shown"] = info["updates"]
        if info["env_steps"] < state["next_log"]:
            return
        state["next_log"] += args.log_interval
        record = {"time": time.perf_counter() - tic, "updates": done + info["updates"],
                  "env_steps": done + info["env_steps"], "mean_return": info["mean_return"]}
        if topology.distributed:
            record.update({k: info[k] for k in ("delay_mean", "delay_max") if k in info})
        log.write(record)
        if write is not None:
            write(info["model"](), done + info["updates"])

    try:
        model.learn(left, callback=on_round, reset_num_timesteps=not args.resume, stop_at_reward=threshold)
    finally:
        progress.close()
        log.close()
    wall = time.perf_counter() - tic
    if root and write is not None:
        write({"params_": model.params_, "optimizer_state_": model.optimizer_state_,
               "optimizer_steps_": model.optimizer_steps_, "normalizer_": model.normalizer_}, model.num_timesteps)
    if not root:
        return 0
    mean = float(np.mean([e["r"] for e in model.ep_info_buffer])) if model.ep_info_buffer else float("nan")

    def parts():
        trained = model.num_timesteps - done
        result = [f"env steps {model.num_timesteps}",
                  f"threads {model.n_threads_}" + (f" x {topology.ranks} ranks" if topology.distributed else ""),
                  f"train time {wall:.2f} s", f"{trained / max(wall, 1e-12):,.0f} env steps/s",
                  f"mean return (last {len(model.ep_info_buffer)} episodes) {mean:.1f}"]
        if model.solved_at_ is not None:
            result.append(f"reached {threshold:g} after {model.solved_at_} env steps"
                          + (" (of every rank)" if topology.distributed else ""))
        if topology.distributed:
            result.append(rounds_summary(model.round_stats_))
        return result

    return save_then_report(model, args.save, parts)
