r"""Score CAE weights by what the CLI returns, on held-out *train* crops (issue 10).

``--model auto`` chooses among the shipped CAEs by their MAP-z PSNR on train crops, but the CLI
default is the exact Gaussian conditional (:func:`inverse.vble.default_options`), whose result
moves past :math:`D(z)`: a better MAP-z model need not give a better CLI default (the seventh
evaluation run of ``docs/guide/vble.rst``). This script restores the 48 records of
``scripts/fit_vble_decoder_error.py`` (four 128×128 blocks of the held-out validation strips of
the train panchromatic images × the 12 settings of ``examples/vble_satellite_eval.py``, the same
seeds) with the CLI's default options and 100 samples, using the given weights and, optionally,
the decoder-error rule fitted for them, and records per record the PSNR, the ±2σ coverage and
the z-score std. Never the eval image.

Run one process per candidate, then compare::

    python scripts/select_vble_model.py --weights inverse/vble/weights/cae_xhigh.pt \
        --out run3.json
    python scripts/select_vble_model.py --weights RUN4/cae_x4.pt \
        --rule 4.78,1.81,1.86,1.59 --out run4.json
    python scripts/select_vble_model.py --compare run3.json run4.json

The selection of 4 Dec 2026 (``docs/_static/vble_eval/xhigh_selection.json``): the higher mean
PSNR, unless the two are within 0.05 dB, then the larger number of records with both
calibration targets met (coverage in [0.90, 0.98], z-score std in [0.8, 1.25]).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from sciml_inverse import write_json


def _sibling(name: str):
    """The script ``scripts/<name>.py`` as a module (no import-path edit)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent
                                                  / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


F = _sibling("fit_vble_decoder_error")  # the blocks, and the example module as F.E
E = F.E
PSNR_TIE_DB = 0.05


def score(weights: Path, rule: tuple[float, ...] | None, out: Path) -> list[dict]:
    from inverse.vble import default_options, load_cae, load_satellite_train, vble_restore

    # (k, c0) at rho = 1/4, then at rho = 1; None: the shipped rule
    table = None if rule is None else ((0.25, rule[0], rule[1]), (1.0, rule[2], rule[3]))
    torch.set_num_threads(1)
    cae = load_cae(weights).eval()
    val = load_satellite_train(E.DATA / "train", val_rows=128).val
    recs = json.loads(out.read_text()) if out.is_file() else []
    done = {(r["setting"], r["block"]) for r in recs}
    for k, (name, c0) in enumerate(F.BLOCKS):
        x = torch.from_numpy(val[name][:, c0:c0 + 128]).float()[None, None].contiguous()
        for s in E.ALL_SETTINGS:
            if (s.name, f"{name}:{c0}") in done:
                continue
            y, op, noise = E.degrade(x, s, seed=20_000 + 100 * E.ALL_SETTINGS.index(s) + k)
            t0 = time.perf_counter()
            res = vble_restore(y, op, noise, cae, default_options(
                n_samples=100, return_samples=100, seed=0, decoder_error_rule=table))
            cal = E.calibration(res.x_mmse, res.x_std, x, res.samples)
            recs.append({"setting": s.name, "block": f"{name}:{c0}",
                         "psnr": E.quality(res.x_mmse, x)["psnr"],
                         "coverage_2sigma": cal["coverage_2sigma"],
                         "zscore_std": cal["zscore_std"],
                         "seconds": time.perf_counter() - t0})
            write_json(out, recs)
            print(recs[-1], flush=True)
    return recs


def calibrated(r: dict) -> bool:
    return 0.90 <= r["coverage_2sigma"] <= 0.98 and 0.8 <= r["zscore_std"] <= 1.25


def summary(recs: list[dict]) -> dict:
    per = {}
    for s in sorted({r["setting"] for r in recs}):
        rr = [r for r in recs if r["setting"] == s]
        per[s] = {"psnr": statistics.mean(r["psnr"] for r in rr),
                  "zscore_std": statistics.mean(r["zscore_std"] for r in rr)}
    return {"n_records": len(recs), "mean_psnr": statistics.mean(r["psnr"] for r in recs),
            "n_calibrated": sum(calibrated(r) for r in recs), "per_setting": per}


def compare(paths: list[Path]) -> dict:
    out = {p.stem: summary(json.loads(p.read_text())) for p in paths}
    best = max(s["mean_psnr"] for s in out.values())
    tied = [k for k, s in out.items() if best - s["mean_psnr"] <= PSNR_TIE_DB]
    choice = max(tied, key=lambda k: (out[k]["n_calibrated"], out[k]["mean_psnr"]))
    for k, s in out.items():
        print(f"{k}: mean PSNR {s['mean_psnr']:.3f} dB, calibrated {s['n_calibrated']} of "
              f"{s['n_records']}")
    print(f"selected: {choice}")
    return {"candidates": out, "selected": choice, "psnr_tie_db": PSNR_TIE_DB}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, help="CAE weights (inverse.vble.load_cae)")
    p.add_argument("--rule", default=None,
                   help="decoder-error rule k,c0 at rho=1/4 then k,c0 at rho=1 (default: the "
                        "shipped DECODER_ERROR_RULE)")
    p.add_argument("--compare", type=Path, nargs="+", help="score files to compare")
    p.add_argument("--out", type=Path, help="score file (resumed) or comparison file")
    a = p.parse_args(argv)
    if a.compare:
        res = compare(a.compare)
        if a.out:
            write_json(a.out, res)
        return
    if a.weights is None or a.out is None:
        p.error("give --weights and --out, or --compare")
    rule = None
    if a.rule is not None:
        try:
            rule = tuple(float(v) for v in a.rule.split(","))
        except ValueError:
            rule = ()
        if len(rule) != 4 or min(rule) <= 0:
            p.error(f"--rule takes four positive numbers k,c0,k,c0, got {a.rule!r}")
    score(a.weights, rule, a.out)


if __name__ == "__main__":
    main()
