"""UCI "Bag of Words" files: ``docword.*.txt`` (+ ``vocab.*.txt``).

docword: three header lines (D documents, W words, NNZ entries), then NNZ lines
``docID wordID count`` with 1-based ids. Read with NumPy's C parser in one go
(no Python loop per line); only when something is wrong is the file scanned
line by line, to say which line it is.
"""

import contextlib
import gzip
import mmap
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


def _first_bad_line(body_lines, path, n_docs, n_words, first_number=4):
    """Line-by-line check of the body (the error path only)."""
    for offset, raw in enumerate(body_lines):
        number = offset + first_number
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


def read_uci_bow_header(docword_path):
    """(D documents, W words, NNZ entries) from a docword file's 3-line header."""
    path = os.fspath(docword_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:  # the 3 lines only
        return tuple(_header([f.readline() for _ in range(3)], path))


def load_uci_bow(docword_path, vocab_path=None, docs=None):
    """Load a UCI bag-of-words corpus, or a range of its documents.

    Parameters
    ----------
    docword_path : str or path-like
        ``docword.NAME.txt``, plain or ``.gz``.
    vocab_path : str or path-like, optional
        ``vocab.NAME.txt`` (one word per line, line k is word id k).
    docs : (start, stop), optional
        Read only documents ``start <= docID - 1 < stop`` (0-based, as rows), e.g. an MPI
        rank's share. The body must be sorted by docID, as UCI's files are: the range is
        found by binary search on the file's bytes, and only its lines are parsed (a
        plain file is memory-mapped, so only that part is read; a ``.gz`` file is
        decompressed up to the range's end, one block at a time). Unsorted lines inside
        the range are reported; elsewhere they cannot be seen without reading the whole
        file. The header's NNZ is not checked.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (D, W), or (stop - start, W) with ``docs``
        float64 counts. Documents without entries are empty rows.
    vocabulary : list of str or None

    Raises
    ------
    FileNotFoundError
    ValueError
        Naming the file and line: a malformed line, an id outside the header's
        range, a negative, zero or non-integer count, a repeated (doc, word) pair,
        a body that disagrees with the header (e.g. a truncated file), a vocabulary
        whose length is not W, or (with ``docs``) a body not sorted by docID.
    """
    path = os.fspath(docword_path)
    if docs is not None and path.endswith(".gz"):
        n_docs, n_words, nnz, first, last, body, line_of_body = _gz_range(path, docs)
    else:
        with _open_buffer(path) as buf:
            lines = bytes(buf[:200]).split(b"\n", 3)
            n_docs, n_words, nnz = _header(lines, path)
            body_start = min(len(buf), sum(len(line) + 1 for line in lines[:3]))
            if docs is None:
                first, last, body_end = 0, n_docs, len(buf)
            else:
                first, last = _check_range(docs, n_docs)
                body_start = _first_line_of_doc(buf, body_start, first + 1)
                body_end = _first_line_of_doc(buf, body_start, last + 1)
            body = bytes(buf[body_start:body_end])
            line_of_body = 4 if docs is None else 1 + bytes(buf[:body_start]).count(b"\n")
    doc_ids, word_ids, counts = _parse_body(body, path, n_docs, n_words, line_of_body)
    if docs is None and doc_ids.size != nnz:
        raise ValueError(f"{path}: the header says NNZ={nnz} but the body has {doc_ids.size} entries"
                         + (" (truncated file?)" if doc_ids.size < nnz else ""))
    if docs is not None and doc_ids.size and (doc_ids.min() <= first or doc_ids.max() > last
                                               or np.any(np.diff(doc_ids) < 0)):
        raise ValueError(f"{path}: the body is not sorted by docID, so a range of documents cannot be read")
    X = sp.coo_matrix((counts.astype(np.float64), (doc_ids - 1 - first, word_ids - 1)),
                      shape=(last - first, n_words)).tocsr()
    if X.nnz != doc_ids.size:
        keys = (doc_ids - 1) * n_words + (word_ids - 1)
        order = np.argsort(keys, kind="stable")
        dup = order[np.flatnonzero(np.diff(keys[order]) == 0)[0] + 1]
        raise ValueError(f"{path}, line {dup + line_of_body}: (docID {doc_ids[dup]}, wordID {word_ids[dup]}) "
                         "appears twice")
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


def _parse_body(body, path, n_docs, n_words, line_of_body):
    """(docIDs, wordIDs, counts) of the body's triples, or ValueError naming the bad line."""
    try:
        triples = np.array(body.split(), dtype=np.bytes_).astype(np.int64)
    except ValueError:
        triples = None
    problem = None
    if triples is None or triples.size % 3:
        problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words, line_of_body) or (
            f"{path}: the body is not made of 'docID wordID count' triples")
    else:
        triples = triples.reshape(-1, 3)
        doc_ids, word_ids, counts = triples[:, 0], triples[:, 1], triples[:, 2]
        if triples.shape[0] and (doc_ids.min() < 1 or doc_ids.max() > n_docs or word_ids.min() < 1
                                 or word_ids.max() > n_words or counts.min() <= 0):
            problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words, line_of_body)
    if problem:
        raise ValueError(problem)
    return doc_ids, word_ids, counts


def _check_range(docs, n_docs):
    try:
        first, last = (int(v) for v in docs)
    except (TypeError, ValueError):
        raise ValueError(f"docs must be a (start, stop) pair of integers, got {docs!r}") from None
    if not 0 <= first <= last <= n_docs:
        raise ValueError(f"docs=({first}, {last}) is not a range within the {n_docs} documents")
    return first, last


def _first_line_of_doc(buf, floor, doc_id):
    """Byte offset of the first line at or after ``floor`` whose docID is >= ``doc_id``.

    Binary search over byte positions: the line starting at or after a position has a
    docID that does not decrease with the position, since the body is sorted."""
    lo, hi = floor, len(buf)
    while lo < hi:
        mid = (lo + hi) // 2
        start = _line_start(buf, mid, floor)
        if start >= len(buf) or _doc_id_at(buf, start) >= doc_id:
            hi = mid
        else:
            lo = mid + 1
    return _line_start(buf, lo, floor)


def _line_start(buf, pos, floor):
    if pos <= floor:
        return floor
    newline = buf.find(b"\n", pos - 1)
    return len(buf) if newline < 0 else newline + 1


def _doc_id_at(buf, start):
    token = bytes(buf[start:start + 40]).split(None, 1)
    try:
        return int(token[0])
    except (IndexError, ValueError):  # a blank or malformed line: parsed (and reported) later
        return 1 << 62


def _gz_range(path, docs, block=1 << 24):
    """A document range of a gzip docword file, decompressed one block at a time and only
    up to the range's end: (D, W, NNZ, first, last, body, line number of its first line)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with gzip.open(path, "rb") as f:
        n_docs, n_words, nnz = _header([f.readline() for _ in range(3)], path)
        first, last = _check_range(docs, n_docs)
        parts, carry, line = [], b"", 4
        while True:
            data = f.read(block)
            chunk = carry + data
            cut = len(chunk) if not data else chunk.rfind(b"\n") + 1  # whole lines only
            chunk, carry = chunk[:cut], chunk[cut:]
            lo = _first_line_of_doc(chunk, 0, first + 1)
            hi = _first_line_of_doc(chunk, lo, last + 1)
            if not parts:
                line += chunk.count(b"\n", 0, lo)  # lines before the range, for error messages
            if hi > lo:
                parts.append(chunk[lo:hi])
            if hi < len(chunk) or not data:  # the range ended in this block, or the file did
                return n_docs, n_words, nnz, first, last, b"".join(parts), line


@contextlib.contextmanager
def _open_buffer(path):
    """The file's bytes: memory-mapped when plain, decompressed when .gz."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if path.endswith(".gz") or os.path.getsize(path) == 0:
        yield _read_bytes(path)
        return
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        yield buf
