"""What an installed dpsgd ships besides code: the licence, the typing marker."""

from importlib import metadata, resources


def test_the_package_is_marked_as_typed():
    assert resources.files("dpsgd").joinpath("py.typed").is_file()


def test_the_licence_is_declared():
    meta = metadata.metadata("dpsgd")
    assert "BSD-3-Clause" in (meta.get("License-Expression") or meta.get("License") or "")


def test_the_public_api_is_annotated():
    """py.typed promises hints: every public function and estimator method says what it returns."""
    import inspect

    import dpsgd
    import dpsgd.data
    import dpsgd.evaluation

    functions = [getattr(dpsgd.data, name) for name in dpsgd.data.__all__]
    functions += [dpsgd.save_model, dpsgd.load_model, dpsgd.effective_n_threads, dpsgd.evaluation.perplexity,
                  dpsgd.evaluation.heldout_log_likelihood]
    for cls in (dpsgd.SGDClassifier, dpsgd.SGDRegressor, dpsgd.LatentDirichletAllocation):
        functions += [getattr(cls, m) for m in ("fit", "partial_fit", "predict", "transform", "score",
                                                "decision_function", "predict_proba", "perplexity")
                      if m in vars(cls)]
    missing = [f.__qualname__ for f in functions if inspect.signature(f).return_annotation is inspect.Signature.empty]
    assert not missing, missing


def test_the_version_is_pyprojects():
    """dpsgd._version is written by hand: it must stay equal to pyproject.toml's static version."""
    from pathlib import Path

    import pytest

    import dpsgd
    from dpsgd._version import __version__

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("not run from a source tree")
    with pyproject.open("rb") as f:
        assert tomllib.load(f)["project"]["version"] == __version__ == dpsgd.__version__


def test_lower_modules_do_not_import_the_tasks():
    """The package root loads its estimators on first use: dpsgd.persist imports no task, and
    `from dpsgd import SGDClassifier` still works."""
    import subprocess
    import sys

    code = ("import sys, dpsgd.persist; assert not [m for m in sys.modules if m.startswith('dpsgd.tasks')], "
            "sorted(sys.modules); from dpsgd import SGDClassifier; import dpsgd; "
            "assert dpsgd.SGDClassifier is SGDClassifier and 'SGDClassifier' in dir(dpsgd)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_fit_in_one_process_imports_no_module():
    """An estimator's modules load with it, not inside its first fit: a lazy import there was
    timed as part of a fresh process's fit (the exchange's check imported two exchanges: 0.5 ms
    from bytecode, 5 ms to compile them, once 43 ms to find them on this VM's disk)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, scipy.sparse as sp; from dpsgd import SGDClassifier, SGDRegressor, "
            "LatentDirichletAllocation; X = sp.random(60, 20, density=0.3, format='csr', random_state=0); "
            "X.data = np.ceil(5 * X.data); y = np.arange(60) % 2; before = set(sys.modules); "
            "SGDClassifier(max_iter=3, tol=None, n_threads=2).fit(X, y).predict(X); "
            "SGDRegressor(max_iter=3, tol=None).fit(X, y * 1.0).predict(X); "
            "LatentDirichletAllocation(n_components=2, max_iter=2).fit(X).transform(X); "
            "new = sorted(m for m in set(sys.modules) - before if m.startswith('dpsgd')); assert not new, new")
    subprocess.run([sys.executable, "-c", code], check=True)
