"""The checked checkpoint reader (``weights_only=True`` always)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ._version import library_version

__all__ = ["read_checkpoint"]


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
