"""The linear models' problem for the engine: SGD epochs in one process, rounds of
``sync_every`` samples across ranks.

In one process (the in-process exchange lends the weights in place) a round is an epoch
over every training row, with what only one process can do: the thread probe, averaged SGD,
the L1 cumulative penalty, early stopping and the divergence checks that restore the last
finite weights. There one kernel call may run a block of epochs, whose rounds the engine
then collects one by one (_BaseSGD._BLOCK_SECONDS). Across ranks a round is ``sync_every``
of this rank's rows, Hogwild! on the rank's threads from the pulled weights; its change is
pushed (see :mod:`dpsgd.engine`).

The parameters are flat: the (n_features, outputs) weights row by row, then the intercepts.
"""

import time

import numpy as np

from dpsgd._kernels import sgd as _sgd
from dpsgd._kernels.rng import permutation
from dpsgd._threads import available_threads, runnable_elsewhere, running_other_threads, stop_idle_blas_threads
from dpsgd.engine import Dense, Problem, Round, Sparse

# A regressor's epoch whose mean loss exceeds this many times the mean loss of
# the zero model (at least 1) has exploded: the gradient clipping keeps such runs
# finite, so the non-finite check alone never fires (eta0=1e6 gave R^2 = -4e36).
# Legitimate runs stay within a few times the zero model's loss.
DIVERGENCE_FACTOR = 1e10
# 'adaptive' stops once its step falls below this (scikit-learn's bound)
ADAPTIVE_MIN_ETA = 1e-6


class DivergenceError(ValueError):
    """Raised when SGD produced a non-finite value; the model keeps its last finite state.

    :class:`dpsgd.SGDRegressor` also raises it when an epoch's loss explodes (more than 1e10
    times the zero model's). Import it from :mod:`dpsgd.tasks.linear`.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd import SGDRegressor
    >>> from dpsgd.tasks.linear import DivergenceError
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> try:
    ...     SGDRegressor(penalty=None, learning_rate="constant", eta0=1e6, tol=None,
    ...                  n_threads=1).fit(X, X.sum(axis=1))
    ... except DivergenceError:
    ...     print("diverged: lower eta0")
    diverged: lower eta0
    """


class LinearProblem(Problem):
    """SGD on (n, K) targets ``Y`` of the estimator ``est``.

    Parameters
    ----------
    est : dpsgd.tasks.linear._BaseSGD
        Its settings (tol, verbose, ...) and its step count ``t_``, which the rounds advance.
    X, Y, sample_weight : the kernel's CSR matrix, (n, K) targets and weights
    coef, intercept : (d, K) and (K,) initial weights
    max_iter : int
        Epochs (one process) or passes over this rank's rows (ranks).
    kernel : dict
        The kernel's loss, penalty and schedule arguments.
    n_threads : int
        Threads (already resolved and capped); with ``probe`` the fit may fall back to one.
    rows, scorer, avg, l1 : one process only: training rows (None: all), early stopping's
        validation scorer, averaged SGD's (avg_coef, avg_intercept), the L1 penalty's state.
    blocks : bool
        One process only: run several epochs in one kernel call where the fit allows it
        (_BaseSGD._BLOCK_SECONDS); False where something outside looks at every epoch (a
        callback, a time or update budget).
    """

    def __init__(self, est, X, Y, sample_weight, coef, intercept, max_iter, kernel, n_threads, seed, *,
                 probe=False, rows=None, scorer=None, avg=None, l1=False, explode_at=np.inf, blocks=False):
        self.est, self.X, self.Y, self.sw = est, X, np.ascontiguousarray(Y, dtype=np.float64), sample_weight
        self.d, self.K = coef.shape
        self.size = self.d * self.K + self.K
        self._initial = np.concatenate([coef.ravel(), intercept])
        self.max_iter, self.kernel, self.n_threads, self.seed = max_iter, kernel, n_threads, seed
        self.probe = {} if probe else None
        self.train_rows, self.scorer, self.avg, self.explode_at = rows, scorer, avg, explode_at
        self.q = np.zeros((self.d, self.K) if l1 else (0, 0))
        self.l1_state = np.zeros(1)
        self.blocks = blocks

    def initial(self):
        return self._initial

    def _views(self, params):
        return params[:self.d * self.K].reshape(self.d, self.K), params[self.d * self.K:]

    def model(self, params, version):
        coef, intercept = self._views(params)  # copies: params may be the live buffer
        return {"coef_": np.array(coef.T, order="C"), "intercept_": intercept.copy()}

    # ------------------------------------------------------------------ plan
    def plan(self, exchange):
        self.in_place, self.rank, self.synchronous = exchange.in_place, exchange.rank, exchange.synchronous
        self.sparse_share = exchange.sparse_share
        n = self.X.shape[0] if self.train_rows is None else self.train_rows.shape[0]
        self.n = n
        if self.in_place:
            return self._plan_epochs()
        self.H = self.est._round_length(n)
        self.rounds_per_pass = max(1, -(-n // self.H))
        self.tbuf = np.zeros((self.n_threads, _sgd.thread_buffer_stride(self.K, 0)))
        self.no_slot, self.no_feat = np.empty(0, np.int32), np.empty(0, np.int64)
        self.order, self.pass_loss = None, 0.0
        # a rank without rows (e.g. a master told not to work) only hosts and waits
        return self.max_iter * self.rounds_per_pass if n else 0

    def _plan_epochs(self):
        K, X = self.K, self.X
        hot_slot, hot_feat = self.est._hot_coordinates(X, self.n_threads, K)
        self.hot = hot_slot, hot_feat
        mean_nnz = max(int(X.indptr[-1]) / max(X.shape[0], 1), 1.0)
        per_sample = max(hot_feat.size, 1) / mean_nnz  # a merge's values a sample's (est._MERGE_COST)
        self.merge_every = 1 if self.n_threads == 1 else int(np.clip(np.ceil(self.est._MERGE_COST * per_sample), 4, 512))
        self.tbuf = np.zeros((self.n_threads, _sgd.thread_buffer_stride(K, hot_feat.size)))
        self.owned = self._owned_features(X, hot_feat.size)
        if self.owned:
            # no probe (_BaseSGD._PROBE_ONE_THREAD) for threads that own features: they share no
            # weight, which is what made Hogwild! threads lose in some states of the host, and
            # their waits are watched (_check_owners_wait); its three one-thread epochs only cost
            # (AP x 8, 10 epochs: the default 1.00-1.20x one thread where 2 threads gave 1.39-1.50x)
            self.probe = None
        self.pending = []  # the Rounds of a block's later epochs
        self.epoch_seconds = 0.0  # the last kernel call's, an epoch
        # a block's positions: its order, steps and scales take 24 bytes each (32 with L1)
        data_bytes = X.data.nbytes + X.indices.nbytes
        self.block_positions = self.est._BLOCK_MEMORY * data_bytes / (32 if self.q.size else 24)
        # while other threads of the process take cores (OpenBLAS's spin for ~0.1 s after a
        # call, unless they can be ended), epochs run on the cores left, for at most
        # est._BUSY_WAIT seconds
        self.blas_stopped = False
        self.busy_until = time.perf_counter() + self.est._BUSY_WAIT if self.n_threads > 1 else 0.0
        # epochs on fewer threads than planned (others' threads running, or the owners' pause)
        self.fewer_epochs = 0
        self.solo_calls, self.solo_next = 0, self.est._OWNED_RETRY[0]
        self.averaging = {} if self.avg is None else dict(avg_coef=self.avg[0], avg_intercept=self.avg[1],
                                                          average_start=float(self.est._average_start()))
        self.eta0 = self.kernel["eta0"]
        self.best = -np.inf if self.scorer else np.inf
        self.no_improvement = 0
        return self.max_iter

    def _owned_features(self, X, n_hot):
        """The kernel's ``row_split`` and ``delay`` when the threads own the features (see
        _BaseSGD._OWNED_MIN_WORK), else {} (Hogwild!)."""
        T, est = self.n_threads, self.est
        work = X.indptr[-1] / max(X.shape[0], 1) * self.K / T  # multiply-adds in a thread's part of a row
        if T == 1 or n_hot or work < est._OWNED_MIN_WORK:
            return {}
        bounds = _sgd.feature_bounds(X.indices[:X.indptr[-1]], self.d, T)
        # the estimators' X is canonical (as_kernel_csr): its rows are sorted
        split = _sgd.row_splits(X.indices, X.indptr, bounds, check=False)
        publish = 1 << int(np.clip(np.ceil(np.log2(est._OWNED_WORK / work)), 0, est._OWNED_MAX_PUBLISH))
        data = X.data[:X.indptr[-1]]
        self.row_sq = float(np.dot(data, data)) / max(X.shape[0], 1)  # the rows' mean squared norm
        return {"row_split": split, "delay": 4 * publish, "owner_bounds": bounds}

    def _owners_from(self, owned, t):
        """``owned`` (``_owned_features``) for a kernel call whose first step is ``t``: its delay
        the largest power of two from 4 up to the work's whose product with the step size at
        ``t`` and the rows' mean squared norm is at most _BaseSGD._OWNED_DELAY_STEP."""
        if not owned:
            return owned
        est = self.est
        eta = est._eta_at(t, self.eta0, self.kernel["optimal_init"])
        delay = owned["delay"]
        while delay > 4 and delay * eta * self.row_sq > est._OWNED_DELAY_STEP:
            delay //= 2
        return {**owned, "delay": delay}

    # ------------------------------------------------------------------ rounds
    def local_steps(self, params, r, version, ticket):
        if self.in_place:
            return self._epoch(params, r + 1)
        return self._round(params, r, version)

    def _round(self, params, r, version):
        """``sync_every`` of this rank's rows, Hogwild! on its threads from the pulled weights."""
        est, n, H = self.est, self.n, self.H
        pass_, j = divmod(r, self.rounds_per_pass)
        if j == 0:
            self.order = permutation(n, self.seed, pass_ + 1) if est.shuffle else np.arange(n, dtype=np.int64)
            self.pass_loss, self.pass_start = 0.0, time.perf_counter()
        rows = self.order[j * H:(j + 1) * H]
        coef, intercept = self._views(params)
        # the schedule follows the global number of samples: every push carried ~H
        sumloss, status, bad = _sgd.sgd_epoch(
            self.X.data, self.X.indices, self.X.indptr, self.Y, self.sw, rows, coef, intercept, np.zeros((0, 0)),
            np.zeros(1), self.no_slot, self.no_feat, self.tbuf, t_start=est.t_ + version * H,
            n_threads=self.n_threads, merge_every=1 if self.n_threads == 1 else 32, **self.kernel)
        if status != _sgd.Status.OK:
            raise DivergenceError(f"SGD diverged on rank {self.rank} (row {bad})")
        self.pass_loss += sumloss
        end = j == self.rounds_per_pass - 1
        report = {"pass": pass_ + 1}
        if end:  # t: the schedule's next step, as the estimator's t_ counts it
            report.update(loss=self.pass_loss / max(n, 1), pass_seconds=time.perf_counter() - self.pass_start,
                          nnz=int(self.X.indptr[-1]) * self.K, t=est.t_ + (version + 1) * H)
        return Round(updates=rows.size, samples=rows.size, end_of_pass=end, report=report)

    def change(self, work, pulled, version, ticket, rows):
        """The weights the round moved: as their entries where the exchange moves few entries
        faster than the whole vector (``sparse_share``; never on one machine below 100,000
        weights), else dense. With L2 every weight a round touched moves."""
        delta = work - pulled
        if self.sparse_share and np.count_nonzero(delta) <= self.sparse_share * delta.size:
            touched = np.flatnonzero(delta)
            return Sparse(touched, delta[touched])
        return Dense(delta)

    def _epoch(self, params, epoch):
        """Epoch ``epoch`` in place (one process), with the checks and stopping rules of
        scikit-learn. A kernel call may run a block of epochs (_BaseSGD._BLOCK_SECONDS):
        their Rounds then wait in ``pending`` for the engine's next calls."""
        if self.pending:
            return self.pending.pop(0)
        est, X, K, n = self.est, self.X, self.K, self.n
        coef, intercept = self._views(params)
        avg = self.avg
        saved = (coef.copy(), intercept.copy()) + (() if avg is None else (avg[0].copy(), avg[1].copy()))
        threads = self._threads_left()
        if self.solo_calls and threads == self.n_threads:  # the owners' pause (_check_owners_wait)
            self.solo_calls -= 1
            threads = 1
            # they try again only when other processes leave them the cores
            if not self.solo_calls and runnable_elsewhere() + self.n_threads > available_threads():
                self.solo_calls = 1
        # the probe counts the epochs after those that ran on fewer threads
        probing = self.probe is not None and epoch - self.fewer_epochs in est._PROBE_ONE_THREAD
        threads = 1 if probing else threads
        owned = self._owners_from(self.owned, est.t_) if threads == self.n_threads else {}
        E = self._block_length(epoch, threads, owned)
        if threads < self.n_threads and not probing:
            self.fewer_epochs += E
        stats = np.empty((E, threads, 3))
        tic = time.perf_counter()
        sumloss, status, bad = _sgd.sgd_epoch(
            X.data, X.indices, X.indptr, self.Y, self.sw, self._order(epoch, E), coef, intercept, self.q,
            self.l1_state, self.hot[0], self.hot[1], self.tbuf, **{**self.kernel, "eta0": self.eta0},
            t_start=est.t_, n_threads=threads, merge_every=self.merge_every, **self.averaging, **owned,
            **({"epoch_rows": n, "epoch_stats": stats} if n else {}))
        seconds = time.perf_counter() - tic
        self.epoch_seconds = seconds / E
        if owned:
            self._check_owners_wait(epoch, E, seconds)
        if threads == self.n_threads or probing:  # (E = 1 while probing)
            self._probe(epoch - self.fewer_epochs, seconds)
        # the kernel's weight sums at each epoch's end: one thread's, or the owners'
        summed = bool(n) and (threads == 1 or bool(owned))
        losses = stats[:, :, 0].sum(axis=1) if n else np.zeros(1)
        sums = stats[:, :, 1:].sum(axis=1) if summed else None
        if sums is not None and status == _sgd.Status.OK and np.isnan(sums).any():
            sums = None  # OpenMP gave fewer threads than asked: they ran Hogwild! (the final weights')
        for e in range(E):  # first every epoch's checks: a failed block changes nothing
            problem = self._divergence(status != _sgd.Status.OK and (E == 1 or not np.isfinite(sums[e, 0])),
                                       bad, losses[e] / max(n * K, 1), None if sums is None else sums[e],
                                       coef, intercept, last=e == E - 1)
            if problem:
                coef[...], intercept[...] = saved[:2]
                if avg is not None:
                    avg[0][...], avg[1][...] = saved[2:]
                raise DivergenceError(
                    f"SGD diverged in epoch {epoch + e}: {problem}. The model keeps its state from "
                    f"before epoch {epoch}. Lower eta0 (or use learning_rate='optimal'), or scale the "
                    "features (e.g. StandardScaler or MaxAbsScaler).")
        rounds = []
        for e in range(E):
            est.t_ += n
            penalty = est._penalty_value(coef, None if sums is None else sums[e])
            objective = losses[e] / max(n, 1) + penalty
            score = self.scorer(coef, intercept) if self.scorer is not None else None  # (E = 1)
            if est.verbose:
                norm = np.sqrt(np.sum(coef * coef) if sums is None else sums[e, 0])
                print(f"-- Epoch {epoch + e}: avg. loss {losses[e] / max(n, 1):.6f}, objective "
                      f"{objective:.6f}, norm {norm:.4f}, "
                      + ("" if score is None else f"validation score {score:.6f}, ")
                      + f"{X.indptr[-1] * E / max(seconds, 1e-12):.3g} nnz/s, {seconds / E:.3f} s"
                      + ("" if E == 1 else f" (a block of {E} epochs)"))
            report = {"pass": epoch + e, "loss": losses[e] / max(n, 1), "objective": objective,
                      "pass_seconds": seconds / E, "nnz": int(X.indptr[-1]) * K, "t": est.t_}
            # (with tol, the block ends where the rule could first stop: _block_length)
            rounds.append(Round(updates=n, samples=n, end_of_pass=True, stop=self._converged(score, objective),
                                report=report))
        self.pending = rounds[1:]
        return rounds[0]

    def _block_length(self, epoch, threads, owned):
        """Epochs in this kernel call (see _BaseSGD._BLOCK_SECONDS): one where something
        needs each epoch (the probe, the check for busy cores, a validation score,
        averaging, Hogwild! threads, whose kernel takes no weight sums) and for the first."""
        est = self.est
        if (not self.blocks or self.busy_until or self.probe is not None or self.scorer is not None
                or self.avg is not None or (threads > 1 and not owned) or not self.epoch_seconds):
            return 1
        E = min(est._BLOCK_EPOCHS, self.max_iter - epoch + 1, int(self.block_positions // max(self.n, 1)),
                int(est._BLOCK_SECONDS / self.epoch_seconds))
        if est.tol is not None:  # the stopping rule acts when no_improvement reaches n_iter_no_change
            E = min(E, est.n_iter_no_change - self.no_improvement)
        # the owners' delay is the call's: the block ends where a later epoch could take a longer one
        while E > 1 and owned and self._owners_from(self.owned, est.t_ + (E - 1) * self.n)["delay"] > owned["delay"]:
            E -= 1
        return max(E, 1)

    def _order(self, epoch, E):
        """The rows of epochs ``epoch`` .. ``epoch + E - 1``, one after the other."""
        n = self.n
        if not self.est.shuffle:
            perm = np.tile(np.arange(n, dtype=np.int64), E)
        elif E == 1:
            perm = permutation(n, self.seed, epoch)
        else:  # (filled in place: no second copy of the block)
            perm = np.empty(E * n, dtype=np.int64)
            for e in range(E):
                perm[e * n:(e + 1) * n] = permutation(n, self.seed, epoch + e)
        return perm if self.train_rows is None else self.train_rows[perm]

    def _check_owners_wait(self, epoch, E, seconds):
        """Threads that own features run in step: a call of ``E`` epochs from ``epoch`` in
        which they waited for each other more than est._OWNED_MAX_WAIT of its time (and 1 ms)
        - another process took a core, or the host the core's vCPU - is followed by calls on
        one thread, then the owners try again (est._OWNED_RETRY) once no other process's
        thread waits for a core they would take (``runnable_elsewhere``)."""
        est = self.est
        waited = float(self.tbuf[:self.n_threads, -2].mean())
        # (a floor of 1 ms: in short epochs a waking thread's start counts as much)
        if waited <= max(est._OWNED_MAX_WAIT * seconds, 1e-3):
            self.solo_next = est._OWNED_RETRY[0]
            return
        self.solo_calls = self.solo_next
        self.solo_next = min(2 * self.solo_next, est._OWNED_RETRY[1])
        if est.verbose:
            print(f"-- threads: waited {waited:.4f} s of {seconds:.4f} s in epochs {epoch}-{epoch + E - 1} "
                  f"for each other's parts of the rows; the next {self.solo_calls} kernel calls on one thread")

    def _threads_left(self):
        """This epoch's threads: fewer while other threads of the process take cores (checked
        before each epoch until they stop, or est._BUSY_WAIT seconds into the fit), after
        ending OpenBLAS's idle ones once where that is safe (``stop_idle_blas_threads``)."""
        if not self.busy_until:
            return self.n_threads
        others = running_other_threads() if time.perf_counter() < self.busy_until else 0
        if others and not self.blas_stopped:
            self.blas_stopped = True
            if stop_idle_blas_threads():
                if self.est.verbose:
                    print("-- threads: ended OpenBLAS's idle threads, which were taking cores")
                others = running_other_threads()
        if others:
            return max(1, self.n_threads - others)
        self.busy_until = 0.0
        if self.est.verbose and self.fewer_epochs:
            print(f"-- threads: {self.fewer_epochs} epochs on fewer threads while other threads of the "
                  "process were running")
        return self.n_threads

    def _probe(self, epoch, seconds):
        """With n_threads=None, keep all threads only if they beat one (see _BaseSGD._PROBE_ONE_THREAD)."""
        est = self.est
        if self.probe is None:
            return
        self.probe[epoch] = seconds
        if epoch == est._PROBE_ONE_THREAD[-1]:
            many, one = (sum(self.probe[e] for e in block) for block in est._PROBE_COMPARED)
            if many > est._THREADS_MUST_WIN * one:
                self.n_threads = est.n_threads_ = 1
            if est.verbose:
                print(f"-- threads: 2 epochs took {one:.4f} s on 1 thread, {many:.4f} s on "
                      f"all; using {self.n_threads}")
            self.probe = None

    def _converged(self, score, objective):
        """scikit-learn's rule: a validation score that does not rise by tol, or else an
        objective that does not fall by tol, counts as no improvement; n_iter_no_change of
        them stop the fit ('adaptive' first divides its step by 5, down to 1e-6)."""
        est = self.est
        if self.scorer is not None:
            worse = est.tol is not None and score < self.best + est.tol
            self.best = max(self.best, score)
        else:
            worse = est.tol is not None and objective > self.best - est.tol
            self.best = min(self.best, objective)
        self.no_improvement = self.no_improvement + 1 if worse else 0
        if self.no_improvement >= est.n_iter_no_change and est.learning_rate == "adaptive" \
                and self.eta0 > ADAPTIVE_MIN_ETA:
            self.eta0, self.no_improvement = self.eta0 / 5, 0
        return self.no_improvement >= est.n_iter_no_change

    def _divergence(self, failed, bad, mean_loss, sums, coef, intercept, last=True):
        """What went wrong in an epoch, or an empty string. ``sums``: the kernel's sum of
        squares and of absolute values of the weights at the epoch's end (None: read
        ``coef``); ``last``: the epoch ends the kernel call (the arrays are its own)."""
        arrays = ((coef,) if sums is None else ()) + ((intercept,) + (self.avg or ()) if last else ())
        if failed or (sums is not None and not np.all(np.isfinite(sums))) \
                or not all(np.all(np.isfinite(a)) for a in arrays):
            return "a non-finite value appeared" + (f" (prediction for row {bad})" if failed and bad >= 0 else "")
        if not mean_loss <= self.explode_at:
            return (f"the epoch's mean loss {mean_loss:.3g} exceeds {DIVERGENCE_FACTOR:.0e} times that "
                    "of the zero model (the gradient clipping kept the exploding weights finite)")
        return ""
