"""One driver for every training command: progress, the JSON log and checkpoints, fed by
the engine's callback (``callback(info)``, see :func:`dpsgd.engine.loop.round_info`).

Only rank 0 reports and writes; its callback sees its own rounds and, at the end of each of
its passes, the global model.
"""

import time

from dpsgd.cli.common import JsonLog
from dpsgd.progress import Progress

# what a --log-json line reports of a distributed run's rounds (dpsgd.engine.RoundStats), those
# after delay_histogram where the run has them (tau: a step policy given the oldest read; the
# network: --network; consensus_distance: gossip, at the end)
ROUND_KEYS = ("delay_mean", "delay_p99", "delay_max", "delay_histogram", "tau_mean", "tau_max", "comm_seconds",
              "bytes_sent", "bytes_received", "network", "network_seconds", "consensus_distance")


class TrainingRun:
    """The callback of a training command (call it with the engine's ``info``).

    Parameters
    ----------
    args : argparse.Namespace
        ``quiet``, ``log_json``, ``checkpoint``, ``checkpoint_every``.
    topology : dpsgd.comm.Topology
    progress : (total, unit, amount)
        The progress bar's total and unit, and ``amount(info)``: how much a round adds.
    pass_key : str
        The log's name for a pass ("epoch", "pass").
    passes_done, updates_done : int
        What a resumed run had done before (the log and checkpoints count on from there).
    evaluate : callable, optional
        ``evaluate(model) -> dict`` of held-out numbers for the log (rank 0).
    checkpoint : callable
        ``checkpoint(model, passes_done, t)`` writes one (``t``: the schedule's next step, as
        the problem reports it).
    """

    def __init__(self, args, topology, *, progress, pass_key, passes_done, updates_done, checkpoint,
                 evaluate=None):
        self.root, self.distributed = topology.is_root, topology.distributed
        total, unit, self.amount = progress
        self.progress = Progress(total, unit, disable=args.quiet or not self.root)
        self.log = JsonLog(args.log_json if self.root else None)
        self.args, self.pass_key = args, pass_key
        self.passes_done, self.updates_done = passes_done, updates_done
        self.evaluate, self.checkpoint = evaluate, checkpoint
        self.tic = time.perf_counter()

    def __call__(self, info):
        if not self.root:
            return
        postfix = {"loss": f"{info['loss']:.4f}"} if "loss" in info else {}
        self.progress.update(self.amount(info), **postfix)
        if not info["end_of_pass"]:
            return
        passes = self.passes_done + info["pass"]
        updates = self.updates_done + info["updates"]
        due = self.args.checkpoint and passes % self.args.checkpoint_every == 0
        model = info["model"]() if self.log or due else None
        if self.log:
            record = {"time": time.perf_counter() - self.tic, self.pass_key: passes, "updates": updates}
            if "loss" in info:
                record["loss"] = info["loss"]
            if self.evaluate is not None:
                record.update(self.evaluate(model))
            if self.distributed:
                record.update({k: info[k] for k in ROUND_KEYS if k in info})
            self.log.write(record)
        if due:
            self.checkpoint(model, passes, info["t"])

    def close(self):
        self.progress.close()
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
