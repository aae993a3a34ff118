"""dpsgd's version: kept equal to ``[project] version`` in pyproject.toml (tests/test_package.py checks it).

A module of its own, importing nothing, so that the modules of the package that write it
(dpsgd.persist into model files) need not import the package root."""

__version__ = "0.1.0"
