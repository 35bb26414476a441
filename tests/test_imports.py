"""Import-time checks: heavy optional dependencies are imported lazily, layers stay separate."""

from __future__ import annotations

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


@pytest.mark.parametrize("package", ["operators", "inverse", "sciml"])
def test_import_does_not_load_heavy_optional_dependencies(package):
    loaded = _modules_after_import(package)
    assert not loaded & set(HEAVY), f"`import {package}` loads {sorted(loaded & set(HEAVY))}"


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("operators", {"inverse", "sciml"}), ("inverse", {"sciml"}), ("sciml", {"inverse"})],
)
def test_layers_do_not_import_each_other(package, forbidden):
    loaded = _modules_after_import(package)
    assert not loaded & forbidden, f"`import {package}` loads {sorted(loaded & forbidden)}"
