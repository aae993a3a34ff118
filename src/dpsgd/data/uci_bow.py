"""UCI "Bag of Words" files: ``docword.*.txt`` (+ ``vocab.*.txt``).

docword: three header lines (D documents, W words, NNZ entries), then NNZ lines
``docID wordID count`` with 1-based ids. Read with NumPy's C parser in one go
(no Python loop per line); only when something is wrong is the file scanned
line by line, to say which line it is.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import mmap
import os
import re

import numpy as np
import scipy.sparse as sp

from dpsgd.data._files import decompression_errors


def _read_bytes(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        return f.read()


# Ids are checked against D and W and (doc, word) pairs are keyed as (doc - 1) * W + word - 1
# in int64, so D and W must stay below 2**31; NNZ is an int64.
_MAX_IDS = {"D": np.iinfo(np.int32).max, "W": np.iinfo(np.int32).max, "NNZ": np.iinfo(np.int64).max}

# A document without entries is an empty row that costs 8 bytes of memory and no byte of
# the file, so a corrupt header D could ask for gigabytes; a read that would hold more
# empty rows than this is refused (real corpora have a handful).
MAX_EMPTY_DOCS = 1 << 20


def _header(lines, path):
    """(D, W, NNZ) from the header's three lines (as ``readline`` returns them)."""
    values = []
    for number, (name, raw) in enumerate(zip(_MAX_IDS, lines), start=1):
        if not raw:
            raise ValueError(f"{path}: the file ends inside its 3-line header (D, W, NNZ)")
        text = raw.strip()
        if not text.isdigit():
            shown = text[:50].decode("utf-8", errors="replace")
            raise ValueError(f"{path}, line {number}: header line must be a non-negative integer, got {shown!r}")
        digits = text.lstrip(b"0")
        if len(digits) > 19 or int(digits or b"0") > _MAX_IDS[name]:
            raise ValueError(f"{path}, line {number}: header {name}={digits[:50].decode()} is larger than "
                             f"{_MAX_IDS[name]}, the most dpsgd reads")
        values.append(int(digits or b"0"))
    return values


def _split_header(buf):
    """The header's three lines of ``buf`` (bytes or mmap), each with its newline as
    ``readline`` returns it (empty past the end), and the offset where the body starts."""
    lines, pos = [], 0
    for _ in range(3):
        newline = buf.find(b"\n", pos)
        end = len(buf) if newline < 0 else newline + 1
        lines.append(bytes(buf[pos:end]))
        pos = end
    return lines, pos


_DIGITS = re.compile(rb"[0-9]+")
_SIGNED = re.compile(rb"[+-]?[0-9]+")
_DECIMAL = re.compile(rb"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))([eE][+-]?[0-9]+)?")


def _first_bad_line(body_lines, path, n_docs, n_words, first_number=4):
    """Line-by-line check of the body (the error path only): every line that is not blank
    holds exactly three plain decimal integers (digits 0-9) separated by spaces or tabs."""
    limits = {"docID": n_docs, "wordID": n_words, "count": None}
    for number, raw in enumerate(body_lines, start=first_number):
        parts = re.split(rb"[ \t]+", raw.removesuffix(b"\r").strip(b" \t"))  # a CRLF line end is fine
        if parts == [b""]:
            continue
        if len(parts) != 3:
            shown = raw.strip()[:80].decode("utf-8", errors="replace")
            return f"{path}, line {number}: expected 'docID wordID count', got {shown!r}"
        for (name, limit), token in zip(limits.items(), parts):
            problem = _token_problem(name, token, limit)
            if problem:
                return f"{path}, line {number}: {problem}"
    return None


def _token_problem(name, token, limit):
    """What is wrong with one token of a body line, or None."""
    shown = token[:40].decode("utf-8", errors="backslashreplace")
    if token.startswith(b"+") or not _SIGNED.fullmatch(token):
        kind = "is not an integer" if _DECIMAL.fullmatch(token) else "is not a plain decimal integer (digits 0-9 only)"
        return f"{name} {shown!r} {kind}"
    digits = token.lstrip(b"-").lstrip(b"0")
    if len(digits) > 19 or int(digits or b"0") > np.iinfo(np.int64).max:  # int() refuses 4,300+ digits
        return f"{name} {shown} is too large"
    value = int(token)
    if limit is None and value <= 0:
        return f"{name} {value} must be a positive integer"
    if limit is not None and not 1 <= value <= limit:
        return f"{name} {value} is outside 1..{limit} (header {'D' if name == 'docID' else 'W'})"
    return None


def read_uci_bow_header(docword_path: str | os.PathLike) -> tuple[int, int, int]:
    """(D documents, W words, NNZ entries) from a docword file's 3-line header.

    Only the header is read (of a .gz file, only as much as it takes).

    Parameters
    ----------
    docword_path : str or path-like
        A UCI bag-of-words ``docword.*.txt`` file, plain or ``.gz``.

    Returns
    -------
    n_docs, n_words, nnz : int
        The header's three numbers: documents, vocabulary size and ``doc word count`` lines.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the header is malformed (naming the line), D or W is 2**31 or more, or a
        .gz file is corrupt.

    Examples
    --------
    Each MPI rank can read its own range of documents, found from the header alone:

    >>> from dpsgd.data import contiguous_share, load_uci_bow, read_uci_bow_header
    >>> n_docs, n_words, nnz = read_uci_bow_header("docword.ap.txt")  # doctest: +SKIP
    >>> X, _ = load_uci_bow("docword.ap.txt", docs=contiguous_share(n_docs, rank, ranks))  # doctest: +SKIP
    """
    path = os.fspath(docword_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    with decompression_errors(path), (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        return tuple(_header([f.readline() for _ in range(3)], path))


def load_uci_bow(docword_path: str | os.PathLike, vocab_path: str | os.PathLike | None = None,
                 docs: tuple[int, int] | None = None) -> tuple[sp.csr_matrix, list[str] | None]:
    """Load a UCI bag-of-words corpus, or a range of its documents.

    Parameters
    ----------
    docword_path : str or path-like
        ``docword.NAME.txt``, plain or ``.gz``.
    vocab_path : str or path-like, optional
        ``vocab.NAME.txt`` (one word per line, line k is word id k).
    docs : (start, stop) of int, optional
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
        Naming the file and line: a line that is neither blank nor exactly three plain
        decimal integers (digits 0-9, separated by spaces or tabs), an id outside the
        header's range, a zero count, a repeated (doc, word) pair, a body that disagrees
        with the header (e.g. a truncated file), a header D or W of 2**31 or more, more
        than :data:`MAX_EMPTY_DOCS` empty documents (a corrupt header), a corrupt .gz
        file, a vocabulary that is not UTF-8 or whose length is not W, ``docs`` that is
        not a pair of integers with ``0 <= start <= stop <= D``, or (with ``docs``) a
        body not sorted by docID.

    Examples
    --------
    >>> import os, tempfile
    >>> from dpsgd.data import load_uci_bow
    >>> folder = tempfile.mkdtemp()
    >>> with open(os.path.join(folder, "docword.tiny.txt"), "w") as f:
    ...     _ = f.write("2\\n3\\n3\\n1 1 2\\n1 3 1\\n2 2 4\\n")  # D, W, NNZ, then doc word count
    >>> with open(os.path.join(folder, "vocab.tiny.txt"), "w") as f:
    ...     _ = f.write("apple\\nbanana\\ncherry\\n")
    >>> X, vocabulary = load_uci_bow(os.path.join(folder, "docword.tiny.txt"),
    ...                              os.path.join(folder, "vocab.tiny.txt"))
    >>> X.toarray().tolist(), vocabulary
    ([[2.0, 0.0, 1.0], [0.0, 4.0, 0.0]], ['apple', 'banana', 'cherry'])
    >>> load_uci_bow(os.path.join(folder, "docword.tiny.txt"), docs=(1, 2))[0].toarray().tolist()
    [[0.0, 4.0, 0.0]]
    """
    path = os.fspath(docword_path)
    with decompression_errors(path):
        if docs is not None and path.endswith(".gz"):
            n_docs, n_words, nnz, first, last, body, line_of_body = _gz_range(path, docs)
        else:
            with _open_buffer(path) as buf:
                lines, body_start = _split_header(buf)
                n_docs, n_words, nnz = _header(lines, path)
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
    if last - first > doc_ids.size + MAX_EMPTY_DOCS:
        raise ValueError(f"{path}: documents {first + 1}..{last} of the header's D={n_docs} hold only "
                         f"{doc_ids.size} entries: more than {MAX_EMPTY_DOCS} empty documents, taken for a "
                         "corrupt header")
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
        with decompression_errors(vocab_path):
            raw = _read_bytes(vocab_path)
        try:
            words_text = raw.decode("utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ValueError(f"{vocab_path}: not UTF-8 text ({exc})") from None
        if words_text and words_text[-1] == "":
            words_text.pop()
        if len(words_text) != n_words:
            raise ValueError(f"{vocab_path}: {len(words_text)} words, but the docword header says W={n_words}")
        vocabulary = [w.strip() for w in words_text]
    return X, vocabulary


# bytes a body may hold: digits, and blanks between them (CR only before LF, which the
# parser checks); anything else (a sign, '_', NUL, '.') means a line to report
_BODY_BYTES = np.zeros(256, dtype=bool)
_BODY_BYTES[list(b"0123456789 \t\r\n")] = True


def _parse_body(body, path, n_docs, n_words, line_of_body):
    """(docIDs, wordIDs, counts) of the body's triples, or ValueError naming the bad line."""
    triples = _triples(body) if _BODY_BYTES[np.frombuffer(body, dtype=np.uint8)].all() else None
    problem = None
    if triples is None:
        problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words, line_of_body) or (
            f"{path}: the body is not made of 'docID wordID count' triples")
    else:
        doc_ids, word_ids, counts = triples[:, 0], triples[:, 1], triples[:, 2]
        if triples.shape[0] and (doc_ids.min() < 1 or doc_ids.max() > n_docs or word_ids.min() < 1
                                 or word_ids.max() > n_words or counts.min() <= 0):
            problem = _first_bad_line(body.split(b"\n"), path, n_docs, n_words, line_of_body)
    if problem:
        raise ValueError(problem)
    return doc_ids, word_ids, counts


def _triples(body):
    """The body's lines as an (n, 3) int64 array, or None when a line that is not blank does
    not hold exactly three integers. NumPy's C reader keeps lines apart (the whole body split
    into tokens would re-align a line of 4 and a line of 2 into two triples) and is ~4x faster
    than converting split tokens; ``body`` holds only digits and blanks (checked before)."""
    if not body.strip():
        return np.empty((0, 3), dtype=np.int64)
    try:
        triples = np.loadtxt(io.BytesIO(body), dtype=np.int64, comments=None, ndmin=2)
    except ValueError:  # a line of another length, a lone CR, a number beyond int64
        return None
    return triples if triples.shape[1] == 3 else None


def _check_range(docs, n_docs):
    if not (isinstance(docs, (tuple, list, np.ndarray)) and len(docs) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in docs)):
        raise ValueError(f"docs must be a (start, stop) pair of integers, got {docs!r}")
    first, last = int(docs[0]), int(docs[1])
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
