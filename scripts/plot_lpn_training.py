"""Plot LPN training loss histories (the records ``scripts/train_lpn_deblur.py`` writes beside
its weights) with the stages of the training schedule: the L1 warm-up, then proximal matching
at decreasing γ. A run whose proximal-matching loss jumps to 1 has collapsed (the network
stopped denoising: 1 − exp(−e²/γ²) saturates once every patch error e is well above γ).

Usage::

    python scripts/plot_lpn_training.py RECORD.json [RECORD.json ...] --out lpn_training.png

A file may hold one record (``loss_history`` and ``schedule`` at the top level) or several
under ``records`` (``docs/_static/lpn/gpu_runs_2026-12-04.json``); each record is drawn as its
own curve, and the stage boundaries come from the first record's schedule.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def read_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``[(label, record)]`` of the training records in ``path``.

    Raises
    ------
    SystemExit
        If the file holds no record with a loss history.
    """
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: cannot read {path} ({e})") from None
    found = ([(path.stem, data)] if isinstance(data, dict) and "loss_history" in data else
             [(k, r) for k, r in (data.get("records") or {}).items()
              if isinstance(r, dict) and "loss_history" in r] if isinstance(data, dict) else [])
    for label, r in found:
        h = r["loss_history"]
        if not (isinstance(h, dict) and h.get("step") and len(h["step"]) == len(h.get("loss", []))):
            raise SystemExit(f"error: {path}: record {label!r} has no usable loss_history "
                             f"(step and loss lists of equal length)")
    if not found:
        raise SystemExit(f"error: {path} holds no LPN training record (a JSON with "
                         f"loss_history, or records of them)")
    return found


def stages(schedule: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """``[(first step, last step, label)]`` of a schedule's stages."""
    out, start = [], 0
    for s in schedule:
        n = int(s["steps"])
        label = "L1" if s.get("loss") == "l1" else f"PM γ={s.get('gamma_rms')}"
        out.append((start, start + n, label))
        start += n
    return out


def _position(step: int, own: list[tuple[int, int, str]]) -> float:
    """Stage index plus the fraction of that stage done at ``step`` (history steps are window
    ends, so a step on a boundary belongs to the stage it ends)."""
    for k, (a, b, _) in enumerate(own):
        if step <= b:
            return k + (step - a) / max(1, b - a)
    return float(len(own))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("records", type=Path, nargs="+", help="training record JSON files")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="LPN training: loss per stage")
    args = p.parse_args(argv)
    runs = [item for path in args.records for item in read_records(path)]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 3.8), layout="constrained")
    first = stages(runs[0][1].get("schedule") or [])
    for k in range(len(first)):
        ax.axvspan(k, k + 1, color="0.93" if k % 2 else "0.86", lw=0)
    ax.set_xticks([k + 0.5 for k in range(len(first))], [lab for _, _, lab in first],
                  fontsize=8)
    for k, (label, r) in enumerate(runs):
        h = r["loss_history"]
        own = stages(r.get("schedule") or []) or [(0, h["step"][-1], "")]
        if [lab for _, _, lab in own] != [lab for _, _, lab in first]:
            raise SystemExit(f"error: record {label!r} has other stages than the first record "
                             f"({[lab for _, _, lab in own]}); plot it separately")
        x = [_position(s, own) for s in h["step"]]
        extra = f", {r['num_parameters'] / 1e3:.0f}k params" if "num_parameters" in r else ""
        ax.plot(x, h["loss"], marker=".", lw=1.2, color=f"C{k}",
                label=f"{label}{extra}, {h['step'][-1]} steps")
        print(f"{label}: final loss {h['loss'][-1]:.4g} at step {h['step'][-1]}")
    ax.set(xlabel="schedule stage (each run's steps mapped onto its own stages)",
           ylabel="training loss (window mean)", ylim=(0, 1.1), xlim=(0, len(first)))
    ax.set_title(args.title + "  (proximal-matching loss 1 = collapsed)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    from sciml_inverse import atomic_path

    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
