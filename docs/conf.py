"""Sphinx configuration of dpsgd's documentation.

Build it from the repository root with the ``docs`` extra installed::

    pip install ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html

The gallery (``examples/plot_*.py``) runs during the build. Links to NumPy, SciPy,
scikit-learn, mpi4py and Matplotlib (intersphinx) need their inventories from the internet, so
they are made only when ``DPSGD_DOCS_INTERSPHINX=1`` is set: a build without the internet (CI)
stays free of warnings and simply has no such links.
"""

import os
import sys
from pathlib import Path

import dpsgd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

from png_scraper import PNGScraper  # noqa: E402  (docs/_ext)

project = "dpsgd"
author = "the dpsgd developers"
copyright = "2026, the dpsgd developers"
release = dpsgd.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "cli_help",  # docs/_ext/cli_help.py: the command line page from dpsgd's own parser
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5", "sg_execution_times.rst"]
templates_path = ["_templates"]

# MyST: the pages are Markdown, as the README was; headings get anchors for links between pages
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# autodoc / autosummary / numpydoc
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"  # numpydoc's "Parameters" sections say the types
numpydoc_show_class_members = False  # autodoc lists the methods; scikit-learn's inherited ones are left out
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# intersphinx: only when asked (the inventories come from the internet; CI has none)
intersphinx_mapping = {}
if os.environ.get("DPSGD_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable/", None),
        "scipy": ("https://docs.scipy.org/doc/scipy/", None),
        "sklearn": ("https://scikit-learn.org/stable/", None),
        "mpi4py": ("https://mpi4py.readthedocs.io/en/stable/", None),
        "matplotlib": ("https://matplotlib.org/stable/", None),
    }
    numpydoc_xref_param_type = True


sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # run every gallery example
    "ignore_pattern": r"(distributed_|new_task|__init__)",  # MPI scripts, shown on the distributed page
    "image_scrapers": ("matplotlib", PNGScraper()),
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("dpsgd",),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "show_memory": False,
    "plot_gallery": "True",
}

html_theme = "furo"
html_title = f"dpsgd {release}"
html_static_path = []
html_show_sourcelink = False


def skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing).

    scikit-learn adds them to every estimator class; their docstrings link into scikit-learn's
    own documentation, and they say nothing about dpsgd.
    """
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_requests)
