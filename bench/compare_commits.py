"""Compare two commits' speed: the pytest-benchmark suites and the timed scripts, A B A B, as HEAD / BASE ratios.

    python bench/compare_commits.py BASE [HEAD] [--rounds 3] [--suites bench/test_bench_sgd.py ...]
                                    [-k EXPR] [--scripts "engine_regression.py linear-a9a" ...]
                                    [--scale 0.25] [--out DIR]

BASE and HEAD are commits (anything ``git rev-parse`` takes); HEAD defaults to ``.``, the
working tree as it is built now (uncommitted changes included). Each commit is checked out
into ``bench/.cache/commits/<sha>`` (a git worktree, kept for the next call) and its kernels
built there in place with this Python; a run selects one by ``PYTHONPATH=<tree>/src``, so the
two share every other package. The measuring code is this checkout's ``bench/`` for both.

Per round, each suite runs once on BASE and once on HEAD, then each script, alternating (A B A
B): a drift of the machine's speed then falls on both. Odd rounds run HEAD first (A B, B A, ...):
a run that always came second was 15% slower in 9 rounds of 12 here where its kernels' CPU time
was not. Each pytest-benchmark
run saves its JSON in ``--out`` (``pytest-benchmark compare DIR/*.json`` reads them). A
script prints a JSON line with ``fit_seconds`` or ``seconds`` (the process's wall time is used
where it has neither). Printed per benchmark: BASE's and HEAD's median seconds over the rounds,
and the median of the per-round ratios HEAD / BASE with their range (below 1: HEAD is faster);
for the scripts also the CPU seconds of the whole process and its children (imports, and every
rank under ``mpiexec``, included), which a busy machine stretches less than the wall clock.
No assertion: a benchmark measures, the reader judges.
"""

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
COMMITS = BENCH / ".cache" / "commits"
SUITES = ["test_bench_sgd.py", "test_bench_lda.py"]
SCRIPTS = ["engine_regression.py linear-rcv1", "engine_regression.py linear-a9a", "engine_regression.py lda-synth"]


def git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(commit):
    """The source folder of ``commit`` (``.``: this checkout), its kernels built."""
    if commit == ".":
        return ROOT / "src"
    sha = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    tree = COMMITS / sha[:12]
    if not (tree / ".built").exists():
        if tree.exists():  # a build that was cut short
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        COMMITS.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", str(tree), sha)
        print(f"building {commit} ({sha[:12]}) in {tree} ...", flush=True)
        tic = time.perf_counter()
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "-j", str(os.cpu_count() or 1)],
                       cwd=tree, check=True, capture_output=True)
        (tree / ".built").write_text(sha + "\n")
        print(f"  built in {time.perf_counter() - tic:.0f} s", flush=True)
    return tree / "src"


def environment(src, scale):
    env = dict(os.environ, PYTHONPATH=str(src))
    if scale is not None:
        env["BENCH_SCALE"] = str(scale)
    return env


def run_suite(suite, src, out_json, k, scale):
    """{benchmark's full name: median seconds} of one pytest-benchmark run."""
    cmd = [sys.executable, "-m", "pytest", str(BENCH / suite), "-q", "-p", "no:cacheprovider", "--benchmark-only",
           f"--benchmark-json={out_json}"] + (["-k", k] if k else [])
    out = subprocess.run(cmd, cwd=BENCH, env=environment(src, scale), capture_output=True, text=True)
    if out.returncode not in (0, 5):  # 5: no test selected
        raise RuntimeError(f"{suite} failed with {src}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    if not Path(out_json).exists():
        return {}
    return {b["fullname"]: b["stats"]["median"] for b in json.loads(Path(out_json).read_text())["benchmarks"]}


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_script(script, src, scale):
    """(seconds, CPU seconds) of one run: its JSON's fit_seconds or seconds, else the process's
    wall time; and the CPU time of the process and its children."""
    args = shlex.split(script)
    tic, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], cwd=BENCH, env=environment(src, scale),
                         capture_output=True, text=True)
    wall, cpu = time.perf_counter() - tic, children_cpu() - cpu
    if out.returncode != 0:
        raise RuntimeError(f"{script} failed with {src}:\n{out.stderr[-2000:]}")
    for line in reversed(out.stdout.strip().splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            return float(record.get("fit_seconds", record.get("seconds", wall))), cpu
    return wall, cpu


def ratio_table(times):
    """Rows (name, BASE median, HEAD median, median ratio, min ratio, max ratio) from
    times[label][name] = [seconds of each round]."""
    rows = []
    for name in times["base"]:
        base, head = times["base"][name], times["head"].get(name, [])
        ratios = [h / b for b, h in zip(base, head) if b > 0]
        if ratios:
            rows.append((name, statistics.median(base), statistics.median(head), statistics.median(ratios),
                         min(ratios), max(ratios)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("head", nargs="?", default=".")
    parser.add_argument("--rounds", type=int, default=3, help="A B pairs of each benchmark")
    parser.add_argument("--suites", nargs="*", default=SUITES, help="pytest-benchmark files in bench/ (none: skip)")
    parser.add_argument("-k", help="pytest's -k expression, to select benchmarks of the suites")
    parser.add_argument("--scripts", nargs="*", default=SCRIPTS,
                        help="scripts in bench/ with their arguments, each one string (none: skip)")
    parser.add_argument("--scale", type=float, help="BENCH_SCALE for the suites' and scripts' generated data")
    parser.add_argument("--out", default=str(BENCH / ".cache" / "compare"), help="folder of the JSON files")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    trees = {"base": checkout(args.base), "head": checkout(args.head)}
    load = os.getloadavg()[0]
    print(f"BASE {args.base} ({trees['base']}), HEAD {args.head} ({trees['head']}); {os.cpu_count()} CPUs, "
          f"load {load:.2f} before", flush=True)
    times = {"base": {}, "head": {}}
    cpu = {"base": {}, "head": {}}
    for r in range(args.rounds):
        order = ("base", "head") if r % 2 == 0 else ("head", "base")
        for suite in args.suites:
            for label in order:
                json_path = out / f"{label}-{Path(suite).stem}-{r}.json"
                for name, seconds in run_suite(suite, trees[label], json_path, args.k, args.scale).items():
                    times[label].setdefault(name, []).append(seconds)
        for script in args.scripts:
            for label in order:
                seconds, cpu_seconds = run_script(script, trees[label], args.scale)
                times[label].setdefault(script, []).append(seconds)
                cpu[label].setdefault(script, []).append(cpu_seconds)
        print(f"round {r + 1} of {args.rounds} done", flush=True)
    rows = ratio_table(times)
    width = max([len(r[0]) for r in rows] + [9])
    print(f"\n{'benchmark':{width}s} {'BASE s':>9s} {'HEAD s':>9s} {'HEAD/BASE':>9s} {'range':>13s}")
    for name, base, head, ratio, low, high in rows:
        print(f"{name:{width}s} {base:9.4f} {head:9.4f} {ratio:9.3f} {low:6.3f}-{high:.3f}")
    if args.scripts:
        print(f"\nCPU seconds of each script's processes\n{'benchmark':{width}s} {'BASE':>9s} {'HEAD':>9s} "
              f"{'HEAD/BASE':>9s} {'range':>13s}")
        for name, base, head, ratio, low, high in ratio_table(cpu):
            print(f"{name:{width}s} {base:9.4f} {head:9.4f} {ratio:9.3f} {low:6.3f}-{high:.3f}")
    print(f"\nload {os.getloadavg()[0]:.2f} after; pytest-benchmark's own comparison: "
          f"pytest-benchmark compare {out}/*.json")
    (out / "compare.json").write_text(json.dumps({"base": args.base, "head": args.head, "load_before": load,
                                                  "times": times, "cpu_seconds": cpu, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
