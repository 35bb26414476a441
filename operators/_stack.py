"""Block operators: :class:`Stack` (vertical stacking) and :class:`BlockDiagonal`.

Outputs (and, for :class:`BlockDiagonal`, inputs) of the blocks are flattened and concatenated
into one vector per sample, so blocks of different shapes combine; ``split`` recovers the
per-block tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._algebra import Sum, _Composite
from ._base import LinearOperator

__all__ = ["Stack", "BlockDiagonal"]


def _flat_cat(parts: Sequence[Tensor], ndims: Sequence[int]) -> Tensor:
    flat = [p.reshape(*p.shape[: p.ndim - n], -1) for p, n in zip(parts, ndims, strict=True)]
    flat = torch.broadcast_tensors(*flat) if len({f.shape[:-1] for f in flat}) > 1 else flat
    dtype = flat[0].dtype
    for f in flat[1:]:
        dtype = torch.promote_types(dtype, f.dtype)
    return torch.cat([f.to(dtype) for f in flat], dim=-1)


def _split(v: Tensor, shapes: Sequence[tuple[int, ...]]) -> list[Tensor]:
    sizes = [math.prod(s) for s in shapes]
    parts = torch.split(v, sizes, dim=-1)
    return [p.reshape(*p.shape[:-1], *s) for p, s in zip(parts, shapes, strict=True)]


def _check_ops(ops: Sequence[LinearOperator], name: str) -> list[LinearOperator]:
    ops = list(ops)
    if not ops or not all(isinstance(o, LinearOperator) for o in ops):
        raise TypeError(f"{name} needs a non-empty sequence of LinearOperator")
    return ops


class Stack(_Composite):
    r"""Vertical stack :math:`A = [A_1; \dots; A_k]` of operators with a common input.

    ``A(x)`` is the concatenation of the flattened ``A_i(x)``, shape ``(*batch, sum_i n_i)``.
    :math:`A^H A = \sum_i A_i^H A_i`, so structure is kept: e.g. a circular blur stacked with
    periodic finite differences (Tikhonov-gradient deblurring) has a closed-form
    ``solve_normal``.

    Parameters
    ----------
    ops : sequence of LinearOperator
        All with the same ``in_shape``.

    Raises
    ------
    ValueError
        If the input shapes differ.

    Examples
    --------
    >>> import torch
    >>> from operators import Stack, Identity, Diagonal
    >>> A = Stack([Identity((2,)), Diagonal(torch.tensor([2.0, 3.0]))])
    >>> A(torch.ones(2))
    tensor([1., 1., 2., 3.])
    >>> [t.tolist() for t in A.split(A(torch.ones(2)))]
    [[1.0, 1.0], [2.0, 3.0]]
    """

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        ops = _check_ops(ops, "Stack")
        for o in ops[1:]:
            if o.in_shape != ops[0].in_shape:
                raise ValueError(f"all stacked operators need the same in_shape, got "
                                 f"{ops[0].in_shape} and {o.in_shape}")
        super().__init__(ops[0].in_shape, (sum(math.prod(o.out_shape) for o in ops),))
        self.ops = torch.nn.ModuleList(ops)

    def split(self, y: Tensor) -> list[Tensor]:
        """Split a stacked output ``(*batch, n)`` into the blocks' outputs."""
        return _split(y, [o.out_shape for o in self.ops])

    def forward(self, x: Tensor) -> Tensor:
        return _flat_cat([o.forward(x) for o in self.ops], [len(o.out_shape) for o in self.ops])

    def adjoint(self, y: Tensor) -> Tensor:
        parts = self.split(y)
        out = self.ops[0].adjoint(parts[0])
        for o, p in zip(self.ops[1:], parts[1:], strict=True):
            out = out + o.adjoint(p)
        return out

    def gram(self) -> LinearOperator:
        grams = [o.gram() for o in self.ops]
        return grams[0] if len(grams) == 1 else Sum(grams)


class BlockDiagonal(_Composite):
    r"""Block-diagonal operator :math:`\mathrm{diag}(A_1, \dots, A_k)`.

    Inputs and outputs are the concatenations of the blocks' flattened inputs and outputs;
    :meth:`split_input` and :meth:`split` recover the blocks. ``solve_normal`` and ``opnorm`` act
    block by block, so each block keeps its closed form.

    Examples
    --------
    >>> import torch
    >>> from operators import BlockDiagonal, Identity, Diagonal
    >>> A = BlockDiagonal([Identity((1,)), Diagonal(torch.tensor([2.0, 3.0]))])
    >>> A(torch.ones(3))
    tensor([1., 2., 3.])
    >>> float(A.opnorm())
    3.0
    """

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        ops = _check_ops(ops, "BlockDiagonal")
        super().__init__((sum(math.prod(o.in_shape) for o in ops),),
                         (sum(math.prod(o.out_shape) for o in ops),))
        self.ops = torch.nn.ModuleList(ops)

    def split_input(self, x: Tensor) -> list[Tensor]:
        """Split a concatenated input ``(*batch, n)`` into the blocks' inputs."""
        return _split(x, [o.in_shape for o in self.ops])

    def split(self, y: Tensor) -> list[Tensor]:
        """Split a concatenated output into the blocks' outputs."""
        return _split(y, [o.out_shape for o in self.ops])

    def _map(self, parts, fn, shapes_attr):
        outs = [fn(o, p) for o, p in zip(self.ops, parts, strict=True)]
        return _flat_cat(outs, [len(getattr(o, shapes_attr)) for o in self.ops])

    def forward(self, x: Tensor) -> Tensor:
        return self._map(self.split_input(x), lambda o, p: o.forward(p), "out_shape")

    def adjoint(self, y: Tensor) -> Tensor:
        return self._map(self.split(y), lambda o, p: o.adjoint(p), "in_shape")

    def gram(self) -> LinearOperator:
        return BlockDiagonal([o.gram() for o in self.ops])

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        r = rho.reshape(rho.shape[: max(rho.ndim - 1, 0)])  # strip the event dim
        return self._map(
            self.split_input(b),
            lambda o, p: o._solve_normal(p, r.reshape(r.shape + (1,) * len(o.in_shape)),
                                         **cg_kwargs),
            "in_shape")

    def opnorm(self, **kwargs) -> Tensor:
        norms = [o.opnorm(**kwargs) for o in self.ops]
        out = norms[0]
        for n in norms[1:]:
            out = torch.maximum(out, n.to(out.device))
        return out
