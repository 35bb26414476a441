"""Exact-answer ODE problems for the ``sciml.nde`` tests and benchmark.

Each :class:`ODEProblem` has a vector field ``func(t, y)`` (an ``nn.Module`` counting its calls
in ``nfe``, so torchdiffeq and ``sciml.nde.odeint`` can be compared call for call), an initial
state, output times and the exact solution ``exact(t)`` of shape ``(T, *y0.shape)`` (a tuple of
such for tuple states).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["ODEProblem", "Linear", "TimeDependent", "Logistic", "Oscillator", "make_problems",
           "stiff_matrix"]


class _Counted(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.nfe = 0

    def reset(self) -> None:
        self.nfe = 0


class Linear(_Counted):
    """``y' = y A^T`` for a batch of row vectors; exact ``y(t) = y0 expm((t - t0) A)^T``."""

    def __init__(self, a: Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return y @ self.a.T

    def exact(self, y0: Tensor, t: Tensor) -> Tensor:
        tt = (t - t[0]).to(self.a.dtype)
        e = torch.linalg.matrix_exp(tt[:, None, None] * self.a)
        return torch.einsum("tij,bj->tbi", e, y0)


class TimeDependent(_Counted):
    """``y' = cos(t) y``; exact ``y(t) = y0 exp(sin t - sin t0)``."""

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return torch.cos(t) * y

    def exact(self, y0: Tensor, t: Tensor) -> Tensor:
        s = torch.sin(t) - torch.sin(t[0])
        return y0[None] * torch.exp(s).reshape(-1, *([1] * y0.ndim))


class Logistic(_Counted):
    """``y' = y (1 - y)``; exact ``y(t) = 1 / (1 + (1/y0 - 1) e^{-(t - t0)})``."""

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return y * (1 - y)

    def exact(self, y0: Tensor, t: Tensor) -> Tensor:
        dt = (t - t[0]).reshape(-1, *([1] * y0.ndim))
        return 1 / (1 + (1 / y0[None] - 1) * torch.exp(-dt))


class Oscillator(_Counted):
    """Tuple state ``(x, v)``, ``x' = v``, ``v' = -w^2 x``; exact harmonic solution."""

    def __init__(self, w: float) -> None:
        super().__init__()
        self.w = w

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        self.nfe += 1
        x, v = state
        return v, -self.w ** 2 * x

    def exact(self, y0: tuple[Tensor, Tensor], t: Tensor) -> tuple[Tensor, Tensor]:
        x0, v0 = y0
        tt = (t - t[0]).reshape(-1, *([1] * x0.ndim))
        c, s = torch.cos(self.w * tt), torch.sin(self.w * tt)
        return x0 * c + v0 / self.w * s, -x0 * self.w * s + v0 * c


@dataclasses.dataclass
class ODEProblem:
    name: str
    func: nn.Module
    y0: Tensor | tuple[Tensor, ...]
    t: Tensor
    exact: Callable[[], Tensor | tuple[Tensor, ...]]


def stiff_matrix(dtype: torch.dtype = torch.float64, rho: float = 50.0) -> Tensor:
    """A symmetric negative-definite 3x3 matrix with eigenvalues ``-1, -3, -rho``."""
    q, _ = torch.linalg.qr(torch.tensor([[1.0, 2.0, 0.5], [0.3, -1.0, 2.0], [1.5, 0.2, -0.7]],
                                        dtype=torch.float64))
    return (q @ torch.diag(torch.tensor([-1.0, -3.0, -rho], dtype=torch.float64)) @ q.T).to(dtype)


def make_problems(dtype: torch.dtype = torch.float64) -> list[ODEProblem]:
    """The problem zoo (deterministic)."""
    g = torch.Generator().manual_seed(7)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.7
    lin = Linear(a.to(dtype))
    y_lin = torch.randn(3, 4, generator=g, dtype=torch.float64).to(dtype)
    t_lin = torch.linspace(0.0, 2.0, 11, dtype=dtype)
    td = TimeDependent()
    y_td = torch.tensor([1.0, -0.5, 2.0], dtype=dtype)
    t_td = torch.tensor([0.3, 0.9, 2.0, 5.0, 7.5], dtype=dtype)
    lg = Logistic()
    y_lg = torch.tensor([[0.1, 0.5], [0.9, 1.5]], dtype=dtype)
    t_lg = torch.linspace(0.0, 6.0, 7, dtype=dtype)
    osc = Oscillator(3.0)
    y_osc = (torch.tensor([1.0, 0.0], dtype=dtype), torch.tensor([0.0, 2.0], dtype=dtype))
    t_osc = torch.linspace(0.0, 3.0, 5, dtype=dtype)
    stiff = Linear(stiff_matrix(dtype))
    y_st = torch.tensor([[1.0, 1.0, 1.0]], dtype=dtype)
    t_st = torch.tensor([0.0, 0.5, 2.0], dtype=dtype)
    t_rev = torch.linspace(2.0, 0.0, 6, dtype=dtype)
    lin_r = Linear(a.to(dtype))
    return [
        ODEProblem("linear", lin, y_lin, t_lin, lambda: lin.exact(y_lin, t_lin)),
        ODEProblem("time_dependent", td, y_td, t_td, lambda: td.exact(y_td, t_td)),
        ODEProblem("logistic", lg, y_lg, t_lg, lambda: lg.exact(y_lg, t_lg)),
        ODEProblem("oscillator_tuple", osc, y_osc, t_osc, lambda: osc.exact(y_osc, t_osc)),
        ODEProblem("stiff_linear", stiff, y_st, t_st, lambda: stiff.exact(y_st, t_st)),
        ODEProblem("linear_reversed", lin_r, y_lin, t_rev, lambda: lin_r.exact(y_lin, t_rev)),
    ]


def solve_with_stats(func, y0, t, *, record_stiffness: bool = True, step_size=None,
                     first_step=None, max_steps=None, throw=None, **kw):
    """``sciml.nde.odeint`` with a :class:`~sciml.nde.Recorder`: ``(solution, stats)``."""
    from sciml.nde import Recorder, odeint

    opts = {k: v for k, v in (("step_size", step_size), ("first_step", first_step),
                              ("max_num_steps", max_steps), ("throw", throw)) if v is not None}
    rec = Recorder(stiffness=record_stiffness)
    sol = odeint(func, y0, t, options=opts or None, recorder=rec, **kw)
    return sol, rec.stats
