r"""Plug-and-play half-quadratic splitting with a fixed penalty."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from .._fidelity import AbstractDataFidelity
from .._prior import Prior
from ._common import (
    History,
    SolverResult,
    _check_opt_positive,
    _initial,
    _IterOptions,
    _objective,
    _rel_change,
    _require_unit_weight,
    _stack,
    _track,
    _validate,
)

__all__ = ["HQSOptions", "hqs"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class HQSOptions(_IterOptions):
    """Options of :func:`inverse.hqs`.

    Parameters
    ----------
    mu : float, Tensor or None
        Coupling weight :math:`\\mu > 0` (a tensor: one per sample); ``None``:
        :math:`\\mu = \\lambda` (the only choice for a prior that cannot be scaled).
    max_iter, tol, track_objective
        As in :class:`inverse.ADMMOptions` (the residual is the relative change of ``z``).
    """

    mu: float | Tensor | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_opt_positive("mu", self.mu, tensor_ok=True)


def hqs(fidelity: AbstractDataFidelity, prior: Prior, *, lam: float | Tensor = 1.0,
        x0: Tensor | None = None, options: HQSOptions | None = None) -> SolverResult:
    r"""Plug-and-play half-quadratic splitting with a fixed coupling :math:`\mu`.

    .. math::

       x_{k+1} = \operatorname{prox}_{f/\mu}(z_k), \qquad
       z_{k+1} = \operatorname{prox}_{(\lambda/\mu) R}(x_{k+1}) .

    This is alternating minimisation of the *relaxed* objective
    :math:`f(x) + \lambda R(z) + \tfrac{\mu}{2}\|x - z\|^2`, which approaches
    :math:`f + \lambda R` only as :math:`\mu \to \infty` (use :func:`inverse.admm` for the exact
    problem). As in ADMM, a prior that cannot be scaled needs :math:`\mu = \lambda` (default).

    Parameters
    ----------
    fidelity, prior, lam, x0
        As in :func:`inverse.admm`.
    options : HQSOptions, optional

    Returns
    -------
    SolverResult
        ``x`` is ``z``; ``state`` holds ``x`` and ``z``.

    Raises
    ------
    TypeError, ValueError
        As :func:`inverse.admm` (with ``mu`` in place of ``rho``).
    """
    options = HQSOptions() if options is None else options
    if not isinstance(options, HQSOptions):
        raise TypeError(f"options must be an HQSOptions, got {type(options).__name__}")
    lam = _validate(fidelity, prior, lam)
    mu = lam if options.mu is None else options.mu
    gamma = lam / mu
    _require_unit_weight(prior, gamma, f"lam / mu = {lam} / {mu}")
    nd = fidelity.event_ndim
    z = _initial(fidelity, x0)
    x = z
    track = _track(options, prior)
    res_rows: list[Tensor] = []
    obj_rows: list[Tensor] = []
    prim_rows: list[Tensor] = []
    converged, k = False, 0
    with torch.no_grad():
        for k in range(1, options.max_iter + 1):  # noqa: B007 - k is the count returned
            z_old = z
            x = fidelity.prox(z, 1.0 / mu)
            z = prior.prox(x, gamma)
            r = _rel_change(z, z_old, nd)
            res_rows.append(r)
            prim_rows.append(_rel_change(x, z, nd))
            if track:
                obj_rows.append(_objective(fidelity, prior, lam, z))
            if options.tol > 0 and bool((r <= options.tol).all()):
                converged = True
                break
    hist = History(residual=torch.stack(res_rows), objective=_stack(obj_rows),
                   primal_residual=torch.stack(prim_rows))
    return SolverResult(x=z, history=hist, n_iter=k, converged=converged,
                        state={"x": x, "z": z}, weights={"lam": lam, "mu": mu})
