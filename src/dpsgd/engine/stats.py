"""What a worker saw of its rounds: delays and where its time went."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RoundStats:
    """One delay per push, and the seconds spent computing and communicating.

    The delay of a round is the number of pushes by any worker between its pull and its
    push: the clock read just before the push, less the version of the pull. (The version
    the push itself gets would also count the pushes that land in between.)

    Attributes
    ----------
    delays, taus : list of int
        Each push's delay, and the delay its step policy saw (the age of the oldest read in
        flight; only with a policy over an asynchronous exchange).
    seconds_compute, seconds_comm : float
        Seconds in local steps and in the exchange.
    pushes : int
        Pushes this worker made.
    bytes_sent, bytes_received : int
        This worker's payload (the exchange's counts).
    consensus_distance : float or None
        Gossip's spread of the ranks' copies before the final average.
    network : str or None
        The simulated network's model (:mod:`dpsgd.comm.network`);
    network_seconds : float
        the seconds it added.

    Examples
    --------
    >>> from dpsgd.engine import RoundStats
    >>> stats = RoundStats(delays=[0, 2, 1], pushes=3)
    >>> stats.summary()["delay_max"]
    2.0
    """

    delays: list = field(default_factory=list)
    # the delay the step policy saw: the age of the oldest read in flight (of the oldest
    # gradient in PIAG's table); only with a policy over an asynchronous exchange
    taus: list = field(default_factory=list)
    seconds_compute: float = 0.0
    seconds_comm: float = 0.0
    pushes: int = 0
    bytes_sent: int = 0  # this worker's payload so far (the exchange's count)
    bytes_received: int = 0
    consensus_distance: float = None  # gossip's spread of the ranks' copies before the final average
    network: str = None  # the simulated network's model (dpsgd.comm.network), and the seconds it added
    network_seconds: float = 0.0

    def take_counts(self, exchange):
        """Take the exchange's counts: the bytes this worker moved, the seconds a simulated
        network added (:mod:`dpsgd.comm.network`), gossip's consensus distance."""
        self.bytes_sent, self.bytes_received = exchange.bytes_sent, exchange.bytes_received
        self.consensus_distance = getattr(exchange, "consensus_distance", None)
        if hasattr(exchange, "network"):
            self.network, self.network_seconds = exchange.network.describe(), exchange.network_seconds

    def summary(self):
        d = np.asarray(self.delays, dtype=float)
        total = self.seconds_compute + self.seconds_comm
        return {
            "pushes": self.pushes,
            "delay_mean": float(d.mean()) if d.size else 0.0,
            "delay_p99": float(np.percentile(d, 99)) if d.size else 0.0,
            "delay_max": float(d.max()) if d.size else 0.0,
            "delay_histogram": np.bincount(d.astype(np.int64)).tolist() if d.size else [],  # pushes per delay
            **({"tau_mean": float(np.mean(self.taus)), "tau_max": int(max(self.taus))} if self.taus else {}),
            "compute_seconds": self.seconds_compute,
            "comm_seconds": self.seconds_comm,
            "comm_share": self.seconds_comm / total if total else 0.0,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            **({"consensus_distance": self.consensus_distance} if self.consensus_distance is not None else {}),
            **({"network": self.network, "network_seconds": self.network_seconds} if self.network is not None else {}),
        }
