"""The Darcy finite-volume solver and the random coefficient fields of :mod:`sciml.pde`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.fft import idctn

from sciml.pde import (
    DarcyData,
    darcy_operator,
    gaussian_random_field,
    generate_darcy,
    grid_nodes,
    piecewise_field,
    smooth_field,
    solve_darcy,
)

PI = math.pi


# ----------------------------------------------------------------------------------------------
# manufactured solution: u = sin(pi x) sin(2 pi y), a = 2 + sin(2 pi x + 1) cos(pi y)
# ----------------------------------------------------------------------------------------------
def _mms_u(x, y):
    return np.sin(PI * x) * np.sin(2 * PI * y)


def _mms_a(x, y):
    return 2.0 + np.sin(2 * PI * x + 1.0) * np.cos(PI * y)


def _mms_f(x, y):
    ux = PI * np.cos(PI * x) * np.sin(2 * PI * y)
    uy = 2 * PI * np.sin(PI * x) * np.cos(2 * PI * y)
    lap = -5 * PI**2 * _mms_u(x, y)
    ax = 2 * PI * np.cos(2 * PI * x + 1.0) * np.cos(PI * y)
    ay = -PI * np.sin(2 * PI * x + 1.0) * np.sin(PI * y)
    return -(ax * ux + ay * uy + _mms_a(x, y) * lap)


def _mesh(n):
    t = np.linspace(0.0, 1.0, n)
    return np.meshgrid(t, t, indexing="ij")


def _observed_orders(errors):
    return [math.log2(e0 / e1) for e0, e1 in zip(errors[:-1], errors[1:], strict=True)]


def test_manufactured_solution_is_second_order():
    errors = []
    for n in (9, 17, 33, 65):
        x, y = _mesh(n)
        u = solve_darcy(_mms_a(x, y), f=_mms_f)
        errors.append(np.abs(u - _mms_u(x, y)).max())
    orders = _observed_orders(errors)
    assert all(abs(p - 2.0) <= 0.2 for p in orders), (errors, orders)
    assert errors[-1] < 2e-3


def test_source_as_array_equals_source_as_callable():
    x, y = _mesh(17)
    a = _mms_a(x, y)
    u_callable = solve_darcy(a, f=_mms_f)
    u_array = solve_darcy(a, f=_mms_f(x, y))
    u_batched = solve_darcy(np.stack([a, 2 * a]), f=np.stack([_mms_f(x, y), _mms_f(x, y)]))
    np.testing.assert_allclose(u_array, u_callable, rtol=0, atol=1e-14)
    np.testing.assert_allclose(u_batched[1], u_callable / 2, rtol=1e-12, atol=1e-15)


def test_refined_solve_of_smooth_problem_is_second_order_in_refinement():
    # refine with linear interpolation of a and a callable f: the error at the coarse nodes
    # falls like (h / r)^2
    x, y = _mesh(9)
    a = _mms_a(x, y)
    errs = []
    for r in (1, 2, 4):
        u = solve_darcy(a, f=_mms_f, refine=r, interpolation="linear")
        errs.append(np.abs(u - _mms_u(x, y)).max())
    assert errs[0] > errs[1] > errs[2]
    # a is only bilinear between the 9 x 9 nodes, so the limit is not the exact u: check a clear
    # decrease of the discretisation part only through monotonicity and a large first gain
    assert errs[1] < 0.5 * errs[0]


# ----------------------------------------------------------------------------------------------
# grid refinement with discontinuous coefficients
# ----------------------------------------------------------------------------------------------
def _inclusion(x, y):
    """Two-phase coefficient: 10 in a disc, 5 outside (the interface is not grid-aligned)."""
    return np.where((x - 0.45) ** 2 + (y - 0.55) ** 2 < 0.3**2, 10.0, 5.0)


def test_grid_refinement_with_discontinuous_coefficient_converges_monotonically():
    ref_n = 129
    u_ref = solve_darcy(_inclusion(*_mesh(ref_n)))
    errors = []
    for n in (9, 17, 33, 65):
        u = solve_darcy(_inclusion(*_mesh(n)))
        step = (ref_n - 1) // (n - 1)
        errors.append(np.abs(u - u_ref[::step, ::step]).max() / np.abs(u_ref).max())
    assert all(e0 > e1 for e0, e1 in zip(errors[:-1], errors[1:], strict=True)), errors
    # order about 1 (the interface cuts cells), checked loosely over the whole range
    overall = math.log2(errors[0] / errors[-1]) / 3
    assert overall > 0.7, (errors, overall)


def test_nearest_node_refinement_converges_for_piecewise_fields():
    a = piecewise_field(3, 9, seed=4)
    u_ref = solve_darcy(a, refine=11)
    errors = [
        np.linalg.norm(solve_darcy(a, refine=r) - u_ref) / np.linalg.norm(u_ref) for r in (1, 3, 5)
    ]
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[1] < 0.5 * errors[0]


# ----------------------------------------------------------------------------------------------
# structure: SPD, positivity, symmetry, scaling
# ----------------------------------------------------------------------------------------------
def test_operator_is_symmetric_positive_definite():
    a = piecewise_field(1, 10, seed=3)[0]
    mat = darcy_operator(a).toarray()
    assert mat.shape == (64, 64)
    assert np.array_equal(mat, mat.T)
    assert np.linalg.eigvalsh(mat).min() > 0


def test_operator_eigenvalues_for_constant_coefficient():
    # 5-point Laplacian on the unit square: lambda_{kl} = (4/h^2)(sin^2(k pi h/2) + sin^2(l pi h/2))
    n, c = 12, 3.5
    h = 1.0 / (n - 1)
    eig = np.sort(np.linalg.eigvalsh(darcy_operator(np.full((n, n), c)).toarray()))
    k = np.arange(1, n - 1)
    s = np.sin(k * PI * h / 2) ** 2
    expected = np.sort((4 * c / h**2) * (s[:, None] + s[None, :]).ravel())
    np.testing.assert_allclose(eig, expected, rtol=1e-12)


def test_solution_positive_inside_and_zero_on_boundary():
    a = piecewise_field(5, 29, seed=11)
    u = solve_darcy(a)
    assert np.all(u[:, 1:-1, 1:-1] > 0)
    for edge in (u[:, 0, :], u[:, -1, :], u[:, :, 0], u[:, :, -1]):
        assert np.all(edge == 0)


def test_transposed_coefficient_gives_transposed_solution_and_scaling():
    a = smooth_field(2, 17, seed=2)
    u = solve_darcy(a)
    np.testing.assert_allclose(solve_darcy(a.transpose(0, 2, 1)), u.transpose(0, 2, 1), atol=1e-14)
    np.testing.assert_allclose(solve_darcy(a[:, ::-1, :]), u[:, ::-1, :], atol=1e-14)
    # -div(c a grad u) = f  =>  u / c ; linear in f
    np.testing.assert_allclose(solve_darcy(4.0 * a), u / 4.0, rtol=1e-12)
    np.testing.assert_allclose(solve_darcy(a, f=-2.5), -0.25 * u, rtol=1e-12)


def test_constant_coefficient_matches_series_solution():
    # -Delta u = 1 on the unit square: u(1/2, 1/2) = 0.0736713532... (double Fourier series)
    center = sum(
        16 / (PI**4 * k * m * (k * k + m * m)) * math.sin(k * PI / 2) * math.sin(m * PI / 2)
        for k in range(1, 400, 2)
        for m in range(1, 400, 2)
    )
    errors = []
    for n in (33, 65):
        u = solve_darcy(np.ones((n, n)), f=1.0)
        errors.append(abs(u[n // 2, n // 2] - center))
    assert errors[1] < 3e-5
    assert 3.5 < errors[0] / errors[1] < 4.5, errors  # O(h^2)


def test_tensor_input_returns_tensor_of_same_dtype():
    a = torch.as_tensor(piecewise_field(2, 9, seed=0), dtype=torch.float32)
    u = solve_darcy(a)
    assert isinstance(u, torch.Tensor) and u.dtype == torch.float32 and u.shape == a.shape
    np.testing.assert_allclose(u.numpy(), solve_darcy(a.double().numpy()), rtol=1e-6)


def test_workers_do_not_change_the_result():
    a = piecewise_field(6, 9, seed=1)
    np.testing.assert_array_equal(solve_darcy(a, workers=2), solve_darcy(a, workers=1))


# ----------------------------------------------------------------------------------------------
# fields
# ----------------------------------------------------------------------------------------------
def test_seeds_reproduce_and_differ():
    a = piecewise_field(4, 29, seed=7)
    np.testing.assert_array_equal(a, piecewise_field(4, 29, seed=7))
    assert not np.array_equal(a, piecewise_field(4, 29, seed=8))
    # prefix property: the first m fields do not depend on how many are drawn
    np.testing.assert_array_equal(piecewise_field(9, 29, seed=7)[:4], a)
    s = smooth_field(3, 29, seed=7)
    np.testing.assert_array_equal(s, smooth_field(3, 29, seed=7))
    assert not np.array_equal(s, smooth_field(3, 29, seed=70))


def test_piecewise_phases_are_exactly_the_values():
    a = piecewise_field(200, 29, seed=0)
    assert set(np.unique(a).tolist()) == {5.0, 10.0}
    # the GRF has mean zero and is symmetric: half of the nodes are high on average
    assert abs((a == 10.0).mean() - 0.5) < 0.06
    b = piecewise_field(3, 29, seed=0, values=(1.0, 3.0), threshold=0.2)
    assert set(np.unique(b).tolist()) == {1.0, 3.0}
    g = gaussian_random_field(3, 29, seed=0)
    np.testing.assert_array_equal(b == 3.0, g >= 0.2)


def test_grf_pointwise_variance_matches_the_spectrum():
    s, tau, alpha = 8, 3.0, 2.0
    k = np.arange(s)
    coef = tau ** (alpha - 1) * (PI**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (
        -alpha / 2
    )
    amp2 = (s * coef) ** 2
    amp2[0, 0] = 0.0
    basis = idctn(np.eye(s * s).reshape(s * s, s, s), axes=(1, 2), norm="ortho")
    var = np.einsum("k,kij->ij", amp2.ravel(), basis**2)
    g = gaussian_random_field(8000, s, seed=5, length_scale=1 / tau, alpha=alpha)
    assert abs(g.mean()) < 0.01
    rel = np.abs(g.var(axis=0) / var - 1)
    # 8000 samples: relative standard error of a variance is sqrt(2/8000) = 1.6 %
    assert rel.max() < 0.08, rel.max()


def test_length_scale_controls_smoothness():
    def roughness(g):
        return np.abs(np.diff(g, axis=1)).mean() / g.std()

    short = gaussian_random_field(50, 29, seed=0, length_scale=0.1)
    long = gaussian_random_field(50, 29, seed=0, length_scale=1.0)
    assert roughness(short) > 1.5 * roughness(long)


def test_smooth_field_transforms():
    g = gaussian_random_field(3, 17, seed=4)
    np.testing.assert_allclose(smooth_field(3, 17, seed=4), np.exp(g))
    t = smooth_field(3, 17, seed=4, transform="tanh")
    np.testing.assert_allclose(t, 3 + 2 * np.tanh(g))
    assert t.min() > 1 and t.max() < 5


# ----------------------------------------------------------------------------------------------
# generate_darcy
# ----------------------------------------------------------------------------------------------
def test_generate_darcy_matches_solver_and_records_parameters():
    data = generate_darcy("piecewise", 4, 9, seed=3, progress=False, threshold=0.1)
    assert isinstance(data, DarcyData) and len(data) == 4 and data.grid == 9
    np.testing.assert_array_equal(data.coeff, piecewise_field(4, 9, seed=3, threshold=0.1))
    np.testing.assert_allclose(data.sol, solve_darcy(data.coeff, refine=3), rtol=0, atol=0)
    np.testing.assert_array_equal(data.x, grid_nodes(9))
    for key, value in {
        "kind": "piecewise", "n": 4, "grid": 9, "seed": 3, "threshold": 0.1, "f": 10.0,
        "refine": 3, "interpolation": "nearest", "values": (5.0, 10.0), "alpha": 2.0,
    }.items():
        assert data.attrs[key] == value, key
    assert {"solver", "library_version", "length_scale", "scipy_version"} <= set(data.attrs)

    smooth = generate_darcy("smooth", 2, 9, seed=3, progress=False, refine=2, transform="tanh")
    assert smooth.attrs["interpolation"] == "linear" and smooth.attrs["transform"] == "tanh"
    np.testing.assert_allclose(
        smooth.sol, solve_darcy(smooth.coeff, refine=2, interpolation="linear")
    )


def test_grid_nodes_layout():
    x = grid_nodes(3)
    assert x.shape == (9, 2)
    np.testing.assert_array_equal(x[5], [0.5, 1.0])  # row i * n + j = (x_i, y_j), i = 1, j = 2


def test_darcy_data_subsets():
    data = generate_darcy("smooth", 5, 5, seed=0, progress=False, refine=1)
    assert repr(data) == "DarcyData(samples=5, grid=5, kind='smooth')"
    train, val = data.split(3, 2)
    np.testing.assert_array_equal(val.sol, data.sol[3:])
    assert len(data[1]) == 1 and len(data[[0, 4]]) == 2
    c, s, x = data.to_torch(dtype=torch.float64)
    assert c.shape == (5, 5, 5) and x.shape == (25, 2) and s.dtype == torch.float64
    with pytest.raises(ValueError, match="add up to at most 5"):
        data.split(3, 3)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "exc", "match"),
    [
        (np.ones((2, 2)), ValueError, "at least 3 nodes"),
        (np.ones(9), ValueError, r"shape \(n, n\) or \(B, n, n\)"),
        (np.ones((4, 5)), ValueError, r"shape \(n, n\) or \(B, n, n\)"),
        (np.ones((1, 2, 4, 4)), ValueError, r"shape \(n, n\) or \(B, n, n\)"),
        (np.ones((0, 4, 4)), ValueError, "empty batch"),
        (np.where(np.eye(5) > 0, np.nan, 1.0), ValueError, "NaN or infinite"),
        (np.full((5, 5), np.inf), ValueError, "NaN or infinite"),
        (np.zeros((5, 5)), ValueError, "strictly positive"),
        (-np.ones((5, 5)), ValueError, "strictly positive"),
        (np.ones((5, 5), dtype=complex), TypeError, "real numbers"),
        ("abc", TypeError, "numpy array or torch tensor"),
    ],
)
def test_solve_rejects_bad_coefficients(a, exc, match):
    with pytest.raises(exc, match=match):
        solve_darcy(a)
    if a is not None and not isinstance(a, str) and np.ndim(a) == 2 and exc is ValueError:
        with pytest.raises(exc, match=match):
            darcy_operator(a)


def test_solve_rejects_bad_options():
    a = np.ones((5, 5))
    with pytest.raises(ValueError, match=r"shape \(5, 5\) or \(1, 5, 5\)"):
        solve_darcy(a, f=np.ones((4, 4)))
    with pytest.raises(ValueError, match="broadcastable"):
        solve_darcy(a, f=lambda x, y: np.ones(3))
    with pytest.raises(ValueError, match="f must be finite, got nan; the source f is a finite"):
        solve_darcy(a, f=float("nan"))
    with pytest.raises(ValueError, match="f must be finite, got .*inf"):
        solve_darcy(a, f=np.float32("inf"))
    with pytest.raises(ValueError, match="f contains NaN"):  # an array: checked as data
        solve_darcy(a, f=np.full((5, 5), np.nan))
    with pytest.raises(TypeError, match="f must be a number"):
        solve_darcy(a, f="ten")
    with pytest.raises(TypeError, match="f must be a number"):
        solve_darcy(a, f=True)
    with pytest.raises(TypeError, match="f must be a number"):  # complex: not silently real
        solve_darcy(a, f=np.complex128(1 + 2j))
    with pytest.raises(ValueError, match="refine must be an int >= 1, got 0; 1 solves on the"):
        solve_darcy(a, refine=0)
    with pytest.raises(TypeError, match="refine must be an int"):
        solve_darcy(a, refine=1.5)
    with pytest.raises(TypeError, match="refine must be an int"):
        solve_darcy(a, refine=True)
    with pytest.raises(ValueError, match="refine must be odd"):
        solve_darcy(a, refine=4)
    with pytest.raises(ValueError, match="interpolation must be"):
        solve_darcy(a, refine=3, interpolation="cubic")
    with pytest.raises(ValueError, match="workers must be an int >= 1, got 0"):
        solve_darcy(a, workers=0)
    with pytest.raises(TypeError, match="workers must be an int"):
        solve_darcy(a, workers="2")
    with pytest.raises(ValueError, match="one \\(n, n\\) field"):
        darcy_operator(np.ones((2, 5, 5)))


def test_fields_reject_bad_arguments():
    with pytest.raises(ValueError, match="grid must be an int >= 3, got 2; nodes per side"):
        piecewise_field(2, 2, seed=0)
    with pytest.raises(TypeError, match="grid must be an int"):
        smooth_field(2, 29.0, seed=0)
    with pytest.raises(ValueError, match="n_samples must be an int >= 1, got 0"):
        gaussian_random_field(0, 9, seed=0)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        gaussian_random_field(True, 9, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        piecewise_field(2, 9, seed=None)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1; fields are always "
                                         "seeded"):
        piecewise_field(2, 9, seed=-1)
    with pytest.raises(ValueError, match="length_scale must be > 0, got 0.0"):
        piecewise_field(2, 9, seed=0, length_scale=0.0)
    with pytest.raises(ValueError, match="alpha must be finite, got nan"):
        smooth_field(2, 9, seed=0, alpha=float("nan"))
    with pytest.raises(ValueError, match=r"values\[0\] must be > 0, got 0.0"):
        piecewise_field(2, 9, seed=0, values=(0.0, 10.0))
    with pytest.raises(ValueError, match="values must be a pair"):
        piecewise_field(2, 9, seed=0, values=(5.0, 10.0, 20.0))
    with pytest.raises(ValueError, match="threshold must be finite, got inf; the level"):
        piecewise_field(2, 9, seed=0, threshold=float("inf"))
    with pytest.raises(ValueError, match="threshold must be finite, got nan"):
        piecewise_field(2, 9, seed=0, threshold=float("nan"))
    for bad in ("0.5", True, None):  # a string used to be parsed, a bool taken as 0/1
        with pytest.raises(TypeError, match="threshold must be a real number"):
            piecewise_field(2, 9, seed=0, threshold=bad)
    with pytest.raises(ValueError, match="transform must be"):
        smooth_field(2, 9, seed=0, transform="log")
    with pytest.raises(ValueError, match="grid must be an int >= 2, got 1; nodes per side"):
        grid_nodes(1)
    with pytest.raises(TypeError, match="grid must be an int"):
        grid_nodes("29")


def test_generate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        generate_darcy("checkerboard", 2, 9, seed=0, progress=False)
    with pytest.raises(ValueError, match=r"unknown field parameter\(s\) \['transform'\]"):
        generate_darcy("piecewise", 2, 9, seed=0, progress=False, transform="exp")
    with pytest.raises(TypeError, match="f must be a real number, got ndarray .*; "
                                        "generate_darcy takes a constant source"):
        generate_darcy("piecewise", 2, 9, seed=0, progress=False, f=np.ones((9, 9)))
    with pytest.raises(ValueError, match="f must be finite, got nan"):
        generate_darcy("piecewise", 2, 9, seed=0, progress=False, f=float("nan"))
    with pytest.raises(ValueError, match="refine must be odd"):
        generate_darcy("piecewise", 2, 9, seed=0, progress=False, refine=4)
    with pytest.raises(ValueError, match="grid must be an int >= 3"):
        generate_darcy("smooth", 2, 2, seed=0, progress=False)


def test_darcy_data_validates_shapes():
    with pytest.raises(ValueError, match=r"coeff must have shape \(B, n, n\)"):
        DarcyData(np.ones((3, 3)), np.ones((3, 3)), np.ones((9, 2)))
    with pytest.raises(ValueError, match="sol must have the shape of coeff"):
        DarcyData(np.ones((1, 3, 3)), np.ones((2, 3, 3)), np.ones((9, 2)))
    with pytest.raises(ValueError, match=r"x must have shape \(9, 2\)"):
        DarcyData(np.ones((1, 3, 3)), np.ones((1, 3, 3)), np.ones((3, 2)))
