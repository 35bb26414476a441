"""Iterative solvers: ``cg``, ``power_method``, ``opnorm`` and ``lsqr``, against dense and scipy
oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch
from problems import OPERATOR_CASES, case_ids, dense_matrix, psf, randn

import operators.solvers._power as power_module
from operators import (
    CGResult,
    Convolution,
    Decimation,
    Dense,
    Diagonal,
    FiniteDifference,
    Identity,
    LSQRResult,
    Mask,
    PowerMethodResult,
    cg,
    lsqr,
    power_method,
)
from operators.solvers import default_cg_rtol

F64 = torch.float64
C128 = torch.complex128


def _spd(n, cond=10.0, batch=()):
    """Random symmetric positive definite matrices with condition number ``cond``."""
    q, _ = torch.linalg.qr(randn(*batch, n, n))
    eig = torch.logspace(0, math.log10(cond), n, dtype=F64)
    return q @ torch.diag_embed(eig.expand(*batch, n)) @ q.mT


def _rel(x, ref):
    return float((x - ref).abs().max() / ref.abs().max())


# ---------------------------------------------------------------------------------------------
# cg
# ---------------------------------------------------------------------------------------------
def test_cg_matches_dense_solve_and_scipy():
    M = _spd(12, cond=50.0)
    b = randn(3, 12)
    res = cg(Dense(M), b, rtol=1e-12)
    assert isinstance(res, CGResult)
    assert bool(res.converged.all())
    assert _rel(res.solution, torch.linalg.solve(M, b.T).T) < 1e-10
    for i in range(3):
        ref, info = spla.cg(M.numpy(), b[i].numpy(), rtol=1e-12, atol=0.0)
        assert info == 0
        np.testing.assert_allclose(res.solution[i].numpy(), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 6])
def test_cg_iterates_match_scipy(k):
    """Same Krylov iterates: after k iterations (not converged) both give the same x_k."""
    M = _spd(10, cond=1e3)
    b = randn(10)
    res = cg(Dense(M), b, rtol=1e-15, max_iter=k)
    assert res.n_iter == k and not bool(res.converged)
    ref, info = spla.cg(M.numpy(), b.numpy(), rtol=1e-15, atol=0.0, maxiter=k)
    assert info == k
    np.testing.assert_allclose(res.solution.numpy(), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("dtype", "expected"), [
    (torch.float64, 1e-10), (torch.complex128, 1e-10), (torch.float32, 1e-6),
    (torch.complex64, 1e-6), (torch.float16, 1e-3), (torch.bfloat16, 1e-3)])
def test_default_cg_rtol_follows_the_dtype(dtype, expected):
    assert default_cg_rtol(dtype) == expected


@pytest.mark.parametrize("dtype", [F64, torch.float32, C128])
def test_cg_default_tolerance_is_the_dtype_default(dtype):
    """Issue 12: float64 users get a ~1e-10 relative residual by default (it was 1e-6)."""
    M = _spd(40, cond=1e4).to(dtype)
    b = randn(3, 40).to(dtype)
    default = cg(Dense(M), b)
    explicit = cg(Dense(M), b, rtol=default_cg_rtol(dtype))
    assert default.n_iter == explicit.n_iter
    torch.testing.assert_close(default.solution, explicit.solution, rtol=0, atol=0)
    assert bool(default.converged.all())
    bnorm = b.abs().norm(dim=-1) if dtype.is_complex else b.norm(dim=-1)
    assert bool((default.residual_norm <= default_cg_rtol(dtype) * bnorm).all())
    if dtype != torch.float32:  # the true residual, in double precision
        rel_res = (M @ default.solution.unsqueeze(-1)).squeeze(-1).sub(b).norm(dim=-1) / \
            b.norm(dim=-1)
        assert float(rel_res.max()) < 2e-10  # (the old default stopped at 1e-6)
        assert _rel(default.solution, torch.linalg.solve(M, b.T).T) < 1e-7  # <= cond * rtol


def test_solve_normal_cg_fallback_uses_the_dtype_default():
    """A zero-padded convolution has no closed form: its float64 solve is now ~1e-10 accurate."""
    A = Convolution(torch.ones(3, 3, dtype=F64) / 9, (8, 8), padding="zeros")
    b = randn(2, 8, 8)
    x = A.solve_normal(b, 0.01)
    D = torch.stack([A(e.reshape(8, 8)).reshape(-1) for e in torch.eye(64, dtype=F64)], dim=1)
    ref = torch.linalg.solve(D.T @ D + 0.01 * torch.eye(64, dtype=F64), b.reshape(2, 64, 1))
    assert _rel(x, ref.reshape(2, 8, 8)) < 1e-8
    x_old = A.solve_normal(b, 0.01, rtol=1e-6)  # the former default
    assert _rel(x_old, ref.reshape(2, 8, 8)) > 10 * _rel(x, ref.reshape(2, 8, 8))


def test_cg_complex_hermitian():
    a = randn(6, 6, dtype=C128)
    M = a @ a.mH + 2 * torch.eye(6, dtype=C128)
    b = randn(2, 6, dtype=C128)
    res = cg(Dense(M), b, rtol=1e-12)
    assert _rel(res.solution, torch.linalg.solve(M, b.T).T) < 1e-10


def test_cg_per_sample_convergence():
    """Sample 0 is already solved (b = 0), samples 1 and 2 have condition numbers 2 and 1e3."""
    n = 16
    M = torch.stack([_spd(n, 5.0), _spd(n, 2.0), _spd(n, 1e3)])
    b = randn(3, n)
    b[0] = 0
    res = cg(Dense(M), b, rtol=1e-10)
    assert res.converged.tolist() == [True, True, True]
    assert res.residual_norm.shape == (3,)
    assert float(res.residual_norm[0]) == 0.0
    assert torch.equal(res.solution[0], torch.zeros(n, dtype=F64))
    true_res = (b - (M @ res.solution[..., None])[..., 0]).norm(dim=-1)
    assert bool((true_res[1:] <= 1e-9 * b[1:].norm(dim=-1)).all())
    torch.testing.assert_close(res.residual_norm, true_res, rtol=1e-3, atol=1e-12)
    assert _rel(res.solution[1:], torch.linalg.solve(M[1:], b[1:, :, None])[..., 0]) < 1e-8
    # each sample stops on its own: the well-conditioned one is frozen at its own iterate
    alone = cg(Dense(M[1]), b[1], rtol=1e-10)
    assert alone.n_iter < res.n_iter
    torch.testing.assert_close(res.solution[1], alone.solution, rtol=1e-13, atol=1e-13)


def test_cg_reports_non_convergence_and_throws():
    M = _spd(20, cond=1e4)
    b = randn(2, 20)
    res = cg(Dense(M), b, max_iter=2)
    assert res.n_iter == 2 and not bool(res.converged.any())
    assert bool((res.residual_norm > 1e-6 * b.norm(dim=-1)).all())
    with pytest.raises(RuntimeError, match=r"cg did not converge in 2 iterations for 2 sample"):
        cg(Dense(M), b, max_iter=2, throw=True)


def test_cg_atol():
    M = _spd(10, cond=100.0)
    b = randn(10)
    res = cg(Dense(M), b, rtol=0.0, atol=1e-3)
    assert bool(res.converged) and float(res.residual_norm) <= 1e-3
    tight = cg(Dense(M), b, rtol=0.0, atol=1e-12)
    assert tight.n_iter > res.n_iter


def test_cg_initial_guess():
    M = _spd(10, cond=100.0)
    b = randn(2, 10).requires_grad_()
    exact = torch.linalg.solve(M, b.detach().T).T
    res = cg(Dense(M), b, x0=exact + 1e-9 * randn(2, 10), rtol=1e-6)
    assert res.n_iter <= 1 and bool(res.converged.all())
    assert not res.solution.requires_grad  # the x0 path is not differentiated
    res = cg(Dense(M), b, x0=randn(2, 10), rtol=1e-12)
    assert _rel(res.solution, exact) < 1e-9


def test_cg_check_every():
    M = _spd(12, cond=100.0)
    b = randn(3, 12)
    every1 = cg(Dense(M), b, rtol=1e-8)
    every5 = cg(Dense(M), b, rtol=1e-8, check_every=5)
    assert every5.n_iter == 5 * math.ceil(every1.n_iter / 5)
    # converged samples are frozen, so the extra iterations change nothing
    assert torch.equal(every1.solution, every5.solution)
    torch.testing.assert_close(every1.residual_norm, every5.residual_norm, rtol=0, atol=0)


def test_cg_implicit_backward_warns_when_not_converged():
    M = _spd(10, cond=1e4)
    b = randn(10).requires_grad_()
    x = cg(Dense(M), b, max_iter=2).solution
    with pytest.warns(RuntimeWarning, match="implicit-gradient solve did not converge"):
        x.sum().backward()


def test_cg_on_operator_with_images():
    """CG on a Gram operator of an image operator, per-sample damping."""
    A = FiniteDifference((5, 6))
    rho = torch.tensor([0.1, 1.0], dtype=F64)
    b = randn(2, 5, 6)
    x = cg(A.gram() + rho * Identity((5, 6)), b, rtol=1e-12).solution
    D = dense_matrix(A)
    ref = torch.linalg.solve(D.T @ D + rho[:, None, None] * torch.eye(30, dtype=F64),
                             b.reshape(2, 30, 1))
    assert _rel(x, ref.reshape(2, 5, 6)) < 1e-9


# cg argument errors
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"rtol": 0.0, "atol": 0.0}, ValueError, "need rtol >= 0 and atol >= 0, not both zero"),
        ({"rtol": -1e-3}, ValueError, "rtol must be >= 0, got -0.001; cg stops at"),
        ({"atol": -1.0}, ValueError, "atol must be >= 0, got -1.0"),
        ({"rtol": math.nan}, ValueError, "rtol must be finite, got nan"),
        ({"atol": "0"}, TypeError, "atol must be a real number, got str"),
        ({"check_every": 0}, ValueError, "check_every must be an int >= 1, got 0"),
        ({"check_every": True}, ValueError, "check_every must be an int >= 1, got True"),
        ({"max_iter": 0}, ValueError, "max_iter must be an int >= 1, got 0"),
        ({"max_iter": 2.5}, ValueError, "max_iter must be an int >= 1, got 2.5"),
        ({"max_iter": False}, ValueError, "max_iter must be an int >= 1, got False"),
    ],
)
def test_cg_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cg(Dense(_spd(3)), randn(3), **kwargs)


def test_cg_bad_operator_and_shapes():
    with pytest.raises(TypeError, match="cg expects a LinearOperator, got Tensor"):
        cg(_spd(3), randn(3))
    with pytest.raises(ValueError,
                       match=r"cg needs a square .* in_shape \(3,\) and out_shape \(4,\)"):
        cg(Dense(randn(4, 3)), randn(3))
    with pytest.raises(ValueError, match=r"cg expects a tensor of shape \(\*batch, 3\)"):
        cg(Dense(_spd(3)), randn(4))
    with pytest.raises(ValueError, match=r"cg\(x0\) expects a tensor of shape \(\*batch, 3\)"):
        cg(Dense(_spd(3)), randn(3), x0=randn(2))


# ---------------------------------------------------------------------------------------------
# power method and opnorm
# ---------------------------------------------------------------------------------------------
def test_power_method_matches_eigvalsh():
    M = _spd(15, cond=20.0, batch=(3,))
    M[1] = 4.0 * M[1]
    res = power_method(Dense(M), max_iter=2000, tol=1e-12)
    assert isinstance(res, PowerMethodResult)
    ref = torch.linalg.eigvalsh(M)[..., -1]
    torch.testing.assert_close(res.eigenvalue, ref, rtol=1e-6, atol=0)
    assert bool(res.converged.all())
    v = res.eigenvector
    torch.testing.assert_close(v.norm(dim=-1), torch.ones(3, dtype=F64))
    mv = (M @ v[..., None])[..., 0]
    assert float((mv - ref[:, None] * v).norm(dim=-1).max()) < 1e-3 * float(ref.max())


def test_power_method_generator_and_x0():
    M = Dense(_spd(8, cond=5.0))
    a = power_method(M, generator=torch.Generator().manual_seed(5), max_iter=3)
    b = power_method(M, generator=torch.Generator().manual_seed(5), max_iter=3)
    assert torch.equal(a.eigenvalue, b.eigenvalue) and a.n_iter == 3
    e1 = torch.zeros(8, dtype=F64)
    e1[0] = 1
    c = power_method(Dense(torch.diag(torch.arange(1.0, 9.0, dtype=F64))), x0=e1)
    assert float(c.eigenvalue) == 1.0  # an eigenvector start stays put


def test_power_method_zero_operator():
    res = power_method(Dense(torch.zeros(4, 4, dtype=F64)))
    assert float(res.eigenvalue) == 0.0 and res.n_iter == 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"max_iter": 0}, ValueError, "max_iter must be an int >= 1, got 0"),
        ({"max_iter": True}, ValueError, "max_iter must be an int >= 1, got True"),
        ({"max_iter": 3, "n_iter": 3}, TypeError, r"pass max_iter= only \(n_iter= is its "),
        ({"tol": 0.0}, ValueError, "tol must be > 0, got 0.0; the relative change"),
        ({"tol": math.nan}, ValueError, "tol must be finite, got nan"),
        ({"tol": True}, TypeError, "tol must be a real number, got bool"),
        ({"x0": torch.ones(5, dtype=F64)}, ValueError, r"power_method\(x0\) expects a tensor"),
    ],
)
def test_power_method_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        power_method(Dense(_spd(4)), **kwargs)


def test_power_method_former_keyword_n_iter():
    # n_iter= was renamed max_iter= (naming scheme: max_iter for solvers); the old keyword
    # still works, with a DeprecationWarning, through power_method and opnorm
    M = Dense(_spd(4))
    gen = torch.Generator
    new = power_method(M, max_iter=3, generator=gen().manual_seed(1))
    with pytest.warns(DeprecationWarning, match=r"n_iter= is deprecated, use max_iter="):
        old = power_method(M, n_iter=3, generator=gen().manual_seed(1))
    assert old.n_iter == new.n_iter == 3 and torch.equal(old.eigenvalue, new.eigenvalue)
    # zero-padded convolution: no closed-form norm, opnorm runs power_method
    A = Convolution(torch.rand(3, 3, dtype=F64, generator=gen().manual_seed(2)), (6, 6),
                    padding="zeros")
    with pytest.warns(DeprecationWarning, match="n_iter= is deprecated"):
        a = A.opnorm(n_iter=3, generator=gen().manual_seed(3))
    torch.testing.assert_close(a, A.opnorm(max_iter=3, generator=gen().manual_seed(3)))


def test_power_method_bad_operator():
    with pytest.raises(TypeError, match="power_method expects a LinearOperator, got Tensor"):
        power_method(_spd(3))
    with pytest.raises(ValueError, match=r"power_method needs a square operator, got \(3,\) -> "
                                         r"\(4,\); use A.opnorm\(\)"):
        power_method(Dense(randn(4, 3)))


@pytest.fixture
def forbid_power(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("opnorm used power iteration where a closed form was expected")

    monkeypatch.setattr(power_module, "power_method", fail)


@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_opnorm_equals_largest_singular_value(case, request):
    A = case.factory(F64, "cpu")
    ref = torch.linalg.matrix_norm(dense_matrix(A), ord=2)
    if case.flags.closed_opnorm:
        request.getfixturevalue("forbid_power")
        nrm = A.opnorm()
        # 1e-6: parameter-free symbols (periodic Laplacian) are built in the default dtype
        tol = 1e-6
    else:
        nrm = A.opnorm(max_iter=1000, tol=1e-12, generator=torch.Generator().manual_seed(0))
        tol = 1e-4
    assert tuple(nrm.shape) == A.batch_shape
    assert float(((nrm - ref).abs() / ref).max()) < tol


def test_opnorm_examples():
    """Known values: the periodic Laplacian symbol max, masks, decimation, per-sample scales."""
    D = FiniteDifference((6, 8), spacing=(0.5, 2.0), boundary="circular")
    # ||∇||² = max (2 sin(πk/n)/h)² summed over axes = (2/0.5)² + (2/2)²
    torch.testing.assert_close(D.opnorm().to(F64), torch.tensor(math.sqrt(16.0 + 1.0), dtype=F64))
    c = torch.tensor([2.0, -3.0], dtype=F64)
    A = c * Convolution(psf(3, 3), (1, 6, 6))
    torch.testing.assert_close(A.opnorm(), torch.tensor([2.0, 3.0], dtype=F64))  # ||blur|| = 1
    d = Diagonal(torch.tensor([[1.0, -5.0], [2.0, 0.5]], dtype=F64), in_shape=(2,))
    torch.testing.assert_close(d.opnorm(), torch.tensor([5.0, 2.0], dtype=F64))


# ---------------------------------------------------------------------------------------------
# lsqr
# ---------------------------------------------------------------------------------------------
def _scipy_lsqr(a, b, damp=0.0):
    return spla.lsqr(a.numpy(), b.numpy(), damp=damp, atol=1e-14, btol=1e-14, iter_lim=500)[0]


def test_lsqr_overdetermined_matches_lstsq_and_scipy():
    a = randn(9, 5)
    b = randn(2, 9)
    res = lsqr(Dense(a), b, atol=1e-12, btol=1e-12)
    assert isinstance(res, LSQRResult) and bool(res.converged.all())
    ref = torch.linalg.lstsq(a, b.T).solution.T
    assert _rel(res.solution, ref) < 1e-9
    np.testing.assert_allclose(res.solution[0].numpy(), _scipy_lsqr(a, b[0]), rtol=1e-8,
                               atol=1e-10)
    r = ((a @ res.solution[..., None])[..., 0] - b).norm(dim=-1)
    torch.testing.assert_close(res.residual_norm, r, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("damp", [0.3, 2.0])
def test_lsqr_damped(damp):
    a = randn(7, 5)
    b = randn(7)
    res = lsqr(Dense(a), b, damp=damp, atol=1e-12, btol=1e-12)
    ref = torch.linalg.solve(a.T @ a + damp ** 2 * torch.eye(5, dtype=F64), a.T @ b)
    assert _rel(res.solution, ref) < 1e-9
    np.testing.assert_allclose(res.solution.numpy(), _scipy_lsqr(a, b, damp), rtol=1e-8,
                               atol=1e-10)
    # damp² plays the role of rho in solve_normal
    assert _rel(Dense(a).solve_normal(a.T @ b, damp ** 2), res.solution) < 1e-9


def test_lsqr_complex():
    a = randn(8, 4, dtype=C128)
    b = randn(8, dtype=C128)
    res = lsqr(Dense(a), b, damp=0.5, atol=1e-12, btol=1e-12)
    ref = torch.linalg.solve(a.mH @ a + 0.25 * torch.eye(4, dtype=C128), a.mH @ b)
    assert _rel(res.solution, ref) < 1e-9
    np.testing.assert_allclose(res.solution.numpy(), _scipy_lsqr(a, b, 0.5), rtol=1e-8,
                               atol=1e-10)


def test_lsqr_underdetermined_gives_minimum_norm_solution():
    """A valid convolution has fewer outputs than inputs: LSQR from 0 gives pinv(A) b."""
    A = Convolution(psf(3, 3), (6, 6), padding="valid")
    b = randn(2, 4, 4)
    res = lsqr(A, b, atol=1e-12, btol=1e-12, max_iter=500)
    ref = (torch.linalg.pinv(dense_matrix(A)) @ b.reshape(2, 16, 1)).reshape(2, 6, 6)
    assert _rel(res.solution, ref) < 1e-8


def test_lsqr_per_sample_zero_rhs_and_throw():
    a = randn(6, 4)
    b = randn(2, 6)
    b[0] = 0
    res = lsqr(Dense(a), b, atol=1e-12, btol=1e-12)
    assert res.converged.tolist() == [True, True]
    assert torch.equal(res.solution[0], torch.zeros(4, dtype=F64))
    assert _rel(res.solution[1], torch.linalg.lstsq(a, b[1]).solution) < 1e-9
    a = randn(30, 20) @ torch.diag(torch.logspace(0, 4, 20, dtype=F64))
    with pytest.raises(RuntimeError, match=r"lsqr did not converge in 1 iterations for 1 sample"):
        lsqr(Dense(a), randn(30), max_iter=1, atol=1e-14, btol=1e-14, throw=True)


def _exact_fit_cases():
    """Operators for which LSQR breaks down (an exactly zero norm) at an exact fit ``b = A x``."""
    g = torch.Generator().manual_seed(7)
    mask = (torch.rand(2, 1, 5, 4, generator=g) > 0.5).to(F64)
    return {
        "mask": Mask(mask, in_shape=(3, 5, 4)),  # one iteration: A Aᴴ b = b
        "identity": Identity((3, 4)),
        "dense_full_rank": Dense(randn(7, 4)),  # n iterations, no exact breakdown
    }


@pytest.mark.parametrize("near", [False, True], ids=["exact_fit", "near_fit"])
@pytest.mark.parametrize("name", ["mask", "identity", "dense_full_rank"])
def test_lsqr_gradients_at_and_near_an_exact_fit(name, near):
    """Issue 12: at y = A x exactly (LSQR stops after one iteration for masks) the backward pass
    divided by a zero norm and gave NaN. The gradient must be finite and match both finite
    differences (gradcheck) and the pseudo-inverse, the map that LSQR computes."""
    op = _exact_fit_cases()[name]
    x = randn(2, *op.in_shape)
    y = op(x)
    if near:
        y = y + 1e-7 * randn(*y.shape)
    y.requires_grad_(True)
    res = lsqr(op, y, atol=1e-13, btol=1e-13)
    if name != "dense_full_rank" and not near:
        assert res.n_iter == 1
    w = randn(*res.solution.shape)
    (g,) = torch.autograd.grad((res.solution * w).sum(), y)
    assert bool(torch.isfinite(g).all())
    pinv = torch.linalg.pinv(dense_matrix(op) if name != "mask" else
                             torch.diag_embed(op.mask.expand(2, *op.in_shape).reshape(2, -1)))
    ref = (pinv.mT @ w.reshape(2, -1, 1)).reshape(g.shape)
    assert _rel(g, ref) < 1e-9
    assert torch.autograd.gradcheck(
        lambda yy: lsqr(op, yy, atol=1e-13, btol=1e-13).solution, (y,), eps=1e-6, atol=1e-7)


def test_lsqr_gradient_wrt_operator_tensor_at_an_exact_fit_is_that_of_the_iterations():
    """|d| constant: A Aᴴ = 4 I, so LSQR stops after one iteration with an exactly zero β.

    Autograd differentiates the iterations LSQR ran (documented; implicit gradients w.r.t.
    operator tensors come from ``solve_normal``): here the one-step map
    x₁(d) = (‖Aᴴb‖² / ‖AAᴴb‖²) Aᴴb.
    """
    sign = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0], dtype=F64)
    d = (2.0 * sign).requires_grad_(True)
    b = d.detach() * randn(5)
    res = lsqr(Diagonal(d), b, atol=1e-13, btol=1e-13)
    assert res.n_iter == 1
    (gd,) = torch.autograd.grad(res.solution.sum(), d)
    d1 = d.detach().clone().requires_grad_(True)
    atb = d1 * b
    one_step = (atb.square().sum() / (d1 * atb).square().sum()) * atb
    (ref,) = torch.autograd.grad(one_step.sum(), d1)
    assert bool(torch.isfinite(gd).all())
    torch.testing.assert_close(gd, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"damp": -1.0}, "damp must be >= 0, got -1.0"),
        ({"atol": -1.0}, "atol must be >= 0, got -1.0"),
        ({"btol": -1.0}, "btol must be >= 0, got -1.0"),
        ({"btol": math.inf}, "btol must be finite, got inf"),
        ({"max_iter": 0}, "max_iter must be an int >= 1, got 0"),
        ({"max_iter": 1.5}, "max_iter must be an int >= 1, got 1.5"),
    ],
)
def test_lsqr_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lsqr(Dense(randn(4, 3)), randn(4), **kwargs)


def test_lsqr_bad_operator_and_shapes():
    with pytest.raises(TypeError, match="lsqr expects a LinearOperator, got Tensor"):
        lsqr(randn(4, 3), randn(4))
    with pytest.raises(ValueError, match=r"lsqr expects a tensor of shape \(\*batch, 4\)"):
        lsqr(Dense(randn(4, 3)), randn(3))


# ---------------------------------------------------------------------------------------------
# preconditioned cg
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 6])
def test_preconditioned_cg_iterates_match_scipy(k):
    """Same preconditioned Krylov iterates as scipy.sparse.linalg.cg(M=...) after k steps."""
    A = _spd(10, cond=1e3)
    P = torch.diag(1.0 / torch.diagonal(A)) + 0.01 * _spd(10, cond=3.0)  # SPD, not exact
    b = randn(10)
    res = cg(Dense(A), b, rtol=1e-15, max_iter=k, preconditioner=Dense(P))
    assert res.n_iter == k and not bool(res.converged)
    ref, info = spla.cg(A.numpy(), b.numpy(), rtol=1e-15, atol=0.0, maxiter=k, M=P.numpy())
    assert info == k
    np.testing.assert_allclose(res.solution.numpy(), ref, rtol=1e-9, atol=1e-12)


def test_preconditioner_cuts_iterations_not_accuracy():
    """A badly scaled system D S D: the Jacobi preconditioner (a callable) needs far fewer
    iterations for the same solution and the same (unpreconditioned) residual test."""
    s = _spd(40, cond=5.0)
    d = torch.logspace(0, 3, 40, dtype=F64)
    A = d[:, None] * s * d[None, :]
    b = randn(2, 40)
    plain = cg(Dense(A), b, rtol=1e-10, max_iter=2000)
    jac = 1.0 / torch.diagonal(A)
    pre = cg(Dense(A), b, rtol=1e-10, max_iter=2000, preconditioner=lambda r: jac * r)
    assert bool(plain.converged.all()) and bool(pre.converged.all())
    assert pre.n_iter < plain.n_iter / 3
    ref = torch.linalg.solve(A, b.T).T
    assert _rel(pre.solution, ref) < 1e-6
    assert bool((pre.residual_norm <= 1e-10 * b.norm(dim=-1)).all())


def test_preconditioned_cg_implicit_gradients_equal_the_plain_ones():
    A = _spd(8, cond=100.0)
    P = Dense(torch.diag(1.0 / torch.diagonal(A)))
    b = randn(2, 8).requires_grad_(True)
    w = randn(2, 8)
    g = [torch.autograd.grad((cg(Dense(A), b, rtol=1e-13, preconditioner=p).solution * w).sum(),
                             b)[0] for p in (None, P)]
    torch.testing.assert_close(g[0], g[1], rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(g[0], torch.linalg.solve(A, w.T).T, rtol=1e-8, atol=1e-10)


def test_solve_normal_passes_the_preconditioner_to_its_cg_fallback():
    """A blur between two non-constant diagonals has no closed form (CG); the preconditioner
    (the closed-form solve of the blur alone with averaged scales) keeps the solution."""
    shape = (1, 16, 16)
    blur = Convolution(psf(5, 5), shape)
    sig = 0.5 + torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=F64)
    op = Diagonal(sig, shape) @ blur @ Diagonal(sig, shape)
    assert not op._closed_form_normal(sig[None])
    assert blur._closed_form_normal(sig[None])
    b = randn(3, *shape)
    c = float(sig.pow(4).mean())

    def pre(r):
        return blur.solve_normal(r, 1.0 / c) / c

    x = op.solve_normal(b, 1.0, rtol=1e-12, max_iter=500, preconditioner=pre)
    ref = op.solve_normal(b, 1.0, rtol=1e-12, max_iter=500)
    torch.testing.assert_close(x, ref, rtol=0, atol=1e-9)
    torch.testing.assert_close(op.adjoint(op(x)) + x, b, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("pre", "exc", "match"), [
    ("jacobi", TypeError, "preconditioner must be a LinearOperator or a callable"),
    (Identity((3,)), ValueError, r"the preconditioner maps \(3,\)")])
def test_cg_bad_preconditioner(pre, exc, match):
    with pytest.raises(exc, match=match):
        cg(Dense(_spd(4)), randn(4), preconditioner=pre)


def test_closed_form_normal_reports_the_closed_forms():
    shape = (1, 12, 12)
    like = torch.zeros(1, *shape, dtype=F64)
    blur = Convolution(psf(3, 3), shape)
    assert blur._closed_form_normal(like)
    assert (Decimation(2, shape) @ blur)._closed_form_normal(like)  # Zhao et al. rule
    assert Mask(torch.rand(shape, dtype=F64) > 0.5)._closed_form_normal(like)
    assert not (Mask(torch.rand(1, 6, 6, dtype=F64) > 0.5) @ Decimation(2, shape)
                @ blur)._closed_form_normal(like)


def test_solve_normal_warns_when_its_cg_fallback_does_not_converge():
    # no closed form (mask after decimation after blur): the CG fallback; an unconverged solve
    # is reported, never returned silently
    import warnings

    shape = (1, 12, 12)
    g = torch.Generator().manual_seed(0)
    op = (Mask(torch.rand(1, 6, 6, generator=g, dtype=F64) > 0.5) @ Decimation(2, shape)
          @ Convolution(psf(3, 3), shape))
    b = torch.randn(2, *shape, generator=g, dtype=F64)
    with pytest.warns(RuntimeWarning, match=r"stopped at max_iter=2 .* in 2 of 2 system"):
        op.solve_normal(b, 1e-3, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = op.solve_normal(b, 1e-3, max_iter=500)
    r = op.H(op(x)) + 1e-3 * x - b
    assert float(r.norm() / b.norm()) < 1e-8
