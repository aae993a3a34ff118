"""Latent Dirichlet allocation by stochastic variational inference on shared-memory threads (DPSVI).

``LatentDirichletAllocation`` follows scikit-learn's LDA: the same
parameters, the same variational updates, the same attributes. The E-steps
and global steps run in ``dpsgd._kernels.svi`` without the GIL. Online
learning (the default) runs in one of two ways (``parallel``): "batch" threads
share each minibatch, one global step per minibatch; "hogwild" threads take
whole minibatches and apply their own global steps to the one shared topic
matrix without locks. ``learning_method="batch"`` is scikit-learn's full-batch
variational EM: one step per pass, the E-step of every document on the threads.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from dpsgd import evaluation, persist
from dpsgd._kernels import svi as _svi
from dpsgd._kernels.rng import permutation
from dpsgd._threads import available_threads, effective_n_threads
from dpsgd.comm.failure import ends_job_on_error
from dpsgd._validation import check_choice, check_number

PARALLEL_MODES = {"batch": _svi.Mode.BATCH, "hogwild": _svi.Mode.HOGWILD}
LEARNING_METHODS = ("online", "batch")


@persist.register
class LatentDirichletAllocation(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Latent Dirichlet allocation fitted by online (stochastic) variational Bayes, in parallel.

    The counterpart of :class:`sklearn.decomposition.LatentDirichletAllocation`;
    it takes the same parameters. Differences: ``learning_method`` defaults to
    'online' (scikit-learn's default is 'batch'); ``n_jobs`` counts threads and
    None means every core; documents are visited in a fresh random order each
    pass (``shuffle``); ``bound_`` is set only when ``evaluate_every > 0``.

    Parameters
    ----------
    n_components : int, default=10
        Number of topics K.
    doc_topic_prior : float, default=None
        alpha; None means 1 / n_components.
    topic_word_prior : float, default=None
        eta; None means 1 / n_components.
    learning_method : {'online', 'batch'}, default='online'
        'online': a global step per minibatch (stochastic variational inference).
        'batch': full-batch variational EM as scikit-learn runs it, one step per
        pass: the E-step of every document against the current topics, then
        ``components_ = topic_word_prior + sufficient statistics``; ``batch_size``,
        ``learning_decay``, ``learning_offset``, ``parallel`` and ``shuffle`` do not
        apply. Not with ``comm`` (a full-batch step needs every rank's statistics at
        once, and the ranks run asynchronously).
    learning_decay : float, default=0.7
        kappa in (0.5, 1]: the step of global step t is (learning_offset + t) ** -kappa.
    learning_offset : float, default=10.0
        tau0 (> 0), down-weights the early steps.
    max_iter : int, default=10
        Passes over the corpus in ``fit``.
    batch_size : int, default=128
        Documents per minibatch.
    evaluate_every : int, default=-1
        As scikit-learn: every ``evaluate_every`` passes of ``fit``, compute the
        perplexity of the training documents (one more E-step over them) and stop
        when it changed by less than ``perp_tol`` since the last evaluation.
        0 or negative: never. Not with ``comm`` (the ranks run asynchronously:
        use ``max_seconds``, ``max_updates`` or ``monitor``).
    perp_tol : float, default=0.1
        The perplexity change that ends ``fit`` (with ``evaluate_every > 0``).
    total_samples : float, default=1e6
        Corpus size D that ``partial_fit`` scales a minibatch by (``fit`` uses
        the number of documents it is given).
    max_doc_update_iter : int, default=100
        E-step iterations per document at most.
    mean_change_tol : float, default=1e-3
        The E-step of a document stops when gamma's mean absolute change is below this.
    n_threads : int or None, default=None
        Threads (see :func:`dpsgd.effective_n_threads`); never more than the cores.
    n_jobs : int or None, default=None
        scikit-learn's name for the parallelism, here the same as ``n_threads``
        (threads, not processes; -1 means every core). Set either; both set to
        different values is an error. With both None, every core is used
        (scikit-learn's None means one job).
    parallel : {'batch', 'hogwild'}, default='batch'
        How threads share the work (see the module docstring).
    shuffle : bool, default=True
        Visit the documents in a fresh random order in every pass (scikit-learn does not).
    reseed_topics : bool, default=False
        After each of the first ``max_iter // 2`` passes of ``fit``, re-seed the
        topics that died (less than 10% of the median topic's mass) or duplicate
        another one (cosine > 0.6) by splitting the heaviest topic into two
        randomly perturbed halves. A dpsgd addition, off by default as
        scikit-learn has no such step. It helps where the topics are distinct
        and their number is right (corpora drawn from LDA's model: online
        variational Bayes sometimes merges two topics and lets another die); on
        real corpora it measured worse held-out likelihood (AP, BBC News: the
        split topics have too few passes left to recover), see
        bench/lda_quality.py.
    random_state : int, RandomState or None
        Seeds the initial topics, the order and the E-steps' starting points.
    verbose : int, default=0
        Print a line per pass (with the training perplexity when evaluated).
    comm : mpi4py.MPI.Comm, optional
        DPSVI across the ranks of ``comm``: each rank passes its own documents to
        ``fit`` and runs ``n_threads`` threads on its minibatches; the ranks add their
        global steps to one topic matrix in an MPI one-sided window without waiting for
        each other (see ``_fit_distributed``). Rank 0 hosts the window and is a worker
        too, unless it passes no documents. ``total_samples`` is the whole corpus.
        Every rank ends with the same topics. ``reseed_topics`` runs on rank 0 between
        passes, with every rank waiting at a barrier.
    warm_start : bool, default=False
        ``fit`` continues from the fitted ``components_`` and step count (e.g. a
        model from :func:`dpsgd.load_model`, or a checkpoint) instead of starting afresh.
    max_seconds : float, optional
        Stop ``fit`` after about this many seconds (checked after every chunk of
        minibatches; with ``comm`` before every minibatch, and all ranks stop together).
    max_updates : int, optional
        Stop ``fit`` after about this many global steps (minibatches), over all ranks.

    Attributes
    ----------
    components_ : ndarray (n_components, n_features)
        Variational parameters lambda of the topic-word distributions.
    exp_dirichlet_component_ : ndarray (n_components, n_features)
        exp(E[log beta]).
    n_batch_iter_ : int
        Global steps taken, plus one.
    n_iter_ : int
        Passes run by ``fit``.
    n_reseeded_ : int
        Topics re-seeded by the last ``fit`` (see ``reseed_topics``); with ``comm``, counted
        on rank 0, which re-seeds.
    round_stats_ : dict
        With ``comm``: this rank's pushes, delay mean / p99 / max (global steps by others
        between its pull and its push) and the share of its time spent communicating.
    n_threads_ : int
        Threads used by the last call.
    bound_ : float
        With ``evaluate_every > 0``: the training documents' perplexity after ``fit``
        (scikit-learn's name and meaning; base e).
    doc_topic_prior_, topic_word_prior_ : float
    n_features_in_ : int
    """

    # Distributed rounds on one machine that touch more than this share of the rows move the
    # whole matrix: there MPICH moves a dense block 5-8x faster per double than the rows of an
    # indexed datatype (bench/bench_window.py), and shorter transfers hold the window's lock
    # for less time (2 ranks: 6-9% of the time communicating instead of 10-11%). Between
    # machines the bytes count, and rounds always move rows.
    _DENSE_ROWS_SHARE = 0.25

    _saved_state = persist.SavedState(arrays=("components_",), optional=("vocabulary_",),
                                      scalars=("n_features_in_", "n_batch_iter_", "doc_topic_prior_",
                                               "topic_word_prior_"))

    def __init__(self, n_components=10, *, doc_topic_prior=None, topic_word_prior=None,
                 learning_method="online", learning_decay=0.7, learning_offset=10.0, max_iter=10,
                 batch_size=128, evaluate_every=-1, total_samples=1e6, perp_tol=1e-1,
                 max_doc_update_iter=100, mean_change_tol=1e-3, n_threads=None, n_jobs=None,
                 parallel="batch", shuffle=True, reseed_topics=False, random_state=None, verbose=0,
                 comm=None, warm_start=False, max_seconds=None, max_updates=None):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.mean_change_tol = mean_change_tol
        self.n_threads = n_threads
        self.n_jobs = n_jobs
        self.parallel = parallel
        self.shuffle = shuffle
        self.reseed_topics = reseed_topics
        self.random_state = random_state
        self.verbose = verbose
        self.comm = comm
        self.warm_start = warm_start
        self.max_seconds = max_seconds
        self.max_updates = max_updates

    # ------------------------------------------------------------------ checks
    def _validate_params(self):
        check_number("n_components", self.n_components, low=1, integer=True)
        check_number("doc_topic_prior", self.doc_topic_prior, low=0.0, low_open=True, allow_none=True)
        check_number("topic_word_prior", self.topic_word_prior, low=0.0, low_open=True, allow_none=True)
        check_number("learning_decay", self.learning_decay, low=0.5, high=1.0, low_open=True)
        check_number("learning_offset", self.learning_offset, low=0.0, low_open=True)
        check_number("max_iter", self.max_iter, low=1, integer=True)
        check_number("batch_size", self.batch_size, low=1, integer=True)
        check_number("total_samples", self.total_samples, low=0.0, low_open=True)
        check_number("max_doc_update_iter", self.max_doc_update_iter, low=1, integer=True)
        check_number("mean_change_tol", self.mean_change_tol, low=0.0)
        check_number("verbose", self.verbose, low=0, integer=True)
        check_choice("parallel", self.parallel, PARALLEL_MODES)
        check_choice("learning_method", self.learning_method, LEARNING_METHODS)
        check_number("evaluate_every", self.evaluate_every, integer=True)
        check_number("perp_tol", self.perp_tol, low=0.0)
        check_number("max_seconds", self.max_seconds, low=0.0, allow_none=True)
        check_number("max_updates", self.max_updates, low=1, integer=True, allow_none=True)
        check_number("n_jobs", self.n_jobs, integer=True, allow_none=True)
        if self.n_jobs == 0:
            raise ValueError("n_jobs=0 is not allowed: use None or -1 for all cores, or a positive count")
        effective_n_threads(self._requested_threads())
        if self.comm is not None and self.learning_method == "batch":
            raise ValueError("learning_method='batch' cannot run with comm: a full-batch step needs every "
                             "rank's statistics at once, and the ranks step asynchronously; use 'online'")
        if self.comm is not None and self.evaluate_every > 0:
            raise ValueError("evaluate_every cannot be used with comm: the ranks step asynchronously and "
                             "would not stop together; use max_seconds, max_updates or monitor")
        self.doc_topic_prior_ = 1.0 / self.n_components if self.doc_topic_prior is None else float(self.doc_topic_prior)
        self.topic_word_prior_ = 1.0 / self.n_components if self.topic_word_prior is None else float(self.topic_word_prior)

    def _requested_threads(self):
        """``n_threads``, or scikit-learn's ``n_jobs`` (threads here) when only it is set."""
        if self.n_jobs is not None and self.n_threads is not None and self.n_jobs != self.n_threads:
            raise ValueError(f"n_jobs={self.n_jobs!r} and n_threads={self.n_threads!r} disagree: both set the "
                             "number of threads here (n_jobs is scikit-learn's name); set one of them")
        return self.n_threads if self.n_threads is not None else self.n_jobs

    def _threads_now(self):
        """Threads for a kernel call: the requested count, never more than the cores."""
        return min(effective_n_threads(self._requested_threads()), available_threads())

    def _check_X(self, X, reset, allow_empty=False):
        X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset,
                          ensure_min_samples=0 if allow_empty else 1)
        X = evaluation._canonical_csr(X)
        if X.nnz and X.data.min() < 0:
            raise ValueError("Negative values in data passed to LatentDirichletAllocation (counts must be >= 0)")
        return X

    # --------------------------------------------------------------- training
    def _init_topics(self, n_features):
        self._rng_ = check_random_state(self.random_state)
        # scikit-learn's start: Gamma(100, 1/100) entries
        self.components_ = self._rng_.gamma(100.0, 0.01, (self.n_components, n_features))
        self.n_batch_iter_ = 1

    def _chunks(self, n_docs, n_threads):
        """Minibatch boundaries of one pass, grouped into chunks (one kernel call each).

        A chunk gives every thread several minibatches (the hogwild threads wait
        for each other only at a chunk's end) and is at most 1/50 of the pass, so
        the progress is reported often."""
        starts = np.arange(0, n_docs, self.batch_size)
        bounds = np.append(starts, n_docs)
        per_chunk = max(8 * n_threads, -(-len(starts) // 50))
        return [bounds[i:i + per_chunk + 1] for i in range(0, len(starts), per_chunk)]

    def _run(self, X, order, total_samples, callback=None):
        """One pass over the documents ``order`` of X; updates components_ in place."""
        counts = X.data
        indices = X.indices.astype(np.int32, copy=False)  # no copy of a large corpus when already int32
        indptr = X.indptr.astype(np.int64, copy=False)
        K, V = self.components_.shape
        n_threads = self._threads_now()
        self.n_threads_ = n_threads
        lam = np.ascontiguousarray(self.components_.T)
        lam_sum = lam.sum(axis=0)
        row_nnz = np.diff(indptr)[order]
        seed = int(self._rng_.randint(0, 2**31 - 1))
        docs_done = 0
        for chunk in self._chunks(len(order), n_threads):
            sizes = np.diff(chunk)
            steps = self.n_batch_iter_ + np.arange(sizes.size)
            rho = (self.learning_offset + steps) ** -self.learning_decay
            scale = np.concatenate(([1.0], np.cumprod(1.0 - rho)))
            # non-zeros of each minibatch (reduceat on the chunk's slice: its last sum ends there)
            batch_nnz = np.add.reduceat(row_nnz[chunk[0]:chunk[-1]], chunk[:-1] - chunk[0])
            dshape, ishape = _svi.scratch_shape(K, V, int(batch_nnz.max(initial=0)))
            tic = time.perf_counter()
            done, _, status = _svi.svi_run(
                counts, indices, indptr, order[chunk[0]:chunk[-1]], (chunk - chunk[0]).astype(np.int64),
                lam, lam_sum, np.zeros((0, K)), scale, rho, total_samples / sizes,
                np.zeros((n_threads, dshape)), np.full((n_threads, ishape), -1, dtype=np.int32),
                mode=int(PARALLEL_MODES[self.parallel]), alpha=self.doc_topic_prior_,
                eta=self.topic_word_prior_, max_iter=self.max_doc_update_iter, tol=self.mean_change_tol,
                seed=seed, n_threads=n_threads)
            if status != 0 or not np.all(np.isfinite(lam)):
                raise FloatingPointError("the variational updates produced a non-finite value; check the counts")
            self.n_batch_iter_ += int(done)
            docs_done += int(sizes.sum())
            if callback is not None:
                callback(int(sizes.sum()), time.perf_counter() - tic)
            if self._budget_spent():
                break
        self.components_ = np.ascontiguousarray(lam.T)

    def _budget_spent(self):
        """``max_updates`` / ``max_seconds`` of the running ``fit`` (never in partial_fit)."""
        if self._fit_start is None:
            return False
        seconds, steps = self._fit_start
        return ((self.max_updates is not None and self.n_batch_iter_ - steps >= self.max_updates)
                or (self.max_seconds is not None and time.perf_counter() - seconds >= self.max_seconds))

    def _fit_distributed(self, X, monitor=None):
        """DPSVI across ranks: asynchronous global steps through an RMA window.

        The window holds lambda in the kernel's scaled form (``Lam``, word-major, with its
        column sums as one more row): lambda = A_t Lam + eta (1 - A_t), where A_t is the
        product of (1 - rho_s) over the first t global steps, known in advance. A rank
        reserves the index j of its next step (a ticket), pulls the rows of its
        minibatch's words and the sums, runs the minibatch's E-step and M-step on them
        with the kernel, and pushes only the step's own term rho_j D/|B| S / A_{j+1} on
        those rows. Each push carries its own scale, so the pushes commute: the result is a
        sum of steps, whatever order they land in. A round moves O(words of the minibatch
        x K) numbers, not O(V K).
        """
        from mpi4py import MPI

        from dpsgd.comm import ParameterWindow
        from dpsgd.engine import Budget, RoundStats

        comm = self.comm
        stats = RoundStats()
        K, V = self.components_.shape
        n_docs = X.shape[0]
        total_docs = float(comm.allreduce(n_docs))
        my_steps = self.max_iter * max(1, -(-n_docs // self.batch_size)) if n_docs else 0
        total_steps = comm.allreduce(my_steps)
        steps = np.arange(total_steps + 1)
        rho = (self.learning_offset + self.n_batch_iter_ + steps) ** -self.learning_decay
        log_scale = np.concatenate(([0.0], np.cumsum(np.log1p(-rho[:-1]))))
        if log_scale[-1] < -600:
            raise ValueError(f"{total_steps} global steps shrink lambda's scale below 1e-260; "
                             "use fewer passes or larger minibatches")
        scale = np.exp(log_scale)
        node = comm.Split_type(MPI.COMM_TYPE_SHARED)
        requested = effective_n_threads(self._requested_threads())
        n_threads = max(1, min(requested, available_threads() // node.Get_size()))
        dense_share = self._DENSE_ROWS_SHARE if node.Get_size() == comm.Get_size() else np.inf
        node.Free()
        self.n_threads_ = n_threads
        eta = self.topic_word_prior_
        lam0 = np.ascontiguousarray(self.components_.T)  # rank 0's start, broadcast by the window
        initial = np.concatenate([lam0, lam0.sum(axis=0, keepdims=True)]).ravel()
        seed = int(self._rng_.randint(0, 2**31 - 1)) + 7919 * comm.Get_rank()
        dshape, ishape = _svi.scratch_shape(K, V, int(np.diff(X.indptr).max(initial=0)) * self.batch_size)
        dbuf = np.zeros((n_threads, dshape))
        ibuf = np.full((n_threads, ishape), -1, dtype=np.int32)
        seen, slot = np.zeros(V, dtype=bool), np.zeros(V, dtype=np.int32)
        flat = np.empty((V + 1) * K)  # the whole matrix, for dense rounds
        stopped, passes = False, 0
        with ParameterWindow(comm, (V + 1) * K, initial=initial, row_size=K) as window:
            budget = Budget(window, self.max_updates, self.max_seconds)
            tic_fit = time.perf_counter()
            for pass_ in range(self.max_iter):
                order = self._order(n_docs)
                for start in range(0, n_docs if not stopped else 0, self.batch_size):
                    if budget.exhausted():
                        stopped = True
                        break
                    t0 = time.perf_counter()
                    batch = X[order[start:start + self.batch_size]]
                    # the minibatch's words and their local numbers (a marker array: no sort)
                    seen[batch.indices] = True
                    words = np.flatnonzero(seen)
                    seen[words] = False
                    slot[words] = np.arange(words.size, dtype=np.int32)
                    local = slot[batch.indices]
                    rows = np.append(words, V)  # the minibatch's words, then the column sums
                    tic = time.perf_counter()
                    j = window.ticket()
                    dense = rows.size > dense_share * (V + 1)
                    if dense:
                        flat, version = window.pull(flat)
                        pulled = flat.reshape(V + 1, K)[rows]
                    else:
                        pulled, version = window.pull_rows(rows)
                    toc = time.perf_counter()
                    A = scale[min(version, total_steps)]
                    lam = pulled[:-1] * A + eta * (1.0 - A)  # the true lambda read
                    lam_sum = pulled[-1] * A + V * eta * (1.0 - A)
                    before = lam.copy()
                    # the kernel needs -1 in the first V' (= words here) entries of ibuf; a
                    # round with fewer words left scratch lists there
                    ibuf[:, :words.size] = -1
                    _, _, status = _svi.svi_run(
                        batch.data, local, batch.indptr.astype(np.int64),
                        np.arange(batch.shape[0], dtype=np.int64), np.array([0, batch.shape[0]], dtype=np.int64),
                        lam, lam_sum, np.zeros((0, K)), np.array([1.0, 1.0 - rho[j]]), rho[j:j + 1],
                        np.array([total_docs / batch.shape[0]]), dbuf, ibuf, mode=int(_svi.Mode.BATCH),
                        alpha=self.doc_topic_prior_, eta=eta, max_iter=self.max_doc_update_iter,
                        tol=self.mean_change_tol, seed=seed + j, n_threads=n_threads)
                    if status != 0:
                        raise FloatingPointError("the variational updates produced a non-finite value")
                    # the step's own term rho_j D/|B| S on the words, in the scale after step j
                    # (lam_sum as the kernel left it counts only these words' eta: rebuilt here)
                    delta = np.empty_like(pulled)
                    delta[:-1] = (lam - (1.0 - rho[j]) * before - rho[j] * eta) / scale[j + 1]
                    delta[-1] = delta[:-1].sum(axis=0)
                    tac = time.perf_counter()
                    if dense:
                        flat[:] = 0.0
                        flat.reshape(V + 1, K)[rows] = delta
                        pushed = window.push(flat)
                    else:
                        pushed = window.push_rows(rows, delta)
                    stats.delays.append(pushed - version)  # steps by others between pull and push
                    stats.pushes += 1
                    stats.seconds_comm += (toc - tic) + (time.perf_counter() - tac)
                    stats.seconds_compute += (tac - toc) + (tic - t0)
                passes += not stopped
                if monitor is not None and not stopped:
                    monitor({"pass": pass_ + 1, "updates": self.n_batch_iter_ - 1 + window.clock(),
                             "seconds": time.perf_counter() - tic_fit,
                             "comm_seconds": stats.seconds_comm, **stats.summary(),
                             "topics": lambda: self._pull_topics(window, scale)})
                # the same number of barriers on every rank, stopped or not
                if self.reseed_topics and pass_ < self.max_iter // 2:
                    self._reseed_distributed(window, scale, act=not stopped)
            comm.Barrier()  # every rank's steps are in
            self.components_ = self._pull_topics(window, scale)
            self.n_batch_iter_ += window.clock()
        self.round_stats_ = stats.summary()
        return passes

    def _pull_topics(self, window, scale):
        """The true (K, V) topics from the window's scaled rows."""
        flat, version = window.pull()
        A = scale[min(version, scale.size - 1)]
        return np.ascontiguousarray((flat[:-self.n_components].reshape(-1, self.n_components) * A
                                     + self.topic_word_prior_ * (1.0 - A)).T)

    def _reseed_distributed(self, window, scale, act=True):
        """``reseed_topics`` between passes of a distributed fit: the ranks meet at a barrier,
        rank 0 re-seeds the pulled topics and writes the change into the window (a
        correction, not a step: the clock, which indexes the scale, does not move)."""
        comm = self.comm
        comm.Barrier()
        if comm.Get_rank() == 0 and act:
            self.components_ = self._pull_topics(window, scale)
            true = self.components_.T.copy()
            A = scale[min(window.clock(), scale.size - 1)]
            reseeded = self._reseed_dead_topics()
            self.n_reseeded_ += reseeded
            if reseeded:
                delta = (self.components_.T - true) / A
                window.push(np.concatenate([delta, delta.sum(axis=0, keepdims=True)]).ravel(), advance=False)
        comm.Barrier()

    def _order(self, n_docs):
        if not self.shuffle:
            return np.arange(n_docs, dtype=np.int64)
        return permutation(n_docs, int(self._rng_.randint(0, 2**31 - 1)))

    def _reseed_dead_topics(self):
        """Split the heaviest topics into the dead or duplicate ones (see ``reseed_topics``).

        A merge of two true topics has about twice a topic's mass and leaves,
        K being fixed, a topic with nothing to explain: it dies, or it copies
        another. Halving the heaviest topic with independent log-normal noise
        (sigma 1) gives the E-step two different starts to pull apart.
        Returns the number of topics re-seeded."""
        excess = self.components_ - self.topic_word_prior_
        mass = excess.sum(axis=1)
        weak = mass < 0.1 * np.median(mass)
        unit = excess / np.maximum(np.linalg.norm(excess, axis=1, keepdims=True), 1e-300)
        _mark_duplicates(unit, mass, weak)
        by_mass = np.argsort(-mass)
        donors = by_mass[~weak[by_mass]]
        if donors.size == 0:  # every topic ties with another (identical topics): none to split
            return 0
        for n, k in enumerate(np.flatnonzero(weak)):
            j = donors[n % donors.size]
            half = 0.5 * (self.components_[j] - self.topic_word_prior_)
            self.components_[k] = self.topic_word_prior_ + half * self._rng_.lognormal(0.0, 1.0, half.size)
            self.components_[j] = self.topic_word_prior_ + half * self._rng_.lognormal(0.0, 1.0, half.size)
        return int(weak.sum())

    def _finish(self):
        self.exp_dirichlet_component_ = evaluation.exp_dirichlet_expectation(self.components_)

    @ends_job_on_error
    def fit(self, X, y=None, callback=None, monitor=None) -> LatentDirichletAllocation:
        """Learn the topics with up to ``max_iter`` passes of online variational Bayes (or of
        full-batch variational EM, ``learning_method='batch'``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Document-word counts (any scipy sparse format, or dense). With ``comm``,
            this rank's documents.
        y : ignored
        callback : callable, optional
            ``callback(n_documents, seconds)`` after every chunk of minibatches, or
            every pass with ``learning_method='batch'`` (for progress bars; not called
            with ``comm``).
        monitor : callable, optional
            ``monitor(info)`` after each pass (of this rank, with ``comm``), while the
            other ranks go on. ``info`` has ``pass``, ``updates`` (global steps so far),
            ``seconds``, and ``topics()``, which returns the current global (K, V) topics;
            with ``comm`` also this rank's delay and communication statistics.

        Returns
        -------
        self
        """
        self._validate_params()
        warm = self.warm_start and hasattr(self, "components_")
        # with comm a rank may bring no documents: it then only hosts (rank 0) or waits
        X = self._check_X(X, reset=not warm, allow_empty=self.comm is not None)
        if (X.nnz if self.comm is None else self.comm.allreduce(X.nnz)) == 0:
            raise ValueError("the corpus has no words: every document is empty")
        if warm:
            if self.components_.shape != (self.n_components, X.shape[1]):
                raise ValueError(f"warm_start: the fitted topics are {self.components_.shape}, "
                                 f"this fit needs ({self.n_components}, {X.shape[1]})")
            self._rng_ = getattr(self, "_rng_", None) or check_random_state(self.random_state)
        else:
            self._init_topics(X.shape[1])
        self.n_reseeded_ = 0
        if self.comm is not None:
            self._fit_start = None
            self.n_iter_ = self._fit_distributed(X, monitor)
            self._finish()
            return self
        self._fit_start = (time.perf_counter(), self.n_batch_iter_)
        self.n_iter_ = self._fit_passes(X, callback, monitor)
        self._fit_start = None
        self._finish()
        return self

    def _fit_passes(self, X, callback, monitor):
        """``fit``'s passes in one process, with scikit-learn's ``evaluate_every`` /
        ``perp_tol`` stop; returns the number of passes run."""
        if hasattr(self, "bound_"):
            del self.bound_  # a previous fit's: this one sets its own or none
        last, evaluated = None, False
        for epoch in range(self.max_iter):
            tic = time.perf_counter()
            if self.learning_method == "batch":
                self._batch_step(X, callback)
            else:
                self._run(X, self._order(X.shape[0]), float(X.shape[0]), callback)
            if self._budget_spent():
                break
            reseeded = 0
            if self.reseed_topics and epoch < self.max_iter // 2:
                reseeded = self._reseed_dead_topics()
                self.n_reseeded_ += reseeded
            evaluated = self.evaluate_every > 0 and (epoch + 1) % self.evaluate_every == 0
            if evaluated:
                self.bound_ = self._training_perplexity(X)
            if self.verbose:
                print(f"pass {epoch + 1}/{self.max_iter}: {X.shape[0] / (time.perf_counter() - tic):.0f} documents/s"
                      + (f", {reseeded} topic(s) re-seeded" if self.reseed_topics else "")
                      + (f", perplexity {self.bound_:.4f} (training documents, base e)" if evaluated else ""))
            if monitor is not None:
                monitor({"pass": epoch + 1, "updates": self.n_batch_iter_ - 1,
                         "seconds": time.perf_counter() - self._fit_start[0],
                         "topics": lambda: self.components_.copy()})
            if evaluated:
                if last is not None and abs(last - self.bound_) < self.perp_tol:
                    break
                last = self.bound_
        if self.evaluate_every > 0 and not evaluated:  # the final topics were not scored yet
            self.bound_ = self._training_perplexity(X)
        return epoch + 1

    def _batch_step(self, X, callback=None):
        """One step of full-batch variational EM (``learning_method='batch'``): the E-step of
        every document against the current topics, then scikit-learn's replacement
        ``components_ = topic_word_prior + sufficient statistics`` (an online step with rho = 1)."""
        tic = time.perf_counter()
        self.n_threads_ = self._threads_now()
        _, sstats = evaluation.infer_doc_topics(
            self.components_, X, self.doc_topic_prior_, max_iter=self.max_doc_update_iter,
            tol=self.mean_change_tol, n_threads=self.n_threads_, seed=int(self._rng_.randint(0, 2**31 - 1)),
            sufficient_statistics=True)
        self.components_ = self.topic_word_prior_ + sstats
        self.n_batch_iter_ += 1
        if callback is not None:
            callback(X.shape[0], time.perf_counter() - tic)

    def _training_perplexity(self, X):
        """Perplexity of the training documents X under the current topics (``evaluate_every``)."""
        return evaluation.perplexity(self.components_, X, self.doc_topic_prior_, self.topic_word_prior_,
                                     max_iter=self.max_doc_update_iter, tol=self.mean_change_tol,
                                     n_threads=self._threads_now())

    @ends_job_on_error
    def partial_fit(self, X, y=None) -> LatentDirichletAllocation:
        """One online update of the topics with the minibatches of X (scaled by ``total_samples``),
        whatever ``learning_method`` is (as in scikit-learn).

        Returns
        -------
        self
        """
        first = not hasattr(self, "components_")
        self._validate_params()
        self._fit_start = None
        X = self._check_X(X, reset=first)
        if first:
            self._init_topics(X.shape[1])
        self._run(X, self._order(X.shape[0]), float(self.total_samples))
        self._finish()
        return self

    # -------------------------------------------------------------- inference
    def _unnormalized_transform(self, X):
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return evaluation.infer_doc_topics(
            self.components_, X, self.doc_topic_prior_, max_iter=self.max_doc_update_iter,
            tol=self.mean_change_tol, n_threads=self._threads_now())

    def transform(self, X) -> np.ndarray:
        """Document-topic distributions, shape (n_samples, n_components), rows sum to 1."""
        gamma = self._unnormalized_transform(X)
        return gamma / gamma.sum(axis=1, keepdims=True)

    def score(self, X, y=None) -> float:
        """Approximate log-likelihood (the variational bound, nats) of X, as scikit-learn defines it."""
        gamma = self._unnormalized_transform(X)
        X = sp.csr_matrix(X, dtype=np.float64)
        return evaluation.approx_bound(self.components_, X, gamma, self.doc_topic_prior_, self.topic_word_prior_)

    def perplexity(self, X) -> float:
        """Perplexity of X, base e: exp(-bound / number of tokens), as scikit-learn computes it."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return evaluation.perplexity(self.components_, X, self.doc_topic_prior_, self.topic_word_prior_,
                                     max_iter=self.max_doc_update_iter, tol=self.mean_change_tol,
                                     n_threads=self._threads_now())

    def heldout_log_likelihood(self, X, seed: int = 0) -> float:
        """Per-word predictive log-likelihood by document completion (nats, higher is better).

        See :func:`dpsgd.evaluation.heldout_log_likelihood`.
        """
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        return evaluation.heldout_log_likelihood(
            self.components_, X, self.doc_topic_prior_, seed=seed,
            n_threads=self._threads_now(),
            max_iter=self.max_doc_update_iter, tol=self.mean_change_tol)

    def show_topics(self, vocabulary=None, n_words: int = 10) -> list[list[str]]:
        """The ``n_words`` most probable words of each topic, as lists of strings.

        Parameters
        ----------
        vocabulary : sequence of str, optional
            The word of each column of X. Default: the model's ``vocabulary_`` where it
            has one (``dpsgd train lda --vocab`` sets it and :func:`dpsgd.save_model`
            keeps it), otherwise the word ids, as strings.
        n_words : int, default=10

        Returns
        -------
        list of n_components lists of n_words str, the most probable word first
        """
        check_is_fitted(self)
        check_number("n_words", n_words, low=1, integer=True)
        V = self.components_.shape[1]
        source = "vocabulary"
        if vocabulary is None and getattr(self, "vocabulary_", None) is not None:
            vocabulary, source = self.vocabulary_, "the model's vocabulary_"
        if vocabulary is not None and len(vocabulary) != V:
            raise ValueError(f"{source} has {len(vocabulary)} words, the model {V}")
        top = np.argsort(-self.components_, axis=1)[:, :n_words]
        if vocabulary is None:
            return [[str(w) for w in row] for row in top]
        return [[vocabulary[w] for w in row] for row in top]

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_is_fitted__(self):
        return hasattr(self, "components_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


def _mark_duplicates(unit, mass, weak):
    """Mark in ``weak`` the lighter topic of each pair with cosine > 0.6 (rows of ``unit``,
    unit-norm) of which neither is weak yet, taking the pairs (i < j) by i, then j.

    A block of rows is compared at a time with the later topics not weak yet (a topic once
    weak stays so), so the memory is about 32 MB of cosines whatever K, never the K x K
    matrix (K = 100,000 would need 75 GiB), and topics found duplicate cost no more."""
    K = unit.shape[0]
    start = 0
    while start < K:
        later = np.flatnonzero(~weak[start + 1:]) + start + 1
        stop = min(K, start + max(1, 2**22 // max(later.size, 1)))
        rows = np.arange(start, stop)
        rows = rows[~weak[rows]]
        cosine = unit[rows] @ unit[later].T
        for r, i in enumerate(rows):
            if weak[i]:
                continue
            partners = later[cosine[r] > 0.6]
            partners = partners[(partners > i) & ~weak[partners]]
            heavier = np.flatnonzero(mass[partners] > mass[i])
            # the pairs before the first heavier partner lose their partner; that one, i
            cut = heavier[0] if heavier.size else partners.size
            weak[partners[:cut]] = True
            weak[i] = heavier.size > 0
        start = stop
