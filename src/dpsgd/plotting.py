"""Learning curves from the JSON-lines logs that ``dpsgd train ... --log-json FILE`` writes.

Each line of such a log is one JSON object, written after an epoch (``train linear``) or a
pass (``train lda``): ``time`` (wall-clock seconds since training started), ``updates`` (SGD
steps for linear models, global minibatch steps for LDA), ``epoch`` or ``pass``, the held-out
quality, and under ``mpiexec`` the delays and seconds spent communicating. :func:`read_log`
reads one log and :func:`plot_runs` draws one or several of them overlaid, e.g. a run on one
rank against one on two ranks, into a PNG, PDF or SVG file.

matplotlib is needed only for drawing: ``pip install 'dpsgd[plot]'``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence

__all__ = ["FORMATS", "METRICS", "X_AXES", "plot_runs", "read_log"]

# the quality metrics the training commands log, in the order drawn, with their axis labels
METRICS = {
    "loss": "training loss\n(epoch mean, lower is better)",
    "test_log_loss": "test log-loss\n(nats, lower is better)",
    "perplexity": "held-out perplexity\n(base e, lower is better)",
    "heldout_log_likelihood": "held-out log-likelihood\n(nats/word, higher is better)",
    "mean_return": "mean return, last 100 episodes\n(A2C, higher is better)",
    "objective": "objective P(w, b)\n(PIAG / Async-BCD, lower is better)",
    "suboptimality": "relative suboptimality P / P* - 1\n(log scale, lower is better)",
}
# the metrics drawn on a log scale (they fall over orders of magnitude)
LOG_SCALE = frozenset({"suboptimality"})
# the x axes a metric can be drawn against, with their labels
X_AXES = {"time": "wall-clock time (s)", "updates": "updates (SGD steps; LDA: minibatch steps; A2C: env steps)"}
# keys of a log line that count or describe the run rather than measure it: never drawn
_NOT_METRICS = frozenset(X_AXES) | {"epoch", "pass", "samples", "n_threads", "ranks", "exchange", "env_steps", "clock"}
# the time axis of logs whose every line says "clock": "simulated" (dpsgd.comm.simulate's virtual ranks)
SIMULATED_TIME = "simulated time (s)"
# the output suffixes plot_runs writes
FORMATS = (".png", ".pdf", ".svg")


def read_log(path: str | os.PathLike) -> list[dict]:
    """The lines of a ``--log-json`` file, each a dict.

    Blank lines are skipped; keys other than ``time`` and ``updates`` are kept as they are,
    whatever they are (logs of newer versions may hold more).

    Parameters
    ----------
    path : str or path-like
        A log written by ``dpsgd train linear`` or ``dpsgd train lda`` with ``--log-json``.

    Returns
    -------
    list of dict
        One dict per line, in the file's order.

    Raises
    ------
    ValueError
        If a line is not text or not a JSON object, if a line has no numeric ``time`` or
        ``updates``, or if the file holds no line at all; the message names the file and the line.
    OSError
        If the file cannot be read (``FileNotFoundError`` when it does not exist).

    Examples
    --------
    >>> import os, tempfile
    >>> from dpsgd.plotting import read_log
    >>> path = os.path.join(tempfile.mkdtemp(), "run.jsonl")
    >>> with open(path, "w") as f:
    ...     _ = f.write('{"time": 0.5, "updates": 100, "test_log_loss": 0.41}\\n')
    ...     _ = f.write('{"time": 1.0, "updates": 200, "test_log_loss": 0.37}\\n')
    >>> [record["test_log_loss"] for record in read_log(path)]
    [0.41, 0.37]
    """
    records = []
    with open(path, "rb") as f:  # decoded line by line, so that an error names its line
        for number, raw in enumerate(f, 1):
            where = f"{os.fspath(path)}, line {number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{where}: not UTF-8 text ({exc.reason}); a --log-json file is "
                                 "JSON lines") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: a JSON {type(record).__name__}, not an object "
                                 "(a --log-json file has one object per line)")
            for key in X_AXES:
                if not _is_number(record.get(key)):
                    raise ValueError(f"{where}: no number {key!r}; is this a log written by "
                                     "'dpsgd train ... --log-json'?")
            records.append(record)
    if not records:
        raise ValueError(f"{os.fspath(path)}: the log is empty")
    return records


def plot_runs(paths: Sequence[str | os.PathLike] | str | os.PathLike, output: str | os.PathLike, *,
              x: Sequence[str] | str = ("time", "updates"), metrics: Sequence[str] | None = None,
              labels: Sequence[str] | None = None):
    """Draw the learning curves of one or several ``--log-json`` logs, overlaid, into a file.

    One row of subplots per metric, one column per x axis, and below them a throughput panel:
    the updates per second between consecutive lines of each log, against time (a log of one
    line has no throughput to draw). Each run keeps its colour in every panel, and the first
    panel has the legend.

    Parameters
    ----------
    paths : path or sequence of paths
        The logs, as :func:`read_log` reads them.
    output : str or path-like
        The file to write; its suffix, ``.png``, ``.pdf`` or ``.svg``, sets the format. Written
        to a temporary file in the same folder, then renamed over ``output``.
    x : {"time", "updates"} or sequence of them, default ("time", "updates")
        The x axes to draw each metric against: wall-clock seconds, updates, or both. Logs
        whose every line has ``"clock": "simulated"`` (runs on ``dpsgd.comm.simulate``'s
        virtual ranks) are drawn against simulated seconds, and the axis says so.
    metrics : sequence of str, optional
        The metrics to draw, each a key of at least one log. None: every metric of
        :data:`METRICS` that some log holds (training and test loss for linear models,
        perplexity and held-out log-likelihood for LDA). A named key that is not in
        :data:`METRICS`, e.g. ``delay_mean``, is drawn with its name as the axis label.
    labels : sequence of str, optional
        A legend entry per log. None: the file names without their suffix (the paths, where two
        files have the same name).

    Returns
    -------
    matplotlib.figure.Figure
        The figure written, drawn on the Agg canvas; not registered with ``pyplot``. Each
        axes' label (``Axes.get_label()``) is ``"METRIC vs X"`` or ``"throughput vs time"``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    ValueError
        If ``output`` has another suffix, ``x`` names another axis, a metric is in none of the
        logs, ``labels`` does not give one label per log, or a log cannot be parsed.
    FileNotFoundError
        If a log, or the folder of ``output``, does not exist.
    IsADirectoryError
        If ``output`` is a directory.

    Examples
    --------
    Two runs' logs (``dpsgd train ... --log-json``), drawn against time and updates:

    >>> import os, tempfile
    >>> from dpsgd.plotting import plot_runs
    >>> folder = tempfile.mkdtemp()
    >>> for name, losses in (("one", [0.5, 0.4, 0.35]), ("two", [0.45, 0.37, 0.34])):
    ...     with open(os.path.join(folder, name + ".jsonl"), "w") as f:
    ...         for i, loss in enumerate(losses, 1):
    ...             _ = f.write(f'{{"time": {i / 10}, "updates": {100 * i}, "test_log_loss": {loss}}}\\n')
    >>> fig = plot_runs([os.path.join(folder, "one.jsonl"), os.path.join(folder, "two.jsonl")],
    ...                 os.path.join(folder, "curves.png"), labels=["1 thread", "2 threads"])
    >>> sorted(ax.get_label() for ax in fig.axes)
    ['test_log_loss vs time', 'test_log_loss vs updates', 'throughput vs time']

    The gallery's :ref:`sphx_glr_auto_examples_plot_threads_learning_curve.py` draws real runs.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    output = os.fspath(output)
    fmt = os.path.splitext(output)[1].lower()
    if fmt not in FORMATS:
        raise ValueError(f"{output}: the suffix sets the format; use {', '.join(FORMATS)}")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{output}: the folder {folder} does not exist")
    if os.path.isdir(output):
        raise IsADirectoryError(f"{output}: is a directory; give a file name")
    x = [x] if isinstance(x, str) else list(x)
    unknown = [axis for axis in x if axis not in X_AXES]
    if unknown or not x:
        raise ValueError(f"x must name {' and/or '.join(map(repr, X_AXES))}, got {unknown or x}")
    if not paths:
        raise ValueError("no log to plot")
    labels = _labels(paths, labels)
    runs = [read_log(path) for path in paths]
    metrics = _metrics(paths, runs, metrics)
    simulated = {r.get("clock") == "simulated" for records in runs for r in records}
    time_label = {frozenset({True}): SIMULATED_TIME, frozenset({False}): X_AXES["time"]}.get(
        frozenset(simulated), "time (s): wall-clock and simulated")
    figure_class, canvas_class, line_class = _matplotlib()

    fig = figure_class(figsize=(5.0 * len(x), 2.6 * (len(metrics) + 1)), layout="constrained")
    canvas_class(fig)
    grid = fig.add_gridspec(len(metrics) + 1, len(x))
    for row, metric in enumerate(metrics):
        for column, axis in enumerate(x):
            ax = fig.add_subplot(grid[row, column], label=f"{metric} vs {axis}")
            for i, (records, label) in enumerate(zip(runs, labels)):
                points = [(r[axis], _value(r[metric])) for r in records if metric in r]
                if points:
                    ax.plot(*zip(*points), marker="o", markersize=3, color=f"C{i}", label=label)
            ax.set_xlabel(time_label if axis == "time" else X_AXES[axis])
            ax.set_ylabel(METRICS.get(metric, metric))
            if metric in LOG_SCALE:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    ax = fig.add_subplot(grid[len(metrics), :], label="throughput vs time")
    rates = []
    for i, (records, label) in enumerate(zip(runs, labels)):
        steps = _throughput(records)
        if steps:
            ax.plot(*zip(*steps), drawstyle="steps-pre", color=f"C{i}", label=label)
            rates += [rate for _, rate in steps if rate > 0]
    if rates and max(rates) > 100 * min(rates):  # runs of both tasks, or far apart: log scale
        ax.set_yscale("log")
    ax.set_xlabel(time_label)
    ax.set_ylabel("throughput\n(updates/s between log lines)")
    ax.grid(alpha=0.3)
    # one entry per run, whichever panels it is in
    handles = [line_class([], [], marker="o", markersize=3, color=f"C{i}", label=label)
               for i, label in enumerate(labels)]
    fig.axes[0].legend(handles=handles, fontsize="small")
    _save(fig, output, fmt[1:])
    return fig


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value(value):
    """A metric's value as a float; NaN (a gap in the line) for what is not a number."""
    return float(value) if _is_number(value) else math.nan


def _labels(paths, labels):
    if labels is not None:
        labels = [str(label) for label in labels]
        if len(labels) != len(paths):
            raise ValueError(f"{len(labels)} label(s) for {len(paths)} log(s); give one label per log")
        return labels
    stems = [os.path.splitext(os.path.basename(os.fspath(path)))[0] for path in paths]
    return stems if len(set(stems)) == len(stems) else [os.fspath(path) for path in paths]


def _metrics(paths, runs, metrics):
    """The metrics to draw: those named, each checked against the logs, or the known ones present."""
    present = {key for records in runs for r in records for key, value in r.items()
               if key not in _NOT_METRICS and _is_number(value)}
    if metrics is None:
        return [metric for metric in METRICS if metric in present]
    metrics = list(dict.fromkeys(metrics))
    for metric in metrics:
        if metric not in present:
            logs = ", ".join(os.fspath(path) for path in paths)
            raise ValueError(f"metric {metric!r} is in none of the logs ({logs}); they have: "
                             f"{', '.join(sorted(present)) or 'no metric'}")
    return metrics


def _throughput(records):
    """``(time, updates per second)`` points of a ``steps-pre`` line: each interval between
    consecutive lines is drawn at its own rate, a stretch of intervals starting at its first
    line's time. An interval whose time does not advance (logs run one after another in one
    file) is a gap."""
    steps = []
    for before, after in zip(records, records[1:]):
        seconds = after["time"] - before["time"]
        rate = (after["updates"] - before["updates"]) / seconds if seconds > 0 else math.nan
        if not steps or math.isnan(steps[-1][1]):
            steps.append((before["time"], rate))
        steps.append((after["time"], rate))
    return steps


def _matplotlib():
    """matplotlib's Figure, Agg canvas and Line2D classes (no pyplot: nothing global is touched)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise ImportError(f"plotting needs matplotlib: pip install 'dpsgd[plot]' ({exc})") from exc
    return Figure, FigureCanvasAgg, Line2D


def _save(fig, output, fmt):
    """Write ``fig`` to ``output`` through a temporary file in its folder, renamed over it."""
    from dpsgd.persist import atomic_file

    with atomic_file(output) as f:
        fig.savefig(f, format=fmt, dpi=120)
