"""Checks at the Python boundary: nothing reaches a kernel before passing them."""

import numbers

import numpy as np
import scipy.sparse as sp


def as_kernel_csr(X, n_features):
    """Return X as a canonical CSR matrix whose arrays a kernel may read blindly.

    ``X`` has already been through scikit-learn's ``validate_data`` (finite values,
    float32/float64, CSR or dense). Dense input is converted once; CSR input is
    used as it is unless it has duplicate or unsorted entries or mixed index
    dtypes, in which case one canonical copy is made. The structure (indptr
    monotone and consistent, indices within ``[0, n_features)``) is checked in
    O(nnz) so that a malformed matrix raises instead of crashing a kernel.
    """
    if not sp.issparse(X):
        X = sp.csr_matrix(X)
    elif X.format != "csr":
        X = X.tocsr()
    if X.indices.dtype != X.indptr.dtype:
        X = X.copy()
        X.indices = X.indices.astype(np.int64)
        X.indptr = X.indptr.astype(np.int64)
    n_rows = X.shape[0]
    indptr = X.indptr
    if indptr.shape[0] != n_rows + 1 or indptr[0] != 0:
        raise ValueError("malformed CSR matrix: indptr must have n_rows + 1 entries starting at 0")
    if np.any(indptr[1:] < indptr[:-1]):
        raise ValueError("malformed CSR matrix: indptr is not non-decreasing")
    if indptr[-1] > X.indices.shape[0] or X.indices.shape[0] != X.data.shape[0]:
        raise ValueError("malformed CSR matrix: indptr[-1], indices and data disagree in length")
    nnz = indptr[-1]
    if nnz and (X.indices[:nnz].min() < 0 or X.indices[:nnz].max() >= n_features):
        raise ValueError(f"malformed CSR matrix: column indices outside [0, {n_features})")
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
