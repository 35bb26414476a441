r"""Image-quality and uncertainty-calibration metrics, batched, in PyTorch.

Image quality: :func:`psnr`, :func:`ssim`. Calibration of a per-pixel standard deviation
:math:`\sigma` predicted with an estimate :math:`\hat x` of a reference :math:`x`
(VBLE convention, Biquard et al. arXiv 2412.04130): :func:`zscore_stats`,
:func:`gaussian_coverage` and :func:`sample_coverage` (coverage curves) with :func:`auce`,
:func:`uce`, :func:`ence`, :func:`sparsification` and :func:`ause`, :func:`gaussian_nll`,
:func:`spearman`, and :func:`calibration_report` (all of them at once).

PSNR and SSIM follow scikit-image's definitions (the metrics of the LPN reference code), so
numbers are comparable with published ones computed by ``skimage.metrics``:

* :func:`psnr` :math:`= 10\log_{10}(\mathrm{data\_range}^2 / \mathrm{MSE})` per sample;
* :func:`ssim` is ``skimage.metrics.structural_similarity`` with its defaults — a 7×7 uniform
  window, sample covariances (:math:`N/(N-1)`), :math:`K_1 = 0.01`, :math:`K_2 = 0.03` — and the
  mean taken over the windows that lie inside the image (scikit-image crops the border of
  half a window); channels are averaged, like ``channel_axis``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from sciml_inverse import check_int, check_number, check_real

from ._metrics._calibration import CalibrationReport as CalibrationReport
from ._metrics._calibration import SparsificationCurve as SparsificationCurve
from ._metrics._calibration import ZScoreStats as ZScoreStats
from ._metrics._calibration import auce as auce
from ._metrics._calibration import ause as ause
from ._metrics._calibration import calibration_report as calibration_report
from ._metrics._calibration import default_levels as default_levels
from ._metrics._calibration import ence as ence
from ._metrics._calibration import gaussian_coverage as gaussian_coverage
from ._metrics._calibration import gaussian_nll as gaussian_nll
from ._metrics._calibration import sample_coverage as sample_coverage
from ._metrics._calibration import sparsification as sparsification
from ._metrics._calibration import spearman as spearman
from ._metrics._calibration import uce as uce
from ._metrics._calibration import zscore_stats as zscore_stats

__all__ = [
    "psnr", "ssim",
    "zscore_stats", "ZScoreStats", "gaussian_coverage", "sample_coverage", "default_levels",
    "auce", "uce", "ence", "sparsification", "SparsificationCurve", "ause", "gaussian_nll",
    "spearman", "calibration_report", "CalibrationReport",
]


def _check_pair(x: Tensor, ref: Tensor, min_ndim: int, data_range: float) -> None:
    if not isinstance(x, Tensor) or not isinstance(ref, Tensor):
        raise TypeError("x and ref must be torch tensors")
    if x.shape != ref.shape:
        raise ValueError(f"x and ref must have the same shape, got {tuple(x.shape)} and "
                         f"{tuple(ref.shape)}")
    if x.ndim < min_ndim:
        raise ValueError(f"expected at least {min_ndim} dims, got shape {tuple(x.shape)}")
    if x.is_complex() or ref.is_complex():
        raise TypeError("metrics are defined for real images")
    if x.device != ref.device:
        raise ValueError(f"x is on {x.device} but ref is on {ref.device}; move one of them")
    check_real("data_range", data_range)
    if not (float(data_range) > 0):
        raise ValueError(f"data_range must be positive, got {data_range}")


def psnr(x: Tensor, ref: Tensor, *, data_range: float = 1.0, event_ndim: int = 3) -> Tensor:
    r"""Peak signal-to-noise ratio in dB, one value per sample.

    Parameters
    ----------
    x, ref : Tensor, shape ``(*batch, *event)``
        Estimate and reference (no clipping is applied).
    data_range : float, default 1.0
        Peak-to-peak range of the images.
    event_ndim : int, default 3
        Trailing dims of one sample (``(C, H, W)``).

    Returns
    -------
    Tensor of shape ``batch`` (``inf`` where ``x == ref``).

    Raises
    ------
    ValueError
        Shape or device mismatch, non-positive ``data_range``, ``event_ndim < 1``.

    Examples
    --------
    >>> import torch
    >>> from inverse.metrics import psnr
    >>> float(psnr(torch.full((1, 4, 4), 0.1), torch.zeros(1, 4, 4)))
    20.0
    """
    check_int("event_ndim", event_ndim, 1)
    _check_pair(x, ref, event_ndim, data_range)
    d = (x - ref).to(torch.promote_types(x.dtype, torch.float32))
    mse = (d * d).mean(dim=tuple(range(-event_ndim, 0)))
    return 10.0 * torch.log10(float(data_range) ** 2 / mse)


def ssim(x: Tensor, ref: Tensor, *, data_range: float = 1.0, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> Tensor:
    r"""Structural similarity (scikit-image's default definition), one value per image.

    Parameters
    ----------
    x, ref : Tensor, shape ``(*batch, C, H, W)``
        Estimate and reference; channels are averaged (as ``channel_axis`` in scikit-image).
    data_range : float, default 1.0
    win_size : int, default 7
        Odd side of the uniform window, at most ``min(H, W)``.
    k1, k2 : float
        SSIM constants.

    Returns
    -------
    Tensor of shape ``batch``.

    Raises
    ------
    ValueError
        Shape or device mismatch, even, too small or too large window, non-positive
        ``data_range``, ``k1`` or ``k2``.
    """
    _check_pair(x, ref, 3, data_range)
    rule = f"win_size must be odd, >= 3 and at most min(H, W) = {min(x.shape[-2:])}"
    if check_int("win_size", win_size, 3, maximum=min(x.shape[-2:]), hint=rule) % 2 != 1:
        raise ValueError(f"{rule}, got {win_size!r}")
    check_number("k1", k1)
    check_number("k2", k2)
    batch = x.shape[:-3]
    dt = torch.promote_types(x.dtype, torch.float32)
    a = x.reshape(-1, 1, *x.shape[-2:]).to(dt)
    b = ref.reshape(-1, 1, *x.shape[-2:]).to(dt)

    def mean(t: Tensor) -> Tensor:
        return F.avg_pool2d(t, win_size, stride=1)  # the windows inside the image

    n = win_size * win_size
    cov = n / (n - 1)
    ux, uy = mean(a), mean(b)
    vx = cov * (mean(a * a) - ux * ux)
    vy = cov * (mean(b * b) - uy * uy)
    vxy = cov * (mean(a * b) - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    per_channel = s.mean(dim=(-3, -2, -1)).reshape(*batch, x.shape[-3])
    return per_channel.mean(dim=-1)
