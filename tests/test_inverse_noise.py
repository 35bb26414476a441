"""Noise models of ``inverse._noise``: closed-form NLLs, sample moments, errors."""

from __future__ import annotations

import math

import pytest
import torch

from inverse._noise import GaussianNoise, NoiseModel, PoissonGaussianNoise


def test_gaussian_nll_closed_form():
    torch.manual_seed(0)
    ax = torch.rand(3, 1, 5, 4, dtype=torch.float64)
    y = torch.rand(3, 1, 5, 4, dtype=torch.float64)
    sigma = 0.3
    nll = GaussianNoise(sigma).nll(ax, y)
    expected = ((y - ax) ** 2).sum(dim=(1, 2, 3)) / (2 * sigma ** 2)
    torch.testing.assert_close(nll, expected)
    # the exact log-density differs only by a constant
    dist = torch.distributions.Normal(ax, sigma)
    logp = dist.log_prob(y).sum(dim=(1, 2, 3))
    const = 20 * (0.5 * math.log(2 * math.pi) + math.log(sigma))
    torch.testing.assert_close(nll, -logp - const)
    assert GaussianNoise(sigma).nll(ax, y, event_ndim=2).shape == (3, 1)


def test_poisson_gaussian_nll_is_exact_gaussian_logpdf():
    torch.manual_seed(1)
    ax = torch.rand(2, 1, 6, 6, dtype=torch.float64) - 0.1  # some negative predictions
    y = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    noise = PoissonGaussianNoise(a=1e-3, b=2e-2)
    var = 1e-3 + 2e-2 * ax.clamp(min=0)
    logp = torch.distributions.Normal(ax, var.sqrt()).log_prob(y).sum(dim=(1, 2, 3))
    torch.testing.assert_close(noise.nll(ax, y), -logp - 36 * 0.5 * math.log(2 * math.pi))
    # variance at the observation: weighted least squares, no log term
    plug = PoissonGaussianNoise(a=1e-3, b=2e-2, variance_at_observation=True)
    w = 1e-3 + 2e-2 * y
    torch.testing.assert_close(plug.nll(ax, y), ((y - ax) ** 2 / (2 * w)).sum(dim=(1, 2, 3)))
    assert noise.heteroscedastic and not plug.heteroscedastic


def test_nll_gradient_float64():
    torch.manual_seed(2)
    ax = (torch.rand(1, 1, 3, 3, dtype=torch.float64) + 0.1).requires_grad_()
    y = torch.rand(1, 1, 3, 3, dtype=torch.float64)
    noise = PoissonGaussianNoise(a=1e-2, b=5e-2)
    assert torch.autograd.gradcheck(lambda u: noise.nll(u, y), (ax,))


@pytest.mark.parametrize("noise", [GaussianNoise(0.05), PoissonGaussianNoise(1e-4, 4e-3)])
def test_sample_moments(noise: NoiseModel):
    g = torch.Generator().manual_seed(3)
    x = torch.full((200_000,), 0.4, dtype=torch.float64)
    y = noise.sample(x, generator=g)
    var = float(noise.variance(x)[0])
    # mean within 5 standard errors, variance within 5 standard errors (chi^2: sd = var sqrt(2/n))
    assert abs(float(y.mean()) - 0.4) < 5 * math.sqrt(var / x.numel())
    assert abs(float(y.var()) - var) < 5 * var * math.sqrt(2 / x.numel())
    y2 = noise.sample(x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(y, y2)  # reproducible


def test_noise_free_models():
    x = torch.rand(2, 3)
    torch.testing.assert_close(GaussianNoise(0.0).sample(x), x)
    torch.testing.assert_close(PoissonGaussianNoise(0.0, 0.0).sample(x), x)
    assert torch.isfinite(GaussianNoise(0.0).nll(x, x + 1e-3)).all()


def test_noise_errors():
    with pytest.raises(ValueError, match="sigma must be >= 0, got -0.1; noise parameters are"):
        GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="a must be >= 0"):
        PoissonGaussianNoise(-1e-3, 0.0)
    with pytest.raises(ValueError, match="b must be finite, got nan"):
        PoissonGaussianNoise(0.0, float("nan"))
    with pytest.raises(TypeError, match="sigma must be a real number, got str"):
        GaussianNoise("0.1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="variance_at_observation must be a bool"):
        PoissonGaussianNoise(0.0, 1.0, variance_at_observation=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        GaussianNoise(0.1).nll(torch.zeros(1, 3), torch.zeros(1, 4))
    with pytest.raises(TypeError, match="must be torch tensors"):
        GaussianNoise(0.1).nll([0.0], torch.zeros(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batched tensor"):
        GaussianNoise(0.1).nll(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"event_ndim must be an int in \[0, 2\], got 5; the "
                                         r"number of trailing dims"):
        GaussianNoise(0.1).nll(torch.zeros(1, 3), torch.zeros(1, 3), event_ndim=5)
    for bad in (-1, 1.0, True, "1"):
        with pytest.raises(ValueError, match=r"event_ndim must be an int in \[0, 2\]"):
            GaussianNoise(0.1).nll(torch.zeros(1, 3), torch.zeros(1, 3), event_ndim=bad)
    with pytest.raises(TypeError, match=r"event_ndim must be an int"):  # a wrong type
        GaussianNoise(0.1).nll(torch.zeros(1, 3), torch.zeros(1, 3), event_ndim=1.0)
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        GaussianNoise(0.1).sample([0.0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="abstract"):
        NoiseModel()  # type: ignore[abstract]
