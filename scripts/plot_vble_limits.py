"""What limits VBLE-xz against TV on the satellite evaluation: one figure from the evaluation
JSON (``examples/vble_satellite_eval.py --json``) and a decoder-ceiling table.

Left: the PSNR of each restoration method minus TV's, per setting (mean of the crops), with the
issue's per-setting floor (TV − 0.2 dB) and the mean target (TV + 0.5 dB).
Right: the decoder fit ceiling of CAE runs on each eval crop against the training images the CAE
had seen (steps × batch), beside TV + 1 dB at the lowest noise level of that crop — the issue's
capacity target. The ceiling table is a JSON list ``runs`` of ``{label, images_seen,
ceiling_db: [crop 0, crop 1, ...], family}`` (``docs/_static/vble_eval/ceiling_vs_training.json``
cites where each number was measured).

Usage::

    python scripts/plot_vble_limits.py docs/_static/vble_eval/vble_eval.json \\
        docs/_static/vble_eval/ceiling_vs_training.json --out vble_limits.png

It prints the numbers it draws (gains per setting, their mean, the lowest-noise TV per crop).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

#: Methods drawn (those present in the JSON), in this order.
METHODS = ("cli_default", "vble_xz", "tikhonov")
_NOISE_ORDER = ("vlow", "low", "high")


def _load(path: Path, what: str, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        for k in keys:
            data[k]  # noqa: B018 - presence check
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {path} is not {what} ({type(e).__name__}: {e})") from None
    return data


def gains(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``{method: {setting: PSNR(method) - PSNR(TV)}}`` from the evaluation's ``results``."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for setting, per in results.items():
        tv = per.get("tv", {}).get("psnr")
        if tv is None:
            continue
        for m in METHODS:
            if per.get(m, {}).get("psnr") is not None:
                out[m][setting] = float(per[m]["psnr"]) - float(tv)
    return dict(out)


def lowest_noise_tv(records: list[dict[str, Any]]) -> dict[int, float]:
    """Per crop, TV's best PSNR over the settings of the lowest noise level present."""
    levels = {r["setting"].rsplit("_", 1)[-1] for r in records if r.get("method") == "tv"}
    level = next((lv for lv in _NOISE_ORDER if lv in levels), None)
    best: dict[int, float] = {}
    for r in records:
        if r.get("method") == "tv" and r["setting"].endswith("_" + str(level)):
            best[r["crop"]] = max(best.get(r["crop"], float("-inf")), float(r["psnr"]))
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("eval_json", type=Path, help="examples/vble_satellite_eval.py --json output")
    p.add_argument("ceilings", type=Path, help="decoder-ceiling table JSON (see the docstring)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = p.parse_args(argv)
    ev = _load(args.eval_json, "a VBLE evaluation JSON", ("results", "records"))
    ce = _load(args.ceilings, "a decoder-ceiling table", ("runs",))
    g = gains(ev["results"])
    if not g:
        raise SystemExit(f"error: {args.eval_json} has no setting with TV and another method")
    tv_best = lowest_noise_tv(ev["records"])
    settings = sorted(next(iter(g.values())), key=lambda s: (s.split("_")[1],
                      _NOISE_ORDER.index(s.rsplit("_", 1)[-1]) if s.rsplit("_", 1)[-1]
                      in _NOISE_ORDER else 9, s))
    for m, per in g.items():
        mean = sum(per.values()) / len(per)
        print(f"{m}: mean {mean:+.3f} dB over TV; worst {min(per.values()):+.3f} dB "
              f"({min(per, key=per.get)})")
    print("TV at the lowest noise level, per crop:",
          ", ".join(f"crop {c}: {v:.2f} dB" for c, v in sorted(tv_best.items())))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12.5, 4.4), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.5, 1]})
    ms = [m for m in METHODS if m in g]
    width = 0.8 / len(ms)
    for k, m in enumerate(ms):
        vals = [g[m].get(s, float("nan")) for s in settings]
        mean = sum(g[m].values()) / len(g[m])
        ax.bar([i + (k - (len(ms) - 1) / 2) * width for i in range(len(settings))], vals,
               width, color=f"C{k}", label=f"{m} (mean {mean:+.2f} dB)")
    ax.axhline(0, color="k", lw=0.8)
    ax.axhline(-0.2, color="C3", ls=":", lw=1, label="per-setting floor: TV − 0.2 dB")
    ax.axhline(0.5, color="C2", ls="--", lw=1, label="mean target: TV + 0.5 dB")
    ax.set_xticks(range(len(settings)), settings, rotation=45, ha="right", fontsize=8)
    ax.set(ylabel="PSNR − TV's PSNR (dB)", title="restoration vs TV per setting (eval crops)")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo - 0.45 * (hi - lo), hi)  # room for the legend below the bars
    ax.legend(fontsize=7, loc="lower center", ncol=2)
    ax.grid(True, axis="y", lw=0.3)

    runs = ce["runs"]
    n_crops = max(len(r["ceiling_db"]) for r in runs)
    families = list(dict.fromkeys(r.get("family", "runs") for r in runs))
    markers = "osD^v"
    for c in range(n_crops):
        for f_i, fam in enumerate(families):
            pts = sorted((r["images_seen"], r["ceiling_db"][c]) for r in runs
                         if r.get("family", "runs") == fam and len(r["ceiling_db"]) > c)
            bx.plot([q[0] for q in pts], [q[1] for q in pts], marker=markers[f_i % 5],
                    color=f"C{c}", ls="-" if "GPU" not in fam else "none", ms=5, lw=1,
                    alpha=1.0 if f_i == 0 else 0.75,
                    label=f"crop {c}: {fam}")
        if c in tv_best:
            bx.axhline(tv_best[c] + 1.0, color=f"C{c}", ls="--", lw=1,
                       label=f"crop {c}: target, TV at lowest noise + 1 dB "
                             f"({tv_best[c] + 1:.1f})")
    bx.set_xscale("log")
    bx.set(xlabel="training images seen by the CAE (steps × batch)",
           ylabel="decoder fit ceiling (dB)", title="CAE capacity (N = 64, M = 192) vs training")
    bx.legend(fontsize=6.5, loc="lower right")
    bx.grid(True, which="both", lw=0.3, alpha=0.6)
    from sciml_inverse import atomic_path

    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
