"""Calibration metrics of ``inverse.metrics`` on an exact linear-Gaussian posterior and toy cases.

The exact posterior: a white Gaussian prior x ~ N(0, s0^2 I), a circular Gaussian blur A (the
library's :class:`operators.Convolution`) and white noise. The posterior is Gaussian with
precision A^T A / sigma^2 + I / s0^2, circulant, so its mean is one ``solve_normal`` and its
marginal variance (the same at every pixel) is the mean over frequencies of
1 / (|otf|^2 / sigma^2 + 1 / s0^2). Exact posterior samples are drawn in Fourier space. With x
drawn from the prior, the error of the posterior mean is N(0, Sigma_post) at every pixel, so the
coverage must be nominal up to sampling error.
"""

from __future__ import annotations

import math

import pytest
import torch

from inverse import metrics
from operators import Convolution

S0, SIGMA = 1.0, 0.3


def _gaussian_psf(size: int = 9, width: float = 1.2) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * width ** 2))
    return g / g.sum()


def _linear_gaussian(n_images: int, side: int, n_samples: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    shape = (1, side, side)
    op = Convolution(_gaussian_psf(), shape)
    x = S0 * torch.randn(n_images, *shape, generator=g, dtype=torch.float64)
    y = op(x) + SIGMA * torch.randn(n_images, *shape, generator=g, dtype=torch.float64)
    mean = op.solve_normal(op.adjoint(y), rho=SIGMA ** 2 / S0 ** 2)
    lam = 1.0 / (op.otf.abs() ** 2 / SIGMA ** 2 + 1.0 / S0 ** 2)  # posterior covariance symbol
    std = torch.full_like(x, float(lam.mean().sqrt()))
    samples = None
    if n_samples:
        w = torch.randn(n_samples, *x.shape, generator=g, dtype=torch.float64)
        noise = torch.fft.ifft2(torch.fft.fft2(w) * lam.sqrt()).real
        samples = mean + noise
    return x, mean, std, samples


def test_posterior_std_is_the_exact_marginal():
    # sanity check of the oracle itself: Sigma_post from a dense inverse on a small image
    side = 8
    op = Convolution(_gaussian_psf(5), (1, side, side))
    eye = torch.eye(side * side, dtype=torch.float64).reshape(-1, 1, side, side)
    a = op(eye).reshape(side * side, -1).T
    cov = torch.linalg.inv(a.T @ a / SIGMA ** 2 + torch.eye(side * side, dtype=torch.float64))
    lam = 1.0 / (op.otf.abs() ** 2 / SIGMA ** 2 + 1.0)
    torch.testing.assert_close(cov.diagonal(), torch.full((side * side,), float(lam.mean()),
                                                          dtype=torch.float64))


def test_exact_posterior_is_calibrated():
    x, mean, std, _ = _linear_gaussian(n_images=64, side=32, n_samples=0, seed=0)  # 65536 px
    zs = metrics.zscore_stats(x, mean, std)
    assert abs(zs.mean) < 0.02
    assert abs(zs.std - 1.0) < 0.015
    for got, nominal in zip(zs.within, (0.6827, 0.9545, 0.9973), strict=True):
        assert abs(got - nominal) < 0.01, (got, nominal)
    cov = metrics.gaussian_coverage(x, mean, std)
    assert float((cov - metrics.default_levels()).abs().max()) < 0.015
    assert float(metrics.auce(cov)) < 0.01
    rep = metrics.calibration_report(x, mean, std)
    assert abs(rep.coverage_2sigma - 0.9545) < 0.01
    assert rep.uce < 0.05 * float(std[0, 0, 0, 0]) ** 2  # tiny compared with the variance
    assert rep.ence < 0.03
    # the exact Gaussian NLL: E[0.5 log(2 pi s^2) + z^2/2] = 0.5 log(2 pi s^2) + 0.5
    s = float(std[0, 0, 0, 0])
    assert rep.nll == pytest.approx(0.5 * math.log(2 * math.pi * s * s) + 0.5, abs=0.01)


def test_exact_posterior_samples_are_calibrated():
    x, mean, std, samples = _linear_gaussian(n_images=16, side=32, n_samples=100, seed=1)
    cov = metrics.sample_coverage(x, samples)
    lv = metrics.default_levels()
    # 16384 px; quantiles of 100 samples: small extra spread
    assert float((cov - lv).abs().max()) < 0.03
    assert float(metrics.auce(cov, lv)) < 0.015
    # the sample mean and std estimate the exact ones
    # (the Monte-Carlo mean error has variance s^2 / 100)
    rms = float((samples.mean(0) - mean).pow(2).mean().sqrt())
    assert rms == pytest.approx(float(std.mean()) / 10, rel=0.05)
    assert float(samples.std(0).mean()) == pytest.approx(float(std.mean()), rel=0.02)


def test_overconfident_std_under_covers():
    x, mean, std, _ = _linear_gaussian(n_images=16, side=32, n_samples=0, seed=2)
    zs = metrics.zscore_stats(x, mean, 0.5 * std)
    assert zs.std == pytest.approx(2.0, rel=0.03)
    # |z_true| < 1 is 68 %: that is the "2 sigma" coverage of the halved std
    assert zs.within[1] == pytest.approx(0.6827, abs=0.02)
    cov = metrics.gaussian_coverage(x, mean, 0.5 * std)
    assert bool((cov < metrics.default_levels()).all())
    assert float(metrics.auce(cov)) > 0.15
    # and an under-confident one over-covers
    cov_wide = metrics.gaussian_coverage(x, mean, 2.0 * std)
    assert bool((cov_wide > metrics.default_levels()).all())


def test_gaussian_coverage_counts():
    x = torch.zeros(4)
    x_hat = torch.tensor([0.5, -1.5, 2.5, 0.0])
    std = torch.ones(4)
    # thresholds k(p): p = 0.6827 -> 1, 0.9545 -> 2, 0.9973 -> 3
    lv = torch.tensor([0.682689492, 0.954499736, 0.997300204])
    cov = metrics.gaussian_coverage(x, x_hat, std, lv)
    torch.testing.assert_close(cov, torch.tensor([0.5, 0.75, 1.0], dtype=torch.float64))
    # zero std: only exact pixels are covered
    cov0 = metrics.gaussian_coverage(x, x_hat, torch.zeros(4), lv)
    torch.testing.assert_close(cov0, torch.full((3,), 0.25, dtype=torch.float64))


def test_sample_coverage_matches_torch_quantile():
    g = torch.Generator().manual_seed(3)
    samples = torch.randn(7, 50, generator=g, dtype=torch.float64)
    x = torch.randn(50, generator=g, dtype=torch.float64)
    lv = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    got = metrics.sample_coverage(x, samples, lv)
    exp = []
    for p in lv.tolist():
        lo = torch.quantile(samples, (1 - p) / 2, dim=0)
        hi = torch.quantile(samples, (1 + p) / 2, dim=0)
        exp.append(((lo <= x) & (x <= hi)).double().mean())
    torch.testing.assert_close(got, torch.stack(exp))


def test_auce_closed_form():
    lv = torch.tensor([0.2, 0.6, 1.0 - 1e-9], dtype=torch.float64)
    # constant offset 0.1 everywhere: area = 0.1 * (0.8 - 1e-9)
    assert float(metrics.auce(lv + 0.1, lv)) == pytest.approx(0.08, abs=1e-8)
    assert float(metrics.auce(lv, lv)) == 0.0


def test_uce_ence_toy():
    # bin 1 (std 1): |e| = 2 -> MSE 4, MV 1; bin 2 (std 2): |e| = 2 -> MSE 4, MV 4
    x = torch.zeros(8)
    x_hat = torch.tensor([2.0, -2.0, 2.0, -2.0, 2.0, -2.0, 2.0, -2.0])
    std = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    assert float(metrics.uce(x, x_hat, std, n_bins=2)) == pytest.approx(0.5 * 3 + 0.5 * 0)
    assert float(metrics.uce(x, x_hat, std, n_bins=2, equal_width=True)) == pytest.approx(1.5)
    # ENCE: (|1 - 2| / 1 + |2 - 2| / 2) / 2
    assert float(metrics.ence(x, x_hat, std, n_bins=2)) == pytest.approx(0.5)
    # one bin: |mean e^2 - mean var| = |4 - 2.5|
    assert float(metrics.uce(x, x_hat, std, n_bins=1)) == pytest.approx(1.5)
    # calibrated: e^2 == var in every bin
    assert float(metrics.uce(x, std, std, n_bins=2)) == pytest.approx(0.0)
    assert float(metrics.ence(x, std, std, n_bins=2)) == pytest.approx(0.0)


def test_sparsification_oracle_and_random():
    g = torch.Generator().manual_seed(4)
    x = torch.zeros(1000, dtype=torch.float64)
    x_hat = torch.randn(1000, generator=g, dtype=torch.float64)
    e = (x_hat - x).abs()
    curve = metrics.sparsification(x, x_hat, e, n_steps=50)
    torch.testing.assert_close(curve.by_std, curve.oracle)
    assert float(curve.ause) == 0.0
    assert float(curve.by_std[0]) == pytest.approx(1.0)
    assert bool((curve.oracle.diff() <= 1e-12).all())  # removing the worst errors first
    random_std = torch.rand(1000, generator=g, dtype=torch.float64)
    assert float(metrics.ause(x, x_hat, random_std, n_steps=50)) > 0.1
    # removing m of n pixels: the remaining MSE by hand at f = 0.5
    order = torch.argsort(random_std)
    keep = order[:500]
    c = metrics.sparsification(x, x_hat, random_std, n_steps=2)
    assert float(c.by_std[1]) == pytest.approx(float((x_hat[keep] ** 2).mean() /
                                                     (x_hat ** 2).mean()))


def test_gaussian_nll_matches_torch():
    g = torch.Generator().manual_seed(5)
    x, x_hat = torch.randn(2, 30, generator=g, dtype=torch.float64)
    std = torch.rand(30, generator=g, dtype=torch.float64) + 0.1
    exp = -torch.distributions.Normal(x_hat, std).log_prob(x).mean()
    torch.testing.assert_close(metrics.gaussian_nll(x, x_hat, std), exp)


def test_spearman_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(6)
    a = torch.randint(0, 5, (200,), generator=g).double()
    b = a + torch.randn(200, generator=g, dtype=torch.float64)
    got = float(metrics.spearman(a, b))
    assert got == pytest.approx(stats.spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-12)
    assert float(metrics.spearman(b, b)) == pytest.approx(1.0)
    assert float(metrics.spearman(b, -b)) == pytest.approx(-1.0)
    assert math.isnan(float(metrics.spearman(torch.ones(5), b[:5])))


def test_calibration_report_with_samples():
    x, mean, std, samples = _linear_gaussian(n_images=2, side=16, n_samples=20, seed=7)
    rep = metrics.calibration_report(x, mean, std, samples)
    d = rep.as_dict()
    assert set(d) >= {"zscore_mean", "zscore_std", "coverage_2sigma", "auce", "auce_samples",
                      "uce", "ence", "ause", "nll", "spearman"}
    assert d["auce_samples"] is not None and 0 <= d["auce_samples"] < 0.9
    assert metrics.calibration_report(x, mean, std).auce_samples is None


def test_calibration_errors():
    a = torch.zeros(2, 3)
    one = torch.ones(2, 3)
    with pytest.raises(ValueError, match="std must have the shape of x"):
        metrics.zscore_stats(a, a, torch.ones(3))
    with pytest.raises(ValueError, match="std must be positive"):
        metrics.zscore_stats(a, a, a)
    with pytest.raises(ValueError, match="std must be finite and non-negative"):
        metrics.gaussian_coverage(a, a, -one)
    with pytest.raises(ValueError, match="x and x_hat must be finite"):
        metrics.gaussian_nll(a + float("nan"), a, one)
    with pytest.raises(ValueError, match="empty input"):
        metrics.uce(torch.zeros(0), torch.zeros(0), torch.zeros(0))
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        metrics.gaussian_coverage([0.0], a, one)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="levels must be probabilities"):
        metrics.gaussian_coverage(a, a, one, torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="coverage has 2 values"):
        metrics.auce(torch.zeros(2), torch.tensor([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="at least two increasing levels"):
        metrics.auce(torch.zeros(2), torch.tensor([0.3, 0.2]))
    with pytest.raises(ValueError, match=r"samples must have shape \(K, \*x.shape\)"):
        metrics.sample_coverage(a, torch.zeros(4, 3, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.sample_coverage(a, torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="x and samples must be finite"):
        metrics.sample_coverage(a, torch.full((3, 2, 3), float("inf")))
    with pytest.raises(TypeError, match="x and samples must be torch tensors"):
        metrics.sample_coverage(a, [0.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_bins must be an int >= 1"):
        metrics.uce(a, a, one, n_bins=0)
    with pytest.raises(ValueError, match="n_steps must be an int >= 1"):
        metrics.ause(a, one, one, n_steps=0)
    with pytest.raises(ValueError, match="exact"):
        metrics.sparsification(a, a, one)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        metrics.spearman(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="at least two elements"):
        metrics.spearman(torch.zeros(1), torch.zeros(1))
    with pytest.raises(TypeError, match="must be real"):
        metrics.gaussian_nll(a.to(torch.complex64), a, one)
