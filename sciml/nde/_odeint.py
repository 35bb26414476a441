r"""Adaptive explicit Runge-Kutta integration that records the solver's internal heuristics.

:func:`odeint` follows torchdiffeq's calling convention and reproduces its ``dopri5`` step
sequence exactly (same initial step, controller and dense output), but also returns a
:class:`~sciml.nde.SolverStats` holding every accepted step's scaled error estimate and stiffness
estimate *with their autograd graph*, which the solver regularizers of Pal et al. (ICML 2021)
penalize. :func:`local_step` takes the single extra step of the local variant (Pal et al.,
ICML 2023), which also works when the main solve uses an adjoint method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sciml_inverse import check_tolerance

from ._stats import SolverStats
from ._tableaus import ButcherTableau, _tensors, get_tableau

__all__ = ["odeint", "local_step", "sample_time", "insert_time"]

State = Tensor | tuple[Tensor, ...]

# Step-size controller constants of torchdiffeq's RK solvers (and Hairer & Wanner I, II.4).
_SAFETY, _IFACTOR, _DFACTOR = 0.9, 10.0, 0.2


# ---------------------------------------------------------------------------------------------
# input normalization
# ---------------------------------------------------------------------------------------------
class _Problem:
    """A flat-state view of ``func`` / ``y0``: the solver only sees 1-D tensors."""

    def __init__(self, func: Callable, y0: State, reverse: bool) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable as func(t, y), got {type(func).__name__}")
        if isinstance(y0, Tensor):
            tensors, self.is_tuple = (y0,), False
        elif isinstance(y0, tuple) and y0 and all(isinstance(v, Tensor) for v in y0):
            tensors, self.is_tuple = y0, True
        else:
            raise TypeError("y0 must be a tensor or a non-empty tuple of tensors, got "
                            f"{type(y0).__name__}")
        dt0 = tensors[0].dtype
        if not all(v.is_floating_point() for v in tensors):
            raise TypeError("y0 must be floating point (complex and integer states are not "
                            "supported); cast it with .double() or .float()")
        if any(v.dtype != dt0 or v.device != tensors[0].device for v in tensors):
            raise TypeError("all tensors of a tuple y0 must share one dtype and device")
        self.func = func
        self.shapes = [v.shape for v in tensors]
        self.sizes = [v.numel() for v in tensors]
        self.dtype, self.device = dt0, tensors[0].device
        self.sign = -1.0 if reverse else 1.0
        self.y0 = torch.cat([v.reshape(-1) for v in tensors]) if self.is_tuple \
            else y0.reshape(-1)
        if not bool(torch.isfinite(self.y0).all()):
            raise ValueError("y0 contains NaN or infinite values; the solve cannot start")
        self.n = self.y0.numel()
        if self.n == 0:
            raise ValueError(f"y0 is empty (shapes {[tuple(s) for s in self.shapes]}): there is "
                             f"nothing to integrate; pass a state with at least one element")
        self.nfe = 0
        self._checked = False

    def unflatten(self, y: Tensor) -> State:
        """``(*lead, n)`` -> the user's structure with leading dims ``lead``."""
        lead = y.shape[:-1]
        if not self.is_tuple:
            return y.reshape(*lead, *self.shapes[0])
        parts = torch.split(y, self.sizes, dim=-1)
        return tuple(p.reshape(*lead, *s) for p, s in zip(parts, self.shapes, strict=True))

    def __call__(self, s: float, y: Tensor) -> Tensor:
        """The vector field at internal time ``s`` (``-t`` when integrating backwards)."""
        self.nfe += 1
        t = torch.tensor(self.sign * s, dtype=self.dtype, device=self.device)
        if self.is_tuple:
            out = self.func(t, self.unflatten(y))
            if not isinstance(out, tuple | list) or len(out) != len(self.shapes):
                raise ValueError(f"func must return a tuple of {len(self.shapes)} tensors for a "
                                 "tuple state")
            if not self._checked:
                for o, sh in zip(out, self.shapes, strict=True):
                    if o.shape != sh:
                        raise ValueError(f"func returned shape {tuple(o.shape)} for a state "
                                         f"component of shape {tuple(sh)}")
                self._checked = True
            f = torch.cat([o.reshape(-1) for o in out])
        else:
            out = self.func(t, y.view(self.shapes[0]))
            if not self._checked:
                if not isinstance(out, Tensor) or out.shape != self.shapes[0]:
                    got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise ValueError(f"func(t, y) must return a tensor of the state's shape "
                                     f"{tuple(self.shapes[0])}, got {got}")
                self._checked = True
            f = out.reshape(-1)
        return f if self.sign > 0 else -f

    def norm(self, x: Tensor) -> Tensor:
        """RMS norm (torchdiffeq's default); max of per-component RMS norms for tuple states."""
        if not self.is_tuple:
            return torch.linalg.vector_norm(x) / math.sqrt(self.n)
        parts = torch.split(x, self.sizes)
        return torch.stack([torch.linalg.vector_norm(p) / math.sqrt(p.numel())
                            for p in parts]).max()


def _check_times(t: Tensor) -> tuple[list[float], bool]:
    if not isinstance(t, Tensor) or not t.is_floating_point() or t.ndim != 1 or t.numel() < 1:
        raise TypeError("t must be a 1-D floating-point tensor of output times (first = initial "
                        "time)")
    if t.requires_grad:
        raise ValueError("t must not require grad: output times are treated as constants; pass "
                         "t.detach()")
    ts = t.detach().double().tolist()
    if not all(math.isfinite(v) for v in ts):
        raise ValueError("t contains NaN or infinite values")
    reverse = len(ts) > 1 and ts[1] < ts[0]
    inc = [b > a for a, b in zip(ts[:-1], ts[1:], strict=True)]
    if not (all(inc) or not any(inc)) or any(b == a for a, b in zip(ts[:-1], ts[1:],
                                                                    strict=True)):
        raise ValueError("t must be strictly increasing or strictly decreasing (no repeated "
                         f"times), got {ts[:8]}{' ...' if len(ts) > 8 else ''}")
    return ([-v for v in ts] if reverse else ts), reverse


def _check_tols(rtol: float, atol: float) -> tuple[float, float]:
    for nm, v in (("rtol", rtol), ("atol", atol)):
        check_tolerance(nm, v)  # type, finiteness (shared validator)
        if not float(v) >= 0.0:
            raise ValueError(f"{nm} must be >= 0, got {float(v)}")
    if float(rtol) == 0.0 and float(atol) == 0.0:
        raise ValueError("rtol and atol cannot both be 0")
    return float(rtol), float(atol)


# ---------------------------------------------------------------------------------------------
# the Runge-Kutta step
# ---------------------------------------------------------------------------------------------
class _Step:
    """Result of one RK step attempt."""

    __slots__ = ("y1", "k", "err", "g_i", "g_j")

    def __init__(self, y1: Tensor, k: Tensor, err: Tensor | None, g_i: Tensor | None,
                 g_j: Tensor | None) -> None:
        self.y1, self.k, self.err, self.g_i, self.g_j = y1, k, err, g_i, g_j


def _rk_step(prob: _Problem, tab: ButcherTableau, coef: dict, s0: float, dt: float, y0: Tensor,
             f0: Tensor) -> _Step:
    ks = [f0]
    s1 = s0 + dt
    stiff = tab.stiffness_stages
    g_i = g_j = None
    g = y0
    for i in range(1, tab.n_stages):
        k = torch.stack(ks, dim=-1)
        g = torch.addmv(y0, k, coef["a"][i] * dt)
        ci = tab.c[i]
        ks.append(prob(s1 if ci == 1.0 else s0 + ci * dt, g))
        if stiff is not None:
            if i == stiff[0]:
                g_i = g
            if i == stiff[1]:
                g_j = g
    k = torch.stack(ks, dim=-1)
    y1 = g if tab.fsal else torch.addmv(y0, k, coef["b"] * dt)
    err = None if coef["error"] is None else torch.mv(k, coef["error"] * dt)
    if stiff is not None and stiff[0] == 0:
        g_i = y0
    return _Step(y1, k, err, g_i, g_j)


def _error_ratio(prob: _Problem, err: Tensor, y0: Tensor, y1: Tensor, rtol: float,
                 atol: float) -> Tensor:
    tol = atol + rtol * torch.maximum(y0.abs(), y1.abs())
    return prob.norm(err / tol)


def _stiffness(tab: ButcherTableau, st: _Step) -> Tensor:
    i, j = tab.stiffness_stages  # type: ignore[misc]
    num = torch.linalg.vector_norm(st.k[:, j] - st.k[:, i])
    den = torch.linalg.vector_norm(st.g_j - st.g_i)  # type: ignore[operator]
    pos = den > 0
    lam = torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)),
                      torch.zeros_like(num))
    return lam / tab.stability_size  # type: ignore[operator]


@torch.no_grad()
def _initial_step(prob: _Problem, s0: float, y0: Tensor, f0: Tensor, order: int, rtol: float,
                  atol: float) -> float:
    """Hairer, Norsett & Wanner I, II.4 (the arithmetic of torchdiffeq's ``_select_initial_step``,
    so both pick the same first step)."""
    scale = atol + y0.abs() * rtol
    d0 = prob.norm(y0 / scale)
    d1 = prob.norm(f0 / scale)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = torch.tensor(1e-6, dtype=y0.dtype, device=y0.device)
    else:
        h0 = 0.01 * d0 / d1
    f1 = prob(s0 + float(h0), y0 + h0 * f0)
    d2 = prob.norm((f1 - f0) / scale) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, float(h0) * 1e-3)
    else:
        h1 = float((0.01 / max(d1, d2)) ** (1.0 / order))
    return min(100 * float(h0), h1)


def _next_step(dt: float, ratio: float, order: int) -> float:
    if ratio == 0.0:
        return dt * _IFACTOR
    dfactor = 1.0 if ratio < 1.0 else _DFACTOR
    return dt * min(_IFACTOR, max(_SAFETY / ratio ** (1.0 / order), dfactor))


class _Dense:
    """Quartic dense output on the last accepted step (fitted lazily, only when an output time
    falls inside the step)."""

    def __init__(self, tab_mid: Tensor | None) -> None:
        self.mid = tab_mid
        self.coeffs: list[Tensor] | None = None

    def set(self, s0: float, s1: float, y0: Tensor, y1: Tensor, k: Tensor) -> None:
        self.s0, self.s1, self.y0, self.y1, self.k = s0, s1, y0, y1, k
        self.coeffs = None

    def __call__(self, s: float) -> Tensor:
        if s == self.s1:
            return self.y1
        if self.coeffs is None:
            dt = self.s1 - self.s0
            y0, y1, k = self.y0, self.y1, self.k
            ymid = torch.addmv(y0, k, self.mid * dt)  # type: ignore[operator]
            f0, f1 = k[:, 0], k[:, -1]
            a = 2 * dt * (f1 - f0) - 8 * (y1 + y0) + 16 * ymid
            b = dt * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * ymid
            c = dt * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * ymid
            self.coeffs = [a, b, c, dt * f0, y0]
        x = (s - self.s0) / (self.s1 - self.s0)
        a, b, c, d, e = self.coeffs
        return e + x * (d + x * (c + x * (b + x * a)))


# ---------------------------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------------------------
def odeint(func: Callable, y0: State, t: Tensor, *, method: str | ButcherTableau = "dopri5",
           rtol: float = 1e-7, atol: float = 1e-9, first_step: float | None = None,
           step_size: float | None = None, max_steps: int = 100_000,
           record_stiffness: bool = True, throw: bool = True) -> tuple[State, SolverStats]:
    r"""Solve :math:`\dot y = f(t, y)`, :math:`y(t_0) = y_0` and record the solver's heuristics.

    Drop-in for ``torchdiffeq.odeint`` (same ``func(t, y)`` convention, tensor or tuple state,
    increasing or decreasing ``t``), returning ``(solution, stats)``. With ``method="dopri5"``
    the sequence of steps, the NFE and the solution equal torchdiffeq's (initial step by
    Hairer-Norsett-Wanner, controller :math:`h \leftarrow h\min(10, \max(0.9E^{-1/p}, 0.2))` with
    ``0.2`` replaced by 1 after accepted steps, quartic dense output).

    For each accepted step :math:`j` (size :math:`h_j`, from :math:`y_j` to :math:`y_{j+1}`) the
    stats hold, with their autograd graph,

    .. math::
        E_j = \operatorname{RMS}\Big(\frac{y_{j+1} - \tilde y_{j+1}}
              {\mathrm{atol} + \mathrm{rtol}\max(|y_j|, |y_{j+1}|)}\Big), \qquad
        S_j = \frac{1}{\rho}\,\frac{\|k_7 - k_6\|_2}{\|g_7 - g_6\|_2},

    the error ratio the controller compares with 1 (RMS over *all* elements, batch included) and
    Shampine's estimate of the dominant eigenvalue modulus of :math:`\partial f/\partial y` from
    the two last stages (both at :math:`c = 1` for dopri5/tsit5; ``g`` are stage inputs,
    :math:`g_7 = y_{j+1}`), divided by the stability-region size :math:`\rho` on the negative real
    axis (dopri5 3.3066, tsit5 3.5068, bosh3 2.5127), so :math:`S_j h_j \gtrsim 1` flags
    stiffness. Step sizes and times are detached (as torchdiffeq's controller, which runs under
    ``no_grad``); gradients reach the parameters of ``func`` through the stages.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` with ``t`` a 0-d tensor of the state's dtype; returns ``dy/dt`` of the
        state's shape (a tuple for a tuple state).
    y0 : Tensor or tuple of Tensor
        Initial state of any shape (a batch is just part of the state).
    t : Tensor, shape ``(T,)``
        Output times, strictly monotone; ``t[0]`` is the initial time. Must not require grad.
    method : {"dopri5", "tsit5", "bosh3", "euler", "midpoint", "rk4"} or ButcherTableau
        The last three (and any tableau without an embedded pair) need ``step_size``.
    rtol, atol : float
        Relative and absolute tolerances.
    first_step : float, optional
        Initial step size (default: automatic, as torchdiffeq).
    step_size : float, optional
        Fixed-step mode: each interval ``[t_i, t_{i+1}]`` is split into
        ``ceil(|t_{i+1} - t_i| / step_size)`` equal steps (no interpolation, no rejection). Errors
        and stiffness are still recorded when the scheme has them.
    max_steps : int, default 100000
        Budget of step attempts for the whole solve.
    record_stiffness : bool, default True
        Compute :math:`S_j` (a few vector ops per step); ``stats.stiffness`` is ``None`` when
        false or when the scheme has no stiffness stages.
    throw : bool, default True
        On exhausting ``max_steps``, on step-size underflow or on a non-finite state, raise a
        ``RuntimeError``; if false, return with ``stats.status`` set to ``"max_steps"``,
        ``"dt_underflow"`` or ``"nonfinite"`` and NaN at the output times not reached.

    Returns
    -------
    solution : Tensor, shape ``(T, *y0.shape)`` (or a tuple of such)
    stats : SolverStats
        ``nfe`` counts every call of ``func`` (dopri5: :math:`2 + 6 \times` attempts).

    Raises
    ------
    TypeError
        If ``func`` is not callable, ``y0`` / ``t`` / tolerances have the wrong type.
    ValueError
        If ``t`` is not strictly monotone or requires grad, ``y0`` is not finite, tolerances are
        negative, ``max_steps``/``step_size``/``first_step`` are not positive, an adaptive solve
        is asked of a scheme without an error estimate, or ``func`` returns the wrong shape.
    RuntimeError
        With ``throw=True``: ``max_steps`` exhausted, step-size underflow or non-finite state.

    References
    ----------
    A. Pal, Y. Ma, V. Shah, C. Rackauckas, "Opening the Blackbox: Accelerating Neural
    Differential Equations by Regularizing Internal Solver Heuristics", ICML 2021.
    E. Hairer, S. P. Norsett, G. Wanner, Solving ODEs I (II.4), and Hairer & Wanner, Solving
    ODEs II (IV.2: stiffness detection).

    Examples
    --------
    >>> import torch
    >>> from sciml.nde import odeint
    >>> y, stats = odeint(lambda t, y: -y, torch.tensor([1.0], dtype=torch.float64),
    ...                   torch.tensor([0.0, 1.0], dtype=torch.float64))
    >>> round(float(y[-1]), 6), stats.nfe
    (0.367879, 50)
    """
    tab = get_tableau(method)
    ts, reverse = _check_times(t)
    rtol, atol = _check_tols(rtol, atol)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
    for nm, v in (("step_size", step_size), ("first_step", first_step)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{nm} must be a positive finite float, got {v!r}")
    if step_size is None and not tab.adaptive:
        raise ValueError(f"method {tab.name!r} has no embedded error estimate: pass step_size= "
                         "for fixed steps, or use 'dopri5', 'tsit5' or 'bosh3'")
    if step_size is None and tab.mid is None:
        raise ValueError(f"tableau {tab.name!r} has no dense-output weights (mid): adaptive "
                         "solves need them to interpolate to t; pass step_size=")
    prob = _Problem(func, y0, reverse)
    coef = _tensors(tab, prob.dtype, prob.device)
    want_stiff = record_stiffness and tab.stiffness_stages is not None
    rec_t: list[float] = []
    rec_dt: list[float] = []
    rec_e: list[Tensor] = []
    rec_s: list[Tensor] = []
    n_acc = n_rej = 0
    status = "success"

    y = prob.y0
    s = ts[0]
    out: list[Tensor] = [y]
    f = prob(s, y)

    def _fail(msg: str) -> None:
        if throw:
            raise RuntimeError(msg + " (pass throw=False to get the partial solution and "
                               "stats.status instead)")

    if step_size is not None:
        for s_next in ts[1:]:
            n = max(1, math.ceil((s_next - s) / step_size - 1e-9))
            h = (s_next - s) / n
            for m in range(n):
                if n_acc >= max_steps:
                    status = "max_steps"
                    break
                s_end = s_next if m == n - 1 else s + h
                st = _rk_step(prob, tab, coef, s, h, y, f)
                if st.err is not None:
                    rec_e.append(_error_ratio(prob, st.err, y, st.y1, rtol, atol))
                if want_stiff:
                    rec_s.append(_stiffness(tab, st))
                rec_t.append(s)
                rec_dt.append(h)
                n_acc += 1
                y, s = st.y1, s_end
                f = st.k[:, -1] if tab.fsal else prob(s, y)
            if status != "success":
                _fail(f"max_steps={max_steps} exhausted at t={prob.sign * s:.6g}")
                break
            out.append(y)
    else:
        dt = first_step if first_step is not None else _initial_step(
            prob, s, y, f, tab.order, rtol, atol)
        dense = _Dense(coef["mid"])
        dense.set(s, s, y, y, torch.stack([f], dim=-1))
        for s_out in ts[1:]:
            while s_out > dense.s1:
                if n_acc + n_rej >= max_steps:
                    status = "max_steps"
                    _fail(f"max_steps={max_steps} exhausted at t={prob.sign * s:.6g} "
                          "(the dynamics may be stiff; raise max_steps or the tolerances)")
                    break
                s1 = s + dt
                if not s1 > s:
                    status = "dt_underflow"
                    _fail(f"step size underflow (dt={dt:.3g}) at t={prob.sign * s:.6g}")
                    break
                st = _rk_step(prob, tab, coef, s, dt, y, f)
                ratio = _error_ratio(prob, st.err, y, st.y1, rtol, atol)  # type: ignore[arg-type]
                r = float(ratio.detach())
                if not math.isfinite(r):
                    status = "nonfinite"
                    _fail(f"the state or its derivative became non-finite at "
                          f"t={prob.sign * s:.6g} (NaN/inf in func or a blow-up)")
                    break
                if r <= 1.0:
                    rec_t.append(s)
                    rec_dt.append(dt)
                    rec_e.append(ratio)
                    if want_stiff:
                        rec_s.append(_stiffness(tab, st))
                    n_acc += 1
                    dense.set(s, s1, y, st.y1, st.k)
                    y, s = st.y1, s1
                    f = st.k[:, -1] if tab.fsal else prob(s, y)
                else:
                    n_rej += 1
                dt = _next_step(dt, r, tab.order)
            if status != "success":
                break
            out.append(dense(s_out))
    while len(out) < len(ts):
        out.append(torch.full_like(prob.y0, float("nan")))
    sol = prob.unflatten(torch.stack(out))
    stats = SolverStats(
        method=tab.name, nfe=prob.nfe, n_accepted=n_acc, n_rejected=n_rej,
        times=torch.tensor([prob.sign * v for v in rec_t], dtype=torch.float64),
        step_sizes=torch.tensor([prob.sign * v for v in rec_dt], dtype=torch.float64),
        step_errors=torch.stack(rec_e) if rec_e else prob.y0.new_zeros(0),
        stiffness=(torch.stack(rec_s) if rec_s else prob.y0.new_zeros(0)) if want_stiff
        else None,
        status=status)
    return sol, stats


def local_step(func: Callable, t: float | Tensor, y: State, *,
               method: str | ButcherTableau = "dopri5", rtol: float = 1e-7, atol: float = 1e-9,
               dt: float | None = None, record_stiffness: bool = True) -> SolverStats:
    r"""One differentiable step from :math:`(t, y)`: the local regularization of Pal et al. 2023.

    Picks the automatic initial step (as :func:`odeint`; detached, 2 NFE incl. :math:`f(t, y)`)
    unless ``dt`` is given, takes one step of ``method`` (dopri5: 6 NFE) and returns its
    error ratio :math:`E` and stiffness :math:`S` as a one-step :class:`SolverStats` (recorded
    whether or not a controller would accept the step), differentiable w.r.t. the parameters of
    ``func`` and ``y``. Feed it to :class:`~sciml.nde.ErrorRegularizer`; with ``y`` taken from an
    adjoint solve (e.g. ``torchdiffeq.odeint_adjoint`` evaluated at a random time, see
    :func:`sample_time` and :func:`insert_time`) the penalty trains under the adjoint.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` as for :func:`odeint`.
    t : float or 0-d Tensor
        Start time :math:`t_r`.
    y : Tensor or tuple of Tensor
        State at :math:`t_r`.
    method : str or ButcherTableau, default "dopri5"
        An adaptive scheme.
    rtol, atol : float
        Tolerances of the error ratio (use the main solve's).
    dt : float, optional
        Step size (default automatic). Negative to step backwards.
    record_stiffness : bool, default True

    Returns
    -------
    SolverStats
        ``n_accepted = 1``; ``times``, ``step_sizes``, ``step_errors`` (and ``stiffness``) of
        shape ``(1,)``.

    Raises
    ------
    TypeError, ValueError
        As :func:`odeint`; also if ``method`` has no error estimate or ``dt`` is 0/non-finite.
    """
    tab = get_tableau(method)
    if not tab.adaptive:
        raise ValueError(f"method {tab.name!r} has no embedded error estimate; use 'dopri5', "
                         "'tsit5' or 'bosh3'")
    rtol, atol = _check_tols(rtol, atol)
    if isinstance(t, Tensor):
        if t.numel() != 1:
            raise TypeError("t must be a scalar")
        t = float(t.detach())
    if not isinstance(t, int | float) or not math.isfinite(t):
        raise TypeError(f"t must be a finite float or a 0-d tensor, got {t!r}")
    if dt is not None and not (isinstance(dt, int | float) and math.isfinite(dt) and dt != 0):
        raise ValueError(f"dt must be a non-zero finite float, got {dt!r}")
    reverse = dt is not None and dt < 0
    prob = _Problem(func, y, reverse)
    coef = _tensors(tab, prob.dtype, prob.device)
    s = -float(t) if reverse else float(t)
    y0 = prob.y0
    f0 = prob(s, y0)
    h = abs(dt) if dt is not None else _initial_step(prob, s, y0, f0, tab.order, rtol, atol)
    st = _rk_step(prob, tab, coef, s, h, y0, f0)
    ratio = _error_ratio(prob, st.err, y0, st.y1, rtol, atol)  # type: ignore[arg-type]
    want_stiff = record_stiffness and tab.stiffness_stages is not None
    return SolverStats(
        method=tab.name, nfe=prob.nfe, n_accepted=1, n_rejected=0,
        times=torch.tensor([float(t)], dtype=torch.float64),
        step_sizes=torch.tensor([prob.sign * h], dtype=torch.float64),
        step_errors=ratio.reshape(1),
        stiffness=_stiffness(tab, st).reshape(1) if want_stiff else None)


def sample_time(t: Tensor | Sequence[float], *, generator: torch.Generator | None = None,
                stats: SolverStats | None = None) -> float:
    r"""A random time for :func:`local_step`.

    Unbiased (default): :math:`t_r \sim U[t_0, t_{T-1}]`. Biased (``stats`` given): one of the
    accepted step start times of a previous solve, uniformly.

    Raises
    ------
    ValueError
        If ``t`` has fewer than two times or ``stats`` has no accepted step.
    """
    tt = torch.as_tensor(t, dtype=torch.float64).detach().reshape(-1)
    if tt.numel() < 2:
        raise ValueError("t must hold at least two times (the interval to sample from)")
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    if stats is not None:
        if stats.n_accepted < 1 or stats.times.numel() < 1:
            raise ValueError("stats has no accepted step to sample a time from")
        i = min(int(u * stats.times.numel()), stats.times.numel() - 1)
        return float(stats.times[i])
    a, b = float(tt[0]), float(tt[-1])
    return a + u * (b - a)


def insert_time(t: Tensor, t_r: float) -> tuple[Tensor, int]:
    """``t`` with ``t_r`` inserted in order, and the index of ``t_r`` in the result.

    Use it to get the state at a random time from any solver (e.g. an adjoint one): solve on the
    returned grid, take ``sol[index]``, and drop that row from the task loss.

    Raises
    ------
    ValueError
        If ``t_r`` lies outside ``[min t, max t]`` or coincides with a time of ``t``.
    """
    if not isinstance(t, Tensor) or t.ndim != 1 or t.numel() < 2:
        raise TypeError("t must be a 1-D tensor with at least two times")
    td = t.detach()
    lo, hi = float(td.min()), float(td.max())
    if not lo <= t_r <= hi:
        raise ValueError(f"t_r={t_r} lies outside [{lo}, {hi}]")
    if bool((td == t_r).any()):
        raise ValueError(f"t_r={t_r} coincides with an output time; draw another")
    decreasing = bool(td[1] < td[0])
    idx = int((td > t_r).sum()) if decreasing else int((td < t_r).sum())
    new = torch.cat([td[:idx], td.new_tensor([t_r]), td[idx:]])
    return new, idx
