"""Tests of the Stokes reference solver (Taylor–Hood P2/P1 with scikit-fem on gmsh meshes):
convergence orders on a manufactured solution, mesh-refinement self-convergence around the
cylinder, mass conservation, the generator, HDF5 and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import skfem

from sciml.pde import (
    cylinder_mesh,
    generate_stokes,
    load_stokes,
    save_stokes,
    solve_stokes,
    stokes_inflow,
)

PI = math.pi


def _u_exact(x, y):
    return (PI * np.sin(PI * x) ** 2 * np.sin(2 * PI * y),
            -PI * np.sin(2 * PI * x) * np.sin(PI * y) ** 2)


def _p_exact(x, y):
    return np.cos(PI * x) * np.cos(PI * y)


def _force(mu):
    def f(x, y):  # -mu Δu + ∇p for the solution above
        lap1 = 2 * PI ** 3 * np.sin(2 * PI * y) * (2 * np.cos(2 * PI * x) - 1)
        lap2 = -2 * PI ** 3 * np.sin(2 * PI * x) * (2 * np.cos(2 * PI * y) - 1)
        return (-mu * lap1 - PI * np.sin(PI * x) * np.cos(PI * y),
                -mu * lap2 - PI * np.cos(PI * x) * np.sin(PI * y))

    return f


@skfem.Functional
def _err_u(w):
    a, b = _u_exact(*w.x)
    return (w["uh"][0] - a) ** 2 + (w["uh"][1] - b) ** 2


@skfem.Functional
def _err_p(w):
    return (w["ph"] - _p_exact(*w.x)) ** 2


@pytest.mark.parametrize("mu", [1.0, 0.01])
def test_taylor_hood_orders_on_a_manufactured_solution(mu):
    """Expected: ||u - u_h|| = O(h^3), ||p - p_h|| = O(h^2) (P2/P1)."""
    errs = []
    for k in (2, 3, 4):
        mesh = skfem.MeshTri.init_symmetric().refined(k)
        _, (bu, bp, uh, ph) = solve_stokes(mesh, None, mu=mu, body_force=_force(mu),
                                           dirichlet="all", exact_velocity=_u_exact,
                                           pin_pressure=_p_exact, return_fem=True)
        errs.append((math.sqrt(_err_u.assemble(bu, uh=bu.interpolate(uh))),
                     math.sqrt(_err_p.assemble(bp, ph=bp.interpolate(ph)))))
    ou = [math.log2(errs[i][0] / errs[i + 1][0]) for i in range(2)]
    op = [math.log2(errs[i][1] / errs[i + 1][1]) for i in range(2)]
    # measured (mu = 1): u 3.01, 3.00; p 3.5, 3.2 (pre-asymptotic superconvergence; 2.4 at k=5)
    assert min(ou) > 2.8
    assert min(op) > 1.8
    assert errs[-1][0] < 1e-3


def test_cylinder_mesh_matches_the_reference_size_and_geometry():
    mesh = cylinder_mesh()
    assert mesh.p.shape[1] == 1708  # the reference data's node count at h = 0.04
    x, y = mesh.p
    r = np.hypot(x - 0.5, y - 0.6)
    assert r.min() > 0.1 - 1e-9 and np.isclose(x.max(), 2) and np.isclose(y.max(), 1)
    assert np.sum(np.isclose(r, 0.1)) > 20


@skfem.Functional
def _kinetic(w):
    return w["uh"][0] ** 2 + w["uh"][1] ** 2


@skfem.Functional
def _pressure(w):
    return w["ph"]


def test_cylinder_self_convergence_and_mass_conservation():
    """Refining the (non-nested) gmsh meshes by 2: the changes of ∫|u|² and ∫p fall at the
    rate of the polygonal approximation of the cylinder, O(h^2) (measured 1.80 and 1.76)."""
    vals = []
    for h in (0.16, 0.08, 0.04):
        mesh = cylinder_mesh(h, h_cylinder=h / 4)
        (u, _, _), (bu, bp, uh, ph) = solve_stokes(mesh, lambda y: stokes_inflow(y, 1.0, 2.0),
                                                   return_fem=True)
        vals.append(np.array([_kinetic.assemble(bu, uh=bu.interpolate(uh)),
                              _pressure.assemble(bp, ph=bp.interpolate(ph))]))
    d1, d2 = np.abs(vals[0] - vals[1]), np.abs(vals[1] - vals[2])
    order = np.log2(d1 / d2)
    assert np.all(order > 1.5) and np.all(order < 2.5)
    assert np.all(d2 < 2e-3 * np.abs(vals[2]))
    # incompressibility: inflow = outflow (flux through x = 0 and x = 2 at the vertices)
    x, y = mesh.p
    flux = []
    for xc in (0.0, 2.0):
        s = np.isclose(x, xc)
        o = np.argsort(y[s])
        flux.append(np.trapezoid(u[s][o], y[s][o]))
    assert flux[1] == pytest.approx(flux[0], rel=2e-3)


def test_generate_save_load_and_cli(tmp_path, capsys, pde_commands):
    data = generate_stokes(3, seed=1, h=0.1)
    n_nodes = data.gridx.shape[0]
    assert data.u.shape == data.v.shape == data.p.shape == (3, n_nodes)
    assert data.a.shape == (3, 256) and data.cells.shape[1] == 3
    np.testing.assert_allclose(data.a[0], stokes_inflow(data.y_inflow, data.beta1[0],
                                                        data.beta2[0]))
    # the boundary values: inflow profile at x = 0, no slip on the walls and the cylinder
    x, y = data.gridx.T
    inlet = np.isclose(x, 0)
    np.testing.assert_allclose(data.u[:, inlet], stokes_inflow(y[inlet], data.beta1[:, None],
                                                               data.beta2[:, None]), atol=1e-12)
    wall = np.isclose(y, 0) | np.isclose(y, 1) | np.isclose(np.hypot(x - 0.5, y - 0.6), 0.1)
    np.testing.assert_allclose(data.u[:, wall], 0, atol=1e-12)
    np.testing.assert_allclose(data.v[:, wall | inlet], 0, atol=1e-12)
    # the cached factorisation gives the generic solver's numbers
    mesh = cylinder_mesh(0.1)
    u, v, p = solve_stokes(mesh, lambda z: stokes_inflow(z, data.beta1[2], data.beta2[2]))
    np.testing.assert_allclose(np.stack([u, v, p]), np.stack([data.u[2], data.v[2], data.p[2]]),
                               rtol=1e-9, atol=1e-11)
    back = load_stokes(save_stokes(data, tmp_path / "s.h5"))
    np.testing.assert_array_equal(back.p, data.p)
    assert back.attrs["h"] == 0.1 and back.attrs["seed"] == 1
    out = tmp_path / "cli.h5"
    assert pde_commands(["stokes", "generate", "--n", "2", "--h", "0.1", "--seed", "1",
                         "--no-progress", "--out", str(out)]) == 0
    assert "wrote 2 Stokes samples" in capsys.readouterr().out
    np.testing.assert_array_equal(load_stokes(out).u, data.u[:2])
    assert pde_commands(["stokes", "info", str(out)]) == 0
    assert "beta1: shape (2,)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="beta_range"):
        generate_stokes(2, seed=0, beta_range=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"h must be > 0, got 0.0; h must lie in \(0, 0.5\]"):
        cylinder_mesh(0.0)
    with pytest.raises(ValueError, match=r"h must be <= 0.5, got 0.6"):
        cylinder_mesh(0.6)
    with pytest.raises(ValueError, match="h must be finite, got nan"):
        cylinder_mesh(math.nan)
    with pytest.raises(TypeError, match="h must be a real number, got str"):  # was parsed
        cylinder_mesh("0.1")
    with pytest.raises(ValueError, match="h_cylinder must be > 0, got 0.0"):
        cylinder_mesh(0.1, h_cylinder=0.0)
    with pytest.raises(ValueError, match="dirichlet"):
        solve_stokes(mesh, None, dirichlet="none")
