"""Decimation (subsampling) and the closed-form super-resolution normal solve."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.fft import fft2, ifft2

from sciml_inverse import check_int

from ._base import LinearOperator, _as_shape

__all__ = ["Decimation"]


class Decimation(LinearOperator):
    r"""Keep one pixel in every ``factor x factor`` block: :math:`(Sx)[i, j] = x[f i, f j]`.

    The adjoint :math:`S^H` zero-fills. :math:`S^H S` is the 0/1 mask of the kept pixels, so
    ``solve_normal`` and ``opnorm`` (= 1) are closed-form, and ``Decimation(f, s) @ B`` with a
    circular blur ``B`` solves its normal equations with the analytical formula of Zhao et al.
    (2016).

    Parameters
    ----------
    factor : int
        Decimation factor ``f >= 1`` along both image axes.
    in_shape : sequence of int
        Sample shape ``(..., H, W)``; ``H`` and ``W`` must be divisible by ``factor``.

    Raises
    ------
    ValueError
        A non-positive factor, or an image size not divisible by it.

    References
    ----------
    N. Zhao, Q. Wei, A. Basarab, N. Dobigeon, D. Kouamé, J.-Y. Tourneret, "Fast single image
    super-resolution using a new analytical solution for l2-l2 problems", IEEE TIP 25(8), 2016.

    Examples
    --------
    >>> import torch
    >>> from operators import Decimation
    >>> S = Decimation(2, (4, 4))
    >>> S(torch.arange(16.0).reshape(4, 4))
    tensor([[ 0.,  2.],
            [ 8., 10.]])
    """

    def __init__(self, factor: int, in_shape: Sequence[int]) -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        check_int("factor", factor, 1)
        factor = int(factor)
        if len(in_shape) < 2:
            raise ValueError(f"in_shape must have at least two dims (..., H, W), got {in_shape}")
        h, w = in_shape[-2:]
        if h % factor or w % factor:
            raise ValueError(f"the image size {(h, w)} must be divisible by the decimation factor "
                             f"{factor}; crop or pad the image first")
        super().__init__(in_shape, (*in_shape[:-2], h // factor, w // factor))
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        f = self.factor
        return x[..., ::f, ::f]

    def adjoint(self, y: Tensor) -> Tensor:
        f = self.factor
        h, w = self.in_shape[-2:]
        out = y.new_zeros((*y.shape[:-2], h, w))
        out[..., ::f, ::f] = y
        return out

    def _pattern(self, like: Tensor | None) -> Tensor:
        kw = {} if like is None else {"device": like.device,
                                      "dtype": like.real.dtype if like.is_complex() else
                                      like.dtype}
        m = torch.zeros(self.in_shape[-2:], **kw)
        m[:: self.factor, :: self.factor] = 1
        return m

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        return b / (self._pattern(b) + rho)

    def opnorm(self, **kwargs) -> Tensor:
        return torch.ones(())

    # The structural rule "decimation after a circular blur has a closed-form normal solve"
    # (Zhao et al. 2016), registered with the algebra through the outer-factor hooks of
    # LinearOperator: Composition(Decimation, B) asks its outer factor.
    def _decimated_fourier(self, inner: LinearOperator, like) -> tuple | None:
        """``(symbol, real_kernel)`` of ``inner`` if it is a shape-preserving Fourier multiplier."""
        if inner.in_shape != inner.out_shape:
            return None
        sym = inner._fourier_symbol(like)
        if sym is not None and isinstance(sym[0], Tensor):
            return sym[0], sym[1]
        return None

    def _normal_solver_outer(self, inner: LinearOperator, like: Tensor, cache: dict):
        found = self._decimated_fourier(inner, like)
        if found is None:
            return None
        otf, real_kernel = found
        f = self.factor
        # mean_blocks(|ĥ|²) depends on the PSF only: cache it, keyed on the OTF's storage and
        # version so that a changed PSF is never served a stale value.
        key = (otf.data_ptr(), otf._version, tuple(otf.shape), otf.dtype, otf.device, f)
        power = cache.get("aliased_power", {}).get(key)
        if power is None:
            power = _block_mean(otf.abs() ** 2, f)
            if not power.requires_grad:
                cache["aliased_power"] = {key: power}
        return lambda b, rho: _decimated_blur_solve(f, otf, real_kernel, b, rho, power)

    def _opnorm_outer(self, inner: LinearOperator) -> Tensor | None:
        found = self._decimated_fourier(inner, inner._reference_tensor())
        if found is None:
            return None
        return _decimated_blur_opnorm(self.factor, found[0], len(inner.in_shape))

    def extra_repr(self) -> str:
        return f"factor={self.factor}, in_shape={self.in_shape}"


def _block_mean(t: Tensor, f: int) -> Tensor:
    """Mean of the ``f x f`` aliased blocks of a spectrum over the last two dims.

    A sum of ``f²`` strided slices: much faster than ``reshape(...).mean(dims)`` on complex data.
    """
    m, n = t.shape[-2] // f, t.shape[-1] // f
    out = None
    for i in range(f):
        for j in range(f):
            blk = t[..., i * m:(i + 1) * m, j * n:(j + 1) * n]
            out = blk if out is None else out + blk
    return out / (f * f)


def _decimated_blur_opnorm(factor: int, otf: Tensor, ndim: int) -> Tensor:
    r"""Exact :math:`\|SB\|`: :math:`SBB^HS^H` is the coarse multiplier ``mean_blocks(|ĥ|²)``."""
    lam = _block_mean(otf.abs() ** 2, factor)
    nb = max(lam.ndim - ndim, 0)
    return lam.amax(dim=tuple(range(nb, lam.ndim))).sqrt()


def _decimated_blur_solve(factor: int, otf: Tensor, real_kernel: bool, b: Tensor,
                          rho: Tensor, aliased_power: Tensor | None = None) -> Tensor:
    r"""Solve :math:`(B^H S^H S B + \rho I) x = b` for circular ``B`` (OTF ``otf``), in closed form.

    With the Woodbury identity and the aliasing structure of :math:`S` in Fourier space
    (:math:`S` averages the ``f x f`` aliased spectrum blocks, :math:`S^H` replicates them),

    .. math::
        \hat x = \rho^{-1}\Big[\hat b - \bar{\hat h} \odot
        \mathrm{rep}\Big(\frac{\mathrm{mean_{blocks}}(\hat h \odot \hat b)}
        {\rho + \mathrm{mean_{blocks}}(|\hat h|^2)}\Big)\Big].

    ``aliased_power`` is ``mean_blocks(|ĥ|²)`` if already known (it depends on the PSF only).
    """
    f = factor
    h, w = b.shape[-2:]
    m, n = h // f, w // f
    if aliased_power is None:
        aliased_power = _block_mean(otf.abs() ** 2, f)
    bf = fft2(b)
    q = _block_mean(otf * bf, f) / (aliased_power + rho)
    # replicate q over the f x f blocks by broadcasting in a (..., f, m, f, n) view
    corr = otf.conj().reshape(*otf.shape[:-2], f, m, f, n) * q.unsqueeze(-3).unsqueeze(-2)
    xf = (bf - corr.reshape(*corr.shape[:-4], h, w)) / rho
    x = ifft2(xf)
    return x.real if (real_kernel and not b.is_complex()) else x
