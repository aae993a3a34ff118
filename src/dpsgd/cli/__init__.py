"""The ``dpsgd`` command.

    dpsgd info
    dpsgd train lda [--corpus docword.txt[.gz] [--vocab vocab.txt]] [--topics K] [--passes P] ...
    dpsgd train linear [--data FILE.svm [--test FILE.svm]] [--loss log_loss] [--epochs 20] ...
    dpsgd train prox [--data FILE.svm [--test FILE.svm]] [--solver auto|async_bcd|piag] [--C 1.0] ...
    dpsgd train a2c [--env CartPole-v1] [--timesteps 500000] [--stop-at-reward R] [--threads N] ...
    dpsgd predict MODEL DATA.svm [--scores | --proba] [--output FILE]
    dpsgd transform MODEL DOCWORD [--output FILE]
    dpsgd topics MODEL [--vocab FILE] [--top-words N]
    dpsgd plot LOG [LOG ...] [-o curve.png] [--x time|updates|both] [--metric NAME ...] [--label TEXT ...]

With no ``--corpus``, ``train lda`` runs on a corpus drawn from LDA's generative model and
reports how well the true topics were recovered; with no ``--data``, ``train linear`` trains
on the bundled a9a data set. Every option and path is checked before any work starts; a
mistake ends with ``dpsgd: error: ...`` and exit code 2, Ctrl-C with 130 (keeping the last
checkpoint), a closed pipe (``dpsgd ... | head``) quietly with 141.

The modules: ``parser`` (arguments), ``checks`` (paths, options, memory), ``linear``, ``lda``
and ``a2c`` (training), ``use`` (predict, transform, topics), ``info``, ``plot``, ``common``;
the progress report is :mod:`dpsgd.progress`.
"""

import sys

from dpsgd.cli.checks import UsageError, check_train_args
from dpsgd.cli.common import silence_stdout
from dpsgd.cli.parser import build_parser
from dpsgd.comm.topology import Topology

__all__ = ["UsageError", "build_parser", "main"]

# exit codes: bad input as argparse's; Ctrl-C and a closed pipe as a shell reports their signals
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPT, EXIT_PIPE = 1, 2, 130, 141


def _run(args, comm):
    if args.command == "info":
        from dpsgd.cli.info import info

        return info(args, comm)
    if args.command == "plot":
        from dpsgd.cli.plot import plot

        return plot(args, comm)
    if args.command == "train":
        if args.task == "prox":  # its own checks, in dpsgd.cli.prox
            from dpsgd.cli.prox import train_prox

            return train_prox(args, comm)
        topology = Topology(comm)
        check_train_args(args, root=topology.is_root, distributed=topology.distributed)
        if args.task == "lda":
            from dpsgd.cli.lda import train_lda

            return train_lda(args, comm)
        if args.task == "a2c":
            from dpsgd.cli.a2c import train_a2c

            return train_a2c(args, comm)
        from dpsgd.cli.linear import train_linear

        return train_linear(args, comm)
    from dpsgd.cli import use

    if args.command != "topics":
        from dpsgd.cli.checks import check_output

        check_output("--output", args.output)
    return getattr(use, args.command)(args)


def _fail(comm, code, head, tail=""):
    """Write ``dpsgd: HEAD (rank r of n)TAIL`` and end with ``code``; under MPI end every
    rank, which may be waiting in a collective for this one."""
    topology = Topology(comm)
    where = f" (rank {topology.rank} of {topology.ranks})" if topology.distributed else ""
    print(f"dpsgd: {head}{where}{tail}", file=sys.stderr)
    if comm is not None:
        from dpsgd.comm.failure import abort

        abort(comm, code)
    return code


def main(argv=None):
    """Run the ``dpsgd`` command with ``argv`` (default: ``sys.argv[1:]``); the exit code.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``dpsgd``; None: ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 on success, 2 for a usage error, bad input or too little memory,
        1 for another error, 130 on Ctrl-C and 141 on a closed pipe.

    Examples
    --------
    The same as ``dpsgd train linear --epochs 2 --quiet`` in a shell:

    >>> from dpsgd.cli import main
    >>> main(["train", "linear", "--epochs", "2", "--quiet"])  # doctest: +SKIP
    0
    """
    args = build_parser().parse_args(argv)
    comm = None
    try:
        if args.command in ("train", "info", "plot"):
            from dpsgd.comm import world

            comm = world()  # set when started by mpiexec with several ranks
            if comm is not None and args.command == "train":
                from dpsgd.comm import abort_on_exception

                abort_on_exception(comm)
        code = _run(args, comm)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:  # `dpsgd ... | head`: the reader has gone; nothing more to say
        silence_stdout()
        return EXIT_PIPE
    except KeyboardInterrupt:
        kept = f"; the last checkpoint is {args.checkpoint}" if getattr(args, "checkpoint", None) else ""
        return _fail(comm, EXIT_INTERRUPT, "interrupted", kept)
    except (ValueError, TypeError, FloatingPointError) as exc:  # UsageError, bad files, bad parameters
        return _fail(comm, EXIT_USAGE, "error", f": {exc}")
    except MemoryError as exc:
        return _fail(comm, EXIT_USAGE, "error", f": out of memory ({exc or 'MemoryError'}); "
                     "use fewer topics, words or documents")
    except OSError as exc:  # e.g. a full disk while writing a checkpoint
        return _fail(comm, EXIT_ERROR, "error", f": {exc}")

