r"""MAP-z, VBLE-z and VBLE-xz restoration in the latent space of a compressive autoencoder.

Model (CompressAI names: :math:`y = g_a(x)` the latent, :math:`z = h_a(y)` the hyper-latent;
the VBLE papers call them :math:`z` and :math:`h`). The prior is the CAE's entropy model
:math:`p(y, z)` with the decoder likelihood :math:`p(x \mid y) = \mathcal N(D(y),
\operatorname{diag}\sigma_\theta^2(y))` (:meth:`~._cae.CompressiveAutoencoder.decode` and
:meth:`~._cae.CompressiveAutoencoder.decode_std`); the observation is
:math:`\mathbf y_{\rm obs} \sim \mathcal N(Ax, \operatorname{diag} v(Ax))` for any
:class:`operators.LinearOperator` :math:`A` and :class:`inverse.NoiseModel` :math:`v`.

Variational families (mean field):

* **VBLE-z**: :math:`q(y, z) = \prod_i U(\bar y_i \pm a_i/2)\prod_j U(\bar z_j \pm a'_j/2)`,
  samples :math:`x = D(\tilde y)/s` (latent-only: known to under-disperse the pixel std);
* **VBLE-xz**: additionally :math:`q(x \mid y) = \mathcal N(D(y),
  \operatorname{diag}(b^2\sigma_\theta^2(y)))`, samples
  :math:`x = (D(\tilde y) + b\odot\operatorname{sg}[\sigma_\theta(\tilde y)]\odot\varepsilon)/s`;
* **MAP-z**: Dirac masses at :math:`(\bar y, \bar z)`, point estimate :math:`D(\bar y)/s`.

Objective (the negative ELBO per unknown, :math:`N = C H W`, :math:`K` Monte-Carlo draws):

.. math::

    \mathcal L = \frac1{NK}\sum_{k=1}^K \mathrm{nll}(A x_k, \mathbf y_{\rm obs})
      + \lambda\,(\mathrm{KL}_z + \mathrm{KL}_x),\quad
    \mathrm{KL}_z = \frac1N\Bigl(\mathbb E_q[-\ln p(\tilde y, \tilde z)]
      - \sum_i\ln a_i - \sum_j\ln a'_j\Bigr),\quad
    \mathrm{KL}_x = \frac1{2N}\sum_{p}(b_p^2 - 1 - 2\ln b_p).

References
----------
M. Biquard, M. Chabert, F. Genin, C. Latry, T. Oberlin, "Variational Bayes image restoration with
compressive autoencoders", arXiv 2311.17744 (VBLE), and "Deep priors for satellite image
restoration with accurate uncertainties", arXiv 2412.04130 (VBLE-xz). Reference codes
MaudBqrd/VBLE and deepinv PR #1017; facts carried over, code written anew, their bugs fixed (see
``docs/guide/vble.rst``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from operators import LinearOperator
from sciml_inverse import (
    check_device,
    check_int,
    check_real,
    raise_if_interrupted,
    resolve_precision,
    upcast,
)
from sciml_inverse._deprecation import renamed_arguments

from .._noise import NoiseModel
from ._cae import CompressiveAutoencoder, crop, pad_to_multiple

__all__ = ["VBLEOptions", "VBLEResult", "vble_restore", "initial_estimate",
           "exact_conditional_sample", "estimate_decoder_error_scale", "decoder_error_rule",
           "observation_ratio"]

#: Bounds of the latent uniform widths ``a`` (reference: VBLE, deepinv PR #1017).
A_BOUNDS = (1.5e-5, 20.0)
#: Bounds of the image-space scale ``b`` of VBLE-xz.
B_BOUNDS = (1e-4, 3.0)

_METHODS = ("map_z", "vble_z", "vble_xz")
_CONDITIONALS = ("variational", "exact")
_PRECISIONS = ("fp32", "bf16", "auto")
#: Rademacher probes of the Hutchinson estimate of tr(A diag(sigma^2) A^T).
_TRACE_PROBES = 8
#: Smallest moment estimate c_hat^2 of the decoder error scale taken as informative.
C2_INFORMATIVE = 0.05
#: (observation ratio rho, gain k, fallback c_0) of the decoder error scale of the exact
#: conditional: c = k * c_hat where c_hat^2 > C2_INFORMATIVE, else c_0. Fitted by
#: scripts/fit_vble_decoder_error.py on 128x128 blocks of the held-out validation strips of the
#: train pan images (never the eval image; the shipped CAEs never trained on them), MTF 0.10 and
#: 0.25, decimation 1 and 2, noise vlow/low/high, 4 blocks, 48 records, model ``--model auto``
#: (xhigh), the default options of the CLI (stopping rule, mixed precision, antithetic samples)
#: and its 100 samples: k = geometric mean of c*/c_hat over the informative records (21 at
#: rho = 1, 6 at 1/4), c_0 = geometric mean of c* over the others, c* the scale whose samples
#: have z-score std 1 (docs/_static/vble_eval/decoder_error_fit.json).
DECODER_ERROR_RULE = ((0.25, 4.72, 1.50), (1.0, 1.71, 1.39))


def _check_int(name: str, value: object, minimum: int) -> None:
    check_int(f"VBLEOptions.{name}", value, minimum)


def _check_float(name: str, value: object, *, positive: bool) -> float:
    return check_real(f"VBLEOptions.{name}", value, positive=positive)  # type: ignore[return-value]


@renamed_arguments(n_iter="steps")
@dataclass(frozen=True)
class VBLEOptions:
    r"""Options of :func:`vble_restore`.

    Parameters
    ----------
    method : {"map_z", "vble_z", "vble_xz"}
        Posterior family (module docstring). ``"vble_xz"`` needs a CAE with a variance decoder.
    steps : int, default 300
        Adam steps (the reference values: 300 for deblurring and super-resolution, 400 for
        inpainting). The last iterate is kept. The former name ``n_iter`` still works
        (keyword and attribute), with a ``DeprecationWarning``.
    lr : float, default 0.1
        Adam learning rate.
    lam : float, default 1.0
        Weight :math:`\lambda` of the KL terms; 1 is the Bayesian value (the negative ELBO).
    rate_scale : float, default 1.0
        Training-free bitrate modulation :math:`s`: the initial estimate is encoded as
        :math:`g_a(s x_0)` and samples are decoded as :math:`D(y)/s`, so the implicit prior is
        :math:`p_s(x) \propto p_\theta(s x)`; :math:`s < 1` regularizes more strongly.
    n_samples : int, default 100
        Posterior samples drawn (without gradients) after the optimization for the MMSE image
        and the std map (at least 2 for VBLE; ignored by MAP-z).
    sample_batch : int, default 16
        Samples decoded per forward pass.
    return_samples : int, default 0
        Number of samples kept in :attr:`VBLEResult.samples` (at most ``n_samples``).
    grad_clip : float, default 20.0
        Gradient-norm clip of each image's variational parameters (all parameters of one image
        together, so images of a batch do not interact).
    seed : int, default 0
        Seed of every random draw (uniform latent noise, image-space noise).
    mc_samples : int, default 1
        Monte-Carlo draws :math:`K` per iteration (the data term and the rate are averaged over
        them; the reference uses 1).
    a_init, b_init : float, default 1.0
        Initial uniform widths :math:`a, a'` of the latents and image-space scale :math:`b`.
        The references start at 1 (the CAE's training noise, and :math:`q(x\mid y) =
        p(x\mid y)`); smaller values start closer to a sharp posterior (high SNR).
    conditional : {"variational", "exact"}, default "variational"
        Image-space part of the VBLE-xz posterior used for the samples. ``"variational"`` is
        the published :math:`q(x\mid y) = \mathcal N(D(y), b^2\sigma_\theta^2)`.
        ``"exact"`` keeps the optimized latent posterior :math:`q(y, z)` and draws :math:`x`
        from the *exact* Gaussian conditional :math:`p(x \mid y_{\rm lat}, y_{\rm obs})
        \propto \mathcal N(x; D, \Sigma)\,\mathcal N(y_{\rm obs}; Ax, V)` with
        :math:`\Sigma = c^2\operatorname{diag}\sigma_\theta^2`, by perturb-and-MAP (one
        normal-equation solve per sample, :meth:`operators.LinearOperator.solve_normal`), so
        the data move the image-space mean and the decoder no longer caps the result
        (module docstring). Needs ``method="vble_xz"``.
    decoder_error_scale : float, optional
        The factor :math:`c` of the decoder std in the exact conditional. ``None`` (default)
        estimates it per image from the data: :math:`c = k(\rho)\,\hat c` with
        :math:`\hat c^2 = (\|y - AD\|^2 - \operatorname{tr}V) /
        \operatorname{tr}(A\Sigma_\theta A^\top)` at the variational mean (moment matching of
        the residual) where :math:`\hat c^2 > 0.05`, else a fallback :math:`c_0(\rho)`; the
        gain and the fallback depend on the observation ratio :math:`\rho` and were fitted on
        held-out train crops (:func:`estimate_decoder_error_scale`,
        :func:`decoder_error_rule`).
    decoder_error_rule : tuple of (float, float, float), optional
        The table of :math:`(\rho, k, c_0)` rows that :func:`decoder_error_rule` interpolates,
        for a CAE with its own fitted rule (e.g. a model being compared with the shipped one).
        ``None`` (default): the shipped :data:`DECODER_ERROR_RULE`. Ignored when
        ``decoder_error_scale`` is given.
    antithetic : bool, default True
        Antithetic perturb-and-MAP samples of the exact conditional (``conditional="exact"``
        and ``n_samples >= 4``): each latent draw :math:`z_j` gives the pair
        :math:`x_j^\pm = \mu(z_j) \pm \eta_j` (the perturbations :math:`\varepsilon_{1,2}`
        and their negatives), whose average is the conditional mean :math:`\mu(z_j)` exactly,
        so the MMSE image is :math:`\frac1K\sum_j \mu(z_j)` (Rao-Blackwellized over the
        image-space noise) and the variance
        :math:`\widehat{\operatorname{Var}}_j\,\mu(z_j) + \frac1K\sum_j \eta_j^2` is
        unbiased (law of total variance). :math:`K = \lceil n/2 \rceil` pairs (an odd
        ``n_samples`` is rounded up); half the decoder passes, the same number of solves.
        The image-space noise carried 80-100 % of the posterior variance on 256² train tiles,
        so the Monte-Carlo error of the mean nearly vanishes: +0.03 to +0.06 dB there. Kept
        samples come in pairs ``(x+, x-)``; ``False`` draws independent samples.
    cg_rtol, cg_max_iter : float, int
        Tolerance and iteration cap of the conjugate-gradient solves of the exact conditional.
    cg_precondition : bool, default True
        Precondition those solves with the closed-form normal solve of ``op`` at the mean
        decoder std and noise weight (where ``op`` has one; plain CG otherwise). Same
        tolerance, so the same samples to ``cg_rtol``; on 256² satellite tiles it cut the CG
        iterations from 70-125 to 16-17 at low noise and from 19 to 10 at high noise. A std
        field that is rough at the pixel scale with a wide range can make it slower than plain
        CG (a test builds one); switch it off then.
    stop_rtol : float, default 0.0
        Stopping rule of the optimization (0 disables it: ``steps`` iterations always). The
        per-image loss is averaged over windows of ``stop_window`` iterations; after each
        window (from the second on) an image stops when the decrease of its window mean since
        the previous window is at most ``stop_rtol`` times its decrease since the first window
        (the objective has stalled: Adam only wanders in the Monte-Carlo noise). ``steps``
        stays the cap. Scale-free (the loss may be negative); an image of a batch that stops
        is frozen while the others go on, so a batch gives the result of its images run one
        by one.
    stop_window : int, default 25
        Window of the stopping rule, in iterations.
    precision : {"fp32", "bf16", "auto"}, default "fp32"
        Arithmetic of the decoder passes (mean and std decoders) of the optimization and of the
        posterior samples, under :func:`torch.autocast` with float32 weights
        (:func:`sciml_inverse.resolve_precision` says what runs where). The initial encoding,
        the data term, the rate (entropy model), the KL terms, ``x_zmmse`` and the decoder
        error estimate, the conditional solves and the mean/std accumulation stay in float32
        (float64 sums). ``"bf16"`` needs a CUDA device with bfloat16 or a CPU with
        AMX/AVX512-BF16 and falls back to float32 elsewhere; ``"auto"`` is ``"bf16"`` where it
        runs natively. A bfloat16 decoder has a relative error of about :math:`2\cdot10^{-3}`,
        far below the posterior std: on train crops it moved PSNR by under 0.01 dB and the
        ±2σ coverage by about 0.001 (``docs/guide/satellite.rst``, Throughput).
        Float16 is not offered: the loop has no gradient scaler.
    channels_last : bool, optional
        Run the CAE in the channels-last memory format during the call (its parameters are
        converted and restored afterwards; same arithmetic, faster oneDNN convolutions on
        CPUs). ``None`` (default): on CPUs and under mixed precision.

    Raises
    ------
    ValueError
        Unknown method or out-of-range values.
    """

    method: Literal["map_z", "vble_z", "vble_xz"] = "vble_xz"
    steps: int = 300
    lr: float = 0.1
    lam: float = 1.0
    rate_scale: float = 1.0
    n_samples: int = 100
    sample_batch: int = 16
    return_samples: int = 0
    grad_clip: float = 20.0
    seed: int = 0
    mc_samples: int = 1
    a_init: float = 1.0
    b_init: float = 1.0
    conditional: Literal["variational", "exact"] = "variational"
    decoder_error_scale: float | None = None
    decoder_error_rule: tuple[tuple[float, float, float], ...] | None = None
    antithetic: bool = True
    cg_rtol: float = 1e-4
    cg_max_iter: int = 300
    cg_precondition: bool = True
    stop_rtol: float = 0.0
    stop_window: int = 25
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"VBLEOptions.method must be one of {_METHODS}, got {self.method!r}")
        if self.conditional not in _CONDITIONALS:
            raise ValueError(f"VBLEOptions.conditional must be one of {_CONDITIONALS}, got "
                             f"{self.conditional!r}")
        if self.conditional == "exact" and self.method != "vble_xz":
            raise ValueError("VBLEOptions.conditional='exact' replaces q(x|y) of VBLE-xz and "
                             "needs method='vble_xz' (the decoder std sigma_theta), got "
                             f"method={self.method!r}")
        if self.decoder_error_scale is not None:
            _check_float("decoder_error_scale", self.decoder_error_scale, positive=True)
        if self.decoder_error_rule is not None:
            object.__setattr__(self, "decoder_error_rule",
                               _check_rule_table(self.decoder_error_rule))
        _check_float("cg_rtol", self.cg_rtol, positive=True)
        _check_int("cg_max_iter", self.cg_max_iter, 1)
        _check_int("steps", self.steps, 0)
        _check_float("stop_rtol", self.stop_rtol, positive=False)
        _check_int("stop_window", self.stop_window, 1)
        if self.precision not in _PRECISIONS:
            hint = ("; float16 is not offered (the restoration loop has no gradient scaler): "
                    "use 'bf16'" if self.precision == "fp16" else "")
            raise ValueError(f"VBLEOptions.precision must be one of {_PRECISIONS}, got "
                             f"{self.precision!r}{hint}")
        for name in ("cg_precondition", "antithetic"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"VBLEOptions.{name} must be True or False, got "
                                f"{getattr(self, name)!r}")
        if self.channels_last not in (None, True, False):
            raise TypeError(f"VBLEOptions.channels_last must be True, False or None, got "
                            f"{self.channels_last!r}")
        _check_float("lr", self.lr, positive=True)
        _check_float("lam", self.lam, positive=False)
        _check_float("rate_scale", self.rate_scale, positive=True)
        _check_int("n_samples", self.n_samples, 2 if self.method != "map_z" else 1)
        _check_int("sample_batch", self.sample_batch, 1)
        _check_int("return_samples", self.return_samples, 0)
        if self.return_samples > self.n_samples:
            raise ValueError(f"VBLEOptions.return_samples ({self.return_samples}) cannot exceed "
                             f"n_samples ({self.n_samples})")
        _check_float("grad_clip", self.grad_clip, positive=True)
        _check_int("seed", self.seed, 0)
        _check_int("mc_samples", self.mc_samples, 1)
        for name, (lo, hi) in (("a_init", A_BOUNDS), ("b_init", B_BOUNDS)):
            v = _check_float(name, getattr(self, name), positive=True)
            if not lo <= v <= hi:
                raise ValueError(f"VBLEOptions.{name} must lie in its bounds [{lo}, {hi}], got "
                                 f"{v}")


@renamed_arguments(iterations="n_iter")
@dataclass
class VBLEResult:
    r"""Output of :func:`vble_restore`; images are ``(B, C, H, W)`` in normalized units.

    Attributes
    ----------
    x_mmse : Tensor
        Posterior mean estimate, the mean of the ``n_samples`` samples (MAP-z: :math:`D(\bar
        y)/s`).
    x_std : Tensor
        Unbiased per-pixel standard deviation of the samples (MAP-z: zeros).
    x_zmmse : Tensor
        :math:`D(\bar y)/s`, the decoded variational mean.
    samples : Tensor of shape ``(k, B, C, H, W)`` or None
        The first ``options.return_samples`` samples.
    history : dict of list of float
        Per iteration, averaged over the batch: ``"loss"``, ``"data"`` (data term / N),
        ``"kl_z"``, ``"kl_x"``, and ``"bpp"`` (bits of the latent sample per pixel of the padded
        image).
    seconds : float
        Wall time of the whole call.
    seconds_optimization, seconds_sampling : float
        The optimization and the sampling parts of :attr:`seconds`.
    params : dict of Tensor
        Final variational parameters (detached): ``"y_bar"``, ``"z_bar"`` and, for VBLE,
        ``"a_y"``, ``"a_z"``; for VBLE-xz ``"b"`` (``(B, C, H, W)``).
    n_iter : list of int
        Optimization iterations done per image (``steps`` unless the stopping rule
        ``VBLEOptions.stop_rtol`` ended it earlier). The former name ``iterations`` still
        reads it, with a ``DeprecationWarning``.
    """

    x_mmse: Tensor
    x_std: Tensor
    x_zmmse: Tensor
    samples: Tensor | None
    history: dict[str, list[float]]
    seconds: float
    seconds_optimization: float = 0.0
    seconds_sampling: float = 0.0
    params: dict[str, Tensor] = field(default_factory=dict)
    n_iter: list[int] = field(default_factory=list)


class _ImageRNG:
    """One generator per image of a batch, each seeded with ``seed``.

    Image ``b``'s random draws come from its own stream in the order a one-image run makes
    them, so a batch of images gives the results of its images restored one by one (and a
    one-image batch the same draws as a single ``torch.Generator``). Draws are laid out as
    ``(k, B, ...)`` flattened to ``(k*B, ...)``, the layout of ``tensor.repeat(k, ...)``.
    Images marked inactive (stopped) draw nothing: their slots get ``fill``.
    """

    def __init__(self, n: int, seed: int, device: torch.device) -> None:
        self.gens = [torch.Generator(device=device).manual_seed(seed) for _ in range(n)]
        self.active: list[bool] | None = None

    def _draw(self, fn, k: int, shape: tuple[int, ...], like: Tensor, fill: float) -> Tensor:
        if not self.gens:  # an empty batch draws nothing
            return torch.empty((0, *shape), dtype=like.dtype, device=like.device)
        parts = []
        for b, g in enumerate(self.gens):
            if self.active is None or self.active[b]:
                parts.append(fn((k, *shape), generator=g, dtype=like.dtype, device=like.device))
            else:
                parts.append(torch.full((k, *shape), fill, dtype=like.dtype, device=like.device))
        return torch.stack(parts, 1).reshape(k * len(self.gens), *shape)

    def image(self, b: int) -> _ImageRNG:
        """The stream of image ``b`` alone (a one-image view sharing its generator)."""
        one = _ImageRNG(0, 0, torch.device("cpu"))
        one.gens = [self.gens[b]]
        return one

    def rand(self, k: int, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Uniform ``[0, 1)`` draws ``(k*B, *shape)`` (0.5 for inactive images)."""
        return self._draw(torch.rand, k, shape, like, 0.5)

    def randn(self, k: int, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """Standard normal draws ``(k*B, *shape)`` (0 for inactive images)."""
        return self._draw(torch.randn, k, shape, like, 0.0)


class _SharedRNG(_ImageRNG):
    """One ``torch.Generator`` for the whole batch (draws of shape ``(k*B, ...)`` at once)."""

    def __init__(self, gen: torch.Generator, n: int) -> None:
        self.gens = [gen]
        self.n = n
        self.active = None

    def _draw(self, fn, k: int, shape: tuple[int, ...], like: Tensor, fill: float) -> Tensor:
        return fn((k * self.n, *shape), generator=self.gens[0], dtype=like.dtype,
                  device=like.device)


def _as_rng(gen: _ImageRNG | torch.Generator, n: int) -> _ImageRNG:
    """Per-image streams as they are, or a plain generator shared by the ``n`` images."""
    return gen if isinstance(gen, _ImageRNG) else _SharedRNG(gen, n)


def _stalled(losses: list[Tensor], window: int, rtol: float) -> Tensor | None:
    """The stopping rule of :class:`VBLEOptions` (``stop_rtol``) on per-image losses
    (a list of ``(B,)`` tensors, one per iteration): a bool ``(B,)`` tensor after a complete
    window from the second on, else None."""
    t = len(losses)
    if rtol <= 0 or t < 2 * window or t % window:
        return None
    hist = torch.stack(losses[:window] + losses[t - 2 * window:])
    first = hist[:window].mean(0)
    prev, cur = hist[window:2 * window].mean(0), hist[2 * window:].mean(0)
    return (prev - cur) <= rtol * (first - cur)


class _BoundedClamp(torch.autograd.Function):
    """Clamp to ``[lo, hi]``; the gradient passes inside, or outside when it points back in.

    The two-sided version of CompressAI's ``LowerBound``: a parameter stuck outside the interval
    is not frozen by a zero gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, lo: float, hi: float) -> Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return x.clamp(lo, hi)

    @staticmethod
    def backward(ctx, g: Tensor):  # noqa: D102
        (x,) = ctx.saved_tensors
        inside = (x >= ctx.lo) & (x <= ctx.hi)
        back_in = ((x < ctx.lo) & (g < 0)) | ((x > ctx.hi) & (g > 0))
        return g * (inside | back_in).to(g.dtype), None, None


def bounded_exp(log_v: Tensor, bounds: tuple[float, float]) -> Tensor:
    r""":math:`\exp(\operatorname{clamp}(\log v, \log lo, \log hi))` with the pass-back gradient.

    Parameters
    ----------
    log_v : Tensor
        Log of the parameter (the optimized variable).
    bounds : (float, float)
        ``(lo, hi)``, positive.
    """
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    return torch.exp(_BoundedClamp.apply(log_v, lo, hi))


def kl_x_term(b: Tensor) -> Tensor:
    r""":math:`\tfrac12\sum_p (b_p^2 - 1 - 2\ln b_p)` per batch element (dims after the first).

    The KL divergence of :math:`\mathcal N(m, b^2\sigma^2)` from :math:`\mathcal N(m,\sigma^2)`
    summed over pixels; 0 at :math:`b = 1`, independent of :math:`m` and :math:`\sigma`.
    """
    return 0.5 * (b * b - 1 - 2 * torch.log(b)).flatten(1).sum(1)


def uniform_entropy(*widths: Tensor) -> Tensor:
    r"""Entropy of the mean-field uniform :math:`\prod_i U(\cdot \pm a_i/2)`: :math:`\sum_i\ln a_i`
    per batch element, summed over all the given width tensors."""
    return sum(torch.log(a).flatten(1).sum(1) for a in widths)


def _fill_no_data(x: Tensor, valid: Tensor) -> Tensor:
    """Fill pixels where ``valid`` is False by local means of the valid pixels (normalized
    box filtering at doubling radii; the global mean as a last resort)."""
    x = torch.where(valid, x, torch.zeros_like(x))
    w = valid.to(x.dtype)
    out = x.clone()
    todo = ~valid
    k = 2
    size = max(x.shape[-2:])
    while bool(todo.any()) and k < 2 * size:
        ks = 2 * k + 1
        num = F.avg_pool2d(x.flatten(0, 1).unsqueeze(1), ks, stride=1, padding=k,
                           count_include_pad=True)
        den = F.avg_pool2d(w.flatten(0, 1).unsqueeze(1), ks, stride=1, padding=k,
                           count_include_pad=True)
        num, den = num.reshape(x.shape), den.reshape(x.shape)
        ok = todo & (den > 1e-6)
        out = torch.where(ok, num / den.clamp(min=1e-12), out)
        todo = todo & ~ok
        k *= 2
    if bool(todo.any()):
        flat_w = w.flatten(1).sum(1).clamp(min=1)
        mean = (x.flatten(1).sum(1) / flat_w).reshape(-1, *([1] * (x.ndim - 1)))
        out = torch.where(todo, mean.expand_as(x), out)
    return out


def initial_estimate(y: Tensor, op: LinearOperator, *, rho: float = 1e-2) -> Tensor:
    r"""The starting image :math:`x_0` of :func:`vble_restore`.

    * ``op.out_shape == op.in_shape`` (deblurring, denoising, inpainting): :math:`x_0 = y`;
    * otherwise (decimation, super-resolution): the Tikhonov solution around the mean level
      :math:`m = \operatorname{mean}(y)` of each image,
      :math:`x_0 = m + (A^\top A + \rho I)^{-1}A^\top (y - A m)` (one ``op.solve_normal``:
      closed form for decimated circular blurs), which does not shrink the mean of operators
      that preserve constants;
    * then pixels that no observation sees (:math:`A^\top A\mathbf 1 \approx 0`: masked pixels
      of an :class:`operators.Mask`, the dropped pixels of a plain
      :class:`operators.Decimation`) are filled with a local mean of the others.

    Parameters
    ----------
    y : Tensor, shape ``(B, *op.out_shape)``
    op : LinearOperator, ``in_shape = (C, H, W)``
    rho : float, default 1e-2
        Damping of the Tikhonov solution (relative to an operator of norm about 1).

    Returns
    -------
    Tensor, shape ``(B, *op.in_shape)``.
    """
    if tuple(op.out_shape) == tuple(op.in_shape):
        x0 = y.clone()
    else:
        m = y.flatten(1).mean(1).reshape(-1, 1, 1, 1)
        xm = m.expand(y.shape[0], *op.in_shape)
        x0 = xm + op.solve_normal(op.adjoint(y - op(xm)), rho)
    ones = torch.ones((1, *op.in_shape), dtype=y.dtype, device=y.device)
    seen = op.adjoint(op(ones)).abs()
    seen = seen.expand(x0.shape)
    valid = seen > 1e-6 * seen.flatten(1).amax(1).reshape(-1, 1, 1, 1).clamp(min=1e-30)
    if bool(valid.all()):
        return x0
    return _fill_no_data(x0, valid)


def _check_inputs(y, op, noise, cae, options, x_init):
    if not isinstance(op, LinearOperator):
        raise TypeError(f"op must be an operators.LinearOperator, got {type(op).__name__}")
    if not isinstance(noise, NoiseModel):
        raise TypeError(f"noise must be a NoiseModel (GaussianNoise, PoissonGaussianNoise), got "
                        f"{type(noise).__name__}")
    if not isinstance(cae, CompressiveAutoencoder):
        raise TypeError(f"cae must be a CompressiveAutoencoder, got {type(cae).__name__}")
    if not isinstance(options, VBLEOptions):
        raise TypeError(f"options must be a VBLEOptions, got {type(options).__name__}")
    if len(op.in_shape) != 3:
        raise ValueError(f"op.in_shape must be the image shape (C, H, W), got {op.in_shape}")
    c = cae.config.in_channels
    if op.in_shape[0] != c:
        raise ValueError(f"the image has {op.in_shape[0]} band(s) (op.in_shape = {op.in_shape}) "
                         f"but the CAE expects {c}; use a {op.in_shape[0]}-channel model or "
                         f"restore the bands separately")
    if not isinstance(y, Tensor) or not y.is_floating_point():
        raise TypeError("y must be a floating-point torch tensor")
    device = next(cae.parameters()).device
    check_device("y", y, device, hint="the CAE's weights are there (or move the CAE with "
                                      "cae.to(y.device))")
    if y.ndim != len(op.out_shape) + 1 or tuple(y.shape[1:]) != tuple(op.out_shape):
        raise ValueError(f"y must have shape (B, *op.out_shape) with op.out_shape = "
                         f"{tuple(op.out_shape)}, got {tuple(y.shape)}")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y contains NaN or inf; set no-data pixels to 0 and pass a Mask "
                         "operator that excludes them")
    if options.method == "vble_xz" and not cae.has_std_decoder:
        raise ValueError("method 'vble_xz' needs a CAE with a variance decoder "
                         "(CAEConfig(std_decoder=True)); use method='vble_z' otherwise")
    if x_init is not None:
        shape = (y.shape[0], *op.in_shape)
        if not isinstance(x_init, Tensor) or tuple(x_init.shape) != shape:
            raise ValueError(f"x_init must be a tensor of shape {shape}, got "
                             f"{tuple(getattr(x_init, 'shape', ()))}")
        check_device("x_init", x_init, device)
        if not bool(torch.isfinite(x_init).all()):
            raise ValueError("x_init contains NaN or inf")


class _Variational:
    """The variational parameters of one restoration and the loss (private)."""

    def __init__(self, y, op, noise, cae, options, x0):
        self.y_obs, self.op, self.noise, self.cae, self.opt = y, op, noise, cae, options
        self.size = tuple(op.in_shape[-2:])
        self.n_unknowns = math.prod(op.in_shape)
        self.method = options.method
        self.s = options.rate_scale
        self.decoder_error_scale: Tensor | None = None
        # mixed precision of the decoder passes (VBLEOptions.precision)
        self.precision = _decoder_precision(options.precision, x0.device)
        x_pad, _ = pad_to_multiple(x0, cae.pad_multiple)
        with torch.no_grad():
            y_bar, z_bar = cae.analysis(self.s * x_pad)  # no noise (reference bug fixed)
        self.y_bar = y_bar.detach().clone().requires_grad_(True)
        self.z_bar = z_bar.detach().clone().requires_grad_(True)
        self.params = [self.y_bar, self.z_bar]
        if self.method != "map_z":
            la = math.log(options.a_init)
            self.log_a_y = torch.full_like(y_bar, la).requires_grad_(True)
            self.log_a_z = torch.full_like(z_bar, la).requires_grad_(True)
            self.params += [self.log_a_y, self.log_a_z]
        if self.method == "vble_xz":
            self.log_b = torch.full_like(x0, math.log(options.b_init)).requires_grad_(True)
            self.params.append(self.log_b)

    # ---------------------------------------------------------------- pieces
    def widths(self) -> tuple[Tensor, Tensor]:
        return bounded_exp(self.log_a_y, A_BOUNDS), bounded_exp(self.log_a_z, A_BOUNDS)

    def b(self) -> Tensor:
        return bounded_exp(self.log_b, B_BOUNDS)

    def draw_latents(self, k: int, gen: _ImageRNG) -> tuple[Tensor, Tensor]:
        """``k`` draws of (y, z) stacked along the batch: shapes ``(k*B, ...)``."""
        yb = self.y_bar.repeat(k, 1, 1, 1)
        zb = self.z_bar.repeat(k, 1, 1, 1)
        if self.method == "map_z":
            return yb, zb
        a_y, a_z = self.widths()
        u = gen.rand(k, tuple(yb.shape[1:]), yb)
        v = gen.rand(k, tuple(zb.shape[1:]), zb)
        return yb + a_y.repeat(k, 1, 1, 1) * (u - 0.5), zb + a_z.repeat(k, 1, 1, 1) * (v - 0.5)

    def image_samples(self, y_t: Tensor, k: int, gen: _ImageRNG) -> Tensor:
        """Image-space samples ``(k*B, C, H, W)`` for latent draws ``y_t`` (the decoders under
        the autocast of ``VBLEOptions.precision``, outputs in float32)."""
        with self.precision.autocast():
            mean = upcast(crop(self.cae.decode(y_t), self.size))
        if self.method != "vble_xz":
            return mean / self.s
        # stop-gradient on sigma_theta: gradients reach y only through D and the prior
        with torch.no_grad(), self.precision.autocast():
            sigma = upcast(crop(self.cae.decode_std(y_t), self.size))
        eps = gen.randn(k, tuple(mean.shape[1:]), mean)
        return (mean + self.b().repeat(k, 1, 1, 1) * sigma * eps) / self.s

    def terms(self, gen: _ImageRNG | torch.Generator) -> dict[str, Tensor]:
        """Per-image loss terms (shape ``(B,)``), all divided by ``N = C H W``."""
        k = 1 if self.method == "map_z" else self.opt.mc_samples
        bsz = self.y_bar.shape[0]
        gen = _as_rng(gen, bsz)
        y_t, z_t = self.draw_latents(k, gen)
        x = self.image_samples(y_t, k, gen)
        ax = self.op(x.reshape(k, bsz, *x.shape[1:]))
        obs = self.y_obs.expand(k, *self.y_obs.shape)
        data = self.noise.nll(ax.reshape(k * bsz, *ax.shape[2:]),
                              obs.reshape(k * bsz, *obs.shape[2:]))
        data = data.reshape(k, bsz).mean(0)  # sum over the K draws / K (reference bug fixed)
        bits = self.cae.latent_bits(y_t, z_t).reshape(k, bsz).mean(0)
        n = self.n_unknowns
        kl_z = bits * math.log(2.0)
        if self.method != "map_z":
            kl_z = kl_z - uniform_entropy(*self.widths())
        kl_x = kl_x_term(self.b()) if self.method == "vble_xz" else torch.zeros_like(kl_z)
        data, kl_z, kl_x = data / n, kl_z / n, kl_x / n
        loss = data + self.opt.lam * (kl_z + kl_x)
        hp, wp = self.y_bar.shape[-2] * 16, self.y_bar.shape[-1] * 16
        return {"loss": loss, "data": data, "kl_z": kl_z, "kl_x": kl_x,
                "bpp": bits.detach() / (hp * wp)}

    def clip_gradients(self) -> None:
        """Clip the gradient norm of each image's parameters (all tensors together)."""
        sq = sum(p.grad.flatten(1).pow(2).sum(1) for p in self.params)
        scale = (self.opt.grad_clip / (sq.sqrt() + 1e-12)).clamp(max=1.0)
        for p in self.params:
            p.grad.mul_(scale.reshape(-1, *([1] * (p.ndim - 1))))

    def project(self) -> None:
        """Clamp the stored log-widths and log-scales into their bounds."""
        with torch.no_grad():
            if self.method != "map_z":
                for p in (self.log_a_y, self.log_a_z):
                    p.clamp_(math.log(A_BOUNDS[0]), math.log(A_BOUNDS[1]))
            if self.method == "vble_xz":
                self.log_b.clamp_(math.log(B_BOUNDS[0]), math.log(B_BOUNDS[1]))


def _observed(op: LinearOperator, like: Tensor) -> Tensor:
    """1 where an observation pixel sees the image (0 where a Mask drops it), shape
    ``(1, *op.out_shape)``."""
    ones = torch.ones((1, *op.in_shape), dtype=like.dtype, device=like.device)
    return (op(ones).abs() > 0).to(like.dtype)


def observation_ratio(op: LinearOperator, like: Tensor) -> float:
    r"""Observed values per unknown, :math:`\rho = \#\{\text{seen outputs}\} / \dim x`.

    1 for a full-resolution blur, :math:`1/d^2` for a decimation by :math:`d`, lower with a
    :class:`operators.Mask` (outputs that no input reaches are not counted).
    """
    return float(_observed(op, like).sum()) / math.prod(op.in_shape)


def _check_rule_table(table) -> tuple[tuple[float, float, float], ...]:
    """Validate a ``(ratio, gain, fallback)`` table; return it as sorted tuples of floats."""
    hint = ("pass rows (ratio, gain, fallback) of positive numbers with distinct ratios, e.g. "
            "((0.25, 4.72, 1.50), (1.0, 1.71, 1.39))")
    try:
        rows = [tuple(row) for row in table]
    except TypeError:
        raise TypeError(f"decoder_error_rule must be a sequence of rows; {hint}") from None
    if not rows or any(len(r) != 3 for r in rows):
        raise ValueError(f"decoder_error_rule needs at least one row of 3 numbers; {hint}")
    out = []
    for r in rows:
        out.append(tuple(check_real(n, v, positive=True, hint=hint)
                         for n, v in zip(("ratio", "gain", "fallback"), r, strict=True)))
    out.sort()
    if len({r[0] for r in out}) != len(out):
        raise ValueError(f"decoder_error_rule has repeated ratios; {hint}")
    return tuple(out)  # type: ignore[return-value]


def decoder_error_rule(ratio: float, table: tuple[tuple[float, float, float], ...] | None = None
                       ) -> tuple[float, float]:
    r"""The gain :math:`k(\rho)` and fallback :math:`c_0(\rho)` of the decoder error scale
    (:func:`estimate_decoder_error_scale`).

    Linear interpolation in :math:`\log\rho` of both columns of ``table`` (default: the
    shipped :data:`DECODER_ERROR_RULE`, fitted on held-out train crops by
    ``scripts/fit_vble_decoder_error.py``), constant outside the table.

    Parameters
    ----------
    ratio : float
        Observation ratio :math:`\rho > 0` (:func:`observation_ratio`).
    table : tuple of (float, float, float), optional
        Rows :math:`(\rho, k, c_0)` of another model's fitted rule
        (:attr:`VBLEOptions.decoder_error_rule`).

    Returns
    -------
    (float, float)
        ``(gain, fallback)``.

    Raises
    ------
    TypeError
        ``ratio`` is not a real number.
    ValueError
        Non-positive or non-finite ``ratio``; a malformed ``table``.

    Examples
    --------
    >>> from inverse.vble import decoder_error_rule
    >>> gain, fallback = decoder_error_rule(1.0)
    >>> gain > 1.0 and fallback > 0.0
    True
    >>> decoder_error_rule(0.5, ((1.0, 2.0, 1.0),))
    (2.0, 1.0)
    """
    ratio = check_real("ratio", ratio, positive=True)
    pts = sorted(DECODER_ERROR_RULE) if table is None else _check_rule_table(table)
    lr = math.log(ratio)
    if lr <= math.log(pts[0][0]):
        return pts[0][1], pts[0][2]
    for (r0, k0, f0), (r1, k1, f1) in zip(pts, pts[1:], strict=False):
        if lr <= math.log(r1):
            t = (lr - math.log(r0)) / (math.log(r1) - math.log(r0))
            return (math.exp((1 - t) * math.log(k0) + t * math.log(k1)),
                    math.exp((1 - t) * math.log(f0) + t * math.log(f1)))
    return pts[-1][1], pts[-1][2]


@torch.no_grad()
def estimate_decoder_error_scale(y: Tensor, op: LinearOperator, noise: NoiseModel, mean: Tensor,
                                 sigma: Tensor, *, generator: torch.Generator,
                                 probes: int = _TRACE_PROBES, gain: float | None = None,
                                 fallback: float | None = None,
                                 threshold: float = C2_INFORMATIVE,
                                 rule: tuple[tuple[float, float, float], ...] | None = None
                                 ) -> Tensor:
    r"""Per-image factor :math:`c` of the decoder std, from moment matching of the residual.

    If :math:`x = D + c\,\sigma\odot u`, :math:`u \sim \mathcal N(0, I)`, and
    :math:`y = Ax + n`, :math:`n \sim \mathcal N(0, V)`, then
    :math:`\mathbb E\|y - AD\|^2 = c^2\operatorname{tr}(A\operatorname{diag}(\sigma^2)A^\top)
    + \operatorname{tr}V`, so

    .. math::

        \hat c^2 = \frac{\|y - AD\|^2 - \operatorname{tr}V}
                         {\operatorname{tr}(A\operatorname{diag}(\sigma^2)A^\top)}

    (the trace by Rademacher probes, Hutchinson). The result is :math:`c = k\,\hat c` where
    :math:`\hat c^2 >` ``threshold``, else :math:`c = c_0`. With ``gain=1`` it is the plain
    moment estimate, unbiased when :math:`D` does not depend on :math:`y`. When :math:`D =
    D(\bar z)` was fitted to :math:`y` the residual is too small (the fit absorbed part of the
    decoder error, the more so the fewer values are observed) and at high noise it can fall
    below :math:`\operatorname{tr}V` (the fit absorbed noise): :math:`\hat c` then carries no
    information and the fallback :math:`c_0` is used. By default :math:`k` and :math:`c_0` are
    the shipped :func:`decoder_error_rule` of the operator's :func:`observation_ratio`.

    Parameters
    ----------
    y : Tensor, shape ``(B, *op.out_shape)``
    op : LinearOperator
    noise : NoiseModel
    mean, sigma : Tensor, shape ``(B, *op.in_shape)``
        Decoded mean :math:`D` and decoder std :math:`\sigma_\theta` (normalized units).
    generator : torch.Generator
    probes : int, default 8
    gain, fallback : float, optional
        :math:`k` and :math:`c_0`; default: :func:`decoder_error_rule` of
        :func:`observation_ratio`.
    threshold : float, default :data:`C2_INFORMATIVE`
        Smallest :math:`\hat c^2` taken as informative.
    rule : tuple of (float, float, float), optional
        The ``table`` of :func:`decoder_error_rule` for the defaults of ``gain`` and
        ``fallback`` (default: the shipped rule).

    Returns
    -------
    Tensor, shape ``(B,)``.

    Raises
    ------
    ValueError
        Non-positive ``gain`` or ``fallback``, negative ``threshold``.
    """
    if gain is None or fallback is None:
        k, f = decoder_error_rule(observation_ratio(op, mean), rule)
        gain = k if gain is None else gain
        fallback = f if fallback is None else fallback
    for name, v in (("gain", gain), ("fallback", fallback), ("threshold", threshold)):
        check_real(name, v, positive=name != "threshold")
    ad = op(mean)
    seen = _observed(op, mean)
    resid = ((y - ad) ** 2 * seen).flatten(1).sum(1)
    tr_v = (noise.variance(ad) * seen).flatten(1).sum(1)
    tr_s = torch.zeros_like(resid)
    for _ in range(probes):
        eps = torch.randint(0, 2, sigma.shape, generator=generator, device=sigma.device)
        eps = eps.to(sigma.dtype) * 2 - 1
        tr_s += (op(sigma * eps) ** 2).flatten(1).sum(1)
    tr_s = (tr_s / probes).clamp(min=torch.finfo(sigma.dtype).tiny)
    c2 = (resid - tr_v) / tr_s
    informative = c2 > threshold
    return torch.where(informative, gain * c2.clamp(min=0).sqrt(),
                       torch.full_like(c2, fallback))


@torch.no_grad()
def exact_conditional_sample(y: Tensor, op: LinearOperator, noise: NoiseModel, mean: Tensor,
                             sigma: Tensor, *, generator: torch.Generator | None = None,
                             rtol: float = 1e-4, max_iter: int = 300) -> Tensor:
    r"""One exact sample of the Gaussian :math:`p(x\mid y) \propto \mathcal N(x; m,
    \operatorname{diag}\sigma^2)\,\mathcal N(y; Ax, V)` per batch element (perturb-and-MAP).

    With :math:`x = m + \sigma\odot u`, :math:`B = V^{-1/2} A \operatorname{diag}(\sigma)`
    and :math:`r = V^{-1/2}(y - Am)`, the sample is
    :math:`u = (B^\top B + I)^{-1}\bigl(B^\top (r + \varepsilon_1) + \varepsilon_2\bigr)`,
    :math:`\varepsilon_{1,2}\sim\mathcal N(0, I)`, whose law is exactly
    :math:`\mathcal N\bigl((B^\top B + I)^{-1}B^\top r, (B^\top B + I)^{-1}\bigr)` (Papandreou
    & Yuille 2010). ``generator=None`` returns the conditional mean instead. :math:`V` is the
    noise variance evaluated at :math:`Am` (exact for Gaussian noise; the usual plug-in for
    Poisson-Gaussian noise).

    Parameters
    ----------
    y : Tensor, shape ``(B, *op.out_shape)``
    op : LinearOperator
    noise : NoiseModel
    mean, sigma : Tensor, shape ``(B, *op.in_shape)``
    generator : torch.Generator, optional
    rtol, max_iter
        Conjugate-gradient options of the solve (preconditioned where ``op`` has a
        closed-form normal solve; see ``VBLEOptions.cg_precondition``).

    Returns
    -------
    Tensor, shape ``(B, *op.in_shape)``.
    """
    if generator is None:
        return _perturb_and_map(y, op, noise, mean, sigma, None, rtol=rtol, max_iter=max_iter)

    def draw(shape: torch.Size) -> Tensor:
        return torch.randn(shape, generator=generator, dtype=mean.dtype, device=mean.device)

    return _perturb_and_map(y, op, noise, mean, sigma, draw, rtol=rtol, max_iter=max_iter)


def _perturb_and_map(y: Tensor, op: LinearOperator, noise: NoiseModel, mean: Tensor,
                     sigma: Tensor, draw, *, rtol: float, max_iter: int,
                     precondition: bool = True) -> Tensor:
    """:func:`exact_conditional_sample` with the perturbations from ``draw(shape)`` (first the
    observation-space one, then the image-space one; ``draw=None``: the conditional mean)."""
    from operators import Diagonal

    am = op(mean)
    w = noise.variance(am).clamp(min=torch.finfo(mean.dtype).tiny).rsqrt() * _observed(op, mean)
    bop = Diagonal(w, tuple(op.out_shape)) @ op @ Diagonal(sigma, tuple(op.in_shape))
    r = w * (y - am)
    if draw is not None:
        r = r + draw(r.shape)
    rhs = bop.adjoint(r)
    if draw is not None:
        rhs = rhs + draw(rhs.shape)
    pre = _conditional_preconditioner(op, w, sigma) if precondition else None
    u = bop.solve_normal(rhs, 1.0, rtol=rtol, max_iter=max_iter, preconditioner=pre)
    return mean + sigma * u


def _conditional_preconditioner(op: LinearOperator, w: Tensor, sigma: Tensor):
    r"""Preconditioner of the perturb-and-MAP system
    :math:`(I + \Sigma A^\top W^2 A \Sigma)u = b` (:math:`\Sigma, W` diagonal): the same
    system with :math:`\Sigma, W` replaced by their root-mean-square values,
    :math:`P = (I + c\,A^\top A)^{-1}`, :math:`c = \overline{\sigma^2}\,\overline{w^2}` per
    sample, applied by the closed-form normal solve of ``op`` (``None`` where ``op`` has none:
    plain CG). It cut the CG iterations of 256² satellite tiles from 70-125 to 16-17 at low
    noise (the tolerance is unchanged: CG stops on the unpreconditioned residual). It assumes
    smooth scales: with a white-noise :math:`\sigma` field of 10x range it needed 2-4x *more*
    iterations than plain CG.

    The closed-form solve is built once (its symbol, e.g. the PSF's FFT) and applied at every
    CG iteration without ``solve_normal``'s checks (a host synchronization each)."""
    solve = op._normal_solver(sigma[:1])
    if solve is None:
        return None
    nd = len(op.in_shape)
    c = sigma.pow(2).flatten(-nd).mean(-1) * w.pow(2).flatten(-len(op.out_shape)).mean(-1)
    c = c.clamp(min=torch.finfo(sigma.dtype).tiny).reshape(*c.shape, *([1] * nd))
    inv = 1.0 / c

    def apply(r: Tensor) -> Tensor:
        return solve(r, inv) / c

    return apply


def _optimize(state: _Variational, options: VBLEOptions, gen: _ImageRNG,
              bar=None) -> tuple[dict[str, list[float]], Tensor]:
    """Step 3 of :func:`vble_restore`: the Adam iterations on ``state`` with the stopping
    rule (images of a batch stop on their own and are frozen). Returns the per-iteration
    history (batch means) and the iterations done per image."""
    bsz = state.y_bar.shape[0]
    device = state.y_bar.device
    history: dict[str, list[float]] = {k: [] for k in ("loss", "data", "kl_z", "kl_x", "bpp")}
    adam = torch.optim.Adam(state.params, lr=options.lr)
    active = torch.ones(bsz, dtype=torch.bool)
    iterations = torch.zeros(bsz, dtype=torch.int64)
    losses: list[Tensor] = []
    for it in range(options.steps):
        raise_if_interrupted()  # an interrupt the interpreter dropped (sciml_inverse)
        all_active = bool(active.all())
        gen.active = None if all_active else active.tolist()
        adam.zero_grad(set_to_none=False)
        terms = state.terms(gen)
        if not bool(torch.isfinite(terms["loss"]).all()):
            raise RuntimeError(f"the {options.method} optimization diverged (non-finite loss "
                               f"at iteration {it}); lower VBLEOptions.lr (now "
                               f"{options.lr}) or check the noise model and the scaling "
                               f"of y (normalized units expected)")
        terms["loss"].sum().backward()
        state.clip_gradients()
        if not all_active:  # stopped images keep their parameters
            idle = (~active).to(device)
            frozen = [p.detach()[idle].clone() for p in state.params]
        adam.step()
        state.project()
        if not all_active:
            with torch.no_grad():
                for p, v in zip(state.params, frozen, strict=True):
                    p[idle] = v
        iterations += active.to(torch.int64)
        for k, v in terms.items():
            history[k].append(float(v.detach().mean()))
        losses.append(terms["loss"].detach().cpu())
        if bar is not None:
            bar.update(1)
        stalled = _stalled(losses, options.stop_window, options.stop_rtol)
        if stalled is not None:
            active &= ~stalled
            if not bool(active.any()):
                break
    gen.active = None
    return history, iterations


def _decoder_precision(name: str, device: torch.device):
    """:func:`sciml_inverse.resolve_precision`, with float32 where it would pick float16
    ("auto" on a CUDA device without bfloat16): the restoration loop has no gradient scaler."""
    prec = resolve_precision(name, device)
    return resolve_precision("fp32", device) if prec.name == "fp16" else prec


def _to_channels_last(cae: torch.nn.Module, options: VBLEOptions,
                      device: torch.device) -> list[tuple[Tensor, Tensor]]:
    """Switch the 4-D parameters and buffers of ``cae`` to channels-last when
    ``options.channels_last`` asks for it (``None``: on CPUs and under mixed precision); the
    original storages are returned, for ``t.data = data`` afterwards."""
    use = options.channels_last
    if use is None:
        use = (device.type == "cpu"
               or _decoder_precision(options.precision, device).dtype is not None)
    if not use:
        return []
    saved = []
    for t in [*cae.parameters(), *cae.buffers()]:
        if t.ndim == 4 and not t.is_contiguous(memory_format=torch.channels_last):
            saved.append((t, t.data))
            t.data = t.data.contiguous(memory_format=torch.channels_last)
    return saved


#: CAEs inside a running :func:`vble_restore`: ``id(cae) -> [callers, saved storages, saved
#: requires_grad flags]``. Concurrent calls on one CAE (dask threads restoring tiles) share the
#: frozen, channels-last state; the last one to leave restores the model. Without this, the
#: first to finish switched the weights back to their original layout under the others, whose
#: remaining convolutions then rounded differently from a serial run.
_IN_USE: dict[int, list] = {}
_IN_USE_LOCK = threading.Lock()


@contextlib.contextmanager
def _frozen(cae: torch.nn.Module, options: VBLEOptions, device: torch.device) -> Iterator[None]:
    """``cae`` without gradients and (see :func:`_to_channels_last`) channels-last for the
    duration of the block; restored when the last concurrent user leaves."""
    key = id(cae)
    with _IN_USE_LOCK:
        entry = _IN_USE.get(key)
        if entry is None:
            req = [p.requires_grad for p in cae.parameters()]
            cae.requires_grad_(False)
            entry = _IN_USE[key] = [0, _to_channels_last(cae, options, device), req]
        entry[0] += 1
    try:
        yield
    finally:
        with _IN_USE_LOCK:
            entry[0] -= 1
            if entry[0] == 0:
                del _IN_USE[key]
                for t, data in entry[1]:
                    t.data = data
                for p, r in zip(cae.parameters(), entry[2], strict=True):
                    p.requires_grad_(r)


def vble_restore(y: Tensor, op: LinearOperator, noise: NoiseModel, cae: CompressiveAutoencoder,
                 options: VBLEOptions | None = None, x_init: Tensor | None = None,
                 progress: bool = False) -> VBLEResult:
    r"""Restore images and their per-pixel uncertainty with MAP-z, VBLE-z or VBLE-xz.

    Algorithm (module docstring for the model and the objective):

    1. :math:`x_0` = ``x_init`` or :func:`initial_estimate`; pad to a multiple of
       ``cae.pad_multiple`` (reflection);
    2. :math:`\bar y = g_a(s x_0)`, :math:`\bar z = h_a(\bar y)` without noise, :math:`a = a' = 1`
       (the training noise width), :math:`b = 1` (so :math:`q(x\mid y) = p(x\mid y)` at the
       start);
    3. ``steps`` Adam steps on :math:`\{\bar y, \bar z, \ln a, \ln a', \ln b\}` with per-image
       gradient-norm clipping; :math:`a \in [1.5\cdot10^{-5}, 20]` and
       :math:`b \in [10^{-4}, 3]` by clamps of the log-parameters whose gradient passes when it
       points back inside (two-sided ``LowerBound``), plus a projection after each step;
    4. ``n_samples`` posterior samples without gradients, ``sample_batch`` at a time:
       ``x_mmse`` their mean, ``x_std`` their unbiased std, ``x_zmmse`` :math:`= D(\bar y)/s`.

    Parameters
    ----------
    y : Tensor, shape ``(B, *op.out_shape)``
        Observations in normalized units (finite: no-data pixels set to 0 and excluded by a
        :class:`operators.Mask` inside ``op``).
    op : operators.LinearOperator
        Forward operator with ``in_shape = (C, H, W)``, any H, W; ``C`` must equal the CAE's
        ``in_channels``.
    noise : NoiseModel
        :class:`~inverse.GaussianNoise` or :class:`~inverse.PoissonGaussianNoise`.
    cae : CompressiveAutoencoder
        The prior (its parameters are frozen during the call and restored afterwards).
    options : VBLEOptions, optional
    x_init : Tensor, shape ``(B, *op.in_shape)``, optional
        Starting image; :func:`initial_estimate` by default.
    progress : bool, default False
        Show a tqdm progress bar.

    Returns
    -------
    VBLEResult

    Raises
    ------
    TypeError
        Wrong argument types.
    ValueError
        Band count different from the CAE's, ``y`` of the wrong shape or with NaN/inf,
        ``vble_xz`` without a variance decoder, bad ``x_init``.

    Examples
    --------
    >>> import torch
    >>> from operators import Identity
    >>> from inverse import GaussianNoise
    >>> from inverse.vble import CAEConfig, CompressiveAutoencoder
    >>> cae = CompressiveAutoencoder(CAEConfig(N=8, M=12))
    >>> y = torch.rand(1, 1, 32, 32)
    >>> res = vble_restore(y, Identity((1, 32, 32)), GaussianNoise(0.1), cae,
    ...                    VBLEOptions(steps=3, n_samples=4))
    >>> tuple(res.x_mmse.shape), bool((res.x_std > 0).all())
    ((1, 1, 32, 32), True)
    """
    t_start = time.perf_counter()
    options = VBLEOptions() if options is None else options
    _check_inputs(y, op, noise, cae, options, x_init)
    dtype = next(cae.parameters()).dtype
    device = next(cae.parameters()).device
    y = y.to(dtype=dtype, device=device)
    with torch.no_grad():
        x0 = initial_estimate(y, op) if x_init is None else x_init.to(dtype=dtype, device=device)
    bsz = y.shape[0]
    gen = _ImageRNG(bsz, options.seed, device)

    bar = None
    try:
        with _frozen(cae, options, device):
            state = _Variational(y, op, noise, cae, options, x0)
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=options.steps, desc=f"{options.method} restoration", unit="it")
            history, iterations = _optimize(state, options, gen, bar)
            t_opt = time.perf_counter()
            result = _sample(state, options, gen)
    finally:
        if bar is not None:
            bar.close()
    t_end = time.perf_counter()
    x_mmse, x_std, x_zmmse, samples = result
    params = {"y_bar": state.y_bar.detach(), "z_bar": state.z_bar.detach()}
    if options.method != "map_z":
        with torch.no_grad():
            a_y, a_z = state.widths()
        params.update(a_y=a_y, a_z=a_z)
    if options.method == "vble_xz":
        with torch.no_grad():
            params["b"] = state.b()
    if options.conditional == "exact":
        params["decoder_error_scale"] = state.decoder_error_scale
    return VBLEResult(x_mmse=x_mmse, x_std=x_std, x_zmmse=x_zmmse, samples=samples,
                      history=history, seconds=t_end - t_start,
                      seconds_optimization=t_opt - t_start, seconds_sampling=t_end - t_opt,
                      params=params, n_iter=iterations.tolist())


def _exact_samples(state: _Variational, mean: Tensor, sig: Tensor, k: int,
                   gen: _ImageRNG, options: VBLEOptions, antithetic: bool = False) -> Tensor:
    """``k`` perturb-and-MAP samples per image, ``(k, B, C, H, W)``, for decoded means and
    scaled stds ``(k*B, C, H, W)``; with ``antithetic`` the ``2k`` samples
    ``(2, k, B, C, H, W)``: ``[0]`` with the drawn perturbations, ``[1]`` with their negatives
    (``VBLEOptions.antithetic``). With per-image streams the images are solved one by one:
    a batched CG iterates every system until the slowest image converges, which cost 1.45x
    the one-by-one time on two 256² tiles (same draws, same results)."""
    bsz = state.y_bar.shape[0]
    shape = tuple(mean.shape[1:])
    one_obs = [1] * (state.y_obs.ndim - 1)
    r = 2 if antithetic else 1

    def draw(g: _ImageRNG, like: Tensor):
        def fn(sh):
            e = g.randn(k, tuple(sh[1:]), like)
            return torch.cat([e, -e]) if antithetic else e
        return fn

    def solve(y_obs: Tensor, m: Tensor, s: Tensor, g: _ImageRNG) -> Tensor:
        if antithetic:
            m, s = torch.cat([m, m]), torch.cat([s, s])
        return _perturb_and_map(
            y_obs.repeat(r * k, *one_obs), state.op, state.noise, m, s, draw(g, m),
            rtol=options.cg_rtol, max_iter=options.cg_max_iter,
            precondition=options.cg_precondition)

    if bsz == 1 or type(gen) is not _ImageRNG:
        x = solve(state.y_obs, mean, sig, gen).reshape(r * k, bsz, *shape)
    else:
        mean, sig = mean.reshape(k, bsz, *shape), sig.reshape(k, bsz, *shape)
        x = torch.stack([solve(state.y_obs[b:b + 1], mean[:, b], sig[:, b], gen.image(b))
                         for b in range(bsz)], 1)
    return x.reshape(2, k, bsz, *shape) if antithetic else x


@torch.no_grad()
def _sample(state: _Variational, options: VBLEOptions, gen: _ImageRNG | torch.Generator):
    x_zmmse = crop(state.cae.decode(state.y_bar), state.size) / state.s
    k_keep = options.return_samples
    if state.method == "map_z":
        samples = x_zmmse.unsqueeze(0).repeat(k_keep, 1, 1, 1, 1) if k_keep else None
        return x_zmmse.clone(), torch.zeros_like(x_zmmse), x_zmmse, samples
    bsz = state.y_bar.shape[0]
    gen = _as_rng(gen, bsz)
    exact = options.conditional == "exact"
    if exact:
        sig0 = crop(state.cae.decode_std(state.y_bar), state.size) / state.s
        if options.decoder_error_scale is None and len(gen.gens) == 1:
            scale = estimate_decoder_error_scale(state.y_obs, state.op, state.noise, x_zmmse,
                                                 sig0, generator=gen.gens[0],
                                                 rule=options.decoder_error_rule)
        elif options.decoder_error_scale is None:  # image by image: each with its own stream
            scale = torch.cat([estimate_decoder_error_scale(
                state.y_obs[b:b + 1], state.op, state.noise, x_zmmse[b:b + 1], sig0[b:b + 1],
                generator=g, rule=options.decoder_error_rule) for b, g in enumerate(gen.gens)])
        else:
            scale = torch.full((bsz,), options.decoder_error_scale, dtype=x_zmmse.dtype,
                               device=x_zmmse.device)
        state.decoder_error_scale = scale
    # shifted sums in float64 (shift = x_zmmse) for an accurate unbiased variance
    s1 = torch.zeros(x_zmmse.shape, dtype=torch.float64, device=x_zmmse.device)
    s2 = torch.zeros_like(s1)
    s_eta = torch.zeros_like(s1)  # antithetic: sum of the squared half-differences
    anti = exact and options.antithetic and options.n_samples >= 4
    n = -(-options.n_samples // 2) if anti else options.n_samples  # draws (pairs if anti)
    step = max(1, options.sample_batch // 2) if anti else options.sample_batch
    kept: list[Tensor] = []
    done = 0
    while done < n:
        raise_if_interrupted()
        k = min(step, n - done)
        y_t, _ = state.draw_latents(k, gen)
        if exact:
            with state.precision.autocast():  # VBLEOptions.precision: the decoder passes
                mean = upcast(crop(state.cae.decode(y_t), state.size)) / state.s
                sig = upcast(crop(state.cae.decode_std(y_t), state.size)) / state.s
            sig = sig * scale.repeat(k).reshape(-1, *([1] * (sig.ndim - 1)))
            x = _exact_samples(state, mean, sig, k, gen, options, antithetic=anti)
        else:
            x = state.image_samples(y_t, k, gen).reshape(k, bsz, *x_zmmse.shape[1:])
        if anti:  # the pair mean is mu(z) exactly; the half-difference is the noise eta
            d = ((x[0] + x[1]) / 2 - x_zmmse).double()
            s_eta += (((x[0] - x[1]) / 2).double() ** 2).sum(0)
            x = x.transpose(0, 1).reshape(2 * k, *x.shape[2:])  # pairs (x+, x-) in order
        else:
            d = (x - x_zmmse).double()
        s1 += d.sum(0)
        s2 += (d * d).sum(0)
        n_kept = sum(t.shape[0] for t in kept)
        if n_kept < k_keep:
            kept.append(x[: k_keep - n_kept])
        done += k
    mean_d = s1 / n
    var = ((s2 - n * mean_d * mean_d) / (n - 1)).clamp(min=0)
    if anti:  # Var x = Var_z mu(z) + E eta^2 (law of total variance), each unbiased
        var = var + s_eta / n
    x_mmse = (x_zmmse.double() + mean_d).to(x_zmmse.dtype)
    samples = torch.cat(kept, 0) if kept else None
    return x_mmse, var.sqrt().to(x_zmmse.dtype), x_zmmse, samples
