"""Operator-specific exact answers: point sampling, finite differences, convolutions, Fourier
sampling, Jacobians and decimation, against closed forms, scipy and torch.func."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as sig
import torch
from problems import bilinear_field, dense_matrix, points, psf, randn

from operators import (
    Convolution,
    Decimation,
    FiniteDifference,
    FourierMultiplier,
    FourierSampling,
    Jacobian,
    PointSampling,
    Stack,
)

F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# PointSampling
# ---------------------------------------------------------------------------------------------
def test_point_sampling_is_exact_on_bilinear_fields():
    h, w = 6, 9
    field, f = bilinear_field(h, w)
    p = points(n=40, h=h, w=w)
    # nodes, the last row/column (the clamped stencil) and the corners
    extra = torch.tensor([[0.0, 0.0], [h - 1, w - 1], [h - 1, 2.5], [1.5, w - 1], [3.0, 4.0]],
                         dtype=F64)
    p = torch.cat([p, extra])
    y = PointSampling(p, (h, w))(field)
    torch.testing.assert_close(y, f(p[:, 0], p[:, 1]), rtol=1e-13, atol=1e-13)


def test_point_sampling_extent_maps_physical_coordinates():
    """Node (i, j) sits at (r0 + i (r1 - r0) / (H - 1), c0 + j (c1 - c0) / (W - 1))."""
    h, w = 5, 9
    (r0, r1), (c0, c1) = (0.0, 2.0), (-1.0, 3.0)
    ys = torch.linspace(r0, r1, h, dtype=F64)
    xs = torch.linspace(c0, c1, w, dtype=F64)

    def g(y, x):  # bilinear in physical coordinates, hence in index coordinates
        return 1.0 - 0.5 * y + 2.0 * x + 0.75 * x * y

    field = torch.stack([g(ys[:, None], xs[None, :]), -g(ys[:, None], xs[None, :])])  # 2 channels
    phys = torch.stack([torch.rand(12, dtype=F64) * (r1 - r0) + r0,
                        torch.rand(12, dtype=F64) * (c1 - c0) + c0], dim=-1)
    A = PointSampling(phys, (2, h, w), extent=((r0, r1), (c0, c1)))
    y = A(field)
    expected = g(phys[:, 0], phys[:, 1])
    torch.testing.assert_close(y, torch.stack([expected, -expected]), rtol=1e-12, atol=1e-12)
    # the stored points are in index units
    torch.testing.assert_close(A.points[:, 0], (phys[:, 0] - r0) * (h - 1) / (r1 - r0))


def test_point_sampling_per_sample_points():
    field = randn(2, 5, 6)
    p = points(2, n=4, h=5, w=6)
    y = PointSampling(p, (5, 6))(field)
    for i in range(2):
        torch.testing.assert_close(y[i], PointSampling(p[i], (5, 6))(field[i]))


def test_point_sampling_gradient_wrt_points():
    h, w = 5, 7
    field, _ = bilinear_field(h, w, coeffs=(0.3, -1.2, 0.7, 0.25))
    p = points(n=6, h=h, w=w).requires_grad_()
    torch.autograd.gradcheck(lambda p: PointSampling(p, (h, w))(field), (p,))
    # exact: d/dr f = b + d c, d/dc f = c + d r
    PointSampling(p, (h, w))(field).sum().backward()
    expected = torch.stack([-1.2 + 0.25 * p[:, 1], 0.7 + 0.25 * p[:, 0]], dim=-1).detach()
    torch.testing.assert_close(p.grad, expected, rtol=1e-12, atol=1e-12)


def test_point_sampling_gradient_wrt_physical_points_and_field():
    field = randn(4, 5).requires_grad_()
    phys = (torch.rand(3, 2, dtype=F64) * 0.8 + 0.1).requires_grad_()
    torch.autograd.gradcheck(
        lambda p, x: PointSampling(p, (4, 5), extent=((0.0, 1.0), (0.0, 1.0)))(x), (phys, field))


# ---------------------------------------------------------------------------------------------
# FiniteDifference
# ---------------------------------------------------------------------------------------------
def _divergence(p: np.ndarray, boundary: str, spacing) -> np.ndarray:
    """Backward-difference divergence of p (2, H, W), written with explicit loops."""
    _, hh, ww = p.shape
    out = np.zeros((hh, ww))
    for k, (n, h) in enumerate(zip((hh, ww), spacing, strict=True)):
        g = np.moveaxis(p[k], k, 0)
        d = np.zeros_like(g)
        for i in range(n):
            if boundary == "circular":
                d[i] = g[i] - g[i - 1]
            else:  # Neumann: the difference across the last face is zero
                d[i] = (g[i] if i < n - 1 else 0.0) - (g[i - 1] if i > 0 else 0.0)
        out += np.moveaxis(d, 0, k) / h
    return out


@pytest.mark.parametrize("boundary", ["neumann", "circular"])
def test_finite_difference_adjoint_is_minus_divergence(boundary):
    spacing = (0.5, 2.0)
    D = FiniteDifference((5, 7), spacing=spacing, boundary=boundary)
    p = randn(2, 5, 7)
    np.testing.assert_allclose(D.adjoint(p).numpy(), -_divergence(p.numpy(), boundary, spacing),
                               rtol=1e-13, atol=1e-13)


def test_finite_difference_forward_values():
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 7.0]], dtype=F64)
    g = FiniteDifference((2, 3), spacing=(1.0, 0.5))(x)
    torch.testing.assert_close(g[0], torch.tensor([[2.0, 1.0, 4.0], [0.0, 0.0, 0.0]], dtype=F64))
    torch.testing.assert_close(g[1], torch.tensor([[2.0, 4.0, 0.0], [0.0, 10.0, 0.0]], dtype=F64))
    gc = FiniteDifference((2, 3), boundary="circular")(x)
    torch.testing.assert_close(gc[1], torch.tensor([[1.0, 2.0, -3.0], [0.0, 5.0, -5.0]],
                                                   dtype=F64))


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 2.0)])
def test_finite_difference_gram_is_five_point_laplacian_on_interior(spacing):
    D = FiniteDifference((6, 7), spacing=spacing)
    x = randn(6, 7)
    h1, h2 = spacing
    lap = ((2 * x[1:-1, 1:-1] - x[2:, 1:-1] - x[:-2, 1:-1]) / h1 ** 2
           + (2 * x[1:-1, 1:-1] - x[1:-1, 2:] - x[1:-1, :-2]) / h2 ** 2)
    torch.testing.assert_close(D.gram()(x)[1:-1, 1:-1], lap, rtol=1e-12, atol=1e-12)
    # a constant has zero gradient, so its (Neumann) Laplacian vanishes everywhere
    torch.testing.assert_close(D.gram()(torch.ones(6, 7, dtype=F64)),
                               torch.zeros(6, 7, dtype=F64))


def test_finite_difference_circular_gram_symbol():
    D = FiniteDifference((6, 8), spacing=(0.5, 1.0), boundary="circular")
    sym, real = D.gram()._fourier_symbol(torch.zeros((), dtype=F64))
    assert real
    # FFT of the periodic 5-point stencil
    stencil = torch.zeros(6, 8, dtype=F64)
    stencil[0, 0] = 2 / 0.25 + 2
    stencil[1, 0] = stencil[-1, 0] = -1 / 0.25
    stencil[0, 1] = stencil[0, -1] = -1
    torch.testing.assert_close(sym, torch.fft.fft2(stencil).real, rtol=1e-12, atol=1e-12)
    # and the dense Gram's eigenvalues are the symbol's values
    G = dense_matrix(D.gram(), F64)
    torch.testing.assert_close(torch.linalg.eigvalsh(G), sym.flatten().sort().values,
                               rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (4, 4), (2, 5)], ids=str)
@pytest.mark.parametrize(("padding", "mode"), [("circular", "wrap"), ("zeros", "constant")])
def test_convolution_matches_scipy_ndimage(kshape, padding, mode):
    """A true convolution with the PSF origin at ``(h // 2, w // 2)``.

    For odd sizes that is the central pixel. For even sizes it is also exactly what
    ``scipy.ndimage.convolve`` does with its default ``origin=0`` (checked here for 4 x 4 and
    2 x 5): the two conventions agree for every PSF size. ``scipy.signal.convolve2d(mode="same")``
    puts the origin one pixel earlier for even sizes, see the next test.
    """
    x = np.random.default_rng(0).standard_normal((8, 10))
    k = np.random.default_rng(1).random(kshape)
    y = Convolution(torch.tensor(k), (8, 10), padding)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y, ndi.convolve(x, k, mode=mode), rtol=1e-12, atol=1e-12)


def test_convolution_even_psf_origin_versus_scipy_signal_same():
    x = np.random.default_rng(0).standard_normal((8, 10))
    k_odd = np.random.default_rng(1).random((3, 5))
    y = Convolution(torch.tensor(k_odd), (8, 10), "zeros")(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y, sig.convolve2d(x, k_odd, mode="same"), rtol=1e-12, atol=1e-12)
    k_even = np.random.default_rng(1).random((4, 3))  # even rows, odd columns
    y = Convolution(torch.tensor(k_even), (8, 10), "zeros")(torch.tensor(x)).numpy()
    same = sig.convolve2d(x, k_even, mode="same")  # origin at (h - 1) // 2 = 1, not h // 2 = 2
    np.testing.assert_allclose(y[:-1], same[1:], rtol=1e-12, atol=1e-12)
    assert np.abs(y - same).max() > 1e-3


def test_convolution_delta_psf_at_the_origin_is_the_identity():
    for kshape in [(3, 3), (4, 4), (4, 5)]:
        k = torch.zeros(kshape, dtype=F64)
        k[kshape[0] // 2, kshape[1] // 2] = 1
        A = Convolution(k, (6, 8))
        torch.testing.assert_close(A.otf, torch.ones(6, 8, dtype=torch.complex128))
        x = randn(6, 8)
        torch.testing.assert_close(Convolution(k, (6, 8), "zeros")(x), x)


@pytest.mark.parametrize("kshape", [(3, 3), (4, 2)], ids=str)
def test_convolution_valid_matches_scipy_signal(kshape):
    x = np.random.default_rng(0).standard_normal((9, 8))
    k = np.random.default_rng(1).random(kshape)
    y = Convolution(torch.tensor(k), (9, 8), "valid")(torch.tensor(x)).numpy()
    np.testing.assert_allclose(y, sig.convolve2d(x, k, mode="valid"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["circular", "zeros", "valid"])
def test_convolution_psf_broadcasting(padding):
    x = randn(2, 3, 7, 8)  # (B, C, H, W)
    shared = psf(3, 3)
    per_channel = psf(3, 3, 3)
    per_sample = psf(2, 1, 3, 3)

    def single(k, xi):
        return Convolution(k, (7, 8), padding)(xi)

    y = Convolution(shared, (3, 7, 8), padding)(x)
    torch.testing.assert_close(y, single(shared, x))
    y = Convolution(per_channel, (3, 7, 8), padding)(x)
    for c in range(3):
        torch.testing.assert_close(y[:, c], single(per_channel[c], x[:, c]))
    A = Convolution(per_sample, (3, 7, 8), padding)
    assert A.batch_shape == (2,)
    y = A(x)
    for b in range(2):
        torch.testing.assert_close(y[b], single(per_sample[b, 0], x[b]))


@pytest.mark.parametrize("padding", ["circular", "zeros", "valid"])
def test_convolution_gradient_wrt_psf(padding):
    k = psf(3, 2).requires_grad_()
    x = randn(2, 6, 5)
    A = Convolution(k, (6, 5), padding)
    assert A._otf_full is None  # not cached: recomputed so that gradients reach the PSF
    torch.autograd.gradcheck(lambda k: Convolution(k, (6, 5), padding)(x), (k,))
    y = randn(2, *A.out_shape)
    torch.autograd.gradcheck(lambda k: Convolution(k, (6, 5), padding).adjoint(y), (k,))


def test_convolution_psf_as_parameter():
    k = torch.nn.Parameter(psf(3, 3))
    A = Convolution(k, (6, 6))
    assert list(A.parameters()) == [k]
    A(randn(6, 6)).square().sum().backward()
    assert k.grad is not None and float(k.grad.abs().sum()) > 0


def test_convolution_to_dtype_keeps_the_cached_otf_complex():
    k32 = psf(3, 3, dtype=torch.float32)
    A = Convolution(k32, (6, 8))
    B = A.to(torch.float64)
    assert B.psf.dtype == F64
    assert B.otf.dtype == torch.complex128
    ref = Convolution(k32.to(F64), (6, 8))
    torch.testing.assert_close(B.otf, ref.otf, rtol=1e-6, atol=1e-7)
    assert float(B.otf.imag.abs().max()) > 1e-3  # the imaginary part survived
    x = randn(2, 6, 8)
    y = B(x)
    assert y.dtype == F64
    torch.testing.assert_close(y, ref(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(B.to(torch.float32).otf, A.otf)


def test_state_dict_round_trip():
    k = psf(3, 3)
    A = Stack([Convolution(k, (6, 8)),
               FourierMultiplier(torch.fft.fft2(randn(6, 8)), (6, 8), real_kernel=True),
               FourierSampling((torch.rand(6, 8) > 0.5).to(F64), (6, 8))])
    B = Stack([Convolution(torch.zeros(3, 3, dtype=F64), (6, 8)),
               FourierMultiplier(torch.ones(6, 8, dtype=torch.complex128), (6, 8),
                                 real_kernel=True),
               FourierSampling(torch.ones(6, 8, dtype=F64), (6, 8))])
    state = A.state_dict()
    assert "ops.0.psf" in state
    assert not any("otf" in key for key in state)  # the cached OTF is derived, not saved
    B.load_state_dict(state)
    x = randn(2, 6, 8)
    torch.testing.assert_close(B(x), A(x), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(B.ops[0].otf, A.ops[0].otf)


# ---------------------------------------------------------------------------------------------
# Fourier sampling and multipliers
# ---------------------------------------------------------------------------------------------
def test_fourier_sampling_full_mask_is_unitary():
    A = FourierSampling(torch.ones(6, 8, dtype=F64), (6, 8))
    x = randn(3, 6, 8, dtype=torch.complex128)
    torch.testing.assert_close(A.adjoint(A(x)), x)
    torch.testing.assert_close(A(x).abs().square().sum(dim=(-2, -1)),
                               x.abs().square().sum(dim=(-2, -1)))
    torch.testing.assert_close(A(x), torch.fft.fft2(x, norm="ortho"))


def test_fourier_sampling_centered_mask():
    mask = torch.zeros(6, 8, dtype=F64)
    mask[2:5, 3:6] = 1  # low frequencies in the fftshift layout
    A = FourierSampling(mask, (6, 8), centered=True)
    torch.testing.assert_close(A.mask, torch.fft.ifftshift(mask))
    assert float(A.mask[0, 0]) == 1.0  # the DC coefficient is sampled
    x = randn(6, 8)
    torch.testing.assert_close(A(x), torch.fft.ifftshift(mask) * torch.fft.fft2(x, norm="ortho"))


def test_fourier_multiplier_applies_the_symbol():
    kernel = randn(6, 8)
    s = torch.fft.fft2(kernel)
    x = randn(2, 6, 8)
    expected = torch.fft.ifft2(s * torch.fft.fft2(x)).real
    torch.testing.assert_close(FourierMultiplier(s, (6, 8), real_kernel=True)(x), expected)
    y = FourierMultiplier(s, (6, 8))(x)
    assert y.is_complex()
    torch.testing.assert_close(y.real, expected)


# ---------------------------------------------------------------------------------------------
# Jacobian
# ---------------------------------------------------------------------------------------------
def _f(x):
    w = torch.arange(12, dtype=x.dtype).reshape(4, 3) / 10
    return torch.tanh(x @ w.T) * x.sum(-1, keepdim=True)


def test_jacobian_equals_autograd_jacobian():
    x = randn(3)
    J = Jacobian(_f, x)
    ref = torch.autograd.functional.jacobian(_f, x)
    torch.testing.assert_close(dense_matrix(J), ref)
    torch.testing.assert_close(dense_matrix(J.H), ref.T)


def test_jacobian_of_images_and_scalars():
    def g(x):
        return torch.sin(x) * x.mean()

    x = randn(3, 4)
    ref = torch.autograd.functional.jacobian(g, x).reshape(12, 12)
    torch.testing.assert_close(dense_matrix(Jacobian(g, x)), ref)
    J0 = Jacobian(torch.exp, torch.tensor(0.5, dtype=F64))  # scalar in and out
    assert J0.in_shape == J0.out_shape == (1,)
    torch.testing.assert_close(J0(torch.ones(1, dtype=F64)), torch.exp(torch.tensor([0.5],
                                                                                    dtype=F64)))


def test_jacobian_batch_ndim_is_block_diagonal():
    x = randn(2, 3)
    J = Jacobian(_f, x, batch_ndim=1)
    assert J.batch_shape == (2,) and J.in_shape == (3,) and J.out_shape == (4,)
    D = dense_matrix(J)
    for i in range(2):
        torch.testing.assert_close(D[i], torch.autograd.functional.jacobian(_f, x[i]))


def test_jacobian_vmaps_over_extra_leading_dims():
    x = randn(3)
    J = Jacobian(_f, x)
    v = randn(5, 2, 3)
    y = J(v)
    assert y.shape == (5, 2, 4)
    ref = torch.autograd.functional.jacobian(_f, x)
    torch.testing.assert_close(y, v @ ref.T)
    u = randn(5, 4)
    torch.testing.assert_close(J.adjoint(u), u @ ref)


def test_jacobian_is_differentiable_wrt_the_point():
    """Second-order use: the gradient of ||J(x) v||² and ||J(x)ᴴ u||² w.r.t. x."""
    v, u = randn(3), randn(4)

    def jv(x):
        return torch.func.jvp(_f, (x,), (v,))[1]

    def jtu(x):
        return torch.func.vjp(_f, x)[1](u)[0]

    x = randn(3).requires_grad_()
    (g,) = torch.autograd.grad(Jacobian(_f, x)(v).square().sum(), x)
    torch.testing.assert_close(g, torch.func.grad(lambda x: jv(x).square().sum())(x.detach()))
    (g,) = torch.autograd.grad(Jacobian(_f, x).adjoint(u).square().sum(), x)
    torch.testing.assert_close(g, torch.func.grad(lambda x: jtu(x).square().sum())(x.detach()))
    torch.autograd.gradcheck(lambda x: Jacobian(_f, x)(v), (x,))
    torch.autograd.gradcheck(lambda x: Jacobian(_f, x).adjoint(u), (x,))


def test_jacobian_of_a_module_is_differentiable_wrt_its_parameters():
    lin = torch.nn.Linear(3, 2, dtype=F64)
    x = randn(3)
    J = Jacobian(lin, x)
    assert any(t is lin.weight for t in J._tensors())
    v = randn(3)
    y = J(v)
    torch.testing.assert_close(y, lin.weight @ v)
    y.square().sum().backward()
    torch.testing.assert_close(lin.weight.grad, 2 * torch.outer(lin.weight.detach() @ v, v))


def test_jacobian_promotes_instead_of_downcasting():
    x = randn(3, dtype=torch.float32)
    J = Jacobian(_f, x)
    v = randn(3)
    assert J(v).dtype == F64
    vc = randn(3, dtype=torch.complex128)
    yc = J(vc)
    assert yc.dtype == torch.complex128
    torch.testing.assert_close(yc, J(vc.real) + 1j * J(vc.imag))


# ---------------------------------------------------------------------------------------------
# Decimation
# ---------------------------------------------------------------------------------------------
def test_decimation_examples():
    S = Decimation(2, (4, 4))
    x = torch.arange(16.0, dtype=F64).reshape(4, 4)
    torch.testing.assert_close(S(x), torch.tensor([[0.0, 2.0], [8.0, 10.0]], dtype=F64))
    up = S.adjoint(torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=F64))
    torch.testing.assert_close(up, torch.tensor([[1.0, 0, 2.0, 0], [0, 0, 0, 0],
                                                 [3.0, 0, 4.0, 0], [0, 0, 0, 0]], dtype=F64))
    S3 = Decimation(3, (2, 6, 9))
    assert S3.out_shape == (2, 2, 3)
    x = randn(5, 2, 6, 9)
    torch.testing.assert_close(S3(x), x[..., ::3, ::3])
    y = randn(5, 2, 2, 3)
    torch.testing.assert_close(S3(S3.adjoint(y)), y)  # S Sᴴ = I
    pattern = torch.zeros(6, 9, dtype=F64)
    pattern[::3, ::3] = 1
    torch.testing.assert_close(S3.adjoint(S3(x)), pattern * x)  # Sᴴ S = mask of kept pixels
    assert float(S3.opnorm()) == 1.0
    assert float(Decimation(1, (4, 4)).opnorm()) == 1.0


def test_decimated_blur_opnorm_closed_form():
    A = Decimation(2, (8, 6)) @ Convolution(psf(2, 3, 3), (8, 6))
    ref = torch.linalg.matrix_norm(dense_matrix(A), ord=2)
    torch.testing.assert_close(A.opnorm(), ref, rtol=1e-12, atol=1e-12)
    assert math.isclose(float(ref[0]), float(A.opnorm()[0]), rel_tol=1e-12)
