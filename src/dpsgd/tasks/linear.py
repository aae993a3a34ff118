"""Sparse linear models trained by lock-free parallel SGD (the Hogwild! workload).

``SGDClassifier`` and ``SGDRegressor`` follow scikit-learn's estimators of the
same names: same parameters where the concept is the same, same losses,
penalties and step-size schedules, same update sequence. They differ in how
an epoch runs: ``n_threads`` OpenMP threads share one weight matrix without
locks, and a multiclass problem updates all its one-vs-rest classifiers in the
same pass over the data.

The estimator validates and prepares; ``dpsgd.tasks.linear_problem`` is the problem the
engine (``dpsgd.engine``) runs: epochs of ``dpsgd._kernels.sgd.sgd_epoch`` with
scikit-learn's convergence and divergence checks in one process, rounds of ``sync_every``
samples across ranks.

What differs from scikit-learn (docs/guide/linear_models.md):
multiclass one-vs-rest problems are trained jointly, so ``n_iter_``, the
stopping rule and early stopping's validation score (accuracy of the joint
model) are shared by all classes instead of being per class; ``n_jobs`` means
threads (``n_threads``, whose None is every core); ``t_`` counts the steps on
training rows only (scikit-learn also counts the validation rows);
``learning_rate='pa1'/'pa2'`` are refused (use scikit-learn's
PassiveAggressive estimators); the divergence checks raise ``DivergenceError``.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from dpsgd import engine, persist, stepsize
from dpsgd._kernels import sgd as _sgd
from dpsgd._threads import effective_n_threads
from dpsgd._validation import (
    as_kernel_csr,
    check_choice,
    check_number,
    check_sample_weight,
    check_sparse_structure,
)
from dpsgd.comm import Topology, check_exchange
from dpsgd.comm.network import make_network
from dpsgd.comm.failure import ends_job_on_error
from dpsgd.tasks.linear_problem import (
    DIVERGENCE_FACTOR,
    DivergenceError,  # noqa: F401  (public here: users catch it)
    LinearProblem,
)

# name -> (kernel id, loss parameter: margin threshold, or None for epsilon)
CLASSIFICATION_LOSSES = {
    "hinge": (_sgd.Loss.HINGE, 1.0),
    "perceptron": (_sgd.Loss.HINGE, 0.0),
    "log_loss": (_sgd.Loss.LOG_LOSS, 0.0),
    "modified_huber": (_sgd.Loss.MODIFIED_HUBER, 0.0),
    "squared_hinge": (_sgd.Loss.SQUARED_HINGE, 1.0),
}
REGRESSION_LOSSES = {
    "squared_error": (_sgd.Loss.SQUARED_ERROR, 0.0),
    "huber": (_sgd.Loss.HUBER, None),
    "epsilon_insensitive": (_sgd.Loss.EPSILON_INSENSITIVE, None),
    "squared_epsilon_insensitive": (_sgd.Loss.SQUARED_EPSILON_INSENSITIVE, None),
}
# scikit-learn's classifier also takes the regression losses, on targets in {-1, +1}
CLASSIFICATION_LOSSES.update(REGRESSION_LOSSES)
PENALTIES = ("l2", "l1", "elasticnet", None)
SCHEDULE_IDS = {
    "constant": _sgd.LearningRate.CONSTANT,
    "optimal": _sgd.LearningRate.OPTIMAL,
    "invscaling": _sgd.LearningRate.INVSCALING,
    # constant steps that this module divides by 5 whenever the stopping rule fires
    "adaptive": _sgd.LearningRate.CONSTANT,
}
# scikit-learn's passive-aggressive steps, which are not gradient steps
PASSIVE_AGGRESSIVE = ("pa1", "pa2")
# scikit-learn damps the intercept's steps on sparse input (SPARSE_INTERCEPT_DECAY).
SPARSE_INTERCEPT_DECAY = 0.01


def _classes_of(y):
    """The sorted classes of the 1-D labels ``y``, each label's place among them and each
    class's count, checked as scikit-learn's ``check_classification_targets`` checks ``y``:
    on the classes, which ``type_of_target`` classifies as it does 1-D labels (BBC x 8's
    16,024 string labels: 0.1 ms, where checking ``y`` took 3.3 ms of a 90 ms fit)."""
    try:
        classes, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    except TypeError:  # labels that do not sort (mixed types): scikit-learn's error
        check_classification_targets(y)
        raise
    check_classification_targets(classes)
    return classes, index.reshape(-1), counts


def _union_of_counts(per_rank):
    """The sorted labels of every rank's ``(labels, counts)`` and each label's total count."""
    labels = np.unique(np.concatenate([rank_labels for rank_labels, _ in per_rank]))
    counts = np.zeros(labels.size, dtype=np.int64)
    for rank_labels, rank_counts in per_rank:
        counts[np.searchsorted(labels, rank_labels)] += rank_counts
    return labels, counts


class _BaseSGD(BaseEstimator):
    """Shared machinery of the SGD estimators; not for direct use."""

    _losses = {}
    # Whether an exploding loss is a divergence: for a regressor the predictions are
    # the values; a classifier's labels are signs, and large steps of the margin
    # losses only scale its weights (a perceptron with eta0=1e6 classifies as one with 1).
    _loss_explosion_diverges = False

    # With several threads, a model of at most _SMALL_MODEL weights (n_features x
    # outputs) is buffered whole in every thread and merged (see dpsgd._kernels.sgd)
    # every _MERGE_COST x n_features / (mean non-zeros per row) samples, within
    # [4, 512]: a merge adds atomically to lines that every thread writes, and costs
    # far more than as many updates of the thread's own buffer. Merged every
    # n_features / (mean non-zeros) samples, 2 threads were 0.93x one on a9a (x8) and
    # 0.76x on agaricus (x60); every 370-512, 1.98x and 1.61x, at the same test loss
    # (docs/guide/threads.md). Plain Hogwild! made 2 threads slower than one on a9a.
    # Larger models are split between the threads by feature (each thread owns the columns
    # of an equal share of the non-zeros and takes every row's step on them; see
    # dpsgd._kernels.sgd) when each thread's part of a row has at least _OWNED_MIN_WORK
    # non-zeros x outputs on average; else plain Hogwild!, whose threads wait for nearly
    # every weight's cache line on text. Fits in one process, 2-vCPU Intel VM, 2026-12-02
    # (seconds, one thread / 2 owning features / 2 Hogwild!): text-like rows (206 non-zeros,
    # 130,000 features, 40 epochs, kernel time) 0.36-0.41 / 0.24-0.30 / not measured so (whole
    # fits in fresh processes: 0.45 / 0.38 / 0.56, bench/text_threads.py); AP x8 (67
    # non-zeros a thread, 20 epochs) 0.13 / 0.14 / 0.27; BBC x8 (5 outputs) 0.56 / 0.37 /
    # 0.46; RCV1-like (37 a thread, 5 epochs) 0.108 / 0.110 / 0.118, and at full size
    # (200,000 rows, one-epoch fits, bench/test_bench_sgd.py, against 0bebf28) owners were
    # 1.70x (1.56-2.53) Hogwild!'s time, with some epochs 3-5x slow: hence 48, between
    # RCV1-like's 37 and AP's 67. A thread
    # publishes its part of the dot products every _OWNED_WORK / (its non-zeros x outputs
    # per row) rows, rounded up to a power of two within 1-8 (2 ** _OWNED_MAX_PUBLISH), and a
    # row's prediction misses the steps of the 4x as many rows before it (docs/guide/threads.md).
    # Not 16 (a delay of 64): at the 'optimal' schedule's large steps, on rows whose words are
    # in nearly every row (3,000 x 20,000, 120 a row, 60 a thread), owners that took over from
    # 5 epochs on one thread had 22x the loss of the epoch before (1.65 against 0.076), 1.23x
    # with a delay of 32; and 2 threads of 30,000 such rows took 0.117 s (median) with 32, 0.123
    # with 64, at the same test loss.
    _SMALL_MODEL = 4096
    _MERGE_COST = 64
    _OWNED_MIN_WORK = 48
    # Threads that own features run in step: a kernel call in which they waited for each
    # other more than _OWNED_MAX_WAIT of its time (and 1 ms) - other work took a core, or
    # the host took a vCPU - is followed by _OWNED_RETRY[0] calls on one thread, then the
    # owners try again once no other process's thread waits for a core (/proc/loadavg's
    # runnable count); each failed try doubles the pause, up to _OWNED_RETRY[1] calls. With
    # one busy process per core beside a 2-thread fit on text-like rows, 40 epochs took
    # 1.0-3.6 s in step against 0.83 s on one thread, an epoch 90 ms against 7 idle; on this
    # idle 2-vCPU VM, whose host takes ~8% of its CPU time (/proc/stat's steal), blocks of 8
    # epochs took 24-27 ms an epoch where 5-7 was usual, 2 of 8 in one series. One thread,
    # not Hogwild!, takes over: on text Hogwild! threads are slower than one (the loaded
    # fit above: 0.72 s with Hogwild! after the owners, 0.52 on one thread).
    _OWNED_MAX_WAIT = 0.25
    _OWNED_RETRY = (2, 32)
    _OWNED_WORK = 512
    _OWNED_MAX_PUBLISH = 3
    # The owners' delay above (4x the rows between publications) is the longest a kernel call
    # takes: a call's delay is the largest power of two from 4 up to it whose product with the
    # step size at the call's first step and the rows' mean squared norm is at most
    # _OWNED_DELAY_STEP. The 'optimal' schedule's first steps (17.8 at alpha 1e-5) move a unit
    # row's prediction far, and a row that misses the 32 steps before it overshoots where words
    # recur: with a delay of 32 from the start, the text-like rows' test log-loss after one
    # epoch was 2.65 against one thread's 0.78 (1.22 against 0.64 after two, 0.616 against
    # 0.609 after five), and that of rows whose words are in nearly every row (tests/
    # test_threads.py) 9.3 against 0.95; a delay of 4 gave 0.79 and 0.95, one of 8 gave 1.07
    # on the latter (4 x 17.8 = 71, 8 x 17.8 = 142). Later, smaller steps take the longer
    # delays (a block of epochs ends where one could); the shorter ones cost 1.0-1.05x the time
    # of whole fits, within the measurements' spread (docs/guide/threads.md).
    _OWNED_DELAY_STEP = 80.0
    # Below this many non-zeros per thread and epoch, thread start-up and merging
    # cost more than the threads save (a9a: 450k non-zeros, 2.3 ms an epoch on one
    # thread, no faster on two), so fewer threads are used. (With the rarer merges of
    # 2026-12-02, 2 threads forced on a9a were 1.19-1.35x faster, but their test
    # log-loss was 0.70-0.82 against one thread's 0.44 at alpha 1e-5, with the old
    # merges too: docs/guide/threads.md. The bound stays.)
    _MIN_NNZ_PER_THREAD = 500_000
    # With n_threads=None and Hogwild! threads (not threads that own features, which share no
    # weight), epochs 5-7 run on one thread, and the rest of the fit keeps all
    # threads only if epochs 3-4 on all took at most this share of the time of 6-7. Hogwild!
    # threads all write the coordinates of words that occur in nearly every document; how
    # much that costs depends, it seems, on where the machine puts the threads, not on the
    # data alone: text-like data (Zipf words, 206 a row) on this
    # 2-vCPU VM took 0.26 s for 40 epochs on 2 threads and 0.38 on one, or, at other times,
    # 0.63 on 2 threads (bench/thread_wait.py). Blocks, not single epochs: the first epoch
    # after a change of thread count pays for moving the model's cache lines between cores
    # (measured 10-20% of such a 10 ms epoch), which made alternating epochs choose one
    # thread in 3 of 3 processes where all threads were faster.
    _PROBE_ONE_THREAD = (5, 6, 7)
    _PROBE_COMPARED = ((3, 4), (6, 7))  # all threads, one thread
    _THREADS_MUST_WIN = 0.97
    # A fit on several threads runs its first epochs on fewer threads while other threads of
    # the process take cores, for at most this many seconds: OpenBLAS's threads spin for
    # ~0.1 s after every call (dpsgd._threads.running_other_threads), and a fit that starts
    # right after one would share the cores with them (3-13 epochs of 7-10 ms on text-like
    # rows after a 300 x 300 product).
    _BUSY_WAIT = 0.25
    # In one process, a fit runs several epochs in one kernel call where nothing between
    # them needs Python (no callback, validation score, averaging, time or update budget;
    # one thread or threads that own features, whose kernel sums the weights at each
    # epoch's end for the stopping rule): its threads then do not fall asleep between
    # epochs (waking one cost 1-2 ms of a 5-12 ms text-like epoch on this VM) and the
    # ~0.6 ms of Python between epochs is paid once a block. A block lasts about
    # _BLOCK_SECONDS (the last epoch's time tells), has at most _BLOCK_EPOCHS epochs and,
    # with tol, never more than the stopping rule could let pass without a stop; its order
    # and schedule (24-32 bytes a position) take at most _BLOCK_MEMORY of the data's bytes.
    _BLOCK_SECONDS = 0.05
    _BLOCK_EPOCHS = 16
    _BLOCK_MEMORY = 0.08

    def __init__(self, *, loss, penalty, alpha, l1_ratio, fit_intercept, max_iter, tol,
                 shuffle, verbose, epsilon, n_threads, random_state, learning_rate,
                 eta0, power_t, early_stopping, validation_fraction, n_iter_no_change,
                 warm_start, average, comm=None, exchange="server", sync_every="auto",
                 step_policy="budget", max_seconds=None, max_updates=None, network=None,
                 compression=None, gossip_graph="exponential"):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_threads = n_threads
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.comm = comm
        self.exchange = exchange
        self.sync_every = sync_every
        self.step_policy = step_policy
        self.max_seconds = max_seconds
        self.max_updates = max_updates
        self.network = network
        self.compression = compression
        self.gossip_graph = gossip_graph

    # ------------------------------------------------------------------ checks
    def _validate_params(self, for_partial_fit=False):
        check_choice("loss", self.loss, self._losses)
        check_choice("penalty", self.penalty, PENALTIES)
        if self.learning_rate in PASSIVE_AGGRESSIVE:
            raise ValueError(f"learning_rate={self.learning_rate!r} is not supported: passive-aggressive "
                             "steps are not SGD steps; use scikit-learn's PassiveAggressiveClassifier / "
                             "PassiveAggressiveRegressor")
        check_choice("learning_rate", self.learning_rate, SCHEDULE_IDS)
        self._check_flag("early_stopping")
        check_number("validation_fraction", self.validation_fraction, low=0.0, high=1.0, low_open=True)
        if self.validation_fraction == 1.0:
            raise ValueError("validation_fraction must be < 1, got 1.0")
        if not isinstance(self.average, (bool, np.bool_)):
            check_number("average", self.average, low=0, integer=True)
        if self.early_stopping and for_partial_fit:
            raise ValueError("early_stopping should be False with partial_fit")
        if self.comm is not None and (self.early_stopping or self.average or self.learning_rate == "adaptive"):
            raise ValueError("with comm, early_stopping, average and learning_rate='adaptive' are not "
                             "supported: each needs one global decision or average per step, which the "
                             "asynchronous ranks do not share")
        check_number("alpha", self.alpha, low=0.0)
        check_number("l1_ratio", self.l1_ratio, low=0.0, high=1.0)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("tol", self.tol, allow_none=True)
        check_number("epsilon", self.epsilon, low=0.0)
        check_number("eta0", self.eta0, low=0.0)
        check_number("power_t", self.power_t)
        check_number("n_iter_no_change", self.n_iter_no_change, low=1, integer=True)
        check_number("verbose", self.verbose, low=0, integer=True)
        if not (isinstance(self.sync_every, str) and self.sync_every == "auto"):
            check_number("sync_every", self.sync_every, low=1, integer=True)
        check_number("max_seconds", self.max_seconds, low=0.0, low_open=True, allow_none=True)
        check_number("max_updates", self.max_updates, low=1, integer=True, allow_none=True)
        check_exchange(self.exchange, self.compression, self.gossip_graph)
        make_network(self.network)
        if self.comm is not None and self.penalty in ("l1", "elasticnet"):
            raise ValueError("with comm, penalty must be 'l2' or None: the L1 cumulative penalty "
                             "keeps per-process state that the ranks do not share yet")
        self._policy = self._make_policy()
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("alpha must be > 0 with learning_rate='optimal' (the step is 1/(alpha*t))")
        if self.learning_rate != "optimal" and self.eta0 <= 0:
            raise ValueError(f"eta0 must be > 0 with learning_rate={self.learning_rate!r}")
        self._thread_request()  # raises on 0, a non-integer, or n_jobs against n_threads

    def _check_flag(self, name):
        if not isinstance(getattr(self, name), (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def _thread_request(self):
        """``n_threads`` (None: every core), checked."""
        effective_n_threads(self.n_threads)
        return self.n_threads

    def _average_start(self):
        """Global step from which the iterates are averaged, or 0 for no averaging."""
        return int(self.average) if self.average else 0

    def _make_policy(self):
        """The step policy object of ``step_policy`` (None, a name, or a policy)."""
        return stepsize.estimator_policy(self.step_policy)

    def _kernel_loss(self):
        kind, param = self._losses[self.loss]
        return int(kind), (self.epsilon if param is None else param)

    def _eta_at(self, t, eta0, t0):
        """The step size at step ``t`` (from 1) of the schedule, with the current ``eta0``
        ('adaptive' steps are constant between its divisions) and 'optimal''s ``t0``."""
        schedule = "constant" if self.learning_rate == "adaptive" else self.learning_rate
        return stepsize.eta(schedule, max(t, 1.0), eta0=eta0, alpha=self.alpha, power_t=self.power_t, t0=t0)

    def _schedule(self):
        """Kernel schedule arguments, and a check that the L2 decay stays positive."""
        kind, param = self._kernel_loss()
        t0 = 0.0
        if self.learning_rate == "optimal":
            t0 = stepsize.optimal_init(self.alpha, lambda y, p: _sgd.py_loss_grad(kind, y, p, param)[1])
        l2_share = {"l2": 1.0, "elasticnet": 1.0 - self.l1_ratio}.get(self.penalty, 0.0)
        first = self._eta_at(self.t_, self.eta0, t0)
        largest = max(first, self.eta0) if self.learning_rate == "invscaling" and self.power_t < 0 else first
        if l2_share * self.alpha * largest >= 1.0:
            raise ValueError(
                f"the step size ({largest:.3g}) times alpha ({self.alpha:g}) is >= 1, so the L2 "
                "penalty would flip the weights' sign; lower eta0 or alpha"
            )
        return SCHEDULE_IDS[self.learning_rate], t0

    # --------------------------------------------------------------- training
    def _hot_coordinates(self, X, n_threads, n_outputs):
        """Features buffered per thread: all of a small model with several threads, else none."""
        d = X.shape[1]
        if n_threads == 1 or d * n_outputs > self._SMALL_MODEL:
            return np.empty(0, np.int32), np.empty(0, np.int64)
        return np.arange(d, dtype=np.int32), np.arange(d, dtype=np.int64)

    def _run_epochs(self, X, Y, sample_weight, coef, intercept, max_iter, callback=None, *,
                    rows=None, scorer=None, class_weight=None, avg=None):
        """Run up to ``max_iter`` epochs (passes over this rank's rows, with ``comm``) through
        the engine, from (d, K) ``coef`` and (K,) ``intercept``; returns the final
        ``(coef (K, d), intercept (K,))`` and the number of epochs run.

        ``rows``: the training rows (None: all); ``scorer(coef, intercept)``: the
        validation score that early stopping watches; ``class_weight``: (K, 2)
        weights of positive and negative targets; ``avg``: (avg_coef, avg_intercept)
        of averaged SGD, updated in place. On divergence a DivergenceError is raised
        (see :mod:`dpsgd.tasks.linear_problem`).
        """
        topology = Topology(self.comm)
        n = X.shape[0] if rows is None else rows.shape[0]
        if topology.total(n) == 0:
            raise ValueError("X has 0 samples on every rank; at least one is required")
        K = coef.shape[1]
        # Never more threads than cores: the kernel's threads walk the step-size
        # schedule together, and a preempted thread would apply updates a whole
        # time slice late (a9a with 4 threads on 2 cores: 1.4% worse test loss).
        request = self._thread_request()
        n_threads = min(topology.threads(request), max(1, int(X.indptr[-1]) * K // self._MIN_NNZ_PER_THREAD))
        loss_id, loss_param = self._kernel_loss()
        schedule_id, t0 = self._schedule()
        l1 = self.penalty in ("l1", "elasticnet")
        kernel = dict(loss=loss_id, loss_param=loss_param, alpha=self.alpha,
                      l1_ratio={"l1": 1.0, "elasticnet": self.l1_ratio}.get(self.penalty, 0.0),
                      l2=self.penalty in ("l2", "elasticnet"), l1=l1, learning_rate=schedule_id, eta0=self.eta0,
                      power_t=self.power_t, optimal_init=t0,
                      intercept_decay=SPARSE_INTERCEPT_DECAY if self._sparse_input_ else 1.0,
                      fit_intercept=self.fit_intercept, class_weight=class_weight)
        seed = int(self._rng_.randint(0, 2**31 - 1))
        if topology.distributed:
            seed = topology.seed(seed)
        else:  # a 62-bit seed for the epochs' permutations
            seed = seed << 31 | int(self._rng_.randint(0, 2**31 - 1))
        explode_at = (DIVERGENCE_FACTOR * max(self._zero_model_loss(Y, loss_id, loss_param), 1.0)
                      if self._loss_explosion_diverges else np.inf)
        problem = LinearProblem(
            self, X, Y, sample_weight, coef, intercept, max_iter, kernel, n_threads, seed,
            # the default thread count is checked, not trusted (see _PROBE_ONE_THREAD)
            probe=request is None and n_threads > 1 and max_iter > self._PROBE_ONE_THREAD[-1],
            rows=rows, scorer=scorer, avg=avg, l1=l1, explode_at=explode_at,
            blocks=callback is None and self.max_seconds is None and self.max_updates is None)
        self.n_threads_ = n_threads
        result = engine.run(problem, topology, exchange=self.exchange, policy=self._policy,
                            max_updates=self.max_updates, max_seconds=self.max_seconds,
                            callback=callback, network=self.network, compression=self.compression,
                            graph=self.gossip_graph)
        self.round_stats_ = result.stats.summary()
        if problem.in_place:
            return result.model, result.rounds
        # the schedule's steps: every sample pushed (server); H for a round of averaged changes
        # (allreduce, whose updates count every rank's samples)
        self.t_ += result.version * problem.H if problem.synchronous else result.updates
        return result.model, min(max_iter, -(-result.stats.pushes // problem.rounds_per_pass))

    @staticmethod
    def _zero_model_loss(Y, loss_id, loss_param):
        """Mean loss of the model that predicts 0, estimated on at most 1,000 targets."""
        sample = Y.ravel()[::max(1, Y.size // 1000)]
        return float(np.mean([_sgd.py_loss_grad(loss_id, y, 0.0, loss_param)[0] for y in sample])) \
            if sample.size else 0.0

    # sync_every="auto": this many exchanges per pass over a rank's rows, each of at most
    # _MAX_ROUND samples. A fixed 4,096 gave a rank of a few thousand rows a few pushes a
    # pass, each carrying a long stretch of the schedule's early, long steps (agaricus, 4 ranks:
    # 20-27x the one-process log-loss; w8a-like 1.1-1.5x); rounds tied to the shard kept a9a and
    # RCV1-like within 1% (bench/linear_defaults.py, docs/benchmarks.md).
    _ROUNDS_PER_PASS = 32
    _MAX_ROUND = 4096

    def _round_length(self, n):
        """Samples between two exchanges for a rank with ``n`` rows."""
        if isinstance(self.sync_every, str):  # "auto"
            return max(1, min(self._MAX_ROUND, n // self._ROUNDS_PER_PASS))
        return int(self.sync_every)

    def _fit_targets(self, X, Y, y, sample_weight, max_iter, init, callback, early_stop,
                     class_weight=None):
        """Train on (n, K) targets ``Y`` (``y``: the labels, for the validation split).

        ``init`` is (coef (K, d), intercept (K,), avg_coef, avg_intercept), any of them
        None for zeros. Sets the fitted model (see ``_set_model``).
        """
        d, K = X.shape[1], Y.shape[1]
        coef = np.zeros((d, K))
        intercept = np.zeros(K)
        if init[0] is not None:
            coef[...] = np.asarray(init[0], dtype=np.float64).reshape(K, d).T
        if init[1] is not None:
            intercept[...] = np.asarray(init[1], dtype=np.float64).reshape(K)
        avg = None
        if self._average_start():
            avg = (np.zeros((d, K)), np.zeros(K))
            if init[2] is not None:
                avg[0][...] = np.asarray(init[2], dtype=np.float64).reshape(K, d).T
                avg[1][...] = np.asarray(init[3], dtype=np.float64).reshape(K)
        sw = check_sample_weight(sample_weight, X.shape[0])
        rows, scorer = self._validation_split(X, y, sw) if early_stop else (None, None)
        model, self.n_iter_ = self._run_epochs(X, Y, sw, coef, intercept, max_iter, callback, rows=rows,
                                               scorer=scorer, class_weight=class_weight, avg=avg)
        self._set_model(model["coef_"], model["intercept_"],
                        None if avg is None else (np.ascontiguousarray(avg[0].T), avg[1]))

    def _set_model(self, coef, intercept, avg):
        """Fitted attributes from coef (K, d) and intercept (K,), as scikit-learn sets them:
        with averaging, ``coef_`` is the average once ``average`` steps were taken, and
        the last iterate stays in ``_standard_coef`` for partial_fit."""
        if avg is None:
            self.coef_, self.intercept_ = self._coef_attribute(coef), intercept
            return
        self._standard_coef, self._standard_intercept = self._coef_attribute(coef), intercept
        self._average_coef, self._average_intercept = self._coef_attribute(avg[0]), avg[1]
        if self._average_start() <= self.t_ - 1:
            self.coef_, self.intercept_ = self._average_coef, self._average_intercept
        else:
            self.coef_, self.intercept_ = self._standard_coef, self._standard_intercept

    def _coef_attribute(self, coef):
        """``coef_`` as scikit-learn shapes it from (K, d) weights."""
        return coef

    def _continue_from(self):
        """``_fit_targets``'s ``init`` that continues the current model (partial_fit)."""
        if self._average_start() and hasattr(self, "_standard_coef"):
            return self._standard_coef, self._standard_intercept, self._average_coef, self._average_intercept
        return self.coef_, self.intercept_, None, None

    def _validation_split(self, X, y, sw):
        """Training rows and the validation scorer of early stopping (scikit-learn's split:
        stratified for classifiers, seeded with ``random_state``)."""
        n = X.shape[0]
        splitter = StratifiedShuffleSplit if is_classifier(self) else ShuffleSplit
        cv = splitter(test_size=self.validation_fraction, random_state=self.random_state)
        train, val = next(cv.split(np.zeros((n, 1)), y))
        if train.size == 0 or val.size == 0:
            raise ValueError(f"Splitting {n} samples into a train set and a validation set with "
                             f"validation_fraction={self.validation_fraction!r} led to an empty set "
                             f"({train.size} and {val.size} samples). Please either change "
                             "validation_fraction, increase number of samples, or disable early_stopping.")
        sw_val = sw[val] if sw.size else None
        if sw_val is not None and not np.any(sw_val > 0):
            raise ValueError("The sample weights for validation set are all zero, consider using a "
                             "different random state.")
        X_val, y_val = X[val], y[val]

        def scorer(coef, intercept):
            return self._validation_score(X_val @ coef + intercept, y_val, sw_val)

        return np.sort(train).astype(np.int64), scorer

    def _penalty_value(self, coef, sums=None):
        """The penalty of ``coef``, or of the weights whose sum of squares and of absolute
        values are ``sums``."""
        if self.penalty is None:
            return 0.0
        l1_ratio = {"l2": 0.0, "l1": 1.0}.get(self.penalty, self.l1_ratio)
        squares, absolute = (float(np.sum(coef * coef)), float(np.abs(coef).sum())) if sums is None else sums
        return self.alpha * ((1 - l1_ratio) * 0.5 * squares + l1_ratio * absolute)

    def _prepare_X(self, X, y, reset, y_numeric):
        # before validate_data, whose conversion of another sparse format trusts its arrays;
        # CSR input is checked once, by as_kernel_csr (validate_data reads only its data)
        if not (sp.issparse(X) and X.format == "csr"):
            check_sparse_structure(X)
        # with comm a rank may bring no rows: it then only hosts (rank 0) or waits
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                             order="C", accept_large_sparse=True, reset=reset, y_numeric=y_numeric,
                             ensure_min_samples=0 if self.comm is not None else 1)
        if X.shape[0] == 0 and self.comm is None:
            raise ValueError("X has 0 samples; at least one is required")
        sparse = sp.issparse(X)
        if reset:
            self._sparse_input_ = sparse
        return as_kernel_csr(X, X.shape[1]), y

    def _start(self, reset, for_partial_fit=False):
        self._validate_params(for_partial_fit)
        if reset or not hasattr(self, "t_"):
            self.t_ = 1.0
        if reset or not hasattr(self, "_rng_"):
            self._rng_ = check_random_state(self.random_state)

    def _warn_if_not_converged(self):
        if self.tol is not None and self.max_iter > 1 and self.n_iter_ == self.max_iter:
            warnings.warn("Maximum number of iteration reached before convergence. Consider "
                          "increasing max_iter to improve the fit.", ConvergenceWarning)

    def _decision(self, X):
        check_is_fitted(self)
        check_sparse_structure(X)  # a mutated CSR matrix would crash scipy's product
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=False)
        return safe_sparse_dot(X, self.coef_.T, dense_output=True) + self.intercept_

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coef_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


@persist.register
class SGDClassifier(ClassifierMixin, _BaseSGD):
    """Linear classifiers (SVM, logistic regression, ...) trained by lock-free parallel SGD.

    The counterpart of :class:`sklearn.linear_model.SGDClassifier`: same model,
    losses, penalties and step-size schedules; each epoch visits the rows in a
    fresh random order, shared among ``n_threads`` OpenMP threads that update one
    weight matrix without locks (Hogwild!). Multiclass problems are one-vs-rest,
    with all classes updated in the same pass over the data.

    Parameters
    ----------
    loss : {'hinge', 'log_loss', 'modified_huber', 'squared_hinge', 'perceptron', \
'squared_error', 'huber', 'epsilon_insensitive', 'squared_epsilon_insensitive'}, default='hinge'
        The loss. 'log_loss' gives logistic regression; it and 'modified_huber'
        have ``predict_proba``. The regression losses fit targets in {-1, +1}.
    penalty : {'l2', 'l1', 'elasticnet', None}, default='l2'
        Regulariser. L2 is applied exactly at O(nnz) per step; L1 by the cumulative
        penalty of Tsuruoka et al. (2009) on the touched coordinates.
    alpha : float, default=1e-4
        Regularisation strength; also sets the 'optimal' step size.
    l1_ratio : float, default=0.15
        Elastic-net mixing (0 is pure L2, 1 pure L1); used with 'elasticnet'.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    max_iter : int, default=1000
        Maximum number of epochs (passes over the data).
    tol : float or None, default=1e-3
        Stop when the epoch's objective (mean loss + penalty), or with
        ``early_stopping`` the validation score, has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row. None: run ``max_iter``.
    shuffle : bool, default=True
        Visit the rows in a fresh random order each epoch.
    verbose : int, default=0
        Print one line per epoch when > 0.
    epsilon : float, default=0.1
        The epsilon of 'huber', 'epsilon_insensitive' and 'squared_epsilon_insensitive'.
    n_jobs : int or None, default=None
        scikit-learn's name for ``n_threads`` (the one-vs-rest classifiers are
        trained together, by threads): used when ``n_threads`` is None. Setting
        both to different thread counts is an error. Unlike scikit-learn, None
        means every core, not one.
    n_threads : int or None, default=None
        Threads for training: None uses every core this process may use, -1 the
        same, -2 all but one, a positive int that many. One thread is
        deterministic for a given ``random_state``; more threads give
        statistically equivalent but not bit-identical results. This is the most
        threads used: never more than the cores available (a preempted Hogwild!
        thread applies very stale updates), and an epoch with fewer than 500,000
        non-zeros (times outputs) per thread uses fewer, as threads would cost
        more than they save. With None, a fit of 8 epochs or more whose threads share
        the weights (Hogwild!) runs epochs 5-7 on one thread and compares them with 3-4 on
        all; it keeps one thread if all were not faster (threads that write the same hot
        coordinates can lose on some machines). Threads that own features (large models
        on long rows) share no weight and are kept.
        ``n_threads_`` tells what was used.
    random_state : int, RandomState or None, default=None
        Seeds the epochs' permutations.
    learning_rate : {'optimal', 'constant', 'invscaling', 'adaptive'}, default='optimal'
        Step-size schedule (see :mod:`dpsgd.stepsize`). 'adaptive' keeps ``eta0``
        and divides it by 5 each time the stopping rule fires, stopping once it
        is below 1e-6, as scikit-learn does. scikit-learn's passive-aggressive
        'pa1' and 'pa2' are refused with a ValueError.
    eta0 : float, default=0.01
        Initial step for 'constant', 'invscaling' and 'adaptive'.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified, drawn with
        ``random_state``, as scikit-learn does) and stop when their accuracy has
        not improved by ``tol`` for ``n_iter_no_change`` epochs; the model of the
        last epoch is kept. Multiclass: the accuracy of the whole one-vs-rest
        model (scikit-learn watches each binary classifier on its own).
    validation_fraction : float in (0, 1), default=0.1
        Share of the rows held out by ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    class_weight : dict, 'balanced' or None, default=None
        Weights of the classes, multiplied into the sample weights as in
        scikit-learn: binary, a sample weighs ``class_weight[label]``; multiclass,
        the classifier of class c weighs its positive samples by
        ``class_weight[c]`` and the others by 1. 'balanced' is
        ``n_samples / (n_classes * count(class))``, computed in ``fit`` (with
        ``comm``, over all ranks); in ``partial_fit`` pass a dict instead.
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (``coef_``, which is the average
        with ``average``).
    average : bool or int, default=False
        Averaged SGD, as scikit-learn: True averages the iterates from the first
        step, an int from that step on; ``coef_`` and ``intercept_`` are then the
        averages once that many steps were taken, and ``partial_fit`` continues
        from the last iterate. The average is kept lazily in O(non-zeros) a
        step. With several threads it is the exact average of the iterates
        obtained by applying each thread's updates in the order of their places
        in the epoch (each computed, Hogwild!-style, from what its thread read).
        Those early iterates, computed from stale weights while the steps are
        long, cost quality: on a synthetic set 2 threads averaging from the first
        step reached test log-loss 0.298 against 0.291 on one thread (scikit-learn
        0.294); averaging from the second epoch (``average=n_samples``) they match
        scikit-learn (0.2841 against 0.2839). Not with ``comm``.
    comm : mpi4py.MPI.Comm, optional
        Train across the ranks of ``comm`` (DPSGD): each rank passes its own rows to
        ``fit``; the ranks exchange their changes (``exchange``: asynchronously through an
        MPI one-sided window, or by synchronous averaging), each running ``n_threads``
        lock-free threads, and all end with the same model. With the server, rank 0 hosts
        the window and is a worker too, unless it passes no rows. ``max_iter`` passes over
        each rank's rows are run (``tol`` is not used); ``penalty`` must be 'l2' or None. Call
        ``dpsgd.comm.abort_on_exception()`` in MPI scripts so that a failing rank ends the job.
    exchange : {'server', 'allreduce', 'gossip', 'async_gossip'}, default='server'
        How the ranks share the weights (with ``comm``). 'server': DPSGD's asynchronous
        parameter server on an MPI one-sided window, where no rank waits for another.
        'allreduce': synchronous local SGD, every rank's changes of ``sync_every`` steps
        averaged with one ``MPI_Allreduce`` (the baseline DPSGD is compared against).
        'gossip': D-PSGD, each rank adds its changes to its own weights and averages them
        with its neighbours' in an exponential graph every ``sync_every`` steps
        (:mod:`dpsgd.comm.gossip`); the model is the ranks' average at the end.
        'async_gossip': AD-PSGD, each rank averages its weights with one neighbour's at a
        time, atomically, without waiting for the others (:mod:`dpsgd.comm.async_gossip`;
        ``step_policy`` does not scale its changes, which land on the rank's own copy).
    sync_every : int or 'auto', default='auto'
        Samples a rank processes between two exchanges (with ``comm``). 'auto': 32
        exchanges per pass over the rank's rows, at most 4,096 samples each (chosen on
        a9a, agaricus, RCV1-like and w8a-like data: docs/benchmarks.md).
    step_policy : {'budget', 'fixed_or_skip'}, dpsgd.stepsize policy or None, default='budget'
        With ``comm`` and the server exchange (allreduce rounds have no delay): scales
        each pushed change by the policy's step for the measured delay over gamma'. A name
        means ``dpsgd.stepsize.delay_policy(name)`` (Wu et al.'s delay-adaptive rules, alpha
        0.9); 'fixed_for_delay' needs the largest delay of the run: pass
        ``delay_policy('fixed_for_delay', tau_max=...)``. None pushes changes unscaled. Unscaled
        changes of ``sync_every`` steps from several ranks add up to a step several
        times too long while the schedule's steps are large (a9a, 2 ranks, 5 epochs,
        sync_every 1,024-4,096: test log-loss up to 1.08 unscaled, 0.3246-0.3285 with
        'budget'; one process 0.3245).
    max_seconds : float, optional
        Stop ``fit`` after about this many seconds (> 0): checked before each epoch, or with
        ``comm`` before each exchange, and then every rank stops within one round.
    max_updates : int, optional
        Stop ``fit`` after about this many SGD steps (samples), counted over all threads
        and ranks; checked like ``max_seconds``.
    network : str, dict or dpsgd.comm.network.Network, optional
        With ``comm``: run as over a cluster's network, adding its latency and bandwidth to
        every exchange and slowing a straggler (``"10GbE"``, ``"1GbE"`` or the fields of
        :class:`dpsgd.comm.network.Network`); ``round_stats_`` records the seconds added.
        None: the exchange as it is.
    compression : {None, 'natural'}, default=None
        With ``comm`` and ``exchange='allreduce'`` or ``'gossip'``: what a rank sends travels
        as natural compression's 2-byte codes (unbiased random rounding to a power of two; a
        quarter of the bytes): its change (:class:`dpsgd.comm.allreduce.AllreduceExchange`), or
        how far its parameters are from the copy its neighbours hold
        (:class:`dpsgd.comm.gossip.GossipExchange`).
    gossip_graph : {'exponential', 'ring'}, default='exponential'
        With ``exchange='gossip'`` or ``'async_gossip'``: the graph of ranks a rank averages
        with (rank i's out-neighbours: i + 1, i + 2, i + 4, ... or i - 1 and i + 1;
        :func:`dpsgd.comm.gossip.neighbours`).

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    n_iter_ : int
        Epochs run by the last ``fit`` (or 1 for ``partial_fit``).
    t_ : float
        Number of SGD steps taken so far, plus one.
    n_threads_ : int
        Threads used by the last call.
    n_features_in_ : int
    round_stats_ : dict
        This process's (rank's) rounds: pushes, delay mean / p99 / max and histogram, and
        the seconds spent computing and communicating (one process: every delay is 0).

    Notes
    -----
    With several threads the intercept, and the whole model when it has at
    most 4,096 weights (n_features x outputs), are accumulated per thread and
    merged into the shared model (a whole model every few hundred samples: a
    merge costs far more than the updates it merges), so that threads do not
    fight over the same cache lines; larger models are updated Hogwild!-style
    in place.

    Examples
    --------
    >>> from dpsgd import SGDClassifier
    >>> from dpsgd.data import load_a9a
    >>> X, y, X_test, y_test = load_a9a()
    >>> clf = SGDClassifier(loss="log_loss", alpha=1e-5, max_iter=5, tol=None, n_threads=1,
    ...                     random_state=0).fit(X, y)
    >>> clf.coef_.shape
    (1, 123)
    >>> round(clf.score(X_test, y_test), 2)
    0.82
    """

    _losses = CLASSIFICATION_LOSSES
    _saved_state = persist.SavedState(arrays=("classes_", "coef_", "intercept_"),
                                      scalars=("n_features_in_", "n_iter_", "t_"))

    def __init__(self, loss="hinge", *, penalty="l2", alpha=1e-4, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle=True, verbose=0,
                 epsilon=0.1, n_jobs=None, n_threads=None, random_state=None,
                 learning_rate="optimal", eta0=0.01, power_t=0.5, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, class_weight=None, warm_start=False,
                 average=False, comm=None, exchange="server", sync_every="auto", step_policy="budget",
                 max_seconds=None, max_updates=None, network=None,
                 compression=None, gossip_graph="exponential"):
        super().__init__(loss=loss, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, shuffle=shuffle,
                         verbose=verbose, epsilon=epsilon, n_threads=n_threads,
                         random_state=random_state, learning_rate=learning_rate, eta0=eta0,
                         power_t=power_t, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
                         warm_start=warm_start, average=average, comm=comm, exchange=exchange,
                         sync_every=sync_every, step_policy=step_policy, max_seconds=max_seconds,
                         max_updates=max_updates, network=network, compression=compression,
                         gossip_graph=gossip_graph)
        self.n_jobs = n_jobs
        self.class_weight = class_weight

    def _thread_request(self):
        """``n_threads``, or scikit-learn's ``n_jobs`` when only that is set."""
        if self.n_jobs is None:
            return super()._thread_request()
        check_number("n_jobs", self.n_jobs, integer=True)
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not allowed: use None or -1 for all cores, or a positive count")
        jobs = effective_n_threads(self.n_jobs)
        if self.n_threads is not None and effective_n_threads(self.n_threads) != jobs:
            raise ValueError(f"n_threads={self.n_threads!r} and n_jobs={self.n_jobs!r} ask for different "
                             "thread counts; n_jobs is scikit-learn's name for n_threads here: set one")
        return self.n_jobs

    def _validate_params(self, for_partial_fit=False):
        super()._validate_params(for_partial_fit)
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
        if for_partial_fit and cw == "balanced" and not hasattr(self, "classes_"):
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. In order to use "
                "'balanced' weights, use compute_class_weight('balanced', classes=classes, y=y). "
                "In place of y you can use a large enough sample of the full training set target "
                "to properly estimate the class frequency distributions. Pass the resulting "
                "weights as the class_weight parameter.")

    def _kernel_class_weight(self, y, label_counts=None):
        """The kernel's (K, 2) weights of positive and negative targets, or None.

        ``label_counts``: each class's count (over all ranks with ``comm``), which
        'balanced' uses; without them (``partial_fit``) it counts ``y``."""
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced" and label_counts is not None:
            if np.any(label_counts == 0):
                raise ValueError("classes should have valid labels that are in y")
            weights = label_counts.sum() / (self.classes_.size * label_counts)
        else:
            weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        if self.classes_.size == 2:  # scikit-learn's weight_pos, weight_neg
            return np.array([[weights[1], weights[0]]])
        return np.ascontiguousarray(np.column_stack([weights, np.ones_like(weights)]))

    def _validation_score(self, scores, y, sample_weight):
        return accuracy_score(y, self._labels(scores), sample_weight=sample_weight)

    def _targets(self, y, index=None):
        """Targets in {-1, +1}, one column per one-vs-rest classifier; ``index``: each label's
        place in ``classes_`` where it is known (``_classes_of``), which spares comparing labels."""
        K = self.classes_.size
        if index is not None:
            if K == 2:
                return np.where(index == 1, 1.0, -1.0).reshape(-1, 1)
            return np.where(index[:, None] == np.arange(K), 1.0, -1.0)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"labels {np.unique(y[unknown]).tolist()} are not in classes {self.classes_.tolist()}")
        if K == 2:
            return np.where(y == self.classes_[1], 1.0, -1.0).reshape(-1, 1)
        return np.where(y[:, None] == self.classes_[None, :], 1.0, -1.0)

    def _train(self, X, y, sample_weight, max_iter, init, callback, early_stop=False, label_counts=None,
               index=None):
        self._fit_targets(X, self._targets(y, index), y, sample_weight, max_iter, init, callback, early_stop,
                          self._kernel_class_weight(y, label_counts))

    @ends_job_on_error
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None, callback=None,
            t_start=None) -> SGDClassifier:
        """Fit the model with up to ``max_iter`` epochs of parallel SGD.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Any scipy sparse format (converted once to CSR) or a dense array.
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).
        coef_init, intercept_init : array-like, optional
            Initial weights, shapes (n_classes or 1, n_features) and (n_classes or 1,).
        sample_weight : array-like of shape (n_samples,), optional
            Per-sample weights (non-negative).
        callback : callable, optional
            ``callback(info)`` after every round of the engine (one process: every epoch;
            with ``comm``: every ``sync_every`` samples). ``info`` has ``round``, ``pass``,
            ``samples`` (this round's), ``seconds`` and ``end_of_pass``; at the end of a pass
            also ``updates`` (SGD steps over every thread and rank), ``loss`` (the pass's mean
            loss), ``pass_seconds``, ``nnz`` (non-zeros processed), ``t`` (the schedule's next
            step), the delay statistics and
            ``model()``, which returns the current global ``{"coef_": (outputs, n_features),
            "intercept_": (outputs,)}``.
        t_start : float, optional
            Step of the schedule to start at (1 by default); with ``coef_init`` it
            resumes a run from a checkpoint without restarting its step sizes.

        Returns
        -------
        self
        """
        self._start(reset=True)
        if t_start is not None:
            check_number("t_start", t_start, low=1.0)
            self.t_ = float(t_start)
        X, y = self._prepare_X(X, y, reset=True, y_numeric=False)
        classes, index, counts = _classes_of(y)
        if self.comm is not None:  # every rank must know every class, and 'balanced' every count
            classes, counts = _union_of_counts(Topology(self.comm).everyone((classes, counts)))
            index = None  # (the labels' places among every rank's classes: _targets finds them)
        if classes.size < 2:
            raise ValueError(f"The number of classes has to be greater than one; got {classes.size} class")
        if self.warm_start and hasattr(self, "coef_") and np.array_equal(getattr(self, "classes_", []), classes):
            coef_init = self.coef_ if coef_init is None else coef_init
            intercept_init = self.intercept_ if intercept_init is None else intercept_init
        self.classes_ = classes
        self._train(X, y, sample_weight, self.max_iter, (coef_init, intercept_init, None, None), callback,
                    self.early_stopping, label_counts=counts, index=index)
        self._warn_if_not_converged()
        return self

    @ends_job_on_error
    def partial_fit(self, X, y, classes=None, sample_weight=None) -> SGDClassifier:
        """One epoch over the given samples, continuing from the current model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,)
            All the classes; required on the first call, and must agree later.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            classes = np.unique(np.asarray(classes))
            if classes.size < 2:
                raise ValueError("classes must contain at least two classes")
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"classes={classes!r} differs from the classes of the first call {self.classes_!r}")
        self._start(reset=first, for_partial_fit=True)
        X, y = self._prepare_X(X, y, reset=first, y_numeric=False)
        check_classification_targets(y)
        if first:
            self.classes_ = classes
            self._train(X, y, sample_weight, 1, (None, None, None, None), None)
        else:
            self._train(X, y, sample_weight, 1, self._continue_from(), None)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Signed distance to the hyperplane, shape (n_samples,) or (n_samples, n_classes)."""
        scores = self._decision(X)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X) -> np.ndarray:
        """Predicted class label of each sample."""
        return self._labels(self._decision(X))

    def _labels(self, scores):
        """Class labels of (n, K) decision values."""
        if scores.shape[1] == 1:
            return self.classes_[(scores[:, 0] > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _has_proba(self):
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(f"probability estimates are not available for loss={self.loss!r}")
        return True

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (log_loss: logistic; modified_huber: clipped), OvR-normalised."""
        scores = self.decision_function(X)
        if self.loss == "log_loss":
            prob = 1.0 / (1.0 + np.exp(-scores))
        else:
            prob = (np.clip(scores, -1, 1) + 1) / 2
        if prob.ndim == 1:
            return np.column_stack([1 - prob, prob])
        total = prob.sum(axis=1)
        zero = total == 0
        prob[zero] = 1.0
        total[zero] = prob.shape[1]
        return prob / total[:, None]

    @available_if(_has_proba)
    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


@persist.register
class SGDRegressor(RegressorMixin, _BaseSGD):
    """Linear regression trained by lock-free parallel SGD.

    The counterpart of :class:`sklearn.linear_model.SGDRegressor`; see
    :class:`SGDClassifier` for the parameters shared by both. Differences:
    ``loss`` is 'squared_error' (default), 'huber', 'epsilon_insensitive' or
    'squared_epsilon_insensitive' (``epsilon`` is their threshold), the default
    ``learning_rate`` is 'invscaling' with ``power_t=0.25``, ``early_stopping``
    watches the R^2 of a random (unstratified) validation split, and there is
    no ``class_weight`` or ``n_jobs`` (as in scikit-learn).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : ndarray of shape (1,)
    n_iter_, t_, n_threads_, n_features_in_ : as in SGDClassifier

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd import SGDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 5))
    >>> y = X @ np.arange(1.0, 6.0) + 0.01 * rng.normal(size=1000)
    >>> reg = SGDRegressor(max_iter=20, tol=None, n_threads=1, random_state=0).fit(X, y)
    >>> np.round(reg.coef_, 1)
    array([1., 2., 3., 4., 5.])
    """

    _losses = REGRESSION_LOSSES
    _saved_state = persist.SavedState(arrays=("coef_", "intercept_"), scalars=("n_features_in_", "n_iter_", "t_"))
    _loss_explosion_diverges = True

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=1e-4, l1_ratio=0.15,
                 fit_intercept=True, max_iter=1000, tol=1e-3, shuffle=True, verbose=0,
                 epsilon=0.1, n_threads=None, random_state=None, learning_rate="invscaling",
                 eta0=0.01, power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average=False, comm=None, exchange="server",
                 sync_every="auto", step_policy="budget", max_seconds=None, max_updates=None, network=None,
                 compression=None, gossip_graph="exponential"):
        super().__init__(loss=loss, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                         fit_intercept=fit_intercept, max_iter=max_iter, tol=tol, shuffle=shuffle,
                         verbose=verbose, epsilon=epsilon, n_threads=n_threads,
                         random_state=random_state, learning_rate=learning_rate, eta0=eta0,
                         power_t=power_t, early_stopping=early_stopping,
                         validation_fraction=validation_fraction, n_iter_no_change=n_iter_no_change,
                         warm_start=warm_start, average=average, comm=comm, exchange=exchange,
                         sync_every=sync_every, step_policy=step_policy, max_seconds=max_seconds,
                         max_updates=max_updates, network=network, compression=compression,
                         gossip_graph=gossip_graph)

    def _coef_attribute(self, coef):
        return coef[0].copy()

    def _validation_score(self, scores, y, sample_weight):
        return r2_score(y, scores[:, 0], sample_weight=sample_weight)

    def _train(self, X, y, sample_weight, max_iter, init, callback, early_stop=False):
        Y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        self._fit_targets(X, Y, y, sample_weight, max_iter, init, callback, early_stop)

    @ends_job_on_error
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None, callback=None) -> SGDRegressor:
        """Fit the model with up to ``max_iter`` epochs of parallel SGD.

        Parameters are those of :meth:`SGDClassifier.fit`, with real-valued ``y``.

        Returns
        -------
        self
        """
        self._start(reset=True)
        X, y = self._prepare_X(X, y, reset=True, y_numeric=True)
        if self.warm_start and hasattr(self, "coef_"):
            coef_init = self.coef_ if coef_init is None else coef_init
            intercept_init = self.intercept_ if intercept_init is None else intercept_init
        self._train(X, y, sample_weight, self.max_iter, (coef_init, intercept_init, None, None), callback,
                    self.early_stopping)
        self._warn_if_not_converged()
        return self

    @ends_job_on_error
    def partial_fit(self, X, y, sample_weight=None) -> SGDRegressor:
        """One epoch over the given samples, continuing from the current model.

        Returns
        -------
        self
        """
        first = not hasattr(self, "coef_")
        self._start(reset=first, for_partial_fit=True)
        X, y = self._prepare_X(X, y, reset=first, y_numeric=True)
        self._train(X, y, sample_weight, 1, (None, None, None, None) if first else self._continue_from(), None)
        return self

    def predict(self, X) -> np.ndarray:
        """Predicted target of each sample."""
        return self._decision(X).ravel()
