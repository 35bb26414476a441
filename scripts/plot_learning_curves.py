"""Plot validation learning curves of training runs: the validation relative L2 error that
:func:`sciml_inverse.fit` records in a run checkpoint's history (``extra["history"]["epoch_end"]``,
one entry per validation), against the optimizer step, on log-log axes, with target lines.

This is the figure that says *what limits* an operator's accuracy at a given budget: a curve
still falling at its last step is limited by training steps (and the slope tells how many more
are needed), a curve that flattened or rose while the learning rate fell is limited by the
method or its settings.

Usage::

    # from run checkpoints (examples/*_neural_operators.py --run-dir ...):
    python scripts/plot_learning_curves.py RUN.pt=LABEL [RUN.pt=LABEL ...] \\
        --target 0.03="target" --mark 200000="reference steps" \\
        --out curves.png --json curves.json

    # again from the curves JSON alone (the docs' figures are made this way):
    python scripts/plot_learning_curves.py --from-json curves.json --out curves.png

``--json`` writes the extracted curves (label, checkpoint name, settings, steps, errors) with
the targets and marks, so a figure can be redrawn and checked without the checkpoints.
The slope printed for each curve is the least-squares slope of log(error) against log(step)
over its last third, with the steps that slope would need to reach the first target.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any


def _split(text: str, what: str) -> tuple[str, str | None]:
    head, sep, label = text.partition("=")
    if not head:
        raise SystemExit(f"error: empty {what} in {text!r}; write VALUE or VALUE=LABEL")
    return head, (label if sep else None)


def _number(text: str, what: str) -> tuple[float, str]:
    head, label = _split(text, what)
    try:
        value = float(head)
    except ValueError:
        raise SystemExit(f"error: {what} {head!r} is not a number; write VALUE or "
                         f"VALUE=LABEL (e.g. 0.03=target)") from None
    if not (value > 0 and math.isfinite(value)):
        raise SystemExit(f"error: {what} must be positive and finite, got {head}")
    return value, label if label is not None else f"{value:g}"


def read_curve(path: Path, label: str | None) -> dict[str, Any]:
    """The validation curve of one run checkpoint.

    Raises
    ------
    SystemExit
        If the file is not a run checkpoint with a validation history.
    """
    from sciml_inverse import load_checkpoint

    try:
        ck = load_checkpoint(path, what="run checkpoint", finite_state=False)
    except (FileNotFoundError, ValueError, TypeError) as e:
        raise SystemExit(f"error: {e}") from None
    hist = ck.extra.get("history") if isinstance(ck.extra, dict) else None
    ends = hist.get("epoch_end") if isinstance(hist, dict) else None
    points = [(int(e["step"]), float(e["val_rel_l2"])) for e in (ends or [])
              if isinstance(e, dict) and "val_rel_l2" in e and "step" in e]
    if not points:
        raise SystemExit(f"error: {path} has no validation history (a checkpoint written by "
                         f"sciml_inverse.fit with a validation set is needed)")
    return {"label": label or path.stem, "checkpoint": path.name, "kind": ck.kind,
            "epoch": ck.extra.get("epoch"), "seconds": ck.extra.get("total_wall_time"),
            "step": [p[0] for p in points], "val_rel_l2": [p[1] for p in points]}


def tail_slope(steps: list[int], errors: list[float]) -> float | None:
    """Least-squares slope of log(error) vs log(step) over the last third of the curve."""
    pts = [(math.log(s), math.log(e))
           for s, e in zip(steps, errors, strict=True) if s > 0 and e > 0]
    pts = pts[len(pts) - max(3, len(pts) // 3):] if len(pts) >= 3 else []
    if not pts:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def steps_to_reach(curve: dict[str, Any], target: float) -> float | None:
    """Steps at which the tail's power law ``e(s) = e_best (s/s_last)^slope`` reaches ``target``
    (None if the tail does not fall, ``math.inf`` beyond about 1e304 steps)."""
    slope = tail_slope(curve["step"], curve["val_rel_l2"])
    if slope is None or slope >= 0:
        return None
    best = min(curve["val_rel_l2"])
    if best <= target:
        return float(curve["step"][curve["val_rel_l2"].index(best)])
    log_steps = math.log(curve["step"][-1]) + math.log(target / best) / slope
    return math.exp(log_steps) if log_steps < 700 else math.inf  # a nearly flat tail


def draw(data: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    for k, c in enumerate(data["curves"]):
        ax.loglog(c["step"], c["val_rel_l2"], lw=1.2, color=f"C{k}", label=c["label"])
    for j, t in enumerate(data.get("targets", [])):
        ax.axhline(t["value"], color="k", ls=("--", ":", "-.")[j % 3], lw=0.9, label=t["label"])
    for m in data.get("marks", []):
        ax.axvline(m["value"], color="0.5", ls="--", lw=0.9)
        ax.text(m["value"], ax.get_ylim()[0], m["label"] + " ", rotation=90, va="bottom",
                ha="right", fontsize=7, color="0.35")
    ax.set(xlabel="optimizer step", ylabel="validation relative L2 error",
           title=data.get("title") or "validation learning curves")
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    from sciml_inverse import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", help="run checkpoints, each optionally =LABEL")
    p.add_argument("--from-json", type=Path, default=None,
                   help="redraw from a curves JSON written by --json (no checkpoints needed)")
    p.add_argument("--target", action="append", default=[],
                   help="horizontal target line VALUE[=LABEL] (repeatable)")
    p.add_argument("--mark", action="append", default=[],
                   help="vertical line at a step VALUE[=LABEL], e.g. the reference's budget")
    p.add_argument("--title", default=None)
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--json", type=Path, default=None, help="also write the curves here")
    args = p.parse_args(argv)
    if bool(args.runs) == bool(args.from_json):
        p.error("give run checkpoints or --from-json, not both and not neither")
    if args.from_json is not None:
        import json

        try:
            data = json.loads(args.from_json.read_text())
            if not isinstance(data.get("curves"), list) or not data["curves"]:
                raise KeyError("curves")
        except (OSError, ValueError, KeyError, AttributeError) as e:
            raise SystemExit(f"error: {args.from_json} is not a curves JSON written by "
                             f"--json ({e})") from None
    else:
        curves = []
        for text in args.runs:
            head, label = _split(text, "run checkpoint")
            curves.append(read_curve(Path(head), label))
        data = {"curves": curves, "title": args.title,
                "command": "python scripts/plot_learning_curves.py " + " ".join(
                    a if " " not in a else repr(a) for a in (argv if argv is not None
                                                              else sys.argv[1:]))}
    if args.target:
        data["targets"] = [dict(zip(("value", "label"), _number(t, "--target"), strict=True))
                           for t in args.target]
    if args.mark:
        data["marks"] = [dict(zip(("value", "label"), _number(m, "--mark"), strict=True))
                         for m in args.mark]
    if args.title:
        data["title"] = args.title
    first = data.get("targets", [{}])[0].get("value")
    for c in data["curves"]:
        slope = tail_slope(c["step"], c["val_rel_l2"])
        c["tail_slope"] = slope
        need = steps_to_reach(c, first) if first else None
        c["steps_to_first_target"] = need if need is None or math.isfinite(need) else "inf"
        print(f"{c['label']}: last step {c['step'][-1]}, last {c['val_rel_l2'][-1]:.4g}, best "
              f"{min(c['val_rel_l2']):.4g}, tail slope "
              f"{'n/a' if slope is None else f'{slope:.2f}'}"
              + ("" if first is None else ", steps to the target at that slope: "
                 + ("never (not falling)" if need is None else f"{need:.3g}")))
    draw(data, args.out)
    if args.json is not None:
        from sciml_inverse import write_json

        write_json(args.json, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
