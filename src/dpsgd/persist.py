"""Saving and loading fitted models and checkpoints: NumPy arrays + JSON metadata in one
.npz, no pickle.

Writing: a temporary file next to the target (``.<target name>.tmp-XXXXXXXX``) is
written, flushed to disk and renamed over the target, so a crash never leaves a
half-written file; a temporary file of the same target that a killed writer left behind
is removed by the next save once it is :data:`STALE_SECONDS` old. Files get the
permissions ``open()`` would give them (``0o666`` less the umask, or those of the file
they replace), so they can be shared on a cluster.

Reading trusts nothing in the file: the zip directory, each member's ``.npy`` header
and the metadata are checked against each other before any array is allocated, only
the members that are needed are read, and every way a file can be corrupt is a
ValueError of dpsgd's own. dpsgd stores members uncompressed (``np.savez``); compressed
members are refused, so no array can be larger than the file.

What a model file holds of an estimator is what its class declares: a class attribute
``_saved_state = SavedState(...)`` names the arrays and scalars, and :func:`register`
makes the class loadable by name. This module imports no task: the tasks import it and
register their estimators, and :func:`load_model` imports ``dpsgd.tasks`` (which imports
every task) before it looks a name up.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import stat
import time
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dpsgd._version import __version__

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

FORMAT = "dpsgd-model"
CHECKPOINT_FORMAT = "dpsgd-checkpoint"
FORMAT_VERSION = 1

# A temporary file of the same target not written to for this long is a killed writer's.
STALE_SECONDS = 600

_METADATA = "__metadata__"


@dataclass(frozen=True)
class SavedState:
    """The fitted state of an estimator that a model file holds, declared by its class as
    ``_saved_state = SavedState(...)``; attribute names, each saved in the order given.

    Parameters
    ----------
    arrays : tuple of str
        Arrays every fitted estimator has (numbers, or unicode strings); an estimator
        lacking one is not fitted.
    optional : tuple of str
        Arrays saved when the estimator has them and they are not None; a
        ``vocabulary_`` (a sequence of str, one per feature) is saved as unicode.
    scalars : tuple of str
        Numbers saved in the JSON metadata; each is checked on loading against its range
        in ``dpsgd.persist._SCALARS``, which must know it.

    Raises
    ------
    TypeError
        When a field is not a tuple of attribute names.
    ValueError
        When a name appears twice.

    Examples
    --------
    >>> from dpsgd.persist import SavedState
    >>> SavedState(arrays=("coef_", "intercept_"), scalars=("n_features_in_",)).arrays
    ('coef_', 'intercept_')
    """

    arrays: tuple[str, ...]
    optional: tuple[str, ...] = ()
    scalars: tuple[str, ...] = ()

    def __post_init__(self):
        names = [*self.arrays, *self.optional, *self.scalars]
        for field in (self.arrays, self.optional, self.scalars):
            if not isinstance(field, tuple) or not all(isinstance(n, str) and n for n in field):
                raise TypeError(f"SavedState fields are tuples of attribute names, got {field!r}")
        if len(set(names)) != len(names) or _METADATA in names:
            raise ValueError(f"SavedState names each attribute once (and never {_METADATA!r}): {names}")


# class name -> class, filled by register(): the estimators load_model can create
_REGISTRY = {}


def register(cls):
    """Make ``cls`` loadable by :func:`load_model` under its name; returns ``cls``, so it
    can also decorate the class.

    ``cls`` is a scikit-learn style estimator (``cls()`` works; ``get_params`` and
    ``_validate_params``) whose ``_saved_state`` is a :class:`SavedState`.

    Parameters
    ----------
    cls : type
        The estimator class.

    Returns
    -------
    type
        ``cls`` itself.

    Examples
    --------
    ``examples/new_task.py`` registers its estimator so that :func:`save_model` can save it:

    >>> from dpsgd import persist
    >>> @persist.register  # doctest: +SKIP
    ... class LeastSquares(RegressorMixin, BaseEstimator):
    ...     _saved_state = persist.SavedState(arrays=("coef_", "intercept_"))

    Raises
    ------
    TypeError
        When ``cls`` declares no ``_saved_state``.
    ValueError
        When another class of the same name is registered, or a saved scalar has no
        range in ``_SCALARS``.
    """
    state = getattr(cls, "_saved_state", None)
    if not isinstance(state, SavedState):
        raise TypeError(f"cannot register {cls.__name__}: it declares no _saved_state (a dpsgd.persist.SavedState)")
    unchecked = [s for s in state.scalars if s not in _SCALARS]
    if unchecked:
        raise ValueError(f"cannot register {cls.__name__}: no range for the saved scalars {unchecked} "
                         "in dpsgd.persist._SCALARS")
    known = _REGISTRY.get(cls.__name__)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"cannot register {cls.__module__}.{cls.__qualname__}: a model file names its class "
                         f"{cls.__name__!r}, already that of {known.__module__}.{known.__qualname__}")
    _REGISTRY[cls.__name__] = cls  # the same class again (a reloaded module) replaces itself
    return cls


def _registered():
    """The registered estimators, dpsgd's own included (importing the tasks registers them)."""
    import dpsgd.tasks  # noqa: F401

    return _REGISTRY


# what each saved scalar must be: keyword arguments of dpsgd._validation.check_number
_SCALARS = {
    "n_features_in_": dict(low=1, integer=True),
    "n_iter_": dict(low=0, integer=True),
    "n_batch_iter_": dict(low=1, integer=True),
    "t_": dict(low=0.0),
    "doc_topic_prior_": dict(low=0.0, low_open=True),
    "topic_word_prior_": dict(low=0.0, low_open=True),
    "num_timesteps": dict(low=0, integer=True),
    "optimizer_steps_": dict(low=0, integer=True),
}

# parameters that describe a run, not the model: not saved (a loaded model has the defaults)
_RUNTIME_PARAMS = ("random_state", "comm", "step_policy", "network", "compression")


# ---------------------------------------------------------------------------- writing
def atomic_savez(path, arrays, metadata):
    """Write ``arrays`` and the JSON-serialisable ``metadata`` to ``path`` atomically.

    Parameters
    ----------
    path : str or path-like
        The target; its folder must exist.
    arrays : dict of str to ndarray
        Numeric or unicode arrays (no object arrays: they would need pickle).
    metadata : dict
        Stored as JSON.
    """
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    if any(value.dtype.hasobject for value in payload.values()):
        raise ValueError("cannot save arrays of dtype object without pickle (e.g. mixed class labels)")
    payload[_METADATA] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    with atomic_file(path) as f:
        np.savez(f, **payload)


@contextlib.contextmanager
def atomic_file(path):
    """An open binary file whose content replaces ``path`` when the block ends without an
    exception: written to a temporary file in the same folder, flushed to disk and renamed over
    ``path`` (with the mode of the file it replaces, if any). The temporary file is removed
    whatever ends the block early, Ctrl-C included.

    Parameters
    ----------
    path : str or path-like
        The target; its folder must exist.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    _remove_stale_temporaries(folder, name)
    tmp = None
    try:
        # the name is known before the file exists, so that a Ctrl-C right after its creation
        # still removes it (a CI run once kept one: it came between the creation and the try)
        while True:
            tmp = os.path.join(folder, _temporary_prefix(name) + secrets.token_hex(4))
            try:  # as open() creates files (0o666 less the umask), unlike tempfile.mkstemp (0o600)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                break
            except FileExistsError:  # another writer's: never ours to remove
                tmp = None
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))  # open() keeps an existing file's mode
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _temporary_prefix(name):
    return f".{name}.tmp-"


def _remove_stale_temporaries(folder, name):
    """Remove the temporary files of target ``name`` that no writer has touched for
    STALE_SECONDS (left by a killed process); a writer at work keeps its file's mtime fresh."""
    prefix, now = _temporary_prefix(name), time.time()
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if not entry.name.startswith(prefix) or len(entry.name) != len(prefix) + 8:
                continue
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove
                if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > STALE_SECONDS:
                    os.unlink(entry.path)


# ---------------------------------------------------------------------------- reading
class _Archive:
    """An .npz file opened for checked reading of single members."""

    # numeric kinds an array of a model or checkpoint may have (no complex, no objects)
    NUMERIC = "biuf"

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self.zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, ValueError, EOFError, OverflowError, NotImplementedError) as exc:
            raise ValueError(f"{self.path}: not a dpsgd file (not an .npz archive: {exc})") from None
        self.members = {}
        for info in self.zip.infolist():
            if not info.filename.endswith(".npy") or info.filename[:-4] in self.members:
                self.zip.close()
                raise ValueError(f"{self.path}: not a dpsgd file (unexpected archive member "
                                 f"{info.filename[:80]!r})")
            self.members[info.filename[:-4]] = info

    def close(self):
        self.zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def metadata(self):
        """The JSON metadata, a dict."""
        if _METADATA not in self.members:
            raise ValueError(f"{self.path}: not a dpsgd file (no metadata)")
        raw = self.read(_METADATA, kinds="u", ndim=1)
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise ValueError(f"{self.path}: corrupt metadata ({type(exc).__name__})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{self.path}: corrupt metadata (not a JSON object)")
        return meta

    def read(self, name, *, kinds=NUMERIC, shape=None, ndim=None):
        """Member ``name`` as a C-contiguous, writable array of native byte order.

        Its header is checked before its data is read: dtype kind in ``kinds``, the
        ``shape`` (None: any) or number of dimensions, and a data size that matches the
        member's stored size."""
        info = self.members.get(name)
        if info is None:
            raise ValueError(f"{self.path}: the file lacks the array {name!r}")
        where = f"{self.path}: array {name!r}"
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise ValueError(f"{where} is compressed; dpsgd reads only the uncompressed arrays it writes")
        try:
            with self.zip.open(info) as f:
                try:
                    dtype, array_shape, fortran = _npy_header(f)
                except ValueError as exc:
                    raise ValueError(f"{where}: corrupt .npy header ({exc})") from None
                _check_header(where, dtype, array_shape, kinds, shape, ndim)
                size = math.prod(array_shape) * dtype.itemsize
                if f.tell() + size != info.file_size:
                    raise ValueError(f"{where}: its header says {array_shape} of {dtype}, {size} bytes, "
                                     f"but the file holds {info.file_size - f.tell()}")
                data = f.read(size)
        except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
            raise ValueError(f"{where} cannot be read ({type(exc).__name__}: {exc})") from None
        if len(data) != size:
            raise ValueError(f"{where} is truncated")
        array = np.frombuffer(data, dtype=dtype).reshape(array_shape, order="F" if fortran else "C")
        return array.astype(dtype.newbyteorder("="), order="C", copy=True)


def _npy_header(f):
    """(dtype, shape, fortran_order) from an .npy header, read with NumPy's own safe
    parser (a literal dict of bounded size, no pickle)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return dtype, shape, fortran


def _check_header(where, dtype, shape, kinds, expected, ndim):
    if (dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in kinds
            or dtype.itemsize == 0):
        raise ValueError(f"{where} has dtype {dtype}, expected {_KIND_NAMES.get(kinds, kinds)}")
    if any(length < 0 for length in shape):
        raise ValueError(f"{where} has shape {shape}: negative lengths")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{where} has shape {shape}, expected {ndim} dimension(s)")
    if expected is not None and tuple(shape) != tuple(expected):
        raise ValueError(f"{where} has shape {shape}, expected {tuple(expected)}")


_KIND_NAMES = {"f": "floating point", "biuf": "numbers (not complex)", "U": "unicode strings", "u": "bytes",
               "biufU": "numbers or strings"}


def read_npz(path):
    """Return ``(arrays, metadata)`` from a file written by :func:`atomic_savez`.

    Every array is read with the checks of :func:`read_checkpoint` (numeric or unicode
    dtype, a header that agrees with the stored size, no compressed members).

    Raises
    ------
    ValueError
        When the file is not such a file or is corrupt.
    """
    with _Archive(path) as archive:
        metadata = archive.metadata()
        arrays = {name: archive.read(name, kinds="biufU") for name in archive.members if name != _METADATA}
    return arrays, metadata


def write_checkpoint(path: str | os.PathLike, task: str, arrays: dict[str, np.ndarray], metadata: dict) -> None:
    """Write a checkpoint of ``dpsgd train TASK`` atomically, for :func:`read_checkpoint`.

    Parameters
    ----------
    path : str or path-like
        The file to write (.npz); written to a temporary file in its folder, then renamed.
    task : str
        The ``train`` subcommand that writes it (e.g. "linear", "lda").
    arrays : dict of str to ndarray
        Numeric or unicode arrays.
    metadata : dict
        The run's own JSON-serialisable keys; the format, its version and the task are
        added before them.

    Raises
    ------
    ValueError
        When ``task`` is not a non-empty str, or ``metadata`` holds one of the keys added
        here.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from dpsgd.persist import read_checkpoint, write_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "ck.npz")
    >>> write_checkpoint(path, "linear", {"coef": np.zeros(3)}, {"epoch": 5})
    >>> arrays, metadata = read_checkpoint(path, task="linear")
    >>> arrays["coef"].tolist(), metadata["epoch"]
    ([0.0, 0.0, 0.0], 5)
    """
    if not isinstance(task, str) or not task:
        raise ValueError(f"the task of a checkpoint is a non-empty str, got {task!r}")
    reserved = [key for key in _CHECKPOINT_KEYS if key in metadata]
    if reserved:
        raise ValueError(f"the checkpoint's metadata must not hold {reserved}: write_checkpoint adds them")
    atomic_savez(path, arrays, {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "task": task,
                                **metadata})


_CHECKPOINT_KEYS = ("format", "format_version", "task")


def read_checkpoint(path: str | os.PathLike, task: str | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Read a checkpoint written by ``dpsgd train TASK --checkpoint FILE``.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file (.npz).
    task : str, optional
        The ``train`` subcommand the checkpoint must come from (e.g. "linear", "lda").

    Returns
    -------
    arrays : dict of str to ndarray
        Numeric (not complex) or unicode arrays; floating-point ones are checked finite.
        Their shapes are the caller's to check against its run.
    metadata : dict
        The run's keys, and ``format``, ``format_version`` and ``task``.

    Raises
    ------
    FileNotFoundError, PermissionError
        When the file cannot be opened.
    ValueError
        When the file is a model rather than a checkpoint, comes from another task, is
        written by a newer dpsgd, or is corrupt in any way.

    Examples
    --------
    >>> from dpsgd.persist import read_checkpoint
    >>> arrays, metadata = read_checkpoint("ck.npz", task="linear")  # doctest: +SKIP

    :func:`write_checkpoint` has a whole round trip.
    """
    with _Archive(path) as archive:
        meta = archive.metadata()
        kind = meta.get("format")
        if kind == FORMAT:
            raise ValueError(f"{archive.path}: a dpsgd model file, not a checkpoint: load it with "
                             "dpsgd.load_model, or start a run from it with warm_start")
        if kind != CHECKPOINT_FORMAT:
            raise ValueError(f"{archive.path}: not a dpsgd checkpoint")
        _check_version(archive.path, meta)
        if task is not None and meta.get("task") != task:
            raise ValueError(f"{archive.path}: a checkpoint of 'train {meta.get('task')}', not of 'train {task}'")
        arrays = {name: _finite(archive.path, name, archive.read(name, kinds="biufU"))
                  for name in archive.members if name != _METADATA}
    return arrays, meta


def _check_version(path, meta):
    version = meta.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path}: corrupt metadata (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer dpsgd (format {version}); this one reads {FORMAT_VERSION}")


def _finite(path, name, array, *, positive=False):
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: array {name!r} holds NaN or infinite values")
    if positive and not np.all(array > 0):
        raise ValueError(f"{path}: array {name!r} must be positive")
    return array


# ---------------------------------------------------------------------------- models
def _json_value(value):
    """A parameter as JSON holds it. A dict with non-string keys (``class_weight={1: 2.0}``)
    becomes ``{"__pairs__": [[key, value], ...]}``: JSON object keys are strings, and a
    ``{"1": 2.0}`` read back would no longer name the class 1."""
    if isinstance(value, dict) and not all(isinstance(k, str) for k in value):
        return {_PAIRS: [[_json_value(k), _json_value(v)] for k, v in value.items()]}
    return value.item() if isinstance(value, np.generic) else value


def _param_value(path, name, value):
    """The inverse of :func:`_json_value`, checking the pairs' shape."""
    if not (isinstance(value, dict) and _PAIRS in value):
        return value
    pairs = value[_PAIRS]
    if (len(value) != 1 or not isinstance(pairs, list)
            or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float, str)) for x in p)
                       for p in pairs)):
        raise ValueError(f"{path}: corrupt metadata (parameter {name!r})")
    return {k: v for k, v in pairs}


_PAIRS = "__pairs__"


def save_model(estimator: BaseEstimator, path: str | os.PathLike) -> None:
    """Save a fitted dpsgd estimator to ``path`` (.npz: arrays + JSON metadata, no pickle).

    The run's ``random_state``, ``comm``, ``step_policy``, ``network`` and ``compression``
    are not saved: a loaded model has their defaults (one process, no policy). An LDA model's ``vocabulary_`` (a
    sequence of str, one per feature), where it has one, is saved with it.

    Parameters
    ----------
    estimator : fitted SGDClassifier, SGDRegressor or LatentDirichletAllocation
        Or any estimator of a class given to :func:`register`.
    path : str or path-like
        The file to write (.npz); written to a temporary file in its folder, then renamed
        over ``path``, so a crash never leaves a half-written file.

    Raises
    ------
    TypeError
        When the estimator's class declares no ``_saved_state``, or is not registered
        (a file :func:`load_model` could not load).
    ValueError
        When the estimator is not fitted.

    Examples
    --------
    >>> import os, tempfile
    >>> from dpsgd import SGDClassifier, load_model, save_model
    >>> from dpsgd.data import load_a9a
    >>> X, y, X_test, y_test = load_a9a()
    >>> clf = SGDClassifier(max_iter=2, tol=None, n_threads=1, random_state=0).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save_model(clf, path)
    >>> bool((load_model(path).predict(X_test) == clf.predict(X_test)).all())
    True
    """
    cls = type(estimator)
    name, state = cls.__name__, getattr(cls, "_saved_state", None)
    if not isinstance(state, SavedState):
        raise TypeError(f"cannot save a {name}: its class declares no _saved_state (a dpsgd.persist.SavedState "
                        "naming the fitted attributes to save)")
    if _REGISTRY.get(name) is not cls:
        raise TypeError(f"cannot save a {name}: its class is not registered with dpsgd.persist.register, "
                        "so load_model could not load the file")
    if not all(hasattr(estimator, a) for a in state.arrays):
        raise ValueError("the estimator is not fitted")
    arrays = {a: getattr(estimator, a) for a in state.arrays}
    for a in state.optional:
        value = getattr(estimator, a, None)
        if value is not None:
            arrays[a] = _vocabulary_array(value, estimator.n_features_in_) if a == "vocabulary_" else value
    params = {k: _json_value(v) for k, v in estimator.get_params().items() if k not in _RUNTIME_PARAMS}
    for param, value in params.items():
        if callable(value):  # a schedule: its code would need pickle
            raise ValueError(f"{type(estimator).__name__}'s {param} is a callable, which a model file cannot hold "
                             f"(no pickle); give a value it can (e.g. learning_rate='lin_7e-4' for a linear "
                             f"schedule) to save the model")
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dpsgd_version": __version__,
        "estimator": name,
        "params": params,
        "fitted": {s: _json_value(getattr(estimator, s)) for s in state.scalars},
    }
    atomic_savez(path, arrays, metadata)


def _vocabulary_array(vocabulary, n_features):
    words = list(vocabulary)
    if not all(isinstance(w, str) for w in words):
        raise ValueError("vocabulary_ must be a sequence of str")
    if len(words) != n_features:
        raise ValueError(f"vocabulary_ has {len(words)} words, the model {n_features} features")
    return np.array(words, dtype=np.str_) if words else np.empty(0, dtype="U1")


def load_model(path: str | os.PathLike) -> BaseEstimator:
    """Load an estimator written by :func:`save_model`.

    Only the arrays the estimator needs are read, each after its header has been checked
    against the metadata and its stored size; the hyperparameters are checked as
    ``fit`` checks them.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model` (or ``dpsgd train ... --save``).

    Returns
    -------
    SGDClassifier, SGDRegressor or LatentDirichletAllocation, fitted
        Or an estimator of another class given to :func:`register`.

    Raises
    ------
    FileNotFoundError, PermissionError
        When the file cannot be opened.
    ValueError
        When the file is not a dpsgd model (a checkpoint says so) or is corrupt in any
        way: arrays whose shapes disagree with each other or the metadata, NaN, infinite
        or complex weights, invalid hyperparameters or fitted values.

    Examples
    --------
    >>> from dpsgd import load_model
    >>> clf = load_model("model.npz")  # doctest: +SKIP

    :func:`save_model` has a whole round trip.
    """
    with _Archive(path) as archive:
        meta = archive.metadata()
        _check_model_metadata(archive.path, meta)
        cls = _REGISTRY[meta["estimator"]]
        estimator = _estimator_from_params(archive.path, cls, meta["params"])
        fitted = _fitted_scalars(archive.path, cls._saved_state, meta["fitted"])
        arrays = _read_model_arrays(archive, cls, fitted, estimator.get_params())
    for name, value in {**fitted, **arrays}.items():
        setattr(estimator, name, value)
    if isinstance(arrays.get("vocabulary_"), np.ndarray):
        estimator.vocabulary_ = arrays["vocabulary_"].tolist()
    return estimator


def _check_model_metadata(path, meta):
    kind = meta.get("format")
    if kind == CHECKPOINT_FORMAT:
        task = meta.get("task")
        raise ValueError(f"{path}: a dpsgd checkpoint (of 'train {task}'), not a model file: continue its run "
                         f"with 'dpsgd train {task} --resume {path} --save MODEL', or read its arrays with "
                         "dpsgd.persist.read_checkpoint")
    if kind != FORMAT:
        raise ValueError(f"{path}: not a dpsgd model file")
    _check_version(path, meta)
    if not isinstance(meta.get("estimator"), str) or meta["estimator"] not in _registered():
        raise ValueError(f"{path}: unknown estimator {str(meta.get('estimator'))[:80]!r}")
    for key in ("params", "fitted"):
        if not isinstance(meta.get(key), dict):
            raise ValueError(f"{path}: corrupt metadata ({key!r} is not a JSON object)")


def _estimator_from_params(path, cls, params):
    """The estimator with the saved hyperparameters, checked as ``fit`` checks them."""
    name = cls.__name__
    known = cls().get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"{path}: unknown parameters of {name}: {', '.join(map(str, unknown))[:200]}")
    if set(params) & set(_RUNTIME_PARAMS):
        raise ValueError(f"{path}: a model file does not carry {sorted(set(params) & set(_RUNTIME_PARAMS))}")
    flags = [k for k, v in params.items() if isinstance(known[k], bool) and not isinstance(v, bool)]
    if flags:
        raise ValueError(f"{path}: invalid hyperparameters: {', '.join(flags)} must be true or false")
    estimator = cls(**{k: _param_value(path, k, v) for k, v in params.items()})
    try:
        estimator._validate_params()
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: invalid hyperparameters: {exc}") from None
    return estimator


def _fitted_scalars(path, state, fitted):
    from dpsgd._validation import check_number

    scalar_names = state.scalars
    missing = [s for s in scalar_names if s not in fitted]
    if missing:
        raise ValueError(f"{path}: the model file lacks {missing}")
    for s in scalar_names:
        try:
            check_number(s, fitted[s], **_SCALARS[s])
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return {s: fitted[s] for s in scalar_names}


def _read_model_arrays(archive, cls, fitted, params):
    """The arrays ``cls`` saves, each checked against the metadata before it is read: those
    of dpsgd's estimators have the shapes of :data:`_SHAPES`; any other array is only
    checked to hold numbers (finite) or strings."""
    state = cls._saved_state
    checked = _SHAPES[cls.__name__](archive, fitted["n_features_in_"], params) if cls.__name__ in _SHAPES else {}
    names = [*state.arrays, *(a for a in state.optional if a in archive.members)]
    return {a: checked[a] if a in checked else _finite(archive.path, a, archive.read(a, kinds="biufU"))
            for a in names}


def _lda_arrays(archive, d, params):
    arrays = {"components_": _weights(archive, "components_", (params["n_components"], d), positive=True)}
    if "vocabulary_" in archive.members:
        arrays["vocabulary_"] = archive.read("vocabulary_", kinds="U", shape=(d,))
    return arrays


def _a2c_arrays(archive, d, params):
    from dpsgd.tasks.a2c import layout_of  # the hyperparameters are checked: env and policy_kwargs are valid

    layout = layout_of(params["env"], params["policy_kwargs"])
    if d != layout.obs_dim:
        raise ValueError(f"{archive.path}: n_features_in_ is {d}, but {params['env']} has observations of "
                         f"{layout.obs_dim}")
    n = layout.n_params
    arrays = {"params_": _weights(archive, "params_", (n,))}
    if params["use_rms_prop"]:  # RMSprop's square averages
        arrays["optimizer_state_"] = _nonnegative(archive, "optimizer_state_", (n,))
    else:  # Adam's first and second moments
        arrays["optimizer_state_"] = _weights(archive, "optimizer_state_", (2, n))
        if not np.all(arrays["optimizer_state_"][1] >= 0):
            raise ValueError(f"{archive.path}: the second moments of 'optimizer_state_' must be non-negative")
    if "normalizer_" in archive.members:  # VecNormalize's statistics: means, then variances and counts
        stats = _weights(archive, "normalizer_", (2 * d + 4,))
        if not (np.all(stats[d:2 * d] >= 0) and stats[2 * d + 2] >= 0 and stats[2 * d] > 0 and stats[2 * d + 3] > 0):
            raise ValueError(f"{archive.path}: in 'normalizer_' the variances must be non-negative and the counts "
                             "positive")
        arrays["normalizer_"] = stats
    return arrays


def _nonnegative(archive, name, shape):
    array = _weights(archive, name, shape)
    if not np.all(array >= 0):
        raise ValueError(f"{archive.path}: array {name!r} must be non-negative")
    return array


def _regressor_arrays(archive, d, params):
    return {"coef_": _weights(archive, "coef_", (d,)), "intercept_": _weights(archive, "intercept_", (1,))}


def _classifier_arrays(archive, d, params):
    path = archive.path
    classes = archive.read("classes_", kinds="biufU", ndim=1)
    if classes.size < 2 or np.unique(classes).size != classes.size:
        raise ValueError(f"{path}: classes_ must hold two or more distinct labels, got {classes.size}")
    _finite(path, "classes_", classes)
    n_outputs = 1 if classes.size == 2 else classes.size
    return {"classes_": classes, "coef_": _weights(archive, "coef_", (n_outputs, d)),
            "intercept_": _weights(archive, "intercept_", (n_outputs,))}


def _lasso_arrays(archive, d, params):
    """scikit-learn's Lasso shapes: coef_ (d,) and a float intercept_."""
    return {"coef_": _weights(archive, "coef_", (d,)), "intercept_": float(_weights(archive, "intercept_", ()))}


# the shapes of the arrays of dpsgd's estimators, by class name: (archive, n_features_in_,
# params) -> the arrays it read, each checked before it was read
_SHAPES = {"SGDClassifier": _classifier_arrays, "SGDRegressor": _regressor_arrays,
           "LogisticRegression": _classifier_arrays, "Lasso": _lasso_arrays,
           "LatentDirichletAllocation": _lda_arrays, "A2C": _a2c_arrays}


def _weights(archive, name, shape, positive=False):
    """A float64 array of the model, finite (and positive where asked)."""
    array = archive.read(name, kinds="f", shape=shape).astype(np.float64, copy=False)
    return _finite(archive.path, name, array, positive=positive)
