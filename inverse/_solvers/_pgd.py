r"""Plug-and-play proximal gradient descent."""

from __future__ import annotations

import dataclasses
import warnings

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

__all__ = ["PGDOptions", "pgd"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PGDOptions(_IterOptions):
    """Options of :func:`inverse.pgd`.

    Parameters
    ----------
    step : float or None
        Step size :math:`\\eta` on the data term. ``None``: :math:`1/\\lambda` for a prior that
        cannot be scaled (an LPN: the only consistent choice), :math:`1/L` otherwise, with
        :math:`L = \\|A\\|^2` the Lipschitz constant of the data gradient.
    max_iter : int, default 100
    tol : float, default 1e-5
        Stop when the relative change of the iterate is at most ``tol`` for every sample
        (0: always run ``max_iter`` iterations).
    track_objective : bool or None
        Record the objective per iteration; ``None``: when the prior's value is cheap.

    Raises
    ------
    ValueError
        For a non-positive step, ``max_iter < 1`` or ``tol < 0``.
    """

    step: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_opt_positive("step", self.step)


def pgd(fidelity: AbstractDataFidelity, prior: Prior, *, lam: float | Tensor = 1.0,
        x0: Tensor | None = None, options: PGDOptions | None = None) -> SolverResult:
    r"""Plug-and-play proximal gradient descent on :math:`f(x) + \lambda R(x)`.

    .. math::

       x_{k+1} = \operatorname{prox}_{\eta\lambda R}\bigl(x_k - \eta \nabla f(x_k)\bigr) .

    Its fixed points satisfy :math:`0 \in \nabla f(x) + \lambda\,\partial R(x)`. For a convex
    :math:`R` it converges for :math:`\eta < 2/\|A\|^2`.

    **Prior that cannot be scaled (LPN).** The prox is available at weight
    :math:`\eta\lambda = 1` only, so :math:`\eta = 1/\lambda`: a step :math:`\eta` on the data term
    followed by the prox at weight 1 minimises :math:`\eta\cdot\tfrac12\|Ax-y\|^2 + R`, i.e. the
    problem with :math:`\lambda = 1/\eta`. Leave ``options.step`` unset (it becomes
    :math:`1/\lambda`); any other step raises. For an LPN trained at :math:`\sigma_{\rm train}`
    and noise :math:`\sigma`, :math:`\lambda = (\sigma/\sigma_{\rm train})^2`
    (:meth:`inverse.LPNPrior.admm_weight`). A :class:`UserWarning` is issued when the step
    exceeds :math:`2/\|A\|^2` (then prefer :func:`inverse.admm`).

    Parameters
    ----------
    fidelity : AbstractDataFidelity
        E.g. :class:`inverse.L2DataFidelity`.
    prior : Prior
    lam : float or Tensor, default 1.0
        Regularization weight :math:`\lambda > 0`; a tensor of the batch shape gives one per
        sample.
    x0 : Tensor, optional
        Starting point; default ``fidelity.initial_point()`` (:math:`A^Hy`).
    options : PGDOptions, optional

    Returns
    -------
    SolverResult

    Raises
    ------
    TypeError
        If ``fidelity`` or ``prior`` has the wrong type.
    ValueError
        If ``lam`` is not positive, the prior's event dims differ from the operator's, or a prior
        that cannot be scaled is given a step other than :math:`1/\lambda`.
    """
    options = PGDOptions() if options is None else options
    if not isinstance(options, PGDOptions):
        raise TypeError(f"options must be a PGDOptions, got {type(options).__name__}")
    lam = _validate(fidelity, prior, lam)
    nd = fidelity.event_ndim
    step = options.step
    if step is None:
        if prior.scalable:
            lip = fidelity.lipschitz()
            step = float(1.0 / lip.amax()) if isinstance(lip, Tensor) else 1.0 / float(lip)
        else:
            step = 1.0 / lam if not isinstance(lam, Tensor) else None
            if step is None:
                raise ValueError("a per-sample lam needs a per-sample step, which PGD does not "
                                 "support with a prior that cannot be scaled; use admm")
    gamma = step * lam
    _require_unit_weight(prior, gamma, f"step {step} x lam {lam}")
    if not prior.scalable:
        try:
            lip = float(fidelity.lipschitz().amax())
        except NotImplementedError:
            lip = None
        if lip is not None and step * lip > 2.0:
            warnings.warn(f"PGD step {step:.4g} = 1/lam exceeds 2/||A||^2 = {2 / lip:.4g}: the "
                          f"iteration may diverge; use admm for this weight", stacklevel=2)
    x = _initial(fidelity, x0)
    track = _track(options, prior)
    res_rows: list[Tensor] = []
    obj_rows: list[Tensor] = []
    converged, k = False, 0
    with torch.no_grad():
        for k in range(1, options.max_iter + 1):  # noqa: B007 - k is the count returned
            x_new = prior.prox(x - step * fidelity.grad(x), gamma)
            r = _rel_change(x_new, x, nd)
            x = x_new
            res_rows.append(r)
            if track:
                obj_rows.append(_objective(fidelity, prior, lam, x))
            if options.tol > 0 and bool((r <= options.tol).all()):
                converged = True
                break
    hist = History(residual=torch.stack(res_rows), objective=_stack(obj_rows))
    return SolverResult(x=x, history=hist, n_iter=k, converged=converged,
                        weights={"lam": lam, "step": step})
