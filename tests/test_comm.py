"""dpsgd.comm: the in-process window, and the RMA window under real mpiexec (2-4 ranks)."""

import json

import numpy as np
import pytest

from conftest import run_mpi
from dpsgd.comm import LocalWindow, Topology, open_exchange
from dpsgd.comm.local import LocalExchange


def test_local_window_semantics():
    assert isinstance(open_exchange("server", Topology(), 5), LocalExchange)  # one process: no MPI
    win = LocalWindow(5, initial=np.arange(5.0))
    params, version = win.pull()
    assert version == 0 and params.tolist() == [0, 1, 2, 3, 4]
    assert win.push(np.ones(5), step=0.5) == 0
    assert win.push_sparse([4, 0], [10.0, -1.0], step=0.25) == 1
    params, version = win.pull()
    assert version == 2 and params.tolist() == [0, 2, 3, 4, 15]
    assert win.clock() == 2 and win.step_sum() == 0.75 and win.updates() == 2
    with pytest.raises(ValueError, match="shape"):
        win.push(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        win.push(np.full(5, np.nan))
    with pytest.raises(ValueError, match="outside"):
        win.push_sparse([5], [1.0])
    with pytest.raises(ValueError, match="unique"):
        win.push_sparse([1, 1], [1.0, 1.0])
    assert win.clock() == 2  # rejected pushes change nothing
    assert [win.ticket() for _ in range(3)] == [0, 1, 2]
    assert [win.ticket_below(5), win.ticket_below(5), win.ticket_below(5), win.ticket_below(None)] == [3, 4, None, 5]
    assert not win.stop_requested()
    win.request_stop()
    assert win.stop_requested()


def test_local_window_adopts_its_initial_array_only_when_asked():
    """copy=False holds a writeable float64 array itself (an in-place run then writes the
    caller's buffer, as LDA's fit writes its topics); anything else is copied."""
    mine = np.arange(4.0)
    LocalWindow(4, initial=mine).push(np.ones(4))
    assert mine.tolist() == [0, 1, 2, 3]
    LocalWindow(4, initial=mine, copy=False).push(np.ones(4))
    assert mine.tolist() == [1, 2, 3, 4]
    ints, frozen = np.arange(4), np.arange(4.0)
    frozen.flags.writeable = False
    for other in (ints, frozen, [0.0, 1.0, 2.0, 3.0], np.arange(8.0)[::2]):
        LocalWindow(4, initial=other, copy=False).push(np.ones(4))
    assert ints.tolist() == frozen.tolist() == [0, 1, 2, 3]
    ex = LocalExchange(4, initial=mine, adopt=True)
    assert np.shares_memory(ex.pull()[0], mine)
    assert not np.shares_memory(LocalExchange(4, initial=mine, adopt=True, in_place=False).pull()[0], mine)


def test_local_window_rows():
    win = LocalWindow(6, initial=np.arange(6.0), row_size=2)  # rows [0 1] [2 3] [4 5]
    assert win.push_rows([0, 2], [[1.0, 1.0], [10.0, 20.0]]) == 0
    rows, version = win.pull_rows([1, 2])
    assert version == 1 and rows.tolist() == [[2, 3], [14, 25]]
    with pytest.raises(ValueError, match="increasing"):
        win.pull_rows([2, 1])
    with pytest.raises(ValueError, match="outside"):
        win.push_rows([3], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        win.push_rows([0], [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="divisor"):
        LocalWindow(5, row_size=2)


@pytest.mark.parametrize("ranks,layout,method", [(2, "root", "indexed"), (3, "root", "runs"),
                                                 (4, "sharded", "indexed"), (3, "sharded", "runs")])
def test_no_lost_updates(ranks, layout, method):
    out = run_mpi("window_sum.py", ranks, 200, 1000, layout, method)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["exact"], result
    assert result["clock"] == 200 * out.ranks  # every push versioned once
    assert result["step_sum"] == 200.0 * out.ranks
    assert result["tickets_unique"]  # every ticket handed out exactly once
    assert result["rows_match"] and result["every_rank_sees_the_stop"]


@pytest.mark.parametrize("ranks", [2, 4])
def test_ranks_drawing_tickets_below_a_limit_share_them_without_a_gap(ranks):
    """``ticket_below`` from every rank at once (a compare-and-swap): 0..99 each drawn once,
    then the 5 each rank draws without the limit follow them, with no gap."""
    out = run_mpi("tickets.py", ranks)
    assert out.returncode == 0, out.stderr
    everyone = json.loads(out.stdout.strip().splitlines()[-1])
    below = sorted(t for mine, _ in everyone for t in mine)
    past = sorted(t for _, extra in everyone for t in extra)
    assert below == list(range(100)) and past == list(range(100, 100 + 5 * out.ranks))


@pytest.mark.parametrize("k", [0, 5])
def test_delay_of_a_scripted_interleaving(k):
    out = run_mpi("delay_script.py", 2, k, exact=True)  # scripted for two ranks
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"read": 0, "push": k, "delay": k}


def test_push_completes_while_the_host_computes():
    out = run_mpi("progress.py", 2, exact=True)  # a host and one pusher
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["push_seconds"] < 1.0  # the host stays busy for 3 s without calling MPI


def test_ranks_that_disagree_on_the_size_all_fail():
    out = run_mpi("disagree.py", 3, "size", timeout=60)
    assert out.returncode != 0
    assert "ranks disagree on the parameter size" in out.stderr


def test_a_rank_that_raises_ends_the_job_promptly():
    import time

    tic = time.perf_counter()
    out = run_mpi("disagree.py", 3, "raise", timeout=60)
    assert out.returncode != 0
    assert "rank 1 failed on purpose" in out.stderr and f"rank 1 of {out.ranks} failed" in out.stderr
    assert time.perf_counter() - tic < 30  # the others were blocked in a barrier: aborted, not waited for


@pytest.fixture(scope="module")
def a9a_one_process(a9a):
    """One process's test log-loss on a9a (alpha 1e-3, 10 epochs) for seeds 0, 1, 2:
    0.3245-0.3246 (one thread: the same figures every run)."""
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier

    X, y, X_test, y_test = a9a
    return [log_loss(y_test, SGDClassifier(loss="log_loss", alpha=1e-3, max_iter=10, tol=None, random_state=s,
                                           n_threads=1).fit(X, y).predict_proba(X_test)) for s in range(3)]


# The median over seeds 0, 1, 2 against one process's mean over the same seeds.
# Unscaled pushes are fragile: each carries sync_every local steps, and pushes from several
# ranks add up to too long a step while the schedule's steps are large (2 ranks, sync_every
# 1,024: 4 to 6 of 16 runs of one seed 2-4% worse, before and after this session). The delay-adaptive
# default (budget) is checked with 3 ranks on the 2 cores; plain asynchronous SGD with 2 ranks
# and short rounds (256 samples: 16 of 16 runs within 1%).
# exchange='allreduce' (local SGD, changes of 1,024 steps averaged): 0.3252 and 0.3247 against
# one process's 0.3245 and 0.3246 (seeds 0, 1). exchange='gossip' with 4 ranks (with 2 or 3 the
# exponential graph is complete and gossip is allreduce): 0.3270, 0.3251, 0.3278 (seeds 0-2; the
# rounds are synchronous, so the same every run). exchange='async_gossip' with 4 ranks: 0.3245-0.3246
# (seeds 0-2; unscaled, whatever the step policy; scaled by budget they were 0.3250-0.3257). allreduce with natural compression, 3 ranks:
# 0.3253, 0.3248, 0.3250 (uncompressed 0.3252, 0.3247, 0.3251), a quarter of the bytes.
# Measured (24 runs of each seed set, half with a `yes` process busy on one of the 2 cores;
# one process's mean over seeds 0-2: 0.3244): 3 ranks, budget, 1,024: single runs 0.3242-0.3263
# (at most 1.006x); 2 ranks, none, 256: 0.3246-0.3268 (at most 1.007x); medians of 3 seeds at
# most 1.005x. A single seed's bound of 1% was within the tail above (2-4% worse runs): the
# median of 3 seeds stays within 1% unless two of them are, as with unscaled pushes.
@pytest.mark.parametrize("ranks,policy,sync_every,exchange", [(3, "budget", 1024, "server"),
                                                             (2, "none", 256, "server"),
                                                             (3, "budget", 1024, "allreduce"),
                                                             (4, "none", 1024, "gossip"),
                                                             (4, "budget", 1024, "async_gossip"),
                                                             (3, "budget", 1024, "allreduce:natural")])
def test_distributed_linear_reaches_single_process_loss(a9a_one_process, ranks, policy, sync_every, exchange):
    results = []
    for seed in range(3):
        out = run_mpi("linear_distributed.py", ranks, seed, policy, sync_every, *exchange.split(":"), timeout=300)
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert all(r["same_model_on_all_ranks"] for r in results)
    losses = [r["test_log_loss"] for r in results]
    assert np.median(losses) <= np.mean(a9a_one_process) * 1.01, losses
    # the delay of every push was measured on every rank, and its histogram recorded
    assert all(len(r["delays"]) == out.ranks and all(d["pushes"] > 0 for d in r["delays"]) for r in results)
    for d in (d for r in results for d in r["delays"]):
        assert sum(d["delay_histogram"]) == d["pushes"] and len(d["delay_histogram"]) == d["delay_max"] + 1
        assert exchange in ("server", "async_gossip") or d["delay_max"] == 0  # synchronous: every rank
        # in the same round


def test_distributed_rejects_l1():
    from dpsgd import SGDClassifier

    with pytest.raises(ValueError, match="penalty must be 'l2'"):
        SGDClassifier(penalty="l1", comm=object()).fit(np.eye(4), [0, 1, 0, 1])


@pytest.fixture(scope="module")
def lda_single():
    from dpsgd import LatentDirichletAllocation
    from dpsgd.data import make_lda_corpus

    X, _, _ = make_lda_corpus(4_400, 300, 8, 80, random_state=2)
    # a corpus with known topics: where re-seeding is what recovers them (README, "Python")
    lda = LatentDirichletAllocation(8, max_iter=5, batch_size=64, n_threads=1, random_state=0,
                                    reseed_topics=True).fit(X[:4_000])
    return lda.heldout_log_likelihood(X[4_000:])


@pytest.mark.parametrize("ranks,threads,transfer", [(2, 1, "rows"), (2, 1, "dense"), (3, 1, "auto"),
                                                     (4, 1, "auto"), (2, 2, "auto")])
def test_distributed_lda_reaches_single_process_likelihood(lda_single, ranks, threads, transfer):
    """One run of each setting: held-out nats/word within 2% of one process, topics recovered.
    Measured: 8 runs of each of the 5 settings (4 with a `yes` process busy on one of the 2
    cores) gave -3.8883 to -3.8852 against one process's -3.8861 (at most 0.06% apart) and
    recovery 0.9996-0.9998, so one run stays far inside both bounds."""
    out = run_mpi("lda_distributed.py", ranks, threads, transfer, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_topics"]
    assert result["heldout"] >= lda_single * 1.02  # negative: within 2%
    assert result["recovery"] >= 0.95


def test_distributed_lda_on_ap():
    from conftest import shared_path
    from dpsgd import LatentDirichletAllocation
    from dpsgd.data import load_uci_bow

    path = shared_path("ap_associated_press", "docword.ap.txt")
    X, _ = load_uci_bow(path)
    order = np.random.default_rng(0).permutation(X.shape[0])
    single = LatentDirichletAllocation(20, max_iter=3, n_threads=1, random_state=0).fit(
        X[order[225:]]).heldout_log_likelihood(X[order[:225]])
    out = run_mpi("lda_ap_distributed.py", 2, path, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["heldout"] >= single * 1.02


@pytest.mark.parametrize("task,ranks", [("lda", 2), ("linear", 3)])
def test_a_global_budget_of_updates_stops_every_rank(task, ranks):
    limit = 300 if task == "lda" else 100_000  # minibatch steps / samples
    out = run_mpi("budget.py", ranks, task, "updates", limit)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_model"]
    per_push = 1 if task == "lda" else 256
    # each rank checks before its next exchange: at most one push per rank in flight
    assert all(limit <= s <= limit + out.ranks * per_push for s in result["steps"]), result


@pytest.mark.parametrize("task", ["lda", "linear"])
def test_a_global_budget_of_seconds_stops_every_rank(task):
    out = run_mpi("budget.py", 2, task, "seconds", 2.0)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_model"] and max(result["passes"]) < 10_000
    assert all(2.0 <= s < 8.0 for s in result["seconds"]), result


@pytest.mark.parametrize("task", ["linear", "lda"])
def test_the_master_can_only_host(task, request):
    """Rank 0 only hosts the window (no data, no pushes) while 2 workers train.

    linear: the median test log-loss of seeds 0, 1, 2 (one job) within 3% of one process's
    mean over the same seeds. 3 processes on the 2 cores, seed 0 alone: 0.3245-0.3273 in 8 runs
    (one process 0.3245), 4 of them with a `yes` process busy on one core (at most 1.009x), and
    once 0.3324 (1.024x) while other work shared the machine: a single run's tail, which the
    median of 3 seeds tolerates; a 3% bound on the median still fails when two seeds are that far
    off (unscaled pushes in test_distributed_linear_defaults_reach_the_single_process_loss: 1.08x).

    lda: held-out nats/word within 2% of one process fitting all the documents (one seed: 8 runs,
    4 of them with a busy core, gave -3.7197 to -3.7193 against one process's -3.7195, a spread
    of 0.01%, far inside the 2%)."""
    seeds = [0, 1, 2] if task == "linear" else [0]
    out = run_mpi("host_only.py", 3, task, ",".join(map(str, seeds)))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_model"] and result["pushes"][0] == 0 and min(result["pushes"][1:]) > 0
    assert len(result["quality"]) == len(seeds)
    if task == "linear":
        single = np.mean(request.getfixturevalue("a9a_one_process"))
        assert np.median(result["quality"]) <= single * 1.03, result["quality"]
    else:
        from dpsgd import LatentDirichletAllocation
        from dpsgd.data import make_lda_corpus

        X, _, _ = make_lda_corpus(3_000, 300, 5, 60, random_state=0)
        single = LatentDirichletAllocation(5, max_iter=5, n_threads=1, random_state=0).fit(X[:2_700])
        assert result["quality"][0] >= single.heldout_log_likelihood(X[2_700:]) * 1.02  # negative: within 2%


# Any error on any rank inside a distributed fit ends every rank promptly with that rank's
# message, without abort_on_exception (a user's own script). Before dpsgd.comm.failure's guard,
# the failing rank waited in the window's collective Free while the others waited in a
# barrier or an allreduce: each of these hung until the timeout.
@pytest.mark.parametrize("how,message", [
    ("lda_callback", "rank 1 failed on purpose"),
    ("lda_bad_input", "dpsgd: error (rank 1 of {ranks})"),
    ("linear_callback", "rank 1 failed on purpose"),
    ("linear_diverge", "diverged on rank 1"),
])
def test_an_error_on_one_rank_inside_fit_ends_the_job(how, message):
    import time

    tic = time.perf_counter()
    out = run_mpi("failures.py", 3, how, timeout=90)
    assert out.returncode != 0
    assert message.format(ranks=out.ranks) in out.stderr, out.stderr[-2000:]
    assert "not reached" not in out.stdout
    assert time.perf_counter() - tic < 60


def test_ctrl_c_ends_a_distributed_fit():
    """SIGINT to mpiexec (Ctrl-C in a terminal) ends every rank with exit code 130-ish,
    not a hang: a rank interrupted in Python aborts the others waiting in MPI."""
    import shutil
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    pytest.importorskip("mpi4py")
    local = Path(sys.executable).parent / "mpiexec"
    mpiexec = str(local) if local.exists() else shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    script = Path(__file__).resolve().parent / "mpi" / "failures.py"
    proc = subprocess.Popen([mpiexec, "-n", "3", sys.executable, str(script), "lda_sleep"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "training"  # every rank is inside fit
        proc.send_signal(signal.SIGINT)
        tic = time.perf_counter()
        _, err = proc.communicate(timeout=60)
        assert time.perf_counter() - tic < 30
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("ranks", [2, 4])
def test_distributed_linear_defaults_reach_the_single_process_loss(ranks):
    """With the defaults (sync_every='auto', step_policy='budget'), 2 and 4 ranks each fitting
    a contiguous share reach one process's test log-loss at the same epochs. The median of 3
    seeds against one process's mean: within 5% on a9a and an RCV1-like set (one process's
    seeds alone spread a9a over 0.326-0.341; 4 ranks sharing 2 cores with a busy third
    process gave medians up to 1.027x, single seeds up to 1.15x; pushes of unscaled changes
    gave 1.08x); on agaricus, whose loss is a few thousandths, within 0.04 nats, which the
    old fixed 4,096-sample rounds missed (0.067 on 2 ranks, 0.118 on 4). Agaricus's file
    holds its classes in blocks (contiguous quarters hold 12-83% positives), which makes it
    sensitive to scheduling: a rank that runs alone for a while pulls the model towards its
    class. An idle machine gave medians of at most 0.004 in 12 runs, once 0.022; with a
    process busy on one of the 2 cores, 2 ranks gave 0.02-0.08 in 3 runs of 8. Measured again
    on 2026-12-01 (2 and 4 ranks): -0.003 to 0.000 in 5 idle runs, -0.001 to 0.010 in 8 with a
    busy process (single seeds up to 0.031)."""
    from sklearn.metrics import log_loss

    from conftest import SHARED_DATA
    from dpsgd import SGDClassifier
    from dpsgd.data import load_a9a, load_svmlight, make_sparse_classification

    agaricus = SHARED_DATA / "agaricus_mushroom"
    names = ["a9a", "rcv1-like"] + ([str(agaricus)] if agaricus.exists() else [])
    seeds = [0, 1, 2]
    # the counts the defaults were chosen for (with 3 ranks, sorted agaricus's thirds are further
    # apart and it lands at 0.036 nats: README, "Distributed")
    out = run_mpi("linear_defaults.py", ranks, ",".join(names), ",".join(map(str, seeds)), timeout=400,
                  exact=True)
    assert out.returncode == 0, out.stderr
    distributed = json.loads(out.stdout.strip().splitlines()[-1])

    def one_process(X, y, X_test, y_test):
        return np.mean([log_loss(y_test, SGDClassifier(loss="log_loss", alpha=1e-4, max_iter=10, tol=None,
                                                       n_threads=1, random_state=s).fit(X, y).predict_proba(X_test))
                        for s in seeds])

    X, y, X_test, y_test = load_a9a()
    assert np.median(distributed["a9a"]) <= 1.05 * one_process(X, y, X_test, y_test)
    X, y, _ = make_sparse_classification(30_000, 20_000, 75, random_state=0)
    assert np.median(distributed["rcv1-like"]) <= 1.05 * one_process(X[:24_000], y[:24_000], X[24_000:], y[24_000:])
    if agaricus.exists():
        X, y = load_svmlight(agaricus / "agaricus.txt.train", n_features=127)
        X_test, y_test = load_svmlight(agaricus / "agaricus.txt.test", n_features=127)
        assert np.median(distributed[str(agaricus)]) <= one_process(X, y, X_test, y_test) + 0.04
