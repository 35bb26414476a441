"""Windowed (out-of-core) reading of a georeferenced raster: :class:`RasterSource`.

A scene is never loaded whole: :func:`open_raster` returns a reader whose :meth:`RasterSource.read`
returns one window as float32 digital numbers with NaN at no-data pixels. GeoTIFFs are read with
rasterio windows (one block-aligned read per window), NetCDF variables with lazily indexed
xarray/h5netcdf variables; an in-memory :class:`xarray.DataArray` is wrapped with
:meth:`RasterSource.from_dataarray`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._io import (
    GEOTIFF_SUFFIXES,
    NETCDF_SUFFIXES,
    GeoTransform,
    _geo_of,
    _select_bands,
    georeferenced,
)

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = ["RasterSource", "open_raster", "RasterStats"]


@dataclass(frozen=True)
class RasterStats:
    """Streaming statistics of a raster (:meth:`RasterSource.stats`): the minimum and maximum of
    the valid pixels (NaN when there is none) and the number of valid pixels."""

    minimum: float
    maximum: float
    n_valid: int


class RasterSource:
    """A ``(band, y, x)`` raster read window by window.

    Attributes
    ----------
    shape : tuple of int
        ``(C, H, W)`` after band selection.
    transform : tuple of 6 floats or None
        GDAL geotransform.
    crs : str or None
        The CRS as WKT.
    nodata : float or None
        The source's no-data value (its pixels read as NaN).
    dtype : str
        The stored dtype (e.g. ``"uint16"``).
    bands : list of int
        The selected band numbers (from 1).
    band_names : list of str
        Band descriptions (GeoTIFF) or names; ``"band_<n>"`` when the file has none.
    path : pathlib.Path or None
    name : str
    """

    def __init__(self, shape: tuple[int, int, int], *, transform: GeoTransform | None,
                 crs: str | None, nodata: float | None, dtype: str, bands: Sequence[int],
                 band_names: Sequence[str], path: Path | None, name: str) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.transform = transform
        self.crs = crs
        self.nodata = nodata
        self.dtype = dtype
        self.bands = [int(b) for b in bands]
        self.band_names = [str(n) for n in band_names]
        self.path = path
        self.name = name
        self.ndim = 3

    # -- to override
    def _read(self, rows: slice, cols: slice) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the file handle (a no-op for in-memory sources)."""

    # -- public
    def read(self, rows: slice, cols: slice) -> np.ndarray:
        """The window ``[rows, cols]`` as float32 ``(C, h, w)`` with NaN at no-data pixels."""
        h, w = self.shape[1:]
        r0, r1, _ = rows.indices(h)
        c0, c1, _ = cols.indices(w)
        return self._read(slice(r0, r1), slice(c0, c1))

    def __getitem__(self, key: Any) -> np.ndarray:
        if not (isinstance(key, tuple) and len(key) == 3 and key[0] == slice(None)
                and all(isinstance(k, slice) for k in key[1:])):
            raise TypeError("a RasterSource is indexed as source[:, rows, cols] with slices")
        return self.read(key[1], key[2])

    def __enter__(self) -> RasterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def attrs(self) -> dict[str, str]:
        """``source`` and ``source_dtype``, as in :func:`~inverse.satellite.read_raster`."""
        return {"source": "" if self.path is None else str(self.path), "source_dtype": self.dtype}

    def blocks(self, rows_per_block: int | None = None):
        """Iterate over ``(rows, block)`` strips of full width (about 16 MB each)."""
        c, h, w = self.shape
        step = rows_per_block or max(1, (1 << 22) // max(1, c * w))
        for r in range(0, h, step):
            rows = slice(r, min(h, r + step))
            yield rows, self.read(rows, slice(0, w))

    def stats(self) -> RasterStats:
        """Minimum, maximum and count of the valid pixels, in one streaming pass."""
        lo, hi, n = math.inf, -math.inf, 0
        for _rows, blk in self.blocks():
            k = int(np.count_nonzero(~np.isnan(blk)))
            if k:
                n += k
                lo = min(lo, float(np.fmin.reduce(blk, axis=None)))
                hi = max(hi, float(np.fmax.reduce(blk, axis=None)))
        return RasterStats(lo if n else math.nan, hi if n else math.nan, n)

    def preview(self, max_side: int = 2048) -> np.ndarray:
        """The raster subsampled (every ``k``-th pixel) to at most ``max_side`` pixels a side,
        read strip by strip: ``(C, h, w)`` float32."""
        c, h, w = self.shape
        k = max(1, -(-max(h, w) // max_side))
        rows = []
        for r, blk in self.blocks(max(k, (1 << 23) // max(1, c * w) // k * k)):
            rows.append(blk[:, (-r.start) % k::k, ::k])
        return np.concatenate(rows, axis=1)

    def to_dataarray(self) -> xr.DataArray:
        """The whole raster in memory (small rasters only), as :func:`read_raster` returns it."""
        values = self.read(slice(None), slice(None))
        da = georeferenced(values, transform=self.transform, crs=self.crs, name=self.name,
                           attrs=self.attrs)
        return da.assign_coords(band=np.asarray(self.bands, dtype=np.int64))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, shape={self.shape}, dtype={self.dtype}, "
                f"nodata={self.nodata})")

    @classmethod
    def from_dataarray(cls, da: xr.DataArray) -> RasterSource:
        """Wrap an in-memory ``(band, y, x)`` DataArray (e.g. from :func:`read_raster`)."""
        return _ArraySource(da)


class _ArraySource(RasterSource):
    def __init__(self, da: xr.DataArray) -> None:
        if da.ndim == 2:
            da = da.expand_dims(band=[1])
        if da.ndim != 3 or tuple(da.dims) != ("band", "y", "x"):
            raise ValueError(f"observation must be a (band, y, x) DataArray, got dims {da.dims}")
        gt, crs = _geo_of(da)
        bands = ([int(b) for b in da["band"].values] if "band" in da.coords
                 else list(range(1, da.sizes["band"] + 1)))
        names = (list(da.coords["band_name"].values) if "band_name" in da.coords
                 else [f"band_{b}" for b in bands])
        src = da.attrs.get("source")
        super().__init__(da.shape, transform=gt, crs=crs, nodata=da.attrs.get("nodata"),
                         dtype=str(da.attrs.get("source_dtype", da.dtype)), bands=bands,
                         band_names=names, path=Path(src) if src else None,
                         name=str(da.name or "observation"))
        self._values = da.values if isinstance(da.values, np.ndarray) else np.asarray(da.values)

    def _read(self, rows: slice, cols: slice) -> np.ndarray:
        return np.array(self._values[:, rows, cols], dtype=np.float32)


class _RasterioSource(RasterSource):
    def __init__(self, path: Path, band: int | Sequence[int] | None) -> None:
        import rasterio

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            self._ds = rasterio.open(path)
        ds = self._ds
        try:
            all_bands = np.arange(1, ds.count + 1)[:, None, None]
            bands = [int(b) for b in _select_bands(all_bands, band, path)[:, 0, 0]]
            gt = None if ds.transform.is_identity and ds.crs is None \
                else tuple(ds.transform.to_gdal())
            names = [ds.descriptions[b - 1] or f"band_{b}" for b in bands]
            super().__init__((len(bands), ds.height, ds.width), transform=gt,
                             crs=None if ds.crs is None else ds.crs.to_wkt(),
                             nodata=None if ds.nodata is None else float(ds.nodata),
                             dtype=ds.dtypes[0], bands=bands, band_names=names, path=path,
                             name=path.stem)
        except BaseException:
            ds.close()
            raise

    def _read(self, rows: slice, cols: slice) -> np.ndarray:
        from rasterio.windows import Window

        win = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        raw = self._ds.read(self.bands, window=win)
        out = raw.astype(np.float32)
        if self.nodata is not None and not math.isnan(self.nodata):
            out[raw == self.nodata] = np.nan
        return out

    def close(self) -> None:
        self._ds.close()


class _NetCDFSource(RasterSource):
    def __init__(self, path: Path, band: int | Sequence[int] | None,
                 variable: str | None) -> None:
        import xarray as xr

        self._ds = xr.open_dataset(path, engine="h5netcdf")
        try:
            ds = self._ds
            candidates = [k for k, v in ds.data_vars.items()
                          if v.dims[-2:] == ("y", "x") and v.ndim in (2, 3)]
            if variable is None:
                if len(candidates) != 1:
                    raise ValueError(f"{path.name} has {len(candidates)} raster variables with "
                                     f"dims (..., y, x): {candidates}; choose one with "
                                     "variable= (--variable)")
                variable = candidates[0]
            if variable not in ds.data_vars:
                raise ValueError(f"{path.name} has no variable {variable!r}; its variables are "
                                 f"{list(ds.data_vars)}")
            da = ds[variable]
            if da.dims[-2:] != ("y", "x") or da.ndim not in (2, 3):
                raise ValueError(f"variable {variable!r} of {path.name} has dims {da.dims}; "
                                 "expected (y, x) or (band, y, x)")
            if da.ndim == 2:
                da = da.expand_dims(band=[1])
            n = da.shape[0]
            idx = _select_bands(np.arange(n)[:, None, None], band, path)[:, 0, 0]
            self._da = da.isel({da.dims[0]: [int(i) for i in idx]})
            numbers = ([int(b) for b in da[da.dims[0]].values[idx]]
                       if da.dims[0] in da.coords else [int(i) + 1 for i in idx])
            names = (list(self._da.coords["band_name"].values)
                     if "band_name" in self._da.coords else [f"band_{b}" for b in numbers])
            gt, crs = _geo_of(da)
            fill = da.encoding.get("_FillValue")
            super().__init__(self._da.shape, transform=gt, crs=crs,
                             nodata=None if fill is None else float(fill),
                             dtype=str(da.encoding.get("dtype", da.dtype)), bands=numbers,
                             band_names=names, path=path, name=path.stem)
        except BaseException:
            self._ds.close()
            raise

    def _read(self, rows: slice, cols: slice) -> np.ndarray:
        return np.asarray(self._da[:, rows, cols].values, dtype=np.float32)

    def close(self) -> None:
        self._ds.close()


def open_raster(path: str | os.PathLike, band: int | Sequence[int] | None = None, *,
                variable: str | None = None) -> RasterSource:
    """Open a GeoTIFF or NetCDF raster for windowed reading (nothing is loaded yet).

    Parameters
    ----------
    path : str or path-like
        ``.tif``/``.tiff`` (rasterio) or ``.nc``/``.nc4`` (h5netcdf).
    band : int or sequence of int, optional
        Band(s) to keep, numbered from 1; default all.
    variable : str, optional
        NetCDF variable; default the only variable with dims ``(..., y, x)``.

    Returns
    -------
    RasterSource
        Close it (or use it as a context manager) when done.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unsupported extension, a band that does not exist, an ambiguous NetCDF variable, or a
        file that cannot be read as a raster.

    Examples
    --------
    >>> from inverse.satellite import demo_tile_path, open_raster
    >>> with open_raster(demo_tile_path()) as src:
    ...     src.shape, src.read(slice(0, 2), slice(0, 3)).shape
    ((1, 256, 256), (1, 2, 3))
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in GEOTIFF_SUFFIXES + NETCDF_SUFFIXES:
        raise ValueError(f"unsupported raster file {path.name!r}: expected a GeoTIFF "
                         f"({', '.join(GEOTIFF_SUFFIXES)}) or NetCDF "
                         f"({', '.join(NETCDF_SUFFIXES)}) file")
    if not path.is_file():
        raise FileNotFoundError(f"no such raster file: {str(path)!r}")
    if suffix in NETCDF_SUFFIXES:
        try:
            return _NetCDFSource(path, band, variable)
        except (OSError, KeyError) as err:
            raise ValueError(f"could not read {path.name} as NetCDF: {err}") from None
    if variable is not None:
        raise ValueError("variable= (--variable) only applies to NetCDF files")
    try:
        import rasterio
    except ImportError:  # pragma: no cover - geo extra missing: read it whole
        from ._io import read_raster

        return RasterSource.from_dataarray(read_raster(path, band))
    try:
        return _RasterioSource(path, band)
    except rasterio.errors.RasterioIOError as err:
        raise ValueError(f"could not read {path.name} as a GeoTIFF: {err}") from None
