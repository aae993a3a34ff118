"""LIBSVM / svmlight files: scikit-learn's fast parser, with errors that name the line."""

import bz2
import gzip
import math
import os
from importlib import resources

import numpy as np
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


def load_svmlight(path, n_features=None, *, dtype=np.float64, offset=0, length=-1):
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
        :func:`sklearn.datasets.load_svmlight_file`.

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
        X, y = load_svmlight_file(path, n_features=n_features, dtype=dtype, offset=offset, length=length)
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
