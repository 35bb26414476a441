"""Bad input to the public API of :mod:`inverse`, as a new user would try it (issue 13, item 6).

Each class of bad input gets a clear ``ValueError``/``TypeError`` naming the problem: checkpoints
with NaN weights or missing entries, non-finite or unrepresentable numbers, wrong types, shapes
and devices for the solvers, priors, noise models, VBLE options and metrics.
"""

from __future__ import annotations

import math

import pytest
import torch

from inverse.lpn import LPN, VectorLPNConfig, load_lpn, save_lpn
from inverse.vble import CAEConfig, CompressiveAutoencoder, load_cae, save_cae

F64 = torch.float64
TINY_CAE = dict(N=8, M=8, hyper_channels=(8, 8, 8), context_channels=8, entropy_channels=(8, 8))


def _poison(model: torch.nn.Module) -> None:
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = math.nan


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------
def test_lpn_checkpoint_with_nan_weights(tmp_path):
    lpn = LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1))
    _poison(lpn)
    path = save_lpn(lpn, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match=r"nan.pt: NaN or inf in the state of the LPN checkpoint "
                                         r"\(.*\); the training that wrote it probably diverged: "
                                         r"use an earlier checkpoint"):
        load_lpn(path)


def _drop_weight(path):
    """Rewrite the checkpoint at ``path`` without its first weight (returns its name)."""
    raw = torch.load(path, weights_only=True)
    first = next(iter(raw["state"]))
    del raw["state"][first]
    torch.save(raw, path)
    return first


def test_lpn_checkpoint_missing_an_entry(tmp_path):
    path = save_lpn(LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1)), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in raw.items() if k != "state"}, tmp_path / "nostate.pt")
    with pytest.raises(ValueError, match=r"nostate.pt lacks the entry 'state' of an LPN "
                                         r"checkpoint"):
        load_lpn(tmp_path / "nostate.pt")
    name = _drop_weight(path)
    with pytest.raises(ValueError, match=rf"m.pt: the weights do not fit the model \(LPN\): "
                                         rf"missing '{name}'"):
        load_lpn(path)


@pytest.mark.parametrize("config, match", [
    ({"type": "VectorLPNConfig"}, "not an LPN model configuration"),
    ({"type": "VectorLPNConfig", "fields": {"dim": 2, "depth": 3}},
     "not an LPN model configuration of this version: .*depth"),
    ({"type": "VectorLPNConfig", "fields": {"dim": 0}}, "dim must be an int >= 1"),
])
def test_lpn_checkpoint_with_a_bad_configuration(tmp_path, config, match):
    path = save_lpn(LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1)), tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "config": config}, path)
    with pytest.raises(ValueError, match=rf"m.pt: {match}"):
        load_lpn(path)


def test_legacy_lpn_checkpoint_missing_an_entry(tmp_path):
    from inverse.lpn._checkpoint import LEGACY_FORMAT

    torch.save({"format": LEGACY_FORMAT[0], "format_version": LEGACY_FORMAT[1],
                "model_config": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=r"old.pt is a damaged LPN checkpoint of the layout "
                                         r"'sciml-inverse/lpn-checkpoint': missing or invalid "
                                         r"entry 'model_state'"):
        load_lpn(tmp_path / "old.pt")


def test_cae_checkpoint_with_nan_weights(tmp_path):
    model = CompressiveAutoencoder(CAEConfig(**TINY_CAE))
    _poison(model)
    path = save_cae(model, tmp_path / "cae.pt")
    with pytest.raises(ValueError, match=r"cae.pt: NaN or inf in the state of the CAE checkpoint "
                                         r"\(g_a"):
        load_cae(path)


def test_cae_checkpoint_with_missing_entries(tmp_path):
    path = save_cae(CompressiveAutoencoder(CAEConfig(**TINY_CAE)), tmp_path / "cae.pt")
    raw = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in raw.items() if k != "config"}, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="broken.pt lacks the entry 'config' of a CAE checkpoint"):
        load_cae(tmp_path / "broken.pt")
    name = _drop_weight(path)
    with pytest.raises(ValueError, match=rf"cae.pt: the weights do not fit the model "
                                         rf"\(CompressiveAutoencoder\): missing '{name}'"):
        load_cae(path)


def test_compressai_state_dict_with_nan_weights():
    from inverse.vble import cae_from_compressai

    model = CompressiveAutoencoder(CAEConfig(**TINY_CAE))
    sd = model.state_dict()
    sd["g_a.0.weight"] = torch.full_like(sd["g_a.0.weight"], math.inf)
    with pytest.raises(ValueError, match=r"the CompressAI state dict: NaN or inf in the weights "
                                         r"\(g_a.0.weight\)"):
        cae_from_compressai(sd, alpha=0.0067)


def test_cae_training_checkpoint_missing_an_entry(tmp_path):
    from inverse.vble import load_training_checkpoint
    from inverse.vble._train import LEGACY_FORMAT

    torch.save({"format": LEGACY_FORMAT[0], "format_version": LEGACY_FORMAT[1],
                "model_state": {}}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"t.pt is a damaged training checkpoint of the layout "
                                         r"'sciml-inverse/vble-train-checkpoint': missing or "
                                         r"invalid entry 'phase'"):
        load_training_checkpoint(tmp_path / "t.pt")


# ---------------------------------------------------------------------------------------------
# data fidelity and the plug-and-play solvers
# ---------------------------------------------------------------------------------------------
def _problem():
    from operators import Convolution

    gen = torch.Generator().manual_seed(0)
    A = Convolution(torch.ones(3, 3, dtype=F64) / 9, (1, 8, 8))
    y = torch.rand(2, 1, 8, 8, generator=gen, dtype=F64)
    return A, y


def test_fidelity_rejects_non_finite_observations():
    from inverse import L2DataFidelity

    A, y = _problem()
    y[0, 0, 3, 3] = math.nan  # used to give a NaN restoration without an error
    with pytest.raises(ValueError, match=r"y contains 1 non-finite value .*exclude them with an "
                                         r"operators.Mask"):
        L2DataFidelity(A, y)


@pytest.mark.parametrize("v", ["10", 0, 2.5, True])
def test_fidelity_cg_max_iter(v):
    from inverse import L2DataFidelity

    A, y = _problem()
    with pytest.raises(ValueError, match="cg_max_iter must be an int >= 1"):
        L2DataFidelity(A, y, cg_max_iter=v)


@pytest.mark.parametrize("solver", ["pgd", "admm", "hqs"])
def test_solvers_reject_bad_x0_and_lam(solver):
    import inverse
    from inverse import L2DataFidelity, TVPrior

    A, y = _problem()
    run = getattr(inverse, solver)
    fid = L2DataFidelity(A, y)
    with pytest.raises(ValueError, match=r"x0 contains 128 non-finite values"):
        run(fid, TVPrior(), lam=0.1, x0=torch.full_like(y, math.nan))
    with pytest.raises(TypeError, match=r"x0 must be a floating-point or complex tensor, got "
                                        r"dtype torch.int64"):
        run(fid, TVPrior(), lam=0.1, x0=torch.zeros(2, 1, 8, 8, dtype=torch.int64))
    # a per-sample lam of the wrong length used to fail deep inside the TV prox
    with pytest.raises(ValueError, match=r"per-sample lam must have a shape that broadcasts to "
                                         r"the batch shape \(2,\) of the data, got \(3,\)"):
        run(fid, TVPrior(), lam=torch.full((3,), 0.1, dtype=F64))
    with pytest.raises(ValueError, match=r"lam must be finite and > 0, got 1 entry"):
        run(fid, TVPrior(), lam=torch.tensor([0.1, math.inf], dtype=F64))


@pytest.mark.parametrize("solver", ["pgd", "admm", "hqs"])
def test_solvers_on_an_empty_batch(solver):
    import inverse
    from inverse import L2DataFidelity, TVPrior

    A, _ = _problem()
    options = {"pgd": inverse.PGDOptions, "admm": inverse.ADMMOptions,
               "hqs": inverse.HQSOptions}[solver](max_iter=2)
    res = getattr(inverse, solver)(L2DataFidelity(A, torch.zeros(0, 1, 8, 8, dtype=F64)),
                                   TVPrior(), lam=0.1, options=options)
    assert res.x.shape == (0, 1, 8, 8)


@pytest.mark.parametrize("kw, exc, match", [
    ({"max_iter": 2.5}, ValueError, "max_iter must be an int >= 1, got 2.5"),
    ({"max_iter": 0}, ValueError, "max_iter must be an int >= 1"),
    ({"tol": math.nan}, ValueError, "tol must be a finite number >= 0, got nan"),
    ({"tol": -1.0}, ValueError, "tol must be a finite number >= 0"),
])
def test_tv_prior_options(kw, exc, match):
    from inverse import TVPrior

    with pytest.raises(exc, match=match):
        TVPrior(**kw)


@pytest.mark.parametrize("call, exc, match", [
    (lambda f: f(torch.ones(1, 1, 4, 4), "0.1"), TypeError, "lam must be a real number, got str"),
    (lambda f: f(torch.ones(1, 1, 4, 4), math.nan), ValueError, "lam must be finite"),
    (lambda f: f(torch.ones(1, 1, 4, 4), 0.1, max_iter=2.5), ValueError,
     "max_iter must be an int >= 1, got 2.5"),
    (lambda f: f(torch.ones(1, 1, 4, 4), 0.1, check_every=0), ValueError,
     "check_every must be an int >= 1"),
    (lambda f: f(torch.ones(1, 1, 4, 4), 0.1, tol=math.inf), ValueError,
     "tol must be a finite number >= 0"),
    (lambda f: f(torch.ones(1, 1, 4, 4, dtype=torch.int64), 0.1), TypeError,
     "the image must be a real floating-point tensor, got dtype torch.int64"),
    (lambda f: f([[1.0]], 0.1), TypeError, "the image must be a torch.Tensor, got list"),
    (lambda f: f(torch.ones(1, 1, 4, 4), 0.1, event_ndim="3"), ValueError,
     "event_ndim must be an int"),
])
def test_tv_prox_bad_input(call, exc, match):
    from inverse import tv_prox

    with pytest.raises(exc, match=match):
        call(tv_prox)


def test_total_variation_bad_input():
    from inverse import total_variation

    with pytest.raises(TypeError, match="the image must be a torch.Tensor, got list"):
        total_variation([1.0])


# ---------------------------------------------------------------------------------------------
# noise models and metrics
# ---------------------------------------------------------------------------------------------
def test_noise_sample_bad_input():
    from inverse import GaussianNoise

    noise = GaussianNoise(0.1)
    with pytest.raises(TypeError, match="x must be a real floating-point tensor, got dtype "
                                        "torch.int64"):
        noise.sample(torch.ones(2, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None, got int"):
        noise.sample(torch.ones(2, 2), generator=0)


@pytest.mark.parametrize("kw, exc, match", [
    ({"data_range": math.nan}, ValueError, "data_range must be finite"),
    ({"data_range": "1"}, TypeError, "data_range must be a real number, got str"),
    ({"event_ndim": 0}, ValueError, "event_ndim must be an int >= 1, got 0"),
])
def test_psnr_bad_options(kw, exc, match):
    from inverse.metrics import psnr

    # event_ndim=0 used to average over every dim and return a single number
    with pytest.raises(exc, match=match):
        psnr(torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), **kw)


def test_psnr_accepts_numpy_scalars():
    import numpy as np

    from inverse.metrics import psnr

    out = psnr(torch.full((1, 4, 4), 0.1), torch.zeros(1, 4, 4), data_range=np.float32(1.0))
    assert float(out) == pytest.approx(20.0, rel=1e-6)


@pytest.mark.parametrize("kw, match", [
    ({"win_size": 1}, r"win_size must be an int in \[3, 8\], got 1; win_size must be odd, >= 3 "
                      r"and at most min\(H, W\) = 8"),
    ({"win_size": 4}, r"win_size must be odd, >= 3 and at most min\(H, W\) = 8, got 4"),
    ({"win_size": 9}, r"win_size must be an int in \[3, 8\], got 9"),
    ({"win_size": 7.0}, "win_size must be an int in .*, got 7.0; win_size must be odd"),
    ({"win_size": True}, "win_size must be an int in .*, got True"),
    ({"k1": math.nan}, "k1 must be a finite number > 0"),
    ({"k2": -0.03}, "k2 must be a finite number > 0"),
])
def test_ssim_bad_options(kw, match):
    from inverse.metrics import ssim

    # win_size=1 used to raise ZeroDivisionError
    with pytest.raises(ValueError, match=match):
        ssim(torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8), **kw)


def test_metrics_device_mismatch():
    from inverse.metrics import psnr, ssim

    for metric in (psnr, ssim):
        with pytest.raises(ValueError, match="x is on cpu but ref is on meta; move one of them"):
            metric(torch.ones(1, 1, 8, 8), torch.ones(1, 1, 8, 8, device="meta"))


# ---------------------------------------------------------------------------------------------
# VBLE
# ---------------------------------------------------------------------------------------------
def test_vble_restore_device_mismatch_and_empty_batch():
    from inverse import GaussianNoise
    from inverse.vble import VBLEOptions, vble_restore
    from operators import Convolution

    cae = CompressiveAutoencoder(CAEConfig(**TINY_CAE)).eval()
    A = Convolution(torch.ones(3, 3) / 9, (1, 16, 16))
    opts = VBLEOptions(method="vble_z", steps=1, n_samples=2)
    with pytest.raises(ValueError, match=r"y is on meta but must be on cpu; move it with "
                                         r".to\('cpu'\); the CAE's weights are there"):
        vble_restore(torch.ones(1, 1, 16, 16, device="meta"), A, GaussianNoise(0.05), cae, opts)
    with pytest.raises(ValueError, match=r"x_init is on meta but must be on cpu"):
        vble_restore(torch.ones(1, 1, 16, 16), A, GaussianNoise(0.05), cae, opts,
                     x_init=torch.ones(1, 1, 16, 16, device="meta"))
    res = vble_restore(torch.ones(0, 1, 16, 16), A, GaussianNoise(0.05), cae, opts)
    assert res.x_mmse.shape == (0, 1, 16, 16) and res.x_std.shape == (0, 1, 16, 16)


def test_former_iteration_keywords_of_inverse_vble():
    # naming scheme: a fixed number of Adam steps is `steps`; n_iter= still works, with a warning
    from inverse.vble import VBLEOptions, fit_decoder

    with pytest.warns(DeprecationWarning, match=r"VBLEOptions: the keyword n_iter= is deprecated, "
                                                r"use steps="):
        old = VBLEOptions(n_iter=7, n_samples=3)
    assert old == VBLEOptions(steps=7, n_samples=3)
    with pytest.warns(DeprecationWarning, match=r"VBLEOptions.n_iter is deprecated, use .steps"):
        assert old.n_iter == 7
    with pytest.raises(TypeError, match=r"pass steps= only"):
        VBLEOptions(steps=1, n_iter=2)
    model = CompressiveAutoencoder(CAEConfig(**TINY_CAE))
    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    new = fit_decoder(model, x, steps=2, lr=0.5)
    with pytest.warns(DeprecationWarning, match=r"fit_decoder: the keyword n_iter= is deprecated"):
        former = fit_decoder(model, x, n_iter=2, lr=0.5)
    assert former["iterations"] == new["iterations"] == 2
    assert former["psnr"] == pytest.approx(new["psnr"], rel=1e-6)


def test_former_step_keywords_of_inverse_lpn(recwarn):
    # naming scheme: optimizer steps are `steps`; num_steps / num_steps_l1 / num_steps_pm still
    # work with a warning, and options stored with "num_steps" (older checkpoints) still load
    from inverse.lpn import LPNTrainOptions, TrainPhase, standard_phases

    with pytest.warns(DeprecationWarning, match=r"TrainPhase: the keyword num_steps= is "
                                                r"deprecated, use steps=") as rec:
        old = TrainPhase("l1", num_steps=5, lr=1e-3)
    assert rec[0].filename == __file__  # the warning points at the caller
    assert old == TrainPhase("l1", 5, 1e-3)
    with pytest.warns(DeprecationWarning, match=r"TrainPhase.num_steps is deprecated"):
        assert old.num_steps == 5
    with pytest.warns(DeprecationWarning, match=r"num_steps_l1= is deprecated, use steps_l1="):
        phases = standard_phases(num_steps_l1=4, steps_pm=8, num_stages=2)
    assert phases == standard_phases(steps_l1=4, steps_pm=8, num_stages=2)
    opts = LPNTrainOptions(phases=phases)
    with pytest.warns(DeprecationWarning, match=r"LPNTrainOptions.num_steps is deprecated"):
        assert opts.num_steps == opts.steps == 12
    stored = opts.to_dict()
    for p in stored["phases"]:
        p["num_steps"] = p.pop("steps")
    n_warnings = len(recwarn)
    assert LPNTrainOptions.from_dict(stored) == opts and len(recwarn) == n_warnings
