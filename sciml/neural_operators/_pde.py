r"""A PDE as data: the domain, boundary conditions, coefficients and residual of a problem.

DGNO and the strong-form baseline never hard-code an equation; they read a :class:`PDE`:

* ``domain`` (:class:`Box`): the input box of the operator's query points, with the
  coordinates that the test functions span (``test_dims``; the others, e.g. time, are fixed per
  test function);
* ``mollifier``: hard Dirichlet conditions, ``u = N(x; β)·m(x)`` with ``m = 0`` on the Dirichlet
  boundary (a function returning ``m``, ``∇m`` and ``Δm``);
* ``coefficient``: how the input field ``a`` is read at arbitrary points (``None`` when the
  residual does not involve it), and ``coefficient_points``: the nodes where ``a`` is given
  (there the a-decoder's likelihood is evaluated);
* the residual, as small functions of :class:`Fields` (``u``, its gradient and Laplacian from
  the shared-trunk jet, the coefficient and any auxiliary decoded field such as a flux):

  - the **weak form** of :math:`-\nabla\cdot\mathbf F = S` over the test coordinates,
    :math:`r_j = \overline{\mathbf F\cdot\nabla v_j} - \overline{S\,v_j}` (``flux`` gives
    :math:`\mathbf F` ``(B, P, len(test_dims))``, ``source`` gives :math:`S` ``(B, P)``);
  - optional pointwise ``constitutive`` residuals ``(B, P, k)`` (mixed forms, penalised by their
    mean squared norm);
  - optional ``strong`` residual ``(B, P)`` for the physics-informed (PI-DeepONet) baseline.

Darcy, :math:`-\nabla\cdot(a\nabla u) = f`, is :func:`darcy_pde`: :math:`\mathbf F = a\nabla u`
(primal) or the decoded flux :math:`\mathbf s` with the constitutive residual
:math:`\mathbf s - a\nabla u` (mixed), :math:`S = f`. Burgers,
:math:`u_t + u u_x = \nu u_{xx}`, is :func:`burgers_pde`: test functions in ``x`` only,
:math:`F = \nu u_x`, :math:`S = -(u_t + u u_x)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from sciml_inverse import check_real

__all__ = ["Box", "Fields", "PDE", "darcy_pde", "burgers_pde", "cosine_mollifier"]

#: ``x (P, d)`` → ``m (P,)``, ``∇m (P, d)``, ``Δm (P,)``.
Mollifier = Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[lower_i, upper_i]`` of query points.

    Attributes
    ----------
    lower, upper : tuple of float
        Corners; ``len`` is the input dimension ``d`` of the operator's trunk.
    names : tuple of str
        Coordinate names (documentation and error messages), e.g. ``("x", "t")``.
    test_dims : tuple of int
        Coordinates spanned by the compactly supported test functions (integration by parts is
        over these only). Default: all.

    Raises
    ------
    ValueError
        Mismatched lengths, an empty box or test dimensions out of range.
    """

    lower: tuple[float, ...]
    upper: tuple[float, ...]
    names: tuple[str, ...] = ()
    test_dims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        lo = tuple(float(v) for v in self.lower)
        hi = tuple(float(v) for v in self.upper)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        if len(lo) != len(hi) or not lo:
            raise ValueError(f"lower and upper must have the same non-zero length, got {lo}, "
                             f"{hi}")
        if any(b <= a for a, b in zip(lo, hi, strict=True)):
            raise ValueError(f"need lower < upper in every coordinate, got {lo}, {hi}")
        names = tuple(self.names) or tuple(f"x{i}" for i in range(len(lo)))
        if len(names) != len(lo):
            raise ValueError(f"names must have {len(lo)} entries, got {names}")
        object.__setattr__(self, "names", names)
        td = tuple(range(len(lo))) if self.test_dims is None else tuple(self.test_dims)
        if not td or any(not 0 <= i < len(lo) for i in td) or len(set(td)) != len(td):
            raise ValueError(f"test_dims must be distinct indices in [0, {len(lo)}), got {td}")
        object.__setattr__(self, "test_dims", td)

    @property
    def dim(self) -> int:
        return len(self.lower)


@dataclass
class Fields:
    """What a residual function sees at points ``x`` shared by a batch of ``B`` samples.

    Attributes
    ----------
    x : Tensor ``(P, d)``
    u : Tensor ``(B, P)``
    grad : Tensor ``(B, P, d)``
        ``∇u`` in all ``d`` coordinates (e.g. ``(u_x, u_t)``).
    laplacian : Tensor ``(B, P)`` or None
        ``Δu`` over all coordinates (only when the residual asks for it: strong form).
    a : Tensor ``(B, P)`` or None
        The coefficient at ``x`` (true in forward training, decoded in inverse solves).
    grad_a : Tensor ``(B, P, d)`` or None
        ``∇a`` (strong form only, from ``PDE.coefficient_with_gradient``).
    aux : dict of str to Tensor
        Auxiliary decoded fields, e.g. ``"flux"`` ``(B, P, 2)`` of Darcy's mixed form.
    """

    x: Tensor
    u: Tensor
    grad: Tensor
    laplacian: Tensor | None = None
    a: Tensor | None = None
    grad_a: Tensor | None = None
    aux: dict[str, Tensor] = field(default_factory=dict)


def _no_mollifier(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    one = torch.ones(x.shape[:-1], dtype=x.dtype, device=x.device)
    return one, torch.zeros_like(x), torch.zeros_like(one)


@dataclass(frozen=True)
class PDE:
    r"""A PDE for DGNO and the physics-informed baseline, stated as data.

    The weak residual of test function :math:`v_j` is
    :math:`r_j = \overline{\mathbf F\cdot\nabla v_j} - \overline{S\,v_j}` (plain means over the
    quadrature points; see :func:`weak_residual`), i.e. the equation is written as
    :math:`-\nabla\cdot\mathbf F = S` over the coordinates ``domain.test_dims``.

    Attributes
    ----------
    domain : Box
    flux : callable ``Fields -> Tensor (B, P, len(test_dims))``
        :math:`\mathbf F`.
    source : callable ``Fields -> Tensor (B, P)``, or float
        :math:`S` (a float is a constant source).
    mollifier : callable, optional
        ``x (P, d) -> (m (P,), ∇m (P, d), Δm (P,))``; ``u = N·m`` (hard Dirichlet conditions).
        Default: none (``m = 1``).
    coefficient : callable ``(a, x) -> Tensor (B, P)``, optional
        Reads the input field ``a`` (as stored, e.g. ``(B, n, n)``) at points ``x`` ``(P, d)``.
        ``None``: the residual does not use ``a`` (``Fields.a`` is None).
    coefficient_points : Tensor ``(m, d)``, optional
        Points where ``a`` is given (row order of ``a.reshape(B, -1)``); the a-decoder (or, for
        a DGNO without one, the u-decoder) is evaluated there.
    constitutive : callable ``Fields -> Tensor (B, P, k)``, optional
        Pointwise residuals of a mixed form, penalised by ``mean(sum_k c_k²)``.
    strong : callable ``Fields -> Tensor (B, P)``, optional
        Strong residual for :class:`StrongFormObjective` (it gets ``Fields.laplacian``, and
        ``Fields.a``/``Fields.grad_a`` from ``coefficient_with_gradient``).
    coefficient_with_gradient : callable ``(a, x) -> (Tensor (B, P), Tensor (B, P, d))``, optional
        ``a`` and ``∇a`` at ``x`` for the strong residual.
    aux : tuple of str
        Names of auxiliary decoded fields the residual reads (``("flux",)`` for Darcy's mixed
        form); a DGNO must provide them.
    needs_laplacian : bool
        Whether ``flux``/``source``/``constitutive`` read ``Fields.laplacian``.
    name : str
    params : dict
        Constants of the equation (recorded in results; not read by the solvers).

    Raises
    ------
    TypeError
        Non-callable residual parts or a domain that is not a :class:`Box`.

    Examples
    --------
    Poisson's equation :math:`-\Delta u = 1` on the unit square with ``u = 0`` on the boundary:

    >>> import torch
    >>> from sciml.neural_operators import PDE, Box, sine_mollifier
    >>> poisson = PDE(domain=Box((0.0, 0.0), (1.0, 1.0)), flux=lambda f: f.grad, source=1.0,
    ...               mollifier=sine_mollifier)
    >>> poisson.domain.test_dims
    (0, 1)
    """

    domain: Box
    flux: Callable[[Fields], Tensor]
    source: Callable[[Fields], Tensor] | float = 0.0
    mollifier: Mollifier | None = None
    coefficient: Callable[[Tensor, Tensor], Tensor] | None = None
    coefficient_points: Tensor | None = None
    constitutive: Callable[[Fields], Tensor] | None = None
    strong: Callable[[Fields], Tensor] | None = None
    coefficient_with_gradient: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    aux: tuple[str, ...] = ()
    needs_laplacian: bool = False
    name: str = "pde"
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.domain, Box):
            raise TypeError(f"domain must be a Box, got {type(self.domain).__name__}")
        if not callable(self.flux):
            raise TypeError("flux must be a function of Fields returning (B, P, n_test_dims)")
        if not callable(self.source):
            check_real("source", self.source,
                       hint="source must be a number or a function of Fields returning (B, P)")
        for name in ("mollifier", "coefficient", "constitutive", "strong",
                     "coefficient_with_gradient"):
            v = getattr(self, name)
            if v is not None and not callable(v):
                raise TypeError(f"{name} must be callable or None, got {type(v).__name__}")
        if self.coefficient_points is not None and (
                self.coefficient_points.ndim != 2
                or self.coefficient_points.shape[1] != self.domain.dim):
            raise ValueError(f"coefficient_points must have shape (m, {self.domain.dim}), got "
                             f"{tuple(self.coefficient_points.shape)}")

    def mollify(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``m``, ``∇m``, ``Δm`` at ``x`` ``(..., d)`` (``m = 1`` without a mollifier)."""
        return (self.mollifier or _no_mollifier)(x)

    def source_at(self, fields: Fields) -> Tensor | float:
        return self.source(fields) if callable(self.source) else float(self.source)


# ------------------------------------------------------------------------------ Darcy
def _darcy_flux_primal(f: Fields) -> Tensor:
    return f.a[..., None] * f.grad


def _darcy_flux_mixed(f: Fields) -> Tensor:
    return f.aux["flux"]


def _darcy_constitutive(f: Fields) -> Tensor:
    return f.aux["flux"] - f.a[..., None] * f.grad


def darcy_pde(source: float = 10.0, *, mixed: bool = False, interpolation: Any = None,
              grid: int | None = None) -> PDE:
    r"""Darcy flow :math:`-\nabla\cdot(a\nabla u) = f` on :math:`(0,1)^2`, ``u = 0`` on the
    boundary (mollifier :math:`\sin\pi x\sin\pi y`), ``a`` on an ``n × n`` node grid.

    Parameters
    ----------
    source : float
        Constant :math:`f` (10 in the benchmarks).
    mixed : bool
        Mixed form: flux :math:`\mathbf F = \mathbf s` from the DGNO flux decoders and the
        constitutive residual :math:`\mathbf s - a\nabla u` (discontinuous ``a`` is never
        differentiated). Otherwise the primal form :math:`\mathbf F = a\nabla u`.
    interpolation : Interpolation, optional
        How ``a`` is read at quadrature points (default nearest node).
    grid : int, optional
        ``n``; sets ``coefficient_points`` to the grid nodes (otherwise the DGNO uses its
        encoder's grid).

    Returns
    -------
    PDE
        Also with the strong residual :math:`a\Delta u + \nabla a\cdot\nabla u + f` (bilinear
        ``a`` and ``∇a``) of the physics-informed baseline.
    """
    from ._dgno import grid_points, sine_mollifier
    from ._strong_form import bilinear_with_gradient
    from ._weak_form import Interpolation, coefficient_at

    interp = Interpolation.NEAREST if interpolation is None else interpolation
    if not isinstance(interp, Interpolation):
        raise TypeError("interpolation must be an Interpolation member")

    def coefficient(a: Tensor, x: Tensor) -> Tensor:
        return coefficient_at(a, x, interp)

    def strong(f: Fields) -> Tensor:
        return f.a * f.laplacian + (f.grad_a * f.grad).sum(-1) + float(source)

    return PDE(
        domain=Box((0.0, 0.0), (1.0, 1.0), ("x", "y")),
        flux=_darcy_flux_mixed if mixed else _darcy_flux_primal,
        source=float(source),
        mollifier=sine_mollifier,
        coefficient=coefficient,
        coefficient_points=None if grid is None else grid_points(int(grid)),
        constitutive=_darcy_constitutive if mixed else None,
        strong=strong,
        coefficient_with_gradient=bilinear_with_gradient,
        aux=("flux",) if mixed else (),
        name="darcy",
        params={"f": float(source), "mixed": bool(mixed), "interpolation": interp.value},
    )


# ------------------------------------------------------------------------------ Burgers
def cosine_mollifier(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r""":math:`m = \cos(\pi x_0/2)`, zero at :math:`x_0 = \pm1` (other coordinates free), with
    its gradient and Laplacian :math:`-(\pi/2)^2 m`. ``x`` ``(..., d)``."""
    c = torch.cos(0.5 * math.pi * x[..., 0])
    g = torch.zeros_like(x)
    g[..., 0] = -0.5 * math.pi * torch.sin(0.5 * math.pi * x[..., 0])
    return c, g, -(0.25 * math.pi ** 2) * c


def burgers_pde(nu: float = 0.1 / math.pi, x_nodes: Tensor | None = None) -> PDE:
    r"""Viscous Burgers :math:`u_t + u u_x = \nu u_{xx}` on :math:`x\in[-1,1]`, :math:`t\in[0,1]`
    with :math:`u(\pm1, t) = 0` (mollifier :math:`\cos(\pi x/2)`); the input is the initial
    condition :math:`a = u(\cdot, 0)`.

    Inputs are ``(x, t)``; the test functions span ``x`` only, at the time of their centre:
    :math:`r_j = \overline{\nu u_x \partial_x v_j} + \overline{(u_t + u u_x) v_j}` (the
    reference's residual). The initial condition enters through the likelihood of ``a`` at
    ``coefficient_points = (x_i, 0)``: build the DGNO without an a-decoder so that ``a`` is
    decoded as ``u(x_i, 0)``.

    Parameters
    ----------
    nu : float
        Viscosity (reference: 0.1/π).
    x_nodes : Tensor ``(m,)``, optional
        Nodes of the initial condition (e.g. the data's ``x_mesh``).
    """
    nu = check_real("nu", nu, positive=True)  # type: ignore[assignment]

    def flux(f: Fields) -> Tensor:
        return nu * f.grad[..., :1]

    def source(f: Fields) -> Tensor:
        return -(f.grad[..., 1] + f.u * f.grad[..., 0])

    pts = None
    if x_nodes is not None:
        xn = torch.as_tensor(x_nodes, dtype=torch.float32).reshape(-1)
        pts = torch.stack([xn, torch.zeros_like(xn)], -1)
    return PDE(domain=Box((-1.0, 0.0), (1.0, 1.0), ("x", "t"), test_dims=(0,)), flux=flux,
               source=source, mollifier=cosine_mollifier, coefficient=None,
               coefficient_points=pts, name="burgers", params={"nu": nu})
