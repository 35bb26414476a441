"""Learned proximal networks (LPN): exact learned proxes, their regularizers, and training.

Usage: ``lpn = LPN(ImageLPNConfig(in_channels=1)); train_lpn(lpn, patches, LPNTrainOptions(
batch_size=64, sigma_noise=0.1), checkpoint="lpn.pt"); x_hat = lpn(y); R = lpn.regularizer(x)``.

An LPN is :math:`f = \\nabla\\psi` with ψ input-convex (plus α‖x‖²), hence the exact proximal
operator of the regularizer :math:`R = \\psi^* - \\tfrac12\\|\\cdot\\|^2`
(Fang, Buchanan & Sulam, ICLR 2024). This package provides

* :class:`LPN` with :class:`VectorLPNConfig` (MLP) and :class:`ImageLPNConfig` (fully
  convolutional, any image size): ``lpn(x)`` = f(x), ``lpn.potential(x)`` = ψ(x),
  ``lpn.inverse(x)`` / ``lpn.invert(x)`` = f⁻¹(x) by batched L-BFGS, ``lpn.regularizer(x)`` = R(x);
* :class:`PatchLPN`: the exact patch-averaged prox for huge images (memory-bounded tiling);
* :class:`ProximalMatchingLoss` and :func:`proximal_matching_schedule`;
* :func:`train_lpn` with :class:`LPNTrainOptions` / :class:`TrainPhase` / :func:`standard_phases`
  (L1 warm-up then proximal matching, checkpoints and exact resume);
* :func:`save_lpn` / :func:`load_lpn`.
"""

from sciml_inverse._deprecation import deprecated_aliases as _deprecated_aliases

from ._checkpoint import library_version as library_version
from ._checkpoint import load_lpn as load_lpn
from ._checkpoint import save_lpn as save_lpn
from ._icnn import ConvICNN as ConvICNN
from ._icnn import ImageLPNConfig as ImageLPNConfig
from ._icnn import VectorICNN as VectorICNN
from ._icnn import VectorLPNConfig as VectorLPNConfig
from ._loss import ProximalMatchingLoss as ProximalMatchingLoss
from ._loss import proximal_matching_schedule as proximal_matching_schedule
from ._lpn import LPN as LPN
from ._lpn import AbstractLPN as AbstractLPN
from ._lpn import InversionResult as InversionResult
from ._patch import PatchLPN as PatchLPN
from ._train import LPNTrainOptions as LPNTrainOptions
from ._train import TrainHistory as TrainHistory
from ._train import TrainPhase as TrainPhase
from ._train import standard_phases as standard_phases
from ._train import train_lpn as train_lpn

__all__ = [
    "LPN", "AbstractLPN", "VectorLPNConfig", "ImageLPNConfig", "VectorICNN", "ConvICNN",
    "InversionResult", "PatchLPN", "ProximalMatchingLoss", "proximal_matching_schedule",
    "LPNTrainOptions", "TrainPhase", "TrainHistory", "standard_phases",
    "train_lpn", "save_lpn",
    "load_lpn", "library_version",
]

# former names (naming scheme: ...Options for how a call runs), with a DeprecationWarning
__getattr__ = _deprecated_aliases("inverse.lpn", {"LPNTrainConfig": ("LPNTrainOptions",
                                                                     LPNTrainOptions)})
del _deprecated_aliases
