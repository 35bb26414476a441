r"""Poisson-Gaussian noise parameters from the image itself: :func:`estimate_noise`.

The observation model is :math:`y = u + n`, :math:`\operatorname{var}(n) = a + b\,u` (normalized
units, as ``--noise A B`` and :class:`~inverse.satellite.PleiadesDegradation`). A simplified
version of Foi et al. (2008):

1. **Residual.** :math:`r = k \ast y` with the separable second difference
   :math:`k = d d^\top`, :math:`d = (1, -2, 1)/\sqrt 6`. It annihilates locally linear signals
   and has unit norm, so on smooth regions :math:`\operatorname{var}(r) \approx a + b\,u`.
2. **Level.** :math:`u` is estimated by a ``5 x 5`` local mean.
3. **Smooth pixels.** Pixels whose local gradient magnitude (of the smoothed image) is in the
   lower half *within their level bin* are kept (edges and texture inflate the residual).
4. **Variance per level.** The kept pixels are split into ``n_bins`` equally populated level
   bins; in each, the variance is the robust :math:`(1.4826\,\mathrm{MAD}(r))^2`.
5. **Fit.** :math:`(a, b)` by weighted least squares on the bins (weights :math:`n_j / v_j^2`,
   the inverse variance of a variance estimate), constrained to :math:`a, b \ge 0`.

The quantization variance :math:`1/(12 D^2)`, :math:`D = 2^{n} - 1`, is subtracted from
:math:`a` (``--noise`` excludes it: :meth:`~inverse.satellite.PleiadesDegradation.noise_model`
adds it back). Large scenes are sampled: at most ``max_windows`` windows of ``window`` pixels
on a regular grid, read one at a time.

Reference: A. Foi, M. Trimeche, V. Katkovnik, K. Egiazarian, "Practical Poissonian-Gaussian
noise modeling and fitting for single-image raw-data", IEEE TIP 17(10), 2008 (the full method
uses wavelet detail coefficients, level-set segmentation and a maximum-likelihood fit with
clipping).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sciml_inverse import check_int

__all__ = ["NoiseEstimate", "estimate_noise"]


@dataclass
class NoiseEstimate:
    """Result of :func:`estimate_noise` (normalized units).

    Attributes
    ----------
    a, b : float
        Poisson-Gaussian parameters: variance :math:`a + b\\,u`.
    levels, variances, counts : list of float / int
        Per level bin: mean level, robust residual variance, number of pixels.
    n_bits : int
    n_pixels : int
        Pixels used (after the smoothness selection).
    """

    a: float
    b: float
    levels: list[float] = field(default_factory=list)
    variances: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    n_bits: int = 12
    n_pixels: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``a``, ``b``, and the per-bin data)."""
        return {"a": self.a, "b": self.b, "n_bits": self.n_bits, "n_pixels": self.n_pixels,
                "units": "normalized: digital numbers / (2**n_bits - 1)",
                "method": "second-difference residual, smooth pixels, robust variance per "
                          "level bin, weighted least squares (simplified Foi et al. 2008)",
                "levels": self.levels, "variances": self.variances, "counts": self.counts}


def _box(x: np.ndarray, k: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.uniform_filter(x, size=k, mode="reflect")


def _features(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residual, level and gradient magnitude of one 2-D window, cropped by 3 px; NaN-free."""
    from scipy import ndimage

    d = np.array([1.0, -2.0, 1.0]) / math.sqrt(6.0)
    r = ndimage.convolve(y, np.outer(d, d), mode="reflect")
    level = _box(y, 5)
    gy, gx = np.gradient(level)
    grad = np.hypot(gx, gy)
    c = (slice(3, -3), slice(3, -3))
    return r[c], level[c], grad[c]


def _windows(shape: tuple[int, int, int], window: int, max_windows: int):
    _c, h, w = shape
    wh, ww = min(window, h), min(window, w)
    n = max(1, int(math.isqrt(max_windows)))
    rows = np.unique(np.linspace(0, h - wh, min(n, max(1, h // wh))).astype(int))
    cols = np.unique(np.linspace(0, w - ww, min(n, max(1, w // ww))).astype(int))
    for r in rows:
        for c in cols:
            yield slice(int(r), int(r) + wh), slice(int(c), int(c) + ww)


def estimate_noise(image: Any, *, n_bits: int = 12, band: int | None = None, n_bins: int = 16,
                   window: int = 512, max_windows: int = 64) -> NoiseEstimate:
    """Estimate the Poisson-Gaussian noise parameters ``(a, b)`` of an observation.

    Parameters
    ----------
    image : path, xarray.DataArray, RasterSource or ndarray ``(H, W)`` / ``(C, H, W)``
        Digital numbers (NaN = no data). Arrays are taken as digital numbers too.
    n_bits : int, default 12
        Bit depth: values are divided by ``2**n_bits - 1``.
    band : int, optional
        Band to use (from 1) of a multi-band image; default: all bands pooled.
    n_bins : int, default 16
        Level bins of the fit.
    window, max_windows : int
        Windows read from a large image (memory stays bounded).

    Returns
    -------
    NoiseEstimate

    Raises
    ------
    ValueError
        Too few valid pixels (fewer than ``50 * n_bins``) or a bad parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from inverse.satellite import estimate_noise
    >>> rng = np.random.default_rng(0)
    >>> u = np.tile(np.linspace(0.1, 0.9, 512), (512, 1))
    >>> y = (u + np.sqrt(1e-4 + 1e-3 * u) * rng.standard_normal(u.shape)) * 4095
    >>> est = estimate_noise(y, n_bits=12)
    >>> bool(abs(est.a / 1e-4 - 1) < 0.2 and abs(est.b / 1e-3 - 1) < 0.2)
    True
    """
    from ._restore import _as_source
    from ._source import RasterSource

    check_int("n_bins", n_bins, 2)
    n_bits = check_int("n_bits", n_bits, 1, maximum=32,
                       hint="the bit depth of the digital numbers (12 for Pléiades)")
    if isinstance(image, np.ndarray):
        from ._io import georeferenced

        image = georeferenced(np.asarray(image, dtype=np.float32))
    source, opened = _as_source(image) if not isinstance(image, RasterSource) \
        else (image, False)
    dn = float(2 ** n_bits - 1)
    try:
        bands = range(source.shape[0]) if band is None else [int(band) - 1]
        if band is not None and not 1 <= int(band) <= source.shape[0]:
            raise ValueError(f"band {band} does not exist (the image has {source.shape[0]})")
        res, lev, grd = [], [], []
        for rows, cols in _windows(source.shape, window, max_windows):
            blk = source.read(rows, cols) / dn
            for k in bands:
                y = blk[k].astype(np.float64)
                valid = np.isfinite(y)
                if valid.mean() < 0.99:  # windows with no-data: keep fully valid 16-row strips
                    y = np.where(valid, y, np.nanmean(y) if valid.any() else 0.0)
                    ok = _box(valid.astype(float), 9)[3:-3, 3:-3] > 0.999
                else:
                    ok = None
                if y.shape[0] < 12 or y.shape[1] < 12:
                    continue
                r, lv, g = _features(y)
                if ok is not None:
                    r, lv, g = r[ok], lv[ok], g[ok]
                res.append(r.ravel())
                lev.append(lv.ravel())
                grd.append(g.ravel())
    finally:
        if opened:
            source.close()
    if not res:
        raise ValueError("the image is too small to estimate its noise (at least 12 x 12)")
    r, lv, g = (np.concatenate(v) for v in (res, lev, grd))
    if r.size < 50 * n_bins:
        raise ValueError(f"too few valid pixels ({r.size}) to estimate the noise; need "
                         f"{50 * n_bins}")
    edges = np.quantile(lv, np.linspace(0, 1, n_bins + 1))
    idx = np.clip(np.searchsorted(edges, lv, side="right") - 1, 0, n_bins - 1)
    levels, variances, counts = [], [], []
    for j in range(n_bins):
        sel = idx == j
        if sel.sum() < 50:
            continue
        gj = g[sel]
        smooth = gj <= np.quantile(gj, 0.5)
        rj = r[sel][smooth]
        mad = np.median(np.abs(rj - np.median(rj)))
        levels.append(float(lv[sel][smooth].mean()))
        variances.append(float((1.4826 * mad) ** 2))
        counts.append(int(rj.size))
    a, b = _fit(np.array(levels), np.array(variances), np.array(counts))
    a = max(0.0, a - 1.0 / (12.0 * dn * dn))
    return NoiseEstimate(a=a, b=b, levels=levels, variances=variances, counts=counts,
                         n_bits=n_bits, n_pixels=int(sum(counts)))


def _fit(u: np.ndarray, v: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Weighted least squares of ``v = a + b u`` with ``a, b >= 0``."""
    w = n / np.maximum(v, 1e-30) ** 2
    design = np.stack([np.ones_like(u), u], axis=1)
    sw = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design * sw, v * sw[:, 0], rcond=None)
    a, b = float(coef[0]), float(coef[1])
    if a >= 0 and b >= 0:
        return a, b
    # the constrained optimum lies on a boundary: a = 0 or b = 0
    b0 = max(0.0, float(np.sum(w * u * v) / np.sum(w * u * u)))
    a0 = max(0.0, float(np.sum(w * v) / np.sum(w)))
    cost_b = float(np.sum(w * (v - b0 * u) ** 2))
    cost_a = float(np.sum(w * (v - a0) ** 2))
    return (0.0, b0) if cost_b <= cost_a else (a0, 0.0)
