"""The linear models' problem for the engine: SGD epochs in one process, rounds of
``sync_every`` samples across ranks.

In one process (the in-process exchange lends the weights in place) a round is an epoch
over every training row, with what only one process can do: the thread probe, averaged SGD,
the L1 cumulative penalty, early stopping and the divergence checks that restore the last
finite weights. Across ranks a round is ``sync_every`` of this rank's rows, Hogwild! on the
rank's threads from the pulled weights; its change is pushed (see :mod:`dpsgd.engine`).

The parameters are flat: the (n_features, outputs) weights row by row, then the intercepts.
"""

import time

import numpy as np

from dpsgd._kernels import sgd as _sgd
from dpsgd._kernels.rng import permutation
from dpsgd._threads import running_other_threads
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
    """

    def __init__(self, est, X, Y, sample_weight, coef, intercept, max_iter, kernel, n_threads, seed, *,
                 probe=False, rows=None, scorer=None, avg=None, l1=False, explode_at=np.inf):
        self.est, self.X, self.Y, self.sw = est, X, np.ascontiguousarray(Y, dtype=np.float64), sample_weight
        self.d, self.K = coef.shape
        self.size = self.d * self.K + self.K
        self._initial = np.concatenate([coef.ravel(), intercept])
        self.max_iter, self.kernel, self.n_threads, self.seed = max_iter, kernel, n_threads, seed
        self.probe = {} if probe else None
        self.train_rows, self.scorer, self.avg, self.explode_at = rows, scorer, avg, explode_at
        self.q = np.zeros((self.d, self.K) if l1 else (0, 0))
        self.l1_state = np.zeros(1)

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
        # while other threads of the process take cores (OpenBLAS's spin for ~0.1 s after a
        # call), epochs run on the cores left, for at most est._BUSY_WAIT seconds
        self.busy_until = time.perf_counter() + self.est._BUSY_WAIT if self.n_threads > 1 else 0.0
        self.busy_epochs, self.waiting_epochs = 0, 0
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
        publish = 1 << int(np.clip(np.ceil(np.log2(est._OWNED_WORK / work)), 0, 4))
        return {"row_split": split, "delay": 4 * publish}

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
        """One epoch in place (one process): the checks and stopping rules of scikit-learn."""
        est, X, K = self.est, self.X, self.K
        coef, intercept = self._views(params)
        avg = self.avg
        n = self.n
        perm = permutation(n, self.seed, epoch) if est.shuffle else np.arange(n, dtype=np.int64)
        if self.train_rows is not None:
            perm = self.train_rows[perm]
        saved = (coef.copy(), intercept.copy()) + (() if avg is None else (avg[0].copy(), avg[1].copy()))
        threads = self._threads_left()
        # the probe counts the epochs after those that ran on fewer threads
        probing = self.probe is not None and epoch - self.busy_epochs in est._PROBE_ONE_THREAD
        threads = 1 if probing else threads
        tic = time.perf_counter()
        sumloss, status, bad = _sgd.sgd_epoch(
            X.data, X.indices, X.indptr, self.Y, self.sw, perm, coef, intercept, self.q, self.l1_state,
            self.hot[0], self.hot[1], self.tbuf, **{**self.kernel, "eta0": self.eta0}, t_start=est.t_,
            n_threads=threads, merge_every=self.merge_every, **self.averaging,
            **(self.owned if threads == self.n_threads else {}))
        seconds = time.perf_counter() - tic
        if self.owned and threads == self.n_threads:
            self._check_owners_wait(epoch, seconds)
        if threads == self.n_threads or probing:
            self._probe(epoch - self.busy_epochs, seconds)
        problem = self._divergence(status, bad, sumloss / max(n * K, 1), coef, intercept)
        if problem:
            coef[...], intercept[...] = saved[:2]
            if avg is not None:
                avg[0][...], avg[1][...] = saved[2:]
            raise DivergenceError(
                f"SGD diverged in epoch {epoch}: {problem}. The model keeps its state from "
                "before that epoch. Lower eta0 (or use learning_rate='optimal'), or scale the "
                "features (e.g. StandardScaler or MaxAbsScaler).")
        est.t_ += n
        objective = sumloss / max(n, 1) + est._penalty_value(coef)
        score = self.scorer(coef, intercept) if self.scorer is not None else None
        if est.verbose:
            print(f"-- Epoch {epoch}: avg. loss {sumloss / max(n, 1):.6f}, objective "
                  f"{objective:.6f}, norm {np.sqrt(np.sum(coef * coef)):.4f}, "
                  + ("" if score is None else f"validation score {score:.6f}, ")
                  + f"{X.indptr[-1] / max(seconds, 1e-12):.3g} nnz/s, {seconds:.3f} s")
        report = {"pass": epoch, "loss": sumloss / max(n, 1), "objective": objective, "pass_seconds": seconds,
                  "nnz": int(X.indptr[-1]) * K, "t": est.t_}
        return Round(updates=n, samples=n, end_of_pass=True, stop=self._converged(score, objective),
                     report=report)

    def _check_owners_wait(self, epoch, seconds):
        """Threads that own features wait for each other's parts of every row: on a machine
        whose cores other work takes (est._OWNED_MAX_WAIT) they switch to Hogwild!."""
        waited = float(self.tbuf[:self.n_threads, -2].mean())
        # (a floor of 1 ms: in short epochs a waking thread's start counts as much)
        slow = waited > max(self.est._OWNED_MAX_WAIT * seconds, 1e-3)
        self.waiting_epochs = self.waiting_epochs + 1 if slow else 0
        if self.waiting_epochs == self.est._OWNED_WAITING_EPOCHS:
            self.owned = {}
            if self.est.verbose:
                print(f"-- threads: waited {waited:.4f} s of {seconds:.4f} s in epoch {epoch} (and as "
                      "long in the epochs before) for each other's parts of the rows; Hogwild! from now on")

    def _threads_left(self):
        """This epoch's threads: fewer while other threads of the process take cores (checked
        before each epoch until they stop, or est._BUSY_WAIT seconds into the fit)."""
        if not self.busy_until:
            return self.n_threads
        others = running_other_threads() if time.perf_counter() < self.busy_until else 0
        if others:
            self.busy_epochs += 1
            return max(1, self.n_threads - others)
        self.busy_until = 0.0
        if self.est.verbose and self.busy_epochs:
            print(f"-- threads: {self.busy_epochs} epochs on fewer threads while other threads of the "
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

    def _divergence(self, status, bad, mean_loss, coef, intercept):
        """What went wrong in an epoch, or an empty string."""
        arrays = (coef, intercept) + (() if self.avg is None else self.avg)
        if status != _sgd.Status.OK or not all(np.all(np.isfinite(a)) for a in arrays):
            return "a non-finite value appeared" + (f" (prediction for row {bad})" if bad >= 0 else "")
        if not mean_loss <= self.explode_at:
            return (f"the epoch's mean loss {mean_loss:.3g} exceeds {DIVERGENCE_FACTOR:.0e} times that "
                    "of the zero model (the gradient clipping kept the exploding weights finite)")
        return ""
