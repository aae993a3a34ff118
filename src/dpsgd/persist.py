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
    from dpsgd.tasks.lda import LatentDirichletAllocation
    from dpsgd.tasks.linear import SGDClassifier, SGDRegressor

    return {cls.__name__: cls for cls in (SGDClassifier, SGDRegressor, LatentDirichletAllocation)}


# fitted state saved for each estimator: arrays, then JSON scalars
_FITTED = {
    "SGDClassifier": (("coef_", "intercept_", "classes_"), ("n_features_in_", "n_iter_", "t_")),
    "SGDRegressor": (("coef_", "intercept_"), ("n_features_in_", "n_iter_", "t_")),
    "LatentDirichletAllocation": (("components_", "exp_dirichlet_component_"),
                                  ("n_features_in_", "n_batch_iter_", "doc_topic_prior_", "topic_word_prior_")),
}


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


# parameters that describe a run, not the model: not saved (a loaded model has the defaults)
_RUNTIME_PARAMS = ("random_state", "comm", "step_policy")


def save_model(estimator, path):
    """Save a fitted dpsgd estimator to ``path`` (.npz: arrays + JSON metadata, no pickle).

    The run's ``random_state``, ``comm`` and ``step_policy`` are not saved: a loaded model
    has their defaults (one process, no policy).

    Parameters
    ----------
    estimator : fitted SGDClassifier, SGDRegressor or LatentDirichletAllocation
    path : str or path-like
    """
    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise TypeError(f"cannot save a {name}")
    array_names, scalar_names = _FITTED[name]
    if not hasattr(estimator, array_names[0]):
        raise ValueError("the estimator is not fitted")
    from dpsgd import __version__

    arrays = {a: getattr(estimator, a) for a in array_names if hasattr(estimator, a)}
    if any(a.dtype == object for a in arrays.values()):
        raise ValueError("cannot save arrays of dtype object without pickle (e.g. mixed class labels)")
    params = {k: v for k, v in estimator.get_params().items() if k not in _RUNTIME_PARAMS}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dpsgd_version": __version__,
        "estimator": name,
        "params": params,
        "fitted": {s: getattr(estimator, s).item() if hasattr(getattr(estimator, s), "item")
                   else getattr(estimator, s) for s in scalar_names},
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
    array_names, scalar_names = _FITTED[meta["estimator"]]
    fitted = meta.get("fitted", {})
    missing = [a for a in array_names[:1] if a not in arrays] + [s for s in scalar_names if s not in fitted]
    if missing:
        raise ValueError(f"{path}: the model file lacks {missing}")
    if arrays[array_names[0]].shape[-1] != fitted["n_features_in_"]:
        raise ValueError(f"{path}: {array_names[0]} has {arrays[array_names[0]].shape[-1]} features, "
                         f"metadata says {fitted['n_features_in_']}")
    for a in array_names:
        if a in arrays:
            setattr(est, a, arrays[a])
    for s_name in scalar_names:
        setattr(est, s_name, fitted[s_name])
    return est
