"""Smoke test of ``benchmarks/bench_operators.py --quick`` (structure and finite numbers only).

Timings are never asserted: CI machines are shared and drift.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from script_loader import load_script

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_operators.py"


def _load(monkeypatch: pytest.MonkeyPatch):
    return load_script(BENCH, "_benchmarks_operators", monkeypatch)


def _finite(values) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def test_quick_benchmark_writes_the_expected_json(tmp_path, capsys, monkeypatch):
    bench = _load(monkeypatch)
    out = tmp_path / "sub" / "operators.json"
    assert bench.main(["--quick", "--rounds", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "correctness" in printed and "timing" in printed
    assert "MISMATCH" not in printed
    data = json.loads(out.read_text())
    assert set(data) == {"meta", "cases"}
    assert {"device", "torch", "deepinv", "threads", "rounds", "quick"} <= set(data["meta"])
    assert data["meta"]["quick"] is True and data["meta"]["rounds"] == 2
    assert [p.name for p in out.parent.iterdir()] == ["operators.json"]  # no temporary file
    names = [c["name"] for c in data["cases"]]
    assert names.count("fwd_adj") == 2 and names.count("gram") == 2 and names.count("solve") == 1
    assert names.count("solve_neumann") == 1
    expected_impls = {
        "fwd_adj": {"ours", "raw_torch", "deepinv_BlurFFT", "deepinv_Blur_fft"},
        "gram": {"ours", "ours_incl_gram()", "deepinv_A_adjoint(A(x))", "deepinv_A_adjoint_A"},
        "solve": {"ours", "ours_prox_l2", "cg_20", "deepinv_prox_l2"},
        "solve_neumann": {"ours", "cg_default"},
    }
    for case in data["cases"]:
        assert {"name", "shape", "median_s", "times_s", "ratios", "checks", "accuracy"} <= set(case)
        assert set(case["median_s"]) == expected_impls[case["name"]]
        assert _finite(case["median_s"].values())
        assert all(len(t) == 2 and _finite(t) for t in case["times_s"].values())
        for ratio in case["ratios"].values():
            assert _finite([ratio["median"], ratio["min"], ratio["max"]])
        for check in case["checks"]:
            assert _finite([check["rel_err"]])
            assert check["ok"] is True or not check["gated"]
    solve = next(c for c in data["cases"] if c["name"] == "solve")
    assert set(solve["accuracy"]) == expected_impls["solve"]
    assert all(_finite(a.values()) for a in solve["accuracy"].values())
    assert solve["ratios"]["ours/cg_20"]["target_max"] == pytest.approx(0.1)
    neumann = next(c for c in data["cases"] if c["name"] == "solve_neumann")
    assert neumann["dtype"] == "float64"
    # the DCT closed form is exact to rounding; CG stops at its float64 default rtol (1e-10)
    assert neumann["accuracy"]["ours"]["rel_residual"] < 1e-13
    assert neumann["accuracy"]["cg_default"]["rel_residual"] < 1e-9
    assert neumann["ratios"]["ours/cg_default"]["accuracy_ok"] is True


def test_no_benchmark_shadows_a_package():
    """Run as a script, a benchmark's folder is sys.path[0]: no file there may be named like an
    importable top-level package, and no script edits sys.path to work around it."""
    import importlib.util as iu

    scripts = sorted(BENCH.parent.glob("*.py"))
    assert BENCH in scripts
    for script in scripts:
        assert iu.find_spec(script.stem) is None, f"{script.name} shadows a module"
        assert script.stem.startswith("bench_"), f"{script.name}: name benchmarks bench_*.py"
        assert "sys.path" not in script.read_text(), f"{script.name} edits sys.path"


@pytest.mark.slow
def test_training_precision_benchmark_quick(tmp_path, monkeypatch):
    """bench_training_precision.py --quick: structure and finite numbers (no timing asserted)."""
    module = load_script(BENCH.parent / "bench_training_precision.py",
                         "_bench_training_precision", monkeypatch)
    out = tmp_path / "tp.json"
    res = module.main(["--quick", "--steps", "3", "--json", str(out)])
    data = json.loads(out.read_text())
    assert set(data["models"]) == {"cae", "std_decoder", "lpn"} == set(res["models"])
    assert data["meta"]["mixed"] in ("fp32", "bf16")
    for r in data["models"].values():
        assert _finite([r["loss_fp32"], r["loss_mixed"], r["loss_fp32_other_seed"],
                        r["speedup"], r["fp32"]["median_step_s"], r["mixed"]["median_step_s"]])
        assert len(r["fp32"]["step_times_s"]) == 3
        assert isinstance(r["loss_agrees"], bool)
