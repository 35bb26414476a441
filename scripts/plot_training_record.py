"""Plot the training history stored in a training record JSON (``--json`` of
``scripts/train_vble_cae.py``): rate (bpp), distortion (PSNR of the training batches) and,
when present, the variance decoder's NLL against the step.

Usage::

    python scripts/plot_training_record.py RECORD.json --out curve.png

The figure of ``docs/guide/training.rst`` (``docs/_static/training/cae_training_curve.png``)
was made from the record of the bfloat16 run described there.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("record", type=Path, help="training record JSON (train_vble_cae.py --json)")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default=None)
    args = p.parse_args(argv)
    try:
        rec = json.loads(args.record.read_text())
        hist = rec["cae_train"]["history"]
        steps, bpp, mse = hist["step"], hist["bpp"], hist["mse"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"error: {args.record} is not a training record with a CAE history "
                         f"({e})") from None

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    std = rec.get("std_train", {}).get("history", {})
    n = 3 if std.get("step") else 2
    fig, axes = plt.subplots(1, n, figsize=(4.0 * n, 3.2), layout="constrained")
    axes[0].plot(steps, bpp, lw=1)
    axes[0].set(xlabel="step", ylabel="rate (bits per pixel)", title="CAE: rate")
    axes[1].plot(steps, [10 * math.log10(1.0 / m) for m in mse], lw=1, color="C1")
    axes[1].set(xlabel="step", ylabel="PSNR of D(ŷ) on the batch (dB)", title="CAE: distortion")
    milestones = rec["cae_train"].get("config", {}).get("lr_milestones", [])
    for ax in axes[:2]:
        for m in milestones:
            ax.axvline(m, color="0.6", ls="--", lw=0.8)
    if n == 3:
        axes[2].plot(std["step"], std["nll"], lw=1, color="C2")
        axes[2].set(xlabel="step", ylabel="Gaussian NLL per pixel",
                    title="variance decoder")
    prec = rec.get("precision", "fp32")
    fig.suptitle(args.title or f"{args.record.name}: {rec['cae_train']['steps']} steps, "
                 f"precision {prec}, {rec['cae_train']['seconds'] / 60:.0f} min")
    from sciml_inverse import atomic_path

    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
