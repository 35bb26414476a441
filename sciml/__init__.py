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


def __getattr__(name: str) -> str:
    # lazy, so that ``import sciml`` stays light: the one version helper of the runtime layer
    if name == "__version__":
        from sciml_inverse import library_version

        return library_version()
    raise AttributeError(f"module 'sciml' has no attribute {name!r}")


__all__ = ["__version__"]
