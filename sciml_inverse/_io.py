"""Atomic file writing: a temporary file in the target folder, then :func:`os.replace`.

An interrupted write therefore never leaves a partial file at the target path.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import torch

from ._interrupt import raise_if_interrupted

__all__ = ["atomic_path", "write_atomic", "write_bytes_atomic", "write_json"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mkdir: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    For writers that need a file name (HDF5, GeoTIFF, ``savefig``, ``np.savez`` through an
    open file). The file gets the usual permissions (``0o666`` less the umask); on an exception
    the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or path-like
    mkdir : bool
        Create missing parent folders (default); with ``False`` a missing folder is a
        ``FileNotFoundError``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sciml_inverse import atomic_path
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_path(os.path.join(d, "out.txt")) as tmp:
    ...         _ = tmp.write_text("done")
    ...     sorted(os.listdir(d))
    ['out.txt']
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise FileNotFoundError(f"the output directory {str(path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600 files
        raise_if_interrupted()  # an interrupt the interpreter dropped still stops the commit
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def _write_with(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return Path(path)


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
