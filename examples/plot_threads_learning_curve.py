"""
Learning curves: one thread against two
=======================================

``dpsgd train ... --log-json FILE`` writes one line per epoch (time, updates, losses, delays),
and ``dpsgd plot`` (or :func:`dpsgd.plotting.plot_runs` in Python) draws such logs overlaid:
each quality metric against wall-clock seconds and against updates, above the throughput.
Here the main job, a topic model of a corpus drawn from LDA's generative model, is trained
with one thread and with two, from Python through the command's own entry point
(:func:`dpsgd.cli.main`, the same as typing the commands in a shell).

With ``--parallel batch`` (the default) the threads share each minibatch, so both runs take
the same steps and their curves against updates lie on one another; the curves against time
show what the second core gave on the machine that built this page (a busy machine can make
it lose: see :doc:`/benchmarks` for measured speed-ups).
"""

import tempfile
from pathlib import Path

from dpsgd.cli import main
from dpsgd.plotting import plot_runs

# %%
# Two training runs, each with its log
# ------------------------------------
# The shell commands would be::
#
#     dpsgd train lda --docs 4000 --passes 4 --threads 1 --log-json 1-thread.jsonl
#     dpsgd train lda --docs 4000 --passes 4 --threads 2 --log-json 2-threads.jsonl

folder = Path(tempfile.mkdtemp())
logs = []
for threads in (1, 2):
    log = folder / f"{threads}-thread{'s' if threads > 1 else ''}.jsonl"
    code = main(["train", "lda", "--docs", "4000", "--passes", "4", "--threads", str(threads), "--quiet",
                 "--top-words", "5", "--log-json", str(log)])
    assert code == 0, f"dpsgd train lda ended with exit code {code}"
    logs.append(log)
print(logs[0].read_text())

# %%
# The curves
# ----------
# ``dpsgd plot 1-thread.jsonl 2-threads.jsonl -o threads.png`` in a shell:

fig = plot_runs(logs, "threads.png", labels=["1 thread", "2 threads"])

# %%
# One rank against two
# --------------------
# The same logs come from runs across MPI ranks, and the same command draws them. This page
# is built without ``mpiexec``, so these commands are not run here (``pip install
# ".[mpi]"`` brings MPICH; :doc:`/distributed` says more)::
#
#     dpsgd train lda --docs 4000 --passes 4 --threads 1 --log-json 1x1.jsonl
#     mpiexec -n 2 dpsgd train lda --docs 4000 --passes 4 --threads 1 --log-json 2x1.jsonl
#     dpsgd plot 1x1.jsonl 2x1.jsonl --label "1 rank" --label "2 ranks" -o ranks.png
#
# Across ranks a log also holds the measured delays: ``--metric delay_mean`` draws them.
