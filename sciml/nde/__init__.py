"""Neural differential equations regularized by the solver's own heuristics (``sciml.nde``).

Drop-ins for torchdiffeq and torchsde: :func:`odeint` / :func:`odeint_adjoint` take
``torchdiffeq.odeint``'s arguments and return the solution alone (dopri5, tsit5, bosh3 adaptive;
euler, midpoint, rk4 fixed grid); :func:`sdeint` / :func:`sdeint_adjoint` take torchsde's. Pass a
:class:`Recorder` (``recorder=rec``) to get each accepted step's error and stiffness estimate,
differentiably, in ``rec.stats`` (a :class:`SolverStats`); :class:`ErrorRegularizer` and
:class:`StiffnessRegularizer` turn that record into the ERNODE / SRNODE penalties of Pal et al.
(ICML 2021). :func:`local_step` gives the local variant (one extra step at a random time), which
also works with adjoint training. See ``docs/guide/nde.rst``.
"""

from ._odeint import MaxStepsExceeded as MaxStepsExceeded
from ._odeint import insert_time as insert_time
from ._odeint import local_step as local_step
from ._odeint import odeint as odeint
from ._odeint import odeint_adjoint as odeint_adjoint
from ._odeint import odeint_event as odeint_event
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
from ._sdeint import Heun as Heun
from ._sdeint import Midpoint as Midpoint
from ._sdeint import Milstein as Milstein
from ._sdeint import PIController as PIController
from ._sdeint import SDESolverStats as SDESolverStats
from ._sdeint import sdeint as sdeint
from ._sdeint import sdeint_adjoint as sdeint_adjoint
from ._stats import Recorder as Recorder
from ._stats import SolverStats as SolverStats
from ._tableaus import BOSH3 as BOSH3
from ._tableaus import DOPRI5 as DOPRI5
from ._tableaus import EULER as EULER
from ._tableaus import MIDPOINT as MIDPOINT
from ._tableaus import RK4 as RK4
from ._tableaus import RK4_38 as RK4_38
from ._tableaus import TSIT5 as TSIT5
from ._tableaus import ButcherTableau as ButcherTableau
from ._train import NFECounter as NFECounter
from ._train import RNODEDynamics as RNODEDynamics

__all__ = [
    "odeint", "odeint_adjoint", "odeint_event", "MaxStepsExceeded", "Recorder",
    "local_step", "sample_time", "insert_time", "SolverStats",
    "ButcherTableau", "DOPRI5", "TSIT5", "BOSH3", "EULER", "MIDPOINT", "RK4", "RK4_38",
    "AbstractSolverRegularizer", "ErrorRegularizer", "StiffnessRegularizer",
    "AbstractSchedule", "ConstantWeight", "ExponentialDecay",
    "NFECounter", "RNODEDynamics",
    "sdeint", "sdeint_adjoint", "SDESolverStats", "PIController", "AbstractSDEScheme",
    "EulerMaruyama", "Milstein", "EulerHeun", "Heun", "Midpoint",
]
