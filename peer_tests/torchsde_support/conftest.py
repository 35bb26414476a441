"""Harness plugin for torchsde's test files (installed into the cached tests directory).

``PEER_TESTS_MODE=ours`` routes ``torchsde.sdeint`` / ``torchsde.sdeint_adjoint`` to
``sciml.nde.sdeint`` / ``sciml.nde.sdeint_adjoint`` (which hand the methods they do not implement
back to torchsde's own functions); ``original`` leaves torchsde alone. ``PEER_TESTS_METHODS``
(comma-separated) keeps only the parametrized tests whose ``method`` is listed;
``PEER_TESTS_QUICK=1`` drops most adaptive cases (see ``_quick_keep``); ``PEER_TESTS_CI=1``
(the CI selection, implies quick) also drops the two slowest groups (see ``_ci_keep``).
"""

import os

import torchsde

MODE = os.environ.get("PEER_TESTS_MODE", "ours")
METHODS = set(filter(None, os.environ.get("PEER_TESTS_METHODS", "").split(",")))
EXCLUDE = set(filter(None, os.environ.get("PEER_TESTS_EXCLUDE", "").split(",")))
# Quick selection: adaptive solves run at torchsde's default tolerances (rtol 1e-5, atol 1e-4,
# dt_min 1e-5), i.e. up to tens of thousands of steps each; keep one adaptive case per
# (problem, SDE type, method) of test_sdeint_run_shape_method (no bm given, no logqp).
QUICK = os.environ.get("PEER_TESTS_QUICK", "0") == "1"
# CI selection (``run.py --ci``): the quick selection without the gradient check on the general-
# noise neural SDE (a quarter of the quick selection's time) and the 9-output-time variant of
# test_against_sdeint (its 2-output-time twin stays): every method, noise type and test function
# is still covered.
CI = os.environ.get("PEER_TESTS_CI", "0") == "1"


def _quick_keep(name, params):
    if not params.get("adaptive", False):
        return True
    return (name == "test_sdeint_run_shape_method" and not params.get("use_bm", True)
            and not params.get("logqp", True))


def _ci_keep(name, params):
    cls = getattr(params.get("sde_cls"), "__name__", "")
    if name == "test_against_numerical" and cls == "NeuralGeneral":
        return False
    return not (name == "test_against_sdeint" and params.get("len_ts") == 9)


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
                (QUICK or CI) and not _quick_keep(name, params)) or (
                CI and not _ci_keep(name, params)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
