"""Tests of the Burgers reference solver and data sets (sciml.pde): spectral convergence to the
Cole–Hopf solution, self-convergence on a random initial condition, the generator, HDF5 and CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sciml.pde import (
    burgers_exact_sine,
    burgers_initial_conditions,
    generate_burgers,
    load_burgers,
    save_burgers,
    solve_burgers,
)


def test_exact_solution_is_a_solution():
    x = np.linspace(-0.9, 0.9, 7)[:, None]
    t = np.array([0.0, 0.3, 1.0])[None, :]
    u, ux, ut = burgers_exact_sine(x, t)
    np.testing.assert_allclose(u[:, 0], -np.sin(math.pi * x[:, 0]), atol=1e-12)
    h = 1e-4
    uxx = (burgers_exact_sine(x + h, t)[1] - burgers_exact_sine(x - h, t)[1]) / (2 * h)
    # the PDE, with u_xx by central differences of the exact u_x (error O(h^2) ~ 1e-7)
    np.testing.assert_allclose(ut + u * ux, 0.1 / math.pi * uxx, atol=1e-5)
    np.testing.assert_allclose(burgers_exact_sine(np.array([-1.0, 1.0]), 0.5)[0], 0, atol=1e-12)


def test_chebyshev_solver_converges_spectrally_to_cole_hopf():
    x = np.linspace(-1, 1, 65)
    t = np.linspace(0, 1, 6)
    exact = burgers_exact_sine(x[None, :], t[:, None])[0]
    err = {}
    for n in (24, 48, 96):
        u = solve_burgers(lambda z: -np.sin(math.pi * z), x, t, n_cheb=n, rtol=1e-11,
                          atol=1e-13)
        err[n] = float(np.abs(u - exact).max())
    # measured: 8.3e-2, 6.4e-3, 2.2e-5 -- faster than any power (doubling N: x13, then x290)
    assert err[48] < err[24] / 8 and err[96] < err[48] / 100
    assert err[96] < 1e-4
    np.testing.assert_allclose(u[0], -np.sin(math.pi * x), atol=1e-12)


def test_self_convergence_on_a_random_initial_condition():
    x = np.linspace(-1, 1, 33)
    t = np.linspace(0, 1, 5)
    _, coef = burgers_initial_conditions(1, x, seed=3, return_coefficients=True)
    k = np.arange(1, coef.shape[1] + 1)

    def u0(z):
        return coef[0] @ np.sin(0.5 * math.pi * np.outer(k, z + 1))

    sol = {n: solve_burgers(u0, x, t, n_cheb=n) for n in (64, 128, 256)}
    d1 = np.abs(sol[64] - sol[256]).max()
    d2 = np.abs(sol[128] - sol[256]).max()
    assert d2 < d1 / 20 and d2 < 1e-4 * np.abs(sol[256]).max()


def test_initial_conditions_vanish_at_the_ends_and_are_seeded():
    x = np.linspace(-1, 1, 17)
    a = burgers_initial_conditions(5, x, seed=1)
    np.testing.assert_allclose(a[:, [0, -1]], 0, atol=1e-12)
    np.testing.assert_allclose(a[:2], burgers_initial_conditions(2, x, seed=1), rtol=1e-13,
                               atol=1e-15)
    assert not np.allclose(a, burgers_initial_conditions(5, x, seed=2))


def test_generate_save_load_and_resume(tmp_path):
    data = generate_burgers(3, seed=0, nx=17, nt=5, n_cheb=48)
    assert data.u_sol.shape == (3, 5, 17) and data.u0.shape == (3, 17)
    np.testing.assert_array_equal(data.u_sol[:, 0], data.u0)
    assert data.attrs["nu"] == pytest.approx(0.1 / math.pi) and data.attrs["n_cheb"] == 48
    assert data.points().shape == (85, 2)
    np.testing.assert_array_equal(data.points()[:17, 0], data.x_mesh)
    path = save_burgers(data, tmp_path / "b.h5")
    back = load_burgers(path)
    np.testing.assert_array_equal(back.u_sol, data.u_sol)
    assert back.attrs["seed"] == 0
    # resume: a checkpoint holding the first sample (here: a marked value) is continued
    ck = tmp_path / "ck.npz"
    import json

    from sciml.pde._burgers import SOLVER
    from sciml.pde._resumable import _write_ck
    key = json.dumps({"seed": 0, "nx": 17, "nt": 5, "t_max": 1.0, "nu": 0.1 / math.pi,
                      "n_cheb": 48, "solver": SOLVER, "n_modes": 64, "length_scale": 0.2,
                      "alpha": 2.0, "amplitude": 3.0}, sort_keys=True)
    marked = data.u_sol.copy()
    marked[0, 1:] = 7.0
    _write_ck(ck, marked, 1, key)
    resumed = generate_burgers(3, seed=0, nx=17, nt=5, n_cheb=48, checkpoint=ck)
    assert np.all(resumed.u_sol[0, 1:] == 7.0)  # taken from the checkpoint, not recomputed
    np.testing.assert_array_equal(resumed.u_sol[1:], data.u_sol[1:])
    assert not ck.exists()
    _write_ck(ck, marked, 1, "other")
    with pytest.raises(ValueError, match="other generating parameters"):
        generate_burgers(3, seed=0, nx=17, nt=5, n_cheb=48, checkpoint=ck)


def test_bad_inputs():
    with pytest.raises(ValueError, match="n_cheb"):
        solve_burgers(lambda z: 0 * z, np.zeros(3), np.ones(2), n_cheb=2)
    with pytest.raises(ValueError, match="increasing"):
        solve_burgers(lambda z: 0 * z, np.zeros(3), np.array([1.0, 0.5]))
    with pytest.raises(TypeError, match="function"):
        solve_burgers(np.zeros(3), np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="unknown field parameters"):
        generate_burgers(2, seed=0, tau=3)
    with pytest.raises(ValueError, match="points in"):
        burgers_initial_conditions(2, np.array([2.0]), seed=0)


def test_cli_generate_and_info(tmp_path, capsys, pde_commands):
    out = tmp_path / "b.h5"
    argv = ["burgers", "generate", "--n", "2", "--nx", "9", "--nt", "3", "--n-cheb", "32",
            "--seed", "4", "--no-progress", "--out", str(out)]
    assert pde_commands(argv) == 0
    assert "wrote 2 Burgers samples" in capsys.readouterr().out
    data = load_burgers(out)
    ref = generate_burgers(2, seed=4, nx=9, nt=3, n_cheb=32)
    np.testing.assert_array_equal(data.u_sol, ref.u_sol)
    assert pde_commands(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert pde_commands(["burgers", "info", str(out)]) == 0
    assert "u_sol: shape (2, 3, 9)" in capsys.readouterr().out
    assert pde_commands(["burgers"]) == 2
    assert pde_commands(["burgers", "info", str(tmp_path / "none.h5")]) == 1
    assert "no data file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.h5"]


def test_workers_give_the_same_data():
    one = generate_burgers(3, seed=0, nx=9, nt=3, n_cheb=24)
    two = generate_burgers(3, seed=0, nx=9, nt=3, n_cheb=24, workers=2)
    np.testing.assert_array_equal(one.u_sol, two.u_sol)
