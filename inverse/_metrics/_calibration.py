r"""Calibration metrics of per-pixel uncertainty: coverage, z-scores, AUCE, UCE, ENCE, AUSE, NLL.

Notation: :math:`x` the reference image, :math:`\hat x` the estimate (e.g. the posterior mean),
:math:`\sigma` the predicted per-pixel standard deviation, :math:`e = \hat x - x`. Every metric
pools all elements of its inputs (pixels of all images of the batch); crop borders before
calling. Computations are done in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sciml_inverse import check_int

__all__ = [
    "ZScoreStats", "SparsificationCurve", "CalibrationReport",
    "default_levels", "zscore_stats", "gaussian_coverage", "sample_coverage", "auce",
    "uce", "ence", "sparsification", "ause", "gaussian_nll", "spearman", "calibration_report",
]


def _f64(name: str, t: object) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(t).__name__}")
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}")
    return t.detach().to(torch.float64).reshape(-1)


def _check_triplet(x: Tensor, x_hat: Tensor, std: Tensor, *, positive: bool
                   ) -> tuple[Tensor, Tensor, Tensor]:
    for name, t in (("x_hat", x_hat), ("std", std)):
        if isinstance(t, Tensor) and isinstance(x, Tensor) and t.shape != x.shape:
            raise ValueError(f"{name} must have the shape of x, got {tuple(t.shape)} and "
                             f"{tuple(x.shape)}")
    x, x_hat, std = _f64("x", x), _f64("x_hat", x_hat), _f64("std", std)
    if x.numel() == 0:
        raise ValueError("empty input: the metrics need at least one pixel")
    if not (torch.isfinite(x).all() and torch.isfinite(x_hat).all()):
        raise ValueError("x and x_hat must be finite (crop or drop no-data pixels first)")
    if not torch.isfinite(std).all() or bool((std < 0).any()):
        raise ValueError("std must be finite and non-negative")
    if positive and bool((std <= 0).any()):
        raise ValueError("std must be positive for this metric (a point estimate with zero std, "
                         "such as MAP-z, has no calibration)")
    return x, x_hat, std


def _check_levels(levels: Tensor | None) -> Tensor:
    if levels is None:
        return default_levels()
    lv = _f64("levels", levels)
    if lv.numel() == 0 or bool(((lv <= 0) | (lv >= 1)).any()):
        raise ValueError("levels must be probabilities in the open interval (0, 1)")
    return lv


def default_levels() -> Tensor:
    r"""The nominal coverage levels :math:`p = 0.10, 0.11, \dots, 0.99` (90 values, float64)."""
    return torch.linspace(0.10, 0.99, 90, dtype=torch.float64)


@dataclass(frozen=True)
class ZScoreStats:
    r"""Statistics of the z-scores :math:`z = e / \sigma`.

    Attributes
    ----------
    mean, std : float
        Mean and (unbiased) standard deviation; 0 and 1 when calibrated.
    within : tuple of float
        Fraction of :math:`|z| < k` for :math:`k = 1, 2, 3`; nominal 0.6827, 0.9545, 0.9973.
    """

    mean: float
    std: float
    within: tuple[float, float, float]


def zscore_stats(x: Tensor, x_hat: Tensor, std: Tensor) -> ZScoreStats:
    r"""z-score mean, std and the fractions inside :math:`\pm 1, 2, 3` standard deviations.

    Parameters
    ----------
    x, x_hat, std : Tensor, same shape
        Reference, estimate and predicted standard deviation (positive).

    Returns
    -------
    ZScoreStats

    Raises
    ------
    ValueError
        Shape mismatch, non-finite values or a non-positive ``std``.
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=True)
    z = (x_hat - x) / std
    a = z.abs()
    sd = float(z.std()) if z.numel() > 1 else 0.0
    return ZScoreStats(mean=float(z.mean()), std=sd,
                       within=tuple(float((a < k).double().mean()) for k in (1, 2, 3)))


def gaussian_coverage(x: Tensor, x_hat: Tensor, std: Tensor, levels: Tensor | None = None
                      ) -> Tensor:
    r"""Empirical coverage of the intervals :math:`\hat x \pm \Phi^{-1}(\tfrac{1+p}2)\,\sigma`.

    .. math:: \mathrm{cov}(p) = \frac1n \#\{i : |e_i| \le \Phi^{-1}(\tfrac{1+p}{2})\,\sigma_i\}.

    Parameters
    ----------
    x, x_hat, std : Tensor, same shape
    levels : Tensor of shape ``(L,)``, optional
        Nominal probabilities in (0, 1); :func:`default_levels` by default.

    Returns
    -------
    Tensor of shape ``(L,)``, float64 (the nominal ``levels`` are the x-axis of the curve).

    Raises
    ------
    ValueError
        Shape mismatch, negative ``std`` or levels outside (0, 1).
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=False)
    lv = _check_levels(levels)
    k = torch.special.ndtri((1 + lv) / 2)  # (L,)
    a = (x_hat - x).abs()
    # fraction of |e| <= k sigma: sort the ratios once, then count by binary search
    ratio = torch.where(std > 0, a / std.clamp(min=1e-300),
                        torch.where(a == 0, torch.zeros_like(a), torch.full_like(a, math.inf)))
    ratio, _ = torch.sort(ratio)
    return torch.searchsorted(ratio, k, right=True).double() / ratio.numel()


def sample_coverage(x: Tensor, samples: Tensor, levels: Tensor | None = None) -> Tensor:
    r"""Coverage of the central intervals of per-pixel sample quantiles.

    For each level :math:`p`, pixel :math:`i` is covered when
    :math:`q_i(\tfrac{1-p}2) \le x_i \le q_i(\tfrac{1+p}2)`, with :math:`q_i` the empirical
    quantile of the samples at pixel :math:`i` (linear interpolation, as ``torch.quantile``).

    Parameters
    ----------
    x : Tensor, shape ``S``
    samples : Tensor, shape ``(K, *S)`` with ``K >= 2``
    levels : Tensor of shape ``(L,)``, optional

    Returns
    -------
    Tensor of shape ``(L,)``, float64.

    Raises
    ------
    ValueError
        Shape mismatch, fewer than two samples, levels outside (0, 1).
    """
    if not isinstance(samples, Tensor) or not isinstance(x, Tensor):
        raise TypeError("x and samples must be torch tensors")
    if samples.ndim != x.ndim + 1 or samples.shape[1:] != x.shape:
        raise ValueError(f"samples must have shape (K, *x.shape) = (K, {tuple(x.shape)}), got "
                         f"{tuple(samples.shape)}")
    if samples.shape[0] < 2:
        raise ValueError(f"sample coverage needs at least 2 samples, got {samples.shape[0]}")
    lv = _check_levels(levels)
    xs = _f64("x", x)
    s = samples.detach().to(torch.float64).reshape(samples.shape[0], -1)
    if not (torch.isfinite(s).all() and torch.isfinite(xs).all()):
        raise ValueError("x and samples must be finite")
    s, _ = torch.sort(s, dim=0)
    k = s.shape[0]

    def quantile(q: float) -> Tensor:
        pos = q * (k - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, k - 1)
        w = pos - lo
        return s[lo] * (1 - w) + s[hi] * w

    out = [((quantile((1 - p) / 2) <= xs) & (xs <= quantile((1 + p) / 2))).double().mean()
           for p in lv.tolist()]
    return torch.stack(out)


def auce(coverage: Tensor, levels: Tensor | None = None) -> Tensor:
    r"""Area under the calibration error curve, :math:`\int |\mathrm{cov}(p) - p|\,dp`.

    The integral runs over the levels (trapezoidal rule); with :func:`default_levels` it spans
    :math:`[0.1, 0.99]`, so a perfectly calibrated model gives 0 and the worst case is below 0.9.

    Parameters
    ----------
    coverage : Tensor of shape ``(L,)``
        Empirical coverage at ``levels`` (:func:`gaussian_coverage`, :func:`sample_coverage`).
    levels : Tensor of shape ``(L,)``, optional
        Increasing nominal levels; :func:`default_levels` by default.

    Returns
    -------
    0-d float64 tensor.

    Raises
    ------
    ValueError
        Length mismatch or fewer than two levels.
    """
    lv = _check_levels(levels)
    cov = _f64("coverage", coverage)
    if cov.shape != lv.shape:
        raise ValueError(f"coverage has {cov.numel()} values but there are {lv.numel()} levels")
    if lv.numel() < 2 or bool((lv.diff() <= 0).any()):
        raise ValueError("auce needs at least two increasing levels")
    return torch.trapezoid((cov - lv).abs(), lv)


def _bins(std: Tensor, n_bins: int, equal_width: bool) -> list[Tensor]:
    check_int("n_bins", n_bins, 1)
    if equal_width:
        lo, hi = float(std.min()), float(std.max())
        if hi == lo:
            return [torch.arange(std.numel())]
        idx = ((std - lo) / (hi - lo) * n_bins).long().clamp(max=n_bins - 1)
        return [torch.nonzero(idx == b).reshape(-1) for b in range(n_bins)]
    order = torch.argsort(std)
    return [c for c in torch.tensor_split(order, min(n_bins, std.numel())) if c.numel()]


def uce(x: Tensor, x_hat: Tensor, std: Tensor, *, n_bins: int = 10, equal_width: bool = False
        ) -> Tensor:
    r"""Uncertainty calibration error (Laves et al., MIDL 2020).

    .. math:: \mathrm{UCE} = \sum_b \frac{n_b}{n}\,\bigl|\mathrm{MSE}_b - \mathrm{MV}_b\bigr|,

    with :math:`\mathrm{MSE}_b` the mean squared error and :math:`\mathrm{MV}_b` the mean
    predicted variance of the pixels of bin :math:`b`. Bins hold equal counts of pixels sorted by
    :math:`\sigma` (or, with ``equal_width=True``, split the range of :math:`\sigma` evenly, as in
    the paper). In squared image units.

    Parameters
    ----------
    x, x_hat, std : Tensor, same shape
    n_bins : int, default 10
    equal_width : bool, default False

    Returns
    -------
    0-d float64 tensor.

    Raises
    ------
    ValueError
        Shape mismatch, negative ``std``, ``n_bins < 1``.
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=False)
    e2, var, n = (x_hat - x) ** 2, std ** 2, x.numel()
    total = torch.zeros((), dtype=torch.float64)
    for idx in _bins(std, n_bins, equal_width):
        if idx.numel():
            total = total + idx.numel() / n * (e2[idx].mean() - var[idx].mean()).abs()
    return total


def ence(x: Tensor, x_hat: Tensor, std: Tensor, *, n_bins: int = 10) -> Tensor:
    r"""Expected normalized calibration error (Levi et al., 2019).

    .. math:: \mathrm{ENCE} = \frac1B\sum_b \frac{|\mathrm{RMV}_b - \mathrm{RMSE}_b|}
              {\mathrm{RMV}_b},

    with equal-count bins of pixels sorted by :math:`\sigma`, :math:`\mathrm{RMV}_b` the root
    mean predicted variance and :math:`\mathrm{RMSE}_b` the root mean squared error of bin
    :math:`b`. Dimensionless; 0 when calibrated.

    Raises
    ------
    ValueError
        Shape mismatch, non-positive ``std``, ``n_bins < 1``.
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=True)
    e2, var = (x_hat - x) ** 2, std ** 2
    terms = []
    for idx in _bins(std, n_bins, equal_width=False):
        rmv, rmse = var[idx].mean().sqrt(), e2[idx].mean().sqrt()
        terms.append((rmv - rmse).abs() / rmv)
    return torch.stack(terms).mean()


@dataclass(frozen=True)
class SparsificationCurve:
    r"""Sparsification curves (Ilg et al., ECCV 2018).

    Attributes
    ----------
    fractions : Tensor of shape ``(F,)``
        Fraction of pixels removed, :math:`0, 1/F, \dots, (F-1)/F`.
    by_std : Tensor of shape ``(F,)``
        MSE of the remaining pixels after removing the most uncertain ones (largest
        :math:`\sigma`), divided by the MSE of all pixels.
    oracle : Tensor of shape ``(F,)``
        The same, removing the largest errors first (the best possible ordering).
    """

    fractions: Tensor
    by_std: Tensor
    oracle: Tensor

    @property
    def ause(self) -> Tensor:
        r"""Area between the curves, :math:`\int (\text{by\_std} - \text{oracle})\,df`
        (trapezoidal rule over :attr:`fractions`)."""
        return torch.trapezoid(self.by_std - self.oracle, self.fractions)


def sparsification(x: Tensor, x_hat: Tensor, std: Tensor, *, n_steps: int = 100
                   ) -> SparsificationCurve:
    r"""Sparsification curve of the squared error, by predicted std and by the oracle.

    Parameters
    ----------
    x, x_hat, std : Tensor, same shape
    n_steps : int, default 100
        Number of removal fractions :math:`f = k / n_{\rm steps}`, :math:`k < n_{\rm steps}`.

    Returns
    -------
    SparsificationCurve
        Its :attr:`~SparsificationCurve.ause` is the area between the curves (0 for an ordering
        as good as the oracle's); curves are normalized by the MSE of all pixels.

    Raises
    ------
    ValueError
        Shape mismatch, negative ``std``, ``n_steps < 1`` or an exact estimate (zero MSE).
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=False)
    check_int("n_steps", n_steps, 1)
    e2 = (x_hat - x) ** 2
    n = e2.numel()
    full = e2.mean()
    if not float(full) > 0:
        raise ValueError("the estimate is exact (zero error): the sparsification curve is "
                         "undefined")
    fractions = torch.arange(n_steps, dtype=torch.float64) / n_steps
    removed = (fractions * n).floor().long().clamp(max=n - 1)

    def curve(keys: Tensor) -> Tensor:
        # remove the pixels with the largest keys first: sort ascending, keep the first n - m
        sorted_e2 = e2[torch.argsort(keys, stable=True)]
        csum = torch.cat([sorted_e2.new_zeros(1), torch.cumsum(sorted_e2, 0)])
        keep = n - removed
        return csum[keep] / keep / full

    return SparsificationCurve(fractions=fractions, by_std=curve(std), oracle=curve(e2))


def ause(x: Tensor, x_hat: Tensor, std: Tensor, *, n_steps: int = 100) -> Tensor:
    r"""Area under the sparsification error curve: ``sparsification(...).ause``."""
    return sparsification(x, x_hat, std, n_steps=n_steps).ause


def gaussian_nll(x: Tensor, x_hat: Tensor, std: Tensor) -> Tensor:
    r"""Mean Gaussian negative log-likelihood per pixel, in nats.

    .. math:: \frac1n\sum_i \Bigl[\tfrac12\log(2\pi\sigma_i^2) + \frac{e_i^2}{2\sigma_i^2}\Bigr].

    Raises
    ------
    ValueError
        Shape mismatch or a non-positive ``std``.
    """
    x, x_hat, std = _check_triplet(x, x_hat, std, positive=True)
    return (0.5 * torch.log(2 * math.pi * std ** 2) + (x_hat - x) ** 2 / (2 * std ** 2)).mean()


def _average_ranks(v: Tensor) -> Tensor:
    order = torch.argsort(v, stable=True)
    sv = v[order]
    _, inverse, counts = torch.unique_consecutive(sv, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    avg = ends - (counts.double() - 1) / 2  # 1-based average rank of each tie group
    ranks = torch.empty_like(v)
    ranks[order] = avg[inverse]
    return ranks


def spearman(a: Tensor, b: Tensor) -> Tensor:
    r"""Spearman rank correlation of two tensors (flattened), ties given their average rank.

    Use ``spearman((x_hat - x).abs(), std)`` to measure whether the std map ranks the errors.

    Returns
    -------
    0-d float64 tensor in :math:`[-1, 1]`, ``nan`` if one input is constant.

    Raises
    ------
    ValueError
        Shape mismatch or fewer than two elements.
    """
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    a, b = _f64("a", a), _f64("b", b)
    if a.numel() < 2:
        raise ValueError("spearman needs at least two elements")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = (ra.square().sum() * rb.square().sum()).sqrt()
    if float(den) == 0:
        return torch.tensor(math.nan, dtype=torch.float64)
    return (ra * rb).sum() / den


@dataclass(frozen=True)
class CalibrationReport:
    """All calibration numbers of one (estimate, std) pair; see :func:`calibration_report`."""

    zscore_mean: float
    zscore_std: float
    coverage_1sigma: float
    coverage_2sigma: float
    coverage_3sigma: float
    auce: float
    auce_samples: float | None
    uce: float
    ence: float
    ause: float
    nll: float
    spearman: float

    def as_dict(self) -> dict[str, float | None]:
        """The fields as a plain dict (for JSON)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def calibration_report(x: Tensor, x_hat: Tensor, std: Tensor, samples: Tensor | None = None,
                       *, n_bins: int = 10) -> CalibrationReport:
    r"""Every calibration metric of this module at once.

    ``coverage_ksigma`` is the fraction of :math:`|z| < k`; ``auce`` uses Gaussian intervals on
    :func:`default_levels`, ``auce_samples`` the sample quantiles (when ``samples`` is given).

    Parameters
    ----------
    x, x_hat, std : Tensor, same shape
        ``std`` positive.
    samples : Tensor of shape ``(K, *x.shape)``, optional
    n_bins : int, default 10
        Bins of :func:`uce` and :func:`ence`.

    Returns
    -------
    CalibrationReport
    """
    zs = zscore_stats(x, x_hat, std)
    lv = default_levels()
    a_s = None
    if samples is not None:
        a_s = float(auce(sample_coverage(x, samples, lv), lv))
    return CalibrationReport(
        zscore_mean=zs.mean, zscore_std=zs.std, coverage_1sigma=zs.within[0],
        coverage_2sigma=zs.within[1], coverage_3sigma=zs.within[2],
        auce=float(auce(gaussian_coverage(x, x_hat, std, lv), lv)), auce_samples=a_s,
        uce=float(uce(x, x_hat, std, n_bins=n_bins)), ence=float(ence(x, x_hat, std,
                                                                      n_bins=n_bins)),
        ause=float(ause(x, x_hat, std)), nll=float(gaussian_nll(x, x_hat, std)),
        spearman=float(spearman((x_hat - x).abs(), std)))
