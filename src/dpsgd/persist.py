"""Saving and loading fitted models: NumPy arrays + JSON metadata in one .npz, no pickle.

Files are written to a temporary file in the target's folder and renamed over
the target, so a crash never leaves a half-written model.
"""

import json
import os
import tempfile

import numpy as np

FORMAT = "dpsgd-model"
FORMAT_VERSION = 1


def _estimator_classes():
    from dpsgd.tasks.linear import SGDClassifier, SGDRegressor

    return {cls.__name__: cls for cls in (SGDClassifier, SGDRegressor)}


def atomic_savez(path, arrays, metadata):
    """Write ``arrays`` and the JSON-serialisable ``metadata`` to ``path`` atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    payload = dict(arrays)
    payload["__metadata__"] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_npz(path):
    """Return ``(arrays, metadata)`` from a file written by :func:`atomic_savez`."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "__metadata__" not in data:
            raise ValueError(f"{path}: not a dpsgd file (no metadata)")
        metadata = json.loads(data["__metadata__"].tobytes().decode("utf-8"))
        arrays = {k: data[k] for k in data.files if k != "__metadata__"}
    return arrays, metadata


def save_model(estimator, path):
    """Save a fitted dpsgd estimator to ``path`` (.npz: arrays + JSON metadata, no pickle).

    Parameters
    ----------
    estimator : fitted SGDClassifier or SGDRegressor
    path : str or path-like
    """
    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise TypeError(f"cannot save a {name}")
    if not hasattr(estimator, "coef_"):
        raise ValueError("the estimator is not fitted")
    from dpsgd import __version__

    arrays = {"coef_": estimator.coef_, "intercept_": estimator.intercept_}
    if hasattr(estimator, "classes_"):
        if estimator.classes_.dtype == object:
            raise ValueError("cannot save class labels of dtype object without pickle; use numbers or strings")
        arrays["classes_"] = estimator.classes_
    params = {k: v for k, v in estimator.get_params().items() if k != "random_state"}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dpsgd_version": __version__,
        "estimator": name,
        "params": params,
        "n_features_in_": int(estimator.n_features_in_),
        "n_iter_": int(estimator.n_iter_),
        "t_": float(estimator.t_),
    }
    atomic_savez(path, arrays, metadata)


def load_model(path):
    """Load an estimator written by :func:`save_model`.

    Raises
    ------
    ValueError
        When the file is not a dpsgd model or its arrays do not fit together.
    """
    arrays, meta = read_npz(path)
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: not a dpsgd model file")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: written by a newer dpsgd (format {meta['format_version']})")
    classes = _estimator_classes()
    if meta.get("estimator") not in classes:
        raise ValueError(f"{path}: unknown estimator {meta.get('estimator')!r}")
    est = classes[meta["estimator"]](**meta["params"])
    coef = arrays["coef_"]
    if coef.shape[-1] != meta["n_features_in_"]:
        raise ValueError(f"{path}: coef_ has {coef.shape[-1]} features, metadata says {meta['n_features_in_']}")
    est.coef_ = coef
    est.intercept_ = arrays["intercept_"]
    if "classes_" in arrays:
        est.classes_ = arrays["classes_"]
    est.n_features_in_ = meta["n_features_in_"]
    est.n_iter_ = meta["n_iter_"]
    est.t_ = meta["t_"]
    return est
