"""PDE data: random inputs, reference solvers and HDF5 data sets (Darcy, Burgers, Stokes).

Darcy: :math:`-\\nabla\\cdot(a\\nabla u) = f` on :math:`[0,1]^2` with :math:`u = 0` on the
boundary (``f = 10`` in the DGNO / MultiONet benchmarks). Fields live at the nodes of a uniform
``n x n`` grid, boundary included: ``a[..., i, j]`` is the value at ``(i, j) / (n - 1)``, and
:func:`grid_nodes` flattens the nodes row-major (row ``i * n + j``).

* :func:`piecewise_field`, :func:`smooth_field`: seeded Gaussian-random-field coefficients
  (two-phase ``a in {5, 10}``, or smooth positive), :func:`gaussian_random_field` underneath.
* :func:`solve_darcy`: 5-point finite volumes with harmonic face means, sparse LU (scipy);
  :func:`darcy_operator` returns its SPD matrix.
* :func:`generate_darcy` -> :class:`DarcyData`; :func:`save_darcy` / :func:`load_darcy` (HDF5,
  also the authors' MATLAB v7.3 files). Command line: ``sciml-inverse darcy generate``.

Burgers: :math:`u_t + u u_x = \\nu u_{xx}` on :math:`[-1, 1]\\times(0, 1]`, :math:`u(\\pm1) = 0`
(:func:`solve_burgers`: Chebyshev collocation + scipy BDF; :func:`burgers_exact_sine`: Cole–Hopf
solution; :func:`generate_burgers` -> :class:`BurgersData`; ``sciml-inverse burgers generate``).

Stokes flow around a cylinder (:func:`solve_stokes`: Taylor–Hood P2/P1 finite elements with
scikit-fem on a gmsh mesh; :func:`generate_stokes` -> :class:`StokesData`;
``sciml-inverse stokes generate``).
"""

from ._burgers import BurgersData as BurgersData
from ._burgers import burgers_exact_sine as burgers_exact_sine
from ._burgers import burgers_initial_conditions as burgers_initial_conditions
from ._burgers import generate_burgers as generate_burgers
from ._burgers import load_burgers as load_burgers
from ._burgers import save_burgers as save_burgers
from ._burgers import solve_burgers as solve_burgers
from ._darcy import DarcyData as DarcyData
from ._darcy import darcy_operator as darcy_operator
from ._darcy import generate_darcy as generate_darcy
from ._darcy import grid_nodes as grid_nodes
from ._darcy import solve_darcy as solve_darcy
from ._fields import gaussian_random_field as gaussian_random_field
from ._fields import piecewise_field as piecewise_field
from ._fields import smooth_field as smooth_field
from ._io import load_darcy as load_darcy
from ._io import save_darcy as save_darcy
from ._stokes import StokesData as StokesData
from ._stokes import cylinder_mesh as cylinder_mesh
from ._stokes import generate_stokes as generate_stokes
from ._stokes import load_stokes as load_stokes
from ._stokes import save_stokes as save_stokes
from ._stokes import solve_stokes as solve_stokes
from ._stokes import stokes_inflow as stokes_inflow

__all__ = [
    "BurgersData",
    "DarcyData",
    "StokesData",
    "cylinder_mesh",
    "generate_stokes",
    "load_stokes",
    "save_stokes",
    "solve_stokes",
    "stokes_inflow",
    "burgers_exact_sine",
    "burgers_initial_conditions",
    "darcy_operator",
    "gaussian_random_field",
    "generate_burgers",
    "generate_darcy",
    "grid_nodes",
    "load_burgers",
    "load_darcy",
    "piecewise_field",
    "save_burgers",
    "save_darcy",
    "smooth_field",
    "solve_burgers",
    "solve_darcy",
]
