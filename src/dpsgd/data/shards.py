"""Each rank's share of a data set, and the held-out documents, the same whatever the ranks."""

import numpy as np


def contiguous_share(n: int, rank: int, ranks: int) -> tuple[int, int]:
    """``(first, last)``: rank ``rank`` of ``ranks`` takes rows ``first:last`` of ``n``.

    The shares are contiguous and their sizes differ by at most one.

    Parameters
    ----------
    n : int
        The number of rows (or documents) to share.
    rank : int
        This rank, from 0 to ``ranks - 1``.
    ranks : int
        The number of ranks.

    Returns
    -------
    first, last : int
        This rank's rows are ``first:last``.

    Examples
    --------
    >>> from dpsgd.data import contiguous_share
    >>> [contiguous_share(10, rank, 3) for rank in range(3)]
    [(0, 3), (3, 7), (7, 10)]
    """
    first, last = np.linspace(0, n, ranks + 1).round().astype(int)[rank:rank + 2]
    return int(first), int(last)


def heldout_mask(n: int, seed: int, first: int = 0, last: int | None = None, one_in: int = 10) -> np.ndarray:
    """Which of rows ``first:last`` are held out, the same rows whatever the number of ranks.

    One row in ``one_in`` of all ``n`` (at least one) is held out, drawn with ``seed``; each
    rank asks for its own range and gets its part of the same choice.

    Parameters
    ----------
    n : int
        The number of rows of the whole data set.
    seed : int
        The seed of the draw.
    first, last : int, default=0 and None
        The range of rows asked for; None: ``n``.
    one_in : int, default=10
        One row in ``one_in`` is held out.

    Returns
    -------
    numpy.ndarray of bool, shape (last - first,)
        True for the held-out rows of the range.

    Examples
    --------
    >>> import numpy as np
    >>> from dpsgd.data import heldout_mask
    >>> whole = heldout_mask(100, seed=0)
    >>> int(whole.sum())
    10
    >>> halves = np.concatenate([heldout_mask(100, 0, 0, 50), heldout_mask(100, 0, 50, 100)])
    >>> bool((halves == whole).all())
    True
    """
    last = n if last is None else last
    held_out = np.random.default_rng(seed).permutation(n)[:max(1, n // one_in)]
    mask = np.zeros(last - first, dtype=bool)
    mask[held_out[(held_out >= first) & (held_out < last)] - first] = True
    return mask
