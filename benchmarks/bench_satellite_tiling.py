"""Memory and time of ``inverse.satellite.restore_tiled`` on a large scene.

Usage::

    python benchmarks/bench_satellite_tiling.py [--size 4096] [--samples 8] [--json PATH] [--quick]
    python benchmarks/bench_satellite_tiling.py --vble-tile [--iters 300]   # + one VBLE tile

Each case runs in a fresh subprocess so that its peak resident memory (``ru_maxrss``) is its
own. The restoration of a tile is cheap and local (zero-order-hold upsampling and a 5 x 5 box
filter, ``std = 0.05 + 0.1 |x|``, and ``--samples`` Gaussian samples), so the numbers measure the
tiling machinery: blending, variance and sample accumulation, tile files and memory maps.

Cases (``S x S`` output grid, tile 256, overlap 32):

* ``untiled``: the same filter on the whole scene in one call (the peer: no tiling);
* ``tiled``: :func:`restore_tiled` with in-memory accumulators;
* ``tiled_workdir``: with ``work_dir`` (accumulators as ``np.memmap``, each tile saved
  atomically for resume);
* ``tiled_x2``: decimation 2 (observation ``S/2 x S/2``).

Printed: peak RSS (MB) per case and its ratio to the target (3 GB), seconds per tile, the
tiled/untiled time ratio, and the maximum difference between tiled and untiled results away
from the scene border (must be ~1e-7: the filter is local and the margin drops tile borders).
With ``--vble-tile``, one 256 x 256 VBLE-xz tile is restored with the shipped low-rate model
(or a random CAE of the shipped size if the weights are missing) to extrapolate the CPU time of
a full scene.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from sciml_inverse import write_json

TARGET_MB = 3000.0


def _restore_fn(factor: int, samples: int):
    from scipy import ndimage

    def fn(obs, mask):
        up = np.repeat(np.repeat(obs, factor, axis=-2), factor, axis=-1)
        x = ndimage.uniform_filter(up, size=(1, 5, 5), mode="wrap")
        std = 0.05 + 0.1 * np.abs(x)
        out = {"restored": x, "std": std}
        if samples:
            rng = np.random.default_rng(0)
            out["samples"] = (x + std * rng.standard_normal((samples, *x.shape),
                                                             dtype=np.float32))
        return out

    return fn


def _peak_mb() -> float:
    # ru_maxrss is in kB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_case(case: str, size: int, samples: int) -> dict:
    """Run one case in this process and return its measurements."""
    from inverse.satellite import restore_tiled

    factor = 2 if case == "tiled_x2" else 1
    rng = np.random.default_rng(0)
    obs = rng.random((1, size // factor, size // factor), dtype=np.float32)
    base_mb = _peak_mb()
    t0 = time.perf_counter()
    out: dict = {"case": case, "size": size, "samples": samples, "decimation": factor}
    if case == "untiled":
        res = _restore_fn(1, samples)(obs, None)
        out.update(seconds=time.perf_counter() - t0, n_tiles=1)
        restored = res["restored"]
    else:
        with tempfile.TemporaryDirectory() as tmp:
            res = restore_tiled(obs, _restore_fn(factor, samples), tile=256, overlap=32,
                                decimation=factor, progress=False,
                                work_dir=tmp if case == "tiled_workdir" else None)
            out.update(seconds=time.perf_counter() - t0, n_tiles=res.n_tiles,
                       seconds_per_tile=res.seconds_per_tile,
                       overhead_per_tile=(time.perf_counter() - t0) / res.n_tiles)
            restored = np.array(res.restored)
        if factor == 1:
            ref = _restore_fn(1, 0)(obs, None)["restored"]
            out["max_abs_diff_vs_untiled"] = float(np.abs(restored - ref)[:, 8:-8, 8:-8].max())
    out.update(base_rss_mb=base_mb, peak_rss_mb=_peak_mb())
    return out


def _subprocess(case: str, size: int, samples: int) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--size", str(size), "--samples",
           str(samples)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def vble_tile(iters: int, samples: int) -> dict:
    """Time one 256 x 256 VBLE-xz tile (shipped model when installed)."""
    import torch

    from inverse.satellite import PleiadesDegradation, VBLETileRestorer
    from inverse.vble import CAEConfig, CompressiveAutoencoder, VBLEOptions, default_cae

    try:
        cae, model = default_cae("low"), "shipped low"
    except FileNotFoundError:
        cae, model = CompressiveAutoencoder(CAEConfig.small()).eval(), "random (shipped size)"
    deg = PleiadesDegradation(mtf=0.1)
    x = torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(0))
    y = deg.simulate(x, torch.Generator().manual_seed(1))[0].numpy()
    fn = VBLETileRestorer(deg, cae, VBLEOptions(n_iter=iters, n_samples=samples))
    t0 = time.perf_counter()
    fn(y)
    sec = time.perf_counter() - t0
    return {"case": "vble_tile", "model": model, "iters": iters, "samples": samples,
            "seconds": sec, "peak_rss_mb": _peak_mb()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4096, help="output scene size S (default 4096)")
    p.add_argument("--samples", type=int, default=8, help="samples per tile (default 8)")
    p.add_argument("--quick", action="store_true", help="S = 768, 2 samples (smoke test)")
    p.add_argument("--vble-tile", action="store_true", help="also time one VBLE tile")
    p.add_argument("--iters", type=int, default=300, help="VBLE iterations (--vble-tile)")
    p.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    p.add_argument("--case", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.size, args.samples = 768, 2
    if args.case:
        print(json.dumps(run_case(args.case, args.size, args.samples)))
        return 0
    results = [_subprocess(c, args.size, args.samples)
               for c in ("untiled", "tiled", "tiled_workdir", "tiled_x2")]
    untiled = results[0]["seconds"]
    print(f"scene {args.size}x{args.size}, {args.samples} samples/tile, tile 256, overlap 32 "
          f"({platform.machine()}, {os.cpu_count()} cores; timings are noisy)")
    print(f"{'case':<15}{'tiles':>6}{'seconds':>9}{'s/tile':>8}{'x untiled':>10}"
          f"{'peak MB':>9}{'/ 3 GB':>8}{'max|diff|':>11}")
    for r in results:
        r["ratio_time_vs_untiled"] = r["seconds"] / untiled
        r["ratio_peak_vs_target"] = r["peak_rss_mb"] / TARGET_MB
        r["peak_under_target"] = r["peak_rss_mb"] < TARGET_MB
        print(f"{r['case']:<15}{r['n_tiles']:>6}{r['seconds']:>9.2f}"
              f"{r.get('seconds_per_tile', float('nan')):>8.3f}{r['ratio_time_vs_untiled']:>10.2f}"
              f"{r['peak_rss_mb']:>9.0f}{r['ratio_peak_vs_target']:>8.2f}"
              f"{r.get('max_abs_diff_vs_untiled', float('nan')):>11.2e}")
    if args.vble_tile:
        v = vble_tile(args.iters, 100)
        n = results[1]["n_tiles"]
        v["extrapolated_scene_seconds"] = v["seconds"] * n
        results.append(v)
        print(f"VBLE-xz tile 256x256 ({v['model']}, {args.iters} iters, 100 samples): "
              f"{v['seconds']:.1f} s -> {n} tiles ~ {v['seconds'] * n / 3600:.1f} h on this CPU")
    if args.json:
        write_json(args.json, {"meta": {"size": args.size, "samples": args.samples,
                                        "quick": args.quick, "cpu_count": os.cpu_count(),
                                        "target_mb": TARGET_MB}, "cases": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
