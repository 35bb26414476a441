r"""Fit the decoder-error rule of the exact conditional on held-out *train* crops (issue 10).

The CLI default (``VBLEOptions(conditional="exact")``) samples the exact Gaussian conditional
:math:`p(x \mid z, y) \propto \mathcal N(x; D(z), c^2\sigma_\theta^2)\,\mathcal N(y; Ax, V)`
with :math:`c = k(\rho)\,\hat c` where the per-image moment estimate :math:`\hat c` is
informative (:math:`\hat c^2 > 0.05`), else :math:`c = c_0(\rho)`
(:func:`inverse.vble.estimate_decoder_error_scale`),
:math:`\rho` the observation ratio (1 without decimation, 1/4 with decimation 2). This script
measures, per crop and setting, the :math:`c^\star` that makes the z-score std of the samples
equal to 1 (log-log interpolation over a grid of fixed :math:`c`), and fits per :math:`\rho`

* the gain :math:`k` = geometric mean of :math:`c^\star / \hat c` over the records where
  :math:`\hat c` is informative (the residual is above the noise: :math:`\hat c^2 > 0.05`);
* the fallback :math:`c_0` = geometric mean of :math:`c^\star` over the records where it is
  not (at high noise with decimation the variational mean over-fits the noise and the residual
  falls below :math:`\operatorname{tr}V`), else over all records.

Data: 128x128 blocks of the **held-out validation strips** (bottom 128 rows) of the train
panchromatic images (:func:`inverse.vble.load_satellite_train`; the shipped CAEs never trained
on them), two busy and two smooth/dark blocks; never the eval image. Degradations: the
settings of ``examples/vble_satellite_eval.py`` (MTF 0.10 and 0.25, decimation 1 and 2, noise
vlow, low, high; ``--mtf 0.1`` for the MTF 0.10 ones alone). Model: ``--model auto``
(:func:`inverse.vble.select_model`), the CLI's default options
(:func:`inverse.vble.default_options`: stopping rule, mixed precision, 300 iterations at most,
antithetic samples) **and its sample count** (100) per :math:`c`: the z-score std of a
restoration depends on it (the std is estimated from the samples and the mean carries their
Monte-Carlo error), and the stop-21 fit with 24 samples chose :math:`c` too large for the
CLI's 100 (z-score std 0.82-0.93 on the eval crops). The optimization (``vble_restore``'s own
loop) is run once per record and the sampling repeated per :math:`c` (private helpers of
:mod:`inverse.vble._posterior`).

Run (two processes by decimation, about 40 min each on a busy 2-core machine, then the fit)::

    python scripts/fit_vble_decoder_error.py --decimation 1 --out d1.json
    python scripts/fit_vble_decoder_error.py --decimation 2 --out d2.json
    python scripts/fit_vble_decoder_error.py --fit d1.json d2.json --out fit.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sciml_inverse import write_json

ROOT = Path(__file__).resolve().parents[1]


def _example(name: str):
    """The example script ``examples/<name>.py`` as a module (no sys.path edit)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses of the example look their module up
    spec.loader.exec_module(module)
    return module


E = _example("vble_satellite_eval")

BLOCKS = (("rotterdam1_pan_0p5m", 224), ("rotterdam1_pan_0p5m", 64),
          ("rotterdam2_pan_0p5m", 448), ("atlanta_pan_0p5m", 160))
C_GRID = (0.7, 1.0, 1.4, 2.0)
INFORMATIVE_C2 = 0.05


def measure(decimation: int, out: Path, mtfs: tuple[float, ...] = (0.1, 0.25),
            samples: int | None = None) -> list[dict]:
    from inverse.vble import _posterior as P
    from inverse.vble import default_options, load_satellite_train, select_model
    from inverse.vble._cae import crop

    torch.set_num_threads(1)
    args = E.parse_args(["--json", "/dev/null"])
    models = E.load_models(args)
    val = load_satellite_train(E.DATA / "train", val_rows=128).val
    blocks = [((n, c0), torch.from_numpy(val[n][:, c0:c0 + 128]).float()[None, None].contiguous())
              for n, c0 in BLOCKS]
    samples = default_options().n_samples if samples is None else samples
    settings = [s for s in E.ALL_SETTINGS if s.decimation == decimation and s.mtf in mtfs]
    recs = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["setting"], r["crop_name"]) for r in recs}
    for k, (cname, x) in enumerate(blocks):
        for s in settings:
            if (s.name, str(cname)) in done:
                continue
            s_idx = E.ALL_SETTINGS.index(s)
            y, op, noise = E.degrade(x, s, seed=20_000 + 100 * s_idx + k)
            nstd = math.sqrt(float(noise.variance(y.mean())))
            cae = models[select_model(nstd, s.decimation, s.mtf)]
            opts = default_options(steps=300, n_samples=samples, seed=0)
            t0 = time.perf_counter()
            cae.requires_grad_(False)
            saved = P._to_channels_last(cae, opts, torch.device("cpu"))
            st = P._Variational(y, op, noise, cae, opts, P.initial_estimate(y, op))
            _, n_iter = P._optimize(st, opts, P._ImageRNG(1, opts.seed, torch.device("cpu")))
            with torch.no_grad():
                xz = crop(cae.decode(st.y_bar), st.size)
                sig0 = crop(cae.decode_std(st.y_bar), st.size)
                c_hat = float(P.estimate_decoder_error_scale(
                    y, op, noise, xz, sig0, generator=torch.Generator().manual_seed(1),
                    probes=16, gain=1.0, fallback=1e-6, threshold=0.0))
            rec = {"setting": s.name, "crop_name": str(cname), "c_hat": c_hat,
                   "true_rms_err_over_sigma": float(((x - xz) ** 2).mean().sqrt()
                                                    / (sig0 ** 2).mean().sqrt()),
                   "seconds_optimization": time.perf_counter() - t0,
                   "n_iter": int(n_iter[0]), "by_c": {}}
            for c in C_GRID:
                o = default_options(steps=300, n_samples=samples, return_samples=samples,
                                    seed=0, decoder_error_scale=c)
                xm, sd, _, smp = P._sample(st, o, torch.Generator().manual_seed(2))
                cal = E.calibration(xm, sd, x, smp)
                rec["by_c"][str(c)] = {"psnr": E.quality(xm, x)["psnr"],
                                       "coverage_2sigma": cal["coverage_2sigma"],
                                       "zscore_std": cal["zscore_std"]}
            for t, data in saved:
                t.data = data
            recs.append(rec)
            write_json(out, recs)
            print(s.name, cname, f"c_hat={c_hat:.3f}", {c: round(v["zscore_std"], 2)
                                                          for c, v in rec["by_c"].items()},
                  flush=True)
    return recs


def c_star(rec: dict) -> float:
    """The c where the z-score std crosses 1 (log-log interpolation, linear extrapolation)."""
    cs = np.log([float(c) for c in rec["by_c"]])
    zs = np.log([v["zscore_std"] for v in rec["by_c"].values()])
    order = np.argsort(zs)
    if zs.min() <= 0 <= zs.max():
        return float(np.exp(np.interp(0.0, zs[order], cs[order])))
    i, j = (0, -1)
    return float(np.exp(cs[i] + (0 - zs[i]) * (cs[j] - cs[i]) / (zs[j] - zs[i])))


def fit(records: list[dict]) -> dict:
    table = []
    for d, rho in ((1, 1.0), (2, 0.25)):
        rr = [r for r in records if f"_d{d}_" in r["setting"]]
        if not rr:
            continue
        info = [r for r in rr if r["c_hat"] ** 2 > INFORMATIVE_C2]
        rest = [r for r in rr if r["c_hat"] ** 2 <= INFORMATIVE_C2]
        k = math.exp(np.mean([math.log(c_star(r) / r["c_hat"]) for r in info]))
        c0 = math.exp(np.mean([math.log(c_star(r)) for r in (rest or rr)]))
        table.append({"ratio": rho, "gain": round(k, 2), "fallback": round(c0, 2),
                      "n_records": len(rr), "n_informative": len(info)})
    per = [{"setting": r["setting"], "crop": r["crop_name"], "c_hat": r["c_hat"],
            "c_star": c_star(r)} for r in records]
    return {"table": table, "records": per}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--decimation", type=int, choices=(1, 2))
    p.add_argument("--mtf", type=float, nargs="+", default=[0.1, 0.25],
                   help="MTF values of the settings measured (default: both)")
    p.add_argument("--fit", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if a.fit:
        recs = [r for f in a.fit for r in json.loads(f.read_text())]
        res = fit(recs)
        write_json(a.out, res)
        for t in res["table"]:
            print(t)
    elif a.decimation:
        measure(a.decimation, a.out, tuple(a.mtf))
    else:
        p.error("give --decimation or --fit")


if __name__ == "__main__":
    main()
