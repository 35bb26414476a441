"""CAE training (``inverse.vble._train``), its data pipeline (``inverse.vble._data``) and the
training script ``scripts/train_vble_cae.py`` (tiny models, synthetic data, seconds)."""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from inverse.vble import CAEConfig, CompressiveAutoencoder, load_cae, save_cae
from inverse.vble._data import (
    PatchSampler,
    PatchSource,
    dihedral,
    load_satellite_train,
    read_gray,
)
from inverse.vble._train import (
    TrainOptions,
    evaluate_cae,
    fit_decoder,
    gaussian_nll,
    load_training_checkpoint,
    train_cae,
    train_std_decoder,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_TRAIN = ROOT.parent / "shared" / "data" / "satellite" / "train"


# --------------------------------------------------------------------------- fixtures
def _texture(seed: int, h: int = 96, w: int = 96) -> np.ndarray:
    """Flat regions and noisy regions (heteroscedastic decoder residuals), in [0, 1]."""
    rng = np.random.default_rng(seed)
    a = np.full((h, w), 0.3, dtype=np.float32)
    a[: h // 2] = 0.6
    a[:, w // 2:] += 0.15 * rng.standard_normal((h, w - w // 2)).astype(np.float32)
    return np.clip(a, 0, 1)


@pytest.fixture
def sampler() -> PatchSampler:
    return PatchSampler([PatchSource(f"s{i}", _texture(i)) for i in range(3)], 64)


def tiny_cae(seed: int = 3, *, M: int = 12, **kw) -> CompressiveAutoencoder:
    torch.manual_seed(seed)
    return CompressiveAutoencoder(CAEConfig(N=8, M=M, **kw))


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _write_tif(path: Path, a: np.ndarray) -> Path:
    tifffile = pytest.importorskip("tifffile")  # optional dependency (extras geo/examples)
    tifffile.imwrite(str(path), a, photometric="minisblack", planarconfig="contig")
    return path


# --------------------------------------------------------------------------- read_gray
def test_read_gray_pan_normalization_and_nodata_trim(tmp_path):
    a = np.full((10, 12), 1000, dtype=np.uint16)
    a[0, 3], a[9, 11] = 4095, 5000     # full scale, above full scale (clipped)
    a[:, :2] = 0                       # no-data band on the left
    a[:3, :] = 0                       # and on top
    a[5, 6] = 0                        # an interior 0 stays
    x = read_gray(_write_tif(tmp_path / "p.tif", a), n_bits=12)
    assert x.dtype == np.float32 and x.shape == (7, 10)
    np.testing.assert_allclose(x[0, 0], 1000 / 4095, rtol=1e-6)
    assert x[-1, -1] == 1.0 and x[2, 4] == 0.0
    y = read_gray(tmp_path / "p.tif", n_bits=11, trim_nodata=False)
    assert y.shape == (10, 12)
    np.testing.assert_allclose(y[4, 4], 1000 / 2047, rtol=1e-6)


@pytest.mark.parametrize("layout", ["rgb", "rgba", "bands_first"])
def test_read_gray_rgb_luma(tmp_path, layout):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    expected = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    if layout == "rgba":
        a = np.concatenate([rgb, np.full((9, 7, 1), 7, np.uint8)], axis=-1)
    elif layout == "bands_first":
        a = np.moveaxis(rgb, -1, 0).copy()
    else:
        a = rgb
    x = read_gray(_write_tif(tmp_path / "c.tif", a))
    np.testing.assert_allclose(x, expected, atol=1e-6)


def test_read_gray_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image at"):
        read_gray(tmp_path / "missing.tif")
    two = _write_tif(tmp_path / "two.tif", np.zeros((2, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="bands"):
        read_gray(two)
    five = _write_tif(tmp_path / "five.tif", np.zeros((8, 9, 5), np.uint8))
    with pytest.raises(ValueError, match="bands"):
        read_gray(five)
    ms = _write_tif(tmp_path / "ms.tif", np.ones((8, 9, 4), np.float64))
    with pytest.raises(ValueError, match="8-bit RGB"):
        read_gray(ms)
    f = _write_tif(tmp_path / "f.tif", np.ones((8, 9), np.float32))
    with pytest.raises(ValueError, match="integer digital numbers"):
        read_gray(f)
    z = _write_tif(tmp_path / "z.tif", np.zeros((8, 9), np.uint16))
    with pytest.raises(ValueError, match="entirely no-data"):
        read_gray(z)
    for bad in (0, 17):
        with pytest.raises(ValueError, match=r"n_bits must be an int in \[1, 16\], got .*; the "
                                             r"sensor's bits per sample"):
            read_gray(z, n_bits=bad)
    for bad in (12.0, True, "12"):
        with pytest.raises(TypeError, match=r"n_bits must be an int in \[1, 16\]"):
            read_gray(z, n_bits=bad)
    cube = _write_tif(tmp_path / "cube.tif", np.ones((2, 3, 8, 9), np.uint8))
    with pytest.raises(ValueError, match="expected a 2-D"):
        read_gray(cube)


# --------------------------------------------------------------------------- sampler
def test_patch_sampler_shapes_range_and_seeding():
    s = PatchSampler([PatchSource("a", np.random.default_rng(0).random((70, 90))),
                      PatchSource("b", np.random.default_rng(1).random((64, 64)), gain=(0.5, 3))],
                     64)
    a = s(5, torch.Generator().manual_seed(7))
    b = s(5, torch.Generator().manual_seed(7))
    c = s(5, torch.Generator().manual_seed(8))
    assert a.shape == (5, 1, 64, 64) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_patch_sampler_augmentation_is_the_dihedral_group():
    """With an image of the patch size, every patch is one of the 8 D4 transforms, all 8
    appear, each with frequency near 1/8 (seeded, 800 draws: 5-sigma binomial band)."""
    img = np.arange(16 * 16, dtype=np.float32).reshape(16, 16) / 256
    s = PatchSampler([PatchSource("a", img)], 16)
    t = torch.from_numpy(img)
    group = [dihedral(t, k, f) for f in (False, True) for k in range(4)]
    refs = [np.rot90(np.fliplr(img) if f else img, k) for f in (False, True) for k in range(4)]
    for g, r in zip(group, refs, strict=True):  # dihedral() is numpy's rot90/fliplr
        np.testing.assert_array_equal(g.numpy(), r)
    assert len({tuple(g.flatten().tolist()) for g in group}) == 8
    batch = s(800, torch.Generator().manual_seed(0))[:, 0]
    counts = np.zeros(8, int)
    for p in batch:
        hits = [i for i, g in enumerate(group) if torch.equal(p, g)]
        assert len(hits) == 1
        counts[hits[0]] += 1
    sd = math.sqrt(800 * (1 / 8) * (7 / 8))
    assert np.all(np.abs(counts - 100) < 5 * sd), counts
    plain = PatchSampler([PatchSource("a", img)], 16, augment=False)
    assert torch.equal(plain(3, torch.Generator().manual_seed(0))[:, 0],
                       t.expand(3, 16, 16))


def test_patch_sampler_weights_and_gain():
    a = PatchSource("zeros", np.zeros((64, 64), np.float32), weight=3.0)
    b = PatchSource("half", np.full((64, 64), 0.25, np.float32), weight=1.0, gain=(2.0, 2.0))
    s = PatchSampler([a, b], 32)
    x = s(2000, torch.Generator().manual_seed(1))
    from_b = x[:, 0, 0, 0] > 0
    assert torch.all(x[from_b] == 0.5)  # gain 2 applied exactly
    share = float(from_b.float().mean())
    assert abs(share - 0.25) < 5 * math.sqrt(0.25 * 0.75 / 2000)


def test_patch_sampler_errors():
    with pytest.raises(ValueError, match="smaller than the patch size"):
        PatchSampler([PatchSource("a", np.zeros((10, 40)))], 16)
    with pytest.raises(ValueError, match="at least one"):
        PatchSampler([], 16)
    with pytest.raises(TypeError, match="PatchSource"):
        PatchSampler([np.zeros((20, 20))], 16)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="patch_size"):
        PatchSampler([PatchSource("a", np.zeros((20, 20)))], 0)
    with pytest.raises(ValueError, match="batch_size"):
        PatchSampler([PatchSource("a", np.zeros((20, 20)))], 8)(0, torch.Generator())
    with pytest.raises(ValueError, match="2-D"):
        PatchSource("a", np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match="NaN"):
        PatchSource("a", np.full((20, 20), np.nan))
    with pytest.raises(ValueError, match="weight"):
        PatchSource("a", np.zeros((20, 20)), weight=0.0)
    with pytest.raises(ValueError, match=r"PatchSource 'a': gain must be \(low, high\) with "
                                         r"0 < low <= high, got \(2.0, 1.0\)"):
        PatchSource("a", np.zeros((20, 20)), gain=(2.0, 1.0))
    with pytest.raises(ValueError, match=r"gain must be \(low, high\)"):
        PatchSource("a", np.zeros((20, 20)), gain=(1.0, 2.0, 3.0))
    for bad, match in [(math.nan, "must be finite, got nan"), (math.inf, "must be finite"),
                       (0.0, "must be > 0, got 0.0"), (-1.0, "must be > 0")]:
        with pytest.raises(ValueError, match=r"PatchSource 'a': gain\[0\] " + match):
            PatchSource("a", np.zeros((20, 20)), gain=(bad, 2.0))
    for bad in ("1", True, None):
        with pytest.raises(TypeError, match=r"PatchSource 'a': gain\[1\] must be a real number"):
            PatchSource("a", np.zeros((20, 20)), gain=(1.0, bad))
    assert PatchSource("a", np.zeros((20, 20)), gain=(np.float32(0.5), 2)).gain == (0.5, 2.0)


# --------------------------------------------------------------------------- folder loading
def _fake_train_folder(root: Path) -> Path:
    d = root / "satellite" / "train"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    pan = rng.integers(100, 2000, (300, 200), dtype=np.uint16)
    pan[:20] = 0  # no-data band on top
    _write_tif(d / "p1.tif", pan)
    _write_tif(d / "p2.tif", rng.integers(100, 2000, (200, 130), dtype=np.uint16))
    _write_tif(d / "n1.tif", rng.integers(0, 256, (100, 120, 4), dtype=np.uint8))
    return d


def test_load_satellite_train_split_and_mix(tmp_path):
    d = _fake_train_folder(tmp_path)
    data = load_satellite_train(d.parent, pan_names=("p1", "p2"), naip_names=("n1",),
                                naip_share=0.25, val_rows=64, pan_gain=(0.5, 2.0))
    names = [s.name for s in data.train]
    assert names == ["pan/p1", "pan/p2", "naip/n1"]
    assert data.train[0].image.shape == (300 - 20 - 64, 200)
    assert data.train[1].image.shape == (200 - 64, 130)
    assert data.val["p1"].shape == (64, 192) and data.val["p2"].shape == (64, 128)
    w = np.array([s.weight for s in data.train])
    np.testing.assert_allclose(w.sum(), 1.0)
    np.testing.assert_allclose(w[2], 0.25)
    np.testing.assert_allclose(w[0] / w[1], (216 * 200) / (136 * 130))
    assert data.train[0].gain == (0.5, 2.0) and data.train[2].gain == (1.0, 1.0)
    # validation rows are really held out: they are the bottom rows of the image
    full = read_gray(d / "p1.tif")
    np.testing.assert_array_equal(data.val["p1"], full[-64:, :192])
    json.dumps(data.description)  # plain data for the sidecar


def test_load_satellite_train_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no training data folder"):
        load_satellite_train(tmp_path / "nowhere")
    (tmp_path / "eval").mkdir()
    with pytest.raises(ValueError, match="evaluation folder"):
        load_satellite_train(tmp_path / "eval")
    d = _fake_train_folder(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no training image"):
        load_satellite_train(d, pan_names=("p1", "nope"))
    with pytest.raises(ValueError, match="pan_names is empty"):
        load_satellite_train(d, pan_names=())
    for bad in (1.0, -0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"naip_share must be .*in \[0, 1\)"):
            load_satellite_train(d, pan_names=("p1",), naip_share=bad)
    for bad in ("0.2", True):
        with pytest.raises(TypeError, match=r"naip_share must be a real number"):
            load_satellite_train(d, pan_names=("p1",), naip_share=bad)
    with pytest.raises(ValueError, match="fewer than 64 training rows"):
        load_satellite_train(d, pan_names=("p2",), val_rows=150)
    _write_tif(d / "bad.tif", np.zeros((50, 50, 2), np.uint8))
    with pytest.raises(ValueError, match="bands"):
        load_satellite_train(d, pan_names=("bad",))


@pytest.mark.skipif(not SHARED_TRAIN.is_dir(), reason=f"shared data not found at {SHARED_TRAIN}")
def test_load_shared_satellite_train():
    pytest.importorskip("tifffile")
    data = load_satellite_train(SHARED_TRAIN, val_rows=128)
    shapes = {s.name: s.image.shape for s in data.train}
    # rotterdam2 has a diagonal no-data corner in rows 0-196, trimmed
    assert shapes["pan/rotterdam2_pan_0p5m"] == (600 - 197 - 128, 600)
    assert all(float(s.image.min()) >= 0 and float(s.image.max()) <= 1 for s in data.train)


# --------------------------------------------------------------------------- TrainOptions
def test_train_config_schedule_and_errors():
    cfg = TrainOptions(steps=10, lr=1e-3, lr_milestones=[4, 8], lr_decay=0.5)
    assert cfg.lr_milestones == (4, 8)
    assert [cfg.lr_at(s) for s in (0, 3, 4, 7, 8, 9)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]
    assert TrainOptions.from_dict(cfg.to_dict()) == cfg
    for bad, match in [({"steps": 0}, "steps"), ({"lr": -1.0}, "lr"),
                       ({"lr_milestones": (5, 3)}, "increasing"),
                       ({"lr_milestones": (0, 3)}, r"lr_milestones\[0\] must be an int >= 1, got "
                                                   r"0; lr_milestones must be an increasing"),
                       ({"lr_milestones": (2, 3.0)}, r"lr_milestones\[1\] must be an int"),
                       ({"lr_milestones": (True,)}, r"lr_milestones\[0\] must be an int"),
                       ({"lr_milestones": 3}, "lr_milestones must be an increasing tuple"),
                       ({"lr_decay": 2.0}, r"lr_decay must be <= 1, got 2.0; the factor"),
                       ({"lr_decay": 0.0}, "lr_decay must be > 0"),
                       ({"lr_decay": math.nan}, "lr_decay must be finite"),
                       ({"grad_clip": 0.0}, "grad_clip"), ({"batch_size": 1.5}, "batch_size")]:
        with pytest.raises(ValueError, match=match):
            TrainOptions(**bad)
    for bad in ("0.5", True):
        with pytest.raises(TypeError, match="lr_decay must be a real number"):
            TrainOptions(lr_decay=bad)


# --------------------------------------------------------------------------- training
def test_train_cae_loss_finite_and_decreasing(sampler):
    model = tiny_cae()
    cfg = TrainOptions(steps=20, batch_size=2, lr=3e-3, log_every=1)
    h = train_cae(model, sampler, cfg, progress=False)
    loss = np.array(h.metrics["loss"])
    assert h.final_step == 20 and h.stopped == "done" and np.isfinite(loss).all()
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()
    # the rate-distortion loss is what it says: alpha (2^n - 1)^2 mse + bpp
    lmbda = 0.0067 * 4095 ** 2
    np.testing.assert_allclose(loss, lmbda * np.array(h.metrics["mse"])
                               + np.array(h.metrics["bpp"]), rtol=1e-4)
    assert not model.training
    # g_s_std untouched by the CAE phase and trainable again afterwards
    assert all(p.requires_grad for p in model.parameters())
    fresh = tiny_cae()
    assert all(torch.equal(a, b) for a, b in zip(model.g_s_std.parameters(),
                                                 fresh.g_s_std.parameters(), strict=True))


def test_train_cae_resume_equals_uninterrupted(sampler, tmp_path):
    cfg = TrainOptions(steps=6, batch_size=2, lr=1e-3, lr_milestones=(4,), log_every=1)
    a = tiny_cae()
    ha = train_cae(a, sampler, cfg, progress=False)
    ck = tmp_path / "c.ckpt"
    b = tiny_cae()
    hb1 = train_cae(b, sampler, cfg, checkpoint=ck, stop_after=3, progress=False)
    assert hb1.final_step == 3 and hb1.stopped == "stop_after"
    c = tiny_cae(seed=99)  # other init: everything must come from the checkpoint
    hc = train_cae(c, sampler, cfg, checkpoint=ck, progress=False)
    assert hc.final_step == 6 and hc.step == list(range(1, 7))
    assert _state_equal(a, c)
    assert hc.metrics["loss"] == ha.metrics["loss"]
    model, info = load_training_checkpoint(ck)
    assert _state_equal(model, a) and info["phase"] == "cae" and info["step"] == 6
    assert info["train_config"] == cfg
    # extending the run with a new future schedule is allowed
    longer = TrainOptions(steps=8, batch_size=2, lr=1e-3, lr_milestones=(4,), log_every=1)
    assert train_cae(c, sampler, longer, checkpoint=ck, progress=False).final_step == 8


def _as_older_layout(new: Path, old: Path, lr_before: float) -> None:
    """Write the run state of a ``fit`` training checkpoint as the older loop stored it
    (format ``sciml-inverse/vble-train-checkpoint``): the CAE's own state dict, the optimizer
    with the learning rate of the step just taken, one generator and one global torch RNG
    state per rank, the history without fit's extra entries."""
    from inverse.vble._train import LEGACY_FORMAT

    raw = torch.load(new, weights_only=True)
    task, st, ex = raw["config"]["task"], raw["state"], raw["extra"]
    opt = st["optimizer"]
    opt = {"state": opt["state"], "param_groups": [
        {k: v for k, v in g.items() if k != "initial_lr"} | {"lr": lr_before}
        for g in opt["param_groups"]]}
    history = dict(ex["history"])
    if task["phase"] == "std":
        history.pop("loss")
    torch.save({"format": LEGACY_FORMAT[0], "format_version": LEGACY_FORMAT[1],
                "library_version": raw["library_version"], "phase": task["phase"],
                "model_config": task["model_config"],
                "model_state": {k[4:]: v for k, v in st["model"].items()},
                "optimizer": opt, "step": ex["step"], "train_config": task["train_config"],
                "generators": [r["generators"][0] for r in st["rng"]],
                "rng_states": [r["torch"] for r in st["rng"]], "history": history,
                "total_wall_time": ex["total_wall_time"], "world_size": ex["world_size"]}, old)


def test_older_training_checkpoints_resume_exactly(sampler, tmp_path):
    """A training checkpoint of the layout before sciml_inverse.fit resumes (upgraded in
    place, the original kept) and continues exactly as the uninterrupted run, across a
    learning-rate milestone at the resumed step; both phases."""
    import warnings

    from inverse.vble import upgrade_training_checkpoint

    cfg = TrainOptions(steps=6, batch_size=2, lr=1e-3, lr_milestones=(3,), log_every=1)
    ref = tiny_cae()
    h_ref = train_cae(ref, sampler, cfg, progress=False)
    b = tiny_cae()
    train_cae(b, sampler, cfg, checkpoint=tmp_path / "new.ckpt", stop_after=3, progress=False)
    old = tmp_path / "old.ckpt"
    _as_older_layout(tmp_path / "new.ckpt", old, lr_before=cfg.lr_at(2))
    raw = old.read_bytes()
    _, info = load_training_checkpoint(old)  # readable as before
    assert info["step"] == 3 and info["phase"] == "cae"
    c = tiny_cae(seed=99)
    with pytest.warns(UserWarning, match="older layout: rewritten in the common format"):
        h = train_cae(c, sampler, cfg, checkpoint=old, progress=False)
    assert h.final_step == 6 and _state_equal(c, ref)
    assert h.metrics["loss"] == h_ref.metrics["loss"]
    assert (tmp_path / "old.ckpt.legacy").read_bytes() == raw
    assert torch.load(old, weights_only=True)["kind"] == "fit"

    # the std phase, through the explicit converter (to another file)
    cfg2 = TrainOptions(steps=4, batch_size=2, lr=1e-3, lr_milestones=(2,), log_every=1)
    a, d = tiny_cae(), tiny_cae()
    d.load_state_dict(a.state_dict())
    train_std_decoder(a, sampler, cfg2, progress=False)
    train_std_decoder(d, sampler, cfg2, checkpoint=tmp_path / "s.ckpt", stop_after=2,
                      progress=False)
    _as_older_layout(tmp_path / "s.ckpt", tmp_path / "s_old.ckpt", lr_before=cfg2.lr_at(1))
    up = upgrade_training_checkpoint(tmp_path / "s_old.ckpt", tmp_path / "s_up.ckpt")
    e = tiny_cae(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checkpoint of the common format: no upgrade
        train_std_decoder(e, sampler, cfg2, checkpoint=up, progress=False)
    assert _state_equal(e, a)
    with pytest.raises(ValueError, match="holds a 'fit' checkpoint of the older layout"):
        upgrade_training_checkpoint(up)


def test_train_std_decoder_lowers_nll_and_resumes(sampler, tmp_path):
    model = tiny_cae()
    train_cae(model, sampler, TrainOptions(steps=20, batch_size=4, lr=3e-3), progress=False)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("g_s_std")}
    x = sampler(8, torch.Generator().manual_seed(123))

    def nll() -> float:
        with torch.no_grad():
            y, _ = model.analysis(x)
            y = y + (torch.rand(y.shape, generator=torch.Generator().manual_seed(5)) - 0.5)
            return float(gaussian_nll(x, model.decode(y), model.decode_std(y)))

    before = nll()
    cfg = TrainOptions(steps=40, batch_size=4, lr=3e-3, log_every=1)
    h = train_std_decoder(model, sampler, cfg, warm_start=False, progress=False)
    after = nll()
    assert np.isfinite(h.metrics["nll"]).all() and after < before - 0.2
    assert np.mean(h.metrics["nll"][-5:]) < np.mean(h.metrics["nll"][:5])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())

    # warm start: sigma starts constant at the RMS residual (NLL = log(rms) + 1/2 there)
    warm = tiny_cae()
    warm.load_state_dict(model.state_dict())
    h0 = train_std_decoder(warm, sampler, TrainOptions(steps=1, batch_size=4, lr=1e-12),
                           progress=False)
    with torch.no_grad():
        y, _ = warm.analysis(x)
        s = warm.decode_std(y)
    assert float(s.std()) < 1e-4 * float(s.mean())
    assert math.isfinite(h0.metrics["nll"][0])

    # resume of the std phase equals the uninterrupted run
    base = tiny_cae()
    base.load_state_dict(model.state_dict())
    cfg2 = TrainOptions(steps=5, batch_size=2, lr=1e-3, log_every=1)
    a, b = tiny_cae(), tiny_cae()
    a.load_state_dict(base.state_dict())
    b.load_state_dict(base.state_dict())
    train_std_decoder(a, sampler, cfg2, progress=False)
    ck = tmp_path / "s.ckpt"
    train_std_decoder(b, sampler, cfg2, checkpoint=ck, stop_after=2, progress=False)
    c = tiny_cae(seed=7)
    train_std_decoder(c, sampler, cfg2, checkpoint=ck, progress=False)
    assert _state_equal(a, c)


def test_train_time_limit_and_checkpoint_errors(sampler, tmp_path):
    model = tiny_cae()
    ck = tmp_path / "c.ckpt"
    cfg = TrainOptions(steps=4, batch_size=2, log_every=1)
    h = train_cae(model, sampler, cfg, checkpoint=ck, time_limit=1e-9, progress=False)
    assert h.stopped == "time_limit" and h.final_step == 0 and ck.exists()
    train_cae(model, sampler, cfg, checkpoint=ck, stop_after=2, progress=False)
    with pytest.raises(ValueError, match="was saved for"):
        train_cae(tiny_cae(M=16), sampler, cfg, checkpoint=ck, progress=False)
    with pytest.raises(ValueError, match="disagrees"):
        train_cae(tiny_cae(), sampler, TrainOptions(steps=4, batch_size=3), checkpoint=ck,
                  progress=False)
    with pytest.raises(ValueError, match="'cae' phase"):
        train_std_decoder(tiny_cae(), sampler, cfg, checkpoint=ck, progress=False)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        train_cae(tiny_cae(), sampler, cfg, checkpoint=bad, progress=False)
    weights = save_cae(tiny_cae(), tmp_path / "w.pt")
    with pytest.raises(ValueError, match="not a CAE training checkpoint"):
        load_training_checkpoint(weights)
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        load_training_checkpoint(tmp_path / "none.ckpt")
    # resume=False overwrites
    h2 = train_cae(tiny_cae(), sampler, cfg, checkpoint=ck, resume=False, stop_after=1,
                   progress=False)
    assert h2.final_step == 1 and load_training_checkpoint(ck)[1]["step"] == 1


def test_train_input_errors(sampler):
    cfg = TrainOptions(steps=2, batch_size=2)
    with pytest.raises(TypeError, match="CompressiveAutoencoder"):
        train_cae(torch.nn.Linear(2, 2), sampler, cfg, progress=False)
    with pytest.raises(TypeError, match="callable"):
        train_cae(tiny_cae(), torch.zeros(4, 1, 64, 64), cfg, progress=False)
    with pytest.raises(TypeError, match="TrainOptions"):
        train_cae(tiny_cae(), sampler, {"steps": 2}, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiples of 64"):
        train_cae(tiny_cae(), PatchSampler([PatchSource("a", _texture(0))], 48), cfg,
                  progress=False)
    with pytest.raises(ValueError, match=r"\(batch=2, C=1"):
        train_cae(tiny_cae(), lambda b, g: torch.rand(b, 3, 64, 64), cfg, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        train_cae(tiny_cae(), lambda b, g: torch.full((b, 1, 64, 64), float("nan")), cfg,
                  progress=False)
    with pytest.raises(ValueError, match="no variance decoder"):
        train_std_decoder(tiny_cae(std_decoder=False), sampler, cfg, progress=False)
    with pytest.raises(ValueError, match="stop_after"):
        train_cae(tiny_cae(), sampler, cfg, stop_after=0, progress=False)
    with pytest.raises(FloatingPointError, match="loss became"):
        train_cae(tiny_cae(), sampler, TrainOptions(steps=2, batch_size=2, lr=1e30),
                  progress=False)


def test_train_under_ddp_world_size_one(sampler, tmp_path):
    """With torch.distributed initialized (gloo, one process) the DDP path gives the same
    weights as a plain run."""
    import torch.distributed as dist

    cfg = TrainOptions(steps=3, batch_size=2, lr=1e-3)
    plain = tiny_cae()
    train_cae(plain, sampler, cfg, progress=False)
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        ddp = tiny_cae()
        h = train_cae(ddp, sampler, cfg, checkpoint=tmp_path / "d.ckpt", progress=False)
    finally:
        dist.destroy_process_group()
    assert h.final_step == 3
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in
               zip(plain.state_dict().values(), ddp.state_dict().values(), strict=True))


# --------------------------------------------------------------------------- evaluation
def test_evaluate_and_fit_decoder(sampler):
    model = tiny_cae()
    x = sampler(1, torch.Generator().manual_seed(0))[0, 0].numpy()
    r = evaluate_cae(model, {"a": x, "b": x[:, ::-1].copy()})
    a = r["a"]
    g = model.gamma
    np.testing.assert_allclose(a["nll_gamma"], a["mse_round"] / (2 * g * g) + math.log(g),
                               rtol=1e-5)
    np.testing.assert_allclose(a["psnr_round"], 10 * math.log10(1 / a["mse_round"]))
    with torch.no_grad():
        y, z = model.analysis(torch.from_numpy(x)[None, None])
        bits = float(model.latent_bits(torch.round(y), torch.round(z)).sum())
    np.testing.assert_allclose(a["bpp_round"], bits / x.size, rtol=1e-5)
    assert set(r) == {"a", "b", "mean"} and model.training  # mode restored
    # an image in the decoder's range, x = D(y*): fitting y must go far beyond g_a(x)
    with torch.no_grad():
        target = model.decode(3 * torch.randn(1, 12, 4, 4,
                                              generator=torch.Generator().manual_seed(0)))
    fit = fit_decoder(model, target, steps=30, lr=0.5)
    assert fit["psnr"] > fit["psnr_init"] + 10 and len(fit["curve"]) == 3
    assert fit["psnr"] >= max(fit["curve"])  # the best iterate counts
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="at least one image"):
        evaluate_cae(model, {})
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        fit_decoder(model, x, steps=0)


# --------------------------------------------------------------------------- the script
@pytest.fixture(scope="module")
def script() -> dict:
    return runpy.run_path(str(ROOT / "scripts" / "train_vble_cae.py"), run_name="train_vble")


def test_script_quick_synthetic(script, tmp_path):
    out = tmp_path / "m.pt"
    argv = ["--quick", "--synthetic", "--out", str(out), "--no-progress", "--alpha", "0.0483"]
    rec = script["main"](argv)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["cae_train"]["steps"] == 6 and side["std_train"]["steps"] == 4
    assert side["command"].endswith("--alpha 0.0483")
    assert side["file_bytes"] == out.stat().st_size
    for k in ("validation", "decoder_fit", "data", "num_parameters", "model_config"):
        assert k in side
    model, extra = load_cae(out, with_extra=True)
    assert model.config.alpha == 0.0483 and extra["record"]["alpha"] == 0.0483
    assert rec["num_parameters"] == sum(p.numel() for p in model.parameters())
    with pytest.raises(SystemExit, match="--resume"):
        script["main"](argv)
    rec2 = script["main"]([*argv, "--resume", "--steps", "8", "--lr-milestones", "5"])
    assert rec2["cae_train"]["steps"] == 8


def test_script_precision_flag(script, tmp_path):
    """--precision bf16 trains (bfloat16 autocast where the CPU has it, float32 otherwise) and
    keeps float32 weights and finite metrics."""
    out = tmp_path / "b.pt"
    rec = script["main"](["--quick", "--synthetic", "--out", str(out), "--no-progress",
                          "--precision", "bf16"])
    assert rec["precision"] == "bf16"
    model = load_cae(out)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    with pytest.raises(SystemExit):
        script["main"](["--quick", "--synthetic", "--out", str(tmp_path / "c.pt"),
                        "--precision", "int8"])
