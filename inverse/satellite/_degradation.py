r"""Pléiades-like degradation: Gaussian PSF from the MTF at Nyquist, decimation, Poisson-Gaussian
noise and quantization.

The observation model, in normalized units (digital numbers divided by :math:`D = 2^n - 1`), is

.. math::

    y = \operatorname{clip}_{[0, 1]}\Bigl(\tfrac1D \operatorname{round}\bigl(D\,(S_f (h \ast x)
        + \sqrt{a + b \max(S_f(h \ast x), 0)}\;\varepsilon)\bigr)\Bigr),
    \qquad \varepsilon \sim \mathcal N(0, I),

with :math:`h` the PSF (circular convolution), :math:`S_f` the decimation by ``f`` (keep one
pixel in every ``f x f`` block) and :math:`(a, b)` the Poisson-Gaussian noise parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from operators import Convolution, Decimation, LinearOperator
from sciml_inverse import check_int, check_real

if TYPE_CHECKING:  # pragma: no cover
    from .._noise import PoissonGaussianNoise

__all__ = ["psf_from_mtf", "gaussian_sigma_from_mtf", "PleiadesDegradation"]


def _check_mtf(mtf: object) -> float:
    return check_real("mtf", mtf, positive=True, maximum=1.0,  # type: ignore[return-value]
                      hint="mtf is in (0, 1]: the modulation transfer at the Nyquist frequency, "
                           "e.g. 0.1 for Pléiades-HR")


def _nyquist_response(sigma: float, half: int) -> float:
    """DFT at Nyquist of the unit-sum sampled Gaussian of std ``sigma`` on ``[-half, half]``."""
    k = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(k * k) / (2.0 * sigma * sigma))
    return float((g * np.where(k % 2 == 0, 1.0, -1.0)).sum() / g.sum())


def _solve_sigma(m: float, half: int) -> float:
    """Smallest sigma whose sampled Gaussian on ``[-half, half]`` has Nyquist response ``m``.

    The response falls from 1 (sigma -> 0) but, for a truncated kernel, is not monotone for
    large sigma (the kernel tends to a box); so the first crossing is bracketed on a log grid,
    then refined by bisection. Returns the grid's best point if there is no crossing.
    """
    grid = np.geomspace(1e-2, 64.0, 400)
    resp = np.array([_nyquist_response(float(s), half) for s in grid])
    below = np.nonzero(resp <= m)[0]
    if below.size == 0 or below[0] == 0:
        return float(grid[np.argmin(np.abs(resp - m))])
    lo, hi = float(grid[below[0] - 1]), float(grid[below[0]])
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _nyquist_response(mid, half) > m:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def gaussian_sigma_from_mtf(mtf: float, *, sampled: bool = True,
                            size: int | None = None) -> float:
    r"""Standard deviation (pixels) of the Gaussian PSF whose MTF at Nyquist is ``mtf``.

    A continuous Gaussian of std :math:`\sigma` has MTF :math:`e^{-2\pi^2\sigma^2 \nu^2}`
    (:math:`\nu` in cycles per pixel), so :math:`\mathrm{MTF}(\tfrac12) = m` gives

    .. math:: \sigma_c = \frac{\sqrt{-2 \ln m}}{\pi}
        \quad (m = 0.10 \to 0.683,\; 0.07 \to 0.734,\; 0.15 \to 0.620).

    Sampling that Gaussian on the pixel grid aliases its spectrum: the DFT of the sampled,
    unit-sum kernel at Nyquist is :math:`\approx 2m` (0.200 for :math:`m = 0.1`). With
    ``sampled=True`` the std is instead solved (bisection) so that the *discrete* PSF used by
    :func:`psf_from_mtf` has exactly ``mtf`` at Nyquist (0.779 px for :math:`m = 0.1`,
    :math:`\approx \sigma_c(m/2)`).

    Parameters
    ----------
    mtf : float
        MTF value at the Nyquist frequency, in ``(0, 1]``.
    sampled : bool, default True
        ``True``: the std of the sampled kernel matching ``mtf`` through its DFT; ``False``: the
        continuous formula :math:`\sigma_c`.
    size : int, optional
        Odd kernel size the sampled std is solved for (default: untruncated).

    Returns
    -------
    float
        The std in pixels (``0.0`` for ``mtf == 1``).

    Raises
    ------
    ValueError
        If ``mtf`` is not in ``(0, 1]``, or no sampled Gaussian of this ``size`` reaches it.
    TypeError
        If ``mtf`` is not a real number.
    """
    m = _check_mtf(mtf)
    if m == 1.0:
        return 0.0
    if not sampled:
        return math.sqrt(-2.0 * math.log(m)) / math.pi
    if size is None:
        sigma = _solve_sigma(m, 64)
        return _solve_sigma(m, max(64, math.ceil(8 * sigma)))
    half = _check_size(size) // 2
    sigma = _solve_sigma(m, half)
    got = _nyquist_response(sigma, half)
    if abs(got - m) > 1e-9:
        raise ValueError(f"no sampled Gaussian of size {size} has MTF {m} at Nyquist (closest: "
                         f"{got:.4g}); use a larger size")
    return sigma


def _check_size(size: object) -> int:
    hint = "size must be a positive odd integer (the PSF is centered)"
    n = check_int("size", size, 1, hint=hint)
    if n % 2 == 0:
        raise ValueError(f"{hint}, got {size!r}")
    return n


def psf_from_mtf(mtf: float, size: int | None = None, *,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    r"""Separable Gaussian PSF whose MTF at the Nyquist frequency equals ``mtf``.

    The kernel is a sampled Gaussian :math:`h_{ij} \propto e^{-(i^2 + j^2) / (2\sigma^2)}` on
    ``size x size`` pixels, normalized to unit sum (MTF 1 at frequency 0), with :math:`\sigma`
    from :func:`gaussian_sigma_from_mtf` (``sampled=True``) solved for this ``size``, so that the
    DFT of the PSF (zero-padded to any image size, origin at the center) is exactly ``mtf`` at
    the frequencies :math:`(\tfrac12, 0)` and :math:`(0, \tfrac12)` cycles/pixel. The continuous
    formula :math:`\sigma_c = \sqrt{-2\ln m}/\pi` would give :math:`\approx 2m` there (aliasing);
    see :func:`gaussian_sigma_from_mtf`.

    Parameters
    ----------
    mtf : float
        MTF at Nyquist, in ``(0, 1]``; Pléiades-HR panchromatic is about 0.07-0.15.
    size : int, optional
        Odd kernel size; default ``2 * ceil(4 sigma) + 1`` (at least 3).
    dtype : torch.dtype, default float32

    Returns
    -------
    Tensor, shape ``(size, size)``
        Non-negative, unit-sum, origin at ``(size // 2, size // 2)`` (the
        :class:`operators.Convolution` convention). ``mtf == 1`` gives a centered delta.

    Raises
    ------
    ValueError
        ``mtf`` outside ``(0, 1]``; ``size`` not a positive odd integer or too small to reach
        ``mtf``.
    TypeError
        ``mtf`` not a real number, ``size`` not an int (:class:`sciml_inverse.ArgumentTypeError`,
        also a ``ValueError``).

    Examples
    --------
    >>> import torch
    >>> h = psf_from_mtf(0.1, dtype=torch.float64)
    >>> h.shape, round(float(h.sum()), 12)
    (torch.Size([9, 9]), 1.0)
    >>> otf = torch.fft.fft2(torch.nn.functional.pad(h, (0, 23, 0, 23)))
    >>> round(float(otf[16, 0].abs()), 6)
    0.1
    """
    m = _check_mtf(mtf)
    if size is None:
        sigma0 = gaussian_sigma_from_mtf(m)
        size = max(3, 2 * math.ceil(4 * sigma0) + 1)
    size = _check_size(size)
    half = size // 2
    if m == 1.0:
        out = torch.zeros(size, size, dtype=torch.float64)
        out[half, half] = 1.0
        return out.to(dtype)
    sigma = gaussian_sigma_from_mtf(m, size=size)
    k = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(k * k) / (2 * sigma * sigma))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)


def _check_psf(psf: object) -> np.ndarray:
    arr = np.asarray(psf.detach().cpu() if isinstance(psf, Tensor) else psf, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"psf must be a 2-D array (h, w), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("psf contains NaN or infinite values")
    total = arr.sum()
    if not total > 0:
        raise ValueError(f"psf must have a positive sum (it is normalized to 1), got {total}")
    arr = arr / total
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class PleiadesDegradation:
    r"""A Pléiades-like acquisition: blur by the PSF, decimation, Poisson-Gaussian noise,
    quantization to ``n_bits`` and clipping.

    All values are in normalized units: digital numbers divided by :math:`D = 2^{n} - 1`, so the
    image lies in :math:`[0, 1]`. The noise variance is :math:`a + b \max(u, 0)` at the noise-free
    observation :math:`u = S_f(h \ast x)`: with a sensor of read noise :math:`\sigma_r` (DN) and
    gain :math:`g` (DN per electron), :math:`a = \sigma_r^2 / D^2`, :math:`b = g / D`.

    Parameters
    ----------
    mtf : float, optional
        MTF at Nyquist of a Gaussian PSF (:func:`psf_from_mtf`); default 0.1 when ``psf`` is not
        given. Give either ``mtf`` or ``psf``, not both.
    psf : array_like of shape ``(h, w)``, optional
        A user PSF (e.g. measured); normalized to unit sum, origin at ``(h // 2, w // 2)``.
    decimation : int, default 1
        Decimation factor ``f`` (1: restoration at the acquisition grid; 2: 2x super-resolution).
    noise_a, noise_b : float, default 1e-5 and 1e-4
        Poisson-Gaussian parameters (``>= 0``). The defaults give an SNR of about 30 dB at
        :math:`u = 0.2`.
    n_bits : int, default 12
        Bit depth of the quantized observation (Pléiades: 12).
    quantize : bool, default True
        Round to ``2**n_bits`` levels in :meth:`simulate` (then clip to ``[0, 1]``).

    Raises
    ------
    ValueError
        Both ``mtf`` and ``psf``; ``mtf`` outside ``(0, 1]``; a bad PSF; a negative or
        non-finite noise parameter; ``decimation < 1``; ``n_bits`` outside ``[1, 32]``.
    TypeError
        ``mtf`` or a noise parameter not a real number; ``decimation`` or ``n_bits`` not an int
        (:class:`sciml_inverse.ArgumentTypeError`, also a ``ValueError``); ``quantize`` not a
        bool.

    Notes
    -----
    **Boundary.** :meth:`operator` uses a *circular* convolution. Its normal operator
    :math:`A^H A + \rho I` is then Fourier-diagonal (or, with decimation, has the analytical
    inverse of Zhao et al., 2016), so ``solve_normal`` is exact and costs a few FFTs, and
    :meth:`simulate` uses the same operator, so simulation and restoration model agree. On real
    (non-periodic) scenes the wrap-around only affects pixels within the PSF radius
    (``size // 2``, 4 px for ``mtf = 0.1``) of the image border;
    :func:`~inverse.satellite.restore_tiled` gives zero weight to those pixels at inner tile
    borders (its blending ``margin``).

    **Quantization** adds a uniform error of variance :math:`1 / (12 D^2)` (5e-9 at 12 bits,
    1.3e-6 at 8 bits); :meth:`noise_model` adds it to ``a`` by default.

    References
    ----------
    C. Latry, S. Fourest, C. Thiebaut, "Restoration technique for Pleiades-HR panchromatic
    images", ISPRS Archives XXXIX-B1, 2012 (MTF at Nyquist of the PAN channel).
    A. Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image
    raw-data", IEEE TIP 17(10), 2008.

    Examples
    --------
    >>> import torch
    >>> deg = PleiadesDegradation(mtf=0.1, decimation=2, noise_a=1e-5, noise_b=1e-4)
    >>> x = torch.full((1, 1, 64, 64), 0.5)
    >>> y = deg.simulate(x, torch.Generator().manual_seed(0))
    >>> y.shape
    torch.Size([1, 1, 32, 32])
    """

    mtf: float | None = None
    psf: Any = field(default=None, compare=False, repr=False)
    decimation: int = 1
    noise_a: float = 1e-5
    noise_b: float = 1e-4
    n_bits: int = 12
    quantize: bool = True

    def __post_init__(self) -> None:
        if self.psf is not None and self.mtf is not None:
            raise ValueError("give either mtf (a Gaussian PSF) or psf (an array), not both")
        if self.psf is None:
            object.__setattr__(self, "mtf", _check_mtf(0.1 if self.mtf is None else self.mtf))
        else:
            object.__setattr__(self, "psf", _check_psf(self.psf))
        object.__setattr__(self, "decimation", check_int(
            "decimation", self.decimation, 1, hint="the resolution ratio: 1 or 2 for Pléiades"))
        for name in ("noise_a", "noise_b"):
            object.__setattr__(self, name, check_real(
                name, getattr(self, name), positive=False,
                hint="the noise variance a + b * x must be non-negative"))
        object.__setattr__(self, "n_bits", check_int(
            "n_bits", self.n_bits, 1, maximum=32,
            hint="the bit depth of the simulated digital numbers (12 for Pléiades)"))
        if not isinstance(self.quantize, bool):
            raise TypeError(f"quantize must be a bool, got {type(self.quantize).__name__}")

    def _key(self) -> tuple:
        psf = None if self.psf is None else (self.psf.shape, self.psf.tobytes())
        return (self.mtf, psf, self.decimation, self.noise_a, self.noise_b, self.n_bits,
                self.quantize)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PleiadesDegradation):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # ------------------------------------------------------------------ model
    @property
    def levels(self) -> int:
        """Largest digital number :math:`D = 2^{n} - 1` (normalized value 1)."""
        return 2 ** self.n_bits - 1

    def psf_array(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """The PSF as a unit-sum tensor of shape ``(h, w)``."""
        if self.psf is not None:
            return torch.as_tensor(np.array(self.psf), dtype=dtype)
        return psf_from_mtf(self.mtf, dtype=dtype)

    def operator(self, image_shape: Sequence[int], *,
                 dtype: torch.dtype = torch.float32) -> LinearOperator:
        r"""The forward operator :math:`A = S_f\,H` for images of shape ``image_shape``.

        Parameters
        ----------
        image_shape : sequence of int
            ``(H, W)`` or ``(C, H, W)`` of the unknown image; ``H`` and ``W`` divisible by
            ``decimation``.
        dtype : torch.dtype, default float32

        Returns
        -------
        operators.LinearOperator
            ``Convolution(psf, image_shape, "circular")``, composed with
            ``Decimation(decimation, image_shape)`` when ``decimation > 1``; output shape
            ``(..., H / f, W / f)``.

        Raises
        ------
        ValueError
            Image smaller than the PSF, or not divisible by the decimation factor.
        """
        shape = tuple(int(s) for s in image_shape)
        if len(shape) not in (2, 3):
            raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {shape}")
        blur = Convolution(self.psf_array(dtype), shape, padding="circular")
        if self.decimation == 1:
            return blur
        return Decimation(self.decimation, shape) @ blur

    def noise_model(self, *, include_quantization: bool = True) -> PoissonGaussianNoise:
        r"""The likelihood :class:`inverse.PoissonGaussianNoise` of this acquisition.

        Parameters
        ----------
        include_quantization : bool, default True
            Add the quantization variance :math:`1 / (12 D^2)` to ``a`` when ``quantize``.
        """
        from .._noise import PoissonGaussianNoise

        a = self.noise_a
        if include_quantization and self.quantize:
            a += 1.0 / (12.0 * self.levels ** 2)
        return PoissonGaussianNoise(a=a, b=self.noise_b)

    def simulate(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Simulate an observation of the sharp image ``x``.

        Parameters
        ----------
        x : Tensor, shape ``(H, W)``, ``(C, H, W)`` or ``(B, C, H, W)``
            Sharp image in normalized units (``[0, 1]``), finite.
        generator : torch.Generator, optional
            Seeded generator for reproducible noise.

        Returns
        -------
        Tensor, shape ``(..., H / f, W / f)``, dtype of ``x``
            Blurred, decimated, noisy observation, quantized to ``2**n_bits`` levels (when
            ``quantize``) and clipped to ``[0, 1]``.

        Raises
        ------
        TypeError
            ``x`` not a floating-point tensor.
        ValueError
            ``x`` with NaN/inf, fewer than 2 dims, or a size not divisible by ``decimation``.
        """
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point torch tensor (normalized units)")
        if x.ndim < 2:
            raise ValueError(f"x must have at least 2 dims (H, W), got shape {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x contains NaN or infinite values (no-data pixels); fill or crop "
                             "them before simulating")
        shape = tuple(x.shape[-3:]) if x.ndim >= 3 else tuple(x.shape)
        op = self.operator(shape, dtype=x.dtype).to(x.device)
        u = op(x)
        y = self.noise_model(include_quantization=False).sample(u, generator=generator)
        if self.quantize:
            y = torch.round(y * self.levels) / self.levels
        return y.clamp(0.0, 1.0)

    def settings(self) -> dict[str, float | int | str]:
        """The settings as flat NetCDF-compatible attributes (``degradation_*`` keys)."""
        out: dict[str, float | int | str] = {
            "degradation_model": "blur (circular) -> decimation -> Poisson-Gaussian noise -> "
                                 "quantization",
            "degradation_decimation": self.decimation,
            "degradation_noise_a": self.noise_a,
            "degradation_noise_b": self.noise_b,
            "degradation_n_bits": self.n_bits,
            "degradation_quantize": int(self.quantize),
        }
        if self.psf is None:
            out["degradation_mtf"] = float(self.mtf)
            size = self.psf_array().shape[-1]
            out["degradation_psf_size_px"] = size
            out["degradation_psf_sigma_px"] = gaussian_sigma_from_mtf(self.mtf, size=size) \
                if self.mtf < 1 else 0.0
        else:
            out["degradation_psf"] = "user array of shape " + "x".join(map(str, self.psf.shape))
        return out
