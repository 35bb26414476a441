"""Statistics of one adaptive ODE/SDE solve: the record the solver regularizers read.

Both :func:`sciml.nde.odeint` and :func:`sciml.nde.sdeint` return a :class:`SolverStats`; the
regularizers (:class:`sciml.nde.ErrorRegularizer`, :class:`sciml.nde.StiffnessRegularizer`) take
one and reduce its per-step tensors.  The per-step tensors keep their autograd graph, so a
penalty built from them backpropagates into the vector field's parameters (the *global* mode of
Pal et al., ICML 2021).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["SolverStats"]


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
        called with ``throw=False``.
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
