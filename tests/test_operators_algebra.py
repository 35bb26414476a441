"""Operator algebra against dense matrices: compositions, sums, scalings, adjoints and Gram rules.

Every identity is checked on the dense matrices built by ``problems.dense_matrix``; the structure
rules (which class ``gram()`` returns, which symbols propagate) are checked explicitly, because a
silently lost rule only shows up as a slower CG fallback.
"""

from __future__ import annotations

import pytest
import torch
from problems import OPERATOR_CASES, case_ids, dense_matrix, psf, randn

import operators as op
from operators import (
    Adjoint,
    BlockDiagonal,
    Composition,
    Convolution,
    Dense,
    Diagonal,
    FiniteDifference,
    FourierMultiplier,
    FourierSampling,
    Identity,
    Mask,
    Scaled,
    Stack,
    Sum,
)

F64 = torch.float64


def _close(a, b, tol=1e-12):
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    dt = torch.promote_types(a.dtype, b.dtype)
    torch.testing.assert_close(a.to(dt), b.to(dt), rtol=tol, atol=tol)


@pytest.fixture
def ops3():
    """Three real operators on (5, 6) images: zero-padded blur, diagonal, Neumann gradient."""
    conv = Convolution(psf(3, 3), (5, 6), padding="zeros")
    diag = Diagonal(randn(5, 6))
    grad = FiniteDifference((5, 6))
    return conv, diag, grad


# ---------------------------------------------------------------------------------------------
# algebra on dense matrices
# ---------------------------------------------------------------------------------------------
def test_composition_and_its_adjoint(ops3):
    conv, diag, grad = ops3
    A, B = grad, conv @ diag
    AB = A @ B
    _close(dense_matrix(AB), dense_matrix(A) @ dense_matrix(conv) @ dense_matrix(diag))
    _close(dense_matrix(AB.H), dense_matrix(B).mH @ dense_matrix(A).mH)
    _close(dense_matrix(AB.H), dense_matrix(B.H @ A.H))
    assert isinstance(AB, Composition) and len(AB.ops) == 3  # flattened


def test_apply_with_matmul_equals_call(ops3):
    conv, _, _ = ops3
    x = randn(2, 5, 6)
    _close(conv @ x, conv(x))


def test_sum_difference_and_negation(ops3):
    conv, diag, _ = ops3
    _close(dense_matrix(conv + diag), dense_matrix(conv) + dense_matrix(diag))
    _close(dense_matrix((conv + diag).H), dense_matrix(conv).mH + dense_matrix(diag).mH)
    _close(dense_matrix(conv - diag), dense_matrix(conv) - dense_matrix(diag))
    _close(dense_matrix(-conv), -dense_matrix(conv))
    s = conv + diag + Identity((5, 6))
    assert isinstance(s, Sum) and len(s.ops) == 3  # flattened
    _close(dense_matrix(s), dense_matrix(conv) + dense_matrix(diag) + torch.eye(30, dtype=F64))


def test_complex_scaling_conjugates_in_the_adjoint(ops3):
    conv, _, _ = ops3
    c = 0.5 - 1.25j  # exactly representable in single precision
    D = dense_matrix(conv)
    _close(dense_matrix(c * conv), c * D)
    _close(dense_matrix(conv * c), c * D)
    _close(dense_matrix((c * conv).H), complex(c).conjugate() * D.mH)
    _close(dense_matrix(conv / 4), D / 4)


def test_python_scalar_scale_keeps_the_data_precision(ops3):
    conv, _, _ = ops3
    x = randn(5, 6)
    torch.testing.assert_close((0.1 * conv)(x), 0.1 * conv(x), rtol=1e-15, atol=0)
    torch.testing.assert_close((0.7 * Identity((5, 6)))(x), 0.7 * x, rtol=1e-15, atol=0)
    torch.testing.assert_close(((0.1 + 0.3j) * conv)(x), (0.1 + 0.3j) * conv(x), rtol=1e-15,
                               atol=0)
    # and never upcasts single-precision data
    x32 = x.float()
    assert (0.7 * Identity((5, 6)))(x32).dtype == torch.float32
    assert ((0.1 + 0.3j) * Convolution(psf(3, 3, dtype=torch.float32), (5, 6)))(x32).dtype == \
        torch.complex64


def test_scaled_python_number_does_not_pin_the_device(ops3):
    """``2.0 * A`` stores a 0-d CPU scale, which combines with tensors on any device."""
    conv = Convolution(torch.ones(3, 3, device="meta"), (5, 6))
    assert (2.0 * conv)._device() == torch.device("meta")
    assert (conv - 0.5 * Identity((5, 6)))._device() == torch.device("meta")
    assert (0.5 * Identity((5, 6)))._device() is None


def test_per_sample_scaling(ops3):
    conv, _, _ = ops3
    c = torch.tensor([0.5, -2.0, 3.0], dtype=F64)
    A = c * conv
    assert A.batch_shape == (3,)
    D = dense_matrix(conv)
    _close(dense_matrix(A), c[:, None, None] * D)
    _close(dense_matrix(A.H), c[:, None, None] * D.mH)
    _close(dense_matrix(A.gram()), (c ** 2)[:, None, None] * (D.mH @ D))
    x = randn(3, 5, 6)
    _close(A(x), c[:, None, None] * conv(x))


def test_per_sample_complex_scaling_adjoint():
    conv = Convolution(psf(3, 3), (4, 4))
    c = torch.tensor([1.0 + 2.0j, -0.5j], dtype=torch.complex128)
    D = dense_matrix(conv)
    _close(dense_matrix((c * conv).H), c.conj()[:, None, None] * D.mH)


def test_adjoint_of_adjoint_is_the_operator(ops3):
    conv, diag, grad = ops3
    for A in (conv, diag, grad, conv @ diag, 2.0 * conv, conv + diag, Stack([conv, grad])):
        assert A.H.H is A
    assert isinstance(conv.H, Adjoint)
    m = Mask(torch.tensor([1.0, 0.0, 1.0], dtype=F64))
    assert m.H is m
    eye = Identity((3,))
    assert eye.H is eye


def test_transpose_of_real_operator_is_its_adjoint(ops3):
    conv, _, grad = ops3
    A = grad @ conv
    _close(dense_matrix(A.T), dense_matrix(A).T)


def test_per_sample_batch_shapes_broadcast():
    a = Diagonal(randn(3, 1, 4, 5), in_shape=(4, 5))  # batch (3, 1)
    b = Convolution(psf(2, 3, 3), (4, 5))  # one PSF per sample: batch (2,)
    assert a.batch_shape == (3, 1) and b.batch_shape == (2,)
    assert (a + b).batch_shape == (3, 2)
    assert (a @ b).batch_shape == (3, 2)
    x = randn(3, 2, 4, 5)
    _close((a + b)(x), a(x) + b(x))
    _close((a @ b)(x), a(b(x)))


# ---------------------------------------------------------------------------------------------
# Gram operators
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", OPERATOR_CASES, ids=case_ids(OPERATOR_CASES))
def test_gram_equals_dense_normal_matrix(case):
    A = case.factory(F64, "cpu")
    D = dense_matrix(A)
    G = dense_matrix(A.gram(), F64)
    _close(G, D.mH @ D, tol=1e-11)


def test_gram_structure_rules():
    conv_c = Convolution(psf(3, 3), (6, 6))
    conv_z = Convolution(psf(3, 3), (6, 6), padding="zeros")
    mask = Mask((torch.rand(6, 6) > 0.5).to(F64))
    d = randn(6, 6, dtype=torch.complex128)
    fs_mask = (torch.rand(6, 6) > 0.5).to(F64)
    fd_c = FiniteDifference((6, 6), boundary="circular")
    fd_n = FiniteDifference((6, 6))

    assert isinstance(conv_c.gram(), FourierMultiplier)
    _close(conv_c.gram().symbol, conv_c.otf.abs() ** 2)
    assert isinstance(conv_z.gram(), Composition)  # no closed form with zero padding
    assert mask.gram() is mask
    g = Diagonal(d).gram()
    assert isinstance(g, Diagonal)
    _close(g.d, d.abs() ** 2)
    assert isinstance(Dense(randn(4, 3)).gram(), Dense)
    ident = Identity((6, 6))
    assert ident.gram() is ident
    g = FourierSampling(fs_mask, (6, 6)).gram()
    assert isinstance(g, FourierMultiplier)
    _close(g.symbol, fs_mask)
    assert fd_c.gram()._fourier_symbol() is not None
    assert fd_n.gram()._fourier_symbol() is None
    s = Stack([conv_c, fd_c]).gram()
    assert isinstance(s, Sum) and len(s.ops) == 2
    assert s._fourier_symbol(torch.zeros((), dtype=F64)) is not None
    b = BlockDiagonal([conv_c, mask]).gram()
    assert isinstance(b, BlockDiagonal) and b.ops[1] is mask
    sc = (3.0 * conv_c).gram()
    assert isinstance(sc, Scaled) and float(sc.c) == 9.0
    assert isinstance(sc.op, FourierMultiplier)


def test_fourier_symbols_propagate_through_the_algebra():
    conv = Convolution(psf(3, 3), (6, 6))
    otf = conv.otf
    like = torch.zeros((), dtype=F64)
    s, real = (conv + 0.5 * Identity((6, 6)))._fourier_symbol(like)
    _close(s, otf + 0.5)
    assert real
    s, _ = conv.H._fourier_symbol(like)
    _close(s, otf.conj())
    s, _ = (conv @ conv)._fourier_symbol(like)
    _close(s, otf * otf)
    s, real = ((1j) * conv)._fourier_symbol(like)
    _close(s, 1j * otf)
    assert not real  # a complex scale makes the kernel complex
    assert (conv + Diagonal(randn(6, 6)))._fourier_symbol(like) is None


def test_diagonal_symbols_propagate_through_the_algebra():
    d1, d2 = randn(4, 5), randn(4, 5)
    A, B = Diagonal(d1), Diagonal(d2)
    _close((A + B)._diagonal_symbol(), d1 + d2)
    _close((A @ B)._diagonal_symbol(), d1 * d2)
    _close((2.0 * A)._diagonal_symbol(), 2 * d1)
    assert (A @ Convolution(psf(3, 3), (4, 5)))._diagonal_symbol() is None


def test_compose_simplifications(ops3):
    conv, diag, grad = ops3
    eye = Identity((5, 6))
    assert conv @ eye is conv
    assert eye @ conv is conv
    A = (2.0 * conv) @ (3.0 * diag)
    assert isinstance(A, Scaled) and float(A.c) == 6.0
    assert isinstance(A.op, Composition) and list(A.op.ops) == [conv, diag]
    _close(dense_matrix(A), 6.0 * dense_matrix(conv) @ dense_matrix(diag))
    nested = grad @ (conv @ diag)
    assert [type(o) for o in nested.ops] == [FiniteDifference, Convolution, Diagonal]


def test_operators_are_modules_with_state(ops3):
    conv, diag, grad = ops3
    A = Stack([conv, grad]) + Stack([diag, grad])
    names = {n for n, _ in A.named_buffers()}
    assert any(n.endswith("psf") for n in names) and any(n.endswith(".d") for n in names)
    assert isinstance(A, torch.nn.Module)
    assert isinstance(op.LinearOperator, type)


# ---------------------------------------------------------------------------------------------
# shape errors
# ---------------------------------------------------------------------------------------------
def test_composition_shape_mismatch(ops3):
    conv, _, grad = ops3
    with pytest.raises(ValueError,
                       match=r"cannot compose Convolution \(in_shape \(5, 6\)\) with FiniteDiff"):
        conv @ grad  # grad's output (2, 5, 6) is not conv's input (5, 6)
    with pytest.raises(ValueError, match=r"cannot compose .*the shapes must match"):
        Composition([conv, grad])
    with pytest.raises(ValueError, match="at least two operators, got 1"):
        Composition([conv])
    with pytest.raises(ValueError, match="cannot compose"):
        Convolution(psf(3, 3), (4, 4)) @ Identity((4, 5))


def test_sum_shape_mismatch(ops3):
    conv, _, grad = ops3
    with pytest.raises(ValueError, match=r"cannot add operators of shapes \(5, 6\)->\(5, 6\)"):
        conv + grad
    with pytest.raises(ValueError, match="cannot add"):
        conv - Identity((6, 5))
    with pytest.raises(ValueError, match="Sum needs at least two operators, got 1"):
        Sum([conv])


def test_composition_rules_are_owned_by_the_outer_operator():
    """The generic algebra names no concrete operator; Decimation registers its closed form
    (decimation after a circular blur) through the outer-factor hooks, and a new operator can
    register its own the same way."""
    import inspect

    import torch

    from operators import Convolution, Decimation, Identity, LinearOperator, _algebra

    src = inspect.getsource(_algebra)
    assert "Decimation" not in src and "_decimation" not in src

    class Halve(LinearOperator):  # x -> x / 2, with a registered closed form for any inner op
        calls = 0

        def forward(self, x):
            return x / 2

        def adjoint(self, y):
            return y / 2

        def _normal_solver_outer(self, inner, like, cache):
            if not isinstance(inner, Halve):
                return None

            def solve(b, rho):
                Halve.calls += 1
                return b / (1 / 16 + rho)  # (A^H A + rho I)^{-1} b for A = x / 4

            return solve

    shape = (1, 8, 8)
    op = Halve(shape, shape) @ Halve(shape, shape)
    b = torch.rand(2, *shape)
    torch.testing.assert_close(op.solve_normal(b, 0.5), b / (1 / 16 + 0.5))
    assert Halve.calls == 1
    # the same hook answers "is there a closed form?" (one dispatch for both)
    assert op._closed_form_normal(b) and Halve.calls == 1
    assert not (Halve(shape, shape) @ (0.5 * Identity(shape)))._closed_form_normal(b)
    # an inner operator the rule does not know: the generic path (CG), same answer
    op2 = Halve(shape, shape) @ (0.5 * Identity(shape))
    torch.testing.assert_close(op2.solve_normal(b, 0.5), b / (1 / 16 + 0.5))
    assert Halve.calls == 1
    # Decimation's rule still gives the closed form, equal to CG
    psf = torch.rand(3, 3)
    psf = psf / psf.sum()
    A = Decimation(2, shape) @ Convolution(psf, shape)
    x = A.solve_normal(b, 1e-2)
    r = A.H(A(x)) + 1e-2 * x - b
    assert float(r.norm() / b.norm()) < 1e-5
