"""Discrete gradient: :class:`FiniteDifference` (its adjoint is minus the divergence)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real

from ._base import LinearOperator, _as_shape
from ._fourier import fourier_apply

__all__ = ["FiniteDifference"]

_BOUNDARIES = ("neumann", "circular")


class FiniteDifference(LinearOperator):
    r"""Forward-difference gradient :math:`(\nabla x)_k[i] = (x[i + e_k] - x[i]) / h_k`.

    The output stacks one difference per axis in ``dims``: shape ``(len(dims), *in_shape)``.
    The adjoint is minus the (backward-difference) divergence, :math:`\nabla^H = -\mathrm{div}`,
    and :math:`\nabla^H \nabla = -\Delta` is the 5-point Laplacian.

    Parameters
    ----------
    in_shape : sequence of int
    dims : sequence of int, default (-2, -1)
        Sample axes to differentiate along (negative, counted from the end of the sample).
    spacing : float or sequence of float, default 1.0
        Grid spacing ``h_k`` per axis.
    boundary : {"neumann", "circular"}
        ``"neumann"``: the difference across the last face is zero (no wrap-around; the usual
        choice for total variation); the Gram is then diagonalized by the DCT-II.
        ``"circular"``: periodic; the Gram is then Fourier-diagonal. Either way
        ``solve_normal``/``opnorm`` of the operator, of its Gram plus ``rho * I``, and of stacks
        with scaled identities are closed-form (for ``"circular"``, when ``dims`` are among the
        last two axes).

    Raises
    ------
    TypeError
        ``dims`` not a sequence of ints, ``spacing`` not numbers.
    ValueError
        Invalid dims (out of range, repeated), spacing (not finite and > 0, not one per axis)
        or boundary.

    Examples
    --------
    >>> import torch
    >>> from operators import FiniteDifference
    >>> D = FiniteDifference((3,), dims=(-1,))
    >>> D(torch.tensor([0.0, 1.0, 3.0]))
    tensor([[1., 2., 0.]])
    """

    def __init__(self, in_shape: Sequence[int], dims: Sequence[int] = (-2, -1),
                 spacing: float | Sequence[float] = 1.0, boundary: str = "neumann") -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        n = len(in_shape)
        if isinstance(dims, (numbers.Number, str)) or not isinstance(dims, Iterable):
            raise TypeError(f"dims must be a sequence of ints (sample axes), got {dims!r}")
        dims = tuple(dims)
        if not dims:
            raise ValueError(f"dims must be non-empty sample axes in [-{n}, {n}), got ()")
        dims = tuple(check_int(f"dims[{i}]", d, -n, maximum=n - 1,
                               hint=f"dims are sample axes in [-{n}, {n})")
                     for i, d in enumerate(dims))
        dims = tuple(d - n if d >= 0 else d for d in dims)
        if len(set(dims)) != len(dims):
            raise ValueError(f"dims must be distinct, got {dims}")
        if boundary not in _BOUNDARIES:
            raise ValueError(f"boundary must be one of {_BOUNDARIES}, got {boundary!r}")
        hint = "give one positive number or one per axis in dims"
        if isinstance(spacing, (numbers.Number, str)) or not isinstance(spacing, Iterable):
            sp = (check_real("spacing", spacing, positive=True, hint=hint),) * len(dims)
        else:
            sp = tuple(check_real(f"spacing[{i}]", s, positive=True, hint=hint)
                       for i, s in enumerate(spacing))
            if len(sp) != len(dims):
                raise ValueError(f"spacing must be positive, one per axis in dims ({len(dims)}), "
                                 f"got {spacing!r}")
        super().__init__(in_shape, (len(dims), *in_shape))
        self.dims, self.spacing, self.boundary = dims, sp, boundary

    def forward(self, x: Tensor) -> Tensor:
        outs = []
        for d, h in zip(self.dims, self.spacing, strict=True):
            if self.boundary == "circular":
                g = torch.roll(x, -1, d) - x
            else:
                g = torch.nn.functional.pad(torch.diff(x, dim=d), _pad_spec(d, 0, 1))
            outs.append(g / h)
        return torch.stack(outs, dim=-len(self.in_shape) - 1)

    def adjoint(self, y: Tensor) -> Tensor:
        out = None
        for k, (d, h) in enumerate(zip(self.dims, self.spacing, strict=True)):
            g = y.select(-len(self.in_shape) - 1, k)
            if self.boundary == "circular":
                div = torch.roll(g, 1, d) - g
            else:
                g = g.narrow(d, 0, g.shape[d] - 1)
                div = torch.nn.functional.pad(g, _pad_spec(d, 1, 0)) - \
                    torch.nn.functional.pad(g, _pad_spec(d, 0, 1))
            out = div / h if out is None else out + div / h
        return out

    def gram(self) -> LinearOperator:
        if self.boundary == "neumann":
            return _NeumannNegLaplacian(self)
        if not set(self.dims) <= {-2, -1}:
            return super().gram()
        return _PeriodicNegLaplacian(self)

    def _neumann_symbol(self, like: Tensor | None) -> Tensor:
        r"""DCT-II eigenvalues of the Neumann :math:`-\Delta = \nabla^H\nabla`.

        Per axis :math:`(2 \sin(\pi k / 2n) / h)^2`, :math:`k = 0..n-1`, summed over ``dims``;
        shape ``in_shape`` with ones on the axes not differentiated.
        """
        kw = {} if like is None else {"device": like.device,
                                      "dtype": like.real.dtype if like.is_complex() else
                                      like.dtype}
        nd = len(self.in_shape)
        sym = None
        for d, h in zip(self.dims, self.spacing, strict=True):
            n = self.in_shape[d]
            k = torch.arange(n, **kw)
            lam = (2 * torch.sin(math.pi * k / (2 * n)) / h) ** 2
            shape = [1] * nd
            shape[d] = n
            lam = lam.reshape(shape)
            sym = lam if sym is None else sym + lam
        return sym

    def _laplacian_symbol(self, like: Tensor | None) -> Tensor:
        """Fourier symbol of the periodic :math:`-\\Delta`, on ``like``'s device and dtype."""
        kw = {} if like is None else {"device": like.device,
                                      "dtype": like.real.dtype if like.is_complex() else
                                      like.dtype}
        hh, ww = self.in_shape[-2:]
        sym = torch.zeros(hh, ww, **kw)
        for d, h in zip(self.dims, self.spacing, strict=True):
            n = self.in_shape[d]
            k = torch.arange(n, **kw)
            lam = (2 * torch.sin(math.pi * k / n) / h) ** 2
            sym = sym + (lam[:, None] if d == -2 else lam[None, :])
        return sym

    def extra_repr(self) -> str:
        return (f"in_shape={self.in_shape}, dims={self.dims}, spacing={self.spacing}, "
                f"boundary={self.boundary!r}")


def _pad_spec(dim: int, before: int, after: int) -> tuple[int, ...]:
    """``F.pad`` spec padding only the (negative) axis ``dim``."""
    return (0, 0) * (-dim - 1) + (before, after)


class _PeriodicNegLaplacian(LinearOperator):
    """Gram of a periodic :class:`FiniteDifference`: the Fourier multiplier of -Δ.

    Parameter-free, so its symbol is built on the device and dtype of the data it meets.
    """

    def __init__(self, fd: FiniteDifference) -> None:
        super().__init__(fd.in_shape, fd.in_shape)
        self._fd = (fd,)  # a tuple: not registered as a submodule

    def forward(self, x: Tensor) -> Tensor:
        return fourier_apply(x, self._fd[0]._laplacian_symbol(x), True)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self

    def _fourier_symbol(self, like=None):
        return (self._fd[0]._laplacian_symbol(like), True)


class _NeumannNegLaplacian(LinearOperator):
    """Gram of a Neumann :class:`FiniteDifference`: -Δ with reflecting boundaries.

    Applied by the stencil (``D^H D x``); its DCT-II symbol (``_dct_symbol``) gives the closed
    forms. Parameter-free, so the symbol is built on the device and dtype of the data it meets.
    """

    def __init__(self, fd: FiniteDifference) -> None:
        super().__init__(fd.in_shape, fd.in_shape)
        self._fd = (fd,)  # a tuple: not registered as a submodule

    def forward(self, x: Tensor) -> Tensor:
        fd = self._fd[0]
        return fd.adjoint(fd.forward(x))

    def adjoint(self, y: Tensor) -> Tensor:
        return self.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self

    def _dct_symbol(self, like=None):
        return (self._fd[0]._neumann_symbol(like), self._fd[0].dims)
