"""Loaders and generators."""

import bz2
import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import shared_path
from dpsgd.data import load_a9a, load_svmlight, load_uci_bow, make_sparse_classification, read_uci_bow_header


def test_bundled_a9a_matches_the_documented_counts():
    X, y, X_test, y_test = load_a9a()
    assert X.shape == (32_561, 123) and X.nnz == 451_592
    assert X_test.shape == (16_281, 123) and X_test.nnz == 225_731
    assert (y == 1).sum() == 7_841 and (y_test == -1).sum() == 12_435


def test_bundled_a9a_is_the_shared_file():
    X, y = load_svmlight(shared_path("a9a", "a9a"), n_features=123)
    Xb, yb, _, _ = load_a9a()
    assert (X != Xb).nnz == 0 and np.array_equal(y, yb)


@pytest.mark.parametrize("line,reason", [
    ("1 3:abc 4:1", "value 'abc' of feature 3 is not a number"),
    ("+1 3:1 bad 5:1", "'bad' is not of the form index:value"),
    ("1 5:1 3:1", "not increasing"),
    ("x 1:1", "label 'x' is not a number"),
    ("1 -2:1", "negative"),
])
def test_malformed_svmlight_line_is_named(tmp_path, line, reason):
    path = tmp_path / "bad.svm"
    path.write_text("1 1:0.5 2:1\n-1 2:1\n" + line + "\n1 1:1\n")
    with pytest.raises(ValueError) as info:
        load_svmlight(path)
    message = str(info.value)
    assert "line 3" in message and reason in message and str(path) in message


def test_malformed_gzip_svmlight_line_is_named(tmp_path):
    path = tmp_path / "bad.svm.gz"
    with gzip.open(path, "wt") as f:
        f.write("1 1:1\n" * 5 + "1 1:oops\n")
    with pytest.raises(ValueError, match="line 6"):
        load_svmlight(path)


def test_missing_svmlight_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such svmlight file"):
        load_svmlight(tmp_path / "absent.svm")


def test_svmlight_with_nan_is_rejected(tmp_path):
    path = tmp_path / "nan.svm"
    path.write_text("1 1:1\n-1 2:nan\n")
    with pytest.raises(ValueError, match="line 2"):
        load_svmlight(path)


def test_make_sparse_classification_shapes_and_properties():
    X, y, w = make_sparse_classification(2_000, 3_000, 40, random_state=0)
    assert X.shape == (2_000, 3_000) and X.has_canonical_format
    assert 35 < X.nnz / 2_000 <= 41
    np.testing.assert_allclose(np.sqrt(X.multiply(X).sum(axis=1)).A1, 1.0)
    assert set(np.unique(y)) == {-1.0, 1.0} and abs((y > 0).mean() - 0.5) < 0.05
    # power law: the most frequent column is in far more rows than the median one
    counts = np.bincount(X.indices, minlength=3_000)
    assert counts.max() > 20 * max(np.median(counts), 1)
    # the known separator explains the labels
    margin = X @ w
    assert np.mean(np.sign(margin - np.median(margin)) == y) > 0.9
    X2, y2, w2 = make_sparse_classification(2_000, 3_000, 40, random_state=0)
    assert (X != X2).nnz == 0 and np.array_equal(y, y2)
    with pytest.raises(ValueError):
        make_sparse_classification(10, 5, 6)


@pytest.mark.parametrize("base", [0, 1])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_svmlight_shards_match_the_whole_file(tmp_path, base, suffix):
    """3 ranks each read a byte range: together they hold the file's rows, with the columns
    one process gets (1-based files shifted, the same width on every rank)."""
    from conftest import run_mpi

    rng = np.random.default_rng(base)
    lines = []
    for i in range(200):
        cols = np.sort(rng.choice(np.arange(base, 40 + base), 4, replace=False))
        if base == 0 and i == 0:
            cols[0] = 0  # index 0 appears once, in the first rank's share only
        lines.append(f"{i % 2} " + " ".join(f"{c}:{rng.integers(1, 9)}" for c in cols))
    text = "\n".join(lines) + "\n"
    path = tmp_path / f"data.svm{suffix}"
    if suffix:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    out = run_mpi("svmlight_shard.py", 3, path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["same_rows"] and result["same_labels"], result
    assert result["shape"][1] == 40 and min(result["rows_per_rank"]) > 0


def _write(path, text):
    """Write ``text`` plain, gzip- or bzip2-compressed, as the path's suffix says."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "wt") as f:
        f.write(text)


def _file_with_a_long_line():
    """61 rows; the middle one is longer than a third of the file."""
    long_row = "-1 " + " ".join(f"{j}:1" for j in range(1, 400))
    return "\n".join([f"1 1:{i + 1}" for i in range(30)] + [long_row] + [f"-1 2:{i + 1}" for i in range(30)]) + "\n"


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2"])
def test_svmlight_shards_partition_rows_around_a_long_line(tmp_path, suffix):
    """A line longer than a rank's byte range: every row is read by exactly one of 3 ranks
    (scikit-learn's offset reader gave [31, 1, 30] rows of 61, the long line's successor twice)."""
    from conftest import run_mpi

    path = tmp_path / f"long.svm{suffix}"
    _write(path, _file_with_a_long_line())
    out = run_mpi("svmlight_shard.py", 3, path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ranks"] == out.ranks and sum(result["rows_per_rank"]) == 61, result
    assert result["same_rows"] and result["same_labels"], result


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2"])
@pytest.mark.parametrize("text", [
    _file_with_a_long_line(),
    # a blank line, comments, CRLF, no final newline
    "1 1:1\n\n# a comment line\n-1 2:1 # and a comment\n1 3:1\r\n-1 1:2\n1 2:2",
    "1 1:1\n",
    "",
])
def test_svmlight_byte_ranges_partition_the_rows(tmp_path, suffix, text):
    """Equal byte ranges for 1-7 processes hold, together and in order, exactly the file's rows:
    a line belongs to the range that holds its first byte."""
    path = tmp_path / f"data.svm{suffix}"
    _write(path, text)
    whole_X, whole_y = load_svmlight(path, n_features=400, zero_based=False) if text else (None, np.empty(0))
    size = len(text.encode())
    for n in range(1, 8):
        length = -(-size // n) or 1
        shares = [load_svmlight(path, n_features=400, offset=r * length, length=length, zero_based=False)
                  for r in range(n)]
        assert np.array_equal(np.concatenate([y for _, y in shares]), whole_y), n
        if text:
            assert (sp.vstack([X for X, _ in shares]) != whole_X).nnz == 0


def test_malformed_line_in_a_byte_range_is_named_by_its_line_in_the_file(tmp_path):
    path = tmp_path / "bad.svm"
    path.write_text("1 1:1\n" * 4 + "1 x:1\n")
    with pytest.raises(ValueError, match="line 5: feature index 'x'"):
        load_svmlight(path, n_features=3, offset=13, length=100)


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_corrupt_or_truncated_compressed_svmlight_is_a_value_error(tmp_path, suffix):
    path = tmp_path / f"data.svm{suffix}"
    _write(path, "1 1:1\n" * 1000)
    path.write_bytes(path.read_bytes()[:-20])  # truncated
    with pytest.raises(ValueError, match=str(path)):
        load_svmlight(path)
    path.write_bytes(path.read_bytes()[:10] + b"garbage" * 10)  # corrupt after the magic bytes
    with pytest.raises(ValueError, match=str(path)):
        load_svmlight(path)


def _docword(tmp_path, text, name="docword.x.txt"):
    path = tmp_path / name
    _write(path, text)
    return path


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("text,match", [
    ("10\n10\n2\n1 2 3 4\n5 6\n", "line 4: expected 'docID wordID count'"),  # was read as (1,2,3), (4,5,6)
    ("10\n10\n2\n1 2 3\n4 5\n6\n", "line 5: expected 'docID wordID count'"),
    ("10\n10\n1\n1_0 2 3\n", "line 4: docID '1_0' is not a plain decimal integer"),  # was read as 10
    ("10\n10\n1\n1 2\x00 3\n", r"line 4: wordID '2\\x00' is not a plain decimal integer"),
    ("10\n10\n1\n1 2 3\x00\n", r"line 4: count '3\\x00' is not a plain decimal integer"),
    ("10\n10\n1\n+1 2 3\n", "line 4: docID '\\+1' is not a plain decimal integer"),
    ("10\n10\n1\n1 2\x0b3 4\n", "line 4: wordID '2\\\\x0b3' is not a plain decimal integer"),
    ("10\n10\n2\n1 2 3\r4 5 6\n", "line 4: expected 'docID wordID count'"),  # a lone CR ends no line
    ("10\n10\n1\n1 2 99999999999999999999\n", "line 4: count 99999999999999999999 is too large"),
    ("10\n10\n1\n1 2 -1\n", "line 4: count -1 must be a positive integer"),
])
def test_load_uci_bow_requires_three_plain_integers_per_line(tmp_path, suffix, text, match):
    path = _docword(tmp_path, text, "docword.x.txt" + suffix)
    with pytest.raises(ValueError, match=match) as info:
        load_uci_bow(path)
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match=match):
        load_uci_bow(path, docs=(0, 10))


def test_load_uci_bow_accepts_blank_lines_tabs_and_crlf(tmp_path):
    path = _docword(tmp_path, "2\r\n3\r\n3\r\n1\t1 2\r\n\r\n  1 3 1  \n2 2 5")
    X, _ = load_uci_bow(path)
    assert X.toarray().tolist() == [[2, 0, 1], [0, 5, 0]]


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_a_header_of_any_length_is_read_alike_by_both_readers(tmp_path, suffix):
    """Header lines longer than 200 bytes: read_uci_bow_header read them, load_uci_bow said the
    file 'ends inside its 3-line header'."""
    path = _docword(tmp_path, "0" * 300 + "2\n" + " " * 300 + "3\n0003\n1 1 2\n1 3 1\n2 2 5\n",
                    "docword.x.txt" + suffix)
    assert read_uci_bow_header(path) == (2, 3, 3)
    assert load_uci_bow(path)[0].toarray().tolist() == [[2, 0, 1], [0, 5, 0]]
    assert load_uci_bow(path, docs=(1, 2))[0].toarray().tolist() == [[0, 5, 0]]


@pytest.mark.parametrize("docs", [(1.5, 3.7), (np.float64(0), 2), ("0", "2"), (True, 2), (0, 1, 2), 3, (2, 1),
                                  (-1, 2), (0, 5)])
def test_load_uci_bow_document_range_must_be_integers_within_the_corpus(tmp_path, docs):
    path = _docword(tmp_path, "4\n3\n3\n1 1 2\n1 3 1\n4 2 5\n")
    with pytest.raises(ValueError, match="docs"):
        load_uci_bow(path, docs=docs)


def test_load_uci_bow_document_range_accepts_numpy_integers(tmp_path):
    path = _docword(tmp_path, "4\n3\n3\n1 1 2\n1 3 1\n4 2 5\n")
    X, _ = load_uci_bow(path, docs=(np.int64(3), np.int32(4)))
    assert X.toarray().tolist() == [[0, 5, 0]]


@pytest.mark.parametrize("header,match", [
    ("2147483648\n3\n1\n", "D=2147483648"),
    ("2\n2147483648\n1\n", "W=2147483648"),
    ("2\n3\n" + "9" * 30 + "\n", "NNZ"),
    ("2\n3\n" + "9" * 5000 + "\n", "NNZ"),  # more digits than int() converts
])
def test_uci_bow_header_values_must_fit(tmp_path, header, match):
    path = _docword(tmp_path, header + "1 1 1\n")
    for read in (read_uci_bow_header, load_uci_bow):
        with pytest.raises(ValueError, match=match):
            read(path)


def test_load_uci_bow_refuses_a_header_claiming_millions_of_empty_documents(tmp_path):
    """D=2,000,000,000 with one entry would allocate 16 GB of empty rows."""
    path = _docword(tmp_path, "2000000000\n3\n1\n1 1 1\n")
    with pytest.raises(ValueError, match="empty documents"):
        load_uci_bow(path)
    with pytest.raises(ValueError, match="empty documents"):
        load_uci_bow(path, docs=(0, 1_000_000_000))
    assert load_uci_bow(path, docs=(0, 10))[0].nnz == 1  # a small range is fine


def test_corrupt_gzip_docword_is_a_value_error(tmp_path):
    path = _docword(tmp_path, "4\n3\n3\n1 1 2\n1 3 1\n4 2 5\n" * 50, "docword.x.txt.gz")
    path.write_bytes(path.read_bytes()[:-12])  # truncated
    for read in (load_uci_bow, lambda p: load_uci_bow(p, docs=(0, 4))):
        with pytest.raises(ValueError, match=str(path)):
            read(path)
    path.write_bytes(b"4\n3\n3\n1 1 2\n")  # not gzip at all
    for read in (load_uci_bow, read_uci_bow_header, lambda p: load_uci_bow(p, docs=(0, 4))):
        with pytest.raises(ValueError, match=str(path)):
            read(path)


def test_rank_shares_and_the_held_out_documents_do_not_depend_on_the_ranks():
    from dpsgd.data import contiguous_share, heldout_mask

    for ranks in (1, 2, 3, 7):
        shares = [contiguous_share(100, r, ranks) for r in range(ranks)]
        assert shares[0][0] == 0 and shares[-1][1] == 100
        assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
        assert max(b - a for a, b in shares) - min(b - a for a, b in shares) <= 1
        held = np.concatenate([heldout_mask(100, 5, a, b) for a, b in shares])
        np.testing.assert_array_equal(held, heldout_mask(100, 5))
    assert heldout_mask(100, 5).sum() == 10 and heldout_mask(5, 0).sum() == 1
