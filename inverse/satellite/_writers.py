"""Streaming writers of a restoration: rows are written as the tiles finish (region writes into a
pre-created NetCDF-4 file or a tiled, compressed GeoTIFF), and the file appears at its final
path only when it is complete (:func:`sciml_inverse.atomic_path`: a temporary name, then
:func:`os.replace`).

Both are :class:`~inverse.satellite.TileSink` objects for
:func:`~inverse.satellite.restore_tiled`, used as context managers::

    with NetCDFSink(path, grid) as sink:
        restore_tiled(source, restorer, sink=sink)   # an exception removes the temporary file
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._io import GeoTransform, _atomic_path, _check_attr, _gt_string

__all__ = ["OutputGrid", "NetCDFSink", "GeoTIFFSink", "MultiSink"]

_BLOCK = 256


@dataclass
class OutputGrid:
    """What the output files describe: shape ``(C, H, W)``, georeferencing, bands, attributes.

    Attributes
    ----------
    shape : tuple of int
    transform : GDAL geotransform or None
    crs : str or None
    bands : list of int
        Band numbers of the source (from 1).
    band_names : list of str
    units : str
        CF ``units`` of ``restored``/``std`` (``"1"``: digital numbers of the input).
    attrs : dict
        Global attributes (settings of the degradation, method and tiling).
    has_std : bool
        Whether the method returns a posterior standard deviation.
    """

    shape: tuple[int, int, int]
    transform: GeoTransform | None = None
    crs: str | None = None
    bands: Sequence[int] = ()
    band_names: Sequence[str] = ()
    units: str = "1"
    attrs: Mapping[str, Any] = field(default_factory=dict)
    has_std: bool = True

    def __post_init__(self) -> None:
        c = self.shape[0]
        if not self.bands:
            self.bands = list(range(1, c + 1))
        if not self.band_names:
            self.band_names = [f"band_{b}" for b in self.bands]
        if len(self.bands) != c or len(self.band_names) != c:
            raise ValueError(f"{c} band(s) but {len(self.bands)} band numbers and "
                             f"{len(self.band_names)} names")

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-center ``x`` and ``y`` coordinates."""
        _c, h, w = self.shape
        x0, a, b, y0, d, e = self.transform or (0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        return (x0 + (np.arange(w) + 0.5) * a + 0.5 * b,
                y0 + (np.arange(h) + 0.5) * e + 0.5 * d)


class _FileSink:
    """Buffers rows into blocks of ``_BLOCK`` rows (chunk/strip aligned), writes them with
    ``_write_rows``, and moves the temporary file onto ``path`` on :meth:`commit`."""

    def __init__(self, path: str | os.PathLike, grid: OutputGrid) -> None:
        self.path = Path(path)
        self.grid = grid
        # the one atomic writer, held open across calls: commit() leaves it normally (the
        # temporary file moves onto path), abort() with an error (it is deleted)
        self._atomic = contextlib.ExitStack()
        self.tmp = self._atomic.enter_context(_atomic_path(self.path))
        self._pending: list[tuple[int, np.ndarray, np.ndarray | None, np.ndarray | None]] = []
        self._next = 0
        self.closed = False

    def write(self, rows: slice, restored: np.ndarray, std: np.ndarray | None,
              samples: np.ndarray | None) -> None:
        if rows.start != self._next:
            raise ValueError(f"rows must arrive in order: expected row {self._next}, got "
                             f"{rows.start}")
        self._next = rows.stop
        self._pending.append((rows.start, restored, std, samples))
        n = sum(p[1].shape[1] for p in self._pending)
        if n >= _BLOCK:
            self._flush(n - n % _BLOCK)

    def _flush(self, n: int) -> None:
        if n <= 0 or not self._pending:
            return
        r0 = self._pending[0][0]
        cat = [np.concatenate([p[i] for p in self._pending], axis=-2)
               if self._pending[0][i] is not None else None for i in (1, 2, 3)]
        self._write_rows(r0, *(None if a is None else a[..., :n, :] for a in cat))
        rest = cat[0].shape[-2] - n
        self._pending = [] if rest == 0 else [
            (r0 + n, *(None if a is None else a[..., n:, :].copy() for a in cat))]

    def _write_rows(self, r0: int, restored: np.ndarray, std: np.ndarray | None,
                    samples: np.ndarray | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close_file(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def commit(self) -> Path:
        """Write the remaining rows, close, and move the file onto its path."""
        if self._next != self.grid.shape[1]:
            raise RuntimeError(f"only {self._next} of {self.grid.shape[1]} rows were written")
        self._flush(sum(p[1].shape[1] for p in self._pending))
        self._close_file()
        self.closed = True
        self._atomic.close()
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (the path is left untouched)."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self._close_file()
            self.closed = True
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)  # removes self.tmp

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class NetCDFSink(_FileSink):
    """Writes ``restored``, ``std`` (and ``samples``) into a NetCDF-4 file (h5netcdf) row block
    by row block, with CF attributes (``units``, ``long_name``, ``grid_mapping``), the CF grid
    mapping ``spatial_ref`` (``crs_wkt``, ``GeoTransform``), the ``band_name`` coordinate, no
    ``_FillValue`` on coordinates, NaN as the data variables' ``_FillValue``, ``256 x 256``
    chunks compressed with zlib (level 1, shuffle). The layout is the one
    :func:`~inverse.satellite.write_restoration` writes and :func:`~inverse.satellite.read_raster`
    and rioxarray read."""

    def __init__(self, path: str | os.PathLike, grid: OutputGrid) -> None:
        import h5netcdf
        import h5py

        super().__init__(path, grid)
        c, h, w = grid.shape
        try:
            self.f = h5netcdf.File(self.tmp, "w")
            f = self.f
            f.dimensions = {"band": c, "y": h, "x": w}
            xs, ys = grid.coordinates()
            v = f.create_variable("band", ("band",), data=np.asarray(grid.bands, np.int64))
            v.attrs["long_name"] = "band number in the source"
            v = f.create_variable("band_name", ("band",), dtype=h5py.string_dtype())
            v[:] = np.asarray(list(grid.band_names), dtype=object)
            v.attrs["long_name"] = "band name in the source"
            for name, vals, axis in (("y", ys, "Y"), ("x", xs, "X")):
                v = f.create_variable(name, (name,), data=vals)
                v.attrs.update(_axis_attrs(axis, grid.crs))
            ref = f.create_variable("spatial_ref", (), dtype=np.int64)
            ref[...] = 0
            ref.attrs["GeoTransform"] = _gt_string(grid.transform or
                                                   (0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
            if grid.crs:
                ref.attrs["crs_wkt"] = grid.crs
                ref.attrs["spatial_ref"] = grid.crs
                ref.attrs.update(_grid_mapping_name(grid.crs))
            self._data_var("restored", "restored image (posterior mean), digital numbers of "
                                       "the input")
            if grid.has_std:
                self._data_var("std", "posterior standard deviation, digital numbers of the "
                                      "input")
            f.attrs["Conventions"] = "CF-1.8"
            for key, value in grid.attrs.items():
                f.attrs[str(key)] = _check_attr(str(key), value)
        except BaseException:
            self.abort()
            raise

    def _data_var(self, name: str, long_name: str, dims: tuple[str, ...] = ("band", "y", "x")
                  ) -> None:
        chunks = tuple(min(s, b) for s, b in zip(
            [self.f.dimensions[d].size for d in dims], (1,) * (len(dims) - 2) + (_BLOCK, _BLOCK),
            strict=True))
        v = self.f.create_variable(name, dims, dtype=np.float32, chunks=chunks,
                                   compression="gzip", compression_opts=1, shuffle=True,
                                   fillvalue=np.float32(np.nan))
        v.attrs.update(long_name=long_name, units=self.grid.units, grid_mapping="spatial_ref",
                       coordinates="spatial_ref band_name")

    def _write_rows(self, r0, restored, std, samples) -> None:
        rows = slice(r0, r0 + restored.shape[1])
        self.f.variables["restored"][:, rows, :] = restored
        if std is not None and "std" in self.f.variables:
            self.f.variables["std"][:, rows, :] = std
        if samples is not None:
            if "samples" not in self.f.variables:
                self.f.dimensions["sample"] = samples.shape[0]
                self._data_var("samples", "posterior samples, digital numbers of the input",
                               ("sample", "band", "y", "x"))
            self.f.variables["samples"][:, :, rows, :] = samples

    def _close_file(self) -> None:
        self.f.close()


class GeoTIFFSink(_FileSink):
    """Writes a tiled (``256 x 256`` blocks), deflate-compressed float32 GeoTIFF (BigTIFF when
    needed) with bands ``restored`` then ``std`` (one of each per source band, named by their
    band descriptions, e.g. ``restored`` / ``std`` for one band, ``restored:<name>`` for
    several), nodata NaN, the CRS and the transform; global attributes become metadata tags.
    With ``cog=True`` the finished file is converted to a Cloud-Optimized GeoTIFF (GDAL's COG
    driver: overviews, block layout) before it is moved onto ``path``."""

    def __init__(self, path: str | os.PathLike, grid: OutputGrid, *, cog: bool = False) -> None:
        import rasterio
        from rasterio.transform import Affine

        super().__init__(path, grid)
        self.cog = cog
        c, h, w = grid.shape
        n_out = c * (2 if grid.has_std else 1)
        profile: dict[str, Any] = {
            "driver": "GTiff", "height": h, "width": w, "count": n_out, "dtype": "float32",
            "nodata": float("nan"), "compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER"}
        if h >= _BLOCK and w >= _BLOCK:
            profile.update(tiled=True, blockxsize=_BLOCK, blockysize=_BLOCK)
        if grid.transform is not None:
            profile["transform"] = Affine.from_gdal(*grid.transform)
        if grid.crs:
            profile["crs"] = rasterio.crs.CRS.from_user_input(grid.crs)
        try:
            self.ds = rasterio.open(self.tmp, "w", **profile)
            names = self.band_descriptions()
            for i, name in enumerate(names, start=1):
                self.ds.set_band_description(i, name)
                self.ds.update_tags(i, units=grid.units)
            self.ds.update_tags(**{str(k): str(_check_attr(str(k), v))
                                   for k, v in grid.attrs.items()})
        except BaseException:
            self.abort()
            raise

    def band_descriptions(self) -> list[str]:
        """``restored`` / ``std`` (one band) or ``restored:<name>`` / ``std:<name>``."""
        kinds = ["restored", "std"] if self.grid.has_std else ["restored"]
        if self.grid.shape[0] == 1:
            return kinds
        return [f"{k}:{n}" for k in kinds for n in self.grid.band_names]

    def _write_rows(self, r0, restored, std, samples) -> None:
        from rasterio.windows import Window

        c = self.grid.shape[0]
        win = Window(0, r0, self.grid.shape[2], restored.shape[1])
        self.ds.write(restored.astype(np.float32), indexes=list(range(1, c + 1)), window=win)
        if std is not None and self.grid.has_std:
            self.ds.write(std.astype(np.float32), indexes=list(range(c + 1, 2 * c + 1)),
                          window=win)

    def _close_file(self) -> None:
        self.ds.close()
        if self.cog and not self.closed:
            import rasterio.shutil

            cog = self.tmp.with_suffix(".cog.partial")
            try:
                rasterio.shutil.copy(self.tmp, cog, driver="COG", compress="DEFLATE",
                                     blocksize=_BLOCK, predictor="FLOATING_POINT",
                                     BIGTIFF="IF_SAFER")
                os.replace(cog, self.tmp)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    cog.unlink()


class MultiSink:
    """Forwards rows to several sinks; commits all or aborts all."""

    def __init__(self, sinks: Sequence[Any]) -> None:
        self.sinks = list(sinks)

    def write(self, rows, restored, std, samples) -> None:
        for s in self.sinks:
            s.write(rows, restored, std, samples)

    def __enter__(self) -> MultiSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                for s in self.sinks:
                    s.commit()
            except BaseException:
                for s in self.sinks:
                    s.abort()
                raise
        else:
            for s in self.sinks:
                s.abort()


def _projected(crs: str | None) -> bool | None:
    if not crs:
        return None
    try:
        import pyproj
    except ImportError:  # pragma: no cover
        return None
    try:
        return bool(pyproj.CRS.from_user_input(crs).is_projected)
    except pyproj.exceptions.CRSError:
        return None


def _axis_attrs(axis: str, crs: str | None) -> dict[str, str]:
    attrs = {"axis": axis, "long_name": f"{axis.lower()} coordinate of pixel centers"}
    projected = _projected(crs)
    if projected:
        attrs.update(standard_name=f"projection_{axis.lower()}_coordinate", units="m")
    elif projected is False:
        attrs.update(standard_name="longitude" if axis == "X" else "latitude",
                     units="degrees_east" if axis == "X" else "degrees_north")
    return attrs


def _grid_mapping_name(crs: str) -> dict[str, str]:
    try:
        import pyproj

        cf = pyproj.CRS.from_user_input(crs).to_cf()
    except Exception:  # noqa: BLE001 - optional CF details only
        return {}
    name = cf.get("grid_mapping_name")
    return {"grid_mapping_name": str(name)} if name else {}
