"""Progress of a training run on stderr: a tqdm bar on a terminal, plain lines in a log.

A bar redraws itself with carriage returns, which fill a Slurm log or a CI log with frames; so
when stderr is not a terminal a line is written at most every ``interval`` seconds, and once
at the end.
"""

import sys
import time


class Progress:
    """Count ``unit`` (e.g. documents) towards ``total`` and report the rate.

    Parameters
    ----------
    total : int
        The count at the end (0 or None: unknown).
    unit : str
        What is counted; the rate is ``unit/s`` in every mode (one process or many ranks).
    disable : bool, default=False
        Report nothing.
    stream : file, default=sys.stderr
        Where to report: a bar if it is a terminal, else plain lines.
    desc : str, default="training"
        The label of the bar or lines.

    Attributes
    ----------
    interval : float
        Seconds between two plain lines (not on a terminal); a class attribute, 10.

    Examples
    --------
    >>> import io
    >>> from dpsgd.progress import Progress
    >>> log = io.StringIO()  # not a terminal: plain lines
    >>> progress = Progress(100, "documents", stream=log)
    >>> progress.update(100, perplexity=120.5)
    >>> progress.close()
    >>> log.getvalue().startswith("training: 100/100 documents (100%)")
    True
    """

    interval = 10.0

    def __init__(self, total, unit, *, disable=False, stream=None, desc="training"):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.unit, self.desc, self.disable = total, unit, desc, disable
        self.n, self.postfix = 0, {}
        self._start = self._last = time.perf_counter()
        self._bar = None
        if not disable and self.stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit=unit, unit_scale=True, file=self.stream, desc=desc)

    def update(self, n, **postfix):
        """Add ``n`` units done; ``postfix`` (name=value) is shown after the rate."""
        if self.disable:
            return
        self.n += n
        self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(self.postfix, refresh=False)
            self._bar.update(n)
        elif time.perf_counter() - self._last >= self.interval:
            self._line()

    def close(self):
        """The last line (or the bar's last frame)."""
        if self.disable:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def _line(self):
        now = time.perf_counter()
        self._last = now
        seconds = now - self._start
        share = f" ({self.n / self.total:.0%})" if self.total else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        self.stream.write(f"{self.desc}: {self.n}/{self.total} {self.unit}{share}, {seconds:.1f} s, "
                          f"{self.n / max(seconds, 1e-9):.4g} {self.unit}/s{extra}\n")
        self.stream.flush()
