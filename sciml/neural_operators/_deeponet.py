"""DeepONet (Lu et al. 2021) in the same trunk/branch form as :class:`MultiONet`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._base import AbstractActivation
from ._multionet import _InnerProductOperator

__all__ = ["DeepONet"]


class DeepONet(_InnerProductOperator):
    r"""DeepONet: one inner product of the last branch and trunk features plus a bias.

    .. math:: \mathcal G(a)(x) = \langle b(\beta), t(x)\rangle + b_0,\qquad \beta = \mathrm{enc}(a)

    with the same stacks as :class:`MultiONet` (lifting layer, activation on every layer). It
    equals a MultiONet with ``sum_layers=1`` and ``w_1 = 1`` (tested).

    Parameters
    ----------
    in_size_x, in_size_a, trunk_layers, branch_layers, activation_trunk, activation_branch, encoder
        As for :class:`MultiONet`; only the last widths must match.

    References
    ----------
    L. Lu, P. Jin, G. Pang, Z. Zhang, G. E. Karniadakis, "Learning nonlinear operators via
    DeepONet based on the universal approximation theorem of operators", Nat. Mach. Intell. 3
    (2021) 218–229.
    """

    def __init__(self, in_size_x: int, in_size_a: int, trunk_layers: Sequence[int],
                 branch_layers: Sequence[int], *,
                 activation_trunk: AbstractActivation | None = None,
                 activation_branch: AbstractActivation | None = None,
                 encoder: nn.Module | None = None) -> None:
        super().__init__(in_size_x, in_size_a, trunk_layers, branch_layers, activation_trunk,
                         activation_branch, 1, encoder)
        self.register_buffer("_one", torch.ones(1))

    def _coefficients(self) -> Tensor:
        return self._one
