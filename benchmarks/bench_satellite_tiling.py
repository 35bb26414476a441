"""Peak memory of a whole-scene restoration through the command line, at two scene sizes.

Usage::

    python benchmarks/bench_satellite_tiling.py [--sizes 4096 16384] [--method tikhonov] \
        [--json PATH]
    python benchmarks/bench_satellite_tiling.py --quick          # 512 and 1024 (smoke test)

For each size ``S``, a synthetic ``S x S`` 12-bit GeoTIFF (uint16, tiled, deflate; smooth relief
plus texture and noise, with a no-data corner) is generated *window by window* (never held in
memory) in its own process, then restored by ``sciml-inverse restore`` (the dispatcher's
``main``, i.e. the code path of the command line) with a cheap classical method (default
``tikhonov``: exact Gaussian posterior mean and std), writing a NetCDF with ``restored`` and
``std``, in a fresh process whose peak resident memory (``ru_maxrss``) is reported.

Targets (issue 11): peak RSS <= 1.5 GB, and peak(16384) <= 1.25 x peak(4096). Printed and
written to JSON: seconds, megapixels per second, peak RSS per size, their ratio, file sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGET_MB = 1500.0
TARGET_RATIO = 1.25


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def generate(path: str, size: int, seed: int = 0, rows: int = 512) -> None:
    """Write a synthetic ``size x size`` 12-bit GeoTIFF, ``rows`` rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = {"driver": "GTiff", "height": size, "width": size, "count": 1,
               "dtype": "uint16", "tiled": True, "blockxsize": 256, "blockysize": 256,
               "compress": "deflate", "nodata": 0, "BIGTIFF": "IF_SAFER",
               "crs": "EPSG:32631", "transform": from_origin(600000.0, 5750000.0, 0.7, 0.7)}
    xx = np.arange(size, dtype=np.float32)[None, :]
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dst:
        for r0 in range(0, size, rows):
            n = min(rows, size - r0)
            yy = np.arange(r0, r0 + n, dtype=np.float32)[:, None]
            rng = np.random.default_rng([seed, r0])
            relief = (1800 + 700 * np.sin(xx / 97.0) * np.cos(yy / 131.0)
                      + 400 * np.sin((xx + 2 * yy) / 23.0))
            texture = 150 * np.sign(np.sin(xx / 7.0) * np.sin(yy / 9.0))
            block = relief + texture + 40 * rng.standard_normal((n, size), dtype=np.float32)
            block = np.clip(np.round(block), 1, 4095).astype(np.uint16)
            if r0 == 0:
                block[:100, :100] = 0  # a no-data corner
            dst.write(block[None], window=Window(0, r0, size, n))


def run_cli(inp: str, out: str, method: str, tile: int) -> dict:
    """``sciml-inverse restore`` in this process (call it in a fresh one)."""
    from sciml_inverse._cli import main

    base = _peak_mb()
    t0 = time.perf_counter()
    rc = main(["restore", inp, "--method", method, "--bits", "12", "--mtf", "0.1", "--noise",
               "1e-5", "1e-4", "--tile", str(tile), "--overlap", "32", "--quiet", "--threads",
               "1", "--out", out])
    sec = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"restore exited with {rc}")
    return {"seconds": sec, "peak_rss_mb": _peak_mb(), "rss_before_mb": base}


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(size: int, method: str, tile: int, workdir: str) -> dict:
    inp = os.path.join(workdir, f"scene_{size}.tif")
    out = os.path.join(workdir, f"restored_{size}.nc")
    t0 = time.perf_counter()
    gen = _child(["--generate", inp, "--size", str(size)])
    gen_sec = time.perf_counter() - t0
    res = _child(["--restore", inp, "--out-file", out, "--method", method, "--tile", str(tile)])
    import xarray as xr

    with xr.open_dataset(out, engine="h5netcdf") as ds:
        shape = tuple(ds["restored"].shape)
        # a strided look at the result: finite away from the no-data corner, std > 0
        sub = ds.isel(y=slice(200, None, 997), x=slice(200, None, 997))
        finite = bool(np.isfinite(sub["restored"].values).all())
        std_ok = bool((sub["std"].values > 0).all()) if "std" in ds else None
    row = {"size": size, "megapixels": size * size / 1e6, "method": method, "tile": tile,
           "output_shape": list(shape), "restored_finite": finite, "std_positive": std_ok,
           "input_mb": os.path.getsize(inp) / 2**20, "output_mb": os.path.getsize(out) / 2**20,
           "generate_seconds": gen_sec, "generate_peak_rss_mb": gen["peak_rss_mb"], **res}
    row["mpx_per_s"] = row["megapixels"] / res["seconds"]
    for p in (inp, out):
        os.unlink(p)
    return row


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    p.add_argument("--method", default="tikhonov", choices=("tikhonov", "tv", "vble-xz"))
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--quick", action="store_true", help="sizes 512 and 1024 (smoke test)")
    p.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    p.add_argument("--dir", default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--generate", help=argparse.SUPPRESS)
    p.add_argument("--restore", help=argparse.SUPPRESS)
    p.add_argument("--out-file", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.generate:
        generate(args.generate, args.size)
        print(json.dumps({"peak_rss_mb": _peak_mb()}))
        return 0
    if args.restore:
        print(json.dumps(run_cli(args.restore, args.out_file, args.method, args.tile)))
        return 0
    sizes = [512, 1024] if args.quick else args.sizes
    workdir = args.dir or tempfile.mkdtemp(prefix="satellite_tiling-")
    try:
        rows = [measure(s, args.method, args.tile, workdir) for s in sizes]
    finally:
        if args.dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"sciml-inverse restore --method {args.method} --tile {args.tile} on synthetic 12-bit "
          f"GeoTIFFs ({platform.machine()}, {os.cpu_count()} cores, 1 torch thread)")
    print(f"{'size':>7}{'Mpx':>8}{'seconds':>9}{'Mpx/s':>8}{'peak MB':>9}{'in MB':>8}"
          f"{'out MB':>8}")
    for r in rows:
        print(f"{r['size']:>7}{r['megapixels']:>8.1f}{r['seconds']:>9.1f}{r['mpx_per_s']:>8.3f}"
              f"{r['peak_rss_mb']:>9.0f}{r['input_mb']:>8.0f}{r['output_mb']:>8.0f}")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    worst = max(r["peak_rss_mb"] for r in rows)
    summary = {"peak_ratio_largest_vs_smallest": ratio, "target_ratio": TARGET_RATIO,
               "ratio_ok": ratio <= TARGET_RATIO, "max_peak_rss_mb": worst,
               "target_mb": TARGET_MB, "peak_ok": worst <= TARGET_MB}
    print(f"peak RSS {rows[-1]['size']}^2 / {rows[0]['size']}^2 = {ratio:.3f} (target <= "
          f"{TARGET_RATIO}); max peak {worst:.0f} MB (target <= {TARGET_MB:.0f} MB)")
    if args.json:
        from sciml_inverse import write_json

        write_json(args.json, {"meta": {"sizes": sizes, "method": args.method,
                                        "tile": args.tile, "cpu_count": os.cpu_count(),
                                        "machine": platform.machine()},
                               "cases": rows, "summary": summary})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
