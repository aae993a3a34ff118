"""Step-size schedules.

The schedules of the linear models, with scikit-learn's definitions (t is the
global step, starting at 1):

- ``constant``:   eta_t = eta0
- ``optimal``:    eta_t = 1 / (alpha * (t0 + t - 1)), with t0 chosen so that
  eta_1 equals Bottou's heuristic initial step (see :func:`optimal_init`)
- ``invscaling``: eta_t = eta0 / t ** power_t

The kernels evaluate them in C (``dpsgd._kernels.sgd``); :func:`eta` is the
same formula in Python, used for validation and tests.
"""

import collections
import math

LEARNING_RATES = ("constant", "optimal", "invscaling")


def optimal_init(alpha, dloss):
    """Offset t0 of the ``optimal`` schedule.

    Parameters
    ----------
    alpha : float
        Regularisation strength (> 0).
    dloss : callable
        ``dloss(y, p)``, the loss derivative in the prediction p.

    Returns
    -------
    float
        t0 such that eta_1 = typw / max(1, dloss(1, -typw)) with typw = alpha ** -0.25,
        exactly as scikit-learn computes it.

    Examples
    --------
    With the hinge loss's derivative (-1 where the margin is below 1), eta_1 = typw:

    >>> from dpsgd.stepsize import eta, optimal_init
    >>> t0 = optimal_init(1e-4, lambda y, p: -1.0 if y * p < 1 else 0.0)
    >>> round(eta("optimal", 1, eta0=0.0, alpha=1e-4, power_t=0.5, t0=t0), 6)
    10.0
    """
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    initial_eta0 = typw / max(1.0, dloss(1.0, -typw))
    return 1.0 / (initial_eta0 * alpha)


def eta(schedule, t, *, eta0, alpha, power_t, t0):
    """Step size of global step ``t`` (1-based) under ``schedule``, as scikit-learn's SGD.

    Parameters
    ----------
    schedule : {"optimal", "invscaling", "constant"}
        scikit-learn's ``learning_rate``.
    t : int or float
        The step, from 1.
    eta0, alpha, power_t, t0 : float
        scikit-learn's parameters; ``t0`` of "optimal" from :func:`optimal_init`.

    Returns
    -------
    float
        The step size.

    Raises
    ------
    ValueError
        For another schedule.

    Examples
    --------
    >>> from dpsgd.stepsize import eta
    >>> eta("invscaling", 4, eta0=0.1, alpha=1e-4, power_t=0.5, t0=1.0)
    0.05
    """
    if schedule == "optimal":
        return 1.0 / (alpha * (t0 + t - 1.0))
    if schedule == "invscaling":
        return eta0 / t**power_t
    if schedule == "constant":
        return eta0
    raise ValueError(f"unknown learning rate schedule {schedule!r}; choose from {LEARNING_RATES}")


# --------------------------------------------------------------------------------------
# Step-size policies for asynchronous updates (dpsgd.engine).
#
# A policy answers ``policy.step(k, delay)``: the step size of global update k, whose
# gradient was computed from parameters ``delay`` updates old. Policies remember the steps
# they gave, because the delay-adaptive ones (Wu, Magnusson, Feyzmahdavian & Johansson,
# "Delay-adaptive step-sizes for asynchronous learning", ICML 2022) bound the sum of the
# steps inside the current delay window:
#
#     sum_{t = k - delay_k}^{k} gamma_t <= gamma'
#
# which is what their convergence results need; a fixed step gamma'/(tau_max + 1) meets it
# for every delay up to tau_max, the adaptive ones meet it for the delays that happen.
# The exact formulas of the paper's "Adaptive 1/2" could not be checked (see PAPERS.md,
# section 2.4); `budget` and `fixed_or_skip` are the two rules PAPERS.md gives, and their
# contract is tested (tests/test_stepsize.py) for every delay sequence that grows by at
# most one per update, as real delays do.


# the delays a policy can be given by the engine (dpsgd.engine.run): each push's own ("push":
# the pushes by any worker between its pull and its push, with the step sum read at its pull)
# or the age of the oldest read any worker still computes from ("oldest_read": grows by at
# most one a push and bounds every delay, so the window rule holds by construction; see
# OutstandingReads below)
DELAYS = ("push", "oldest_read")


class _Policy:
    """Base: records the steps given, answers window sums. ``delay`` (one of
    :data:`DELAYS`, default "push") is the delay the engine gives it."""

    delay = "push"

    def __init__(self):
        self._history = collections.deque()  # (k, gamma) of recent updates
        self._window = 0.0  # sum of the gammas held in _history

    def _window_sum(self, k, delay):
        """Sum of the steps given to updates k - delay .. k - 1."""
        first = k - delay
        while self._history and self._history[0][0] < first:
            self._window -= self._history.popleft()[1]
        return max(self._window, 0.0)

    def _record(self, k, gamma):
        self._history.append((k, gamma))
        self._window += gamma
        return gamma

    def step(self, k, delay=0, window_sum=None):
        """Step size of update ``k`` (0-based) computed ``delay`` updates ago.

        ``window_sum``: the sum of the steps of every worker's updates inside the delay
        window, when the caller knows it (the window's running step sum read at the pull
        and before the push); else the policy's own record of the steps it gave, which
        sees only this worker's updates."""
        if delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        own = self._window_sum(k, delay)
        return self._record(k, self._gamma(k, own if window_sum is None else max(float(window_sum), 0.0)))

    def _gamma(self, k, window):
        """Step of update k, given the sum of the steps inside its delay window."""
        raise NotImplementedError

    @property
    def reference(self):
        """gamma' for the delay-aware policies; None for plain schedules."""
        return getattr(self, "gamma_prime", None)

    def delay_scale(self, k, delay, window_scales=None):
        """Multiplier for a change pushed with this delay: ``step(k, delay) / reference``.

        The reference is gamma' for the delay-aware policies (so that with them the
        local steps' own schedule plays the part of gamma') and the zero-delay step
        for plain schedules (which then never rescale a push). ``window_scales``: the
        sum of the multipliers of all workers' pushes inside the delay window."""
        reference = self.reference or self._gamma(k, 0.0)
        window_sum = None if window_scales is None else window_scales * reference
        gamma = self.step(k, delay, window_sum)
        return gamma / reference if reference else 0.0


class Constant(_Policy):
    """gamma_k = gamma0.

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma0 : float
        The step.

    Examples
    --------
    >>> from dpsgd.stepsize import Constant
    >>> Constant(0.1).step(0, delay=3)
    0.1
    """

    def __init__(self, gamma0):
        super().__init__()
        self.gamma0 = float(gamma0)

    def _gamma(self, k, window):
        return self.gamma0


class InvScaling(_Policy):
    """gamma_k = gamma0 / (k + 1) ** power_t (scikit-learn's 'invscaling').

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma0 : float
        The first step.
    power_t : float, default=0.5
        The exponent.

    Examples
    --------
    >>> from dpsgd.stepsize import InvScaling
    >>> InvScaling(0.1).step(3)
    0.05
    """

    def __init__(self, gamma0, power_t=0.5):
        super().__init__()
        self.gamma0, self.power_t = float(gamma0), float(power_t)

    def _gamma(self, k, window):
        return self.gamma0 / (k + 1) ** self.power_t


class RobbinsMonro(_Policy):
    """gamma_k = (tau0 + k) ** -kappa, kappa in (0.5, 1] (SVI's schedule).

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    tau0 : float, default=10.0
        The offset (LDA's ``learning_offset``), > 0.
    kappa : float, default=0.7
        The decay (LDA's ``learning_decay``), in (0.5, 1].

    Raises
    ------
    ValueError
        When ``kappa`` or ``tau0`` is out of range.

    Examples
    --------
    >>> from dpsgd.stepsize import RobbinsMonro
    >>> RobbinsMonro(tau0=9.0, kappa=1.0).step(1)
    0.1
    """

    def __init__(self, tau0=10.0, kappa=0.7):
        super().__init__()
        if not 0.5 < kappa <= 1.0 or tau0 <= 0:
            raise ValueError("Robbins-Monro needs kappa in (0.5, 1] and tau0 > 0")
        self.tau0, self.kappa = float(tau0), float(kappa)

    def _gamma(self, k, window):
        return (self.tau0 + k) ** -self.kappa


class EpochDecay(_Policy):
    """Hogwild!'s schedule: gamma0 * beta ** (k // updates_per_epoch).

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma0 : float
        The step of the first epoch.
    beta : float, default=0.9
        The factor an epoch, in (0, 1].
    updates_per_epoch : int, default=1
        Updates an epoch.

    Raises
    ------
    ValueError
        When ``beta`` or ``updates_per_epoch`` is out of range.

    Examples
    --------
    >>> from dpsgd.stepsize import EpochDecay
    >>> EpochDecay(1.0, beta=0.5, updates_per_epoch=10).step(25)
    0.25
    """

    def __init__(self, gamma0, beta=0.9, updates_per_epoch=1):
        super().__init__()
        if not 0 < beta <= 1 or updates_per_epoch < 1:
            raise ValueError("need 0 < beta <= 1 and updates_per_epoch >= 1")
        self.gamma0, self.beta, self.per_epoch = float(gamma0), float(beta), int(updates_per_epoch)

    def _gamma(self, k, window):
        return self.gamma0 * self.beta ** (k // self.per_epoch)


class FixedForDelay(_Policy):
    """The worst-case rule: gamma = gamma' / (tau_max + 1), whatever the delay.

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma_prime : float
        gamma', the step that is safe without delays.
    tau_max : int
        The largest delay the step must be safe for.

    Raises
    ------
    ValueError
        When ``tau_max`` is negative.

    Examples
    --------
    >>> from dpsgd.stepsize import FixedForDelay
    >>> FixedForDelay(1.0, tau_max=3).step(10, delay=0)
    0.25
    """

    def __init__(self, gamma_prime, tau_max):
        super().__init__()
        if tau_max < 0:
            raise ValueError("tau_max must be >= 0")
        self.gamma_prime, self.tau_max = float(gamma_prime), int(tau_max)

    def _gamma(self, k, window):
        return self.gamma_prime / (self.tau_max + 1)


class Budget(_Policy):
    """Delay-adaptive: gamma_k = alpha * (gamma' - sum of the steps in the delay window).

    The steps inside any delay window then sum to at most gamma' (Wu et al., ICML 2022).

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma_prime : float
        gamma', the step that is safe without delays.
    alpha : float, default=0.5
        The share of the budget left that a step takes, in (0, 1).

    Raises
    ------
    ValueError
        When ``alpha`` is out of range.

    Examples
    --------
    Without delays every step is alpha * gamma'; a delayed update gets what its window left:

    >>> from dpsgd.stepsize import Budget
    >>> policy = Budget(1.0, alpha=0.5)
    >>> policy.step(0), policy.step(1, delay=1)
    (0.5, 0.25)
    """

    def __init__(self, gamma_prime, alpha=0.5):
        super().__init__()
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.gamma_prime, self.alpha = float(gamma_prime), float(alpha)

    def _gamma(self, k, window):
        return max(0.0, self.alpha * (self.gamma_prime - window))


class FixedOrSkip(_Policy):
    """Delay-adaptive: alpha * gamma' if the window holds at most (1 - alpha) gamma', else 0 (skip).

    Every policy answers ``step(k, delay, window_sum=None)``, the step size of update ``k``
    computed from parameters ``delay`` updates old, and ``delay_scale(k, delay)``, that step
    over its reference (how the engine scales a pushed change); it records the steps it gave.

    Parameters
    ----------
    gamma_prime : float
        gamma', the step that is safe without delays.
    alpha : float, default=0.5
        The step, as a share of gamma', in (0, 1].

    Raises
    ------
    ValueError
        When ``alpha`` is out of range.

    Examples
    --------
    >>> from dpsgd.stepsize import FixedOrSkip
    >>> policy = FixedOrSkip(1.0, alpha=0.5)
    >>> policy.step(0), policy.step(1, delay=1), policy.step(2, delay=2)  # the last window is full
    (0.5, 0.5, 0.0)
    """

    def __init__(self, gamma_prime, alpha=0.5):
        super().__init__()
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.gamma_prime, self.alpha = float(gamma_prime), float(alpha)

    def _gamma(self, k, window):
        if window <= (1.0 - self.alpha) * self.gamma_prime * (1 + 1e-12):
            return self.alpha * self.gamma_prime
        return 0.0


# --------------------------------------------------------------------------------------
# The delay a policy should see (issue 11). A push's own delay (updates applied between its
# read and its write) can jump: a slow worker's write lands after many fast ones, and its
# delay goes from 0 to 18 in one update. The window rule above is then broken by every
# policy that sees it (budget's window sums reached 4x gamma' on replays of Wu et al.'s own
# logs). The age of the oldest read still in flight, k - min{read stamp of every computation
# not yet applied}, bounds every real delay and grows by at most one per update, the case
# the policies' contract covers; so the rule holds by construction when they see it.


class OutstandingReads:
    """The oldest read still in flight, kept live: workers report their reads and writes.

    ``read(worker)`` when a worker reads the parameters (its stamp: the updates applied so
    far); ``apply(worker)`` when its update is applied, returning ``(delay, oldest)``: the
    update's own delay and the age of the oldest outstanding read (its own included), which
    never exceeds the previous update's plus one. A worker has at most one read in flight.

    Examples
    --------
    >>> from dpsgd.stepsize import OutstandingReads
    >>> reads = OutstandingReads()
    >>> _ = reads.read("slow"), reads.read("fast")
    >>> reads.apply("fast")          # its own delay 0, but the slow read is 0 updates old too
    (0, 0)
    >>> _ = reads.read("fast")
    >>> reads.apply("fast"), reads.apply("slow")
    ((0, 1), (2, 2))
    """

    def __init__(self):
        self.count = 0        # updates applied
        self._stamps = {}     # worker -> read stamp of its computation in flight

    def read(self, worker):
        """Record that ``worker`` read the parameters now; returns its stamp."""
        self._stamps[worker] = self.count
        return self.count

    def apply(self, worker):
        """Apply ``worker``'s update: ``(delay, oldest)`` of update number ``count`` (0-based)."""
        if worker not in self._stamps:
            raise ValueError(f"worker {worker!r} applies an update it did not read for")
        k = self.count
        oldest = k - min(self._stamps.values())
        delay = k - self._stamps.pop(worker)
        self.count += 1
        return delay, oldest


def oldest_outstanding(delays):
    """The age of the oldest outstanding read at each update of a log of per-update delays.

    Update k read after ``k - delays[k]`` updates had been applied; at update k the reads in
    flight are those of the updates j >= k that had read by then (``j - delays[j] <= k``).
    Returns tau with ``tau[k] = k - min`` of their stamps: ``tau[k] >= delays[k]`` and
    ``tau[k + 1] <= tau[k] + 1``. (A live system gets the same from :class:`OutstandingReads`
    without knowing the future.)

    Parameters
    ----------
    delays : sequence of int
        ``delays[k]`` in [0, k]: the delay of update k (0-based), in the order applied.

    Returns
    -------
    list of int
        tau, one age per update.

    Raises
    ------
    ValueError
        When a delay is outside [0, k].

    Examples
    --------
    >>> from dpsgd.stepsize import oldest_outstanding
    >>> oldest_outstanding([0, 0, 0, 3, 0])   # update 3 read before update 0 was applied
    [0, 1, 2, 3, 0]
    """
    import heapq

    n = len(delays)
    stamps = [k - int(d) for k, d in enumerate(delays)]
    if any(not 0 <= s <= k for k, s in enumerate(stamps)):
        raise ValueError("delays[k] must be in [0, k]: update k cannot have read before update 0 or after itself")
    by_stamp = collections.defaultdict(list)
    for j, stamp in enumerate(stamps):
        by_stamp[stamp].append(j)
    in_flight, tau = [], []  # heap of (stamp, j) of the reads made and not yet applied
    for k in range(n):
        for j in by_stamp.pop(k, ()):
            heapq.heappush(in_flight, (k, j))
        while in_flight[0][1] < k:  # applied already
            heapq.heappop(in_flight)
        tau.append(k - in_flight[0][0])
    return tau


POLICIES = {
    "constant": Constant,
    "invscaling": InvScaling,
    "robbins_monro": RobbinsMonro,
    "epoch_decay": EpochDecay,
    "fixed_for_delay": FixedForDelay,
    "budget": Budget,
    "fixed_or_skip": FixedOrSkip,
}


def make_policy(name, **params):
    """A step-size policy by name (see ``POLICIES``).

    Parameters
    ----------
    name : {"constant", "invscaling", "robbins_monro", "epoch_decay", "fixed_for_delay", "budget", "fixed_or_skip"}
        The policy.
    **params
        Its class's parameters.

    Returns
    -------
    policy
        An instance of :class:`Constant`, :class:`InvScaling`, :class:`RobbinsMonro`,
        :class:`EpochDecay`, :class:`FixedForDelay`, :class:`Budget` or :class:`FixedOrSkip`.

    Raises
    ------
    ValueError
        For an unknown name.

    Examples
    --------
    >>> from dpsgd.stepsize import make_policy
    >>> make_policy("budget", gamma_prime=0.1, alpha=0.5).step(0)
    0.05
    """
    if name not in POLICIES:
        raise ValueError(f"unknown step policy {name!r}; choose from {sorted(POLICIES)}")
    return POLICIES[name](**params)


# the policies that scale a pushed change by its delay (engine.run's ``policy``), by name
DELAY_POLICIES = ("budget", "fixed_or_skip", "fixed_for_delay")


def delay_policy(name, *, alpha=0.9, tau_max=16, delay="push"):
    """The delay policy a name means for a pushed change (gamma' = 1: the local steps' own
    schedule plays gamma'), or None for "none": the one mapping the estimators and the CLI share.

    Parameters
    ----------
    name : {'budget', 'fixed_or_skip', 'fixed_for_delay', 'none'}
        The policy.
    alpha : float, default=0.9
        alpha of 'budget' and 'fixed_or_skip'.
    tau_max : int, default=16
        The largest delay 'fixed_for_delay' is safe for.
    delay : {'push', 'oldest_read'}, default='push'
        The delay the engine gives the policy (:data:`DELAYS`). 'oldest_read' keeps every
        window of steps within gamma' by construction; it costs RMA calls and a shared mutex
        each push, and with more ranks than cores its steps shrink (docs/distributed.md).

    Returns
    -------
    policy or None
        A :class:`Budget`, :class:`FixedOrSkip` or :class:`FixedForDelay` with gamma' = 1, or
        None for "none".

    Raises
    ------
    ValueError
        For an unknown name or delay.

    Examples
    --------
    >>> from dpsgd.stepsize import delay_policy
    >>> policy = delay_policy("budget", alpha=0.5)
    >>> policy.delay_scale(0, delay=0)   # a push without delay: half of itself
    0.5
    """
    if delay not in DELAYS:
        raise ValueError(f"delay must be one of {list(DELAYS)}, got {delay!r}")
    if name == "none":
        return None
    if name == "fixed_for_delay":
        policy = make_policy(name, gamma_prime=1.0, tau_max=tau_max)
    elif name in DELAY_POLICIES:
        policy = make_policy(name, gamma_prime=1.0, alpha=alpha)
    else:
        raise ValueError(f"unknown delay policy {name!r}; choose from {sorted(DELAY_POLICIES)} or 'none'")
    policy.delay = delay
    return policy


# step_policy names the estimators accept: the delay-adaptive rules, which need only gamma'
# ('fixed_for_delay' needs the run's largest delay, which no default can know)
ESTIMATOR_POLICIES = ("budget", "fixed_or_skip")


def estimator_policy(step_policy):
    """The delay policy an estimator's ``step_policy`` asks for.

    Parameters
    ----------
    step_policy : None, str or policy
        None, a policy object (returned as it is), or one of :data:`ESTIMATOR_POLICIES` by name.

    Returns
    -------
    policy or None
        What :func:`delay_policy` gives for the name, the object, or None.

    Raises
    ------
    ValueError
        For anything else.

    Examples
    --------
    >>> from dpsgd.stepsize import estimator_policy
    >>> estimator_policy("budget").alpha
    0.9
    """
    if step_policy is None or hasattr(step_policy, "delay_scale"):
        return step_policy
    if isinstance(step_policy, str) and step_policy in ESTIMATOR_POLICIES:
        return delay_policy(step_policy)
    raise ValueError(f"step_policy must be None, one of {sorted(ESTIMATOR_POLICIES)} or a dpsgd.stepsize "
                     f"policy (e.g. make_policy('fixed_for_delay', gamma_prime=1.0, tau_max=8)); "
                     f"got {step_policy!r}")
