"""Async-BCD (dpsgd._kernels.bcd) on a9a with L1: time to a relative suboptimality, 1 and 2
threads, against scikit-learn's saga and liblinear on the same problem (issue 11). No assertion.

    python bench/async_bcd.py                     # C = 0.005, target 1e-4, 3 repeats
    python bench/async_bcd.py --target 1e-6 --repeats 5

The problem: L1-regularised logistic regression without an intercept on the bundled a9a (32,561
rows, 123 features), scikit-learn's scaling P(w) = C sum_i log(1 + exp(-y_i x_i.w)) + ||w||_1,
C = 0.005 (liblinear keeps 17 of the 123 weights: 14%). P* comes from liblinear at tol 1e-12.

Async-BCD: 41 blocks of 3 columns, steps 1 / L_B (bcd.block_lipschitz), policy "none" (the
delay-adaptive policies are compared by --policies, below). It runs in chunks of 410 block updates (10
passes over the blocks), each chunk warm-started from the last, until P(w) - P* <= target P*;
the time counts the kernel calls only (the objective is evaluated between them, untimed).
saga: LogisticRegression(solver="saga", l1_ratio=1.0, fit_intercept=False) with max_iter
raised until it reaches the target, timed on the fit that first does; liblinear: its fit at
tol 1e-4 and 1e-6 (its time and gap). The methods alternate within each repeat; medians and
min-max over the repeats; CPU seconds next to wall seconds.

    python bench/async_bcd.py --policies          # the delay-adaptive step policies (issue 11)
    python bench/async_bcd.py --policies --a9a-rows 4000 --rcv1-scale 0.01 --max-epochs 300

--policies: block updates (iterations) of async_bcd_fit to a relative suboptimality P/P* - 1
<= target (1e-4), P* from a long serial run (prox_reference.proximal_gradient, FISTA with
restart, tol 1e-10), for step_policy "budget", "fixed_or_skip", "fixed" with tau_max from a
pilot run (the largest tau_hat a budget run of --pilot-epochs saw; the worst case a fixed
step must cover), and "fixed" with that tau_max halved (underestimated: the window rule may
then break); 3 seeds, 2 and 8 threads (8 oversubscribe a 2-core machine), on a9a with L1 and
the RCV1-like set of bench/rcv1like.py, both with the intercept, blocks of 3 columns. It prints
the median iterations, the ratio adaptive / fixed, and the histograms of the delays and of
tau_hat of the budget runs. Seconds are printed too, but they mean something only on an idle
machine (the iteration counts do not depend on it, the delays do: a loaded machine
deschedules threads mid-update, and their reads age).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import warnings

import numpy as np
import scipy.sparse as sp

from dpsgd._kernels import bcd, prox
from dpsgd.data import load_a9a
from dpsgd.tasks.async_bcd import async_bcd_fit
from dpsgd.tasks.prox_reference import proximal_gradient

N_BLOCKS = 41
CHUNK = 10 * N_BLOCKS


def objective(X, y, w, C):
    return prox.objective(X.data, X.indices, X.indptr, y, w, C=C, penalty="l1")


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_bcd(Xc, Xr, y, C, p_star, target, n_threads, seed):
    steps = 1.0 / bcd.block_lipschitz(Xc.data, Xc.indices, Xc.indptr, Xc.shape[0], N_BLOCKS, C=C)
    w = np.zeros(Xc.shape[1])
    wall = cpu = 0.0
    updates = 0
    while objective(Xr, y, w, C) - p_star > target * p_star:
        if updates > 2_000_000:
            return None
        (w, _, _), dw, dc = timed(lambda w=w: bcd.async_bcd(Xc.data, Xc.indices, Xc.indptr, y, w, n_blocks=N_BLOCKS,
                                                       steps=steps, n_updates=CHUNK, C=C, n_threads=n_threads,
                                                       seed=seed + updates))
        wall, cpu, updates = wall + dw, cpu + dc, updates + CHUNK
    return {"updates": updates, "wall": wall, "cpu": cpu, "nnz": int(np.count_nonzero(w))}


def run_saga(Xr, y, C, p_star, target):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    max_iter = 5
    while max_iter < 100_000:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model, wall, cpu = timed(lambda: LogisticRegression(C=C, l1_ratio=1.0, solver="saga", fit_intercept=False,
                                                                tol=1e-12, max_iter=max_iter).fit(Xr, y))
        if objective(Xr, y, model.coef_.ravel(), C) - p_star <= target * p_star:
            return {"updates": int(model.n_iter_[0]), "wall": wall, "cpu": cpu}
        max_iter *= 2
    return None


def run_liblinear(Xr, y, C, p_star, tol):
    from sklearn.linear_model import LogisticRegression

    model, wall, cpu = timed(lambda: LogisticRegression(C=C, l1_ratio=1.0, solver="liblinear", fit_intercept=False,
                                                        tol=tol, max_iter=100_000).fit(Xr, y))
    gap = (objective(Xr, y, model.coef_.ravel(), C) - p_star) / p_star
    return {"wall": wall, "cpu": cpu, "gap": gap}


# a9a: 17 of 123 weights non-zero with the intercept on all 32,561 rows; C scales with 1 / rows
# for a subset, which keeps the balance of loss and penalty
POLICY_C = {"a9a": 0.005, "rcv1like": 1.0}
A9A_ROWS = 32_561
HISTOGRAM_EDGES = (0, 1, 2, 3, 4, 8, 16, 64, 256, np.inf)


def policy_problems(a9a_rows, rcv1_scale, names=("a9a", "rcv1like")):
    """(name, X, y, C) of the policy comparison."""
    if "a9a" in names:
        X, y, _, _ = load_a9a()
        if a9a_rows:
            X, y = X[:a9a_rows], y[:a9a_rows]
        yield "a9a", sp.csr_matrix(X), np.asarray(y, dtype=np.float64), POLICY_C["a9a"] * A9A_ROWS / X.shape[0]
    if "rcv1like" in names:
        import rcv1like  # bench/rcv1like.py, beside this script

        X, y, _, _ = rcv1like.load(rcv1_scale)
        yield "rcv1like", sp.csr_matrix(X), np.asarray(y, dtype=np.float64), POLICY_C["rcv1like"]


def histogram(values):
    counts = np.histogram(values, bins=HISTOGRAM_EDGES)[0]
    labels = [f"{int(a)}" if b - a == 1 else f"{int(a)}-{'' if b == np.inf else int(b) - 1}"
              for a, b in zip(HISTOGRAM_EDGES, HISTOGRAM_EDGES[1:])]
    return " ".join(f"{lab}:{c / max(len(values), 1):.1%}" for lab, c in zip(labels, counts) if c)


def updates_to_target(X, y, C, p_star, target, n_threads, seed, max_epochs, fit_intercept=True, **policy):
    """async_bcd_fit until P <= (1 + target) P*: (updates or None, seconds, result)."""
    wall = time.perf_counter()
    result = async_bcd_fit(X, y, C=C, penalty="l1", fit_intercept=fit_intercept, n_threads=n_threads, random_state=seed,
                           max_iter=max_epochs, tol=0.0,
                           callback=lambda info: info["objective"] - p_star <= target * p_star, **policy)
    seconds = time.perf_counter() - wall
    reached = result.history[-1][2] - p_star <= target * p_star
    return (result.n_iter if reached else None), seconds, result


def compare_policies(args):
    print(f"# step policies: block updates to P/P* - 1 <= {args.target}, {args.seeds} seeds; "
          f"uptime: {subprocess.getoutput('uptime').strip()}")
    print("# seconds need an idle machine; the iteration counts are what this table is for")
    for name, X, y, C in policy_problems(args.a9a_rows, args.rcv1_scale, args.data):
        ref = proximal_gradient(X, y, C=C, penalty="l1", fit_intercept=args.intercept, accelerated=True, tol=1e-10,
                                max_iter=100_000)
        p_star = ref.objective
        print(f"\n## {name}: {X.shape[0]:,} rows x {X.shape[1]:,} columns, C = {C}, P* = {p_star:.10g} "
              f"({np.count_nonzero(ref.coef)} non-zero weights, FISTA {ref.n_iter} iterations)")
        for n_threads in args.threads:
            pilot = async_bcd_fit(X, y, C=C, fit_intercept=args.intercept, n_threads=n_threads, max_iter=args.pilot_epochs,
                                  tol=0.0, random_state=10_000)
            tau_max = int(pilot.taus.max())
            policies = {"budget": dict(step_policy="budget"),
                        "fixed_or_skip": dict(step_policy="fixed_or_skip"),
                        f"fixed tau_max={tau_max}": dict(step_policy="fixed", tau_max=tau_max),
                        f"fixed tau_max={tau_max // 2} (1/2)": dict(step_policy="fixed", tau_max=tau_max // 2)}
            rows = {}
            delays, taus = [], []
            for label, policy in policies.items():
                runs = [updates_to_target(X, y, C, p_star, args.target, n_threads, seed, args.max_epochs,
                                          fit_intercept=args.intercept, **policy)
                        for seed in range(args.seeds)]
                rows[label] = runs
                if label == "budget":
                    delays += [r[2].delays for r in runs]
                    taus += [r[2].taus for r in runs]
            print(f"### {n_threads} threads (pilot: largest tau_hat {tau_max} in {args.pilot_epochs} epochs)")
            print(f"{'policy':<28} {'updates (median)':>17} {'reached':>8} {'seconds':>8}")
            medians = {}
            for label, runs in rows.items():
                done = [u for u, _, _ in runs if u is not None]
                medians[label] = statistics.median(done) if len(done) == len(runs) else None
                shown = f"{medians[label]:,.0f}" if medians[label] is not None else f">{args.max_epochs} epochs"
                print(f"{label:<28} {shown:>17} {len(done):>5}/{len(runs)} "
                      f"{statistics.median(s for _, s, _ in runs):8.2f}")
            # a fixed run that did not reach the target counts as its cap: the ratio is then a bound
            cap = args.max_epochs * (X.shape[1] // 3 + args.intercept)
            for label in ("budget", "fixed_or_skip"):
                for fixed_label in list(policies)[2:]:
                    fixed = medians[fixed_label]
                    if medians[label] is None:
                        ratio = "n/a (the adaptive runs did not all reach the target)"
                    else:
                        ratio = f"{medians[label] / fixed:.3f}" if fixed is not None else f"<= {medians[label] / cap:.3f}"
                    print(f"ratio {label} / {fixed_label}: {ratio}")
            print(f"delays of the budget runs:  {histogram(np.concatenate(delays))}")
            print(f"tau_hat of the budget runs: {histogram(np.concatenate(taus))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--C", type=float, default=0.005)
    parser.add_argument("--target", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policies", action="store_true", help="compare the delay-adaptive step policies")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--a9a-rows", type=int, default=0, help="the first rows of a9a only (0: all)")
    parser.add_argument("--rcv1-scale", type=float, default=0.05, help="rcv1like.load's row scale")
    parser.add_argument("--max-epochs", type=int, default=3000)
    parser.add_argument("--pilot-epochs", type=int, default=20)
    parser.add_argument("--no-intercept", dest="intercept", action="store_false",
                        help="--policies without the intercept block: on RCV1-like its update reads every row, "
                             "its read ages by thousands of updates, and the delay-adaptive steps collapse meanwhile")
    parser.add_argument("--data", nargs="+", default=["a9a", "rcv1like"], choices=["a9a", "rcv1like"],
                        help="--policies: the problems")
    args = parser.parse_args()
    if args.policies:
        compare_policies(args)
        return
    print(f"# a9a, L1 logistic, C={args.C}, target relative suboptimality {args.target}; "
          f"uptime: {subprocess.getoutput('uptime').strip()}")
    X, y, _, _ = load_a9a()  # the training part (32,561 rows)
    Xr = sp.csr_matrix(X, dtype=np.float64)
    Xr.indices, Xr.indptr = Xr.indices.astype(np.int32), Xr.indptr.astype(np.int32)
    Xc = sp.csc_matrix(Xr)
    Xc.indices, Xc.indptr = Xc.indices.astype(np.int32), Xc.indptr.astype(np.int32)
    y = np.asarray(y, dtype=np.float64)
    from sklearn.linear_model import LogisticRegression

    ref = LogisticRegression(C=args.C, l1_ratio=1.0, solver="liblinear", fit_intercept=False, tol=1e-12,
                             max_iter=1_000_000).fit(Xr, y)
    p_star = objective(Xr, y, ref.coef_.ravel(), args.C)
    print(f"# P* = {p_star:.10f} (liblinear, tol 1e-12), {np.count_nonzero(ref.coef_)} of {X.shape[1]} weights non-zero")
    results: dict[str, list] = {}
    for r in range(args.repeats):
        for name, fn in (("async_bcd 1 thread", lambda: run_bcd(Xc, Xr, y, args.C, p_star, args.target, 1, r)),
                         ("async_bcd 2 threads", lambda: run_bcd(Xc, Xr, y, args.C, p_star, args.target, 2, r)),
                         ("sklearn saga", lambda: run_saga(Xr, y, args.C, p_star, args.target)),
                         ("liblinear tol 1e-4", lambda: run_liblinear(Xr, y, args.C, p_star, 1e-4)),
                         ("liblinear tol 1e-6", lambda: run_liblinear(Xr, y, args.C, p_star, 1e-6))):
            out = fn()
            results.setdefault(name, []).append(out)
            print(f"  repeat {r} {name}: {out}")
    for name, runs in results.items():
        ok = [x for x in runs if x is not None]
        if not ok:
            print(f"{name}: did not reach the target")
            continue
        walls, cpus = [x["wall"] for x in ok], [x["cpu"] for x in ok]
        extra = ""
        if "updates" in ok[0]:
            extra = f", updates (or saga epochs) {statistics.median([x['updates'] for x in ok]):,.0f}"
        if "gap" in ok[0]:
            extra = f", relative gap {statistics.median([x['gap'] for x in ok]):.1e}"
        print(f"{name}: wall {statistics.median(walls):.3f} s ({min(walls):.3f}-{max(walls):.3f}), "
              f"CPU {statistics.median(cpus):.3f} s{extra}; reached {len(ok)} of {len(runs)}")


if __name__ == "__main__":
    main()
