"""UCI "Bag of Words" files: ``docword.*.txt`` (+ ``vocab.*.txt``).

docword: three header lines (D documents, W words, NNZ entries), then NNZ lines
``docID wordID count`` with 1-based ids. Read with NumPy's C parser in one go
(no Python loop per line); only when something is wrong is the file scanned
line by line, to say which line it is.
"""

import gzip
import os

import numpy as np
import scipy.sparse as sp


def _read_bytes(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


def _header(lines, path):
    if len(lines) <= 3 and not lines[-1].strip():  # the file ends with the header's newline
        lines = lines[:-1]
    values = []
    for number, raw in enumerate(lines[:3], start=1):
        text = raw.strip()
        if not text.isdigit():
            raise ValueError(f"{path}, line {number}: header line must be a non-negative integer, got {text[:50]!r}")
        values.append(int(text))
    if len(values) < 3:
        raise ValueError(f"{path}: the file ends inside its 3-line header (D, W, NNZ)")
    return values


def _first_bad_line(body_lines, path, n_docs, n_words):
    """Line-by-line check of the body (the error path only)."""
    for offset, raw in enumerate(body_lines):
        number = offset + 4
        parts = raw.split()
        if not parts:
            continue
        if len(parts) != 3:
            return f"{path}, line {number}: expected 'docID wordID count', got {raw.strip()[:80]!r}"
        for name, token in zip(("docID", "wordID", "count"), parts):
            try:
                value = int(token)
            except ValueError:
                try:
                    float(token)
                    return f"{path}, line {number}: {name} {token.decode()!r} is not an integer"
                except ValueError:
                    return f"{path}, line {number}: {name} {token.decode()!r} is not a number"
            if name == "docID" and not 1 <= value <= n_docs:
                return f"{path}, line {number}: docID {value} is outside 1..{n_docs} (header D)"
            if name == "wordID" and not 1 <= value <= n_words:
                return f"{path}, line {number}: wordID {value} is outside 1..{n_words} (header W)"
            if name == "count" and value <= 0:
                return f"{path}, line {number}: count {value} must be a positive integer"
    return None


def load_uci_bow(docword_path, vocab_path=None):
    """Load a UCI bag-of-words corpus.

    Parameters
    ----------
    docword_path : str or path-like
        ``docword.NAME.txt``, plain or ``.gz``.
    vocab_path : str or path-like, optional
        ``vocab.NAME.txt`` (one word per line, line k is word id k).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (D, W), float64 counts
        Documents without entries are empty rows.
    vocabulary : list of str or None

    Raises
    ------
    FileNotFoundError
    ValueError
        Naming the file and line: a malformed line, an id outside the header's
        range, a negative, zero or non-integer count, a repeated (doc, word) pair,
        a body that disagrees with the header (e.g. a truncated file), or a
        vocabulary whose length is not W.
    """
    path = os.fspath(docword_path)
    raw = _read_bytes(path)
    lines = raw.split(b"\n", 3)
    n_docs, n_words, nnz = _header(lines, path)
    body = lines[3] if len(lines) > 3 else b""
    values = np.array(body.split(), dtype=np.bytes_)
    try:
        triples = values.astype(np.int64)
    except ValueError:
        triples = None
    problem = None
    if triples is None or triples.size % 3:
        problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words) or (
            f"{path}: the body is not made of 'docID wordID count' triples")
    else:
        triples = triples.reshape(-1, 3)
        docs, words, counts = triples[:, 0], triples[:, 1], triples[:, 2]
        if triples.shape[0] and (docs.min() < 1 or docs.max() > n_docs or words.min() < 1
                                 or words.max() > n_words or counts.min() <= 0):
            problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words)
        elif triples.shape[0] != nnz:
            problem = (f"{path}: the header says NNZ={nnz} but the body has {triples.shape[0]} entries"
                       + (" (truncated file?)" if triples.shape[0] < nnz else ""))
    if problem:
        raise ValueError(problem)
    X = sp.coo_matrix((counts.astype(np.float64), (docs - 1, words - 1)), shape=(n_docs, n_words))
    X = X.tocsr()
    if X.nnz != nnz:
        keys = (docs - 1) * n_words + (words - 1)
        order = np.argsort(keys, kind="stable")
        dup = order[np.flatnonzero(np.diff(keys[order]) == 0)[0] + 1]
        raise ValueError(f"{path}, line {dup + 4}: (docID {docs[dup]}, wordID {words[dup]}) appears twice")
    X.sort_indices()
    vocabulary = None
    if vocab_path is not None:
        words_text = _read_bytes(vocab_path).decode("utf-8").splitlines()
        if words_text and words_text[-1] == "":
            words_text.pop()
        if len(words_text) != n_words:
            raise ValueError(f"{vocab_path}: {len(words_text)} words, but the docword header says W={n_words}")
        vocabulary = [w.strip() for w in words_text]
    return X, vocabulary
