"""Entropy models of the compressive autoencoder: factorized prior and conditional Gaussian.

Only the *likelihoods* are implemented (what training and VBLE need); there is no arithmetic
coder, no quantised CDF table and no auxiliary quantile loss.

* :class:`EntropyBottleneck`: the non-parametric factorized density of Ballé et al. 2018
  (appendix 6.1), one univariate density per channel whose cumulative is a small monotone
  network; the likelihood of a value is its mass on the unit interval around it.
* :class:`GaussianConditional`: the Gaussian of mean :math:`\\mu` and scale :math:`s` convolved
  with :math:`U(-\\tfrac12, \\tfrac12)` (Ballé et al. 2018; Minnen et al. 2018).

Both floor the likelihoods at ``likelihood_bound`` (1e-9) with :class:`~._layers.LowerBound`.
Parameter and buffer names follow CompressAI (``matrices.i``, ``biases.i``, ``factors.i``,
``likelihood_lower_bound.bound``, ``lower_bound_scale.bound``) so that its state dicts load;
CompressAI-only entries (``quantiles``, ``target``, ``_offset``, ``_quantized_cdf``,
``_cdf_length``, ``scale_table``, ``scale_bound``) are not part of these modules.

References
----------
J. Ballé, D. Minnen, S. Singh, S. J. Hwang, N. Johnston, "Variational image compression with a
scale hyperprior", ICLR 2018. D. Minnen, J. Ballé, G. Toderici, "Joint autoregressive and
hierarchical priors for learned image compression", NeurIPS 2018.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciml_inverse import check_int, check_real, full_precision, upcast

from ._layers import LowerBound, lower_bound

__all__ = ["EntropyBottleneck", "GaussianConditional", "gaussian_likelihood"]


class EntropyBottleneck(nn.Module):
    """Factorized (per-channel, non-parametric) prior :math:`p(z)` of the hyper-latent.

    For channel :math:`c`, the cumulative is :math:`\\sigma(L_c(t))` where :math:`L_c` is a
    composition of ``len(filters) + 1`` layers acting on a scalar,

    .. math::
        u \\mapsto \\mathrm{softplus}(H^{(k)}) u + b^{(k)}, \\quad
        u \\mapsto u + \\tanh(a^{(k)}) \\odot \\tanh(u) \\text{ (all but the last layer)},

    monotone by construction (softplus matrices, :math:`\\tanh(a) > -1`). The likelihood is

    .. math:: p(z) = \\max\\big(\\sigma(L_c(z + \\tfrac12)) - \\sigma(L_c(z - \\tfrac12)),
              10^{-9}\\big).

    Parameters
    ----------
    channels : int
    filters : tuple of int
        Hidden widths of :math:`L_c` (default (3, 3, 3, 3)).
    init_scale : float
        Initial spread of the density (default 10).
    likelihood_bound : float
        Floor of the likelihoods (default 1e-9; 0 disables it).
    """

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3),
                 init_scale: float = 10.0, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.channels = check_int("channels", channels, 1)
        self.filters = tuple(check_int(f"filters[{i}]", f, 1) for i, f in enumerate(filters))
        self.init_scale: float = check_real(  # type: ignore[assignment]
            "init_scale", init_scale, positive=True, hint="the initial spread of the density")
        widths = (1, *self.filters, 1)
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            init = math.log(math.expm1(1.0 / scale / widths[i + 1]))
            self.matrices.append(
                nn.Parameter(torch.full((self.channels, widths[i + 1], widths[i]), init)))
            self.biases.append(
                nn.Parameter(torch.empty(self.channels, widths[i + 1], 1).uniform_(-0.5, 0.5)))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(self.channels, widths[i + 1], 1)))
        self.likelihood_bound: float = check_real(  # type: ignore[assignment]
            "likelihood_bound", likelihood_bound, positive=False,
            hint="the smallest likelihood (> 0 keeps log(p) finite, 0 disables the floor)")
        self.likelihood_lower_bound = LowerBound(self.likelihood_bound)

    def logits_cumulative(self, t: Tensor) -> Tensor:
        """:math:`L_c(t)` for ``t`` of shape (C, 1, n) -> (C, 1, n)."""
        logits = t
        for i in range(len(self.filters) + 1):
            logits = torch.matmul(F.softplus(self.matrices[i]), logits) + self.biases[i]
            if i < len(self.filters):
                logits = logits + torch.tanh(self.factors[i]) * torch.tanh(logits)
        return logits

    def _likelihood_flat(self, values: Tensor) -> Tensor:
        lower = self.logits_cumulative(values - 0.5)
        upper = self.logits_cumulative(values + 0.5)
        # sigma(u) - sigma(l) = sigma(-l) - sigma(-u): evaluate on the side where both sigmoids
        # are far from 1, which avoids cancellation in the upper tail.
        flip = torch.where(lower + upper > 0, -1.0, 1.0).to(values.dtype)
        return torch.abs(torch.sigmoid(flip * upper) - torch.sigmoid(flip * lower))

    def likelihood(self, z: Tensor) -> Tensor:
        """Floored likelihood of ``z`` (B, C, H, W) -> same shape, in (0, 1]."""
        if z.ndim != 4 or z.shape[1] != self.channels:
            raise ValueError(f"EntropyBottleneck expects (B, {self.channels}, H, W), "
                             f"got shape {tuple(z.shape)}")
        b, c, h, w = z.shape
        with full_precision():  # likelihoods in float32 under mixed precision
            values = upcast(z).permute(1, 0, 2, 3).reshape(c, 1, -1)
            lik = self._likelihood_flat(values).reshape(c, b, h, w).permute(1, 0, 2, 3)
            if self.likelihood_bound > 0:
                lik = self.likelihood_lower_bound(lik)
        return lik

    def forward(self, z: Tensor, noise: bool | None = None) -> tuple[Tensor, Tensor]:
        """Perturbed/rounded ``z`` and its likelihood.

        With ``noise`` (default: ``self.training``) returns :math:`\\tilde z = z + u`,
        :math:`u \\sim U(-\\tfrac12, \\tfrac12)`; otherwise :math:`\\mathrm{round}(z)`
        (CompressAI rounds around the medians of its learned quantiles; we do not keep the
        quantiles, i.e. the medians are taken as 0).
        """
        if noise is None:
            noise = self.training
        z_hat = z + torch.empty_like(z).uniform_(-0.5, 0.5) if noise else torch.round(z)
        return z_hat, self.likelihood(z_hat)


def _gaussian_bin_mass(values: Tensor, s: Tensor) -> Tensor:
    """:math:`\\Phi((\\tfrac12 - v)/s) - \\Phi((-\\tfrac12 - v)/s)` for :math:`v \\ge 0`.

    With :math:`\\Phi(t) = \\tfrac12 \\mathrm{erfc}(-t/\\sqrt 2)`; for :math:`v \\ge 0` both
    arguments are on the lower side where erfc is accurate (no cancellation against 1).
    """
    c = -(2.0**-0.5)
    return 0.5 * torch.erfc(c * (0.5 - values) / s) - 0.5 * torch.erfc(c * (-0.5 - values) / s)


def gaussian_likelihood(y: Tensor, scales: Tensor, means: Tensor | None = None,
                        scale_bound: float = 0.11, likelihood_bound: float = 1e-9) -> Tensor:
    """Mass of :math:`N(\\mu, s^2) * U(-\\tfrac12, \\tfrac12)` at ``y`` (functional form).

    .. math::
        p(y) = \\max\\Big(\\Phi\\big(\\tfrac{\\frac12 - |y-\\mu|}{s}\\big)
               - \\Phi\\big(\\tfrac{-\\frac12 - |y-\\mu|}{s}\\big), 10^{-9}\\Big),
        \\qquad s \\leftarrow \\max(s, 0.11),

    with :math:`\\Phi(t) = \\tfrac12\\mathrm{erfc}(-t/\\sqrt2)` (accurate in the lower tail) and
    both maxima using the :func:`~._layers.lower_bound` gradient rule.

    Parameters
    ----------
    y, scales : Tensor
        Broadcastable shapes.
    means : Tensor, optional
        Default 0.
    scale_bound, likelihood_bound : float

    Returns
    -------
    Tensor
        The broadcast shape.
    """
    values = torch.abs(y - means if means is not None else y)
    lik = _gaussian_bin_mass(values, lower_bound(scales, scale_bound))
    if likelihood_bound > 0:
        lik = lower_bound(lik, likelihood_bound)
    return lik


class GaussianConditional(nn.Module):
    """Conditional Gaussian entropy model :math:`p(y \\mid \\mu, s)` of the latent.

    See :func:`gaussian_likelihood` for the formula; the bounds are held in the buffers
    ``lower_bound_scale.bound`` (0.11) and ``likelihood_lower_bound.bound`` (1e-9).

    Parameters
    ----------
    scale_bound : float
    likelihood_bound : float
    """

    def __init__(self, scale_bound: float = 0.11, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        scale_bound = check_real("scale_bound", scale_bound, positive=True,
                                 hint="the smallest Gaussian scale (0.11 in CompressAI)")
        self.lower_bound_scale = LowerBound(scale_bound)
        self.likelihood_bound = check_real("likelihood_bound", likelihood_bound, positive=False,
                                           hint="the smallest likelihood (> 0 keeps log(p) "
                                                "finite)")
        self.likelihood_lower_bound = LowerBound(self.likelihood_bound)

    def likelihood(self, y: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """Floored likelihood of ``y`` given ``scales`` and ``means`` (same shapes)."""
        with full_precision():  # likelihoods in float32 under mixed precision
            y, scales = upcast(y), upcast(scales)
            values = torch.abs(y - upcast(means) if means is not None else y)
            lik = _gaussian_bin_mass(values, self.lower_bound_scale(scales))
            if self.likelihood_bound > 0:
                lik = self.likelihood_lower_bound(lik)
        return lik

    def forward(self, y: Tensor, scales: Tensor, means: Tensor | None = None,
                noise: bool | None = None) -> tuple[Tensor, Tensor]:
        """Perturbed/rounded ``y`` and its likelihood.

        With ``noise`` (default ``self.training``): :math:`y + u`; otherwise
        :math:`\\mathrm{round}(y - \\mu) + \\mu` (CompressAI's "dequantize" mode).
        """
        if noise is None:
            noise = self.training
        if noise:
            y_hat = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        elif means is not None:
            y_hat = torch.round(y - means) + means
        else:
            y_hat = torch.round(y)
        return y_hat, self.likelihood(y_hat, scales, means)
