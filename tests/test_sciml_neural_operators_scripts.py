"""Smoke tests of examples/{darcy,burgers,stokes}_neural_operators.py and
benchmarks/bench_neural_operators.py (--quick):
structure and finite numbers only; accuracy and timings are never asserted here."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def test_example_quick_writes_rel_l2_per_model_and_case(tmp_path, monkeypatch):
    ex = _load(ROOT / "examples" / "darcy_neural_operators.py", "_ex_darcy_no", monkeypatch)
    out = tmp_path / "res.json"
    args = ["--quick", "--json", str(out), "--models", "multionet,deeponet,dgno,pi,inverse,ood",
            "--cache-dir", str(tmp_path / "data"), "--run-dir", str(tmp_path / "runs")]
    ex.main(args)
    res = json.loads(out.read_text())
    for model in ("multionet", "deeponet", "dgno", "inverse"):
        assert set(res["rel_l2"][model]) == {"piecewise", "smooth"}
        assert all(math.isfinite(v) for v in res["rel_l2"][model].values())
    assert set(res["rel_l2"]["pi"]) == {"piecewise"}
    inv = res["runs"]["inverse/piecewise/0"]
    assert 0 <= inv["phase_accuracy"] <= 1 and math.isfinite(inv["a_rel_l2"])
    assert "ood" in res["runs"]["ood/piecewise/0"]["models"]["multionet"]
    # rerun: every (model, case, seed) is found in the results file and skipped
    before = out.read_text()
    ex.main(args)
    assert json.loads(out.read_text())["runs"] == json.loads(before)["runs"]


def test_example_rejects_unknown_model(tmp_path, monkeypatch):
    ex = _load(ROOT / "examples" / "darcy_neural_operators.py", "_ex_darcy_no2", monkeypatch)
    with pytest.raises(SystemExit):
        ex.main(["--quick", "--models", "fno", "--cache-dir", str(tmp_path)])


def test_benchmark_quick_reports_speedups(tmp_path, monkeypatch):
    bench = _load(ROOT / "benchmarks" / "bench_neural_operators.py", "_bench_no", monkeypatch)
    out = tmp_path / "b.json"
    assert bench.main(["--quick", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    for key in ("speedup_vs_solver", "speedup_vs_solver_refine1", "shared_trunk_speedup",
                "dgno_epoch_seconds_shared_trunk", "dgno_epoch_seconds_naive",
                "operator_rel_l2_vs_solver"):
        assert math.isfinite(res[key]) and res[key] > 0, key


@pytest.mark.parametrize("name,cases", [
    ("burgers", {"multionet": {"full", "final"}, "dgno": {"full", "final"}}),
    ("stokes", {"multionet": {"u", "v", "p"}, "dgno": {"u", "v", "p"}}),
])
def test_pde_examples_quick_write_rel_l2_and_figures(name, cases, tmp_path, monkeypatch):
    ex = _load(ROOT / "examples" / f"{name}_neural_operators.py", f"_ex_{name}", monkeypatch)
    out = tmp_path / "res.json"
    args = ["--quick", "--json", str(out), "--cache-dir", str(tmp_path / "data"),
            "--run-dir", str(tmp_path / "runs"), "--fig-dir", str(tmp_path / "figs")]
    ex.main(args)
    res = json.loads(out.read_text())
    assert {m: set(v) for m, v in res["rel_l2"].items()} == cases
    assert all(math.isfinite(v) for m in res["rel_l2"].values() for v in m.values())
    figs = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert figs and all(f.startswith(name) and f.endswith(".png") for f in figs)
    before = out.read_text()
    ex.main(args)  # rerun: finished runs are skipped
    assert json.loads(out.read_text())["runs"] == json.loads(before)["runs"]
