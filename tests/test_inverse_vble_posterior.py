"""MAP-z / VBLE-z / VBLE-xz posteriors of ``inverse.vble._posterior`` with tiny random CAEs."""

from __future__ import annotations

import math

import pytest
import torch

from inverse._noise import GaussianNoise, PoissonGaussianNoise
from inverse.vble import SHIPPED_MODELS
from inverse.vble._cae import CAEConfig, CompressiveAutoencoder, crop, pad_to_multiple
from inverse.vble._posterior import (
    A_BOUNDS,
    B_BOUNDS,
    VBLEOptions,
    _sample,
    _stalled,
    _Variational,
    bounded_exp,
    initial_estimate,
    kl_x_term,
    uniform_entropy,
    vble_restore,
)
from operators import Convolution, Decimation, Identity, Mask

SHAPE = (1, 40, 36)  # not a multiple of 64: exercises padding and cropping


@pytest.fixture(scope="module")
def cae() -> CompressiveAutoencoder:
    torch.manual_seed(0)
    return CompressiveAutoencoder(CAEConfig(N=8, M=12)).eval()


@pytest.fixture(scope="module")
def toy_rate_cae() -> CompressiveAutoencoder:
    """A CAE whose rate grows with the latent magnitude: bias-free analysis transform (so
    g_a(0) = 0) scaled to O(1) latents, and p(y | z) a fixed N(0, 1) convolved with U(-1/2, 1/2)
    (zero weights in the last entropy-parameter layer)."""
    torch.manual_seed(3)
    m = CompressiveAutoencoder(CAEConfig(N=8, M=12)).eval()
    with torch.no_grad():
        for layer in m.g_a.modules():
            if isinstance(layer, torch.nn.Conv2d):
                layer.bias.zero_()
        m.g_a[-1].weight.mul_(100)
        last = m.entropy_parameters[-1]
        last.weight.zero_()
        last.bias[:12] = 1.0  # scales
        last.bias[12:] = 0.0  # means
    return m


def _blur_problem(seed: int = 0, batch: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = 0.3 + 0.4 * torch.rand(batch, *SHAPE, generator=g)
    op = Convolution(torch.ones(3, 3) / 9, SHAPE)
    y = op(x) + 0.02 * torch.randn(batch, *SHAPE, generator=g)
    return x, op, y


def test_loss_finite_and_decreasing(cae):
    _, op, y = _blur_problem()
    for method in ("map_z", "vble_z", "vble_xz"):
        res = vble_restore(y, op, GaussianNoise(0.02), cae,
                           VBLEOptions(method=method, steps=30, n_samples=4))
        loss = torch.tensor(res.history["loss"])
        assert torch.isfinite(loss).all()
        assert len(loss) == 30
        assert float(loss[-5:].mean()) < float(loss[:5].mean()), method
        for key in ("data", "kl_z", "kl_x", "bpp"):
            assert len(res.history[key]) == 30
        # loss = data + lam * (kl_z + kl_x), recorded consistently
        torch.testing.assert_close(
            loss, torch.tensor(res.history["data"]) + torch.tensor(res.history["kl_z"])
            + torch.tensor(res.history["kl_x"]), rtol=1e-5, atol=1e-5)


def test_bounds_respected_with_huge_learning_rate(cae):
    _, op, y = _blur_problem()
    res = vble_restore(y, op, GaussianNoise(0.02), cae,
                       VBLEOptions(method="vble_xz", steps=25, lr=1e2, n_samples=2))
    p = res.params
    for name in ("a_y", "a_z"):
        assert float(p[name].min()) >= A_BOUNDS[0] * (1 - 1e-5)
        assert float(p[name].max()) <= A_BOUNDS[1] * (1 + 1e-5)
    assert float(p["b"].min()) >= B_BOUNDS[0] * (1 - 1e-5)
    assert float(p["b"].max()) <= B_BOUNDS[1] * (1 + 1e-5)
    # the bounds were actually reached (the test would not see a missing clamp otherwise)
    reached = [bool(torch.isclose(p[n], torch.tensor(v), rtol=1e-4).any())
               for n, v in (("a_y", A_BOUNDS[0]), ("a_y", A_BOUNDS[1]), ("b", B_BOUNDS[0]),
                            ("b", B_BOUNDS[1]))]
    assert sum(reached) >= 2
    assert all(math.isfinite(v) for v in res.history["loss"])
    with pytest.raises(RuntimeError, match="optimization diverged"):
        vble_restore(y, op, GaussianNoise(0.02), cae,
                     VBLEOptions(method="vble_xz", steps=25, lr=1e6, n_samples=2))


def test_bounded_exp_gradient_passes_back_inside():
    lo, hi = 0.5, 2.0
    v = torch.log(torch.tensor([0.25, 1.0, 4.0, 0.25, 4.0])).requires_grad_()
    out = bounded_exp(v, (lo, hi))
    torch.testing.assert_close(out.detach(), torch.tensor([0.5, 1.0, 2.0, 0.5, 2.0]))
    # gradient of sum(w * out): w < 0 on a value below lo means descent increases it (passes)
    w = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0])
    (out * w).sum().backward()
    g = v.grad
    assert g[0] == 0 and g[2] == 0  # outside, pointing further out: blocked
    assert g[1] == pytest.approx(1.0)  # inside: d exp(v) / dv = exp(v) = 1
    assert g[3] < 0 and g[4] > 0  # outside, pointing back in: passes


def test_kl_x_closed_form():
    b = torch.ones(2, 1, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(kl_x_term(b), torch.zeros(2, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    b = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64) * 2 + 0.05
    sigma = torch.rand(2, 1, 5, 5, generator=g, dtype=torch.float64) + 0.1
    mean = torch.randn(2, 1, 5, 5, generator=g, dtype=torch.float64)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mean, b * sigma),
                                           torch.distributions.Normal(mean, sigma))
    torch.testing.assert_close(kl_x_term(b), kl.sum(dim=(1, 2, 3)))
    assert bool((kl_x_term(b) > 0).all())


def test_uniform_entropy_is_sum_log_width():
    g = torch.Generator().manual_seed(1)
    a1 = torch.rand(3, 4, 2, 2, generator=g, dtype=torch.float64) + 0.01
    a2 = torch.rand(3, 2, 1, 1, generator=g, dtype=torch.float64) + 0.01
    ent = torch.distributions.Uniform(-a1 / 2, a1 / 2).entropy().sum(dim=(1, 2, 3)) + \
        torch.distributions.Uniform(-a2 / 2, a2 / 2).entropy().sum(dim=(1, 2, 3))
    torch.testing.assert_close(uniform_entropy(a1, a2), ent)


def test_loss_terms_match_their_definition(cae):
    """KL_z = (bits ln 2 - sum log a) / N, KL_x = sum(b^2 - 1 - 2 log b) / (2N), data = nll / N,
    recomputed by hand from the same random draws."""
    _, op, y = _blur_problem(seed=4, batch=2)
    noise = PoissonGaussianNoise(1e-4, 1e-3)
    opt = VBLEOptions(method="vble_xz", mc_samples=3, lam=0.7)
    st = _Variational(y, op, noise, cae, opt, initial_estimate(y, op))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        st.log_a_y.uniform_(-2, 1)
        st.log_a_z.uniform_(-2, 1)
        st.log_b.uniform_(-1, 0.5)
        terms = st.terms(torch.Generator().manual_seed(7))
        # by hand, the same draws
        g.manual_seed(7)
        a_y, a_z, b = st.log_a_y.exp(), st.log_a_z.exp(), st.log_b.exp()
        k, bsz = 3, 2
        u = torch.rand((k * bsz, *st.y_bar.shape[1:]), generator=g)
        v = torch.rand((k * bsz, *st.z_bar.shape[1:]), generator=g)
        y_t = st.y_bar.repeat(k, 1, 1, 1) + a_y.repeat(k, 1, 1, 1) * (u - 0.5)
        z_t = st.z_bar.repeat(k, 1, 1, 1) + a_z.repeat(k, 1, 1, 1) * (v - 0.5)
        mean = crop(cae.decode(y_t), SHAPE[-2:])
        sig = crop(cae.decode_std(y_t), SHAPE[-2:])
        eps = torch.randn(mean.shape, generator=g)
        x = mean + b.repeat(k, 1, 1, 1) * sig * eps
        data = noise.nll(op(x), y.repeat(k, 1, 1, 1)).reshape(k, bsz).mean(0)
        bits = cae.latent_bits(y_t, z_t).reshape(k, bsz).mean(0)
        n = math.prod(SHAPE)
        ent = torch.log(a_y).flatten(1).sum(1) + torch.log(a_z).flatten(1).sum(1)
        kl_z = (bits * math.log(2) - ent) / n
        kl_x = 0.5 * (b ** 2 - 1 - 2 * torch.log(b)).flatten(1).sum(1) / n
    torch.testing.assert_close(terms["data"], data / n, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["kl_z"], kl_z, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["kl_x"], kl_x, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(terms["loss"], data / n + 0.7 * (kl_z + kl_x), rtol=1e-5,
                               atol=1e-6)


def test_rate_scale_one_is_the_identity(cae):
    x, op, y = _blur_problem()
    x0 = initial_estimate(y, op)
    res = vble_restore(y, op, GaussianNoise(0.02), cae,
                       VBLEOptions(method="map_z", steps=0, rate_scale=1.0))
    with torch.no_grad():
        xp, size = pad_to_multiple(x0, 64)
        direct = crop(cae.decode(cae.analysis(xp)[0]), size)
    torch.testing.assert_close(res.x_zmmse, direct)
    # s != 1: encode s * x0, decode / s
    res_s = vble_restore(y, op, GaussianNoise(0.02), cae,
                         VBLEOptions(method="map_z", steps=0, rate_scale=0.5))
    with torch.no_grad():
        direct_s = crop(cae.decode(cae.analysis(0.5 * xp)[0]), size) / 0.5
    torch.testing.assert_close(res_s.x_zmmse, direct_s)


def test_smaller_rate_scale_lowers_the_bitrate(toy_rate_cae):
    _, op, y = _blur_problem(seed=2)
    bpp = []
    for s in (1.0, 0.5, 0.25):
        res = vble_restore(y, op, GaussianNoise(0.02), toy_rate_cae,
                           VBLEOptions(method="map_z", steps=1, rate_scale=s))
        bpp.append(res.history["bpp"][0])  # bits of the encoded initial estimate
    assert bpp[0] > bpp[1] > bpp[2], bpp


def test_initial_widths(cae):
    _, op, y = _blur_problem()
    res = vble_restore(y, op, GaussianNoise(0.02), cae,
                       VBLEOptions(method="vble_xz", steps=0, n_samples=2, a_init=0.25,
                                   b_init=0.5))
    torch.testing.assert_close(res.params["a_y"], torch.full_like(res.params["a_y"], 0.25))
    torch.testing.assert_close(res.params["a_z"], torch.full_like(res.params["a_z"], 0.25))
    torch.testing.assert_close(res.params["b"], torch.full((1, *SHAPE), 0.5))
    assert res.history["loss"] == []


def test_std_positive_and_map_has_zero_std(cae):
    _, op, y = _blur_problem()
    for method in ("vble_z", "vble_xz"):
        res = vble_restore(y, op, GaussianNoise(0.02), cae,
                           VBLEOptions(method=method, steps=5, n_samples=6, return_samples=4))
        assert bool((res.x_std > 0).all()), method
        assert res.samples.shape == (4, 1, *SHAPE)
        # x_mmse and x_std are the mean and unbiased std of the samples (here all of them kept)
    res = vble_restore(y, op, GaussianNoise(0.02), cae,
                       VBLEOptions(method="vble_xz", steps=3, n_samples=5, return_samples=5,
                                   sample_batch=2))
    torch.testing.assert_close(res.x_mmse, res.samples.mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res.x_std, res.samples.std(0), rtol=1e-4, atol=1e-6)
    res = vble_restore(y, op, GaussianNoise(0.02), cae,
                       VBLEOptions(method="map_z", steps=5, return_samples=2))
    assert bool((res.x_std == 0).all())
    torch.testing.assert_close(res.x_mmse, res.x_zmmse)
    torch.testing.assert_close(res.samples[0], res.samples[1])


def test_xz_sample_std_is_b_sigma_when_latent_noise_vanishes(cae):
    """With a -> its lower bound, VBLE-xz samples are N(D(y)/s, (b sigma(y) / s)^2) per pixel:
    the sample std converges to b * sigma_theta(y_bar) / s."""
    _, op, y = _blur_problem(seed=6)
    opt = VBLEOptions(method="vble_xz", n_samples=400, sample_batch=50, rate_scale=0.5)
    st = _Variational(y, op, GaussianNoise(0.02), cae, opt, initial_estimate(y, op))
    with torch.no_grad():
        st.log_a_y.fill_(math.log(A_BOUNDS[0]))
        st.log_a_z.fill_(math.log(A_BOUNDS[0]))
        st.log_b.uniform_(-1.0, 0.5)
        mmse, std, zmmse, _ = _sample(st, opt, torch.Generator().manual_seed(0))
        exact = st.log_b.exp() * crop(cae.decode_std(st.y_bar), SHAPE[-2:]) / 0.5
    ratio = std / exact
    # chi distribution with 399 dof: relative sd of the std estimate ~ 1/sqrt(2*399) = 0.035
    assert float(ratio.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(ratio.std()) == pytest.approx(1 / math.sqrt(2 * 399), rel=0.2)
    z = (mmse - zmmse) / (exact / math.sqrt(400))
    assert float(z.std()) == pytest.approx(1.0, abs=0.1)


def test_reproducible_with_seed(cae):
    _, op, y = _blur_problem()
    o = VBLEOptions(method="vble_xz", steps=5, n_samples=4, seed=3)
    r1 = vble_restore(y, op, GaussianNoise(0.02), cae, o)
    r2 = vble_restore(y, op, GaussianNoise(0.02), cae, o)
    torch.testing.assert_close(r1.x_mmse, r2.x_mmse, rtol=0, atol=0)
    torch.testing.assert_close(r1.x_std, r2.x_std, rtol=0, atol=0)
    r3 = vble_restore(y, op, GaussianNoise(0.02), cae,
                      VBLEOptions(method="vble_xz", steps=5, n_samples=4, seed=4))
    assert not torch.equal(r1.x_std, r3.x_std)


def test_batch_elements_are_independent(cae):
    """Per-image gradient clipping: MAP-z on a batch equals MAP-z on each image."""
    _, op, y = _blur_problem(seed=8, batch=2)
    o = VBLEOptions(method="map_z", steps=15, grad_clip=0.5)  # the clip is active
    both = vble_restore(y, op, GaussianNoise(0.02), cae, o)
    for i in range(2):
        one = vble_restore(y[i:i + 1], op, GaussianNoise(0.02), cae, o)
        torch.testing.assert_close(both.x_mmse[i:i + 1], one.x_mmse, rtol=1e-4, atol=1e-5)


def test_cae_left_unchanged(cae):
    _, op, y = _blur_problem()
    before = {k: v.clone() for k, v in cae.state_dict().items()}
    flags = [p.requires_grad for p in cae.parameters()]
    vble_restore(y, op, GaussianNoise(0.02), cae, VBLEOptions(steps=3, n_samples=2))
    for k, v in cae.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert [p.requires_grad for p in cae.parameters()] == flags


def test_initial_estimate_fills_masked_and_decimated_pixels():
    x = torch.full((1, *SHAPE), 0.3)
    m = torch.ones(SHAPE)
    m[:, 10:20, 5:15] = 0
    op = Mask(m, SHAPE)
    x0 = initial_estimate(op(x), op)
    torch.testing.assert_close(x0, x)  # the hole filled by the local mean
    dec = Decimation(2, SHAPE)
    torch.testing.assert_close(initial_estimate(dec(x), dec), x)
    # blur + decimation: the Tikhonov solution (A^T A + rho I)^{-1} A^T y
    blur = Convolution(torch.ones(3, 3) / 9, SHAPE)
    a = dec @ blur
    yy = a(x)
    yy = yy + 0.05 * torch.randn(yy.shape, generator=torch.Generator().manual_seed(0))
    x0 = initial_estimate(yy, a, rho=1e-2)
    m = yy.mean()
    torch.testing.assert_close(x0, m + a.solve_normal(a.adjoint(yy - m), 1e-2))
    # identity-shaped operators start from y
    torch.testing.assert_close(initial_estimate(yy.new_ones(1, *SHAPE), blur),
                               torch.ones(1, *SHAPE))


def test_inpainting_and_poisson_gaussian_decimation_run(cae):
    g = torch.Generator().manual_seed(9)
    x = 0.2 + 0.5 * torch.rand(1, *SHAPE, generator=g)
    m = (torch.rand(SHAPE, generator=g) > 0.3).float()
    op = Mask(m, SHAPE)
    res = vble_restore(op(x), op, GaussianNoise(0.01), cae,
                       VBLEOptions(method="vble_xz", steps=5, n_samples=3))
    assert res.x_mmse.shape == (1, *SHAPE) and torch.isfinite(res.x_mmse).all()
    a = Decimation(2, SHAPE) @ Convolution(torch.ones(3, 3) / 9, SHAPE)
    noise = PoissonGaussianNoise(1e-5, 1e-4)
    y = noise.sample(a(x), generator=g)
    res = vble_restore(y, a, noise, cae, VBLEOptions(method="vble_xz", steps=5, n_samples=3))
    assert res.x_std.shape == (1, *SHAPE) and bool((res.x_std > 0).all())
    assert res.seconds >= res.seconds_sampling > 0


def test_bad_inputs(cae):
    _, op, y = _blur_problem()
    noise = GaussianNoise(0.02)
    rgb = Identity((3, 40, 36))
    with pytest.raises(ValueError, match=r"3 band\(s\).*CAE expects 1"):
        vble_restore(torch.zeros(1, 3, 40, 36), rgb, noise, cae)
    with pytest.raises(ValueError, match="y contains NaN"):
        vble_restore(y + float("nan"), op, noise, cae)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        vble_restore(y, op, GaussianNoise(-0.1), cae)
    with pytest.raises(ValueError, match=r"y must have shape \(B, \*op.out_shape\)"):
        vble_restore(y[..., :30], op, noise, cae)
    with pytest.raises(ValueError, match=r"op.in_shape must be the image shape \(C, H, W\)"):
        vble_restore(torch.zeros(1, 40, 36), Identity((40, 36)), noise, cae)
    with pytest.raises(ValueError, match="x_init must be a tensor of shape"):
        vble_restore(y, op, noise, cae, x_init=torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="x_init contains NaN"):
        vble_restore(y, op, noise, cae, x_init=torch.full((1, *SHAPE), float("nan")))
    with pytest.raises(TypeError, match="op must be an operators.LinearOperator"):
        vble_restore(y, "blur", noise, cae)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="noise must be a NoiseModel"):
        vble_restore(y, op, 0.02, cae)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cae must be a CompressiveAutoencoder"):
        vble_restore(y, op, noise, torch.nn.Identity())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options must be a VBLEOptions"):
        vble_restore(y, op, noise, cae, {"steps": 3})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="y must be a floating-point"):
        vble_restore(y.long(), op, noise, cae)
    no_std = CompressiveAutoencoder(CAEConfig(N=8, M=12, std_decoder=False))
    with pytest.raises(ValueError, match="needs a CAE with a variance decoder"):
        vble_restore(y, op, noise, no_std, VBLEOptions(method="vble_xz"))


def test_bad_options():
    with pytest.raises(ValueError, match="method must be one of"):
        VBLEOptions(method="vble")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="steps must be an int >= 0"):
        VBLEOptions(steps=-1)
    with pytest.raises(ValueError, match="VBLEOptions.lr must be > 0, got 0.0"):
        VBLEOptions(lr=0.0)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        VBLEOptions(lam=-1.0)
    with pytest.raises(ValueError, match="rate_scale must be > 0"):
        VBLEOptions(rate_scale=0.0)
    with pytest.raises(ValueError, match="n_samples must be an int >= 2"):
        VBLEOptions(n_samples=1)
    VBLEOptions(method="map_z", n_samples=1)  # a point estimate needs no spread
    with pytest.raises(ValueError, match="return_samples .* cannot exceed n_samples"):
        VBLEOptions(n_samples=4, return_samples=5)
    with pytest.raises(ValueError, match="grad_clip must be finite, got inf"):
        VBLEOptions(grad_clip=float("inf"))
    with pytest.raises(ValueError, match="mc_samples must be an int >= 1"):
        VBLEOptions(mc_samples=0)
    with pytest.raises(ValueError, match=r"a_init must lie in its bounds \[1.5e-05, 20.0\]"):
        VBLEOptions(a_init=100.0)
    with pytest.raises(ValueError, match=r"b_init must lie in its bounds"):
        VBLEOptions(b_init=1e-6)
    with pytest.raises(TypeError, match="VBLEOptions.lr must be a real number, got str"):
        VBLEOptions(lr="0.1")  # type: ignore[arg-type]


def test_satellite_eval_example_quick(tmp_path):
    """examples/vble_satellite_eval.py --quick runs end to end, writes the documented keys,
    resumes, and merges runs over different settings."""
    import json
    import runpy
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = root.parent / "shared" / "data" / "satellite"
    if not (data / "eval" / "rotterdam3_pan_0p5m.tif").is_file():
        pytest.skip(f"the satellite data folder {data} is absent (see ../shared/data/README.md)")
    mod = runpy.run_path(str(root / "examples" / "vble_satellite_eval.py"), run_name="eval")
    names = ["mtf0.10_d1_low", "mtf0.25_d2_high"]
    parts = []
    for name in names:
        out = tmp_path / f"{name}.json"
        state = mod["main"](["--quick", "--tiny-random-cae", "--settings", name, "--json",
                             str(out)])
        saved = json.loads(out.read_text())
        assert state["results"] == saved["results"]
        assert set(saved["results"]) == {name}
        parts.append(out)
    merged_path = tmp_path / "merged.json"
    rule_path, figs = tmp_path / "rule.json", tmp_path / "figs"
    merged = mod["main"](["--quick", "--json", str(merged_path), "--merge", *map(str, parts),
                          "--write-auto-rule", str(rule_path), "--figures", str(figs)])
    from inverse.vble import load_auto_rule

    assert {e["setting"] for e in load_auto_rule(rule_path).entries} == set(names)
    assert (figs / "calibration.png").is_file() and (figs / "sparsification.png").is_file()
    saved = json.loads(merged_path.read_text())
    assert set(saved["results"]) == set(names)
    for setting in saved["results"].values():
        assert set(setting) == {"map_z", "vble_z", "vble_xz", "cli_default", "tikhonov", "tv"}
        for method, r in setting.items():
            for key in ("psnr", "ssim", "coverage_2sigma", "zscore_std", "seconds"):
                assert key in r
            assert math.isfinite(r["psnr"]) and r["seconds"] >= 0
            if method in ("vble_z", "vble_xz", "cli_default"):
                assert 0 <= r["coverage_2sigma"] <= 1 and r["zscore_std"] > 0
            else:
                assert r["coverage_2sigma"] is None
    assert merged["tuning"]["mtf0.10_d1_low"]["model"] in SHIPPED_MODELS
    assert set(saved["decoder_fit_ceiling"]) == {f"crop0_{n}" for n in SHIPPED_MODELS}
    assert "mtf0.25_d2_high" in saved["table_rst"]
    assert not list(tmp_path.glob("*.tmp"))
    # resuming recomputes nothing: the records are read back unchanged
    first = json.loads(parts[0].read_text())
    again = mod["main"](["--quick", "--tiny-random-cae", "--settings", names[0], "--json",
                         str(parts[0])])
    assert again["records"] == first["records"]


# ------------------------------------------------------------ batches and the stopping rule
def _xz_cae() -> CompressiveAutoencoder:
    torch.manual_seed(0)
    return CompressiveAutoencoder(CAEConfig(N=8, M=12, std_decoder=True)).eval().double()


@pytest.mark.parametrize("conditional", ["exact", "variational"])
def test_a_batch_gives_the_results_of_its_images_restored_one_by_one(conditional):
    """Each image of a batch has its own random streams and stops on its own (float64, tight CG:
    the batched and one-by-one results agree to rounding)."""
    from inverse.satellite import PleiadesDegradation

    cae = _xz_cae()
    deg = PleiadesDegradation(mtf=0.2, noise_a=1e-4, noise_b=1e-3)
    op = deg.operator((1, 32, 32)).double()
    gen = torch.Generator().manual_seed(1)
    y = (0.3 + 0.2 * torch.rand(3, 1, 32, 32, generator=gen, dtype=torch.float64))
    y[1] = y[1] * 0.5  # different images, different losses
    opts = VBLEOptions(steps=30, n_samples=5, sample_batch=3, conditional=conditional,
                       cg_rtol=1e-12, cg_max_iter=2000, stop_rtol=0.3, stop_window=4,
                       return_samples=2)
    batched = vble_restore(y, op, deg.noise_model(), cae, opts)
    for b in range(3):
        one = vble_restore(y[b:b + 1], op, deg.noise_model(), cae, opts)
        assert one.n_iter == [batched.n_iter[b]]
        torch.testing.assert_close(one.x_mmse[0], batched.x_mmse[b], rtol=0, atol=1e-9)
        torch.testing.assert_close(one.x_std[0], batched.x_std[b], rtol=0, atol=1e-9)
        torch.testing.assert_close(one.samples[:, 0], batched.samples[:, b], rtol=0, atol=1e-9)
    assert min(batched.n_iter) < opts.steps  # the rule stopped some image early


def test_stopping_rule_on_a_linear_loss_stops_at_the_closed_form_iteration():
    """For a loss decreasing linearly, the window decrease is W * slope and the decrease since
    the first window (t - W) * slope: the rule stops at the first window end t >= W (1 + 1/rtol).
    """
    w, rtol = 5, 0.06
    losses = [torch.tensor([10.0 - 0.01 * t, 3.0]) for t in range(25 * w)]
    first = None
    for t in range(1, len(losses) + 1):
        s = _stalled(losses[:t], w, rtol)
        assert (s is None) == (t < 2 * w or t % w != 0)
        if s is not None and first is None and bool(s[0]):
            first = t
        if s is not None:
            assert bool(s[1])  # a flat loss has stalled at once
    assert first == w * math.ceil(1 + 1 / rtol) == 90
    assert _stalled(losses[: 4 * w], w, 0.0) is None  # rtol 0: the rule is off


def test_stopping_early_equals_running_that_many_iterations(cae):
    """The rule only truncates the optimization: same random streams, same result."""
    _, op, y = _blur_problem(seed=3)
    noise = GaussianNoise(0.02)
    opts = VBLEOptions(method="vble_z", steps=200, n_samples=4, stop_rtol=0.2, stop_window=5)
    res = vble_restore(y, op, noise, cae, opts)
    k = res.n_iter[0]
    assert 10 <= k < 200 and k % 5 == 0 and len(res.history["loss"]) == k
    ref = vble_restore(y, op, noise, cae, VBLEOptions(method="vble_z", steps=k, n_samples=4))
    assert ref.n_iter == [k]
    torch.testing.assert_close(res.x_mmse, ref.x_mmse, rtol=0, atol=0)
    torch.testing.assert_close(res.x_std, ref.x_std, rtol=0, atol=0)
    with pytest.warns(DeprecationWarning, match=r"VBLEResult.iterations is deprecated"):
        assert res.iterations == res.n_iter  # the former name still reads the count


@pytest.mark.parametrize(("kw", "match"), [(dict(stop_rtol=-0.1), "stop_rtol"),
                                           (dict(stop_window=0), "stop_window")])
def test_stopping_rule_options_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        VBLEOptions(**kw)


def test_channels_last_is_the_same_arithmetic_and_leaves_the_cae_as_it_was():
    """The channels-last run equals the default-format run (float64 and tight CG solves: to
    rounding; with a loose CG tolerance a rounding difference can end a solve one iteration
    earlier), and the CAE's parameters come back in their own memory format and values."""
    cae = _xz_cae()
    before = {k: (v.clone(), v.stride()) for k, v in cae.state_dict().items()}
    x, op, y = _blur_problem(seed=4)
    op, y = op.double(), y.double()
    noise = GaussianNoise(0.02)
    runs = [vble_restore(y, op, noise, cae, VBLEOptions(steps=20, n_samples=6,
                                                        conditional="exact", cg_rtol=1e-12,
                                                        cg_max_iter=2000, channels_last=cl))
            for cl in (False, True)]
    torch.testing.assert_close(runs[0].x_mmse, runs[1].x_mmse, rtol=0, atol=1e-8)
    torch.testing.assert_close(runs[0].x_std, runs[1].x_std, rtol=0, atol=1e-8)
    for k, v in cae.state_dict().items():
        assert v.stride() == before[k][1], k
        torch.testing.assert_close(v, before[k][0], rtol=0, atol=0)


def test_overlapping_restorations_share_the_frozen_cae_and_equal_serial_ones():
    """Concurrent vble_restore calls on one CAE (dask threads restoring tiles): a call that
    ends inside another's run leaves the CAE frozen and channels-last for it (formerly the
    first to finish restored the layout under the others, whose convolutions then rounded
    differently from a serial run); threaded runs equal serial ones bit for bit, and the last
    to leave restores the CAE."""
    import threading

    from inverse.vble._posterior import _frozen

    cae = _xz_cae().float()
    w = next(p for p in cae.parameters() if p.ndim == 4)
    stride, flags = w.stride(), [p.requires_grad for p in cae.parameters()]
    _, op, y = _blur_problem(seed=4)
    noise = GaussianNoise(0.02)
    opts = VBLEOptions(steps=3, n_samples=4, conditional="exact", channels_last=True)
    with _frozen(cae, opts, torch.device("cpu")):
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.requires_grad
        vble_restore(y, op, noise, cae, opts)
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.requires_grad
    assert w.stride() == stride and [p.requires_grad for p in cae.parameters()] == flags
    serial = [vble_restore(y * (1 + 0.1 * k), op, noise, cae, opts).x_mmse for k in range(3)]
    threaded = [None] * 3

    def work(k):
        threaded[k] = vble_restore(y * (1 + 0.1 * k), op, noise, cae, opts).x_mmse

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, threaded, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert w.stride() == stride and [p.requires_grad for p in cae.parameters()] == flags


def test_bf16_decoder_passes_move_the_restoration_much_less_than_its_std():
    """precision='bf16' (float32 on a CPU without native bfloat16) changes only the decoder
    passes of the optimization: the MMSE image moves by far less than the posterior std."""
    torch.manual_seed(0)
    cae = CompressiveAutoencoder(CAEConfig(N=8, M=12, std_decoder=True)).eval()
    _, op, y = _blur_problem(seed=5)
    noise = GaussianNoise(0.02)
    res = {p: vble_restore(y, op, noise, cae, VBLEOptions(steps=40, n_samples=32,
                                                          conditional="exact", precision=p))
           for p in ("fp32", "bf16")}
    assert res["bf16"].x_mmse.dtype == torch.float32 and res["bf16"].x_std.dtype == torch.float32
    shift = (res["bf16"].x_mmse - res["fp32"].x_mmse).pow(2).mean().sqrt()
    assert float(shift) < 0.25 * float(res["fp32"].x_std.mean())
    torch.testing.assert_close(res["bf16"].x_std.mean(), res["fp32"].x_std.mean(), rtol=0.1,
                               atol=0)


@pytest.mark.parametrize(("kw", "err", "match"), [
    (dict(precision="fp16"), ValueError, "no gradient scaler.*bf16"),
    (dict(precision="half"), ValueError, "precision must be one of"),
    (dict(channels_last="yes"), TypeError, "channels_last must be True, False or None"),
    (dict(cg_precondition=1), TypeError, "cg_precondition must be True or False")])
def test_precision_options_are_checked(kw, err, match):
    with pytest.raises(err, match=match):
        VBLEOptions(**kw)


def test_cli_defaults_are_default_options():
    """``restore``'s stopping rule and precision defaults are those of default_options."""
    from inverse.satellite._cli import DEFAULT_PRECISION, DEFAULT_STOP_RTOL
    from inverse.vble import default_options

    d = default_options()
    assert (d.stop_rtol, d.precision) == (DEFAULT_STOP_RTOL, DEFAULT_PRECISION) == (0.05, "auto")


def test_auto_precision_never_picks_float16_for_the_restoration():
    """'auto' on a CUDA device without bfloat16 would be float16 + a gradient scaler in
    training; the restoration loop has no scaler, so it runs float32 there."""
    from inverse.vble._posterior import _decoder_precision
    from sciml_inverse import resolve_precision

    cuda = torch.device("cuda")
    if not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()):
        assert resolve_precision("auto", cuda).name == "fp16"
        assert _decoder_precision("auto", cuda).name == "fp32"
    else:
        assert _decoder_precision("auto", cuda).name == "bf16"
    assert _decoder_precision("fp32", torch.device("cpu")).dtype is None
