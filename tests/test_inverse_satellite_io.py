"""Georeferenced I/O: NetCDF round trip (CRS, transform, coordinates, attributes), GeoTIFF
reading with rioxarray and with the tifffile fallback (synthetic and real files), atomic
writes, the PNG panel, and the input errors."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from inverse.satellite import (
    georeferenced,
    read_raster,
    save_panel_png,
    write_raster,
    write_restoration,
)
from inverse.satellite._io import _geo_of, _scale_grid

# rioxarray < 0.20 multiplies affine transforms with `*`, which affine >= 2.4 flags.
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

SHARED_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "satellite" / "train"
UTM31 = "EPSG:32631"
GT = (600000.0, 0.5, 0.0, 5750000.0, 0.0, -0.5)


def _wkt(code: str) -> str:
    pyproj = pytest.importorskip("pyproj")
    return pyproj.CRS.from_user_input(code).to_wkt()


def _epsg(crs: str) -> int:
    pyproj = pytest.importorskip("pyproj")
    return pyproj.CRS.from_user_input(crs).to_epsg()


def _raster(shape=(1, 24, 32), seed=0, crs=UTM31):
    rng = np.random.default_rng(seed)
    return georeferenced(rng.random(shape).astype(np.float32) * 4095, transform=GT, crs=crs,
                         name="obs")


def test_georeferenced_coordinates_are_pixel_centers():
    da = _raster()
    assert da.dims == ("band", "y", "x") and list(da.band.values) == [1]
    assert da.x.values[0] == 600000.25 and da.y.values[0] == 5749999.75
    assert np.allclose(np.diff(da.x), 0.5) and np.allclose(np.diff(da.y), -0.5)
    assert _geo_of(da) == (GT, UTM31)
    # the transform is recovered from regular coordinates alone as well
    assert _geo_of(da.drop_vars("spatial_ref"))[0] == pytest.approx(GT)


def test_scale_grid_keeps_the_first_pixel_center():
    coarse = _scale_grid(GT, 2.0)
    assert coarse[1] == 1.0 and coarse[5] == -1.0
    fine, c = georeferenced(np.zeros((4, 4)), transform=GT), georeferenced(
        np.zeros((2, 2)), transform=coarse)
    assert c.x.values[0] == fine.x.values[0] and c.y.values[0] == fine.y.values[0]
    assert c.x.values[1] == fine.x.values[2]  # decimation keeps pixels (2i, 2j)
    assert _scale_grid(coarse, 0.5) == pytest.approx(GT)


def test_netcdf_round_trip_keeps_values_georeferencing_and_attributes(tmp_path):
    wkt = _wkt(UTM31)
    restored = georeferenced(np.random.default_rng(1).random((1, 24, 32)), transform=GT,
                             crs=wkt)
    std = np.full((1, 24, 32), 0.01)
    samples = np.random.default_rng(2).random((3, 1, 24, 32))
    attrs = {"degradation_mtf": 0.1, "degradation_quantize": True, "vble_method": "vble_xz",
             "model": None, "tile_list": (1, 2)}
    path = write_restoration(tmp_path / "out.nc", restored, std, samples, attrs=attrs)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert set(ds.data_vars) == {"restored", "std", "samples"}
        np.testing.assert_allclose(ds["restored"].values, restored.values, rtol=1e-6)
        np.testing.assert_allclose(ds["samples"].values, samples, rtol=1e-6)
        np.testing.assert_array_equal(ds["x"].values, restored.x.values)
        np.testing.assert_array_equal(ds["y"].values, restored.y.values)
        assert ds["restored"].attrs["grid_mapping"] == "spatial_ref"
        assert ds["spatial_ref"].attrs["crs_wkt"] == wkt
        assert ds.attrs["degradation_mtf"] == 0.1 and ds.attrs["degradation_quantize"] == 1
        assert ds.attrs["vble_method"] == "vble_xz" and ds.attrs["model"] == "none"
        assert ds["restored"].dtype == np.float32
    back = read_raster(path, variable="std")
    assert _geo_of(back) == (GT, wkt)
    np.testing.assert_allclose(back.values, std)
    rioxarray = pytest.importorskip("rioxarray")
    with rioxarray.open_rasterio(path, variable="restored") as rda:  # a third-party reader
        assert rda.rio.crs.to_epsg() == 32631
        assert tuple(rda.rio.transform().to_gdal()) == pytest.approx(GT)


def test_write_restoration_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.nc"
    path.write_bytes(b"previous result")

    def broken(self, target, *args, **kwargs):
        Path(target).write_bytes(b"partial")
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        write_restoration(path, np.zeros((8, 8)), np.zeros((8, 8)))
    assert path.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.nc"]


@pytest.mark.parametrize("writer", ["rasterio", "tifffile"])
@pytest.mark.parametrize("engine", ["rioxarray", "tifffile"])
def test_synthetic_geotiff_round_trip(tmp_path, monkeypatch, writer, engine):
    pytest.importorskip(engine)
    pytest.importorskip(writer)
    if writer == "tifffile":
        monkeypatch.setitem(sys.modules, "rasterio", None)  # force the fallback writer
    da = _raster((3, 20, 28))
    dn = np.round(da.values)
    path = write_raster(tmp_path / "obs.tif", da, dtype="uint16")
    monkeypatch.delitem(sys.modules, "rasterio", raising=False)
    back = read_raster(path, engine=engine)
    np.testing.assert_array_equal(back.values, dn)
    gt, crs = _geo_of(back)
    assert gt == pytest.approx(GT) and _epsg(crs) == 32631
    assert back.attrs["source_dtype"] == "uint16"
    assert read_raster(path, band=[3, 1], engine=engine).values[0].tolist() == dn[2].tolist()


def test_nodata_pixels_become_nan(tmp_path):
    pytest.importorskip("rasterio")
    da = _raster((1, 10, 10))
    da.values[0, :3] = np.nan
    path = write_raster(tmp_path / "nd.tif", da, dtype="uint16", nodata=65535)
    for engine in ("rioxarray", "tifffile"):
        back = read_raster(path, engine=engine)
        assert np.isnan(back.values[0, :3]).all() and np.isfinite(back.values[0, 3:]).all()
    with pytest.raises(ValueError, match="pass nodata="):
        write_raster(tmp_path / "bad.tif", da, dtype="uint16")


def test_netcdf_raster_round_trip_with_write_raster(tmp_path):
    da = _raster((2, 12, 16))
    da.attrs["seed"] = 3
    path = write_raster(tmp_path / "obs.nc", da)
    back = read_raster(path)
    np.testing.assert_allclose(back.values, da.values)
    assert _geo_of(back) == (GT, UTM31) and back.name == "obs"


@pytest.mark.skipif(not SHARED_TRAIN.is_dir(),
                    reason=f"shared data folder {SHARED_TRAIN} is absent (offline data set)")
@pytest.mark.parametrize("name", ["atlanta_pan_0p5m.tif", "naip_nd_5m_20170827.tif"])
def test_real_geotiff_reads_identically_with_both_engines(name):
    pytest.importorskip("rioxarray")
    path = SHARED_TRAIN / name
    a, b = read_raster(path, engine="rioxarray"), read_raster(path, engine="tifffile")
    np.testing.assert_array_equal(a.values, b.values)
    assert _geo_of(a)[0] == _geo_of(b)[0]
    assert _epsg(_geo_of(a)[1]) == _epsg(_geo_of(b)[1]) in (32616, 26914)
    assert a.x.values[0] - _geo_of(a)[0][0] == pytest.approx(_geo_of(a)[0][1] / 2)


def test_bundled_demo_tile_is_georeferenced():
    from inverse.satellite import demo_tile_path

    da = read_raster(demo_tile_path(), engine="tifffile")
    assert da.shape == (1, 256, 256) and da.attrs["source_dtype"] == "uint8"
    gt, crs = _geo_of(da)
    assert gt == (486862.0, 5.0, 0.0, 5207008.0, 0.0, -5.0)
    assert _epsg(crs) == 26914
    assert 0 < float(da.min()) and float(da.max()) <= 255


def test_read_raster_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such raster file"):
        read_raster(tmp_path / "missing.tif")
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ValueError, match="unsupported raster file 'image.jpg'"):
        read_raster(tmp_path / "image.jpg")
    path = write_raster(tmp_path / "two.nc", _raster((2, 8, 8)))
    with pytest.raises(ValueError, match="band 3 does not exist in two.nc, which has 2"):
        read_raster(path, band=3)
    with pytest.raises(ValueError, match=r"band must be an int >= 1, got 0; bands are numbered "
                                         r"from 1"):
        read_raster(path, band=[1, 0])
    with pytest.raises(TypeError, match=r"band must be an int >= 1, got 1.0"):
        read_raster(path, band=[1.0])
    with pytest.raises(TypeError, match=r"band must be an int >= 1, got True"):
        read_raster(path, band=[True])
    empty = _raster((1, 8, 8))
    empty.values[:] = np.nan
    write_raster(tmp_path / "empty.nc", empty)
    with pytest.raises(ValueError, match="no valid pixel"):
        read_raster(tmp_path / "empty.nc")
    ds = xr.Dataset({"a": (("y", "x"), np.zeros((3, 3))), "b": (("y", "x"), np.ones((3, 3)))})
    ds.to_netcdf(tmp_path / "ab.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="choose one with variable="):
        read_raster(tmp_path / "ab.nc")
    with pytest.raises(ValueError, match="no variable 'c'"):
        read_raster(tmp_path / "ab.nc", variable="c")
    assert float(read_raster(tmp_path / "ab.nc", variable="b").mean()) == 1.0
    with pytest.raises(ValueError, match="engine must be"):
        read_raster(path, engine="gdal")


def test_write_errors(tmp_path):
    with pytest.raises(ValueError, match="writes NetCDF"):
        write_restoration(tmp_path / "out.tif", np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="std has shape"):
        write_restoration(tmp_path / "out.nc", np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="samples must have shape"):
        write_restoration(tmp_path / "out.nc", np.zeros((4, 4)), np.zeros((4, 4)),
                          np.zeros((2, 1, 4, 5)))
    with pytest.raises(TypeError, match="attribute 'bad'"):
        write_restoration(tmp_path / "out.nc", np.zeros((4, 4)), np.zeros((4, 4)),
                          attrs={"bad": {"a": 1}})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_restoration(tmp_path / "no" / "out.nc", np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="unsupported raster file"):
        write_raster(tmp_path / "x.png", _raster())
    assert not list(tmp_path.iterdir())


def test_save_panel_png(tmp_path):
    mpimg = pytest.importorskip("matplotlib.image")
    restored = np.random.default_rng(0).random((1, 32, 32))
    observed = restored[:, ::2, ::2]  # a decimated observation is drawn at the same scale
    path = save_panel_png(tmp_path / "panel.png", observed, restored, 0.1 * restored,
                          title="demo")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.shape[1] > img.shape[0] > 100 and img.std() > 0.01
    assert [p.name for p in tmp_path.iterdir()] == ["panel.png"]
    rgb = np.random.default_rng(1).random((3, 16, 16))
    save_panel_png(tmp_path / "rgb.png", rgb, rgb, rgb)
    with pytest.raises(ValueError, match="use a .png file name"):
        save_panel_png(tmp_path / "panel.jpg", observed, restored, restored)


def test_streaming_sinks_commit_atomically_and_abort_cleanly(tmp_path):
    """The streaming writers go through sciml_inverse.atomic_path: nothing at the path until
    commit (then the usual permissions), and an aborted sink leaves no file at all."""
    import os
    import stat

    from inverse.satellite import NetCDFSink, OutputGrid, read_raster

    grid = OutputGrid((1, 8, 8))
    data = np.arange(64, dtype=np.float32).reshape(1, 8, 8)
    path = tmp_path / "out.nc"
    with NetCDFSink(path, grid) as sink:
        sink.write(slice(0, 4), data[:, :4], data[:, :4] * 0 + 1, None)
        assert not path.exists() and len(list(tmp_path.iterdir())) == 1  # the temporary file
        sink.write(slice(4, 8), data[:, 4:], data[:, 4:] * 0 + 1, None)
    np.testing.assert_array_equal(read_raster(path, variable="restored").values, data)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(RuntimeError, match="tile failed"), NetCDFSink(tmp_path / "b.nc", grid) as s:
        s.write(slice(0, 4), data[:, :4], data[:, :4], None)
        raise RuntimeError("tile failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"]
