"""Tests for :func:`sciml.nde._sdeint.sdeint`: oracle agreement with torchsde, strong orders,
seeded Brownian paths, the differentiable step-doubling error estimate, statistics, bad input."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
import torchsde
from torchsde._core.adaptive_stepping import compute_error

from sciml.nde import Recorder, SolverStats
from sciml.nde._sdeint import (
    EulerHeun,
    EulerMaruyama,
    Milstein,
    PIController,
    SDESolverStats,
    _scaled_error,
    sdeint,
)

F64 = torch.float64


def solve_sde(sde, y0, ts, *, method="euler", dt=None, adaptive=True, rtol=1e-3, atol=1e-3,
              dt_min=1e-5, entropy=None, generator=None, bm=None, controller=None,
              estimate_error=None, max_steps=4096, throw=None):
    """``sciml.nde.sdeint`` with a Recorder and these tests' defaults: ``(ys, stats)``."""
    ts = torch.as_tensor(ts)
    dt = float(ts[-1] - ts[0]) / 100 if dt is None else dt
    opts = {k: v for k, v in (("entropy", entropy), ("generator", generator),
                              ("controller", controller), ("estimate_error", estimate_error),
                              ("max_steps", max_steps), ("throw", throw)) if v is not None}
    if method == "milstein":
        opts.setdefault("grad_free", True)
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numerical solution is not guaranteed")
        ys = sdeint(sde, y0, ts, bm, method=method, dt=dt, adaptive=adaptive, rtol=rtol,
                    atol=atol, dt_min=dt_min, options=opts, recorder=rec)
    return ys, rec.stats


class GBM(torch.nn.Module):
    """dY = mu Y dt + Y sigma dW (diagonal: sigma per component; general: sigma (d, m) matrix;
    scalar: sigma (d,) on one Brownian motion).  Exact solution on the same path below."""

    def __init__(self, mu, sigma, noise_type="diagonal", sde_type="ito"):
        super().__init__()
        self.mu = torch.as_tensor(mu, dtype=F64)
        self.sigma = torch.as_tensor(sigma, dtype=F64)
        self.noise_type, self.sde_type = noise_type, sde_type
        self.calls_f = self.calls_g = 0

    def f(self, t, y):
        self.calls_f += 1
        return self.mu * y

    def g(self, t, y):
        self.calls_g += 1
        if self.noise_type == "diagonal":
            return self.sigma * y
        if self.noise_type == "scalar":
            return (self.sigma * y)[..., None]
        return y[..., None] * self.sigma  # general: (b, d, m)

    def exact(self, w, t=1.0):
        """Solution at time t given W(t) - W(0) = w, started from 1."""
        if self.noise_type == "diagonal":
            s2, sw = self.sigma**2, self.sigma * w
        elif self.noise_type == "scalar":
            s2, sw = self.sigma**2, self.sigma * w
        else:
            s2, sw = (self.sigma**2).sum(-1), w @ self.sigma.T
        drift = self.mu - 0.5 * s2 if self.sde_type == "ito" else self.mu
        return torch.exp(drift * t + sw)


class Linear(torch.nn.Module):
    """dy = lam * y dt + c dt + s * y dW, diagonal noise."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, lam, c=0.0, s=0.0):
        super().__init__()
        self.lam, self.c, self.s = lam, c, s

    def f(self, t, y):
        return self.lam * y + self.c

    def g(self, t, y):
        return self.s * y


class Neural(torch.nn.Module):
    """Tiny neural SDE: drift theta[0] * tanh(theta[1] * y), diffusion 0.3 * y."""

    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, theta):
        super().__init__()
        self.theta = theta

    def f(self, t, y):
        return self.theta[0] * torch.tanh(self.theta[1] * y)

    def g(self, t, y):
        return 0.3 * y


def _ts(*t):
    return torch.tensor(t, dtype=F64)


# --------------------------------------------------------------------------------------------
# torchsde is the oracle for the adaptive loop: same Brownian sample, same controller
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "sde_type", "options"),
    [("euler", "ito", None), ("milstein", "ito", {"grad_free": True}),
     ("euler_heun", "stratonovich", None)],
)
def test_adaptive_solve_reproduces_torchsde(method, sde_type, options):
    sde = GBM([0.5, -0.3, 0.1], [0.8, 0.5, 1.0], sde_type=sde_type)
    y0 = torch.ones(32, 3, dtype=F64)
    ts = torch.linspace(0, 1, 6, dtype=F64)
    kw = {"dt": 0.1, "rtol": 3e-3, "atol": 3e-3}
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(32, 3), dtype=F64, entropy=3)
    ys, stats = solve_sde(sde, y0, ts, method=method, bm=bm, **kw)
    bm_ref = torchsde.BrownianInterval(0.0, 1.0, size=(32, 3), dtype=F64, entropy=3)
    with pytest.warns(UserWarning) if method == "euler" else _nullcontext():
        ref = torchsde.sdeint(sde, y0, ts, bm=bm_ref, method=method, adaptive=True,
                              options=options, **kw)
    assert stats.status == "success" and stats.n_rejected > 0  # the controller was exercised
    torch.testing.assert_close(ys, ref, rtol=0, atol=1e-12)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def test_scaled_error_equals_torchsde_compute_error():
    y1 = torch.randn(7, 5, dtype=F64)
    y2 = y1 + 1e-3 * torch.randn(7, 5, dtype=F64)
    e = _scaled_error(y1, y2, rtol=1e-2, atol=1e-3)
    assert math.isclose(float(e), compute_error(y1, y2, 1e-2, 1e-3), rel_tol=1e-12)


# --------------------------------------------------------------------------------------------
# strong order against the exact GBM solution on the same Brownian path
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "noise_type", "sde_type", "sigma"),
    [
        ("euler", "diagonal", "ito", [1.0]),
        ("euler", "general", "ito", [[0.6, 0.8], [0.8, -0.3]]),
        ("milstein", "diagonal", "ito", [1.0]),
        ("milstein", "scalar", "ito", [1.0, -0.5]),
        ("euler_heun", "diagonal", "stratonovich", [1.0]),
    ],
)
def test_strong_order_matches_declared(method, noise_type, sde_type, sigma):
    sde = GBM(0.5, sigma, noise_type=noise_type, sde_type=sde_type)
    sig = torch.as_tensor(sigma)
    d = sig.shape[0]
    m = {"diagonal": d, "scalar": 1, "general": sig.shape[-1]}[noise_type]
    paths = 1000
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(paths, m), dtype=F64, entropy=11)
    w = bm(0.0, 1.0)
    exact = sde.exact(w)
    y0 = torch.ones(paths, d, dtype=F64)
    dts = [2.0**-k for k in range(3, 9)]
    errs = []
    for dt in dts:
        ys, stats = solve_sde(sde, y0, _ts(0, 1), method=method, dt=dt, adaptive=False, bm=bm)
        assert stats.n_accepted == round(1 / dt)
        errs.append(float((ys[-1] - exact).abs().mean()))
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    declared = {"euler": EulerMaruyama, "milstein": Milstein, "euler_heun": EulerHeun}[method]()
    assert abs(slope - declared.strong_order(noise_type)) < 0.1, (slope, errs)


class _OUAdditive:
    """dY = -Y dt + S dW with a constant (d, m) matrix S: additive noise."""

    noise_type, sde_type = "additive", "ito"
    S = torch.tensor([[0.5, 0.2], [-0.3, 0.8]], dtype=F64)

    def f(self, t, y):
        return -y + torch.sin(y)

    def g(self, t, y):
        return self.S.expand(y.shape[0], 2, 2)


def test_strong_order_additive_noise_against_fine_reference():
    # Euler-Maruyama has strong order 1.0 for additive noise; reference: the same scheme with
    # 2^-10 steps on the same Brownian path (its own error ~2^-10 is far below the coarse ones).
    sde, paths = _OUAdditive(), 500
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(paths, 2), dtype=F64, entropy=13)
    y0 = torch.ones(paths, 2, dtype=F64)
    ref = solve_sde(sde, y0, _ts(0, 1), dt=2.0**-10, adaptive=False, bm=bm)[0][-1]
    dts = [2.0**-k for k in range(2, 7)]
    errs = [float((solve_sde(sde, y0, _ts(0, 1), dt=dt, adaptive=False, bm=bm)[0][-1] - ref)
                  .abs().mean()) for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - EulerMaruyama().strong_order("additive")) < 0.1, (slope, errs)


def test_declared_orders():
    assert EulerMaruyama().strong_order("diagonal") == 0.5
    assert EulerMaruyama().strong_order("additive") == 1.0
    assert Milstein().strong_order("scalar") == 1.0
    assert EulerHeun().strong_order("general") == 0.5


# --------------------------------------------------------------------------------------------
# seeded Brownian motion
# --------------------------------------------------------------------------------------------
def test_entropy_determinism():
    sde = GBM([0.5, 0.2], [0.8, 0.4])
    y0 = torch.ones(16, 2, dtype=F64)
    ts = torch.linspace(0, 1, 4, dtype=F64)
    torch.manual_seed(0)
    ys_a, st_a = solve_sde(sde, y0, ts, entropy=5, rtol=1e-2, atol=1e-2)
    torch.manual_seed(1)  # the global seed must not matter
    ys_b, st_b = solve_sde(sde, y0, ts, entropy=5, rtol=1e-2, atol=1e-2)
    ys_c, _ = solve_sde(sde, y0, ts, entropy=6, rtol=1e-2, atol=1e-2)
    assert torch.equal(ys_a, ys_b)
    assert torch.equal(st_a.step_sizes, st_b.step_sizes) and st_a.nfe == st_b.nfe
    assert torch.equal(st_a.step_errors, st_b.step_errors)
    assert (ys_a[-1] - ys_c[-1]).abs().max() > 1e-2


def test_generator_gives_reproducible_sequence_of_paths():
    sde = GBM([0.5], [0.8])
    y0 = torch.ones(16, 1, dtype=F64)
    ts = _ts(0, 1)

    def two_draws(seed):
        gen = torch.Generator().manual_seed(seed)
        return [solve_sde(sde, y0, ts, generator=gen)[0] for _ in range(2)]

    a1, a2 = two_draws(0)
    b1, b2 = two_draws(0)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert (a1 - a2).abs().max() > 1e-2  # successive calls draw new paths
    # the drawn entropy is recorded and replays the solve
    ys, st = solve_sde(sde, y0, ts, generator=torch.Generator().manual_seed(0))
    assert isinstance(st.entropy, int) and torch.equal(ys, a1)
    assert torch.equal(solve_sde(sde, y0, ts, entropy=st.entropy)[0], a1)
    bm = torchsde.BrownianInterval(0.0, 1.0, size=(16, 1), dtype=F64, entropy=0)
    assert solve_sde(sde, y0, ts, bm=bm)[1].entropy is None


# --------------------------------------------------------------------------------------------
# the error estimate: closed form, zero where the scheme is exact, gradients
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["euler", "milstein"])
def test_error_estimate_zero_for_constant_drift(method):
    y0 = torch.randn(8, 3, dtype=F64)
    _, stats = solve_sde(Linear(0.0, c=2.0), y0, _ts(0, 1), method=method, dt=0.25,
                      adaptive=False, estimate_error=True, entropy=0)
    assert stats.step_errors.shape == (4,)
    assert float(stats.step_errors.max()) < 1e-13


def test_error_estimate_closed_form_linear_drift():
    # Euler step doubling on y' = lam y: y(1 + lam h) - y(1 + lam h / 2)^2 = -y lam^2 h^2 / 4,
    # so with rtol = 0, atol = 1 the estimate is RMS(y0) lam^2 h^2 / 4: 100x larger for 10x lam.
    y0 = torch.randn(8, 3, dtype=F64)
    h = 0.1
    errs = []
    for lam in (-1.0, -10.0):
        _, st = solve_sde(Linear(lam), y0, _ts(0, h), dt=h, adaptive=False, estimate_error=True,
                       rtol=0.0, atol=1.0, entropy=0)
        errs.append(float(st.step_errors[0]))
        expected = float(y0.pow(2).mean().sqrt()) * lam**2 * h**2 / 4
        assert math.isclose(errs[-1], expected, rel_tol=1e-12)
    assert math.isclose(errs[1] / errs[0], 100.0, rel_tol=1e-10)


def test_gradcheck_error_regularizer_fixed_steps():
    y0 = torch.tensor([[0.5, -1.0], [1.5, 0.2]], dtype=F64)

    def reg_and_state(theta):
        ys, st = solve_sde(Neural(theta), y0, _ts(0, 0.5), dt=0.125, adaptive=False,
                        estimate_error=True, rtol=1e-2, atol=1e-2, entropy=1)
        return (st.step_errors * st.step_sizes.abs()).sum(), ys[-1]

    theta = torch.tensor([-1.3, 0.7], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(reg_and_state, (theta,))
    reg, _ = reg_and_state(theta)
    (g,) = torch.autograd.grad(reg, theta)
    assert float(g.abs().max()) > 0


def test_zero_error_has_zero_not_nan_gradient():
    theta = torch.tensor([0.0, 1.0], dtype=F64, requires_grad=True)
    sde = Neural(theta)
    sde.g = lambda t, y: 0.0 * y  # deterministic and f == 0: every error is exactly 0
    _, st = solve_sde(sde, torch.ones(2, 2, dtype=F64), _ts(0, 1), dt=0.25, adaptive=False,
                   estimate_error=True, entropy=0)
    assert float(st.step_errors.detach().abs().max()) == 0.0
    (g,) = torch.autograd.grad((st.step_errors * st.step_sizes).sum(), theta)
    assert torch.isfinite(g).all()


def test_adaptive_error_regularizer_backpropagates():
    theta = torch.tensor([-2.0, 1.5], dtype=F64, requires_grad=True)
    _, st = solve_sde(Neural(theta), torch.ones(8, 2, dtype=F64), _ts(0, 1), rtol=1e-3,
                   atol=1e-3, entropy=2)
    reg = (st.step_errors * st.step_sizes.abs()).sum()
    (g,) = torch.autograd.grad(reg, theta)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0
    assert st.step_sizes.grad_fn is None  # step sizes are detached


# --------------------------------------------------------------------------------------------
# statistics and outputs
# --------------------------------------------------------------------------------------------
def test_adaptive_statistics_consistent():
    sde = GBM([0.5, -1.0, 0.3], [0.8, 0.5, 1.2])
    ys, st = solve_sde(sde, torch.ones(32, 3, dtype=F64), _ts(0.2, 1.7), dt=0.01, rtol=1e-2,
                    atol=1e-2, entropy=4)
    assert isinstance(st, SDESolverStats) and isinstance(st, SolverStats)
    assert st.status == "success" and st.method == "euler" and st.stiffness is None
    assert len(st.step_sizes) == len(st.step_errors) == len(st.times) == st.n_accepted
    assert math.isclose(float(st.step_sizes.sum()), 1.5, rel_tol=1e-12)
    assert math.isclose(float(st.times[0]), 0.2) and torch.all(st.step_sizes > 0)
    torch.testing.assert_close(st.times[1:], (st.times + st.step_sizes)[:-1])
    assert float(st.step_errors.max()) <= 1.0
    # Euler: 1 initial f, 1 midpoint f per attempt, 1 f at each accepted step's end but the last.
    # (torchsde's contract check calls f and g once more, outside the solver)
    assert st.nfe_drift == sde.calls_f - 1 == 2 * st.n_accepted + st.n_rejected
    assert st.nfe_diffusion == sde.calls_g - 1 == st.nfe_drift
    assert st.nfe == st.nfe_drift + st.nfe_diffusion
    assert torch.isfinite(ys).all()


def test_tighter_tolerance_takes_more_steps():
    sde = GBM([0.5], [0.8])
    y0 = torch.ones(16, 1, dtype=F64)
    loose = solve_sde(sde, y0, _ts(0, 1), rtol=1e-1, atol=1e-1, entropy=0)[1]
    tight = solve_sde(sde, y0, _ts(0, 1), rtol=1e-3, atol=1e-3, entropy=0)[1]
    assert tight.n_accepted > 2 * loose.n_accepted


def test_outputs_at_grid_times_are_solution_values():
    # same span (hence same Brownian tree) and same fixed grid: outputs on grid points agree
    sde = GBM([0.5, 0.1], [0.8, 0.3])
    y0 = torch.ones(4, 2, dtype=F64)

    def solve(*t):
        return solve_sde(sde, y0, _ts(*t), dt=0.25, adaptive=False, entropy=9)[0]

    ys3, ys5 = solve(0, 0.5, 1), solve(0, 0.25, 0.5, 0.75, 1)
    assert ys3.shape == (3, 4, 2)
    torch.testing.assert_close(ys3, ys5[::2], rtol=0, atol=0)
    # an interior time between grid points is the linear interpolation of its neighbours
    ys_q = solve(0, 0.375, 1)
    torch.testing.assert_close(ys_q[1], 0.5 * (ys5[1] + ys5[2]), rtol=0, atol=1e-15)


def test_max_steps_status_and_error():
    sde = GBM([0.5], [0.8])
    y0 = torch.ones(4, 1, dtype=F64)
    ts = _ts(0, 0.5, 1)
    with pytest.raises(RuntimeError, match="max_steps=5 step attempts reached"):
        solve_sde(sde, y0, ts, dt=0.01, rtol=1e-6, atol=1e-6, max_steps=5, entropy=0)
    ys, st = solve_sde(sde, y0, ts, dt=0.01, rtol=1e-6, atol=1e-6, max_steps=5, entropy=0,
                    throw=False)
    assert st.status == "max_steps" and st.n_accepted + st.n_rejected == 5
    assert torch.isnan(ys[-1]).all() and torch.isfinite(ys[0]).all()


def test_dt_min_forces_progress():
    # an unreachable tolerance: every attempt fails until dt_min, where steps are accepted
    _, st = solve_sde(GBM([0.5], [0.8]), torch.ones(4, 1, dtype=F64), _ts(0, 0.01), dt=1e-3,
                   rtol=1e-12, atol=1e-12, dt_min=1e-3 / 8, entropy=0)
    assert st.status == "success"
    assert math.isclose(float(st.step_sizes.sum()), 0.01, rel_tol=1e-12)
    assert float(st.step_sizes.min()) >= 1e-3 / 8 * (1 - 1e-9)


def test_non_finite_state_raises():
    class Blowup(Linear):
        def f(self, t, y):
            return y * (float("nan") if t > 0.3 else 1.0)

    with pytest.raises(RuntimeError, match="state became non-finite"):
        solve_sde(Blowup(0.0, s=0.1), torch.ones(2, 1, dtype=F64), _ts(0, 1), dt=0.1,
               adaptive=False, entropy=0)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
class _Shaped:
    def __init__(self, noise_type, g_shape, sde_type="ito"):
        self.noise_type, self.sde_type, self.g_shape = noise_type, sde_type, g_shape

    def f(self, t, y):
        return -y

    def g(self, t, y):
        return torch.ones(self.g_shape, dtype=y.dtype)


Y0 = torch.ones(3, 2, dtype=F64)
T01 = _ts(0, 1)


@pytest.mark.parametrize(
    ("noise_type", "g_shape"),
    [("diagonal", (3, 2, 1)), ("scalar", (3, 2)), ("scalar", (3, 2, 2)), ("general", (3, 2)),
     ("additive", (3, 5, 2))],
)
def test_wrong_diffusion_shape(noise_type, g_shape):
    # torchsde's own contract check rejects it (a drop-in raises what torchsde raises)
    with pytest.raises(ValueError, match="Diffusion|noise channels|consistent"):
        solve_sde(_Shaped(noise_type, g_shape), Y0, T01, entropy=0)


def test_wrong_drift_shape():
    sde = _Shaped("diagonal", (3, 2))
    sde.f = lambda t, y: y[0]
    with pytest.raises(ValueError, match="Drift must be of shape"):
        solve_sde(sde, Y0, T01, entropy=0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"ts": _ts(0, 1, 1)}, ValueError, "strictly increasing"),
        ({"ts": _ts(1, 0)}, ValueError, "strictly increasing"),
        ({"y0": torch.ones(2, dtype=F64)}, ValueError, "2-dimensional"),
        ({"y0": [[1.0]]}, ValueError, "must be a torch.Tensor"),
        ({"generator": torch.Generator()}, ValueError, "not both"),
        ({"entropy": 1.5}, TypeError, "entropy'] must be an int"),
        ({"entropy": True}, TypeError, "entropy'] must be an int"),
        ({"entropy": -1}, ValueError, r"entropy'\] must be an int >= 0, got -1; the seed"),
        ({"entropy": None, "generator": 3}, TypeError, "generator'] must be a torch.Generator"),
        ({"bm": torchsde.BrownianInterval(0.0, 1.0, size=(3, 2), entropy=0)}, ValueError,
         "do not pass them with bm"),
        ({"method": "blah"}, ValueError, "Expected method in"),
        ({"method": 3}, TypeError, "method must be a name or an AbstractSDEScheme"),
        ({"method": "euler_heun"}, ValueError, "only supports SDEs of type"),
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "not both 0"),
        ({"rtol": -1.0}, ValueError, "rtol must be >= 0, got -1.0; need rtol >= 0"),
        ({"atol": -1.0}, ValueError, "atol must be >= 0, got -1.0"),
        ({"dt": -0.1}, ValueError, "dt must be > 0, got -0.1; the .*step size"),
        ({"dt": 0}, ValueError, "dt must be > 0, got 0"),
        ({"dt": torch.tensor(-0.1)}, ValueError, "dt must be > 0"),
        ({"dt": "0.1"}, TypeError, "dt must be a float, got str"),
        ({"dt": True}, TypeError, "dt must be a float, got bool"),
        ({"dt_min": 0.0}, ValueError, "dt_min must be > 0, got 0.0; the smallest step"),
        ({"max_steps": 0}, ValueError, r"max_steps'\] must be an int >= 1, got 0"),
        ({"max_steps": 10.0}, TypeError, r"max_steps'\] must be an int >= 1, got 10.0"),
        ({"controller": {"safety": 0.9}}, TypeError, "controller'] must be a PIController"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = {"y0": Y0, "ts": T01, "entropy": 0}
    args.update(kwargs)
    y0, ts = args.pop("y0"), args.pop("ts")
    with pytest.raises(exc, match=match):
        solve_sde(_Shaped("diagonal", (3, 2)), y0, ts, **args)


def test_bad_sde_objects_and_delegated_methods():
    with pytest.raises(ValueError, match="must define at least one of `g`"):
        solve_sde(type("S", (), {"f": lambda s, t, y: y, "noise_type": "diagonal",
                                 "sde_type": "ito"})(), Y0, T01, entropy=0)
    with pytest.raises(ValueError, match="Expected noise type"):
        solve_sde(_Shaped("diag", (3, 2)), Y0, T01, entropy=0)
    with pytest.raises(ValueError, match="Expected sde type"):
        solve_sde(_Shaped("diagonal", (3, 2), sde_type="Ito"), Y0, T01, entropy=0)
    with pytest.raises(ValueError, match="only supports noise types"):
        solve_sde(_Shaped("general", (3, 2, 2)), Y0, T01, method="milstein", entropy=0)
    with pytest.raises(ValueError, match="only supports SDEs of type"):
        solve_sde(_Shaped("diagonal", (3, 2)), Y0, T01, method=EulerHeun(), entropy=0)
    # srk runs in torchsde: no recorder, none of our options
    with pytest.raises(ValueError, match="not implemented by sciml.nde"):
        solve_sde(_Shaped("diagonal", (3, 2)), Y0, T01, method="srk", entropy=0)
    # ... but the plain drop-in call works (torchsde's default method for Itô diagonal noise)
    ys = sdeint(_Shaped("diagonal", (3, 2)), Y0, T01, dt=0.1)
    assert ys.shape == (2, 3, 2) and torch.isfinite(ys).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"safety": 1.5}, r"safety must be <= 1, got 1.5; the safety factor .* in \(0, 1\]"),
        ({"safety": 0.0}, "safety must be > 0"),
        ({"safety": math.nan}, "safety must be finite"),
        ({"facmin": 1.2}, "facmin must be < 1, got 1.2; need 0 < facmin < 1 < facmax"),
        ({"facmin": 1.0}, "facmin must be < 1"),
        ({"facmax": 0.9}, "need 0 < facmin < 1 < facmax"),
        ({"facmax": math.inf}, "facmax must be finite"),
        ({"i_accept": 0.0}, "i_accept must be > 0, got 0.0; need i_accept > 0"),
        ({"i_accept": math.nan}, "i_accept must be finite"),  # a NaN used to pass
        ({"i_reject": math.inf}, "i_reject must be finite"),
        ({"p_accept": -0.1}, "p_accept must be >= 0, got -0.1"),
    ],
)
def test_pi_controller_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PIController(**kwargs)


@pytest.mark.parametrize("name", ["safety", "facmin", "facmax", "i_accept", "p_accept"])
def test_pi_controller_types(name):
    for bad in ("0.5", True, None):
        with pytest.raises(TypeError, match=f"{name} must be a real number"):
            PIController(**{name: bad})


def test_pi_controller_behaviour():
    c = PIController()
    h, r = c.propose(4.0, 0.1, None)  # reject: shrink by (0.9 / 4)^(1/1.5)
    assert math.isclose(h, 0.1 * (0.9 / 4) ** (1 / 1.5)) and r == 0.9 / 4
    h, r2 = c.propose(4.0, 0.1, 0.5)  # a rejection keeps the previous ratio
    assert r2 == 0.5
    h, r = c.propose(1e-9, 0.1, None)  # tiny error: growth capped at facmax
    assert math.isclose(h, 0.14) and r is not None
    h, _ = c.propose(float("nan"), 0.1, r)  # non-finite: shrink by facmin
    assert math.isclose(h, 0.02)
    h, _ = PIController(p_accept=0.0).propose(0.9, 0.1, 0.5)  # I controller at E = safety: keep
    assert math.isclose(h, 0.1)


# --------------------------------------------------------------------------------------------
# ERNSDE: the error regularizer reads the SDE statistics
# --------------------------------------------------------------------------------------------
def test_error_regularizer_on_sde_stats():
    from sciml.nde import ErrorRegularizer

    theta = torch.tensor([-2.0, 1.5], dtype=F64, requires_grad=True)
    _, st = solve_sde(Neural(theta), torch.ones(8, 2, dtype=F64), _ts(0, 1), rtol=1e-3,
                   atol=1e-3, entropy=2)
    reg = ErrorRegularizer(0.5)(st)
    torch.testing.assert_close(reg, 0.5 * (st.step_errors * st.step_sizes).sum())
    assert float(reg.detach()) <= 0.5  # accepted errors <= 1, steps sum to T - t0 = 1
    (g,) = torch.autograd.grad(reg, theta)
    assert torch.isfinite(g).all() and float(g.abs().max()) > 0


def test_example_smoke(tmp_path):
    import runpy
    from pathlib import Path

    ex = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "nde_sde.py"),
                        run_name="example")
    out = tmp_path / "r.json"
    res = ex["main"](["--quick", "--json", str(out), "--plot",
                      str(tmp_path / "p.png")])
    saved = json.loads(out.read_text())
    assert (tmp_path / "p.png").exists()
    assert saved["methods"] == res["methods"]
    for name in ("vanilla", "no_sde"):
        assert set(saved["methods"][name]) >= {"nfe", "train_seconds", "predict_seconds",
                                               "metric"}
    assert saved["methods"]["no_sde"]["nfe"] == 0
    assert saved["methods"]["vanilla"]["nfe"] > 0
    er = saved["methods"]["ernsde"]
    if er["chosen_lambda"] is not None:
        assert math.isclose(er["nfe_ratio"], er["nfe"] / saved["methods"]["vanilla"]["nfe"])
        assert er["predict_speedup"] > 0
    # a second call resumes from the cache: same models, same accuracies
    res2 = ex["main"](["--quick", "--json", str(out), "--plot", str(tmp_path / "p.png")])
    assert res2["methods"]["vanilla"]["metric"] == res["methods"]["vanilla"]["metric"]


def test_fixed_steps_without_error_estimate():
    sde = GBM([0.5], [0.8])
    _, st = solve_sde(sde, torch.ones(4, 1, dtype=F64), _ts(0, 1), dt=0.1, adaptive=False,
                   entropy=0)
    assert st.n_accepted == 10 and st.n_rejected == 0 and st.step_errors.numel() == 0
    # Euler, one step per interval: f and g at the start of each step, none at the end
    assert st.nfe_drift == st.nfe_diffusion == 10
    torch.testing.assert_close(st.step_sizes, torch.full((10,), 0.1, dtype=F64))
