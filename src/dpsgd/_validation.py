"""Checks at the Python boundary: nothing reaches a kernel before passing them."""

import numbers

import numpy as np
import scipy.sparse as sp


def check_sparse_structure(X):
    """Raise a ValueError unless a scipy sparse ``X``'s arrays describe a valid matrix.

    CSR and CSC: ``indptr`` has one entry per row (column) plus one, starts at 0,
    never decreases and ends at the number of stored entries, which ``indices`` and
    ``data`` both hold; every index is within the other dimension. COO: ``row``,
    ``col`` and ``data`` agree in length and every coordinate is in range. Arrays
    mutated after construction (``X.indptr[-1] += 5``) otherwise crash scipy's
    products and conversions, or read garbage. O(nnz), vectorised; other inputs
    pass unchecked.
    """
    if not sp.issparse(X):
        return
    if X.format in ("csr", "csc"):
        major, minor = X.shape if X.format == "csr" else X.shape[::-1]
        _check_compressed(X.format.upper(), X.indptr, X.indices, X.data, major, minor)
    elif X.format == "coo":
        row, col = X.coords if hasattr(X, "coords") else (X.row, X.col)
        if not row.shape == col.shape == X.data.shape:
            raise ValueError("malformed COO matrix: row, col and data disagree in length")
        for name, index, bound in (("row", row, X.shape[0]), ("col", col, X.shape[1])):
            if index.size and (index.min() < 0 or index.max() >= bound):
                raise ValueError(f"malformed COO matrix: {name} indices outside [0, {bound})")


def _check_compressed(fmt, indptr, indices, data, major, minor):
    """The structure checks of a CSR (or CSC) matrix's arrays; see check_sparse_structure."""
    what = "rows" if fmt == "CSR" else "columns"
    if indptr.ndim != 1 or indptr.shape[0] != major + 1:
        raise ValueError(f"malformed {fmt} matrix: indptr has {indptr.shape[0]} entries, expected "
                         f"{major + 1} (number of {what} + 1)")
    if indptr[0] != 0:
        raise ValueError(f"malformed {fmt} matrix: indptr[0] is {indptr[0]}, expected 0")
    if np.any(indptr[1:] < indptr[:-1]):
        raise ValueError(f"malformed {fmt} matrix: indptr decreases")
    nnz = indptr[-1]
    if not nnz == indices.shape[0] == data.shape[0]:
        raise ValueError(f"malformed {fmt} matrix: indptr[-1] ({nnz}), len(indices) ({indices.shape[0]}) "
                         f"and len(data) ({data.shape[0]}) differ")
    if nnz and (indices.min() < 0 or indices.max() >= minor):
        raise ValueError(f"malformed {fmt} matrix: indices outside [0, {minor}) "
                         f"(found {indices.min()} to {indices.max()})")


def as_kernel_csr(X, n_features):
    """Return X as a canonical CSR matrix whose arrays a kernel may read blindly.

    ``X`` has already been through scikit-learn's ``validate_data`` (finite values,
    float32/float64, CSR or dense). Dense input is converted once; CSR input is
    used as it is unless it has duplicate or unsorted entries or mixed index
    dtypes, in which case one canonical copy is made. The structure is checked
    again (``check_sparse_structure``, O(nnz)) so that a malformed matrix raises
    instead of crashing a kernel.
    """
    if not sp.issparse(X):
        X = sp.csr_matrix(X)
    elif X.format != "csr":
        X = X.tocsr()
    if X.indices.dtype != X.indptr.dtype:
        X = X.copy()
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    _check_compressed("CSR", X.indptr, X.indices, X.data, X.shape[0], n_features)
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if not (X.data.flags.c_contiguous and X.indices.flags.c_contiguous):
        X = X.copy()
    return X


def check_sample_weight(sample_weight, n_samples):
    """Return sample weights as a float64 array (empty for None), finite and >= 0."""
    if sample_weight is None:
        return np.empty(0, dtype=np.float64)
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    if sw.shape != (n_samples,):
        raise ValueError(f"sample_weight has shape {sw.shape}, expected ({n_samples},)")
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative")
    if n_samples and not np.any(sw > 0):
        raise ValueError("sample_weight is zero for every sample: there is nothing to fit")
    return np.ascontiguousarray(sw)


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose from {sorted(map(str, choices))}")


def check_number(name, value, *, low=None, high=None, low_open=False, integer=False, allow_none=False):
    """Raise a ValueError naming the parameter unless value is a number in range."""
    if value is None and allow_none:
        return
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{name} must be {'an int' if integer else 'a number'}, got {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
