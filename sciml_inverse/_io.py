"""Atomic file writing: a temporary file in the target folder, then :func:`os.replace`.

An interrupted write therefore never leaves a partial file at the target path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["write_atomic", "write_bytes_atomic", "write_json"]


def _write_with(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to a temporary file in the target folder, then ``os.replace``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return _write_with(path, lambda fh: torch.save(obj, fh))


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders are created)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    return _write_with(path, lambda fh: fh.write(bytes(data)))


def write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (sorted keys, trailing newline) to ``path`` atomically.

    The argument order is ``(path, obj)`` everywhere in the project.
    """
    text = json.dumps(obj, indent=indent, sort_keys=True, default=_json_default) + "\n"
    return write_bytes_atomic(text.encode(), path)


def _json_default(o: Any) -> Any:
    """Numbers and arrays of numpy/torch, and paths, as plain JSON values."""
    if isinstance(o, torch.Tensor):
        return o.detach().cpu().tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    tolist = getattr(o, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return tolist()
    raise TypeError(f"object of type {type(o).__name__} is not JSON serializable")
