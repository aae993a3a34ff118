"""Light action and observation spaces, Gymnasium's names and attributes without Gymnasium.

Only what a learner reads: ``shape``, ``dtype``, ``n`` (Discrete), ``nvec`` (MultiDiscrete),
``low`` / ``high`` (Box), plus ``contains`` and ``sample``. Gymnasium is not a dependency of
dpsgd; these classes mirror ``gymnasium.spaces`` so code written against either reads the same.
"""

from __future__ import annotations

import numpy as np


class Space:
    """Base: a shape, a dtype and a NumPy generator for ``sample``."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype | type, seed: int | None = None) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self._rng = np.random.default_rng(seed)

    def seed(self, seed: int | None = None) -> None:
        """Reseed ``sample``."""
        self._rng = np.random.default_rng(seed)


class Discrete(Space):
    """The integers from 0 to ``n - 1`` (``start`` is always 0 here).

    Parameters
    ----------
    n : int
        The number of values.
    seed : int or None, default=None
        Seeds ``sample``.

    Examples
    --------
    >>> from dpsgd.envs import Discrete
    >>> space = Discrete(2, seed=0)
    >>> space.contains(1), space.contains(2)
    (True, False)
    """

    def __init__(self, n: int, seed: int | None = None) -> None:
        super().__init__((), np.int64, seed)
        self.n = int(n)
        self.start = 0

    def contains(self, x: object) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and 0 <= int(x) < self.n

    def sample(self) -> np.int64:
        return np.int64(self._rng.integers(self.n))

    def __repr__(self) -> str:
        return f"Discrete({self.n})"


class MultiDiscrete(Space):
    """One Discrete per entry of ``nvec``: the batched action space of a vector env.

    Parameters
    ----------
    nvec : array-like of int
        The number of values of each entry.
    seed : int or None, default=None
        Seeds ``sample``.

    Examples
    --------
    >>> from dpsgd.envs import MultiDiscrete
    >>> MultiDiscrete([2, 2, 2], seed=0).sample().shape
    (3,)
    """

    def __init__(self, nvec: np.ndarray | list[int], seed: int | None = None) -> None:
        self.nvec = np.asarray(nvec, dtype=np.int64)
        super().__init__(self.nvec.shape, np.int64, seed)

    def contains(self, x: object) -> bool:
        a = np.asarray(x)
        return (a.shape == self.shape and np.issubdtype(a.dtype, np.integer)
                and bool(np.all((a >= 0) & (a < self.nvec))))

    def sample(self) -> np.ndarray:
        return self._rng.integers(self.nvec).astype(np.int64)

    def __repr__(self) -> str:
        return f"MultiDiscrete({self.nvec})"


class Box(Space):
    """A box ``low <= x <= high`` of float32 (bounds may be infinite).

    Parameters
    ----------
    low, high : array-like
        The bounds, of one shape.
    dtype : numpy dtype, default=numpy.float32
        The values' dtype.
    seed : int or None, default=None
        Seeds ``sample``.

    Raises
    ------
    ValueError
        When ``low`` and ``high`` differ in shape.

    Examples
    --------
    >>> from dpsgd.envs import Box
    >>> box = Box([-2.0], [2.0])
    >>> box.contains(box.sample())
    True
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, dtype: np.dtype | type = np.float32,
                 seed: int | None = None) -> None:
        self.low = np.asarray(low, dtype=dtype)
        self.high = np.asarray(high, dtype=dtype)
        if self.low.shape != self.high.shape:
            raise ValueError(f"low and high differ in shape: {self.low.shape} and {self.high.shape}")
        super().__init__(self.low.shape, dtype, seed)

    def contains(self, x: object) -> bool:
        a = np.asarray(x)
        return a.shape == self.shape and bool(np.all((a >= self.low) & (a <= self.high)))

    def sample(self) -> np.ndarray:
        """Uniform where both bounds are finite, standard normal elsewhere (as Gymnasium's Box)."""
        low = self.low.astype(np.float64)
        high = self.high.astype(np.float64)
        finite = np.isfinite(low) & np.isfinite(high)
        out = self._rng.standard_normal(self.shape)
        out[finite] = self._rng.uniform(low[finite], high[finite])
        return out.astype(self.dtype)

    def __repr__(self) -> str:
        return f"Box({self.low.min()}, {self.high.max()}, {self.shape}, {self.dtype})"
