"""Old vs new VBLE-xz restoration defaults on the *train* crops (how the defaults were chosen).

``old``: 300 iterations always, float32 decoders in the default memory format
(``stop_rtol=0, precision="fp32", channels_last=False``); ``new``: :func:`inverse.vble.
default_options` (stopping rule 0.05, ``precision="auto"``, channels-last) with the options
given by ``--new`` (``key=value``, e.g. ``cg_precondition=False``). Both use the exact
conditional, 100 samples, the model ``--model auto`` picks, seed 0. Data: one 256² crop of each
train panchromatic image of ``examples/vble_satellite_eval.py`` (never the eval image), four
settings (MTF 0.10 low noise, MTF 0.10 decimation 2 high noise, MTF 0.25 decimation 2 low noise,
MTF 0.10 vlow). Prints and writes one JSON row per crop, setting and variant: seconds,
iterations, PSNR, ±2σ coverage and z-score std. About 15 minutes on one thread::

    python scripts/compare_vble_defaults.py --json compare.json
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import torch
from fit_vble_decoder_error import _example  # the example as a module (scripts/ on sys.path)

SETTINGS = (0, 3, 6, 8)  # indices into the example's ALL_SETTINGS


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--new", nargs="*", default=[], metavar="KEY=VALUE",
                   help="VBLEOptions overrides of the new variant")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from inverse.vble import default_cae, default_options, select_model, vble_restore

    new = {}
    for item in args.new:
        key, _, value = item.partition("=")
        new[key] = ast.literal_eval(value)
    variants = {"old": dict(channels_last=False, precision="fp32", stop_rtol=0.0), "new": new}
    ev = _example("vble_satellite_eval")
    data = ev.parse_args(["--json", "/dev/null"]).data_dir
    rows = []
    for rel in ev.TRAIN_IMAGES:
        (_, x), = ev.crops(ev.load_pan(rel, data), 256, 1)
        for s in [ev.ALL_SETTINGS[i] for i in SETTINGS]:
            y, op, noise = ev.degrade(x, s, seed=5)
            nstd = float(noise.variance(y.mean())) ** 0.5
            cae = default_cae(select_model(nstd, s.decimation, s.mtf)).eval()
            for name, overrides in variants.items():
                opts = default_options(steps=300, n_samples=100, seed=0, **overrides)
                t = time.perf_counter()
                res = vble_restore(y, op, noise, cae, opts)
                q, c = ev.quality(res.x_mmse, x), ev.calibration(res.x_mmse, res.x_std, x)
                row = {"crop": rel, "setting": s.name, "variant": name,
                       "seconds": round(time.perf_counter() - t, 1), "n_iter": res.n_iter,
                       "psnr": round(q["psnr"], 3),
                       "coverage_2sigma": round(c["coverage_2sigma"], 4),
                       "zscore_std": round(c["zscore_std"], 3)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    from sciml_inverse import write_json

    write_json(args.json, rows)


if __name__ == "__main__":
    main()
