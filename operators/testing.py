"""Numerical checks for operators: adjoint dot tests and adjoint-vs-autograd tests.

These raise ``AssertionError`` (like :func:`torch.testing.assert_close`) when a check fails, so
they can be called directly in a user's test suite.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import LinearOperator, _inner, _sqnorm

__all__ = ["check_adjoint", "check_adjoint_autograd", "default_rtol"]

_RTOL = {torch.float16: 1e-2, torch.bfloat16: 1e-2, torch.float32: 1e-5, torch.complex64: 1e-5,
         torch.float64: 1e-12, torch.complex128: 1e-12}


def default_rtol(dtype: torch.dtype) -> float:
    """Tolerance of the relative adjoint error for ``dtype`` (1e-5 single, 1e-12 double)."""
    return _RTOL.get(dtype, 1e-5)


def _random(shape, dtype, device, generator) -> Tensor:
    if dtype.is_complex:
        real = torch.zeros((), dtype=dtype).real.dtype
        re = torch.randn(shape, dtype=real, generator=generator)
        im = torch.randn(shape, dtype=real, generator=generator)
        return torch.complex(re, im).to(device)
    return torch.randn(shape, dtype=dtype, generator=generator).to(device)


def _setup(op, dtype, device, batch_shape, generator):
    if not isinstance(op, LinearOperator):
        raise TypeError(f"expected a LinearOperator, got {type(op).__name__}")
    ref = op._reference_tensor()
    if dtype is None:
        dtype = ref.dtype if ref is not None else torch.get_default_dtype()
        if dtype.is_complex is False and not dtype.is_floating_point:
            dtype = torch.get_default_dtype()
    if op.complex_input and not dtype.is_complex:
        dtype = torch.promote_types(dtype, torch.complex64)
    if device is None:
        device = ref.device if ref is not None else torch.device("cpu")
    if batch_shape is None:
        batch_shape = op.batch_shape or (2,)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return dtype, device, tuple(batch_shape), generator


def check_adjoint(op: LinearOperator, *, n_trials: int = 3, rtol: float | None = None,
                  dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                  batch_shape: tuple[int, ...] | None = None,
                  generator: torch.Generator | None = None) -> float:
    r"""Dot test: :math:`\langle Ax, y\rangle = \langle x, A^H y\rangle`, per sample.

    For random ``x`` and ``y`` the relative error of each sample

    .. math:: e = \frac{|\langle Ax, y\rangle - \langle x, A^H y\rangle|}
                        {\|Ax\|\,\|y\| + \|x\|\,\|A^H y\|}

    must be below ``rtol`` (default: 1e-5 in single, 1e-12 in double precision). This is
    scale-invariant, so a wrongly scaled adjoint fails (unlike deepinv's absolute test).

    Parameters
    ----------
    op : LinearOperator
    n_trials : int, default 3
    rtol : float, optional
    dtype : torch.dtype, optional
        Of the random vectors (default: the operator's; complex for complex-input operators).
    device : optional
        Default: the operator's.
    batch_shape : tuple of int, optional
        Default: ``op.batch_shape`` or ``(2,)``.
    generator : torch.Generator, optional

    Returns
    -------
    float
        The largest relative error seen.

    Raises
    ------
    AssertionError
        If the error exceeds ``rtol`` for some sample.

    Examples
    --------
    >>> import torch
    >>> from operators import Convolution
    >>> from operators.testing import check_adjoint
    >>> err = check_adjoint(Convolution(torch.rand(3, 3), (8, 8), padding="zeros"))
    >>> err < 1e-5
    True
    """
    dtype, device, batch_shape, generator = _setup(op, dtype, device, batch_shape, generator)
    tol = default_rtol(dtype) if rtol is None else rtol
    worst = 0.0
    for _ in range(n_trials):
        x = _random((*batch_shape, *op.in_shape), dtype, device, generator)
        ax = op(x)
        y = _random(tuple(ax.shape), ax.dtype, device, generator)
        ahy = op.adjoint(y)
        ni, no = len(op.in_shape), len(op.out_shape)
        lhs, rhs = _inner(ax, y, no), _inner(x, ahy, ni)
        scale = (_sqnorm(ax, no) * _sqnorm(y, no)).sqrt() + (_sqnorm(x, ni) *
                                                             _sqnorm(ahy, ni)).sqrt()
        err = ((lhs - rhs).abs() / scale.clamp_min(torch.finfo(scale.dtype).tiny)).max()
        worst = max(worst, float(err))
    if worst > tol:
        raise AssertionError(f"adjoint test failed for {type(op).__name__}: relative error "
                             f"{worst:.3e} > rtol {tol:.1e} ({dtype})")
    return worst


def check_adjoint_autograd(op: LinearOperator, *, rtol: float | None = None,
                           dtype: torch.dtype | None = None,
                           device: torch.device | str | None = None,
                           batch_shape: tuple[int, ...] | None = None,
                           generator: torch.Generator | None = None) -> float:
    r"""Check that ``op.adjoint`` equals the autograd vector-Jacobian product of ``op``.

    For a linear map, :math:`A^H y` is the VJP of :math:`x \mapsto Ax` with cotangent ``y``
    (torch's convention for complex tensors gives the conjugate-linear VJP, i.e. exactly
    :math:`A^H y`). Returns the relative error :math:`\|A^H y - \mathrm{vjp}\| / \|A^H y\|`.

    Raises
    ------
    AssertionError
        If the error exceeds ``rtol`` (default: 1e-5 single, 1e-10 double precision).
    """
    dtype, device, batch_shape, generator = _setup(op, dtype, device, batch_shape, generator)
    tol = (1e-10 if default_rtol(dtype) < 1e-8 else 1e-5) if rtol is None else rtol
    x = _random((*batch_shape, *op.in_shape), dtype, device, generator).requires_grad_(True)
    ax = op(x)
    y = _random(tuple(ax.shape), ax.dtype, device, generator)
    (vjp,) = torch.autograd.grad(ax, x, grad_outputs=y)
    ahy = op.adjoint(y)
    if ahy.is_complex() and not vjp.is_complex():
        raise AssertionError("adjoint returned a complex tensor for a real input")
    err = float((ahy - vjp).abs().max() / ahy.abs().max().clamp_min(1e-30))
    if err > tol:
        raise AssertionError(f"adjoint differs from the autograd VJP for {type(op).__name__}: "
                             f"relative error {err:.3e} > {tol:.1e}")
    return err
