r"""Plug-and-play ADMM (scaled form), standard and reference ("132") orderings."""

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
    _norm,
    _objective,
    _rel_change,
    _require_unit_weight,
    _stack,
    _track,
    _validate,
)

__all__ = ["ADMMOptions", "admm"]

_ORDERS = ("standard", "132")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ADMMOptions(_IterOptions):
    """Options of :func:`inverse.admm`.

    Parameters
    ----------
    rho : float, Tensor or None
        Penalty :math:`\\rho > 0` (a tensor of the batch shape: one per sample). ``None``
        (default): :math:`\\rho = \\lambda`, the only choice for which a prior that cannot be
        scaled (an LPN) is called at its weight 1.
    order : {"standard", "132"}
        ``"standard"``: x-update, z-update, dual update (Boyd et al.; scico, deepinv).
        ``"132"``: x-update, dual update with the previous z, then z-update — the ordering of
        the LPN reference code, kept for parity. Both have the same fixed points.
    max_iter : int, default 100
    tol : float, default 1e-5
        Stop when, for every sample, the relative change of ``(z, u)`` and the relative
        splitting residual :math:`\\|x - z\\|/\\|z\\|` are at most ``tol`` (0: run ``max_iter``).
    track_objective : bool or None
        Record the objective at ``z`` per iteration; ``None``: when the prior's value is cheap.

    Raises
    ------
    ValueError
        For a non-positive ``rho``, an unknown ``order``, ``max_iter < 1`` or ``tol < 0``.
    """

    rho: float | Tensor | None = None
    order: str = "standard"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_opt_positive("rho", self.rho, tensor_ok=True)
        if self.order not in _ORDERS:
            raise ValueError(f"order must be one of {_ORDERS}, got {self.order!r}")


def admm(fidelity: AbstractDataFidelity, prior: Prior, *, lam: float | Tensor = 1.0,
         x0: Tensor | None = None, options: ADMMOptions | None = None) -> SolverResult:
    r"""Plug-and-play ADMM on :math:`f(x) + \lambda R(x)` (scaled form, penalty :math:`\rho`).

    Standard ordering:

    .. math::

       x_{k+1} &= \operatorname{prox}_{f/\rho}(z_k - u_k)
                 = (A^HA + \rho I)^{-1}(A^Hy + \rho(z_k - u_k)) \\
       z_{k+1} &= \operatorname{prox}_{(\lambda/\rho) R}(x_{k+1} + u_k) \\
       u_{k+1} &= u_k + x_{k+1} - z_{k+1}

    (the data step is one ``op.solve_normal``). The ``"132"`` ordering updates ``u`` with the
    previous ``z`` before the z-step. At a fixed point :math:`x = z` and
    :math:`-\rho u = \nabla f(x) \in -\lambda\,\partial R(x)`, so
    :math:`0 \in \nabla f(x) + \lambda\,\partial R(x)` for every :math:`\rho`.

    **The ADMM weight for an LPN.** The prior step is the prox of :math:`R` at weight
    :math:`\lambda/\rho`. An LPN is a prox at weight 1 only, so :math:`\rho` must equal
    :math:`\lambda`: the default. With a model trained at :math:`\sigma_{\rm train}` and noise
    :math:`\sigma`, the MAP weight is :math:`\lambda = (\sigma/\sigma_{\rm train})^2`
    (:meth:`inverse.LPNPrior.admm_weight`). Passing ``options.rho`` :math:`\ne \lambda` with such a
    prior raises instead of silently solving another problem (the reference code ignores the
    weight and thereby solves the problem with :math:`\lambda = \rho`, whatever it was told).

    Parameters
    ----------
    fidelity : AbstractDataFidelity
    prior : Prior
    lam : float or Tensor, default 1.0
        Regularization weight :math:`\lambda > 0` (a tensor of the batch shape: per sample).
    x0 : Tensor, optional
        Starting point for ``z`` (``u`` starts at 0); default :math:`A^H y`.
    options : ADMMOptions, optional

    Returns
    -------
    SolverResult
        ``x`` is the prior iterate ``z``; ``state`` holds ``x``, ``z`` and ``u``.

    Raises
    ------
    TypeError
        If ``fidelity``, ``prior`` or ``options`` has the wrong type.
    ValueError
        If ``lam`` is not positive, the event dims differ, or a prior that cannot be scaled is
        given ``rho != lam``.

    Examples
    --------
    >>> import torch
    >>> from operators import Identity
    >>> from inverse import L2DataFidelity, TikhonovPrior, admm
    >>> f = L2DataFidelity(Identity((4,)), torch.ones(4))
    >>> r = admm(f, TikhonovPrior(Identity((4,))), lam=1.0)   # min ½|x-1|² + ½|x|²
    >>> torch.allclose(r.x, torch.full((4,), 0.5), atol=1e-4)
    True
    """
    options = ADMMOptions() if options is None else options
    if not isinstance(options, ADMMOptions):
        raise TypeError(f"options must be an ADMMOptions, got {type(options).__name__}")
    lam = _validate(fidelity, prior, lam)
    rho = lam if options.rho is None else options.rho
    gamma = lam / rho
    _require_unit_weight(prior, gamma, f"lam / rho = {lam} / {rho}")
    nd = fidelity.event_ndim
    z = _initial(fidelity, x0)
    u = torch.zeros_like(z)
    x = z
    track = _track(options, prior)
    res_rows: list[Tensor] = []
    obj_rows: list[Tensor] = []
    prim_rows: list[Tensor] = []
    converged, k = False, 0
    inv_rho = 1.0 / rho
    with torch.no_grad():
        for k in range(1, options.max_iter + 1):  # noqa: B007 - k is the count returned
            z_old, u_old = z, u
            x = fidelity.prox(z - u, inv_rho)
            if options.order == "standard":
                z = prior.prox(x + u, gamma)
                u = u + x - z
            else:  # "132": dual update with the previous z, then the prior step
                u = u + x - z
                z = prior.prox(x + u, gamma)
            den = _norm(z_old, nd) ** 2 + _norm(u_old, nd) ** 2
            num = _norm(z - z_old, nd) ** 2 + _norm(u - u_old, nd) ** 2
            r = (num / torch.where(den > 0, den, torch.ones_like(den))).sqrt()
            p = _rel_change(x, z, nd)
            res_rows.append(r)
            prim_rows.append(p)
            if track:
                obj_rows.append(_objective(fidelity, prior, lam, z))
            if options.tol > 0 and bool((r <= options.tol).all()) and \
                    bool((p <= options.tol).all()):
                converged = True
                break
    hist = History(residual=torch.stack(res_rows), objective=_stack(obj_rows),
                   primal_residual=torch.stack(prim_rows))
    return SolverResult(x=z, history=hist, n_iter=k, converged=converged,
                        state={"x": x, "z": z, "u": u}, weights={"lam": lam, "rho": rho})
