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
    _raises(ValueError, "factor must be an int >= 1, got", lambda: Decimation(factor, (8, 8)))


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
    _raises(ValueError, r"d of shape \(3, 4\) does not broadcast to \(3, 5\)",
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
    _raises(ValueError, r"mask of shape \(3, 4\) does not broadcast to \(3, 5\)",
            lambda: Mask(torch.ones(3, 4), in_shape=(3, 5)))


# ---------------------------------------------------------------------------------------------
# _finite_difference.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dims", "match"), [
    ((), r"dims must be non-empty sample axes in \[-2, 2\), got \(\)"),
    ((2,), r"dims\[0\] must be an int in \[-2, 1\], got 2; dims are sample axes in \[-2, 2\)"),
    ((-3,), r"dims\[0\] must be an int in \[-2, 1\], got -3"),
    ((0, 5), r"dims\[1\] must be an int in \[-2, 1\], got 5")])
def test_finite_difference_dims_out_of_range(dims, match):
    _raises(ValueError, match, lambda: FiniteDifference((4, 4), dims=dims))


def test_finite_difference_dims_distinct():
    _raises(ValueError, r"dims must be distinct, got \(-2, -2\)",
            lambda: FiniteDifference((4, 4), dims=(0, -2)))


def test_finite_difference_boundary():
    _raises(ValueError, r"boundary must be one of \('neumann', 'circular'\), got 'periodic'",
            lambda: FiniteDifference((4, 4), boundary="periodic"))


@pytest.mark.parametrize(("spacing", "match"), [
    (0.0, "spacing must be > 0, got 0.0; give one positive number or one per axis in dims"),
    (-1.0, "spacing must be > 0"), (math.inf, "spacing must be finite, got inf"),
    (math.nan, "spacing must be finite, got nan"),
    ((1.0,), r"spacing must be positive, one per axis in dims \(2\), got \(1.0,\)"),
    ((1.0, 2.0, 3.0), "spacing must be positive, one per axis in dims"),
    ((1.0, -1.0), r"spacing\[1\] must be > 0, got -1.0"),
    ((1.0, math.nan), r"spacing\[1\] must be finite, got nan")])
def test_finite_difference_spacing(spacing, match):
    _raises(ValueError, match, lambda: FiniteDifference((4, 4), spacing=spacing))


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
    _raises(ValueError, r"psf dims \(3,\) do not broadcast to the sample dims \(2,\)",
            lambda: Convolution(psf(3, 3, 3), (2, 8, 8)))


def test_fourier_sampling_errors():
    _raises(ValueError, r"mask must end with the image shape \(4, 4\), got \(4,\)",
            lambda: FourierSampling(torch.ones(4), (4, 4)))
    _raises(ValueError, r"mask of shape \(3, 4\) does not broadcast to \(4, 4\)",
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
    _raises(ValueError, r"batch_ndim must be an int in \[0, 1\], got 2; the leading batch dims "
                        r"of x of shape \(2, 3\)", lambda: Jacobian(torch.sin, x, batch_ndim=2))
    _raises(ValueError, r"batch_ndim must be an int in \[0, 1\]", lambda: Jacobian(torch.sin, x,
                                                                                   batch_ndim=-1))
    _raises(TypeError, r"batch_ndim must be an int in \[0, 1\], got True",
            lambda: Jacobian(torch.sin, x, batch_ndim=True))
    _raises(TypeError, r"batch_ndim must be an int in \[0, 1\], got 1.0",
            lambda: Jacobian(torch.sin, x, batch_ndim=1.0))
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


# ---------------------------------------------------------------------------------------------
# non-finite operator tensors, shapes that contradict out_shape, empty batches (issue 13)
# ---------------------------------------------------------------------------------------------
def _with(t: torch.Tensor, value: float, index=(0,)) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[index] = value
    return t


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("make", [
    lambda v: Convolution(_with(psf(3, 3), v, 4), (8, 8)),
    lambda v: Convolution(_with(psf(2, 1, 3, 3), v, 10), (1, 8, 8), padding="zeros"),
    lambda v: Convolution(_with(randn(3, 3, dtype=torch.complex128), v), (8, 8), "valid"),
    lambda v: FourierMultiplier(_with(torch.ones(4, 4), v), (4, 4), real_kernel=True),
    lambda v: Diagonal(_with(randn(3, 4), v)),
    lambda v: Dense(_with(randn(3, 2), v)),
], ids=["psf", "psf_per_sample", "psf_complex", "symbol", "diagonal", "dense"])
def test_non_finite_operator_tensor_is_rejected_at_construction(make, bad):
    # used to give NaN outputs without an error
    _raises(ValueError, r"(psf|symbol|d|matrix) contains 1 non-finite value \(NaN or inf\) out of",
            lambda: make(bad))


def test_non_finite_psf_assigned_later_is_rejected():
    A = Convolution(psf(3, 3), (8, 8))
    with pytest.raises(ValueError, match="psf contains 1 non-finite value"):
        A.psf = _with(psf(3, 3), math.nan)


def test_psf_that_requires_grad_is_checked_without_error():
    p = psf(3, 3).requires_grad_()
    A = Convolution(p, (6, 6))
    A(randn(6, 6)).sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_sensor_coordinates(bad):
    pts = torch.tensor([[1.0, 2.0], [3.0, 4.5]], dtype=F64)
    _raises(ValueError, r"points contains 1 non-finite value .*every sensor needs finite",
            lambda: PointSampling(_with(pts, bad, 3), (8, 8)))
    _raises(ValueError, r"points contains 1 non-finite",
            lambda: PointSampling(_with(pts / 10, bad, 0), (8, 8), extent=((0, 1), (0, 1))))


def test_point_sampling_extent_errors():
    pts = torch.tensor([[0.5, 0.5]], dtype=F64)
    _raises(ValueError, r"extent\[0\]\[1\] must be finite, got nan; extent is \(\(row_first, "
                        r"row_last\), \(col_first, col_last\)\) of finite numbers",
            lambda: PointSampling(pts, (4, 4), extent=((0, math.nan), (0, 1))))
    _raises(ValueError, r"extent\[1\]\[0\] must be finite, got -inf",
            lambda: PointSampling(pts, (4, 4), extent=((0, 1), (-math.inf, 1))))
    _raises(TypeError, r"extent must be \(\(row_first, row_last\), \(col_first, col_last\)\)",
            lambda: PointSampling(pts, (4, 4), extent=(0, 1)))
    _raises(TypeError, r"extent must be \(\(row_first", lambda: PointSampling(
        pts, (4, 4), extent=((0, 1, 2), (0, 1))))
    _raises(TypeError, r"extent\[0\]\[0\] must be a real number, got str 'a'",
            lambda: PointSampling(pts, (4, 4), extent=(("a", 1), (0, 1))))
    _raises(TypeError, r"extent\[1\]\[1\] must be a real number, got bool",
            lambda: PointSampling(pts, (4, 4), extent=((0, 1), (0, True))))
    _raises(TypeError, r"extent\[0\]\[1\] must be a real number, got str '1'",
            lambda: PointSampling(pts, (4, 4), extent=((0, "1"), (0, 1))))


@pytest.mark.parametrize("c", [math.nan, math.inf, complex(1, math.nan)])
def test_non_finite_scale(c):
    _raises(ValueError, "the scale must be finite", lambda: c * Identity((3,)))
    _raises(ValueError, "the scale contains 1 non-finite value",
            lambda: torch.tensor([1.0, 2.0, c]) * Diagonal(randn(3), (3,)))


def test_division_by_zero():
    _raises(ValueError, "cannot divide Identity by zero", lambda: Identity((3,)) / 0)
    _raises(ValueError, "the scale contains 1 non-finite", lambda: Identity((3,))
            / torch.tensor([1.0, 0.0]))


def test_multichannel_psf_on_fewer_channels_is_rejected():
    # a 3-channel PSF on a 1-channel operator used to return (3, H, W) outputs although
    # out_shape was (1, H, W)
    _raises(ValueError, r"psf dims \(3,\) do not broadcast to the sample dims \(1,\) of in_shape "
                        r"\(1, 8, 8\) .*give in_shape \(3, 8, 8\)",
            lambda: Convolution(psf(3, 3, 3), (1, 8, 8)))
    _raises(ValueError, r"psf dims \(2, 3\) do not broadcast to the sample dims \(2, 1\)",
            lambda: Convolution(psf(2, 3, 3, 3), (2, 1, 8, 8)))
    # the accepted forms keep out_shape
    for p, shape in [(psf(1, 3, 3), (3, 8, 8)), (psf(3, 3, 3), (3, 8, 8)),
                     (psf(2, 1, 3, 3), (1, 8, 8)), (psf(3, 3), (2, 8, 8))]:
        A = Convolution(p, shape)
        y = A(randn(*A.batch_shape, *shape))
        assert y.shape == (*A.batch_shape, *A.out_shape)


@pytest.mark.parametrize("make, match", [
    (lambda: FourierMultiplier(torch.ones(3, 4, 4), (1, 4, 4)),
     r"symbol of shape \(3, 4, 4\) does not broadcast to \(1, 4, 4\)"),
    (lambda: Diagonal(randn(3, 4, 4), (1, 4, 4)),
     r"d of shape \(3, 4, 4\) does not broadcast to \(1, 4, 4\)"),
    (lambda: Mask(torch.ones(3, 4, 4), (1, 4, 4)),
     r"mask of shape \(3, 4, 4\) does not broadcast to \(1, 4, 4\)"),
    (lambda: FourierSampling(torch.ones(3, 4, 4), (1, 4, 4)),
     r"mask of shape \(3, 4, 4\) does not broadcast to \(1, 4, 4\)"),
])
def test_operator_tensor_larger_than_the_sample_is_rejected(make, match):
    _raises(ValueError, match, make)


def test_empty_batch_gives_empty_results_across_the_registry():
    """An empty batch returns an empty result of the right shape and dtype (no MKL error)."""
    from problems import OPERATOR_CASES

    for case in OPERATOR_CASES:
        A = case.factory(F64, "cpu")
        dt = torch.complex128 if case.flags.complex else F64
        bs = A.batch_shape
        x = torch.zeros(0, *bs, *A.in_shape, dtype=dt)
        y = torch.zeros(0, *bs, *A.out_shape, dtype=dt)
        if case.name == "jacobian_batch_ndim_1":  # takes exactly the batch of its point
            _raises(ValueError, "takes inputs with exactly the batch shape", lambda A=A, x=x: A(x))
            continue
        ref = A(torch.zeros(1, *bs, *A.in_shape, dtype=dt))
        out, back = A(x), A.adjoint(y)
        assert out.shape == (0, *bs, *A.out_shape) and out.dtype == ref.dtype, case.name
        assert back.shape == x.shape, case.name
        sol = A.solve_normal(x, 1.0)
        one = A.solve_normal(torch.zeros(1, *bs, *A.in_shape, dtype=dt), 1.0)
        assert sol.shape == x.shape and sol.dtype == one.dtype, case.name
        if case.flags.closed_opnorm:
            assert A.solve_normal(x, torch.ones(0, *bs, dtype=F64)).shape == x.shape


def test_empty_batch_in_the_solvers():
    from operators import cg, lsqr

    A = Convolution(psf(3, 3), (8, 8))
    res = cg(A.gram() + 1.0 * Identity((8, 8)), torch.zeros(0, 8, 8, dtype=F64))
    assert res.solution.shape == (0, 8, 8) and res.residual_norm.shape == (0,) and res.n_iter == 0
    res = lsqr(A, torch.zeros(2, 0, 8, 8, dtype=F64))
    assert res.solution.shape == (2, 0, 8, 8) and res.converged.shape == (2, 0)


@pytest.mark.parametrize("kw, exc, match", [
    ({"rtol": "1e-3"}, TypeError, "rtol must be a real number, got str"),
    ({"atol": math.nan}, ValueError, "atol must be finite, got nan"),
])
def test_cg_option_types(kw, exc, match):
    from operators import cg

    _raises(exc, match, lambda: cg(Identity((3,)), randn(3), **kw))


@pytest.mark.parametrize("kw, exc, match", [
    ({"damp": math.inf}, ValueError, "damp must be finite"),
    ({"atol": "x"}, TypeError, "atol must be a real number"),
])
def test_lsqr_option_types(kw, exc, match):
    from operators import lsqr

    _raises(exc, match, lambda: lsqr(Identity((3,)), randn(3), **kw))


def test_power_method_tol_type():
    from operators import power_method

    _raises(TypeError, "tol must be a real number", lambda: power_method(Identity((3,)),
                                                                        tol="small"))
    _raises(ValueError, "tol must be finite", lambda: power_method(Identity((3,)), tol=math.inf))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: FiniteDifference((4, 4), spacing="ab"), TypeError,
     "spacing must be a real number, got str 'ab'; give one positive number or one per axis"),
    (lambda: FiniteDifference((4, 4), spacing=True), TypeError,
     "spacing must be a real number, got bool"),
    (lambda: FiniteDifference((4, 4), spacing=(1.0, "2")), TypeError,
     r"spacing\[1\] must be a real number, got str"),
    (lambda: FiniteDifference((4, 4), spacing=np.float32(0.5)).spacing, None, None),
    (lambda: FiniteDifference((4, 4), dims="a"), TypeError,
     "dims must be a sequence of ints"),
    (lambda: FiniteDifference((4, 4), dims=-1), TypeError, "dims must be a sequence of ints"),
    (lambda: FiniteDifference((4, 4), dims=1.0), TypeError, "dims must be a sequence of ints"),
    (lambda: FiniteDifference((4, 4), dims=(-1.0,)), TypeError,
     r"dims\[0\] must be an int in \[-2, 1\], got -1.0"),
    (lambda: FiniteDifference((4, 4), dims=(True,)), TypeError, r"dims\[0\] must be an int"),
    (lambda: FiniteDifference((4, 4), dims=(np.int64(-1),)).in_shape, None, None),
    # an empty PSF used to be accepted (0 x 3 kernel), a zero-size batch of PSFs crashed in MKL
    (lambda: Convolution(torch.ones(0, 3), (8, 8)), ValueError, r"psf is empty \(shape \(0, 3\)\)"),
    (lambda: Convolution(torch.ones(0, 3, 3), (8, 8)), ValueError, "psf is empty"),
    (lambda: FourierMultiplier(torch.ones(0, 4, 4), (4, 4)), ValueError, "symbol is empty"),
])
def test_operator_option_types_and_empty_tensors(make, exc, match):
    if exc is None:
        make()  # accepted
        return
    _raises(exc, match, make)
