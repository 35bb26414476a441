r"""Orthonormal DCT-II and its inverse (DCT-III), computed with the FFT.

The DCT diagonalizes the Neumann-boundary Laplacian: the 1-D matrix :math:`D^T D` of the
forward difference with a zero last face (tridiagonal, diagonal ``[1, 2, ..., 2, 1]``,
off-diagonals ``-1``) has the DCT-II basis vectors :math:`\cos(\pi k (i + \tfrac12) / n)` as
eigenvectors, with eigenvalues :math:`4 \sin^2(\pi k / (2n))` (Strang, "The discrete cosine
transform", SIAM Review 41(1), 1999). ``solve_normal`` of Neumann
:class:`operators.FiniteDifference` Grams (and their sums with scaled identities) is therefore one
DCT, a division and one inverse DCT.

torch has no DCT (``torch.fft`` offers only Fourier transforms), and scipy's works on CPU
numpy arrays without autograd; so the transforms here use the N-point FFT of the even-odd
reordered signal (J. Makhoul, "A fast cosine transform in one and two dimensions", IEEE TASSP
28(1), 1980): differentiable, batched, on any device, in the input's precision. Complex inputs
are transformed as real and imaginary parts (the DCT is a real linear map).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["dct", "idct", "dct_apply"]


def _twiddle(n: int, x: Tensor, sign: float) -> Tensor:
    real = x.real.dtype if x.is_complex() else x.dtype
    k = torch.arange(n, device=x.device, dtype=real)
    return torch.polar(torch.ones_like(k), sign * math.pi * k / (2 * n))


def _scale(n: int, x: Tensor) -> Tensor:
    """Orthonormal scaling of the unnormalized DCT-II ``2 * sum_i x_i cos(pi k (2i + 1) / 2n)``."""
    real = x.real.dtype if x.is_complex() else x.dtype
    s = torch.full((n,), math.sqrt(1.0 / (2 * n)), device=x.device, dtype=real)
    s[0] = math.sqrt(1.0 / (4 * n))
    return s


def _dct_last(x: Tensor) -> Tensor:
    n = x.shape[-1]
    v = torch.cat([x[..., ::2], x[..., 1::2].flip(-1)], dim=-1)
    spec = torch.fft.fft(v, dim=-1) * _twiddle(n, x, -1.0)
    return 2.0 * spec.real * _scale(n, x)


def _idct_last(c: Tensor) -> Tensor:
    n = c.shape[-1]
    u = c / _scale(n, c)  # the unnormalized DCT-II coefficients X_k
    shifted = torch.cat([torch.zeros_like(u[..., :1]), u[..., 1:].flip(-1)], dim=-1)  # X_{n-k}
    spec = torch.complex(u, -shifted) * _twiddle(n, c, 1.0) / 2.0
    v = torch.fft.ifft(spec, dim=-1).real
    out = torch.empty_like(v)
    half = (n + 1) // 2
    out[..., ::2] = v[..., :half]
    out[..., 1::2] = v[..., half:].flip(-1)
    return out


def _along(fn, x: Tensor, dims: Sequence[int]) -> Tensor:
    if x.is_complex():
        return torch.complex(_along(fn, x.real, dims), _along(fn, x.imag, dims))
    for d in dims:
        x = fn(x.movedim(d, -1)).movedim(-1, d)
    return x


def dct(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Orthonormal DCT-II of ``x`` along each axis in ``dims`` (scipy's ``dct(norm="ortho")``)."""
    return _along(_dct_last, x, dims)


def idct(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Inverse of :func:`dct` (the orthonormal DCT-III) along each axis in ``dims``."""
    return _along(_idct_last, x, dims)


def dct_apply(x: Tensor, symbol: Tensor | float, dims: Sequence[int]) -> Tensor:
    r"""Apply :math:`x \mapsto C^{-1}(s \cdot C x)` with :math:`C` the DCT-II along ``dims``."""
    if not isinstance(symbol, Tensor) or not dims:
        return x * symbol
    return idct(symbol * dct(x, dims), dims)
