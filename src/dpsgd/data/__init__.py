"""Loaders (LIBSVM / svmlight, the bundled a9a, UCI bag-of-words) and synthetic data."""

from dpsgd.data.shards import contiguous_share, heldout_mask
from dpsgd.data.svmlight import load_a9a, load_svmlight, load_svmlight_shard
from dpsgd.data.synthetic import make_imbalanced_binary, make_lda_corpus, make_sparse_classification
from dpsgd.data.uci_bow import load_uci_bow, read_uci_bow_header

__all__ = ["contiguous_share", "heldout_mask", "load_a9a", "load_svmlight", "load_svmlight_shard", "load_uci_bow",
           "make_imbalanced_binary",
           "make_lda_corpus", "make_sparse_classification", "read_uci_bow_header"]
