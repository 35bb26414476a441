"""The demo job (``make demo``) runs on the bundled image and beats its baselines."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_demo_deblur_improves_on_baselines(tmp_path):
    demo = runpy.run_path(str(ROOT / "examples" / "demo_deblur.py"), run_name="demo")
    res = demo["main"](["--out", str(tmp_path), "--admm-iters", "15", "--no-plot"])
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["psnr_tikhonov_closed_form"] == pytest.approx(res["psnr_tikhonov_closed_form"])
    # the regularized reconstructions beat bilinear upsampling by a clear margin
    assert res["psnr_tikhonov_closed_form"] > res["psnr_bilinear"] + 1.0
    assert res["psnr_admm_tv"] > res["psnr_bilinear"] + 1.0
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left no temporary file


def test_demo_rejects_bad_settings(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "demo_deblur.py"), "--out",
                           str(tmp_path), "--rho", "-1"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--rho and --tv > 0" in proc.stderr
