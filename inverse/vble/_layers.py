"""Layers of the compressive autoencoder: lower bound, GDN/IGDN, masked convolution, conv helpers.

Re-implemented in plain PyTorch from the papers (Ballé, Laparra & Simoncelli 2016, "Density
modeling of images using a generalized normalization transformation", ICLR 2016, for GDN and
its non-negative reparametrisation; Ballé et al. 2018 and Minnen, Ballé & Toderici 2018 for the
lower bound and the masked "type A" context convolution). Submodule and buffer names follow
CompressAI (InterDigital, BSD 3-Clause Clear licence) so that its state dicts load unchanged:
``beta``, ``gamma``, ``beta_reparam.pedestal``, ``beta_reparam.lower_bound.bound``, ``mask``.
No CompressAI code is copied; see :mod:`inverse.vble._cae` for why we do not depend on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciml_inverse import check_int, check_real

__all__ = [
    "LowerBound",
    "lower_bound",
    "NonNegativeParametrizer",
    "GDN",
    "MaskedConv2d",
    "conv",
    "deconv",
]


class _LowerBoundFunction(torch.autograd.Function):
    """``max(x, bound)`` whose gradient passes where ``x >= bound`` or where it points back up."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound.to(dtype=x.dtype))

    @staticmethod
    def backward(ctx, grad_output: Tensor):  # type: ignore[override]
        x, bound = ctx.saved_tensors
        # A descent step x <- x - lr * g increases x when g < 0: that gradient points back into
        # the feasible set and is kept even where the bound is active.
        keep = (x >= bound) | (grad_output < 0)
        return grad_output * keep.to(grad_output.dtype), None


def lower_bound(x: Tensor, bound: Tensor | float) -> Tensor:
    """:math:`\\max(x, b)` with the "gradient points back inside" backward rule.

    The forward value is ``torch.maximum(x, bound)``. The backward pass lets the incoming
    gradient :math:`g` through where :math:`x \\ge b` (the bound is inactive) and also where
    :math:`g < 0`, i.e. where a gradient-descent step would move :math:`x` up, back toward the
    feasible set; elsewhere it is zero. Without the second case a parameter stuck below the
    bound would never receive a gradient again (Ballé et al. 2018, appendix 6.1).

    Parameters
    ----------
    x : Tensor
        Any shape.
    bound : Tensor or float
        Scalar bound (a float is converted in ``x``'s dtype; :class:`LowerBound` modules hold
        it as a float32 buffer, as CompressAI does, e.g. 0.11 -> 0.10999999940).

    Returns
    -------
    Tensor
        Same shape as ``x``.
    """
    if not isinstance(bound, Tensor):
        bound = torch.tensor(float(bound), dtype=x.dtype, device=x.device)
    return _LowerBoundFunction.apply(x, bound.to(device=x.device))


class LowerBound(nn.Module):
    """Module form of :func:`lower_bound`, holding the bound in the buffer ``bound`` (shape (1,)).

    Parameters
    ----------
    bound : float
    """

    bound: Tensor

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([check_real("bound", bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return lower_bound(x, self.bound)


class NonNegativeParametrizer(nn.Module):
    """Stores a non-negative quantity :math:`v \\ge m` through an unconstrained parameter.

    With pedestal :math:`p = \\epsilon^2` (:math:`\\epsilon = 2^{-18}`), the stored parameter
    :math:`\\theta` maps to :math:`v = \\max(\\theta, \\sqrt{m + p})^2 - p \\ge m`, with the
    :class:`LowerBound` gradient rule on the max (Ballé, Laparra & Simoncelli 2016). Gradient
    steps on :math:`\\theta` can therefore never make :math:`v` drop below ``minimum``, and the
    square root parametrisation keeps the effective step size on :math:`v` proportional to
    :math:`\\sqrt v`, which stabilises small values.

    Parameters
    ----------
    minimum : float
        Lower bound :math:`m \\ge 0` of the represented value.
    reparam_offset : float
        :math:`\\epsilon`.
    """

    pedestal: Tensor

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2.0**-18) -> None:
        super().__init__()
        self.minimum: float = check_real(  # type: ignore[assignment]
            "minimum", minimum, positive=False, hint="the lower bound of the represented value")
        self.reparam_offset: float = check_real(  # type: ignore[assignment]
            "reparam_offset", reparam_offset, positive=True)
        self.register_buffer("pedestal", torch.tensor([self.reparam_offset**2]))
        self.lower_bound = LowerBound((self.minimum + self.reparam_offset**2) ** 0.5)

    def init(self, value: Tensor) -> Tensor:
        """The parameter :math:`\\theta = \\sqrt{\\max(v + p, p)}` representing ``value``."""
        return torch.sqrt(torch.maximum(value + self.pedestal, self.pedestal))

    def forward(self, theta: Tensor) -> Tensor:
        return self.lower_bound(theta) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization and its approximate inverse (IGDN).

    For an input :math:`x` of shape (B, C, H, W), at every pixel

    .. math::
        \\mathrm{GDN}(x)_i = \\frac{x_i}{\\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2}},
        \\qquad
        \\mathrm{IGDN}(x)_i = x_i \\sqrt{\\beta_i + \\sum_j \\gamma_{ij} x_j^2},

    with :math:`\\beta_i \\ge 10^{-6}` and :math:`\\gamma_{ij} \\ge 0` kept non-negative by
    :class:`NonNegativeParametrizer` (Ballé, Laparra & Simoncelli 2016). Initialised at
    :math:`\\beta = 1`, :math:`\\gamma = 0.1 I`.

    Parameters
    ----------
    channels : int
    inverse : bool
        IGDN (multiply) instead of GDN (divide).
    beta_min : float
    gamma_init : float
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6,
                 gamma_init: float = 0.1) -> None:
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.inverse = bool(inverse)
        check_real("beta_min", beta_min, positive=False)
        gamma_init = check_real("gamma_init", gamma_init, positive=False)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(self.channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(
            self.gamma_reparam.init(gamma_init * torch.eye(self.channels)))

    def effective_beta(self) -> Tensor:
        """:math:`\\beta` (shape (C,)), after the non-negative reparametrisation."""
        return self.beta_reparam(self.beta)

    def effective_gamma(self) -> Tensor:
        """:math:`\\gamma` (shape (C, C)), after the non-negative reparametrisation."""
        return self.gamma_reparam(self.gamma)

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.effective_beta()
        gamma = self.effective_gamma().reshape(c, c, 1, 1)
        norm = F.conv2d(x * x, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}"


class MaskedConv2d(nn.Conv2d):
    """Causal ("type A") or "type B" masked convolution of PixelCNN, as context model.

    The kernel is multiplied by a mask that keeps only the taps strictly before the centre in
    raster order (type A; type B also keeps the centre): the output at pixel :math:`p` depends
    only on inputs at pixels before :math:`p` (van den Oord et al. 2016; Minnen et al. 2018).
    The mask is applied in ``forward`` (the stored weight is left untouched). It is held in the
    *non-persistent* buffer ``mask``: it is rebuilt from ``mask_type`` and not written to state
    dicts (it would double the stored size of the context model); CompressAI's
    ``context_prediction.mask`` entry is dropped on loading. Takes the
    :class:`torch.nn.Conv2d` arguments plus ``mask_type``.
    """

    mask: Tensor

    def __init__(self, *args, mask_type: str = "A", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        self.mask_type = mask_type
        mask = torch.ones_like(self.weight.data)
        _, _, h, w = mask.shape
        mask[:, :, h // 2, w // 2 + (mask_type == "B"):] = 0
        mask[:, :, h // 2 + 1:] = 0
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x, self.weight * self.mask, self.bias)


def conv(in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> nn.Conv2d:
    """``Conv2d`` with padding ``kernel_size // 2``: (B, Cin, H, W) -> (B, Cout, H/s, W/s)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                     padding=kernel_size // 2)


def deconv(in_channels: int, out_channels: int, kernel_size: int = 5,
           stride: int = 2) -> nn.ConvTranspose2d:
    """``ConvTranspose2d`` inverting :func:`conv`'s shape: (B, Cin, H, W) -> (B, Cout, sH, sW)."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride,
                              output_padding=stride - 1, padding=kernel_size // 2)
