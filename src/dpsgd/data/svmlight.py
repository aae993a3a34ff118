"""LIBSVM / svmlight files: scikit-learn's fast parser, with errors that name the line."""

from __future__ import annotations

import io
import math
import os
from importlib import resources

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file

from dpsgd.data._files import decompression_errors, open_binary


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


def _first_bad_line(lines, n_features, first_number=1):
    """``(line_number, reason, text)`` of the first malformed line of ``lines`` (bytes), or None."""
    for number, raw in enumerate(lines, start=first_number):
        line = raw.decode("utf-8", errors="replace")
        reason = _line_problem(line, n_features)
        if reason is not None:
            return number, reason, line.rstrip("\r\n")
    return None


def find_bad_line(path, n_features=None):
    """Return ``(line_number, reason, text)`` of the first malformed line, or None."""
    with decompression_errors(path), open_binary(path) as f:
        return _first_bad_line(f, n_features)


def _lines_in_range(path, offset, length):
    """The lines whose first byte lies in ``[offset, offset + length)`` of the (decompressed)
    file, as bytes, and the offset of the first of them.

    A line belongs to the range that holds its first byte, so equal ranges partition
    the lines exactly however long a line is. (scikit-learn's own offset reader returns
    the first line after a skipped fragment, which the next range then reads again.)"""
    with open_binary(path) as f:
        if offset > 0:
            f.seek(offset - 1)
            f.readline()  # the line holding byte offset - 1 starts before the range
        first = f.tell()
        if first >= offset + length:
            return b"", first
        text = f.read(offset + length - first)
        if text and not text.endswith(b"\n"):
            text += f.readline()  # the last line starts inside the range: all of it
    return text, first


def load_svmlight(path: str | os.PathLike, n_features: int | None = None, *, dtype=np.float64, offset: int = 0,
                  length: int = -1, zero_based: bool | str = "auto") -> tuple[sp.csr_matrix, np.ndarray]:
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
        Read only the lines whose first byte lies in ``[offset, offset + length)`` of the
        (decompressed) file, to share a file among processes: equal ranges partition its
        lines exactly. The range is held in memory as text while it is parsed. A range
        requires ``n_features`` and reads indices as zero-based unless told otherwise,
        as :func:`sklearn.datasets.load_svmlight_file` does: one share cannot tell
        whether the whole file is 1-based. :func:`load_svmlight_shard` decides that, and
        ``n_features``, over all the ranks.
    zero_based : bool or "auto", default="auto"
        Whether indices start at 0; "auto" (whole file): 1-based when no index is 0.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        For a malformed file, naming the file, the line and what is wrong with it, and
        for a corrupt or truncated .gz / .bz2 stream.

    Examples
    --------
    >>> import os, tempfile
    >>> from dpsgd.data import load_svmlight
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.svm")
    >>> with open(path, "w") as f:
    ...     _ = f.write("+1 1:0.5 3:2\\n-1 2:1\\n")
    >>> X, y = load_svmlight(path)
    >>> X.toarray().tolist(), y.tolist()
    ([[0.5, 0.0, 2.0], [0.0, 1.0, 0.0]], [1.0, -1.0])
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such svmlight file: {path}")
    with decompression_errors(path):
        if offset == 0 and length < 0:
            return _parse(path, path, n_features, dtype, zero_based, lambda: find_bad_line(path, n_features))
        if n_features is None:
            raise ValueError("n_features is required to read a byte range (offset, length)")
        text, first = _lines_in_range(path, offset, length)
        return _parse(path, io.BytesIO(text), n_features, dtype, True if zero_based == "auto" else zero_based,
                      lambda: _first_bad_line(io.BytesIO(text), n_features, 1 + _newlines_before(path, first)))


def _parse(path, source, n_features, dtype, zero_based, find_bad):
    """scikit-learn's parser on ``source``; on failure ``find_bad()`` names the line."""
    try:
        X, y = load_svmlight_file(source, n_features=n_features, dtype=dtype, zero_based=zero_based)
    except (ValueError, RuntimeError, OverflowError) as exc:
        bad = find_bad()
        if bad is None:
            raise ValueError(f"{path}: cannot be read as svmlight: {exc}") from exc
        number, reason, line = bad
        raise ValueError(f"{path}, line {number}: {reason}: {line[:200]!r}") from exc
    if not np.all(np.isfinite(X.data)) or not np.all(np.isfinite(y)):
        bad = find_bad()
        where = f", line {bad[0]}: {bad[1]}" if bad else ""
        raise ValueError(f"{path}{where}: the file contains NaN or infinite values")
    return X, y


def _newlines_before(path, position):
    """Number of lines that end before byte ``position`` (for error messages only)."""
    count = 0
    with open_binary(path) as f:
        while position > 0 and (block := f.read(min(position, 1 << 24))):
            count += block.count(b"\n")
            position -= len(block)
    return count


def load_svmlight_shard(path: str | os.PathLike, comm, n_features: int | None = None, *,
                        dtype=np.float64) -> tuple[sp.csr_matrix, np.ndarray]:
    """This rank's share of a svmlight file, read as one process reads the whole file.

    Rank r of ``comm`` reads the lines whose first byte lies in the r-th of
    ``comm.Get_size()`` equal byte ranges of the (decompressed) file, so the shares
    partition the rows exactly, in the file's order. The ranks agree, as
    :func:`load_svmlight` with ``zero_based="auto"`` decides for a whole file, on the
    index base (1-based when no rank has an index 0) and on ``n_features`` (the largest
    index over all ranks, unless given), so that every share has the same columns.

    Parameters
    ----------
    path : str or path-like
        The file (plain, .gz or .bz2).
    comm : mpi4py.MPI.Comm or dpsgd.comm.Topology
        Collective: every rank of ``comm`` must call it.
    n_features : int, optional
        The number of columns; None: the largest index over all ranks.
    dtype : numpy dtype, default=float64
        The values' dtype.

    Returns
    -------
    X, y : this rank's rows, as :func:`load_svmlight` returns them

    Examples
    --------
    Under ``mpiexec -n 4 python train.py``, every rank reads a quarter of the file's bytes,
    and the shares line up (same columns, same index base):

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> from dpsgd.data import load_svmlight_shard
    >>> X, y = load_svmlight_shard("train.svm", MPI.COMM_WORLD)  # doctest: +SKIP
    """
    from dpsgd.comm import Topology

    path = os.fspath(path)
    topology = comm if isinstance(comm, Topology) else Topology(comm)
    rank, size = topology.rank, topology.ranks
    length = max(1, -(-_decompressed_size(path) // size))
    # read raw (zero-based) indices into a matrix wide enough for any of them
    X, y = load_svmlight(path, n_features=np.iinfo(np.int32).max - 1, dtype=dtype, offset=rank * length,
                         length=length, zero_based=True)
    lows_highs = topology.everyone((int(X.indices.min()), int(X.indices.max())) if X.nnz else None)
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
    total = 0
    with decompression_errors(path), open_binary(path) as f:
        while block := f.read(1 << 24):
            total += len(block)
    return total


def load_a9a(dtype=np.float64) -> tuple[sp.csr_matrix, np.ndarray, sp.csr_matrix, np.ndarray]:
    """The a9a data set (UCI Adult, LIBSVM version) bundled with dpsgd.

    123 binary features, labels -1 / +1; UCI data, CC BY 4.0 (see the README
    next to the files).

    Parameters
    ----------
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        The dtype of the matrices' values.

    Returns
    -------
    X_train, y_train, X_test, y_test
        CSR matrices (32,561 and 16,281 rows x 123) and label vectors.

    Examples
    --------
    >>> from dpsgd.data import load_a9a
    >>> X, y, X_test, y_test = load_a9a()
    >>> X.shape, X_test.shape, sorted(set(y.tolist()))
    ((32561, 123), (16281, 123), [-1.0, 1.0])
    """
    folder = resources.files("dpsgd.data") / "a9a"
    with resources.as_file(folder / "a9a.svm.gz") as train, resources.as_file(folder / "a9a.t.svm.gz") as test:
        X_train, y_train = load_svmlight(train, n_features=123, dtype=dtype)
        X_test, y_test = load_svmlight(test, n_features=123, dtype=dtype)
    return X_train, y_train, X_test, y_test
