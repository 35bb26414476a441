"""Compressive autoencoder (CAE): mbt2018 hyperprior + masked-convolution context model.

This is the prior of VBLE / VBLE-xz (:mod:`inverse.vble`): an image :math:`x` is encoded to a
latent :math:`y = g_a(x)` (M × H/16 × W/16) and a hyper-latent :math:`z = h_a(y)`
(N × H/64 × W/64); the entropy model gives the joint density

.. math::
    p(y, z) = p(z) \\, p(y \\mid z), \\qquad
    p(y \\mid z) = \\prod_i \\big[N(\\mu_i, s_i^2) * U(-\\tfrac12, \\tfrac12)\\big](y_i),
    \\qquad (\\mu, s) = e\\big(h_s(z), c(y)\\big),

where :math:`p(z)` is the factorized :class:`~._entropy.EntropyBottleneck`, :math:`c` the causal
masked 5×5 convolution (run on the whole latent at once — no sequential decoding) and :math:`e`
the 1×1 "entropy parameters" network. :math:`-\\log_2 p(y, z)` is the bit count
(:meth:`CompressiveAutoencoder.latent_bits`). Training with
:math:`\\alpha (2^n - 1)^2 \\mathrm{MSE} + \\mathrm{bpp}` makes
:math:`p(x \\mid y) = N(g_s(y), \\gamma^2 I)` with
:math:`\\gamma^2 = 1 / (2 \\ln 2 \\, \\alpha (2^n-1)^2)` (:attr:`CompressiveAutoencoder.gamma`), and
VBLE-xz adds a variance decoder
:math:`\\sigma_\\theta(y) = \\mathrm{sigmoid}(g_{s,std}(y)) + 2\\cdot 10^{-4}`.

Architecture (Minnen, Ballé & Toderici 2018, CompressAI's ``mbt2018``; C input channels):

=====================  =====================================================================
``g_a``                conv5×5/2 C→N, GDN, conv5×5/2 N→N, GDN, conv5×5/2 N→N, GDN, conv5×5/2 N→M
``h_a``                conv3×3 M→N, LReLU, conv5×5/2 N→N, LReLU, conv5×5/2 N→N
``h_s``                deconv5×5/2 N→H1, LReLU, deconv5×5/2 H1→H2, LReLU, conv3×3 H2→H3
``context_prediction`` masked conv5×5 (type A) M→K
``entropy_parameters`` conv1×1 (H3+K)→E1, LReLU, conv1×1 E1→E2, LReLU, conv1×1 E2→2M
``g_s``, ``g_s_std``   mirror of ``g_a`` with deconvolutions and IGDN, M→…→C
=====================  =====================================================================

mbt2018 has (H1, H2, H3) = (M, 3M/2, 2M), K = 2M, (E1, E2) = (10M/3, 8M/3): the defaults of
:class:`CAEConfig` when the width options are ``None``. With ``CAEConfig(in_channels=3,
N=192, M=320, std_decoder=False)`` the model *is* mbt2018 (25.5 M parameters) and loads a
CompressAI checkpoint (:func:`~._checkpoint.cae_from_compressai`). :meth:`CAEConfig.small` is
the lighter configuration of the shipped models (see its docstring for parameter counts).

Why not depend on CompressAI: compressai 1.2.8 pins ``numpy<2`` and pulls ``torch-geometric``
(and imports torchvision at import time); VBLE needs only the likelihoods, not the entropy
coder, so the few layers involved are re-implemented here from the papers. Module, parameter and
buffer names follow CompressAI (InterDigital Communications, BSD 3-Clause Clear licence), so its
state dicts load; the test ``tests/test_inverse_vble_cae.py`` checks likelihoods, bitrates and
reconstructions against golden values produced once by compressai 1.2.8
(``scripts/make_compressai_golden.py``). The deepinv port of VBLE (PR #1017, ``models/cae.py``)
was the precedent for this design.

References
----------
J. Ballé, D. Minnen, S. Singh, S. J. Hwang, N. Johnston, "Variational image compression with a
scale hyperprior", ICLR 2018. D. Minnen, J. Ballé, G. Toderici, "Joint autoregressive and
hierarchical priors for learned image compression", NeurIPS 2018. M. Biquard et al., "Variational
Bayes image restoration with compressive autoencoders" (arXiv 2311.17744) and "Deep priors for
satellite image restoration with accurate uncertainties" (arXiv 2412.04130). J. Bégaint et al.,
"CompressAI: a PyTorch library and evaluation platform for end-to-end compression research"
(arXiv 2011.03029).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciml_inverse import check_int, check_real

from ._entropy import EntropyBottleneck, GaussianConditional
from ._layers import GDN, MaskedConv2d, conv, deconv

__all__ = ["CAEConfig", "CompressiveAutoencoder", "pad_to_multiple", "crop"]

#: Floor added to the variance decoder's sigmoid output (normalized units).
STD_FLOOR = 2e-4


def _positive_int(name: str, value: object) -> int:
    check_int(f"CAEConfig.{name}", value, 1)
    return int(value)  # type: ignore[call-overload]


def _int_tuple(name: str, value: object, length: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != length:
        raise ValueError(f"CAEConfig.{name} must be None or a tuple of {length} positive ints, "
                         f"got {value!r}")
    return tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))


@dataclass(frozen=True)
class CAEConfig:
    """Configuration of a :class:`CompressiveAutoencoder`.

    Parameters
    ----------
    in_channels : int
        Image channels C (1 for panchromatic, 3 for RGB; any C >= 1 works).
    N : int
        Channels of the transforms and of the hyper-latent z.
    M : int
        Channels of the latent y (the issue asks M >= 192 for shipped models: the decoder's fit
        ceiling grows with M).
    n_bits : int
        Bit depth; images are normalized by :math:`2^n - 1` into [0, 1] (8 or 12 typically).
    alpha : float
        Rate–distortion weight the model was (or will be) trained with, loss
        :math:`\\alpha (2^n-1)^2 \\mathrm{MSE} + \\mathrm{bpp}`; sets
        :attr:`~CompressiveAutoencoder.gamma`.
    std_decoder : bool
        Build the variance decoder ``g_s_std`` (VBLE-xz).
    hyper_channels : tuple of 3 int, optional
        Output widths (H1, H2, H3) of the three ``h_s`` layers; ``None`` = mbt2018's
        (M, 3M/2, 2M).
    context_channels : int, optional
        Output channels K of the masked context convolution; ``None`` = 2M.
    entropy_channels : tuple of 2 int, optional
        Hidden widths (E1, E2) of ``entropy_parameters``; ``None`` = (10M/3, 8M/3).

    Raises
    ------
    ValueError
        For a non-positive size, ``n_bits`` outside [1, 16], ``alpha`` not finite and > 0 or a
        malformed width tuple.
    TypeError
        For an ``alpha`` that is not a real number (a non-int size or ``n_bits`` raises
        :class:`sciml_inverse.ArgumentTypeError`, both a ``TypeError`` and a ``ValueError``).

    Examples
    --------
    >>> CAEConfig().resolved_hyper_channels
    (192, 288, 384)
    >>> CAEConfig.small().context_channels
    192
    """

    in_channels: int = 1
    N: int = 64
    M: int = 192
    n_bits: int = 12
    alpha: float = 0.0067
    std_decoder: bool = True
    hyper_channels: tuple[int, int, int] | None = None
    context_channels: int | None = None
    entropy_channels: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name in ("in_channels", "N", "M"):
            _positive_int(name, getattr(self, name))
        object.__setattr__(self, "n_bits", check_int("CAEConfig.n_bits", self.n_bits, 1,
                                                     maximum=16, hint="8 or 12 typically"))
        object.__setattr__(self, "alpha", check_real(
            "CAEConfig.alpha", self.alpha, positive=True,
            hint="the rate-distortion weight of the training loss (default 0.0067)"))
        if not isinstance(self.std_decoder, bool):
            raise ValueError(f"CAEConfig.std_decoder must be a bool, got {self.std_decoder!r}")
        object.__setattr__(self, "hyper_channels",
                           _int_tuple("hyper_channels", self.hyper_channels, 3))
        object.__setattr__(self, "entropy_channels",
                           _int_tuple("entropy_channels", self.entropy_channels, 2))
        if self.context_channels is not None:
            _positive_int("context_channels", self.context_channels)

    @classmethod
    def small(cls, **overrides) -> CAEConfig:
        """The light configuration of the shipped models (M = 192, ≈ 3.9 M parameters).

        N = 64, M = 192, ``hyper_channels=(96, 144, 192)``, ``context_channels=192``,
        ``entropy_channels=(320, 256)``. With the variance decoder and C = 1: 3,872,626
        parameters (g_a 0.53 M, g_s 0.53 M, g_s_std 0.53 M, h_a 0.32 M, h_s 0.75 M, context
        0.92 M, entropy parameters 0.30 M), a 7.8 MB file with ``save_cae(..., half=True)``;
        against 7,445,026 parameters (h_s 2.69 M, context 1.84 M, entropy parameters 1.02 M)
        for ``CAEConfig()``, which has mbt2018's entropy-model widths. Keyword arguments
        override any field.
        """
        fields = dict(N=64, M=192, hyper_channels=(96, 144, 192), context_channels=192,
                      entropy_channels=(320, 256))
        fields.update(overrides)
        return cls(**fields)

    @property
    def resolved_hyper_channels(self) -> tuple[int, int, int]:
        """(H1, H2, H3) of ``h_s`` with mbt2018's defaults filled in."""
        if self.hyper_channels is not None:
            return self.hyper_channels  # type: ignore[return-value]
        return (self.M, self.M * 3 // 2, self.M * 2)

    @property
    def resolved_context_channels(self) -> int:
        """K of ``context_prediction`` with mbt2018's default filled in."""
        return self.context_channels if self.context_channels is not None else 2 * self.M

    @property
    def resolved_entropy_channels(self) -> tuple[int, int]:
        """(E1, E2) of ``entropy_parameters`` with mbt2018's defaults filled in."""
        if self.entropy_channels is not None:
            return self.entropy_channels  # type: ignore[return-value]
        return (self.M * 10 // 3, self.M * 8 // 3)

    def to_dict(self) -> dict:
        """Plain dict of the fields (tuples as lists); :meth:`from_dict` inverts it."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> CAEConfig:
        """Rebuild from :meth:`to_dict`.

        Raises
        ------
        ValueError
            If ``d`` is not a dict or has fields this version does not know.
        """
        if not isinstance(d, dict):
            raise ValueError(f"not a CAEConfig dict: {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"CAE configuration has fields {sorted(unknown)} unknown to this "
                             f"version of sciml-inverse (known: {sorted(known)}); upgrade the "
                             f"library or use a checkpoint written by this version")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Pad an image batch on the bottom and right to sides that are multiples of ``multiple``.

    Reflect padding (mirror without repeating the edge pixel); when the padding exceeds the
    image side it is applied repeatedly (a reflection of the reflection), and a side of 1 pixel
    is replicated.

    Parameters
    ----------
    x : Tensor
        (..., H, W) with at least 3 dimensions, e.g. (B, C, H, W).
    multiple : int

    Returns
    -------
    x_padded : Tensor
        (..., H', W') with H', W' the smallest multiples of ``multiple`` >= H, W.
    size : tuple of int
        (H, W), for :func:`crop`.

    Raises
    ------
    ValueError
        If ``multiple < 1`` or ``x`` has fewer than 3 dimensions or an empty side.
    """
    check_int("multiple", multiple, 1)
    if not isinstance(x, Tensor) or x.ndim < 3:
        raise ValueError("pad_to_multiple expects a tensor (..., H, W) with at least 3 "
                         f"dimensions, got {getattr(x, 'shape', type(x))}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if h < 1 or w < 1:
        raise ValueError(f"cannot pad an empty image of size {(h, w)}")
    ph, pw = (-h) % multiple, (-w) % multiple
    lead = x.shape[:-2]
    out = x.reshape(-1, 1, h, w) if x.ndim != 4 else x
    while ph > 0 or pw > 0:
        ch, cw = out.shape[-2], out.shape[-1]
        sh = min(ph, ch - 1) if ch > 1 else 0
        sw = min(pw, cw - 1) if cw > 1 else 0
        if sh == 0 and sw == 0:  # 1-pixel side(s): replicate what is left
            out = F.pad(out, (0, pw, 0, ph), mode="replicate")
            break
        out = F.pad(out, (0, sw, 0, sh), mode="reflect")
        ph, pw = ph - sh, pw - sw
    if x.ndim != 4:
        out = out.reshape(*lead, out.shape[-2], out.shape[-1])
    return out, (h, w)


def crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``x[..., :H, :W]``: undo :func:`pad_to_multiple`.

    Raises
    ------
    ValueError
        If ``size`` is larger than ``x``'s sides or not two positive ints.
    """
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ValueError(f"size must be (H, W) with positive ints, got {size!r}")
    h, w = int(size[0]), int(size[1])
    if h > x.shape[-2] or w > x.shape[-1]:
        raise ValueError(f"cannot crop a {tuple(x.shape[-2:])} image to {(h, w)}")
    return x[..., :h, :w]


def _synthesis(M: int, N: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        deconv(M, N), GDN(N, inverse=True),
        deconv(N, N), GDN(N, inverse=True),
        deconv(N, N), GDN(N, inverse=True),
        deconv(N, out_channels),
    )


class CompressiveAutoencoder(nn.Module):
    """mbt2018 compressive autoencoder with an optional variance decoder (see module docs).

    Images are (B, C, H, W) in normalized units ([0, 1] after division by :math:`2^n-1`) with
    H, W multiples of :attr:`pad_multiple` = 64 (use :func:`pad_to_multiple` / :func:`crop`).
    Latents: y (B, M, H/16, W/16), z (B, N, H/64, W/64).

    Parameters
    ----------
    config : CAEConfig, optional
        Default ``CAEConfig()``.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`CAEConfig`.

    Examples
    --------
    >>> import torch
    >>> from inverse.vble import CAEConfig, CompressiveAutoencoder
    >>> cae = CompressiveAutoencoder(CAEConfig(N=8, M=12)).eval()
    >>> x = torch.rand(2, 1, 64, 64)
    >>> y, z = cae.analysis(x)
    >>> tuple(y.shape), tuple(z.shape), tuple(cae.latent_bits(y, z).shape)
    ((2, 12, 4, 4), (2, 8, 1, 1), (2,))
    """

    pad_multiple: int = 64

    def __init__(self, config: CAEConfig | None = None) -> None:
        super().__init__()
        if config is None:
            config = CAEConfig()
        if not isinstance(config, CAEConfig):
            raise TypeError(f"config must be a CAEConfig, got {type(config).__name__}")
        self.config = config
        C, N, M = config.in_channels, config.N, config.M
        h1, h2, h3 = config.resolved_hyper_channels
        k = config.resolved_context_channels
        e1, e2 = config.resolved_entropy_channels
        self.g_a = nn.Sequential(
            conv(C, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, N), GDN(N),
            conv(N, M),
        )
        self.g_s = _synthesis(M, N, C)
        self.h_a = nn.Sequential(
            conv(M, N, kernel_size=3, stride=1), nn.LeakyReLU(),
            conv(N, N), nn.LeakyReLU(),
            conv(N, N),
        )
        self.h_s = nn.Sequential(
            deconv(N, h1), nn.LeakyReLU(),
            deconv(h1, h2), nn.LeakyReLU(),
            conv(h2, h3, kernel_size=3, stride=1),
        )
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(h3 + k, e1, 1), nn.LeakyReLU(),
            nn.Conv2d(e1, e2, 1), nn.LeakyReLU(),
            nn.Conv2d(e2, 2 * M, 1),
        )
        self.context_prediction = MaskedConv2d(M, k, kernel_size=5, padding=2, stride=1)
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(scale_bound=0.11)
        self.g_s_std = _synthesis(M, N, C) if config.std_decoder else None

    # ----------------------------------------------------------------------------- properties
    @property
    def gamma(self) -> float:
        """Std of :math:`p(x \\mid y)` in normalized units,
        :math:`\\sqrt{1 / (2 \\ln 2 \\, \\alpha (2^n-1)^2)}`."""
        c = self.config
        return math.sqrt(1.0 / (2.0 * math.log(2.0) * c.alpha * (2**c.n_bits - 1) ** 2))

    @property
    def has_std_decoder(self) -> bool:
        return self.g_s_std is not None

    # ----------------------------------------------------------------------------- checks
    def _check_image(self, x: Tensor, name: str = "x") -> None:
        C = self.config.in_channels
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != C:
            raise ValueError(f"{name} must have shape (B, {C}, H, W) for this {C}-channel CAE, "
                             f"got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor (normalized to [0, 1]), "
                            f"got dtype {x.dtype}")
        m = self.pad_multiple
        if x.shape[-2] % m or x.shape[-1] % m or x.shape[-2] == 0 or x.shape[-1] == 0:
            raise ValueError(f"{name} has size {tuple(x.shape[-2:])}; H and W must be positive "
                             f"multiples of {m}: pad with pad_to_multiple(x, {m}) and crop back")
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values; fill no-data pixels first")

    def _check_latents(self, y: Tensor, z: Tensor | None = None) -> None:
        M, N = self.config.M, self.config.N
        if not isinstance(y, Tensor) or y.ndim != 4 or y.shape[1] != M:
            raise ValueError(f"y must have shape (B, {M}, h, w), got "
                             f"{tuple(getattr(y, 'shape', ()))}")
        if z is None:
            return
        if not isinstance(z, Tensor) or z.ndim != 4 or z.shape[1] != N:
            raise ValueError(f"z must have shape (B, {N}, h/4, w/4), got "
                             f"{tuple(getattr(z, 'shape', ()))}")
        if z.shape[0] != y.shape[0] or 4 * z.shape[-2] != y.shape[-2] \
                or 4 * z.shape[-1] != y.shape[-1]:
            raise ValueError(f"y {tuple(y.shape)} and z {tuple(z.shape)} do not match: z must be "
                             f"(B, N, h/4, w/4) for y (B, M, h, w) (z = h_a(y))")

    # ----------------------------------------------------------------------------- pieces
    def analysis(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Latents without noise or quantization: :math:`y = g_a(x)`, :math:`z = h_a(y)`.

        Parameters
        ----------
        x : Tensor
            (B, C, H, W), H and W multiples of 64.

        Returns
        -------
        y : Tensor
            (B, M, H/16, W/16).
        z : Tensor
            (B, N, H/64, W/64).

        Raises
        ------
        ValueError
            Wrong channel count or size, or non-finite values.
        """
        self._check_image(x)
        y = self.g_a(x)
        return y, self.h_a(y)

    def decode(self, y: Tensor) -> Tensor:
        """:math:`g_s(y)`: (B, M, h, w) -> (B, C, 16h, 16w)."""
        self._check_latents(y)
        return self.g_s(y)

    def decode_std(self, y: Tensor) -> Tensor:
        """:math:`\\sigma_\\theta(y) = \\mathrm{sigmoid}(g_{s,std}(y)) + 2\\cdot 10^{-4}`, shape of
        :meth:`decode`.

        Raises
        ------
        ValueError
            If the model was built with ``std_decoder=False``.
        """
        if self.g_s_std is None:
            raise ValueError("this CAE has no variance decoder (config.std_decoder=False); "
                             "build it with CAEConfig(std_decoder=True) and train g_s_std")
        self._check_latents(y)
        return torch.sigmoid(self.g_s_std(y)) + STD_FLOOR

    def entropy_parameters_of(self, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Scales and means (each (B, M, h, w)) of :math:`p(y \\mid z)`, context run on ``y``."""
        params = self.h_s(z)
        ctx = self.context_prediction(y)
        scales, means = self.entropy_parameters(torch.cat((params, ctx), dim=1)).chunk(2, 1)
        return scales, means

    def likelihoods(self, y: Tensor, z: Tensor) -> dict[str, Tensor]:
        """Floored likelihoods :math:`p(y \\mid z)` and :math:`p(z)` at the given continuous
        latents (no noise, no rounding): ``{"y": (B, M, h, w), "z": (B, N, h/4, w/4)}``."""
        self._check_latents(y, z)
        scales, means = self.entropy_parameters_of(y, z)
        return {"y": self.gaussian_conditional.likelihood(y, scales, means),
                "z": self.entropy_bottleneck.likelihood(z)}

    def latent_bits(self, y: Tensor, z: Tensor) -> Tensor:
        """:math:`-\\log_2 p(y \\mid z) - \\log_2 p(z)` per batch element, shape (B,).

        Evaluated at the given continuous latents, without noise, differentiable with respect to
        ``y``, ``z`` and the parameters (likelihoods floored at 1e-9, scales at 0.11). Divide by
        H·W for bits per pixel; multiply by ln 2 for nats.

        Raises
        ------
        ValueError
            If the shapes of ``y`` (B, M, h, w) and ``z`` (B, N, h/4, w/4) do not match.
        """
        lik = self.likelihoods(y, z)
        return -(torch.log2(lik["y"]).sum(dim=(1, 2, 3)) + torch.log2(lik["z"]).sum(dim=(1, 2, 3)))

    def forward(self, x: Tensor) -> dict:
        """Training pass in CompressAI's convention.

        In training mode :math:`\\tilde y = y + u`, :math:`\\tilde z = z + u'` with uniform noise
        :math:`U(-\\tfrac12, \\tfrac12)`, and the *same* :math:`\\tilde y` is fed to the context
        model, the likelihood and the decoder, so ``-log2`` of the returned likelihoods sums to
        ``latent_bits(y_hat, z_hat)`` (CompressAI draws a second noise sample for the
        likelihood). In eval mode CompressAI's deterministic path: :math:`\\hat z =
        \\mathrm{round}(z)`, :math:`\\hat y = \\mathrm{round}(y)` for the context and the decoder,
        and the likelihood of :math:`\\mathrm{round}(y - \\mu) + \\mu`.

        Parameters
        ----------
        x : Tensor
            (B, C, H, W) in [0, 1], H and W multiples of 64.

        Returns
        -------
        dict
            ``"x_hat"`` (B, C, H, W), ``"likelihoods"``: ``{"y": (B, M, H/16, W/16),
            "z": (B, N, H/64, W/64)}``, and the perturbed latents ``"y_hat"``, ``"z_hat"``.

        Raises
        ------
        ValueError
            Wrong channel count or size, or non-finite values.
        """
        y, z = self.analysis(x)
        noise = self.training
        z_hat, z_lik = self.entropy_bottleneck(z, noise=noise)
        if noise:
            y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
            scales, means = self.entropy_parameters_of(y_hat, z_hat)
            y_lik = self.gaussian_conditional.likelihood(y_hat, scales, means)
        else:
            y_hat = torch.round(y)
            scales, means = self.entropy_parameters_of(y_hat, z_hat)
            _, y_lik = self.gaussian_conditional(y, scales, means, noise=False)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_lik, "z": z_lik},
                "y_hat": y_hat, "z_hat": z_hat}

    # ----------------------------------------------------------------------------- CompressAI
    #: Entries of CompressAI state dicts that this implementation does not use (or, for the
    #: context model's ``mask``, rebuilds instead of storing).
    COMPRESSAI_ONLY_KEYS = ("quantiles", "target", "_offset", "_quantized_cdf", "_cdf_length",
                            "scale_table", "scale_bound", "mask")

    def load_compressai_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Load a CompressAI ``mbt2018`` / ``JointAutoregressiveHierarchicalPriors`` state dict.

        Drops the entries only the entropy coder uses (:attr:`COMPRESSAI_ONLY_KEYS`: the learned
        quantiles — so :meth:`forward` in eval mode rounds around 0 instead of CompressAI's
        medians —, CDF tables, ``scale_table``, ``scale_bound``, and the context ``mask``, which
        is rebuilt; a checkpoint whose context weights were masked in place by CompressAI's
        ``forward`` loads the same) and strips a ``module.``
        prefix. The variance decoder ``g_s_std`` (absent from CompressAI models) is left as is.

        Raises
        ------
        ValueError
            If keys are missing or unexpected, or shapes differ (the message lists them).
        """
        sd = {}
        for key, value in state_dict.items():
            key = key[len("module."):] if key.startswith("module.") else key
            if key.rsplit(".", 1)[-1] in self.COMPRESSAI_ONLY_KEYS:
                continue
            sd[key] = value
        own = self.state_dict()
        missing = [k for k in own if k not in sd and not k.startswith("g_s_std.")]
        unexpected = [k for k in sd if k not in own]
        wrong = [f"{k}: {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in sd
                 if k in own and sd[k].shape != own[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"state dict does not fit this CAE ({self.config}): missing "
                             f"{missing[:8]}, unexpected {unexpected[:8]}, shape mismatches "
                             f"{wrong[:8]}")
        self.load_state_dict(sd, strict=False)
