"""What both training commands share: checkpoints, the JSON log, the result line."""

import json
import os
import sys

import numpy as np

from dpsgd.cli.checks import UsageError, reading


def read_checkpoint(path, task, arrays_needed, meta_needed):
    """``(arrays, metadata)`` of a checkpoint of ``train TASK``, with the keys the resume needs.

    Raises
    ------
    UsageError
        When the file cannot be read, is not a checkpoint of this task, or lacks a key.
    """
    from dpsgd import persist

    with reading("--resume", path):
        try:
            arrays, meta = persist.read_checkpoint(path, task)
        except ValueError as exc:  # its messages start with the path
            raise UsageError(f"--resume {exc}" if str(exc).startswith(str(path)) else f"--resume {path}: {exc}") from None
    missing = [k for k in arrays_needed if k not in arrays] + [k for k in meta_needed if k not in meta]
    if missing:
        raise UsageError(f"--resume {path}: the checkpoint lacks {', '.join(missing)}")
    return arrays, meta


def remaining(total, done, option, resume):
    """What is left of ``--epochs`` / ``--passes`` after a checkpoint's ``done``."""
    if total <= done:
        raise UsageError(f"--resume {resume}: the checkpoint has {done} {option.lstrip('-')} done; "
                         f"{option} {total} leaves nothing to run (give more than {done})")
    return total - done


class JsonLog:
    """One JSON object per line, flushed at once (so a killed run keeps its lines); a no-op
    when ``path`` is None."""

    def __init__(self, path):
        self.file = open(path, "w") if path else None

    def __bool__(self):
        return self.file is not None

    def write(self, record):
        if self.file:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()


def rounds_summary(stats):
    """The result line's part on a distributed run's delays and communication (rank 0's)."""
    return (f"delay mean {stats['delay_mean']:.2f} / p99 {stats['delay_p99']:.0f} / max "
            f"{stats['delay_max']:.0f}, communication {stats['comm_share']:.0%} of the time, "
            f"{stats['bytes_sent'] / 1e6:.3g} MB sent and {stats['bytes_received'] / 1e6:.3g} MB received (rank 0)")


def save_then_report(estimator, save, parts):
    """Save the model first (a failure while reporting must not lose it), then print the result."""
    if save:
        from dpsgd import save_model

        with reading("--save", save):
            save_model(estimator, save)
    print("result: " + ", ".join(parts()))
    if save:
        print(f"saved: {save}")
    return 0


def silence_stdout():
    """Point stdout at /dev/null, so that flushing at exit after a broken pipe does not raise
    again (the Python documentation's recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def format_rows(values):
    """Lines of space-separated numbers, one line per row, 10 significant digits."""
    values = np.atleast_2d(values)
    return "".join(" ".join(f"{v:.10g}" for v in row) + "\n" for row in values)
