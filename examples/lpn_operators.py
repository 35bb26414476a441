"""The shipped deblurring LPN on other operators, without retraining: super-resolution and CS.

The prior of ``examples/lpn_deblur.py`` (``inverse/lpn/weights/lpn_deblur_gray.pt``, trained
as a denoiser at σ_train on ``train/`` patches only) is used unchanged as the prior of
PnP-ADMM (:func:`inverse.admm`) for operators it never saw, against total variation and
Laplacian (Tikhonov) regularization solved by the same ADMM:

* ``sr2_noise0.01``: ×2 super-resolution, ``Decimation(2) @ Convolution(psf)`` (the Gaussian
  blur σ_b = 1.5 px of the deblurring example, then keep one pixel in 2×2), noise σ = 0.01;
  the ADMM data step is the closed-form normal solve of blur + decimation
  (``operators.Decimation``, Zhao et al. 2016);
* ``cs_radial25_noise0.01``: compressed sensing from ``operators.FourierSampling`` (orthonormal
  DFT) on radial lines through k = 0 (the fewest lines that sample ≥ 25 % of k-space),
  complex white noise σ = 0.01 per component;
* ``cs_lines25_noise0.01``: the same with 25 % random Cartesian lines (the 9 lowest
  frequencies always kept, the others drawn in ±k pairs);
* ``deblur_noise0.01``: the deblurring task of ``examples/lpn_deblur.py``, for panels of it.

The masks are symmetric under k ↦ −k, so the data term restricted to real images has a real
closed-form prox (``L2DataFidelity(..., real=True)``). The LPN weight is not tuned: it is the
MAP weight λ = ρ = (σ/σ_train)² (``docs/guide/lpn.rst``). The TV and Tikhonov weights are
tuned by a grid search on the 128×128 crops ``TRAIN_CROPS`` of ``train/`` (other noise draws),
never on ``eval/``; the grid and the choice are in the JSON (a warning is printed if the
choice is at the edge of the grid). Evaluation: the eight 128×128 ``eval/`` crops of
``examples/lpn_deblur.py``.

Run ``python examples/lpn_operators.py --json lpn_operators.json --figures docs/_static/lpn``
(about 5 minutes on 2 CPU cores; ``--device cuda`` on a GPU). ``--figures DIR`` writes one PNG
per task: truth | observed | TV | LPN | |TV − truth| | |LPN − truth| for two eval crops.
``--quick`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import os
import runpy
import time
from pathlib import Path

import numpy as np
import torch

from inverse import ADMMOptions, L2DataFidelity, Prior, admm
from operators import Convolution, Decimation, FourierSampling
from sciml_inverse import atomic_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# the data, crops, blur and baselines of the deblurring example (one definition)
DEBLUR = runpy.run_path(str(HERE / "lpn_deblur.py"), run_name="lpn_deblur")
WEIGHTS: Path = DEBLUR["WEIGHTS"]
EVAL_CROPS, TRAIN_CROPS, CROP = DEBLUR["EVAL_CROPS"], DEBLUR["TRAIN_CROPS"], DEBLUR["CROP"]
gaussian_psf, load_crops = DEBLUR["gaussian_psf"], DEBLUR["load_crops"]
tv_prior, tikhonov_prior = DEBLUR["tv_prior"], DEBLUR["tikhonov_prior"]
scores, summarize = DEBLUR["scores"], DEBLUR["summarize"]  # PSNR/SSIM; task means and JSON
checked_tasks, load_prior = DEBLUR["checked_tasks"], DEBLUR["load_prior"]
grid_choice, record_run = DEBLUR["grid_choice"], DEBLUR["record_run"]  # tuning; one run's record

TASKS = {  # name: (kind, noise std, sampling fraction)
    "sr2_noise0.01": ("sr", 0.01, None),
    "cs_radial25_noise0.01": ("radial", 0.01, 0.25),
    "cs_lines25_noise0.01": ("lines", 0.01, 0.25),
    "deblur_noise0.01": ("blur", 0.01, None),
}
DEFAULT_TASKS = ("sr2_noise0.01", "cs_radial25_noise0.01", "cs_lines25_noise0.01")
SR_FACTOR = 2
CENTER_LINES = 4  # |k| <= 4 always sampled by the random-lines mask
TV_GRID = tuple(float(v) for v in np.geomspace(1e-4, 3e-2, 11))
TIKHONOV_GRID = tuple(float(v) for v in np.geomspace(1e-5, 3.0, 18))
RHO_OVER_LAM = 10.0
PANEL_CROPS = (0, 4)  # the eval crops shown in the figures (a Rotterdam and a Colorado crop)


# --------------------------------------------------------------------------- masks
def radial_lines(n: int, lines: int) -> torch.Tensor:
    """Unshifted ``(n, n)`` 0/1 mask of ``lines`` radial lines through k = 0.

    Line ``j`` is at angle ``jπ/lines``; its points ``r·(cos θ, sin θ)``, ``|r| ≤ n/√2`` in
    steps of 1/2, are rounded to the grid and wrapped (mod n). Rounding is odd-symmetric, so
    ``mask[k] = mask[-k]``.
    """
    r = np.arange(-np.ceil(n / np.sqrt(2)), np.ceil(n / np.sqrt(2)) + 0.5, 0.5)
    m = np.zeros((n, n), dtype=bool)
    for j in range(lines):
        t = j * np.pi / lines
        ky = np.round(r * np.sin(t)).astype(int)
        kx = np.round(r * np.cos(t)).astype(int)
        ok = (np.abs(ky) <= n // 2) & (np.abs(kx) <= n // 2)
        m[ky[ok] % n, kx[ok] % n] = True
    return torch.from_numpy(m.astype(np.float32))


def radial_mask(n: int, fraction: float) -> tuple[torch.Tensor, int]:
    """The fewest radial lines (:func:`radial_lines`) sampling ``fraction`` of k-space.

    Returns the mask and the number of lines.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    for lines in range(1, 4 * n):
        m = radial_lines(n, lines)
        if float(m.mean()) >= fraction:
            return m, lines
    raise AssertionError("unreachable: 4n lines cover the grid")


def random_lines_mask(n: int, fraction: float, seed: int) -> torch.Tensor:
    """Unshifted ``(n, n)`` mask of whole k-space rows: ``|k| <= 4`` plus random ±k pairs."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    rows = {k % n for k in range(-CENTER_LINES, CENTER_LINES + 1)}
    pairs = [k for k in range(CENTER_LINES + 1, n // 2 + 1)]
    for k in rng.permutation(pairs):
        if len(rows) >= fraction * n:
            break
        rows |= {int(k) % n, int(-k) % n}
    m = torch.zeros(n, n)
    m[sorted(rows)] = 1.0
    return m


def is_symmetric(mask: torch.Tensor) -> bool:
    """``mask[k] == mask[-k]`` for every frequency (unshifted layout)."""
    flipped = torch.roll(torch.flip(mask, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))
    return bool(torch.equal(mask, flipped))


# --------------------------------------------------------------------------- problems
def make_problem(task: str, x: torch.Tensor, seed: int):
    """``(fidelity, x0, observed image for display)`` for ``x`` of shape ``(n, 1, H, W)``."""
    kind, noise, frac = TASKS[task]
    gen = torch.Generator().manual_seed(seed)
    device, x = x.device, x.cpu()  # simulate on the CPU (same data on every device)
    shape = tuple(x.shape[1:])
    real = False
    if kind in ("blur", "sr"):
        op = Convolution(gaussian_psf(), shape)
        if kind == "sr":
            op = Decimation(SR_FACTOR, shape) @ op
        clean = op(x)
        y = clean + noise * torch.randn(clean.shape, generator=gen).to(x.dtype)
        if kind == "sr":  # start (and show) the pixel-replicated low-resolution image
            x0 = y.repeat_interleave(SR_FACTOR, -2).repeat_interleave(SR_FACTOR, -1)
        else:
            x0 = y.clone()
    else:
        n = shape[-1]
        if shape[-2] != n:
            raise ValueError(f"the CS masks need square images, got {shape}")
        mask = (radial_mask(n, frac)[0] if kind == "radial" else
                random_lines_mask(n, frac, seed=12345))
        op = FourierSampling(mask, shape)
        clean = op(x)
        eps = torch.complex(torch.randn(clean.shape, generator=gen),
                            torch.randn(clean.shape, generator=gen))
        y = clean + noise * mask * eps.to(clean.dtype)
        real = True
        x0 = op.adjoint(y).real  # zero-filled inverse DFT
    op, y = op.to(device), y.to(device)
    return L2DataFidelity(op, y, real=real), x0.to(device), x0.to(device)


def solve(fid: L2DataFidelity, x0, prior: Prior, lam, rho, iters: int):
    opts = ADMMOptions(rho=rho, max_iter=iters, tol=1e-5, track_objective=False)
    return admm(fid, prior, lam=lam, x0=x0, options=opts)


def batched(fid: L2DataFidelity, k: int) -> L2DataFidelity:
    """The same problem repeated ``k`` times along a new leading batch dim (one λ each)."""
    return L2DataFidelity(fid.op, fid.y.expand(k, *fid.y.shape), real=fid.real)


def tune(task: str, x: torch.Tensor, prior_factory, grid, iters: int, seed: int) -> dict:
    """Grid search of λ (ρ = 10λ) on train crops, all grid points in one batch."""
    fid, x0, _ = make_problem(task, x, seed)
    k = len(grid)
    lam = torch.tensor(grid, dtype=x.dtype, device=x.device).reshape(k, 1)
    res = solve(batched(fid, k), x0.expand(k, *x0.shape), prior_factory(), lam,
                lam * RHO_OVER_LAM, iters)
    return grid_choice(grid, res.x, x)


# --------------------------------------------------------------------------- figures
def panel_figure(path: Path, title: str, truth, observed, tv, lpn, p_tv, p_lpn,
                 labels) -> None:
    """Rows = crops; columns = truth | observed | TV | LPN | |TV − truth| | |LPN − truth|."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = truth.shape[0]
    fig, axes = plt.subplots(rows, 6, figsize=(9.0, 1.62 * rows + 0.35), squeeze=False)
    emax = 0.15
    for i in range(rows):
        ims = [truth[i], observed[i], tv[i], lpn[i], (tv[i] - truth[i]).abs(),
               (lpn[i] - truth[i]).abs()]
        names = ["truth", "observed", f"TV {p_tv[i]:.2f} dB", f"LPN {p_lpn[i]:.2f} dB",
                 "|TV − truth|", "|LPN − truth|"]
        for j, (ax, im, nm) in enumerate(zip(axes[i], ims, names, strict=True)):
            err = j >= 4
            ax.imshow(im.squeeze().cpu().numpy(), cmap="magma" if err else "gray",
                      vmin=0.0, vmax=emax if err else 1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(nm, fontsize=7)
        axes[i, 0].set_ylabel(labels[i], fontsize=6)
    fig.suptitle(title + f"  (error colour scale 0–{emax})", fontsize=8)
    fig.tight_layout(pad=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=72, format="png")
        plt.close(fig)
        shrink_png(tmp)


def shrink_png(path: Path, colors: int = 128) -> None:
    """Requantize a PNG in place to a ``colors``-entry palette (a few times smaller)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=colors, dither=Image.Dither.NONE)
    small.save(path, format="PNG", optimize=True)


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--figures", type=Path, default=None,
                   help="write one panel PNG per task into this folder")
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=60, help="ADMM iterations with the LPN")
    p.add_argument("--baseline-iters", type=int, default=100,
                   help="ADMM iterations for TV and Tikhonov (tuning and evaluation)")
    p.add_argument("--crops", type=int, default=len(EVAL_CROPS), help="number of eval crops")
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                   help=f"comma-separated subset of {', '.join(TASKS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 crops of 64x64, few iterations, 3-point grids")
    args = p.parse_args(argv)
    tasks = checked_tasks(p, args, TASKS)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    size, n_eval, n_train = CROP, args.crops, len(TRAIN_CROPS)
    tv_grid, tik_grid = TV_GRID, TIKHONOV_GRID
    if args.quick:
        size, n_eval, n_train = 64, 2, 2
        args.iters, args.baseline_iters = min(args.iters, 4), min(args.baseline_iters, 10)
        tv_grid, tik_grid = TV_GRID[::5], TIKHONOV_GRID[::7]

    prior_lpn, meta, model = load_prior(args.weights, device)
    model["train_command"] = meta.get("command")
    print(f"LPN: {model['num_parameters']} parameters, σ_train = {meta['sigma_train']}")

    x_eval = load_crops("eval", EVAL_CROPS[:n_eval], size).to(device)
    x_train = load_crops("train", TRAIN_CROPS[:n_train], size).to(device)
    out: dict = {"model": model, "tasks": {}, "eval_crops": [list(c) for c in EVAL_CROPS[:n_eval]],
                 "train_crops": [list(c) for c in TRAIN_CROPS[:n_train]], "crop_size": size,
                 "settings": {"lpn_iters": args.iters, "baseline_iters": args.baseline_iters,
                              "sr_factor": SR_FACTOR, "rho_over_lam_tv_tikhonov": RHO_OVER_LAM,
                              "lpn_rho": "lam = (sigma/sigma_train)^2", "seed": args.seed,
                              "quick": bool(args.quick)}}
    for ti, name in enumerate(tasks):
        kind, noise, frac = TASKS[name]
        print(f"[{name}]")
        t0 = time.perf_counter()
        tv_t = tune(name, x_train, tv_prior, tv_grid, args.baseline_iters, seed=1000 + ti)
        tik_t = tune(name, x_train, tikhonov_prior, tik_grid, args.baseline_iters,
                     seed=1000 + ti)
        print(f"  tuned on train crops: TV λ = {tv_t['lam']:.3g}, Tikhonov λ = "
              f"{tik_t['lam']:.3g} ({time.perf_counter() - t0:.1f} s)")
        fid, x0, observed = make_problem(name, x_eval, seed=args.seed + ti)
        rec: dict = {"noise": noise, "kind": kind}
        if kind in ("radial", "lines"):
            mask = fid.op.mask
            rec["sampling_fraction"] = float(mask.mean())
            rec["mask_symmetric"] = is_symmetric(mask)
            if kind == "radial":
                rec["radial_lines"] = radial_mask(size, frac)[1]
        p0, s0 = scores(x0, x_eval)
        rec.update(psnr_start=float(np.mean(p0)), ssim_start=float(np.mean(s0)))
        runs = {"lpn": (prior_lpn, prior_lpn.admm_weight(noise), None, args.iters),
                "tv": (tv_prior(), tv_t["lam"], RHO_OVER_LAM * tv_t["lam"], args.baseline_iters),
                "tikhonov": (tikhonov_prior(), tik_t["lam"], RHO_OVER_LAM * tik_t["lam"],
                             args.baseline_iters)}
        xs = {}
        for key, (prior, lam, rho, iters) in runs.items():
            t1 = time.perf_counter()
            res = solve(fid, x0, prior, lam, rho, iters)
            xs[key] = res.x.clamp(0, 1)
            record_run(rec, key, res, x_eval, lam, t1, final_residual=True)
        rec["lpn_minus_tv_db"] = rec["psnr_lpn"] - rec["psnr_tv"]
        rec["tuning"] = {"tv": tv_t, "tikhonov": tik_t}
        out["tasks"][name] = rec
        if args.figures is not None:
            idx = [i for i in PANEL_CROPS if i < n_eval] or [0]
            fig_path = args.figures / f"lpn_{name}.png"
            panel_figure(fig_path, f"{name} (LPN at λ = ρ = (σ/σ_train)², TV/Tikhonov λ tuned "
                         f"on train crops)", x_eval[idx], observed[idx].clamp(0, 1),
                         xs["tv"][idx], xs["lpn"][idx],
                         [rec["psnr_tv_per_crop"][i] for i in idx],
                         [rec["psnr_lpn_per_crop"][i] for i in idx],
                         [EVAL_CROPS[i][0] for i in idx])
            # relative to the JSON's folder (or the file name alone), never a machine's path
            base = args.json.parent if args.json is not None else args.figures
            rec["figure"] = os.path.relpath(fig_path, base)
            print(f"  wrote {fig_path}")
    return summarize(out, args.json, metrics=("psnr",))


if __name__ == "__main__":
    main()
