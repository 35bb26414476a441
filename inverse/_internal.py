"""Small helpers shared by the subpackages of :mod:`inverse` (no stability promise).

* :func:`library_version`: the installed ``sciml-inverse`` version, stored in checkpoints;
* :func:`write_atomic`: ``torch.save`` to a temporary file in the target folder, then
  ``os.replace``, so an interrupted write never leaves a partial file;
* :func:`check_number` / :func:`check_int`: the ``ValueError`` of option dataclasses.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["library_version", "write_atomic", "check_number", "check_int"]


def library_version() -> str:
    """The installed ``sciml-inverse`` version (``"0.0.0+unknown"`` from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sciml-inverse")
    except PackageNotFoundError:
        return "0.0.0+unknown"


def write_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temporary file in the target folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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
