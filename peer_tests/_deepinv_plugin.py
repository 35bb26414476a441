"""pytest plugin that runs deepinv's own physics/optim tests on ``operators.interop.to_deepinv``.

Loaded by ``peer_tests/deepinv_suite.py`` (``-p _deepinv_plugin``) in a pytest run over a cached
copy of the test files shipped in the installed deepinv wheel. Environment:

``DEEPINV_PEER_MODE``
    ``original`` runs the selected tests unchanged; ``ours`` routes every physics the tests build
    through ``find_operator`` (deepinv's test helper) to ``to_deepinv(<our operator>)``.

Selection: the tests that exercise ``LinearPhysics`` behaviour (adjointness, norms, ``A_dagger``,
``prox_l2``, least-squares solvers and their gradients) for the operators that ``operators``
implements (see :data:`ROUTES`). Both modes run the same selection, so the pass counts compare.

Routing is honest by construction: each of our operators is built from the deepinv physics the
test asked for (same mask, filter, factor, noise model) and its forward map is checked against
deepinv's on random inputs before the test sees it (:func:`_check_same_forward`); a mismatch makes
the test error instead of silently testing another operator.
"""

from __future__ import annotations

import os

import pytest
import torch

MODE = os.environ.get("DEEPINV_PEER_MODE", "original")

# deepinv operator name (test_physics.find_operator) -> how to build our operator from it
ROUTES = {
    "inpainting": "Mask",
    "inpainting_clone": "Mask",
    "demosaicing": "Mask",  # deepinv's Demosaicing is an Inpainting with a Bayer mask
    "denoising": "Identity",
    "fftdeblur": "Convolution(circular)",  # BlurFFT
    "deblur_circular": "Convolution(circular)",  # Blur(padding="circular")
    "deblur_valid": "Convolution(valid)",
    "deblur_constant": "Convolution(zeros)",
    "super_resolution_circular": "Decimation @ Convolution(circular)",  # Downsampling
    "aliased_super_resolution": "Decimation",  # Downsampling(filter=None)
    "composition": "Decimation @ Convolution(circular)",  # Downsampling * BlurFFT
    "composition2": "Convolution(circular) @ Decimation",  # BlurFFT * Downsampling
    "down_resolution_circular": "(Decimation @ Convolution(circular)).H",  # Upsampling
}

# test file -> test function -> name of the parameter holding the operator name (None: the test
# builds a fixed physics through find_operator)
SELECTED = {
    "test_physics.py": {
        "test_operators_adjointness": "name",
        "test_adjointness_test": "name",
        "test_operators_norm": "name",
        "test_pseudo_inverse": "name",
        "test_concatenation": "name",
        "test_adjoint_autograd": "name",
        "test_operator_cropper": "name",
        "test_operator_multiscale_wrapper": "name",
        "test_squared_or_non_squared_norms": None,
    },
    "test_optim.py": {
        "test_least_square_solvers": "physics_name",
        "test_least_squares_implicit_backward": "physics_name",
    },
}


def _selected(item) -> bool:
    tests = SELECTED.get(item.path.name)
    if not tests:
        return False
    fn = item.originalname if hasattr(item, "originalname") else item.name
    if fn not in tests:
        return False
    param = tests[fn]
    if param is None:
        return True
    spec = getattr(item, "callspec", None)
    return spec is not None and spec.params.get(param) in ROUTES


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        (keep if _selected(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    if MODE == "ours":
        for module in {item.module for item in keep}:
            if hasattr(module, "find_operator"):
                module.find_operator = _routed(module.find_operator)


def pytest_report_header(config):
    return f"deepinv peer suite: mode={MODE}, {len(ROUTES)} routed operators"


# ------------------------------------------------------------------------------- our operators
def _conv(physics, img_size, padding):
    from operators import Convolution

    filt = physics.filter
    psf = filt[0] if filt.shape[0] == 1 else filt  # (1, C|1, h, w) -> (C|1, h, w)
    return Convolution(psf.detach().clone(), img_size, padding=padding)


def _build(name: str, physics, img_size):
    from operators import Decimation, Identity, Mask

    img_size = tuple(img_size)
    if ROUTES[name] == "Mask":
        m = physics.mask.detach().clone()
        return Mask(m[0] if m.ndim == len(img_size) + 1 and m.shape[0] == 1 else m, img_size)
    if name == "denoising":
        return Identity(img_size)
    if name in ("fftdeblur", "deblur_circular"):
        return _conv(physics, img_size, "circular")
    if name == "deblur_valid":
        return _conv(physics, img_size, "valid")
    if name == "deblur_constant":
        return _conv(physics, img_size, "zeros")
    if name == "super_resolution_circular":
        return Decimation(physics.factor, img_size) @ _conv(physics, img_size, "circular")
    if name == "aliased_super_resolution":
        return Decimation(physics.factor, img_size)
    if name == "composition":  # Downsampling(filter=None) * BlurFFT
        down, blur = physics.physics_list[1], physics.physics_list[0]
        return Decimation(down.factor, img_size) @ _conv(blur, img_size, "circular")
    if name == "composition2":  # BlurFFT on the small image * Downsampling(filter=None)
        blur, down = physics.physics_list[1], physics.physics_list[0]
        small = (img_size[0], img_size[1] // down.factor, img_size[2] // down.factor)
        return _conv(blur, small, "circular") @ Decimation(down.factor, img_size)
    if name == "down_resolution_circular":  # the adjoint of Downsampling on the big image
        big = (img_size[0], img_size[1] * physics.factor, img_size[2] * physics.factor)
        return (Decimation(physics.factor, big) @ _conv(physics, big, "circular")).H
    raise KeyError(name)


def _check_same_forward(name, ours, theirs, img_size, dtype, device) -> None:
    g = torch.Generator(device="cpu").manual_seed(1234)
    x = torch.randn((2, *img_size), generator=g).to(device=device, dtype=dtype)
    with torch.no_grad():
        a, b = ours.A(x), theirs.A(x)
    err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))
    if a.shape != b.shape or not err < 1e-5:
        raise AssertionError(f"peer harness: our operator for {name!r} does not reproduce "
                             f"deepinv's forward map (shapes {tuple(a.shape)} vs "
                             f"{tuple(b.shape)}, max rel. error {err:.2e})")


def _routed(original):
    from operators.interop import to_deepinv

    def find_operator(name, device, imsize=None, get_physics_param=False):
        out = original(name, device, imsize=imsize, get_physics_param=True)
        physics, img_size, norm, dtype, params = out
        if name not in ROUTES:
            return out if get_physics_param else out[:4]
        op = _build(name, physics, img_size).to(device)
        ours = to_deepinv(op, noise_model=physics.noise_model)
        _check_same_forward(name, ours, physics, img_size, dtype, device)
        res = (ours, img_size, norm, dtype)
        return (*res, params) if get_physics_param else res

    find_operator.__wrapped__ = original
    return find_operator


@pytest.fixture(autouse=True)
def _peer_mode(request):
    request.node.user_properties.append(("peer_mode", MODE))
    yield
