"""``inverse.metrics`` agrees with scikit-image's PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inverse.metrics import psnr, ssim

skm = pytest.importorskip("skimage.metrics", reason="scikit-image is needed for the comparison")


def _pair(shape, dtype=torch.float64):
    ref = torch.rand(*shape, dtype=dtype)
    x = (ref + 0.1 * torch.randn(*shape, dtype=dtype)).clamp(0, 1)
    return x, ref


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_psnr_matches_skimage(dtype):
    x, ref = _pair((3, 1, 20, 24), dtype)
    ours = psnr(x, ref)
    for i in range(3):
        theirs = skm.peak_signal_noise_ratio(ref[i, 0].double().numpy(),
                                             x[i, 0].double().numpy(), data_range=1.0)
        assert float(ours[i]) == pytest.approx(theirs, abs=1e-4)
    assert float(psnr(2 * x, 2 * ref, data_range=2.0)[0]) == pytest.approx(float(ours[0]),
                                                                             abs=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    x, ref = _pair((2, channels, 23, 31))
    ours = ssim(x, ref)
    for i in range(2):
        a, b = x[i].numpy(), ref[i].numpy()
        if channels == 1:
            theirs = skm.structural_similarity(b[0], a[0], data_range=1.0)
        else:
            theirs = skm.structural_similarity(np.moveaxis(b, 0, -1), np.moveaxis(a, 0, -1),
                                               data_range=1.0, channel_axis=-1)
        assert float(ours[i]) == pytest.approx(theirs, abs=1e-6)
    assert float(ssim(ref, ref)[0]) == pytest.approx(1.0)


def test_metric_errors():
    a = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="data_range must be positive"):
        psnr(a, a, data_range=0.0)
    with pytest.raises(ValueError, match="win_size must be odd"):
        ssim(a, a, win_size=9)
    with pytest.raises(ValueError, match="win_size must be odd"):
        ssim(a, a, win_size=4)
    with pytest.raises(ValueError, match="at least 3 dims"):
        ssim(torch.zeros(8, 8), torch.zeros(8, 8))
