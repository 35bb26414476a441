"""torchsde-compatible SDE integration with a differentiable local error estimate (ERNSDE).

:func:`sdeint` is a drop-in for ``torchsde.sdeint`` (same signature, defaults, return values;
torchsde's own contract check validates the inputs). With ``adaptive=True`` it steps by step
doubling: every attempted step of size
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

from sciml_inverse import check_finite, check_int, check_real, check_tolerance

from ._stats import Recorder, SolverStats, _check_recorder

__all__ = [
    "AbstractSDEScheme",
    "EulerHeun",
    "EulerMaruyama",
    "Heun",
    "Midpoint",
    "Milstein",
    "PIController",
    "SDESolverStats",
    "sdeint",
    "sdeint_adjoint",
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
        check_real("safety", self.safety, positive=True, maximum=1.0,
                   hint="the safety factor on the proposed step, in (0, 1]")
        rule = "need 0 < facmin < 1 < facmax (the bounds of the step-size ratio)"
        check_real("facmin", self.facmin, positive=True, maximum=1.0, include_maximum=False,
                   hint=rule)
        if check_real("facmax", self.facmax, hint=rule) <= 1.0:  # type: ignore[operator]
            raise ValueError(f"{rule}, got facmin={self.facmin}, facmax={self.facmax}")
        hint = "need i_accept > 0, i_reject > 0 and p_accept >= 0 (the PI exponents)"
        check_real("i_accept", self.i_accept, positive=True, hint=hint)
        check_real("i_reject", self.i_reject, positive=True, hint=hint)
        check_real("p_accept", self.p_accept, positive=False, hint=hint)

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


class _Point:
    """A state ``(t, y)`` with its drift and diffusion, evaluated lazily and shared by the steps
    that start there (the full and the first half step of an attempt, and retries)."""

    __slots__ = ("t", "y", "f", "g")

    def __init__(self, t: float, y: torch.Tensor) -> None:
        self.t, self.y = t, y
        self.f: torch.Tensor | None = None
        self.g: torch.Tensor | None = None


class _Field:
    """Drift/diffusion evaluator on torchsde's ``ForwardSDE`` (which supplies ``f``, ``g``,
    ``f_and_g``, ``g_prod``, ``f_and_g_prod`` and ``g_prod_and_gdg_prod`` from whichever the
    user defined); counts calls."""

    def __init__(self, sde: Any, base: Any) -> None:
        self.sde = sde
        self.noise_type = sde.noise_type
        self.has_f = hasattr(base, "f")
        self.has_fg = hasattr(base, "f_and_g")
        self.has_g = hasattr(base, "g") or self.has_fg
        self.nfe_f = 0
        self.nfe_g = 0

    def _t(self, t: float, y: torch.Tensor) -> torch.Tensor:
        return torch.tensor(t, dtype=y.dtype, device=y.device)

    def f(self, p: _Point) -> torch.Tensor:
        if p.f is None:
            if self.has_f:
                self.nfe_f += 1
                p.f = self.sde.f(self._t(p.t, p.y), p.y)
            else:
                self.nfe_f += 1
                self.nfe_g += 1
                p.f, p.g = self.sde.f_and_g(self._t(p.t, p.y), p.y)
        return p.f

    def g(self, p: _Point) -> torch.Tensor:
        if p.g is None:
            self.nfe_g += 1
            p.g = self.sde.g(self._t(p.t, p.y), p.y)
        return p.g

    def gdw(self, p: _Point, dw: torch.Tensor) -> torch.Tensor:
        if self.has_g:
            return self.sde.prod(self.g(p), dw)
        self.nfe_g += 1
        return self.sde.g_prod(self._t(p.t, p.y), p.y, dw)

    def f_gdw(self, p: _Point, dw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.has_f or self.has_fg or p.f is not None:
            return self.f(p), self.gdw(p, dw)
        self.nfe_f += 1
        self.nfe_g += 1
        f, gp = self.sde.f_and_g_prod(self._t(p.t, p.y), p.y, dw)
        p.f = f
        return f, gp


class AbstractSDEScheme(abc.ABC):
    """One step of a one-step SDE scheme from a :class:`_Point`.

    Subclasses set ``name``, ``sde_types`` and ``noise_types`` and implement :meth:`strong_order`
    and :meth:`step`.
    """

    name: str
    sde_types: tuple[str, ...]
    noise_types: tuple[str, ...]

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def strong_order(self, noise_type: str) -> float:
        """Declared strong order of convergence for SDEs of ``noise_type``."""

    @abc.abstractmethod
    def step(self, field: _Field, p0: _Point, t1: float, dw: torch.Tensor,
             sde_type: str) -> torch.Tensor:
        """Advance from ``p0`` to ``t1`` given the Brownian increment ``dw``; return ``y1``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class EulerMaruyama(AbstractSDEScheme):
    """Euler-Maruyama, Itô: :math:`y_1 = y_0 + f\\,h + g\\,\\Delta W`.

    Strong order 0.5 (1.0 for additive noise); 1 drift + 1 diffusion evaluation per step
    (Kloeden & Platen 1992, section 10.2).
    """

    name = "euler"
    sde_types = ("ito",)
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 1.0 if noise_type == "additive" else 0.5

    def step(self, field, p0, t1, dw, sde_type):
        f, gdw = field.f_gdw(p0, dw)
        return p0.y + f * (t1 - p0.t) + gdw


class Milstein(AbstractSDEScheme):
    """Milstein for commutative noise (diagonal, scalar, additive), Itô or Stratonovich.

    .. math::

        y_1 = y_0 + f h + g\\,\\Delta W + \\tfrac12 (g\\,\\partial_y g)\\,(\\Delta W^2 - h)

    (Stratonovich: :math:`\\Delta W^2` without :math:`-h`). As torchsde, :math:`g\\partial_y g` is
    a vector-Jacobian product by autograd by default; ``options={"grad_free": True}`` uses the
    derivative-free (Runge-Kutta) form :math:`(g(\\bar y) - g(y_0))/\\sqrt h` with
    :math:`\\bar y = y_0 + f h + g\\sqrt h` (Itô) or :math:`y_0 + g\\sqrt h` (Stratonovich).
    Strong order 1.0; 1 drift + 2 diffusion evaluations per step (1 for additive noise).
    Kloeden & Platen 1992, sections 10.3 and 11.1.
    """

    name = "milstein"
    sde_types = ("ito", "stratonovich")
    noise_types = ("diagonal", "scalar", "additive")

    def strong_order(self, noise_type: str) -> float:
        return 1.0

    def step(self, field, p0, t1, dw, sde_type):
        h = t1 - p0.t
        f = field.f(p0)
        if field.noise_type == "additive":
            return p0.y + f * h + field.gdw(p0, dw)
        v = dw ** 2 - h if sde_type == "ito" else dw ** 2
        if self.options.get("grad_free", False):
            g0 = field.g(p0)
            sqrt_h = math.sqrt(h)
            g_vec = g0 if field.noise_type == "diagonal" else g0[..., 0]
            y_bar = p0.y + g_vec * sqrt_h + (f * h if sde_type == "ito" else 0.0)
            g_bar = field.g(_Point(p0.t, y_bar))
            return (p0.y + f * h + field.sde.prod(g0, dw)
                    + field.sde.prod(g_bar - g0, v) / (2.0 * sqrt_h))
        field.nfe_g += 1
        gdw, gdg = field.sde.g_prod_and_gdg_prod(field._t(p0.t, p0.y), p0.y, dw, 0.5 * v)
        return p0.y + f * h + gdw + gdg


class EulerHeun(AbstractSDEScheme):
    """Euler-Heun, Stratonovich: :math:`\\bar y = y_0 + g(y_0)\\Delta W`,
    :math:`y_1 = y_0 + f h + \\tfrac12 (g(y_0) + g(t_1, \\bar y))\\Delta W`.

    Strong order 1.0 for commutative noise (diagonal, scalar, additive), 0.5 for general noise;
    1 drift + 2 diffusion evaluations per step.
    """

    name = "euler_heun"
    sde_types = ("stratonovich",)
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 0.5 if noise_type == "general" else 1.0

    def step(self, field, p0, t1, dw, sde_type):
        f, gdw = field.f_gdw(p0, dw)
        gdw_bar = field.gdw(_Point(t1, p0.y + gdw), dw)
        return p0.y + f * (t1 - p0.t) + 0.5 * (gdw + gdw_bar)


class Heun(AbstractSDEScheme):
    """Heun (trapezoidal predictor-corrector), Stratonovich: :math:`\\bar y = y_0 + f h +
    g\\Delta W`, :math:`y_1 = y_0 + \\tfrac12(f + \\bar f) h + \\tfrac12(g + \\bar g)\\Delta W`
    (bars at :math:`(t_1, \\bar y)`). Strong order 1.0 for commutative noise, 0.5 otherwise;
    2 drift + 2 diffusion evaluations per step."""

    name = "heun"
    sde_types = ("stratonovich",)
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 0.5 if noise_type == "general" else 1.0

    def step(self, field, p0, t1, dw, sde_type):
        h = t1 - p0.t
        f, gdw = field.f_gdw(p0, dw)
        p1 = _Point(t1, p0.y + f * h + gdw)
        f1, gdw1 = field.f_gdw(p1, dw)
        return p0.y + 0.5 * ((f + f1) * h + gdw + gdw1)


class Midpoint(AbstractSDEScheme):
    """Explicit midpoint, Stratonovich (torchsde's default for Stratonovich SDEs):
    :math:`\\bar y = y_0 + \\tfrac12(f h + g\\Delta W)`, :math:`y_1 = y_0 + \\bar f h +
    \\bar g\\Delta W` (bars at :math:`(t_0 + h/2, \\bar y)`). Strong order 1.0 for commutative
    noise, 0.5 otherwise; 2 drift + 2 diffusion evaluations per step."""

    name = "midpoint"
    sde_types = ("stratonovich",)
    noise_types = _NOISE_TYPES

    def strong_order(self, noise_type: str) -> float:
        return 0.5 if noise_type == "general" else 1.0

    def step(self, field, p0, t1, dw, sde_type):
        h = t1 - p0.t
        f, gdw = field.f_gdw(p0, dw)
        pm = _Point(p0.t + 0.5 * h, p0.y + 0.5 * (f * h + gdw))
        fm, gdwm = field.f_gdw(pm, dw)
        return p0.y + fm * h + gdwm


_SCHEMES: dict[str, type[AbstractSDEScheme]] = {
    "euler": EulerMaruyama,
    "milstein": Milstein,
    "euler_heun": EulerHeun,
    "heun": Heun,
    "midpoint": Midpoint,
}
#: Our option keys (opt-in extensions), removed before torchsde sees ``options``.
_OUR_OPTIONS = ("entropy", "generator", "controller", "estimate_error", "max_steps", "throw")


def _scaled_error(
    y_full: torch.Tensor, y_half: torch.Tensor, rtol: float, atol: float
) -> torch.Tensor:
    """RMS of the step-doubling difference scaled by ``atol + rtol * max(|.|)``; zero-safe grad."""
    scale = (atol + rtol * torch.maximum(y_full.abs(), y_half.abs())).clamp_min(1e-7)
    ms = ((y_full - y_half) / scale).pow(2).mean()
    # sqrt has an infinite derivative at 0: clamp so an exactly-zero error has a zero gradient.
    tiny = torch.finfo(ms.dtype).tiny
    return torch.where(ms > 0, ms.clamp_min(tiny).sqrt(), torch.zeros_like(ms))


def _num(x: Any, name: str, positive: bool | None = None, hint: str = "") -> float:
    """A float from a number or a one-element tensor: finite, > 0 / >= 0 if ``positive`` is
    True / False (the shared validators)."""
    return check_real(name, check_tolerance(name, x, hint=hint),  # type: ignore[return-value]
                      positive=positive, hint=hint)


def _check_finite_numbers(**values: Any) -> None:
    """ValueError for a NaN or infinite step size or tolerance (a number or a tensor); the types
    are checked later (by torchsde's contract or :func:`_num`)."""
    for name, v in values.items():
        check_finite(name, v, hint="pass a finite number")


def _ts_sdeint_fn() -> Any:
    """torchsde's own ``sdeint`` (from its defining module, so that a patched ``torchsde.sdeint``
    -- as the peer-test harness does -- never routes back here)."""
    from torchsde._core.sdeint import sdeint as ts_sdeint_fn

    return ts_sdeint_fn


def _delegate_check(recorder: Any, ours: dict, method: str) -> None:
    if recorder is not None or ours:
        raise ValueError(
            f"method {method!r} is not implemented by sciml.nde (it runs in torchsde, which "
            f"records no statistics and takes none of the options {_OUR_OPTIONS}); use one of "
            f"{sorted(_SCHEMES)} with a recorder"
        )


def sdeint(
    sde: SDELike,
    y0: torch.Tensor,
    ts: Any,
    bm: Any | None = None,
    method: str | AbstractSDEScheme | None = None,
    dt: float = 1e-3,
    adaptive: bool = False,
    rtol: float = 1e-5,
    atol: float = 1e-4,
    dt_min: float = 1e-5,
    options: dict | None = None,
    names: dict | None = None,
    logqp: bool = False,
    extra: bool = False,
    extra_solver_state: Any = None,
    *,
    recorder: Recorder | None = None,
    **unused_kwargs: Any,
) -> Any:
    """Drop-in for ``torchsde.sdeint`` (0.2.6) that can record differentiable step errors (ERNSDE).

    Same signature, defaults and return values as torchsde: fixed steps of ``dt = 1e-3`` unless
    ``adaptive=True``; ``rtol = 1e-5``, ``atol = 1e-4``; the default method by SDE and noise type
    (Itô: ``srk``, or ``euler`` for general noise; Stratonovich: ``midpoint``); the default
    Brownian motion a ``torchsde.BrownianInterval`` over ``[ts[0], ts[-1]]``; ``names``,
    ``logqp``, ``f_and_g``/``g_prod``/``f_and_g_prod`` SDEs and torchsde's warnings. The inputs are
    validated by torchsde's own contract check (pinned torchsde 0.2.6), so errors are torchsde's.

    This module integrates ``euler`` (Itô), ``milstein`` (Itô and Stratonovich; ``grad_free``
    option), ``euler_heun``, ``heun`` and ``midpoint`` (Stratonovich). The other torchsde methods
    (``srk``, ``log_ode``, ``reversible_heun``; also when torchsde's default picks ``srk``) are
    handed to ``torchsde.sdeint`` and record nothing.

    Adaptive mode (step doubling, as torchsde): each attempt of size :math:`h` takes one step of
    :math:`h` and two of :math:`h/2` on the same Brownian path; the scaled error

    .. math::

        E = \\operatorname{RMS}\\Big(\\frac{y^{(h)} - y^{(h/2,h/2)}}
            {\\mathrm{atol} + \\mathrm{rtol}\\,\\max(|y^{(h)}|, |y^{(h/2,h/2)}|)}\\Big)

    (RMS over every element, batch included) decides acceptance (:math:`E \\le 1`, or
    :math:`h \\le` ``dt_min``) and feeds the PI controller; the two-half-step value is kept.
    With a :class:`~sciml.nde.Recorder`, every accepted step's :math:`E_j` is recorded *with its
    autograd graph* (step sizes detached), so ``ErrorRegularizer`` backpropagates into the drift
    and diffusion. torchsde computes the same :math:`E` but as a detached float.

    Parameters
    ----------
    sde, y0, ts, bm, method, dt, adaptive, rtol, atol, dt_min, names, logqp, extra,
    extra_solver_state
        As ``torchsde.sdeint``. ``y0`` has shape ``(batch, d)``; ``ts`` is strictly increasing;
        ``bm`` is called as ``bm(ta, tb)`` and returns ``(batch, m)``. ``method`` may also be an
        :class:`AbstractSDEScheme` instance.
    options : dict, optional
        The method's options (``grad_free`` for ``milstein``). Opt-in extensions of this module:
        ``entropy`` (int: seed of the default ``BrownianInterval``; torchsde's default ignores
        ``torch.manual_seed``), ``generator`` (a ``torch.Generator`` from which the entropy is
        drawn, one path per call), ``controller`` (a :class:`PIController`),
        ``estimate_error`` (record :math:`E_j` with fixed steps too: each step taken as two
        halves, the full step only feeding the estimate; default ``adaptive``), ``max_steps``
        (budget of attempts; default unlimited) and ``throw`` (``False``: return NaN for times
        not reached, with ``status="max_steps"``).
    recorder : Recorder, optional
        Receives an :class:`SDESolverStats`: ``nfe`` (= ``nfe_drift + nfe_diffusion``, the
        solver's own calls), accepted/rejected counts, per accepted step its start time, size and
        :math:`E_j` (empty when no error is estimated), ``entropy`` of the Brownian motion built.

    Returns
    -------
    ys : torch.Tensor, shape ``(T, batch, d)``
        With ``logqp``: ``(ys, log_ratio)``, ``log_ratio`` of shape ``(T - 1, batch)``; with
        ``extra``: also the extra solver state (``()`` for this module's methods).

    Raises
    ------
    ValueError
        As torchsde (bad noise/SDE type, shapes, method incompatible with the SDE, ``ts`` not
        increasing); a recorder or one of our options with a method run by torchsde; a NaN or
        infinite ``dt``, ``rtol``, ``atol`` or ``dt_min`` (torchsde would return NaN).
    TypeError
        If ``options`` is not a dict or ``method`` has the wrong type.
    RuntimeError
        If the state becomes non-finite, or ``max_steps`` runs out with ``throw`` true.

    Examples
    --------
    >>> import torch
    >>> from sciml.nde import Recorder, sdeint
    >>> class OU:
    ...     noise_type, sde_type = "diagonal", "ito"
    ...     def f(self, t, y): return -y
    ...     def g(self, t, y): return 0.3 * torch.ones_like(y)
    >>> rec = Recorder()
    >>> ys = sdeint(OU(), torch.ones(4, 2), torch.tensor([0.0, 1.0]), method="euler", dt=0.1,
    ...             adaptive=True, rtol=1e-3, atol=1e-3, options={"entropy": 0}, recorder=rec)
    >>> ys.shape, rec.stats.status, round(float(rec.stats.step_sizes.sum()), 6)
    (torch.Size([2, 4, 2]), 'success', 1.0)
    """
    import torchsde
    from torchsde._core import misc as ts_misc
    from torchsde._core import sdeint as ts_sdeint

    recorder = _check_recorder(recorder)
    scheme_obj: AbstractSDEScheme | None = None
    if isinstance(method, AbstractSDEScheme):
        scheme_obj, method = method, method.name
    elif method is not None and not isinstance(method, str):
        raise TypeError(
            f"method must be a name or an AbstractSDEScheme, got {type(method).__name__}"
        )
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    _check_finite_numbers(dt=dt, rtol=rtol, atol=atol, dt_min=dt_min)
    opts = {} if options is None else dict(options)
    ours = {k: opts.pop(k) for k in _OUR_OPTIONS if k in opts}
    ts_kw = {"dt": dt, "adaptive": adaptive, "rtol": rtol, "atol": atol, "dt_min": dt_min,
             "options": opts, "names": names, "logqp": logqp, "extra": extra,
             "extra_solver_state": extra_solver_state}
    if method is not None and method not in _SCHEMES and method in torchsde.settings.METHODS:
        _delegate_check(recorder, ours, method)
        return _ts_sdeint_fn()(sde, y0, ts, bm, method=method, **ts_kw, **unused_kwargs)
    ts_misc.handle_unused_kwargs(unused_kwargs, msg="`sdeint`")
    fsde, y0c, tsc, bmc, method, opts = ts_sdeint.check_contract(
        sde, y0, ts, bm, method, adaptive, opts, names, logqp
    )
    ts_misc.assert_no_grad(["ts", "dt", "rtol", "atol", "dt_min"], [tsc, dt, rtol, atol, dt_min])
    if method not in _SCHEMES:  # torchsde's default for this SDE (srk) is not ours
        _delegate_check(recorder, ours, method)
        return _ts_sdeint_fn()(sde, y0, ts, bm, method=None, **ts_kw)
    scheme = scheme_obj if scheme_obj is not None else _SCHEMES[method](**opts)
    if fsde.sde_type not in scheme.sde_types:
        raise ValueError(
            f"SDE is of type {fsde.sde_type} but method {method} only supports SDEs of type "
            f"{scheme.sde_types}."
        )
    if fsde.noise_type not in scheme.noise_types:
        raise ValueError(
            f"SDE has noise type {fsde.noise_type} but method {method} only supports noise types "
            f"{scheme.noise_types}."
        )
    dt = _num(dt, "dt", positive=True, hint="the (initial) step size")
    tol_hint = "need rtol >= 0, atol >= 0, not both 0" if adaptive else ""
    rtol = _num(rtol, "rtol", positive=False if adaptive else None, hint=tol_hint)
    atol = _num(atol, "atol", positive=False if adaptive else None, hint=tol_hint)
    dt_min = _num(dt_min, "dt_min", positive=True if adaptive else None,
                  hint="the smallest step of the adaptive stepping" if adaptive else "")
    if adaptive and rtol + atol == 0:
        raise ValueError(f"need rtol >= 0, atol >= 0, not both 0; got rtol={rtol}, atol={atol}")
    controller = ours.get("controller") or PIController()
    if not isinstance(controller, PIController):
        raise TypeError(f"options['controller'] must be a PIController, got "
                        f"{type(controller).__name__}")
    max_steps = ours.get("max_steps")
    if max_steps is not None:
        check_int("options['max_steps']", max_steps, 1, hint="the most solver steps")
    throw = bool(ours.get("throw", True))
    estimate_error = ours.get("estimate_error")
    estimate_error = adaptive if estimate_error is None else bool(estimate_error)

    t_start, t_end = float(tsc[0]), float(tsc[-1])
    entropy = ours.get("entropy")
    generator = ours.get("generator")
    if entropy is not None and generator is not None:
        raise ValueError("pass options['entropy'] or options['generator'], not both")
    if (entropy is not None or generator is not None) and bm is not None:
        raise ValueError("options['entropy'] / options['generator'] seed the default Brownian "
                         "motion: do not pass them with bm")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"options['generator'] must be a torch.Generator, got "
                            f"{type(generator).__name__}")
        entropy = int(torch.randint(0, 2**31 - 1, (), generator=generator))
    if entropy is not None:
        entropy = check_int("options['entropy']", entropy, 0,
                            hint="the seed of the default Brownian motion")
        bmc = torchsde.BrownianInterval(
            t0=t_start, t1=t_end, size=tuple(bmc.shape), dtype=y0c.dtype, device=y0c.device,
            entropy=entropy, levy_area_approximation=bmc.levy_area_approximation)

    base = getattr(fsde, "_base_sde", sde)
    field = _Field(fsde, base)
    sde_type = fsde.sde_type

    def dw(ta: float, tb: float) -> torch.Tensor:
        return bmc(ta, tb)

    times: list[float] = []
    steps: list[float] = []
    errors: list[torch.Tensor] = []
    ys: list[torch.Tensor] = [y0c]
    out_times = tsc.tolist()
    next_out = 1
    n_acc = n_rej = 0
    status = "success"
    p = _Point(t_start, y0c)
    h = dt
    prev_ratio: float | None = None
    fixed = not adaptive
    eps_t = 1e-12 * max(1.0, abs(t_end))

    while t_end - p.t > eps_t:
        t = p.t
        if max_steps is not None and n_acc + n_rej >= max_steps:
            if throw:
                raise RuntimeError(
                    f"sdeint: max_steps={max_steps} step attempts reached at t={t:.6g} "
                    f"(end {t_end:.6g}); raise it or the tolerances, or pass throw=False"
                )
            status = "max_steps"
            break
        t1 = t_end if t + h >= t_end - eps_t else t + h
        if fixed and not estimate_error:
            y1 = scheme.step(field, p, t1, dw(t, t1), sde_type)
            err = None
        else:
            # Query order as torchsde's (full interval, then halves): a BrownianInterval's sample
            # depends on the order in which it is split, not only on its entropy.
            y_full = scheme.step(field, p, t1, dw(t, t1), sde_type)
            tm = 0.5 * (t + t1)
            y_mid = scheme.step(field, p, tm, dw(t, tm), sde_type)
            y1 = scheme.step(field, _Point(tm, y_mid), t1, dw(tm, t1), sde_type)
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
            if not bool(torch.isfinite(y1.detach()).all()):
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
                    ys.append(p.y + w * (y1 - p.y))
                next_out += 1
            p = _Point(t1, y1)
        else:
            n_rej += 1
        if not fixed:
            h = h_next

    while len(ys) < len(out_times):
        ys.append(torch.full_like(y0c, float("nan")))
    if recorder is not None:
        recorder._record(SDESolverStats(
            method=scheme.name,
            nfe=field.nfe_f + field.nfe_g,
            n_accepted=n_acc,
            n_rejected=n_rej,
            times=torch.tensor(times, dtype=torch.float64),
            step_sizes=torch.tensor(steps, dtype=torch.float64, device=y0c.device),
            step_errors=torch.stack(errors) if errors else y0c.new_zeros(0),
            stiffness=None,
            status=status,
            differentiable=torch.is_grad_enabled(),
            nfe_drift=field.nfe_f,
            nfe_diffusion=field.nfe_g,
            entropy=entropy,
        ))
    return ts_sdeint.parse_return(y0c, torch.stack(ys, dim=0), (), extra, logqp)


def sdeint_adjoint(
    sde: Any,
    y0: torch.Tensor,
    ts: Any,
    bm: Any | None = None,
    method: str | AbstractSDEScheme | None = None,
    adjoint_method: str | None = None,
    dt: float = 1e-3,
    adaptive: bool = False,
    adjoint_adaptive: bool = False,
    rtol: float = 1e-5,
    adjoint_rtol: float = 1e-5,
    atol: float = 1e-4,
    adjoint_atol: float = 1e-4,
    dt_min: float = 1e-5,
    options: dict | None = None,
    adjoint_options: dict | None = None,
    adjoint_params: Any = None,
    names: dict | None = None,
    logqp: bool = False,
    extra: bool = False,
    extra_solver_state: Any = None,
    *,
    recorder: Recorder | None = None,
    **unused_kwargs: Any,
) -> Any:
    """``torchsde.sdeint_adjoint``'s signature, with gradients by differentiating the solver.

    For this module's methods the solve is :func:`sdeint` and gradients are obtained by
    backpropagation through its steps: the *exact* gradient of the computed (discrete) solution,
    which torchsde's stochastic adjoint approximates to the order of the method, at a memory cost
    that grows with the number of steps (the continuous stochastic adjoint of Li et al. 2020 is
    not implemented). Because the graph exists, the error regularizer works as with
    :func:`sdeint`. The ``adjoint_*`` arguments are validated and otherwise unused. Methods run
    by torchsde (``srk``, ``reversible_heun``, ...) go to ``torchsde.sdeint_adjoint``.

    Raises
    ------
    ValueError
        If ``sde`` is not an ``nn.Module`` and ``adjoint_params`` is not given (as torchsde); as
        :func:`sdeint`.
    """
    import torchsde

    _check_finite_numbers(adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol)
    if adjoint_params is None and not isinstance(sde, torch.nn.Module):
        raise ValueError(
            "`sde` must be an instance of nn.Module to specify the adjoint parameters; "
            "alternatively they can be specified explicitly via the `adjoint_params` argument. "
            "If there are no parameters then it is allowable to set `adjoint_params=()`."
        )
    name = method.name if isinstance(method, AbstractSDEScheme) else method
    if name is not None and name not in _SCHEMES and name in torchsde.settings.METHODS:
        _delegate_check(recorder, {}, name)
        from torchsde._core.adjoint import sdeint_adjoint as ts_sdeint_adjoint

        return ts_sdeint_adjoint(
            sde, y0, ts, bm, method=method, adjoint_method=adjoint_method, dt=dt,
            adaptive=adaptive, adjoint_adaptive=adjoint_adaptive, rtol=rtol,
            adjoint_rtol=adjoint_rtol, atol=atol, adjoint_atol=adjoint_atol, dt_min=dt_min,
            options=options, adjoint_options=adjoint_options, adjoint_params=adjoint_params,
            names=names, logqp=logqp, extra=extra, extra_solver_state=extra_solver_state,
            **unused_kwargs)
    if adjoint_method is not None and adjoint_method not in torchsde.settings.METHODS:
        raise ValueError(f"Expected adjoint_method in {torchsde.settings.METHODS}, but found "
                         f"{adjoint_method}.")
    return sdeint(sde, y0, ts, bm, method=method, dt=dt, adaptive=adaptive, rtol=rtol, atol=atol,
                  dt_min=dt_min, options=options, names=names, logqp=logqp, extra=extra,
                  extra_solver_state=extra_solver_state, recorder=recorder, **unused_kwargs)
