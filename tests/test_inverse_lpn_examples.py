"""Smoke tests of the LPN examples and benchmark (``--quick``): structure and finite numbers.

Accuracy targets are checked by running the scripts with their default settings (documented in
their docstrings); timings are never asserted.
"""

from __future__ import annotations

import json
import math
import runpy
from pathlib import Path

import pytest
import torch

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
