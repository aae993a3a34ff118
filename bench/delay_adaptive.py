"""Delay-adaptive step sizes (Wu et al., ICML 2022) against fixed_for_delay(tau_max), on the same runs.

    python bench/delay_adaptive.py [--ranks 3] [--epochs 8] [--eta0 2.0] [--sync-every 1024]

R ranks (``mpiexec -n R``, one thread each) fit RCV1-like x0.5 with a constant local step
eta0, chosen large so that progress is limited by the step size (the regime where a step
policy matters). Each policy scales every pushed change by its step for the measured
delay over gamma' (``dpsgd.engine.run``):

- none: every push at full size;
- fixed_for_delay(tau_max): 1 / (tau_max + 1), with tau_max the largest delay of the "none" run;
- budget(alpha): alpha (1 - steps already pushed by anyone inside the delay window);
- fixed_or_skip(alpha): alpha, or 0 when the window already holds more than 1 - alpha.

Reported from rank 0: test log-loss of the global model after each of its epochs, the global
pushes and seconds it took to reach the target (the best final loss over all policies, 2%
worse), and the delays. Wu et al. report that adaptive steps win because real delays are far
below their maximum.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from mpi_configs import Curve, run_configs, time_to_target

HERE = Path(__file__).resolve().parent


def child(threads, epochs, eta0, sync_every, policy, tau_max, alpha):
    sys.path.insert(0, str(HERE))
    from scipy.special import expit
    from sklearn.metrics import log_loss

    import rcv1like
    from dpsgd import SGDClassifier
    from dpsgd.comm import abort_on_exception, world
    from dpsgd.stepsize import make_policy

    comm = world()
    abort_on_exception(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    X, y, X_test, y_test = rcv1like.load(0.5)
    mine = np.arange(rank, X.shape[0], size)
    step_policy = None
    if policy == "fixed_for_delay":
        step_policy = make_policy(policy, gamma_prime=1.0, tau_max=tau_max)
    elif policy != "none":
        step_policy = make_policy(policy, gamma_prime=1.0, alpha=alpha)
    clf = SGDClassifier(loss="log_loss", alpha=1e-6, learning_rate="constant", eta0=eta0, max_iter=epochs,
                        tol=None, random_state=0, n_threads=threads, comm=comm, sync_every=sync_every,
                        step_policy=step_policy)
    curve, clock = Curve(), []
    positive = (y_test == 1).astype(int)

    def callback(info):
        if rank == 0 and info["end_of_pass"]:
            model = info["model"]()
            p = expit(X_test @ model["coef_"][0] + model["intercept_"][0])
            curve.add(lambda: log_loss(positive, np.column_stack([1 - p, p]), labels=[0, 1]))
            clock.append(info["updates"] // sync_every)  # global pushes so far

    comm.Barrier()
    curve.start()
    tic = time.perf_counter()
    clf.fit(X[mine], y[mine], callback=callback)
    if rank == 0:
        print(json.dumps({"seconds": time.perf_counter() - tic - curve.evaluating, "curve": curve.points,
                          **clf.round_stats_, "clock": clock}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--eta0", type=float, default=2.0)
    parser.add_argument("--sync-every", type=int, default=1024)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="none")
    parser.add_argument("--tau-max", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.5)
    args = parser.parse_args()
    common = ["--epochs", args.epochs, "--eta0", args.eta0, "--sync-every", args.sync_every]
    if args.child is not None:
        return child(args.child, args.epochs, args.eta0, args.sync_every, args.policy, args.tau_max, args.alpha)
    config = [f"{args.ranks}x1"]
    runs = {"none": run_configs(__file__, config, common + ["--policy", "none"])[0][1]}
    tau_max = int(runs["none"]["delay_max"])
    runs[f"fixed_for_delay({tau_max})"] = run_configs(
        __file__, config, common + ["--policy", "fixed_for_delay", "--tau-max", tau_max])[0][1]
    for name, alpha in [("budget", 0.5), ("budget", 0.9), ("fixed_or_skip", 0.5)]:
        runs[f"{name}({alpha})"] = run_configs(
            __file__, config, common + ["--policy", name, "--alpha", alpha])[0][1]
    target = min(r["curve"][-1][1] for r in runs.values()) * 1.02
    print(f"RCV1-like x0.5, {args.ranks} ranks x 1 thread, constant local step {args.eta0}, sync every "
          f"{args.sync_every}, {args.epochs} epochs; target test log-loss {target:.4f} (best final, 2% worse)")
    print(f"{'policy':22s} {'loss by epoch (rank 0)':40s} {'pushes to target':>16s} {'seconds':>8s} "
          f"{'delay mean/p99/max':>19s}")
    for name, r in runs.items():
        losses = " ".join(f"{v:.3f}" for _, v in r["curve"])
        reached = time_to_target(r["curve"], target, higher_is_better=False)
        at = next((p for (s, v), p in zip(r["curve"], r["clock"]) if v <= target), None)
        seconds = "-" if reached is None else f"{reached:.2f}"
        delays = f"{r['delay_mean']:.1f}/{r['delay_p99']:.0f}/{r['delay_max']:.0f}"
        print(f"{name:22s} {losses:40s} {'-' if at is None else at:>16} {seconds:>8s} {delays:>19s}")


if __name__ == "__main__":
    main()
