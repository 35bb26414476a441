"""DCT-II/III by FFT and the closed forms of Neumann finite-difference Grams (issue 12).

The DCT is checked against scipy (CPU oracle); the Neumann Laplacian's DCT symbol against the
eigen-decomposition of the dense matrix; ``solve_normal`` against the dense solve and CG, with CG
patched to raise so that a lost structure rule fails; gradients with float64 ``gradcheck``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch
from problems import dense_matrix, randn

import operators.solvers._power as power_module
from operators import FiniteDifference, Identity, Stack, cg
from operators._dct import dct, dct_apply, idct

F64 = torch.float64

FD_CASES = {
    "2d": lambda: FiniteDifference((6, 7)),
    "1d_subset": lambda: FiniteDifference((3, 8), dims=(-1,)),
    "3d_dims_subset": lambda: FiniteDifference((3, 4, 5), dims=(0, -1), spacing=0.25),
    "anisotropic_spacing": lambda: FiniteDifference((5, 6), spacing=(0.5, 2.0)),
    "single_pixel_axis": lambda: FiniteDifference((1, 6)),
}


@pytest.fixture
def forbid_power(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("opnorm ran the power method where a closed form was expected")

    monkeypatch.setattr(power_module, "power_method", fail)


def _rel(x, ref):
    return float((x - ref).abs().max() / ref.abs().max())


# ---------------------------------------------------------------------------------------------
# the transforms
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 5, 8, 9])
def test_dct_matches_scipy_orthonormal_dct_ii_and_inverts(n):
    x = randn(3, n, 4)
    ours = dct(x, (-2,))
    ref = scipy.fft.dct(x.numpy(), type=2, axis=-2, norm="ortho")
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(idct(ours, (-2,)).numpy(), x.numpy(), rtol=0, atol=1e-13)
    ref3 = scipy.fft.dct(x.numpy(), type=3, axis=-2, norm="ortho")  # DCT-III = inverse
    np.testing.assert_allclose(idct(x, (-2,)).numpy(), ref3, rtol=0, atol=1e-13)


def test_dct_several_axes_complex_and_float32():
    x = torch.complex(randn(2, 5, 6), randn(2, 5, 6))
    ref = scipy.fft.dctn(x.numpy(), type=2, axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(dct(x, (-2, -1)).numpy(), ref, rtol=0, atol=1e-13)
    torch.testing.assert_close(idct(dct(x, (-2, -1)), (-2, -1)), x, rtol=0, atol=1e-13)
    x32 = randn(4, 7).float()
    y32 = dct(x32, (-1,))
    assert y32.dtype == torch.float32
    np.testing.assert_allclose(y32.numpy(), scipy.fft.dct(x32.numpy(), axis=-1, norm="ortho"),
                               rtol=0, atol=1e-5)


def test_dct_is_orthogonal_and_differentiable():
    x = randn(6).requires_grad_(True)
    c = torch.stack([dct(e, (-1,)) for e in torch.eye(6, dtype=F64)])  # rows: C e_i
    torch.testing.assert_close(c @ c.T, torch.eye(6, dtype=F64), rtol=0, atol=1e-14)
    assert torch.autograd.gradcheck(lambda t: dct(t, (-1,)), (x,))
    assert torch.autograd.gradcheck(lambda t: idct(t, (-1,)), (x,))


# ---------------------------------------------------------------------------------------------
# the Neumann Laplacian's symbol
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FD_CASES))
def test_neumann_gram_symbol_is_its_spectrum(name):
    """The DCT symbol equals the eigenvalues of the dense DᵀD and diagonalizes it."""
    D = FD_CASES[name]()
    M = dense_matrix(D)
    G = M.T @ M
    sym, dims = D.gram()._dct_symbol(torch.zeros((), dtype=F64))
    assert dims == D.dims
    full = sym.expand(D.in_shape).reshape(-1)
    eig = torch.linalg.eigvalsh(G)
    assert float((eig - full.sort().values).abs().max() / eig.abs().max()) < 1e-12
    # C G Cᵀ = diag(symbol), C the separable DCT-II over dims
    n = full.numel()
    C = torch.stack([dct(e.reshape(D.in_shape), dims).reshape(-1)
                     for e in torch.eye(n, dtype=F64)], dim=1)
    torch.testing.assert_close(C @ G @ C.T, torch.diag(full), rtol=0, atol=1e-12)


def test_neumann_symbol_closed_form_values():
    D = FiniteDifference((4, 6), spacing=(0.5, 2.0))
    sym, _ = D.gram()._dct_symbol(torch.zeros((), dtype=F64))
    k = torch.arange(6, dtype=F64)
    torch.testing.assert_close(sym[0], (2 * torch.sin(math.pi * k / 12) / 2.0) ** 2)
    assert float(sym[0, 0]) == 0.0  # constants are in the kernel (Neumann)


def test_neumann_opnorm_is_closed_form(forbid_power):
    D = FiniteDifference((6, 8), spacing=(0.5, 2.0))
    ref = math.sqrt((2 * math.sin(math.pi * 5 / 12) / 0.5) ** 2
                    + (2 * math.sin(math.pi * 7 / 16) / 2.0) ** 2)
    torch.testing.assert_close(D.opnorm().to(F64), torch.tensor(ref, dtype=F64))
    dense = torch.linalg.matrix_norm(dense_matrix(D), ord=2)
    assert abs(float(D.opnorm()) - float(dense)) / float(dense) < 1e-6  # float32 symbol


# ---------------------------------------------------------------------------------------------
# closed-form solves
# ---------------------------------------------------------------------------------------------
def _dense_normal_solve(M, b, rho):
    n = M.shape[-1]
    rho = torch.as_tensor(rho, dtype=F64)
    A = M.mT @ M + rho.reshape(*rho.shape, 1, 1) * torch.eye(n, dtype=F64)
    return torch.linalg.solve(A, b.reshape(*b.shape[:1], n, 1)).reshape(b.shape)


@pytest.mark.parametrize("name", list(FD_CASES))
def test_neumann_solve_normal_is_closed_form_and_exact(name, forbid_cg):
    D = FD_CASES[name]()
    b = randn(2, *D.in_shape)
    rho = torch.tensor([1e-3, 2.0], dtype=F64)
    x = D.solve_normal(b, rho)
    assert _rel(x, _dense_normal_solve(dense_matrix(D), b, rho)) < 1e-12


def test_tikhonov_stack_and_gram_plus_rho_are_closed_form(forbid_cg):
    """[I; √λ D] (Tikhonov-gradient denoising) and D.gram() + ρI keep the DCT structure."""
    D = FiniteDifference((7, 6))
    lam = 0.3
    A = Stack([Identity((7, 6)), math.sqrt(lam) * D])
    b = randn(2, 7, 6)
    x = A.solve_normal(b, 0.05)
    assert _rel(x, _dense_normal_solve(dense_matrix(A), b, 0.05)) < 1e-12
    # (I + λ DᵀD + 0.05 I)⁻¹ b directly from the Gram's symbol
    rho = torch.tensor(0.5, dtype=F64)
    M = D.gram() + rho * Identity((7, 6))
    sym, dims = M._dct_symbol(b)
    G = dense_matrix(D).T @ dense_matrix(D) + 0.5 * torch.eye(42, dtype=F64)
    y = dct_apply(b, 1.0 / sym, dims)
    ref = torch.linalg.solve(G, b.reshape(2, 42, 1)).reshape(b.shape)
    assert _rel(y, ref) < 1e-12
    # M is itself an operator: its normal equations (M² + r I) are DCT-diagonal too
    z = M.solve_normal(b, 0.1)
    assert _rel(z, torch.linalg.solve(G @ G + 0.1 * torch.eye(42, dtype=F64),
                                      b.reshape(2, 42, 1)).reshape(b.shape)) < 1e-12


def test_closed_form_matches_tight_cg():
    D = FiniteDifference((3, 9, 8), dims=(-2, -1))
    b = randn(2, 3, 9, 8)
    x = D.solve_normal(b, 0.2)
    res = cg(D.gram() + torch.tensor(0.2, dtype=F64) * Identity(D.in_shape), b, rtol=1e-13)
    assert bool(res.converged.all())
    assert _rel(x, res.solution) < 1e-11


def test_closed_form_gradients_gradcheck():
    A_fd = FiniteDifference((4, 5))
    b = randn(2, 4, 5).requires_grad_(True)
    rho = torch.tensor([0.3, 1.5], dtype=F64, requires_grad=True)
    c = torch.tensor(0.8, dtype=F64, requires_grad=True)

    def solve(bb, rr, cc):
        return Stack([Identity((4, 5)), cc * A_fd]).solve_normal(bb, rr)

    assert torch.autograd.gradcheck(solve, (b, rho, c))
    # and the backward is plain autograd through the transforms, not CG
    assert "ImplicitCG" not in type(solve(b, rho, c).grad_fn).__name__
