"""An exception on one rank must end the whole job, promptly and with that rank's message.

Without this, a rank that raises runs MPI_Finalize (or frees a window, which is
collective) on its way out while the other ranks wait for it in a collective or keep
pushing: the job hangs until a time limit. (This is what ``python -m mpi4py script.py``
does for a script.) Nothing on an error path may wait for the other ranks, so a failing
rank prints its message and calls ``MPI_Abort``, which ends every rank at once.
"""

import contextlib
import functools
import sys
import time
import traceback
from typing import TYPE_CHECKING, Callable, Iterator, TypeVar

if TYPE_CHECKING:
    from mpi4py import MPI

F = TypeVar("F", bound=Callable)

# MPI_Abort tears the job down at once; mpiexec may not have forwarded the message just
# written to stderr by then (seen now and then with MPICH's hydra). A short pause lets it.
_FORWARD_SECONDS = 0.2

# exit codes, as the CLI uses them: 2 for bad input (ValueError and its kind), 130 for Ctrl-C
_CODE_ERROR, _CODE_INPUT, _CODE_INTERRUPT = 1, 2, 130


def abort(comm: "MPI.Comm", code: int) -> None:
    """Flush stderr, give mpiexec a moment to forward it, then Abort ``comm``."""
    sys.stderr.flush()
    time.sleep(_FORWARD_SECONDS)
    comm.Abort(code)


def report_and_abort(comm, exc_type, exc, tb):
    """Write which rank failed and why to stderr, then Abort ``comm``.

    A ``ValueError`` (bad input, divergence) is written as one ``dpsgd: error`` line, as the
    command line writes it; anything else with its traceback. Ctrl-C exits with 130."""
    rank, size = comm.Get_rank(), comm.Get_size()
    if issubclass(exc_type, KeyboardInterrupt):
        sys.stderr.write(f"dpsgd: interrupted (rank {rank} of {size}); ending the job\n")
        abort(comm, _CODE_INTERRUPT)
    elif issubclass(exc_type, ValueError):
        sys.stderr.write(f"dpsgd: error (rank {rank} of {size}): {exc}; aborting the job\n")
        abort(comm, _CODE_INPUT)
    else:
        sys.stderr.write(f"dpsgd: rank {rank} of {size} failed; aborting the job\n")
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        abort(comm, _CODE_ERROR)


@contextlib.contextmanager
def fail_together(comm: "MPI.Comm | None") -> Iterator[None]:
    """Run the block; if it raises on this rank, end every rank of ``comm`` (``MPI_Abort``).

    Wraps every distributed ``fit``: once ranks exchange asynchronously, one rank's
    exception (a kernel, a callback, Ctrl-C) leaves the others waiting for it forever in a
    collective. ``comm=None`` (one process) runs the block unchanged.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None
        The ranks to end together; None (one process) runs the block unchanged.

    Examples
    --------
    >>> from dpsgd.comm import fail_together
    >>> with fail_together(comm):  # doctest: +SKIP
    ...     exchange_with_the_other_ranks()
    """
    if comm is None or not hasattr(comm, "Abort"):  # one process, or not a communicator
        yield
        return
    try:
        yield
    except BaseException:
        report_and_abort(comm, *sys.exc_info())
        raise  # reached only if Abort returned (it does not with MPICH or Open MPI)


def abort_on_exception(comm: "MPI.Comm | None" = None) -> Callable[..., None]:
    """Install a ``sys.excepthook`` that reports the exception, then ``Abort``s ``comm``.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The communicator to abort; ``MPI.COMM_WORLD`` by default.

    Returns
    -------
    callable
        The hook installed (it calls the previous hook after reporting).

    Examples
    --------
    The first lines of a script run under ``mpiexec``:

    >>> from dpsgd.comm import abort_on_exception
    >>> abort_on_exception()  # doctest: +SKIP
    """
    from mpi4py import MPI

    comm = MPI.COMM_WORLD if comm is None else comm
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        try:
            report_and_abort(comm, exc_type, exc, tb)
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return hook


def ends_job_on_error(method: F) -> F:
    """Decorate an estimator method so that, with ``self.comm`` set, an exception on this
    rank ends every rank (see :func:`fail_together`); without ``comm`` nothing changes.

    Parameters
    ----------
    method : callable
        A method of an estimator that may have a ``comm`` attribute.

    Returns
    -------
    callable
        The wrapped method.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from dpsgd.comm import ends_job_on_error
    >>> class Model(BaseEstimator):
    ...     def __init__(self, comm=None):
    ...         self.comm = comm
    ...     @ends_job_on_error
    ...     def fit(self, X, y=None):
    ...         return self
    >>> Model().fit([[0.0]]).comm is None
    True
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with fail_together(getattr(self, "comm", None)):
            return method(self, *args, **kwargs)

    return wrapper
