"""Snapshots of the LPN training script, the unconstrained-denoiser control and their scoring.

``scripts/train_lpn_deblur.py --snapshot-every``, ``scripts/train_denoiser_baseline.py`` and
``scripts/score_lpn_snapshots.py`` (issue 15: PnP PSNR against training steps).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from problems import needs_satellite_data
from script_loader import load_script

from inverse.lpn import load_lpn


@pytest.fixture(scope="module")
def scripts():
    train = load_script("scripts/train_lpn_deblur.py", "train_lpn_deblur", register=True)
    base = load_script("scripts/train_denoiser_baseline.py", "train_denoiser_baseline",
                       register=True)
    return train, base


@pytest.fixture(scope="module")
def cache(tmp_path_factory, scripts):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("cache") / "c.npz"
    scripts[0].write_cache(path, {f"{g}/img{i}": rng.random((40 + 3 * i, 50))
                                  for g in ("pan", "naip", "natural") for i in range(2)})
    return path


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_lpn_snapshots_do_not_change_the_training(tmp_path, scripts, cache):
    """Training in resumed chunks (to save snapshots) gives the weights of one straight run."""
    train = scripts[0]
    common = ["--data-cache", str(cache), "--quick", "--steps", "20"]
    train.main([*common, "--out", str(tmp_path / "a.pt"), "--checkpoint", str(tmp_path / "a.ck")])
    meta = train.main([*common, "--out", str(tmp_path / "b.pt"), "--checkpoint",
                       str(tmp_path / "b.ck"), "--snapshot-every", "8"])
    snaps = sorted((tmp_path / "b_snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["step000008.pt", "step000016.pt", "step000020.pt"]
    a, b = load_lpn(tmp_path / "a.pt"), load_lpn(tmp_path / "b.pt")
    last = load_lpn(snaps[-1])
    for k, v in _state(a).items():
        torch.testing.assert_close(_state(b)[k], v, rtol=0, atol=0)
        torch.testing.assert_close(_state(last)[k], v, rtol=0, atol=0)
    assert not torch.equal(_state(load_lpn(snaps[0]))["icnn.out_x.weight"],
                           _state(a)["icnn.out_x.weight"])
    assert meta["steps"] == 20 and len(meta["loss_history"]["loss"]) == 20


def test_lpn_snapshots_need_a_checkpoint(tmp_path, scripts, cache):
    with pytest.raises(SystemExit):
        scripts[0].main(["--data-cache", str(cache), "--quick", "--snapshot-every", "5",
                         "--out", str(tmp_path / "m.pt")])


def _baseline(base, cache, out, snap=None):
    args = ["--data-cache", str(cache), "--steps", "12", "--depth", "2", "--nf", "4",
            "--patch", "24", "--batch", "4", "--n-patches", "32", "--out", str(out),
            "--checkpoint", str(out.with_suffix(".ck"))]
    return base.main(args + (["--snapshot-every", str(snap)] if snap else []))


def test_baseline_denoiser_trains_resumes_exactly_and_round_trips(tmp_path, scripts, cache):
    base = scripts[1]
    _baseline(base, cache, tmp_path / "a.pt")
    meta = _baseline(base, cache, tmp_path / "b.pt", snap=5)
    assert meta["num_parameters"] > 0 and meta["command"].startswith(
        "python scripts/train_denoiser_baseline.py")
    snaps = sorted((tmp_path / "b_snapshots").glob("*.pt"))
    assert [p.name for p in snaps] == ["step000005.pt", "step000010.pt", "step000012.pt"]
    a, cfg = base.load_denoiser(tmp_path / "a.pt")
    b, _ = base.load_denoiser(tmp_path / "b.pt")
    assert cfg == {"arch": "deepinv.models.DnCNN", "depth": 2, "nf": 4, "sigma_train": 0.03}
    x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)  # chunks = one straight run
        assert not torch.equal(a(x), base.load_denoiser(snaps[0])[0](x))


def test_baseline_rejects_bad_arguments(tmp_path, scripts, cache):
    for bad in (["--steps", "0"], ["--depth", "1"], ["--snapshot-every", "0"], ["--mix", "1,0"],
                ["--mix", "a,b,c"], ["--mix", "-1,1,1"]):
        with pytest.raises(SystemExit):
            scripts[1].main(["--data-cache", str(cache), "--out", str(tmp_path / "m.pt"),
                             "--checkpoint", str(tmp_path / "c.ck"), *bad])


@needs_satellite_data
def test_scoring_script_scores_both_families_and_skips_scored_files(tmp_path, scripts, cache):
    train, base = scripts
    lpn = tmp_path / "lpn_step000020.pt"
    train.main(["--data-cache", str(cache), "--quick", "--steps", "20", "--out", str(lpn)])
    _baseline(base, cache, tmp_path / "dn.pt", snap=6)
    score = load_script("scripts/score_lpn_snapshots.py", "score_lpn_snapshots")
    files = [str(lpn), *map(str, sorted((tmp_path / "dn_snapshots").glob("*.pt")))]
    small = ["--crops", "2", "--size", "32", "--iters", "3", "--tv-iters", "5",
             "--json", str(tmp_path / "s.json")]
    data = score.main([*files, *small, "--plot", str(tmp_path / "s.png"), "--phases", "8",
                       "--per-crop-plot", str(tmp_path / "c.png"), "--label", "dn_snapshots=DnCNN"])
    assert [(r["family"], r["step"]) for r in data["scores"]] == [
        ("lpn", 20), ("dncnn", 6), ("dncnn", 12)]
    tv = data["tv"]
    for r in data["scores"]:
        for task in ("deblur_noise0.01", "deblur_noise0.02", "denoise"):
            assert 5.0 < r[task] < 60.0
            assert np.mean(r[f"{task}_per_crop"]) == pytest.approx(r[task], abs=2e-3)
        assert r["deblur_noise0.01_residual"] >= 0.0
    # TV's reference is the best of its grid, and the grid's scores are recorded
    for task in ("deblur_noise0.01", "deblur_noise0.02", "denoise"):
        assert tv[task]["psnr"] == max(tv[task]["train_psnr"])
        assert tv[task]["lam"] in tv[task]["grid"]
        assert len(tv[task]["per_crop"]) == 2
    assert (tmp_path / "s.png").stat().st_size > 10_000
    assert (tmp_path / "c.png").stat().st_size > 10_000
    with pytest.raises(SystemExit):
        score.main([*small, "--label", "no-equals-sign"])
    again = score.main([*files, *small])  # nothing new to score: the same records
    assert again["scores"] == json.loads((tmp_path / "s.json").read_text())["scores"]
    assert again["scores"] == data["scores"]
    with pytest.raises(SystemExit):  # another setup cannot extend the file
        score.main([*files, *small[:-2], "--iters", "4", "--json", str(tmp_path / "s.json")])
    lip = score.main([*small, "--lipschitz", "--lipschitz-plot", str(tmp_path / "l.png")])
    assert all(r["lipschitz"] == max(r["lipschitz_per_crop"]) > 0 for r in lip["scores"])
    assert (tmp_path / "l.png").stat().st_size > 10_000
    ev = score.main([files[0], *small[:-1], str(tmp_path / "e.json"), "--split", "eval"])
    assert ev["setup"]["split"] == "eval" and ev["crop_list"][0][0].startswith("rotterdam3")


class _Scale(torch.nn.Module):
    def __init__(self, a: torch.Tensor):
        super().__init__()
        self.a = a

    def forward(self, x):
        return self.a * x


def test_jacobian_norm_is_exact_on_diagonal_maps():
    """f(x) = a ⊙ x has ‖J‖₂ = max |a| per image; power iteration on JᵀJ finds it."""
    from inverse import LPNPrior

    score = load_script("scripts/score_lpn_snapshots.py", "score_lpn_snapshots_j")
    a = torch.ones(1, 1, 8, 8)
    a[0, 0, 3, 5] = 2.5
    a[0, 0, 1, 1] = -1.7
    y = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    prior = LPNPrior(score._NoGrad(_Scale(a)), 0.03)
    assert score.jacobian_norm(prior, y, iters=60) == pytest.approx([2.5, 2.5], rel=1e-3)
