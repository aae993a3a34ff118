"""``dpsgd plot``: the learning curves of ``--log-json`` logs, drawn into a PNG, PDF or SVG file
(:func:`dpsgd.plotting.plot_runs`); rank 0 alone draws under mpiexec."""

import os

from dpsgd.cli.checks import UsageError, check_input, check_output

# --x: the x axes drawn
X_CHOICES = {"time": ("time",), "updates": ("updates",), "both": ("time", "updates")}


def plot(args, comm=None):
    """Draw the logs ``args.logs`` into ``args.output`` (default: the first log's name with
    .png); the exit code.

    The paths are checked here; plot_runs checks the rest (the output's suffix, the labels, each
    log's lines, the metrics) with ValueErrors naming the file and line, before it loads
    matplotlib."""
    from dpsgd.comm import Topology

    if not Topology(comm).is_root:
        return 0
    output = args.output or os.path.splitext(args.logs[0])[0] + ".png"
    check_output("--output", output)
    for path in args.logs:
        check_input("LOG", path)
    from dpsgd.plotting import plot_runs

    try:
        plot_runs(args.logs, output, x=X_CHOICES[args.x], metrics=args.metrics, labels=args.labels)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    print(f"saved: {output}")
    return 0
