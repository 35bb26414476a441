"""Load a repository script (``scripts/``, ``examples/``, ``benchmarks/``, ``docs/``,
``peer_tests/``) as a module in tests.

The scripts are not a package and tests must not edit ``sys.path``; this loads one file by
path under a given module name.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str | Path, name: str, monkeypatch=None, *,
                register: bool = False) -> ModuleType:
    """Execute ``ROOT / relpath`` as a fresh module called ``name`` and return it.

    With ``monkeypatch`` (pytest's fixture) the module is in ``sys.modules`` while the test
    runs (dataclasses and pickling look their module up there) and removed after it; with
    ``register=True`` it stays there (module-level loads shared by a test file).
    """
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    if monkeypatch is not None:
        monkeypatch.setitem(sys.modules, name, module)
    elif register:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
