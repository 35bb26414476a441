"""Sensor observations: :class:`PointSampling` (bilinear interpolation at arbitrary points)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sciml_inverse import check_finite, check_real

from ._base import LinearOperator, _as_shape
from ._fourier import _param_batch

__all__ = ["PointSampling"]


class PointSampling(LinearOperator):
    r"""Values of a gridded field at arbitrary continuous points, by bilinear interpolation.

    For sensor data: ``y[..., c, p] = sum_k w_k(p) x[..., c, i_k(p), j_k(p)]`` with the four
    bilinear weights of point ``p``. The adjoint scatters (splats) the values back with the same
    weights.

    Parameters
    ----------
    points : Tensor, shape ``(*batch, P, 2)``
        Coordinates ``(row, col)`` of the ``P`` points. Without ``extent`` they are fractional
        grid indices (node ``(i, j)`` at ``(i, j)``); with ``extent`` they are physical
        coordinates. Leading dims are per-sample batch dims (sensors may differ per sample).
        Points that require grad make the operator differentiable w.r.t. their positions.
    in_shape : sequence of int
        Sample shape ``(..., H, W)``, with ``H, W >= 2``.
    extent : ((float, float), (float, float)), optional
        Physical coordinates ``((row_first, row_last), (col_first, col_last))`` of the first and
        last grid nodes along each axis (node-aligned grid, e.g. ``((0, 1), (0, 1))`` for a
        finite-difference grid on the unit square including its boundary).

    Raises
    ------
    TypeError
        ``points`` not a floating-point tensor, ``extent`` not a pair of pairs of real numbers.
    ValueError
        Points outside the grid or not finite, a malformed ``points`` tensor, an ``extent`` that
        is not finite or has equal first and last nodes, or a grid smaller than 2 x 2.

    Examples
    --------
    >>> import torch
    >>> from operators import PointSampling
    >>> x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> PointSampling(torch.tensor([[0.5, 0.5], [1.0, 0.0]]), (2, 2))(x)
    tensor([1.5000, 2.0000])
    """

    def __init__(self, points: Tensor, in_shape: Sequence[int], *,
                 extent: tuple[tuple[float, float], tuple[float, float]] | None = None) -> None:
        in_shape = _as_shape(in_shape, "in_shape")
        if not isinstance(points, Tensor) or not points.is_floating_point():
            raise TypeError("points must be a floating-point tensor of shape (*batch, P, 2)")
        if points.ndim < 2 or points.shape[-1] != 2:
            raise ValueError(f"points must have shape (*batch, P, 2), got {tuple(points.shape)}")
        if len(in_shape) < 2 or min(in_shape[-2:]) < 2:
            raise ValueError(f"in_shape must end with a grid (H, W) of at least 2 x 2, got "
                             f"{in_shape}")
        h, w = in_shape[-2:]
        check_finite("points", points, hint="every sensor needs finite (row, col) coordinates")
        if extent is not None:
            form = "extent is ((row_first, row_last), (col_first, col_last)) of finite numbers"
            try:
                (r0, r1), (c0, c1) = extent
            except (TypeError, ValueError) as err:
                raise TypeError(f"extent must be ((row_first, row_last), (col_first, col_last)) "
                                f"of numbers, got {extent!r}") from err
            r0, r1, c0, c1 = (check_real(f"extent[{i // 2}][{i % 2}]", a, hint=form)
                              for i, a in enumerate((r0, r1, c0, c1)))
            if r1 == r0 or c1 == c0:
                raise ValueError(f"extent must have distinct first and last nodes, got {extent}")
            scale = points.new_tensor([(h - 1) / (r1 - r0), (w - 1) / (c1 - c0)])
            points = (points - points.new_tensor([r0, c0])) * scale
        tol = 1e-6 * max(h, w)
        p = points.detach()
        if bool(((p < -tol) | (p[..., 0] > h - 1 + tol).unsqueeze(-1)
                 | (p[..., 1] > w - 1 + tol).unsqueeze(-1)).any()):
            raise ValueError(f"all points must lie inside the grid (rows in [0, {h - 1}], cols in "
                             f"[0, {w - 1}] in index units); got some outside")
        super().__init__(in_shape, (*in_shape[:-2], points.shape[-2]))
        if isinstance(points, torch.nn.Parameter):
            self.points = points
        else:
            self.register_buffer("points", points)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.points, 2)

    def _stencil(self) -> tuple[Tensor, Tensor]:
        """Flat indices ``(*batch, P, 4)`` and weights ``(*batch, P, 4)``."""
        h, w = self.in_shape[-2:]
        p = self.points
        r = p[..., 0].clamp(0, h - 1)
        c = p[..., 1].clamp(0, w - 1)
        r0 = r.detach().floor().clamp(max=h - 2)
        c0 = c.detach().floor().clamp(max=w - 2)
        fr, fc = r - r0, c - c0
        r0, c0 = r0.long(), c0.long()
        idx = torch.stack([r0 * w + c0, r0 * w + c0 + 1, (r0 + 1) * w + c0, (r0 + 1) * w + c0 + 1],
                          dim=-1)
        wts = torch.stack([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc], dim=-1)
        return idx, wts

    def _expand(self, t: Tensor, batch: tuple[int, ...]) -> Tensor:
        """Insert the channel dims ``in_shape[:-2]`` and broadcast to the input's batch."""
        lead = self.in_shape[:-2]
        t = t.reshape(*t.shape[:-2], *([1] * len(lead)), *t.shape[-2:])
        return t.expand(*torch.broadcast_shapes(t.shape[:-2], (*batch, *lead)), *t.shape[-2:])

    def forward(self, x: Tensor) -> Tensor:
        idx, wts = self._stencil()
        batch = tuple(x.shape[: x.ndim - len(self.in_shape)])
        idx = self._expand(idx, batch)
        flat = x.reshape(*x.shape[:-2], -1).expand(*idx.shape[:-2], -1)
        vals = torch.gather(flat, -1, idx.reshape(*idx.shape[:-2], -1)).reshape(idx.shape)
        return (vals * self._expand(wts, batch).to(vals.real.dtype if vals.is_complex()
                                                   else vals.dtype)).sum(-1)

    def adjoint(self, y: Tensor) -> Tensor:
        idx, wts = self._stencil()
        h, w = self.in_shape[-2:]
        batch = tuple(y.shape[: y.ndim - len(self.out_shape)])
        idx = self._expand(idx, batch)
        wts = self._expand(wts, batch)
        dtype = torch.promote_types(y.dtype, wts.dtype)
        src = (y.unsqueeze(-1).to(dtype) * wts).expand(idx.shape)
        out = torch.zeros(*idx.shape[:-2], h * w, dtype=dtype, device=y.device)
        out = out.scatter_add(-1, idx.reshape(*idx.shape[:-2], -1), src.reshape(*src.shape[:-2],
                                                                                  -1))
        return out.reshape(*out.shape[:-1], h, w)

    def extra_repr(self) -> str:
        return f"n_points={self.points.shape[-2]}, in_shape={self.in_shape}"
