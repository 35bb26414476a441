r"""Adaptive explicit Runge-Kutta integration that records the solver's internal heuristics.

:func:`odeint` follows torchdiffeq's calling convention and reproduces its ``dopri5`` step
sequence exactly (same initial step, controller and dense output), but also returns a
:class:`~sciml.nde.SolverStats` holding every accepted step's scaled error estimate and stiffness
estimate *with their autograd graph*, which the solver regularizers of Pal et al. (ICML 2021)
penalize. :func:`local_step` takes the single extra step of the local variant (Pal et al.,
ICML 2023), which also works when the main solve uses an adjoint method.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from sciml_inverse import check_finite, check_int, check_real, check_tolerance

from ._stats import Recorder, SolverStats, _check_recorder
from ._tableaus import RK4_38, ButcherTableau, _tensors, get_tableau

__all__ = ["odeint", "odeint_adjoint", "odeint_event", "MaxStepsExceeded", "local_step",
           "sample_time", "insert_time"]

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
            raise TypeError("y0 must be floating point or complex (integer states are not "
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
            return y.reshape(tuple(lead) + tuple(self.shapes[0]))
        parts = torch.split(y, self.sizes, dim=-1)
        return tuple(p.reshape(tuple(lead) + tuple(s))
                     for p, s in zip(parts, self.shapes, strict=True))

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
    check_finite("t", t, hint="the output times must be finite")
    ts = t.detach().double().tolist()
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
             f0: Tensor, s1_eval: float | None = None) -> _Step:
    ks = [f0]
    s1 = s0 + dt if s1_eval is None else s1_eval
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
# ---------------------------------------------------------------------------------------------
# torchdiffeq-compatible entry point
# ---------------------------------------------------------------------------------------------
#: torchdiffeq 0.2.5 methods this module does not implement: ``odeint`` hands them to torchdiffeq.
_DELEGATED = ("dopri8", "fehlberg2", "adaptive_heun", "heun2", "heun3", "explicit_adams",
              "implicit_adams", "fixed_adams", "scipy_solver")
_ADAPTIVE_KEYS = frozenset({"first_step", "max_num_steps", "norm", "dtype", "step_t", "jump_t",
                            "grid_points", "safety", "ifactor", "dfactor", "throw", "step_size"})
_FIXED_KEYS = frozenset({"step_size", "grid_constructor", "interp", "norm", "dtype", "throw",
                         "max_num_steps"})


#: ``method="bosh3"`` as torchdiffeq: its dense output uses ``y0 + h k2 / 2`` at the midpoint
#: (1st order). The :data:`~sciml.nde.BOSH3` object (``method=BOSH3``) is the opt-in 3rd-order
#: cubic Hermite midpoint.
_BOSH3_TORCHDIFFEQ = dataclasses.replace(get_tableau("bosh3"), mid=(0.0, 0.5, 0.0, 0.0))


class MaxStepsExceeded(RuntimeError, AssertionError):
    """The step budget ran out. A ``RuntimeError``, and an ``AssertionError`` as torchdiffeq's."""


def _resolve_method(method: str | ButcherTableau | None) -> ButcherTableau | str:
    if method is None:
        return get_tableau("dopri5")
    if isinstance(method, str):
        if method in _DELEGATED:
            return method
        if method == "rk4":
            return RK4_38
        if method == "bosh3":
            return _BOSH3_TORCHDIFFEQ
    return get_tableau(method)


def _positive_step(name: str, h: object) -> float:
    """A step-size option (a number or a one-element tensor) as a finite float > 0."""
    if isinstance(h, Tensor):
        h = h.detach()
    hint = "a step size is a finite float > 0 (or a one-element tensor)"
    return check_real(name, check_tolerance(name, h, hint=hint),  # type: ignore[return-value]
                      positive=True, hint=hint)


def _valid_step(h: object) -> bool:
    """Whether ``h`` is a valid ``options["step_size"]`` (checked with its message in _solve)."""
    try:
        _positive_step("step_size", h)
    except (TypeError, ValueError):
        return False
    return True


def _check_options(options: dict | None, tab: ButcherTableau) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be a dict, got {type(options).__name__}")
    opts = dict(options)
    fixed = not tab.adaptive or opts.get("step_size") is not None
    known = _FIXED_KEYS if fixed else _ADAPTIVE_KEYS
    unknown = sorted(set(opts) - known)
    if unknown:
        # torchdiffeq warns about (and ignores) options its solver does not take.
        warnings.warn(f"{tab.name}: unexpected options {unknown} (ignored); known options: "
                      f"{sorted(known)}", stacklevel=3)
    dtype = opts.get("dtype")
    if dtype is not None and dtype != torch.float64:
        # torchdiffeq computes times in promote(dtype, y0's real dtype); ours always in float64
        warnings.warn(f"{tab.name}: options['dtype']={dtype} is ignored: sciml.nde computes "
                      "times in float64 (torchdiffeq would use this dtype for them); drop the "
                      "option to silence this", stacklevel=3)
    return opts


def _check_time_tensor(t: Tensor, event: bool) -> tuple[list[float], bool]:
    if not isinstance(t, Tensor) or not t.is_floating_point() or t.ndim != 1 or t.numel() < 1:
        raise TypeError("t must be a 1-D floating-point tensor of output times (first = initial "
                        "time)")
    if event:
        if t.numel() != 2:
            raise ValueError(f"We require len(t) == 2 when in event handling mode, but got "
                             f"len(t)={t.numel()}: t[0] is the initial time, t[1] only gives the "
                             "direction (as torchdiffeq)")
        ts = t.detach().double().tolist()
        reverse = len(ts) > 1 and ts[1] < ts[0]
        return [-ts[0] if reverse else ts[0]], reverse
    return _check_times(t.detach())


def _real_view(func: Callable, y0: State) -> tuple[Callable, State, list[bool] | None]:
    """Complex states as real views ``(..., 2)`` (as torchdiffeq does)."""
    parts = y0 if isinstance(y0, tuple) else (y0,)
    if not any(isinstance(p, Tensor) and p.is_complex() for p in parts):
        return func, y0, None
    flags = [p.is_complex() for p in parts]

    def to_c(v: tuple) -> tuple:
        return tuple(torch.view_as_complex(p) if c else p for p, c in zip(v, flags, strict=True))

    def to_r(v: tuple) -> tuple:
        return tuple(torch.view_as_real(p) if c else p for p, c in zip(v, flags, strict=True))

    if isinstance(y0, tuple):
        def rfunc(t: Tensor, y: tuple) -> tuple:
            return to_r(tuple(func(t, to_c(y))))
        return rfunc, to_r(y0), flags

    def rfunc1(t: Tensor, y: Tensor) -> Tensor:
        return torch.view_as_real(func(t, torch.view_as_complex(y)))
    return rfunc1, torch.view_as_real(y0), flags


def _complex_back(sol: State, flags: list[bool] | None) -> State:
    if flags is None:
        return sol
    if isinstance(sol, tuple):
        return tuple(torch.view_as_complex(p.contiguous()) if c else p
                     for p, c in zip(sol, flags, strict=True))
    return torch.view_as_complex(sol.contiguous())


def _sorted_special(vals: object, s0: float, sign: float) -> list[float]:
    if vals is None:
        return []
    v = torch.as_tensor(vals, dtype=torch.float64).detach().reshape(-1).tolist()
    return sorted(x for x in (sign * u for u in v) if x > s0)


def _solve(prob: _Problem, tab: ButcherTableau, ts: list[float], rtol: float, atol: float,
           opts: dict, want_stiff: bool, event: Callable | None, y_start: Tensor
           ) -> tuple[list[Tensor], dict, float | None]:
    """Integrate ``prob`` over ``ts`` (internal, increasing). Returns the flat outputs, the record
    and the (internal) event time."""
    coef = _tensors(tab, prob.dtype, prob.device)
    rec: dict = {"t": [], "dt": [], "e": [], "s": [], "acc": 0, "rej": 0, "status": "success"}
    throw = bool(opts.get("throw", True))
    max_steps = opts.get("max_num_steps", 2 ** 31 - 1)
    if isinstance(max_steps, Tensor):
        max_steps = int(max_steps)
    check_int("options['max_num_steps']", max_steps, 1,
              hint="the budget of step attempts per output interval")
    step_size = opts.get("step_size")
    fixed = not tab.adaptive or step_size is not None
    if step_size is not None:
        _positive_step("options['step_size']", step_size)
    first_step = opts.get("first_step")
    if first_step is not None:
        _positive_step("options['first_step']", first_step)

    def fail(status: str, msg: str) -> None:
        rec["status"] = status
        if throw:
            cls = MaxStepsExceeded if status == "max_steps" else RuntimeError
            raise cls(msg + " (pass options={'throw': False} to get the partial solution and "
                      "the recorder's stats.status instead)")

    def record(s: float, h: float, st: _Step, ratio: Tensor | None) -> None:
        rec["t"].append(s)
        rec["dt"].append(h)
        if ratio is not None:
            rec["e"].append(ratio)
        if want_stiff:
            rec["s"].append(_stiffness(tab, st))
        rec["acc"] += 1

    y, s = y_start, ts[0]
    out: list[Tensor] = [y]
    ev_sign = None
    if event is not None:
        ev_sign = event(s, y)
    event_s = None

    def bisect(lo: float, hi: float, interp: Callable) -> float:
        with torch.no_grad():
            n = max(0, math.ceil(math.log2(max((hi - lo) / max(atol, 1e-300), 1.0))))
            for _ in range(min(n, 200)):
                mid = 0.5 * (lo + hi)
                if event(mid, interp(mid)) == ev_sign:  # type: ignore[misc]
                    lo = mid
                else:
                    hi = mid
        return 0.5 * (lo + hi)

    if fixed:
        if event is not None and step_size is None:
            raise ValueError("event_fn with a fixed-grid method needs options={'step_size': h}")
        s_end = ts[-1] if event is None else math.inf
        if opts.get("grid_constructor") is not None:
            raise ValueError("options['grid_constructor'] is not supported; pass step_size")
        if step_size is not None and event is None:
            h = float(step_size)
            niters = math.ceil((s_end - ts[0]) / h + 1)
            grid = [ts[0] + i * h for i in range(niters)]
            grid[-1] = s_end
        elif step_size is not None:
            grid = None
        else:
            grid = list(ts)
        interp_kind = opts.get("interp", "linear")
        if interp_kind not in ("linear", "cubic"):
            raise ValueError(f"options['interp'] must be 'linear' or 'cubic', got {interp_kind!r}")
        j = 1
        i = 0
        while True:
            if grid is not None:
                if i + 1 >= len(grid):
                    break
                s0, s1 = grid[i], grid[i + 1]
            else:
                if rec["acc"] >= max_steps:
                    fail("max_steps", f"max_num_steps={max_steps} exhausted before the event")
                    break
                s0, s1 = ts[0] + i * float(step_size), ts[0] + (i + 1) * float(step_size)
            i += 1
            f = prob(s0, y)
            st = _rk_step(prob, tab, coef, s0, s1 - s0, y, f)
            ratio = None if st.err is None else _error_ratio(prob, st.err, y, st.y1, rtol, atol)
            record(s0, s1 - s0, st, ratio)
            y1 = st.y1

            def interp(x: float, s0=s0, s1=s1, ya=y, yb=y1, fa=f) -> Tensor:
                if interp_kind == "linear":
                    if x == s0:
                        return ya
                    if x == s1:
                        return yb
                    return ya + (x - s0) / (s1 - s0) * (yb - ya)
                # as torchdiffeq: f(t1, y1) is evaluated for each output in the step
                f1 = prob(s1, yb)
                hh = s1 - s0
                th = (x - s0) / hh
                h00 = (1 + 2 * th) * (1 - th) ** 2
                h10 = th * (1 - th) ** 2
                h01 = th ** 2 * (3 - 2 * th)
                h11 = th ** 2 * (th - 1)
                return h00 * ya + h10 * hh * fa + h01 * yb + h11 * hh * f1

            if event is not None:
                sgn = event(s1, y1)
                if sgn != ev_sign:
                    event_s = bisect(s0, s1, interp)
                    out.append(interp(event_s))
                    break
            else:
                while j < len(ts) and s1 >= ts[j]:
                    out.append(interp(ts[j]))
                    j += 1
            y = y1
            if not bool(torch.isfinite(y.detach()).all()):
                fail("nonfinite", f"the state became non-finite at t={prob.sign * s1:.6g}")
                break
        return out, rec, event_s

    # adaptive
    safety = float(opts.get("safety", _SAFETY))
    ifactor = float(opts.get("ifactor", _IFACTOR))
    dfactor = float(opts.get("dfactor", _DFACTOR))
    step_t = _sorted_special(opts.get("step_t", opts.get("grid_points")), ts[0], prob.sign)
    jump_t = _sorted_special(opts.get("jump_t"), ts[0], prob.sign)
    if set(step_t) & set(jump_t):
        raise ValueError("options['step_t'] and options['jump_t'] must not share a time")
    specials = sorted([(v, False) for v in step_t] + [(v, True) for v in jump_t])
    k_special = 0
    f = prob(s, y)
    dt = float(first_step) if first_step is not None else _initial_step(
        prob, s, y, f, tab.order, rtol, atol)
    dense = _Dense(coef["mid"])
    dense.set(s, s, y, y, torch.stack([f], dim=-1))
    targets = ts[1:] if event is None else [math.inf]
    for s_out in targets:
        n_attempts = 0
        while s_out > dense.s1:
            if n_attempts >= max_steps:
                fail("max_steps", f"max_num_steps exceeded ({n_attempts}>={max_steps}) at "
                     f"t={prob.sign * s:.6g} (the dynamics may be stiff; raise max_num_steps or "
                     "the tolerances)")
                break
            n_attempts += 1
            h = dt
            on_jump = False
            if k_special < len(specials) and s < specials[k_special][0] < s + h:
                h = specials[k_special][0] - s
                on_jump = specials[k_special][1]
            s1 = s + h
            if not s1 > s:
                fail("dt_underflow", f"step size underflow (dt={dt:.3g}) at t={prob.sign * s:.6g}")
                break
            st = _rk_step(prob, tab, coef, s, h, y, f,
                          s1_eval=math.nextafter(s1, -math.inf) if on_jump else None)
            ratio = _error_ratio(prob, st.err, y, st.y1, rtol, atol)  # type: ignore[arg-type]
            r = float(ratio.detach())
            if not math.isfinite(r):
                fail("nonfinite", f"the state or its derivative became non-finite at "
                     f"t={prob.sign * s:.6g} (NaN/inf in func or a blow-up)")
                break
            if r <= 1.0:
                record(s, h, st, ratio)
                dense.set(s, s1, y, st.y1, st.k)
                y_prev, s_prev = y, s
                y, s = st.y1, s1
                if k_special < len(specials) and s1 == specials[k_special][0]:
                    k_special += 1
                if on_jump:
                    f = prob(math.nextafter(s1, math.inf), y)
                else:
                    f = st.k[:, -1] if tab.fsal else prob(s, y)
                if event is not None:
                    sgn = event(s1, y)
                    if sgn != ev_sign:
                        del y_prev
                        event_s = bisect(s_prev, s1, dense)
                        dense.coeffs = None  # fitted under no_grad by the bisection
                        out.append(dense(event_s))
                        return out, rec, event_s
            else:
                rec["rej"] += 1
            dt = _next_step_opts(h, r, tab.order, safety, ifactor, dfactor)
        if rec["status"] != "success":
            break
        out.append(dense(s_out))
    return out, rec, event_s


def _next_step_opts(dt: float, ratio: float, order: int, safety: float, ifactor: float,
                    dfactor: float) -> float:
    if ratio == 0.0:
        return dt * ifactor
    dfac = 1.0 if ratio < 1.0 else dfactor
    return dt * min(ifactor, max(safety / ratio ** (1.0 / order), dfac))


def odeint(func: Callable, y0: State, t: Tensor, *, rtol: float = 1e-7, atol: float = 1e-9,
           method: str | ButcherTableau | None = None, options: dict | None = None,
           event_fn: Callable | None = None, recorder: Recorder | None = None
           ) -> State | tuple[Tensor, State]:
    r"""Solve :math:`\dot y = f(t, y)`, :math:`y(t_0) = y_0`: a drop-in for ``torchdiffeq.odeint``.

    Same signature, defaults and return value as torchdiffeq 0.2.5: the solution alone (or
    ``(event_t, solution)`` with ``event_fn``). With ``method="dopri5"`` (the default) the steps,
    the NFE and the solution equal torchdiffeq's (Hairer-Norsett-Wanner initial step, controller
    :math:`h \leftarrow h\min(10, \max(0.9E^{-1/p}, 0.2))` with ``0.2`` replaced by 1 after
    accepted steps, quartic dense output).

    The solver statistics come through an explicit :class:`~sciml.nde.Recorder`
    (``recorder=rec``; the call and its result are otherwise unchanged): for each accepted step
    :math:`j` (size :math:`h_j`, from :math:`y_j` to :math:`y_{j+1}`), with their autograd graph,

    .. math::
        E_j = \operatorname{RMS}\Big(\frac{y_{j+1} - \tilde y_{j+1}}
              {\mathrm{atol} + \mathrm{rtol}\max(|y_j|, |y_{j+1}|)}\Big), \qquad
        S_j = \frac{1}{\rho}\,\frac{\|k_7 - k_6\|_2}{\|g_7 - g_6\|_2},

    the error ratio the controller compares with 1 (RMS over *all* elements, batch included) and
    Shampine's estimate of the dominant eigenvalue modulus of :math:`\partial f/\partial y` from
    the two last stages (both at :math:`c = 1` for dopri5/tsit5; ``g`` are stage inputs),
    divided by the stability-region size :math:`\rho` on the negative real axis (dopri5 3.3066,
    tsit5 3.5068, bosh3 2.5127). Step sizes and times are detached (as torchdiffeq's controller,
    which runs under ``no_grad``); gradients reach the parameters of ``func`` through the stages.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` with ``t`` a 0-d tensor of the state's (real) dtype; returns ``dy/dt`` of
        the state's shape (a tuple for a tuple state).
    y0 : Tensor or tuple of Tensor
        Initial state of any shape (0-d included; a batch is part of the state). Complex states
        are integrated as real views, as torchdiffeq does.
    t : Tensor, shape ``(T,)``
        Output times, strictly monotone; ``t[0]`` is the initial time. May require grad
        (:math:`\partial y(t_i)/\partial t_i = f(t_i, y(t_i))`,
        :math:`\partial y(t_i)/\partial t_0 = -\Phi(t_i, t_0) f(t_0, y_0)`; costs ``T`` extra
        evaluations of ``func``). With ``event_fn`` only ``t[0]`` (and the direction of
        ``t[1]``) is used.
    rtol, atol : float
        Relative and absolute tolerances.
    method : str or ButcherTableau, optional
        ``"dopri5"`` (default), ``"tsit5"`` (Tsitouras 5(4); torchdiffeq 0.2.5 has none),
        ``"bosh3"``: adaptive; ``"euler"``, ``"midpoint"``, ``"rk4"`` (torchdiffeq's 3/8-rule
        variant): fixed grid, need ``options={"step_size": h}`` or use ``t`` as the grid. Other
        torchdiffeq methods (``dopri8``, ``adaptive_heun``, ``fehlberg2``, ``heun2``, ``heun3``,
        the Adams methods, ``scipy_solver``) are handed to ``torchdiffeq.odeint`` (no recorder).
    options : dict, optional
        torchdiffeq's keys. Adaptive: ``first_step``, ``max_num_steps`` (per output interval,
        default :math:`2^{31}-1`), ``norm`` (callable on the state's structure; default RMS, max
        over the tensors of a tuple), ``step_t`` (times to step to exactly; alias
        ``grid_points``), ``jump_t`` (discontinuities: stepped to, and ``func`` re-evaluated
        just after), ``safety``, ``ifactor``, ``dfactor``, ``dtype`` (accepted; times are
        always float64 here, and another dtype warns that it is ignored). Fixed grid:
        ``step_size`` (grid ``t0 + i*h``, last point moved to ``t[-1]``, outputs interpolated),
        ``interp`` (``"linear"`` or ``"cubic"``).
        Extensions (opt-in): ``step_size`` with an adaptive tableau runs it on the fixed grid
        (errors still recorded; with the method given by name, as in a torchdiffeq call, a
        ``UserWarning`` says so, since torchdiffeq ignores ``step_size`` there);
        ``throw=False`` returns NaN for output times not reached instead of raising, with the
        reason in ``recorder.stats.status``.
    event_fn : callable, optional
        ``event_fn(t, y)`` returning a scalar tensor; the solve stops where it changes sign
        (bisection on the dense output to ``atol`` in time); ``t`` must then have two
        times (start, and one giving the direction), as in torchdiffeq. Returns
        ``(event_t, solution)``
        with ``solution`` at ``[t0, event_t]``; ``event_t`` carries no gradient (use
        :func:`odeint_event` for that).
    recorder : Recorder, optional
        Receives the :class:`~sciml.nde.SolverStats` of this solve (``nfe`` counts every call of
        ``func``; dopri5: :math:`2 + 6 \times` attempts).

    Returns
    -------
    solution : Tensor, shape ``(T, *y0.shape)`` (or a tuple of such)
    (event_t, solution) : with ``event_fn``

    Raises
    ------
    TypeError
        If ``func`` is not callable, ``y0`` / ``t`` / tolerances / options have the wrong type.
    ValueError
        If ``t`` is not strictly monotone, ``y0`` is not finite, tolerances are negative, an
        option is invalid, a fixed-grid method gets no grid, or ``func`` returns the wrong shape.
    RuntimeError
        On step-size underflow or a non-finite state; :class:`MaxStepsExceeded` (also an
        ``AssertionError``, as torchdiffeq's) when ``max_num_steps`` runs out.

    References
    ----------
    A. Pal, Y. Ma, V. Shah, C. Rackauckas, "Opening the Blackbox: Accelerating Neural
    Differential Equations by Regularizing Internal Solver Heuristics", ICML 2021.
    E. Hairer, S. P. Norsett, G. Wanner, Solving ODEs I (II.4), and Hairer & Wanner, Solving
    ODEs II (IV.2: stiffness detection). R. T. Q. Chen, torchdiffeq (2018), for the interface.

    Examples
    --------
    >>> import torch
    >>> from sciml.nde import Recorder, odeint
    >>> t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    >>> y = odeint(lambda t, y: -y, torch.tensor([1.0], dtype=torch.float64), t)
    >>> round(float(y[-1]), 6)
    0.367879
    >>> rec = Recorder()
    >>> y = odeint(lambda t, y: -y, torch.tensor([1.0], dtype=torch.float64), t, recorder=rec)
    >>> rec.stats.nfe
    50
    """
    recorder = _check_recorder(recorder)
    tab = _resolve_method(method)
    if isinstance(tab, str):
        if recorder is not None:
            raise ValueError(f"method {tab!r} is handed to torchdiffeq, which records no "
                             "statistics: use 'dopri5', 'tsit5' or 'bosh3' with a recorder")
        import torchdiffeq

        return torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol, method=tab,
                                  options=options, event_fn=event_fn)
    opts = _check_options(options, tab)
    if tab.adaptive and _valid_step(opts.get("step_size")) and not isinstance(method,
                                                                               ButcherTableau):
        # torchdiffeq ignores step_size for adaptive methods (with a warning); ours uses it: a
        # difference a torchdiffeq call must not meet silently
        warnings.warn(
            f"{tab.name}: options['step_size'] runs this adaptive method on a fixed grid of that "
            "step (an extension of sciml.nde; torchdiffeq ignores step_size for adaptive "
            "methods). Drop step_size for adaptive stepping, or pass the tableau object "
            f"(method=sciml.nde.{tab.name.upper()}) to use the fixed grid without this warning",
            UserWarning, stacklevel=2)
    ts, reverse = _check_time_tensor(t, event_fn is not None)
    rtol, atol = _check_tols(rtol, atol)
    if not tab.adaptive and opts.get("step_size") is None and len(ts) < 2 and event_fn is None:
        raise ValueError(f"method {tab.name!r} needs options={{'step_size': h}}")
    if tab.adaptive and opts.get("step_size") is None and tab.mid is None:
        raise ValueError(f"tableau {tab.name!r} has no dense-output weights (mid): adaptive "
                         "solves need them to interpolate to t; pass options={'step_size': h}")
    if event_fn is not None and not callable(event_fn):
        raise TypeError("event_fn must be callable as event_fn(t, y)")
    rfunc, ry0, cflags = _real_view(func, y0)
    prob = _Problem(rfunc, ry0, reverse)
    user_norm = opts.get("norm")
    if user_norm is not None:
        if not callable(user_norm):
            raise TypeError("options['norm'] must be callable as norm(y) -> scalar tensor")
        prob.norm = lambda x: torch.as_tensor(user_norm(prob.unflatten(x))).abs()  # type: ignore
    want_stiff = (recorder is not None and recorder.stiffness
                  and tab.stiffness_stages is not None)

    event = None
    if event_fn is not None:
        def event(s: float, y: Tensor) -> float:
            tt = torch.tensor(prob.sign * s, dtype=t.dtype, device=t.device)
            v = event_fn(tt, _complex_back(prob.unflatten(y), cflags))
            return float(torch.sign(torch.as_tensor(v).detach()).reshape(()))

    t_grad = t.requires_grad and torch.is_grad_enabled()
    y_start = prob.y0
    if t_grad:
        # d y(t_i) / d t_0 = -Phi(t_i, t_0) f(t_0, y_0): shift y0 by the (zero-valued) first-order
        # change; its gradient flows through the solve.
        f0 = prob(ts[0], prob.y0).detach()
        y_start = prob.y0 - (prob.sign * (t[0] - t[0].detach())).to(prob.dtype) * f0
    out, rec, event_s = _solve(prob, tab, ts, rtol, atol, opts, want_stiff, event, y_start)
    out[0] = prob.y0
    n_out = 2 if event_fn is not None else len(ts)
    while len(out) < n_out:
        out.append(torch.full_like(prob.y0, float("nan")))
    if t_grad and event_fn is None:
        for i in range(1, len(ts)):
            if bool(torch.isfinite(out[i].detach()).all()):
                fi = prob(ts[i], out[i].detach()).detach()
                out[i] = out[i] + (prob.sign * (t[i] - t[i].detach())).to(prob.dtype) * fi
    sol = _complex_back(prob.unflatten(torch.stack(out)), cflags)
    if recorder is not None:
        recorder._record(SolverStats(
            method=tab.name, nfe=prob.nfe, n_accepted=rec["acc"], n_rejected=rec["rej"],
            times=torch.tensor([prob.sign * v for v in rec["t"]], dtype=torch.float64),
            step_sizes=torch.tensor([prob.sign * v for v in rec["dt"]], dtype=torch.float64),
            step_errors=torch.stack(rec["e"]) if rec["e"] else prob.y0.new_zeros(0),
            stiffness=(torch.stack(rec["s"]) if rec["s"] else prob.y0.new_zeros(0))
            if want_stiff else None,
            status=rec["status"], differentiable=torch.is_grad_enabled()))
    if event_fn is None:
        return sol
    ev_t = torch.tensor(prob.sign * event_s if event_s is not None else float("nan"),
                        dtype=t.dtype, device=t.device)
    return ev_t, sol


def odeint_event(func: Callable, y0: State, t0: Tensor, *, event_fn: Callable,
                 reverse_time: bool = False, odeint_interface: Callable | None = None,
                 **kwargs: object) -> tuple[Tensor, State]:
    """torchdiffeq's ``odeint_event`` on this module's solvers: the event time with a gradient.

    Solves from ``t0`` until ``event_fn(t, y)`` changes sign and links the gradient of the event
    time by the implicit function theorem (``torchdiffeq.odeint_event`` does the rerouting; the
    integration is :func:`odeint`, or ``odeint_interface=odeint_adjoint``). ``kwargs`` go to
    the solver (``rtol``, ``atol``, ``method``, ``options``, ``recorder``, ...).

    Returns
    -------
    event_t : Tensor
    solution : Tensor or tuple, at ``[t0, event_t]``
    """
    import torchdiffeq

    return torchdiffeq.odeint_event(func, y0, t0, event_fn=event_fn, reverse_time=reverse_time,
                                    odeint_interface=odeint if odeint_interface is None
                                    else odeint_interface, **kwargs)


# ---------------------------------------------------------------------------------------------
# adjoint
# ---------------------------------------------------------------------------------------------
def _rms(x: Tensor) -> Tensor:
    return torch.linalg.vector_norm(x) / math.sqrt(max(x.numel(), 1))


class _EventTimeOutput(torch.autograd.Function):
    """The event time of :func:`odeint_adjoint`, in the graph of the solve as torchdiffeq's (so
    ``event_t.backward()`` runs) but, as there, not backpropagated: its gradient is dropped.
    :func:`odeint_event` gives the event time its gradient."""

    @staticmethod
    def forward(ctx, event_t, *solution):  # noqa: ANN001, ANN205
        del ctx, solution
        return event_t.clone()

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        return (None,) * len(ctx.needs_input_grad)


def _torchdiffeq_adjoint_norm(user_norm: Callable, flat: _Problem) -> Callable:
    """A user's ``adjoint_options["norm"]`` sees torchdiffeq's augmented state: ``(t, y, adj_y,
    *adj_params)`` for a tensor state, ``(t, *y, *adj_y, *adj_params)`` for a tuple state, in the
    state's own shapes. ``t`` (torchdiffeq's time adjoint, which this solver does not integrate)
    is a zero 0-d tensor."""

    def parts(x: Tensor) -> tuple:
        y = flat.unflatten(x)
        return tuple(y) if flat.is_tuple else (y,)

    def norm(st: tuple) -> Tensor:
        y, a, *ap = st
        t0 = torch.zeros((), dtype=y.dtype, device=y.device)
        return torch.as_tensor(user_norm((t0, *parts(y), *parts(a), *ap))).abs()

    return norm


class _AdjointSolve(torch.autograd.Function):
    """Forward: :func:`odeint` under ``no_grad``. Backward: the adjoint system, solved backwards
    between consecutive output times with :func:`odeint` (Chen et al. 2018, appendix B)."""

    @staticmethod
    def forward(ctx, flat_func, y0, t, kw, adj_kw, n_par, *params):  # noqa: ANN001, ANN205
        with torch.no_grad():
            sol = odeint(flat_func, y0, t.detach(), **kw)
        ctx.flat_func, ctx.adj_kw = flat_func, adj_kw
        ctx.save_for_backward(t, sol, *params)
        return sol

    @staticmethod
    def backward(ctx, grad_sol):  # noqa: ANN001, ANN205
        t, sol, *params = ctx.saved_tensors
        func, adj_kw = ctx.flat_func, ctx.adj_kw
        params = tuple(params)
        td = t.detach()

        def aug(tt: Tensor, state: tuple) -> tuple:
            y, a = state[0], state[1]
            with torch.enable_grad():
                y_ = y.detach().requires_grad_(True)
                f = func(tt.detach(), y_)
                grads = torch.autograd.grad(f, (y_, *params), -a, allow_unused=True)
            out = [f.detach(), grads[0] if grads[0] is not None else torch.zeros_like(y)]
            out += [g if g is not None else torch.zeros_like(p)
                    for g, p in zip(grads[1:], params, strict=True)]
            return tuple(out)

        a = grad_sol[-1]
        ap = [torch.zeros_like(p) for p in params]
        grad_t = torch.zeros_like(t) if ctx.needs_input_grad[2] else None
        with torch.no_grad():
            for i in range(len(td) - 1, 0, -1):
                if grad_t is not None:
                    grad_t[i] = (func(td[i], sol[i]) * grad_sol[i]).sum()
                res = odeint(aug, (sol[i], a, *ap), torch.stack([td[i], td[i - 1]]), **adj_kw)
                a = res[1][-1]
                ap = [r[-1] for r in res[2:]]
                if grad_t is not None and i == 1:
                    grad_t[0] = -(a * func(td[0], sol[0])).sum()
                a = a + grad_sol[i - 1]
        return (None, a, grad_t, None, None, None, *ap)


def odeint_adjoint(func: Callable, y0: State, t: Tensor, *, rtol: float = 1e-7,
                   atol: float = 1e-9, method: str | ButcherTableau | None = None,
                   options: dict | None = None, event_fn: Callable | None = None,
                   adjoint_rtol: float | None = None, adjoint_atol: float | None = None,
                   adjoint_method: str | ButcherTableau | None = None,
                   adjoint_options: dict | None = None,
                   adjoint_params: Sequence[Tensor] | None = None,
                   recorder: Recorder | None = None) -> State | tuple[Tensor, State]:
    r"""Drop-in for ``torchdiffeq.odeint_adjoint``: :func:`odeint` with O(1)-memory gradients.

    The forward solve runs under ``no_grad``; the backward pass integrates the adjoint system
    :math:`\dot a = -a^\top \partial f/\partial y`,
    :math:`\dot a_\theta = -a^\top \partial f/\partial\theta` (with :math:`y` re-integrated
    backwards) from each output time to the previous one with this module's own Runge-Kutta
    solver (Chen, Rubanova, Bettencourt, Duvenaud, NeurIPS 2018). Gradients w.r.t. ``y0``, the
    parameters and ``t``.

    A ``recorder`` receives the forward solve's statistics, marked ``differentiable=False``
    (its error estimates carry no graph): the global regularizers refuse them; regularize an
    adjoint-trained model with the local mode, :func:`local_step` at a random time.

    Parameters
    ----------
    func, y0, t, rtol, atol, method, options, event_fn, recorder
        As :func:`odeint`.
    adjoint_rtol, adjoint_atol, adjoint_method : optional
        Tolerances and method of the backward solve (default: the forward ones).
    adjoint_options : dict, optional
        Options of the backward solve (default: the forward ones without ``norm``);
        ``{"norm": "seminorm"}`` measures the error on the state and its adjoint only (Kidger,
        Chen, Lyons 2021).
    adjoint_params : sequence of Tensor, optional
        Parameters to differentiate (default: ``func.parameters()``; required when ``func`` is
        not an ``nn.Module``; ``()`` for none).

    Raises
    ------
    ValueError
        If ``func`` is not an ``nn.Module`` and ``adjoint_params`` is not given; as :func:`odeint`.
    """
    tab = _resolve_method(method)
    if adjoint_params is None and not isinstance(func, torch.nn.Module):
        raise ValueError("func must be an instance of nn.Module to specify the adjoint "
                         "parameters; alternatively they can be specified explicitly via the "
                         "`adjoint_params` argument. If there are no parameters then it is "
                         "allowable to set `adjoint_params=()`.")
    if isinstance(tab, str):
        if recorder is not None:
            raise ValueError(f"method {tab!r} is handed to torchdiffeq, which records no "
                             "statistics")
        import torchdiffeq

        return torchdiffeq.odeint_adjoint(
            func, y0, t, rtol=rtol, atol=atol, method=tab, options=options, event_fn=event_fn,
            adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, adjoint_method=adjoint_method,
            adjoint_options=adjoint_options, adjoint_params=adjoint_params)
    if event_fn is not None:
        with torch.no_grad():
            ev_t, _ = odeint(func, y0, t.detach(), rtol=rtol, atol=atol, method=method,
                             options=options, event_fn=event_fn)
        tt = torch.stack([t[0], ev_t.to(t)])
        sol = odeint_adjoint(func, y0, tt, rtol=rtol, atol=atol, method=method, options=options,
                             adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol,
                             adjoint_method=adjoint_method, adjoint_options=adjoint_options,
                             adjoint_params=adjoint_params, recorder=recorder)
        parts = sol if isinstance(sol, tuple) else (sol,)
        return _EventTimeOutput.apply(ev_t, *parts), sol
    params = tuple(func.parameters()) if adjoint_params is None else tuple(adjoint_params)
    if not all(isinstance(p, Tensor) for p in params):
        raise TypeError("adjoint_params must be a sequence of tensors")
    params = tuple(p for p in params if p.requires_grad)
    if not isinstance(t, Tensor):
        raise TypeError("t must be a 1-D floating-point tensor")
    rfunc, ry0, cflags = _real_view(func, y0)
    flat = _Problem(rfunc, ry0, reverse=False)

    def flat_func(tt: Tensor, y: Tensor) -> Tensor:
        out = rfunc(tt, flat.unflatten(y))
        if flat.is_tuple:
            return torch.cat([o.reshape(-1) for o in out])
        return out.reshape(-1)

    if adjoint_options is None:
        same = adjoint_method is None or adjoint_method == method
        adjoint_options = {k: v for k, v in (options or {}).items() if k != "norm"} if same \
            else {}
    else:
        adjoint_options = dict(adjoint_options)
    if adjoint_options.get("norm") == "seminorm":
        adjoint_options["norm"] = lambda st: torch.maximum(_rms(st[0]), _rms(st[1]))
    elif callable(adjoint_options.get("norm")):
        adjoint_options["norm"] = _torchdiffeq_adjoint_norm(adjoint_options["norm"], flat)
    user_norm = (options or {}).get("norm")
    fwd_options = dict(options or {})
    if user_norm is not None:
        fwd_options["norm"] = lambda y: user_norm(flat.unflatten(y))
    kw = {"rtol": rtol, "atol": atol, "method": method, "options": fwd_options or None,
          "recorder": recorder}
    adj_kw = {"rtol": rtol if adjoint_rtol is None else adjoint_rtol,
              "atol": atol if adjoint_atol is None else adjoint_atol,
              "method": method if adjoint_method is None else adjoint_method,
              "options": adjoint_options or None}
    y0_flat = flat.y0
    sol = _AdjointSolve.apply(flat_func, y0_flat, t, kw, adj_kw, len(params), *params)
    return _complex_back(flat.unflatten(sol), cflags)


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
    t = check_real("t", t, hint="the start time is a finite float or a 0-d tensor")
    rule = "dt must be a non-zero finite float (negative steps backwards) or None (automatic)"
    if check_real("dt", dt, allow_none=True, hint=rule) == 0:
        raise ValueError(f"{rule}, got {dt!r}")
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
