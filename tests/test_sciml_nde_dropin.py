"""``sciml.nde`` as a drop-in for torchdiffeq 0.2.5 and torchsde 0.2.6.

torchdiffeq ships no tests: these are ours, one per behaviour its documentation promises (and
the peer-test table of issue 12 lists), with torchdiffeq itself or a closed form as the oracle.
torchsde's own tests run through ``make peer-tests``; the drop-in basics are checked here too.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torchdiffeq
import torchsde
from torch import nn

from sciml.nde import (
    DOPRI5,
    ErrorRegularizer,
    MaxStepsExceeded,
    Recorder,
    local_step,
    odeint,
    odeint_adjoint,
    odeint_event,
    sdeint,
    sdeint_adjoint,
)

F64 = torch.float64
A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=F64)
Y0 = torch.tensor([[2.0, 0.0], [1.0, 1.0]], dtype=F64)
T = torch.linspace(0.0, 1.5, 7, dtype=F64)


class Counted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(A.clone())
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return torch.tanh(y @ self.w.T) + 0.1 * torch.sin(t)


def _both(fn_ours, fn_ref):
    f1, f2 = Counted(), Counted()
    a, b = fn_ours(f1), fn_ref(f2)
    return a, b, f1.nfe, f2.nfe


# ---------------------------------------------------------------------------------------------
# return value, default method, recorder
# ---------------------------------------------------------------------------------------------
def test_default_call_returns_solution_alone_and_equals_torchdiffeq():
    a, b, n1, n2 = _both(lambda f: odeint(f, Y0, T), lambda f: torchdiffeq.odeint(f, Y0, T))
    assert isinstance(a, torch.Tensor) and a.shape == (7, 2, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert n1 == n2


def test_recorder_changes_nothing_but_fills_stats():
    f = Counted()
    plain = odeint(f, Y0, T, rtol=1e-6, atol=1e-6)
    rec = Recorder()
    recorded = odeint(f, Y0, T, rtol=1e-6, atol=1e-6, recorder=rec)
    assert torch.equal(plain, recorded)
    st = rec.stats
    assert st.n_accepted == len(st.step_errors) == len(st.stiffness) > 0
    assert st.nfe == 2 + 6 * (st.n_accepted + st.n_rejected)
    assert float(st.step_errors.max()) <= 1.0 and st.step_errors.requires_grad
    assert ErrorRegularizer(1.0)(rec).requires_grad
    with pytest.raises(TypeError, match="Recorder"):
        odeint(f, Y0, T, recorder=object())


@pytest.mark.parametrize("method", ["dopri5", "bosh3"])
def test_reverse_time_and_float32(method):
    tr = T.flip(0)
    a, b, n1, n2 = _both(lambda f: odeint(f, Y0, tr, method=method),
                         lambda f: torchdiffeq.odeint(f, Y0, tr, method=method))
    torch.testing.assert_close(a[-1], b[-1], rtol=0, atol=1e-10)
    assert n1 == n2
    a32 = odeint(Counted().float(), Y0.float(), T.float(), rtol=1e-5, atol=1e-6)
    assert a32.dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4"])
@pytest.mark.parametrize("opts", [{"step_size": 0.1}, {"step_size": 0.07},
                                  {"step_size": 0.07, "interp": "cubic"}, None])
def test_fixed_grid_methods_equal_torchdiffeq(method, opts):
    a, b, n1, n2 = _both(lambda f: odeint(f, Y0, T, method=method, options=opts),
                         lambda f: torchdiffeq.odeint(f, Y0, T, method=method, options=opts))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    assert n1 == n2


def test_step_size_with_an_adaptive_method_is_never_silent():
    """torchdiffeq ignores step_size for dopri5 (with a warning); ours runs dopri5 on that fixed
    grid: by name (a torchdiffeq call) it warns, with the tableau object (opt-in) it does not."""
    f = lambda t, y: -y  # noqa: E731
    with pytest.warns(UserWarning, match="Unexpected arguments"):
        torchdiffeq.odeint(f, Y0, T, method="dopri5", options={"step_size": 0.25})
    with pytest.warns(UserWarning, match=r"step_size'\] runs this adaptive method on a fixed"):
        by_name = odeint(f, Y0, T, method="dopri5", options={"step_size": 0.25})
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        by_tableau = odeint(f, Y0, T, method=DOPRI5, options={"step_size": 0.25}, recorder=rec)
        odeint(f, Y0, T, method="dopri5")  # no step_size: no warning
    torch.testing.assert_close(by_name, by_tableau, rtol=0, atol=0)
    # the fixed grid was used: steps of 0.25 (the last one up to T[-1])
    assert bool((rec.stats.step_sizes[:-1] == 0.25).all()) and rec.stats.n_rejected == 0


def test_time_dtype_option_other_than_float64_warns_that_it_is_ignored():
    f = lambda t, y: -y  # noqa: E731
    y0 = Y0.float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ref = odeint(f, y0, T.float())
        same = odeint(f, y0, T.float(), options={"dtype": torch.float64})  # times in float64
    with pytest.warns(UserWarning, match=r"options\['dtype'\]=torch.float32 is ignored"):
        ours = odeint(f, y0, T.float(), options={"dtype": torch.float32})
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    torch.testing.assert_close(same, ref, rtol=0, atol=0)


def test_first_step_norm_step_t_jump_t_equal_torchdiffeq():
    def norm(y):
        return y.abs().max()

    for opts in ({"first_step": 0.05}, {"norm": norm}, {"step_t": [0.33, 0.9]},
                 {"jump_t": torch.tensor([0.61], dtype=F64)},
                 {"safety": 0.8, "ifactor": 5.0, "dfactor": 0.3}):
        a, b, n1, n2 = _both(
            lambda f, o=opts: odeint(f, Y0, T, rtol=1e-6, atol=1e-8, options=o),
            lambda f, o=opts: torchdiffeq.odeint(f, Y0, T, rtol=1e-6, atol=1e-8,
                                                 method="dopri5", options=o))
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11, msg=str(opts))
        assert n1 == n2, opts


def test_jump_t_resolves_a_discontinuity():
    # y' = 1 for t < 0.5, 0 after: y(1) = 0.5; the solver steps exactly to the jump
    def f(t, y):
        return torch.where(t < 0.5, torch.ones_like(y), torch.zeros_like(y))

    y = odeint(f, torch.zeros(1, dtype=F64), torch.tensor([0.0, 1.0], dtype=F64),
               options={"jump_t": [0.5]})
    assert abs(float(y[-1]) - 0.5) < 1e-12


def test_max_num_steps_and_unknown_options():
    t = torch.tensor([0.0, 1.5], dtype=F64)
    with pytest.raises(AssertionError, match="max_num_steps"):
        odeint(Counted(), Y0, t, options={"max_num_steps": 3})
    with pytest.raises(MaxStepsExceeded):
        odeint(Counted(), Y0, t, options={"max_num_steps": 3})
    with pytest.warns(UserWarning, match="unexpected options"):
        odeint(Counted(), Y0, T, options={"bogus": 1})


# ---------------------------------------------------------------------------------------------
# gradients w.r.t. t, tuple / 0-d / complex states
# ---------------------------------------------------------------------------------------------
def test_gradient_wrt_t_closed_form_and_torchdiffeq():
    # y' = -y: y(t_i) = y0 exp(-(t_i - t0)); d/dt_i = -y(t_i), d/dt0 = sum_i y(t_i)
    t = T.clone().requires_grad_(True)
    y = odeint(lambda t, y: -y, Y0, t, rtol=1e-10, atol=1e-12)
    y.sum().backward()
    exact = (Y0.sum() * torch.exp(-(T - T[0])))
    torch.testing.assert_close(t.grad[1:], -exact[1:], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(t.grad[0], exact[1:].sum(), rtol=1e-8, atol=1e-10)
    # a time-dependent field against torchdiffeq
    g = []
    for solver in (odeint, torchdiffeq.odeint):
        t = T.clone().requires_grad_(True)
        solver(Counted(), Y0, t, rtol=1e-10, atol=1e-12).pow(2).sum().backward()
        g.append(t.grad)
    torch.testing.assert_close(g[0], g[1], rtol=1e-6, atol=1e-8)


def test_tuple_state_with_0d_tensor_equals_torchdiffeq():
    y0 = (torch.tensor(1.0, dtype=F64), torch.ones(2, 3, dtype=F64))

    def f(t, y):
        return -y[0] * t, y[1] * torch.cos(t) - y[0]

    a = odeint(f, y0, T)
    b = torchdiffeq.odeint(f, y0, T)
    assert isinstance(a, tuple) and a[0].shape == (7,) and a[1].shape == (7, 2, 3)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=1e-12)
    torch.testing.assert_close(a[0], torch.exp(-0.5 * T ** 2), rtol=1e-6, atol=1e-8)


def test_complex_state():
    w = torch.tensor([1.0, -2.0], dtype=F64)
    z0 = torch.tensor([1 + 1j, 0.5j], dtype=torch.complex128)
    z = odeint(lambda t, z: 1j * w * z, z0, T, rtol=1e-10, atol=1e-12)
    assert z.dtype == torch.complex128
    torch.testing.assert_close(z, z0 * torch.exp(1j * T[:, None] * w), rtol=1e-8, atol=1e-9)
    torch.testing.assert_close(z, torchdiffeq.odeint(lambda t, z: 1j * w * z, z0, T, rtol=1e-10,
                                                     atol=1e-12), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------
def test_event_fn_time_and_solution():
    y0 = torch.tensor([2.0], dtype=F64)
    t01 = torch.tensor([0.0, 1.0], dtype=F64)

    def ev(t, y):
        return y[0] - 0.5

    et, sol = odeint(lambda t, y: -y, y0, t01, event_fn=ev, rtol=1e-10, atol=1e-12)
    et2, sol2 = torchdiffeq.odeint(lambda t, y: -y, y0, t01, event_fn=ev, rtol=1e-10,
                                   atol=1e-12)
    assert sol.shape == sol2.shape == (2, 1)
    assert abs(float(et) - math.log(4.0)) < 1e-9 and abs(float(et) - float(et2)) < 1e-9
    torch.testing.assert_close(sol[-1], torch.tensor([0.5], dtype=F64), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="len\\(t\\) == 2"):
        odeint(lambda t, y: -y, y0, T, event_fn=ev)


def test_odeint_event_gradient_of_event_time():
    # t* = log(y0 / 0.5): d t*/d y0 = 1 / y0
    y0 = torch.tensor([2.0], dtype=F64, requires_grad=True)
    et, _ = odeint_event(lambda t, y: -y, y0, torch.tensor(0.0, dtype=F64),
                         event_fn=lambda t, y: y[0] - 0.5, rtol=1e-10, atol=1e-12)
    et.backward()
    assert abs(float(y0.grad) - 0.5) < 1e-6


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("method", "options"), [
    ("dopri5", {}), ("bosh3", {}), ("euler", {"step_size": 0.01, "interp": "cubic"}),
    ("midpoint", {"step_size": 0.01, "interp": "cubic"}),
    ("rk4", {"step_size": 0.01, "interp": "cubic"})])
def test_event_in_reverse_time_and_on_fixed_grids_equals_torchdiffeq(reverse, method, options):
    # y' = cos t, y(0) = 1: the event y = 1 + sin(±0.5) happens at t = ±0.5
    sign = -1.0 if reverse else 1.0
    t01 = torch.tensor([0.0, sign], dtype=F64)
    y0 = torch.tensor([1.0], dtype=F64)

    def ev(t, y):
        return (y - 1 - math.sin(0.5 * sign)).sum()

    out = [solver(lambda t, y: torch.cos(t) * torch.ones_like(y), y0, t01, event_fn=ev,
                  method=method, options=options)
           for solver in (odeint, torchdiffeq.odeint)]
    (et, sol), (et2, sol2) = out
    assert abs(float(et) - 0.5 * sign) < (5e-3 if method == "euler" else 1e-4)
    torch.testing.assert_close(et, et2, rtol=0, atol=1e-9)
    torch.testing.assert_close(sol, sol2, rtol=0, atol=1e-9)


def test_odeint_adjoint_event_time_is_in_the_graph_without_gradient():
    # as torchdiffeq: event_t.backward() runs and adds nothing; y(t_e) is differentiated at
    # the fixed event time: y = 1 + a sin t, so dy(t_e)/da = sin(t_e)
    class Sine(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.tensor(1.0, dtype=F64))

        def forward(self, t, y):
            return self.a * torch.cos(t) * torch.ones_like(y)

    grads = []
    for solver in (odeint_adjoint, torchdiffeq.odeint_adjoint):
        f = Sine()
        et, sol = solver(f, torch.tensor([1.0], dtype=F64), torch.tensor([0.0, 1.0], dtype=F64),
                         event_fn=lambda t, y: (y - 1 - math.sin(0.5)).sum())
        et.backward(retain_graph=True)
        assert f.a.grad is None or float(f.a.grad) == 0.0
        sol[-1].sum().backward()
        grads.append(float(f.a.grad))
    assert abs(grads[0] - math.sin(0.5)) < 1e-6 and abs(grads[0] - grads[1]) < 1e-6


# ---------------------------------------------------------------------------------------------
# adjoint
# ---------------------------------------------------------------------------------------------
def _grads(solver, **kw):
    f = Counted()
    y0 = Y0.clone().requires_grad_(True)
    t = T.clone().requires_grad_(True)
    solver(f, y0, t, rtol=1e-10, atol=1e-10, **kw).pow(2).sum().backward()
    return torch.cat([y0.grad.reshape(-1), t.grad, f.w.grad.reshape(-1)])


def test_odeint_adjoint_gradients():
    g_adj = _grads(odeint_adjoint)
    torch.testing.assert_close(g_adj, _grads(odeint), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(g_adj, _grads(torchdiffeq.odeint_adjoint), rtol=1e-7, atol=1e-9)
    g_semi = _grads(odeint_adjoint, adjoint_options={"norm": "seminorm"})
    torch.testing.assert_close(g_semi, g_adj, rtol=1e-6, atol=1e-7)


def test_odeint_adjoint_contract_and_regularizers():
    with pytest.raises(ValueError, match="nn.Module"):
        odeint_adjoint(lambda t, y: -y, Y0, T)
    y = odeint_adjoint(lambda t, y: -y, Y0, T, adjoint_params=())
    torch.testing.assert_close(y[-1], Y0 * math.exp(-1.5), rtol=1e-6, atol=1e-8)
    f = Counted()
    rec = Recorder()
    sol = odeint_adjoint(f, Y0, T, rtol=1e-6, atol=1e-6, recorder=rec)
    assert rec.stats.n_accepted > 0 and not rec.stats.differentiable
    with pytest.raises(ValueError, match="local_step"):
        ErrorRegularizer(1.0)(rec)
    # the local mode regularizes adjoint training
    pen = ErrorRegularizer(1.0)(local_step(f, 0.7, sol[3].detach(), rtol=1e-6, atol=1e-6))
    (sol.pow(2).mean() + pen).backward()
    assert f.w.grad is not None and bool(torch.isfinite(f.w.grad).all())


def test_norm_sees_the_state_structure_as_torchdiffeq():
    # torchdiffeq calls options["norm"] with the state as given: a tensor, or a tuple of tensors
    # of their own shapes (0-d included)
    t01 = torch.tensor([0.0, 1.0])
    for y0 in (torch.tensor(1.0), (torch.tensor(1.0),),
               (torch.tensor(1.0), torch.tensor([[0.5, 0.5], [0.1, 0.1]]))):
        seen = {}
        for name, solver in (("ours", odeint), ("torchdiffeq", torchdiffeq.odeint)):
            shapes = set()

            def norm(state, shapes=shapes):
                shapes.add(tuple(s.shape for s in state) if isinstance(state, tuple)
                           else state.shape)
                first = state[0] if isinstance(state, tuple) else state
                return first.pow(2).mean().sqrt()

            solver(lambda t, y: y, y0, t01, options={"norm": norm})
            seen[name] = shapes
        assert seen["ours"] == seen["torchdiffeq"] and len(seen["ours"]) == 1


def test_user_adjoint_norm_sees_torchdiffeqs_augmented_state():
    # (t, y, adj_y, *adj_params) for a tensor state, (t, *y, *adj_y, *adj_params) for a tuple
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p1 = nn.Parameter(torch.rand(7, generator=torch.Generator().manual_seed(0)))
            self.p2 = nn.Parameter(torch.tensor(0.7))

        def forward(self, t, y):
            return tuple(v * self.p2 for v in y) if isinstance(y, tuple) else y * self.p2

    t01 = torch.tensor([0.0, 1.0])
    for y0 in (torch.tensor(1.0), (torch.tensor(1.0), torch.tensor([[0.5, 0.5], [0.1, 0.1]]))):
        seen = {}
        for name, solver in (("ours", odeint_adjoint),
                             ("torchdiffeq", torchdiffeq.odeint_adjoint)):
            shapes = set()

            def adjoint_norm(state, shapes=shapes):
                shapes.add(tuple(s.shape for s in state))
                return max(s.abs().max() for s in state)

            out = solver(Scale(), y0, t01, adjoint_options={"norm": adjoint_norm})
            (out[0] if isinstance(out, tuple) else out).sum().backward()
            seen[name] = shapes
        assert seen["ours"] == seen["torchdiffeq"] and len(seen["ours"]) == 1


class _Oscillating(nn.Module):
    def __init__(self, width: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 2), nn.Tanh())
        self.nfe = 0

    def forward(self, t, x):
        self.nfe += 1
        return self.net(x) * torch.sin(20 * t)


def test_larger_norm_costs_more_steps_and_seminorm_fewer():
    t01 = torch.tensor([0.0, 1.0])
    x0 = torch.tensor([1.0, 2.0])
    small, large = _Oscillating(10, 3), _Oscillating(10, 3)
    odeint(small, x0, t01, options={"norm": lambda y: y.abs().max()})
    odeint(large, x0, t01, options={"norm": lambda y: 10 * y.abs().max()})
    assert small.nfe < large.nfe
    # the seminorm ignores the parameter adjoints in the backward error control
    nfe = {}
    for norm in (None, "seminorm"):
        f = _Oscillating(64, 4)
        out = odeint_adjoint(f, x0, t01, atol=1e-6,
                             adjoint_options=None if norm is None else {"norm": norm})
        f.nfe = 0
        out.sum().backward()
        nfe[norm] = f.nfe
    assert nfe["seminorm"] < nfe[None]


def test_delegated_torchdiffeq_method():
    a, b, _, _ = _both(lambda f: odeint(f, Y0, T, method="adaptive_heun"),
                       lambda f: torchdiffeq.odeint(f, Y0, T, method="adaptive_heun"))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="records no"):
        odeint(Counted(), Y0, T, method="dopri8", recorder=Recorder())


# ---------------------------------------------------------------------------------------------
# torchsde
# ---------------------------------------------------------------------------------------------
class SDE(nn.Module):
    def __init__(self, noise_type="diagonal", sde_type="ito"):
        super().__init__()
        self.noise_type, self.sde_type = noise_type, sde_type
        self.mu = nn.Parameter(torch.tensor([0.5, -0.3, 0.1], dtype=F64))
        self.sig = nn.Parameter(torch.tensor([0.8, 0.5, 1.0], dtype=F64))

    def f(self, t, y):
        return self.mu * y

    def g(self, t, y):
        return self.sig * torch.tanh(y)

    def h(self, t, y):
        return -y


YS0 = torch.ones(4, 3, dtype=F64)
TS = torch.linspace(0.0, 0.5, 4, dtype=F64)


def _bm(entropy=7):
    return torchsde.BrownianInterval(0.0, 0.5, size=(4, 3), dtype=F64, entropy=entropy)


@pytest.mark.parametrize(("sde_type", "method"), [("ito", "euler"), ("ito", "milstein"),
                                                  ("stratonovich", "milstein"),
                                                  ("stratonovich", "euler_heun"),
                                                  ("stratonovich", "heun"),
                                                  ("stratonovich", None)])
def test_sdeint_positional_bm_defaults_equal_torchsde(sde_type, method):
    sde = SDE(sde_type=sde_type)
    ours = sdeint(sde, YS0, TS, _bm(), method=method)  # fixed dt = 1e-3 by default
    ref = torchsde.sdeint(sde, YS0, TS, _bm(), method=method)
    assert isinstance(ours, torch.Tensor) and ours.shape == (4, 4, 3)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_sdeint_logqp_names_extra_and_default_bm():
    sde = SDE()
    def bm4():  # logqp adds a state (and, for diagonal noise, a Brownian channel)
        return torchsde.BrownianInterval(0.0, 0.5, size=(4, 4), dtype=F64, entropy=7)

    ys, lr = sdeint(sde, YS0, TS, bm4(), method="euler", logqp=True)
    ys2, lr2 = torchsde.sdeint(sde, YS0, TS, bm4(), method="euler", logqp=True)
    assert lr.shape == (3, 4)
    torch.testing.assert_close(lr, lr2, rtol=0, atol=1e-12)
    renamed = type("R", (), {"noise_type": "diagonal", "sde_type": "ito",
                             "drift": lambda s, t, y: sde.f(t, y),
                             "g": lambda s, t, y: sde.g(t, y)})()
    torch.testing.assert_close(sdeint(renamed, YS0, TS, _bm(), method="euler",
                                      names={"drift": "drift"}),
                               sdeint(sde, YS0, TS, _bm(), method="euler"), rtol=0, atol=0)
    ys, extra = sdeint(sde, YS0, TS, _bm(), method="euler", extra=True)
    assert extra == ()
    # no bm: a default BrownianInterval, as torchsde
    assert torch.isfinite(sdeint(sde, YS0, TS, method="euler")).all()


def test_sdeint_g_prod_and_f_and_g_give_identical_results():
    sde = SDE(noise_type="general")
    vec = torch.tensor([0.3, -0.2], dtype=F64)

    def g(t, y):
        return torch.tanh(y).unsqueeze(-1) * vec

    base = type("B", (), {"noise_type": "general", "sde_type": "ito",
                          "f": lambda s, t, y: sde.f(t, y), "g": lambda s, t, y: g(t, y)})()
    fg = type("FG", (), {"noise_type": "general", "sde_type": "ito",
                         "f_and_g": lambda s, t, y: (sde.f(t, y), g(t, y))})()
    gp = type("GP", (), {"noise_type": "general", "sde_type": "ito",
                         "f": lambda s, t, y: sde.f(t, y),
                         "g_prod": lambda s, t, y, v: torch.bmm(g(t, y), v[..., None])[..., 0]})()

    def bm():
        return torchsde.BrownianInterval(0.0, 0.5, size=(4, 2), dtype=F64, entropy=3)

    outs = [sdeint(s, YS0, TS, bm(), method="euler", dt=0.05) for s in (base, fg, gp)]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_sdeint_adaptive_euler_warns_and_recorder_is_opt_in():
    sde = SDE()
    with pytest.warns(UserWarning, match="not guaranteed to converge"):
        sdeint(sde, YS0, TS, _bm(), method="euler", dt=0.05, adaptive=True, rtol=1e-2,
               atol=1e-2)
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = sdeint(sde, YS0, TS, _bm(), method="euler", dt=0.05, adaptive=True, rtol=1e-2,
                   atol=1e-2, recorder=rec)
        b = torchsde.sdeint(sde, YS0, TS, _bm(), method="euler", dt=0.05, adaptive=True,
                            rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert rec.stats.n_accepted > 0 and rec.stats.step_errors.requires_grad


def test_sdeint_adjoint_gradients_equal_sdeint():
    grads = []
    for solver in (sdeint, sdeint_adjoint):
        sde = SDE()
        y0 = YS0.clone().requires_grad_(True)
        solver(sde, y0, TS, _bm(), method="milstein", dt=0.01).pow(2).sum().backward()
        grads.append(torch.cat([y0.grad.reshape(-1), sde.mu.grad, sde.sig.grad]))
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="nn.Module"):
        sdeint_adjoint(type("S", (), {"noise_type": "diagonal", "sde_type": "ito",
                                      "f": lambda s, t, y: y, "g": lambda s, t, y: y})(),
                       YS0, TS)
