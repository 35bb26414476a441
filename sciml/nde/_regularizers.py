r"""Regularizers built from an adaptive solver's own heuristics (ERNODE / SRNODE).

Pal, Ma, Shah & Rackauckas (ICML 2021) add to the task loss

.. math::
    R_E = \sum_j E_j\,|h_j|, \qquad R_S = \sum_j S_j\,|h_j|,

over the accepted steps :math:`j` of the training solve, where :math:`E_j` is the scaled local
error estimate the step-size controller compares with 1 and :math:`S_j` the (normalized)
stiffness estimate. Both are read from a :class:`~sciml.nde.SolverStats`, so they work on any
solver that fills one: :func:`sciml.nde.odeint` (global mode: backpropagate through the whole
solve), :func:`sciml.nde.local_step` (local mode: one extra step at a random time, usable with an
adjoint solve) and the SDE solver.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real

from ._stats import Recorder, SolverStats, _as_stats

__all__ = ["AbstractSchedule", "ConstantWeight", "ExponentialDecay", "AbstractSolverRegularizer",
           "ErrorRegularizer", "StiffnessRegularizer"]

Reduction = Literal["sum", "mean", "max"]


class AbstractSchedule(abc.ABC):
    """A weight that depends on the training epoch (0-based)."""

    @abc.abstractmethod
    def __call__(self, epoch: int) -> float:
        """The weight at ``epoch``."""


@dataclass(frozen=True)
class ConstantWeight(AbstractSchedule):
    """A constant weight :math:`\\lambda`."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_real(
            "weight", self.value, positive=False, hint="a regularization weight (0 switches off)"))

    def __call__(self, epoch: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class ExponentialDecay(AbstractSchedule):
    r"""Anneal :math:`\lambda(e) = \lambda_0 (\lambda_1/\lambda_0)^{\min(e, E)/E}`.

    This is the reference code's :math:`\lambda_0 e^{-k e}` with :math:`k = \ln(\lambda_0 /
    \lambda_1)/E` (``e`` = 0-based epoch), held at :math:`\lambda_1` after ``epochs``.

    Raises
    ------
    ValueError
        If ``start``/``end`` are not positive or ``epochs < 1``.
    """

    start: float
    end: float
    epochs: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            object.__setattr__(self, name, check_real(
                name, getattr(self, name), positive=True,
                hint="the weights are annealed geometrically; use ConstantWeight(0.0) to switch "
                     "off"))
        check_int("epochs", self.epochs, 1)

    def __call__(self, epoch: int) -> float:
        e = min(max(int(epoch), 0), self.epochs)
        return float(self.start * (self.end / self.start) ** (e / self.epochs))


def _as_schedule(weight: float | AbstractSchedule) -> AbstractSchedule:
    if isinstance(weight, AbstractSchedule):
        return weight
    return ConstantWeight(check_real(  # type: ignore[arg-type]
        "weight", weight, hint="give a float >= 0 or a schedule (ConstantWeight, "
                               "ExponentialDecay)"))


class AbstractSolverRegularizer(abc.ABC):
    r"""Base of the solver-heuristic regularizers: ``weight(epoch) * reduce(terms(stats))``.

    Subclasses define :meth:`terms`, one non-negative value per accepted step. Non-finite terms
    are replaced by 0 (as the reference code does), and an empty record gives 0.
    """

    weight: float | AbstractSchedule
    reduction: Reduction
    dt_weighted: bool
    normalize: bool

    def _validate(self) -> None:
        _as_schedule(self.weight)
        if self.reduction not in ("sum", "mean", "max"):
            raise ValueError(f"reduction must be 'sum', 'mean' or 'max', got {self.reduction!r}")
        if self.normalize and not (self.dt_weighted and self.reduction == "sum"):
            raise ValueError("normalize=True divides sum_j term_j |dt_j| by sum_j |dt_j| (a "
                             "time average); it needs reduction='sum' and dt_weighted=True")

    @abc.abstractmethod
    def values(self, stats: SolverStats) -> Tensor:
        """The per-step quantity (before the step-size weighting), shape ``(n_accepted,)``."""

    def terms(self, stats: SolverStats) -> Tensor:
        r"""Per-step terms: ``values * |dt|`` if ``dt_weighted``, else ``values``."""
        stats = _as_stats(stats)
        if not stats.differentiable and torch.is_grad_enabled():
            raise ValueError("these stats come from the forward pass of an adjoint solve (run "
                             "under no_grad): a penalty built on them has no gradient; use "
                             "sciml.nde.local_step at a random time (the local mode) instead")
        v = self.values(stats)
        if self.dt_weighted:
            if stats.step_sizes.shape != v.shape:
                raise ValueError(f"stats.step_sizes {tuple(stats.step_sizes.shape)} and the "
                                 f"recorded values {tuple(v.shape)} differ in shape")
            v = v * stats.step_sizes.to(device=v.device, dtype=v.dtype).abs()
        return v

    def weight_at(self, epoch: int = 0) -> float:
        """The weight :math:`\\lambda` at ``epoch``."""
        return _as_schedule(self.weight)(epoch)

    def unweighted(self, stats: SolverStats) -> Tensor:
        """The reduced penalty without :math:`\\lambda` (a 0-d tensor)."""
        stats = _as_stats(stats)
        t = self.terms(stats)
        t = torch.where(torch.isfinite(t), t, torch.zeros_like(t))
        if t.numel() == 0:
            return t.new_zeros(())
        if self.reduction == "sum":
            r = t.sum()
            if self.normalize:
                span = float(stats.step_sizes.abs().sum())
                r = r / span if span > 0 else r
            return r
        if self.reduction == "mean":
            return t.mean()
        return t.max()

    def __call__(self, stats: SolverStats | Recorder, *, epoch: int = 0) -> Tensor:
        """``weight_at(epoch) * unweighted(stats)``: a 0-d tensor to add to the loss.

        ``stats`` is a :class:`SolverStats` or a :class:`~sciml.nde.Recorder` (its last solve).

        Raises
        ------
        TypeError
            If ``stats`` is neither a :class:`SolverStats` nor a :class:`Recorder`.
        ValueError
            If the record lacks what the regularizer needs.
        """
        return self.weight_at(epoch) * self.unweighted(stats)


@dataclass(frozen=True)
class ErrorRegularizer(AbstractSolverRegularizer):
    r"""ERNODE / ERNSDE: penalize the local error estimates of the accepted steps.

    .. math::
        R_E = \lambda \cdot \operatorname{reduce}_j\big(E_j^{\,p}\,|h_j|\big)

    Defaults give the paper's :math:`\sum_j E_j |h_j|`. The reference code
    (RegNeuralDE.jl) uses ``reduction="mean"`` (use that for its published λ), and its Physionet
    note :math:`\sum_j E_j^2` (``power=2``). ``normalize=True`` divides the sum by
    :math:`\sum_j|h_j|`, giving the time-averaged error ratio in :math:`[0, 1]`, a scale that
    does not depend on the time span.

    Scale: at initialization of small neural ODEs :math:`R_E` is O(0.1) per unit λ (the
    documented prototype saw ≈0.17 on digits), so the paper's λ = 100 -> 10 (with its mean
    reduction, MNIST, tolerance 1.4e-8) is far too strong here; λ ≈ 1 -> 0.1 worked on digits.
    Pick λ by a sweep on validation data (see ``examples/nde_digits.py``).

    Parameters
    ----------
    weight : float or AbstractSchedule, default 1.0
        :math:`\lambda` (e.g. :class:`ExponentialDecay`).
    reduction : {"sum", "mean", "max"}, default "sum"
    dt_weighted : bool, default True
        Multiply each term by :math:`|h_j|`.
    power : int, default 1
        :math:`p`.
    normalize : bool, default False

    Raises
    ------
    TypeError, ValueError
        On an invalid weight, reduction, power or an inconsistent ``normalize``.
    """

    weight: float | AbstractSchedule = 1.0
    reduction: Reduction = "sum"
    dt_weighted: bool = True
    power: int = 1
    normalize: bool = False

    def __post_init__(self) -> None:
        self._validate()
        if self.power not in (1, 2):
            raise ValueError(f"power must be 1 or 2, got {self.power!r}")

    @classmethod
    def reference(cls, weight: float | AbstractSchedule) -> ErrorRegularizer:
        """The reference code's variant: ``mean_j(E_j |h_j|)``."""
        return cls(weight, reduction="mean")

    def values(self, stats: SolverStats) -> Tensor:
        e = stats.step_errors
        return e if self.power == 1 else e * e


@dataclass(frozen=True)
class StiffnessRegularizer(AbstractSolverRegularizer):
    r"""SRNODE: penalize the stiffness estimates of the accepted steps.

    .. math::
        R_S = \lambda \cdot \operatorname{reduce}_j\big(S_j\,|h_j|\big),

    with :math:`S_j = |\hat\lambda_j|/\rho` (Shampine's eigenvalue estimate over the
    stability-region size, see :func:`sciml.nde.odeint`), so :math:`S_j|h_j|` is the fraction of
    the stability region the step uses. Defaults give the paper's sum; the reference code uses
    ``max_j S_j`` without :math:`|h_j|` (:meth:`reference`).

    Parameters
    ----------
    weight : float or AbstractSchedule, default 1.0
    reduction : {"sum", "mean", "max"}, default "sum"
    dt_weighted : bool, default True
    normalize : bool, default False

    Raises
    ------
    ValueError
        When called on stats without a stiffness record (``stats.stiffness is None``: an SDE
        solver, a scheme without stiffness stages or ``Recorder(stiffness=False)``).
    """

    weight: float | AbstractSchedule = 1.0
    reduction: Reduction = "sum"
    dt_weighted: bool = True
    normalize: bool = False

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def reference(cls, weight: float | AbstractSchedule) -> StiffnessRegularizer:
        """The reference code's variant: ``max_j S_j`` (no step-size factor)."""
        return cls(weight, reduction="max", dt_weighted=False)

    def values(self, stats: SolverStats) -> Tensor:
        if stats.stiffness is None:
            raise ValueError(f"these stats ({stats.method!r}) have no stiffness record: solve "
                             "with sciml.nde.odeint(..., recorder=Recorder(stiffness=True)) "
                             "and an "
                             "adaptive RK method (dopri5, tsit5, bosh3); SDE solvers have none")
        return stats.stiffness
