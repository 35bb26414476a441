"""
Satellite restoration with an uncertainty map (VBLE-xz)
=======================================================

Degrade a crop of the bundled NAIP tile with the Pléiades-like model (Gaussian PSF with MTF 0.1
at Nyquist, Poisson-Gaussian noise, 8-bit quantization), restore it with VBLE-xz and the
shipped compressive autoencoder, and show the posterior mean and standard deviation.

The posterior settings are those of the command line ``sciml-inverse restore`` (300
iterations, 100 samples); the image is a 128 x 128 crop so that the example runs in seconds on
a laptop CPU.
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
sharp = read_raster(demo_tile_path()).isel(y=slice(64, 192), x=slice(64, 192))
deg = PleiadesDegradation(mtf=0.1, noise_a=1e-4, noise_b=1e-3, n_bits=8)
observed = simulate_raster(sharp, deg, seed=0)
print("PSF", tuple(psf_from_mtf(0.1).shape), "sigma (px):",
      round(deg.settings()["degradation_psf_sigma_px"], 3))

# %%
# Restoration
# -----------
# :func:`~inverse.satellite.restore_raster` is the code path of ``sciml-inverse restore``: it
# normalizes the digital numbers by :math:`2^8 - 1`, runs VBLE-xz tile by tile (one tile here)
# and returns the posterior mean and standard deviation on the image grid.
cae = default_cae("low")
options = VBLEOptions(method="vble_xz", n_iter=300, n_samples=100, seed=0)
result = restore_raster(observed, deg, cae, options, tile=128, overlap=32, progress=False)

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
plt.show()
