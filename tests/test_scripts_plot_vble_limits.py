"""scripts/plot_vble_limits.py: gains against TV and the lowest-noise TV per crop on a small
hand-made evaluation JSON, the figure written, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from script_loader import load_script

pytest.importorskip("matplotlib")
S = load_script("scripts/plot_vble_limits.py", "plot_vble_limits")

RESULTS = {"mtf0.10_d1_low": {"tv": {"psnr": 48.0}, "cli_default": {"psnr": 49.0},
                              "tikhonov": {"psnr": 47.5}},
           "mtf0.10_d1_vlow": {"tv": {"psnr": 51.0}, "cli_default": {"psnr": 50.9},
                               "tikhonov": {"psnr": None}}}
RECORDS = [{"method": "tv", "setting": "mtf0.10_d1_vlow", "crop": 0, "psnr": 52.0},
           {"method": "tv", "setting": "mtf0.25_d1_vlow", "crop": 0, "psnr": 54.0},
           {"method": "tv", "setting": "mtf0.10_d1_vlow", "crop": 1, "psnr": 50.0},
           {"method": "tv", "setting": "mtf0.10_d1_low", "crop": 1, "psnr": 60.0},
           {"method": "cli_default", "setting": "mtf0.10_d1_vlow", "crop": 0, "psnr": 99.0}]


def test_gains_and_lowest_noise_tv():
    g = S.gains(RESULTS)
    assert g["cli_default"] == pytest.approx({"mtf0.10_d1_low": 1.0, "mtf0.10_d1_vlow": -0.1})
    assert g["tikhonov"] == pytest.approx({"mtf0.10_d1_low": -0.5})  # None is skipped
    # only the lowest noise level counts, and only TV
    assert S.lowest_noise_tv(RECORDS) == {0: 54.0, 1: 50.0}


def test_figure_and_bad_input(tmp_path, capsys):
    ev, ce = tmp_path / "ev.json", tmp_path / "ce.json"
    ev.write_text(json.dumps({"results": RESULTS, "records": RECORDS}))
    ce.write_text(json.dumps({"runs": [
        {"label": "a", "images_seen": 1e5, "ceiling_db": [50.0, 48.0], "family": "cpu"},
        {"label": "b", "images_seen": 3e5, "ceiling_db": [53.0, 50.0], "family": "cpu"},
        {"label": "c", "images_seen": 3.4e5, "ceiling_db": [53.2, 50.1], "family": "GPU"}]}))
    out = tmp_path / "f.png"
    assert S.main([str(ev), str(ce), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "cli_default: mean +0.450 dB over TV; worst -0.100 dB (mtf0.10_d1_vlow)" in text
    assert "crop 0: 54.00 dB, crop 1: 50.00 dB" in text
    with pytest.raises(SystemExit, match="is not a decoder-ceiling table"):
        S.main([str(ev), str(ev), "--out", str(out)])
    with pytest.raises(SystemExit, match="is not a VBLE evaluation JSON"):
        S.main([str(ce), str(ce), "--out", str(out)])
