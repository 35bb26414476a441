"""Reading and writing Darcy data sets: our HDF5 layout and the authors' MATLAB files.

Our layout (``save_darcy``): an HDF5 file with datasets ``coeff`` ``(B, n, n)``, ``sol``
``(B, n, n)`` and ``x`` ``(n * n, 2)`` (float64, C order, the layout of :class:`DarcyData`), root
attributes ``format = "sciml-inverse/darcy"``, ``format_version = 1`` and one attribute per entry
of ``DarcyData.attrs`` (the generating parameters and seed).

MATLAB files (``load_darcy``): v7.3 files are HDF5 written in column-major order, so h5py sees
every array with its axes reversed (a MATLAB ``(B, 29, 29)`` array reads as ``(29, 29, B)``);
the reader transposes every array fully (``.T``), which restores MATLAB's index order. Older
(v5) files are read with :func:`scipy.io.loadmat`, which needs no transpose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sciml_inverse import atomic_path

from ._darcy import DarcyData, grid_nodes

__all__ = ["load_darcy", "save_darcy"]

FORMAT = "sciml-inverse/darcy"
FORMAT_VERSION = 1
#: Solution keys tried, in order, in foreign (MATLAB) files.
SOLUTION_KEYS = ("sol", "sol_fdm", "sol_fem")
_RESERVED = ("format", "format_version")


def _encode_attr(key: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf" and arr.ndim == 1:
            return arr
        if arr.dtype.kind in "US" and arr.ndim == 1:
            return [str(v) for v in arr]
    raise TypeError(
        f"attribute {key!r} has a value of type {type(value).__name__} that cannot be stored; "
        f"use numbers, strings, booleans or flat sequences of them"
    )


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in value)
        return tuple(v.item() for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_darcy(data: DarcyData, path: str | os.PathLike[str]) -> Path:
    """Write a data set to HDF5, atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    data
        The data set; each entry of ``data.attrs`` becomes a root attribute (numbers, strings,
        booleans and flat sequences of them; sequences read back as tuples).
    path
        Destination (overwritten if it exists). Its folder must exist.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`DarcyData` or an attribute cannot be stored.
    ValueError
        If an attribute uses a reserved name (``format``, ``format_version``).
    FileNotFoundError
        If the destination folder does not exist.
    """
    import h5py

    if not isinstance(data, DarcyData):
        raise TypeError(f"data must be a DarcyData, got {type(data).__name__}")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"the folder {str(path.parent)!r} of {str(path)!r} does not exist; create it first"
        )
    reserved = sorted(set(data.attrs) & set(_RESERVED))
    if reserved:
        raise ValueError(f"attrs use reserved names {reserved}; rename them")
    encoded = {k: _encode_attr(k, v) for k, v in data.attrs.items()}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = FORMAT_VERSION
        for key, value in encoded.items():
            h5.attrs[key] = value
        h5.create_dataset("coeff", data=data.coeff, compression="gzip", shuffle=True)
        h5.create_dataset("sol", data=data.sol, compression="gzip", shuffle=True)
        h5.create_dataset("x", data=data.x)
    return path


def _is_matlab_hdf5(h5: Any, path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(128)
    if head.startswith(b"MATLAB"):
        return True
    return any("MATLAB_class" in h5[k].attrs for k in h5.keys() if not k.startswith("#"))


def _pick_solution_key(keys: Sequence[str], sol_key: str | None, path: Path) -> str:
    if sol_key is not None:
        if sol_key not in keys:
            raise KeyError(
                f"{str(path)!r} has no dataset {sol_key!r}; available: {sorted(keys)}"
            )
        return sol_key
    for key in SOLUTION_KEYS:
        if key in keys:
            return key
    raise KeyError(
        f"{str(path)!r} has no solution dataset (looked for {list(SOLUTION_KEYS)}); "
        f"available: {sorted(keys)}; pass sol_key= to choose one"
    )


def _from_arrays(
    arrays: Mapping[str, np.ndarray], keys: Sequence[str], sol_key: str | None, path: Path,
    source: str,
) -> DarcyData:
    if "coeff" not in keys:
        raise KeyError(
            f"{str(path)!r} has no dataset 'coeff' (the coefficient fields); "
            f"available: {sorted(keys)}"
        )
    skey = _pick_solution_key(keys, sol_key, path)
    coeff = np.asarray(arrays["coeff"], dtype=np.float64)
    sol = np.asarray(arrays[skey], dtype=np.float64)
    if coeff.ndim == 2:
        coeff, sol = coeff[None], sol.reshape((1, *sol.shape))
    if coeff.ndim != 3 or coeff.shape[1] != coeff.shape[2] or sol.shape != coeff.shape:
        raise ValueError(
            f"{str(path)!r}: expected 'coeff' and {skey!r} of shape (B, n, n) after the MATLAB "
            f"transpose, got {coeff.shape} and {sol.shape}"
        )
    n = coeff.shape[1]
    x = grid_nodes(n)
    if "X" in keys and "Y" in keys:
        gx = np.asarray(arrays["X"], dtype=np.float64)
        gy = np.asarray(arrays["Y"], dtype=np.float64)
        if gx.size == n * n and gy.size == n * n:
            x = np.stack([gx.reshape(n, n).ravel(), gy.reshape(n, n).ravel()], axis=1)
    attrs = {
        "source": source,
        "source_file": str(path),
        "sol_key": skey,
        "keys": tuple(sorted(keys)),
        "grid": n,
        "n": coeff.shape[0],
    }
    return DarcyData(coeff=coeff, sol=sol, x=x, attrs=attrs)


def load_darcy(path: str | os.PathLike[str], *, sol_key: str | None = None) -> DarcyData:
    """Read a Darcy data set written by :func:`save_darcy` or by the authors' MATLAB scripts.

    Parameters
    ----------
    path
        An HDF5 file of ours, a MATLAB v7.3 ``.mat`` file (HDF5; every array is transposed on
        reading, see the module documentation) or an older MATLAB v5 ``.mat`` file. Foreign
        files must hold ``coeff`` and a solution (``sol``, else ``sol_fdm``, else ``sol_fem``);
        ``X`` and ``Y`` meshes, when present, give the node coordinates (transposed like the
        fields, so ``x`` stays aligned with ``coeff.reshape(B, -1)``).
    sol_key
        Solution dataset of a foreign file to use instead of the default order.

    Returns
    -------
    DarcyData
        For our files, ``attrs`` are the stored generating parameters; for foreign files they
        record ``source``, ``source_file``, ``sol_key``, ``keys``, ``grid`` and ``n``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is neither HDF5 nor a MATLAB file, or its arrays have wrong shapes.
    KeyError
        If the file has no ``coeff`` or no solution dataset.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Darcy data file at {str(path)!r}")
    if not h5py.is_hdf5(path):
        with open(path, "rb") as fh:
            head = fh.read(128)
        if head.startswith(b"MATLAB 5.0"):
            from scipy.io import loadmat

            mat = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
            return _from_arrays(mat, list(mat), sol_key, path, "matlab-v5")
        raise ValueError(
            f"{str(path)!r} is neither an HDF5 file nor a MATLAB .mat file; "
            f"write it with save_darcy or MATLAB save(..., '-v7.3')"
        )
    with h5py.File(path, "r") as h5:
        keys = [k for k in h5.keys() if not k.startswith("#")]
        if h5.attrs.get("format") == FORMAT:
            for key in ("coeff", "sol", "x"):
                if key not in h5:
                    raise KeyError(
                        f"{str(path)!r} is a {FORMAT} file without dataset {key!r}; "
                        f"available: {sorted(keys)}"
                    )
            attrs = {
                k: _decode_attr(v) for k, v in h5.attrs.items() if k not in _RESERVED
            }
            return DarcyData(
                coeff=h5["coeff"][()], sol=h5["sol"][()], x=h5["x"][()], attrs=attrs
            )
        matlab = _is_matlab_hdf5(h5, path)
        wanted = {"coeff", "X", "Y", *SOLUTION_KEYS} | ({sol_key} if sol_key else set())
        arrays = {}
        for key in keys:
            if key in wanted and isinstance(h5[key], h5py.Dataset):
                arr = h5[key][()]
                arrays[key] = arr.T if matlab else arr
        return _from_arrays(
            arrays, keys, sol_key, path, "matlab-v7.3" if matlab else "hdf5"
        )
