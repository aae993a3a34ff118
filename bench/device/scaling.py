"""One-shot scaling run for a many-core machine: every task's thread curve and ranks x threads matrix, and gensim.

    bash bench/device/scaling.sh [--quick]               # builds the package, then runs this
    python bench/device/scaling.py --out DIR [--quick] [--budget 420] [--data-dir ../shared/data]

Each run is a fresh process (``mpiexec -n R`` for R ranks), one after the other, in this order,
so that what matters most is measured first when the machine's time is short:

1. LDA, threads 1, 2, 4, 8, 16 against gensim ``LdaMulticore(workers=1, 2, 4, 8, 15)``, on the
   synthetic corpus (29,700 training documents, K = 20, 1 pass) and on AP (K = 50, 4 passes):
   documents/s, held-out log-likelihood and memory (bench/compare_lda.py's runs).
2. DPSVI ranks x threads 1x1, 1x16, 2x8, 4x4, 8x2, 16x1 on the synthetic corpus, 2 passes
   (bench/scaling_lda.py): fit seconds, time to 1 x 1's held-out LL 2% worse, communication
   share and delays of rank 0.
3. Linear SGD (log loss, alpha 1e-5, 20 epochs, the estimator's default rounds), threads
   1..16 then the same matrix, on the RCV1-like data (200,000 rows) and on text-like rows
   (88,000) (bench/scaling_linear.py).
4. Threads on text as users run a fit: 1, 2 and all cores, 3 rounds of fresh processes beside
   two one-thread processes at once (the two cores' ceiling), on text-like rows, AP and BBC
   (bench/text_threads.py); then what two threads that share nothing get from two cores
   (bench/core_capacity.py). On this 2-vCPU VM the ceiling itself fell to 1.2-1.4x in some
   rounds; these show what real cores give.
5. A2C on CartPole-v1, the same layouts, until solved (bench/a2c_scaling.py), seeds 0 and 1.

A run that would start after ``--budget`` seconds is skipped, and each one is stopped at the
time left. Every record goes to DIR/scaling.json as soon as it is measured, and the tables to
DIR/summary.md, so a run cut short keeps what it measured. ``--quick`` runs small sizes on at
most 2 cores, to check the script where no many-core machine is lent.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
DATA_FOLDERS = {"ap": "ap_associated_press", "bbc": "bbc_news_octis"}
sys.path.insert(0, str(BENCH))

import a2c_scaling  # noqa: E402  (beside this folder)
from mpi_configs import delay_columns, run_config, target_columns  # noqa: E402


class Run:
    """The records measured so far and the time left, saved after every record."""

    def __init__(self, out, budget):
        self.out, self.deadline = Path(out), time.monotonic() + budget
        self.out.mkdir(parents=True, exist_ok=True)
        self.records = []
        self.meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                     "load_before": os.getloadavg()[0], "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}

    def left(self):
        return self.deadline - time.monotonic()

    def measure(self, section, config, work):
        """Record ``work(timeout)``'s dict under (section, config), or why it has none."""
        record = {"section": section, "config": config}
        if self.left() < 5:
            record["skipped"] = "the budget was spent"
        else:
            tic = time.perf_counter()
            try:
                record.update(work(self.left()))
            except subprocess.TimeoutExpired:
                record["failed"] = "stopped at the budget's end"
            except Exception as error:  # one failed config must not lose the others
                record["failed"] = f"{type(error).__name__}: {error}"[:500]
            record["process_s"] = time.perf_counter() - tic
        self.records.append(record)
        print(json.dumps({k: v for k, v in record.items() if k != "curve"}), flush=True)
        (self.out / "scaling.json").write_text(json.dumps({**self.meta, "records": self.records}, indent=1))
        return record

    def rows(self, section):
        return [(r["config"], r) for r in self.records if r["section"] == section and not self.missing(r)]

    @staticmethod
    def missing(record):
        """Why ``record`` holds no measurement, or None."""
        return record.get("failed") or record.get("skipped")


def compare_lda_one(corpus, library, threads, passes, docs, data_dir):
    def work(timeout):
        out = subprocess.run([sys.executable, str(BENCH / "compare_lda.py"), "--one", f"{corpus},{library},{threads}",
                              "--passes", str(passes), "--docs", str(docs), "--data-dir", data_dir],
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1:])
        return json.loads(out.stdout.strip().splitlines()[-1])
    return work


def printed_lines(script, args, keep):
    """Run a bench script; its printed lines from the first that starts with ``keep``."""
    def work(timeout):
        out = subprocess.run([sys.executable, str(BENCH / script), *map(str, args)], capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1:])
        lines = out.stdout.strip().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith(keep)), 0)
        return {"lines": lines[start:]}
    return work


def a2c_one(layout, seed):
    def work(timeout):
        r = a2c_scaling.run(layout, seed, timeout=timeout)
        return {**r, "seconds": r["wall_s"]}
    return work


def lda_table(rows):
    base = next((r["docs_per_s"] for c, r in rows if c.startswith("gensim") and r["threads"] == 1), None)
    lines = ["| library x threads | docs/s | vs LdaMulticore x1 | held-out LL | +fit MB | worker MB |", "|---|---:|---:|---:|---:|---:|"]
    for config, r in rows:
        ratio = f"{r['docs_per_s'] / base:.2f}x" if base else "-"
        lines.append(f"| {config} | {r['docs_per_s']:,.0f} | {ratio} | {r['heldout']:.4f} | {r['fit_mb']:.0f} | "
                     f"{r['worker_peak_mb']:.0f} |")
    return lines


def matrix_table(rows, quality_name, quality_key, higher_is_better, tolerance):
    """Fit seconds and speed-up over the first row, time to its final quality (tolerance worse), comm and delays."""
    target, cells = target_columns(rows, higher_is_better, tolerance)
    base = rows[0][1]["seconds"]
    lines = [f"Target: {quality_name} {target:.5f} ({rows[0][0]}'s final, {tolerance:.0%} worse)", "",
             f"| ranks x threads | fit s | speed-up | to target | speed-up | {quality_name} | CPU s | comm | delay mean/p99/max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (config, r), (to_target, speedup) in zip(rows, cells):
        comm, delays = delay_columns(r)
        cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "-"
        lines.append(f"| {config} | {r['seconds']:.2f} | {base / r['seconds']:.2f}x | {to_target} | {speedup} | "
                     f"{r[quality_key]:.5f} | {cpu} | {comm} | {delays} |")
    return lines


def a2c_table(rows):
    lines = ["| layout | seed | env steps | wall s | steps/s | solved |", "|---|---:|---:|---:|---:|---|"]
    for config, r in rows:
        lines.append(f"| {config} | {r['seed']} | {r['env_steps']:,} | {r['wall_s']:.2f} | {r['steps_per_s']:,.0f} | "
                     f"{r['solved']} |")
    return lines


def lines_table(rows):
    return [line for _, r in rows for line in r["lines"] + [""]]


def write_summary(run, titles):
    lines = [f"# Scaling run: {run.meta['cpus']} CPUs ({run.meta['machine']}), Python {run.meta['python']}, "
             f"load {run.meta['load_before']:.2f} before, started {run.meta['started']}", ""]
    for section, (title, table) in titles.items():
        rows = run.rows(section)
        lines += [f"## {title}", ""]
        lines += table(rows) if rows else ["(nothing measured)"]
        failed = [f"- {r['config']}: {run.missing(r)}" for r in run.records
                  if r["section"] == section and run.missing(r)]
        lines += [""] + failed + ([""] if failed else [])
    (run.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for scaling.json and summary.md")
    parser.add_argument("--quick", action="store_true", help="small sizes, at most 2 cores (a check of the script)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds after which no run starts")
    parser.add_argument("--data-dir", default=str(BENCH.parent.parent / "shared" / "data"),
                        help="the folder holding ap_associated_press/ and bbc_news_octis/ (skipped where absent)")
    args = parser.parse_args()
    run = Run(args.out, args.budget)
    cores = min(os.cpu_count() or 1, 2 if args.quick else 16)
    threads = [t for t in (1, 2, 4, 8, 16) if t <= cores]
    matrix = ["1x1"] + [f"{r}x{cores // r}" for r in (1, 2, 4, 8, 16) if r <= cores]
    workers = sorted({min(t, cores - 1) for t in threads if cores > 1} | {1})  # LdaMulticore's master needs a core
    docs, passes, ap_passes = (3_300, 1, 1) if args.quick else (33_000, 1, 4)
    scale, text_scale, epochs = (0.05, 0.1, 3) if args.quick else (1.0, 2.0, 20)
    seeds = [0] if args.quick else [0, 1]
    ap = Path(args.data_dir, DATA_FOLDERS["ap"], "docword.ap.txt").exists()

    # generated once here, read from bench/.cache by every process after
    import rcv1like
    rcv1like.lda_corpus(docs), rcv1like.load(scale), rcv1like.textlike(text_scale)

    titles = {}
    for corpus, k, n_passes in [("synthetic", 20, passes)] + ([("ap", 50, ap_passes)] if ap else []):
        section = f"lda-{corpus}"
        titles[section] = (f"LDA threads against gensim LdaMulticore: {corpus}, K = {k}, {n_passes} pass(es), "
                           "minibatch 128 (bench/compare_lda.py)", lda_table)
        for t in threads:
            run.measure(section, f"dpsgd x{t}", compare_lda_one(corpus, "dpsgd-batch", t, n_passes, docs, args.data_dir))
        for w in workers:
            run.measure(section, f"gensim LdaMulticore x{w}",
                        compare_lda_one(corpus, "gensim-LdaMulticore", w, n_passes, docs, args.data_dir))

    titles["dpsvi"] = (f"DPSVI ranks x threads: synthetic {docs - docs // 10:,} docs, K = 20, 2 passes, server "
                       "(bench/scaling_lda.py)",
                       lambda rows: matrix_table(rows, "held-out LL", "heldout", True, 0.02))
    for config in matrix:
        run.measure("dpsvi", config, lambda timeout, c=config: run_config(
            str(BENCH / "scaling_lda.py"), c, ["--passes", 2, "--docs", docs], timeout))

    for data, s in (("rcv1like", scale), ("textlike", text_scale)):
        section = f"linear-{data}"
        titles[section] = (f"Linear SGD threads, then ranks x threads: {data} x{s}, {epochs} epochs, log loss, "
                           "alpha 1e-5, rounds 'auto', server (bench/scaling_linear.py)",
                           lambda rows: matrix_table(rows, "test loss", "test_log_loss", False, 0.01))
        for config in [f"1x{t}" for t in threads] + matrix[2:]:
            run.measure(section, config, lambda timeout, c=config, d=data, s=s: run_config(
                str(BENCH / "scaling_linear.py"), c, ["--epochs", epochs, "--scale", s, "--sync-every", "auto",
                                                      "--data", d], timeout))

    text = ["textlike"] + [d for d in ("ap", "bbc") if Path(args.data_dir, DATA_FOLDERS[d]).is_dir()]
    text_threads = sorted({1, 2, cores})
    titles["text-threads"] = (f"Threads on text, fresh processes, {1 if args.quick else 3} round(s): threads "
                              f"{', '.join(map(str, text_threads))} and 1 + 1 (bench/text_threads.py)", lines_table)
    for data in text[-1:] if args.quick else text:
        run.measure("text-threads", data, printed_lines(
            "text_threads.py", ["--data", data, "--rounds", 1 if args.quick else 3, "--threads", *text_threads,
                                "--data-dir", args.data_dir], data))
    titles["capacity"] = ("Two threads that share nothing, on two cores (bench/core_capacity.py)", lines_table)
    run.measure("capacity", "2 threads", printed_lines("core_capacity.py", ["--samples", 2 if args.quick else 5],
                                                       "round trip"))

    titles["a2c"] = ("A2C on CartPole-v1 until solved (mean return 475), ranks x threads "
                     "(bench/a2c_scaling.py)", a2c_table)
    for seed in seeds:
        for config in [f"1x{t}" for t in threads] + matrix[2:]:
            run.measure("a2c", config, a2c_one(config, seed))
    write_summary(run, titles)


if __name__ == "__main__":
    main()
