"""Smoke tests of the LPN examples and benchmark (``--quick``): structure and finite numbers.

Accuracy targets are checked by running the scripts with their default settings (documented in
their docstrings); timings are never asserted.
"""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from problems import needs_satellite_data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _finite(*values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_lpn_laplace_quick(tmp_path):
    mod = runpy.run_path(str(ROOT / "examples" / "lpn_laplace.py"), run_name="lpn_laplace")
    out = tmp_path / "laplace.json"
    res = mod["main"](["--quick", "--no-progress", "--json", str(out), "--plot",
                       str(tmp_path / "laplace.png")])
    saved = json.loads(out.read_text())
    keys = ("max_err_l2", "max_err_l1", "max_err_prox_matching", "max_err_soft_threshold_tail")
    for key in keys:
        assert _finite(saved[key]) and saved[key] == pytest.approx(res[key])
    assert saved["quick"] is True and (tmp_path / "laplace.png").stat().st_size > 0
    assert len(saved["stages"]) == 7 and saved["gamma_final"] == 0.1
    # the exact oracles at y = 1.5 (lpn.md §9)
    at = saved["at_y_1.5"]
    assert at["posterior_mean"] == pytest.approx(0.8056, abs=1e-4)
    assert at["posterior_median"] == pytest.approx(0.7325, abs=1e-4)
    assert at["soft_threshold"] == 0.5 and at["pm_minimizer"] == pytest.approx(0.5, abs=1e-3)
    assert not list(tmp_path.glob("*.tmp"))


def test_lpn_laplace_oracles():
    import numpy as np

    mod = runpy.run_path(str(ROOT / "examples" / "lpn_laplace.py"), run_name="lpn_laplace")
    y = np.array([0.5, 1.0, 2.0, 3.0, -2.0])
    mean, median = mod["posterior_mean_median"](y)
    np.testing.assert_allclose(mean, [0.2410, 0.5032, 1.1611, 2.0258, -1.1611], atol=1e-4)
    np.testing.assert_allclose(median, [0.1901, 0.4288, 1.1067, 2.0125, -1.1067], atol=1e-4)
    star = mod["pm_minimizer"](np.array([1.0, 2.0, -2.0]), 0.1)
    assert star[0] == pytest.approx(0.111, abs=2e-3)  # lpn.md: 0.11 from soft at |y| = 1
    np.testing.assert_allclose(star[1:], [1.0, -1.0], atol=1e-4)
    # γ → 0: the minimiser tends to the soft-threshold (the MAP)
    assert mod["pm_minimizer"](np.array([1.0]), 0.005)[0] < 0.02


def test_lpn_prior_digits_quick(tmp_path):
    mod = runpy.run_path(str(ROOT / "examples" / "lpn_prior_digits.py"), run_name="digits")
    out = tmp_path / "digits.json"
    res = mod["main"](["--quick", "--no-progress", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert -1.0 <= saved["spearman_noise"] <= 1.0 and -1.0 <= saved["spearman_blur"] <= 1.0
    assert saved["spearman_noise"] == pytest.approx(res["spearman_noise"])
    assert set(saved["mean_R_noise"]) == {"0.0", "0.05", "0.1", "0.2", "0.3"}
    assert set(saved["mean_R_blur"]) == {"0.0", "0.5", "1.0", "2.0"}
    assert _finite(*saved["mean_R_noise"].values(), *saved["mean_R_blur"].values())
    assert saved["inversions_not_converged"] == 0


def test_lpn_benchmark_quick(tmp_path, capsys):
    mod = runpy.run_path(str(ROOT / "benchmarks" / "bench_lpn.py"), run_name="bench_lpn")
    out = tmp_path / "sub" / "lpn.json"
    assert mod["main"](["--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "prior_eval_speedup" in printed
    data = json.loads(out.read_text())
    assert _finite(data["prior_eval_speedup"], data["ours_s"], data["reference_fmin_cg_s"],
                   data["prox_call_s"]["median"])
    assert data["ours"]["converged"] == data["meta"]["n_images"]
    assert data["agreement"]["max_rel_diff_R"] < 1e-6  # both solve the same problem
    assert not list(out.parent.glob(".lpn-bench-*"))


# ---------------------------------------------------------------- lpn_operators / lpn_regularizer
@pytest.fixture(scope="module")
def operators_example() -> dict:
    return runpy.run_path(str(ROOT / "examples" / "lpn_operators.py"), run_name="lpn_operators")


@pytest.mark.parametrize("n", [32, 64, 128])
def test_cs_masks_are_symmetric_and_reach_the_fraction(operators_example, n):
    ex = operators_example
    m, lines = ex["radial_mask"](n, 0.25)
    assert ex["is_symmetric"](m) and float(m.mean()) >= 0.25
    assert float(ex["radial_lines"](n, lines - 1).mean()) < 0.25  # the fewest lines
    assert m[0, 0] == 1
    r = ex["random_lines_mask"](n, 0.25, seed=3)
    assert ex["is_symmetric"](r)
    rows = r.sum(1)
    assert set(rows.unique().tolist()) <= {0.0, float(n)}  # whole lines only
    assert all(r[k % n].all() for k in range(-4, 5))  # the low frequencies are kept
    assert 0.25 <= float(r.mean()) < 0.25 + 2.0 / n + 1e-9
    asym = r.clone()
    asym[5] = 1 - asym[5]
    assert not ex["is_symmetric"](asym)
    with pytest.raises(ValueError, match="fraction"):
        ex["radial_mask"](n, 0.0)


def test_operators_example_problems(operators_example):
    ex = operators_example
    x = torch.rand(2, 1, 16, 16)
    fid, x0, obs = ex["make_problem"]("sr2_noise0.01", x, seed=0)
    assert fid.op.out_shape == (1, 8, 8) and x0.shape == x.shape
    assert torch.equal(x0[..., ::2, ::2], fid.y)  # pixel replication of the data
    fid, x0, _ = ex["make_problem"]("cs_lines25_noise0.01", x, seed=0)
    assert fid.real and not x0.is_complex()
    # noiseless CS data: the real prox at a huge weight on the data returns the
    # least-squares image, which for a full mask is the image itself
    full = ex["FourierSampling"](torch.ones(16, 16), (1, 16, 16))
    f = ex["L2DataFidelity"](full, full(x), real=True)
    torch.testing.assert_close(f.prox(torch.zeros_like(x), 1e8), x, atol=1e-5, rtol=0)


@needs_satellite_data
def test_operators_example_quick_run(tmp_path, operators_example):
    out, figs = tmp_path / "ops.json", tmp_path / "figs"
    res = operators_example["main"](["--quick", "--json", str(out), "--figures", str(figs),
                                     "--tasks", "sr2_noise0.01,cs_radial25_noise0.01"])
    saved = json.loads(out.read_text())
    assert set(saved["tasks"]) == {"sr2_noise0.01", "cs_radial25_noise0.01"}
    for rec in saved["tasks"].values():
        for key in ("psnr_lpn", "psnr_tv", "psnr_tikhonov", "ssim_lpn", "psnr_start"):
            assert _finite(rec[key])
        assert rec["lam_lpn"] == pytest.approx((rec["noise"] / 0.03) ** 2)
        assert rec["rho_lpn"] == pytest.approx(rec["lam_lpn"])  # ADMM penalty = MAP weight
        assert rec["tuning"]["tv"]["lam"] in rec["tuning"]["tv"]["grid"]
        assert rec["psnr_tv"] > rec["psnr_start"] and rec["psnr_lpn"] > rec["psnr_start"]
        png = out.parent / rec["figure"]  # relative to the JSON's folder
        assert not Path(rec["figure"]).is_absolute()
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cs = saved["tasks"]["cs_radial25_noise0.01"]
    assert cs["mask_symmetric"] and cs["sampling_fraction"] >= 0.25
    assert saved["lpn_minus_tv_db"] == pytest.approx(res["lpn_minus_tv_db"])
    with pytest.raises(SystemExit):
        operators_example["main"](["--tasks", "denoise"])


@needs_satellite_data
def test_regularizer_example_quick_run(tmp_path):
    mod = runpy.run_path(str(ROOT / "examples" / "lpn_regularizer.py"), run_name="lpn_reg")
    assert mod["spearman"]([1, 2, 3, 4], [0.1, 0.5, 0.4, 2.0]) == pytest.approx(0.8)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = mod["main"](["--quick", "--json", str(out), "--plot", str(png)])
    assert json.loads(out.read_text())["noise"]["levels"] == list(mod["NOISE_LEVELS"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert res["inversions_not_converged"] == 0
    # the path starts at the clean image: the same R as noise level 0 (float64 inversions)
    np.testing.assert_allclose(res["R_path_start"], res["R_clean"], rtol=0, atol=1e-6)
    for key in ("path", "noise", "blur"):
        assert res[key]["mean_delta_R"][0] == 0.0 and len(res[key]["spearman_per_crop"]) == 2
    # the weak-convexity bound of the blur change: 0 at no blur, >= 0 (|k^| <= 1), growing
    b = np.asarray(res["blur"]["bound_per_crop"])
    assert np.all(b[:, 0] == 0) and np.all(np.diff(b, axis=1) >= -1e-12)
    assert 0 <= res["blur"]["within_bound"] <= 2
    # white noise of std 0.08 raises R of a denoiser's prior on every crop
    assert all(row[-1] > 0 for row in res["noise"]["delta_R_per_crop"])
