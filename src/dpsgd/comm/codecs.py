"""What a push carries: the whole vector, some rows of a matrix, or some entries, and any of
them with its values natural-compressed.

A problem's local steps return one of these; the engine scales it by the step policy, and
the exchange chooses how to move it (a server on one machine moves a change that touches
many rows as the whole vector: see :mod:`dpsgd.comm.server`). ``nbytes`` is what a change
would move over the wire, counting 8 bytes per value and per index (the int64 an exchange
sends, whatever the dtype held here), so that exchanges can record the bytes pushed.
:class:`Natural` wraps any of the three: its values travel as 2-byte codes.
"""

import numpy as np

from dpsgd._kernels import natural

# bytes on the wire of one float64 value and of one (int64) index
_VALUE_BYTES = 8
_INDEX_BYTES = 8


class _Change:
    """What Dense, Rows and Sparse share: the bytes they move (``index_nbytes`` is each
    kind's own)."""

    __slots__ = ()
    index_nbytes = 0

    @property
    def nbytes(self):
        """The bytes it moves: 8 per value, 8 per index."""
        return self.index_nbytes + _VALUE_BYTES * np.size(self.values)


class Dense(_Change):
    """A change to every parameter: ``values`` of shape (size,).

    Parameters
    ----------
    values : ndarray of shape (size,)
        The change of each parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.comm.codecs import Dense
    >>> change = Dense(np.array([1.0, -2.0]))
    >>> change.scaled(0.5).values.tolist(), change.nbytes
    ([0.5, -1.0], 16)
    """

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = values

    def scaled(self, factor):
        return Dense(self.values * factor)

    def dense(self, size, row_size=1):
        return self.values

    def add_to(self, out, row_size=1):
        """``out += self.dense(out.size, row_size)``, in place."""
        out += self.values

    def with_values(self, values):
        return Dense(values)


class Rows(_Change):
    """A change to some rows of the parameters seen as a matrix of ``row_size`` columns.

    Parameters
    ----------
    rows : ndarray of int
        The rows changed, strictly increasing.
    values : ndarray of shape (rows.size, row_size)
        Their changes.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.comm.codecs import Rows
    >>> Rows(np.array([1]), np.array([[1.0, 2.0]])).dense(6, row_size=2).tolist()
    [0.0, 0.0, 1.0, 2.0, 0.0, 0.0]
    """

    __slots__ = ("rows", "values")

    def __init__(self, rows, values):
        self.rows, self.values = rows, values

    def scaled(self, factor):
        return Rows(self.rows, self.values * factor)

    def dense(self, size, row_size=1):
        out = np.zeros(size)
        out.reshape(-1, row_size)[self.rows] = self.values
        return out

    def add_to(self, out, row_size=1):
        """``out += self.dense(out.size, row_size)``, in place (the rows are unique)."""
        out.reshape(-1, row_size)[self.rows] += self.values

    def with_values(self, values):
        return Rows(self.rows, values)

    @property
    def index_nbytes(self):
        return _INDEX_BYTES * np.size(self.rows)


class Sparse(_Change):
    """A change to some entries: unique ``indices`` and their ``values``.

    Parameters
    ----------
    indices : ndarray of int
        The entries changed, each once.
    values : ndarray
        Their changes.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.comm.codecs import Sparse
    >>> out = np.zeros(4)
    >>> Sparse(np.array([0, 3]), np.array([1.0, 2.0])).add_to(out)
    >>> out.tolist()
    [1.0, 0.0, 0.0, 2.0]
    """

    __slots__ = ("indices", "values")

    def __init__(self, indices, values):
        self.indices, self.values = indices, values

    def scaled(self, factor):
        return Sparse(self.indices, self.values * factor)

    def dense(self, size, row_size=1):
        out = np.zeros(size)
        out[self.indices] = self.values
        return out

    def add_to(self, out, row_size=1):
        """``out += self.dense(out.size)``, in place (the indices are unique)."""
        out[self.indices] += self.values

    def with_values(self, values):
        return Sparse(self.indices, values)

    @property
    def index_nbytes(self):
        return _INDEX_BYTES * np.size(self.indices)


class Natural:
    """A Dense, Rows or Sparse change whose values travel natural-compressed.

    Each value is rounded at random to one of the two signed powers of two around it,
    unbiased, with variance at most 1/8 of its square, and travels as a 2-byte code
    (:mod:`dpsgd._kernels.natural`); the indices travel as they are. So a Natural change is
    an unbiased estimate of the change it encodes, at a quarter of the bytes of its values.
    Made by :meth:`Natural.encode`.

    Parameters
    ----------
    codes : ndarray of uint16
        One code per value, the values in C order.
    frame : Dense, Rows or Sparse
        The encoded change with its values taken out (``values`` is None): its kind and
        its indices, what decoding fills.
    shape : tuple
        The shape of the encoded values.

    Examples
    --------
    Powers of two travel exactly:

    >>> import numpy as np
    >>> from dpsgd.comm.codecs import Dense, Natural
    >>> change = Natural.encode(Dense(np.array([1.0, -0.25, 4.0])), seed=0)
    >>> change.decoded().values.tolist(), change.nbytes
    ([1.0, -0.25, 4.0], 6)
    """

    __slots__ = ("codes", "frame", "shape")

    def __init__(self, codes, frame, shape):
        self.codes, self.frame, self.shape = codes, frame, shape

    @classmethod
    def encode(cls, change, seed, n_threads=1):
        """Natural-compress the values of ``change`` (a Dense, Rows or Sparse).

        Parameters
        ----------
        change : Dense, Rows or Sparse
            Finite values; a NaN or an inf raises ``ValueError``.
        seed : int
            0 <= seed < 2**64. Give every encoding its own (e.g. from the rank's seed and the
            push count): unbiasedness over pushes needs independent roundings.
        n_threads : int, default=1
            Threads of the kernel; the codes do not depend on it.

        Returns
        -------
        Natural
        """
        values = np.asarray(change.values)
        codes = natural.encode(values.reshape(-1), seed, n_threads)
        return cls(codes, change.with_values(None), values.shape)

    def decoded(self):
        """The change this stands for: the frame's kind with the rounded values."""
        return self.frame.with_values(natural.decode(self.codes).reshape(self.shape))

    def dense(self, size, row_size=1):
        return self.decoded().dense(size, row_size)

    def add_to(self, out, row_size=1):
        """``out += self.dense(out.size, row_size)``, in place; a Dense one without a temporary."""
        if isinstance(self.frame, Dense):
            natural.decode_add(self.codes, out)
        else:
            self.decoded().add_to(out, row_size)

    @property
    def nbytes(self):
        """The bytes it moves: 2 per value, 8 per index."""
        return self.codes.nbytes + self.frame.index_nbytes
