"""Batched, differentiable, matrix-free linear operators shared by all of sciml-inverse.

Every operator is a :class:`LinearOperator` (a ``torch.nn.Module``) acting on
``(*batch, *in_shape)`` tensors, with an adjoint, algebra (``@``, ``+``, ``-``, scalar and
per-sample ``*``), a structure-aware Gram operator, ``solve_normal`` (closed forms where the
structure allows, batched implicit-gradient CG otherwise) and ``opnorm`` (the spectral norm).
See ``docs/guide/operators.rst`` for the conventions.
"""

from sciml_inverse import library_version as _library_version

from ._algebra import Adjoint as Adjoint
from ._algebra import Composition as Composition
from ._algebra import Identity as Identity
from ._algebra import Scaled as Scaled
from ._algebra import Sum as Sum
from ._base import LinearOperator as LinearOperator
from ._decimation import Decimation as Decimation
from ._dense import Dense as Dense
from ._diagonal import Diagonal as Diagonal
from ._diagonal import Mask as Mask
from ._finite_difference import FiniteDifference as FiniteDifference
from ._fourier import Convolution as Convolution
from ._fourier import FourierMultiplier as FourierMultiplier
from ._fourier import FourierSampling as FourierSampling
from ._jacobian import Jacobian as Jacobian
from ._sampling import PointSampling as PointSampling
from ._stack import BlockDiagonal as BlockDiagonal
from ._stack import Stack as Stack
from .solvers import CGResult as CGResult
from .solvers import LSQRResult as LSQRResult
from .solvers import PowerMethodResult as PowerMethodResult
from .solvers import cg as cg
from .solvers import lsqr as lsqr
from .solvers import power_method as power_method

__version__ = _library_version()  # the distribution's (sciml_inverse.library_version)

__all__ = [
    "LinearOperator", "Identity", "Adjoint", "Composition", "Sum", "Scaled",
    "Diagonal", "Mask", "Dense", "FourierMultiplier", "Convolution", "FourierSampling",
    "Decimation", "PointSampling", "FiniteDifference", "Jacobian", "Stack", "BlockDiagonal",
    "cg", "CGResult", "power_method", "PowerMethodResult", "lsqr", "LSQRResult", "__version__",
]
