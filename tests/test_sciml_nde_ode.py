"""Tests of ``sciml.nde.odeint`` / ``local_step``: torchdiffeq parity, convergence orders,
gradients, stiffness estimate, adjoint compatibility of the local step, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchdiffeq
from problems_nde import Linear, make_problems, solve_with_stats, stiff_matrix
from scipy.optimize import brentq
from torch import nn

import operators as op
from sciml.nde import (
    BOSH3,
    DOPRI5,
    EULER,
    MIDPOINT,
    RK4,
    TSIT5,
    ButcherTableau,
    ErrorRegularizer,
    insert_time,
    local_step,
    sample_time,
)
from sciml.nde._tableaus import get_tableau

F64 = torch.float64


def _maxdiff(a, b) -> float:
    if isinstance(a, tuple):
        return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))
    return float((a - b).abs().max())


class _AcceptCounter(nn.Module):
    """Wraps a problem's func and counts torchdiffeq's accepted steps via its callback."""

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        self.func = func
        self.accepted = 0

    def forward(self, t, y):
        return self.func(t, y)

    def callback_accept_step(self, t0, y0, dt) -> None:
        self.accepted += 1


# ---------------------------------------------------------------------------------------------
# parity with torchdiffeq
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
@pytest.mark.parametrize("prob", make_problems(), ids=lambda p: p.name)
def test_matches_torchdiffeq(prob, method):
    rtol, atol = 1e-6, 1e-8
    wrapped = _AcceptCounter(prob.func)
    prob.func.reset()
    ref = torchdiffeq.odeint(wrapped, prob.y0, prob.t, rtol=rtol, atol=atol, method=method)
    nfe_ref = prob.func.nfe
    prob.func.reset()
    sol, stats = solve_with_stats(prob.func, prob.y0, prob.t, rtol=rtol, atol=atol, method=method)
    assert prob.func.nfe == nfe_ref == stats.nfe
    assert stats.n_accepted == wrapped.accepted
    # method="bosh3" is torchdiffeq's, 1st-order dense-output midpoint included
    assert _maxdiff(sol, ref) < 1e-10
    if method == "bosh3":  # the opt-in BOSH3 object (cubic Hermite midpoint) is more accurate
        sol3, st3 = solve_with_stats(prob.func, prob.y0, prob.t, rtol=rtol, atol=atol,
                                     method=BOSH3)
        assert st3.n_accepted == stats.n_accepted
        assert _maxdiff(sol3, prob.exact()) < _maxdiff(ref, prob.exact())
    # and the solve is accurate (tolerance-level) against the exact solution
    scale = max(float(v.abs().max()) for v in (prob.exact() if isinstance(prob.y0, tuple)
                                               else (prob.exact(),)))
    assert _maxdiff(sol, prob.exact()) < 1e-3 * scale
    # the recorded errors are the accepted ones: all <= 1, one per accepted step
    assert stats.step_errors.shape == (stats.n_accepted,)
    assert float(stats.step_errors.max()) <= 1.0
    assert stats.nfe == 2 + (len(get_tableau(method).c) - 1) * (stats.n_accepted
                                                                 + stats.n_rejected)
    assert stats.status == "success"
    sign = 1.0 if prob.t[-1] > prob.t[0] else -1.0
    assert bool((stats.step_sizes * sign > 0).all())
    assert abs(float(stats.step_sizes.sum()) - float(prob.t[-1] - prob.t[0])) < 10 * float(
        stats.step_sizes.abs().max())


def test_matches_torchdiffeq_float32_and_first_step():
    prob = make_problems(torch.float32)[2]
    prob.func.reset()
    ref = torchdiffeq.odeint(prob.func, prob.y0, prob.t, method="dopri5",
                             options={"first_step": 0.05})
    n_ref = prob.func.nfe
    sol, stats = solve_with_stats(prob.func, prob.y0, prob.t, first_step=0.05)
    assert stats.nfe == n_ref == 1 + 6 * (stats.n_accepted + stats.n_rejected)
    assert sol.dtype == torch.float32
    assert _maxdiff(sol, ref) < 1e-5


# ---------------------------------------------------------------------------------------------
# tableaus and convergence orders
# ---------------------------------------------------------------------------------------------
def _stability_size(tab: ButcherTableau) -> float:
    s = tab.n_stages
    a = np.zeros((s, s))
    for i, row in enumerate(tab.a):
        a[i, :i] = row
    b = np.array(tab.b)

    def r(z):
        return 1 + z * b @ np.linalg.solve(np.eye(s) - z * a, np.ones(s))

    return brentq(lambda x: abs(r(-x)) - 1, 1.5, 6.0)


@pytest.mark.parametrize("tab", [DOPRI5, TSIT5, BOSH3], ids=lambda t: t.name)
def test_stability_size_matches_tableau(tab):
    assert abs(_stability_size(tab) - tab.stability_size) < 1e-9
    assert tab.fsal


def _global_error(tab: ButcherTableau, n: int) -> float:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(3, 3, generator=g, dtype=F64)
    f = Linear(a)
    y0 = torch.randn(2, 3, generator=g, dtype=F64)
    t = torch.tensor([0.0, 1.0], dtype=F64)
    sol, _ = solve_with_stats(f, y0, t, method=tab, step_size=1.0 / n)
    return float((sol[-1] - f.exact(y0, t)[-1]).abs().max())


def _slope(tab: ButcherTableau, ns) -> float:
    errs = [_global_error(tab, n) for n in ns]
    return float(-np.polyfit(np.log(ns), np.log(errs), 1)[0])


def _embedded(tab: ButcherTableau) -> ButcherTableau:
    bt = tuple(b - e for b, e in zip(tab.b, tab.error, strict=True))
    return ButcherTableau(name=tab.name + "_embedded", c=tab.c, a=tab.a, b=bt,
                          order=tab.embedded_order)


@pytest.mark.parametrize("tab", [DOPRI5, TSIT5, BOSH3, EULER, MIDPOINT, RK4],
                         ids=lambda t: t.name)
def test_convergence_order(tab):
    ns = [8, 16, 32, 64] if tab.order >= 4 else [16, 32, 64, 128]
    assert abs(_slope(tab, ns) - tab.order) < 0.3
    if tab.adaptive:
        ns = [8, 16, 32, 64]
        assert abs(_slope(_embedded(tab), ns) - tab.embedded_order) < 0.3


def test_tsit5_advances_fifth_order_solution():
    """torchdiffeq main's tsit5 propagated the embedded solution (order 4): ours must not."""
    assert TSIT5.b[:6] == TSIT5.a[6]
    wrong = ButcherTableau(name="tsit5_4th", c=TSIT5.c, a=TSIT5.a,
                           b=tuple(b - e for b, e in zip(TSIT5.b, TSIT5.error, strict=True)),
                           order=4)
    ns = [4, 8, 16, 32]
    assert _slope(TSIT5, ns) > _slope(wrong, ns) + 0.7


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3"])
def test_dense_output_accuracy(method):
    prob = make_problems()[1]  # time dependent, sparse outputs -> interpolation is used
    t = torch.linspace(0.3, 7.5, 41, dtype=F64)
    tol = 1e-8 if method == "bosh3" else 1e-10
    tab = BOSH3 if method == "bosh3" else method  # the opt-in 3rd-order dense output
    sol, stats = solve_with_stats(prob.func, prob.y0, t, method=tab, rtol=tol, atol=tol)
    exact = prob.func.exact(prob.y0, t)
    ends = set((stats.times + stats.step_sizes).tolist())
    assert sum(v in ends for v in t[1:].tolist()) < 5  # outputs come from the interpolant
    assert float((sol - exact).abs().max()) < 1e3 * tol


# ---------------------------------------------------------------------------------------------
# stiffness estimate
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tab", [DOPRI5, TSIT5, BOSH3], ids=lambda t: t.name)
def test_stiffness_exact_on_scalar_decay(tab):
    lam = 7.5
    _, stats = solve_with_stats(lambda t, y: -lam * y, torch.tensor([1.0, 2.0], dtype=F64),
                      torch.tensor([0.0, 1.0], dtype=F64), method=tab)
    assert torch.allclose(stats.stiffness * tab.stability_size,
                          torch.full_like(stats.stiffness, lam), rtol=1e-10)


def test_stiffness_approaches_spectral_radius():
    a = stiff_matrix(rho=50.0)
    f = Linear(a)
    y0 = torch.ones(1, 3, dtype=F64)
    _, stats = solve_with_stats(f, y0, torch.tensor([0.0, 5.0], dtype=F64), rtol=1e-6, atol=1e-8)
    jac = op.Jacobian(lambda y: f(torch.zeros((), dtype=F64), y), y0)
    rho = math.sqrt(float(op.power_method(jac.gram(), max_iter=500, tol=1e-12).eigenvalue))
    assert abs(rho - 50.0) < 1e-6
    lam = stats.stiffness * DOPRI5.stability_size
    assert abs(float(lam[0]) - rho) < 1e-3 * rho  # transient: the stiff mode dominates
    assert float(lam.max()) <= rho * (1 + 1e-9)  # ||J v|| / ||v|| <= ||J||
    # once the step is stability-limited, |lambda| h sits near the stability boundary
    assert float((stats.stiffness * stats.step_sizes)[-20:].max()) < 1.5


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
class _Param(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, t, y):
        return torch.tanh(y @ self.w) - 0.3 * y * torch.sin(t)


def test_gradcheck_fixed_step():
    g = torch.Generator().manual_seed(1)
    w = (0.5 * torch.randn(2, 2, generator=g, dtype=F64)).requires_grad_()
    y0 = torch.randn(2, 2, generator=g, dtype=F64).requires_grad_()
    t = torch.tensor([0.0, 0.4, 1.0], dtype=F64)

    def fn(y0, w):
        return solve_with_stats(_Param(w), y0, t, method=TSIT5, step_size=0.1)[0]

    assert torch.autograd.gradcheck(fn, (y0, w))


def test_gradcheck_adaptive_tight_tolerance():
    g = torch.Generator().manual_seed(2)
    w = (0.5 * torch.randn(2, 2, generator=g, dtype=F64)).requires_grad_()
    y0 = torch.randn(1, 2, generator=g, dtype=F64).requires_grad_()
    t = torch.tensor([0.0, 0.7, 1.3], dtype=F64)

    def fn(y0, w):
        return solve_with_stats(_Param(w), y0, t, rtol=1e-11, atol=1e-12)[0]

    # steps are detached: the only discrepancy with finite differences is the (tiny) dependence
    # of the solution on the step sizes
    assert torch.autograd.gradcheck(fn, (y0, w), atol=1e-6, rtol=1e-5)


def test_no_nan_gradient_for_zero_dynamics():
    lin = nn.Linear(3, 3).double()
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    sol, stats = solve_with_stats(lambda t, y: lin(y), torch.ones(2, 3, dtype=F64),
                        torch.tensor([0.0, 1.0], dtype=F64))
    from sciml.nde import StiffnessRegularizer

    loss = sol.sum() + ErrorRegularizer()(stats) + StiffnessRegularizer()(stats)
    loss.backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in lin.parameters())


# ---------------------------------------------------------------------------------------------
# local mode
# ---------------------------------------------------------------------------------------------
class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()

    def forward(self, t, y):
        return self.net(y)


def test_local_step_nfe_and_consistency():
    f = _MLP()
    y = torch.randn(4, 2, dtype=F64)
    st = local_step(f, 0.3, y, rtol=1e-6, atol=1e-8)
    assert st.nfe == 8 and st.n_accepted == 1 and st.step_errors.shape == (1,)
    # the same step as the first step of odeint from (0.3, y)
    t_end = 0.3 + 10 * float(st.step_sizes[0])
    _, full = solve_with_stats(f, y, torch.tensor([0.3, t_end], dtype=F64),
                     rtol=1e-6, atol=1e-8)
    if full.n_rejected == 0:
        assert torch.allclose(full.step_errors[0], st.step_errors[0], rtol=1e-12)
        assert float(full.step_sizes[0]) == float(st.step_sizes[0])
    st_back = local_step(f, 0.3, y, dt=-0.05)
    assert float(st_back.step_sizes[0]) == -0.05


def test_local_mode_under_adjoint_training():
    f = _MLP()
    y0 = torch.randn(8, 2, dtype=F64)
    t = torch.linspace(0.0, 1.0, 5, dtype=F64)
    gen = torch.Generator().manual_seed(5)
    t_r = sample_time(t, generator=gen)
    assert 0.0 <= t_r <= 1.0
    t_aug, idx = insert_time(t, t_r)
    assert float(t_aug[idx]) == t_r and torch.equal(torch.cat([t_aug[:idx], t_aug[idx + 1:]]), t)
    reg = ErrorRegularizer(1.0)
    params = list(f.parameters())

    def grads(solver):
        sol = solver(f, y0, t_aug)
        stats = local_step(f, t_r, sol[idx], rtol=1e-6, atol=1e-8)
        task = sol[-1].pow(2).mean()
        return torch.autograd.grad(task + reg(stats), params)

    g_adj = grads(lambda f, y, t: torchdiffeq.odeint_adjoint(f, y, t, rtol=1e-9, atol=1e-10))
    g_bp = grads(lambda f, y, t: solve_with_stats(f, y, t, rtol=1e-9, atol=1e-10)[0])
    for a, b in zip(g_adj, g_bp, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    # a few adjoint-trained steps on the penalty alone lower it
    opt = torch.optim.Adam(f.parameters(), lr=1e-2)
    first = last = None
    for _ in range(15):
        opt.zero_grad()
        sol = torchdiffeq.odeint_adjoint(f, y0, t_aug, rtol=1e-6, atol=1e-8)
        pen = reg(local_step(f, t_r, sol[idx].detach(), dt=0.2))
        pen.backward()
        opt.step()
        first = float(pen.detach()) if first is None else first
        last = float(pen.detach())
    assert last < first


def test_sample_time_biased():
    _, stats = solve_with_stats(lambda t, y: -y, torch.ones(1, dtype=F64), torch.tensor([0.0, 2.0],
                                                                              dtype=F64))
    tr = sample_time(torch.tensor([0.0, 2.0]), stats=stats,
                     generator=torch.Generator().manual_seed(0))
    assert tr in stats.times.tolist()


# ---------------------------------------------------------------------------------------------
# bad input, status, no hang
# ---------------------------------------------------------------------------------------------
T01 = torch.tensor([0.0, 1.0], dtype=F64)
Y1 = torch.ones(2, dtype=F64)


def _decay(t, y):
    return -y


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"t": torch.tensor([0.0, 1.0, 1.0], dtype=F64)}, ValueError, "strictly increasing"),
    ({"t": torch.tensor([0.0, 1.0, 0.5], dtype=F64)}, ValueError, "strictly increasing"),
    ({"t": torch.tensor([[0.0, 1.0]], dtype=F64)}, TypeError, "1-D"),
    ({"t": [0.0, 1.0]}, TypeError, "1-D"),
    ({"t": torch.tensor([0.0, float("nan")], dtype=F64)}, ValueError,
     r"t contains 1 non-finite value \(NaN or inf\) out of 2; the output times must be finite"),
    ({"t": torch.tensor([0.0, float("inf")], dtype=F64)}, ValueError, "t contains 1 non-finite"),
    ({"y0": torch.tensor([1.0, float("nan")], dtype=F64)}, ValueError, "NaN"),
    ({"y0": torch.ones(2, dtype=torch.int64)}, TypeError, "floating"),
    ({"y0": [Y1]}, TypeError, "tuple of tensors"),
    ({"y0": (Y1, Y1.float())}, TypeError, "share one dtype"),
    ({"func": 3}, TypeError, "callable"),
    ({"func": lambda t, y: y[:1]}, ValueError, "state's shape"),
    ({"method": "rk45"}, ValueError, "unknown method"),
    ({"method": 5}, TypeError, "method must be"),
    ({"method": "rk4", "t": torch.tensor([0.0], dtype=F64)}, ValueError, "step_size"),
    ({"rtol": -1.0}, ValueError, "rtol must be >= 0"),
    ({"rtol": 0.0, "atol": 0.0}, ValueError, "both be 0"),
    ({"atol": "x"}, TypeError, "atol must be a float"),
    ({"max_steps": 0}, ValueError, r"max_num_steps'\] must be an int >= 1, got 0; the budget"),
    ({"max_steps": 2.5}, TypeError, r"max_num_steps'\] must be an int >= 1, got 2.5"),
    ({"step_size": -0.1}, ValueError, r"step_size'\] must be > 0, got -0.1; a step size"),
    ({"step_size": math.nan}, ValueError, r"step_size'\] must be finite, got nan"),
    ({"step_size": "0.1"}, TypeError, r"step_size'\] must be a float, got str"),
    ({"step_size": torch.ones(2)}, TypeError, r"step_size'\] must be a float \(or a one-element"),
    ({"first_step": 0.0}, ValueError, r"first_step'\] must be > 0, got 0.0"),
    ({"first_step": math.inf}, ValueError, r"first_step'\] must be finite, got inf"),
    ({"first_step": "0.1"}, TypeError, r"first_step'\] must be a float, got str"),  # was parsed
    ({"first_step": True}, TypeError, r"first_step'\] must be a float, got bool"),
])
def test_bad_input(kwargs, exc, match):
    args = {"func": _decay, "y0": Y1, "t": T01}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        solve_with_stats(args.pop("func"), args.pop("y0"), args.pop("t"), **args)


def test_tuple_func_must_return_tuple():
    with pytest.raises(ValueError, match="tuple of 2"):
        solve_with_stats(lambda t, y: y[0], (Y1, Y1), T01)
    with pytest.raises(ValueError, match="shape"):
        solve_with_stats(lambda t, y: (y[0], y[1][:1]), (Y1, Y1), T01)


def test_tableau_validation():
    with pytest.raises(ValueError, match="c\\[0\\] == 0"):
        ButcherTableau(name="x", c=(0.5,), a=((),), b=(1.0,), order=1)
    with pytest.raises(ValueError, match="row i with i entries"):
        ButcherTableau(name="x", c=(0.0, 1.0), a=((), ()), b=(0.5, 0.5), order=1)
    with pytest.raises(ValueError, match="b must have"):
        ButcherTableau(name="x", c=(0.0,), a=((),), b=(1.0, 0.0), order=1)
    with pytest.raises(ValueError, match="error must have"):
        ButcherTableau(name="x", c=(0.0,), a=((),), b=(1.0,), order=1, error=(1.0, 2.0),
                       embedded_order=1)
    with pytest.raises(ValueError, match="both error and embedded_order"):
        ButcherTableau(name="x", c=(0.0,), a=((),), b=(1.0,), order=1, error=(0.0,))
    with pytest.raises(ValueError, match="both stiffness_stages"):
        ButcherTableau(name="x", c=(0.0,), a=((),), b=(1.0,), order=1, stiffness_stages=(0, 0))
    with pytest.raises(ValueError, match="out of range"):
        ButcherTableau(name="x", c=(0.0,), a=((),), b=(1.0,), order=1, stiffness_stages=(0, 3),
                       stability_size=2.0)
    nomid = ButcherTableau(name="x", c=BOSH3.c, a=BOSH3.a, b=BOSH3.b, order=3,
                           error=BOSH3.error, embedded_order=2)
    with pytest.raises(ValueError, match="dense-output"):
        solve_with_stats(_decay, Y1, T01, method=nomid)


def test_max_steps_status_and_raise():
    # torchdiffeq's max_num_steps: a budget of attempts per output interval; raises an error that
    # is both a RuntimeError and (as torchdiffeq's) an AssertionError
    t = torch.linspace(0.0, 10.0, 4, dtype=F64)
    with pytest.raises(AssertionError, match="max_num_steps exceeded"):
        solve_with_stats(_decay, Y1, t, max_steps=5)
    sol, stats = solve_with_stats(_decay, Y1, t, max_steps=5, throw=False)
    assert stats.status == "max_steps" and stats.n_accepted + stats.n_rejected == 5
    assert sol.shape == (4, 2) and bool(torch.isnan(sol[-1]).all())
    assert torch.equal(sol[0], Y1)


def test_blow_up_does_not_hang():
    # y' = y^2, y(0) = 1 blows up at t = 1: the solver must stop with a status
    t = torch.tensor([0.0, 2.0], dtype=F64)
    with pytest.raises(RuntimeError, match="throw"):
        solve_with_stats(lambda t, y: y * y, torch.ones(1, dtype=F64), t, max_steps=2000)
    sol, stats = solve_with_stats(lambda t, y: y * y, torch.ones(1, dtype=F64), t, max_steps=2000,
                        throw=False)
    assert stats.status in ("max_steps", "dt_underflow", "nonfinite")
    assert bool(torch.isnan(sol[-1]).all())


def test_nan_during_solve():
    def f(t, y):
        return -y if float(t) < 0.5 else y * float("nan")

    with pytest.raises(RuntimeError, match="non-finite"):
        solve_with_stats(f, Y1, T01)
    _, stats = solve_with_stats(f, Y1, T01, throw=False)
    assert stats.status == "nonfinite"


def test_local_step_bad_input():
    with pytest.raises(ValueError, match="no embedded error"):
        local_step(_decay, 0.0, Y1, method="rk4")
    with pytest.raises(ValueError, match=r"dt must be a non-zero finite float .*, got 0.0"):
        local_step(_decay, 0.0, Y1, dt=0.0)
    with pytest.raises(ValueError, match="dt must be finite, got nan"):
        local_step(_decay, 0.0, Y1, dt=math.nan)
    with pytest.raises(TypeError, match="dt must be a real number, got str"):
        local_step(_decay, 0.0, Y1, dt="0.1")
    with pytest.raises(ValueError, match="t must be finite, got inf; the start time"):
        local_step(_decay, float("inf"), Y1)
    with pytest.raises(ValueError, match="t must be finite, got nan"):
        local_step(_decay, torch.tensor(math.nan), Y1)
    with pytest.raises(TypeError, match="t must be a real number, got str"):
        local_step(_decay, "0", Y1)
    with pytest.raises(TypeError, match="t must be a real number, got bool"):
        local_step(_decay, True, Y1)
    with pytest.raises(TypeError, match="scalar"):
        local_step(_decay, torch.zeros(2), Y1)
    with pytest.raises(ValueError, match="at least two"):
        sample_time(torch.zeros(1))
    with pytest.raises(ValueError, match="no accepted step"):
        from sciml.nde import SolverStats
        sample_time(T01, stats=SolverStats(method="x"))
    with pytest.raises(ValueError, match="outside"):
        insert_time(T01, 2.0)
    with pytest.raises(ValueError, match="coincides"):
        insert_time(T01, 1.0)
    with pytest.raises(TypeError, match="1-D tensor"):
        insert_time(torch.zeros(1), 0.0)
    t_dec, i = insert_time(torch.tensor([1.0, 0.0], dtype=F64), 0.25)
    assert t_dec.tolist() == [1.0, 0.25, 0.0] and i == 1
