"""Element-wise operators: :class:`Diagonal` and :class:`Mask`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from sciml_inverse import check_finite, check_shape

from ._base import LinearOperator, _as_shape
from ._fourier import _check_binary, _param_batch

__all__ = ["Diagonal", "Mask"]


def _event_shape(t: Tensor, in_shape: Sequence[int] | None, name: str) -> tuple[int, ...]:
    if in_shape is None:
        if t.ndim == 0:
            raise ValueError(f"a 0-d {name} needs an explicit in_shape")
        return tuple(t.shape)
    in_shape = _as_shape(in_shape, "in_shape")
    check_shape(name, t, in_shape, broadcast=True,
                hint=f"its trailing dims must match the sample shape in_shape={in_shape} (or be "
                     f"1); extra leading dims are per-sample batch dims")
    return in_shape


class Diagonal(LinearOperator):
    r"""Element-wise multiplication :math:`A x = d \odot x`.

    Parameters
    ----------
    d : Tensor
        Weights, real or complex. Its trailing dims broadcast against ``in_shape``; extra leading
        dims are per-sample batch dims.
    in_shape : sequence of int, optional
        Sample shape; defaults to ``d.shape`` (one operator shared by all samples).

    Raises
    ------
    TypeError
        If ``d`` is not a floating-point or complex tensor.
    ValueError
        If ``d`` does not broadcast against ``in_shape``.

    Examples
    --------
    >>> import torch
    >>> from operators import Diagonal
    >>> A = Diagonal(torch.tensor([[1.0], [2.0]]), in_shape=(3,))  # per-sample weights
    >>> A(torch.ones(2, 3))
    tensor([[1., 1., 1.],
            [2., 2., 2.]])
    >>> A.opnorm()
    tensor([1., 2.])
    """

    def __init__(self, d: Tensor, in_shape: Sequence[int] | None = None) -> None:
        if not isinstance(d, Tensor):
            raise TypeError(f"d must be a torch.Tensor, got {type(d).__name__}")
        if not (d.is_floating_point() or d.is_complex()):
            raise TypeError(f"d must be a floating-point or complex tensor, got {d.dtype}")
        shape = _event_shape(d, in_shape, "d")
        check_finite("d", d)
        super().__init__(shape, shape)
        if isinstance(d, torch.nn.Parameter):
            self.d = d
        else:
            self.register_buffer("d", d)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.d, len(self.in_shape))

    def forward(self, x: Tensor) -> Tensor:
        return self.d * x

    def adjoint(self, y: Tensor) -> Tensor:
        return (self.d.conj() if self.d.is_complex() else self.d) * y

    def _diagonal_symbol(self, like=None):
        return self.d

    def gram(self) -> LinearOperator:
        return Diagonal(self.d.abs() ** 2, self.in_shape)


class Mask(LinearOperator):
    r"""Binary mask :math:`A x = m \odot x` with :math:`m \in \{0, 1\}` (inpainting, no-data).

    The output keeps the full sample shape with zeros where ``m = 0``, so per-sample masks with
    different numbers of observed pixels batch together. :math:`A^H = A = A^H A` and
    :math:`\|A\| = 1` (for a non-empty mask).

    Parameters
    ----------
    mask : Tensor
        Values in {0, 1} (bool accepted). Trailing dims broadcast against ``in_shape``; extra
        leading dims are per-sample batch dims.
    in_shape : sequence of int, optional
        Sample shape; defaults to ``mask.shape``.

    Raises
    ------
    ValueError
        If the mask has values other than 0 and 1, or does not broadcast against ``in_shape``.

    Examples
    --------
    >>> import torch
    >>> from operators import Mask
    >>> Mask(torch.tensor([1, 0, 1], dtype=torch.bool))(torch.ones(3))
    tensor([1., 0., 1.])
    """

    def __init__(self, mask: Tensor, in_shape: Sequence[int] | None = None) -> None:
        shape = _event_shape(mask, in_shape, "mask") if isinstance(mask, Tensor) else None
        mask = _check_binary(mask, shape or (), "mask")
        super().__init__(shape, shape)
        self.register_buffer("mask", mask)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.mask, len(self.in_shape))

    def forward(self, x: Tensor) -> Tensor:
        return self.mask * x

    def adjoint(self, y: Tensor) -> Tensor:
        return self.mask * y

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self

    def gram(self) -> LinearOperator:
        return self

    def _diagonal_symbol(self, like=None):
        return self.mask
