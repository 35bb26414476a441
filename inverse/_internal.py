"""Small helpers shared by the subpackages of :mod:`inverse` (no stability promise).

* :func:`library_version`: the installed ``sciml-inverse`` version, stored in checkpoints;
* :func:`write_atomic`: ``torch.save`` to a temporary file in the target folder, then
  ``os.replace``, so an interrupted write never leaves a partial file;
* :func:`read_checkpoint`: ``torch.load`` of a file written by :func:`write_atomic` with the
  checks every checkpoint reader needs (missing, corrupted, foreign, other format version,
  other library version);
* :func:`check_number` / :func:`check_int`: the ``ValueError`` of option dataclasses.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["library_version", "write_atomic", "read_checkpoint", "check_number", "check_int"]


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


def read_checkpoint(path: str | os.PathLike, *, fmt: str, format_version: int, what: str,
                    article: str = "a", hint: str = "", map_location: Any = "cpu",
                    stacklevel: int = 3) -> dict[str, Any]:
    """Load a checkpoint dict whose ``"format"`` is ``fmt``, checking everything on the way.

    Parameters
    ----------
    path : str or path-like
    fmt, format_version
        The expected ``"format"`` and ``"format_version"`` entries.
    what, article
        How messages name the file: ``"no {what} at ..."``, ``"is not {article} {what}"``
        (e.g. ``"LPN checkpoint"`` with ``"an"``, ``"training checkpoint"`` with ``"a CAE"``).
    hint
        Appended to the "not a ... checkpoint" message (where such files are read instead).
    map_location
        Passed to :func:`torch.load` (``weights_only=True``).
    stacklevel
        Of the version warning (3: the caller of the function that calls this one).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file cannot be read, is not a ``fmt`` checkpoint, or has another format version.

    Warns
    -----
    UserWarning
        If another version of sciml-inverse wrote it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated / not a torch file / unsafe pickle
        raise ValueError(f"{path} could not be read as {article} {what} (corrupted or not "
                         f"written by sciml-inverse): {type(err).__name__}: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise ValueError(f"{path} is not {article} {what} written by sciml-inverse{hint}")
    if ckpt.get("format_version") != format_version:
        raise ValueError(f"{path} has {what} format version {ckpt.get('format_version')!r}, this "
                         f"library reads version {format_version}; re-save it with a matching "
                         f"sciml-inverse")
    if ckpt.get("library_version") != library_version():
        warnings.warn(f"{path} was written by sciml-inverse {ckpt.get('library_version')}, this "
                      f"is {library_version()}", UserWarning, stacklevel=stacklevel)
    return ckpt


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
