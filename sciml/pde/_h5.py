"""Shared helpers of the data generators: atomic HDF5 files with attributes, resumable loops."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sciml_inverse import atomic_path

from ._io import _decode_attr, _encode_attr

_RESERVED = ("format", "format_version")


def write_h5(path: str | os.PathLike[str], fmt: str, datasets: Mapping[str, np.ndarray],
             attrs: Mapping[str, Any], version: int = 1) -> Path:
    """Write ``datasets`` and root ``attrs`` to HDF5 atomically (:func:`sciml_inverse.atomic_path`).

    Raises
    ------
    FileNotFoundError
        If the destination folder does not exist.
    ValueError
        If an attribute uses a reserved name.
    TypeError
        If an attribute cannot be stored.
    """
    import h5py

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"the folder {str(path.parent)!r} of {str(path)!r} does not exist; create it first"
        )
    reserved = sorted(set(attrs) & set(_RESERVED))
    if reserved:
        raise ValueError(f"attrs use reserved names {reserved}; rename them")
    encoded = {k: _encode_attr(k, v) for k, v in attrs.items()}
    with atomic_path(path, mkdir=False) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = fmt
        h5.attrs["format_version"] = version
        for key, value in encoded.items():
            h5.attrs[key] = value
        for key, value in datasets.items():
            arr = np.asarray(value)
            kw = {"compression": "gzip", "shuffle": True} if arr.size > 1024 else {}
            h5.create_dataset(key, data=arr, **kw)
    return path


def read_h5(path: str | os.PathLike[str], fmt: str,
            keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read the datasets ``keys`` and the attributes of a file written by :func:`write_h5`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not an HDF5 file of format ``fmt``.
    KeyError
        If a dataset is missing.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {str(path)!r}")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{str(path)!r} is not an HDF5 file")
    with h5py.File(path, "r") as h5:
        if h5.attrs.get("format") != fmt:
            raise ValueError(f"{str(path)!r} is not a {fmt} file (format "
                             f"{h5.attrs.get('format')!r})")
        missing = [k for k in keys if k not in h5]
        if missing:
            raise KeyError(f"{str(path)!r} lacks datasets {missing}; available: "
                           f"{sorted(h5.keys())}")
        data = {k: h5[k][()] for k in keys}
        attrs = {k: _decode_attr(v) for k, v in h5.attrs.items() if k not in _RESERVED}
    return data, attrs


def _write_ck(path: Path, out: np.ndarray, done: int, key: str) -> None:
    with atomic_path(path, mkdir=False) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, out=out[:done], done=np.int64(done), key=np.array(key))


def run_resumable(solve: Callable[[int], np.ndarray], n: int, shape: tuple[int, ...], *,
                  checkpoint: str | os.PathLike[str] | None, key: str, every: int = 50,
                  workers: int = 1, progress: bool = False, desc: str = "") -> np.ndarray:
    """``np.stack([solve(i) for i in range(n)])``, resumable from an ``.npz`` checkpoint.

    ``solve`` must be picklable when ``workers > 1`` (a module-level function or a
    :func:`functools.partial` of one). The checkpoint stores the finished results (atomically,
    every ``every`` samples) with ``key`` (the generating parameters); a checkpoint with another
    key raises ``ValueError``; it is deleted when the loop completes.
    """
    from tqdm.auto import tqdm

    out = np.empty((n, *shape))
    done = 0
    path = None if checkpoint is None else Path(checkpoint)
    if path is not None:
        if not path.parent.is_dir():
            raise FileNotFoundError(f"the folder of the checkpoint {str(path)!r} does not exist")
        if path.exists():
            with np.load(path) as ck:
                if str(ck["key"]) != key:
                    raise ValueError(
                        f"the checkpoint {str(path)!r} was written with other generating "
                        f"parameters ({ck['key']}); delete it or pass another checkpoint path")
                done = min(int(ck["done"]), n)
                out[:done] = ck["out"][:done]
    saved = done
    with tqdm(total=n, initial=done, desc=desc, disable=not progress) as bar:
        if workers > 1 and n - done > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers) as pool:
                results = pool.imap(solve, range(done, n), chunksize=4)
                for i, res in enumerate(results, start=done):
                    out[i] = res
                    done = i + 1
                    bar.update(1)
                    if path is not None and done - saved >= every and done < n:
                        _write_ck(path, out, done, key)
                        saved = done
        else:
            for i in range(done, n):
                out[i] = solve(i)
                done = i + 1
                bar.update(1)
                if path is not None and done - saved >= every and done < n:
                    _write_ck(path, out, done, key)
                    saved = done
    if path is not None:
        path.unlink(missing_ok=True)
    return out
