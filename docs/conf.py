"""Sphinx configuration. Build with ``make docs`` from the repository root."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"

project = "sciml-inverse"
author = "sciml-inverse developers"
copyright = "sciml-inverse developers"
try:
    release = importlib.metadata.version("sciml-inverse")
except importlib.metadata.PackageNotFoundError:  # building from a tree that is not installed
    release = "unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # Ships MathJax 3 and points mathjax_path at the copy in _static/mathjax: formulas render
    # without network access (docs/check_offline.py fails the build on any remote script/style).
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
]
# No intersphinx: documentation builds run without network access.

# Only scripts named examples/plot_*.py form the gallery, and all of them are executed. Other
# scripts in examples/ (command-line demos such as demo_deblur.py) are not rendered.
if EXAMPLES.is_dir():
    extensions.append("sphinx_gallery.gen_gallery")
    sphinx_gallery_conf = {
        "examples_dirs": "../examples",
        "gallery_dirs": "auto_examples",
        "filename_pattern": r"/plot_",
        # Matched against the file name (or path): skips every file not named plot_*.
        "ignore_pattern": r"(^|[/\\])(?!plot_)[^/\\]+$",
        "download_all_examples": False,
        "within_subsection_order": "FileNameSortKey",
        "remove_config_comments": True,
        "plot_gallery": "True",
        # The global execution-times page loads DataTables and Bootstrap from CDNs; each
        # example's page still states its own running time.
        "write_computation_times": False,
    }

templates_path: list[str] = []
# sg_execution_times.rst: a stale copy written by a build with write_computation_times on would
# bring back its CDN scripts (DataTables, Bootstrap).
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints",
                    "sg_execution_times.rst", "auto_examples/sg_execution_times.rst"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

# autodoc / autosummary / numpydoc
autosummary_generate = True
# numpydoc's Parameters/Returns sections give each type once; "description" would list the
# parameters a second time from the annotations.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# HTML
html_theme = "furo"
html_title = f"sciml-inverse {release}"
html_static_path: list[str] = []

# `make docs` passes -W --keep-going: every warning fails the build (after reporting them all).
nitpicky = False
suppress_warnings = ["config.cache"]

