"""The ``sciml-inverse degrade`` and ``restore`` commands (through the dispatcher), the VBLE
tile restorer and :func:`restore_raster`, with a tiny random CAE saved to a temporary file."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from inverse.satellite import (
    PleiadesDegradation,
    VBLETileRestorer,
    demo_tile_path,
    georeferenced,
    read_raster,
    restore_raster,
    write_raster,
)
from inverse.satellite._io import _geo_of
from sciml_inverse._cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

vble = pytest.importorskip("inverse.vble")
from inverse.vble import VBLEOptions  # noqa: E402

TINY = dict(N=8, M=8, hyper_channels=(8, 8, 8), context_channels=8, entropy_channels=(8, 8))
FAST = ["--iters", "2", "--samples", "3", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny_cae(tmp_path_factory):
    torch.manual_seed(0)
    model = vble.CompressiveAutoencoder(vble.CAEConfig(**TINY)).eval()
    path = tmp_path_factory.mktemp("cae") / "tiny.pt"
    vble.save_cae(model, path)
    return model, path


@pytest.fixture(scope="module")
def observation(tmp_path_factory):
    """The demo tile degraded by the CLI with decimation 2 (128 x 128, 10 m pixels)."""
    path = tmp_path_factory.mktemp("obs") / "obs.tif"
    rc = main(["degrade", str(demo_tile_path()), "--bits", "8", "--mtf", "0.1", "--noise",
               "1e-5", "1e-4", "--decimation", "2", "--seed", "1", "--out", str(path)])
    assert rc == 0
    return path


def test_degrade_writes_a_reproducible_georeferenced_observation(observation, tmp_path):
    sharp, obs = read_raster(demo_tile_path()), read_raster(observation)
    assert obs.shape == (1, 128, 128) and obs.attrs["source_dtype"] == "uint8"
    gt_s, crs_s = _geo_of(sharp)
    gt_o, crs_o = _geo_of(obs)
    assert crs_o == crs_s and gt_o[1] == 2 * gt_s[1] and gt_o[5] == 2 * gt_s[5]
    assert obs.x.values[0] == sharp.x.values[0] and obs.y.values[0] == sharp.y.values[0]
    assert np.array_equal(obs.values, np.round(obs.values)) and float(obs.max()) <= 255
    # the observation is a blurred version of the sharp tile: close in value, less detailed
    s = sharp.values[0, ::2, ::2]
    assert abs(float(obs.mean()) - float(s.mean())) < 1.0
    assert np.abs(np.diff(obs.values[0], axis=1)).mean() < np.abs(np.diff(s, axis=1)).mean()
    again = tmp_path / "again.nc"
    assert main(["degrade", str(demo_tile_path()), "--bits", "8", "--decimation", "2",
                 "--seed", "1", "--out", str(again)]) == 0
    np.testing.assert_array_equal(read_raster(again).values, obs.values)  # same seed
    with xr.open_dataset(again, engine="h5netcdf") as ds:
        assert ds.attrs["degradation_mtf"] == 0.1 and ds.attrs["seed"] == 1
    other = tmp_path / "other.tif"
    assert main(["degrade", str(demo_tile_path()), "--bits", "8", "--decimation", "2",
                 "--seed", "2", "--out", str(other)]) == 0
    assert not np.array_equal(read_raster(other).values, obs.values)


def test_restore_command_writes_netcdf_and_png_on_the_image_grid(observation, tiny_cae,
                                                                  tmp_path, capsys):
    _, model_path = tiny_cae
    out, png = tmp_path / "restored.nc", tmp_path / "panel.png"
    rc = main(["restore", str(observation), "--bits", "8", "--mtf", "0.1", "--noise", "1e-5",
               "1e-4", "--decimation", "2", "--model", str(model_path), "--tile", "128",
               "--overlap", "32", "--save-samples", "2", "--out", str(out), "--png", str(png),
               *FAST])
    assert rc == 0, capsys.readouterr().err
    assert "9 tiles" in capsys.readouterr().out
    sharp = read_raster(demo_tile_path())
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds["restored"].shape == (1, 256, 256) and ds["samples"].shape == (2, 1, 256, 256)
        np.testing.assert_array_equal(ds["x"].values, sharp.x.values)  # the sharp tile's grid
        np.testing.assert_array_equal(ds["y"].values, sharp.y.values)
        assert ds["spatial_ref"].attrs["crs_wkt"] == _geo_of(sharp)[1]
        assert float(ds["std"].min()) > 0 and np.isfinite(ds["restored"].values).all()
        assert ds.attrs["degradation_decimation"] == 2 and ds.attrs["vble_method"] == "vble_xz"
        assert ds.attrs["vble_steps"] == 2 and ds.attrs["n_tiles"] == 9
        assert "restore" in ds.attrs["command"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_restore_command_resumes_from_its_work_dir(observation, tiny_cae, tmp_path, capsys):
    _, model_path = tiny_cae
    args = ["restore", str(observation), "--bits", "8", "--decimation", "2", "--model",
            str(model_path), "--tile", "128", "--overlap", "32", "--work-dir",
            str(tmp_path / "work"), *FAST]
    assert main([*args, "--out", str(tmp_path / "a.nc")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.nc")]) == 0
    assert "0 computed" in capsys.readouterr().out.splitlines()[-1]
    with xr.open_dataset(tmp_path / "a.nc", engine="h5netcdf") as a, \
            xr.open_dataset(tmp_path / "b.nc", engine="h5netcdf") as b:
        np.testing.assert_array_equal(a["restored"].values, b["restored"].values)
    # another model in the same work dir is refused instead of mixing tiles
    other = tmp_path / "other.pt"
    torch.manual_seed(1)
    vble.save_cae(vble.CompressiveAutoencoder(vble.CAEConfig(**TINY)), other)
    args[args.index(str(model_path))] = str(other)
    assert main([*args, "--out", str(tmp_path / "c.nc")]) == 1
    assert "another run" in capsys.readouterr().err


def test_tile_restorer_uses_the_mask_for_no_data(tiny_cae):
    model, _ = tiny_cae
    deg = PleiadesDegradation(mtf=0.1, decimation=1)
    fn = VBLETileRestorer(deg, model, VBLEOptions(steps=2, n_samples=3, return_samples=2))
    obs = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)
    mask = np.ones_like(obs, dtype=bool)
    mask[:, :8] = False
    out = fn(obs, mask)
    assert out["restored"].shape == (1, 32, 32) and out["samples"].shape == (2, 1, 32, 32)
    garbage = obs.copy()
    garbage[:, :8] = 1e3  # values under the mask are ignored
    np.testing.assert_allclose(fn(garbage, mask)["restored"], out["restored"], atol=1e-5)
    assert not np.allclose(fn(garbage, None)["restored"], out["restored"], atol=1e-3)
    assert fn.n_iter == [2, 2, 2]  # one count per restored image (no stopping rule)
    with pytest.warns(DeprecationWarning, match=r"VBLETileRestorer.iterations is deprecated"):
        assert fn.iterations == fn.n_iter
    with pytest.raises(TypeError, match="PleiadesDegradation"):
        VBLETileRestorer("deg", model)
    with pytest.raises(TypeError, match="CompressiveAutoencoder"):
        VBLETileRestorer(deg, torch.nn.Linear(1, 1))


def test_restore_raster_checks_bands_and_bit_depth(tiny_cae):
    model, _ = tiny_cae
    deg = PleiadesDegradation(n_bits=8)
    rng = np.random.default_rng(0)
    three = georeferenced((rng.random((3, 32, 32)) * 200).round().astype(np.float32))
    opts = VBLEOptions(steps=2, n_samples=3)
    res = restore_raster(three, deg, model, opts, tile=32, overlap=8, progress=False)
    assert res.restored.shape == (3, 32, 32)  # band by band with the one-channel model
    one = restore_raster(three.isel(band=[1]), deg, model, opts, tile=32, overlap=8,
                         progress=False)
    np.testing.assert_allclose(res.restored.values[1], one.restored.values[0], atol=1e-4)
    assert list(res.restored["band"].values) == [1, 2, 3]
    with pytest.raises(ValueError, match="negative digital numbers"):
        restore_raster(georeferenced(-np.ones((1, 32, 32))), deg, model, progress=False)
    with pytest.raises(ValueError, match="above 2\\*\\*8 - 1 = 255"):
        restore_raster(georeferenced(np.full((1, 32, 32), 4000.0)), deg, model, progress=False)
    nan = georeferenced(np.full((1, 32, 32), np.nan))
    with pytest.raises(ValueError, match="no valid pixel"):
        restore_raster(nan, deg, model, progress=False)


def test_cli_errors_are_one_line_messages_with_status_1(observation, tiny_cae, tmp_path,
                                                        capsys):
    _, model_path = tiny_cae
    out = str(tmp_path / "o.nc")
    base = ["--bits", "8", "--model", str(model_path), "--out", out, *FAST]
    rgb = georeferenced(np.ones((3, 16, 16), np.float32), transform=(0, 1, 0, 16, 0, -1))
    write_raster(tmp_path / "rgb.tif", rgb, dtype="uint8")
    corrupted = tmp_path / "broken.pt"
    corrupted.write_bytes(b"not a checkpoint")
    cases = [
        (["restore", str(tmp_path / "missing.tif"), *base], "no such raster file"),
        (["restore", str(tmp_path / "x.jpg"), *base], "unsupported raster file"),
        (["restore", str(tmp_path / "rgb.tif"), "--band", "4", *base], "band 4 does not exist"),
        (["restore", str(observation), "--bits", "12", "--model", str(model_path), "--out", out,
          *FAST], "larger than the 8-bit integers"),
        (["restore", str(observation), "--device", "bogus", *base[2:]], "not a torch device"),
        (["restore", str(observation), "--bits", "8", "--model", str(model_path), "--out",
          str(observation)], "is also an input"),
        (["restore", str(observation), "--bits", "8", "--model", str(model_path), "--out",
          str(tmp_path / "nodir" / "o.nc")], "does not exist"),
        (["degrade", str(demo_tile_path()), "--bits", "8", "--out", str(observation)],
         "exists; pass --overwrite"),
        (["restore", str(observation), "--bits", "6", "--model", str(model_path), "--out", out,
          *FAST], "give the right bit depth"),
        (["restore", str(observation), "--bits", "8", "--model", str(tmp_path / "none.pt"),
          "--out", out], "no CAE checkpoint"),
        (["restore", str(observation), "--bits", "8", "--model", str(corrupted), "--out", out],
         "could not be read as a CAE checkpoint"),
        (["restore", str(observation), *base[:-len(FAST) - 2], "--out", "o.png"],
         "must be a NetCDF (.nc) or GeoTIFF (.tif)"),
        (["degrade", str(demo_tile_path()), "--out", str(tmp_path / "o.tif")], None),
        (["degrade", str(demo_tile_path()), "--out", str(tmp_path / "o.png")],
         "must be a .tif or .nc"),
        (["degrade", str(demo_tile_path()), "--bits", "4", "--out", str(tmp_path / "o2.tif")],
         "give the right bit depth"),
        (["degrade", str(demo_tile_path()), "--out", str(tmp_path / "o.tif")],
         "exists; pass --overwrite"),
        (["degrade", str(observation), "--out", str(observation), "--overwrite"],
         "is also an input"),
    ]
    for argv, message in cases:
        if message is None:
            assert main(argv) == 0  # an 8-bit tile is a valid 12-bit image too
            capsys.readouterr()
            continue
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (argv, err)
    assert not (tmp_path / "o.nc").exists()
    # 8-bit integers restored as 12-bit digital numbers: allowed, with a warning
    assert main(["restore", str(observation), "--model", str(model_path), "--out", out,
                 *FAST]) == 0
    assert "pass --bits 8" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["restore", "in.tif", "--out", "o.nc", "--noise", "-1", "0"],
    ["restore", "in.tif", "--out", "o.nc", "--decimation", "3"],
    ["restore", "in.tif", "--out", "o.nc", "--mtf", "1.5"],
    ["restore", "in.tif", "--out", "o.nc", "--mtf", "0.1", "--psf", "p.npy"],
    ["restore", "in.tif"],
    ["degrade", "in.tif", "--out", "o.tif", "--seed", "-1"],
])
def test_usage_errors_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "restore" in text and "degrade" in text and "unavailable" not in text


def test_demo_script_writes_its_outputs(tiny_cae, tmp_path, capsys):
    from script_loader import load_script

    demo = load_script("examples/satellite_demo.py", "_satellite_demo")
    _, model_path = tiny_cae
    out = tmp_path / "outputs"
    assert demo.main(["--out", str(out), "--quick", "--model", str(model_path), "--iters", "2",
                      "--threads", "1", "--json", str(out / "demo.json")]) == 0
    printed = capsys.readouterr().out
    assert "PSNR observation" in printed and "coverage of +-2 std" in printed
    assert {p.name for p in out.iterdir()} == {"observed.tif", "restored.nc", "panel.png",
                                               "demo.json"}
    import json

    stats = json.loads((out / "demo.json").read_text())
    assert stats["n_tiles"] == 4 and 20 < stats["psnr_observation"] < 45
    with xr.open_dataset(out / "restored.nc", engine="h5netcdf") as ds:
        assert ds["restored"].shape == (1, 256, 256) and ds.attrs["degradation_mtf"] == 0.1


def test_tile_restorer_pickles_for_dask_workers(tiny_cae):
    import pickle

    model, _ = tiny_cae
    fn = VBLETileRestorer(PleiadesDegradation(), model, VBLEOptions(steps=2, n_samples=3))
    clone = pickle.loads(pickle.dumps(fn))
    obs = np.random.default_rng(1).random((1, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(clone(obs)["restored"], fn(obs)["restored"])


def test_restore_command_with_dask(observation, tiny_cae, tmp_path):
    _, model_path = tiny_cae
    out = tmp_path / "dask.nc"
    assert main(["restore", str(observation), "--bits", "8", "--decimation", "2", "--model",
                 str(model_path), "--tile", "128", "--overlap", "32", "--dask", "--out",
                 str(out), *FAST]) == 0
    serial = tmp_path / "serial.nc"
    # dask tasks restore one tile each: compare with the serial run one tile per call (batched
    # tiles agree only up to the float32 CG tolerance, see test_tile_restorer_batch_equals...)
    assert main(["restore", str(observation), "--bits", "8", "--decimation", "2", "--model",
                 str(model_path), "--tile", "128", "--overlap", "32", "--out", str(serial),
                 "--tile-batch", "1", *FAST]) == 0
    with xr.open_dataset(out, engine="h5netcdf") as a, \
            xr.open_dataset(serial, engine="h5netcdf") as b:
        np.testing.assert_allclose(a["restored"].values, b["restored"].values, atol=1e-3)


def test_degrade_with_a_user_psf_and_no_noise_is_a_rounded_convolution(tmp_path, capsys):
    from scipy import ndimage

    psf = np.array([[0.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 0.0]])  # /7: no rounding ties
    np.save(tmp_path / "psf.npy", psf)
    out = tmp_path / "obs.nc"
    assert main(["degrade", str(demo_tile_path()), "--bits", "8", "--psf",
                 str(tmp_path / "psf.npy"), "--noise", "0", "0", "--out", str(out)]) == 0
    sharp = read_raster(demo_tile_path()).values[0].astype(np.float64)
    expected = np.round(ndimage.convolve(sharp, psf / psf.sum(), mode="wrap"))
    np.testing.assert_array_equal(read_raster(out).values[0], expected)
    assert main(["degrade", str(demo_tile_path()), "--psf", str(tmp_path / "none.npy"),
                 "--out", str(tmp_path / "other.nc")]) == 1
    assert "no PSF file" in capsys.readouterr().err


def test_tile_restorer_batch_equals_tiles_one_by_one(tiny_cae):
    """restore_batch: complete tiles (and the bands of a multi-band tile, with a one-channel
    model) in one network call, masked tiles alone; same results as __call__ tile by tile
    (float64 model and a tight CG: equal to rounding)."""
    import copy

    model = copy.deepcopy(tiny_cae[0]).double()
    deg = PleiadesDegradation(mtf=0.1, decimation=1)
    fn = VBLETileRestorer(deg, model, VBLEOptions(
        steps=3, n_samples=3, return_samples=2, conditional="exact", cg_rtol=1e-12,
        cg_max_iter=3000))
    rng = np.random.default_rng(1)
    tiles = [(rng.random((1, 32, 32)).astype(np.float32), None) for _ in range(3)]
    mask = np.ones((1, 32, 32), dtype=bool)
    mask[:, :5] = False
    tiles.insert(1, (rng.random((1, 32, 32)).astype(np.float32), mask))
    tiles.append((rng.random((2, 32, 32)).astype(np.float32), None))
    outs = fn.restore_batch(tiles)
    assert len(outs) == len(tiles)
    for (obs, m), out in zip(tiles, outs, strict=True):
        one = fn(obs, m)
        assert out["restored"].shape == (obs.shape[0], 32, 32)
        assert out["samples"].shape == (2, obs.shape[0], 32, 32)
        for key in ("restored", "std", "samples"):
            np.testing.assert_allclose(out[key], one[key], rtol=0, atol=1e-6, err_msg=key)
    # different tiles give different restorations (the comparison above can fail)
    assert not np.allclose(outs[0]["restored"], outs[2]["restored"], atol=1e-3)
