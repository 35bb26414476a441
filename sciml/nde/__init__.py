"""Neural differential equations regularized by the solver's own heuristics (``sciml.nde``).

:func:`odeint` is a torchdiffeq-compatible adaptive Runge-Kutta solver (dopri5, tsit5, bosh3)
that returns, next to the solution, a :class:`SolverStats` recording each accepted step's error
and stiffness estimate differentiably; :class:`ErrorRegularizer` and
:class:`StiffnessRegularizer` turn that record into the ERNODE / SRNODE penalties of Pal et al.
(ICML 2021). :func:`local_step` gives the local variant (one extra step at a random time), which
also works with adjoint training. See ``docs/guide/nde.rst``.
"""

from ._odeint import insert_time as insert_time
from ._odeint import local_step as local_step
from ._odeint import odeint as odeint
from ._odeint import sample_time as sample_time
from ._regularizers import AbstractSchedule as AbstractSchedule
from ._regularizers import AbstractSolverRegularizer as AbstractSolverRegularizer
from ._regularizers import ConstantWeight as ConstantWeight
from ._regularizers import ErrorRegularizer as ErrorRegularizer
from ._regularizers import ExponentialDecay as ExponentialDecay
from ._regularizers import StiffnessRegularizer as StiffnessRegularizer
from ._sdeint import AbstractSDEScheme as AbstractSDEScheme
from ._sdeint import EulerHeun as EulerHeun
from ._sdeint import EulerMaruyama as EulerMaruyama
from ._sdeint import Milstein as Milstein
from ._sdeint import PIController as PIController
from ._sdeint import SDESolverStats as SDESolverStats
from ._sdeint import sdeint as sdeint
from ._stats import SolverStats as SolverStats
from ._tableaus import BOSH3 as BOSH3
from ._tableaus import DOPRI5 as DOPRI5
from ._tableaus import EULER as EULER
from ._tableaus import MIDPOINT as MIDPOINT
from ._tableaus import RK4 as RK4
from ._tableaus import TSIT5 as TSIT5
from ._tableaus import ButcherTableau as ButcherTableau
from ._train import NFECounter as NFECounter
from ._train import RNODEDynamics as RNODEDynamics
from ._train import choose_weights as choose_weights
from ._train import format_summary as format_summary
from ._train import mean_std as mean_std
from ._train import pareto_plot as pareto_plot
from ._train import summarize_sweep as summarize_sweep
from ._train import write_json as write_json

__all__ = [
    "odeint", "local_step", "sample_time", "insert_time", "SolverStats",
    "ButcherTableau", "DOPRI5", "TSIT5", "BOSH3", "EULER", "MIDPOINT", "RK4",
    "AbstractSolverRegularizer", "ErrorRegularizer", "StiffnessRegularizer",
    "AbstractSchedule", "ConstantWeight", "ExponentialDecay",
    "NFECounter", "RNODEDynamics", "mean_std", "summarize_sweep", "choose_weights",
    "format_summary",
    "pareto_plot", "write_json",
    "sdeint", "SDESolverStats", "PIController", "AbstractSDEScheme", "EulerMaruyama", "Milstein",
    "EulerHeun",
]
