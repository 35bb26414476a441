"""The exact Gaussian conditional of VBLE-xz (``VBLEOptions(conditional="exact")``)."""

from __future__ import annotations

import math

import pytest
import torch

from inverse import GaussianNoise, PoissonGaussianNoise
from inverse.vble import (
    CAEConfig,
    CompressiveAutoencoder,
    VBLEOptions,
    decoder_error_rule,
    estimate_decoder_error_scale,
    exact_conditional_sample,
    observation_ratio,
    vble_restore,
)
from inverse.vble._posterior import C2_INFORMATIVE, DECODER_ERROR_RULE
from operators import Convolution, Decimation, Dense


def _dense_problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n, m = 6, 4
    a = torch.randn(m, n, generator=g, dtype=torch.float64)
    op = Dense(a)
    mean = torch.randn(1, n, generator=g, dtype=torch.float64)
    sigma = 0.5 + torch.rand(1, n, generator=g, dtype=torch.float64)
    y = torch.randn(1, m, generator=g, dtype=torch.float64)
    return a, op, mean, sigma, y


def _dense_posterior(a, mean, sigma, noise_var, y):
    prec = a.T @ a / noise_var + torch.diag(1 / sigma[0] ** 2)
    cov = torch.linalg.inv(prec)
    mu = cov @ (a.T @ y[0] / noise_var + mean[0] / sigma[0] ** 2)
    return mu, cov


def test_conditional_mean_is_the_dense_posterior_mean():
    a, op, mean, sigma, y = _dense_problem()
    noise = GaussianNoise(0.3)
    got = exact_conditional_sample(y, op, noise, mean, sigma, rtol=1e-12, max_iter=100)
    mu, _ = _dense_posterior(a, mean, sigma, 0.3 ** 2, y)
    torch.testing.assert_close(got[0], mu, rtol=1e-9, atol=1e-10)


def test_samples_have_the_dense_posterior_covariance():
    a, op, mean, sigma, y = _dense_problem(1)
    noise = GaussianNoise(0.3)
    k = 40_000
    g = torch.Generator().manual_seed(3)
    xs = exact_conditional_sample(y.expand(k, -1), op, noise, mean.expand(k, -1),
                                  sigma.expand(k, -1), generator=g, rtol=1e-12, max_iter=100)
    mu, cov = _dense_posterior(a, mean, sigma, 0.3 ** 2, y)
    emp_mu = xs.mean(0)
    emp_cov = torch.cov(xs.T)
    # standard error of the mean: sqrt(diag(cov)/k); 5 standard errors
    assert torch.all((emp_mu - mu).abs() <= 5 * (cov.diagonal() / k).sqrt())
    torch.testing.assert_close(emp_cov, cov, rtol=0.05, atol=0.03 * cov.diagonal().max().item())
    # a wrong (prior-only) covariance would fail the same test
    with pytest.raises(AssertionError):
        torch.testing.assert_close(emp_cov, torch.diag(sigma[0] ** 2), rtol=0.05,
                                   atol=0.03 * cov.diagonal().max().item())


@pytest.mark.parametrize("c_true", [0.4, 1.0, 3.0])
def test_decoder_error_scale_recovers_a_known_scale(c_true):
    # x = D + c sigma u with D independent of y: the plain moment estimate (gain 1) is unbiased,
    # also below 1 (no floor at sigma_theta any more)
    g = torch.Generator().manual_seed(0)
    shape = (1, 96, 96)
    op = Decimation(2, shape) @ Convolution(torch.ones(3, 3) / 9, shape)
    batch = 4
    mean = torch.rand(batch, *shape, generator=g) * 0.5 + 0.2
    sigma = 0.01 * (1 + torch.rand(batch, *shape, generator=g))
    x = mean + c_true * sigma * torch.randn(batch, *shape, generator=g)
    noise = PoissonGaussianNoise(a=1e-6, b=1e-5)
    y = noise.sample(op(x), generator=g)
    c = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g, gain=1.0)
    assert c.shape == (batch,)
    torch.testing.assert_close(c, torch.full_like(c, c_true), rtol=0.05, atol=0.0)
    # the default: the same estimate times the shipped gain of rho = 1/4
    g2 = torch.Generator().manual_seed(5)
    c1 = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g2, gain=1.0)
    g2 = torch.Generator().manual_seed(5)
    cd = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g2)
    k, _ = decoder_error_rule(0.25)
    torch.testing.assert_close(cd, k * c1)


def test_decoder_error_scale_fallback_without_information():
    g = torch.Generator().manual_seed(0)
    shape = (1, 64, 64)
    op = Convolution(torch.ones(3, 3) / 9, shape)
    mean = torch.rand(2, *shape, generator=g)
    sigma = torch.full_like(mean, 0.05)
    noise = GaussianNoise(1e-3)
    y = noise.sample(op(mean), generator=g)  # x = D exactly: c_hat^2 ~ 0, below the threshold
    c = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g, gain=1.0,
                                     fallback=0.7)
    assert torch.equal(c, torch.full((2,), 0.7))
    # the shipped rule at rho = 1: its fallback
    c = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g)
    assert torch.equal(c, torch.full((2,), decoder_error_rule(1.0)[1]))
    # threshold 0 and a residual above the noise: the estimate itself
    x = mean + 0.5 * sigma * torch.randn(mean.shape, generator=g)
    y = noise.sample(op(x), generator=g)
    c = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g, gain=2.0,
                                     fallback=9.0, threshold=0.0)
    torch.testing.assert_close(c, torch.full((2,), 1.0), rtol=0.05, atol=0.0)
    assert C2_INFORMATIVE > 0
    for kw, name in (({"gain": 0.0}, "gain"), ({"fallback": -1.0}, "fallback"),
                     ({"threshold": -1.0}, "threshold")):
        with pytest.raises(ValueError, match=name):
            estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g, **kw)


def test_observation_ratio_and_gain_table():
    shape = (1, 32, 32)
    blur = Convolution(torch.ones(3, 3) / 9, shape)
    like = torch.zeros(1, *shape)
    assert observation_ratio(blur, like) == 1.0
    assert observation_ratio(Decimation(2, shape) @ blur, like) == 0.25
    assert observation_ratio(Decimation(4, shape) @ blur, like) == 1 / 16
    # the table's points are reproduced, interpolation is log-linear and constant outside
    for r, k, f in DECODER_ERROR_RULE:
        assert decoder_error_rule(r) == pytest.approx((k, f), rel=1e-12)
    (r0, k0, f0), (r1, k1, f1) = sorted(DECODER_ERROR_RULE)[:2]
    mid = decoder_error_rule(math.sqrt(r0 * r1))
    assert mid == pytest.approx((math.sqrt(k0 * k1), math.sqrt(f0 * f1)), rel=1e-12)
    assert decoder_error_rule(r0 / 10) == (k0, f0)
    assert decoder_error_rule(1e3) == tuple(sorted(DECODER_ERROR_RULE)[-1][1:])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="ratio"):
            decoder_error_rule(bad)
    with pytest.raises(TypeError, match="ratio must be a real number"):
        decoder_error_rule(True)


def test_calibrated_scale_gives_calibrated_samples():
    # closed-form case: x = D + c sigma u exactly, D independent of y; with c from the plain
    # moment estimate (gain 1) the exact conditional's samples cover x at the nominal rate
    g = torch.Generator().manual_seed(2)
    shape = (1, 64, 64)
    op = Convolution(torch.ones(3, 3) / 9, shape)
    mean = torch.rand(1, *shape, generator=g) * 0.5 + 0.2
    sigma = 0.02 * (1 + torch.rand(1, *shape, generator=g))
    c_true = 0.5
    x = mean + c_true * sigma * torch.randn(1, *shape, generator=g)
    noise = GaussianNoise(0.01)
    y = noise.sample(op(x), generator=g)
    c = estimate_decoder_error_scale(y, op, noise, mean, sigma, generator=g, gain=1.0)
    k = 64
    xs = exact_conditional_sample(y.expand(k, *shape), op, noise, mean.expand(k, *shape),
                                  (c.reshape(1, 1, 1, 1) * sigma).expand(k, *shape),
                                  generator=g, rtol=1e-8, max_iter=500)
    z = (xs.mean(0) - x[0]) / xs.std(0)
    cover = float((z.abs() <= 2).double().mean())
    assert 0.91 <= cover <= 0.98
    # the old floor c >= 1 over-disperses the same problem (2 sigma coverage near 1)
    xs1 = exact_conditional_sample(y.expand(k, *shape), op, noise, mean.expand(k, *shape),
                                   sigma.expand(k, *shape), generator=g, rtol=1e-8,
                                   max_iter=500)
    z1 = (xs1.mean(0) - x[0]) / xs1.std(0)
    assert float((z1.abs() <= 2).double().mean()) > 0.99


def _tiny_blur_problem():
    """A random tiny CAE with a std decoder and a blurred 32² image."""
    torch.manual_seed(0)
    cae = CompressiveAutoencoder(CAEConfig(N=8, M=12, std_decoder=True)).eval()
    shape = (1, 32, 32)
    op = Convolution(torch.ones(3, 3) / 9, shape)
    y = op(torch.rand(1, *shape, generator=torch.Generator().manual_seed(1)))
    return cae, shape, op, y


def test_vble_restore_exact_conditional_runs_and_reports_scale():
    cae, shape, op, y = _tiny_blur_problem()
    res = vble_restore(y, op, GaussianNoise(0.01), cae,
                       VBLEOptions(steps=3, n_samples=4, conditional="exact"))
    assert res.x_mmse.shape == (1, *shape)
    assert bool((res.x_std > 0).all())
    assert res.params["decoder_error_scale"].shape == (1,)
    assert float(res.params["decoder_error_scale"]) > 0
    fixed = vble_restore(y, op, GaussianNoise(0.01), cae,
                         VBLEOptions(steps=3, n_samples=4, conditional="exact",
                                     decoder_error_scale=2.5))
    assert float(fixed.params["decoder_error_scale"]) == 2.5


def test_decoder_error_rule_of_another_model():
    """A per-call (rho, k, c0) table: used by decoder_error_rule, estimate_decoder_error_scale
    and VBLEOptions.decoder_error_rule instead of the shipped table; bad tables are refused."""
    table = ((1.0, 3.0, 0.5), (0.25, 6.0, 2.0))  # unsorted on purpose
    assert decoder_error_rule(1.0, table) == pytest.approx((3.0, 0.5), rel=1e-12)
    assert decoder_error_rule(0.1, table) == (6.0, 2.0)
    assert decoder_error_rule(0.5, table) == pytest.approx((math.sqrt(18.0), 1.0), rel=1e-12)
    assert decoder_error_rule(0.5, ((1.0, 2.0, 1.0),)) == (2.0, 1.0)
    for bad, err, match in ((((1.0, 2.0),), ValueError, "3 numbers"), ((), ValueError, "row"),
                            (((1.0, -2.0, 1.0),), ValueError, "gain"),
                            (((1.0, 2.0, 1.0), (1.0, 3.0, 1.0)), ValueError, "repeated"),
                            (3.0, TypeError, "sequence"),
                            (((1.0, "k", 1.0),), TypeError, "gain")):
        with pytest.raises(err, match=match):
            decoder_error_rule(1.0, bad)
        with pytest.raises(err, match=match):
            VBLEOptions(conditional="exact", decoder_error_rule=bad)
    # the fallback of the given rule where the residual carries no information
    g = torch.Generator().manual_seed(0)
    shape = (1, 32, 32)
    op = Convolution(torch.ones(3, 3) / 9, shape)
    mean = torch.rand(1, *shape, generator=g)
    sigma = torch.full_like(mean, 0.05)
    y = GaussianNoise(1e-3).sample(op(mean), generator=g)
    c = estimate_decoder_error_scale(y, op, GaussianNoise(1e-3), mean, sigma, generator=g,
                                     rule=table)
    assert torch.equal(c, torch.full((1,), 0.5))
    # end to end: the same restoration with two rules differs exactly by the gain ratio where
    # the estimate is informative (same seed, same variational fit)
    cae, shape, op, y = _tiny_blur_problem()
    opts = {"steps": 3, "n_samples": 4, "conditional": "exact", "seed": 0}
    a = vble_restore(y, op, GaussianNoise(0.01), cae,
                     VBLEOptions(**opts, decoder_error_rule=((1.0, 1.0, 1e-3),)))
    b = vble_restore(y, op, GaussianNoise(0.01), cae,
                     VBLEOptions(**opts, decoder_error_rule=((1.0, 2.0, 1e-3),)))
    sa, sb = float(a.params["decoder_error_scale"]), float(b.params["decoder_error_scale"])
    assert sa > 1e-3 and sb == pytest.approx(2 * sa, rel=1e-6)
    assert VBLEOptions(decoder_error_rule=table).decoder_error_rule == tuple(sorted(table))


def test_antithetic_pairs_average_to_the_conditional_mean():
    # VBLEOptions.antithetic: the pair (x+, x-) shares the latent draw and negated perturbations,
    # so its average is the conditional mean mu(z) to solver precision, and x+ is the sample an
    # independent draw with the same stream gives
    from types import SimpleNamespace

    from inverse.vble._posterior import _exact_samples, _ImageRNG

    a, op, mean, sigma, y = _dense_problem(4)
    noise = GaussianNoise(0.3)
    k = 5
    g = torch.Generator().manual_seed(9)
    means = mean + 0.1 * torch.randn(k, mean.shape[1], generator=g, dtype=torch.float64)
    sigs = sigma * (1 + 0.2 * torch.rand(k, mean.shape[1], generator=g, dtype=torch.float64))
    state = SimpleNamespace(y_bar=torch.zeros(1, 1), y_obs=y, op=op, noise=noise)
    opts = VBLEOptions(conditional="exact", cg_rtol=1e-13, cg_max_iter=200)
    pm = _exact_samples(state, means, sigs, k, _ImageRNG(1, 3, torch.device("cpu")), opts,
                        antithetic=True)
    assert pm.shape == (2, k, 1, mean.shape[1])
    mu = exact_conditional_sample(y.expand(k, -1), op, noise, means, sigs, rtol=1e-13,
                                  max_iter=200)
    torch.testing.assert_close((pm[0, :, 0] + pm[1, :, 0]) / 2, mu, rtol=1e-9, atol=1e-11)
    assert float((pm[0] - pm[1]).abs().min()) > 0  # the pair differs
    one = _exact_samples(state, means, sigs, k, _ImageRNG(1, 3, torch.device("cpu")), opts)
    torch.testing.assert_close(one, pm[0], rtol=1e-9, atol=1e-11)


def test_antithetic_estimates_match_independent_samples():
    # same optimized q(z), same posterior: the antithetic mean and std (law of total variance)
    # agree with independent samples within Monte-Carlo error, and the mean is closer to the
    # large-sample mean (the image-space noise is averaged out exactly)
    cae, shape, op, y = _tiny_blur_problem()
    noise = GaussianNoise(0.02)

    def run(n, anti, seed=0):
        return vble_restore(y, op, noise, cae, VBLEOptions(
            steps=3, n_samples=n, conditional="exact", decoder_error_scale=1.0,
            antithetic=anti, seed=seed, return_samples=min(n, 4)))

    ref = run(2000, False, seed=7)
    anti, ind = run(200, True), run(200, False)
    ratio = float((anti.x_std ** 2).mean() / (ind.x_std ** 2).mean())
    assert 0.95 <= ratio <= 1.05, ratio
    ratio_ref = float((anti.x_std ** 2).mean() / (ref.x_std ** 2).mean())
    assert 0.95 <= ratio_ref <= 1.05, ratio_ref
    err_anti = float(((anti.x_mmse - ref.x_mmse) ** 2).mean())
    err_ind = float(((ind.x_mmse - ref.x_mmse) ** 2).mean())
    assert err_anti < 0.5 * err_ind
    assert anti.samples.shape == (4, 1, *shape)
    # odd counts round up to pairs; fewer than 4 samples draw independent ones
    assert run(5, True).x_std.shape == (1, *shape)
    assert bool((run(3, True).x_std > 0).all())
    with pytest.raises(TypeError, match="antithetic must be True or False"):
        VBLEOptions(antithetic=1)


def test_exact_conditional_option_errors():
    with pytest.raises(ValueError, match="needs method='vble_xz'"):
        VBLEOptions(method="vble_z", conditional="exact")
    with pytest.raises(ValueError, match="conditional must be one of"):
        VBLEOptions(conditional="bogus")
    with pytest.raises(ValueError, match="decoder_error_scale"):
        VBLEOptions(conditional="exact", decoder_error_scale=-1.0)


# --------------------------------------------------------------------------- --model auto
def _rule():
    from inverse.vble import AutoRule

    return AutoRule((
        {"decimation": 1, "mtf": 0.1, "noise_std": 1e-3, "model": "high"},
        {"decimation": 1, "mtf": 0.1, "noise_std": 1e-2, "model": "low"},
        {"decimation": 2, "mtf": 0.25, "noise_std": 1e-3, "model": "low"},
    ))


def test_select_model_nearest_setting():
    from inverse.vble import select_model

    rule = _rule()
    assert select_model(1.5e-3, 1, 0.1, rule) == "high"
    assert select_model(8e-3, 1, 0.12, rule) == "low"
    # same decimation first: a decimation-2 acquisition takes the decimation-2 entry
    assert select_model(1e-2, 2, 0.1, rule) == "low"
    # an unseen decimation takes the nearest one
    assert select_model(1e-3, 3, 0.25, rule) == "low"


def test_auto_rule_round_trip_and_errors(tmp_path):
    import json

    from inverse.vble import AutoRule, load_auto_rule, select_model

    rule = _rule()
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(rule.to_dict()))
    assert load_auto_rule(path) == rule
    with pytest.raises(FileNotFoundError, match="no auto-rule table"):
        load_auto_rule(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a sciml-inverse VBLE auto-rule"):
        load_auto_rule(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="at least one entry"):
        AutoRule(())
    with pytest.raises(ValueError, match="lacks"):
        AutoRule(({"decimation": 1},))
    with pytest.raises(ValueError, match="noise_std must be a finite number"):
        select_model(0.0, 1, 0.1, rule)
    with pytest.raises(ValueError, match="decimation must be an int"):
        select_model(1e-3, 0, 0.1, rule)


def test_shipped_auto_rule_names_shipped_models():
    from inverse.vble import SHIPPED_MODELS, load_auto_rule

    rule = load_auto_rule()
    assert {e["model"] for e in rule.entries} <= set(SHIPPED_MODELS)
    assert {e["decimation"] for e in rule.entries} == {1, 2}
    assert "train" in rule.source


def test_default_options_are_the_exact_conditional():
    from inverse.vble import default_options

    opts = default_options(n_samples=10)
    assert (opts.method, opts.conditional, opts.n_samples) == ("vble_xz", "exact", 10)


def test_restore_command_defaults_to_auto_model_and_exact_conditional():
    import argparse

    from inverse.satellite import _cli

    parser = argparse.ArgumentParser()
    _cli.restore.register(parser.add_subparsers())
    args = parser.parse_args(["restore", "in.tif", "--out", "out.nc"])
    assert args.model == "auto" and args.conditional == "exact"
    opts = _cli._vble_options(args)
    assert (opts.method, opts.conditional) == ("vble_xz", "exact")
    args = parser.parse_args(["restore", "in.tif", "--out", "out.nc", "--method", "vble-z"])
    assert _cli._vble_options(args).conditional == "variational"


def test_preconditioned_conditional_samples_equal_plain_cg(monkeypatch):
    """With a blur (closed-form normal solve) the perturb-and-MAP solve is preconditioned;
    same draws and a tight tolerance give the samples of plain CG, in far fewer iterations
    for a smooth std field."""
    import inverse.vble._posterior as post
    import operators.solvers._cg as cgmod

    shape = (1, 24, 24)
    g = torch.Generator().manual_seed(2)
    op = Convolution(torch.ones(5, 5, dtype=torch.float64) / 25, shape)
    noise = PoissonGaussianNoise(a=1e-5, b=1e-6)  # low noise: an ill-conditioned system
    mean = 0.4 + 0.1 * torch.rand(3, *shape, generator=g, dtype=torch.float64)
    # a smooth std field, like a decoder's (a white-noise field with a 10x range makes this
    # circulant preconditioner slower than plain CG: see _conditional_preconditioner)
    coarse = torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)
    sigma = 0.02 + 0.2 * torch.nn.functional.interpolate(coarse, size=shape[1:],
                                                         mode="bilinear")
    y = op(mean) + 0.01 * torch.randn(3, *shape, generator=g, dtype=torch.float64)
    iters = []
    real_cg = cgmod.cg

    def counting_cg(*args, **kwargs):
        res = real_cg(*args, **kwargs)
        iters.append(res.n_iter)
        return res

    monkeypatch.setattr(cgmod, "cg", counting_cg)
    runs = []
    for pre in (True, False):
        if not pre:
            monkeypatch.setattr(post, "_conditional_preconditioner", lambda *a: None)
        runs.append(exact_conditional_sample(y, op, noise, mean, sigma,
                                             generator=torch.Generator().manual_seed(5),
                                             rtol=1e-12, max_iter=2000))
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=1e-9)
    assert iters[0] < iters[1] / 2, iters
