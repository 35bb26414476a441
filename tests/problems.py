"""Shared problems for the ``operators`` tests: a registry of operator factories and dense oracles.

``OPERATOR_CASES`` lists one :class:`OperatorCase` ``(name, factory, flags)`` per configuration of
every public concrete operator and composite. ``factory(dtype, device)`` builds the operator with
real floating ``dtype`` tensors (complex tensors use the matching complex dtype) on ``device``;
the random draws use torch's global generator, which ``conftest.py`` seeds before every test.

:func:`dense_matrix` builds the matrix of an operator column by column (per sample for operators
with a ``batch_shape``), the oracle of the algebra, ``gram``, ``solve_normal`` and ``opnorm``
tests.

For the tests of the scripts and examples that read the project's satellite images,
:data:`SATELLITE_DATA` is their folder (``shared/data/satellite`` beside the checkout) and
:data:`needs_satellite_data` the marker that skips such a test, with the path as reason, where
the data are not there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from torch import Tensor

import operators as op
from operators import LinearOperator

__all__ = [
    "Flags", "OperatorCase", "OPERATOR_CASES", "CASES_BY_NAME", "case_ids", "dense_matrix",
    "complex_dtype", "randn", "psf", "points", "bilinear_field", "SATELLITE_DATA",
    "needs_satellite_data",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype of the same precision as the real ``dtype``."""
    return {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(dtype, dtype)


def randn(*shape: int, dtype: torch.dtype = torch.float64, device="cpu") -> Tensor:
    """Standard normal draws (complex with unit-variance parts for complex dtypes)."""
    if dtype.is_complex:
        real = torch.empty((), dtype=dtype).real.dtype
        return torch.complex(torch.randn(shape, dtype=real),
                             torch.randn(shape, dtype=real)).to(device)
    return torch.randn(shape, dtype=dtype).to(device)


def psf(*shape: int, dtype: torch.dtype = torch.float64, device="cpu") -> Tensor:
    """A random positive PSF normalized to unit sum over its last two dims."""
    k = torch.rand(shape, dtype=dtype) + 0.1
    return (k / k.sum(dim=(-2, -1), keepdim=True)).to(device)


def points(*batch: int, n: int, h: int, w: int, dtype: torch.dtype = torch.float64,
           device="cpu") -> Tensor:
    """``n`` random points strictly inside an ``h x w`` grid, in index units, ``(*batch, n, 2)``."""
    u = torch.rand(*batch, n, 2, dtype=dtype)
    return (u * torch.tensor([h - 1, w - 1], dtype=dtype)).to(device)


def bilinear_field(h: int, w: int, coeffs=(0.3, -1.2, 0.7, 0.25),
                   dtype: torch.dtype = torch.float64) -> tuple[Tensor, Callable]:
    """The grid values and the function ``f(r, c) = a + b r + c c + d r c`` (index units)."""
    a, b, c, d = coeffs

    def f(r, col):
        return a + b * r + c * col + d * r * col

    r = torch.arange(h, dtype=dtype)[:, None]
    col = torch.arange(w, dtype=dtype)[None, :]
    return f(r, col), f


def _binary(*shape: int, dtype, device, p: float = 0.5) -> Tensor:
    m = (torch.rand(shape) < p).to(dtype)
    m.view(-1)[0] = 1  # never empty
    return m.to(device)


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Flags:
    """What the tests may assume about a registered operator.

    Attributes
    ----------
    complex : bool
        Test with complex vectors: the operator is complex-input (``op.complex_input``) or has
        complex tensors (so it is only complex-linear, and real inputs give complex outputs).
    closed_opnorm : bool
        ``opnorm`` must use a closed form (no power iteration).
    closed_solve : bool
        ``solve_normal`` must use a closed form (no CG).
    """

    complex: bool = False
    closed_opnorm: bool = False
    closed_solve: bool = False


class OperatorCase(NamedTuple):
    name: str
    factory: Callable[[torch.dtype, torch.device | str], LinearOperator]
    flags: Flags


OPERATOR_CASES: list[OperatorCase] = []


def _case(name: str, **flags):
    def register(factory):
        OPERATOR_CASES.append(OperatorCase(name, factory, Flags(**flags)))
        return factory

    return register


CLOSED = {"closed_opnorm": True, "closed_solve": True}


# --- algebra leaves ---------------------------------------------------------------------------
@_case("identity", **CLOSED)
def _identity(dtype, device):
    return op.Identity((3, 4))


@_case("diagonal_real", **CLOSED)
def _diagonal_real(dtype, device):
    return op.Diagonal(randn(3, 4, dtype=dtype, device=device))


@_case("diagonal_complex", complex=True, **CLOSED)
def _diagonal_complex(dtype, device):
    return op.Diagonal(randn(3, 4, dtype=complex_dtype(dtype), device=device))


@_case("diagonal_per_sample_broadcast", **CLOSED)
def _diagonal_per_sample(dtype, device):
    # d of shape (B, 1, W) against samples (H, W): per-sample row weights.
    return op.Diagonal(randn(2, 1, 5, dtype=dtype, device=device), in_shape=(3, 5))


@_case("dense", **CLOSED)
def _dense(dtype, device):
    return op.Dense(randn(5, 4, dtype=dtype, device=device))


@_case("dense_complex", complex=True, **CLOSED)
def _dense_complex(dtype, device):
    return op.Dense(randn(4, 3, dtype=complex_dtype(dtype), device=device))


@_case("dense_per_sample", **CLOSED)
def _dense_per_sample(dtype, device):
    return op.Dense(randn(2, 3, 4, dtype=dtype, device=device))


@_case("mask_shared", **CLOSED)
def _mask_shared(dtype, device):
    return op.Mask(_binary(6, 6, dtype=dtype, device=device))


@_case("mask_per_sample", **CLOSED)
def _mask_per_sample(dtype, device):
    return op.Mask(_binary(2, 1, 6, 5, dtype=dtype, device=device), in_shape=(2, 6, 5))


# --- convolutions -----------------------------------------------------------------------------
@_case("conv_circular_odd", **CLOSED)
def _conv_circ_odd(dtype, device):
    return op.Convolution(psf(3, 5, dtype=dtype, device=device), (8, 10))


@_case("conv_circular_even_nonsquare", **CLOSED)
def _conv_circ_even(dtype, device):
    return op.Convolution(psf(4, 2, dtype=dtype, device=device), (9, 8))


@_case("conv_circular_per_channel", **CLOSED)
def _conv_circ_channel(dtype, device):
    return op.Convolution(psf(2, 3, 3, dtype=dtype, device=device), (2, 8, 8))


@_case("conv_circular_per_sample", **CLOSED)
def _conv_circ_sample(dtype, device):
    return op.Convolution(psf(2, 1, 3, 3, dtype=dtype, device=device), (1, 8, 8))


@_case("conv_circular_complex_psf", complex=True, **CLOSED)
def _conv_circ_complex(dtype, device):
    return op.Convolution(randn(3, 3, dtype=complex_dtype(dtype), device=device), (8, 8))


@_case("conv_zeros_odd_nonsquare")
def _conv_zeros_odd(dtype, device):
    return op.Convolution(psf(5, 3, dtype=dtype, device=device), (8, 10), padding="zeros")


@_case("conv_zeros_even")
def _conv_zeros_even(dtype, device):
    return op.Convolution(psf(4, 4, dtype=dtype, device=device), (9, 8), padding="zeros")


@_case("conv_zeros_per_sample")
def _conv_zeros_sample(dtype, device):
    return op.Convolution(psf(2, 1, 3, 3, dtype=dtype, device=device), (1, 7, 8),
                          padding="zeros")


@_case("conv_valid_odd_nonsquare")
def _conv_valid_odd(dtype, device):
    return op.Convolution(psf(3, 5, dtype=dtype, device=device), (8, 10), padding="valid")


@_case("conv_valid_even")
def _conv_valid_even(dtype, device):
    return op.Convolution(psf(4, 2, dtype=dtype, device=device), (9, 8), padding="valid")


@_case("conv_valid_per_channel")
def _conv_valid_channel(dtype, device):
    return op.Convolution(psf(2, 3, 3, dtype=dtype, device=device), (2, 7, 8), padding="valid")


# --- Fourier ----------------------------------------------------------------------------------
@_case("fourier_multiplier_real_kernel", **CLOSED)
def _fm_real(dtype, device):
    kernel = randn(6, 8, dtype=dtype)
    return op.FourierMultiplier(torch.fft.fft2(kernel).to(device), (6, 8), real_kernel=True)


@_case("fourier_multiplier_complex", complex=True, **CLOSED)
def _fm_complex(dtype, device):
    return op.FourierMultiplier(randn(2, 6, 8, dtype=complex_dtype(dtype), device=device),
                                (2, 6, 8))


@_case("fourier_sampling", complex=True, **CLOSED)
def _fourier_sampling(dtype, device):
    return op.FourierSampling(_binary(8, 8, dtype=dtype, device=device), (8, 8))


@_case("fourier_sampling_per_sample_centered", complex=True, **CLOSED)
def _fourier_sampling_sample(dtype, device):
    return op.FourierSampling(_binary(2, 1, 6, 8, dtype=dtype, device=device), (1, 6, 8),
                              centered=True)


# --- decimation -------------------------------------------------------------------------------
@_case("decimation_2", **CLOSED)
def _decimation2(dtype, device):
    return op.Decimation(2, (8, 8))


@_case("decimation_3_nonsquare_channels", **CLOSED)
def _decimation3(dtype, device):
    return op.Decimation(3, (2, 9, 6))


@_case("decimation_at_convolution", **CLOSED)
def _dec_conv(dtype, device):
    return op.Decimation(2, (8, 8)) @ op.Convolution(psf(3, 3, dtype=dtype, device=device), (8, 8))


@_case("decimation_at_convolution_per_sample", **CLOSED)
def _dec_conv_sample(dtype, device):
    return op.Decimation(3, (9, 6)) @ op.Convolution(psf(2, 4, 3, dtype=dtype, device=device),
                                                     (9, 6))


# --- point sampling ---------------------------------------------------------------------------
@_case("point_sampling")
def _point_sampling(dtype, device):
    return op.PointSampling(points(n=7, h=8, w=8, dtype=dtype, device=device), (8, 8))


@_case("point_sampling_extent_channels")
def _point_sampling_extent(dtype, device):
    # physical coordinates: rows in [0, 1], cols in [-1, 1]
    p = torch.rand(5, 2, dtype=dtype) * torch.tensor([1.0, 2.0], dtype=dtype) - torch.tensor(
        [0.0, 1.0], dtype=dtype)
    return op.PointSampling(p.to(device), (2, 6, 7), extent=((0.0, 1.0), (-1.0, 1.0)))


@_case("point_sampling_per_sample")
def _point_sampling_sample(dtype, device):
    return op.PointSampling(points(2, n=4, h=6, w=5, dtype=dtype, device=device), (6, 5))


# --- finite differences -----------------------------------------------------------------------
@_case("finite_difference_neumann", **CLOSED)
def _fd_neumann(dtype, device):
    return op.FiniteDifference((6, 7))


@_case("finite_difference_circular", **CLOSED)
def _fd_circular(dtype, device):
    return op.FiniteDifference((6, 7), boundary="circular")


@_case("finite_difference_1d_subset", **CLOSED)
def _fd_1d(dtype, device):
    return op.FiniteDifference((3, 8), dims=(-1,))


@_case("finite_difference_spacing_circular", **CLOSED)
def _fd_spacing(dtype, device):
    return op.FiniteDifference((6, 8), spacing=(0.5, 2.0), boundary="circular")


@_case("finite_difference_3d_dims_subset", **CLOSED)
def _fd_3d(dtype, device):
    return op.FiniteDifference((3, 4, 5), dims=(0, -1), spacing=0.25)


# --- Jacobians --------------------------------------------------------------------------------
def _nonlinear(dtype, device):
    w = randn(4, 3, dtype=dtype, device=device)
    return lambda x: torch.tanh(x @ w.T) + 0.5 * x.sum(-1, keepdim=True) ** 2


@_case("jacobian_batch_ndim_0")
def _jacobian0(dtype, device):
    return op.Jacobian(_nonlinear(dtype, device), randn(3, dtype=dtype, device=device))


@_case("jacobian_batch_ndim_1")
def _jacobian1(dtype, device):
    return op.Jacobian(_nonlinear(dtype, device), randn(2, 3, dtype=dtype, device=device),
                       batch_ndim=1)


@_case("jacobian_image")
def _jacobian_image(dtype, device):
    return op.Jacobian(lambda x: torch.sin(x) * x.mean(), randn(4, 5, dtype=dtype, device=device))


# --- block operators --------------------------------------------------------------------------
@_case("stack_conv_fd_circular", closed_opnorm=True, closed_solve=True)
def _stack_conv_fd(dtype, device):
    return op.Stack([op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 8)),
                     op.FiniteDifference((6, 8), boundary="circular")])


@_case("stack_identity_fd_neumann", **CLOSED)
def _stack_id_fd_neumann(dtype, device):
    # Tikhonov-gradient denoising [I; sqrt(lam) D] with Neumann D: DCT-diagonal normal matrix
    return op.Stack([op.Identity((5, 6)), 0.7 * op.FiniteDifference((5, 6))])


@_case("stack_identity_diagonal", **CLOSED)
def _stack_id_diag(dtype, device):
    return op.Stack([op.Identity((4,)), op.Diagonal(randn(4, dtype=dtype, device=device))])


@_case("stack_mixed")
def _stack_mixed(dtype, device):
    return op.Stack([op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 6), "valid"),
                     op.Mask(_binary(6, 6, dtype=dtype, device=device)),
                     op.FiniteDifference((6, 6))])


@_case("block_diagonal", **CLOSED)
def _block_diag(dtype, device):
    return op.BlockDiagonal([op.Diagonal(randn(3, dtype=dtype, device=device)),
                             op.Dense(randn(4, 2, dtype=dtype, device=device))])


@_case("block_diagonal_images", **CLOSED)
def _block_diag_images(dtype, device):
    return op.BlockDiagonal([op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 6)),
                             op.FiniteDifference((5, 4)),
                             op.Mask(_binary(4, dtype=dtype, device=device))])


# --- composites -------------------------------------------------------------------------------
@_case("sum_conv_diagonal")
def _sum(dtype, device):
    return (op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 7))
            + op.Diagonal(randn(6, 7, dtype=dtype, device=device)))


@_case("sum_fourier_closed", **CLOSED)
def _sum_fourier(dtype, device):
    return (op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 8))
            + 0.5 * op.Identity((6, 8)))


@_case("difference_conv_zeros_mask")
def _difference(dtype, device):
    return (op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 7), "zeros")
            - op.Mask(_binary(6, 7, dtype=dtype, device=device)))


@_case("scaled_conv", **CLOSED)
def _scaled(dtype, device):
    return 2.5 * op.Convolution(psf(3, 3, dtype=dtype, device=device), (8, 8))


@_case("scaled_complex_conv", complex=True, **CLOSED)
def _scaled_complex(dtype, device):
    return (1.0 - 2.0j) * op.Convolution(psf(3, 3, dtype=dtype, device=device), (8, 8))


@_case("scaled_per_sample_conv", **CLOSED)
def _scaled_per_sample(dtype, device):
    c = torch.tensor([0.5, -3.0], dtype=dtype, device=device)
    return c * op.Convolution(psf(3, 3, dtype=dtype, device=device), (1, 8, 8))


@_case("scaled_per_sample_point_sampling")
def _scaled_per_sample_points(dtype, device):
    c = torch.tensor([2.0, -0.5], dtype=dtype, device=device)
    return c * op.PointSampling(points(n=6, h=6, w=6, dtype=dtype, device=device), (6, 6))


@_case("adjoint_conv_zeros")
def _adjoint(dtype, device):
    return op.Convolution(psf(3, 4, dtype=dtype, device=device), (7, 8), "zeros").H


@_case("adjoint_fourier_sampling", complex=True, closed_opnorm=True)
def _adjoint_fs(dtype, device):
    return op.FourierSampling(_binary(6, 6, dtype=dtype, device=device), (6, 6)).H


@_case("adjoint_decimation", closed_opnorm=True)
def _adjoint_dec(dtype, device):
    return op.Decimation(2, (6, 8)).H


@_case("composition_conv_mask_conv")
def _composition(dtype, device):
    conv = op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 6))
    return conv.H @ op.Mask(_binary(6, 6, dtype=dtype, device=device)) @ conv


@_case("composition_weighted_laplacian")
def _weighted_laplacian(dtype, device):
    fd = op.FiniteDifference((5, 6))
    w = op.Diagonal((torch.rand(2, 5, 6, dtype=dtype) + 0.5).to(device))
    return fd.H @ w @ fd


@_case("composition_fourier_sampling_mask", complex=True)
def _composition_fs(dtype, device):
    return op.FourierSampling(_binary(6, 6, dtype=dtype, device=device), (6, 6)) @ op.Mask(
        _binary(6, 6, dtype=dtype, device=device))


@_case("composition_scaled_nested")
def _nested(dtype, device):
    a = op.Convolution(psf(3, 3, dtype=dtype, device=device), (6, 6), "zeros")
    b = op.Diagonal(randn(6, 6, dtype=dtype, device=device))
    return 0.5 * (a + b).H @ (2.0 * a) - b


CASES_BY_NAME: dict[str, OperatorCase] = {c.name: c for c in OPERATOR_CASES}
assert len(CASES_BY_NAME) == len(OPERATOR_CASES), "duplicate case names"


def case_ids(cases) -> list[str]:
    return [c.name for c in cases]


# ---------------------------------------------------------------------------------------------
# dense oracle
# ---------------------------------------------------------------------------------------------
def dense_matrix(A: LinearOperator, dtype: torch.dtype = torch.float64) -> Tensor:
    """The matrix of ``A``, built column by column from basis vectors.

    Returns a ``(*batch_shape, m, n)`` tensor with ``m = prod(out_shape)`` and
    ``n = prod(in_shape)`` (``(m, n)`` for shared operators). For complex-input operators the
    basis vectors have the complex dtype of ``dtype``; the matrix has the dtype of the outputs.
    """
    if A.complex_input:
        dtype = complex_dtype(dtype)
    device = A._device() or "cpu"
    n = math.prod(A.in_shape)
    batch = A.batch_shape
    cols = []
    for j in range(n):
        e = torch.zeros(*batch, n, dtype=dtype, device=device)
        e[..., j] = 1
        cols.append(A(e.reshape(*batch, *A.in_shape)).reshape(*batch, -1))
    dt = cols[0].dtype
    for c in cols[1:]:
        dt = torch.promote_types(dt, c.dtype)
    return torch.stack([c.to(dt) for c in cols], dim=-1)


# ---------------------------------------------------------------------------------------------
# shared data
# ---------------------------------------------------------------------------------------------
SATELLITE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "satellite"
needs_satellite_data = pytest.mark.skipif(not (SATELLITE_DATA / "eval").is_dir(),
                                          reason=f"shared data not found at {SATELLITE_DATA}")
