"""Every ``raise`` in ``operators/*.py`` has a test here, with the error type and message.

Tested elsewhere: the ``rho`` checks of ``LinearOperator.solve_normal`` (``_base.py``) in
``test_operators_solve.py``; the composition and sum shape checks (``_algebra.py``) in
``test_operators_algebra.py``; the solver options (``solvers/*.py``) in
``test_operators_solvers.py``; the ``AssertionError`` of ``operators.testing`` in
``test_operators_adjoint.py``; ``_cli.py`` in ``test_cli.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import psf, randn

from operators import (
    BlockDiagonal,
    Convolution,
    Decimation,
    Dense,
    Diagonal,
    FiniteDifference,
    FourierMultiplier,
    FourierSampling,
    Identity,
    Jacobian,
    Mask,
    PointSampling,
    Scaled,
    Stack,
)
from operators.testing import check_adjoint, check_adjoint_autograd

F64 = torch.float64


def _raises(exc, match, fn):
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------------------------
# _base.py: shapes, inputs, devices, dtypes, algebra
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [None, 3.5j, ("a", 2), [None]])
def test_shape_not_a_sequence_of_ints(shape):
    _raises(TypeError, "shape must be a sequence of ints", lambda: Identity(shape))


@pytest.mark.parametrize("shape", [(3, 0), (-1,), (2.5, 2)])
def test_shape_not_positive_integers(shape):
    _raises(ValueError, r"shape must contain positive integers, got \(", lambda: Identity(shape))


def test_per_sample_batch_shapes_that_do_not_broadcast():
    A = Diagonal(randn(2, 3), in_shape=(3,)) + Diagonal(randn(4, 3), in_shape=(3,))
    _raises(ValueError, r"per-sample batch shapes \(\(2,\), \(4,\)\) do not broadcast",
            lambda: A.batch_shape)
    _raises(ValueError, "do not broadcast", lambda: A(randn(2, 3)))


@pytest.mark.parametrize("x", [np.ones((4, 4)), [[1.0]], 1.0])
def test_input_not_a_tensor(x):
    A = Convolution(psf(3, 3), (4, 4))
    _raises(TypeError, r"Convolution.forward expects a torch.Tensor, got", lambda: A(x))
    _raises(TypeError, r"Convolution.adjoint expects a torch.Tensor, got", lambda: A.adjoint(x))


def test_input_with_wrong_sample_shape():
    A = Convolution(psf(3, 3), (4, 5), padding="valid")
    _raises(ValueError, r"Convolution.forward expects a tensor of shape \(\*batch, 4, 5\), got "
                        r"\(2, 5, 4\)", lambda: A(randn(2, 5, 4)))
    _raises(ValueError, r"Convolution.adjoint expects a tensor of shape \(\*batch, 2, 3\)",
            lambda: A.adjoint(randn(4, 5)))
    _raises(ValueError, r"expects a tensor of shape", lambda: A(randn(5)))  # too few dims


def test_input_batch_does_not_broadcast_against_per_sample_operator():
    A = Convolution(psf(2, 3, 3), (4, 4))  # batch_shape (2,)
    _raises(ValueError, r"the input's batch shape \(3,\) does not broadcast against the "
                        r"operator's per-sample batch shape \(2,\)", lambda: A(randn(3, 4, 4)))


def test_device_mismatch_is_reported():
    """Simulated with the ``meta`` device: no GPU is needed."""
    on_meta = Diagonal(torch.ones(3, device="meta"))
    _raises(ValueError, "input is on cpu but the operator's tensors are on meta",
            lambda: on_meta(torch.ones(3)))
    _raises(ValueError, "input is on cpu but the operator's tensors are on meta",
            lambda: on_meta.adjoint(torch.ones(3)))
    on_cpu = Convolution(psf(3, 3), (4, 4))
    _raises(ValueError, r"input is on meta .* move one of them \(e.g. op.to\(x.device\)\)",
            lambda: on_cpu(torch.ones(4, 4, device="meta")))
    nested = Stack([Identity((4, 4)), Convolution(torch.ones(3, 3, device="meta"), (4, 4))])
    _raises(ValueError, "Stack: input is on cpu but the operator's tensors are on meta",
            lambda: nested(torch.ones(4, 4)))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_input(dtype):
    A = Convolution(psf(3, 3), (4, 4))
    _raises(TypeError, rf"Convolution.forward expects a floating-point or complex tensor, got "
                       rf"dtype {dtype}", lambda: A(torch.ones(4, 4, dtype=dtype)))


@pytest.mark.parametrize(
    "make",
    [lambda: FourierSampling(torch.ones(4, 4), (4, 4)),
     lambda: Diagonal(randn(4, dtype=torch.complex128)),
     lambda: Convolution(randn(3, 3, dtype=torch.complex128), (4, 4)),
     lambda: 1j * Identity((3,)),
     lambda: Stack([Identity((4, 4)), FourierSampling(torch.ones(4, 4), (4, 4))])],
    ids=["fourier_sampling", "complex_diagonal", "complex_psf", "complex_scale", "stack"])
def test_transpose_of_complex_operator(make):
    _raises(TypeError, r"is complex; use .H \(the conjugate transpose\) instead of .T",
            lambda: make().T)


def test_transpose_of_real_operator_is_allowed():
    A = Convolution(psf(3, 3), (4, 4))
    x = randn(4, 4)
    torch.testing.assert_close(A.T(x), A.adjoint(x))


def test_multiplying_two_operators():
    A = Identity((3,))
    _raises(TypeError, r"use A @ B to compose two operators", lambda: A * A)
    _raises(TypeError, "can't multiply sequence", lambda: A * "2")
    _raises(TypeError, "unsupported operand", lambda: A + 1.0)
    _raises(TypeError, "unsupported operand", lambda: A * True)


# ---------------------------------------------------------------------------------------------
# _algebra.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("c", ["2", None, [1.0], True])
def test_scaled_with_a_non_number(c):
    _raises(TypeError, "the scale must be a number or a tensor, got",
            lambda: Scaled(c, Identity((3,))))


# ---------------------------------------------------------------------------------------------
# _decimation.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("factor", [0, -2, 2.0, True, "2"])
def test_decimation_factor(factor):
    _raises(ValueError, "factor must be a positive int, got", lambda: Decimation(factor, (8, 8)))


def test_decimation_needs_an_image():
    _raises(ValueError, r"in_shape must have at least two dims \(..., H, W\), got \(8,\)",
            lambda: Decimation(2, (8,)))


@pytest.mark.parametrize(("factor", "shape"), [(2, (7, 8)), (3, (9, 8)), (4, (2, 8, 6))])
def test_decimation_image_not_divisible(factor, shape):
    _raises(ValueError, rf"the image size .* must be divisible by the decimation factor {factor}",
            lambda: Decimation(factor, shape))


# ---------------------------------------------------------------------------------------------
# _dense.py
# ---------------------------------------------------------------------------------------------
def test_dense_errors():
    _raises(TypeError, "matrix must be a torch.Tensor, got list", lambda: Dense([[1.0]]))
    _raises(TypeError, "matrix must be floating-point or complex, got torch.int64",
            lambda: Dense(torch.ones(2, 2, dtype=torch.int64)))
    _raises(ValueError, r"matrix must have shape \(\*batch, m, n\), got \(3,\)",
            lambda: Dense(torch.ones(3)))


# ---------------------------------------------------------------------------------------------
# _diagonal.py
# ---------------------------------------------------------------------------------------------
def test_diagonal_errors():
    _raises(TypeError, "d must be a torch.Tensor, got list", lambda: Diagonal([1.0, 2.0]))
    _raises(TypeError, "d must be a floating-point or complex tensor, got torch.int64",
            lambda: Diagonal(torch.ones(3, dtype=torch.int64)))
    _raises(ValueError, "a 0-d d needs an explicit in_shape", lambda: Diagonal(torch.tensor(2.0)))
    _raises(ValueError, r"d of shape \(3, 4\) does not broadcast against in_shape \(3, 5\)",
            lambda: Diagonal(randn(3, 4), in_shape=(3, 5)))
    # a 0-d weight with an explicit shape is fine
    torch.testing.assert_close(Diagonal(torch.tensor(2.0), (3,))(torch.ones(3)),
                               torch.full((3,), 2.0))


def test_mask_errors():
    _raises(TypeError, "mask must be a torch.Tensor, got list", lambda: Mask([1.0, 0.0]))
    _raises(TypeError, r"mask must be real \(0/1 values\), got torch.complex64",
            lambda: Mask(torch.ones(3, dtype=torch.complex64)))
    _raises(ValueError, "mask must contain only 0 and 1; use Diagonal for general weights",
            lambda: Mask(torch.tensor([1.0, 0.5])))
    _raises(ValueError, "mask must contain only 0 and 1", lambda: Mask(torch.tensor([2, 0])))
    _raises(ValueError, "a 0-d mask needs an explicit in_shape", lambda: Mask(torch.tensor(1.0)))
    _raises(ValueError, r"mask of shape \(3, 4\) does not broadcast against in_shape \(3, 5\)",
            lambda: Mask(torch.ones(3, 4), in_shape=(3, 5)))


# ---------------------------------------------------------------------------------------------
# _finite_difference.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dims", [(), (2,), (-3,), (0, 5)])
def test_finite_difference_dims_out_of_range(dims):
    _raises(ValueError, r"dims must be non-empty sample axes in \[-2, 2\)",
            lambda: FiniteDifference((4, 4), dims=dims))


def test_finite_difference_dims_distinct():
    _raises(ValueError, r"dims must be distinct, got \(-2, -2\)",
            lambda: FiniteDifference((4, 4), dims=(0, -2)))


def test_finite_difference_boundary():
    _raises(ValueError, r"boundary must be one of \('neumann', 'circular'\), got 'periodic'",
            lambda: FiniteDifference((4, 4), boundary="periodic"))


@pytest.mark.parametrize("spacing", [0.0, -1.0, math.inf, (1.0,), (1.0, 2.0, 3.0), (1.0, -1.0)])
def test_finite_difference_spacing(spacing):
    _raises(ValueError, "spacing must be positive, one per axis in dims",
            lambda: FiniteDifference((4, 4), spacing=spacing))


# ---------------------------------------------------------------------------------------------
# _fourier.py
# ---------------------------------------------------------------------------------------------
def test_fourier_multiplier_errors():
    _raises(TypeError, "symbol must be a tensor, got float", lambda: FourierMultiplier(1.0, (4, 4)))
    _raises(ValueError, r"symbol must end with the image shape \(4, 4\), got \(4, 5\)",
            lambda: FourierMultiplier(torch.ones(4, 5), (4, 4)))
    _raises(ValueError, "symbol must end with the image shape", lambda: FourierMultiplier(
        torch.ones(4), (4,)))


def test_convolution_psf_type():
    _raises(TypeError, "psf must be a torch.Tensor, got ndarray",
            lambda: Convolution(np.ones((3, 3)), (8, 8)))
    _raises(TypeError, "psf must be a floating-point or complex tensor, got torch.int64",
            lambda: Convolution(torch.ones(3, 3, dtype=torch.int64), (8, 8)))


@pytest.mark.parametrize("padding", ["reflect", "same", "circ", ""])
def test_convolution_unknown_padding(padding):
    _raises(ValueError, r"padding must be one of \('circular', 'zeros', 'valid'\), got",
            lambda: Convolution(psf(3, 3), (8, 8), padding=padding))


def test_convolution_shapes():
    _raises(ValueError, r"in_shape must have at least two dims \(..., H, W\), got \(8,\)",
            lambda: Convolution(psf(3, 3), (8,)))
    _raises(ValueError, r"psf must have at least two dims \(..., h, w\), got shape \(3,\)",
            lambda: Convolution(torch.ones(3), (8, 8)))
    _raises(ValueError, r"psf of size \(9, 3\) is larger than the image \(8, 8\)",
            lambda: Convolution(psf(9, 3), (8, 8)))
    _raises(ValueError, r"psf of size \(3, 7\) is larger than the image \(8, 6\)",
            lambda: Convolution(psf(3, 7), (8, 6), padding="valid"))
    _raises(ValueError, r"psf dims \(3,\) do not broadcast against the sample dims \(2,\)",
            lambda: Convolution(psf(3, 3, 3), (2, 8, 8)))


def test_fourier_sampling_errors():
    _raises(ValueError, r"mask must end with the image shape \(4, 4\), got \(4,\)",
            lambda: FourierSampling(torch.ones(4), (4, 4)))
    _raises(ValueError, r"mask of shape \(3, 4\) does not broadcast against in_shape \(4, 4\)",
            lambda: FourierSampling(torch.ones(3, 4), (4, 4)))
    _raises(ValueError, "mask must contain only 0 and 1",
            lambda: FourierSampling(torch.full((4, 4), 0.5), (4, 4)))
    _raises(TypeError, "mask must be a torch.Tensor, got list",
            lambda: FourierSampling([[1.0]], (4, 4)))
    _raises(TypeError, "mask must be real", lambda: FourierSampling(
        torch.ones(4, 4, dtype=torch.complex64), (4, 4)))


# ---------------------------------------------------------------------------------------------
# _jacobian.py
# ---------------------------------------------------------------------------------------------
def test_jacobian_errors():
    x = randn(2, 3)
    _raises(TypeError, "f must be callable, got Tensor", lambda: Jacobian(x, x))
    _raises(TypeError, "x must be a floating-point or complex tensor",
            lambda: Jacobian(torch.sin, torch.ones(3, dtype=torch.int64)))
    _raises(TypeError, "x must be a floating-point or complex tensor",
            lambda: Jacobian(torch.sin, [1.0]))
    _raises(ValueError, r"batch_ndim must be in \[0, 1\] for x of shape \(2, 3\), got 2",
            lambda: Jacobian(torch.sin, x, batch_ndim=2))
    _raises(ValueError, r"batch_ndim must be in \[0, 1\]", lambda: Jacobian(torch.sin, x,
                                                                           batch_ndim=-1))
    _raises(ValueError, r"f must keep the 1 batch dims of x: x \(2, 3\) -> f\(x\) \(3,\)",
            lambda: Jacobian(lambda t: t.sum(0), x, batch_ndim=1))
    J = Jacobian(torch.sin, x, batch_ndim=1)
    _raises(ValueError, r"Jacobian with batch_ndim=1 takes inputs with exactly the batch shape of "
                        r"x, got \(4, 2, 3\)", lambda: J(randn(4, 2, 3)))


# ---------------------------------------------------------------------------------------------
# _sampling.py
# ---------------------------------------------------------------------------------------------
def test_point_sampling_errors():
    p = torch.tensor([[1.0, 1.0]], dtype=F64)
    _raises(TypeError, r"points must be a floating-point tensor of shape \(\*batch, P, 2\)",
            lambda: PointSampling(torch.ones(3, 2, dtype=torch.int64), (4, 4)))
    _raises(TypeError, "points must be a floating-point tensor",
            lambda: PointSampling([[1.0, 1.0]], (4, 4)))
    _raises(ValueError, r"points must have shape \(\*batch, P, 2\), got \(3, 3\)",
            lambda: PointSampling(torch.ones(3, 3), (4, 4)))
    _raises(ValueError, r"points must have shape \(\*batch, P, 2\), got \(2,\)",
            lambda: PointSampling(torch.ones(2), (4, 4)))
    _raises(ValueError, r"in_shape must end with a grid \(H, W\) of at least 2 x 2, got \(1, 4\)",
            lambda: PointSampling(p, (1, 4)))
    _raises(ValueError, "in_shape must end with a grid", lambda: PointSampling(p, (4,)))
    _raises(ValueError, "extent must have distinct first and last nodes",
            lambda: PointSampling(p, (4, 4), extent=((0.0, 0.0), (0.0, 1.0))))


@pytest.mark.parametrize("pt", [(-0.1, 1.0), (1.0, -0.5), (3.01, 0.0), (0.0, 4.5)])
def test_points_outside_the_grid(pt):
    p = torch.tensor([[1.0, 1.0], pt], dtype=F64)
    _raises(ValueError, r"all points must lie inside the grid \(rows in \[0, 3\], cols in \[0, 4\]",
            lambda: PointSampling(p, (4, 5)))


def test_points_outside_the_extent():
    p = torch.tensor([[0.5, 1.5]], dtype=F64)  # col 1.5 outside [-1, 1]
    _raises(ValueError, "all points must lie inside the grid",
            lambda: PointSampling(p, (4, 5), extent=((0.0, 1.0), (-1.0, 1.0))))
    # on the boundary is inside
    PointSampling(torch.tensor([[1.0, 1.0]], dtype=F64), (4, 5), extent=((0.0, 1.0), (-1.0, 1.0)))


# ---------------------------------------------------------------------------------------------
# _stack.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [Stack, BlockDiagonal])
def test_block_operators_need_operators(cls):
    _raises(TypeError, rf"{cls.__name__} needs a non-empty sequence of LinearOperator",
            lambda: cls([]))
    _raises(TypeError, rf"{cls.__name__} needs a non-empty sequence of LinearOperator",
            lambda: cls([Identity((2,)), torch.eye(2)]))


def test_stack_needs_equal_input_shapes():
    _raises(ValueError, r"all stacked operators need the same in_shape, got \(2,\) and \(3,\)",
            lambda: Stack([Identity((2,)), Identity((3,))]))


# ---------------------------------------------------------------------------------------------
# testing.py
# ---------------------------------------------------------------------------------------------
def test_checkers_need_an_operator():
    _raises(TypeError, "expected a LinearOperator, got Tensor", lambda: check_adjoint(randn(3, 3)))
    _raises(TypeError, "expected a LinearOperator, got builtin_function",
            lambda: check_adjoint_autograd(torch.sin))


def test_solve_normal_rejects_unknown_cg_options():
    import operators as op_

    A = op_.Identity((3,))
    with pytest.raises(TypeError, match=r"solve_normal got unknown options \['maxiter'\]"):
        A.solve_normal(torch.ones(3), 1.0, maxiter=5)
    # a known option is accepted (and ignored by the closed form)
    assert torch.allclose(A.solve_normal(torch.ones(3), 1.0, max_iter=5), torch.full((3,), 0.5))
