"""Pléiades-like degradation: the PSF's MTF at Nyquist via its DFT, the forward operator against
a direct convolution, the noise statistics, quantization, and the input checks."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from inverse._noise import PoissonGaussianNoise
from inverse.satellite import PleiadesDegradation, gaussian_sigma_from_mtf, psf_from_mtf
from operators.testing import check_adjoint


def _dft_on_grid(psf: torch.Tensor, n: int = 64) -> torch.Tensor:
    """DFT of the PSF zero-padded to n x n with its origin (center) rolled to index 0."""
    h = psf.shape[-1]
    padded = torch.nn.functional.pad(psf, (0, n - h, 0, n - h))
    return torch.fft.fft2(torch.roll(padded, (-(h // 2), -(h // 2)), dims=(0, 1)))


@pytest.mark.parametrize("mtf", [0.05, 0.07, 0.1, 0.15, 0.25, 0.5, 0.9])
def test_psf_dft_equals_the_mtf_at_nyquist(mtf):
    psf = psf_from_mtf(mtf, dtype=torch.float64)
    otf = _dft_on_grid(psf)
    assert abs(float(otf[0, 0].real) - 1) < 1e-12  # unit sum
    assert float(otf.imag.abs().max()) < 1e-12      # symmetric, centered
    for f in [(32, 0), (0, 32)]:
        assert abs(float(otf[f].real) - mtf) < 1e-9
    # the MTF decreases monotonically along the axis (a Gaussian, no ringing)
    axis = otf[0, :33].real
    assert bool((axis[1:] < axis[:-1]).all())
    assert float(psf.min()) >= 0 and torch.equal(psf, psf.T) and torch.equal(psf, psf.flip(0))


def test_the_continuous_formula_and_why_the_sampled_psf_needs_another_sigma():
    sigma_c = gaussian_sigma_from_mtf(0.1, sampled=False)
    assert sigma_c == pytest.approx(math.sqrt(-2 * math.log(0.1)) / math.pi)
    assert sigma_c == pytest.approx(0.683, abs=1e-3)
    # sampling the continuous Gaussian aliases its spectrum: about 2 m at Nyquist
    k = torch.arange(-5, 6, dtype=torch.float64)
    g = torch.exp(-k ** 2 / (2 * sigma_c ** 2))
    naive = torch.outer(g, g) / g.sum() ** 2
    assert float(_dft_on_grid(naive)[32, 0].real) == pytest.approx(0.2, abs=1e-3)
    # the sampled sigma is solved instead; about sigma_c(m / 2)
    sigma_s = gaussian_sigma_from_mtf(0.1)
    assert sigma_s == pytest.approx(0.779, abs=1e-3)
    assert sigma_s == pytest.approx(gaussian_sigma_from_mtf(0.05, sampled=False), rel=1e-3)


def test_psf_with_a_given_size_and_the_identity_case():
    psf = psf_from_mtf(0.1, size=5, dtype=torch.float64)
    assert psf.shape == (5, 5)
    assert float(_dft_on_grid(psf)[32, 0].real) == pytest.approx(0.1, abs=1e-9)
    delta = psf_from_mtf(1.0, size=3)
    assert float(delta[1, 1]) == 1.0 and float(delta.sum()) == 1.0
    assert gaussian_sigma_from_mtf(1.0) == 0.0


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    (dict(mtf=0.0), ValueError, "mtf must be > 0, got 0.0; mtf is in \\(0, 1\\]"),
    (dict(mtf=1.5), ValueError, "mtf must be <= 1, got 1.5; mtf is in \\(0, 1\\]"),
    (dict(mtf=math.nan), ValueError, "mtf must be finite, got nan"),
    (dict(mtf=math.inf), ValueError, "mtf must be finite, got inf"),
    (dict(mtf="0.1"), TypeError, "mtf must be a real number, got str"),
    (dict(mtf=True), TypeError, "mtf must be a real number, got bool"),
    (dict(mtf=0.1, size=4), ValueError, "positive odd integer"),
    (dict(mtf=0.1, size=0), ValueError, "size must be an int >= 1, got 0; size must be a "
                                        "positive odd integer"),
    (dict(mtf=0.1, size=5.0), TypeError, "size must be an int >= 1, got 5.0"),
    (dict(mtf=0.1, size=True), TypeError, "size must be an int >= 1, got True"),
    (dict(mtf=0.1, size=1), ValueError, "no sampled Gaussian of size 1"),
])
def test_psf_from_mtf_rejects_bad_inputs(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        psf_from_mtf(**kwargs)


@pytest.mark.parametrize("decimation", [1, 2])
def test_operator_is_a_circular_blur_then_decimation(decimation):
    deg = PleiadesDegradation(mtf=0.1, decimation=decimation)
    op = deg.operator((1, 32, 48), dtype=torch.float64)
    assert op.in_shape == (1, 32, 48) and op.out_shape == (1, 32 // decimation, 48 // decimation)
    x = torch.rand(2, 1, 32, 48, dtype=torch.float64)
    psf = deg.psf_array(torch.float64).numpy()
    expected = np.stack([ndimage.convolve(xi[0].numpy(), psf, mode="wrap") for xi in x])
    expected = expected[:, None, ::decimation, ::decimation]
    np.testing.assert_allclose(op(x).numpy(), expected, atol=1e-12)
    assert check_adjoint(op, dtype=torch.float64) < 1e-10
    # the circular boundary gives the closed-form normal solve
    b = torch.rand(2, 1, 32, 48, dtype=torch.float64)
    sol = op.solve_normal(b, 0.1)
    np.testing.assert_allclose((op.H(op(sol)) + 0.1 * sol).numpy(), b.numpy(), atol=1e-9)


def test_simulate_without_noise_and_quantization_is_the_operator():
    deg = PleiadesDegradation(mtf=0.15, decimation=2, noise_a=0.0, noise_b=0.0, quantize=False)
    x = torch.rand(1, 1, 40, 40, dtype=torch.float64)
    np.testing.assert_allclose(deg.simulate(x).numpy(), deg.operator((1, 40, 40),
                                                                      dtype=torch.float64)(x))


def test_simulated_noise_has_the_poisson_gaussian_variance():
    a, b, level = 2e-4, 1e-3, 0.4
    deg = PleiadesDegradation(mtf=0.1, noise_a=a, noise_b=b, quantize=False)
    x = torch.full((1, 1, 256, 256), level, dtype=torch.float64)  # blur keeps a constant
    y = deg.simulate(x, torch.Generator().manual_seed(0))
    n = y.numel()
    var = float(y.var())
    assert var == pytest.approx(a + b * level, rel=5 * math.sqrt(2 / n))
    assert float(y.mean()) == pytest.approx(level, abs=5 * math.sqrt((a + b * level) / n))


def test_simulate_quantizes_clips_and_is_reproducible():
    deg = PleiadesDegradation(mtf=0.1, noise_a=1e-3, noise_b=1e-3, n_bits=8)
    x = 0.05 * torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    y1 = deg.simulate(x, torch.Generator().manual_seed(7))
    y2 = deg.simulate(x, torch.Generator().manual_seed(7))
    y3 = deg.simulate(x, torch.Generator().manual_seed(8))
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)
    dn = y1 * 255
    assert torch.allclose(dn, dn.round(), atol=1e-4)
    assert float(y1.min()) >= 0 and float(y1.max()) <= 1
    assert float((y1 == 0).float().mean()) > 0  # dark pixels were clipped, not wrapped


def test_noise_model_adds_the_quantization_variance():
    deg = PleiadesDegradation(noise_a=1e-5, noise_b=2e-4, n_bits=8)
    model = deg.noise_model()
    assert isinstance(model, PoissonGaussianNoise)
    assert model.a == pytest.approx(1e-5 + 1 / (12 * 255 ** 2)) and model.b == 2e-4
    assert deg.noise_model(include_quantization=False).a == 1e-5
    assert PleiadesDegradation(quantize=False).noise_model().a == 1e-5


def test_user_psf_is_normalized_and_compared_by_value():
    psf = np.ones((3, 5))
    deg = PleiadesDegradation(psf=psf, noise_a=0, noise_b=0, quantize=False)
    assert deg.mtf is None and float(deg.psf_array().sum()) == pytest.approx(1.0)
    assert deg == PleiadesDegradation(psf=2 * psf, noise_a=0, noise_b=0, quantize=False)
    assert deg != PleiadesDegradation(psf=np.ones((3, 3)), noise_a=0, noise_b=0, quantize=False)
    assert hash(deg) == hash(PleiadesDegradation(psf=psf, noise_a=0, noise_b=0, quantize=False))
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    expected = ndimage.convolve(x[0, 0].numpy(), np.ones((3, 5)) / 15, mode="wrap")
    np.testing.assert_allclose(deg.simulate(x)[0, 0].numpy(), expected, atol=1e-6)
    assert "degradation_psf" in deg.settings()
    assert PleiadesDegradation().mtf == 0.1
    assert PleiadesDegradation().settings()["degradation_psf_sigma_px"] == pytest.approx(
        0.779, abs=2e-3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        deg.decimation = 2


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    (dict(noise_a=-1e-3), ValueError, "noise_a must be >= 0"),
    (dict(noise_b=-1.0), ValueError, "noise_b must be >= 0"),
    (dict(noise_a=float("nan")), ValueError, "noise_a must be finite"),
    (dict(mtf=0.1, psf=np.ones((3, 3))), ValueError, "either mtf"),
    (dict(mtf=2.0), ValueError, "in \\(0, 1\\]"),
    (dict(psf=np.ones(3)), ValueError, "2-D array"),
    (dict(psf=np.full((3, 3), np.nan)), ValueError, "NaN"),
    (dict(psf=np.zeros((3, 3))), ValueError, "positive sum"),
    (dict(noise_b=math.inf), ValueError, "noise_b must be finite, got inf; the noise variance"),
    (dict(noise_a="0"), TypeError, "noise_a must be a real number, got str '0'; the noise"),
    (dict(decimation=0), ValueError, "decimation must be an int >= 1, got 0; the resolution"),
    (dict(decimation=1.5), TypeError, "decimation must be an int >= 1, got 1.5"),
    (dict(decimation=True), TypeError, "decimation must be an int >= 1, got True"),
    (dict(n_bits=0), ValueError, r"n_bits must be an int in \[1, 32\], got 0; the bit depth"),
    (dict(n_bits=33), ValueError, r"n_bits must be an int in \[1, 32\], got 33"),
    (dict(n_bits=12.0), TypeError, r"n_bits must be an int in \[1, 32\], got 12.0"),
    (dict(quantize=1), TypeError, "quantize must be a bool"),
])
def test_degradation_rejects_bad_settings(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PleiadesDegradation(**kwargs)


def test_simulate_and_operator_reject_bad_images():
    deg = PleiadesDegradation(decimation=2)
    with pytest.raises(ValueError, match="NaN"):
        deg.simulate(torch.full((1, 1, 16, 16), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        deg.simulate(torch.zeros(16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="divisible by the decimation"):
        deg.simulate(torch.zeros(1, 1, 15, 16))
    with pytest.raises(ValueError, match="\\(H, W\\) or \\(C, H, W\\)"):
        deg.operator((16,))
