"""The fit of the decoder-error rule (scripts/fit_vble_decoder_error.py) on synthetic records."""

from __future__ import annotations

import math

import pytest
from script_loader import load_script


def _module():
    return load_script("scripts/fit_vble_decoder_error.py", "fit_vble_decoder_error")


def _record(setting, c_hat, c_true, power=0.8):
    # z-score std of the samples ~ (c_true / c)^power: crosses 1 exactly at c = c_true
    return {"setting": setting, "crop_name": "x", "c_hat": c_hat,
            "by_c": {str(c): {"zscore_std": (c_true / c) ** power, "coverage_2sigma": 0.9,
                              "psnr": 40.0} for c in (0.4, 0.6, 0.85, 1.2)}}


def test_c_star_is_exact_for_power_laws_inside_and_outside_the_grid():
    m = _module()
    for c_true in (0.5, 0.9, 1.1, 2.0):  # 2.0 is outside the grid: log-log extrapolation
        assert m.c_star(_record("mtf0.10_d1_low", 0.5, c_true)) == pytest.approx(c_true,
                                                                                  rel=1e-9)


def test_fit_gain_and_fallback():
    m = _module()
    recs = [_record("mtf0.10_d1_low", 0.5, 0.75), _record("mtf0.10_d1_high", 0.6, 1.2),
            _record("mtf0.10_d2_low", 0.5, 1.25), _record("mtf0.10_d2_high", 1e-6, 1.6),
            _record("mtf0.10_d2_vlow", 0.1, 1.8)]  # c_hat^2 = 0.01: not informative
    table = {t["ratio"]: t for t in m.fit(recs)["table"]}
    assert table[1.0]["gain"] == pytest.approx(math.sqrt(1.5 * 2.0), abs=0.005)
    assert table[1.0]["fallback"] == pytest.approx(math.sqrt(0.75 * 1.2), abs=0.005)
    assert table[0.25]["gain"] == pytest.approx(2.5, abs=0.005)
    assert table[0.25]["fallback"] == pytest.approx(math.sqrt(1.6 * 1.8), abs=0.005)
    assert table[0.25]["n_informative"] == 1
