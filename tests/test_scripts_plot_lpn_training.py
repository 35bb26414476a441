"""scripts/plot_lpn_training.py: schedule stages, step-to-stage mapping, one record or a
``records`` bundle, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
from script_loader import load_script

pytest.importorskip("matplotlib")
S = load_script("scripts/plot_lpn_training.py", "plot_lpn_training")

SCHEDULE = [{"loss": "l1", "gamma_rms": None, "steps": 40},
            {"loss": "pm", "gamma_rms": 0.06, "steps": 20},
            {"loss": "pm", "gamma_rms": 0.03, "steps": 20}]


def _record(n_steps=80):
    scale = n_steps / 80
    sched = [dict(s, steps=int(s["steps"] * scale)) for s in SCHEDULE]
    steps = list(range(10, n_steps + 1, 10))
    return {"schedule": sched, "num_parameters": 1234,
            "loss_history": {"step": steps, "loss": [0.05] * len(steps)}}


def test_stages_and_positions():
    st = S.stages(SCHEDULE)
    assert st == [(0, 40, "L1"), (40, 60, "PM γ=0.06"), (60, 80, "PM γ=0.03")]
    assert S._position(20, st) == pytest.approx(0.5)
    assert S._position(40, st) == pytest.approx(1.0)  # a window ending on a boundary
    assert S._position(70, st) == pytest.approx(2.5)
    assert S._position(500, st) == 3.0


def test_single_record_and_bundle(tmp_path, capsys):
    one, bundle = tmp_path / "one.json", tmp_path / "bundle.json"
    one.write_text(json.dumps(_record()))
    bundle.write_text(json.dumps({"records": {"short": _record(40), "long": _record(160)}}))
    out = tmp_path / "f.png"
    assert S.main([str(one), str(bundle), "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "one: final loss 0.05 at step 80" in text and "long: final loss" in text


def test_bad_input(tmp_path):
    out = tmp_path / "f.png"
    empty = tmp_path / "e.json"
    empty.write_text("{}")
    with pytest.raises(SystemExit, match="holds no LPN training record"):
        S.main([str(empty), "--out", str(out)])
    bad = tmp_path / "b.json"
    rec = _record()
    rec["loss_history"]["loss"] = [0.1]
    bad.write_text(json.dumps(rec))
    with pytest.raises(SystemExit, match="no usable loss_history"):
        S.main([str(bad), "--out", str(out)])
    other = tmp_path / "o.json"
    rec = _record()
    rec["schedule"] = rec["schedule"][:2]
    other.write_text(json.dumps({"records": {"a": _record(), "b": rec}}))
    with pytest.raises(SystemExit, match="other stages"):
        S.main([str(other), "--out", str(out)])
