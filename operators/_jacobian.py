"""Matrix-free Jacobians: :class:`Jacobian` of a function at a point, via jvp / vjp."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from sciml_inverse import check_int

from ._base import LinearOperator

__all__ = ["Jacobian"]


class Jacobian(LinearOperator):
    r"""The Jacobian :math:`J = \partial f / \partial x` of ``f`` at ``x``, matrix-free.

    ``J(v)`` is a Jacobian-vector product (forward mode, :func:`torch.func.jvp`) and
    ``J.adjoint(u)`` a vector-Jacobian product (reverse mode, :func:`torch.func.vjp`; the
    linearization is computed once and reused). Both are differentiable w.r.t. ``x`` and the
    parameters ``f`` closes over, so they can sit inside a training loss (e.g. Jacobian-norm or
    Hutchinson-trace regularizers).

    Parameters
    ----------
    f : callable
        A function of one tensor.
    x : Tensor
        The linearization point.
    batch_ndim : int, default 0
        Number of leading dims of ``x`` that are batch dims along which ``f`` acts sample by
        sample. Then ``in_shape = x.shape[batch_ndim:]`` and the operator is block-diagonal over
        the batch: inputs ``v`` must have the batch shape of ``x`` (with ``batch_ndim = 0``, extra
        leading dims of ``v`` are mapped over with :func:`torch.func.vmap`, e.g. many probe
        vectors at once).

    Raises
    ------
    TypeError
        If ``f`` is not callable or ``x`` is not a floating-point/complex tensor.
    ValueError
        If ``batch_ndim`` is out of range.

    Examples
    --------
    >>> import torch
    >>> from operators import Jacobian
    >>> J = Jacobian(torch.sin, torch.zeros(3))
    >>> J(torch.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, f: Callable[[Tensor], Tensor], x: Tensor, *, batch_ndim: int = 0) -> None:
        if not callable(f):
            raise TypeError(f"f must be callable, got {type(f).__name__}")
        if not isinstance(x, Tensor) or not (x.is_floating_point() or x.is_complex()):
            raise TypeError("x must be a floating-point or complex tensor")
        batch_ndim = check_int("batch_ndim", batch_ndim, 0, maximum=max(x.ndim - 1, 0),
                               hint=f"the leading batch dims of x of shape {tuple(x.shape)}")
        fx, vjp_fn = torch.func.vjp(f, x)
        if fx.shape[:batch_ndim] != x.shape[:batch_ndim]:
            raise ValueError(f"f must keep the {batch_ndim} batch dims of x: x {tuple(x.shape)} "
                             f"-> f(x) {tuple(fx.shape)}")
        in_shape = tuple(x.shape[batch_ndim:]) or (1,)
        out_shape = tuple(fx.shape[batch_ndim:]) or (1,)
        super().__init__(in_shape, out_shape)
        self._f = f
        self._scalar_in, self._scalar_out = x.ndim == 0, fx.ndim == 0
        self.batch_ndim = batch_ndim
        self.register_buffer("x", x, persistent=False)
        self.register_buffer("fx", fx, persistent=False)
        self._vjp_fn = vjp_fn

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[: self.batch_ndim])

    def _tensors(self) -> list[Tensor]:
        ts = super()._tensors()
        if isinstance(self._f, torch.nn.Module):
            ts += [p for p in self._f.parameters() if all(p is not t for t in ts)]
        return ts

    def _map(self, fn: Callable[[Tensor], Tensor], v: Tensor, nd_in: int) -> Tensor:
        extra = v.ndim - self.batch_ndim - nd_in
        if extra == 0:
            return fn(v)
        if self.batch_ndim:
            raise ValueError(f"Jacobian with batch_ndim={self.batch_ndim} takes inputs with "
                             f"exactly the batch shape of x, got {tuple(v.shape)}")
        lead = v.shape[:extra]
        out = torch.func.vmap(fn)(v.reshape(-1, *v.shape[extra:]))
        return out.reshape(*lead, *out.shape[1:])

    def forward(self, v: Tensor) -> Tensor:
        def jvp(t: Tensor) -> Tensor:
            t = t.reshape(self.x.shape)
            out = _apply_linear(lambda u: torch.func.jvp(self._f, (self.x,), (u,))[1], t,
                                self.x.dtype)
            return out.reshape(*self.x.shape[: self.batch_ndim], *self.out_shape)

        return self._map(jvp, v, len(self.in_shape) if not self._scalar_in else 1)

    def adjoint(self, u: Tensor) -> Tensor:
        def vjp(t: Tensor) -> Tensor:
            t = t.reshape(self.fx.shape)
            out = _apply_linear(lambda u: self._vjp_fn(u)[0], t, self.fx.dtype)
            return out.reshape(*self.x.shape[: self.batch_ndim], *self.in_shape)

        return self._map(vjp, u, len(self.out_shape) if not self._scalar_out else 1)


def _apply_linear(fn: Callable[[Tensor], Tensor], t: Tensor, dtype: torch.dtype) -> Tensor:
    """Apply the linear map ``fn`` (which takes ``dtype`` tensors) to ``t``, never downcasting.

    A complex ``t`` on a real linearization is split into its real and imaginary parts (the
    Jacobian acts complex-linearly), and the result is promoted to ``t``'s precision.
    """
    if t.is_complex() and not dtype.is_complex:
        out = fn(t.real.to(dtype)) + 1j * fn(t.imag.to(dtype))
    else:
        out = fn(t.to(dtype))
    return out.to(torch.promote_types(out.dtype, t.dtype))
