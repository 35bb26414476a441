r"""Small training helpers shared by the neural-ODE examples: NFE counting and the RNODE baseline.

The RNODE baseline (Finlay, Jacobsen, Nurbekyan & Oberman, "How to train your neural ODE",
ICML 2020) integrates, next to the state :math:`z`, the kinetic energy
:math:`\int\|f(t, z)\|^2 dt` and a Hutchinson estimate of the Jacobian Frobenius norm
:math:`\int\|\varepsilon^\top \partial f/\partial z\|^2 dt` (:math:`\varepsilon\sim N(0, I)`
drawn once per solve), and adds both, weighted, to the loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["NFECounter", "RNODEDynamics"]


class NFECounter(nn.Module):
    """Wrap ``func(t, y)`` and count its calls in :attr:`nfe` (reset with :meth:`reset`).

    Raises
    ------
    TypeError
        If ``func`` is not callable.
    """

    def __init__(self, func: Callable) -> None:
        super().__init__()
        if not callable(func):
            raise TypeError(f"func must be callable, got {type(func).__name__}")
        self.func = func
        self.nfe = 0

    def reset(self) -> None:
        """Set the counter to 0."""
        self.nfe = 0

    def forward(self, t: Tensor, y: Tensor) -> Tensor:
        self.nfe += 1
        return self.func(t, y)


class RNODEDynamics(nn.Module):
    r"""Augmented dynamics ``(z, e, j) -> (f, ||f||^2, ||eps^T J||^2)`` for the RNODE penalty.

    The state is a tuple ``(z, e, j)`` with ``z`` of shape ``(B, *D)`` and ``e, j`` of shape
    ``(B,)`` (start them at 0). Call :meth:`resample` before each solve to draw the Hutchinson
    probe :math:`\varepsilon` of shape ``z.shape``.

    Parameters
    ----------
    func : nn.Module
        ``func(t, z)``, the dynamics being trained.

    Raises
    ------
    RuntimeError
        If called before :meth:`resample` or with a ``z`` of another shape than the probe.
    """

    def __init__(self, func: nn.Module) -> None:
        super().__init__()
        self.func = func
        self.eps: Tensor | None = None

    def resample(self, like: Tensor, generator: torch.Generator | None = None) -> None:
        """Draw a new Gaussian probe shaped like ``like``."""
        self.eps = torch.randn(like.shape, generator=generator, dtype=like.dtype,
                               device=like.device)

    def forward(self, t: Tensor, state: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        z = state[0]
        if self.eps is None or self.eps.shape != z.shape:
            raise RuntimeError("call resample(z0) before solving: the Hutchinson probe is missing "
                               "or has the wrong shape")
        with torch.enable_grad():
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            f = self.func(t, z)
            (vjp,) = torch.autograd.grad(f, z, self.eps, create_graph=True)
        b = z.shape[0]
        return f, f.reshape(b, -1).pow(2).sum(1), vjp.reshape(b, -1).pow(2).sum(1)
