"""Throughput of the VBLE-xz scene path, OLD vs NEW in one run: seconds per megapixel,
megapixels per second, and the restoration quality of both.

Usage::

    python benchmarks/bench_satellite_throughput.py --json out.json          # CPU, old vs new
    python benchmarks/bench_satellite_throughput.py --device cuda --modes new --scene 2400 \\
        --tile-batch 16 --json gpu.json                                       # make bench-gpu

A centred ``--size`` crop of ``--image`` (default: the evaluation scene
``shared/data/satellite/eval/rotterdam3_pan_0p5m.tif``, 12 bits; evaluation data: scored, never
tuned on) is degraded with the Pléiades-like model of ``sciml-inverse degrade`` (MTF 0.1, noise
a = 1e-5, b = 1e-4, ``--decimation``), then restored by :func:`inverse.satellite.restore_raster`
(the code path of ``sciml-inverse restore``) with the model ``--model auto`` picks and VBLE-xz
with the exact conditional, in each mode:

* ``old``: the settings before issue 11's throughput work: one tile per network call,
  ``--iters`` iterations always (``stop_rtol=0``), float32 CAE in the default memory format
  (``precision="fp32"``, ``channels_last=False``), plain CG (``cg_precondition=False``;
  until stop 22 this mode kept the preconditioner, so the stop-21 speed-up of 4.69x left it
  out) and independent samples (``antithetic=False``, the sampling before stop 22);
* ``new``: the current CLI defaults: ``--tile-batch`` tiles per call (4), the CLI's
  ``--stop-rtol`` (0.05; ``--iters`` the cap) and ``--precision`` (``auto``: bfloat16 decoder
  passes where the CPU/GPU has bfloat16, channels-last CAE, preconditioned solves,
  antithetic samples);
* ``fp32`` (opt-in, ``--modes old new fp32``): ``new`` with ``precision="fp32"`` (what the
  mixed precision contributes).

Both use ``--iters`` (300) and ``--samples`` (100), the CLI defaults, unless told otherwise
(the JSON's ``cli_defaults`` says whether they were). Printed and written to JSON, per mode:
seconds, s / Mpx and Mpx / s (output pixels of the crop), PSNR of the restoration (5-pixel
border excluded), coverage of the +-2 std interval, iterations per tile; then the speed-up
``old s/Mpx / new s/Mpx`` and the quality differences against the targets (>= 3x, PSNR within
0.1 dB, coverage within 0.01), and the load average (the machine is shared: timings are only
comparable within one run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

_EVAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
                     "satellite", "eval", "rotterdam3_pan_0p5m.tif")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--image", default=None, help="sharp GeoTIFF (default: the eval scene "
                                                 "rotterdam3_pan_0p5m.tif)")
    p.add_argument("--bits", type=int, default=None, help="bit depth (default: from the dtype)")
    p.add_argument("--size", type=int, default=480, help="crop size (output pixels)")
    p.add_argument("--scene", type=int, default=None,
                   help="extend the crop to a SCENE x SCENE image by mirroring it (a larger "
                        "scene for GPUs: the eval image has 600 x 600 pixels)")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--decimation", type=int, default=1, choices=(1, 2))
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--tile-batch", type=int, default=4, help="new mode: tiles per call")
    p.add_argument("--stop-rtol", type=float, default=None,
                   help="new mode: stopping rule (default: the CLI's)")
    p.add_argument("--model", default="auto",
                   help="auto, a shipped name (xlow, low, high, xhigh) or a CAE checkpoint")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None,
                   help="new mode: decoder precision (default: the CLI's)")
    p.add_argument("--modes", nargs="+", default=["old", "new"], choices=("old", "new", "fp32"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", metavar="PATH")
    return p.parse_args(argv)


def _load() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # pragma: no cover
        return []


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from inverse.satellite import (
        PleiadesDegradation,
        VBLETileRestorer,
        read_raster,
        restore_raster,
        simulate_raster,
    )
    from inverse.satellite._cli import (
        DEFAULT_PRECISION,
        DEFAULT_STOP_RTOL,
        _auto_model,
        load_model,
    )
    from inverse.satellite._source import RasterSource
    from inverse.vble import VBLEOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.image or os.path.normpath(_EVAL)
    sharp = read_raster(path, band=1)
    bits = args.bits or {"uint8": 8, "uint16": 12}.get(sharp.attrs["source_dtype"], 12)
    s = min(args.size, sharp.sizes["y"], sharp.sizes["x"])
    s -= s % (2 * args.decimation)
    y0, x0 = (sharp.sizes["y"] - s) // 2, (sharp.sizes["x"] - s) // 2
    crop = sharp.isel(y=slice(y0, y0 + s), x=slice(x0, x0 + s))
    if args.scene is not None and args.scene > s:
        from inverse.satellite import georeferenced
        from inverse.satellite._io import _geo_of

        pad = args.scene - args.scene % (2 * args.decimation) - s
        gt, crs = _geo_of(crop)
        crop = georeferenced(np.pad(crop.values, ((0, 0), (0, pad), (0, pad)), mode="symmetric"),
                             transform=gt, crs=crs, name="sharp", attrs=dict(crop.attrs))
        s += pad
    deg = PleiadesDegradation(mtf=0.1, decimation=args.decimation, noise_a=1e-5, noise_b=1e-4,
                              n_bits=bits)
    obs = simulate_raster(crop, deg, seed=0)
    model = args.model
    if model == "auto":
        model = _auto_model(RasterSource.from_dataarray(obs), deg)
    cae = load_model(model, args.device)
    stop = DEFAULT_STOP_RTOL if args.stop_rtol is None else args.stop_rtol
    prec = DEFAULT_PRECISION if args.precision is None else args.precision
    common = {"conditional": "exact", "steps": args.iters, "n_samples": args.samples,
              "seed": args.seed}
    settings = {
        "old": (VBLEOptions(**common, precision="fp32", channels_last=False,
                            cg_precondition=False, antithetic=False), 1),
        "new": (VBLEOptions(**common, stop_rtol=stop, precision=prec), args.tile_batch),
        "fp32": (VBLEOptions(**common, stop_rtol=stop, precision="fp32"), args.tile_batch),
    }
    dn = float(2 ** bits - 1)
    x = crop.values[0].astype(np.float64)
    b = 5
    mpx = s * s / 1e6
    rows: dict[str, dict] = {}
    for mode in args.modes:
        options, tile_batch = settings[mode]
        load0 = _load()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        restorer = VBLETileRestorer(deg, cae, options, device=args.device)
        res = restore_raster(obs, deg, restorer=restorer, tile=args.tile, overlap=args.overlap,
                             progress=False, device=args.device, tile_batch=tile_batch)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        sec = time.perf_counter() - t0
        rest = res.restored.values[0].astype(np.float64)
        std = res.std.values[0].astype(np.float64)
        err = (rest - x)[b:-b, b:-b]
        row = {"tile_batch": tile_batch, "stop_rtol": options.stop_rtol,
               "precision": options.precision, "channels_last": options.channels_last,
               "cg_precondition": options.cg_precondition, "antithetic": options.antithetic,
               "steps": options.steps, "n_samples": options.n_samples,
               "seconds": sec, "seconds_per_mpx": sec / mpx, "mpx_per_s": mpx / sec,
               "psnr": float(10 * np.log10(dn * dn / np.mean(err ** 2))),
               "coverage_2std": float(np.mean(np.abs(err) < 2 * std[b:-b, b:-b])),
               "n_tiles": res.tiled.n_tiles, "iterations_per_tile": restorer.n_iter,
               "load_before": load0, "load_after": _load()}
        rows[mode] = row
        print(f"{mode}: {sec:.1f} s for {mpx:.3f} Mpx -> {row['seconds_per_mpx']:.1f} s/Mpx, "
              f"{row['mpx_per_s']:.5f} Mpx/s; PSNR {row['psnr']:.2f} dB, +-2 std coverage "
              f"{row['coverage_2std']:.4f}, iterations {restorer.n_iter} (load {load0} "
              f"-> {row['load_after']})", flush=True)
    out = {"device": args.device, "image": os.path.basename(path), "crop": s, "bits": bits,
           "mirrored_scene": args.scene is not None and args.scene > args.size,
           "decimation": args.decimation, "tile": args.tile, "overlap": args.overlap,
           "model": model, "iters": args.iters, "samples": args.samples,
           "cli_defaults": args.iters == 300 and args.samples == 100 and args.tile == 256
           and args.overlap == 32 and args.tile_batch == 4 and stop == DEFAULT_STOP_RTOL
           and prec == DEFAULT_PRECISION,
           "modes": rows, "machine": platform.machine(), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    if "new" in rows:
        out["scene_40k_minutes_new"] = 1600.0 * rows["new"]["seconds_per_mpx"] / 60
    for m in [m for m in ("new", "fp32") if m in rows and "old" in rows]:
        o, n = rows["old"], rows[m]
        cmp = {"speedup": o["seconds_per_mpx"] / n["seconds_per_mpx"],
               "psnr_diff_db": n["psnr"] - o["psnr"],
               "coverage_diff": n["coverage_2std"] - o["coverage_2std"]}
        cmp["targets_met"] = {"speedup_ge_3": cmp["speedup"] >= 3.0,
                              "psnr_within_0.1dB": abs(cmp["psnr_diff_db"]) <= 0.1,
                              "coverage_within_0.01": abs(cmp["coverage_diff"]) <= 0.01}
        if m == "new":  # the CLI defaults: top-level keys
            out.update(cmp)
        else:
            out[f"vs_old_{m}"] = cmp
        print(f"speed-up old/{m}: {cmp['speedup']:.2f}x; PSNR {m} - old "
              f"{cmp['psnr_diff_db']:+.3f} dB; coverage {m} - old {cmp['coverage_diff']:+.4f}; "
              f"targets {cmp['targets_met']}")
    if args.json:
        from sciml_inverse import write_json

        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
