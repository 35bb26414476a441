"""Import-time checks: heavy optional dependencies are imported lazily, layers stay separate."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("deepinv", "matplotlib", "dask", "rasterio", "rioxarray", "netCDF4", "tifffile")


def _modules_after_import(package: str) -> set[str]:
    code = f"import sys, {package}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return {name.split(".")[0] for name in result.stdout.split()}


@pytest.mark.parametrize("package", ["sciml_inverse", "operators", "inverse", "sciml"])
def test_import_does_not_load_heavy_optional_dependencies(package):
    loaded = _modules_after_import(package)
    assert not loaded & set(HEAVY), f"`import {package}` loads {sorted(loaded & set(HEAVY))}"


# The layers (docs: ARCHITECTURE): sciml_inverse <- operators <- inverse, sciml.
_IMPORT_ALL = """
import importlib, pkgutil, sys
pkg = importlib.import_module({package!r})
for info in pkgutil.walk_packages(pkg.__path__, {package!r} + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("sciml_inverse", {"operators", "inverse", "sciml"}),
        ("operators", {"inverse", "sciml"}),
        ("inverse", {"sciml"}),
        ("sciml", {"inverse"}),
    ],
)
def test_layers_do_not_import_each_other(package, forbidden):
    """Every module of ``package`` (private ones too), imported in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL.format(package=package)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert package in loaded
    assert not loaded & forbidden, f"importing {package} loads {sorted(loaded & forbidden)}"


def test_layer_check_detects_a_violation(tmp_path):
    """The check above can fail: a package that imports a forbidden one is caught."""
    pkg = tmp_path / "fake_layer_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_private.py").write_text("import operators\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL.format(package="fake_layer_pkg")],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "operators" in {name.split(".")[0] for name in result.stdout.split()}
