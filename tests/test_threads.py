"""How dpsgd's OpenMP threads wait: a short spin unless the user chose, and nothing leaked."""

import os
import subprocess
import sys

import pytest

import dpsgd


def _import_dpsgd(**env):
    """stderr and stdout of a fresh `import dpsgd` with OMP_DISPLAY_ENV (libgomp prints its
    settings at load), the environment cleared of wait settings and given ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    code = "import os, dpsgd; print('GOMP_SPINCOUNT' in os.environ, 'KMP_BLOCKTIME' in os.environ)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**clean, "OMP_DISPLAY_ENV": "verbose", **env})
    return out.stderr, out.stdout.strip()


def _spincounts(stderr):
    return [line.split("=")[1].strip().strip("'") for line in stderr.splitlines() if "GOMP_SPINCOUNT" in line]


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_the_runtime_spins_briefly_and_the_setting_does_not_leak():
    stderr, leaked = _import_dpsgd()
    assert leaked == "False False"  # other libraries and child processes do not see it
    counts = _spincounts(stderr)
    if not counts:
        pytest.skip("not libgomp (it alone prints GOMP_SPINCOUNT)")
    # libgomp's default when nothing is set is 300000 spins (milliseconds of a busy core);
    # scikit-learn's own vendored libgomp, loaded too, may print its default
    assert "10000" in counts


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
@pytest.mark.parametrize("env", [{"GOMP_SPINCOUNT": "7"}, {"OMP_WAIT_POLICY": "active"}])
def test_a_users_choice_is_kept(env):
    stderr, _ = _import_dpsgd(**env)
    counts = _spincounts(stderr)
    if not counts:
        pytest.skip("not libgomp")
    assert "10000" not in counts


def _text_like():
    from dpsgd.data import make_sparse_classification

    # words in nearly every document (zipf_offset 2): every thread writes their coordinates
    X, y, _ = make_sparse_classification(3000, 20_000, 120, zipf_exponent=1.0, zipf_offset=2.0, random_state=0)
    return X, y


def _slow_epochs_on(monkeypatch, slow_threads, calls):
    """Kernel calls on ``slow_threads`` threads take 50 ms more; every call's thread count and
    whether its threads own features go to ``calls``; as on a 2-core machine."""
    import time

    from dpsgd.comm import topology
    from dpsgd.tasks import linear, linear_problem

    real_epoch = linear._sgd.sgd_epoch

    def epoch(*args, n_threads, **kwargs):
        out = real_epoch(*args, n_threads=n_threads, **kwargs)
        calls.append((n_threads, kwargs.get("row_split") is not None))
        if n_threads == slow_threads:
            time.sleep(0.05)
        return out

    monkeypatch.setattr(linear._sgd, "sgd_epoch", epoch)
    monkeypatch.setattr(linear_problem, "running_other_threads", lambda: 0)  # no pool spins beside
    monkeypatch.setattr(topology, "effective_n_threads", lambda request: 2 if request is None else request)
    monkeypatch.setattr(topology, "available_threads", lambda: 2)
    monkeypatch.setattr(linear._BaseSGD, "_MIN_NNZ_PER_THREAD", 1000)


@pytest.mark.parametrize("slow_threads", [1, 2])
def test_the_default_thread_count_keeps_the_faster_of_one_and_all(monkeypatch, slow_threads):
    """Hogwild! threads that lose to one thread (hot shared coordinates; measured 0.63 s against
    0.38) are dropped after the probe epochs; threads that win are kept. The epoch that runs on
    `slow_threads` threads is made 50 ms slower than the other."""
    import numpy as np

    from dpsgd import SGDClassifier
    from dpsgd.tasks import linear

    X, y = _text_like()
    calls = []
    _slow_epochs_on(monkeypatch, slow_threads, calls)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MIN_WORK", np.inf)  # Hogwild! threads
    clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=9, tol=None, random_state=0).fit(X, y)
    assert clf.n_threads_ == (1 if slow_threads == 2 else 2)
    assert (1, False) in calls and not any(owned for _, owned in calls)
    # an explicit count is obeyed, whatever the probe would say
    assert SGDClassifier(loss="log_loss", max_iter=9, tol=None, n_threads=2, random_state=0).fit(X, y).n_threads_ == 2
    # quality does not depend on the choice
    one = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=9, tol=None, n_threads=1, random_state=0).fit(X, y)
    assert abs(clf.score(X, y) - one.score(X, y)) < 0.02


def test_threads_that_own_features_are_not_probed(monkeypatch):
    """The default thread count keeps threads that own features from the start: they share
    no weight (the probe's reason) and their own waits are watched; the probe's epochs on one
    thread would only cost (here every call on 2 threads is made 50 ms slower, and still all
    run on 2)."""
    import numpy as np

    from dpsgd import SGDClassifier
    from dpsgd.tasks import linear

    X, y = _text_like()
    calls = []
    _slow_epochs_on(monkeypatch, 2, calls)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MAX_WAIT", np.inf)  # no pause for waits either
    clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=9, tol=None, random_state=0).fit(X, y)
    assert clf.n_threads_ == 2
    assert calls and all(call == (2, True) for call in calls), calls


def test_a_thread_that_runs_beside_is_seen():
    """A NumPy sort releases the GIL and keeps a core busy, as OpenBLAS's spinning threads do."""
    import threading
    import time

    import numpy as np

    from dpsgd._threads import running_other_threads

    values = np.random.default_rng(0).random(30_000_000)
    worker = threading.Thread(target=np.sort, args=(values,))
    worker.start()
    time.sleep(0.05)
    seen = running_other_threads()
    worker.join()
    if sys.platform.startswith("linux"):
        assert seen >= 1
    time.sleep(0.3)  # OpenBLAS's threads, if a test before woke them, stop spinning
    assert running_other_threads() == 0


def _skip_without_openblas_workers():
    """Skip unless NumPy's BLAS keeps worker threads (OpenBLAS's pthreads pool)."""
    import numpy as np

    from dpsgd._threads import _openblas_libraries, _symbol

    a = np.ones((300, 300))
    a @ a  # loads and wakes the pool
    pools = [lib for lib in _openblas_libraries() if (_symbol(lib, "openblas_get_parallel") or int)() == 1]
    workers = sum(_symbol(lib, "openblas_get_num_threads")() - 1 for lib in pools)
    if not sys.platform.startswith("linux") or workers < 1:
        pytest.skip("no OpenBLAS pthreads pool with worker threads here")


def test_idle_openblas_threads_are_ended_and_come_back():
    """OpenBLAS's workers spin ~0.1 s after a call on the cores a parallel fit is about to
    take: they are ended, and the next product starts them again and is right."""
    import threading

    import numpy as np

    from dpsgd._threads import stop_idle_blas_threads

    _skip_without_openblas_workers()
    if threading.active_count() > 1:
        pytest.skip("another Python thread runs in this test process")
    a = np.random.default_rng(0).random((300, 300))
    expected = np.einsum("ij,jk->ik", a, a)  # not BLAS
    a @ a
    before = len(os.listdir("/proc/self/task"))
    assert stop_idle_blas_threads() >= 1
    ended = len(os.listdir("/proc/self/task"))
    assert ended < before
    np.testing.assert_allclose(a @ a, expected, rtol=1e-12)
    assert len(os.listdir("/proc/self/task")) > ended  # NumPy's pool is back


def test_blas_threads_are_left_alone_beside_another_python_thread():
    """Another Python thread could be inside a BLAS call, which ending the pool would hang."""
    import threading

    import numpy as np

    from dpsgd._threads import stop_idle_blas_threads

    _skip_without_openblas_workers()
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        a = np.ones((300, 300))
        a @ a
        before = len(os.listdir("/proc/self/task"))
        assert stop_idle_blas_threads() == 0
        assert len(os.listdir("/proc/self/task")) == before
    finally:
        done.set()
        other.join()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/loadavg")
def test_another_process_that_runs_is_seen():
    import time

    from dpsgd._threads import runnable_elsewhere

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        seen = [runnable_elsewhere() for _ in range(20)]
    finally:
        busy.kill()
        busy.wait()
    assert max(seen) >= 1


def _fit_recording(monkeypatch, others, *, waited=0.0, elsewhere=lambda: 0, stop_blas=lambda: 0, **params):
    """Fit text-like rows on 2 threads (as on a 2-core machine) with ``others()`` as the count
    of other running threads, ``elsewhere()`` as other processes', ``stop_blas()`` as the
    BLAS pools ended and ``waited`` seconds reported by each owner thread; return the
    estimator and each epoch's (n_threads, whether the threads owned features), an entry per
    epoch also where one kernel call ran several."""
    from dpsgd import SGDClassifier
    from dpsgd.comm import topology
    from dpsgd.tasks import linear, linear_problem

    X, y = _text_like()
    real_epoch, epochs, calls = linear._sgd.sgd_epoch, [], []

    def epoch(*args, n_threads, **kwargs):
        out = real_epoch(*args, n_threads=n_threads, **kwargs)
        epochs.extend([(n_threads, kwargs.get("row_split") is not None)] * kwargs["epoch_stats"].shape[0])
        calls.append(kwargs["epoch_stats"].shape[0])
        args[12][:, -2] = waited  # tbuf: the seconds each thread waited
        return out

    monkeypatch.setattr(linear._sgd, "sgd_epoch", epoch)
    monkeypatch.setattr(linear_problem, "running_other_threads", others)
    monkeypatch.setattr(linear_problem, "runnable_elsewhere", elsewhere)
    monkeypatch.setattr(linear_problem, "stop_idle_blas_threads", stop_blas)
    monkeypatch.setattr(linear_problem, "available_threads", lambda: 2)
    monkeypatch.setattr(topology, "effective_n_threads", lambda request: 2)
    monkeypatch.setattr(topology, "available_threads", lambda: 2)
    monkeypatch.setattr(linear._BaseSGD, "_MIN_NNZ_PER_THREAD", 1000)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MIN_WORK", 8)  # 120 words a row: owners
    clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=8, tol=None, random_state=0, **params).fit(X, y)
    clf.calls_ = calls  # epochs a kernel call
    return clf, epochs


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_first_epochs_leave_the_cores_other_threads_take(monkeypatch):
    """While another pool of the process runs (OpenBLAS's threads spin ~0.1 s after a call),
    epochs run on the cores it leaves; then on all, the threads owning the features."""
    calls = iter([1, 1, 1])
    clf, epochs = _fit_recording(monkeypatch, lambda: next(calls, 0), n_threads=2)
    assert epochs == [(1, False)] * 3 + [(2, True)] * 5
    assert clf.n_threads_ == 2


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
@pytest.mark.parametrize("ended", [0, 1])
def test_spinning_blas_threads_are_ended_once_before_the_first_epoch(monkeypatch, ended):
    """Other threads running at the first epoch: OpenBLAS's idle pool is ended once, where it
    can be; then all threads run from the first epoch, else the cores left."""
    counts, stops = iter([1, 0]), []
    clf, epochs = _fit_recording(monkeypatch, lambda: next(counts, 0), stop_blas=lambda: stops.append(1) or ended,
                                 n_threads=2)
    assert len(stops) == 1
    assert epochs == [(1, False)] * (1 - ended) + [(2, True)] * (7 + ended)


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_owners_delay_grows_as_the_steps_shrink(monkeypatch):
    """The owners' first epochs, at the 'optimal' schedule's large steps, run with a short
    delay: a row that misses the 32 steps before it overshot where words recur (test log-loss
    9.3 after one epoch against one thread's 0.95 on these rows). Later calls take longer
    delays, up to the one the work per row allows, and a block of epochs ends where a later
    epoch could take a longer one."""
    import numpy as np
    from sklearn.metrics import log_loss

    from dpsgd import SGDClassifier
    from dpsgd.comm import topology
    from dpsgd.tasks import linear, linear_problem

    X, y = _text_like()
    real_epoch, delays = linear._sgd.sgd_epoch, []

    def epoch(*args, **kwargs):
        delays.append((kwargs.get("delay", 0), kwargs["epoch_stats"].shape[0]))
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(linear._sgd, "sgd_epoch", epoch)
    monkeypatch.setattr(topology, "effective_n_threads", lambda request: 2 if request is None else request)
    monkeypatch.setattr(topology, "available_threads", lambda: 2)
    monkeypatch.setattr(linear._BaseSGD, "_MIN_NNZ_PER_THREAD", 1000)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MIN_WORK", 8)  # 120 words a row: owners
    monkeypatch.setattr(linear_problem, "running_other_threads", lambda: 0)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MAX_WAIT", np.inf)  # no pause on one thread
    for epochs in (1, 2):
        losses = []
        for threads in (1, 2):
            clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=epochs, tol=None, random_state=0,
                                n_threads=threads).fit(X[:2500], y[:2500])
            losses.append(log_loss(y[2500:], clf.predict_proba(X[2500:])))
        assert losses[1] <= 1.05 * losses[0], (epochs, losses)
    # each epoch's delay, from calls of one epoch and from blocks of several: a block ends
    # where a later epoch could take a longer delay, so both give every epoch the same
    by_epoch = {}
    for block_epochs in (1, linear._BaseSGD._BLOCK_EPOCHS):
        monkeypatch.setattr(linear._BaseSGD, "_BLOCK_EPOCHS", block_epochs)
        delays.clear()
        SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=20, tol=None, random_state=0, n_threads=2).fit(X, y)
        by_epoch[block_epochs] = [delay for delay, block in delays for _ in range(block)]
    assert max(block for _, block in delays) > 1, delays  # the second fit ran blocks
    one_by_one = by_epoch[1]
    assert one_by_one[0] == 4 and one_by_one == sorted(one_by_one) and one_by_one[-1] == 32, one_by_one
    assert list(by_epoch.values())[1] == one_by_one, by_epoch


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_owners_that_take_over_from_one_thread_keep_the_loss(monkeypatch):
    """Epochs on one thread (other threads of the process running, or the owners' pause), then
    the owners: the first epoch back must not undo the ones before. On these rows, whose words
    are in nearly every document, a delay of 64 rows (the owners' longest until 2026-12-02) gave
    it 22x the loss of the epoch before (0.0758 -> 1.646), 32 gives 1.23x (0.0934)."""
    import numpy as np

    from dpsgd import SGDClassifier
    from dpsgd.comm import topology
    from dpsgd.tasks import linear, linear_problem

    X, y = _text_like()
    real_epoch, losses = linear._sgd.sgd_epoch, []

    def epoch(*args, n_threads, **kwargs):
        out = real_epoch(*args, n_threads=n_threads, **kwargs)
        stats = kwargs["epoch_stats"]
        losses.extend((n_threads, loss) for loss in stats[:, :, 0].sum(axis=1) / X.shape[0])
        return out

    busy = iter([1] * 5)
    monkeypatch.setattr(linear._sgd, "sgd_epoch", epoch)
    monkeypatch.setattr(linear_problem, "running_other_threads", lambda: next(busy, 0))
    monkeypatch.setattr(linear_problem, "stop_idle_blas_threads", lambda: 0)
    monkeypatch.setattr(topology, "effective_n_threads", lambda request: 2)
    monkeypatch.setattr(topology, "available_threads", lambda: 2)
    monkeypatch.setattr(linear._BaseSGD, "_MIN_NNZ_PER_THREAD", 1000)
    monkeypatch.setattr(linear._BaseSGD, "_OWNED_MAX_WAIT", np.inf)
    SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=8, tol=None, random_state=0).fit(X, y)
    assert [t for t, _ in losses] == [1] * 5 + [2] * 3
    assert losses[5][1] <= 2 * losses[4][1], losses


@pytest.mark.skipif(not dpsgd.openmp_enabled(), reason="serial build: no OpenMP runtime")
def test_owner_threads_that_keep_waiting_pause_on_one_thread(monkeypatch):
    """Threads that own features run in step; a kernel call in which they waited for each
    other much of its time (other work on the cores) is followed by calls on one thread,
    twice as many after each failed try."""
    from dpsgd.tasks.linear import _BaseSGD

    monkeypatch.setattr(_BaseSGD, "_BLOCK_EPOCHS", 1)  # a call an epoch
    clf, epochs = _fit_recording(monkeypatch, lambda: 0, waited=1e3, n_threads=2)
    assert _BaseSGD._OWNED_RETRY[0] == 2
    assert epochs == [(2, True)] + [(1, False)] * 2 + [(2, True)] + [(1, False)] * 4
    # while another process's thread waits for a core, they do not try again
    clf, epochs = _fit_recording(monkeypatch, lambda: 0, waited=1e3, elsewhere=lambda: 1, n_threads=2)
    assert epochs == [(2, True)] + [(1, False)] * 7
    monkeypatch.undo()
    clf, epochs = _fit_recording(monkeypatch, lambda: 0, waited=0.0, n_threads=2)
    assert epochs == [(2, True)] * 8
