"""Whole scenes out of core: windowed reading (:func:`open_raster`), rows streamed into NetCDF
and GeoTIFF files as tiles finish (equal to the in-memory result, atomic, resumable), the
classical restorers (Tikhonov's exact posterior std against a dense computation, TV), and the
``restore --method tikhonov|tv`` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from inverse.satellite import (
    PleiadesDegradation,
    TikhonovOptions,
    TikhonovTileRestorer,
    TVOptions,
    TVTileRestorer,
    georeferenced,
    open_raster,
    read_raster,
    restore_raster,
    write_raster,
)
from inverse.satellite._io import _geo_of
from sciml_inverse._cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
pytest.importorskip("rasterio")

UTM31 = "EPSG:32631"
GT = (600000.0, 2.0, 0.0, 5750000.0, 0.0, -2.0)


def _scene(tmp_path, shape=(1, 80, 96), seed=0, nodata=None, name="obs.tif", dtype="uint16"):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[1], : shape[2]]
    base = 1500 + 800 * np.sin(xx / 7.0) * np.cos(yy / 11.0)
    vals = np.stack([base + 100 * k + 30 * rng.standard_normal(base.shape)
                     for k in range(shape[0])]).clip(0, 4095).round()
    da = georeferenced(vals.astype(np.float32), transform=GT, crs=UTM31)
    if nodata is not None:
        da.values[:, :5, :7] = np.nan
    path = tmp_path / name
    write_raster(path, da, dtype=dtype, nodata=nodata)
    return path


@pytest.mark.parametrize("suffix", [".tif", ".nc"])
def test_open_raster_reads_windows_equal_to_the_whole_file(tmp_path, suffix):
    path = _scene(tmp_path, (2, 40, 50), nodata=0, name="s" + suffix)
    whole = read_raster(path)
    with open_raster(path) as src:
        assert src.shape == (2, 40, 50) and src.bands == [1, 2]
        np.testing.assert_array_equal(src.read(slice(3, 17), slice(9, 44)),
                                      whole.values[:, 3:17, 9:44])
        np.testing.assert_array_equal(src[:, 0:40, 0:50], whole.values)
        assert np.isnan(src.read(slice(0, 2), slice(0, 2))).all()  # nodata -> NaN
        stats = src.stats()
        assert stats.n_valid == np.isfinite(whole.values).sum()
        assert stats.maximum == np.nanmax(whole.values)
        gt, crs = _geo_of(whole)
        assert src.transform == pytest.approx(gt) and src.crs == crs
        np.testing.assert_array_equal(src.preview(max_side=20), whole.values[:, ::3, ::3])
    with open_raster(path, band=2) as src:
        np.testing.assert_array_equal(src.read(slice(0, 40), slice(0, 50)), whole.values[1:])
        assert src.bands == [2]
    with pytest.raises(ValueError, match="band 3 does not exist"):
        open_raster(path, band=3)


def _dense(op, shape):
    n = int(np.prod(shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    return op(eye).reshape(n, -1).T  # columns: A e_i


@pytest.mark.parametrize("f", [1, 2])
def test_tikhonov_mean_and_std_are_the_exact_gaussian_posterior(f):
    deg = PleiadesDegradation(mtf=0.2, decimation=f, noise_a=1e-4, noise_b=1e-3)
    h = 16
    rng = np.random.default_rng(0)
    y = (0.3 + 0.1 * rng.standard_normal((1, h // f, h // f))).astype(np.float32)
    fn = TikhonovTileRestorer(deg)
    out = fn(y)
    yt = torch.from_numpy(y.astype(np.float64))
    sigma2 = deg.noise_model().a + deg.noise_model().b * float(yt.mean())
    rho = fn.rho(yt, sigma2)
    a = _dense(deg.operator((1, h, h), dtype=torch.float64), (1, h, h))
    prec = (a.T @ a + rho * torch.eye(h * h, dtype=torch.float64)) / sigma2
    cov = torch.linalg.inv(prec)
    m = float(yt.mean())
    mean = m + cov @ (a.T @ (yt.flatten() - m)) / sigma2
    np.testing.assert_allclose(out["restored"][0], mean.reshape(h, h).numpy(), atol=1e-5)
    np.testing.assert_allclose(out["std"][0], cov.diagonal().sqrt().reshape(h, h).numpy(),
                               rtol=1e-4)
    # a fixed rho is used as given
    fixed = TikhonovTileRestorer(deg, TikhonovOptions(rho=0.5))
    assert fixed.rho(yt, sigma2) == 0.5
    with pytest.raises(ValueError, match="rho must be a finite number > 0"):
        TikhonovOptions(rho=-1.0)
    # non-finite options are rejected (a NaN tolerance would never stop, inf weights/rho are
    # meaningless), through the shared validators
    with pytest.raises(ValueError, match="rho must be a finite number > 0, got inf"):
        TikhonovOptions(rho=math.inf)
    with pytest.raises(ValueError, match="tol must be a finite number >= 0, got nan"):
        TVOptions(tol=math.nan)
    with pytest.raises(ValueError, match="weight must be a finite number > 0, got inf"):
        TVOptions(weight=math.inf)


def test_tikhonov_std_is_calibrated_on_its_own_model():
    """Draw x from the Gaussian prior and y from the model: +-2 std covers ~95.4 %."""
    deg = PleiadesDegradation(mtf=0.15, decimation=2, noise_a=1e-4, noise_b=0.0, quantize=False)
    h, tau2, m = 64, 0.01, 0.4
    fn = TikhonovTileRestorer(deg, TikhonovOptions(rho=1e-4 / tau2))
    gen = torch.Generator().manual_seed(3)
    op = deg.operator((1, h, h), dtype=torch.float64)
    hits = []
    for _ in range(8):
        x = m + tau2 ** 0.5 * torch.randn((1, h, h), generator=gen, dtype=torch.float64)
        y = op(x[None])[0] + 1e-2 * torch.randn((1, h // 2, h // 2), generator=gen,
                                                dtype=torch.float64)
        y = y - y.mean() + m  # the restorer centres its prior on the observation's mean
        out = fn(y.numpy().astype(np.float32))
        hits.append(np.abs(out["restored"] - (x - x.mean() + m).numpy()) < 2 * out["std"])
    cov = float(np.mean(hits))
    assert 0.93 < cov < 0.975, cov


def test_tv_restorer_denoises_and_has_no_std():
    deg = PleiadesDegradation(mtf=0.5, noise_a=1e-3, noise_b=0.0, quantize=False)
    x = np.zeros((1, 32, 32), np.float32)
    x[:, 8:24, 8:24] = 0.6
    y = deg.simulate(torch.from_numpy(x), torch.Generator().manual_seed(0)).numpy()
    out = TVTileRestorer(deg)(y)
    assert out["std"] is None and out["restored"].shape == (1, 32, 32)
    assert np.mean((out["restored"] - x) ** 2) < 0.5 * np.mean((y - x) ** 2)


@pytest.mark.parametrize("f", [1, 2])
def test_streamed_files_equal_the_in_memory_restoration(tmp_path, f):
    path = _scene(tmp_path, (2, 70, 90), nodata=0)
    deg = PleiadesDegradation(decimation=f)
    fn = TikhonovTileRestorer(deg)
    kw = dict(tile=32, overlap=8, progress=False)
    mem = restore_raster(path, deg, restorer=fn, **kw)
    nc, tif = tmp_path / "out.nc", tmp_path / "out.tif"
    res = restore_raster(path, deg, restorer=fn, out=nc, geotiff=tif, **kw)
    assert res.restored is None and res.paths == [nc, tif]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obs.tif", "out.nc", "out.tif"]
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["restored"].values, mem.restored.values, rtol=1e-6)
        np.testing.assert_allclose(ds["std"].values, mem.std.values, rtol=1e-6)
        assert list(ds["band_name"].values) == ["band_1", "band_2"]
        assert ds["restored"].attrs["grid_mapping"] == "spatial_ref"
        assert ds["restored"].attrs["units"] == "1" and "long_name" in ds["std"].attrs
        for coord in ("x", "y", "band"):
            assert "_FillValue" not in ds[coord].encoding or \
                ds[coord].encoding["_FillValue"] is None
        assert ds.attrs["method"] == "tikhonov" and ds.attrs["source_nodata"] == 0
        np.testing.assert_allclose(ds["x"].values, mem.restored["x"].values)
    # the no-data corner (5 x 7 observation pixels) stays no-data, everything else is restored
    gap = np.zeros(mem.restored.shape[1:], bool)
    gap[:5 * f, :7 * f] = True
    assert np.isnan(mem.restored.values[:, gap]).all() and np.isnan(mem.std.values[:, gap]).all()
    assert np.isfinite(mem.restored.values[:, ~gap]).all()
    filled = restore_raster(path, deg, restorer=fn, keep_nodata=False, **kw)
    assert np.isfinite(filled.restored.values).all()
    np.testing.assert_allclose(filled.restored.values[:, 40:, 40:],
                               mem.restored.values[:, 40:, 40:], rtol=1e-6)
    rio = pytest.importorskip("rioxarray")
    with rio.open_rasterio(tif) as da:
        assert da.shape == (4, 70 * f, 90 * f)
        assert list(da.attrs["long_name"]) == ["restored:band_1", "restored:band_2",
                                               "std:band_1", "std:band_2"]
        np.testing.assert_allclose(da.values[:2], mem.restored.values, rtol=1e-6)
        np.testing.assert_allclose(da.values[2:], mem.std.values, rtol=1e-6)
        assert da.rio.crs.to_epsg() == 32631
        assert da.rio.transform().a == pytest.approx(GT[1] / f)


def test_an_interrupted_stream_leaves_no_file_and_resumes(tmp_path):
    path = _scene(tmp_path)
    deg = PleiadesDegradation()
    inner = TikhonovTileRestorer(deg)
    calls = []

    def failing(obs, mask):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return inner(obs, mask)

    failing.settings = inner.settings
    out = tmp_path / "r.nc"
    kw = dict(tile=32, overlap=8, progress=False, work_dir=tmp_path / "work")
    with pytest.raises(KeyboardInterrupt):
        restore_raster(path, deg, restorer=failing, out=out, **kw)
    assert not out.exists() and not list(tmp_path.glob(".r.nc*"))
    n_done = len(calls) - 1
    res = restore_raster(path, deg, restorer=failing, out=out, **kw)
    assert res.tiled.n_computed == res.tiled.n_tiles - n_done
    ref = restore_raster(path, deg, restorer=inner, tile=32, overlap=8, progress=False)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["restored"].values, ref.restored.values, rtol=1e-6)


def test_restore_command_with_classical_methods(tmp_path, capsys):
    path = _scene(tmp_path)
    out = tmp_path / "t.tif"
    assert main(["restore", str(path), "--method", "tikhonov", "--tile", "32", "--overlap", "8",
                 "--quiet", "--out", str(out), "--png", str(tmp_path / "t.png")]) == 0
    with open_raster(out) as src:
        assert src.band_names == ["restored", "std"] and src.shape == (2, 80, 96)
        assert np.nanmin(src.read(slice(0, 80), slice(0, 96))[1]) > 0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    # the same command again refuses to replace the output, then replaces it when asked
    argv = ["restore", str(path), "--method", "tv", "--tile", "32", "--overlap", "8", "--quiet",
            "--out", str(out)]
    assert main(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    with open_raster(out) as src:
        assert src.band_names == ["restored"]
    nc = tmp_path / "t.nc"
    assert main(["restore", str(path), "--method", "tv", "--tile", "32", "--overlap", "8",
                 "--quiet", "--out", str(nc)]) == 0
    with xr.open_dataset(nc, engine="h5netcdf") as ds:
        assert "std" not in ds and ds.attrs["method"] == "tv"


# ------------------------------------------------------------------ noise estimation
def _piecewise_smooth(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n] / n
    x = 0.15 + 0.6 * (0.5 + 0.5 * np.sin(3 * xx + 2 * yy)) * (0.5 + 0.5 * np.cos(2 * yy))
    for _ in range(12):  # flat blocks with sharp edges (roofs, fields)
        r, c, s = rng.integers(0, n - 60, 3)
        s = 20 + s % 60
        x[r:r + s, c:c + s] = rng.uniform(0.05, 0.95)
    return x


@pytest.mark.parametrize(("a", "b", "f", "seed"), [
    (1e-5, 1e-4, 1, 0), (1e-4, 1e-3, 2, 1), (4e-5, 2e-5, 1, 2), (2e-6, 3e-4, 1, 3)])
def test_estimate_noise_recovers_known_poisson_gaussian_parameters(a, b, f, seed):
    from inverse.satellite import estimate_noise

    deg = PleiadesDegradation(mtf=0.1, noise_a=a, noise_b=b, decimation=f)
    x = torch.from_numpy(_piecewise_smooth(1024, seed))
    y = deg.simulate(x[None], torch.Generator().manual_seed(seed))[0].numpy() * 4095
    est = estimate_noise(y, n_bits=12)
    assert abs(est.a / a - 1) < 0.2 and abs(est.b / b - 1) < 0.2, (est.a, est.b)


@pytest.mark.parametrize(("kw", "exc", "match"), [
    ({"n_bits": 0}, ValueError, r"n_bits must be an int in \[1, 32\], got 0; the bit depth"),
    ({"n_bits": 33}, ValueError, r"n_bits must be an int in \[1, 32\], got 33"),
    ({"n_bits": 12.0}, TypeError, r"n_bits must be an int in \[1, 32\], got 12.0"),
    ({"n_bits": True}, TypeError, r"n_bits must be an int"),
    ({"n_bins": 1}, ValueError, r"n_bins must be an int >= 2"),
])
def test_estimate_noise_rejects_bad_settings(kw, exc, match):
    from inverse.satellite import estimate_noise

    with pytest.raises(exc, match=match):
        estimate_noise(np.zeros((8, 8), np.float32), **kw)


def test_estimate_noise_fits_the_binned_variances_exactly_when_they_are_linear():
    from inverse.satellite._noise_estimation import _fit

    u = np.linspace(0.1, 0.9, 9)
    a, b = _fit(u, 2e-5 + 3e-4 * u, np.full(9, 100))
    assert a == pytest.approx(2e-5, rel=1e-9) and b == pytest.approx(3e-4, rel=1e-9)
    a, b = _fit(u, 1e-4 - 5e-5 * u, np.full(9, 100))  # decreasing: b clipped at 0
    assert b == 0.0 and a > 0


def test_estimate_noise_command_and_restore_uses_the_estimate(tmp_path, capsys):
    import importlib.metadata
    import json

    from sciml_inverse._cli import build_parser

    deg = PleiadesDegradation(mtf=0.1, noise_a=3e-5, noise_b=2e-4)
    x = torch.from_numpy(_piecewise_smooth(512, 5))
    y = deg.simulate(x[None], torch.Generator().manual_seed(0))[0].numpy() * 4095
    path = tmp_path / "obs.tif"
    write_raster(path, georeferenced(y, transform=GT, crs=UTM31), dtype="uint16")
    ep = importlib.metadata.EntryPoint(name="estimate-noise",
                                       value="inverse.satellite._cli:estimate_noise",
                                       group="sciml_inverse.commands")
    parser = build_parser([ep])
    args = parser.parse_args(["estimate-noise", str(path), "--json", str(tmp_path / "n.json")])
    assert args.func(args) == 0
    got = json.loads((tmp_path / "n.json").read_text())
    assert abs(got["a"] / 3e-5 - 1) < 0.2 and abs(got["b"] / 2e-4 - 1) < 0.2
    assert "--noise" in capsys.readouterr().out
    assert args.func(args) == 1  # the JSON exists: --overwrite needed
    assert "pass --overwrite" in capsys.readouterr().err
    for bad, msg in ((["--bits", "20"], "larger than the 16-bit"),
                     (["--band", "2"], "band 2 does not exist")):
        args = parser.parse_args(["estimate-noise", str(path), *bad])
        assert args.func(args) == 1 and msg in capsys.readouterr().err
    out = tmp_path / "r.nc"
    assert main(["restore", str(path), "--method", "tikhonov", "--tile", "128", "--quiet",
                 "--out", str(out)]) == 0
    assert "estimated noise" in capsys.readouterr().err
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["noise_estimated"] == 1
        assert ds.attrs["degradation_noise_a"] == pytest.approx(got["a"])
        assert ds.attrs["degradation_noise_b"] == pytest.approx(got["b"])


def test_ctrl_c_and_sigterm_leave_no_output_and_one_line(tmp_path):
    """A real ``restore`` process interrupted by SIGINT, then by SIGTERM, while it writes."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    path = _scene(tmp_path, (1, 512, 512))
    root = Path(__file__).resolve().parents[1]
    code = ("import sys, time\n"
            "import inverse.satellite._classical as c\n"
            "orig = c.TikhonovTileRestorer.__call__\n"
            "def slow(self, *a):\n"
            "    time.sleep(1.0)\n"
            "    return orig(self, *a)\n"
            "c.TikhonovTileRestorer.__call__ = slow\n"
            "from sciml_inverse._cli import main\n"
            "print('started', flush=True)\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    for sig in (signal.SIGINT, signal.SIGTERM):
        out = tmp_path / f"r{int(sig)}.nc"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "restore", str(path), "--method", "tikhonov",
             "--noise", "1e-5", "1e-4", "--tile", "64", "--overlap", "16", "--quiet", "--out",
             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            cwd=tmp_path)
        assert proc.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(f".{out.name}.*")) and time.monotonic() < deadline:
            time.sleep(0.2)  # until the output's temporary file exists: work has started
        proc.send_signal(sig)
        try:  # a hang guard, generous: on a loaded 2-core machine the clean-up took > 120 s
            _, err = proc.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"no exit 400 s after {sig.name}; stderr: {err[-2000:]}")
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == [
            "sciml-inverse restore: interrupted; no output was written"], err
        assert not out.exists() and not list(tmp_path.glob(f".{out.name}.*"))


def test_a_cluster_of_processes_gives_the_serial_result(tmp_path, capsys):
    import warnings

    distributed = pytest.importorskip("distributed")
    path = _scene(tmp_path, (2, 96, 112))
    deg = PleiadesDegradation(decimation=2)
    fn = TikhonovTileRestorer(deg)
    kw = dict(tile=64, overlap=16, progress=False)
    serial = restore_raster(path, deg, restorer=fn, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dist = restore_raster(path, deg, restorer=fn, dask_scheduler=cluster.scheduler_address,
                                  **kw)
        assert not [w for w in caught if "large graph" in str(w.message).lower()]
        np.testing.assert_allclose(dist.restored.values, serial.restored.values, rtol=1e-6)
        np.testing.assert_allclose(dist.std.values, serial.std.values, rtol=1e-6)
        assert dist.tiled.n_computed == serial.tiled.n_tiles
        out = tmp_path / "c.nc"
        assert main(["restore", str(path), "--method", "tikhonov", "--decimation", "2",
                     "--noise", "1e-5", "1e-4", "--tile", "64", "--overlap", "16", "--quiet",
                     "--dask-scheduler", cluster.scheduler_address, "--out", str(out)]) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        np.testing.assert_allclose(ds["restored"].values, serial.restored.values, rtol=1e-6)
    assert main(["restore", str(path), "--method", "tikhonov", "--dask-scheduler", "nowhere",
                 "--out", str(tmp_path / "d.nc")]) == 1
    assert "scheduler address" in capsys.readouterr().err


def test_netcdf_outputs_follow_cf_no_fill_value_on_coordinates(tmp_path):
    import h5py

    from inverse.satellite import write_restoration

    da = georeferenced(np.ones((1, 8, 8), np.float32), transform=GT, crs=UTM31)
    write_restoration(tmp_path / "r.nc", da, da)
    write_raster(tmp_path / "w.nc", da.rename("obs"))
    restore_raster(_scene(tmp_path), PleiadesDegradation(), restorer=TikhonovTileRestorer(
        PleiadesDegradation()), out=tmp_path / "s.nc", tile=64, overlap=16, progress=False)
    for name, var in (("r.nc", "restored"), ("w.nc", "obs"), ("s.nc", "std")):
        with h5py.File(tmp_path / name) as f:
            for coord in ("x", "y", "band"):
                assert "_FillValue" not in f[coord].attrs, (name, coord)
            assert f[var].attrs["grid_mapping"] == "spatial_ref" and "units" in f[var].attrs
            assert "long_name" in f[var].attrs
        pytest.importorskip("rioxarray")  # registers the .rio accessor
        with xr.open_dataset(tmp_path / name, engine="h5netcdf", decode_coords="all") as ds:
            assert ds[var].rio.crs.to_epsg() == 32631


def test_tiling_benchmark_generates_and_restores_through_the_cli(tmp_path):
    """Smoke test of ``benchmarks/bench_satellite_tiling.py`` (no timing or memory asserted)."""
    from script_loader import load_script

    bench = load_script("benchmarks/bench_satellite_tiling.py", "_bench_satellite_tiling")
    inp, out = tmp_path / "scene.tif", tmp_path / "r.nc"
    bench.generate(str(inp), 300, rows=128)
    with open_raster(inp) as src:
        assert src.shape == (1, 300, 300) and src.dtype == "uint16" and src.nodata == 0
        stats = src.stats()
        assert stats.maximum <= 4095 and stats.n_valid == 300 * 300 - 100 * 100
    res = bench.run_cli(str(inp), str(out), "tikhonov", 128)
    assert res["peak_rss_mb"] >= res["rss_before_mb"] > 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["restored"].shape == (1, 300, 300)
        assert np.isfinite(ds["restored"].values[:, 100:, 100:]).all()
        assert np.isnan(ds["restored"].values[:, :40, :40]).all()  # the no-data corner


def test_degrade_and_restore_carry_the_nodata_through(tmp_path):
    sharp = _scene(tmp_path, (1, 64, 64), nodata=0, name="sharp.tif")  # NaN block at :5, :7
    obs = tmp_path / "obs.tif"
    assert main(["degrade", str(sharp), "--decimation", "2", "--out", str(obs)]) == 0
    with open_raster(obs) as src:
        assert src.nodata == 0
        vals = src.read(slice(0, 32), slice(0, 32))[0]
    gap = np.zeros((32, 32), bool)
    gap[:3, :4] = True  # the 2 x 2 blocks touching the sharp gap
    assert np.isnan(vals[gap]).all() and np.isfinite(vals[~gap]).all()
    out = tmp_path / "r.tif"
    assert main(["restore", str(obs), "--method", "tikhonov", "--decimation", "2", "--tile",
                 "32", "--overlap", "8", "--noise", "1e-5", "1e-4", "--quiet", "--out",
                 str(out)]) == 0
    with open_raster(out) as src:
        rest = src.read(slice(0, 64), slice(0, 64))
    up = np.kron(gap, np.ones((2, 2), bool))
    assert np.isnan(rest[:, up]).all() and np.isfinite(rest[:, ~up]).all()
    neg = georeferenced(-np.ones((1, 8, 8), np.float32))
    write_raster(tmp_path / "neg.nc", neg)
    assert main(["degrade", str(tmp_path / "neg.nc"), "--out", str(tmp_path / "o.tif")]) == 1
    assert main(["restore", str(tmp_path / "neg.nc"), "--method", "tv", "--out",
                 str(tmp_path / "o.nc")]) == 1


def test_throughput_benchmark_runs_on_cpu_with_small_settings(tmp_path):
    """Smoke test of ``benchmarks/bench_satellite_throughput.py`` (structure only, no timing)."""
    import json

    from script_loader import load_script

    vble = pytest.importorskip("inverse.vble")
    torch.manual_seed(0)
    tiny = vble.CompressiveAutoencoder(vble.CAEConfig(
        N=8, M=8, hyper_channels=(8, 8, 8), context_channels=8, entropy_channels=(8, 8),
        std_decoder=True)).eval()
    vble.save_cae(tiny, tmp_path / "tiny.pt")
    bench = load_script("benchmarks/bench_satellite_throughput.py", "_bench_satellite_throughput")
    out = tmp_path / "tp.json"
    from inverse.satellite import demo_tile_path

    demo = str(demo_tile_path())
    assert bench.main(["--device", "cpu", "--image", demo, "--size", "96", "--tile", "64",
                       "--overlap", "16", "--iters", "2", "--samples", "3", "--model",
                       str(tmp_path / "tiny.pt"), "--json", str(out)]) == 0
    row = json.loads(out.read_text())
    assert set(row["modes"]) == {"old", "new"} and row["cli_defaults"] is False
    for mode in row["modes"].values():
        assert mode["n_tiles"] == 4
        assert mode["mpx_per_s"] > 0 and 0 <= mode["coverage_2std"] <= 1
        assert np.isfinite(mode["psnr"])
    old, new = row["modes"]["old"], row["modes"]["new"]
    assert old["tile_batch"] == 1 and new["tile_batch"] == 4
    # old is the code before the throughput work: plain CG, independent samples, float32
    assert (old["cg_precondition"], old["antithetic"], old["precision"]) == (False, False, "fp32")
    assert (new["cg_precondition"], new["antithetic"]) == (True, True)
    # 2 iterations: the stopping rule cannot act in either mode
    assert old["iterations_per_tile"] == new["iterations_per_tile"] == [2, 2, 2, 2]
    # the reported differences and speed-up are those of the two rows (batching alone is
    # tested to rounding in test_tile_restorer_batch_equals_tiles_one_by_one; here the std of
    # the tiny random CAE makes the conditional solves ill-conditioned, so plain and
    # preconditioned CG stopped at the same tolerance differ visibly)
    assert row["psnr_diff_db"] == pytest.approx(new["psnr"] - old["psnr"])
    assert row["coverage_diff"] == pytest.approx(new["coverage_2std"] - old["coverage_2std"])
    assert row["speedup"] == pytest.approx(old["seconds_per_mpx"] / new["seconds_per_mpx"])


def test_cog_output_is_a_cloud_optimized_geotiff(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    path = _scene(tmp_path, (1, 300, 280))
    out = tmp_path / "c.tif"
    assert main(["restore", str(path), "--method", "tikhonov", "--noise", "1e-5", "1e-4",
                 "--tile", "128", "--overlap", "16", "--quiet", "--cog", "--out", str(out)]) == 0
    with rasterio.open(out) as ds:
        assert ds.descriptions == ("restored", "std") and ds.crs.to_epsg() == 32631
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.profile["tiled"] and ds.overviews(1)
    assert main(["restore", str(path), "--method", "tv", "--cog", "--out",
                 str(tmp_path / "c.nc")]) == 1
