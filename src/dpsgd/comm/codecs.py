"""What a push carries: the whole vector, some rows of a matrix, or some entries.

A problem's local steps return one of these; the engine scales it by the step policy, and
the exchange chooses how to move it (a server on one machine moves a change that touches
many rows as the whole vector: see :mod:`dpsgd.comm.server`).
"""

import numpy as np


class Dense:
    """A change to every parameter: ``values`` of shape (size,)."""

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = values

    def scaled(self, factor):
        return Dense(self.values * factor)

    def dense(self, size, row_size=1):
        return self.values


class Rows:
    """A change to some rows of the parameters seen as a matrix of ``row_size`` columns:
    ``rows`` (strictly increasing) and ``values`` of shape (rows.size, row_size)."""

    __slots__ = ("rows", "values")

    def __init__(self, rows, values):
        self.rows, self.values = rows, values

    def scaled(self, factor):
        return Rows(self.rows, self.values * factor)

    def dense(self, size, row_size=1):
        out = np.zeros(size)
        out.reshape(-1, row_size)[self.rows] = self.values
        return out


class Sparse:
    """A change to some entries: unique ``indices`` and their ``values``."""

    __slots__ = ("indices", "values")

    def __init__(self, indices, values):
        self.indices, self.values = indices, values

    def scaled(self, factor):
        return Sparse(self.indices, self.values * factor)

    def dense(self, size, row_size=1):
        out = np.zeros(size)
        out[self.indices] = self.values
        return out
