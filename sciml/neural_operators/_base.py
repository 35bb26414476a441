"""The abstract neural operator, residual activations with closed-form derivatives, MLP stacks.

Every operator here maps an input function (given as a vector: sensor values, an encoded field,
or a latent code β) and query points x to the output function's values at x. The layers keep
closed-form first and second derivatives of their activations so that a trunk net can carry its
spatial Jacobian and Laplacian forward *once per batch* (:meth:`MLPStack.jet`), instead of one
autograd graph per sample.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "AbstractNeuralOperator", "AbstractActivation", "TanhSin", "SiLUSin", "SiLUId", "Tanh", "SiLU",
    "MLPStack", "Jet",
]


class AbstractNeuralOperator(nn.Module, abc.ABC):
    r"""An operator network :math:`\mathcal G(a)(x)`: input functions to output values at x.

    Concrete operators implement :meth:`forward` for the two layouts:

    * **Cartesian product**: ``x`` of shape ``(N, d_x)`` shared by the batch → ``(B, N)``;
    * **batch**: ``x`` of shape ``(B, N, d_x)``, one point set per sample → ``(B, N)``.
    """

    @abc.abstractmethod
    def forward(self, a: Tensor, x: Tensor) -> Tensor:
        """Evaluate the operator on inputs ``a`` (``(B, ...)``) at points ``x``."""

    def n_parameters(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def _check_points(x: Tensor, batch: int, d_x: int) -> bool:
    """Validate query points; return True for the Cartesian layout ``(N, d_x)``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor of shape (N, d_x) or (B, N, d_x)")
    if x.ndim == 2 and x.shape[1] == d_x:
        return True
    if x.ndim == 3 and x.shape[2] == d_x and x.shape[0] == batch:
        return False
    raise ValueError(f"x must have shape (N, {d_x}) (Cartesian layout) or ({batch}, N, {d_x}) "
                     f"(batch layout), got {tuple(x.shape)}")


# ------------------------------------------------------------------------------ activations
class AbstractActivation(nn.Module, abc.ABC):
    """A scalar activation σ with closed-form σ' and σ'' (for forward-mode spatial derivatives)."""

    @abc.abstractmethod
    def forward(self, z: Tensor) -> Tensor:
        """σ(z)."""

    @abc.abstractmethod
    def derivative(self, z: Tensor) -> Tensor:
        """σ'(z)."""

    @abc.abstractmethod
    def second_derivative(self, z: Tensor) -> Tensor:
        """σ''(z)."""

    def value_and_derivatives(self, z: Tensor, order: int) -> tuple[Tensor, ...]:
        """``(σ, σ')`` (``order=1``) or ``(σ, σ', σ'')`` (``order=2``), sharing common terms
        where a subclass can (the default calls the three methods)."""
        out = (self(z), self.derivative(z))
        return out + (self.second_derivative(z),) if order == 2 else out


def _silu_d(s: Tensor) -> tuple[Tensor, Tensor]:
    sig = torch.sigmoid(s)
    d1 = sig * (1 + s * (1 - sig))
    d2 = sig * (1 - sig) * (2 + s * (1 - 2 * sig))
    return d1, d2


class Tanh(AbstractActivation):
    """σ(z) = tanh z."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(z)

    def derivative(self, z: Tensor) -> Tensor:
        return 1 - torch.tanh(z) ** 2

    def second_derivative(self, z: Tensor) -> Tensor:
        t = torch.tanh(z)
        return -2 * t * (1 - t ** 2)


class SiLU(AbstractActivation):
    """σ(z) = z·sigmoid(z)."""

    def forward(self, z: Tensor) -> Tensor:
        return nn.functional.silu(z)

    def derivative(self, z: Tensor) -> Tensor:
        return _silu_d(z)[0]

    def second_derivative(self, z: Tensor) -> Tensor:
        return _silu_d(z)[1]


class TanhSin(AbstractActivation):
    r"""Residual activation :math:`\sigma(z) = \tanh(\sin(\pi(z+1))) + z` (DGenNO ``Tanh_Sin``)."""

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(torch.sin(math.pi * (z + 1))) + z

    def derivative(self, z: Tensor) -> Tensor:
        t = torch.tanh(torch.sin(math.pi * (z + 1)))
        return (1 - t ** 2) * math.pi * torch.cos(math.pi * (z + 1)) + 1

    def second_derivative(self, z: Tensor) -> Tensor:
        return self.value_and_derivatives(z, 2)[2]

    def value_and_derivatives(self, z: Tensor, order: int) -> tuple[Tensor, ...]:
        s = torch.sin(math.pi * (z + 1))
        c = math.pi * torch.cos(math.pi * (z + 1))
        t = torch.tanh(s)
        dt = 1 - t ** 2
        out = (t + z, dt * c + 1)
        if order == 2:
            out = out + (-2 * t * dt * c ** 2 - dt * math.pi ** 2 * s,)
        return out


class SiLUSin(AbstractActivation):
    r"""Residual activation :math:`\sigma(z) = \mathrm{SiLU}(\sin(\pi(z+1))) + z` (``SiLU_Sin``)."""

    def forward(self, z: Tensor) -> Tensor:
        return nn.functional.silu(torch.sin(math.pi * (z + 1))) + z

    def derivative(self, z: Tensor) -> Tensor:
        s = torch.sin(math.pi * (z + 1))
        return _silu_d(s)[0] * math.pi * torch.cos(math.pi * (z + 1)) + 1

    def second_derivative(self, z: Tensor) -> Tensor:
        return self.value_and_derivatives(z, 2)[2]

    def value_and_derivatives(self, z: Tensor, order: int) -> tuple[Tensor, ...]:
        s = torch.sin(math.pi * (z + 1))
        c = math.pi * torch.cos(math.pi * (z + 1))
        sig = torch.sigmoid(s)
        d1 = sig * (1 + s * (1 - sig))
        out = (s * sig + z, d1 * c + 1)
        if order == 2:
            d2 = sig * (1 - sig) * (2 + s * (1 - 2 * sig))
            out = out + (d2 * c ** 2 - d1 * math.pi ** 2 * s,)
        return out


class SiLUId(AbstractActivation):
    r"""Residual activation :math:`\sigma(z) = \mathrm{SiLU}(z) + z` (DGenNO ``SiLU_Id``)."""

    def forward(self, z: Tensor) -> Tensor:
        return nn.functional.silu(z) + z

    def derivative(self, z: Tensor) -> Tensor:
        return _silu_d(z)[0] + 1

    def second_derivative(self, z: Tensor) -> Tensor:
        return _silu_d(z)[1]


# ------------------------------------------------------------------------------ MLP stack
class Jet:
    """Values, spatial Jacobians, Laplacians and Hessians of a stack's hidden layers at shared
    points.

    Attributes
    ----------
    values : list of Tensor, each ``(N, width)``
    jacobians : list of Tensor, each ``(N, width, d_x)`` (``None`` when not requested)
    laplacians : list of Tensor, each ``(N, width)`` (``None`` when not requested)
    hessians : list of Tensor, each ``(N, width, d_x, d_x)`` (``None`` when not requested)
    """

    def __init__(self, values: list[Tensor], jacobians: list[Tensor] | None,
                 laplacians: list[Tensor] | None,
                 hessians: list[Tensor] | None = None) -> None:
        self.values = values
        self.jacobians = jacobians
        self.laplacians = laplacians
        self.hessians = hessians


class MLPStack(nn.Module):
    r"""Lifting layer plus hidden layers, *every* layer followed by the activation.

    ``layers = [w_0, ..., w_{H}]``: ``Linear(in_size, w_0)`` + σ (the lifting layer, never summed),
    then ``Linear(w_{i-1}, w_i)`` + σ for ``i = 1..H``. :meth:`forward` returns the outputs of the
    ``H`` hidden layers (the candidates for the summed inner products of MultiONet).

    Parameters
    ----------
    in_size : int
    layers : sequence of int
        At least two widths.
    activation : AbstractActivation
    """

    def __init__(self, in_size: int, layers: Sequence[int], activation: AbstractActivation) -> None:
        super().__init__()
        layers = [int(w) for w in layers]
        if int(in_size) < 1:
            raise ValueError(f"in_size must be >= 1, got {in_size}")
        if len(layers) < 2 or min(layers) < 1:
            raise ValueError(f"layers must list at least two positive widths (lifting + hidden), "
                             f"got {layers}")
        if not isinstance(activation, AbstractActivation):
            raise TypeError(f"activation must be an AbstractActivation (e.g. TanhSin()), got "
                            f"{type(activation).__name__}")
        self.widths = tuple(layers)
        self.linears = nn.ModuleList(
            [nn.Linear(w_in, w_out)
             for w_in, w_out in zip([int(in_size), *layers[:-1]], layers, strict=True)])
        self.activation = activation

    def forward(self, x: Tensor) -> list[Tensor]:
        """Hidden-layer outputs ``[h_1, ..., h_H]``, each ``(..., w_i)``."""
        h = self.activation(self.linears[0](x))
        out = []
        for lin in self.linears[1:]:
            h = self.activation(lin(h))
            out.append(h)
        return out

    def jet(self, x: Tensor, *, jacobian: bool = True, laplacian: bool = False,
            hessian: bool = False) -> Jet:
        r"""Hidden outputs and their exact spatial derivatives at shared points ``x`` ``(N, d)``.

        Forward-mode propagation with the closed-form σ', σ'': for ``z = W h + b``,
        :math:`J_z = W J_h`, :math:`\Delta z = W \Delta h`, :math:`H_z = W H_h`; after σ,
        :math:`J = \sigma'(z) J_z`, :math:`\Delta = \sigma''(z)\,|J_z|^2 + \sigma'(z)\,\Delta z`
        and :math:`H = \sigma''(z)\,J_z J_z^\top + \sigma'(z)\,H_z`.
        Costs about ``1 + d_x`` (``2 + d_x`` with the Laplacian, ``1 + d_x + d_x^2`` with the
        Hessian) forward passes, once per batch.
        """
        want_j = jacobian or laplacian or hessian
        second = laplacian or hessian
        h = x
        jac = (torch.eye(x.shape[-1], dtype=x.dtype, device=x.device).expand(x.shape[0], -1, -1)
               if want_j else None)  # (N, d_in, d)
        lap = torch.zeros_like(x) if laplacian else None
        d = x.shape[-1]
        hes = x.new_zeros(x.shape[0], d, d, d) if hessian else None  # (N, d_in, d, d)
        values, jacs, laps, hess = [], [], [], []
        act = self.activation
        for i, lin in enumerate(self.linears):
            z = lin(h)
            if want_j:
                jz = (jac.transpose(1, 2) @ lin.weight.T).transpose(1, 2)  # (N, w_out, d)
                if second:
                    h, d1, d2 = act.value_and_derivatives(z, 2)
                    if laplacian:
                        lap = d2 * (jz ** 2).sum(-1) + d1 * (lap @ lin.weight.T)
                    if hessian:
                        hz = torch.einsum("nidk,oi->nodk", hes, lin.weight)
                        hes = (d2[..., None, None] * jz[..., :, None] * jz[..., None, :]
                               + d1[..., None, None] * hz)
                else:
                    h, d1 = act.value_and_derivatives(z, 1)
                jac = d1.unsqueeze(-1) * jz
            else:
                h = act(z)
            if i > 0:
                values.append(h)
                if jacobian:
                    jacs.append(jac)
                if laplacian:
                    laps.append(lap)
                if hessian:
                    hess.append(hes)
        return Jet(values, jacs if jacobian else None, laps if laplacian else None,
                   hess if hessian else None)
