"""Satellite restoration with an uncertainty map: degrade the bundled tile, restore it with VBLE-xz.

What ``make demo`` runs. The bundled tile (``inverse/satellite/data``: a 256 x 256 8-bit
grayscale NAIP crop, 5 m, North Dakota, public domain) is the sharp ground truth. It is degraded
with the Pléiades-like model of :class:`inverse.satellite.PleiadesDegradation`:

* Gaussian PSF with MTF 0.1 at Nyquist (sigma 0.78 px), circular boundary;
* decimation 1 (``--decimation 2`` for 2x super-resolution);
* Poisson-Gaussian noise of variance ``1e-4 + 1e-3 x`` (normalized units, x in [0, 1]);
* 8-bit quantization; noise seed 0.

The observation is then restored by the same code path as ``sciml-inverse restore``
(:func:`inverse.satellite.restore_raster`: VBLE-xz with the shipped low-rate CAE, 100 posterior
samples, tiles of 160 pixels with an overlap of 32, i.e. 4 blended tiles), and the script writes

* ``OUT/observed.tif``: the simulated observation (GeoTIFF, 8-bit digital numbers);
* ``OUT/restored.nc``: posterior mean ``restored`` and standard deviation ``std`` (NetCDF,
  georeferenced, the settings as attributes);
* ``OUT/panel.png``: observed | restored | std.

It prints the PSNR of the observation and of the restoration against the sharp tile, the mean
posterior std and the empirical coverage of the +-2 std interval. The equivalent command lines::

    sciml-inverse degrade inverse/satellite/data/naip_nd_5m_20170827_gray256.tif --bits 8 \\
        --mtf 0.1 --noise 1e-4 1e-3 --seed 0 --out outputs/observed.tif
    sciml-inverse restore outputs/observed.tif --bits 8 --mtf 0.1 --noise 1e-4 1e-3 \\
        --samples 100 --tile 160 --overlap 32 --out outputs/restored.nc --png outputs/panel.png

With the shipped low-rate CAE it prints (seed 0): PSNR of the observation 29.77 dB, of the
restoration 31.23 dB, mean posterior std 5.7 DN (RMSE 7.0 DN), coverage of +-2 std 0.915.

Run ``python examples/satellite_demo.py --out outputs`` (about a minute or two on 2 CPU cores;
``--quick`` for a few seconds with fewer iterations and samples).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from inverse.satellite import (
    PleiadesDegradation,
    demo_tile_path,
    read_raster,
    restore_raster,
    simulate_raster,
    write_raster,
)
from sciml_inverse import write_json


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((np.asarray(x, np.float64) - ref) ** 2))
    return 10 * math.log10(data_range ** 2 / mse)


def load_model(spec: str):
    from inverse.vble import SHIPPED_MODELS, default_cae, load_cae

    if spec in SHIPPED_MODELS:
        try:
            return default_cae(spec)
        except FileNotFoundError as err:
            raise SystemExit(f"satellite_demo: {err}") from None
    return load_cae(spec)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="outputs", help="output folder (default outputs)")
    p.add_argument("--model", default="auto",
                   help="auto (the CLI default: the shipped rate chosen by "
                        "inverse.vble.select_model) | low | high | a save_cae file")
    p.add_argument("--mtf", type=float, default=0.1)
    p.add_argument("--noise", type=float, nargs=2, default=(1e-4, 1e-3), metavar=("A", "B"))
    p.add_argument("--decimation", type=int, choices=(1, 2), default=1)
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--iters", type=int, default=None, help="default 300 (--quick: 20)")
    p.add_argument("--samples", type=int, default=None, help="default 100 (--quick: 8)")
    p.add_argument("--tile", type=int, default=160)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="20 iterations, 8 samples (smoke test)")
    p.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from inverse.vble import VBLEOptions

    args = parse_args(argv)
    if args.iters is None:
        args.iters = 20 if args.quick else 300
    if args.samples is None:
        args.samples = 8 if args.quick else 100
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    sharp = read_raster(demo_tile_path())  # 8-bit digital numbers, (1, 256, 256)
    deg = PleiadesDegradation(mtf=args.mtf, decimation=args.decimation, noise_a=args.noise[0],
                              noise_b=args.noise[1], n_bits=8)
    observed = simulate_raster(sharp, deg, seed=args.seed)
    write_raster(out / "observed.tif", observed, dtype="uint8")
    observed = read_raster(out / "observed.tif")  # exactly what the command line would read

    if args.model == "auto":  # as `sciml-inverse restore --model auto`
        from inverse.vble import select_model

        level = float(observed.mean()) / (2 ** deg.n_bits - 1)
        nstd = float(deg.noise_model().variance(torch.tensor(level))) ** 0.5
        args.model = select_model(nstd, deg.decimation, float(deg.mtf))
        print(f"--model auto chose {args.model!r}")
    cae = load_model(args.model)
    # the CLI's default options: VBLE-xz with the exact Gaussian conditional
    options = VBLEOptions(method="vble_xz", steps=args.iters, n_samples=args.samples,
                          seed=0, conditional="exact")
    result = restore_raster(observed, deg, cae, options, tile=args.tile, overlap=args.overlap,
                            progress=True, model_name=args.model)
    result.attrs["command"] = "examples/satellite_demo.py"
    result.to_netcdf(out / "restored.nc")
    result.to_png(out / "panel.png")

    dn = 255.0
    x = sharp.values[0].astype(np.float64)
    f = args.decimation
    obs_up = np.repeat(np.repeat(observed.values[0], f, axis=0), f, axis=1)
    mmse, std = result.restored.values[0], result.std.values[0]
    err = np.abs(mmse - x)
    stats = {
        "psnr_observation": psnr(obs_up, x, dn),
        "psnr_restored": psnr(mmse, x, dn),
        "mean_std_dn": float(std.mean()),
        "rmse_dn": float(np.sqrt(np.mean(err ** 2))),
        "coverage_2sigma": float(np.mean(err <= 2 * std)),
        "n_tiles": result.tiled.n_tiles,
        "seconds_restore": result.tiled.seconds,
        "seconds_total": time.perf_counter() - t0,
        "settings": {k: v for k, v in result.attrs.items() if isinstance(v, (int, float, str))},
    }
    obs_label = "observation" if f == 1 else "observation (nearest upsampling)"
    print(f"PSNR {obs_label}: {stats['psnr_observation']:.2f} dB")
    print(f"PSNR VBLE-xz restoration (MMSE): {stats['psnr_restored']:.2f} dB")
    print(f"mean posterior std: {stats['mean_std_dn']:.2f} DN (RMSE {stats['rmse_dn']:.2f} DN), "
          f"coverage of +-2 std: {stats['coverage_2sigma']:.3f}")
    print(f"{stats['n_tiles']} tiles restored in {stats['seconds_restore']:.1f} s; wrote "
          f"{out / 'observed.tif'}, {out / 'restored.nc'}, {out / 'panel.png'}")
    if args.json:
        write_json(args.json, stats)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
