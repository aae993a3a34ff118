"""Latent Dirichlet allocation by stochastic variational inference on shared-memory threads (DPSVI).

``LatentDirichletAllocation`` follows scikit-learn's LDA: the same
parameters, the same variational updates, the same attributes. The E-steps
and global steps run in ``dpsgd._kernels.svi`` without the GIL. Online
learning (the default) runs in one of two ways (``parallel``): "batch" threads
share each minibatch, one global step per minibatch; "hogwild" threads take
whole minibatches and apply their own global steps to the one shared topic
matrix without locks. ``learning_method="batch"`` is scikit-learn's full-batch
variational EM: one step per pass, the E-step of every document on the threads.

The estimator validates and prepares; the training runs in :func:`dpsgd.engine.run`,
in one process as across the ranks of ``comm``, on the problem of
:mod:`dpsgd.tasks.lda_problem` (the topics' arithmetic: :mod:`dpsgd.tasks.lda_state`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from dpsgd import engine, evaluation, persist
from dpsgd._threads import effective_n_threads
from dpsgd._validation import check_choice, check_number
from dpsgd.comm import Topology, check_exchange
from dpsgd.comm.network import make_network
from dpsgd.comm.failure import ends_job_on_error
from dpsgd.tasks.lda_problem import PARALLEL_MODES, LdaProblem
from dpsgd.tasks.lda_state import topics_view

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
        use ``max_seconds``, ``max_updates`` or a ``callback``).
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
        Threads (see :func:`dpsgd.effective_n_threads`); never more than the cores, which
        the ranks on one machine share.
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
        bench/lda_quality.py. With ``comm``, the first rank that has documents
        re-seeds the global topics at the end of its passes while the others go
        on; only with ``exchange='server'`` (elsewhere the correction would be
        averaged over the ranks, so divided).
    random_state : int, RandomState or None
        Seeds the initial topics, the order and the E-steps' starting points.
    verbose : int, default=0
        Print a line per pass (with the training perplexity when evaluated; with
        ``comm``, rank 0's passes).
    comm : mpi4py.MPI.Comm, optional
        DPSVI across the ranks of ``comm``: each rank passes its own documents to
        ``fit`` and runs ``n_threads`` threads on its minibatches, one global step a
        round (see :mod:`dpsgd.tasks.lda_problem`). ``total_samples`` is the whole
        corpus. A rank may pass no documents (it then only takes part in the exchange:
        with the server, rank 0 hosts the window). Every rank ends with the same topics.
        With an asynchronous exchange the ranks share the global steps of ``max_iter``
        passes over all their documents, each drawing the next until they are spent, so a
        rank whose documents take longer runs fewer of them and none waits at the end
        (between 3/4 and 5/4 of its own passes: ``n_iter_``).
    exchange : {'server', 'allreduce', 'gossip', 'async_gossip'}, default='server'
        How the ranks of ``comm`` share the topics. 'server': DPSGD's asynchronous
        parameter server on an MPI one-sided window; each rank adds its global steps to
        the one topic matrix without waiting for the others, and a step moves only the
        rows of its minibatch's words. 'allreduce': synchronous averaging; every round
        the ranks average their steps (one global step on the union of their
        minibatches). 'gossip': D-PSGD (:mod:`dpsgd.comm.gossip`); every round each rank
        takes its step on its own topics, then averages them with its neighbours'
        in an exponential graph; the ranks' average at the end is the model.
        'async_gossip': AD-PSGD, each rank averages its topics with one neighbour's at a
        time, without waiting (:mod:`dpsgd.comm.async_gossip`).
        Ignored without ``comm``.
    warm_start : bool, default=False
        ``fit`` continues from the fitted ``components_`` and step count (e.g. a
        model from :func:`dpsgd.load_model`, or a checkpoint) instead of starting afresh.
    max_seconds : float, optional
        Stop ``fit`` after about this many seconds (> 0; checked before every chunk of
        minibatches; with ``comm`` before every minibatch, and all ranks stop together).
    max_updates : int, optional
        Stop ``fit`` after about this many global steps (minibatches), over all ranks.
    network : str, dict or dpsgd.comm.network.Network, optional
        With ``comm``: run as over a cluster's network (latency, bandwidth, a straggler;
        ``"10GbE"``, ``"1GbE"`` or the fields of :class:`dpsgd.comm.network.Network`);
        ``round_stats_`` records the seconds it added. None: the exchange as it is.
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
    components_ : ndarray (n_components, n_features)
        Variational parameters lambda of the topic-word distributions. In one process they
        are a Fortran-ordered view of the word-major buffer the kernels run on, and ``fit``
        (``warm_start``) and ``partial_fit`` update them in place, as scikit-learn's
        estimator does: a fit holds the topics once.
    exp_dirichlet_component_ : ndarray (n_components, n_features)
        exp(E[log beta]), computed from ``components_`` when read (kept, it would double the
        fitted model's memory).
    n_batch_iter_ : int
        Global steps taken (the step-size schedule's index), plus one. With
        ``exchange='allreduce'`` a step is a round of averaged minibatches.
    n_iter_ : int
        Passes run by ``fit`` over the documents (a pass that a budget cut short counts).
        With ``comm`` and an asynchronous exchange (``max_iter`` >= 2), over every rank's
        documents: the ranks share the global steps of ``max_iter`` such passes, and a rank
        whose documents take longer runs fewer of them, so the ranks end together; a rank's
        own passes (its pass ends, the callback's ``pass``) are then between 3/4 and 5/4 of
        ``max_iter``. Otherwise with ``comm``, this rank's passes.
    n_reseeded_ : int
        Topics re-seeded by the last ``fit`` (see ``reseed_topics``); with ``comm``, counted
        on the rank that re-seeds.
    round_stats_ : dict
        This process's (rank's) rounds: pushes, delay mean / p99 / max / histogram (global
        steps by others between its pull and its push; 0 in one process), the seconds and
        share of its time spent communicating.
    n_threads_ : int
        Threads used by the last call.
    bound_ : float
        With ``evaluate_every > 0``: the training documents' perplexity after ``fit``
        (scikit-learn's name and meaning; base e).
    doc_topic_prior_, topic_word_prior_ : float
    n_features_in_ : int

    Examples
    --------
    >>> from dpsgd import LatentDirichletAllocation
    >>> from dpsgd.data import make_lda_corpus
    >>> X, _, _ = make_lda_corpus(n_docs=1000, n_words=200, n_topics=5, random_state=0)
    >>> lda = LatentDirichletAllocation(n_components=5, max_iter=2, n_threads=1, random_state=0)
    >>> doc_topics = lda.fit(X[:900]).transform(X[900:])
    >>> doc_topics.shape, lda.components_.shape
    ((100, 5), (5, 200))
    >>> bool(lda.heldout_log_likelihood(X[900:]) < 0)  # nats per word
    True
    """

    _saved_state = persist.SavedState(arrays=("components_",), optional=("vocabulary_",),
                                      scalars=("n_features_in_", "n_batch_iter_", "doc_topic_prior_",
                                               "topic_word_prior_"))

    def __init__(self, n_components=10, *, doc_topic_prior=None, topic_word_prior=None,
                 learning_method="online", learning_decay=0.7, learning_offset=10.0, max_iter=10,
                 batch_size=128, evaluate_every=-1, total_samples=1e6, perp_tol=1e-1,
                 max_doc_update_iter=100, mean_change_tol=1e-3, n_threads=None, n_jobs=None,
                 parallel="batch", shuffle=True, reseed_topics=False, random_state=None, verbose=0,
                 comm=None, exchange="server", warm_start=False, max_seconds=None, max_updates=None,
                 network=None, compression=None, gossip_graph="exponential"):
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
        self.exchange = exchange
        self.warm_start = warm_start
        self.max_seconds = max_seconds
        self.max_updates = max_updates
        self.network = network
        self.compression = compression
        self.gossip_graph = gossip_graph

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
        check_exchange(self.exchange, self.compression, self.gossip_graph)
        make_network(self.network)
        check_number("evaluate_every", self.evaluate_every, integer=True)
        check_number("perp_tol", self.perp_tol, low=0.0)
        check_number("max_seconds", self.max_seconds, low=0.0, low_open=True, allow_none=True)
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
                             "would not stop together; use max_seconds, max_updates or a callback")
        if self.comm is not None and self.exchange != "server" and self.reseed_topics:
            raise ValueError(f"reseed_topics cannot be used with exchange={self.exchange!r}: the re-seeding "
                             "rank's correction would be averaged with the other ranks' steps, so divided "
                             "by their number; use exchange='server'")
        self.doc_topic_prior_ = 1.0 / self.n_components if self.doc_topic_prior is None else float(self.doc_topic_prior)
        self.topic_word_prior_ = (1.0 / self.n_components if self.topic_word_prior is None
                                  else float(self.topic_word_prior))

    def _requested_threads(self):
        """``n_threads``, or scikit-learn's ``n_jobs`` (threads here) when only it is set."""
        if self.n_jobs is not None and self.n_threads is not None and self.n_jobs != self.n_threads:
            raise ValueError(f"n_jobs={self.n_jobs!r} and n_threads={self.n_threads!r} disagree: both set the "
                             "number of threads here (n_jobs is scikit-learn's name); set one of them")
        return self.n_threads if self.n_threads is not None else self.n_jobs

    def _threads_now(self):
        """Threads for inference in this process: the requested count, never more than the cores."""
        return Topology().threads(self._requested_threads())  # this process alone: no collective

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
        # scikit-learn's start, Gamma(100, 1/100) entries, drawn a topic at a time (the same
        # numbers as one (K, V) draw) into the buffer the fit runs on (lda_state.word_major)
        topics = topics_view(np.empty((n_features + 1) * self.n_components), self.n_components)
        for k in range(self.n_components):
            topics[k] = self._rng_.gamma(100.0, 0.01, n_features)
        self.components_ = topics
        self.n_batch_iter_ = 1

    def _train(self, problem, topology, **run):
        """Run ``problem`` on the engine and take the fitted attributes from its result."""
        try:
            result = engine.run(problem, topology, **run)
        except BaseException:
            # in one process the rounds wrote the topics in place: a fit stopped by Ctrl-C (or
            # an error) keeps them as they are and counts their steps, so that warm_start or
            # partial_fit continue the schedule where it stopped
            if getattr(problem, "in_place", False):
                self.components_ = topics_view(problem.params, self.n_components)
                self.n_batch_iter_ = problem.step
            raise
        self.components_ = result.model["components_"]
        # the schedule's steps: in one process the minibatches; across ranks the pushes
        # (server: one minibatch each) or the averaged rounds (allreduce)
        self.n_batch_iter_ += result.version if topology.distributed else result.updates
        self.round_stats_ = result.stats.summary()
        return result

    @property
    def exp_dirichlet_component_(self):
        check_is_fitted(self)
        return evaluation.exp_dirichlet_expectation(self.components_)

    @ends_job_on_error
    def fit(self, X, y=None, callback=None) -> LatentDirichletAllocation:
        """Learn the topics with up to ``max_iter`` passes of online variational Bayes (or of
        full-batch variational EM, ``learning_method='batch'``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Document-word counts (any scipy sparse format, or dense). With ``comm``,
            this rank's documents.
        y : ignored
        callback : callable, optional
            ``callback(info)`` after every round of this process (rank): a chunk of
            minibatches in one process (one full-batch step with
            ``learning_method='batch'``), a minibatch with ``comm``; the other ranks go
            on meanwhile. ``info`` (see :func:`dpsgd.engine.loop.round_info`) has
            ``round``, ``pass``, ``samples`` (documents of this round), ``seconds`` (since
            the rounds began), ``t`` (the schedule's next global step) and ``end_of_pass``;
            at the end of a pass also ``updates`` (minibatches so far, over every rank) and
            ``model()``, which returns
            ``{"components_": the current global (K, V) topics}``, this rank's delay
            statistics (``pushes``, ``delay_mean``, ``delay_p99``, ``delay_max``,
            ``delay_histogram``, ``comm_seconds``, ``comm_share``), and ``perplexity``
            (evaluated passes) and ``reseeded`` (re-seeding passes).

        Returns
        -------
        self
        """
        self._validate_params()
        topology = Topology(self.comm)
        warm = self.warm_start and hasattr(self, "components_")
        # with comm a rank may bring no documents: it then only takes part in the exchange
        X = self._check_X(X, reset=not warm, allow_empty=topology.distributed)
        # one collective: every rank's documents (the global steps a run can take, D) and words
        counts = topology.everyone((X.shape[0], X.nnz))
        if sum(nnz for _, nnz in counts) == 0:
            raise ValueError("the corpus has no words: every document is empty")
        if warm:
            if self.components_.shape != (self.n_components, X.shape[1]):
                raise ValueError(f"warm_start: the fitted topics are {self.components_.shape}, "
                                 f"this fit needs ({self.n_components}, {X.shape[1]})")
            self._rng_ = getattr(self, "_rng_", None) or check_random_state(self.random_state)
        else:
            self._init_topics(X.shape[1])
        if hasattr(self, "bound_"):
            del self.bound_  # a previous fit's: this one sets its own or none
        self.n_threads_ = topology.threads(self._requested_threads())
        docs = [n for n, _ in counts]
        problem = LdaProblem(self, X, topology=topology, n_threads=self.n_threads_, passes=self.max_iter,
                             total_samples=float(sum(docs)), docs_of_ranks=docs)
        result = self._train(problem, topology, exchange=self.exchange, max_updates=self.max_updates,
                             max_seconds=self.max_seconds, callback=callback, network=self.network,
                             compression=self.compression, graph=self.gossip_graph)
        self.n_iter_ = problem.passes_over_data(result.version)
        self.n_reseeded_ = problem.reseeded
        if self.evaluate_every > 0:  # the final topics' score, unless their pass was scored
            self.bound_ = problem.bound if problem.scored else self._training_perplexity(X)
        return self

    def _training_perplexity(self, X):
        """Perplexity of the training documents X under the current topics (``evaluate_every``)."""
        return evaluation.perplexity(self.components_, X, self.doc_topic_prior_, self.topic_word_prior_,
                                     max_iter=self.max_doc_update_iter, tol=self.mean_change_tol,
                                     n_threads=self._threads_now())

    @ends_job_on_error
    def partial_fit(self, X, y=None) -> LatentDirichletAllocation:
        """One online update of the topics with the minibatches of X (scaled by ``total_samples``),
        whatever ``learning_method`` is (as in scikit-learn); in this process, also with ``comm``.

        Returns
        -------
        self
        """
        first = not hasattr(self, "components_")
        self._validate_params()
        X = self._check_X(X, reset=first)
        if first:
            self._init_topics(X.shape[1])
        else:  # e.g. a model from load_model: a random state of its own
            self._rng_ = getattr(self, "_rng_", None) or check_random_state(self.random_state)
        topology = Topology()
        self.n_threads_ = topology.threads(self._requested_threads())
        problem = LdaProblem(self, X, topology=topology, n_threads=self.n_threads_, passes=1,
                             total_samples=float(self.total_samples), fitting=False)
        self._train(problem, topology)
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
