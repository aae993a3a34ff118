"""The exchange of a single process: no MPI, no copies.

Every single-process fit runs through :class:`LocalExchange` and the engine's one loop, as
the ranks of a distributed fit do. By default it lends the problem the parameters
themselves (``in_place``): a round's lock-free steps write them directly, and a push only
counts the round, so one process pays nothing for the exchange. ``in_place=False`` pulls a
copy and pushes changes, as a rank of a distributed fit does: tests use it to run the
distributed path in one process.
"""

from dpsgd.comm.exchange import WindowExchange
from dpsgd.comm.window import LocalWindow


class LocalExchange(WindowExchange):
    """The exchange interface in one process (see :mod:`dpsgd.comm.exchange`).

    Every single-process fit runs through it, so one code path serves one and many ranks.

    Parameters
    ----------
    size : int
        The number of parameters.
    initial : array-like of shape (size,), optional
        Their first values; zeros by default.
    row_size : int, default=1
        The length of a row, for problems whose parameters are rows (LDA's topics).
    in_place : bool, default=True
        Lend the parameters themselves: a round writes them in place and a push only counts
        it (no copy, no cost). False copies them as a distributed exchange does (the tests
        run the distributed path in one process this way).
    adopt : bool, default=False
        With ``in_place``, lend ``initial`` itself (a float64 array of ``size``: a run then
        writes the caller's array) rather than a copy.

    Examples
    --------
    >>> from dpsgd.comm.codecs import Dense
    >>> from dpsgd.comm.local import LocalExchange
    >>> exchange = LocalExchange(3, in_place=False)
    >>> params, version = exchange.pull()
    >>> _ = exchange.push(Dense([1.0, 0.0, -1.0]))
    >>> params, version = exchange.final()
    >>> params.tolist(), version
    ([1.0, 0.0, -1.0], 1)
    """

    rank, ranks = 0, 1

    def __init__(self, size, *, initial=None, row_size=1, in_place=True, adopt=False):
        self._window = LocalWindow(size, initial=initial, row_size=row_size, copy=not (adopt and in_place))
        self.size, self.row_size, self.in_place = self._window.size, self._window.row_size, in_place

    def pull(self, out=None):
        if self.in_place:
            return self._window.buffer(), self._window.clock()
        return self._window.pull(out)

    def pull_rows(self, rows, out=None):
        if self.in_place:  # the engine pulls whole parameters in place; rows only for a copy
            raise ValueError("an in-place exchange lends the whole parameters: pull() them")
        return self._window.pull_rows(rows, out)

    def push(self, change, *, step=0.0, updates=1):
        """Add ``change`` (a :mod:`dpsgd.comm.codecs` change, or None when the round wrote
        the parameters in place) and count the push."""
        if change is None:
            return self._window.advance(step, updates)
        return self._push_change(change, step, updates)

    def final(self, out=None):
        return self.pull(out)
