r"""Stokes flow around a cylinder: gmsh mesh, Taylor–Hood P2/P1 solver (scikit-fem), data sets.

.. math::

    -\mu\Delta\mathbf u + \nabla p = 0,\quad \nabla\cdot\mathbf u = 0 \quad\text{in }
    \Omega = (0, 2)\times(0, 1)\setminus \bar B_{0.1}(0.5, 0.6),

with :math:`\mu = 0.01`, the inflow :math:`\mathbf u(0, y) = (a(y), 0)`,
:math:`a(y) = 2\sin(\pi y)\,(1 + \sin(\beta_1 y) + \cos(\beta_2 y))`, no slip on the walls
:math:`y \in \{0, 1\}` and on the cylinder, and the do-nothing outflow
:math:`\mu\,\partial_n\mathbf u - p\,\mathbf n = 0` at :math:`x = 2` (the natural condition of
the :math:`\mu\nabla\mathbf u:\nabla\mathbf v` form), as in the DGNO benchmark (Zang &
Koutsourelakis 2025, reference notes §4).

The mesh comes from gmsh (OpenCASCADE rectangle minus disk, straight-edged triangles), the
discretisation is the inf-sup stable Taylor–Hood pair :math:`P_2/P_1` assembled by scikit-fem
(Gustafsson & McBain, JOSS 5 (2020) 2369) and solved by a sparse direct solver. Verified in the
tests by the convergence orders on a manufactured solution (:math:`h^3` for
:math:`\|\mathbf u\|_{L^2}`, :math:`h^2` for :math:`\|p\|_{L^2}`) and by mesh-refinement
self-convergence around the cylinder.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sciml_inverse import check_real

__all__ = [
    "StokesData", "cylinder_mesh", "solve_stokes", "stokes_inflow", "generate_stokes",
    "save_stokes", "load_stokes",
]

FORMAT = "sciml-inverse/stokes"
SOLVER = "taylor-hood-P2P1-scikit-fem+gmsh"
MU = 0.01
LENGTH, HEIGHT = 2.0, 1.0
CENTRE, RADIUS = (0.5, 0.6), 0.1


def cylinder_mesh(h: float = 0.04, *, h_cylinder: float | None = None) -> Any:
    """Triangular mesh of the channel with the cylinder removed (gmsh), as a scikit-fem
    ``MeshTri``.

    Parameters
    ----------
    h : float
        Target element size away from the cylinder (``0.04`` gives 1,708 vertices, as the
        reference data).
    h_cylinder : float, optional
        Element size on the cylinder (default ``h / 2``).

    Returns
    -------
    skfem.MeshTri

    Raises
    ------
    ValueError
        If ``h`` is not in ``(0, 0.5]`` or ``h_cylinder`` is not finite and > 0.
    TypeError
        If ``h`` or ``h_cylinder`` is not a real number.
    """
    import gmsh
    import skfem

    hint = "h must lie in (0, 0.5] (the target element size; 0.04 for the reference data)"
    h = check_real("h", h, positive=True, maximum=0.5, hint=hint)  # type: ignore[assignment]
    hc = h / 2 if h_cylinder is None else check_real(  # type: ignore[assignment]
        "h_cylinder", h_cylinder, positive=True, hint="the element size on the cylinder")
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.add("cylinder")
        occ = gmsh.model.occ
        rect = occ.addRectangle(0.0, 0.0, 0.0, LENGTH, HEIGHT)
        disk = occ.addDisk(CENTRE[0], CENTRE[1], 0.0, RADIUS, RADIUS)
        occ.cut([(2, rect)], [(2, disk)])
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", h)
        gmsh.option.setNumber("Mesh.MeshSizeMin", min(h, hc))
        gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
        gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
        gmsh.option.setNumber("Mesh.Algorithm", 6)
        # size field: hc on the cylinder, growing linearly to h at distance 0.2
        curves = [tag for dim, tag in gmsh.model.getEntities(1)
                  if _on_cylinder(gmsh.model.occ.getCenterOfMass(dim, tag))]
        f_dist = gmsh.model.mesh.field.add("Distance")
        gmsh.model.mesh.field.setNumbers(f_dist, "CurvesList", curves)
        gmsh.model.mesh.field.setNumber(f_dist, "Sampling", 200)
        f_th = gmsh.model.mesh.field.add("Threshold")
        gmsh.model.mesh.field.setNumber(f_th, "InField", f_dist)
        gmsh.model.mesh.field.setNumber(f_th, "SizeMin", hc)
        gmsh.model.mesh.field.setNumber(f_th, "SizeMax", h)
        gmsh.model.mesh.field.setNumber(f_th, "DistMin", 0.0)
        gmsh.model.mesh.field.setNumber(f_th, "DistMax", 0.2)
        gmsh.model.mesh.field.setAsBackgroundMesh(f_th)
        gmsh.model.mesh.generate(2)
        tags, coords, _ = gmsh.model.mesh.getNodes()
        etypes, _, enodes = gmsh.model.mesh.getElements(2)
    finally:
        gmsh.finalize()
    k = list(etypes).index(2)  # 3-node triangles
    tri_tags = np.asarray(enodes[k], dtype=np.int64).reshape(-1, 3)
    pts = np.asarray(coords).reshape(-1, 3)[:, :2]
    index = np.full(int(np.max(tags)) + 1, -1, dtype=np.int64)
    index[np.asarray(tags, dtype=np.int64)] = np.arange(len(tags))
    tri = index[tri_tags]
    used = np.unique(tri)
    remap = np.full(len(tags), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return skfem.MeshTri(np.ascontiguousarray(pts[used].T), np.ascontiguousarray(remap[tri].T))


def _on_cylinder(com: Any) -> bool:
    return math.hypot(com[0] - CENTRE[0], com[1] - CENTRE[1]) < RADIUS + 1e-6


def stokes_inflow(y: np.ndarray, beta1: float, beta2: float) -> np.ndarray:
    r""":math:`a(y) = 2\sin(\pi y)(1 + \sin(\beta_1 y) + \cos(\beta_2 y))`."""
    y = np.asarray(y, dtype=np.float64)
    return 2 * np.sin(math.pi * y) * (1 + np.sin(beta1 * y) + np.cos(beta2 * y))


def _taylor_hood(mesh: Any, intorder: int = 4):
    import skfem

    bu = skfem.Basis(mesh, skfem.ElementVector(skfem.ElementTriP2()), intorder=intorder)
    bp = skfem.Basis(mesh, skfem.ElementTriP1(), intorder=intorder)
    return bu, bp


def _stokes_matrix(bu: Any, bp: Any, mu: float):
    import skfem
    from scipy.sparse import bmat
    from skfem.models.general import divergence
    from skfem.models.poisson import vector_laplace

    a = skfem.asm(vector_laplace, bu) * mu
    b = skfem.asm(divergence, bu, bp)
    return bmat([[a, -b.T], [-b, None]], format="csr")


def solve_stokes(mesh: Any, inflow: Callable[[np.ndarray], np.ndarray], *, mu: float = MU,
                 body_force: Callable | None = None, dirichlet: str = "channel",
                 exact_velocity: Callable | None = None, pin_pressure: Callable | None = None,
                 return_fem: bool = False):
    r"""Taylor–Hood :math:`P_2/P_1` solution of the Stokes problem on ``mesh``.

    Parameters
    ----------
    mesh : skfem.MeshTri
        From :func:`cylinder_mesh` (or any triangle mesh with ``dirichlet="all"``).
    inflow : callable
        ``a(y)``: the x-velocity at ``x = 0`` (``dirichlet="channel"``).
    mu : float
        Viscosity.
    body_force : callable, optional
        ``f(x, y) -> (f_1, f_2)`` on quadrature-point arrays (manufactured solutions).
    dirichlet : ``"channel"`` or ``"all"``
        ``"channel"``: inflow at ``x = 0``, no slip on the walls and the cylinder, do-nothing
        outflow at ``x = 2``. ``"all"``: velocity ``exact_velocity`` on the whole boundary and the
        pressure pinned at one vertex to ``pin_pressure`` (manufactured solutions).
    exact_velocity, pin_pressure : callable, optional
        For ``dirichlet="all"``: ``(x, y) -> (u, v)`` and ``(x, y) -> p``.
    return_fem : bool
        Also return the scikit-fem bases and the solution vectors ``(bu, bp, u_h, p_h)``.

    Returns
    -------
    (u, v, p) : arrays ``(n_vertices,)``
        Values at the mesh vertices ``mesh.p.T`` (plus the FEM objects with ``return_fem``).

    Raises
    ------
    ValueError
        Bad ``mu`` or ``dirichlet``.
    """
    import skfem

    check_real("mu", mu, positive=True)
    if dirichlet not in ("channel", "all"):
        raise ValueError(f"dirichlet must be 'channel' or 'all', got {dirichlet!r}")
    bu, bp = _taylor_hood(mesh)
    k = _stokes_matrix(bu, bp, float(mu))
    nu_, np_ = bu.N, bp.N
    rhs = np.zeros(nu_ + np_)
    if body_force is not None:
        @skfem.LinearForm
        def load(v, w):
            f1, f2 = body_force(w.x[0], w.x[1])
            return f1 * v[0] + f2 * v[1]

        rhs[:nu_] = skfem.asm(load, bu)
    x = np.zeros(nu_ + np_)
    loc = bu.doflocs
    if dirichlet == "channel":
        tol = 1e-9
        inlet = bu.get_dofs(lambda p: p[0] < tol)
        walls = bu.get_dofs(lambda p: (p[1] < tol) | (p[1] > HEIGHT - tol)
                            | (np.hypot(p[0] - CENTRE[0], p[1] - CENTRE[1]) < RADIUS + 1e-6))
        fixed = np.unique(np.concatenate([inlet.all(), walls.all()]))
        d1 = inlet.all("u^1")
        x[d1] = inflow(loc[1, d1])
        # corners (0, 0), (0, 1) belong to both: a(0) = a(1) = 0 anyway
    else:
        bnd = bu.get_dofs()
        fixed_u = bnd.all()
        d1, d2 = bnd.all("u^1"), bnd.all("u^2")
        x[d1] = exact_velocity(loc[0, d1], loc[1, d1])[0]
        x[d2] = exact_velocity(loc[0, d2], loc[1, d2])[1]
        pin = int(np.argmin(np.hypot(*(bp.doflocs - 0.5))))
        x[nu_ + pin] = pin_pressure(*bp.doflocs[:, pin])
        fixed = np.concatenate([fixed_u, [nu_ + pin]])
    sol = skfem.solve(*skfem.condense(k, rhs, x=x, D=fixed))
    uh, ph = sol[:nu_], sol[nu_:]
    nodal = bu.nodal_dofs
    u, v = uh[nodal[0]], uh[nodal[1]]
    p = ph[bp.nodal_dofs[0]]
    if return_fem:
        return (u, v, p), (bu, bp, uh, ph)
    return u, v, p


# ------------------------------------------------------------------------------ data sets
@dataclass
class StokesData:
    """A Stokes data set (the reference's keys ``beta1, beta2, gridx, u, v, p``).

    Attributes
    ----------
    gridx : ndarray ``(n_nodes, 2)``
        Mesh vertices.
    cells : ndarray ``(n_cells, 3)``
        Triangles (vertex indices; for plotting).
    y_inflow : ndarray ``(m,)``
        Inflow points ``y`` of the input ``a``.
    a : ndarray ``(B, m)``
        Inflow profiles (the operator input).
    beta1, beta2 : ndarray ``(B,)``
    u, v, p : ndarray ``(B, n_nodes)``
    attrs : dict
    """

    gridx: np.ndarray
    cells: np.ndarray
    y_inflow: np.ndarray
    a: np.ndarray
    beta1: np.ndarray
    beta2: np.ndarray
    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.a.shape[0])


_KEYS = ("gridx", "cells", "y_inflow", "a", "beta1", "beta2", "u", "v", "p")


class _ChannelSystem:
    """The channel problem on one mesh with its LU factorisation (the matrix does not depend on
    the inflow, so a data set factorises once)."""

    def __init__(self, h: float, mu: float) -> None:
        from scipy.sparse.linalg import splu

        self.mesh = cylinder_mesh(h)
        self.bu, self.bp = _taylor_hood(self.mesh)
        k = _stokes_matrix(self.bu, self.bp, mu)
        n = k.shape[0]
        tol = 1e-9
        inlet = self.bu.get_dofs(lambda p: p[0] < tol)
        walls = self.bu.get_dofs(lambda p: (p[1] < tol) | (p[1] > HEIGHT - tol)
                                 | (np.hypot(p[0] - CENTRE[0], p[1] - CENTRE[1])
                                    < RADIUS + 1e-6))
        self.fixed = np.unique(np.concatenate([inlet.all(), walls.all()]))
        self.inlet = inlet.all("u^1")
        self.free = np.setdiff1d(np.arange(n), self.fixed)
        self.k_fd = k[self.free][:, self.fixed]
        self.lu = splu(k[self.free][:, self.free].tocsc())
        self.n = n

    def solve(self, inflow: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        x = np.zeros(self.n)
        x[self.inlet] = inflow(self.bu.doflocs[1, self.inlet])
        x[self.free] = self.lu.solve(-(self.k_fd @ x[self.fixed]))
        uh, ph = x[:self.bu.N], x[self.bu.N:]
        nodal = self.bu.nodal_dofs
        return np.stack([uh[nodal[0]], uh[nodal[1]], ph[self.bp.nodal_dofs[0]]])


@functools.lru_cache(maxsize=2)
def _channel_system(h: float, mu: float) -> _ChannelSystem:
    return _ChannelSystem(h, mu)


def _solve_sample(i: int, *, betas: np.ndarray, h: float, mu: float) -> np.ndarray:
    b1, b2 = betas[i]
    return _channel_system(h, mu).solve(lambda y: stokes_inflow(y, b1, b2))


def generate_stokes(n: int, *, seed: int, h: float = 0.04, mu: float = MU,
                    beta_range: tuple[float, float] = (0.0, 2 * math.pi), n_inflow: int = 256,
                    workers: int = 1, progress: bool = False,
                    checkpoint: str | os.PathLike[str] | None = None) -> StokesData:
    r"""Random inflow profiles (:math:`\beta_1, \beta_2 \sim U(\text{beta\_range})`, seeded)
    and their Stokes solutions on one gmsh mesh of size ``h``.

    The reference notes do not record the distribution of :math:`\beta`; ours is uniform on
    ``beta_range`` (default :math:`[0, 2\pi]`).

    Parameters
    ----------
    n : int
    seed : int
    h : float
        Mesh size (:func:`cylinder_mesh`).
    mu : float
    beta_range : (float, float)
    n_inflow : int
        Points of ``y_inflow`` (reference: 256).
    workers : int
    checkpoint : path, optional
        Resumable ``.npz`` (removed on completion).

    Returns
    -------
    StokesData

    Raises
    ------
    ValueError
        Bad sizes or ranges; a checkpoint of other parameters.
    """
    lo, hi = (float(v) for v in beta_range)
    if int(n) < 1 or int(n_inflow) < 2 or not hi > lo:
        raise ValueError(f"need n >= 1, n_inflow >= 2 and beta_range low < high, got {n}, "
                         f"{n_inflow}, {beta_range}")
    rng = np.random.default_rng(int(seed))
    betas = rng.uniform(lo, hi, size=(int(n), 2))
    mesh = _channel_system(float(h), float(mu)).mesh
    y = np.linspace(0.0, HEIGHT, int(n_inflow))
    a = np.stack([stokes_inflow(y, b1, b2) for b1, b2 in betas])
    key = json.dumps({"seed": int(seed), "h": float(h), "mu": float(mu), "beta_range": [lo, hi],
                      "solver": SOLVER, "n_nodes": int(mesh.p.shape[1])}, sort_keys=True)
    from ._resumable import run_resumable, sample_chunks

    solve = functools.partial(_solve_sample, betas=betas, h=float(h), mu=float(mu))
    out = run_resumable(sample_chunks(solve, int(n), int(workers)), int(n), (3, mesh.p.shape[1]),
                        checkpoint=checkpoint, key=key, progress=progress, desc="stokes")
    import scipy
    import skfem

    from ._darcy import library_version

    attrs = {"n": int(n), "seed": int(seed), "h": float(h), "mu": float(mu),
             "beta_range": (lo, hi), "n_inflow": int(n_inflow), "solver": SOLVER,
             "n_nodes": int(mesh.p.shape[1]), "library_version": library_version(),
             "numpy_version": np.__version__, "scipy_version": scipy.__version__,
             "skfem_version": skfem.__version__}
    return StokesData(mesh.p.T.copy(), mesh.t.T.copy(), y, a, betas[:, 0].copy(),
                      betas[:, 1].copy(), out[:, 0], out[:, 1], out[:, 2], attrs)


def save_stokes(data: StokesData, path: str | os.PathLike[str]):
    """Write a :class:`StokesData` to HDF5 atomically.

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`StokesData`.
    """
    from ._h5 import write_h5

    if not isinstance(data, StokesData):
        raise TypeError(f"data must be a StokesData, got {type(data).__name__}")
    return write_h5(path, FORMAT, {k: getattr(data, k) for k in _KEYS}, data.attrs)


def load_stokes(path: str | os.PathLike[str]) -> StokesData:
    """Read a file written by :func:`save_stokes`.

    Raises
    ------
    FileNotFoundError, ValueError, KeyError
    """
    from ._h5 import read_h5

    d, attrs = read_h5(path, FORMAT, _KEYS)
    return StokesData(**d, attrs=attrs)
