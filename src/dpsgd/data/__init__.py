"""Loaders (LIBSVM / svmlight, the bundled a9a) and synthetic data."""

from dpsgd.data.svmlight import load_a9a, load_svmlight
from dpsgd.data.synthetic import make_sparse_classification

__all__ = ["load_a9a", "load_svmlight", "make_sparse_classification"]
