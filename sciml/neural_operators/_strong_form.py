r"""Strong-form physics-informed baseline (PI-DeepONet / PI-MultiONet) for Darcy flow.

The residual of :math:`-\nabla\cdot(a\nabla u) = f` in non-divergence form,

.. math:: r(x) = a\,\Delta u + \nabla a\cdot\nabla u + f,

is driven to zero at random collocation points (shared by the mini-batch, redrawn each step),
with :math:`u = N(x; a)\sin\pi x\sin\pi y` (hard boundary conditions) and :math:`a, \nabla a` from
bilinear interpolation of the gridded coefficient. For a two-phase :math:`a` the strong form is
ill-posed at the interfaces (:math:`\nabla a` is a jump smeared over one cell), which is why the
reference reports 14–17 % errors for PI-DeepONet/PI-MultiONet on piecewise-constant Darcy
(Zang & Koutsourelakis 2025, Table of the baseline repository). ``Δu`` and ``∇u`` come from
the shared-trunk forward-mode jet (:meth:`MultiONet.jet` with ``laplacian=True``).

References
----------
S. Wang, H. Wang, P. Perdikaris, "Learning the solution operator of parametric partial
differential equations with physics-informed DeepONets", Sci. Adv. 7 (2021) eabi8605.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_real

from ._base import AbstractNeuralOperator, _check_points
from ._dgno import _mollify, sine_mollifier
from ._multionet import OperatorJet, _InnerProductOperator
from ._pde import PDE, Fields
from ._train import AbstractObjective

__all__ = ["PhysicsInformedOperator", "StrongFormOptions", "StrongFormObjective",
           "bilinear_with_gradient", "strong_residual"]


class PhysicsInformedOperator(AbstractNeuralOperator):
    """``u(a)(x) = net(a, x)·m(x)``: a DeepONet/MultiONet with hard zero boundary values.

    Parameters
    ----------
    net : MultiONet or DeepONet
        With an ``encoder`` (or raw vector inputs).
    pde : PDE, optional
        The equation: its mollifier ``m`` and strong residual (``PDE.strong``). Default: Darcy
        flow on the unit square, ``m = sin(πx)sin(πy)``.

    Raises
    ------
    TypeError
        If ``net`` is not a DeepONet/MultiONet or ``pde`` not a PDE.
    ValueError
        If the PDE has no strong residual.
    """

    def __init__(self, net: _InnerProductOperator, *, pde: PDE | None = None) -> None:
        super().__init__()
        if not isinstance(net, _InnerProductOperator):
            raise TypeError("net must be a MultiONet or DeepONet")
        if pde is not None and not isinstance(pde, PDE):
            raise TypeError(f"pde must be a PDE, got {type(pde).__name__}")
        if pde is not None and pde.strong is None:
            raise ValueError(f"the PDE {pde.name!r} has no strong residual (PDE.strong)")
        self.net = net
        self.pde = pde

    def _mollifier(self):
        return sine_mollifier if self.pde is None else self.pde.mollify

    def forward(self, a: Tensor, x: Tensor) -> Tensor:
        out = self.net(a, x)
        _check_points(x, out.shape[0], self.net.in_size_x)
        return out * self._mollifier()(x)[0]

    def jet(self, a: Tensor, x: Tensor, *, laplacian: bool = True) -> OperatorJet:
        """``u``, ``∇u`` and ``Δu`` at shared points ``x`` ``(N, d)``."""
        return _mollify(self.net.jet(a, x, grad=True, laplacian=laplacian), x, self._mollifier())


def bilinear_with_gradient(a: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Bilinear interpolant of ``a`` ``(B, n, n)`` (nodes at ``(i, j)/(n-1)``) and its gradient
    at ``points`` ``(P, 2)`` in the unit square: ``(B, P)`` and ``(B, P, 2)``.

    Raises
    ------
    ValueError
        Points outside the unit square.
    """
    n = a.shape[-1]
    if bool(((points < -1e-6) | (points > 1 + 1e-6)).any()):
        raise ValueError("points must lie in the unit square [0, 1]^2")
    h = 1.0 / (n - 1)
    s = points.detach().clamp(0, 1) * (n - 1)
    i0 = s[:, 0].floor().clamp(max=n - 2).long()
    j0 = s[:, 1].floor().clamp(max=n - 2).long()
    fx, fy = s[:, 0] - i0, s[:, 1] - j0
    a00, a10 = a[:, i0, j0], a[:, i0 + 1, j0]
    a01, a11 = a[:, i0, j0 + 1], a[:, i0 + 1, j0 + 1]
    val = (a00 * (1 - fx) * (1 - fy) + a10 * fx * (1 - fy) + a01 * (1 - fx) * fy + a11 * fx * fy)
    dx = ((a10 - a00) * (1 - fy) + (a11 - a01) * fy) / h
    dy = ((a01 - a00) * (1 - fx) + (a11 - a10) * fx) / h
    return val, torch.stack([dx, dy], -1)


def strong_residual(model: PhysicsInformedOperator, a: Tensor, points: Tensor,
                    source: float) -> Tensor:
    r"""The strong residual at shared ``points`` ``(P, d)`` → ``(B, P)``: ``model.pde.strong`` of
    the :class:`Fields` (``u``, ``∇u``, ``Δu`` from the jet; ``a``, ``∇a`` from
    ``pde.coefficient_with_gradient``), by default Darcy's ``a Δu + ∇a·∇u + f`` with the given
    ``source`` (bilinear ``a``)."""
    from ._pde import darcy_pde

    pde = model.pde if model.pde is not None else darcy_pde(source)
    jet = model.jet(a, points, laplacian=True)
    av, ag = (None, None)
    if pde.coefficient_with_gradient is not None:
        av, ag = pde.coefficient_with_gradient(a, points)
    fields = Fields(points, jet.value, jet.grad, jet.laplacian, av, grad_a=ag)
    return pde.strong(fields)


@dataclass(frozen=True)
class StrongFormOptions:
    """Collocation of the strong-form baseline.

    Attributes
    ----------
    n_points : int
        Interior collocation points per mini-batch (uniform, shared, redrawn every step).
    source : float
        Constant ``f``.
    scale : float
        The loss is ``mean(r²) / scale²`` (default ``f``: residuals relative to the source).
    """

    n_points: int = 400
    source: float = 10.0
    scale: float = 10.0

    def __post_init__(self) -> None:
        check_int("n_points", self.n_points, 1, hint="collocation points per sample")
        check_real("source", self.source)
        check_real("scale", self.scale, positive=True)


@dataclass(frozen=True)
class StrongFormObjective(AbstractObjective):
    """Mean squared strong residual (no labels); batches are ``(a,)``."""

    options: StrongFormOptions = StrongFormOptions()

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        if not isinstance(model, PhysicsInformedOperator):
            raise TypeError("StrongFormObjective needs a PhysicsInformedOperator")
        a = batch[0]
        pts = torch.rand(self.options.n_points, model.net.in_size_x, generator=generator).to(a)
        if model.pde is not None:
            box = model.pde.domain
            lo = torch.tensor(box.lower).to(a)
            pts = lo + (torch.tensor(box.upper).to(a) - lo) * pts
        r = strong_residual(model, a, pts, self.options.source)
        loss = (r ** 2).mean() / self.options.scale ** 2
        return loss, {"loss": float(loss.detach())}
