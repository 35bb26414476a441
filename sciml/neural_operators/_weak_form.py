r"""Discrete weak form with compactly supported Wendland test functions (ParticleWNN / DGNO).

For :math:`-\nabla\cdot\mathbf s = f` (with :math:`\mathbf s = a\nabla u`) and a test function
:math:`v_j` supported in the ball :math:`B_R(x_j) \subset \Omega`, integration by parts gives
:math:`\int \mathbf s\cdot\nabla v_j = \int f v_j` (no boundary term). With
:math:`x = x_j + R\xi`, :math:`\nabla_x v = \nabla_\xi v / R`, and the integrals replaced by
*plain means* over fixed quadrature points :math:`\xi_q` in the unit ball, the residual is

.. math::

    r_j = \frac{1}{Q}\sum_q \mathbf s(x_j + R\xi_q)\cdot\nabla_\xi v(\xi_q)/R
        - \frac{1}{Q}\sum_q f(x_j + R\xi_q)\,v(\xi_q).

This is a *discrete* weak form (the reference code's): the constant factor :math:`|B_R|` is
dropped and the means are unweighted, so e.g. for the 7 × 7 rule (25 points) the mean of
:math:`v` is 0.126 against the exact average 0.111. Radius, number of centres and quadrature are
explicit options (:class:`WeakFormOptions`); the reference uses :math:`R = 10^{-4}` (where the
residual tends to a scaled strong residual at the centre), 100 centres and 25 points.

References
----------
Y. Zang, G. Bao, "ParticleWNN: a novel neural networks framework for solving partial differential
equations", J. Comput. Phys. (2024); H. Wendland, "Piecewise polynomial, positive definite and
compactly supported radial functions of minimal degree", Adv. Comput. Math. 4 (1995) 389–396.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real

__all__ = [
    "WeakFormOptions", "TestFunctions", "Interpolation", "wendland", "wendland_grad",
    "quadrature_rule", "sample_test_functions", "weak_residual", "coefficient_at",
]


@dataclass(frozen=True)
class WeakFormOptions:
    r"""Test functions and quadrature of the discrete weak form.

    Attributes
    ----------
    n_centres : int
        Test functions per mini-batch (shared by the batch, redrawn every step by a Latin
        hypercube in ``[R, 1 - R]^2``). Reference: 100.
    radius : float
        Support radius ``R`` (``0 < R < 0.5``). Reference: 1e-4 (its float32 floor).
    quadrature_points : int
        ``n`` of the ``n × n`` grid on ``[-1, 1]^2`` restricted to ``|ξ| < 1`` (7 → 25 points,
        9 → 45).
    dim : int
        Spatial dimension (the Wendland function's ``d``; only 2 is used here).
    consistent_source : bool
        Scale the source term by :math:`\kappa = -\overline{\xi\cdot\nabla_\xi v}/(d\,
        \overline{v})`, the discrete analogue of :math:`\int v = -\tfrac1d\int\xi\cdot\nabla v`.
        With plain means the two sides of the weak form are otherwise integrated inconsistently:
        for the 7 × 7 rule :math:`\kappa = 0.9876`, so as :math:`R \to 0` the exact solution
        has a residual of 1.2 % of :math:`f\bar v` and a trained model solves the PDE with the
        source scaled by ≈ 1/κ. Default False (reference parity).

    Raises
    ------
    ValueError
        Non-positive sizes or a radius outside ``(0, 0.5)``.
    """

    n_centres: int = 100
    radius: float = 1e-4
    quadrature_points: int = 7
    dim: int = 2
    consistent_source: bool = False

    def __post_init__(self) -> None:
        check_int("n_centres", self.n_centres, 1)
        check_int("quadrature_points", self.quadrature_points, 2)
        check_real("radius", self.radius, positive=True, maximum=0.5, include_maximum=False,
                   hint="radius must lie in (0, 0.5) so the supports fit in the unit square")
        if self.dim != 2:
            raise ValueError(f"only dim=2 is implemented, got {self.dim}")


class Interpolation(enum.Enum):
    """How a gridded coefficient is evaluated at quadrature points.

    ``NEAREST``: the nearest node, index ``floor(x/h + 1/2)`` (two-phase fields; the reference).
    ``BILINEAR``: bilinear interpolation (smooth fields), via :class:`operators.PointSampling`.
    """

    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _ell(d: int) -> int:
    return d // 2 + 3


def wendland(r: Tensor, d: int = 2) -> Tensor:
    r"""Wendland's :math:`\phi_{d,2}` with :math:`\ell = \lfloor d/2\rfloor + 3`, zero for r ≥ 1.

    .. math:: v(r) = (1-r)_+^{\ell+2}\,\big[(\ell^2+4\ell+3)r^2 + (3\ell+6)r + 3\big]/3,

    in 2-D :math:`(1-r)^6 (35r^2 + 18r + 3)/3`; ``v(0) = 1``, :math:`C^4` at ``r = 1``.
    """
    check_int("d", d, 1)
    ell = _ell(d)
    rp = (1 - r).clamp_min(0)
    return rp ** (ell + 2) * ((ell ** 2 + 4 * ell + 3) * r ** 2 + (3 * ell + 6) * r + 3) / 3


def wendland_grad(xi: Tensor, d: int = 2) -> Tensor:
    r"""Gradient of :math:`v(|\xi|)` with respect to ξ ``(..., d)``.

    .. math:: \nabla_\xi v = (1-r)_+^{\ell+1}\,\big[-(\ell^3+8\ell^2+19\ell+12)r
        - (\ell^2+7\ell+12)\big]/3\;\xi .
    """
    check_int("d", d, 1)
    ell = _ell(d)
    r = xi.norm(dim=-1, keepdim=True)
    rp = (1 - r).clamp_min(0)
    coef = rp ** (ell + 1) * (-(ell ** 3 + 8 * ell ** 2 + 19 * ell + 12) * r
                              - (ell ** 2 + 7 * ell + 12)) / 3
    return coef * xi


def quadrature_rule(n: int, *, dtype: torch.dtype = torch.float32,
                    dim: int = 2) -> tuple[Tensor, Tensor, Tensor]:
    """Points ``ξ`` ``(Q, dim)`` of the ``n^dim`` grid on ``[-1, 1]^dim`` with ``|ξ| < 1``, with
    ``v(ξ)`` ``(Q,)`` and ``∇_ξ v(ξ)`` ``(Q, dim)`` (Wendland function of dimension ``dim``).

    ``n = 7`` in 2-D gives 25 points; in 1-D the end points ``±1`` drop out, so ``n`` gives
    ``n - 2`` points.
    """
    check_int("n", n, 2)
    check_int("dim", dim, 1)
    dim = int(dim)
    t = torch.linspace(-1.0, 1.0, int(n), dtype=torch.float64)
    g = torch.stack(torch.meshgrid(*([t] * dim), indexing="ij"), -1).reshape(-1, dim)
    xi = g[g.norm(dim=-1) < 1 - 1e-12]
    return (xi.to(dtype), wendland(xi.norm(dim=-1), dim).to(dtype),
            wendland_grad(xi, dim).to(dtype))


@dataclass(frozen=True)
class TestFunctions:
    """One draw of test functions with their quadrature points in x.

    Attributes
    ----------
    centres : Tensor ``(n_c, d)``
    radius : float
    points : Tensor ``(n_c * Q, d)``
        Quadrature points ``x_j + R ξ_q`` flattened centre-major (shared by the batch; ``ξ``
        is embedded in the coordinates ``test_dims``, the others stay at the centre's).
    v : Tensor ``(Q,)``
        Test-function values at the quadrature points (the same for every centre).
    grad_v : Tensor ``(Q, len(test_dims))``
        ``∇_x v = ∇_ξ v / R`` in the test coordinates.
    source_scale : float
        Factor on the source term (κ with ``consistent_source``, else 1).
    test_dims : tuple of int
        Coordinates spanned by the test functions (default ``(0, 1)``).
    """

    centres: Tensor
    radius: float
    points: Tensor
    v: Tensor
    grad_v: Tensor
    source_scale: float = 1.0
    test_dims: tuple[int, ...] = (0, 1)

    @property
    def n_centres(self) -> int:
        return int(self.centres.shape[0])

    @property
    def n_quadrature(self) -> int:
        return int(self.v.shape[0])


def _latin_hypercube(n: int, d: int, generator: torch.Generator | None,
                     dtype: torch.dtype) -> Tensor:
    cols = []
    for _ in range(d):
        perm = torch.randperm(n, generator=generator)
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        cols.append((perm + u) / n)
    return torch.stack(cols, -1).to(dtype)


def sample_test_functions(options: WeakFormOptions, *, generator: torch.Generator | None = None,
                          centres: Tensor | None = None, dtype: torch.dtype = torch.float32,
                          device: torch.device | str | None = None,
                          domain: Any = None) -> TestFunctions:
    """Draw ``n_centres`` centres by a Latin hypercube in ``[R, 1-R]^2`` (or use ``centres``).

    With ``domain`` (a :class:`Box`, e.g. ``pde.domain``) the centres fill the box, kept ``R``
    away from its faces in the test coordinates ``domain.test_dims`` (the other coordinates,
    e.g. time, range over the whole box and are shared by a centre's quadrature points). The
    unit square with both coordinates tested gives the same draws as ``domain=None``.

    Raises
    ------
    TypeError
        ``options`` not a :class:`WeakFormOptions`.
    ValueError
        Given centres closer than ``R`` to the boundary (in a test coordinate).
    """
    if not isinstance(options, WeakFormOptions):
        raise TypeError(f"options must be a WeakFormOptions, got {type(options).__name__}")
    r = float(options.radius)
    if domain is None:
        lo, hi, tdims = (0.0, 0.0), (1.0, 1.0), (0, 1)
    else:
        lo, hi, tdims = domain.lower, domain.upper, tuple(domain.test_dims)
        if any(2 * r >= hi[i] - lo[i] for i in tdims):
            raise ValueError(f"radius {r} is too large for the domain {lo}..{hi}: the supports "
                             f"must fit in every test coordinate")
    d = len(lo)
    margin = [r if i in tdims else 0.0 for i in range(d)]
    if centres is None:
        lhs = _latin_hypercube(options.n_centres, d, generator, dtype)
        if domain is None:
            centres = r + (1 - 2 * r) * lhs
        else:
            cols = [(lo[i] + margin[i]) + (hi[i] - lo[i] - 2 * margin[i]) * lhs[:, i]
                    for i in range(d)]
            centres = torch.stack(cols, -1)
    else:
        if centres.ndim != 2 or centres.shape[1] != d:
            raise ValueError(f"centres must have shape (n_c, {d}), got {tuple(centres.shape)}")
        lo_t = torch.tensor([lo[i] + margin[i] for i in range(d)], dtype=centres.dtype)
        hi_t = torch.tensor([hi[i] - margin[i] for i in range(d)], dtype=centres.dtype)
        if bool(((centres < lo_t - 1e-12) | (centres > hi_t + 1e-12)).any()):
            if domain is None:
                raise ValueError(f"centres must lie in [R, 1 - R]^2 = [{r}, {1 - r}]^2 so each "
                                 f"support stays inside the domain")
            raise ValueError(f"centres must lie in the domain shrunk by R = {r} in the test "
                             f"coordinates, {lo_t.tolist()}..{hi_t.tolist()}, so each support "
                             f"stays inside the domain")
        dtype = centres.dtype
    xi, v, gv = quadrature_rule(options.quadrature_points, dtype=dtype, dim=len(tdims))
    centres = centres.to(device=device, dtype=dtype)
    xi, v, gv = xi.to(centres.device), v.to(centres.device), gv.to(centres.device)
    if len(tdims) == d and tdims == tuple(range(d)):
        offsets = xi
    else:
        offsets = torch.zeros(xi.shape[0], d, dtype=dtype, device=centres.device)
        offsets[:, list(tdims)] = xi
    points = (centres[:, None, :] + r * offsets[None]).reshape(-1, d)
    kappa = 1.0
    if options.consistent_source:
        kappa = float(-(xi * gv).sum(-1).mean() / (len(tdims) * v.mean()))
    return TestFunctions(centres, r, points, v, gv / r, kappa, tdims)


def weak_residual(flux: Tensor, source: Tensor | float, tf: TestFunctions) -> Tensor:
    r"""Residuals :math:`r_j = \overline{\mathbf s\cdot\nabla v_j} - \overline{f v_j}`.

    Parameters
    ----------
    flux : Tensor ``(B, n_c * Q, k)``
        :math:`\mathbf s` (or :math:`a\nabla u`) at ``tf.points``, ``k = len(tf.test_dims)``.
    source : Tensor ``(B, n_c * Q)`` or ``(n_c * Q,)`` or float
        :math:`f` at ``tf.points``.
    tf : TestFunctions

    Returns
    -------
    Tensor ``(B, n_c)``

    Raises
    ------
    ValueError
        If ``flux`` does not match the number of quadrature points.
    """
    nc, nq, k = tf.n_centres, tf.n_quadrature, tf.grad_v.shape[-1]
    if flux.ndim != 3 or flux.shape[1:] != (nc * nq, k):
        raise ValueError(f"flux must have shape (B, {nc * nq}, {k}) for {nc} centres x {nq} "
                         f"points and {k} test coordinates, got {tuple(flux.shape)}")
    b = flux.shape[0]
    sv = (flux.reshape(b, nc, nq, k) * tf.grad_v).sum(-1).mean(-1)
    if isinstance(source, Tensor):
        fv = (source.reshape(-1, nc, nq) * tf.v).mean(-1)
    else:
        fv = float(source) * tf.v.mean() * torch.ones_like(sv)
    return sv - tf.source_scale * fv


def coefficient_at(a: Tensor, points: Tensor, interpolation: Interpolation) -> Tensor:
    """Gridded ``a`` ``(B, n, n)`` (node ``(i, j)`` at ``(i, j)/(n-1)``) at points ``(P, 2)``.

    Returns ``(B, P)``.

    Raises
    ------
    ValueError
        Points outside the unit square.
    """
    n = a.shape[-1]
    if bool(((points < -1e-6) | (points > 1 + 1e-6)).any()):
        raise ValueError("points must lie in the unit square [0, 1]^2")
    if interpolation is Interpolation.NEAREST:
        idx = torch.floor(points.detach() * (n - 1) + 0.5).long().clamp(0, n - 1)
        flat = idx[:, 0] * n + idx[:, 1]
        return a.reshape(*a.shape[:-2], -1)[..., flat]
    if interpolation is Interpolation.BILINEAR:
        from operators import PointSampling

        op = PointSampling(points.to(a.dtype), (n, n), extent=((0.0, 1.0), (0.0, 1.0)))
        return op(a)
    raise TypeError(f"interpolation must be an Interpolation, got {interpolation!r}")


