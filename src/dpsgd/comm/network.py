"""A network model for one machine: what a cluster's links and stragglers would add.

Ranks on one machine exchange through shared memory in microseconds; between machines every
message pays a latency and its bytes a bandwidth, and some machine is always slower. So that
a 2-core machine can show what a cluster would, :class:`Simulated` wraps any exchange and,
after each of its calls, sleeps ``latency + bytes / bandwidth`` for the bytes that call
moved (the exchange's own counts, :mod:`dpsgd.comm.exchange`). A straggler rank sleeps
``(slow_factor - 1)`` times its round's compute before it pushes, and any rank may pause
for ``pause_seconds`` with ``pause_probability`` a round. Sleeping leaves the cores to the
other ranks, as waiting on a real network does. Off by default; the round statistics record
the seconds it added (``network_seconds``) and the model (``network``).

Presets (a message's latency and a link's bandwidth, one direction): ``"10GbE"`` 20 us and
1.25 GB/s, ``"1GbE"`` 50 us and 125 MB/s. A dict or a string ``"latency=1e-4,bandwidth=1e8,
slow_rank=1,slow_factor=3"`` gives any of the fields of :class:`Network`.
"""

import math
import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Network:
    """The model: seconds per message, bytes per second, one slow rank, random pauses.

    Made by :func:`make_network` from the estimators' ``network=`` or ``--network``.

    Parameters
    ----------
    latency : float >= 0
        Seconds added to every call that moves data.
    bandwidth : float > 0
        Bytes per second of a rank's link (inf: free).
    slow_rank : int or None
        The straggler's rank.
    slow_factor : float >= 1
        How many times slower its rounds are.
    pause_probability : float in [0, 1]
        Chance that a rank pauses before a push.
    pause_seconds : float >= 0
        How long a pause lasts.
    seed : int
        Seeds the pauses (rank r draws from ``seed + r``).

    Examples
    --------
    >>> from dpsgd.comm.network import Network
    >>> Network(latency=1e-4, bandwidth=1e8).latency
    0.0001
    """

    latency: float = 0.0
    bandwidth: float = math.inf
    slow_rank: int = None
    slow_factor: float = 1.0
    pause_probability: float = 0.0
    pause_seconds: float = 0.0
    seed: int = 0

    def __post_init__(self):
        checks = [("latency", self.latency >= 0), ("bandwidth", self.bandwidth > 0),
                  ("slow_factor", self.slow_factor >= 1), ("pause_probability", 0 <= self.pause_probability <= 1),
                  ("pause_seconds", self.pause_seconds >= 0)]
        for name, ok in checks:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or not ok:
                raise ValueError(f"network {name} out of range: {value!r} (see dpsgd.comm.network.Network)")
        if self.slow_rank is not None and (isinstance(self.slow_rank, bool) or not isinstance(self.slow_rank, int)
                                           or self.slow_rank < 0):
            raise ValueError(f"network slow_rank must be a rank (an int >= 0) or None, got {self.slow_rank!r}")

    def describe(self):
        """The fields that differ from no network, as ``name=value`` pairs (for logs)."""
        plain = Network()
        return ",".join(f"{k}={v}" for k, v in asdict(self).items() if v != getattr(plain, k) and k != "seed")


PRESETS = {"10GbE": Network(latency=20e-6, bandwidth=1.25e9), "1GbE": Network(latency=50e-6, bandwidth=1.25e8)}
_FIELDS = {"latency": float, "bandwidth": float, "slow_rank": int, "slow_factor": float,
           "pause_probability": float, "pause_seconds": float, "seed": int}


def make_network(spec):
    """The :class:`Network` that ``spec`` names: None (no network model), a Network, a preset
    name (:data:`PRESETS`), a dict of fields, or ``"field=value,..."``.

    Parameters
    ----------
    spec : None, Network, str or dict
        What the estimators' ``network=`` and ``--network`` take.

    Returns
    -------
    Network or None
        The model, or None for no network model.

    Raises
    ------
    ValueError
        For an unknown preset or field, or a value out of range.

    Examples
    --------
    >>> from dpsgd.comm.network import make_network
    >>> make_network("1GbE").bandwidth
    125000000.0
    >>> make_network("latency=1e-4,bandwidth=1e8,slow_rank=1,slow_factor=3").slow_factor
    3.0
    """
    if spec is None or isinstance(spec, Network):
        return spec
    if isinstance(spec, str):
        if spec in PRESETS:
            return PRESETS[spec]
        if "=" not in spec:
            raise ValueError(f"network must be one of {sorted(PRESETS)}, 'field=value,...' or a dict, got {spec!r}")
        fields = {}
        for part in spec.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in _FIELDS:
                raise ValueError(f"unknown network field {name!r}; fields: {sorted(_FIELDS)}")
            try:
                fields[name] = _FIELDS[name](value)
            except ValueError:
                raise ValueError(f"network {name} must be a number, got {value!r}") from None
        spec = fields
    if isinstance(spec, dict):
        unknown = set(spec) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown network field(s) {sorted(unknown)}; fields: {sorted(_FIELDS)}")
        return Network(**spec)
    raise ValueError(f"network must be None, a preset name {sorted(PRESETS)}, a dict or a Network, got {spec!r}")


class Simulated:
    """``exchange`` as it would run over ``network`` (module docstring): every attribute and
    call is the exchange's, with the network's delays added after ``pull``, ``pull_rows``,
    ``push``, ``skip`` and ``final``, and the straggler's and the pauses before ``push``.
    ``clock`` and ``sleep`` tell and pass time (a virtual rank's: :mod:`dpsgd.comm.virtual`).

    A delay is slept once the delays owed reach ``min_sleep`` seconds, and what the sleep
    overran is taken off the next: ``time.sleep`` of 20, 50 and 100 us took 82, 113 and
    161 us here, and a server run sleeps such a delay at every pull and push (over the 1GbE
    model its time to target was 1.6x the simulator's before this). ``final`` sleeps what is
    still owed. Virtual ranks sleep exactly
    (``min_sleep=0``)."""

    def __init__(self, exchange, network, rank=0, clock=time.perf_counter, sleep=time.sleep, min_sleep=1e-3):
        self._inner, self.network = exchange, network
        self._clock, self._sleep, self._min_sleep = clock, sleep, min_sleep
        self._owed = 0.0
        self.network_seconds = 0.0
        self._rng = np.random.default_rng(network.seed + rank)
        self._slow = network.slow_rank == rank and network.slow_factor > 1.0
        self._round_start = None  # when this round's compute began (the pull returned)

    def __getattr__(self, name):  # everything not timed here is the exchange's
        return getattr(self._inner, name)

    def _wait(self, seconds):
        if seconds > 0.0:
            self.network_seconds += seconds
            self._owed += seconds
            if self._owed >= self._min_sleep:
                self._pay()

    def _pay(self):
        """Sleep what is owed; what the sleep overran is owed less."""
        if self._owed > 0.0:
            tic = self._clock()
            self._sleep(self._owed)
            self._owed -= self._clock() - tic

    def _timed(self, call, *args, **kwargs):
        moved = self._inner.bytes_sent + self._inner.bytes_received
        result = call(*args, **kwargs)
        moved = self._inner.bytes_sent + self._inner.bytes_received - moved
        if moved:
            self._wait(self.network.latency + moved / self.network.bandwidth)
        return result

    def pull(self, out=None):
        result = self._timed(self._inner.pull, out)
        self._round_start = self._clock()
        return result

    def pull_rows(self, rows, out=None):
        result = self._timed(self._inner.pull_rows, rows, out)
        self._round_start = self._clock()
        return result

    def _end_of_compute(self):
        """Once a round, when its compute is over: the straggler's extra time and the pauses
        (before the push, and before taking the exchange's mutex for it)."""
        if self._round_start is None:
            return
        if self._slow:  # its compute took slow_factor times as long
            self._wait((self.network.slow_factor - 1.0) * (self._clock() - self._round_start))
        if self.network.pause_probability and self._rng.random() < self.network.pause_probability:
            self._wait(self.network.pause_seconds)
        self._round_start = None

    def exclusive(self):
        self._end_of_compute()
        return self._inner.exclusive()

    def push(self, change, *, step=0.0, updates=1):
        self._end_of_compute()
        return self._timed(self._inner.push, change, step=step, updates=updates)

    def skip(self):
        return self._timed(self._inner.skip)

    def final(self, out=None):
        result = self._timed(self._inner.final, out)
        self._pay()  # the delays still owed, the final's own included
        return result

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        return self._inner.__exit__(exc_type, exc, tb)
