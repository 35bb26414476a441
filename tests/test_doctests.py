"""The ``Examples`` sections of the public API's docstrings run as doctests.

Every public name (``__all__``) of the documented modules is searched for docstring examples
(class docstrings and their methods included); each object with examples is one test, run in
the namespace of the public module that exports it (private modules are never imported here). The
documentation shows these examples, so an example that no longer runs fails here.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest
import torch

PUBLIC_MODULES = (
    "operators", "operators.testing", "operators.interop",
    "inverse", "inverse.lpn", "inverse.vble", "inverse.satellite", "inverse.metrics",
    "sciml.pde", "sciml.neural_operators", "sciml.nde", "sciml_inverse",
)
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    seen: dict[str, doctest.DocTest] = {}
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        objects = [(modname, module)] + [
            (f"{modname}.{name}", getattr(module, name)) for name in getattr(module, "__all__", ())
        ]
        for qualname, obj in objects:
            if not (callable(obj) or obj is module):
                continue
            if inspect.isfunction(obj):  # decorated (e.g. renamed keywords): the source function
                obj = inspect.unwrap(obj)
            try:
                # run with the public module's namespace, as ``pytest --doctest-modules`` on it
                # would: an example may use the names its module exports without importing them
                found = finder.find(obj, qualname, module=False, globs=dict(vars(module)))
            except ValueError:  # objects doctest cannot inspect (e.g. some C types)
                continue
            for test in found:
                # the same object can be re-exported by several modules: run it once
                key = f"{test.filename}:{test.lineno}"
                if test.examples and key not in seen:
                    seen[key] = test
    return sorted(seen.values(), key=lambda t: t.name)


DOCTESTS = _doctests()


def test_public_docstrings_have_examples():
    # guards the collection itself: a refactor that hid every example would pass silently
    assert len(DOCTESTS) >= 20, [t.name for t in DOCTESTS]


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test: doctest.DocTest):
    torch.manual_seed(0)
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    out: list[str] = []
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
