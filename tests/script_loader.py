"""Load a repository script (``scripts/``, ``examples/``, ``benchmarks/``) as a module in tests.

The scripts are not a package and tests must not edit ``sys.path``; this loads one file by
path under a given module name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str) -> ModuleType:
    """Execute ``ROOT / relpath`` as a fresh module called ``name`` and return it."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
