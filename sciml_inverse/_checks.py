"""Shared argument validators: the ``ValueError``/``TypeError`` of option dataclasses, public
functions, constructors and checkpoint loaders.

Each raises with a message that names the argument, what was wrong and how to fix it. The tensor
checks that must read values (:func:`check_finite`, :func:`check_positive_tensor`) synchronize
with the device once: call them where an argument is given (a constructor, a loader, the entry
of a solver), never inside an iteration loop.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["ArgumentTypeError", "check_int", "check_number", "check_real", "check_tensor",
           "check_tolerance", "check_finite", "check_shape", "check_representable",
           "check_positive_tensor", "check_keys", "check_finite_state_dict", "check_device"]


class ArgumentTypeError(TypeError, ValueError):
    """A wrong argument type from :func:`check_int` / :func:`check_number`.

    A ``TypeError`` (the convention of :func:`check_real` and :func:`check_tensor`) that is also
    a ``ValueError``, which these two validators raised for every bad input before: code that
    catches either keeps working.
    """


def check_number(name: str, v: object, *, positive: bool = True,
                 allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``v`` is a finite real number > 0 (or >= 0).

    A non-number (a bool, a string, ``None`` without ``allow_none``) raises
    :class:`ArgumentTypeError`, both a ``TypeError`` and a ``ValueError``.
    """
    if v is None and allow_none:
        return
    msg = f"{name} must be a finite number {'>' if positive else '>='} 0, got {_repr(v)}"
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ArgumentTypeError(msg)
    if not math.isfinite(v) or (v <= 0 if positive else v < 0):
        raise ValueError(msg)


def check_int(name: str, v: object, minimum: int, *, maximum: int | None = None,
              hint: str = "") -> int:
    """Raise ``ValueError`` unless ``v`` is an integer (not a bool; numpy ints pass) in
    ``[minimum, maximum]`` (no upper bound when ``maximum`` is None); return ``int(v)``.

    A non-integer (a float such as ``2.0``, a bool, a string) raises :class:`ArgumentTypeError`,
    both a ``TypeError`` and a ``ValueError``. ``hint`` is appended to the message.
    """
    rng = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    msg = f"{name} must be an int {rng}, got {_repr(v)}{_hint(hint)}"
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ArgumentTypeError(msg)
    if v < minimum or (maximum is not None and v > maximum):
        raise ValueError(msg)
    return int(v)


def check_real(name: str, v: object, *, allow_none: bool = False, positive: bool | None = None,
               maximum: float | None = None, include_maximum: bool = True,
               hint: str = "") -> float | None:
    """Check a real-number argument and return it as a ``float`` (``None`` passes with
    ``allow_none``).

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    v : object
    allow_none : bool
    positive : bool, optional
        ``True``: must be > 0; ``False``: must be >= 0; ``None``: no lower bound.
    maximum : float, optional
        An upper bound: ``v <= maximum`` (``v < maximum`` with ``include_maximum=False``).
    include_maximum : bool
    hint : str
        Appended to the messages (e.g. what the number means).

    Raises
    ------
    TypeError
        If ``v`` is not a real number (a bool, a string, a tensor, ``None``); numpy scalars pass.
    ValueError
        If ``v`` is NaN or infinite, or outside the range ``positive`` asks for.
    """
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {_repr(v)}"
                        f"{_hint(hint)}")
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}{_hint(hint)}")
    if positive is not None and (v <= 0 if positive else v < 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v!r}{_hint(hint)}")
    if maximum is not None and (v > maximum if include_maximum else v >= maximum):
        raise ValueError(f"{name} must be {'<=' if include_maximum else '<'} {maximum:g}, got "
                         f"{v!r}{_hint(hint)}")
    return float(v)


def check_tolerance(name: str, v: object, hint: str = "") -> float:
    """Check a solver tolerance: a finite real number (or a one-element tensor without grad).

    The sign and "not both zero" rules are the caller's. Returns ``float(v)``.

    Raises
    ------
    TypeError
        For another type (a bool, a string, a tensor of several elements or with grad).
    ValueError
        For NaN or infinity (a NaN tolerance accepts every step, an infinite one too).
    """
    if isinstance(v, Tensor):
        if v.numel() != 1 or v.requires_grad:
            raise TypeError(f"{name} must be a float (or a one-element tensor without grad)"
                            f"{_hint(hint)}")
    elif isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(v).__name__}{_hint(hint)}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {f}{_hint(hint)}")
    return f


def check_tensor(name: str, x: object, *, allow_complex: bool = True) -> Tensor:
    """Raise ``TypeError`` unless ``x`` is a floating-point (or complex) ``torch.Tensor``.

    Returns ``x`` (for chaining).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        f"torch.as_tensor")
    if not (x.is_floating_point() or (allow_complex and x.is_complex())):
        kind = "floating-point or complex" if allow_complex else "real floating-point"
        raise TypeError(f"{name} must be a {kind} tensor, got dtype {x.dtype}; convert it "
                        f"with .float() or .double()")
    return x


def check_finite(name: str, x: Tensor | float, hint: str = "") -> None:
    """Raise ``ValueError`` if ``x`` (a tensor or a number) holds NaN or infinity.

    A tensor check synchronizes with its device once; ``x.detach()`` is inspected, so tensors
    that require grad are accepted. Tensors on the ``meta`` device (no values) pass.
    """
    if isinstance(x, Tensor):
        if (x.is_floating_point() or x.is_complex()) and x.device.type != "meta":
            bad = ~torch.isfinite(x.detach())
            if bool(bad.any()):
                n = int(bad.sum())
                raise ValueError(f"{name} contains {n} non-finite value{'s' * (n != 1)} (NaN or "
                                 f"inf) out of {x.numel()}{_hint(hint)}")
        return
    if isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}{_hint(hint)}")


def check_shape(name: str, x: Tensor, expected: Sequence[int], *, broadcast: bool = False,
                hint: str = "") -> None:
    """Raise ``ValueError`` unless the trailing dims of ``x`` are ``expected``.

    With ``broadcast=True`` the trailing dims (as many as ``x`` has, at most ``len(expected)``)
    need only broadcast *to* ``expected``: each equals the expected size or 1, so that
    broadcasting never makes a result larger than declared.
    """
    expected = tuple(int(s) for s in expected)
    n = len(expected)
    shape = tuple(x.shape)
    if broadcast:
        m = min(len(shape), n)
        tail = shape[len(shape) - m:]
        if not all(a in (1, b) for a, b in zip(tail, expected[n - m:], strict=True)):
            raise ValueError(f"{name} of shape {shape} does not broadcast to {expected} (its "
                             f"trailing dims must each be equal or 1){_hint(hint)}")
    elif len(shape) < n or shape[len(shape) - n:] != expected:
        raise ValueError(f"{name} must have shape (*batch, {', '.join(map(str, expected))}), got "
                         f"{shape}{_hint(hint)}")


def check_representable(name: str, value: float, dtype: torch.dtype, hint: str = "") -> None:
    """Raise ``ValueError`` if the positive number ``value`` underflows or overflows in ``dtype``.

    ``value`` below the smallest normal number of ``dtype`` (e.g. ``1e-50`` in float32, which
    rounds to 0 or to a denormal) or above its largest finite number is rejected; complex
    dtypes are checked against their real part's dtype. Integer dtypes are not checked.
    """
    if dtype.is_complex:
        dtype = torch.empty((), dtype=dtype).real.dtype
    if not dtype.is_floating_point or value == 0 or not math.isfinite(value):
        return
    fi = torch.finfo(dtype)
    if abs(value) < fi.tiny:
        fix = "float64 inputs" if fi.bits < 64 else "rescale the problem"
        raise ValueError(f"{name}={value!r} underflows in {dtype} (smallest normal number "
                         f"{fi.tiny:.3g}); use a larger value or {fix}{_hint(hint)}")
    if abs(value) > fi.max:
        raise ValueError(f"{name}={value!r} overflows in {dtype} (largest finite number "
                         f"{fi.max:.3g}); use a smaller value{_hint(hint)}")


def check_positive_tensor(name: str, t: Tensor, hint: str = "") -> None:
    """Raise ``ValueError`` unless every entry of the real tensor ``t`` is finite and > 0.

    One device synchronization (NaN, inf, zeros and negatives are caught by the same test).
    """
    if t.is_complex():
        raise TypeError(f"{name} must be real and positive, got a complex tensor")
    d = t.detach()
    if d.device.type == "meta":  # no values to check
        return
    bad = ~(torch.isfinite(d) & (d > 0)) if (d.is_floating_point()) else ~(d > 0)
    if bool(bad.any()):
        n = int(bad.sum())
        raise ValueError(f"{name} must be finite and > 0, got {n} entr{'ies' if n != 1 else 'y'} "
                         f"that {'are' if n != 1 else 'is'} not (NaN, inf, 0 or negative)"
                         f"{_hint(hint)}")


def check_device(name: str, x: Tensor, device: torch.device | str | None, hint: str = "") -> None:
    """Raise ``ValueError`` if ``x`` is not on ``device`` (no check when ``device`` is None)."""
    if device is not None and x.device != torch.device(device):
        raise ValueError(f"{name} is on {x.device} but must be on {torch.device(device)}; move it "
                         f"with .to({str(torch.device(device))!r}){_hint(hint)}")


def check_keys(mapping: object, keys: Iterable[str], source: str | os.PathLike,
               what: str = "checkpoint") -> None:
    """Raise ``ValueError`` if the dict ``mapping`` (read from ``source``) lacks any of ``keys``.

    The message names the file, the missing and the present entries (instead of a bare
    ``KeyError`` deep in a loader).
    """
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{os.fspath(source)} is not a {what} (a dict was expected, got "
                         f"{type(mapping).__name__})")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ValueError(f"{os.fspath(source)} is an incomplete {what}: missing "
                         f"{', '.join(repr(k) for k in missing)} (it has "
                         f"{', '.join(repr(k) for k in sorted(map(str, mapping)))}); re-save it "
                         f"with sciml-inverse or use another file")


def check_finite_state_dict(state: Mapping[str, Any], source: str | os.PathLike,
                            what: str = "weights") -> None:
    """Raise ``ValueError`` naming the first entries of a state dict that hold NaN or inf.

    For checkpoint loads: a diverged training run saves NaN weights that would otherwise load
    silently and produce NaN outputs. Nested dicts are searched too; non-tensor entries are
    skipped. One device synchronization per floating-point tensor (loads are not hot paths).
    """
    bad: list[str] = []

    def visit(prefix: str, obj: Any) -> None:
        if isinstance(obj, Tensor):
            if (obj.is_floating_point() or obj.is_complex()) and obj.device.type != "meta" and \
                    not bool(torch.isfinite(obj.detach()).all()):
                bad.append(prefix)
        elif isinstance(obj, Mapping):
            for k, v in obj.items():
                visit(f"{prefix}.{k}" if prefix else str(k), v)

    visit("", state)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"{os.fspath(source)}: NaN or inf in the {what} ({shown}); the "
                         f"training that wrote it probably diverged: use an earlier checkpoint")


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


def _repr(v: object, limit: int = 60) -> str:
    """``repr(v)``, cut to ``limit`` characters on one line (an array argument stays readable)."""
    r = " ".join(repr(v).split())
    return r if len(r) <= limit else r[:limit - 3] + "..."
