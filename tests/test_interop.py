"""Tests of ``operators.interop``: deepinv and SciPy adapters."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import deepinv as dinv
import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from deepinv.physics.functional import gaussian_blur

import operators
from operators import Convolution, Decimation, Dense, Diagonal, FourierSampling, Identity
from operators.interop import from_deepinv, to_deepinv, to_scipy
from operators.testing import check_adjoint

SHAPE = (1, 32, 32)


def _gaussian(sigma: float = 2.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """deepinv's Gaussian PSF as ``(1, 1, h, w)`` (odd size, so both centerings agree)."""
    psf = gaussian_blur(sigma=(sigma, sigma)).to(dtype)
    return psf.reshape(1, 1, *psf.shape[-2:])


def _tol(dtype: torch.dtype) -> float:
    return 1e-5 if dtype in (torch.float32, torch.complex64) else 1e-10


# ------------------------------------------------------------------------------------- imports
def test_interop_imports_deepinv_and_scipy_lazily():
    code = ("import sys, operators; before = set(sys.modules); import operators.interop; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in ('deepinv', 'scipy') if m in new or m == 'deepinv' and "
            "m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------ to_deepinv
def test_to_deepinv_is_a_linear_physics_that_passes_deepinv_adjointness_test():
    op = Convolution(_gaussian()[0, 0], SHAPE)
    physics = to_deepinv(op)
    assert isinstance(physics, dinv.physics.LinearPhysics)
    assert physics.op is op and op in list(physics.modules())
    x = torch.rand(2, *SHAPE)
    assert float(physics.adjointness_test(x)) < 1e-6
    assert float(physics.adjointness_test(img_size=SHAPE, num_samples=3)) < 1e-6
    torch.testing.assert_close(physics.A(x), op(x))
    torch.testing.assert_close(physics(x), op(x))  # ZeroNoise
    y = torch.rand(2, *SHAPE)
    torch.testing.assert_close(physics.A_adjoint(y), op.adjoint(y))
    torch.testing.assert_close(physics.A_adjoint_A(x), op.adjoint(op(x)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(physics.A_A_adjoint(y), op(op.adjoint(y)), rtol=1e-5, atol=1e-6)


def test_to_deepinv_class_is_created_once():
    a = to_deepinv(Identity(SHAPE))
    b = to_deepinv(Convolution(torch.ones(3, 3) / 9, SHAPE))
    assert type(a) is type(b)


def test_to_deepinv_copies_and_keeps_its_state_dict():
    from operators.interop import _deepinv

    op = Convolution(torch.rand(5, 5), SHAPE)
    physics = to_deepinv(op)
    assert _deepinv.OperatorPhysics is type(physics)  # importable by its qualified name
    clone = copy.deepcopy(physics)
    assert clone.op is not op
    x = torch.rand(1, *SHAPE)
    torch.testing.assert_close(clone.A(x), physics.A(x))
    assert "op.psf" in physics.state_dict()
    with pytest.raises(AttributeError, match="has no attribute 'Missing'"):
        _deepinv.Missing  # noqa: B018


def test_to_deepinv_matches_blurfft():
    psf = _gaussian()
    ref = dinv.physics.BlurFFT(img_size=SHAPE, filter=psf)
    ours = to_deepinv(Convolution(psf[0, 0], SHAPE))
    x, y = torch.rand(2, *SHAPE), torch.rand(2, *SHAPE)
    torch.testing.assert_close(ours.A(x), ref.A(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.A_adjoint(y), ref.A_adjoint(y), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours.A_adjoint_A(x), ref.A_adjoint_A(x), rtol=1e-5, atol=1e-6)


def test_to_deepinv_moves_with_to_and_refreshes_the_cached_gram():
    physics = to_deepinv(Convolution(_gaussian()[0, 0], SHAPE))
    x = torch.rand(1, *SHAPE)
    assert physics.A_adjoint_A(x).dtype == torch.float32
    physics.to(torch.float64)
    assert physics.op.psf.dtype == torch.float64
    x64 = x.double()
    out = physics.A_adjoint_A(x64)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, physics.op.adjoint(physics.op(x64)), rtol=1e-12, atol=1e-14)


def test_to_deepinv_gram_with_a_learnable_psf_backpropagates_every_call():
    psf = torch.nn.Parameter(torch.rand(5, 5))
    physics = to_deepinv(Convolution(psf, SHAPE))
    x = torch.rand(1, *SHAPE)
    for _ in range(2):  # a cached graph would fail on the second backward
        psf.grad = None
        physics.A_adjoint_A(x).square().sum().backward()
        assert psf.grad is not None and bool(psf.grad.abs().sum() > 0)


@pytest.mark.parametrize("per_sample", ["float", "B", "B111"])
def test_prox_l2_satisfies_its_optimality_condition(dtype, per_sample):
    op = Convolution(_gaussian(dtype=dtype)[0, 0], SHAPE)
    physics = to_deepinv(op)
    y = torch.rand(3, *SHAPE, dtype=dtype)
    z = torch.rand(3, *SHAPE, dtype=dtype)
    gamma = {"float": 0.7,
             "B": torch.tensor([0.1, 1.0, 10.0], dtype=dtype),
             "B111": torch.tensor([0.1, 1.0, 10.0], dtype=dtype).reshape(3, 1, 1, 1)}[per_sample]
    x = physics.prox_l2(z, y, gamma)
    g = gamma if isinstance(gamma, float) else gamma.reshape(3, 1, 1, 1)
    # AᴴA x + (x − z)/γ = Aᴴy, relative to the size of the right-hand side
    rhs = op.adjoint(y) + z / g
    res = op.adjoint(op(x)) + x / g - rhs
    assert float(res.abs().max() / rhs.abs().max()) < _tol(dtype)


def test_prox_l2_equals_blurfft_and_accepts_deepinv_options_without_side_effects(dtype):
    psf = _gaussian(dtype=dtype)
    ref = dinv.physics.BlurFFT(img_size=SHAPE, filter=psf)
    physics = to_deepinv(Convolution(psf[0, 0], SHAPE))
    state = (physics.max_iter, physics.tol, physics.solver)
    y, z = torch.rand(2, *SHAPE, dtype=dtype), torch.rand(2, *SHAPE, dtype=dtype)
    for gamma in (0.1, 1.0, 10.0, torch.tensor([0.5, 2.0], dtype=dtype).reshape(2, 1, 1, 1)):
        ours = physics.prox_l2(z, y, gamma, solver="lsqr", max_iter=3, tol=1.0, verbose=True)
        torch.testing.assert_close(ours, ref.prox_l2(z, y, gamma), rtol=10 * _tol(dtype),
                                   atol=10 * _tol(dtype))
    assert (physics.max_iter, physics.tol, physics.solver) == state
    # z = None or a number means "no z term" (as in deepinv)
    for z0 in (None, 0, 0.0):
        torch.testing.assert_close(physics.prox_l2(z0, y, 1.0), ref.prox_l2(None, y, 1.0),
                                   rtol=10 * _tol(dtype), atol=10 * _tol(dtype))


def test_prox_l2_per_sample_operator():
    psf = torch.rand(3, 1, 5, 5)  # one PSF per sample
    op = Convolution(psf, SHAPE)
    physics = to_deepinv(op)
    y, z = torch.rand(3, *SHAPE), torch.rand(3, *SHAPE)
    gamma = torch.tensor([0.5, 1.0, 2.0])
    x = physics.prox_l2(z, y, gamma)
    for i in range(3):
        single = to_deepinv(Convolution(psf[i, 0], SHAPE))
        torch.testing.assert_close(x[i:i + 1], single.prox_l2(z[i:i + 1], y[i:i + 1],
                                                              float(gamma[i])))


def test_a_dagger_uses_lsqr():
    d = torch.linspace(1.0, 2.0, 16 * 16, dtype=torch.float64).reshape(1, 16, 16)
    physics = to_deepinv(Diagonal(d))
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(physics.A_dagger(physics.A(x)), x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(physics.A_dagger(physics.A(x), max_iter=200, tol=1e-12), x,
                               rtol=1e-10, atol=1e-10)
    y = physics.A(x)
    with pytest.raises(ValueError, match="max_iter must be an int >= 1, got 2.5"):  # truncated
        physics.A_dagger(y, max_iter=2.5)
    with pytest.raises(TypeError, match="atol must be a real number, got str"):  # was parsed
        physics.A_dagger(y, tol="1e-3")
    with pytest.raises(ValueError, match="atol must be finite, got nan"):
        physics.A_dagger(y, tol=math.nan)


@pytest.mark.parametrize("near", [False, True], ids=["exact_fit", "near_fit"])
def test_a_dagger_of_a_mask_has_finite_correct_gradients_at_an_exact_fit(near):
    """Issue 12: ``to_deepinv(Mask).A_dagger`` gave NaN gradients when y = A x exactly (LSQR
    stops after one iteration); deepinv's ``test_least_square_solvers`` checks this."""
    g = torch.Generator().manual_seed(3)
    mask = (torch.rand(1, 6, 5, generator=g) > 0.5).to(torch.float64)
    physics = to_deepinv(operators.Mask(mask, in_shape=(1, 6, 5)))
    x = torch.randn(2, 1, 6, 5, dtype=torch.float64, generator=g)
    y = physics.A(x)
    if near:
        y = y + 1e-7 * torch.randn(y.shape, dtype=y.dtype, generator=g)
    y.requires_grad_(True)
    w = torch.randn(y.shape, dtype=y.dtype, generator=g)
    (grad,) = torch.autograd.grad((physics.A_dagger(y, tol=1e-13) * w).sum(), y)
    torch.testing.assert_close(grad, mask * w, rtol=1e-10, atol=1e-12)  # pinv(Mask) = Mask
    assert torch.autograd.gradcheck(lambda yy: physics.A_dagger(yy, tol=1e-13), (y,), eps=1e-6,
                                    atol=1e-7)


def test_compute_norm_follows_deepinv_050_semantics():
    psf = _gaussian(1.0)
    op = 3.0 * Convolution(psf[0, 0], SHAPE)
    physics = to_deepinv(op)
    x0 = torch.rand(1, *SHAPE)
    norm = float(op.opnorm())
    with pytest.warns(DeprecationWarning, match="compute_sqnorm"):
        squared = physics.compute_norm(x0)  # deepinv 0.5.0: squared by default (deprecated)
    assert float(squared) == pytest.approx(norm ** 2, rel=1e-6)
    assert float(physics.compute_norm(x0, squared=False)) == pytest.approx(norm, rel=1e-6)
    assert float(physics.compute_sqnorm(x0, verbose=False)) == pytest.approx(norm ** 2, rel=1e-6)
    ref = 3.0 * dinv.physics.BlurFFT(img_size=SHAPE, filter=psf).compute_norm(
        x0, squared=False, verbose=False, tol=1e-6, max_iter=500)
    assert float(physics.compute_norm(x0, squared=False)) == pytest.approx(float(ref), rel=1e-3)


def test_compute_sqnorm_warns_like_deepinv_only_when_iterations_stop_early():
    """deepinv warns when its power method stops at max_iter; ours too when the norm needs
    iterations (a zero-padded blur), never for closed forms (no iterations are run)."""
    import warnings

    x0 = torch.rand(1, *SHAPE, dtype=torch.float64)
    iterative = to_deepinv(Convolution(_gaussian(dtype=torch.float64)[0, 0], SHAPE,
                                       padding="zeros"))
    with pytest.warns(UserWarning, match="Power iteration: convergence not reached"):
        iterative.compute_sqnorm(x0, max_iter=1, tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sq = iterative.compute_sqnorm(x0, max_iter=2000, tol=1e-9)
        closed = to_deepinv(Convolution(_gaussian(dtype=torch.float64)[0, 0], SHAPE))
        closed.compute_sqnorm(x0, max_iter=1, tol=1e-9)
    ref = dinv.physics.Blur(filter=_gaussian(dtype=torch.float64), padding="constant")
    ref_sq = ref.compute_sqnorm(x0, max_iter=2000, tol=1e-9, verbose=False)
    assert float(sq) == pytest.approx(float(ref_sq), rel=1e-5)


def test_compute_sqnorm_of_a_per_sample_operator_is_the_largest():
    psf = torch.stack([torch.eye(3), 2.0 * torch.eye(3)]).unsqueeze(1)  # (2, 1, 3, 3)
    physics = to_deepinv(Convolution(psf, SHAPE))
    sq = physics.compute_sqnorm(torch.rand(2, *SHAPE))
    assert sq.ndim == 0 and float(sq) == pytest.approx(36.0, rel=1e-5)


def test_pgd_with_our_convolution_gives_the_same_iterates_as_blurfft():
    """deepinv's own PGD (gradient step on L2, TV prox) with our operator vs BlurFFT."""
    psf = _gaussian(2.0)
    x = torch.rand(1, *SHAPE)
    ref = dinv.physics.BlurFFT(img_size=SHAPE, filter=psf)
    ours = to_deepinv(Convolution(psf[0, 0], SHAPE))
    y = ref(x) + 0.01 * torch.randn_like(x)
    iterates = []
    for physics in (ref, ours):
        model = dinv.optim.PGD(
            data_fidelity=dinv.optim.L2(), prior=dinv.optim.TVPrior(n_it_max=20),
            lambda_reg=0.01, stepsize=1.0, max_iter=10, early_stop=False,
            custom_metrics={"iterate": lambda _hist, _prev, cur: cur.detach().clone()})
        out, metrics = model(y, physics, compute_metrics=True)
        iterates.append((out, metrics["iterate"][0]))
    (out_ref, it_ref), (out_ours, it_ours) = iterates
    assert len(it_ref) == len(it_ours) == 10
    for a, b in zip(it_ref, it_ours, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_ours, out_ref, rtol=1e-5, atol=1e-5)


def test_pgd_prox_first_uses_our_closed_form_prox_l2():
    """PGD with g_first=True applies the data-fidelity prox (physics.prox_l2) every iteration.

    Run in float64: in float32 the TV prox's inner stopping test amplifies 1e-7 differences.
    """
    psf = _gaussian(2.0, torch.float64)
    x = torch.rand(1, *SHAPE, dtype=torch.float64)
    ref = dinv.physics.BlurFFT(img_size=SHAPE, filter=psf)
    ours = to_deepinv(Convolution(psf[0, 0], SHAPE))
    y = ref(x) + 0.01 * torch.randn_like(x)
    outs = [dinv.optim.PGD(data_fidelity=dinv.optim.L2(), prior=dinv.optim.TVPrior(n_it_max=20),
                           lambda_reg=0.01, stepsize=1.0, max_iter=10, early_stop=False,
                           g_first=True)(y, physics) for physics in (ref, ours)]
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------- from_deepinv
def test_from_deepinv_blurfft_passes_check_adjoint_and_matches_convolution():
    psf = _gaussian(1.0)
    physics = dinv.physics.BlurFFT(img_size=(1, 16, 16), filter=psf)
    A = from_deepinv(physics, (1, 16, 16))
    assert isinstance(A, operators.LinearOperator)
    assert (A.in_shape, A.out_shape) == ((1, 16, 16), (1, 16, 16))
    check_adjoint(A, dtype=torch.float32)
    check_adjoint(A, dtype=torch.float32, batch_shape=(2, 3))  # extra batch dims flattened
    check_adjoint(A, dtype=torch.float32, batch_shape=())  # no batch dim
    conv = Convolution(psf[0, 0], (1, 16, 16))
    x = torch.rand(2, 3, 1, 16, 16)
    torch.testing.assert_close(A(x), conv(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(A.gram()(x), conv.gram()(x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(A.H(x), conv.adjoint(x), rtol=1e-5, atol=1e-6)
    assert float(A.opnorm(generator=torch.Generator().manual_seed(0))) == pytest.approx(
        float(conv.opnorm()), rel=1e-3)


def test_round_trip_through_both_wrappers_passes_check_adjoint(dtype):
    op = Convolution(torch.rand(1, 5, 3, dtype=dtype), (1, 12, 10), padding="valid")
    A = from_deepinv(to_deepinv(op), op.in_shape, dtype=dtype)
    assert A.out_shape == op.out_shape
    check_adjoint(A, dtype=dtype)
    x = torch.rand(2, *op.in_shape, dtype=dtype)
    torch.testing.assert_close(A(x), op(x))


def test_from_deepinv_downsampling_solve_normal_matches_closed_form():
    psf = _gaussian(1.0, torch.float64)
    physics = dinv.physics.Downsampling(img_size=(1, 16, 16), filter=psf, factor=2,
                                        padding="circular")
    A = from_deepinv(physics, (1, 16, 16), dtype=torch.float64)
    assert A.out_shape == (1, 8, 8)
    check_adjoint(A, dtype=torch.float64)
    ours = Decimation(2, (1, 16, 16)) @ Convolution(psf[0, 0], (1, 16, 16))
    b = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(A(b), ours(b), rtol=1e-10, atol=1e-12)
    x = A.solve_normal(b, 0.5, rtol=1e-12)  # CG on deepinv's A_adjoint_A
    torch.testing.assert_close(x, ours.solve_normal(b, 0.5), rtol=1e-9, atol=1e-10)


def test_from_deepinv_decomposable_solve_normal_uses_prox_l2():
    psf = _gaussian(1.0, torch.float64)
    A = from_deepinv(dinv.physics.BlurFFT(img_size=(1, 16, 16), filter=psf), (1, 16, 16),
                     dtype=torch.float64)
    conv = Convolution(psf[0, 0], (1, 16, 16))
    b = torch.rand(2, 3, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(A.solve_normal(b, 0.1), conv.solve_normal(b, 0.1),
                               rtol=1e-10, atol=1e-12)
    rho = torch.tensor([[0.1], [1.0]], dtype=torch.float64)  # per sample: CG fallback
    torch.testing.assert_close(A.solve_normal(b, rho, rtol=1e-12), conv.solve_normal(b, rho),
                               rtol=1e-8, atol=1e-10)


# -------------------------------------------------------------------------------------- to_scipy
def _dense_columns(op: operators.LinearOperator, dtype: torch.dtype) -> np.ndarray:
    n = int(np.prod(op.in_shape))
    eye = torch.eye(n, dtype=dtype)
    return np.stack([op(eye[j].reshape(op.in_shape)).reshape(-1).numpy() for j in range(n)],
                    axis=1)


@pytest.mark.parametrize("case", ["valid_conv", "zeros_conv", "fourier_sampling"])
def test_to_scipy_matches_the_dense_matrix(case):
    if case == "fourier_sampling":
        mask = (torch.rand(6, 6) > 0.5).double()
        op, dt = FourierSampling(mask, (6, 6)), torch.complex128
    else:
        padding = "valid" if case == "valid_conv" else "zeros"
        op, dt = Convolution(torch.rand(3, 2, dtype=torch.float64), (7, 6), padding), torch.float64
    dense = _dense_columns(op, dt)
    M = to_scipy(op)
    assert M.shape == dense.shape
    assert M.dtype == (np.complex128 if dt.is_complex else np.float64)
    n = M.shape[1]
    np.testing.assert_allclose(M @ np.eye(n), dense, atol=1e-12)  # matmat
    np.testing.assert_allclose(np.stack([M.matvec(e) for e in np.eye(n)], 1), dense, atol=1e-12)
    np.testing.assert_allclose(M.H @ np.eye(M.shape[0]), dense.conj().T, atol=1e-12)  # rmatmat
    v = np.random.default_rng(0).standard_normal(M.shape[0])
    np.testing.assert_allclose(M.rmatvec(v), dense.conj().T @ v, atol=1e-12)
    if not dt.is_complex:  # a complex vector through a real operator stays complex
        u = np.random.default_rng(1).standard_normal((n, 2)) @ np.array([1.0, 1j])
        np.testing.assert_allclose(M @ u, dense @ u, atol=1e-12)


def test_to_scipy_keeps_a_requested_single_precision():
    op = Convolution(torch.rand(3, 3), (8, 8))
    M = to_scipy(op, dtype=torch.float32)
    assert M.dtype == np.float32
    assert (M @ np.ones(64)).dtype == np.float32


def test_scipy_solvers_agree_with_ours():
    psf = _gaussian(1.0, torch.float64)[0, 0]
    op = Convolution(psf, (16, 16), padding="zeros")
    b = torch.rand(16, 16, dtype=torch.float64)
    rho = 0.0625  # exact in float32: Scaled stores a Python-float scale in the default dtype
    normal = op.gram() + rho * Identity((16, 16))
    ours = operators.cg(normal, b, rtol=1e-12).solution
    theirs, info = spla.cg(to_scipy(normal), b.reshape(-1).numpy(), rtol=1e-12, maxiter=2000)
    assert info == 0
    np.testing.assert_allclose(theirs, ours.reshape(-1).numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(theirs, op.solve_normal(b, rho, rtol=1e-12).reshape(-1).numpy(),
                               rtol=1e-8, atol=1e-10)
    y = op(b)
    damp = 0.1
    ours = operators.lsqr(op, y, damp=damp, atol=1e-12, btol=1e-12, max_iter=2000).solution
    theirs = spla.lsqr(to_scipy(op), y.reshape(-1).numpy(), damp=damp, atol=1e-12, btol=1e-12,
                       iter_lim=2000)[0]
    np.testing.assert_allclose(ours.reshape(-1).numpy(), theirs, rtol=1e-7, atol=1e-9)


# ----------------------------------------------------------------------------------- error paths
def test_to_deepinv_rejects_non_operators():
    with pytest.raises(TypeError, match="to_deepinv expects an operators.LinearOperator"):
        to_deepinv(dinv.physics.BlurFFT(img_size=SHAPE, filter=_gaussian()))


def test_from_deepinv_rejects_non_linear_physics():
    with pytest.raises(TypeError, match="expects a deepinv.physics.LinearPhysics"):
        from_deepinv(dinv.physics.Physics(A=lambda x: x ** 2), SHAPE)
    with pytest.raises(TypeError, match="expects a deepinv.physics.LinearPhysics"):
        from_deepinv(Identity(SHAPE), SHAPE)


def test_from_deepinv_rejects_stacked_physics():
    p = dinv.physics.Inpainting(img_size=SHAPE, mask=0.5)
    with pytest.raises(TypeError, match="stacked physics are not supported"):
        from_deepinv(p.stack(p), SHAPE)


@pytest.mark.parametrize(("gamma", "exc", "match"), [
    (0.0, ValueError, "gamma must be > 0, got 0.0; gamma .* is a positive float or a tensor"),
    (-1.0, ValueError, "gamma must be > 0"),
    (math.nan, ValueError, "gamma must be finite, got nan"),
    (math.inf, ValueError, "gamma must be finite, got inf"),
    (torch.tensor([1.0, -1.0]), ValueError, "gamma must be finite and > 0, got 1 entry"),
    (torch.tensor([1.0, math.nan]), ValueError, "gamma must be finite and > 0, got 1 entry"),
    (torch.tensor([math.inf, 1.0]), ValueError, "gamma must be finite and > 0"),
    ("1", TypeError, "gamma must be a real number, got str .*positive float or a tensor"),
    (True, TypeError, "gamma must be a real number, got bool"),
    (torch.tensor([1.0 + 0j, 1.0]), TypeError, "complex"),
    (torch.ones(2, 2), ValueError, "one value per sample"),
])
def test_prox_l2_rejects_bad_gamma(gamma, exc, match):
    physics = to_deepinv(Convolution(torch.ones(3, 3) / 9, SHAPE))
    y = torch.rand(2, *SHAPE)
    with pytest.raises(exc, match=match):
        physics.prox_l2(y, y, gamma)


def test_compute_norm_rejects_a_non_boolean_squared():
    physics = to_deepinv(Identity(SHAPE))
    with pytest.raises(ValueError, match="squared must be True or False"):
        physics.compute_norm(torch.rand(1, *SHAPE), squared="yes")


def test_to_scipy_rejects_bad_inputs():
    with pytest.raises(TypeError, match="to_scipy expects an operators.LinearOperator"):
        to_scipy(np.eye(3))
    with pytest.raises(ValueError, match="per-sample parameters .* not one matrix"):
        to_scipy(Convolution(torch.rand(2, 1, 3, 3), (1, 8, 8)))
    with pytest.raises(TypeError, match="dtype must be one of"):
        to_scipy(Dense(torch.eye(3)), dtype=torch.int64)
