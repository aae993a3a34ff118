"""LIBSVM / svmlight files: scikit-learn's fast parser, with errors that name the line."""

import bz2
import gzip
import math
import os
from importlib import resources

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file


def _open_text(path):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    if str(path).endswith(".bz2"):
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _line_problem(line, n_features):
    """What is wrong with one svmlight line, or None."""
    body = line.split("#", 1)[0].split()
    if not body:
        return None
    try:
        label = float(body[0])
    except ValueError:
        return f"label {body[0]!r} is not a number"
    if not math.isfinite(label):
        return f"label {body[0]!r} is not finite"
    previous = -1
    for token in body[1:]:
        name, sep, value = token.partition(":")
        if not sep:
            return f"{token!r} is not of the form index:value"
        if name == "qid":
            continue
        try:
            index = int(name)
        except ValueError:
            return f"feature index {name!r} is not an integer"
        try:
            number = float(value)
        except ValueError:
            return f"value {value!r} of feature {index} is not a number"
        if index < 0:
            return f"feature index {index} is negative"
        if not math.isfinite(number):
            return f"value {value!r} of feature {index} is not finite"
        if index <= previous:
            return f"feature indices are not increasing ({previous} then {index})"
        if n_features is not None and index > n_features:
            return f"feature index {index} exceeds n_features={n_features}"
        previous = index
    return None


def find_bad_line(path, n_features=None):
    """Return ``(line_number, reason, text)`` of the first malformed line, or None."""
    with _open_text(path) as f:
        for number, line in enumerate(f, start=1):
            reason = _line_problem(line, n_features)
            if reason is not None:
                return number, reason, line.rstrip("\n")
    return None


def load_svmlight(path, n_features=None, *, dtype=np.float64, offset=0, length=-1, zero_based="auto"):
    """Load a LIBSVM / svmlight file (plain, .gz or .bz2) as ``(X, y)``.

    Parameters
    ----------
    path : str or path-like
        The file.
    n_features : int, optional
        Number of features; inferred from the largest index when omitted.
    dtype : numpy dtype, default=float64
        dtype of X (float32 halves the memory).
    offset, length : int
        Byte range to read (for sharding a file among processes), as in
        :func:`sklearn.datasets.load_svmlight_file`, which then requires ``n_features``
        and reads indices as zero-based unless told otherwise: one share cannot tell
        whether the whole file is 1-based. :func:`load_svmlight_shard` decides that, and
        ``n_features``, over all the ranks.
    zero_based : bool or "auto", default="auto"
        Whether indices start at 0; "auto" (one process): 1-based when no index is 0.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For a malformed file, naming the file, the line and what is wrong with it.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such svmlight file: {path}")
    try:
        X, y = load_svmlight_file(path, n_features=n_features, dtype=dtype, offset=offset, length=length,
                                  zero_based=zero_based)
    except (ValueError, RuntimeError, UnicodeDecodeError) as exc:
        bad = find_bad_line(path, n_features)
        if bad is None:
            raise ValueError(f"{path}: cannot be read as svmlight: {exc}") from exc
        number, reason, text = bad
        raise ValueError(f"{path}, line {number}: {reason}: {text[:200]!r}") from exc
    if not np.all(np.isfinite(X.data)) or not np.all(np.isfinite(y)):
        bad = find_bad_line(path, n_features)
        where = f", line {bad[0]}: {bad[1]}" if bad else ""
        raise ValueError(f"{path}{where}: the file contains NaN or infinite values")
    return X, y


def load_svmlight_shard(path, comm, n_features=None, *, dtype=np.float64):
    """This rank's share of a svmlight file, read as one process reads the whole file.

    Rank r of ``comm`` reads the lines that start in the r-th of ``comm.Get_size()``
    equal byte ranges of the (decompressed) file. The ranks agree, as
    :func:`load_svmlight` with ``zero_based="auto"`` decides for a whole file, on the
    index base (1-based when no rank has an index 0) and on ``n_features`` (the largest
    index over all ranks, unless given), so that every share has the same columns.

    Parameters
    ----------
    path : str or path-like
        The file (plain, .gz or .bz2).
    comm : mpi4py.MPI.Comm
        Collective: every rank of ``comm`` must call it.
    n_features : int, optional
    dtype : numpy dtype, default=float64

    Returns
    -------
    X, y : this rank's rows, as :func:`load_svmlight` returns them
    """
    path = os.fspath(path)
    rank, size = comm.Get_rank(), comm.Get_size()
    length = -(-_decompressed_size(path) // size)
    # read raw (zero-based) indices into a matrix wide enough for any of them
    X, y = load_svmlight(path, n_features=np.iinfo(np.int32).max - 1, dtype=dtype, offset=rank * length,
                         length=length, zero_based=True)
    lows_highs = comm.allgather((int(X.indices.min()), int(X.indices.max())) if X.nnz else None)
    present = [pair for pair in lows_highs if pair is not None]
    one_based = bool(present) and min(low for low, _ in present) > 0
    if one_based:
        X.indices -= 1
    width = max((high for _, high in present), default=-1) + (0 if one_based else 1)
    if n_features is not None:
        if width > n_features:
            raise ValueError(f"{path}: feature index {width} exceeds n_features={n_features}")
        width = n_features
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], width))
    return X, y


def _decompressed_size(path):
    """Bytes of the file's text: its size, or for .gz / .bz2 the length of the decompressed
    stream (read through once, a block at a time), which is what offsets count."""
    if not str(path).endswith((".gz", ".bz2")):
        return os.path.getsize(path)
    opener = gzip.open if str(path).endswith(".gz") else bz2.open
    total = 0
    with opener(path, "rb") as f:
        while block := f.read(1 << 24):
            total += len(block)
    return total


def load_a9a(dtype=np.float64):
    """The a9a data set (UCI Adult, LIBSVM version) bundled with dpsgd.

    123 binary features, labels -1 / +1; UCI data, CC BY 4.0 (see the README
    next to the files).

    Returns
    -------
    X_train, y_train, X_test, y_test
        CSR matrices (32,561 and 16,281 rows x 123) and label vectors.
    """
    folder = resources.files("dpsgd.data") / "a9a"
    with resources.as_file(folder / "a9a.svm.gz") as train, resources.as_file(folder / "a9a.t.svm.gz") as test:
        X_train, y_train = load_svmlight(train, n_features=123, dtype=dtype)
        X_test, y_test = load_svmlight(test, n_features=123, dtype=dtype)
    return X_train, y_train, X_test, y_test
