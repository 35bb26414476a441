"""Compressive autoencoder of :mod:`inverse.vble`: layers, entropy models, CAE, checkpoints.

The CompressAI comparison uses ``tests/data/compressai_golden.pt``, produced once by
``scripts/make_compressai_golden.py`` with compressai 1.2.8 (see its docstring).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from inverse.vble import (
    GDN,
    CAEConfig,
    CompressiveAutoencoder,
    EntropyBottleneck,
    GaussianConditional,
    LowerBound,
    MaskedConv2d,
    NonNegativeParametrizer,
    cae_from_compressai,
    crop,
    default_cae,
    gaussian_likelihood,
    load_cae,
    lower_bound,
    pad_to_multiple,
    save_cae,
)
from inverse.vble import _checkpoint as ckpt_mod

GOLDEN = Path(__file__).parent / "data" / "compressai_golden.pt"


def tiny(in_channels: int = 1, **kw) -> CompressiveAutoencoder:
    torch.manual_seed(0)
    return CompressiveAutoencoder(CAEConfig(in_channels=in_channels, N=8, M=12, **kw))


# --------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("size", [(64, 64), (50, 77), (5, 130)])
def test_shapes_any_size_via_pad_crop(c, size):
    cae = tiny(c)
    x = torch.rand(2, c, *size)
    xp, hw = pad_to_multiple(x, cae.pad_multiple)
    assert xp.shape[-2] % 64 == 0 and xp.shape[-1] % 64 == 0
    assert xp.shape[-2] - size[0] < 64 and xp.shape[-1] - size[1] < 64
    torch.testing.assert_close(crop(xp, hw), x, rtol=0, atol=0)
    out = cae(xp)
    H, W = xp.shape[-2:]
    assert out["x_hat"].shape == xp.shape
    assert out["likelihoods"]["y"].shape == (2, 12, H // 16, W // 16)
    assert out["likelihoods"]["z"].shape == (2, 8, H // 64, W // 64)
    y, z = cae.analysis(xp)
    assert crop(cae.decode(y), hw).shape == x.shape
    assert cae.decode_std(y).shape == xp.shape
    assert cae.latent_bits(y, z).shape == (2,)


def test_pad_reflect_values():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    xp, hw = pad_to_multiple(x, 6)
    ref = np.pad(x[0, 0].numpy(), ((0, 3), (0, 2)), mode="reflect")
    np.testing.assert_array_equal(xp[0, 0].numpy(), ref)
    assert hw == (3, 4)
    # padding larger than the side: reflection of the reflection (numpy's "reflect" does this)
    x = torch.arange(3.0).reshape(1, 1, 1, 3).expand(1, 1, 2, 3).contiguous()
    xp, _ = pad_to_multiple(x, 8)
    ref = np.pad(x[0, 0].numpy(), ((0, 6), (0, 5)), mode="reflect")
    np.testing.assert_array_equal(xp[0, 0].numpy(), ref)
    # 3-d input and a 1-pixel side (replicated)
    xp, hw = pad_to_multiple(torch.ones(1, 1, 5), 4)
    assert xp.shape == (1, 4, 8) and hw == (1, 5) and bool((xp == 1).all())
    # already a multiple: unchanged
    x = torch.rand(1, 2, 8, 8)
    assert pad_to_multiple(x, 4)[0] is x or torch.equal(pad_to_multiple(x, 4)[0], x)


def test_pad_crop_errors():
    with pytest.raises(ValueError, match="multiple must be an int >= 1"):
        pad_to_multiple(torch.rand(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="at least 3"):
        pad_to_multiple(torch.rand(4, 4), 8)
    with pytest.raises(ValueError, match="cannot crop"):
        crop(torch.rand(1, 1, 4, 4), (5, 4))
    with pytest.raises(ValueError, match="positive ints"):
        crop(torch.rand(1, 1, 4, 4), (0, 4))


# --------------------------------------------------------------------------------------- GDN
def _random_gdn(c: int, inverse: bool) -> GDN:
    gdn = GDN(c, inverse=inverse).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        gdn.beta.copy_(gdn.beta_reparam.init(0.5 + torch.rand(c, generator=g, dtype=torch.float64)))
        gdn.gamma.copy_(gdn.gamma_reparam.init(0.3 * torch.rand(c, c, generator=g,
                                                                dtype=torch.float64)))
    return gdn


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_formula(inverse):
    c = 4
    gdn = _random_gdn(c, inverse)
    x = torch.randn(2, c, 5, 6, dtype=torch.float64)
    beta = gdn.effective_beta().detach().numpy()
    gamma = gdn.effective_gamma().detach().numpy()
    xn = x.numpy()
    norm = beta[None, :, None, None] + np.einsum("ij,bjhw->bihw", gamma, xn**2)
    ref = xn * np.sqrt(norm) if inverse else xn / np.sqrt(norm)
    np.testing.assert_allclose(gdn(x).detach().numpy(), ref, rtol=1e-12)


def test_igdn_inverts_gdn_to_second_order():
    """With beta = 1 and gamma = g*G: IGDN(GDN(x)) - x = O(g^2) (exact for g = 0)."""
    c = 3
    x = torch.randn(2, c, 4, 4, dtype=torch.float64)
    G = torch.rand(c, c, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    errs = []
    for g in (0.0, 0.02, 0.01, 0.005):
        fwd, inv = GDN(c).double(), GDN(c, inverse=True).double()
        with torch.no_grad():
            for m in (fwd, inv):
                m.beta.copy_(m.beta_reparam.init(torch.ones(c, dtype=torch.float64)))
                m.gamma.copy_(m.gamma_reparam.init(g * G))
        errs.append((inv(fwd(x)) - x).abs().max().item())
    assert errs[0] < 1e-6  # only the 2^-36 pedestal offset remains
    ratios = [errs[1] / errs[2], errs[2] / errs[3]]
    assert all(3.5 < r < 4.5 for r in ratios), (errs, ratios)


def test_nonnegative_reparametrization_keeps_gdn_positive():
    gdn = GDN(4)
    opt = torch.optim.SGD(gdn.parameters(), lr=0.5)
    x = torch.randn(2, 4, 3, 3)
    for _ in range(50):
        opt.zero_grad()
        # push beta and gamma toward negative values
        (gdn.effective_beta().sum() + gdn.effective_gamma().sum() + gdn(x).sum()).backward()
        opt.step()
    beta, gamma = gdn.effective_beta(), gdn.effective_gamma()
    assert bool((beta >= 1e-6 - 1e-12).all()) and bool((gamma >= 0).all())
    assert beta.min().item() < 1e-3  # it did get pushed down to the bound
    assert torch.isfinite(gdn(x)).all()


def test_nonnegative_parametrizer_roundtrip():
    p = NonNegativeParametrizer(minimum=0.1).double()
    v = torch.tensor([0.1, 0.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(p(p.init(v)), v)
    # values below the minimum map to the minimum
    assert p(torch.tensor([-5.0, 0.0], dtype=torch.float64)).min().item() == pytest.approx(0.1)


# --------------------------------------------------------------------------------------- bounds
def test_lower_bound_gradient_rule():
    x = torch.tensor([-1.0, -1.0, 2.0, 2.0], requires_grad=True)
    upstream = torch.tensor([1.0, -1.0, 1.0, -1.0])
    out = lower_bound(x, 0.5)
    torch.testing.assert_close(out.detach(), torch.tensor([0.5, 0.5, 2.0, 2.0]))
    out.backward(upstream)
    # below the bound: only the gradient whose descent step moves x up (g < 0) passes
    torch.testing.assert_close(x.grad, torch.tensor([0.0, -1.0, 1.0, -1.0]))
    m = LowerBound(0.5)
    assert m.bound.shape == (1,) and "bound" in m.state_dict()


# --------------------------------------------------------------------------------------- masked
def test_masked_conv_is_causal():
    torch.manual_seed(0)
    conv = MaskedConv2d(2, 3, kernel_size=5, padding=2)
    h, w = 6, 7
    for p in [(0, 0), (2, 3), (5, 6), (3, 0)]:
        x = torch.randn(1, 2, h, w, requires_grad=True)
        conv(x)[0, :, p[0], p[1]].sum().backward()
        g = x.grad[0].abs().sum(0)
        idx = torch.arange(h * w).reshape(h, w)
        here = p[0] * w + p[1]
        assert g[idx >= here].abs().max().item() == 0.0
        if here > 0:  # the neighbours before p in raster order (within the 5x5 window) matter
            before = (idx < here) & ((torch.arange(h)[:, None] - p[0]).abs() <= 2) & \
                ((torch.arange(w)[None, :] - p[1]).abs() <= 2)
            assert bool((g[before] > 0).all())
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 1, 3, mask_type="C")


def test_entropy_parameters_are_causal_in_y():
    cae = tiny()
    y = torch.randn(1, 12, 4, 4, requires_grad=True)
    z = torch.randn(1, 8, 1, 1)
    scales, means = cae.entropy_parameters_of(y, z)
    (scales[0, :, 1, 2].sum() + means[0, :, 1, 2].sum()).backward()
    g = y.grad[0].abs().sum(0).flatten()
    assert g[1 * 4 + 2:].max().item() == 0.0 and g[: 1 * 4 + 2].max().item() > 0


# --------------------------------------------------------------------------------- likelihoods
def test_gaussian_likelihood_closed_form():
    g = torch.Generator().manual_seed(0)
    y = 4 * torch.randn(500, generator=g, dtype=torch.float64)
    mu = torch.randn(500, generator=g, dtype=torch.float64)
    s = 3 * torch.rand(500, generator=g, dtype=torch.float64) ** 2  # many below 0.11
    v = np.abs(y.numpy() - mu.numpy())
    ss = np.maximum(s.numpy(), 0.11)
    ref = np.maximum(ndtr((0.5 - v) / ss) - ndtr((-0.5 - v) / ss), 1e-9)
    np.testing.assert_allclose(gaussian_likelihood(y, s, mu).numpy(), ref, rtol=1e-10,
                               atol=1e-15)
    # the module holds its bounds in float32 buffers (as CompressAI does)
    ss32 = np.maximum(s.numpy(), float(np.float32(0.11)))
    ref32 = np.maximum(ndtr((0.5 - v) / ss32) - ndtr((-0.5 - v) / ss32), float(np.float32(1e-9)))
    gc = GaussianConditional().double()
    np.testing.assert_allclose(gc.likelihood(y, s, mu).numpy(), ref32, rtol=1e-10, atol=1e-15)
    assert (ref == 1e-9).any() and (s.numpy() < 0.11).any()  # both bounds exercised


@pytest.mark.parametrize(("make", "exc", "match"), [
    (lambda: EntropyBottleneck(0), ValueError, "channels must be an int >= 1, got 0"),
    (lambda: EntropyBottleneck(2.0), TypeError, "channels must be an int >= 1, got 2.0"),
    (lambda: EntropyBottleneck(2, filters=(3, 0)), ValueError, r"filters\[1\] must be an int"),
    (lambda: EntropyBottleneck(2, init_scale=0.0), ValueError, "init_scale must be > 0, got 0.0"),
    (lambda: EntropyBottleneck(2, init_scale=math.nan), ValueError, "init_scale must be finite"),
    (lambda: EntropyBottleneck(2, likelihood_bound=-1.0), ValueError,
     "likelihood_bound must be >= 0"),
    (lambda: GDN(0), ValueError, "channels must be an int >= 1"),
    (lambda: GDN(3, beta_min=-1.0), ValueError, "beta_min must be >= 0"),
    (lambda: GDN(3, gamma_init=math.nan), ValueError, "gamma_init must be finite"),
    (lambda: GDN(3, gamma_init="0.1"), TypeError, "gamma_init must be a real number"),
    (lambda: NonNegativeParametrizer(minimum=math.inf), ValueError, "minimum must be finite"),
    (lambda: NonNegativeParametrizer(reparam_offset=0.0), ValueError,
     "reparam_offset must be > 0"),
    (lambda: LowerBound(math.nan), ValueError, "bound must be finite, got nan"),
    (lambda: LowerBound("0"), TypeError, "bound must be a real number, got str"),
])
def test_building_blocks_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(("kw", "exc", "match"), [
    ({"scale_bound": 0.0}, ValueError, "scale_bound must be > 0, got 0.0; the smallest Gaussian"),
    ({"scale_bound": math.nan}, ValueError, "scale_bound must be finite"),
    ({"scale_bound": "0.11"}, TypeError, "scale_bound must be a real number"),
    ({"likelihood_bound": -1e-9}, ValueError, "likelihood_bound must be >= 0"),
    ({"likelihood_bound": math.inf}, ValueError, "likelihood_bound must be finite"),
    ({"likelihood_bound": True}, TypeError, "likelihood_bound must be a real number, got bool"),
])
def test_gaussian_conditional_bad_bounds(kw, exc, match):
    with pytest.raises(exc, match=match):
        GaussianConditional(**kw)


def test_gaussian_likelihood_sums_to_one_over_bins():
    gc = GaussianConditional(likelihood_bound=0.0).double()
    k = torch.arange(-60, 61, dtype=torch.float64)[:, None]
    for mu, s, t in [(0.3, 0.05, 0.1), (-1.2, 2.0, 0.4), (5.0, 7.0, -0.3)]:
        lik = gc.likelihood(k + t, torch.tensor(s, dtype=torch.float64),
                            torch.tensor(mu, dtype=torch.float64))
        assert lik.sum().item() == pytest.approx(1.0, abs=1e-12)


def _eb_reference(eb: EntropyBottleneck, z: np.ndarray) -> np.ndarray:
    """Direct per-channel scalar evaluation of sigma(L(z+1/2)) - sigma(L(z-1/2))."""
    def softplus(a):
        return np.log1p(np.exp(a))

    def L(c, t):
        u = np.array([[t]])
        for i in range(len(eb.filters) + 1):
            H = softplus(eb.matrices[i][c].detach().numpy())
            u = H @ u + eb.biases[i][c].detach().numpy()
            if i < len(eb.filters):
                u = u + np.tanh(eb.factors[i][c].detach().numpy()) * np.tanh(u)
        return float(u[0, 0])

    def sig(a):
        return 1 / (1 + np.exp(-a))

    out = np.empty_like(z)
    for b, c, i, j in np.ndindex(*z.shape):
        t = z[b, c, i, j]
        out[b, c, i, j] = sig(L(c, t + 0.5)) - sig(L(c, t - 0.5))
    return np.maximum(out, 1e-9)


def test_entropy_bottleneck_closed_form_and_normalization():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3).double()
    with torch.no_grad():
        for p in eb.parameters():
            p.add_(0.4 * torch.randn_like(p))
    z = 8 * torch.randn(2, 3, 2, 3, dtype=torch.float64)
    np.testing.assert_allclose(eb.likelihood(z).detach().numpy(),
                               _eb_reference(eb, z.numpy()), rtol=1e-9, atol=1e-15)
    # telescoping: the masses of the bins k + t, k in Z, sum to 1
    k = torch.arange(-400, 401, dtype=torch.float64)
    zz = (k + 0.3).reshape(1, 1, -1, 1).expand(1, 3, -1, 1).contiguous()
    eb.likelihood_bound = 0.0
    total = eb.likelihood(zz).sum(dim=(0, 2, 3))
    torch.testing.assert_close(total, torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="EntropyBottleneck expects"):
        eb.likelihood(torch.zeros(1, 2, 1, 1, dtype=torch.float64))


def test_gradcheck_likelihoods_float64():
    g = torch.Generator().manual_seed(0)
    y = (2 * torch.randn(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    mu = torch.randn(2, 3, generator=g, dtype=torch.float64).requires_grad_()
    s = (0.5 + torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b, c: gaussian_likelihood(a, b, c), (y, s, mu))
    torch.manual_seed(1)
    eb = EntropyBottleneck(2).double()
    z = (3 * torch.randn(1, 2, 2, 2, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(eb.likelihood, (z,))
    # gradients w.r.t. the density's own parameters (matrices, biases, factors)
    from torch.func import functional_call

    class Lik(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.eb = eb

        def forward(self, t):
            return self.eb.likelihood(t)

    wrapper = Lik()
    names = [n for n, _ in wrapper.named_parameters()]
    inputs = tuple(p.detach().clone().requires_grad_() for p in wrapper.parameters())
    assert torch.autograd.gradcheck(
        lambda *ps: functional_call(wrapper, dict(zip(names, ps, strict=True)), (z.detach(),),
                                    strict=False),
        inputs)


# --------------------------------------------------------------------------------------- CAE
def test_latent_bits_matches_forward_likelihoods():
    cae = tiny().train()
    x = torch.rand(2, 1, 64, 128)
    out = cae(x)
    ref = -(torch.log2(out["likelihoods"]["y"]).sum((1, 2, 3))
            + torch.log2(out["likelihoods"]["z"]).sum((1, 2, 3)))
    torch.testing.assert_close(cae.latent_bits(out["y_hat"], out["z_hat"]), ref)
    y, z = cae.analysis(x)
    # training noise is uniform with width 1
    assert (out["y_hat"] - y).abs().max().item() <= 0.5
    assert (out["z_hat"] - z).abs().max().item() <= 0.5
    # eval: rounded latents
    cae.eval()
    out = cae(x)
    torch.testing.assert_close(out["y_hat"], torch.round(y))


def test_gradients_reach_every_parameter():
    cae = tiny()
    x = torch.rand(1, 1, 64, 64)
    y, z = cae.analysis(x)
    loss = cae.latent_bits(y, z).sum() + cae.decode(y).square().sum() + cae.decode_std(y).sum()
    loss.backward()
    for name, p in cae.named_parameters():
        assert p.grad is not None and p.grad.abs().sum().item() > 0, name
    # and w.r.t. the latents themselves
    y2 = y.detach().requires_grad_()
    z2 = z.detach().requires_grad_()
    gy, gz = torch.autograd.grad(cae.latent_bits(y2, z2).sum(), (y2, z2))
    assert gy.abs().sum() > 0 and gz.abs().sum() > 0


def test_gamma_formula():
    # reference table (8-bit, in units of 1/255): alpha -> gamma
    for alpha, g255 in [(0.0018, 20.0), (0.0067, 10.4), (0.0483, 3.86), (0.18, 2.00)]:
        cae = CompressiveAutoencoder(CAEConfig(N=8, M=12, n_bits=8, alpha=alpha))
        assert cae.gamma * 255 == pytest.approx(g255, rel=5e-3)
    cae = CompressiveAutoencoder(CAEConfig(N=8, M=12, n_bits=12, alpha=0.0067))
    assert cae.gamma == pytest.approx(math.sqrt(1 / (2 * math.log(2) * 0.0067 * 4095**2)))


def test_decode_std_floor_and_range():
    cae = tiny()
    with torch.no_grad():
        s = cae.decode_std(100 * torch.randn(1, 12, 4, 4))
    assert s.min().item() >= np.float32(2e-4) and s.max().item() <= 1 + 2e-4 + 1e-6
    assert s.min().item() < 1e-3 and s.max().item() > 0.99  # saturates both ways


def test_config_widths_and_param_counts():
    def n(m):
        return sum(p.numel() for p in m.parameters())

    mbt = CompressiveAutoencoder(CAEConfig(in_channels=3, N=192, M=320, std_decoder=False))
    assert n(mbt) == 25_504_020  # CompressAI's mbt2018, qualities 5-8
    small = CompressiveAutoencoder(CAEConfig.small())
    assert small.config.M >= 192 and n(small) < 4_000_000
    c = CAEConfig(hyper_channels=[4, 5, 6], entropy_channels=(7, 8))
    assert c.hyper_channels == (4, 5, 6) and CAEConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kw, match", [
    (dict(N=0), "N must be an int >= 1"),
    (dict(in_channels=1.5), "in_channels must be an int >= 1"),
    (dict(n_bits=20), r"CAEConfig.n_bits must be an int in \[1, 16\], got 20; 8 or 12"),
    (dict(n_bits=0), r"CAEConfig.n_bits must be an int in \[1, 16\]"),
    (dict(n_bits=12.0), r"CAEConfig.n_bits must be an int in \[1, 16\], got 12.0"),
    (dict(n_bits=True), r"CAEConfig.n_bits must be an int"),
    (dict(alpha=-1.0), "CAEConfig.alpha must be > 0, got -1.0; the rate-distortion weight"),
    (dict(alpha=0.0), "CAEConfig.alpha must be > 0"),
    (dict(alpha=math.nan), "CAEConfig.alpha must be finite, got nan"),
    (dict(alpha=math.inf), "CAEConfig.alpha must be finite, got inf"),
    (dict(std_decoder=1), "std_decoder"),
    (dict(hyper_channels=(1, 2)), "hyper_channels"),
    (dict(entropy_channels=(1, 0)), "entropy_channels"),
    (dict(context_channels=0), "context_channels"),
])
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        CAEConfig(**kw)


@pytest.mark.parametrize("alpha", ["0.1", True, None])
def test_config_alpha_type(alpha):
    with pytest.raises(TypeError, match="CAEConfig.alpha must be a real number"):
        CAEConfig(alpha=alpha)
    assert CAEConfig(alpha=np.float32(0.5)).alpha == 0.5  # numpy scalars pass, stored as float
    assert type(CAEConfig(n_bits=np.int64(8)).n_bits) is int


def test_model_input_errors():
    cae = tiny(1)
    with pytest.raises(ValueError, match=r"shape \(B, 1, H, W\)"):
        cae(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="multiples of 64"):
        cae.analysis(torch.rand(1, 1, 64, 60))
    x = torch.rand(1, 1, 64, 64)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cae.analysis(x)
    with pytest.raises(TypeError, match="floating-point"):
        cae.analysis(torch.ones(1, 1, 64, 64, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        cae.analysis(np.zeros((1, 1, 64, 64)))
    with pytest.raises(ValueError, match="y must have shape"):
        cae.decode(torch.rand(1, 5, 4, 4))
    with pytest.raises(ValueError, match="do not match"):
        cae.latent_bits(torch.rand(1, 12, 4, 4), torch.rand(1, 8, 2, 1))
    with pytest.raises(ValueError, match="no variance decoder"):
        tiny(std_decoder=False).decode_std(torch.rand(1, 12, 4, 4))
    with pytest.raises(TypeError, match="CAEConfig"):
        CompressiveAutoencoder({"N": 8})


# --------------------------------------------------------------------------------- checkpoints
def test_save_load_roundtrip(tmp_path):
    cae = tiny(3, alpha=0.0483, n_bits=8)
    x = torch.rand(1, 3, 64, 64)
    p = save_cae(cae, tmp_path / "m.pt", note="test", steps=3)
    m2, extra = load_cae(p, with_extra=True)
    assert m2.config == cae.config and extra == {"note": "test", "steps": 3}
    assert not m2.training
    cae.eval()
    with torch.no_grad():
        for f in ("decode", "decode_std"):
            y, z = cae.analysis(x)
            torch.testing.assert_close(getattr(m2, f)(y), getattr(cae, f)(y), rtol=0, atol=0)
        torch.testing.assert_close(m2.latent_bits(y, z), cae.latent_bits(y, z), rtol=0, atol=0)
    # the context mask is rebuilt, not stored; a file that stored it still loads
    assert "context_prediction.mask" not in cae.state_dict()
    payload = torch.load(p, weights_only=True)
    payload["state"]["context_prediction.mask"] = cae.context_prediction.mask.clone()
    torch.save(payload, tmp_path / "old.pt")
    torch.testing.assert_close(load_cae(tmp_path / "old.pt").context_prediction.weight,
                               cae.context_prediction.weight)
    # float16 storage, float32 model
    ph = save_cae(cae, tmp_path / "h.pt", half=True)
    assert ph.stat().st_size < 0.6 * p.stat().st_size
    mh = load_cae(ph)
    assert all(t.dtype == torch.float32 for t in mh.parameters())
    with torch.no_grad():
        y, _ = cae.analysis(x)
        torch.testing.assert_close(mh.decode(y), cae.decode(y), rtol=0, atol=5e-3)
    # the constant buffers (1e-9 likelihood floors, GDN pedestal 2**-36) are not halved: in
    # float16 they would round to 0 and latent_bits could be inf
    stored = torch.load(ph, weights_only=True)["state"]
    params = {n for n, _ in cae.named_parameters()}
    buffers = {k: v for k, v in stored.items() if k not in params}
    assert buffers and all(v.dtype == torch.float32 for v in buffers.values())
    # a file whose buffers were stored in float16 (older save_cae) gets them back exactly
    stored_old = torch.load(ph, weights_only=True)
    stored_old["state"] = {k: v.half() if v.is_floating_point() else v
                           for k, v in stored_old["state"].items()}
    assert float(stored_old["state"]["gaussian_conditional.likelihood_lower_bound.bound"]) == 0
    torch.save(stored_old, tmp_path / "old_half.pt")
    mo = load_cae(tmp_path / "old_half.pt")
    for k, v in cae.state_dict().items():
        if k not in params:
            torch.testing.assert_close(mo.state_dict()[k], v, rtol=0, atol=0)


def test_shipped_weights_have_positive_likelihood_floors():
    from inverse.vble import SHIPPED_MODELS

    assert SHIPPED_MODELS == ("xlow", "low", "high", "xhigh")
    for bitrate in SHIPPED_MODELS:
        cae = default_cae(bitrate)
        assert float(cae.gaussian_conditional.likelihood_lower_bound.bound) == pytest.approx(1e-9)
        assert float(cae.entropy_bottleneck.likelihood_lower_bound.bound) == pytest.approx(1e-9)
        y = torch.full((1, cae.config.M, 4, 4), 60.0)  # far in the tails: floors are hit
        z = torch.full((1, cae.config.N, 1, 1), -40.0)
        assert torch.isfinite(cae.latent_bits(y, z)).all()


def test_checkpoint_errors(tmp_path):
    cae = tiny()
    with pytest.raises(FileNotFoundError, match="no CAE checkpoint"):
        load_cae(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="corrupted"):
        load_cae(bad)
    good = save_cae(cae, tmp_path / "good.pt")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupted"):
        load_cae(trunc)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ValueError, match="not a CAE checkpoint"):
        load_cae(other)
    payload = torch.load(good, weights_only=True)
    torch.save({**payload, "format_version": 99}, other)
    with pytest.raises(ValueError, match="format version 99"):
        load_cae(other)
    torch.save({**payload, "config": {**payload["config"], "depth": 3}}, other)
    with pytest.raises(ValueError, match="unknown to this version"):
        load_cae(other)
    torch.save({**payload, "config": {**payload["config"], "M": 16}}, other)
    with pytest.raises(ValueError, match="the weights do not fit the model"):
        load_cae(other)
    torch.save({**payload, "library_version": "0.0.1"}, other)
    with pytest.warns(UserWarning, match="written by sciml-inverse 0.0.1"):
        load_cae(other)
    with pytest.raises(TypeError, match="CompressiveAutoencoder"):
        save_cae(torch.nn.Linear(1, 1), tmp_path / "x.pt")


def test_default_cae_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="bitrate must be one of"):
        default_cae("medium")
    monkeypatch.setattr(ckpt_mod, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="shipped CAE weights"):
        default_cae("low")
    save_cae(tiny(), tmp_path / "cae_high.pt")
    assert default_cae("high").config == tiny().config


# --------------------------------------------------------------------------------------- CompressAI
@pytest.fixture(scope="module")
def golden():
    if not GOLDEN.is_file():
        pytest.fail(f"{GOLDEN} is missing; run scripts/make_compressai_golden.py")
    g = torch.load(GOLDEN, weights_only=True)
    g["x"] = g["x_uint8"].float() / 255
    return g


def _golden_model(golden) -> CompressiveAutoencoder:
    cae = CompressiveAutoencoder(CAEConfig(in_channels=3, N=golden["N"], M=golden["M"],
                                           n_bits=8, std_decoder=False))
    cae.load_compressai_state_dict(golden["state_dict"])
    return cae.eval()


def test_compressai_golden_eval_forward(golden):
    """Eval-mode forward (rounded latents) equals CompressAI's ``model.eval()(x)``."""
    cae = _golden_model(golden)
    with torch.no_grad():
        out = cae(golden["x"])
    torch.testing.assert_close(out["x_hat"], golden["x_hat"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["likelihoods"]["y"], golden["likelihoods_y"],
                               rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(out["likelihoods"]["z"], golden["likelihoods_z"],
                               rtol=1e-5, atol=1e-9)
    bits = -(torch.log2(out["likelihoods"]["y"]).sum((1, 2, 3))
             + torch.log2(out["likelihoods"]["z"]).sum((1, 2, 3)))
    torch.testing.assert_close(bits, golden["bits"], rtol=1e-5, atol=1e-4)
    # the golden likelihoods are not trivial: a spread of values, several bins used
    assert golden["likelihoods_y"].min() < 0.1 and golden["likelihoods_y"].max() > 0.5
    assert out["y_hat"].abs().max() >= 2


def test_compressai_golden_continuous_bits(golden):
    """``latent_bits`` at continuous latents equals CompressAI's ``_likelihood`` calls."""
    cae = _golden_model(golden)
    with torch.no_grad():
        y, z = cae.analysis(golden["x"])
        torch.testing.assert_close(y, golden["y"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(z, golden["z"], rtol=1e-5, atol=1e-5)
        lik = cae.likelihoods(golden["y"], golden["z"])
        torch.testing.assert_close(lik["y"], golden["cont_likelihoods_y"], rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(lik["z"], golden["cont_likelihoods_z"], rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(cae.latent_bits(golden["y"], golden["z"]),
                                   golden["cont_bits"], rtol=1e-5, atol=1e-4)


def test_compressai_golden_entropy_models(golden):
    cae = _golden_model(golden)
    with torch.no_grad():
        v = golden["eb_values"]  # (N, 1, n)
        ours = cae.entropy_bottleneck._likelihood_flat(v)
        torch.testing.assert_close(ours, golden["eb_likelihoods"], rtol=1e-4, atol=1e-7)
        gl = gaussian_likelihood(golden["gc_inputs"], golden["gc_scales"], golden["gc_means"],
                                 likelihood_bound=0.0)
        torch.testing.assert_close(gl, golden["gc_likelihoods"], rtol=1e-5, atol=1e-9)


def test_cae_from_compressai(golden, tmp_path):
    cae = cae_from_compressai(golden["state_dict"], alpha=0.0067)
    assert (cae.config.in_channels, cae.config.N, cae.config.M) == (3, golden["N"], golden["M"])
    assert cae.config.resolved_hyper_channels == (6, 9, 12)  # mbt2018 widths for M = 6
    assert cae.config.resolved_context_channels == 12
    assert cae.config.resolved_entropy_channels == (20, 16)
    p = tmp_path / "ckpt.pth.tar"
    torch.save({"state_dict": {"module." + k: v for k, v in golden["state_dict"].items()}}, p)
    cae2 = cae_from_compressai(p, alpha=0.0067)
    with torch.no_grad():
        torch.testing.assert_close(cae2(golden["x"])["x_hat"], golden["x_hat"],
                                   rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a CompressAI mbt2018"):
        cae_from_compressai({"g_a.0.weight": torch.zeros(1)}, alpha=0.0067)
    with pytest.raises(FileNotFoundError, match="no CompressAI checkpoint"):
        cae_from_compressai(tmp_path / "none.pth", alpha=0.0067)
    wrong = CompressiveAutoencoder(CAEConfig(in_channels=3, N=4, M=12, std_decoder=False))
    with pytest.raises(ValueError, match="does not fit this CAE"):
        wrong.load_compressai_state_dict(golden["state_dict"])


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CAEConfig().M = 3  # type: ignore[misc]
