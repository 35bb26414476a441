"""Tests of the solver-heuristic regularizers (``ErrorRegularizer``, ``StiffnessRegularizer``),
their schedules and the RNODE helper."""

from __future__ import annotations

import math

import pytest
import torch
from problems_nde import solve_with_stats
from torch import nn

from sciml.nde import (
    DOPRI5,
    ConstantWeight,
    ErrorRegularizer,
    ExponentialDecay,
    NFECounter,
    RNODEDynamics,
    SolverStats,
    StiffnessRegularizer,
    local_step,
)

F64 = torch.float64


def _stats(errors, dts, stiff=None) -> SolverStats:
    e = torch.tensor(errors, dtype=F64)
    return SolverStats(method="test", n_accepted=len(errors),
                       times=torch.zeros(len(errors), dtype=F64),
                       step_sizes=torch.tensor(dts, dtype=F64), step_errors=e,
                       stiffness=None if stiff is None else torch.tensor(stiff, dtype=F64))


def test_formulas_and_reductions():
    st = _stats([0.5, 0.2, 0.9], [0.1, -0.3, 0.2], stiff=[1.0, 3.0, 2.0])
    terms = [0.05, 0.06, 0.18]
    assert math.isclose(float(ErrorRegularizer(2.0)(st)), 2 * sum(terms))
    assert math.isclose(float(ErrorRegularizer(1.0, reduction="mean")(st)), sum(terms) / 3)
    assert math.isclose(float(ErrorRegularizer(1.0, reduction="max")(st)), 0.18)
    assert math.isclose(float(ErrorRegularizer(1.0, power=2)(st)),
                        0.25 * 0.1 + 0.04 * 0.3 + 0.81 * 0.2)
    assert math.isclose(float(ErrorRegularizer(1.0, dt_weighted=False)(st)), 1.6)
    assert math.isclose(float(ErrorRegularizer(1.0, normalize=True)(st)), sum(terms) / 0.6)
    assert math.isclose(float(ErrorRegularizer.reference(3.0)(st)), sum(terms))
    assert math.isclose(float(StiffnessRegularizer(1.0)(st)), 0.1 + 0.9 + 0.4)
    assert math.isclose(float(StiffnessRegularizer.reference(0.5)(st)), 1.5)


def test_nonfinite_terms_dropped_and_empty_record():
    st = _stats([0.5, float("nan"), float("inf")], [0.1, 0.1, 0.1])
    assert math.isclose(float(ErrorRegularizer()(st)), 0.05)
    empty = SolverStats(method="x", stiffness=torch.zeros(0))
    assert float(ErrorRegularizer()(empty)) == 0.0
    assert float(StiffnessRegularizer(reduction="max")(empty)) == 0.0


def test_schedules():
    sched = ExponentialDecay(100.0, 10.0, 75)
    assert sched(0) == 100.0
    assert math.isclose(sched(75), 10.0) and math.isclose(sched(200), 10.0)
    k = math.log(100 / 10) / 75
    assert math.isclose(sched(30), 100 * math.exp(-k * 30))
    reg = ErrorRegularizer(sched)
    st = _stats([1.0], [1.0])
    assert math.isclose(float(reg(st, epoch=75)), 10.0)
    assert reg.weight_at(0) == 100.0
    assert ConstantWeight(0.3)(12) == 0.3


@pytest.mark.parametrize(("make", "exc", "match"), [
    (lambda: ErrorRegularizer(reduction="median"), ValueError, "reduction must be"),
    (lambda: ErrorRegularizer(power=3), ValueError, "power must be"),
    (lambda: ErrorRegularizer(weight="big"), TypeError,
     "weight must be a real number, got str 'big'; give a float >= 0 or a schedule"),
    (lambda: ErrorRegularizer(weight=True), TypeError, "weight must be a real number, got bool"),
    (lambda: ErrorRegularizer(weight=math.nan), ValueError, "weight must be finite, got nan"),
    (lambda: ErrorRegularizer(weight=-1.0), ValueError, "weight must be >= 0, got -1.0"),
    (lambda: ErrorRegularizer(normalize=True, reduction="mean"), ValueError, "normalize"),
    (lambda: StiffnessRegularizer(normalize=True, dt_weighted=False), ValueError, "normalize"),
    (lambda: ConstantWeight(-1.0), ValueError, "weight must be >= 0, got -1.0; a regularization"),
    (lambda: ConstantWeight(math.inf), ValueError, "weight must be finite, got inf"),
    (lambda: ConstantWeight("1"), TypeError, "weight must be a real number, got str"),
    (lambda: ExponentialDecay(0.0, 1.0, 10), ValueError,
     r"start must be > 0, got 0.0; .*use ConstantWeight\(0.0\) to switch off"),
    (lambda: ExponentialDecay(1.0, math.nan, 10), ValueError, "end must be finite, got nan"),
    (lambda: ExponentialDecay(1.0, -1.0, 10), ValueError, "end must be > 0"),
    (lambda: ExponentialDecay("1", 1.0, 10), TypeError, "start must be a real number"),
    (lambda: ExponentialDecay(1.0, 0.1, 0), ValueError, "epochs"),
])
def test_bad_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_bad_calls():
    with pytest.raises(ValueError, match="no stiffness record"):
        StiffnessRegularizer()(_stats([0.1], [0.1]))
    with pytest.raises(TypeError, match="SolverStats"):
        ErrorRegularizer()({"step_errors": torch.zeros(1)})
    bad = SolverStats(method="x", step_errors=torch.zeros(2), step_sizes=torch.zeros(3))
    with pytest.raises(ValueError, match="differ in shape"):
        ErrorRegularizer()(bad)
    _, st = solve_with_stats(lambda t, y: -y, torch.ones(1, dtype=F64),
                             torch.tensor([0.0, 1.0], dtype=F64),
                   record_stiffness=False)
    with pytest.raises(ValueError, match="Recorder\\(stiffness=True\\)"):
        StiffnessRegularizer()(st)


class _Lin(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, t, y):
        return torch.tanh(y @ self.w)


@pytest.mark.parametrize("reg", [ErrorRegularizer(1.0), ErrorRegularizer(1.0, power=2),
                                 StiffnessRegularizer(1.0), StiffnessRegularizer.reference(1.0)],
                         ids=["ER", "ER2", "SR", "SR-ref"])
def test_gradcheck_regularizers_frozen_steps(reg):
    """The penalties are smooth functions of the parameters once the steps are frozen."""
    g = torch.Generator().manual_seed(4)
    w = (torch.randn(3, 3, generator=g, dtype=F64) * 0.8).requires_grad_()
    y0 = torch.randn(2, 3, generator=g, dtype=F64).requires_grad_()
    t = torch.tensor([0.0, 0.6], dtype=F64)

    def fn(y0, w):
        _, st = solve_with_stats(_Lin(w), y0, t, method=DOPRI5, step_size=0.2, rtol=1e-3,
                                 atol=1e-4)
        return reg(st)

    assert torch.autograd.gradcheck(fn, (y0, w))


def test_gradcheck_local_step():
    g = torch.Generator().manual_seed(5)
    w = (torch.randn(3, 3, generator=g, dtype=F64) * 0.8).requires_grad_()
    y = torch.randn(2, 3, generator=g, dtype=F64).requires_grad_()

    def fn(y, w):
        st = local_step(_Lin(w), 0.1, y, dt=0.3, rtol=1e-3, atol=1e-4)
        return ErrorRegularizer()(st) + StiffnessRegularizer()(st)

    assert torch.autograd.gradcheck(fn, (y, w))


def test_error_regularizer_reduces_error_under_training():
    """Minimizing R_E alone makes the dynamics easier to integrate: fewer steps."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(4.0)
    y0 = torch.randn(8, 2, dtype=F64)
    t = torch.tensor([0.0, 2.0], dtype=F64)

    def f(t, y):
        return net(y)

    _, st0 = solve_with_stats(f, y0, t, rtol=1e-5, atol=1e-5)
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    for _ in range(10):
        opt.zero_grad()
        _, st = solve_with_stats(f, y0, t, rtol=1e-5, atol=1e-5, record_stiffness=False)
        ErrorRegularizer(10.0)(st).backward()
        opt.step()
    _, st1 = solve_with_stats(f, y0, t, rtol=1e-5, atol=1e-5)
    assert st1.nfe < 0.8 * st0.nfe


def test_rnode_dynamics_integrands():
    a = torch.tensor([[0.0, 2.0], [-1.0, 0.5]], dtype=F64)

    class Lin(nn.Module):
        def forward(self, t, z):
            return z @ a.T

    aug = RNODEDynamics(Lin())
    z = torch.tensor([[1.0, 2.0], [0.5, -1.0]], dtype=F64)
    with pytest.raises(RuntimeError, match="resample"):
        aug(torch.zeros(()), (z, torch.zeros(2), torch.zeros(2)))
    aug.resample(z, generator=torch.Generator().manual_seed(0))
    f, de, dj = aug(torch.zeros(()), (z, torch.zeros(2), torch.zeros(2)))
    assert torch.allclose(f, z @ a.T)
    assert torch.allclose(de, (z @ a.T).pow(2).sum(1))
    assert torch.allclose(dj, (aug.eps @ a).pow(2).sum(1))  # ||eps^T J||^2, J = A
    # Hutchinson: the mean over probes estimates ||A||_F^2
    draws = []
    for s in range(400):
        aug.resample(z, generator=torch.Generator().manual_seed(s))
        draws.append(aug(torch.zeros(()), (z, torch.zeros(2), torch.zeros(2)))[2])
    est = torch.stack(draws).mean()
    assert abs(float(est) - float(a.pow(2).sum())) < 0.25 * float(a.pow(2).sum())
    # it integrates with odeint (tuple state)
    aug.resample(z)
    sol, _ = solve_with_stats(aug, (z, torch.zeros(2, dtype=F64), torch.zeros(2, dtype=F64)),
                    torch.tensor([0.0, 0.5], dtype=F64))
    assert sol[1][-1].min() > 0 and sol[2][-1].min() > 0


def test_counter_and_mean_std():
    from sciml.nde._sweep import mean_std

    c = NFECounter(lambda t, y: -y)
    _, st = solve_with_stats(c, torch.ones(1, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64))
    assert c.nfe == st.nfe
    c.reset()
    assert c.nfe == 0
    with pytest.raises(TypeError, match="callable"):
        NFECounter(3)
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        mean_std([])


# ---------------------------------------------------------------------------------------------
# the examples and the benchmark run end to end (tiny settings; numbers are not asserted)
# ---------------------------------------------------------------------------------------------
_ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_digits_example_smoke(tmp_path):
    import json
    import runpy

    mod = runpy.run_path(str(_ROOT / "examples" / "nde_digits.py"), run_name="smoke")
    out = tmp_path / "d.json"
    res = mod["main"](["--seeds", "1", "--epochs", "1", "--lambdas", "0.1", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert set(saved["methods"]) == {"vanilla", "RNODE", "no ODE", "ER", "SR"}
    for key in ("nfe", "train_seconds", "predict_seconds", "metric"):
        assert key in saved["methods"]["vanilla"]
    assert saved["methods"]["no ODE"]["nfe"] == 0 and saved["methods"]["no ODE"]["dynamics"] == 0
    assert (tmp_path / "d_pareto.png").stat().st_size > 0
    assert res["methods"]["vanilla"]["nfe"] >= 20  # at least one dopri5 step after the setup
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_spiral_example_smoke(tmp_path):
    import json
    import runpy

    mod = runpy.run_path(str(_ROOT / "examples" / "nde_spiral.py"), run_name="smoke")
    out = tmp_path / "s.json"
    mod["main"](["--seeds", "1", "--pre-iters", "2", "--iters", "1", "--lambdas", "0.01",
                 "--tolerance", "100", "--json", str(out)])
    saved = json.loads(out.read_text())
    for m in ("ER", "SR", "ER+SR"):
        row = saved["methods"][m]
        assert row["chosen_lambda"] == 0.01
        assert row["nfe_ratio"] > 0 and row["predict_speedup"] > 0
    assert (tmp_path / "s_pareto.png").stat().st_size > 0


def test_benchmark_quick(tmp_path):
    import json

    from script_loader import load_script

    with pytest.MonkeyPatch.context() as mp:
        mod = load_script("benchmarks/bench_nde.py", "_bench_nde", mp)
        out = tmp_path / "b.json"
        assert mod.main(["--quick", "--rounds", "1", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["all_nfe_equal"]
    assert all(math.isfinite(c["forward"]["ratio"]) for c in saved["cases"].values())


def test_summarize_sweep_choice_rule():
    from sciml.nde._sweep import choose_weights, summarize_sweep

    def run(method, lam, nfe, metric, val_metric):
        return {"method": method, "lambda": lam, "nfe": [nfe, nfe], "val_nfe": [nfe, nfe],
                "metric": [metric, metric], "val_metric": [val_metric, val_metric],
                "train_seconds": [2.0, 2.0], "predict_seconds": [1.0 * nfe / 100] * 2}

    runs = {"vanilla": run("vanilla", 0.0, 100, 1.0, 1.0),
            "ER@1": run("ER", 1.0, 80, 1.05, 1.05), "ER@10": run("ER", 10.0, 50, 2.0, 2.0),
            "SR@1": run("SR", 1.0, 90, 1.5, 1.4), "SR@10": run("SR", 10.0, 70, 3.0, 3.0)}
    res = summarize_sweep(runs, regularizers=("ER", "SR"), higher_is_better=False,
                          acceptable=lambda v, v0: v <= 1.1 * v0)
    er, sr = res["methods"]["ER"], res["methods"]["SR"]
    assert er["chosen_lambda"] == 1.0 and er["within_tolerance"]
    assert math.isclose(er["nfe_ratio"], 0.8) and math.isclose(er["predict_speedup"], 1.25)
    assert sr["chosen_lambda"] == 1.0 and not sr["within_tolerance"]  # best val metric
    again = choose_weights(res["sweep"], regularizers=("ER", "SR"), higher_is_better=False,
                           acceptable=lambda v, v0: v <= 2.5 * v0)
    assert again["ER"]["chosen_lambda"] == 10.0
    assert again["SR"]["chosen_lambda"] == 1.0 and again["SR"]["within_tolerance"]
    with pytest.raises(ValueError, match="vanilla"):
        summarize_sweep({}, regularizers=(), acceptable=lambda v, v0: True,
                        higher_is_better=True)
