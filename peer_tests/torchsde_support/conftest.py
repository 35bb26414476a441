"""Harness plugin for torchsde's test files (installed into the cached tests directory).

``PEER_TESTS_MODE=ours`` routes ``torchsde.sdeint`` / ``torchsde.sdeint_adjoint`` to
``sciml.nde.sdeint`` / ``sciml.nde.sdeint_adjoint`` (which hand the methods they do not implement
back to torchsde's own functions); ``original`` leaves torchsde alone. ``PEER_TESTS_METHODS``
(comma-separated) keeps only the parametrized tests whose ``method`` is listed.
"""

import os

import torchsde

MODE = os.environ.get("PEER_TESTS_MODE", "ours")
METHODS = set(filter(None, os.environ.get("PEER_TESTS_METHODS", "").split(",")))
EXCLUDE = set(filter(None, os.environ.get("PEER_TESTS_EXCLUDE", "").split(",")))

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
        if name in EXCLUDE or (METHODS and method is not None and method not in METHODS):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
