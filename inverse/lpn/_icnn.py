"""Input-convex potentials: the networks behind :class:`~inverse.lpn.LPN`.

Two architectures, each described by a frozen configuration dataclass that is stored in
checkpoints:

* :class:`VectorLPNConfig` → :class:`VectorICNN`, the fully connected ICNN of the 1-D toy of
  Fang et al. (``exps/laplacian/network.py``), for inputs of shape ``(*batch, dim)``;
* :class:`ImageLPNConfig` → :class:`ConvICNN`, a fully convolutional ICNN whose potential is a sum
  over pixel positions of a scalar field, for inputs of shape ``(*batch, C, H, W)`` with any
  ``H, W``.

Convexity (Amos et al. 2017): every hidden layer is
:math:`z_{k} = \\sigma(W_k^{+} z_{k-1} + V_k x + b_k)` with :math:`\\sigma` = Softplus(β) (convex,
non-decreasing) and :math:`W_k^{+} \\ge 0` elementwise. The z-path weights are kept non-negative
*twice*: the forward pass uses ``weight.clamp_min(0)`` (so the potential is convex for any values
of the parameters), and :meth:`project_` clamps the stored parameters in place (called by
:func:`~inverse.lpn.train_lpn` after every optimizer step, so the stored weights are the effective
ones and receive gradients).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from sciml_inverse import check_int, check_real

__all__ = ["VectorLPNConfig", "ImageLPNConfig", "VectorICNN", "ConvICNN", "build_icnn"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_INIT_LOG_MEAN = ("the log-mean of the initial non-negative weights (e.g. -10), or None for "
                  "PyTorch's default")


@dataclasses.dataclass(frozen=True)
class VectorLPNConfig:
    """Architecture of a fully connected LPN for vectors of shape ``(*batch, dim)``.

    The potential (Fang et al. 2024, ``exps/laplacian/network.py``) is

    .. math::

        z_0 = \\sigma(L_0 x), \\quad z_k = \\sigma(L_k^{+} z_{k-1} + V_{k-1} x + b_{k-1})
        \\ (k = 1..K), \\quad \\psi(x) = L_{K+1}^{+} z_K + v^\\top x + c + \\alpha \\|x\\|^2,

    with :math:`\\sigma` = Softplus(β), ``K = num_layers`` and :math:`L_k^{+} \\ge 0`.
    The defaults (``dim=1``) give the reference 1-D toy network (10,502 parameters, no α).

    Parameters
    ----------
    dim : int
        Input dimension.
    hidden : int
        Width of the hidden layers.
    num_layers : int
        Number of hidden-to-hidden layers ``K`` (the reference has 4).
    beta : float
        Softplus sharpness β > 0.
    alpha : float
        Strong-convexity weight α ≥ 0: ψ gains α‖x‖² (α, not α/2, as in the reference), so the
        prox gains ``2 α x``. Use α > 0 when the regularizer or the inverse prox is needed.
    init_log_mean : float or None
        If given, the non-negative z-path weights are initialised to
        ``exp(N(init_log_mean, 0.1²))`` (the reference images use -10); ``None`` keeps PyTorch's
        default initialisation (then clamped), as in the 1-D reference notebook.

    Raises
    ------
    ValueError
        For a non-positive size, β ≤ 0 or α < 0.
    """

    dim: int = 1
    hidden: int = 50
    num_layers: int = 4
    beta: float = 10.0
    alpha: float = 0.0
    init_log_mean: float | None = None

    def __post_init__(self) -> None:
        check_int("dim", self.dim, 1)
        check_int("hidden", self.hidden, 1)
        check_int("num_layers", self.num_layers, 0)
        check_real("beta", self.beta, positive=True)
        check_real("alpha", self.alpha, positive=False)
        check_real("init_log_mean", self.init_log_mean, allow_none=True, hint=_INIT_LOG_MEAN)


@dataclasses.dataclass(frozen=True)
class ImageLPNConfig:
    """Architecture of a fully convolutional LPN for images ``(*batch, C, H, W)`` of any size.

    .. math::

        z_1 = \\sigma(U * x + b_1), \\quad
        z_k = \\sigma(W_k^{+} * z_{k-1} + V_k * x + b_k) \\ (k = 2..K), \\quad
        \\psi(x) = \\sum_{p} \\big(w^{+} * z_K + v * x + c\\big)_p + \\alpha \\|x\\|^2,

    all convolutions with stride 1 and "same" padding (``padding_mode``), ``K = num_layers``,
    :math:`W_k^{+}, w^{+} \\ge 0` (``w`` is 1×1). The potential is a **sum over pixel positions**
    ``p`` of a scalar field, so the model accepts any image size, the prox ``f = ∇ψ`` is
    translation equivariant away from the borders and does not depend on the image size (a mean
    would scale ``f`` by ``1/(HW)``). Each output pixel of ``f`` depends on a window of
    ``receptive_field`` pixels (twice the one-sided reach of ψ's field, plus one).

    Parameters
    ----------
    in_channels : int
    hidden : int
        Channels of the hidden layers.
    num_layers : int
        Number of hidden layers ``K ≥ 1``.
    kernel_size : int
        Odd kernel size of all convolutions except the final 1×1.
    dilations : tuple of int or None
        Per-layer dilations (length ``num_layers``); ``None`` means all 1.
    beta : float
        Softplus sharpness β > 0.
    alpha : float
        Strong-convexity weight (ψ += α‖x‖²).
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        Padding of every convolution; all are linear maps, so convexity is preserved.
    init_log_mean : float or None
        Non-negative weights initialised to ``exp(N(init_log_mean, 0.1²))`` (reference: -10);
        ``None`` keeps PyTorch's default (clamped).

    Raises
    ------
    ValueError
        For an even kernel, wrong ``dilations`` length, unknown padding mode, β ≤ 0 or α < 0.

    Examples
    --------
    >>> from inverse.lpn import ImageLPNConfig
    >>> cfg = ImageLPNConfig(in_channels=1, hidden=16, num_layers=3)
    >>> cfg.receptive_field
    13
    """

    in_channels: int = 1
    hidden: int = 32
    num_layers: int = 3
    kernel_size: int = 3
    dilations: tuple[int, ...] | None = None
    beta: float = 10.0
    alpha: float = 0.01
    padding_mode: str = "zeros"
    init_log_mean: float | None = -10.0

    def __post_init__(self) -> None:
        check_int("in_channels", self.in_channels, 1)
        check_int("hidden", self.hidden, 1)
        check_int("num_layers", self.num_layers, 1)
        check_int("kernel_size", self.kernel_size, 1)
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (for 'same' padding), got "
                             f"{self.kernel_size}")
        if self.dilations is not None:
            if isinstance(self.dilations, list):
                object.__setattr__(self, "dilations", tuple(self.dilations))
            if not isinstance(self.dilations, tuple) or len(self.dilations) != self.num_layers:
                raise ValueError(f"dilations must be a tuple of {self.num_layers} ints (one per "
                                 f"layer) or None, got {self.dilations!r}")
            for d in self.dilations:
                check_int("each dilation", d, 1)
        check_real("beta", self.beta, positive=True)
        check_real("alpha", self.alpha, positive=False)
        if self.padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got "
                             f"{self.padding_mode!r}")
        check_real("init_log_mean", self.init_log_mean, allow_none=True, hint=_INIT_LOG_MEAN)

    @property
    def reach(self) -> int:
        """One-sided reach (pixels) of the scalar field of ψ: ``Σ_k d_k (kernel_size-1)/2``."""
        dil = self.dilations or (1,) * self.num_layers
        return sum(d * (self.kernel_size - 1) // 2 for d in dil)

    @property
    def receptive_field(self) -> int:
        """Width of the window of ``x`` that one output pixel of ``f = ∇ψ`` depends on."""
        return 4 * self.reach + 1


def _init_nonneg_(weight: Tensor, log_mean: float | None) -> None:
    with torch.no_grad():
        if log_mean is not None:
            weight.normal_(log_mean, 0.1).exp_()
        else:
            weight.clamp_(min=0.0)


class VectorICNN(nn.Module):
    """The scalar field φ of a :class:`VectorLPNConfig` (without the α‖x‖² term).

    ``forward(x)`` maps ``(B, dim)`` to ``(B,)``; inputs are validated by :class:`LPN`.
    """

    def __init__(self, config: VectorLPNConfig) -> None:
        super().__init__()
        if not isinstance(config, VectorLPNConfig):
            raise TypeError(f"expected a VectorLPNConfig, got {type(config).__name__}")
        self.config = config
        h, d, k = config.hidden, config.dim, config.num_layers
        self.lin = nn.ModuleList(
            [nn.Linear(d, h, bias=False)]
            + [nn.Linear(h, h, bias=False) for _ in range(k)]
            + [nn.Linear(h, 1, bias=False)]
        )
        self.res = nn.ModuleList([nn.Linear(d, h) for _ in range(k)] + [nn.Linear(d, 1)])
        for lin in self.lin[1:]:
            _init_nonneg_(lin.weight, config.init_log_mean)
        self.act = nn.Softplus(beta=config.beta)

    def nonneg_parameters(self) -> list[nn.Parameter]:
        """The parameters constrained to be ≥ 0 (z-path weights)."""
        return [lin.weight for lin in self.lin[1:]]

    def forward(self, x: Tensor) -> Tensor:
        z = self.act(self.lin[0](x))
        for k in range(1, len(self.lin) - 1):
            z = self.act(F.linear(z, self.lin[k].weight.clamp_min(0)) + self.res[k - 1](x))
        out = F.linear(z, self.lin[-1].weight.clamp_min(0)) + self.res[-1](x)
        return out.squeeze(-1)


class ConvICNN(nn.Module):
    """The scalar field φ of an :class:`ImageLPNConfig` (without α‖x‖²), summed over pixels.

    ``forward(x)`` maps ``(B, C, H, W)`` to ``(B,)``; :meth:`field` returns the per-pixel field
    ``(B, 1, H, W)`` before the sum.
    """

    def __init__(self, config: ImageLPNConfig) -> None:
        super().__init__()
        if not isinstance(config, ImageLPNConfig):
            raise TypeError(f"expected an ImageLPNConfig, got {type(config).__name__}")
        self.config = config
        c, h, k, ks = config.in_channels, config.hidden, config.num_layers, config.kernel_size
        dil = config.dilations or (1,) * k

        def conv(cin: int, cout: int, d: int, bias: bool, size: int = ks) -> nn.Conv2d:
            return nn.Conv2d(cin, cout, size, padding=d * (size - 1) // 2, dilation=d, bias=bias,
                             padding_mode=config.padding_mode)

        self.first = conv(c, h, dil[0], True)
        self.wz = nn.ModuleList([conv(h, h, dil[i], False) for i in range(1, k)])
        self.wx = nn.ModuleList([conv(c, h, dil[i], True) for i in range(1, k)])
        self.out_z = nn.Conv2d(h, 1, 1, bias=False)
        self.out_x = nn.Conv2d(c, 1, 1, bias=True)
        for m in [*self.wz, self.out_z]:
            _init_nonneg_(m.weight, config.init_log_mean)
        self.act = nn.Softplus(beta=config.beta)

    def nonneg_parameters(self) -> list[nn.Parameter]:
        """The parameters constrained to be ≥ 0 (z-path weights)."""
        return [m.weight for m in self.wz] + [self.out_z.weight]

    @staticmethod
    def _conv_pos(m: nn.Conv2d, z: Tensor) -> Tensor:
        return m._conv_forward(z, m.weight.clamp_min(0), m.bias)

    def field(self, x: Tensor) -> Tensor:
        """The scalar field ``(B, 1, H, W)`` whose sum over pixels is φ(x)."""
        z = self.act(self.first(x))
        for wz, wx in zip(self.wz, self.wx, strict=True):
            z = self.act(self._conv_pos(wz, z) + wx(x))
        return self._conv_pos(self.out_z, z) + self.out_x(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.field(x).sum(dim=(1, 2, 3))


def build_icnn(config: VectorLPNConfig | ImageLPNConfig) -> VectorICNN | ConvICNN:
    """Build the ICNN described by ``config``.

    Raises
    ------
    TypeError
        If ``config`` is not one of the LPN configuration classes.
    """
    if isinstance(config, VectorLPNConfig):
        return VectorICNN(config)
    if isinstance(config, ImageLPNConfig):
        return ConvICNN(config)
    raise TypeError(f"config must be a VectorLPNConfig or an ImageLPNConfig, got "
                    f"{type(config).__name__}")
