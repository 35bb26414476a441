"""Shared argument validators: the ``ValueError`` of option dataclasses and public functions."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_number"]


def check_number(name: str, v: object, *, positive: bool = True,
                 allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``v`` is a finite real number > 0 (or >= 0)."""
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
            v <= 0 if positive else v < 0):
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0, got {v!r}")


def check_int(name: str, v: object, minimum: int) -> None:
    """Raise ``ValueError`` unless ``v`` is an ``int`` (not a bool) >= ``minimum``."""
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
