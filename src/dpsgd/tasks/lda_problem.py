"""LDA's problem for the engine: chunks of minibatches in one process, one minibatch a round
across ranks.

The parameters are lambda word-major, V rows of K, then one row of its column sums
(:mod:`dpsgd.tasks.lda_state`).

In one process the in-process exchange lends them in place, in the true form, and a round
is a chunk: several minibatches in one kernel call, which scales lambda lazily inside the
chunk itself (``parallel``: the threads share each minibatch, or take whole minibatches
Hogwild!). The pass ends do what only one process can: ``reseed_topics``,
``evaluate_every`` / ``perp_tol`` and ``learning_method='batch'`` (a round is then one
full-batch step).

Across ranks (DPSVI) the exchange holds the scaled form (:class:`ScaledTopics`) and a round
is one minibatch: the engine reserves the index j of its global step (a ticket), pulls the
rows of its words and the sums (the whole matrix where the exchange would move that many rows
whole anyway), the kernel runs the E-step and the M-step on their true form, and the step's
own term is pushed on those rows. With ``reseed_topics`` one rank
(the first that has documents) re-seeds the global topics at the end of each of its first
``max_iter // 2`` passes; its round pushes the correction with its step, while the other
ranks go on.
"""

import time

import numpy as np

from dpsgd import evaluation
from dpsgd._kernels import svi as _svi
from dpsgd._kernels.rng import permutation
from dpsgd.engine import Dense, Problem, Round, Rows, shared_rounds
from dpsgd.tasks.lda_state import ScaledTopics, reseed_dead_topics, step_sizes, topics_view, word_major

PARALLEL_MODES = {"batch": _svi.Mode.BATCH, "hogwild": _svi.Mode.HOGWILD}


class LdaProblem(Problem):
    """Online variational Bayes of the estimator ``est`` on this process's documents ``X``.

    Parameters
    ----------
    est : dpsgd.tasks.lda.LatentDirichletAllocation
        Its settings, its topics ``components_`` (the start), its step count
        ``n_batch_iter_`` (the first step's index) and its random state ``_rng_`` (drawn
        from as the fits before the engine drew, so one thread and one process with a seed
        give the same topics).
    X : CSR matrix
        This process's (rank's) documents.
    topology : dpsgd.comm.topology.Topology
        Only for this rank's seed and number; the problem issues no collectives.
    n_threads : int
        Threads, already resolved.
    passes : int
        Passes over ``X``.
    total_samples : float
        D, that a minibatch's statistics are scaled by (every rank's documents).
    docs_of_ranks : list of int, optional
        Every rank's number of documents, for the most global steps a distributed run can
        take (the scaled form's table); default: this process's only.
    fitting : bool, default=True
        ``fit`` (the pass ends re-seed, evaluate and print as ``est`` says); False for
        ``partial_fit`` (online steps only).

    Attributes
    ----------
    passes_run : int
        Passes this process began (the pass a budget cut short counts, as scikit-learn's
        ``n_iter_`` counts passes over the data).
    reseeded : int
        Topics this process re-seeded.
    bound : float or None
        The last training perplexity evaluated (``evaluate_every``), and ``scored``: whether
        it scores the final topics.
    """

    # one process runs on the estimator's own topics (word_major): the fit holds them once
    runs_on_initial = True

    def __init__(self, est, X, *, topology, n_threads, passes, total_samples, docs_of_ranks=None, fitting=True):
        self.est, self.X, self.topology = est, X, topology
        self.K, self.V = est.components_.shape
        self.size, self.row_size = (self.V + 1) * self.K, self.K
        self.n_threads, self.passes, self.total_samples = n_threads, passes, total_samples
        self.docs_of_ranks = [X.shape[0]] if docs_of_ranks is None else list(docs_of_ranks)
        self.fitting = fitting
        self.alpha, self.eta = est.doc_topic_prior_, est.topic_word_prior_
        self.rng = est._rng_
        self.step = est.n_batch_iter_  # the next global step's index (one process)
        self.full_batch = fitting and est.learning_method == "batch"
        self.reseed_passes = est.max_iter // 2 if fitting and est.reseed_topics else 0
        self.passes_run = self.reseeded = 0
        self.bound, self.scored, self._last_bound = None, False, None

    def initial(self):
        self.params = word_major(self.est.components_)  # est.components_'s own buffer where it is one
        return self.params

    def _views(self, params):
        """lambda (V, K) and its column sums (K,), views of the flat parameters."""
        VK = self.V * self.K
        return params[:VK].reshape(self.V, self.K), params[VK:]

    def model(self, params, version):
        # the run's end (or a callback's look): the kernel's scratch goes first (the next
        # round, if any, grows a new one)
        self.scratch = _svi.Scratch()
        if self.in_place:  # the buffer the fit ran on (runs_on_initial), or a callback's snapshot
            return {"components_": topics_view(params, self.K)}
        return {"components_": self.state.topics(params, version)}

    def _order(self):
        """This pass's order of the documents (a fresh permutation with ``shuffle``)."""
        n = self.X.shape[0]
        if not self.est.shuffle:
            return np.arange(n, dtype=np.int64)
        return permutation(n, int(self.rng.randint(0, 2**31 - 1)))

    def _minibatches(self, n_docs):
        return -(-n_docs // self.est.batch_size) if n_docs else 0

    # ------------------------------------------------------------------ plan
    def plan(self, exchange):
        self.in_place, self.exchange = exchange.in_place, exchange
        self.scratch = _svi.Scratch()  # the kernel's, grown to the largest minibatch
        # the kernel's index types, once (scipy's indptr is often int32)
        self.indices = self.X.indices.astype(np.int32, copy=False)
        self.indptr = self.X.indptr.astype(np.int64, copy=False)
        if self.in_place:
            self.uses_ticket = False
            if self.full_batch:
                self.per_pass = 1
            else:
                self.chunks = self._chunks(self.X.shape[0])
                self.per_pass = len(self.chunks)
            return self.passes * self.per_pass
        return self._plan_minibatches(exchange)

    def _chunks(self, n_docs):
        """Minibatch boundaries of one pass, grouped into chunks (one kernel call, one round each).

        A chunk gives every thread several minibatches (the hogwild threads wait
        for each other only at a chunk's end) and is at most 1/50 of the pass, so
        the progress is reported often."""
        starts = np.arange(0, n_docs, self.est.batch_size)
        bounds = np.append(starts, n_docs)
        per_chunk = max(8 * self.n_threads, -(-len(starts) // 50))
        return [bounds[i:i + per_chunk + 1] for i in range(0, len(starts), per_chunk)]

    def _plan_minibatches(self, exchange):
        est, X, K, V = self.est, self.X, self.K, self.V
        self.uses_ticket = True
        rounds = [self.passes * self._minibatches(n) for n in self.docs_of_ranks]
        # the global steps: one per push of any rank (server), one per averaged round (allreduce)
        steps = max(rounds) if exchange.synchronous else sum(rounds)
        # asynchronous ranks share them (Problem.global_steps): a rank whose documents take
        # longer (AP's two halves: their E-steps about 15% apart) runs fewer, so none waits at
        # the end; a fit of 2 passes or more, so every rank still runs one of its own at least
        self.global_steps = steps if not exchange.synchronous and self.fitting and self.passes >= 2 else None
        self.steps_per_pass = sum(self._minibatches(n) for n in self.docs_of_ranks)
        if self.global_steps is not None:  # the tickets a rank below its fewest rounds draws past them
            steps = sum(shared_rounds(n)[1] for n in rounds)
        self.state = ScaledTopics(V, K, self.eta, step_sizes(
            est.n_batch_iter_ + np.arange(steps + 1), est.learning_offset, est.learning_decay))
        self.per_pass = self._minibatches(X.shape[0])
        self.seed = self.topology.seed(int(self.rng.randint(0, 2**31 - 1)))
        # the first rank with documents re-seeds (a rank 0 that only hosts runs no rounds)
        self.reseeder = next((r for r, n in enumerate(self.docs_of_ranks) if n), -1) == self.topology.rank
        self.local = np.zeros(V, dtype=np.int32)  # a word's row among its minibatch's (batch_words)
        self.whole = False  # this round pulls and pushes the whole matrix (rows)
        self.whole_term = None  # the term of such rounds, kept
        return rounds[self.topology.rank]

    # ------------------------------------------------------------------ rounds
    def local_steps(self, work, r, version, ticket):
        """Round ``r``: a chunk or a full-batch step on the live topics (one process), or
        global step ``ticket`` on the pulled rows (ranks); the pass's end after its last."""
        pass_, i = divmod(r, self.per_pass)
        if i == 0:
            self.pass_start, self.pass_docs = time.perf_counter(), 0
        self.passes_run, self.scored = pass_ + 1, False
        if not self.in_place:
            result = self._minibatch(work, version, ticket)
        elif self.full_batch:
            result = self._full_batch_step(work)
        else:
            result = self._chunk(work, i)
        self.pass_docs += result.samples
        # t: the schedule's next global step, as the estimator's n_batch_iter_ counts it
        t = self.step if self.in_place else self.est.n_batch_iter_ + ticket + 1
        result.report.update({"pass": pass_ + 1, "t": t})
        if i == self.per_pass - 1:
            if self.global_steps is not None:  # the run's passes over every rank's documents so far
                result.report["run_passes"] = (ticket + 1) / self.steps_per_pass
            self._end_pass(work, pass_, result)
        return result

    # ------------------------------------------------------ one process: chunks
    def _chunk(self, params, i):
        """Chunk ``i`` of the pass on the live topics (true form, in place)."""
        est, X, K = self.est, self.X, self.K
        lam, lam_sum = self._views(params)
        if i == 0:
            self.order = self._order()
            self.pass_seed = int(self.rng.randint(0, 2**31 - 1))
            # sums afresh each pass: the kernel updates them incrementally, and rounding
            # would drift over many passes (re-seeding also changes lambda)
            lam_sum[:] = lam.sum(axis=0)
        chunk = self.chunks[i]
        sizes = np.diff(chunk)
        rho = step_sizes(self.step + np.arange(sizes.size), est.learning_offset, est.learning_decay)
        scale = np.concatenate(([1.0], np.cumprod(1.0 - rho)))
        done, _, status = _svi.svi_run(
            X.data, self.indices, self.indptr, self.order[chunk[0]:chunk[-1]], (chunk - chunk[0]).astype(np.int64),
            lam, lam_sum, np.zeros((0, K)), scale, rho, self.total_samples / sizes, self.scratch,
            mode=int(PARALLEL_MODES[est.parallel]), alpha=self.alpha, eta=self.eta,
            max_iter=est.max_doc_update_iter, tol=est.mean_change_tol, seed=self.pass_seed,
            n_threads=self.n_threads)
        # a non-finite value added to lambda is added to its column sums too
        if status != 0 or not np.all(np.isfinite(lam_sum)):
            raise FloatingPointError("the variational updates produced a non-finite value; check the counts")
        self.step += int(done)
        return Round(updates=int(done), samples=int(sizes.sum()))

    def _full_batch_step(self, params):
        """One step of full-batch variational EM (``learning_method='batch'``): the E-step of
        every document against the current topics, then scikit-learn's replacement
        ``components_ = topic_word_prior + sufficient statistics`` (an online step with rho = 1)."""
        est = self.est
        lam, lam_sum = self._views(params)
        _, sstats = evaluation.infer_doc_topics(
            np.ascontiguousarray(lam.T), self.X, self.alpha, max_iter=est.max_doc_update_iter,
            tol=est.mean_change_tol, n_threads=self.n_threads, seed=int(self.rng.randint(0, 2**31 - 1)),
            sufficient_statistics=True)
        lam[...] = (self.eta + sstats).T
        lam_sum[:] = lam.sum(axis=0)
        self.step += 1
        return Round(updates=1, samples=self.X.shape[0])

    # --------------------------------------------------- across ranks: minibatches
    def rows(self, r):
        """The words of round ``r``'s minibatch, then row V (the sums); None (every row) in one
        process, or where the exchange would move that many rows as the whole matrix anyway."""
        if self.in_place:
            return None
        i = r % self.per_pass
        if i == 0:
            self.order = self._order()
        start = i * self.est.batch_size
        self.docs = self.order[start:start + self.est.batch_size]
        # sorted, with each word's row among them in self.local (for the kernel)
        self.words = _svi.batch_words(self.indices, self.indptr, self.docs, self.local)
        # on one machine the server moves a quarter of the rows or more as the whole matrix
        # (dpsgd.comm.server): the kernel then reads and writes the rows where they lie
        self.whole = self.exchange.rows_move_whole(self.words.size + 1)
        return None if self.whole else np.append(self.words, self.V)

    def working(self, pulled, version):
        return pulled  # the kernel reads the scaled rows as they are (svi_step)

    def _minibatch(self, pulled, version, j):
        """Global step ``j``: the kernel's E-step on the minibatch's rows ``pulled`` (scaled,
        read at ``version``: its words' rows, then the sums; or every row, ``self.whole``) and
        the step's own term, which is this round's change."""
        est, state = self.est, self.state
        if self.whole:  # every row pulled: the term too, kept (AP: 0.8-4 MB) and zeroed each round
            pulled = pulled.reshape(self.V + 1, self.K)
            if self.whole_term is None:
                self.whole_term = np.zeros_like(pulled)
            else:
                self.whole_term.fill(0.0)
            self.term = self.whole_term
        else:
            self.term = np.zeros_like(pulled)
        _, status = _svi.svi_step(
            self.X.data, self.indices, self.indptr, self.docs, self.local, pulled, state.scale_at(version),
            state.scale_at(j + 1), state.rho[j], self.total_samples / self.docs.size, self.V, self.term,
            self.scratch, alpha=self.alpha, eta=self.eta, max_iter=est.max_doc_update_iter,
            tol=est.mean_change_tol, seed=self.seed + j, n_threads=self.n_threads,
            words=self.words if self.whole else None)
        if status != 0:
            raise FloatingPointError("the variational updates produced a non-finite value")
        self.correction = None
        return Round(updates=1, samples=self.docs.size)

    def change(self, work, pulled, version, ticket, rows):
        """The step's term on its rows, or the whole matrix where the round pulled it whole
        (:meth:`rows`). On one machine the server moves rows that are more than a quarter of
        the matrix as the whole matrix (:mod:`dpsgd.comm.server`): for LDA that took 2 ranks
        from 10-11% of the time communicating to 6-9%, as shorter transfers hold the window's
        lock for less time."""
        if self.correction is None:
            return Dense(self.term.ravel()) if self.whole else Rows(rows, self.term)
        flat = self.correction  # a re-seeding round: the whole matrix moves
        if self.whole:
            flat += self.term.ravel()
        else:
            flat.reshape(self.V + 1, self.K)[rows] += self.term
        return Dense(flat)

    # ------------------------------------------------------------- pass ends
    def _end_pass(self, work, pass_, result):
        """Re-seed, evaluate (one process), print, and decide whether to stop."""
        est = self.est
        reseeding = pass_ < self.reseed_passes
        reseeded = 0
        reseeding = reseeding and (self.in_place or self.reseeder)
        if reseeding and self.in_place:
            lam, lam_sum = self._views(work)
            reseeded = reseed_dead_topics(topics_view(work, self.K), self.eta, self.rng)
            lam_sum[:] = lam.sum(axis=0)
        elif reseeding:
            reseeded = self._reseed_global()
        self.reseeded += reseeded
        evaluated = self.fitting and est.evaluate_every > 0 and (pass_ + 1) % est.evaluate_every == 0
        if evaluated:  # one process only (the estimator refuses it across ranks)
            self.bound = evaluation.perplexity(
                topics_view(work, self.K), self.X, self.alpha, self.eta,
                max_iter=est.max_doc_update_iter, tol=est.mean_change_tol, n_threads=self.n_threads)
            self.scored = True
            result.report["perplexity"] = self.bound
        if reseeding:
            result.report["reseeded"] = reseeded
        result.end_of_pass = True
        if self.fitting and est.verbose and self.topology.is_root:
            seconds = time.perf_counter() - self.pass_start
            # ranks that share the steps run as many passes of their own documents as their speed allows
            of = f"/{est.max_iter}" if self.global_steps is None else f" of this rank's documents (run: {est.max_iter})"
            print(f"pass {pass_ + 1}{of}: {self.pass_docs / seconds:.0f} documents/s"
                  + (f", {reseeded} topic(s) re-seeded" if est.reseed_topics else "")
                  + (f", perplexity {self.bound:.4f} (training documents, base e)" if evaluated else ""))
        if evaluated:
            result.stop = self._last_bound is not None and abs(self._last_bound - self.bound) < est.perp_tol
            self._last_bound = self.bound

    def passes_over_data(self, steps):
        """Passes the run made (``n_iter_``): this process's, or where the ranks share the
        steps (:attr:`global_steps`) those over every rank's documents that its ``steps``
        global steps make, a pass cut short by a budget counted."""
        if self.global_steps is None:
            return self.passes_run
        return min(self.passes, -(-steps // max(self.steps_per_pass, 1)))

    def _reseed_global(self):
        """Re-seed the global topics (this rank's pass end): pull them, split the heaviest into
        the dead, and keep the correction for this round's push, with its step."""
        flat, version = self.exchange.pull()
        topics = self.state.topics(flat, version)
        before = topics.copy()
        reseeded = reseed_dead_topics(topics, self.eta, self.rng)
        if reseeded:
            self.correction = self.state.correction(topics - before, version)
        return reseeded
