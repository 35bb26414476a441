"""The comparison rule of scripts/select_vble_model.py on synthetic score files."""

from __future__ import annotations

import json

import pytest
from script_loader import load_script


def _module():
    return load_script("scripts/select_vble_model.py", "select_vble_model")


def _records(psnr, n_good, n=8):
    # n_good records meet both calibration targets; the others have a too-small std
    return [{"setting": f"s{i % 2}", "block": f"b:{i}", "psnr": psnr, "seconds": 1.0,
             "coverage_2sigma": 0.95 if i < n_good else 0.80,
             "zscore_std": 1.0 if i < n_good else 1.5} for i in range(n)]


def _write(tmp_path, name, recs):
    p = tmp_path / f"{name}.json"
    p.write_text(json.dumps(recs))
    return p


def test_higher_psnr_wins_outside_the_tie_band(tmp_path):
    m = _module()
    a = _write(tmp_path, "a", _records(40.00, 8))
    b = _write(tmp_path, "b", _records(40.10, 2))
    assert m.compare([a, b])["selected"] == "b"


def test_a_psnr_tie_is_broken_by_calibration(tmp_path):
    m = _module()
    a = _write(tmp_path, "a", _records(40.00, 7))
    b = _write(tmp_path, "b", _records(40.04, 5))
    res = m.compare([a, b])
    assert res["selected"] == "a"
    assert res["candidates"]["a"]["n_calibrated"] == 7
    assert res["candidates"]["b"]["mean_psnr"] == pytest.approx(40.04)


def test_bad_rule_is_a_usage_error(tmp_path):
    m = _module()
    with pytest.raises(SystemExit):
        m.main(["--weights", "w.pt", "--out", str(tmp_path / "o.json"), "--rule", "1,2,3"])
    with pytest.raises(SystemExit):
        m.main(["--out", str(tmp_path / "o.json")])
