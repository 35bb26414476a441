"""Plug-and-play solvers written once against ``AbstractDataFidelity`` and ``Prior``."""

from ._admm import ADMMOptions as ADMMOptions
from ._admm import admm as admm
from ._common import History as History
from ._common import SolverResult as SolverResult
from ._hqs import HQSOptions as HQSOptions
from ._hqs import hqs as hqs
from ._pgd import PGDOptions as PGDOptions
from ._pgd import pgd as pgd
