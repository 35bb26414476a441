r"""Viscous Burgers equation: random initial conditions, a Chebyshev reference solver, data sets.

.. math::

    u_t + u\,u_x = \nu\,u_{xx}, \quad x\in[-1, 1],\ t\in(0, 1], \qquad u(\pm1, t) = 0,
    \quad u(x, 0) = u_0(x),

with :math:`\nu = 0.1/\pi` in the DGNO benchmark (Zang & Koutsourelakis 2025). The solver is a
method of lines: Chebyshev collocation at the Gauss–Lobatto points :math:`x_j = \cos(j\pi/N)`
(Trefethen, *Spectral Methods in MATLAB*, SIAM 2000, ch. 6) and :func:`scipy.integrate.solve_ivp`
(BDF, analytic Jacobian) in time; the solution is evaluated on the output grid by barycentric
interpolation. Verified against the Cole–Hopf solution :func:`burgers_exact_sine` (tests).
"""

from __future__ import annotations

import functools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sciml_inverse import check_real

__all__ = [
    "BurgersData", "burgers_initial_conditions", "solve_burgers", "burgers_exact_sine",
    "generate_burgers", "save_burgers", "load_burgers",
]

NU = 0.1 / math.pi
FORMAT = "sciml-inverse/burgers"
SOLVER = "chebyshev-collocation+solve_ivp-BDF"


# ------------------------------------------------------------------------------ fields
def _grf_coefficients(n_samples: int, *, seed: int, n_modes: int, length_scale: float,
                      alpha: float, amplitude: float) -> np.ndarray:
    tau = 1.0 / length_scale
    k = np.arange(1, n_modes + 1, dtype=np.float64)
    lam = amplitude * tau ** (alpha - 1.0) * ((0.5 * math.pi * k) ** 2 + tau ** 2) ** (-alpha / 2)
    rng = np.random.default_rng(int(seed))
    return rng.standard_normal((int(n_samples), n_modes)) * lam


def _sine_series(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    k = np.arange(1, coef.shape[-1] + 1, dtype=np.float64)
    return coef @ np.sin(0.5 * math.pi * np.outer(k, np.asarray(x, dtype=np.float64) + 1.0))


def burgers_initial_conditions(n_samples: int, x: np.ndarray, *, seed: int, n_modes: int = 64,
                               length_scale: float = 0.2, alpha: float = 2.0,
                               amplitude: float = 3.0, return_coefficients: bool = False):
    r"""Gaussian-random-field initial conditions with :math:`u_0(\pm1) = 0`.

    A truncated Karhunen–Loève expansion in the Dirichlet sine basis of :math:`[-1, 1]`,

    .. math::

        u_0(x) = \sum_{k=1}^{K} \xi_k \lambda_k \sin\big(k\pi(x+1)/2\big),\quad
        \lambda_k = A\,\tau^{\alpha-1}\big((k\pi/2)^2 + \tau^2\big)^{-\alpha/2},\quad
        \xi_k \sim N(0, 1),

    i.e. the Gaussian measure :math:`N(0, A^2\tau^{2\alpha-2}(-\partial_{xx} + \tau^2)^{-\alpha})`
    with zero Dirichlet conditions, :math:`\tau = 1/\ell`. (The reference notes do not record the
    benchmark's generator; the defaults give :math:`\max|u_0|` between about 0.5 and 1.2.)

    Parameters
    ----------
    n_samples : int
    x : array ``(m,)``
        Points in ``[-1, 1]``.
    seed : int
    n_modes : int
        ``K``.
    length_scale, alpha, amplitude : float
        ``ℓ``, ``α``, ``A``.
    return_coefficients : bool
        Also return the sine coefficients ``ξ_k λ_k`` ``(B, K)`` (exact evaluation anywhere).

    Returns
    -------
    numpy.ndarray ``(B, m)`` (and ``(B, K)`` coefficients)

    Raises
    ------
    ValueError
        Non-positive sizes or parameters, points outside ``[-1, 1]``.
    """
    if int(n_samples) < 1 or int(n_modes) < 1:
        raise ValueError(f"n_samples and n_modes must be >= 1, got {n_samples}, {n_modes}")
    for name, v in (("length_scale", length_scale), ("alpha", alpha), ("amplitude", amplitude)):
        if not float(v) > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or np.any(np.abs(x) > 1 + 1e-12):
        raise ValueError("x must be a 1-D array of points in [-1, 1]")
    coef = _grf_coefficients(n_samples, seed=seed, n_modes=int(n_modes),
                             length_scale=float(length_scale), alpha=float(alpha),
                             amplitude=float(amplitude))
    u0 = _sine_series(coef, x)
    return (u0, coef) if return_coefficients else u0


# ------------------------------------------------------------------------------ solver
@functools.lru_cache(maxsize=8)
def _cheb(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Lobatto points ``cos(jπ/n)`` and the differentiation matrix (Trefethen's cheb)."""
    x = np.cos(math.pi * np.arange(n + 1) / n)
    c = np.ones(n + 1)
    c[0] = c[-1] = 2.0
    c = c * (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d = d - np.diag(d.sum(axis=1))
    return x, d


def _barycentric_matrix(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Interpolation matrix from values at the Chebyshev points to ``x`` (barycentric form)."""
    n = nodes.shape[0] - 1
    w = (-1.0) ** np.arange(n + 1)
    w[0] *= 0.5
    w[-1] *= 0.5
    diff = x[:, None] - nodes[None, :]
    exact = np.abs(diff) < 1e-14
    diff[exact] = 1.0
    m = w / diff
    m = m / m.sum(axis=1, keepdims=True)
    rows = exact.any(axis=1)
    m[rows] = exact[rows].astype(np.float64)
    return m


def solve_burgers(initial: Any, x: np.ndarray, t: np.ndarray, *, nu: float = NU,
                  n_cheb: int = 128, rtol: float = 1e-8, atol: float = 1e-10) -> np.ndarray:
    r"""Solve :math:`u_t + u u_x = \nu u_{xx}`, :math:`u(\pm1) = 0`, on ``[-1, 1] × [0, t_max]``.

    Method of lines: Chebyshev collocation at ``n_cheb + 1`` Gauss–Lobatto points (boundary
    values fixed to 0), :math:`\dot u = -u\,(Du) + \nu D^2 u` on the interior points, integrated
    by :func:`scipy.integrate.solve_ivp` (``BDF`` with the exact Jacobian
    :math:`-\mathrm{diag}(Du) - \mathrm{diag}(u)D + \nu D^2`), then barycentric interpolation to
    ``x``. Spectral in space: the error against the Cole–Hopf solution falls geometrically with
    ``n_cheb`` until the time tolerance (tests).

    Parameters
    ----------
    initial : callable
        ``u0(x)`` on arrays (it is sampled at the Chebyshev points; it should vanish at ±1).
    x : array ``(m,)``
        Output points in ``[-1, 1]``.
    t : array ``(n_t,)``
        Increasing output times, ``t[0] >= 0``; ``t[0] = 0`` returns ``u0`` interpolated.
    nu : float
    n_cheb : int
        Polynomial degree ``N``.
    rtol, atol : float
        Tolerances of the time integrator.

    Returns
    -------
    numpy.ndarray ``(n_t, m)``

    Raises
    ------
    ValueError
        Bad sizes, times or points, or an integrator failure.
    """
    from scipy.integrate import solve_ivp

    if not callable(initial):
        raise TypeError("initial must be a function u0(x) of numpy arrays")
    if int(n_cheb) < 4:
        raise ValueError(f"n_cheb must be >= 4, got {n_cheb}")
    check_real("nu", nu, positive=True)
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if x.ndim != 1 or np.any(np.abs(x) > 1 + 1e-12):
        raise ValueError("x must be a 1-D array of points in [-1, 1]")
    if t.ndim != 1 or t.size < 1 or t[0] < 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a 1-D increasing array of times >= 0")
    nodes, d = _cheb(int(n_cheb))
    d2 = d @ d
    inner = slice(1, int(n_cheb))
    di, d2i = d[inner, inner], nu * d2[inner, inner]
    u0 = np.asarray(initial(nodes), dtype=np.float64)[inner]

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        return -u * (di @ u) + d2i @ u

    def jac(_t: float, u: np.ndarray) -> np.ndarray:
        return -np.diag(di @ u) - u[:, None] * di + d2i

    t_end = float(t[-1])
    if t_end == 0.0:
        sol_int = u0[:, None]
    else:
        res = solve_ivp(rhs, (0.0, t_end), u0, method="BDF", t_eval=t, jac=jac, rtol=rtol,
                        atol=atol)
        if not res.success:
            raise ValueError(f"the time integrator failed: {res.message}")
        sol_int = res.y
    full = np.zeros((sol_int.shape[1], int(n_cheb) + 1))
    full[:, inner] = sol_int.T
    return full @ _barycentric_matrix(nodes, x).T


def burgers_exact_sine(x: np.ndarray, t: np.ndarray, *, nu: float = NU, n_terms: int = 60
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Cole–Hopf solution for :math:`u_0 = -\sin(\pi x)`, with :math:`u_x` and :math:`u_t`.

    :math:`u = -2\nu\varphi_x/\varphi`, where :math:`\varphi_t = \nu\varphi_{xx}` with
    :math:`\varphi_x(\pm1) = 0` and :math:`\varphi_0 = \exp(-(1 + \cos\pi x)/(2\pi\nu))`; with
    :math:`c = 1/(2\pi\nu)` the Jacobi–Anger expansion gives
    :math:`\varphi \propto I_0(c) + 2\sum_k (-1)^k I_k(c)\,e^{-\nu k^2\pi^2 t}\cos(k\pi x)`.

    Parameters
    ----------
    x, t : arrays broadcasting to a common shape
    nu : float
    n_terms : int
        Terms of the series (``I_k(c)`` decays super-exponentially in ``k``).

    Returns
    -------
    (u, u_x, u_t) : arrays of the broadcast shape
    """
    from scipy.special import ive

    x, t = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    c = 1.0 / (2 * math.pi * nu)
    k = np.arange(1, n_terms + 1, dtype=np.float64)
    a = 2 * (-1.0) ** k * ive(k, c) * np.exp(-nu * (k * math.pi) ** 2 * t[..., None])
    kx = k * math.pi
    cos, sin = np.cos(kx * x[..., None]), np.sin(kx * x[..., None])
    phi = ive(0, c) + (a * cos).sum(-1)
    phi1 = -(a * kx * sin).sum(-1)
    phi2 = -(a * kx ** 2 * cos).sum(-1)
    phi3 = (a * kx ** 3 * sin).sum(-1)
    u = -2 * nu * phi1 / phi
    ux = -2 * nu * (phi2 * phi - phi1 ** 2) / phi ** 2
    # phi_t = nu phi_xx, phi_xt = nu phi_xxx
    ut = -2 * nu * (nu * phi3 * phi - phi1 * nu * phi2) / phi ** 2
    return u, ux, ut


# ------------------------------------------------------------------------------ data sets
@dataclass
class BurgersData:
    """A Burgers data set (the reference's keys).

    Attributes
    ----------
    x_mesh : ndarray ``(m,)``
        Points of ``[-1, 1]`` (boundary included).
    t_mesh : ndarray ``(n_t,)``
        Times, ``t_mesh[0] = 0``.
    u0 : ndarray ``(B, m)``
        Initial conditions (the operator input ``a``).
    u_sol : ndarray ``(B, n_t, m)``
        ``u_sol[b, i, j] = u(x_mesh[j], t_mesh[i])`` (``u_sol[:, 0] == u0``).
    attrs : dict
        Generating parameters.
    """

    x_mesh: np.ndarray
    t_mesh: np.ndarray
    u0: np.ndarray
    u_sol: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        b, m = self.u0.shape
        if self.u_sol.shape != (b, self.t_mesh.shape[0], m) or self.x_mesh.shape != (m,):
            raise ValueError(f"inconsistent shapes: x_mesh {self.x_mesh.shape}, t_mesh "
                             f"{self.t_mesh.shape}, u0 {self.u0.shape}, u_sol "
                             f"{self.u_sol.shape}")

    def __len__(self) -> int:
        return int(self.u0.shape[0])

    def points(self) -> np.ndarray:
        """Space-time points ``(n_t * m, 2)`` as ``(x, t)``, in the row order of
        ``u_sol.reshape(B, -1)``."""
        tt, xx = np.meshgrid(self.t_mesh, self.x_mesh, indexing="ij")
        return np.stack([xx.ravel(), tt.ravel()], -1)


def _solve_sample(i: int, *, coef: np.ndarray, x: np.ndarray, t: np.ndarray, nu: float,
                  n_cheb: int) -> np.ndarray:
    c = coef[i]
    return solve_burgers(lambda z: _sine_series(c[None], z)[0], x, t, nu=nu, n_cheb=n_cheb)


def generate_burgers(n: int, *, seed: int, nx: int = 128, nt: int = 101, t_max: float = 1.0,
                     nu: float = NU, n_cheb: int = 128, workers: int = 1, progress: bool = False,
                     checkpoint: str | os.PathLike[str] | None = None,
                     **field_kw: Any) -> BurgersData:
    """Random initial conditions (:func:`burgers_initial_conditions`) and their solutions.

    Parameters
    ----------
    n : int
        Samples.
    seed : int
        Seed of the initial conditions (the first ``m`` samples of a larger set equal a set of
        size ``m``).
    nx, nt : int
        Uniform output grid: ``nx`` points of ``[-1, 1]``, ``nt`` times of ``[0, t_max]``
        (reference: 128 × 101).
    nu : float
    n_cheb : int
        Degree of the Chebyshev solver (default 128; see :func:`solve_burgers`).
    workers : int
        Processes.
    checkpoint : path, optional
        ``.npz`` that makes the run resumable (solutions so far; removed on completion).
    **field_kw
        ``n_modes``, ``length_scale``, ``alpha``, ``amplitude``.

    Returns
    -------
    BurgersData

    Raises
    ------
    ValueError
        Bad sizes or parameters; a checkpoint of other parameters.
    """
    allowed = {"n_modes", "length_scale", "alpha", "amplitude"}
    unknown = sorted(set(field_kw) - allowed)
    if unknown:
        raise ValueError(f"unknown field parameters {unknown}; allowed: {sorted(allowed)}")
    if int(nx) < 3 or int(nt) < 2 or not float(t_max) > 0:
        raise ValueError(f"need nx >= 3, nt >= 2 and t_max > 0, got {nx}, {nt}, {t_max}")
    params = {"n_modes": 64, "length_scale": 0.2, "alpha": 2.0, "amplitude": 3.0, **field_kw}
    x = np.linspace(-1.0, 1.0, int(nx))
    t = np.linspace(0.0, float(t_max), int(nt))
    u0, coef = burgers_initial_conditions(int(n), x, seed=seed, return_coefficients=True,
                                          **params)
    key = json.dumps({"seed": int(seed), "nx": int(nx), "nt": int(nt), "t_max": float(t_max),
                      "nu": float(nu), "n_cheb": int(n_cheb), "solver": SOLVER, **params},
                     sort_keys=True)
    from ._resumable import run_resumable, sample_chunks

    solve = functools.partial(_solve_sample, coef=coef, x=x, t=t, nu=float(nu),
                              n_cheb=int(n_cheb))
    u_sol = run_resumable(sample_chunks(solve, int(n), int(workers)), int(n), (int(nt), int(nx)),
                          checkpoint=checkpoint, key=key, progress=progress, desc="burgers")
    u_sol[:, 0] = u0
    import scipy

    from ._darcy import library_version

    attrs = {"n": int(n), "seed": int(seed), "nx": int(nx), "nt": int(nt),
             "t_max": float(t_max), "nu": float(nu), "n_cheb": int(n_cheb), **params,
             "solver": SOLVER, "library_version": library_version(),
             "numpy_version": np.__version__, "scipy_version": scipy.__version__}
    return BurgersData(x, t, u0, u_sol, attrs)


def save_burgers(data: BurgersData, path: str | os.PathLike[str]):
    """Write ``x_mesh``, ``t_mesh``, ``u0``, ``u_sol`` and the attributes to HDF5 atomically.

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`BurgersData`.
    FileNotFoundError
        If the folder does not exist.
    """
    from ._h5 import write_h5

    if not isinstance(data, BurgersData):
        raise TypeError(f"data must be a BurgersData, got {type(data).__name__}")
    return write_h5(path, FORMAT, {"x_mesh": data.x_mesh, "t_mesh": data.t_mesh,
                                   "u0": data.u0, "u_sol": data.u_sol}, data.attrs)


def load_burgers(path: str | os.PathLike[str]) -> BurgersData:
    """Read a file written by :func:`save_burgers`.

    Raises
    ------
    FileNotFoundError, ValueError, KeyError
        Missing file, another format, missing datasets.
    """
    from ._h5 import read_h5

    d, attrs = read_h5(path, FORMAT, ("x_mesh", "t_mesh", "u0", "u_sol"))
    return BurgersData(d["x_mesh"], d["t_mesh"], d["u0"], d["u_sol"], attrs)
