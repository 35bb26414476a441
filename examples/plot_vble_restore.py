"""
Satellite restoration with an uncertainty map (VBLE-xz)
=======================================================

Degrade a crop of the bundled NAIP tile with the Pléiades-like model (Gaussian PSF with MTF 0.1
at Nyquist, Poisson-Gaussian noise, 8-bit quantization), restore it with VBLE-xz and the
shipped compressive autoencoder, and show the posterior mean and standard deviation.

The crop (96 x 96) is restored tile by tile, as ``sciml-inverse restore`` does with large
scenes: four 64 x 64 tiles overlapping by 32 pixels, blended into one mean and one standard
deviation map. To keep the example short it runs 100 iterations and 100 posterior samples
instead of the command line's 300 iterations, so it restores a little less well than the
command line would. (An earlier version of this example, on a 128 x 128 crop with the command
line's settings, claimed to run "in seconds"; it took minutes on 2 CPU cores.)

Cost: 4 tiles x 100 iterations of the CAE decoder on 64 x 64 pixels plus the samples; see the
running time at the bottom of this page (not measured on an idle machine).
"""

# %%
# The sharp image and its simulated observation
# ---------------------------------------------
# :func:`~inverse.satellite.read_raster` returns a ``(band, y, x)`` DataArray in digital numbers
# with its CRS and transform; :func:`~inverse.satellite.simulate_raster` applies the
# degradation and keeps the georeferencing.
import matplotlib.pyplot as plt
import numpy as np
import torch

from inverse.metrics import default_levels, gaussian_coverage
from inverse.satellite import (
    PleiadesDegradation,
    demo_tile_path,
    psf_from_mtf,
    read_raster,
    restore_raster,
    simulate_raster,
)
from inverse.vble import VBLEOptions, default_cae

torch.manual_seed(0)
sharp = read_raster(demo_tile_path()).isel(y=slice(64, 160), x=slice(64, 160))
deg = PleiadesDegradation(mtf=0.1, noise_a=1e-4, noise_b=1e-3, n_bits=8)
observed = simulate_raster(sharp, deg, seed=0)
print("PSF", tuple(psf_from_mtf(0.1).shape), "sigma (px):",
      round(deg.settings()["degradation_psf_sigma_px"], 3))

# %%
# Restoration
# -----------
# :func:`~inverse.satellite.restore_raster` is the code path of ``sciml-inverse restore``: it
# normalizes the digital numbers by :math:`2^8 - 1`, runs VBLE-xz tile by tile (2 x 2 tiles
# here) and returns the posterior mean and standard deviation on the image grid.
cae = default_cae("low")
options = VBLEOptions(method="vble_xz", steps=100, n_samples=100, seed=0)
result = restore_raster(observed, deg, cae, options, tile=64, overlap=32, progress=False)

x = sharp.values[0].astype(np.float64)
mmse, std = result.restored.values[0], result.std.values[0]


def psnr(a, b):
    return 10 * np.log10(255.0 ** 2 / np.mean((a - b) ** 2))


print(f"PSNR observed {psnr(observed.values[0], x):.2f} dB, restored {psnr(mmse, x):.2f} dB")
print(f"coverage of +-2 std: {np.mean(np.abs(mmse - x) <= 2 * std):.3f}")

# %%
# The error of the restoration and the predicted standard deviation should be large in the
# same places (edges, textures).
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
panels = [(observed.values[0], "observed", "gray"), (mmse, "restored (MMSE)", "gray"),
          (np.abs(mmse - x), "|error|", "magma"), (std, "posterior std", "magma")]
for ax, (img, title, cmap) in zip(axes, panels, strict=True):
    kw = dict(vmin=0, vmax=float(np.percentile(np.abs(mmse - x), 99))) if cmap == "magma" \
        else dict(vmin=float(x.min()), vmax=float(x.max()))
    ax.imshow(img, cmap=cmap, **kw)
    ax.set_title(title)
    ax.set_axis_off()
fig.tight_layout()

# %%
# Calibration
# -----------
# If the standard deviation is calibrated, the interval :math:`\hat x \pm
# \Phi^{-1}(\tfrac{1+p}{2})\,\sigma` holds the truth in a fraction :math:`p` of the pixels
# (:func:`inverse.metrics.gaussian_coverage`): the curve lies on the diagonal. Below it, the
# uncertainty is underestimated.
levels = default_levels()
cov = gaussian_coverage(torch.from_numpy(x), torch.from_numpy(mmse.astype(np.float64)),
                        torch.from_numpy(std.astype(np.float64)), levels)
fig, ax = plt.subplots(figsize=(4.2, 4))
ax.plot([0, 1], [0, 1], "k--", lw=1, label="calibrated")
ax.plot(levels, cov, color="C3", label="VBLE-xz")
ax.set_xlabel("nominal coverage p")
ax.set_ylabel("empirical coverage")
ax.set_title("Calibration of the posterior std")
ax.legend()
fig.tight_layout()
plt.show()
