"""Scientific machine learning on :mod:`operators`: PDE data, neural operators, regularized NDEs.

Subpackages (import them explicitly; ``import sciml`` alone loads nothing heavy):

* :mod:`sciml.pde`: the Darcy problem :math:`-\\nabla\\cdot(a\\nabla u) = f` on the unit square,
  seeded two-phase and smooth coefficient generators, a finite-volume solver (harmonic face
  means, sparse LU), HDF5 data sets with their generating parameters, and the
  ``sciml-inverse darcy generate`` command;
* :mod:`sciml.neural_operators`: DeepONet, MultiONet and DGNO (weak-form residuals with Wendland
  test functions, latent-space inverse problems with sensors as an
  :class:`operators.PointSampling`), a strong-form physics-informed baseline, and training
  entry points;
* :mod:`sciml.nde`: drop-ins for torchdiffeq's ``odeint``/``odeint_adjoint`` and torchsde's
  ``sdeint``/``sdeint_adjoint`` that, given a ``Recorder``, record differentiably each accepted
  step's error and stiffness estimates, and the solver-heuristic regularizers of Pal et al.
  (ICML 2021).
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

try:
    __version__ = _version("sciml-inverse")
except _PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
