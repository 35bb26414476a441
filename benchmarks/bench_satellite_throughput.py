"""Throughput of the VBLE-xz scene path (``restore_raster``, the code path of ``sciml-inverse
restore``): seconds per megapixel and megapixels per second, with the restoration quality.

Usage::

    python benchmarks/bench_satellite_throughput.py --device cuda              # one command, GPU
    python benchmarks/bench_satellite_throughput.py --device cpu --size 128 --iters 30 --samples 10

A ``--size`` crop of ``--image`` (default: the bundled 8-bit NAIP demo tile; on a GPU pass an
evaluation scene, e.g. ``shared/data/satellite/eval/rotterdam3_pan_0p5m.tif``, for a larger
crop) is degraded with the Pléiades-like model (MTF 0.1, default noise, ``--decimation``), then
restored tile by tile with VBLE-xz and the shipped low-rate CAE at the command-line defaults
(300 iterations, 100 samples) unless told otherwise. Printed and written to JSON: seconds,
s / Mpx, Mpx / s (output pixels), PSNR of the observation and of the restoration, the coverage
of the +-2 std interval, and the extrapolated time of a 40,000 x 40,000 scene. The run is
capped by ``--max-seconds`` (default 300): the crop is restored tile by tile and the script
stops after the tile that exceeds it, reporting the throughput of the tiles done.

This measures the current path only; it is the yardstick for the throughput work of issue 11
(batched tiles per network call and the other optimizations are not implemented yet).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--image", default=None, help="sharp GeoTIFF (default: the demo tile)")
    p.add_argument("--bits", type=int, default=None, help="bit depth (default: from the dtype)")
    p.add_argument("--size", type=int, default=256, help="crop size (output pixels)")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--decimation", type=int, default=1, choices=(1, 2))
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--model", default="low", help="low, high or a CAE checkpoint")
    p.add_argument("--max-seconds", type=float, default=300.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from inverse.satellite import (
        PleiadesDegradation,
        VBLETileRestorer,
        demo_tile_path,
        read_raster,
        simulate_raster,
    )
    from inverse.satellite._cli import load_model
    from inverse.satellite._tiling import blend_weights
    from inverse.vble import VBLEOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.image or str(demo_tile_path())
    sharp = read_raster(path, band=1)
    bits = args.bits or {"uint8": 8, "uint16": 12}.get(sharp.attrs["source_dtype"], 12)
    s = min(args.size, sharp.sizes["y"], sharp.sizes["x"])
    s -= s % (2 * args.decimation)
    y0, x0 = (sharp.sizes["y"] - s) // 2, (sharp.sizes["x"] - s) // 2
    crop = sharp.isel(y=slice(y0, y0 + s), x=slice(x0, x0 + s))
    deg = PleiadesDegradation(mtf=0.1, decimation=args.decimation, n_bits=bits)
    obs = simulate_raster(crop, deg, seed=0)
    dn = float(2 ** bits - 1)
    cae = load_model(args.model, args.device)
    fn = VBLETileRestorer(deg, cae, VBLEOptions(steps=args.iters, n_samples=args.samples),
                          device=args.device)
    x = crop.values[0] / dn
    y = obs.values / dn
    tile = min(args.tile, s)
    sum_w = np.zeros((s, s))
    mean = np.zeros((s, s))
    var = np.zeros((s, s))
    f = args.decimation
    t0 = time.perf_counter()
    n_done, px = 0, 0
    tiles = list(blend_weights((s, s), tile, min(args.overlap, tile - 2), None, f))
    for (rs, cs), w in tiles:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        out = fn(y[:, rs.start // f:rs.stop // f, cs.start // f:cs.stop // f])
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        sum_w[rs, cs] += w
        mean[rs, cs] += w * out["restored"][0]
        var[rs, cs] += w * out["std"][0] ** 2
        n_done += 1
        px += (rs.stop - rs.start) * (cs.stop - cs.start)
        if time.perf_counter() - t0 > args.max_seconds:
            break
    sec = time.perf_counter() - t0
    done = sum_w > 0.999
    rest = np.where(done, mean / np.maximum(sum_w, 1e-12), np.nan)
    std = np.sqrt(np.where(done, var / np.maximum(sum_w, 1e-12), np.nan))
    b = 5
    inner = np.zeros_like(done)
    inner[b:-b, b:-b] = True
    sel = done & inner
    up = np.kron(y[0], np.ones((f, f)))

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(1.0 / np.mean((a[sel] - x[sel]) ** 2)))

    mpx = px / 1e6  # output pixels restored (overlaps counted once per tile)
    row = {"device": args.device, "image": os.path.basename(path), "crop": s, "bits": bits,
           "decimation": f, "tile": tile, "tiles_done": n_done, "tiles_total": len(tiles),
           "iters": args.iters, "samples": args.samples, "model": args.model,
           "seconds": sec, "tile_megapixels": mpx, "seconds_per_mpx": sec / mpx,
           "mpx_per_s": mpx / sec, "psnr_observation": psnr(up), "psnr_restored": psnr(rest),
           "coverage_2std": float(np.mean(np.abs(rest[sel] - x[sel]) < 2 * std[sel])),
           "scene_40k_hours": 1600.0 * sec / mpx / 3600,
           "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads()}
    print(f"VBLE-xz on {args.device}: {n_done}/{len(tiles)} tiles of {tile}^2 in {sec:.1f} s -> "
          f"{row['seconds_per_mpx']:.1f} s/Mpx, {row['mpx_per_s']:.4f} Mpx/s; PSNR "
          f"{row['psnr_observation']:.2f} -> {row['psnr_restored']:.2f} dB, +-2 std coverage "
          f"{row['coverage_2std']:.3f}; a 40k x 40k scene: {row['scene_40k_hours']:.1f} h")
    if args.json:
        from sciml_inverse import write_json

        write_json(args.json, row)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
