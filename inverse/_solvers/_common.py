"""Shared pieces of the plug-and-play solvers: options base, history, result, checks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor

from sciml_inverse import check_finite, check_int, check_real, check_tensor

from .._fidelity import AbstractDataFidelity, _check_positive
from .._prior import Prior, _is_one

__all__ = ["History", "SolverResult"]


def _check_opt_positive(name: str, value: object, *, tensor_ok: bool = False) -> None:
    if value is None:
        return
    if tensor_ok and isinstance(value, torch.Tensor):
        _check_positive(name, value)
        return
    check_real(name, value, positive=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _IterOptions:
    """Options shared by every solver (validated on construction)."""

    max_iter: int = 100
    tol: float = 1e-5
    track_objective: bool | None = None

    def __post_init__(self) -> None:
        check_int("max_iter", self.max_iter, 1)
        check_real("tol", self.tol, positive=False,
                   hint="the relative residual that stops the solver; 0 runs max_iter iterations")
        if self.track_objective not in (None, True, False):
            raise ValueError(f"track_objective must be True, False or None, got "
                             f"{self.track_objective!r}")


@dataclasses.dataclass(frozen=True)
class History:
    """Per-iteration record of a solver run (row ``k`` is iteration ``k + 1``).

    Attributes
    ----------
    residual : Tensor, shape ``(n_iter, *batch)``
        Relative fixed-point residual :math:`\\|w_k - w_{k-1}\\| / \\|w_{k-1}\\|` of the solver's
        state (PGD: the iterate; ADMM/HQS: the prior iterate ``z`` and, for ADMM, the scaled dual
        ``u``); it vanishes exactly at a fixed point.
    objective : Tensor or None, shape ``(n_iter, *batch)``
        :math:`\\tfrac12\\|Ax-y\\|^2 + \\lambda R(x)` at the returned iterate, when tracked.
    primal_residual : Tensor or None, shape ``(n_iter, *batch)``
        ADMM/HQS: :math:`\\|x_k - z_k\\| / \\|z_k\\|` (the splitting constraint).
    """

    residual: Tensor
    objective: Tensor | None = None
    primal_residual: Tensor | None = None


@dataclasses.dataclass(frozen=True)
class SolverResult:
    """Result of :func:`inverse.pgd`, :func:`inverse.admm` or :func:`inverse.hqs`.

    Attributes
    ----------
    x : Tensor
        The estimate (PGD: the iterate; ADMM/HQS: the prior iterate ``z``, which lies in the range
        of the prox and equals the data iterate at convergence).
    history : History
    n_iter : int
    converged : bool
        ``True`` if every sample met the tolerance before ``max_iter`` (``False`` when
        ``tol = 0``).
    state : Mapping[str, Tensor]
        The solver's internal variables at exit (ADMM: ``x``, ``z``, ``u``; HQS: ``x``, ``z``).
    weights : Mapping[str, float | Tensor]
        The weights actually used (``lam`` and the step size or penalty), for the record.
    """

    x: Tensor
    history: History
    n_iter: int
    converged: bool
    state: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)
    weights: Mapping[str, float | Tensor] = dataclasses.field(default_factory=dict)


def _validate(fidelity: object, prior: object, lam: float | Tensor) -> float | Tensor:
    if not isinstance(fidelity, AbstractDataFidelity):
        raise TypeError(f"fidelity must be an inverse.AbstractDataFidelity (e.g. "
                        f"L2DataFidelity(op, y)), got {type(fidelity).__name__}")
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be an inverse.Prior, got {type(prior).__name__}")
    if prior.event_ndim != fidelity.event_ndim:
        raise ValueError(f"the prior acts on samples with {prior.event_ndim} trailing dims but "
                         f"the operator's in_shape has {fidelity.event_ndim}; build the prior "
                         f"with event_ndim={fidelity.event_ndim}")
    lam = _check_positive("lam", lam)
    batch = getattr(fidelity, "batch_shape", None)
    if isinstance(lam, Tensor) and batch is not None:
        try:
            ok = tuple(torch.broadcast_shapes(lam.shape, tuple(batch))) == tuple(batch)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"a per-sample lam must have a shape that broadcasts to the batch "
                             f"shape {tuple(batch)} of the data, got {tuple(lam.shape)}")
    return lam


def _initial(fidelity: AbstractDataFidelity, x0: Tensor | None) -> Tensor:
    if x0 is None:
        return fidelity.initial_point()
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be a tensor or None, got {type(x0).__name__}")
    check_tensor("x0", x0)
    check_finite("x0", x0)
    return x0.detach().clone()


def _require_unit_weight(prior: Prior, gamma: float | Tensor, how: str) -> None:
    if not prior.scalable and not _is_one(gamma):
        raise ValueError(
            f"{type(prior).__name__} is the prox of its regularizer at weight 1 only, but the "
            f"solver would call it at weight {gamma} ({how}); {_FIX}")


_FIX = ("for the objective 1/2||Ax-y||^2 + lam*R(x) use rho = lam in ADMM (mu = lam in HQS, "
        "step = 1/lam in PGD), i.e. leave the penalty/step unset")


def _norm(x: Tensor, nd: int) -> Tensor:
    a = x.abs() if x.is_complex() else x
    return (a * a).sum(dim=tuple(range(-nd, 0))).sqrt()


def _rel_change(new: Tensor, old: Tensor, nd: int) -> Tensor:
    den = _norm(old, nd)
    return _norm(new - old, nd) / torch.where(den > 0, den, torch.ones_like(den))


def _objective(fidelity: AbstractDataFidelity, prior: Prior, lam: float | Tensor,
               x: Tensor) -> Tensor:
    return fidelity.value(x) + lam * prior.value(x)


def _track(options: _IterOptions, prior: Prior) -> bool:
    return prior.cheap_value if options.track_objective is None else bool(options.track_objective)


def _stack(rows: list[Tensor]) -> Tensor | None:
    return torch.stack(rows) if rows else None

