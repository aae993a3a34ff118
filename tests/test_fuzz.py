"""Fuzz targets for every file reader: on any bytes, a reader returns a valid result or
raises ValueError (OSError for the file system), never another exception, never hangs
(pytest-timeout) and never allocates much more than its input (tracemalloc).

Hypothesis runs a fixed sequence of examples (derandomize) so that CI is repeatable; to
search further, run e.g. ``FUZZ_EXAMPLES=100000 FUZZ_RANDOM=1 pytest tests/test_fuzz.py``."""

import contextlib
import gzip
import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpsgd import LatentDirichletAllocation, SGDClassifier, SGDRegressor, load_model, save_model
from dpsgd.data import load_svmlight, load_uci_bow, make_lda_corpus, read_uci_bow_header
from dpsgd.persist import atomic_savez, read_checkpoint

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 150))
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_RANDOM" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.timeout(120 + EXAMPLES // 10)

# an example may allocate this much beyond its input: arrays of a few thousand entries,
# parser buffers, a zip directory
ALLOWANCE = 32 << 20


@contextlib.contextmanager
def bounded_memory(input_size):
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < ALLOWANCE + 50 * input_size, f"peak {peak} bytes for {input_size} bytes of input"


def outcome(read, *args, **kwargs):
    """read(*args) or the ValueError / OSError it raised; any other exception fails."""
    try:
        return read(*args, **kwargs)
    except (ValueError, OSError) as exc:
        return exc


def write(folder, name, data):
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ---------------------------------------------------------------------------- svmlight
_svm_label = st.sampled_from(["1", "-1", "0", "+1", "2.5", "nan", "x", "1e400", "", "1_0"])
_svm_index = st.integers(-2, 1 << 33).map(str) | st.sampled_from(["qid", "a", "1_0", "", "0x1", " 3"])
_svm_value = (st.sampled_from(["1", "0.5", "-3", "inf", "nan", "1e308", "1e-400", "abc", "", "1_0"])
              | st.floats().map(repr))
_svm_token = st.tuples(_svm_index, _svm_value).map(":".join) | st.sampled_from(["#", "junk", ":", "\x00", "1:2:3"])
_svm_line = st.tuples(_svm_label, st.lists(_svm_token, max_size=6)).map(lambda t: " ".join([t[0], *t[1]]))
_svm_text = st.tuples(st.lists(_svm_line, max_size=15), st.sampled_from(["\n", "\r\n", "\r", "\n\n"])).map(
    lambda t: t[1].join(t[0]).encode("utf-8", errors="surrogatepass"))
svmlight_bytes = _svm_text | st.binary(max_size=400)


@fuzz
@given(data=svmlight_bytes, suffix=st.sampled_from(["", ".gz", ".bz2", ".raw.gz"]))
def test_fuzz_load_svmlight(folder, data, suffix):
    if suffix == ".gz":
        data = gzip.compress(data)
    path = write(folder, "data.svm" + suffix.replace(".raw", ""), data)  # .raw.gz: bytes that claim to be gzip
    with bounded_memory(len(data)):
        result = outcome(load_svmlight, path)
    if not isinstance(result, Exception):
        X, y = result
        assert sp.issparse(X) and X.shape[0] == y.shape[0]
        assert np.all(np.isfinite(X.data)) and np.all(np.isfinite(y))
        assert X.nnz == 0 or 0 <= X.indices.min() <= X.indices.max() < X.shape[1]


_valid_svm_line = st.tuples(st.sampled_from(["1", "-1", "0.5"]),
                            st.lists(st.integers(1, 50), max_size=5, unique=True).map(sorted)).map(
    lambda t: " ".join([t[0], *(f"{i}:1" for i in t[1])]))


@fuzz
@given(lines=st.lists(_valid_svm_line | st.sampled_from(["", "# comment", "1 " + " ".join(f"{i}:2" for i in
                                                                                              range(1, 80))]),
                      max_size=20),
       end=st.sampled_from(["\n", "\r\n"]), parts=st.integers(1, 9))
def test_fuzz_svmlight_byte_ranges_partition_the_rows(folder, lines, end, parts):
    text = end.join(lines).encode()
    path = write(folder, "valid.svm", text)
    whole_X, whole_y = load_svmlight(path, n_features=80, zero_based=False)
    length = max(1, -(-len(text) // parts))
    shares = [load_svmlight(path, n_features=80, offset=r * length, length=length, zero_based=False)
              for r in range(parts)]
    assert np.array_equal(np.concatenate([y for _, y in shares]), whole_y)
    assert (sp.vstack([X for X, _ in shares]) != whole_X).nnz == 0


# ---------------------------------------------------------------------------- UCI bag of words
_count = st.integers(0, 12).map(str) | st.sampled_from(["-1", "1_0", "+2", "1.5", "3\x00", "99999999999999999999",
                                                        "", "x", "0" * 30 + "1"])
_header_line = st.integers(0, 12).map(str) | st.sampled_from(["", "x", "2147483648", "9" * 25, "0" * 300 + "4",
                                                               " 3 ", "2 2"])
_body_line = st.lists(_count, min_size=0, max_size=5).map(" ".join)
_docword_text = st.tuples(st.lists(_header_line, min_size=0, max_size=3), st.lists(_body_line, max_size=15),
                          st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\t\n"])).map(
    lambda t: t[2].join(t[0] + t[1]).encode())
docword_bytes = _docword_text | st.binary(max_size=300)
_docs = st.none() | st.tuples(st.integers(-1, 14), st.integers(-1, 14))


@fuzz
@given(data=docword_bytes, gz=st.booleans(), docs=_docs)
def test_fuzz_load_uci_bow(folder, data, gz, docs):
    if gz:
        data = gzip.compress(data)
    path = write(folder, "docword.x.txt" + (".gz" if gz else ""), data)
    with bounded_memory(len(data)):
        result = outcome(load_uci_bow, path, docs=docs)
        header = outcome(read_uci_bow_header, path)
    if not isinstance(result, Exception):
        X, vocabulary = result
        assert not isinstance(header, Exception), header  # what loads has a readable header
        n_docs, n_words, nnz = header
        first, last = docs or (0, n_docs)
        assert X.shape == (last - first, n_words) and vocabulary is None
        assert np.all(X.data >= 1) and np.all(X.data == np.round(X.data)) and X.has_canonical_format
        assert docs is not None or X.nnz == nnz


@fuzz
@given(data=docword_bytes | st.binary(max_size=50).map(lambda b: gzip.compress(b)[: len(b)]), gz=st.booleans())
def test_fuzz_read_uci_bow_header(folder, data, gz):
    path = write(folder, "docword.h.txt" + (".gz" if gz else ""), data)
    with bounded_memory(len(data)):
        result = outcome(read_uci_bow_header, path)
    if not isinstance(result, Exception):
        assert len(result) == 3 and all(isinstance(v, int) and v >= 0 for v in result)


# ---------------------------------------------------------------------------- model files
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """Paths of a saved classifier (3 classes), regressor and LDA model, and a checkpoint."""
    folder = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    Xc, _, _ = make_lda_corpus(60, 12, 2, 10, random_state=0)
    lda = LatentDirichletAllocation(2, max_iter=1, n_threads=1, random_state=0).fit(Xc)
    lda.vocabulary_ = [f"w{i}" for i in range(12)]
    models = [SGDClassifier(max_iter=2, tol=None, n_threads=1).fit(X, rng.integers(0, 3, 60)),
              SGDRegressor(max_iter=2, tol=None, n_threads=1).fit(X, X[:, 0]), lda]
    for k, model in enumerate(models):
        save_model(model, folder / f"{k}.npz")
    atomic_savez(folder / "3.npz", {"coef_": np.ones((1, 4)), "intercept_": np.zeros(1)},
                 {"format": "dpsgd-checkpoint", "task": "linear", "epochs_done": 1, "t": 2.0})
    return [folder / f"{k}.npz" for k in range(4)]


_mutation = st.one_of(
    st.tuples(st.just("set"), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1,
                                       max_size=6)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("replace"), st.binary(max_size=200)),
)


def mutate(data, mutation):
    kind, *args = mutation
    if kind == "set":
        data = bytearray(data)
        for position, value in args[0]:
            data[position % len(data)] = value
        return bytes(data)
    if kind == "cut":
        return data[:args[0] % len(data)]
    if kind == "insert":
        position = args[0] % len(data)
        return data[:position] + args[1] + data[position:]
    return args[0]


def check_model_file(path, size):
    with bounded_memory(size):
        model = outcome(load_model, path)
        checkpoint = outcome(read_checkpoint, path)
    if not isinstance(model, Exception):
        for name in ("coef_", "intercept_", "components_"):
            if hasattr(model, name):
                assert getattr(model, name).dtype == np.float64 and np.all(np.isfinite(getattr(model, name)))
        assert model.n_features_in_ >= 1
    if not isinstance(checkpoint, Exception):
        arrays, meta = checkpoint
        assert meta["format"] == "dpsgd-checkpoint"


@fuzz
@given(which=st.integers(0, 3), mutations=st.lists(_mutation, min_size=1, max_size=3))
def test_fuzz_load_model_on_mutated_files(folder, model_files, which, mutations):
    data = model_files[which].read_bytes()
    for mutation in mutations:
        data = mutate(data, mutation) or b"\x00"
    check_model_file(write(folder, "model.npz", data), len(data))


_json = st.recursive(st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12)


@fuzz
@given(which=st.integers(0, 3), section=st.sampled_from(["params", "fitted", None]), key=st.text(max_size=20),
       value=_json, known_key=st.booleans(), pick=st.integers(0, 100))
def test_fuzz_load_model_on_altered_metadata(folder, model_files, which, section, key, value, known_key, pick):
    """Valid archives whose JSON metadata has one value replaced by any JSON value."""
    with zipfile.ZipFile(model_files[which]) as z:
        content = {info.filename: z.read(info) for info in z.infolist()}
    meta = json.loads(np.load(io.BytesIO(content["__metadata__.npy"])).tobytes())
    target = meta if section is None else meta.get(section, meta)
    if known_key and target:
        key = sorted(target)[pick % len(target)]
    target[key] = value
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    content["__metadata__.npy"] = buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, raw in content.items():
            z.writestr(name, raw)
    check_model_file(write(folder, "meta.npz", out.getvalue()), len(out.getvalue()))
