"""Georeferenced raster I/O: GeoTIFF and NetCDF in, NetCDF and PNG out, written atomically.

Every raster is an :class:`xarray.DataArray` with dims ``(band, y, x)``, float32 values with NaN
at no-data pixels, ``x``/``y`` coordinates at pixel centers, and a scalar ``spatial_ref``
coordinate carrying the CRS (``crs_wkt``, as in CF-1.8 and rioxarray) and the affine transform
(``GeoTransform``, GDAL order ``"x0 dx rx y0 ry dy"``). The same layout is read back from the
NetCDF files written here, by this module and by rioxarray.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sciml_inverse import atomic_path, check_int

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

__all__ = [
    "read_raster", "write_raster", "write_restoration", "save_panel_png", "georeferenced",
    "GEOTIFF_SUFFIXES", "NETCDF_SUFFIXES",
]

#: File name suffixes read and written as GeoTIFF.
GEOTIFF_SUFFIXES = (".tif", ".tiff", ".gtiff")
#: File name suffixes read and written as NetCDF-4 (HDF5, through h5netcdf).
NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")

# GDAL order: x0, pixel width, row rotation, y0, column rotation, pixel height (negative).
GeoTransform = tuple[float, float, float, float, float, float]


# ------------------------------------------------------------------------ atomic writes
def _atomic_path(path: str | os.PathLike) -> contextlib.AbstractContextManager[Path]:
    """:func:`sciml_inverse.atomic_path` into an existing folder (a missing one is an error)."""
    return atomic_path(path, mkdir=False)


def _suffix(path: Path) -> str:
    return path.suffix.lower()


# ------------------------------------------------------------------------ georeferencing
def _gt_string(gt: GeoTransform) -> str:
    return " ".join(repr(float(v)) for v in gt)


def _parse_gt(value: Any) -> GeoTransform | None:
    try:
        vals = [float(v) for v in (value.split() if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        return None
    return tuple(vals) if len(vals) == 6 else None  # type: ignore[return-value]


def _scale_grid(gt: GeoTransform, scale: float) -> GeoTransform:
    """The grid whose pixels are ``scale`` times larger, with pixel (0, 0) centered on the same
    point as pixel (0, 0) of ``gt`` (the decimation keeps pixels ``(f i, f j)``)."""
    x0, a, b, y0, d, e = gt
    return (x0 + 0.5 * (a + b) * (1 - scale), a * scale, b * scale,
            y0 + 0.5 * (d + e) * (1 - scale), d * scale, e * scale)


def georeferenced(values: np.ndarray, *, transform: Sequence[float] | None = None,
                  crs: str | None = None, name: str | None = None,
                  attrs: Mapping[str, Any] | None = None) -> xr.DataArray:
    """Wrap an array as a ``(band, y, x)`` raster with coordinates and a ``spatial_ref``.

    Parameters
    ----------
    values : ndarray, shape ``(H, W)`` or ``(C, H, W)``
    transform : sequence of 6 floats, optional
        GDAL geotransform ``(x0, dx, rx, y0, ry, dy)`` of the upper-left corner; default: pixel
        indices (``(0, 1, 0, 0, 0, 1)``).
    crs : str, optional
        The CRS as WKT (or any string, e.g. ``"EPSG:32631"``).
    name : str, optional
    attrs : mapping, optional

    Returns
    -------
    xarray.DataArray
        Dims ``(band, y, x)``; ``band`` numbered from 1; ``x``, ``y`` at pixel centers.

    Raises
    ------
    ValueError
        ``values`` not 2-D or 3-D, or a transform that is not 6 numbers.
    """
    import xarray as xr

    values = np.asarray(values) if not isinstance(values, np.memmap) else values
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"a raster must be (H, W) or (band, H, W), got shape {values.shape}")
    c, h, w = values.shape
    gt = (0.0, 1.0, 0.0, 0.0, 0.0, 1.0) if transform is None else _parse_gt(transform)
    if gt is None:
        raise ValueError(f"transform must be 6 numbers in GDAL order, got {transform!r}")
    x0, a, b, y0, d, e = gt
    xs = x0 + (np.arange(w) + 0.5) * a + 0.5 * b
    ys = y0 + (np.arange(h) + 0.5) * e + 0.5 * d
    ref_attrs = {"GeoTransform": _gt_string(gt)}
    if crs:
        ref_attrs["crs_wkt"] = crs
        ref_attrs["spatial_ref"] = crs
    coords = {
        "band": ("band", np.arange(1, c + 1, dtype=np.int64)),
        "y": ("y", ys, {"axis": "Y", "long_name": "y coordinate of pixel centers"}),
        "x": ("x", xs, {"axis": "X", "long_name": "x coordinate of pixel centers"}),
        "spatial_ref": ((), np.int64(0), ref_attrs),
    }
    return xr.DataArray(values, dims=("band", "y", "x"), coords=coords, name=name,
                        attrs=dict(attrs or {}))


def _geo_of(da: xr.DataArray) -> tuple[GeoTransform | None, str | None]:
    """The transform and CRS of a raster made by :func:`georeferenced` (or rioxarray)."""
    gt, crs = None, None
    if "spatial_ref" in da.coords:
        ref = da.coords["spatial_ref"].attrs
        gt = _parse_gt(ref.get("GeoTransform"))
        crs = ref.get("crs_wkt") or ref.get("spatial_ref")
    if gt is None and {"x", "y"} <= set(da.coords) and da.sizes.get("x", 0) > 1 \
            and da.sizes.get("y", 0) > 1:
        xs, ys = np.asarray(da["x"], float), np.asarray(da["y"], float)
        dx, dy = np.diff(xs), np.diff(ys)
        if np.allclose(dx, dx[0], rtol=1e-6) and np.allclose(dy, dy[0], rtol=1e-6):
            gt = (xs[0] - dx[0] / 2, dx[0], 0.0, ys[0] - dy[0] / 2, 0.0, dy[0])
    return gt, crs


# ------------------------------------------------------------------------ reading
def _select_bands(values: np.ndarray, band: int | Sequence[int] | None,
                  path: Path) -> np.ndarray:
    n = values.shape[0]
    if band is None:
        return values
    bands = [band] if isinstance(band, (int, np.integer)) else list(band)
    for b in bands:
        if check_int("band", b, 1, hint="bands are numbered from 1") > n:
            raise ValueError(f"band {b!r} does not exist in {path.name}, which has {n} band(s) "
                             f"(bands are numbered from 1)")
    return values[[int(b) - 1 for b in bands]]


def _to_float(values: np.ndarray, nodata: float | None) -> np.ndarray:
    out = values.astype(np.float32, copy=True)
    if nodata is not None and not math.isnan(nodata):
        out[values == nodata] = np.nan
    return out


def _crs_from_epsg(epsg: int) -> str:
    try:
        import pyproj
    except ImportError:
        return f"EPSG:{epsg}"
    return pyproj.CRS.from_epsg(epsg).to_wkt()


def _parse_geokeys(directory: Sequence[int]) -> dict[int, int]:
    """Inline (SHORT) values of a GeoKeyDirectoryTag: ``{key id: value}``."""
    keys: dict[int, int] = {}
    n = int(directory[3]) if len(directory) >= 4 else 0
    for i in range(n):
        key, location, _count, value = (int(v) for v in directory[4 + 4 * i: 8 + 4 * i])
        if location == 0:
            keys[key] = value
    return keys


def _read_geotiff_tifffile(path: Path) -> tuple[np.ndarray, GeoTransform | None, str | None,
                                                 float | None, str]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        values = series.asarray()
        axes = series.axes
        tags = tif.pages[0].tags
        scale, tie, matrix, geokeys, nodata_tag = (
            None if tags.get(code) is None else tags.get(code).value
            for code in (33550, 33922, 34264, 34735, 42113))
    if "S" in axes and axes.index("S") == len(axes) - 1:
        values = np.moveaxis(values, -1, 0)
    if values.ndim == 2:
        values = values[None]
    if values.ndim != 3:
        raise ValueError(f"{path.name}: unsupported TIFF layout {axes!r} (expected YX, YXS or "
                         "SYX)")
    keys = _parse_geokeys(geokeys) if geokeys is not None else {}
    gt: GeoTransform | None = None
    if scale is not None and tie is not None:
        sx, sy = float(scale[0]), float(scale[1])
        i, j, _, x, y, _ = (float(v) for v in tie[:6])
        gt = (x - i * sx, sx, 0.0, y + j * sy, 0.0, -sy)
    elif matrix is not None:
        m = [float(v) for v in matrix]
        gt = (m[3], m[0], m[1], m[7], m[4], m[5])
    if gt is not None and keys.get(1025) == 2:  # RasterPixelIsPoint: tie point at pixel center
        x0, a, b, y0, d, e = gt
        gt = (x0 - 0.5 * (a + b), a, b, y0 - 0.5 * (d + e), d, e)
    epsg = keys.get(3072) or keys.get(2048)
    crs = _crs_from_epsg(epsg) if epsg and epsg != 32767 else None
    nodata = None
    if nodata_tag is not None:
        with contextlib.suppress(ValueError):
            nodata = float(str(nodata_tag).strip().strip("\x00"))
    return values, gt, crs, nodata, str(values.dtype)


def _read_geotiff_rioxarray(path: Path) -> tuple[np.ndarray, GeoTransform | None, str | None,
                                                  float | None, str]:
    import warnings

    import rioxarray

    with warnings.catch_warnings():
        # rioxarray < 0.20 multiplies affine transforms with `*` (affine >= 2.4 warns)
        warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
        da = rioxarray.open_rasterio(path, masked=False, cache=False)
    with da:
        values = np.asarray(da.values)
        nodata = da.rio.nodata
        crs = da.rio.crs.to_wkt() if da.rio.crs is not None else None
        gt = tuple(da.rio.transform().to_gdal())
    return values, gt, crs, (None if nodata is None else float(nodata)), str(values.dtype)


def _read_netcdf(path: Path, variable: str | None) -> tuple[np.ndarray, GeoTransform | None,
                                                            str | None, str]:
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        candidates = [k for k, v in ds.data_vars.items()
                      if v.dims[-2:] == ("y", "x") and v.ndim in (2, 3)]
        if variable is None:
            if len(candidates) != 1:
                raise ValueError(f"{path.name} has {len(candidates)} raster variables with dims "
                                 f"(..., y, x): {candidates}; choose one with variable= "
                                 "(--variable)")
            variable = candidates[0]
        if variable not in ds.data_vars:
            raise ValueError(f"{path.name} has no variable {variable!r}; its variables are "
                             f"{list(ds.data_vars)}")
        da = ds[variable].load()
    if da.dims[-2:] != ("y", "x") or da.ndim not in (2, 3):
        raise ValueError(f"variable {variable!r} of {path.name} has dims {da.dims}; expected "
                         "(y, x) or (band, y, x)")
    gt, crs = _geo_of(da)
    dtype = str(da.encoding.get("dtype", da.dtype))
    values = np.asarray(da.values)
    return (values[None] if values.ndim == 2 else values), gt, crs, dtype


def read_raster(path: str | os.PathLike, band: int | Sequence[int] | None = None, *,
                variable: str | None = None, engine: str | None = None) -> xr.DataArray:
    """Read a GeoTIFF or NetCDF raster into a ``(band, y, x)`` DataArray, keeping CRS and
    transform.

    Parameters
    ----------
    path : str or path-like
        ``.tif``/``.tiff`` (GeoTIFF) or ``.nc``/``.nc4`` (NetCDF-4, read with h5netcdf).
    band : int or sequence of int, optional
        Band(s) to keep, numbered from 1 (GDAL convention); default all.
    variable : str, optional
        NetCDF variable; default the only variable with dims ``(..., y, x)``.
    engine : {"rioxarray", "tifffile"}, optional
        GeoTIFF reader; default rioxarray when installed, else tifffile (which parses the
        ModelPixelScale, ModelTiepoint/ModelTransformation and GeoKeyDirectory tags; the CRS
        comes from the EPSG code, as WKT when pyproj is installed).

    Returns
    -------
    xarray.DataArray
        float32 values in the file's digital numbers with NaN at no-data pixels (the GDAL nodata
        tag or the NetCDF ``_FillValue``); attributes ``source``, ``source_dtype`` and, for a
        GeoTIFF with a nodata tag, ``nodata``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Unsupported extension, a band that does not exist, an ambiguous or missing NetCDF
        variable, or a raster without any valid (non-NaN) pixel.
    ImportError
        ``engine="rioxarray"`` without rioxarray.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in GEOTIFF_SUFFIXES + NETCDF_SUFFIXES:
        raise ValueError(f"unsupported raster file {path.name!r}: expected a GeoTIFF "
                         f"({', '.join(GEOTIFF_SUFFIXES)}) or NetCDF "
                         f"({', '.join(NETCDF_SUFFIXES)}) file")
    if not path.is_file():
        raise FileNotFoundError(f"no such raster file: {str(path)!r}")
    if engine not in (None, "rioxarray", "tifffile"):
        raise ValueError(f"engine must be None, 'rioxarray' or 'tifffile', got {engine!r}")
    extra_attrs: dict[str, Any] = {}
    if suffix in NETCDF_SUFFIXES:
        values, gt, crs, dtype = _read_netcdf(path, variable)
        values = values.astype(np.float32)
    else:
        if variable is not None:
            raise ValueError("variable= only applies to NetCDF files")
        if engine is None:
            try:
                import rioxarray  # noqa: F401
                engine = "rioxarray"
            except ImportError:
                engine = "tifffile"
        reader = _read_geotiff_rioxarray if engine == "rioxarray" else _read_geotiff_tifffile
        raw, gt, crs, nodata, dtype = reader(path)
        values = _to_float(raw, nodata)
        if nodata is not None:
            extra_attrs["nodata"] = float(nodata)
    values = _select_bands(values, band, path)
    if not np.isfinite(values).any():
        raise ValueError(f"{path.name} has no valid pixel (all no-data/NaN)")
    return georeferenced(values, transform=gt, crs=crs, name=path.stem,
                         attrs={"source": str(path), "source_dtype": dtype, **extra_attrs})


# ------------------------------------------------------------------------ writing
def _check_attr(key: str, value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if value is None:
        return "none"
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.dtype.kind in "iuf" and arr.ndim == 1:
            return arr
    raise TypeError(f"attribute {key!r} must be a str, number, bool, None or a 1-D numeric "
                    f"sequence, got {type(value).__name__}")


def _as_raster(name: str, value: Any, like: xr.DataArray | None) -> xr.DataArray:
    import xarray as xr

    if isinstance(value, xr.DataArray):
        da = value
        if da.ndim == 2:
            da = da.expand_dims(band=[1])
        if da.dims != ("band", "y", "x"):
            raise ValueError(f"{name} must have dims (band, y, x), got {da.dims}")
        return da
    arr = np.asarray(value) if not isinstance(value, np.memmap) else value
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or (band, H, W), got shape {arr.shape}")
    if like is None:
        return georeferenced(arr, name=name)
    if arr.shape != like.shape:
        raise ValueError(f"{name} has shape {arr.shape} but restored has {like.shape}")
    return like.copy(data=arr)


def _encoding(da: xr.DataArray, compress: bool) -> dict[str, Any]:
    enc: dict[str, Any] = {"dtype": "float32"}
    if compress:
        enc.update(zlib=True, complevel=4, chunksizes=tuple(
            min(s, c) for s, c in zip(da.shape, (1,) * (da.ndim - 2) + (512, 512), strict=True)))
    return enc


def write_restoration(path: str | os.PathLike, restored: xr.DataArray | np.ndarray,
                      std: xr.DataArray | np.ndarray, samples: np.ndarray | None = None, *,
                      attrs: Mapping[str, Any] | None = None, compress: bool = True) -> Path:
    """Write a restoration as NetCDF-4 (engine h5netcdf), atomically.

    Variables: ``restored`` and ``std`` ``(band, y, x)``, optional ``samples``
    ``(sample, band, y, x)``, all float32 with ``grid_mapping = "spatial_ref"``; coordinates
    ``x``, ``y`` and the CF grid mapping ``spatial_ref`` (``crs_wkt``, ``GeoTransform``) taken
    from ``restored`` (see :func:`georeferenced`); ``attrs`` (the degradation and model
    settings) become global attributes. The file is written to a temporary file in the same
    directory and moved onto ``path`` with :func:`os.replace`: an interrupted call leaves no
    partial file and an existing ``path`` untouched.

    Parameters
    ----------
    path : str or path-like
        Output ``.nc`` file; its directory must exist.
    restored : DataArray ``(band, y, x)`` or array ``(H, W)`` / ``(C, H, W)``
        The restored image (MMSE); a DataArray carries the georeferencing.
    std : array or DataArray, same shape
        The posterior standard deviation.
    samples : array, shape ``(k, C, H, W)``, optional
        Posterior samples.
    attrs : mapping, optional
        Global attributes (str, number, bool, None or 1-D numeric sequences).
    compress : bool, default True
        zlib level 4 with ``512 x 512`` chunks.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Wrong suffix, or shapes that do not match.
    TypeError
        An attribute of an unsupported type.
    FileNotFoundError
        The output directory does not exist.
    """
    import xarray as xr

    path = Path(path)
    if _suffix(path) not in NETCDF_SUFFIXES:
        raise ValueError(f"write_restoration writes NetCDF: use a {'/'.join(NETCDF_SUFFIXES)} "
                         f"file name, got {path.name!r}")
    restored_da = _as_raster("restored", restored, None).astype(np.float32)
    std_da = _as_raster("std", std, restored_da).astype(np.float32)
    if std_da.shape != restored_da.shape:
        raise ValueError(f"std has shape {std_da.shape} but restored has {restored_da.shape}")
    gt, crs = _geo_of(restored_da)
    base = georeferenced(np.zeros((1, 1, 1), np.float32), transform=gt, crs=crs)
    ref_attrs = dict(base.coords["spatial_ref"].attrs)
    coords = {"band": restored_da["band"].values, "y": restored_da["y"].values,
              "x": restored_da["x"].values}
    variables: dict[str, xr.DataArray] = {}
    meta = {"restored": "restored image (posterior mean)",
            "std": "posterior standard deviation"}
    for key, da in (("restored", restored_da), ("std", std_da)):
        variables[key] = xr.DataArray(da.values, dims=("band", "y", "x"), coords=coords,
                                      attrs={"long_name": meta[key], "units": "1",
                                             "grid_mapping": "spatial_ref"})
    if samples is not None:
        arr = np.asarray(samples) if not isinstance(samples, np.memmap) else samples
        if arr.ndim == 3:
            arr = arr[:, None]
        if arr.ndim != 4 or arr.shape[1:] != restored_da.shape:
            raise ValueError(f"samples must have shape (k, *{restored_da.shape}), got "
                             f"{arr.shape}")
        variables["samples"] = xr.DataArray(
            arr, dims=("sample", "band", "y", "x"), coords=coords,
            attrs={"long_name": "posterior samples", "grid_mapping": "spatial_ref"})
    global_attrs: dict[str, Any] = {"Conventions": "CF-1.8"}
    for key, value in (attrs or {}).items():
        global_attrs[str(key)] = _check_attr(str(key), value)
    ds = xr.Dataset(variables, attrs=global_attrs)
    ds = ds.assign_coords(spatial_ref=((), np.int64(0), ref_attrs))
    ds["x"].attrs.update(axis="X", long_name="x coordinate of pixel centers")
    ds["y"].attrs.update(axis="Y", long_name="y coordinate of pixel centers")
    encoding = {k: _encoding(v, compress) for k, v in variables.items()}
    encoding.update({c: {"_FillValue": None} for c in ("x", "y", "band")})  # CF: coordinates
    with _atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    return path


def write_raster(path: str | os.PathLike, raster: xr.DataArray, *, dtype: str | None = None,
                 nodata: float | None = None) -> Path:
    """Write a ``(band, y, x)`` raster as GeoTIFF or NetCDF, atomically, keeping the
    georeferencing.

    Parameters
    ----------
    path : str or path-like
        ``.tif``/``.tiff`` (rasterio when installed, else tifffile with GeoTIFF tags: the EPSG
        code of the CRS is kept, not a custom WKT) or ``.nc`` (h5netcdf; variable named after
        ``raster.name`` or ``"data"``).
    raster : xarray.DataArray
        As returned by :func:`read_raster` or :func:`georeferenced`.
    dtype : str, optional
        Stored dtype, e.g. ``"uint16"`` for digital numbers (values are rounded and NaN becomes
        ``nodata``); default float32.
    nodata : float, optional
        No-data value written for NaN pixels (required for integer dtypes when there are NaN;
        no no-data tag is written otherwise). The attributes of ``raster`` are kept (NetCDF
        global attributes; GeoTIFF metadata tags with rasterio).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Unsupported suffix, dims other than ``(band, y, x)``, or NaN pixels with an integer
        dtype and no ``nodata``.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in GEOTIFF_SUFFIXES + NETCDF_SUFFIXES:
        raise ValueError(f"unsupported raster file {path.name!r}: expected a GeoTIFF "
                         f"({', '.join(GEOTIFF_SUFFIXES)}) or NetCDF "
                         f"({', '.join(NETCDF_SUFFIXES)}) file")
    raster = _as_raster("raster", raster, None)
    gt, crs = _geo_of(raster)
    np_dtype = np.dtype(dtype or "float32")
    values = np.asarray(raster.values, dtype=np.float64)
    has_nan = bool(np.isnan(values).any())
    if np_dtype.kind in "iu":
        if has_nan and nodata is None:
            raise ValueError(f"the raster has NaN (no-data) pixels and dtype {np_dtype} has no "
                             "NaN: pass nodata= (a value that is not a valid pixel value)")
        info = np.iinfo(np_dtype)
        values = np.clip(np.round(values), info.min, info.max)
        if has_nan:
            values = np.where(np.isnan(values), nodata, values)
    elif nodata is not None and has_nan:
        values = np.where(np.isnan(values), nodata, values)
    values = values.astype(np_dtype)
    meta = {str(k): _check_attr(str(k), v) for k, v in raster.attrs.items()}
    with _atomic_path(path) as tmp:
        if suffix in NETCDF_SUFFIXES:
            da = georeferenced(values, transform=gt, crs=crs)
            name = raster.name or "data"
            da.attrs.update(grid_mapping="spatial_ref", units="1",
                            long_name=f"{name}: digital numbers")
            enc: dict[str, Any] = {"zlib": True, "complevel": 4}
            if nodata is not None:
                enc["_FillValue"] = np_dtype.type(nodata)
            ds = da.to_dataset(name=name)
            ds.attrs.update(meta)
            ds.to_netcdf(tmp, engine="h5netcdf", encoding={
                name: enc, **{c: {"_FillValue": None} for c in ("x", "y", "band")}})
        else:
            _write_geotiff(tmp, values, gt, crs, nodata, meta)
    return path


def _write_geotiff(tmp: Path, values: np.ndarray, gt: GeoTransform | None, crs: str | None,
                   nodata: float | None, meta: Mapping[str, Any]) -> None:
    try:
        import rasterio
        from rasterio.transform import Affine
    except ImportError:
        rasterio = None
    if rasterio is not None:
        profile = {"driver": "GTiff", "height": values.shape[1], "width": values.shape[2],
                   "count": values.shape[0], "dtype": values.dtype.name, "compress": "deflate"}
        if gt is not None:
            profile["transform"] = Affine.from_gdal(*gt)
        if crs:
            profile["crs"] = rasterio.crs.CRS.from_user_input(crs)
        if nodata is not None:
            profile["nodata"] = nodata
        with rasterio.Env(), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values)
            dst.update_tags(**{k: str(v) for k, v in meta.items()})
        return
    import tifffile

    extratags = []
    if gt is not None:
        x0, a, _b, y0, _d, e = gt
        extratags += [(33550, "d", 3, (a, -e, 0.0), False),
                      (33922, "d", 6, (0.0, 0.0, 0.0, x0, y0, 0.0), False)]
    epsg = _epsg_of(crs)
    if epsg is not None:
        projected = _is_projected(crs, epsg)
        keys = [1, 1, 0, 3, 1024, 0, 1, 1 if projected else 2, 1025, 0, 1, 1,
                3072 if projected else 2048, 0, 1, epsg]
        extratags.append((34735, "H", len(keys), keys, False))
    if nodata is not None:
        extratags.append((42113, "s", 0, f"{nodata:g}", False))
    tifffile.imwrite(tmp, values, photometric="minisblack", planarconfig="separate",
                     compression="zlib", extratags=extratags)


def _epsg_of(crs: str | None) -> int | None:
    if not crs:
        return None
    if crs.upper().startswith("EPSG:"):
        return int(crs.split(":")[1])
    try:
        import pyproj
    except ImportError:
        return None
    return pyproj.CRS.from_user_input(crs).to_epsg()


def _is_projected(crs: str | None, epsg: int) -> bool:
    try:
        import pyproj
    except ImportError:
        return not (4000 <= epsg < 5000)
    return bool(pyproj.CRS.from_user_input(crs or f"EPSG:{epsg}").is_projected)


# ------------------------------------------------------------------------ PNG panel
def _display(a: Any) -> np.ndarray:
    import xarray as xr

    arr = np.asarray(a.values if isinstance(a, xr.DataArray) else a, dtype=np.float32)
    if arr.ndim == 3:
        arr = np.moveaxis(arr, 0, -1) if arr.shape[0] == 3 else arr[0]
    if arr.ndim not in (2, 3):
        raise ValueError(f"cannot display an array of shape {arr.shape}")
    return arr


def save_panel_png(path: str | os.PathLike, observed: Any, restored: Any, std: Any, *,
                   title: str | None = None, dpi: int = 110,
                   unit: str = "digital numbers") -> Path:
    """Save an ``observed | restored | std`` panel as PNG (matplotlib, Agg), atomically.

    The observation and restoration share one contrast stretch (1st-99th percentiles of the
    observation); the observation is drawn over the same extent, so a decimated observation
    appears at the scale of the restoration. Three-band rasters are shown as RGB, others by
    their first band.

    Parameters
    ----------
    path : str or path-like
        Output ``.png`` file.
    observed, restored, std : arrays or DataArrays ``(H, W)`` or ``(C, H, W)``
    title : str, optional
    dpi : int, default 110
    unit : str, default "digital numbers"
        Unit of the values, written on the std colorbar.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Not a ``.png`` path, or arrays that cannot be displayed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    if _suffix(path) != ".png":
        raise ValueError(f"save_panel_png writes PNG: use a .png file name, got {path.name!r}")
    obs, rest, sd = _display(observed), _display(restored), _display(std)
    finite = obs[np.isfinite(obs)]
    lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    hi = hi if hi > lo else lo + 1e-6
    h, w = rest.shape[:2]
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    extent = (0, w, h, 0)
    for ax, img, name in ((axes[0], obs, "observed"), (axes[1], rest, "restored (MMSE)")):
        if img.ndim == 3:
            ax.imshow(np.clip((img - lo) / (hi - lo), 0, 1), extent=extent,
                      interpolation="nearest")
        else:
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
        ax.set_title(name)
    sd_show = sd.mean(axis=-1) if sd.ndim == 3 else sd
    im = axes[2].imshow(sd_show, cmap="magma", extent=extent, interpolation="nearest")
    axes[2].set_title("posterior std")
    fig.colorbar(im, ax=axes[2], shrink=0.8, label=f"posterior std ({unit})")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    with _atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
