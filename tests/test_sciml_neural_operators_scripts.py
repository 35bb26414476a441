"""Smoke tests of examples/{darcy,burgers,stokes}_neural_operators.py and
benchmarks/bench_neural_operators.py (--quick):
structure and finite numbers only; accuracy and timings are never asserted here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str, monkeypatch: pytest.MonkeyPatch):
    return load_script(path, name, monkeypatch)


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


def test_example_dgno_variant_is_recorded_and_kept_apart(tmp_path, monkeypatch):
    """--dgno-top-k / --dgno-lr reach the loss and the optimiser, and their runs get their own
    name, settings and checkpoint (the default run's results are not reused for them)."""
    ex = _load(ROOT / "examples" / "darcy_neural_operators.py", "_ex_darcy_no3", monkeypatch)
    from argparse import Namespace

    args = Namespace(flux_weight=1.0, dgno_top_k=7, dgno_lr=5e-4)
    assert ex._dgno_variant(args) == {"top_k": 7, "lr": 5e-4}
    assert ex._dgno_name(args) == "dgno_topk7_lr0.0005"
    assert ex._dgno_name(Namespace(flux_weight=1.0, dgno_top_k=None, dgno_lr=1e-3)) == "dgno"
    assert ex.dgno_loss_options("smooth", 10, top_k=7).top_k == 7
    out = tmp_path / "res.json"
    base = ["--quick", "--json", str(out), "--models", "dgno", "--cases", "smooth",
            "--cache-dir", str(tmp_path / "data"), "--run-dir", str(tmp_path / "runs")]
    ex.main(base + ["--dgno-top-k", "7", "--dgno-lr", "5e-4"])
    run = json.loads(out.read_text())["runs"]["dgno_topk7_lr0.0005/smooth/0"]
    assert run["settings"]["top_k"] == 7 and run["settings"]["lr"] == 5e-4
    assert run["checkpoint"].endswith("_topk7_lr0.0005.pt") and math.isfinite(run["rel_l2"])
    for bad in (["--dgno-top-k", "0"], ["--dgno-lr", "-1"]):
        with pytest.raises(SystemExit):
            ex.main(base + bad)


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
    ("burgers", {"multionet": {"full", "final"}, "multionet_final": {"final"},
                 "dgno": {"full", "final"}}),
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


def test_burgers_dgno_variants_are_recorded_and_kept_apart(tmp_path, monkeypatch):
    """--dgno-w-init / --dgno-pde-weight reach the model and the loss, are recorded in the
    settings and get their own checkpoint (a rerun with other values does not reuse a run)."""
    ex = _load(ROOT / "examples" / "burgers_neural_operators.py", "_ex_burgers_v", monkeypatch)
    model = ex.build_dgno(0, 8, ex.torch.linspace(-1, 1, 128), weight_init=1.0)
    assert bool((model.u_decoder.weights == 1.0).all())
    out = tmp_path / "res.json"
    base = ["--quick", "--models", "dgno", "--json", str(out), "--cache-dir",
            str(tmp_path / "data"), "--run-dir", str(tmp_path / "runs"), "--fig-dir",
            str(tmp_path / "figs")]
    ex.main(base + ["--dgno-w-init", "1", "--dgno-pde-weight", "100"])
    settings = json.loads(out.read_text())["runs"]["dgno"]["settings"]
    assert settings["w_init"] == 1.0 and settings["pde_weight"] == 100.0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "burgers_dgno_e1_w16_s0_reference_w1_pw100_n6-2-2.pt"]
    with pytest.raises(SystemExit):
        ex.main(base + ["--dgno-pde-weight", "0"])


def test_burgers_data_options_and_the_final_time_model(tmp_path, monkeypatch):
    """--nu / --ic-amplitude reach the generator (the amplitude scales u0 exactly), get their
    own data file, checkpoint and settings; multionet_final maps u0 to u(., 1) with a 1-D trunk
    and is scored at the final time only."""
    import h5py
    import numpy as np

    ex = _load(ROOT / "examples" / "burgers_neural_operators.py", "_ex_burgers_d", monkeypatch)
    out = tmp_path / "res.json"
    base = ["--quick", "--models", "multionet_final", "--json", str(out), "--cache-dir",
            str(tmp_path / "data"), "--run-dir", str(tmp_path / "runs"), "--fig-dir",
            str(tmp_path / "figs")]
    ex.main(base)
    ex.main(base + ["--ic-amplitude", "1.5", "--nu", "0.05"])
    run = json.loads(out.read_text())["runs"]["multionet_final"]
    assert run["settings"]["ic_amplitude"] == 1.5 and run["settings"]["nu"] == 0.05
    assert set(run["rel_l2"]) == {"final"}
    files = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert files == ["burgers_n10_s0.h5", "burgers_n10_s0_nu0.05_A1.5.h5"]
    d = tmp_path / "data"
    with h5py.File(d / files[0]) as f0, h5py.File(d / files[1]) as f1:
        u0, u1 = np.asarray(f0["u0"]), np.asarray(f1["u0"])
        np.testing.assert_allclose(u1, 0.5 * u0, rtol=1e-12)
        end0, end1 = np.asarray(f0["u_sol"])[:, -1], np.asarray(f1["u_sol"])[:, -1]
        assert not np.allclose(end1, 0.5 * end0)  # nonlinear, and another viscosity
    ex.main(base + ["--mirror"])
    assert json.loads(out.read_text())["runs"]["multionet_final"]["settings"]["mirror"] is True
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "burgers_multionet_final_e1_w16_s0_mirror_n6-2-2.pt",
        "burgers_multionet_final_e1_w16_s0_n6-2-2.pt",
        "burgers_multionet_final_e1_w16_s0_nu0.05_A1.5_n6-2-2.pt"]
    model = ex.build_multionet_final(0, 8)
    x = ex.torch.linspace(-1, 1, 128)[:, None]
    assert model(ex.torch.randn(3, 128), x).shape == (3, 128)
    for bad in (["--nu", "0"], ["--ic-amplitude", "nan"]):
        with pytest.raises(SystemExit):
            ex.main(base + bad)


def test_burgers_mirror_is_an_exact_symmetry(monkeypatch):
    """-u(-x, t) solves Burgers' equation from -u0(-x) (the reference solver agrees to its
    tolerance), and ``mirror`` swaps each sample for its image with probability 1/2."""
    import numpy as np
    import torch

    from sciml.pde import solve_burgers

    ex = _load(ROOT / "examples" / "burgers_neural_operators.py", "_ex_burgers_m", monkeypatch)
    x, t = np.linspace(-1, 1, 65), np.linspace(0, 1, 6)

    def u0(z):
        return np.sin(np.pi * (z + 1)) * (0.8 + 0.5 * z) + 0.3 * np.sin(3 * np.pi * (z + 1) / 2)

    u = solve_burgers(u0, x, t, n_cheb=64)
    um = solve_burgers(lambda z: -u0(-z), x, t, n_cheb=64)
    np.testing.assert_allclose(um, -u[:, ::-1], atol=1e-6)
    assert np.abs(u[-1] + u[-1, ::-1]).max() > 0.05  # the test case itself is not symmetric
    a, sol = torch.randn(400, 16), torch.randn(400, 3, 16)
    a2, s2 = ex.mirror(a, sol, torch.Generator().manual_seed(0))
    flipped = (a2 == -a.flip(-1)).all(1)
    same = (a2 == a).all(1)
    assert bool((flipped ^ same).all()) and 160 < int(flipped.sum()) < 240
    assert torch.equal(s2[flipped], -sol[flipped].flip(-1)) and torch.equal(s2[same], sol[same])


def test_stokes_example_fields_selects_the_supervised_runs(tmp_path, monkeypatch):
    ex = _load(ROOT / "examples" / "stokes_neural_operators.py", "_ex_stokes_f", monkeypatch)
    out = tmp_path / "res.json"
    base = ["--quick", "--models", "multionet", "--cache-dir", str(tmp_path / "data"),
            "--run-dir", str(tmp_path / "runs"), "--fig-dir", str(tmp_path / "figs")]
    ex.main(base + ["--fields", "v", "--json", str(out)])
    assert set(json.loads(out.read_text())["rel_l2"]["multionet"]) == {"v"}
    with pytest.raises(SystemExit):
        ex.main(base + ["--fields", "v,w"])


# ------------------------------------------------------------------------------ Stokes DGNO
def test_stokes_dgno_velocity_is_the_curl_of_the_stream_function(monkeypatch):
    """u = ψ_y, v = −ψ_x and their gradients (from the jet's Hessian) against autograd in
    float64; the velocity is divergence-free to rounding."""
    import torch

    ex = _load(ROOT / "examples" / "stokes_neural_operators.py", "_ex_stokes_v", monkeypatch)
    torch.manual_seed(0)
    model = ex.StokesDGNO(9, 12, latent=6).double()
    for p in model.parameters():  # the reference's w_k = 0 init would make ψ constant
        torch.nn.init.normal_(p, std=0.3)
    beta = torch.rand(3, 6, dtype=torch.float64) * 2 - 1
    x = torch.rand(11, 2, dtype=torch.float64)
    u, v, gu, gv = model.velocity(beta, x, gradient=True)
    xb = x.expand(3, -1, -1).clone().requires_grad_(True)
    psi = model.decoders["psi"](beta, xb)
    (g,) = torch.autograd.grad(psi.sum(), xb, create_graph=True)
    torch.testing.assert_close(u, g[..., 1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v, -g[..., 0], rtol=1e-12, atol=1e-12)
    (du,) = torch.autograd.grad(g[..., 1].sum(), xb, retain_graph=True)
    (dv,) = torch.autograd.grad(-g[..., 0].sum(), xb)
    torch.testing.assert_close(gu, du, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gv, dv, rtol=1e-10, atol=1e-10)
    assert float((gu[..., 0] + gv[..., 1]).detach().abs().max()) < 1e-12
    fields = model.fields(torch.rand(3, 9, dtype=torch.float64), x)
    assert set(fields) == {"u", "v", "p"} and fields["u"].shape == (3, 11)


@pytest.mark.parametrize("mixed", [False, True])
def test_stokes_weak_residuals_vanish_for_poiseuille_flow(mixed, monkeypatch):
    """Exact Stokes flow u = 4Uy(1−y), v = 0, p = 8μU(2 − x) (with its stress in the mixed
    form): the weak momentum residuals (and the four constitutive ones) are zero to rounding; a
    wrong pressure gradient and a wrong shear stress are seen."""
    import torch

    from sciml.neural_operators import WeakFormOptions

    ex = _load(ROOT / "examples" / "stokes_neural_operators.py", "_ex_stokes_r", monkeypatch)
    mu, big_u = ex.MU, 1.5

    class Exact:
        def __init__(self, shear_error=0.0, p_scale=1.0):
            self.mixed = mixed
            self.err, self.p_scale = shear_error, p_scale
            self.decoders = {"p": self._p, "s11": lambda b, x: -self._p(b, x),
                             "s22": lambda b, x: -self._p(b, x), "s12": self._s12}

        def _p(self, beta, x):
            return (self.p_scale * 8 * mu * big_u * (2 - x[:, 0])).expand(beta.shape[0], -1)

        def _s12(self, beta, x):
            return (mu * 4 * big_u * (1 - 2 * x[:, 1]) + self.err).expand(beta.shape[0], -1)

        def velocity(self, beta, x, *, gradient=False):
            b, y = beta.shape[0], x[:, 1]
            u = (4 * big_u * y * (1 - y)).expand(b, -1)
            gu = torch.stack([torch.zeros_like(y), 4 * big_u * (1 - 2 * y)], -1).expand(b, -1, -1)
            zero = torch.zeros_like(u)
            return u, zero, gu, torch.zeros_like(gu)

    weak = WeakFormOptions(n_centres=40, radius=0.05, quadrature_points=8)
    objective = ex.StokesWeakObjective({}, weak, 1.0, 1.0)
    beta = torch.zeros(2, 3, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        torch.set_default_dtype(torch.float64)
        try:
            mx, my, const = objective.residuals(Exact(), beta, gen)
            bad = objective.residuals(Exact(shear_error=0.01), beta, gen)
            unbalanced = objective.residuals(Exact(p_scale=2.0), beta, gen)
        finally:
            torch.set_default_dtype(torch.float32)
    assert mx.shape[0] == 2 and mx.dtype == torch.float64
    assert float(mx.abs().max()) < 1e-12 and float(my.abs().max()) < 1e-12
    assert float(unbalanced[0].abs().min()) > 1e-3  # ∂p/∂x no longer balances the shear
    if mixed:
        assert const.shape[-1] == 4 and float(const.abs().max()) < 1e-12
        assert float(bad[2][..., 2].abs().min()) > 0.009  # the shear constitutive residual
    else:
        assert const is None
