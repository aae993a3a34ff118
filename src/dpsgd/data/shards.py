"""Each rank's share of a data set, and the held-out documents, the same whatever the ranks."""

import numpy as np


def contiguous_share(n: int, rank: int, ranks: int) -> tuple[int, int]:
    """``(first, last)``: rank ``rank`` of ``ranks`` takes rows ``first:last`` of ``n``, in
    contiguous shares whose sizes differ by at most one."""
    first, last = np.linspace(0, n, ranks + 1).round().astype(int)[rank:rank + 2]
    return int(first), int(last)


def heldout_mask(n: int, seed: int, first: int = 0, last: int | None = None, one_in: int = 10) -> np.ndarray:
    """Which of rows ``first:last`` are held out: one row in ``one_in`` of all ``n`` (at least
    one), drawn with ``seed``, the same rows whatever the number of ranks."""
    last = n if last is None else last
    held_out = np.random.default_rng(seed).permutation(n)[:max(1, n // one_in)]
    mask = np.zeros(last - first, dtype=bool)
    mask[held_out[(held_out >= first) & (held_out < last)] - first] = True
    return mask
