"""Score denoiser snapshots as plug-and-play priors on train crops: PSNR against training steps.

For every weights file given (LPN snapshots of ``scripts/train_lpn_deblur.py --snapshot-every``,
unconstrained denoisers of ``scripts/train_denoiser_baseline.py``, or the shipped LPN), on the
8 *train* crops of ``examples/lpn_deblur.py`` (128×128; never ``eval/``):

* ``deblur_noise0.01`` / ``deblur_noise0.02``: PnP-ADMM deblurring (blur σ_b = 1.5 px), 40
  iterations at the MAP weight ρ = λ = (σ/σ_train)², exactly as ``lpn_deblur.py
  --check-lpn-weight`` runs it (same data seeds);
* ``denoise``: one call of the denoiser at its training noise σ_train.

TV is the reference line: for each task its weight is the *best* of a grid on these same crops
(an oracle choice, which favours TV), solved by the same ADMM (100 iterations). The result
JSON keeps one record per file, so a run can be repeated while training continues (files
already scored are skipped); ``--plot`` draws PSNR − TV against the step for each family of
files, with the LPN's schedule phases marked.

::

    python scripts/score_lpn_snapshots.py runs/lpn_snapshots/*.pt runs/dncnn_snapshots/*.pt \\
        --json scores.json --plot scores.png --phases 8000,11000,14000,17000
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from inverse import LPNPrior, TVPrior
from inverse.lpn import load_lpn
from inverse.metrics import psnr
from sciml_inverse import atomic_path, load_checkpoint, write_json

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"deblur_noise0.01": 0.01, "deblur_noise0.02": 0.02}
#: data seeds of the tasks (offset + task index): train as ``lpn_deblur.py --check-lpn-weight``,
#: eval as ``lpn_deblur.py`` itself (so its LPN numbers are reproduced exactly)
SEED_OFFSET = {"train": 2000, "eval": 0}
DENOISE_SEED = 3000
TV_DENOISE_GRID = tuple(float(v) for v in np.geomspace(3e-3, 3e-1, 15))


def _load(name: str, path: Path):
    """A script or example as a module (no import-path edit)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


class _NoGrad(nn.Module):
    """An ordinary denoiser in the prox slot, evaluated without a graph."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x)


def load_denoiser(path: Path, sigma_train: float) -> tuple[LPNPrior, str, float]:
    """The file's denoiser in the prox slot of PnP-ADMM, its family and σ_train."""
    try:
        kind = load_checkpoint(path).kind
    except ValueError:  # not the common format: an LPN weights file (load_lpn reads it)
        kind = None
    if kind == "denoiser-baseline":
        B = _load("train_denoiser_baseline", ROOT / "scripts" / "train_denoiser_baseline.py")
        net, cfg = B.load_denoiser(path)
        return LPNPrior(_NoGrad(net), cfg["sigma_train"]), "dncnn", cfg["sigma_train"]
    side = path.with_suffix(".json")
    if side.exists():
        sigma_train = json.loads(side.read_text()).get("sigma_train", sigma_train)
    return LPNPrior(load_lpn(path).eval(), sigma_train), "lpn", sigma_train


def step_of(path: Path) -> int | None:
    m = re.search(r"step(\d+)", path.stem)
    return int(m.group(1)) if m else None


def _noisy(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The denoising task's input: ``x`` plus white noise of std ``sigma`` (fixed seed)."""
    gen = torch.Generator().manual_seed(DENOISE_SEED)
    return x + sigma * torch.randn(x.shape, generator=gen)


def _save(fig, out: Path) -> None:
    """Write a figure atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png")
    plt.close(fig)


def _per_crop(xhat: torch.Tensor, x: torch.Tensor) -> list[float]:
    return [round(v, 3) for v in psnr(xhat.clamp(0, 1), x).tolist()]


def tv_reference(E, x: torch.Tensor, sigma_train: float, iters: int, seed0: int) -> dict:
    """TV at its best grid weight on these crops, per task (an oracle choice)."""
    out = {}
    for ti, (name, noise) in enumerate(TASKS.items()):
        op, y, x0 = E.make_problem("blur", noise, x, seed=seed0 + ti)
        k = len(E.TV_GRID)
        lam = torch.tensor(E.TV_GRID, dtype=x.dtype).reshape(k, 1)
        res = E.solve(op, y.expand(k, *y.shape), x0.expand(k, *x0.shape), E.tv_prior(), lam,
                      E.RHO_OVER_LAM * lam, iters)
        out[name] = E.grid_choice(E.TV_GRID, res.x, x)
        best = E.TV_GRID.index(out[name]["lam"])
        out[name]["per_crop"] = _per_crop(res.x[best], x)
    y = _noisy(x, sigma_train)
    tv = TVPrior()
    p = [float(psnr(tv.prox(y, g).clamp(0, 1), x).mean()) for g in TV_DENOISE_GRID]
    best = int(np.argmax(p))
    out["denoise"] = {"lam": TV_DENOISE_GRID[best], "grid": list(TV_DENOISE_GRID),
                      "train_psnr": [round(v, 3) for v in p],
                      "per_crop": _per_crop(tv.prox(y, TV_DENOISE_GRID[best]), x)}
    return {k: {**v, "psnr": max(v["train_psnr"])} for k, v in out.items()}


def score(E, path: Path, x: torch.Tensor, sigma_train: float, iters: int, seed0: int) -> dict:
    prior, family, s_train = load_denoiser(path, sigma_train)
    rec: dict = {"file": str(path), "family": family, "step": step_of(path),
                 "sigma_train": s_train}
    t0 = time.perf_counter()
    for ti, (name, noise) in enumerate(TASKS.items()):
        op, y, x0 = E.make_problem("blur", noise, x, seed=seed0 + ti)
        lam = prior.admm_weight(noise)
        res = E.solve(op, y, x0, prior, lam, None, iters)
        rec[name] = float(psnr(res.x.clamp(0, 1), x).mean())
        rec[f"{name}_per_crop"] = _per_crop(res.x, x)
        # the relative fixed-point residual of the last iteration (large: ADMM did not settle)
        rec[f"{name}_residual"] = float(res.history.residual[-1].max())
    xd = prior.prox(_noisy(x, s_train))
    rec["denoise"] = float(psnr(xd.clamp(0, 1), x).mean())
    rec["denoise_per_crop"] = _per_crop(xd, x)
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def _series(r: dict) -> str:
    """The curve a record belongs to: its snapshot folder, or the file's stem without a step."""
    return Path(r["file"]).parent.name if r["step"] is not None else Path(r["file"]).stem


def _colors(data: dict) -> dict[str, str]:
    """One colour per series, the same in every figure."""
    return {name: f"C{i}" for i, name in enumerate(sorted({_series(r) for r in data["scores"]}))}


def jacobian_norm(prior: LPNPrior, y: torch.Tensor, iters: int = 20, seed: int = 0) -> list[float]:
    """Spectral norm of the denoiser's Jacobian at each image of ``y`` (power iteration on JᵀJ).

    For an LPN, ``f = ∇ψ`` and J is the Hessian of ψ; its largest eigenvalue L makes the learned
    R (1 − 1/L)-weakly convex, which is what PnP-ADMM at ρ = λ has to tolerate. JᵀJv is formed
    with two vector-Jacobian products (the second through a dummy cotangent), so it works for
    any differentiable denoiser.
    """
    net = prior.lpn.net if isinstance(prior.lpn, _NoGrad) else prior.lpn

    def f(z: torch.Tensor) -> torch.Tensor:
        return net(z) if isinstance(prior.lpn, _NoGrad) else net(z, create_graph=True)

    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(y.shape, generator=gen)
    v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    norm = torch.ones(len(y))
    for _ in range(iters):
        z = y.clone().requires_grad_(True)
        out = f(z)
        u = torch.zeros_like(out, requires_grad=True)
        g = torch.autograd.grad(out, z, u, create_graph=True)[0]  # Jᵀu, linear in u
        jv = torch.autograd.grad(g, u, v, create_graph=True)[0]   # J v
        jtjv = torch.autograd.grad(out, z, jv)[0]                  # Jᵀ J v
        norm = jtjv.flatten(1).norm(dim=1)
        v = (jtjv / norm.view(-1, 1, 1, 1)).detach()
    return [round(float(t), 4) for t in norm.sqrt()]


def plot_lipschitz(data: dict, out: Path, labels: dict[str, str] | None = None) -> None:
    """PnP PSNR − TV against the Jacobian norm of each scored file (filled: ADMM settled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = labels or {}
    fig, axes = plt.subplots(1, len(TASKS), figsize=(5.2 * len(TASKS), 3.8))
    colors = _colors(data)
    for ax, task in zip(axes, TASKS, strict=True):
        tv = data["tv"][task]["psnr"]
        for name, color in colors.items():
            recs = [r for r in data["scores"] if "lipschitz" in r and _series(r) == name]
            for settled in (True, False):
                sel = [r for r in recs if (r[f"{task}_residual"] < 1e-2) == settled]
                if sel:
                    ax.scatter([r["lipschitz"] for r in sel], [r[task] - tv for r in sel],
                               color=color, marker="o", facecolors=None if settled else "none",
                               label=labels.get(name, name) if settled or not any(
                                   r[f"{task}_residual"] < 1e-2 for r in recs) else None)
        ax.axhline(0.0, color="k", lw=1)
        ax.axvline(1.0, color="0.6", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("largest ‖J_f‖₂ over the noisy crops")
        ax.set_ylabel("PnP PSNR − TV (dB)")
        ax.set_title(task.replace("_noise", ", σ = ") + " (hollow: ADMM residual > 1e-2)",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out)


def plot(data: dict, out: Path, phases: list[int], labels: dict[str, str] | None = None) -> None:
    """PSNR − TV against the step, one curve per snapshot folder (``labels``: folder -> label)."""
    labels = labels or {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [*TASKS, "denoise"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.6), sharex=True)
    series: dict[str, list[dict]] = {}  # one curve per snapshot folder
    for r in data["scores"]:
        if r["step"] is not None:
            series.setdefault(_series(r), []).append(r)
    colors = _colors(data)
    for ax, task in zip(axes, tasks, strict=True):
        tv = data["tv"][task]["psnr"]
        for name, recs in sorted(series.items()):
            recs = sorted(recs, key=lambda r: r["step"])
            ax.plot([r["step"] for r in recs], [r[task] - tv for r in recs],
                    marker="s" if recs[0]["family"] == "dncnn" else "o", color=colors[name], ms=4,
                    label=labels.get(name, f"{name} ({recs[0]['family']})"))
        for r in data["scores"]:
            if r["step"] is None:
                stem = Path(r["file"]).stem
                ax.axhline(r[task] - tv, color=colors[stem], ls=":", lw=1.2,
                           label=labels.get(stem, stem))
        ax.axhline(0.0, color="k", lw=1, label="TV (best λ on these crops)")
        ax.axhline(0.5, color="g", lw=1, ls="--", label="target TV + 0.5 dB")
        for b in phases:
            ax.axvline(b, color="0.8", lw=0.8, zorder=0)
        ax.set_title(task.replace("_noise", ", σ = ") + (
            f", σ = {data['sigma_train']}" if task == "denoise" else ""))
        ax.set_xlabel("training step")
        ax.set_ylabel(f"PSNR − TV (dB), {data['setup']['split']} crops")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"PnP-ADMM on {data['setup']['crops']} {data['setup']['split']} crops against "
                 f"training steps" + (" (grey lines: phase ends)" if phases else ""), fontsize=9)
    fig.tight_layout()
    _save(fig, out)


def plot_per_crop(data: dict, out: Path, labels: dict[str, str] | None = None) -> None:
    """Per-crop PSNR − TV of the last snapshot of each folder and of the files without a step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    last: dict[str, dict] = {}
    colors = _colors(data)
    for r in data["scores"]:
        name = _series(r)
        if name not in last or (r["step"] or 0) > (last[name]["step"] or 0):
            last[name] = r
    tasks = [*TASKS, "denoise"]
    crops = [f"{c[0].split('_')[0]} {c[1]},{c[2]}" for c in data["crop_list"]]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.6 * len(tasks), 3.8), sharey=True)
    width = 0.8 / max(len(last), 1)
    for ax, task in zip(axes, tasks, strict=True):
        tv = np.array(data["tv"][task]["per_crop"])
        for i, (name, r) in enumerate(sorted(last.items())):
            step = "" if r["step"] is None else f", step {r['step']}"
            ax.bar(np.arange(len(crops)) + (i - (len(last) - 1) / 2) * width,
                   np.array(r[f"{task}_per_crop"]) - tv, width, color=colors[name],
                   label=labels.get(name, name) + step)
        ax.axhline(0.0, color="k", lw=1)
        ax.set_yscale("symlog", linthresh=1.0)  # diverged runs lose tens of dB
        ax.set_xticks(range(len(crops)), crops, rotation=60, ha="right", fontsize=7)
        ax.set_title(task.replace("_noise", ", σ = "))
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("PSNR − TV (dB), per crop")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="*", type=Path, help="weights files to score")
    p.add_argument("--json", type=Path, required=True, help="results (read first if present)")
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--per-crop-plot", type=Path, default=None,
                   help="bars of PSNR − TV per crop for the last snapshot of each folder")
    p.add_argument("--lipschitz", action="store_true",
                   help="also estimate each file's Jacobian norm at the noisy crops (central "
                        "64×64, 20 power iterations; added to records that lack it)")
    p.add_argument("--lipschitz-plot", type=Path, default=None,
                   help="PnP PSNR − TV against the Jacobian norm")
    p.add_argument("--phases", default="", help="comma-separated LPN phase ends (steps)")
    p.add_argument("--label", action="append", default=[], metavar="FOLDER=LABEL",
                   help="legend label of the curve of a snapshot folder (repeatable)")
    p.add_argument("--sigma-train", type=float, default=0.03,
                   help="σ_train of LPN files without a sidecar")
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--tv-iters", type=int, default=100)
    p.add_argument("--split", choices=("train", "eval"), default="train",
                   help="crops of lpn_deblur.py to score on: TRAIN_CROPS (default; for "
                        "choices) or EVAL_CROPS (final models only: never pick on them)")
    p.add_argument("--crops", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    E = _load("lpn_deblur", ROOT / "examples" / "lpn_deblur.py")
    data = json.loads(args.json.read_text()) if args.json.exists() else {}
    setup = {"split": args.split, "crops": args.crops, "size": args.size, "iters": args.iters,
             "tv_iters": args.tv_iters, "sigma_train": args.sigma_train}
    if data and data.get("setup") != setup:
        p.error(f"{args.json} was made with {data.get('setup')}, not {setup}; use another file")
    crops = (E.TRAIN_CROPS if args.split == "train" else E.EVAL_CROPS)[:args.crops]
    x = E.load_crops(args.split, crops, args.size)
    seed0 = SEED_OFFSET[args.split]
    if not data:
        t0 = time.perf_counter()
        data = {"setup": setup, "sigma_train": args.sigma_train,
                "crop_list": [list(c) for c in crops],
                "tv": tv_reference(E, x, args.sigma_train, args.tv_iters, seed0), "scores": []}
        print("TV (best λ): " + ", ".join(f"{k} {v['psnr']:.2f} dB (λ {v['lam']:.3g})"
                                          for k, v in data["tv"].items())
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
        write_json(args.json, data)
    done = {r["file"] for r in data["scores"]}
    for w in args.weights:
        if str(w) in done:
            continue
        rec = score(E, w, x, args.sigma_train, args.iters, seed0)
        data["scores"].append(rec)
        write_json(args.json, data)
        tv = data["tv"]
        print(f"{w}: " + ", ".join(f"{k} {rec[k]:.2f} ({rec[k] - tv[k]['psnr']:+.2f})"
                                   for k in [*TASKS, "denoise"]) + f" [{rec['seconds']} s]",
              flush=True)
    if args.lipschitz:
        c = args.size // 2
        noisy = _noisy(x, args.sigma_train)[..., max(c - 32, 0):c + 32, max(c - 32, 0):c + 32]
        for r in data["scores"]:
            if "lipschitz" not in r and Path(r["file"]).exists():
                prior = load_denoiser(Path(r["file"]), args.sigma_train)[0]
                r["lipschitz_per_crop"] = jacobian_norm(prior, noisy)
                r["lipschitz"] = max(r["lipschitz_per_crop"])
                write_json(args.json, data)
                print(f"{r['file']}: ‖J‖ {r['lipschitz_per_crop']}", flush=True)
    if any("=" not in v for v in args.label):
        p.error(f"--label takes FOLDER=LABEL, got {args.label}")
    labels = dict(v.split("=", 1) for v in args.label)
    if args.plot is not None:
        plot(data, args.plot, [int(v) for v in args.phases.split(",") if v], labels)
        print(f"wrote {args.plot}")
    if args.lipschitz_plot is not None:
        plot_lipschitz(data, args.lipschitz_plot, labels)
        print(f"wrote {args.lipschitz_plot}")
    if args.per_crop_plot is not None:
        plot_per_crop(data, args.per_crop_plot, labels)
        print(f"wrote {args.per_crop_plot}")
    return data


if __name__ == "__main__":
    main()
    sys.exit(0)
