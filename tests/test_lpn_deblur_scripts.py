"""Smoke tests of ``scripts/train_lpn_deblur.py`` and ``examples/lpn_deblur.py`` (quick modes)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from problems import SATELLITE_DATA, needs_satellite_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train_script() -> dict:
    return runpy.run_path(str(ROOT / "scripts" / "train_lpn_deblur.py"), run_name="train")


@pytest.fixture(scope="module")
def example() -> dict:
    return runpy.run_path(str(ROOT / "examples" / "lpn_deblur.py"), run_name="example")


@pytest.fixture(scope="module")
def quick_weights(tmp_path_factory, train_script) -> Path:
    """A tiny model trained for 8 steps on a synthetic cache (no shared data needed)."""
    d = tmp_path_factory.mktemp("lpn")
    rng = np.random.default_rng(0)
    images = {f"{g}/img{i}": rng.random((40 + 3 * i, 50)) for g in ("pan", "naip", "natural")
              for i in range(2)}
    cache = d / "cache.npz"
    train_script["write_cache"](cache, images)
    back = train_script["read_cache"](cache)
    assert set(back) == set(images)
    assert max(float(np.abs(back[k] - images[k]).max()) for k in images) <= 1 / 65535
    out = d / "m.pt"
    meta = train_script["main"](["--data-cache", str(cache), "--quick", "--steps", "8",
                                 "--out", str(out)])
    assert meta["steps"] == 8
    assert meta["num_parameters"] > 0 and meta["steps_per_second"] > 0
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["sigma_train"] == pytest.approx(0.03)
    assert saved["command"].startswith("python scripts/train_lpn_deblur.py")
    return out


def test_training_schedule_splits_steps(train_script):
    ph = train_script["phases"](100, 0.4, 0.03, (1e-2, 1e-3), 2e-4)
    assert sum(p.steps for p in ph) == 100
    assert [p.loss for p in ph] == ["l1", "l1", "pm", "pm", "pm", "pm"]
    assert [p.lr for p in ph[:2]] == [1e-2, 1e-3] and ph[0].steps + ph[1].steps == 40
    assert [p.gamma_rms for p in ph[2:]] == pytest.approx([0.24, 0.12, 0.06, 0.03])
    # an MMSE-trained LPN: the whole run is the l2 warm-up, no proximal matching
    ph = train_script["phases"](100, 1.0, 0.03, (1e-3, 1e-4), 2e-4, warmup_loss="l2")
    assert [(p.loss, p.steps, p.lr) for p in ph] == [("l2", 50, 1e-3), ("l2", 50, 1e-4)]


def test_time_budget_sets_the_number_of_steps(tmp_path, train_script):
    rng = np.random.default_rng(2)
    cache = tmp_path / "c.npz"
    train_script["write_cache"](cache, {"pan/a": rng.random((40, 40))})
    meta = train_script["main"](["--data-cache", str(cache), "--quick", "--time-budget", "2",
                                 "--out", str(tmp_path / "m.pt")])
    assert meta["benchmark_steps_per_second"] > 0
    assert meta["steps"] >= 20 and meta["steps"] % 20 == 0


def test_training_script_rejects_bad_arguments(train_script):
    with pytest.raises(SystemExit):
        train_script["main"](["--steps", "many"])
    with pytest.raises(SystemExit):
        train_script["main"](["--mix", "1,0"])
    with pytest.raises(SystemExit):
        train_script["main"](["--warmup-frac", "1.5"])


def test_patch_bank_shapes_and_augmentation(train_script):
    rng = np.random.default_rng(1)
    images = {"pan/a": rng.random((30, 40)), "natural/b": rng.random((20, 20)),
              "naip/c": rng.random((10, 10))}  # too small for 16-px patches: skipped
    bank, counts = train_script["make_patch_bank"](images, 50, 16, (0.5, 0.2, 0.3), seed=0)
    assert bank.shape == (50, 1, 16, 16)
    assert counts["naip"] == 0 and counts["pan"] + counts["natural"] == 50
    assert float(bank.min()) >= 0 and float(bank.max()) <= 1


@needs_satellite_data
def test_example_and_training_read_the_data_identically(train_script, example):
    for name in ("train/rotterdam2_pan_0p5m.tif", "train/naip_nd_5m_20090818.tif"):
        a = train_script["load_gray"](SATELLITE_DATA / name)
        b = example["load_gray"](SATELLITE_DATA / name)
        assert np.array_equal(a, b)
        assert 0.0 <= a.min() and a.max() <= 1.0
    pan = train_script["load_gray"](SATELLITE_DATA / "train" / "rotterdam2_pan_0p5m.tif")
    assert pan.shape[0] < 600 and not (pan == 0).all(axis=1).any()  # no-data band removed


@needs_satellite_data
def test_example_quick_run_writes_json(tmp_path, example, quick_weights):
    out = tmp_path / "res.json"
    res = example["main"](["--weights", str(quick_weights), "--quick", "--json", str(out),
                           "--tasks", "deblur_noise0.01,inpaint50_noise0.01"])
    saved = json.loads(out.read_text())
    assert set(saved["tasks"]) == {"deblur_noise0.01", "inpaint50_noise0.01"}
    for rec in saved["tasks"].values():
        for key in ("psnr_lpn", "psnr_tv", "psnr_tikhonov", "ssim_lpn", "ssim_tv",
                    "ssim_tikhonov"):
            assert np.isfinite(rec[key])
        assert rec["lam_lpn"] == pytest.approx((rec["noise"] / 0.03) ** 2)
        assert rec["rho_lpn"] == pytest.approx(rec["lam_lpn"])  # ADMM penalty = MAP weight
        assert rec["tuning"]["tv"]["lam"] in rec["tuning"]["tv"]["grid"]
        assert rec["psnr_tv"] > rec["psnr_degraded"]
    assert saved["model"]["num_parameters"] == res["model"]["num_parameters"]
    assert saved["bm3d"]


def test_example_rejects_bad_arguments(example):
    with pytest.raises(SystemExit):
        example["main"](["--tasks", "denoise"])
    with pytest.raises(SystemExit):
        example["main"](["--iters", "0"])


def test_pm_stability_script_runs_both_variants(tmp_path, train_script):
    rng = np.random.default_rng(4)
    cache = tmp_path / "c.npz"
    train_script["write_cache"](cache, {"pan/a": rng.random((60, 60)),
                                        "natural/b": rng.random((40, 50))})
    mod = runpy.run_path(str(ROOT / "scripts" / "lpn_pm_stability.py"), run_name="stab")
    out = tmp_path / "s.json"
    res = mod["main"](["--data-cache", str(cache), "--steps", "8", "--json", str(out)])
    assert json.loads(out.read_text())["steps"] == 8
    assert res["noisy_rmse"] == pytest.approx(0.03, rel=0.1)  # 65k noise samples
    for key in ("keep", "reset"):
        after = res[key]["val_rmse_after_each_phase"]
        assert len(after) == 5 and all(np.isfinite(after))  # l1 + four PM stages
    keep, reset = (res[k]["val_rmse_after_each_phase"] for k in ("keep", "reset"))
    assert keep[0] == reset[0]  # the same run until the first reset
    assert keep[1:] != reset[1:]
    with pytest.raises(SystemExit):
        mod["main"](["--data-cache", str(cache), "--steps", "2"])
