"""The corpora on which dpsgd's LDA is compared with scikit-learn's and gensim's, split once.

Shared by tests/test_lda_sklearn.py and bench/lda_quality.py, so that the test and the
benchmark score the same documents: AP and BBC News from ``../shared/data`` (next to the
checkout; absent on a fresh clone), and the generated corpus of ``dpsgd train lda``.
Every corpus holds out the same 10% of its documents (a permutation seeded 0).
"""

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from dpsgd.data import load_uci_bow, make_lda_corpus

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FOLDERS = {"ap": "ap_associated_press", "bbc": "bbc_news_octis"}


def load_octis(folder):
    """An OCTIS corpus folder: ``corpus.tsv`` (space-separated tokens, a tab, the partition,
    a tab, the label; no header) and ``vocabulary.txt`` (one word per line), as a CSR
    document-word count matrix and its vocabulary. Partitions and labels are not used."""
    folder = Path(folder)
    vocabulary = (folder / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    vocabulary = [w for w in vocabulary if w]
    index = {w: i for i, w in enumerate(vocabulary)}
    rows, cols = [], []
    with open(folder / "corpus.tsv", encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            tokens = line.split("\t", 1)[0].split()
            unknown = [t for t in tokens if t not in index]
            if unknown:
                raise ValueError(f"{folder / 'corpus.tsv'}, line {line_no + 1}: {unknown[0]!r} is not in "
                                 "vocabulary.txt")
            cols.extend(index[t] for t in tokens)
            rows.extend([line_no] * len(tokens))
    # COO to CSR sums the repeated (document, word) pairs into counts
    X = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(line_no + 1, len(vocabulary)))
    X.sum_duplicates()
    return X, vocabulary


def corpus_path(name):
    """The shared-data folder of ``name`` ('ap' or 'bbc'), or None where it is absent."""
    path = SHARED_DATA / FOLDERS[name]
    return path if path.exists() else None


def load(name, n_topics=20):
    """Documents of corpus ``name`` ('ap', 'bbc' or 'synthetic') and, for 'synthetic',
    its true topics (else None).

    'synthetic' is what ``dpsgd train lda --topics n_topics`` generates with its
    defaults: 5,000 documents of 100 words over 500 words, seed 0."""
    if name == "synthetic":
        X, topics, _ = make_lda_corpus(5_000, 500, n_topics, 100, random_state=0)
        return X, topics
    path = corpus_path(name)
    if path is None:
        raise FileNotFoundError(f"{SHARED_DATA / FOLDERS[name]} is absent")
    if name == "ap":
        X, _ = load_uci_bow(path / "docword.ap.txt")
    else:
        X, _ = load_octis(path)
    return X, None


def split(X, fraction=0.1):
    """(training, held-out) documents: a seeded permutation's first ``fraction`` held out."""
    order = np.random.default_rng(0).permutation(X.shape[0])
    n_test = max(1, int(X.shape[0] * fraction))
    return X[order[n_test:]], X[order[:n_test]]
