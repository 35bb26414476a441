"""Harness plugin for torchsde's test files (installed into the cached tests directory).

``PEER_TESTS_MODE=ours`` routes ``torchsde.sdeint`` / ``torchsde.sdeint_adjoint`` to
``sciml.nde.sdeint`` / ``sciml.nde.sdeint_adjoint`` (which hand the methods they do not implement
back to torchsde's own functions); ``original`` leaves torchsde alone. ``PEER_TESTS_METHODS``
(comma-separated) keeps only the parametrized tests whose ``method`` is listed;
``PEER_TESTS_EXCLUDE`` drops test functions by name; ``PEER_TESTS_QUICK=1`` drops most adaptive
cases (see ``_quick_keep``). Every deselected test is reported as such by pytest.
"""

import os

import torchsde

MODE = os.environ.get("PEER_TESTS_MODE", "ours")
METHODS = set(filter(None, os.environ.get("PEER_TESTS_METHODS", "").split(",")))
EXCLUDE = set(filter(None, os.environ.get("PEER_TESTS_EXCLUDE", "").split(",")))
# Quick selection (for runs of the original, whose adaptive solves at torchsde's default
# tolerances, rtol 1e-5, atol 1e-4, dt_min 1e-5, are slow; ours runs them all in CI): keep one
# adaptive case per (problem, SDE type, method) of test_sdeint_run_shape_method (no bm given, no
# logqp).
QUICK = os.environ.get("PEER_TESTS_QUICK", "0") == "1"


def _quick_keep(name, params):
    if not params.get("adaptive", False):
        return True
    return (name == "test_sdeint_run_shape_method" and not params.get("use_bm", True)
            and not params.get("logqp", True))


if MODE == "ours":
    import sciml.nde as _nde

    torchsde.sdeint = _nde.sdeint
    torchsde.sdeint_adjoint = _nde.sdeint_adjoint


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        name = item.originalname if hasattr(item, "originalname") else item.name
        params = getattr(getattr(item, "callspec", None), "params", {})
        method = params.get("method")
        if name in EXCLUDE or (METHODS and method is not None and method not in METHODS) or (
                QUICK and not _quick_keep(name, params)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
