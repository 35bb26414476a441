"""Shared helper of the data generators: atomic HDF5 files with attributes."""

from __future__ import annotations

import os
from collections.abc import Mapping
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
