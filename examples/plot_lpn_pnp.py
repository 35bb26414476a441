"""
Learned proximal networks: a learned prox and plug-and-play deblurring
======================================================================

Two uses of :class:`inverse.lpn.LPN`, the learned proximal network of Fang, Buchanan & Sulam
(ICLR 2024), whose output is *exactly* the proximal operator of some regularizer:

1. the 1-D Laplace toy: an LPN trained by proximal matching on :math:`y = x + \\mathcal N(0, 1)`,
   :math:`x \\sim \\mathrm{Laplace}(0, 1)`, approaches the MAP denoiser, the soft-threshold
   :math:`\\mathrm{soft}(y, 1)`. The schedule here is a very short one (800 steps of batch 256
   instead of the reference's 60,000 of batch 2000), so the learned prox is only on its way to
   the soft-threshold (a few tenths from it for :math:`|y| \\le 2.5`, flat in the rarely
   sampled tails); ``examples/lpn_laplace.py`` runs the full study (max error 0.1);
2. the shipped image LPN (``inverse/lpn/weights/lpn_deblur_gray.pt``) as the prior of PnP-ADMM
   for Gaussian deblurring of a crop of the bundled NAIP tile, against Tikhonov regularization.

Cost: the 800 training steps take about 26 s of CPU time (33 ms per step, measured with one
thread); the deblurring runs 2 x 40 ADMM iterations on a 128 x 128 image. The whole script was
not timed on an idle machine. On the shared 2-core machine that built these pages it took
2 min 13 s of wall time in the documentation build (1-D training 108 s, ADMM 25 s), and 15
minutes of wall time (204 s of CPU time, ``OMP_NUM_THREADS=2``) in a standalone run under a
load of ~20: more than the one-minute target.
"""

# %%
# A learned prox on the 1-D Laplace toy
# -------------------------------------
# :func:`inverse.lpn.train_lpn` runs a list of phases: an ℓ1 warm-up (posterior median), then
# proximal matching with a shrinking :math:`\gamma`. Each phase draws fresh Laplace samples.
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from inverse import ADMMOptions, L2DataFidelity, LPNPrior, TikhonovPrior, admm
from inverse.lpn import LPN, LPNTrainConfig, TrainPhase, VectorLPNConfig, load_lpn, train_lpn
from inverse.metrics import psnr
from operators import Convolution

t_start = time.perf_counter()


def laplace(batch_size, generator):
    """Laplace(0, 1) samples of shape ``(batch_size, 1)`` by inverse CDF."""
    u = torch.rand(batch_size, 1, generator=generator) - 0.5
    return -torch.sign(u) * torch.log1p(-2 * u.abs().clamp(max=0.5 - 1e-7))


torch.manual_seed(0)
lpn_1d = LPN(VectorLPNConfig())
phases = (TrainPhase("l1", 400, 1e-3), TrainPhase("pm", 200, 1e-4, gamma=0.5),
          TrainPhase("pm", 200, 1e-4, gamma=0.3))
config = LPNTrainConfig(phases=phases, batch_size=256, sigma_noise=1.0, seed=0, log_every=1000)
train_lpn(lpn_1d, laplace, config, progress=False)

y = torch.linspace(-4, 4, 401)[:, None]
with torch.no_grad():
    prox = lpn_1d(y)[:, 0]
soft = torch.sign(y[:, 0]) * (y[:, 0].abs() - 1).clamp(min=0)
# After this short schedule the prox follows soft(y, 1) where training data are dense and
# flattens out in the tails (|y| > 3 is rare in the noisy samples); the full schedule of
# ``examples/lpn_laplace.py`` reaches a max error of 0.1 on [-4, 4].
inner = y[:, 0].abs() <= 2.5
print(f"max |LPN(y) - soft(y, 1)|: {float((prox - soft)[inner].abs().max()):.3f} on [-2.5, 2.5], "
      f"{float((prox - soft).abs().max()):.3f} on [-4, 4]")
print(f"1-D training: {time.perf_counter() - t_start:.1f} s")

fig, ax = plt.subplots(figsize=(5, 4))
ax.plot(y[:, 0], y[:, 0], color="0.7", lw=1, label="identity")
ax.plot(y[:, 0], soft, "k--", label="soft(y, 1) (MAP)")
ax.plot(y[:, 0], prox, color="C3", label="learned prox (LPN)")
ax.set_xlabel("noisy y")
ax.set_ylabel("denoised")
ax.set_title("Laplace prior: learned prox vs soft-threshold")
ax.legend()
fig.tight_layout()

# %%
# Plug-and-play deblurring with the shipped LPN
# ---------------------------------------------
# The shipped model was trained at :math:`\sigma_{\rm train} = 0.03` (its JSON sidecar); for
# noise :math:`\sigma` the MAP weight is :math:`\lambda = (\sigma/\sigma_{\rm train})^2`
# (:meth:`inverse.LPNPrior.admm_weight`) and ADMM runs with :math:`\rho = \lambda`. The
# Tikhonov weight is the one ``examples/lpn_deblur.py`` chose on ``train/`` crops for this blur
# and noise (λ = 0.1, ρ = 10 λ; see the LPN guide), not tuned on this image.
t0 = time.perf_counter()
try:
    root = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery runs an example in its own directory, without __file__
    root = Path.cwd()
naip = np.load(root / "data" / "naip_nd_5m_20170827_gray256.npz")
x = torch.from_numpy(naip["image"][64:192, 64:192].astype(np.float32) / 255.0)[None, None]

r = torch.arange(13.0) - 6
psf = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5**2))
A = Convolution(psf / psf.sum(), (1, 128, 128))  # circular Gaussian blur, sigma 1.5 px
sigma = 0.02
y_obs = A(x) + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))

lpn_path = root.parent / "inverse" / "lpn" / "weights" / "lpn_deblur_gray.pt"
prior = LPNPrior(load_lpn(lpn_path), sigma_train=0.03)
lam = prior.admm_weight(sigma)
with torch.no_grad():
    x_lpn = admm(L2DataFidelity(A, y_obs), prior, lam=lam, x0=y_obs,
                 options=ADMMOptions(max_iter=40)).x
    x_tik = admm(L2DataFidelity(A, y_obs), TikhonovPrior(boundary="circular"), lam=0.1,
                 x0=y_obs, options=ADMMOptions(max_iter=40, rho=1.0)).x
print(f"PnP-ADMM: {time.perf_counter() - t0:.1f} s")


def db(im):
    return float(psnr(im.clamp(0, 1), x))


fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
panels = [(x, "truth"), (y_obs, f"blurred + noise, {db(y_obs):.1f} dB"),
          (x_tik, f"Tikhonov, {db(x_tik):.1f} dB"), (x_lpn, f"PnP-ADMM + LPN, {db(x_lpn):.1f} dB")]
for ax, (im, title) in zip(axes, panels, strict=True):
    ax.imshow(im[0, 0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
print(f"total: {time.perf_counter() - t_start:.1f} s")
