"""The exchange interface, and :func:`open_exchange`, which builds one by name.

An exchange shares a problem's parameters between workers. Every exchange has:

- ``size``, ``row_size``: float64 parameters, seen as rows of ``row_size`` by the row calls;
- ``in_place``: True when ``pull`` lends the parameters themselves (one process): the
  round's steps write them and ``push(None)`` only counts the round;
- ``synchronous``: True when ``push`` is collective (every rank must take part in every
  round: :meth:`agree_rounds` gives their number, :meth:`skip` takes part with nothing);
- ``pull(out=None) -> (params, version)`` and ``pull_rows(rows, out=None)``: the parameters
  and the clock read just before them (every push numbered below ``version`` is in them);
- ``push(change, *, step=0.0, updates=1) -> version``: add a :mod:`dpsgd.comm.codecs`
  change; ``step`` joins the step sum (delay-adaptive policies), ``updates`` the count of
  updates (the global budget);
- ``clock()`` (pushes so far), ``updates()``, ``step_sum()``, ``ticket()`` (a step index of
  one's own; the asynchronous exchanges also ``ticket_below(limit)``: one only while fewer
  than ``limit`` were drawn, else None), ``request_stop()`` / ``stop_requested()`` (a flag
  every rank sees),
  ``exclusive()`` (a context manager holding a mutex every worker shares, for a step that
  reads and rewrites the parameters: PIAG's master step),
  ``publish_read()`` / ``retire_read()`` / ``oldest_read()`` (each worker's read in flight,
  published; the clock now with the oldest read's clock and step sum and the step sum now:
  the delay the engine's policies see; the asynchronous exchanges only),
  ``final(out=None)`` (the parameters once every rank's pushes are in; collective), and
  ``close()``; each is a context manager;
- ``bytes_sent``, ``bytes_received``: the payload this rank has moved so far (parameters,
  changes and their indices; not MPI's own headers, nor the few counters beside them);
- ``rows_move_whole(n_rows)``: True where a pull or push of ``n_rows`` rows moves the whole
  vector anyway (the server on one machine): a problem may then pull and push it whole, with
  no gather or scatter of its rows.

The kinds: ``"server"`` (:mod:`dpsgd.comm.server`, DPSGD's asynchronous parameter server),
``"allreduce"`` (:mod:`dpsgd.comm.allreduce`, synchronous averaging), ``"gossip"``
(:mod:`dpsgd.comm.gossip`, D-PSGD: synchronous averaging with graph neighbours),
``"async_gossip"`` (:mod:`dpsgd.comm.async_gossip`, AD-PSGD: atomic pairwise averages with one
neighbour at a time, nobody waiting) and, in one process,
:mod:`dpsgd.comm.local`.
"""

import contextlib

from dpsgd.comm.codecs import Dense, Rows, Sparse

EXCHANGES = ("server", "allreduce", "gossip", "async_gossip")
# the exchanges whose pushes the engine's step policies do not scale: those whose rounds every
# rank takes together (no delays), and asynchronous gossip (a change lands on its own rank's
# copy; see dpsgd.comm.async_gossip)
UNSCALED = ("allreduce", "gossip", "async_gossip")
# what the exchanges take: the gossip exchanges' graphs of ranks (dpsgd.comm.gossip.neighbours)
# and the compressions of the synchronous ones (dpsgd.comm.allreduce); here, so that checking a
# fit's arguments imports no exchange
GRAPHS = ("exponential", "ring")
COMPRESSIONS = ("natural",)


# Between machines a sparse change moves fewer bytes than the dense vector while its entries
# (a value and an index each) are fewer than about half; a quarter leaves room for the indexed
# datatype's own cost (not measured between machines).
SPARSE_SHARE = 0.25


class Exchange:
    """The defaults of the interface: asynchronous, nothing to agree on, nothing to free.

    ``sparse_share``: a change that touches at most this share of the entries moves as its
    entries (a problem need not look for the touched entries where it is 0)."""

    synchronous = False
    in_place = False
    delay_scaled = True  # the engine's step policy scales the pushes (asynchronous exchanges)
    sparse_share = SPARSE_SHARE
    bytes_sent = bytes_received = 0

    def rows_move_whole(self, n_rows):
        """Whether ``n_rows`` rows move as the whole vector (the module docstring): not by default."""
        return False

    def skip(self):
        """Take part in a round without a change: nothing to do where no rank waits for another."""

    def agree_rounds(self, rounds):
        """The rounds this rank runs: its own, where no rank waits for another."""
        return rounds

    def exclusive(self):
        """A context manager that holds the workers' shared mutex (asynchronous exchanges)."""
        raise ValueError(f"the {type(self).__name__} has no shared mutex: a master's step "
                         f"(PIAG) needs an asynchronous exchange ('server')")

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class WindowExchange(Exchange):
    """An exchange over a window (``self._window``: a ParameterWindow or a LocalWindow), which
    holds the parameters and the counters."""

    def _push_change(self, change, step, updates):
        """Push a codecs change by the window call that fits its kind."""
        window = self._window
        if isinstance(change, Dense):
            return window.push(change.values, step=step, updates=updates)
        if isinstance(change, Rows):
            return window.push_rows(change.rows, change.values, step=step, updates=updates)
        if isinstance(change, Sparse):
            return window.push_sparse(change.indices, change.values, step=step, updates=updates)
        raise TypeError(f"cannot push a {type(change).__name__}")

    @contextlib.contextmanager
    def exclusive(self):
        self._window.lock()
        try:
            yield self
        finally:
            self._window.unlock()

    def clock(self):
        return self._window.clock()

    def updates(self):
        return self._window.updates()

    def step_sum(self):
        return self._window.step_sum()

    def ticket(self):
        return self._window.ticket()

    def ticket_below(self, limit=None):
        return self._window.ticket_below(limit)

    def publish_read(self):
        return self._window.publish_read()

    def retire_read(self):
        self._window.retire_read()

    def oldest_read(self):
        return self._window.oldest_read()

    def request_stop(self):
        self._window.request_stop()

    def stop_requested(self):
        return self._window.stop_requested()


def check_compression(compression):
    """None or one of :data:`COMPRESSIONS`; raises a ValueError for anything else."""
    if compression is not None and compression not in COMPRESSIONS:
        raise ValueError(f"compression must be None or one of {list(COMPRESSIONS)}, got {compression!r}")
    return compression


# the exchanges whose changes can travel compressed (the server's and async gossip's one-sided
# operations add or average raw values in the target's memory: nothing there could decode)
COMPRESSED = ("allreduce", "gossip")


def check_exchange(kind, compression=None, graph="exponential"):
    """Raise a ValueError unless ``kind`` names an exchange, ``compression`` is one it can
    carry (natural compression: with 'allreduce' and 'gossip') and ``graph`` a graph of ranks,
    other than the default only for the gossip exchanges.

    Parameters
    ----------
    kind : str
        The exchange: one of :data:`EXCHANGES`.
    compression : {None, 'natural'}, default=None
        What the changes travel as.
    graph : {'exponential', 'ring'}, default='exponential'
        The gossip exchanges' graph of ranks.

    Raises
    ------
    ValueError
        For an unknown exchange, compression or graph, or one the exchange does not take.

    Examples
    --------
    >>> from dpsgd.comm import check_exchange
    >>> check_exchange("allreduce", compression="natural")
    >>> check_exchange("server", compression="natural")
    Traceback (most recent call last):
        ...
    ValueError: compression='natural' travels with exchange='allreduce' or 'gossip' only (got exchange='server')
    """
    if kind not in EXCHANGES:
        raise ValueError(f"exchange must be one of {list(EXCHANGES)}, got {kind!r}")
    if graph not in GRAPHS:
        raise ValueError(f"gossip_graph must be one of {list(GRAPHS)}, got {graph!r}")
    if graph != "exponential" and kind not in ("gossip", "async_gossip"):
        raise ValueError(f"gossip_graph={graph!r} is the graph of exchange='gossip' or 'async_gossip' "
                         f"(got exchange={kind!r})")
    if check_compression(compression) is not None and kind not in COMPRESSED:
        raise ValueError(f"compression={compression!r} travels with exchange='allreduce' or 'gossip' only "
                         f"(got exchange={kind!r})")


def open_exchange(kind, topology, size, *, initial=None, row_size=1, in_place=True, adopt=False, network=None,
                  compression=None, graph="exponential"):
    """An exchange of ``size`` parameters between the ranks of ``topology``.

    Parameters
    ----------
    kind : {'server', 'allreduce', 'gossip', 'async_gossip'}
        Ignored in one process, which always uses :class:`dpsgd.comm.local.LocalExchange`.
    topology : dpsgd.comm.topology.Topology
        The ranks (collective: every rank opens the exchange).
    size : int
        The number of parameters.
    initial : array, optional
        Rank 0's initial parameters.
    row_size : int, default=1
        The length of a row, for problems whose parameters are rows (LDA's topics).
    in_place : bool, default=True
        For one process: lend the parameters to the local steps (see LocalExchange).
    adopt : bool, default=False
        For one process, with ``in_place``: lend ``initial`` itself (a float64 array of
        ``size``), not a copy.
    network : optional
        A network model to add to the exchange across ranks (:func:`dpsgd.comm.network.make_network`
        takes it; one process has no network).
    compression : {None, 'natural'}
        What the changes travel as across ranks (:class:`dpsgd.comm.allreduce.AllreduceExchange`,
        :class:`dpsgd.comm.gossip.GossipExchange`).
    graph : {'exponential', 'ring'}, default='exponential'
        The gossip exchanges' graph of ranks (:func:`dpsgd.comm.gossip.neighbours`).

    Returns
    -------
    Exchange
        The exchange, with the interface of :class:`Exchange`.

    Examples
    --------
    In one process every kind opens the in-process exchange:

    >>> from dpsgd.comm import Topology, open_exchange
    >>> exchange = open_exchange("server", Topology(), 3, in_place=False)
    >>> type(exchange).__name__
    'LocalExchange'
    """
    check_exchange(kind, compression, graph)
    if network is not None:
        from dpsgd.comm.network import Simulated, make_network

        model = make_network(network)
        if topology.distributed:
            return Simulated(_open(kind, topology, size, initial, row_size, compression, graph), model,
                             topology.rank, clock=topology.now, sleep=topology.sleep,
                             min_sleep=0.0 if topology.virtual else 1e-3)
    if not topology.distributed:
        from dpsgd.comm.local import LocalExchange

        return LocalExchange(size, initial=initial, row_size=row_size, in_place=in_place, adopt=adopt)
    return _open(kind, topology, size, initial, row_size, compression, graph)


def _open(kind, topology, size, initial, row_size, compression=None, graph="exponential"):
    """The exchange ``kind`` between the ranks of ``topology`` (distributed)."""
    if kind == "allreduce":
        from dpsgd.comm.allreduce import AllreduceExchange

        return AllreduceExchange(topology, size, initial=initial, row_size=row_size, compression=compression)
    if kind == "gossip":
        from dpsgd.comm.gossip import GossipExchange

        return GossipExchange(topology, size, initial=initial, row_size=row_size, compression=compression,
                              graph=graph)
    if kind == "async_gossip":
        from dpsgd.comm.async_gossip import AsyncGossipExchange

        return AsyncGossipExchange(topology, size, initial=initial, row_size=row_size, graph=graph)
    from dpsgd.comm.server import ServerExchange

    return ServerExchange(topology, size, initial=initial, row_size=row_size)
