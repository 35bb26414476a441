"""Statistics of one adaptive ODE/SDE solve: the record the solver regularizers read.

:func:`sciml.nde.odeint` and :func:`sciml.nde.sdeint` return the solution alone (as torchdiffeq
and torchsde do); pass a :class:`Recorder` (``recorder=rec``) to get a :class:`SolverStats` of the
solve in ``rec.stats``. The
regularizers (:class:`sciml.nde.ErrorRegularizer`, :class:`sciml.nde.StiffnessRegularizer`) take
one and reduce its per-step tensors.  The per-step tensors keep their autograd graph, so a
penalty built from them backpropagates into the vector field's parameters (the *global* mode of
Pal et al., ICML 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["Recorder", "SolverStats"]


@dataclass
class SolverStats:
    """What an adaptive solve did, step by step.

    Attributes
    ----------
    method : str
        Name of the scheme (``"dopri5"``, ``"tsit5"``, ``"bosh3"``, ``"srk"``, ...).
    nfe : int
        Number of evaluations of the vector field (drift and diffusion count once each per call
        for SDEs).
    n_accepted, n_rejected : int
        Accepted and rejected step attempts.
    times : torch.Tensor, shape ``(n_accepted,)``
        Start time :math:`t_j` of each accepted step (detached).
    step_sizes : torch.Tensor, shape ``(n_accepted,)``
        Accepted step sizes :math:`\\Delta t_j` (signed; differentiable where the solver lets
        gradients flow through the step-size controller, detached otherwise).
    step_errors : torch.Tensor, shape ``(n_accepted,)``
        Scaled local error estimate :math:`E_j` of each accepted step: the RMS norm of the
        embedded error divided by ``atol + rtol * max(|y_j|, |y_{j+1}|)``, i.e. the number the
        step-size controller compares with 1. Differentiable.
    stiffness : torch.Tensor or None, shape ``(n_accepted,)``
        Stiffness estimate :math:`S_j` of each accepted step, normalized by the size of the
        method's stability region along the negative real axis; ``None`` for schemes without
        one (e.g. SDE solvers). Differentiable.
    status : str
        ``"success"``, or ``"max_steps"`` when the step budget ran out before the last time;
        :func:`sciml.nde.odeint` also reports ``"dt_underflow"`` (the step size fell below the
        time resolution) and ``"nonfinite"`` (NaN/inf in the state or its derivative) when
        called with ``options={"throw": False}``.
    differentiable : bool
        Whether ``step_errors`` / ``stiffness`` carry the autograd graph of the solve (false for
        the forward pass of an adjoint solve, which runs under ``no_grad``: regularize those with
        :func:`sciml.nde.local_step` instead).
    """

    method: str
    nfe: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    times: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    step_sizes: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    step_errors: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    stiffness: torch.Tensor | None = None
    status: str = "success"
    differentiable: bool = True


class Recorder:
    """Collects the :class:`SolverStats` of the solves it is passed to.

    The drop-in calls ``odeint(func, y0, t)`` / ``sdeint(sde, y0, ts)`` return the solution alone,
    exactly as torchdiffeq / torchsde; adding ``recorder=rec`` changes nothing in the solution or
    the return value and fills ``rec.stats`` (the last solve) and ``rec.history`` (all solves).

    Parameters
    ----------
    stiffness : bool, default True
        Also record the stiffness estimate of each step (ODE schemes with stiffness stages; a few
        vector operations per step). ``stats.stiffness`` is ``None`` when false.
    keep : bool, default False
        Keep every solve's stats in ``history`` (default: only the last one, to free graphs).

    Attributes
    ----------
    stats : SolverStats or None
        Statistics of the last solve (``None`` before the first).
    history : list of SolverStats

    Examples
    --------
    >>> import torch
    >>> from sciml.nde import Recorder, odeint
    >>> rec = Recorder()
    >>> y = odeint(lambda t, y: -y, torch.ones(1, dtype=torch.float64),
    ...            torch.tensor([0.0, 1.0], dtype=torch.float64), recorder=rec)
    >>> rec.stats.nfe, rec.stats.n_accepted
    (50, 7)
    """

    def __init__(self, *, stiffness: bool = True, keep: bool = False) -> None:
        if not isinstance(stiffness, bool) or not isinstance(keep, bool):
            raise TypeError("stiffness and keep must be bools")
        self.stiffness = stiffness
        self.keep = keep
        self.stats: SolverStats | None = None
        self.history: list[SolverStats] = []

    def _record(self, stats: SolverStats) -> None:
        self.stats = stats
        if self.keep:
            self.history.append(stats)
        else:
            self.history = [stats]

    def __repr__(self) -> str:
        last = "none" if self.stats is None else f"{self.stats.method}, nfe={self.stats.nfe}"
        return f"Recorder(stiffness={self.stiffness}, last solve: {last})"


def _as_stats(obj: object) -> SolverStats:
    """``obj`` itself (a SolverStats) or a Recorder's last stats."""
    if isinstance(obj, Recorder):
        if obj.stats is None:
            raise ValueError("this Recorder has recorded no solve yet: pass it to odeint/sdeint "
                             "as recorder=rec first")
        return obj.stats
    if not isinstance(obj, SolverStats):
        raise TypeError(f"expected a SolverStats or a Recorder, got {type(obj).__name__}")
    return obj


def _check_recorder(recorder: object) -> Recorder | None:
    if recorder is not None and not isinstance(recorder, Recorder):
        raise TypeError(f"recorder must be a sciml.nde.Recorder, got {type(recorder).__name__}")
    return recorder
