"""Iterative solvers on :class:`operators.LinearOperator`: CG, power iteration, LSQR."""

from ._cg import CGResult as CGResult
from ._cg import cg as cg
from ._cg import default_cg_rtol as default_cg_rtol
from ._lsqr import LSQRResult as LSQRResult
from ._lsqr import lsqr as lsqr
from ._power import PowerMethodResult as PowerMethodResult
from ._power import power_method as power_method

__all__ = ["cg", "CGResult", "default_cg_rtol", "power_method", "PowerMethodResult", "lsqr",
           "LSQRResult"]
