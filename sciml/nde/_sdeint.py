"""Adaptive SDE integration with a differentiable local error estimate (ERNSDE).

:func:`sdeint` integrates an SDE given on torchsde's interface (an object with ``f(t, y)``,
``g(t, y)``, ``noise_type`` and ``sde_type``) with step doubling: every attempted step of size
:math:`h` is taken once with :math:`h` and twice with :math:`h/2` *on the same Brownian path*, and

.. math::

    E = \\operatorname{RMS}\\Big(\\frac{y^{(h)} - y^{(h/2,h/2)}}
        {\\mathrm{atol} + \\mathrm{rtol}\\,\\max(|y^{(h)}|, |y^{(h/2,h/2)}|)}\\Big)

(the RMS runs over every element, batch included) is both the number the PI step-size controller
compares with 1 and, kept as a tensor with its autograd graph, the per-step error :math:`E_j`
recorded in :class:`~sciml.nde.SolverStats` for the error regularizer
:math:`R_E = \\sum_j E_j |\\Delta t_j|` (Pal et al., ICML 2021, "ERNSDE").  torchsde 0.2.6 computes
the same quantity (``torchsde._core.adaptive_stepping.compute_error``) but returns it as a detached
Python float, so it cannot be regularized.

The accepted value is the two-half-step one.  The drift and diffusion at the start of a step are
shared by the full step and the first half step (and by retries after a rejection), so for
Euler-Maruyama an attempt costs one drift and one diffusion evaluation at the midpoint, plus one
of each at the new point once accepted (``nfe_drift = 2 n_accepted + n_rejected``), where
torchsde's loop evaluates three full steps per attempt (3 + 3).  Milstein and Euler-Heun add
their extra diffusion evaluation to each of the three steps.
Output times need not be step boundaries: as in torchsde, the solution at an output time is the
linear interpolation between the two accepted steps around it.

References
----------
A. Pal, Y. Ma, V. Shah, C. Rackauckas, "Opening the Blackbox: Accelerating Neural Differential
Equations by Regularizing Internal Solver Heuristics", ICML 2021 (arXiv:2105.03918).
P. E. Kloeden, E. Platen, "Numerical Solution of Stochastic Differential Equations", Springer 1992,
sections 10.2 (Euler-Maruyama), 10.3 and 11.1 (Milstein, derivative-free Milstein).
X. Li, T.-K. L. Wong, R. T. Q. Chen, D. Duvenaud, "Scalable Gradients for Stochastic Differential
Equations", AISTATS 2020 (torchsde; Brownian interval, step-doubling controller constants).
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from sciml_inverse import check_tolerance

from ._stats import SolverStats

__all__ = [
    "AbstractSDEScheme",
    "EulerHeun",
    "EulerMaruyama",
    "Milstein",
    "PIController",
    "SDESolverStats",
    "sdeint",
]

_NOISE_TYPES = ("diagonal", "general", "scalar", "additive")
_SDE_TYPES = ("ito", "stratonovich")


class SDELike(Protocol):
    """torchsde's SDE interface: drift ``f(t, y)``, diffusion ``g(t, y)``, and two tags."""

    noise_type: str
    sde_type: str

    def f(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...  # pragma: no cover

    def g(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor: ...  # pragma: no cover


@dataclass
class SDESolverStats(SolverStats):
    """:class:`~sciml.nde.SolverStats` of an SDE solve, with the drift/diffusion split of the NFE.

    ``nfe = nfe_drift + nfe_diffusion`` (every call of ``f`` and of ``g`` counts once);
    ``stiffness`` is always ``None``.  The paper's tables report drift evaluations.

    Attributes
    ----------
    nfe_drift, nfe_diffusion : int
        Calls of ``sde.f`` and of ``sde.g``.
    entropy : int or None
        Entropy of the Brownian motion the solve built (drawn from ``generator`` if one was
        given; pass it back as ``entropy=`` to replay the solve); ``None`` for a user ``bm``.
    """

    nfe_drift: int = 0
    nfe_diffusion: int = 0
    entropy: int | None = None


@dataclass(frozen=True)
class PIController:
    """PI step-size controller for step-doubling error estimates (torchsde's constants).

    With :math:`r_j = \\text{safety}/E_j`, the proposal is
    :math:`h_{j+1} = h_j \\, r_j^{k_I} (r_j/r_{j-1})^{k_P}`, clipped to
    ``[facmin, facmax] * h_j``.  On acceptance (:math:`E_j \\le 1`) ``k_I = i_accept``,
    ``k_P = p_accept`` and the factor is at least 1; on rejection ``k_I = i_reject``, ``k_P = 0``.
    ``p_accept = 0`` gives a pure I controller.

    Parameters
    ----------
    safety : float
        Safety factor in ``(0, 1]``.
    facmin, facmax : float
        Bounds ``0 < facmin < 1 < facmax`` of the step-size ratio.
    i_accept, p_accept, i_reject : float
        Integral and proportional exponents (non-negative; ``i_*`` positive).

    Raises
    ------
    ValueError
        If a constant is outside its range.
    """

    safety: float = 0.9
    facmin: float = 0.2
    facmax: float = 1.4
    i_accept: float = 1.0 / 4.5
    p_accept: float = 0.13
    i_reject: float = 1.0 / 1.5

    def __post_init__(self) -> None:
        if not 0.0 < self.safety <= 1.0:
            raise ValueError(f"safety must be in (0, 1], got {self.safety}")
        if not 0.0 < self.facmin < 1.0 < self.facmax:
            raise ValueError(
                f"need 0 < facmin < 1 < facmax, got facmin={self.facmin}, facmax={self.facmax}"
            )
        if self.i_accept <= 0 or self.i_reject <= 0 or self.p_accept < 0:
            raise ValueError(
                "need i_accept > 0, i_reject > 0 and p_accept >= 0, got "
                f"{self.i_accept}, {self.i_reject}, {self.p_accept}"
            )

    def propose(
        self, error: float, dt: float, prev_ratio: float | None
    ) -> tuple[float, float | None]:
        """Next step size and the ratio to carry to the next call.

        Parameters
        ----------
        error : float
            Scaled error of the attempt just made (positive; ``inf`` for a non-finite one).
        dt : float
            Size of that attempt.
        prev_ratio : float or None
            Ratio returned by the previous call (``None`` at the start).

        Returns
        -------
        new_dt : float
        ratio : float or None
        """
        if not math.isfinite(error):
            return dt * self.facmin, prev_ratio
        error = max(error, 1e-7)
        ratio = self.safety / error
        if prev_ratio is None:
            prev_ratio = ratio
        if error <= 1.0:
            factor = ratio**self.i_accept * (ratio / prev_ratio) ** self.p_accept
            factor = min(self.facmax, max(1.0, factor))
            return dt * factor, ratio
        factor = min(self.facmax, max(self.facmin, ratio**self.i_reject))
        return dt * factor, prev_ratio


class _Field:
    """Drift/diffusion evaluator that counts calls and checks shapes once."""

    def __init__(self, sde: Any, y0: torch.Tensor) -> None:
        self.sde = sde
        self.noise_type = sde.noise_type
        self.nfe_f = 0
        self.nfe_g = 0
        self._shape = y0.shape
        self._checked_f = False
        self._checked_g = False
        self.m: int | None = None

    def _t(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return torch.tensor(t, dtype=y.dtype, device=y.device)

    def f(self, t: float, y: torch.Tensor) -> torch.Tensor:
        self.nfe_f += 1
        out = self.sde.f(self._t(t, y), y)
        if not self._checked_f:
            if not isinstance(out, torch.Tensor) or out.shape != self._shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"sde.f(t, y) must return a tensor of the state's shape {tuple(self._shape)}, "
                    f"got {got}"
                )
            self._checked_f = True
        return out

    def g(self, t: float, y: torch.Tensor) -> torch.Tensor:
        self.nfe_g += 1
        out = self.sde.g(self._t(t, y), y)
        if not self._checked_g:
            self._check_g(out)
            self._checked_g = True
        return out

    def _check_g(self, out: Any) -> None:
        b, d = self._shape
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"sde.g(t, y) must return a tensor, got {type(out).__name__}")
        got = tuple(out.shape)
        if self.noise_type == "diagonal":
            if got != (b, d):
                raise ValueError(
                    f"noise_type 'diagonal' needs sde.g(t, y) of shape (batch, d) = {(b, d)}, "
                    f"got {got}; use noise_type 'general' for a (batch, d, m) diffusion matrix"
                )
            self.m = d
        elif self.noise_type == "scalar":
            if got != (b, d, 1):
                raise ValueError(
                    f"noise_type 'scalar' needs sde.g(t, y) of shape (batch, d, 1) = {(b, d, 1)}, "
                    f"got {got}"
                )
            self.m = 1
        else:
            if out.dim() != 3 or got[:2] != (b, d):
                raise ValueError(
                    f"noise_type '{self.noise_type}' needs sde.g(t, y) of shape (batch, d, m) with "
                    f"(batch, d) = {(b, d)}, got {got}"
                )
            self.m = got[2]

    def prod(self, g: torch.Tensor, dw: torch.Tensor) -> torch.Tensor:
        """Diffusion times Brownian increment: ``g * dw`` or ``g @ dw`` by noise type."""
        if self.noise_type == "diagonal":
            return g * dw
        return torch.einsum("bdm,bm->bd", g, dw)


class AbstractSDEScheme(abc.ABC):
    """One step of a one-step SDE scheme, on a known drift/diffusion at the step's start.

    Subclasses set ``name``, ``sde_type`` and ``noise_types`` and implement :meth:`strong_order`
    and :meth:`step`.
    """

    name: str
    sde_type: str
    noise_types: tuple[str, ...]

    @abc.abstractmethod
    def strong_order(self, noise_type: str) -> float:
        """Declared strong order of convergence for SDEs of ``noise_type``."""

    @abc.abstractmethod
    def step(
        self,
        field: _Field,
        t0: float,
        t1: float,
        y0: torch.Tensor,
        f0: torch.Tensor,
        g0: torch.Tensor,
        dw: torch.Tensor,
    ) -> torch.Tensor:
        """Advance ``y0`` from ``t0`` to ``t1`` given ``f0 = f(t0, y0)``, ``g0 = g(t0, y0)`` and
        the Brownian increment ``dw = W(t1) - W(t0)``; return ``y1``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EulerMaruyama(AbstractSDEScheme):
    """Euler-Maruyama, Itô: :math:`y_1 = y_0 + f\\,h + g\\,\\Delta W`.

    Strong order 0.5 (1.0 for additive noise); 1 drift + 1 diffusion evaluation per step
    (Kloeden & Platen 1992, section 10.2).
    """

    name = "euler"
    sde_type = "ito"
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 1.0 if noise_type == "additive" else 0.5

    def step(self, field, t0, t1, y0, f0, g0, dw):
        return y0 + f0 * (t1 - t0) + field.prod(g0, dw)


class Milstein(AbstractSDEScheme):
    """Derivative-free (Runge-Kutta) Milstein, Itô, for commutative noise.

    .. math::

        \\bar y = y_0 + f h + g \\sqrt h, \\qquad
        y_1 = y_0 + f h + g\\,\\Delta W + \\frac{g(\\bar y) - g(y_0)}{2\\sqrt h}
        \\big(\\Delta W^2 - h\\big),

    (products elementwise for diagonal noise, with the single Brownian component for scalar
    noise; the correction vanishes for additive noise).  Strong order 1.0; 1 drift + 2 diffusion
    evaluations per step (1 for additive noise).  Kloeden & Platen 1992, section 11.1.
    """

    name = "milstein"
    sde_type = "ito"
    noise_types = ("diagonal", "scalar", "additive")

    def strong_order(self, noise_type: str) -> float:
        return 1.0

    def step(self, field, t0, t1, y0, f0, g0, dw):
        h = t1 - t0
        y1 = y0 + f0 * h + field.prod(g0, dw)
        if field.noise_type == "additive":
            return y1
        sqrt_h = math.sqrt(h)
        g_vec = g0 if field.noise_type == "diagonal" else g0[..., 0]
        g_bar = field.g(t0, y0 + f0 * h + g_vec * sqrt_h)
        return y1 + field.prod(g_bar - g0, dw**2 - h) / (2.0 * sqrt_h)


class EulerHeun(AbstractSDEScheme):
    """Euler-Heun, Stratonovich: :math:`\\bar y = y_0 + g(y_0)\\Delta W`,
    :math:`y_1 = y_0 + f h + \\tfrac12 (g(y_0) + g(\\bar y))\\Delta W`.

    Strong order 1.0 for commutative noise (diagonal, scalar, additive), 0.5 for general noise;
    1 drift + 2 diffusion evaluations per step.
    """

    name = "euler_heun"
    sde_type = "stratonovich"
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 0.5 if noise_type == "general" else 1.0

    def step(self, field, t0, t1, y0, f0, g0, dw):
        g_dw = field.prod(g0, dw)
        g_bar = field.g(t1, y0 + g_dw)
        return y0 + f0 * (t1 - t0) + 0.5 * (g_dw + field.prod(g_bar, dw))


_SCHEMES: dict[str, type[AbstractSDEScheme]] = {
    "euler": EulerMaruyama,
    "milstein": Milstein,
    "euler_heun": EulerHeun,
}


def _scaled_error(
    y_full: torch.Tensor, y_half: torch.Tensor, rtol: float, atol: float
) -> torch.Tensor:
    """RMS of the step-doubling difference scaled by ``atol + rtol * max(|.|)``; zero-safe grad."""
    scale = (atol + rtol * torch.maximum(y_full.abs(), y_half.abs())).clamp_min(1e-7)
    ms = ((y_full - y_half) / scale).pow(2).mean()
    # sqrt has an infinite derivative at 0: clamp so an exactly-zero error has a zero gradient.
    tiny = torch.finfo(ms.dtype).tiny
    return torch.where(ms > 0, ms.clamp_min(tiny).sqrt(), torch.zeros_like(ms))


def _check_inputs(sde: Any, y0: Any, ts: Any) -> torch.Tensor:
    for name in ("f", "g"):
        if not callable(getattr(sde, name, None)):
            raise TypeError(
                f"sde must have a callable method {name}(t, y) (torchsde's SDE interface), "
                f"got {type(sde).__name__} without it"
            )
    noise_type = getattr(sde, "noise_type", None)
    if noise_type not in _NOISE_TYPES:
        raise ValueError(f"sde.noise_type must be one of {_NOISE_TYPES}, got {noise_type!r}")
    sde_type = getattr(sde, "sde_type", None)
    if sde_type not in _SDE_TYPES:
        raise ValueError(f"sde.sde_type must be one of {_SDE_TYPES}, got {sde_type!r}")
    if not isinstance(y0, torch.Tensor):
        raise TypeError(f"y0 must be a torch.Tensor of shape (batch, d), got {type(y0).__name__}")
    if y0.dim() != 2:
        raise ValueError(
            f"y0 must have shape (batch, d), got {tuple(y0.shape)}; add a batch dimension with "
            "y0[None]"
        )
    if not y0.is_floating_point():
        raise TypeError(f"y0 must be a floating-point tensor, got dtype {y0.dtype}")
    if not torch.isfinite(y0).all():
        raise ValueError("y0 contains NaN or inf; the initial state must be finite")
    ts = torch.as_tensor(ts)
    if ts.dim() != 1 or ts.numel() < 2:
        raise ValueError(
            f"ts must be a 1-D tensor with at least 2 times, got shape {tuple(ts.shape)}"
        )
    if not torch.isfinite(ts).all():
        raise ValueError("ts contains NaN or inf")
    if not bool((ts[1:] > ts[:-1]).all()):
        raise ValueError(f"ts must be strictly increasing, got {ts.tolist()}")
    return ts


def sdeint(
    sde: SDELike,
    y0: torch.Tensor,
    ts: torch.Tensor,
    *,
    method: str | AbstractSDEScheme = "euler",
    dt: float | None = None,
    adaptive: bool = True,
    rtol: float = 1e-3,
    atol: float = 1e-3,
    dt_min: float = 1e-5,
    max_steps: int = 4096,
    entropy: int | None = None,
    generator: torch.Generator | None = None,
    bm: Any | None = None,
    controller: PIController | None = None,
    estimate_error: bool | None = None,
    throw: bool = True,
) -> tuple[torch.Tensor, SDESolverStats]:
    """Solve an SDE with (optionally adaptive) step doubling, recording differentiable errors.

    Integrates :math:`dy = f(t, y)\\,dt + g(t, y)\\,dW` (Itô or Stratonovich, as ``sde.sde_type``
    says) from ``ts[0]`` to ``ts[-1]``.  Adaptive mode: each attempt of size :math:`h` takes one
    step of :math:`h` and two of :math:`h/2` on the same Brownian path, computes the scaled error
    :math:`E` (module docstring), accepts the two-half-step value if :math:`E \\le 1` (or if
    :math:`h` is already ``dt_min``), and proposes the next :math:`h` with ``controller`` from the
    detached :math:`E`.  Every accepted step's :math:`E_j` is recorded *with its autograd graph*
    (gradients do not flow through the step sizes), so ``ErrorRegularizer`` / the sum
    :math:`\\sum_j E_j |\\Delta t_j|` backpropagates into the parameters of ``f`` and ``g``.

    Parameters
    ----------
    sde : object
        torchsde's interface: ``f(t, y)`` with the shape of ``y``, ``g(t, y)`` of shape
        ``(batch, d)`` (``noise_type="diagonal"``), ``(batch, d, 1)`` (``"scalar"``) or
        ``(batch, d, m)`` (``"general"``, ``"additive"``; additive means ``g`` does not depend on
        ``y``), ``noise_type`` and ``sde_type`` (``"ito"`` or ``"stratonovich"``).  ``t`` is passed
        as a 0-d tensor of ``y``'s dtype and device (as torchsde does).
    y0 : torch.Tensor, shape ``(batch, d)``
        Initial state (finite, floating point).
    ts : torch.Tensor, shape ``(T,)``
        Strictly increasing output times; the solve runs from ``ts[0]`` to ``ts[-1]``.  Outputs at
        interior times are linearly interpolated between accepted steps (as in torchsde).
    method : {"euler", "milstein", "euler_heun"} or AbstractSDEScheme
        ``"euler"``: Euler-Maruyama (Itô; strong order 0.5, 1.0 for additive noise).
        ``"milstein"``: derivative-free Milstein (Itô; diagonal, scalar or additive noise; 1.0).
        ``"euler_heun"``: Euler-Heun (Stratonovich; 1.0, 0.5 for general noise).
    dt : float, optional
        Initial step size (adaptive) or the step size (fixed).  Default ``(ts[-1] - ts[0]) / 100``.
    adaptive : bool
        Step-size control by step doubling.  ``False``: fixed steps of ``dt`` (the last one
        shortened to end at ``ts[-1]``).
    rtol, atol : float
        Relative and absolute tolerances of the error estimate (non-negative, not both zero).
    dt_min : float
        Smallest step size; an attempt at ``dt_min`` is accepted whatever its error (torchsde's
        rule), so the solve always advances.
    max_steps : int
        Budget of step attempts (accepted + rejected).  When it runs out, ``throw=True`` raises
        ``RuntimeError``; ``throw=False`` returns with ``stats.status == "max_steps"`` and NaN in
        the outputs not reached.
    entropy : int, optional
        Seed of the :class:`torchsde.BrownianInterval` built for this solve (torchsde's default
        Brownian motion ignores ``torch.manual_seed``).  Same entropy and same arguments give the
        same path, solution and statistics.  ``W(ts[-1]) - W(ts[0])`` depends on the entropy
        alone, but interior increments also depend on the order in which the interval is split
        (the Brownian bridge is sampled conditionally on earlier queries), so two solves with
        different step sequences see different, equally distributed, interior paths; pass
        ``bm=torchsde.BrownianInterval(..., halfway_tree=True, tol=...)`` for query-order
        independent values.
    generator : torch.Generator, optional
        Alternative to ``entropy``: the entropy is drawn as
        ``torch.randint(0, 2**31 - 1, (), generator=generator)``, so a seeded generator gives a
        reproducible *sequence* of paths (one per call; convenient in training loops).
    bm : torchsde Brownian motion, optional
        A ready Brownian motion ``bm(ta, tb)`` of shape ``(batch, m)`` covering ``[ts[0], ts[-1]]``;
        exclusive with ``entropy`` and ``generator``.  Exactly one of the three must be given.
    controller : PIController, optional
        Step-size controller; default ``PIController()`` (torchsde's constants).
    estimate_error : bool, optional
        Compute and record :math:`E_j` also with fixed steps (steps of ``dt`` taken as two halves;
        the full step only feeds the estimate).  Default: equal to ``adaptive``.
    throw : bool
        See ``max_steps``.

    Returns
    -------
    ys : torch.Tensor, shape ``(T, batch, d)``
        Solution at ``ts``.
    stats : SDESolverStats
        ``nfe`` (= ``nfe_drift + nfe_diffusion``), accepted/rejected counts, and per accepted step
        its start time, size (detached) and scaled error :math:`E_j` (differentiable; empty when
        ``estimate_error`` is false); ``stiffness`` is ``None``; ``status``; the ``entropy``
        of the Brownian motion it built.

    Raises
    ------
    TypeError
        If ``sde`` lacks ``f``/``g``, ``y0`` is not a floating tensor, or ``method``/``controller``
        have the wrong type.
    ValueError
        On a bad ``noise_type``/``sde_type``/``method`` combination, a ``y0`` that is not
        ``(batch, d)`` or not finite, non-increasing ``ts``, bad tolerances or step sizes, a wrong
        number of Brownian sources (none or several of ``entropy``/``generator``/``bm``), or an
        ``f``/``g`` output of the wrong shape for the noise type.
    RuntimeError
        If the state becomes non-finite, or the step budget runs out with ``throw=True``.

    Examples
    --------
    >>> import torch
    >>> class OU:
    ...     noise_type, sde_type = "diagonal", "ito"
    ...     def f(self, t, y): return -y
    ...     def g(self, t, y): return 0.3 * torch.ones_like(y)
    >>> ys, stats = sdeint(OU(), torch.ones(4, 2), torch.tensor([0.0, 1.0]), entropy=0)
    >>> ys.shape, stats.status, float(stats.step_sizes.sum())
    (torch.Size([2, 4, 2]), 'success', 1.0)
    """
    ts = _check_inputs(sde, y0, ts)
    if isinstance(method, str):
        if method not in _SCHEMES:
            raise ValueError(f"unknown method {method!r}; choose one of {sorted(_SCHEMES)}")
        scheme = _SCHEMES[method]()
    elif isinstance(method, AbstractSDEScheme):
        scheme = method
    else:
        raise TypeError(
            f"method must be a name or an AbstractSDEScheme, got {type(method).__name__}"
        )
    if sde.sde_type != scheme.sde_type:
        hint = "'euler' or 'milstein'" if sde.sde_type == "ito" else "'euler_heun'"
        raise ValueError(
            f"method {scheme.name!r} solves {scheme.sde_type} SDEs but sde.sde_type is "
            f"{sde.sde_type!r}; use {hint}"
        )
    if sde.noise_type not in scheme.noise_types:
        raise ValueError(
            f"method {scheme.name!r} supports noise types {scheme.noise_types}, got "
            f"{sde.noise_type!r}"
        )
    controller = PIController() if controller is None else controller
    if not isinstance(controller, PIController):
        raise TypeError(f"controller must be a PIController, got {type(controller).__name__}")
    rtol, atol = check_tolerance("rtol", rtol), check_tolerance("atol", atol)  # finite numbers
    if rtol < 0 or atol < 0 or rtol + atol == 0:
        raise ValueError(f"need rtol >= 0, atol >= 0, not both 0; got rtol={rtol}, atol={atol}")
    if not (isinstance(max_steps, int) and max_steps > 0):
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    t_start, t_end = float(ts[0]), float(ts[-1])
    span = t_end - t_start
    dt = span / 100.0 if dt is None else float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got {dt}")
    if not dt_min > 0:
        raise ValueError(f"dt_min must be positive, got {dt_min}")
    n_sources = sum(x is not None for x in (entropy, generator, bm))
    if n_sources != 1:
        raise ValueError(
            "pass exactly one Brownian source: entropy=<int> (reproducible path), "
            f"generator=<torch.Generator>, or bm=<torchsde Brownian motion>; got {n_sources}"
        )
    estimate_error = adaptive if estimate_error is None else bool(estimate_error)

    field = _Field(sde, y0)
    f0 = field.f(t_start, y0)
    g0 = field.g(t_start, y0)
    if bm is None:
        import torchsde

        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise TypeError(
                    f"generator must be a torch.Generator, got {type(generator).__name__}"
                )
            entropy = int(torch.randint(0, 2**31 - 1, (), generator=generator))
        elif not isinstance(entropy, int) or isinstance(entropy, bool):
            raise TypeError(f"entropy must be an int, got {type(entropy).__name__}")
        bm = torchsde.BrownianInterval(
            t0=t_start,
            t1=t_end,
            size=(y0.shape[0], field.m),
            dtype=y0.dtype,
            device=y0.device,
            entropy=entropy,
            dt=dt,
        )

    bm_shape = (y0.shape[0], field.m)

    def dw(ta: float, tb: float) -> torch.Tensor:
        out = bm(ta, tb)
        if tuple(out.shape) != bm_shape:
            raise ValueError(
                f"bm(ta, tb) must have shape (batch, m) = {bm_shape} for noise_type "
                f"{sde.noise_type!r}, got {tuple(out.shape)}"
            )
        return out

    times: list[float] = []
    steps: list[float] = []
    errors: list[torch.Tensor] = []
    ys: list[torch.Tensor] = [y0]
    out_times = ts.tolist()
    next_out = 1
    n_acc = n_rej = 0
    status = "success"
    t, y = t_start, y0
    h = dt
    prev_ratio: float | None = None
    fixed = not adaptive
    eps_t = 1e-12 * max(1.0, abs(t_end))

    while t_end - t > eps_t:
        if n_acc + n_rej >= max_steps:
            if throw:
                raise RuntimeError(
                    f"sdeint: max_steps={max_steps} step attempts reached at t={t:.6g} "
                    f"(end {t_end:.6g}); raise max_steps or the tolerances, or pass throw=False"
                )
            status = "max_steps"
            break
        t1 = t_end if t + h >= t_end - eps_t else t + h
        if fixed and not estimate_error:
            y1 = scheme.step(field, t, t1, y, f0, g0, dw(t, t1))
            err = None
        else:
            # Query order as torchsde's (full interval, then halves): a BrownianInterval's sample
            # depends on the order in which it is split, not only on its entropy.
            y_full = scheme.step(field, t, t1, y, f0, g0, dw(t, t1))
            tm = 0.5 * (t + t1)
            y_mid = scheme.step(field, t, tm, y, f0, g0, dw(t, tm))
            f_mid, g_mid = field.f(tm, y_mid), field.g(tm, y_mid)
            y1 = scheme.step(field, tm, t1, y_mid, f_mid, g_mid, dw(tm, t1))
            err = _scaled_error(y_full, y1, rtol, atol)
        if fixed:
            accept = True
        else:
            err_val = float(err.detach())
            # As torchsde: the controller scales the proposed (unclipped) size h.
            h_prop, prev_ratio = controller.propose(err_val, h, prev_ratio)
            if h_prop < dt_min:
                h_prop, prev_ratio = dt_min, None
            accept = (err_val <= 1.0 and math.isfinite(err_val)) or (t1 - t) <= dt_min * (1 + 1e-9)
            h_next = h_prop
        if accept:
            if not bool(torch.isfinite(y1).all()):
                raise RuntimeError(
                    f"sdeint: the state became non-finite at t={t1:.6g}; lower dt/dt_min or the "
                    "tolerances, or regularize the dynamics"
                )
            n_acc += 1
            times.append(t)
            steps.append(t1 - t)
            if err is not None:
                errors.append(err)
            while next_out < len(out_times) and out_times[next_out] <= t1 + eps_t:
                s = out_times[next_out]
                if abs(s - t1) <= eps_t:
                    ys.append(y1)
                else:
                    w = (s - t) / (t1 - t)
                    ys.append(y + w * (y1 - y))
                next_out += 1
            t, y = t1, y1
            if t_end - t > eps_t:
                f0, g0 = field.f(t, y), field.g(t, y)
        else:
            n_rej += 1
        if not fixed:
            h = h_next

    while len(ys) < len(out_times):
        ys.append(torch.full_like(y0, float("nan")))
    stats = SDESolverStats(
        method=scheme.name,
        nfe=field.nfe_f + field.nfe_g,
        n_accepted=n_acc,
        n_rejected=n_rej,
        times=torch.tensor(times, dtype=torch.float64),
        step_sizes=torch.tensor(steps, dtype=torch.float64, device=y0.device),
        step_errors=torch.stack(errors) if errors else y0.new_zeros(0),
        stiffness=None,
        status=status,
        nfe_drift=field.nfe_f,
        nfe_diffusion=field.nfe_g,
        entropy=entropy,
    )
    return torch.stack(ys, dim=0), stats
