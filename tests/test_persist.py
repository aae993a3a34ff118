"""Model files and checkpoints: atomic writes that honour the umask, and reading that trusts
nothing in the file (corrupt, hostile or mistaken files raise ValueError of dpsgd's own)."""

import io
import json
import os
import stat
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

from sklearn.base import BaseEstimator

from dpsgd import LatentDirichletAllocation, SGDClassifier, SGDRegressor, load_model, persist, save_model
from dpsgd.data import make_lda_corpus
from dpsgd.persist import STALE_SECONDS, SavedState, atomic_savez, read_checkpoint, read_npz, register, write_checkpoint


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = np.where(X[:, 0] + 0.1 * rng.normal(size=200) > 0, 1, -1)
    return SGDClassifier(max_iter=3, tol=None, random_state=0, n_threads=1).fit(X, y), X


@pytest.fixture(scope="module")
def lda():
    X, _, _ = make_lda_corpus(200, 30, 3, 20, random_state=0)
    return LatentDirichletAllocation(3, max_iter=2, n_threads=1, random_state=0).fit(X), X


def members(path):
    """{name: raw .npy bytes} of an .npz file."""
    with zipfile.ZipFile(path) as z:
        return {info.filename[:-4]: z.read(info) for info in z.infolist()}


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=True)
    return buffer.getvalue()


def metadata(path):
    return json.loads(np.load(path)["__metadata__"].tobytes())


def rewrite(path, *, arrays=(), raw=(), meta=None, drop=(), compression=zipfile.ZIP_STORED):
    """Rewrite the .npz at ``path`` with some members replaced (arrays, or raw .npy bytes),
    the metadata changed by ``meta(dict)``, or members dropped."""
    content = members(path)
    content.update({k: npy(v) for k, v in dict(arrays).items()})
    content.update(dict(raw))
    if meta is not None:
        info = json.loads(np.frombuffer(content["__metadata__"][128:], dtype=np.uint8).tobytes())
        meta(info)
        content["__metadata__"] = npy(np.frombuffer(json.dumps(info).encode(), dtype=np.uint8))
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in content.items():
            if name not in drop:
                z.writestr(name + ".npy", data)


def test_roundtrips_keep_predictions(tmp_path, classifier, lda):
    clf, X = classifier
    save_model(clf, tmp_path / "clf.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "clf.npz").decision_function(X), clf.decision_function(X))
    model, Xl = lda
    save_model(model, tmp_path / "lda.npz")
    loaded = load_model(tmp_path / "lda.npz")
    np.testing.assert_array_equal(loaded.exp_dirichlet_component_, model.exp_dirichlet_component_)
    np.testing.assert_allclose(loaded.transform(Xl[:5]), model.transform(Xl[:5]))


# ---------------------------------------------------------------------------- memory
def test_an_unused_deflated_member_is_never_decompressed(tmp_path, classifier):
    """A 64 MB member of zeros deflates to ~64 KB: np.load decompressed every member."""
    path = tmp_path / "bomb.npz"
    save_model(classifier[0], path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z, z.open("junk.npy", "w", force_zip64=True) as f:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (1 << 23,)})
        f.write(header.getvalue())
        for _ in range(64):
            f.write(bytes(1 << 20))
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path, classifier):
    """A coef_ header claiming 10**12 features (7 TiB), matched by the metadata."""
    path = tmp_path / "huge.npz"
    save_model(classifier[0], path)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (1, 10**12)})

    def claim(info):
        info["fitted"]["n_features_in_"] = 10**12

    rewrite(path, raw={"coef_": header.getvalue() + bytes(64)}, meta=claim)
    with pytest.raises(ValueError, match="header says"):
        load_model(path)


def test_compressed_members_are_refused(tmp_path, classifier):
    path = tmp_path / "deflated.npz"
    save_model(classifier[0], path)
    rewrite(path, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(ValueError, match="compressed"):
        load_model(path)


# ---------------------------------------------------------------------------- contents
def _set(key, value, section="fitted"):
    """A change of the metadata: ``info[section][key] = value`` (section None: the top level)."""
    def change(info):
        (info if section is None else info[section])[key] = value
    return change


@pytest.mark.parametrize("change,match", [
    (dict(arrays={"coef_": np.full((1, 6), np.nan)}), "coef_' holds NaN"),
    (dict(arrays={"intercept_": np.array([np.inf])}), "intercept_' holds NaN or infinite"),
    (dict(arrays={"coef_": np.ones((1, 6), dtype=complex)}), "dtype complex128"),
    (dict(arrays={"coef_": np.ones((1, 5))}), r"shape \(1, 5\), expected \(1, 6\)"),
    (dict(arrays={"intercept_": np.ones(3)}), r"intercept_' has shape \(3,\), expected \(1,\)"),
    (dict(arrays={"classes_": np.array([-1, 0, 1])}), r"coef_' has shape \(1, 6\), expected \(3, 6\)"),
    (dict(arrays={"classes_": np.array([1, 1])}), "distinct"),
    (dict(arrays={"classes_": np.array([1.0, np.nan])}), "classes_' holds NaN"),
    (dict(arrays={"coef_": np.array([None] * 6).reshape(1, 6)}), "dtype object"),  # a pickle
    (dict(drop=("coef_",)), "lacks the array 'coef_'"),
    (dict(meta=_set("alpha", -1.0, "params")), "invalid hyperparameters: alpha must be >= 0"),
    (dict(meta=_set("loss", "nope", "params")), "invalid hyperparameters: loss='nope'"),
    (dict(meta=_set("fit_intercept", "yes", "params")), "fit_intercept must be true or false"),
    (dict(meta=_set("no_such_param", 1, "params")), "unknown parameters of SGDClassifier: no_such_param"),
    (dict(meta=_set("comm", 1, "params")), "does not carry"),
    (dict(meta=_set("n_features_in_", -6)), "n_features_in_ must be >= 1"),
    (dict(meta=_set("n_features_in_", 6.5)), "n_features_in_ must be an int"),
    (dict(meta=_set("t_", float("nan"))), "t_ must be finite"),
    (dict(meta=lambda info: info["fitted"].pop("t_")), r"lacks \['t_'\]"),
    (dict(meta=lambda info: info.update(fitted=[1])), "'fitted' is not a JSON object"),
    (dict(meta=lambda info: info.pop("params")), "'params' is not a JSON object"),
    (dict(meta=_set("format_version", 99, None)), "newer dpsgd"),
    (dict(meta=_set("estimator", "Pipeline", None)), "unknown estimator 'Pipeline'"),
    (dict(raw={"__metadata__": npy(np.frombuffer(b"[" * 100_000, dtype=np.uint8))}), "corrupt metadata"),
    (dict(raw={"__metadata__": npy(np.frombuffer(b"\xff{}", dtype=np.uint8))}), "corrupt metadata"),
    (dict(raw={"__metadata__": npy(np.frombuffer(b"[1]", dtype=np.uint8))}), "not a JSON object"),
    (dict(drop=("__metadata__",)), "no metadata"),
    (dict(raw={"coef_": b"\x93NUMPY\x01\x00garbage"}), "corrupt .npy header"),
    (dict(raw={"coef_": b""}), "corrupt .npy header"),
])
def test_corrupt_classifier_files_raise_value_error(tmp_path, classifier, change, match):
    path = tmp_path / "model.npz"
    save_model(classifier[0], path)
    rewrite(path, **change)
    with pytest.raises(ValueError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("change,match", [
    (dict(meta=_set("n_components", -3, "params")), "n_components must be >= 1"),
    (dict(meta=_set("n_components", 4, "params")), r"shape \(3, 30\), expected \(4, 30\)"),
    (dict(arrays={"components_": -np.ones((3, 30))}), "components_' must be positive"),
    (dict(arrays={"components_": np.zeros((3, 30))}), "components_' must be positive"),
    (dict(meta=_set("doc_topic_prior_", 0.0)), "doc_topic_prior_ must be > 0"),
    (dict(meta=_set("learning_decay", 2.0, "params")), "learning_decay"),
    (dict(arrays={"vocabulary_": np.array(["a", "b"])}), r"vocabulary_' has shape \(2,\), expected \(30,\)"),
    (dict(arrays={"vocabulary_": np.arange(30)}), "vocabulary_' has dtype int64, expected unicode"),
])
def test_corrupt_lda_files_raise_value_error(tmp_path, lda, change, match):
    path = tmp_path / "lda.npz"
    save_model(lda[0], path)
    rewrite(path, **change)
    with pytest.raises(ValueError, match=match):
        load_model(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04" + bytes(40), b"PK\x05\x06" + bytes(18)])
def test_files_that_are_not_archives_raise_value_error(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a dpsgd file"):
        load_model(path)


def test_truncated_files_raise_value_error(tmp_path, classifier):
    path = tmp_path / "model.npz"
    save_model(classifier[0], path)
    whole = path.read_bytes()
    for cut in (10, len(whole) // 2, len(whole) - 30):
        path.write_bytes(whole[:cut])
        with pytest.raises(ValueError):
            load_model(path)


def test_a_pickled_npy_file_is_not_loaded(tmp_path):
    """A plain .npy of objects: np.load advised allow_pickle=True; ours says what the file is not."""
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a dpsgd file") as info:
        load_model(path)
    assert "allow_pickle" not in str(info.value)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError):
        load_model(tmp_path)


# ---------------------------------------------------------------------------- checkpoints
def _checkpoint(path, task="linear", **arrays):
    arrays = arrays or {"coef_": np.ones((1, 4)), "intercept_": np.zeros(1)}
    atomic_savez(path, arrays, {"format": "dpsgd-checkpoint", "task": task, "epochs_done": 2, "t": 5.0})


def test_read_checkpoint(tmp_path):
    _checkpoint(tmp_path / "ck.npz", classes_=np.array(["no", "yes"]), coef_=np.ones((1, 4)))
    arrays, meta = read_checkpoint(tmp_path / "ck.npz", "linear")
    assert meta["epochs_done"] == 2 and arrays["classes_"].tolist() == ["no", "yes"]
    assert arrays["coef_"].flags.writeable and arrays["coef_"].flags.c_contiguous
    assert read_checkpoint(tmp_path / "ck.npz")[1]["task"] == "linear"
    with pytest.raises(ValueError, match="a checkpoint of 'train linear', not of 'train lda'"):
        read_checkpoint(tmp_path / "ck.npz", "lda")


def test_load_model_on_a_checkpoint_says_what_it_is_and_how_to_use_it(tmp_path):
    _checkpoint(tmp_path / "ck.npz")
    with pytest.raises(ValueError, match=r"a dpsgd checkpoint \(of 'train linear'\), not a model file.*--resume"):
        load_model(tmp_path / "ck.npz")


def test_read_checkpoint_on_a_model_or_a_corrupt_checkpoint(tmp_path, classifier):
    save_model(classifier[0], tmp_path / "model.npz")
    with pytest.raises(ValueError, match="a dpsgd model file, not a checkpoint"):
        read_checkpoint(tmp_path / "model.npz")
    _checkpoint(tmp_path / "ck.npz", coef_=np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="coef_' holds NaN"):
        read_checkpoint(tmp_path / "ck.npz")
    _checkpoint(tmp_path / "ck.npz", coef_=np.ones(2, dtype=complex))
    with pytest.raises(ValueError, match="complex"):
        read_checkpoint(tmp_path / "ck.npz")
    (tmp_path / "ck.npz").write_bytes((tmp_path / "model.npz").read_bytes()[:100])
    with pytest.raises(ValueError):
        read_checkpoint(tmp_path / "ck.npz")


# ---------------------------------------------------------------------------- writing
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_mode_open_would_give_them(tmp_path, classifier, umask, mode):
    old = os.umask(umask)
    try:
        save_model(classifier[0], tmp_path / "model.npz")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "model.npz").stat().st_mode) == mode


def test_an_existing_file_keeps_its_mode(tmp_path, classifier):
    path = tmp_path / "model.npz"
    save_model(classifier[0], path)
    path.chmod(0o640)
    save_model(classifier[0], path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_killed_writers_temporary_file_is_removed_by_the_next_save(tmp_path, classifier):
    stale = tmp_path / ".model.npz.tmp-0123abcd"
    fresh = tmp_path / ".model.npz.tmp-4567cdef"  # perhaps another writer at work
    other = tmp_path / ".other.npz.tmp-89ab0123"  # another target's
    for leftover in (stale, fresh, other):
        leftover.write_bytes(b"half a model")
    old = time.time() - STALE_SECONDS - 60
    for leftover in (stale, other):
        os.utime(leftover, (old, old))
    save_model(classifier[0], tmp_path / "model.npz")
    assert not stale.exists() and fresh.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.npz.tmp-4567cdef", ".other.npz.tmp-89ab0123",
                                                          "model.npz"]


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    with pytest.raises(TypeError):
        atomic_savez(tmp_path / "x.npz", {"a": np.zeros(2)}, {"not json": object()})
    with pytest.raises(ValueError):
        atomic_savez(tmp_path / "x.npz", {"a": np.array([{}], dtype=object)}, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("when", ["created", "writing"])
def test_ctrl_c_during_a_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, when):
    """A Ctrl-C right after the temporary file is created (before Python has its descriptor:
    a CI run once kept such a file) or while it is written: the target keeps its old content."""
    from dpsgd import persist

    target = tmp_path / "x.npz"
    atomic_savez(target, {"a": np.zeros(2)}, {"v": 1})
    real_open, real_savez = os.open, np.savez

    def interrupted_open(*args, **kwargs):
        real_open(*args, **kwargs)  # the file exists, its descriptor is lost
        raise KeyboardInterrupt

    def interrupted_savez(f, **arrays):
        f.write(b"PK half")
        raise KeyboardInterrupt

    if when == "created":
        monkeypatch.setattr(persist.os, "open", interrupted_open)
    else:
        monkeypatch.setattr(persist.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        atomic_savez(target, {"a": np.ones(2)}, {"v": 2})
    monkeypatch.setattr(persist.os, "open", real_open)
    monkeypatch.setattr(persist.np, "savez", real_savez)
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]
    arrays, meta = read_npz(target)
    assert meta == {"v": 1} and np.array_equal(arrays["a"], np.zeros(2))


# ---------------------------------------------------------------------------- vocabulary
def test_an_lda_vocabulary_is_saved_as_unicode_and_checked(tmp_path, lda):
    model = lda[0]
    words = [f"wörd{i}" for i in range(30)]
    model.vocabulary_ = words
    try:
        save_model(model, tmp_path / "lda.npz")
        with np.load(tmp_path / "lda.npz") as data:
            assert data["vocabulary_"].dtype.kind == "U"
        loaded = load_model(tmp_path / "lda.npz")
        assert loaded.vocabulary_ == words and all(type(w) is str for w in loaded.vocabulary_)
        model.vocabulary_ = words[:-1]
        with pytest.raises(ValueError, match="29 words, the model 30 features"):
            save_model(model, tmp_path / "lda2.npz")
        model.vocabulary_ = list(range(30))
        with pytest.raises(ValueError, match="sequence of str"):
            save_model(model, tmp_path / "lda2.npz")
    finally:
        del model.vocabulary_
    save_model(model, tmp_path / "lda.npz")
    assert not hasattr(load_model(tmp_path / "lda.npz"), "vocabulary_")


def test_a_regressor_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 3))
    reg = SGDRegressor(max_iter=2, tol=None, random_state=0, n_threads=1).fit(X, X @ [1.0, 2.0, 3.0])
    save_model(reg, tmp_path / "reg.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "reg.npz").predict(X), reg.predict(X))
    rewrite(tmp_path / "reg.npz", arrays={"coef_": np.ones((1, 3))})
    with pytest.raises(ValueError, match=r"shape \(1, 3\), expected \(3,\)"):
        load_model(tmp_path / "reg.npz")


def test_class_weights_keep_their_keys(tmp_path):
    """JSON object keys are strings: class_weight={1: 2.0} came back as {'1': 2.0}."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4))
    y = np.where(X[:, 0] > 0.5, 1, -1)
    clf = SGDClassifier(class_weight={1: 3.0, -1: 1.0}, max_iter=3, tol=None, random_state=0, n_threads=1).fit(X, y)
    save_model(clf, tmp_path / "cw.npz")
    loaded = load_model(tmp_path / "cw.npz")
    assert loaded.class_weight == {1: 3.0, -1: 1.0}
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    rewrite(tmp_path / "cw.npz", meta=lambda m: m["params"].update(class_weight={"__pairs__": [[1]]}))
    with pytest.raises(ValueError, match="corrupt metadata"):
        load_model(tmp_path / "cw.npz")


# ---------------------------------------------------------------------------- what a class saves
class Toy(BaseEstimator):
    """An estimator of another package: what it saves is what it declares."""

    _saved_state = SavedState(arrays=("weights_", "labels_"), optional=("bias_",), scalars=("n_features_in_",))

    def __init__(self, scale=1.0, name="toy"):
        self.scale = scale
        self.name = name

    def _validate_params(self):
        if not self.scale > 0:
            raise ValueError("scale must be > 0")


class Unsaved(BaseEstimator):
    pass


@pytest.fixture
def registry(monkeypatch):
    """A copy of the registry for the test to register in (dpsgd's estimators included)."""
    monkeypatch.setattr(persist, "_REGISTRY", dict(persist._registered()))
    return persist._REGISTRY


def test_the_estimators_declare_what_they_save_and_are_registered():
    for cls in (SGDClassifier, SGDRegressor, LatentDirichletAllocation):
        assert isinstance(cls._saved_state, SavedState)
        assert persist._registered()[cls.__name__] is cls
    assert LatentDirichletAllocation._saved_state.optional == ("vocabulary_",)


def test_a_registered_class_roundtrips(tmp_path, registry):
    assert register(Toy) is Toy and registry["Toy"] is Toy
    toy = Toy(scale=2.5, name="x")
    toy.weights_, toy.labels_, toy.n_features_in_ = np.arange(6.0).reshape(2, 3), np.array(["a", "b"]), 3
    save_model(toy, tmp_path / "toy.npz")
    loaded = load_model(tmp_path / "toy.npz")
    assert type(loaded) is Toy and loaded.get_params() == {"scale": 2.5, "name": "x"}
    np.testing.assert_array_equal(loaded.weights_, toy.weights_)
    assert loaded.labels_.tolist() == ["a", "b"] and loaded.n_features_in_ == 3 and not hasattr(loaded, "bias_")
    toy.bias_ = np.ones(2)
    save_model(toy, tmp_path / "toy.npz")
    np.testing.assert_array_equal(load_model(tmp_path / "toy.npz").bias_, np.ones(2))
    rewrite(tmp_path / "toy.npz", arrays={"bias_": np.array([1.0, np.inf])})
    with pytest.raises(ValueError, match="bias_' holds NaN or infinite"):
        load_model(tmp_path / "toy.npz")
    rewrite(tmp_path / "toy.npz", meta=_set("scale", -1, "params"))
    with pytest.raises(ValueError, match="invalid hyperparameters: scale must be > 0"):
        load_model(tmp_path / "toy.npz")


def test_a_class_that_declares_nothing_or_is_not_registered_is_refused(tmp_path, registry, classifier):
    with pytest.raises(TypeError, match="cannot save a Unsaved: its class declares no _saved_state"):
        save_model(Unsaved(), tmp_path / "u.npz")
    with pytest.raises(TypeError, match="cannot register Unsaved: it declares no _saved_state"):
        register(Unsaved)
    with pytest.raises(TypeError, match="cannot save a Toy: its class is not registered"):
        save_model(Toy(), tmp_path / "toy.npz")

    class SGDClassifierOfMine(SGDClassifier):  # inherits a declaration, is not registered
        pass

    mine = SGDClassifierOfMine()
    mine.__dict__.update(vars(classifier[0]))
    with pytest.raises(TypeError, match="not registered"):
        save_model(mine, tmp_path / "mine.npz")
    assert list(tmp_path.iterdir()) == []


def test_a_file_of_an_unregistered_class_is_refused(tmp_path, registry):
    register(Toy)
    toy = Toy()
    toy.weights_, toy.labels_, toy.n_features_in_ = np.ones(2), np.arange(2), 2
    save_model(toy, tmp_path / "toy.npz")
    del registry["Toy"]
    with pytest.raises(ValueError, match="unknown estimator 'Toy'"):
        load_model(tmp_path / "toy.npz")


def test_register_refuses_a_second_class_of_a_name_and_unchecked_scalars(registry):
    register(Toy)
    register(Toy)  # the same class again: a reloaded module

    class SGDRegressor(Toy):
        pass

    with pytest.raises(ValueError, match="a model file names its class 'SGDRegressor', already that of "
                                         "dpsgd.tasks.linear.SGDRegressor"):
        register(SGDRegressor)

    class Scaled(Toy):
        _saved_state = SavedState(arrays=("weights_",), scalars=("n_features_in_", "scale_"))

    with pytest.raises(ValueError, match=r"no range for the saved scalars \['scale_'\]"):
        register(Scaled)


@pytest.mark.parametrize("fields,error", [
    (dict(arrays=["coef_"]), TypeError),
    (dict(arrays=("coef_",), scalars="t_"), TypeError),
    (dict(arrays=("coef_", "")), TypeError),
    (dict(arrays=("coef_",), optional=("coef_",)), ValueError),
    (dict(arrays=("__metadata__",)), ValueError),
])
def test_saved_state_is_checked(fields, error):
    with pytest.raises(error):
        SavedState(**fields)


def test_files_keep_their_layout(tmp_path, classifier, lda):
    """Members and metadata keys as dpsgd 0.1.0 wrote them."""
    save_model(classifier[0], tmp_path / "clf.npz")
    assert list(members(tmp_path / "clf.npz")) == ["classes_", "coef_", "intercept_", "__metadata__"]
    meta = metadata(tmp_path / "clf.npz")
    assert list(meta) == ["format", "format_version", "dpsgd_version", "estimator", "params", "fitted"]
    assert list(meta["fitted"]) == ["n_features_in_", "n_iter_", "t_"]
    assert meta["format"] == "dpsgd-model" and meta["format_version"] == 1 and meta["estimator"] == "SGDClassifier"
    model = lda[0]
    model.vocabulary_ = [f"w{i}" for i in range(30)]
    try:
        save_model(model, tmp_path / "lda.npz")
    finally:
        del model.vocabulary_
    assert list(members(tmp_path / "lda.npz")) == ["components_", "vocabulary_", "__metadata__"]
    assert list(metadata(tmp_path / "lda.npz")["fitted"]) == ["n_features_in_", "n_batch_iter_",
                                                              "doc_topic_prior_", "topic_word_prior_"]


def test_a_file_written_by_dpsgd_0_1_0_loads(tmp_path):
    """The file np.savez made of dpsgd 0.1.0's arrays and metadata, written here by hand."""
    coef, intercept = np.array([[0.5, -1.0, 2.0]]), np.array([0.25])
    params = {k: v for k, v in SGDClassifier().get_params().items() if k not in ("random_state", "comm",
                                                                                  "step_policy", "network",
                                                                                  "compression")}
    meta = {"format": "dpsgd-model", "format_version": 1, "dpsgd_version": "0.1.0", "estimator": "SGDClassifier",
            "params": params, "fitted": {"n_features_in_": 3, "n_iter_": 4, "t_": 801.0}}
    np.savez(tmp_path / "old.npz", classes_=np.array([-1, 1]), coef_=coef, intercept_=intercept,
             __metadata__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    loaded = load_model(tmp_path / "old.npz")
    assert (loaded.n_iter_, loaded.t_) == (4, 801.0)
    X = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    np.testing.assert_array_equal(loaded.decision_function(X), X @ coef[0] + intercept)


def test_write_checkpoint(tmp_path):
    write_checkpoint(tmp_path / "ck.npz", "lda", {"components_": np.ones((2, 3))}, {"passes_done": 2})
    arrays, meta = read_checkpoint(tmp_path / "ck.npz", "lda")
    assert meta == {"format": "dpsgd-checkpoint", "format_version": 1, "task": "lda", "passes_done": 2}
    assert list(meta) == ["format", "format_version", "task", "passes_done"]  # the order the CLI wrote
    np.testing.assert_array_equal(arrays["components_"], np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"must not hold \['task'\]"):
        write_checkpoint(tmp_path / "ck2.npz", "lda", {}, {"task": "linear"})
    with pytest.raises(ValueError, match="non-empty str"):
        write_checkpoint(tmp_path / "ck2.npz", "", {}, {})
    assert not (tmp_path / "ck2.npz").exists()
