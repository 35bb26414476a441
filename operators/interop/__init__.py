"""Adapters between :class:`operators.LinearOperator` and other libraries.

* :func:`to_deepinv` wraps an operator as a ``deepinv.physics.LinearPhysics`` (so deepinv's
  algorithms, data fidelities and losses use our adjoint, Gram, closed-form proximal operator and
  spectral norm);
* :func:`from_deepinv` wraps a deepinv ``LinearPhysics`` as a :class:`operators.LinearOperator`;
* :func:`to_scipy` exposes an operator as a ``scipy.sparse.linalg.LinearOperator`` (one matrix
  of shape ``(prod(out_shape), prod(in_shape))``), e.g. to use SciPy's solvers as test oracles.

deepinv and SciPy are imported only when one of these functions is called, so importing
:mod:`operators` (or this subpackage) stays light.
"""

from ._deepinv import from_deepinv as from_deepinv
from ._deepinv import to_deepinv as to_deepinv
from ._scipy import to_scipy as to_scipy

__all__ = ["to_deepinv", "from_deepinv", "to_scipy"]
