"""``solve_normal``: closed forms == CG == dense solve, per-sample damping, errors, gradients.

Every registered operator solves :math:`(A^H A + \\rho I)x = b` in float64 and the result is
compared with ``torch.linalg.solve`` on the dense normal matrix and with :func:`operators.cg` on
``A.gram() + rho * I``. Where a closed form is expected (``flags.closed_solve``) CG is patched to
raise, so a lost structure rule fails the test instead of silently running CG.

Gradients: closed forms are plain autograd; the CG fallback uses implicit differentiation
(``_ImplicitCG``), checked with ``gradcheck``, against the gradient of the dense solve, and for
the absence of an unrolled graph.
"""

from __future__ import annotations

import math

import pytest
import torch
from problems import CASES_BY_NAME, OPERATOR_CASES, case_ids, dense_matrix, psf, randn

import operators.solvers._cg as cg_module
from operators import (
    BlockDiagonal,
    Convolution,
    Decimation,
    Dense,
    Diagonal,
    FiniteDifference,
    Identity,
    PointSampling,
    Stack,
    cg,
)

F64 = torch.float64
TOL = 1e-8


def _rel_err(x, ref):
    return float((x - ref).abs().max() / ref.abs().max())


def _dense_solve(A, b, rho):
    """Reference: ``torch.linalg.solve(AᴴA + ρI, b)`` per sample on the dense matrix."""
    D = dense_matrix(A, F64)
    n = D.shape[-1]
    batch = b.shape[: b.ndim - len(A.in_shape)]
    rho_t = torch.as_tensor(rho, dtype=F64)
    M = D.mH @ D + rho_t.reshape(*rho_t.shape, 1, 1) * torch.eye(n, dtype=F64)
    x = torch.linalg.solve(M, b.reshape(*batch, n, 1).to(M.dtype))
    return x.reshape(b.shape)


def _rhs(A, batch=(2,)):
    b = randn(*(A.batch_shape or batch), *A.in_shape)
    if A.complex_input:
        b = torch.complex(b, randn(*b.shape))
    return b


@pytest.fixture
def count_cg(monkeypatch):
    calls = []
    original = cg_module.cg

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cg_module, "cg", counting)
    return calls


# ---------------------------------------------------------------------------------------------
# every registered operator: closed form / CG fallback == CG on the Gram == dense solve
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("per_sample_rho", [False, True], ids=["scalar_rho", "per_sample_rho"])
@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_solve_normal_matches_dense_and_cg(case, per_sample_rho, request):
    A = case.factory(F64, "cpu")
    b = _rhs(A)
    nb = b.shape[0]
    rho = torch.tensor([0.3, 2.0, 0.9][:nb], dtype=F64) if per_sample_rho else 0.7
    ref = _dense_solve(A, b, rho)
    calls = request.getfixturevalue("forbid_cg" if case.flags.closed_solve else "count_cg")
    x = A.solve_normal(b, rho, rtol=1e-13)
    if not case.flags.closed_solve:
        assert calls, "expected the CG fallback"
    assert x.shape == b.shape
    assert _rel_err(x, ref) < TOL
    # and with operators.cg on the Gram operator (``cg`` was imported before any patching);
    # rho as a float64 tensor: Scaled stores a Python float in float32 (see test_operators_algebra)
    res = cg(A.gram() + torch.as_tensor(rho, dtype=F64) * Identity(A.in_shape), b, rtol=1e-13)
    assert bool(res.converged.all())
    assert _rel_err(x, res.solution) < TOL


@pytest.mark.gpu
@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_solve_normal_and_opnorm_on_cuda_match_cpu(case):
    """Closed forms and fallbacks build their symbols on the data's device."""
    torch.manual_seed(0)
    A = case.factory(F64, "cpu")
    torch.manual_seed(0)
    G = case.factory(F64, "cuda")
    b = _rhs(A)
    rho = torch.tensor([0.3, 2.0], dtype=F64)
    x = A.solve_normal(b, rho, rtol=1e-13)
    xg = G.solve_normal(b.cuda(), rho.cuda(), rtol=1e-13)
    assert xg.device.type == "cuda"
    assert _rel_err(xg.cpu(), x) < TOL
    kw = {} if case.flags.closed_opnorm else {
        "max_iter": 1000, "tol": 1e-12, "generator": torch.Generator().manual_seed(0)}
    nrm, nrm_g = A.opnorm(**kw), G.opnorm(**kw)
    if G._device() is not None:
        assert nrm_g.device.type == "cuda"
    torch.testing.assert_close(nrm_g.cpu(), nrm, rtol=1e-6, atol=0)


@pytest.mark.gpu
def test_cg_path_gradients_on_cuda_match_cpu():
    b, w, k = randn(2, 5, 5), randn(2, 5, 5), psf(3, 3)
    rho = torch.tensor([0.2, 0.8], dtype=F64)
    grads = []
    for dev in ("cpu", "cuda"):
        bb, rr, kk = (t.to(dev).requires_grad_() for t in (b, rho, k))
        x = _zeros_conv_solve(bb, rr, kk)
        assert type(x.grad_fn).__name__ == "_ImplicitCGBackward"
        grads.append([g.cpu() for g in torch.autograd.grad((x * w.to(dev)).sum(), (bb, rr, kk))])
    for a, ref in zip(*grads, strict=True):
        assert _rel_err(a, ref) < 1e-9


def test_cg_on_gram_matches_dense():
    A = CASES_BY_NAME["conv_zeros_odd_nonsquare"].factory(F64, "cpu")
    b = _rhs(A)
    rho = torch.tensor([0.1, 1.0], dtype=F64)
    res = cg(A.gram() + rho * Identity(A.in_shape), b, rtol=1e-13)
    assert bool(res.converged.all())
    assert _rel_err(res.solution, _dense_solve(A, b, rho)) < TOL


@pytest.mark.parametrize("factor", [2, 3])
@pytest.mark.parametrize("per_sample_psf", [False, True], ids=["shared_psf", "per_sample_psf"])
def test_zhao_decimated_blur_closed_form(factor, per_sample_psf, forbid_cg):
    n = 6 * factor // 2 if factor == 2 else 9
    k = psf(2, 3, 3) if per_sample_psf else psf(3, 4)
    A = Decimation(factor, (n, 2 * factor)) @ Convolution(k, (n, 2 * factor))
    b = randn(2, n, 2 * factor)
    rho = torch.tensor([0.05, 3.0], dtype=F64)
    x = A.solve_normal(b, rho)
    assert _rel_err(x, _dense_solve(A, b, rho)) < TOL
    # the normal equations hold
    residual = A.adjoint(A(x)) + rho[:, None, None] * x - b
    assert float(residual.abs().max()) < 1e-10


def test_stack_blur_and_gradient_closed_form(forbid_cg):
    """Tikhonov-gradient deblurring, [B; λ∇] with periodic ∇: closed form via the Fourier Gram."""
    B = Convolution(psf(3, 3), (6, 8))
    D = FiniteDifference((6, 8), boundary="circular")
    A = Stack([B, 0.5 * D])
    b = randn(3, 6, 8)
    x = A.solve_normal(b, 1e-3)
    assert _rel_err(x, _dense_solve(A, b, 1e-3)) < TOL
    expected = B.adjoint(B(x)) + 0.25 * D.adjoint(D(x)) + 1e-3 * x
    torch.testing.assert_close(expected, b, rtol=0, atol=1e-9)


def test_block_diagonal_solves_block_by_block(count_cg):
    A = BlockDiagonal([Diagonal(randn(3)), Convolution(psf(3, 3), (4, 4), "zeros"),
                       Dense(randn(4, 2))])
    b = randn(2, A.in_shape[0])
    rho = torch.tensor([0.5, 4.0], dtype=F64)
    x = A.solve_normal(b, rho, rtol=1e-13)
    assert _rel_err(x, _dense_solve(A, b, rho)) < TOL
    assert len(count_cg) == 1  # only the zero-padded convolution block needs CG


def test_scaled_solve_keeps_the_closed_form_and_handles_zero_scale(count_cg):
    conv = Convolution(psf(3, 3), (1, 6, 6))
    c = torch.tensor([2.0, -0.5], dtype=F64)
    b = randn(2, 1, 6, 6)
    x = (c * conv).solve_normal(b, 0.3)
    assert not count_cg
    assert _rel_err(x, _dense_solve(c * conv, b, 0.3)) < TOL
    c0 = torch.tensor([0.0, 1.5], dtype=F64)  # a zero scale: (0 + ρ)x = b for that sample
    x0 = (c0 * conv).solve_normal(b, 0.5, rtol=1e-13)
    torch.testing.assert_close(x0[0], b[0] / 0.5)
    assert _rel_err(x0, _dense_solve(c0 * conv, b, 0.5)) < TOL


def test_solve_normal_promotes_real_rhs_for_complex_input_operators():
    A = CASES_BY_NAME["fourier_sampling"].factory(F64, "cpu")
    b = randn(2, 8, 8)
    x = A.solve_normal(b, 1.0)
    assert x.is_complex()
    assert _rel_err(x, _dense_solve(A, b.to(torch.complex128), 1.0)) < TOL


def test_point_sampling_falls_back_to_cg(count_cg):
    pts = torch.tensor([[0.5, 0.5], [2.25, 1.0], [3.0, 3.0]], dtype=F64)
    A = PointSampling(pts, (4, 4))
    b = randn(4, 4)
    x = A.solve_normal(b, 0.1, rtol=1e-13)
    assert count_cg
    assert _rel_err(x, _dense_solve(A, b, 0.1)) < TOL


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def conv_circ():
    return Convolution(psf(3, 3), (6, 6))


@pytest.mark.parametrize(("rho", "match"), [
    (0.0, "rho must be > 0, got 0.0; rho > 0 makes"), (-1.0, "rho must be > 0, got -1.0"),
    (math.inf, "rho must be finite, got inf"), (math.nan, "rho must be finite, got nan")])
def test_rho_must_be_positive_and_finite(conv_circ, rho, match):
    with pytest.raises(ValueError, match=match):
        conv_circ.solve_normal(randn(6, 6), rho)


def test_per_sample_rho_must_be_positive(conv_circ):
    with pytest.raises(ValueError, match=r"rho must be finite and > 0, got 1 entry .*rho > 0"):
        conv_circ.solve_normal(randn(2, 6, 6), torch.tensor([1.0, 0.0], dtype=F64))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -2.0])
def test_per_sample_rho_must_be_finite(conv_circ, bad):
    # a NaN used to give a NaN solution for that sample without an error
    for A in (conv_circ, Diagonal(randn(6, 6)), FiniteDifference((6, 6))):  # closed forms, CG
        with pytest.raises(ValueError, match=r"rho must be finite and > 0, got 1 entry"):
            A.solve_normal(randn(2, 6, 6), torch.tensor([1.0, bad], dtype=F64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64, torch.float16])
def test_rho_that_underflows_in_the_working_dtype(conv_circ, dtype):
    # 1e-50 is a valid float but 0 in float32: the solve used to divide by (a near) zero
    b = randn(6, 6).to(dtype)
    A = Convolution(psf(3, 3).to(torch.float32), (6, 6))
    with pytest.raises(ValueError, match=r"rho=1e-50 underflows in torch.float(32|16) \(smallest "
                                         r"normal number .*\); use a larger value or float64"):
        A.solve_normal(b, 1e-50)
    big = torch.finfo(torch.float16).max * 2 if dtype == torch.float16 else 1e300
    with pytest.raises(ValueError, match=r"overflows in torch.float(32|16)"):
        A.solve_normal(b, big)
    # the same rho is fine in float64
    x = conv_circ.solve_normal(randn(6, 6), 1e-50)
    assert torch.isfinite(x).all()


def test_per_sample_float64_rho_on_float32_data(conv_circ):
    # a float64 rho tensor is used in b's dtype: the result stays float32, equal to the solve with
    # a float32 rho, and a value that underflows in float32 is named (it used to be computed in
    # float64 instead, silently promoting the result)
    A = Convolution(psf(3, 3).to(torch.float32), (6, 6))
    b = randn(2, 6, 6).float()
    x = A.solve_normal(b, torch.tensor([1e-3, 1.0], dtype=F64))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, A.solve_normal(b, torch.tensor([1e-3, 1.0])))
    with pytest.raises(ValueError, match=r"rho=1e-50 underflows in torch.float32 .*per-sample rho"):
        A.solve_normal(b, torch.tensor([1e-50, 1.0], dtype=F64))
    with pytest.raises(ValueError, match=r"rho=1e\+300 overflows in torch.float32"):
        A.solve_normal(b, torch.tensor([1.0, 1e300], dtype=F64))
    # the same values are fine in float64
    assert torch.isfinite(conv_circ.solve_normal(b.double(), torch.tensor([1e-50, 1e300],
                                                                          dtype=F64))).all()


def test_per_sample_rho_integer_tensor_is_promoted(conv_circ):
    b = randn(2, 6, 6)
    torch.testing.assert_close(conv_circ.solve_normal(b, torch.tensor([1, 2])),
                               conv_circ.solve_normal(b, torch.tensor([1.0, 2.0], dtype=F64)))


@pytest.mark.parametrize("rho", ["1.0", None, True, [1.0], 1 + 0j])
def test_rho_type(conv_circ, rho):
    with pytest.raises(TypeError, match="rho must be a real number, got .*give a float or one rho "
                                        "per sample"):
        conv_circ.solve_normal(randn(6, 6), rho)


def test_complex_rho(conv_circ):
    with pytest.raises(TypeError, match="rho must be real and positive, got a complex tensor"):
        conv_circ.solve_normal(randn(2, 6, 6), torch.tensor([1.0 + 1j, 2.0]))


def test_rho_shape(conv_circ):
    with pytest.raises(ValueError, match=r"broadcasts to the batch shape \(2,\) .*got \(3,\)"):
        conv_circ.solve_normal(randn(2, 6, 6), torch.ones(3, dtype=F64))
    # a per-sample rho must not add samples: b has no batch dim here
    with pytest.raises(ValueError, match=r"broadcasts to the batch shape \(\) .*got \(2,\)"):
        conv_circ.solve_normal(randn(6, 6), torch.ones(2, dtype=F64))
    # ... but it may broadcast against the operator's per-sample batch
    A = Convolution(psf(2, 1, 3, 3), (1, 6, 6))
    assert A.solve_normal(randn(1, 6, 6), torch.ones(2, dtype=F64)).shape == (2, 1, 6, 6)


def test_rho_device(conv_circ):
    with pytest.raises(ValueError, match="rho is on meta but b is on cpu"):
        conv_circ.solve_normal(randn(2, 6, 6), torch.ones(2, device="meta"))


def test_rhs_shape(conv_circ):
    with pytest.raises(ValueError,
                       match=r"solve_normal expects a tensor of shape \(\*batch, 6, 6\)"):
        conv_circ.solve_normal(randn(2, 6, 5), 1.0)


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
def test_gradcheck_closed_form_wrt_b_rho_and_psf(forbid_cg):
    b = randn(2, 5, 6).requires_grad_()
    rho = torch.tensor([0.4, 1.3], dtype=F64, requires_grad=True)
    k = psf(3, 3).requires_grad_()
    torch.autograd.gradcheck(
        lambda b, rho, k: Convolution(k, (5, 6)).solve_normal(b, rho), (b, rho, k))


def test_gradcheck_zhao_closed_form_wrt_b_and_rho(forbid_cg):
    A = Decimation(2, (6, 6)) @ Convolution(psf(2, 3, 3), (6, 6))
    b = randn(2, 6, 6).requires_grad_()
    rho = torch.tensor([0.4, 1.3], dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda b, rho: A.solve_normal(b, rho), (b, rho))


def test_gradcheck_dense_closed_form_wrt_matrix_b_and_rho():
    m = randn(5, 3).requires_grad_()
    b = randn(2, 3).requires_grad_()
    rho = torch.tensor([0.4, 1.3], dtype=F64, requires_grad=True)
    torch.autograd.gradcheck(lambda m, b, rho: Dense(m).solve_normal(b, rho), (m, b, rho))


def _zeros_conv_solve(b, rho, k, rtol=1e-13):
    return Convolution(k, (5, 5), padding="zeros").solve_normal(b, rho, rtol=rtol)


def test_gradcheck_cg_path_wrt_b_rho_and_psf(count_cg):
    b = randn(2, 5, 5).requires_grad_()
    rho = torch.tensor([0.3, 1.1], dtype=F64, requires_grad=True)
    k = psf(3, 2).requires_grad_()
    torch.autograd.gradcheck(_zeros_conv_solve, (b, rho, k))
    assert count_cg  # the CG path was exercised


def test_gradcheck_cg_path_scalar_rho_tensor():
    b = randn(5, 5).requires_grad_()
    rho = torch.tensor(0.6, dtype=F64, requires_grad=True)
    k = psf(3, 3)
    torch.autograd.gradcheck(lambda b, rho: _zeros_conv_solve(b, rho, k), (b, rho))


def test_implicit_gradient_equals_dense_solve_gradient():
    """The implicit-differentiation gradients equal backpropagation through a dense solve."""
    b = randn(2, 5, 5)
    w = randn(2, 5, 5)
    rho0 = torch.tensor([0.2, 0.8], dtype=F64)
    k0 = psf(3, 3)

    def grads(solve):
        bb, rr, kk = (t.clone().requires_grad_() for t in (b, rho0, k0))
        loss = (solve(bb, rr, kk) * w).sum()
        return torch.autograd.grad(loss, (bb, rr, kk))

    def dense(bb, rr, kk):
        return _dense_solve(Convolution(kk, (5, 5), padding="zeros"), bb, rr)

    g_cg, g_dense = grads(_zeros_conv_solve), grads(dense)
    for a, ref in zip(g_cg, g_dense, strict=True):
        assert _rel_err(a, ref) < 1e-8


def _graph_size(t):
    seen, stack = set(), [t.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(f for f, _ in fn.next_functions)
    return len(seen)


def test_cg_path_keeps_no_unrolled_graph():
    b = randn(2, 5, 5).requires_grad_()
    k = psf(3, 3).requires_grad_()
    A = Convolution(k, (5, 5), padding="zeros")
    M = A.gram() + 0.1 * Identity((5, 5))
    loose, tight = cg(M, b, rtol=1e-2), cg(M, b, rtol=1e-13)
    assert loose.n_iter < tight.n_iter
    for res in (loose, tight):
        assert type(res.solution.grad_fn).__name__ == "_ImplicitCGBackward"
    assert _graph_size(loose.solution) == _graph_size(tight.solution) < 10
    x = A.solve_normal(b, 0.1, rtol=1e-13)
    assert type(x.grad_fn).__name__ == "_ImplicitCGBackward"
    x.square().sum().backward()
    assert b.grad is not None and k.grad is not None and bool(k.grad.abs().sum() > 0)


def test_gradcheck_cg_on_dense_spd_operator():
    """cg on a Dense SPD matrix S(P) = P Pᵀ + 3I that depends on a requires-grad P."""
    p = randn(4, 4).requires_grad_()
    b = randn(3, 4).requires_grad_()

    def solve(p, b):
        return cg(Dense(p @ p.T + 3 * torch.eye(4, dtype=F64)), b, rtol=1e-14).solution

    torch.autograd.gradcheck(solve, (p, b))
    x = solve(p, b)
    assert type(x.grad_fn).__name__ == "_ImplicitCGBackward"
    # and it equals the gradient of the dense solve
    g = randn(3, 4)
    ga = torch.autograd.grad((solve(p, b) * g).sum(), (p, b))
    S = p @ p.T + 3 * torch.eye(4, dtype=F64)
    gd = torch.autograd.grad((torch.linalg.solve(S, b.T).T * g).sum(), (p, b))
    for a, ref in zip(ga, gd, strict=True):
        assert _rel_err(a, ref) < 1e-9
