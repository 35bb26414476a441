"""Variational and learned priors for inverse problems, on the operators of :mod:`operators`.

What is here:

* data fidelity: :class:`L2DataFidelity` (:math:`\\tfrac12\\|Ax-y\\|^2` for any
  :class:`operators.LinearOperator`; its prox is one ``op.solve_normal``);
* priors: :class:`Prior` (the interface), :class:`LPNPrior` (a learned proximal network, a prox
  at weight 1 only), :class:`TVPrior` (isotropic total variation, Chambolle's dual projection,
  also as :func:`tv_prox`), :class:`TikhonovPrior` (:math:`\\tfrac12\\|Dx\\|^2`);
* plug-and-play solvers written once against these two interfaces: :func:`pgd`, :func:`admm`
  (standard and the LPN reference's "132" ordering), :func:`hqs`, with typed options and a
  per-iteration history;
* :func:`to_deepinv_denoiser` / :func:`to_deepinv_prior`: a prior inside deepinv's optimizers;
* noise models :class:`GaussianNoise` and :class:`PoissonGaussianNoise` (variance
  :math:`a + b x`), behind the interface :class:`NoiseModel`;
* :mod:`inverse.metrics`: PSNR and SSIM (scikit-image's definitions) and calibration metrics
  of uncertainty maps (coverage, z-scores, AUCE, UCE/ENCE, sparsification/AUSE, Gaussian NLL);
* :mod:`inverse.lpn`: learned proximal networks (input-convex potentials, proximal matching,
  evaluation of the learned regularizer);
* :mod:`inverse.vble`: VBLE-xz, variational restoration in the latent space of a compressive
  autoencoder with posterior samples and per-pixel standard deviations;
* :mod:`inverse.satellite`: Pléiades-like degradation, georeferenced raster I/O, tiled
  restoration of large scenes, and the ``sciml-inverse restore`` / ``degrade`` commands.

The subpackages :mod:`inverse.lpn`, :mod:`inverse.vble` and :mod:`inverse.satellite` are
imported explicitly (``from inverse.vble import vble_restore``).
"""

from sciml_inverse import library_version as _library_version

from . import metrics as metrics
from ._deepinv import to_deepinv_denoiser as to_deepinv_denoiser
from ._deepinv import to_deepinv_prior as to_deepinv_prior
from ._fidelity import AbstractDataFidelity as AbstractDataFidelity
from ._fidelity import L2DataFidelity as L2DataFidelity
from ._noise import GaussianNoise as GaussianNoise
from ._noise import NoiseModel as NoiseModel
from ._noise import PoissonGaussianNoise as PoissonGaussianNoise
from ._prior import LPNPrior as LPNPrior
from ._prior import Prior as Prior
from ._prior import TikhonovPrior as TikhonovPrior
from ._prior import TVPrior as TVPrior
from ._solvers import ADMMOptions as ADMMOptions
from ._solvers import History as History
from ._solvers import HQSOptions as HQSOptions
from ._solvers import PGDOptions as PGDOptions
from ._solvers import SolverResult as SolverResult
from ._solvers import admm as admm
from ._solvers import hqs as hqs
from ._solvers import pgd as pgd
from ._tv import TVProxResult as TVProxResult
from ._tv import total_variation as total_variation
from ._tv import tv_prox as tv_prox

__version__ = _library_version()  # the distribution's (sciml_inverse.library_version)

__all__ = [
    "AbstractDataFidelity", "L2DataFidelity",
    "NoiseModel", "GaussianNoise", "PoissonGaussianNoise",
    "Prior", "LPNPrior", "TVPrior", "TikhonovPrior",
    "pgd", "admm", "hqs", "PGDOptions", "ADMMOptions", "HQSOptions", "History", "SolverResult",
    "tv_prox", "total_variation", "TVProxResult",
    "to_deepinv_denoiser", "to_deepinv_prior",
    "metrics", "__version__",
]
