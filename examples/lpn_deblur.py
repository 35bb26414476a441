"""PnP-ADMM deblurring and inpainting of satellite crops with a learned proximal network.

Reproduces the image experiment of Fang, Buchanan & Sulam (ICLR 2024) on the project's
satellite data: the shipped LPN (``inverse/lpn/weights/lpn_deblur_gray.pt``, trained by
``scripts/train_lpn_deblur.py`` on ``train/`` only; its JSON sidecar records σ_train, the model
size, the training time and the command) is the prior of PnP-ADMM (:func:`inverse.admm`), and
is compared with total-variation and Laplacian (Tikhonov) regularization solved by the same
ADMM.

Tasks, on 128×128 gray crops of ``shared/data/satellite/eval/`` (4 of the 0.5 m Rotterdam
panchromatic image, 2 of the 0.15 m Colorado orthophoto, 2 of NAIP 2018/2020; positions fixed
in :data:`EVAL_CROPS`):

* ``deblur_noise0.01``, ``deblur_noise0.02``: circular Gaussian blur σ_b = 1.5 px (13×13 PSF)
  plus white Gaussian noise σ = 0.01 / 0.02;
* ``inpaint50_noise0.01``: 50% of the pixels kept at random (per crop), noise σ = 0.01.

The LPN weight is not tuned: it is the MAP weight λ = (σ/σ_train)² of
½‖Ax − y‖² + λ R_θ(x), and the ADMM penalty is ρ = λ (the LPN is a prox at weight 1 only;
see ``docs/guide/lpn.rst``). The TV and Tikhonov weights are tuned by a grid search on 8 crops
of ``train/`` images (same degradations, other noise) — never on ``eval/``; the chosen values
and the grid are recorded in the JSON. BM3D-PnP runs only if deepinv's BM3D wrapper can be built
(it needs the ``bm3d`` package, or ``ptwt`` for its torch mode).

Run ``python examples/lpn_deblur.py --json lpn_deblur.json`` (a few minutes on 2 CPU cores,
``--device cuda`` on a GPU); ``--quick`` is a seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from inverse import (
    ADMMOptions,
    L2DataFidelity,
    LPNPrior,
    Prior,
    TikhonovPrior,
    TVPrior,
    admm,
)
from inverse.lpn import load_lpn
from inverse.metrics import psnr, ssim
from operators import Convolution, Mask
from sciml_inverse import write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "satellite"
WEIGHTS = ROOT / "inverse" / "lpn" / "weights" / "lpn_deblur_gray.pt"
CROP = 128

#: Evaluation crops: (file in eval/, row, column) of the top-left corner, after the no-data rows
#: of the pan image are cut off (a fixed grid chosen before any result was seen).
EVAL_CROPS = (
    ("rotterdam3_pan_0p5m", 40, 60), ("rotterdam3_pan_0p5m", 40, 400),
    ("rotterdam3_pan_0p5m", 200, 60), ("rotterdam3_pan_0p5m", 200, 400),
    ("colorado_rgb_0p15m", 52, 64), ("colorado_rgb_0p15m", 52, 191),
    ("naip_nd_5m_20180716", 300, 400), ("naip_nd_5m_20200831", 100, 600),
)
#: Tuning crops for the TV and Tikhonov weights (train/ only).
TRAIN_CROPS = (
    ("atlanta_pan_0p5m", 100, 100), ("atlanta_pan_0p5m", 500, 600),
    ("atlanta_pan_0p5m", 700, 100), ("rotterdam1_pan_0p5m", 200, 200),
    ("rotterdam1_pan_0p5m", 400, 400), ("rotterdam2_pan_0p5m", 100, 300),
    ("naip_nd_5m_20090818", 300, 400), ("naip_nd_5m_20160816", 100, 600),
)
TASKS = {  # name: (kind, noise std)
    "deblur_noise0.01": ("blur", 0.01),
    "deblur_noise0.02": ("blur", 0.02),
    "inpaint50_noise0.01": ("inpaint", 0.01),
}
BLUR_SIGMA, BLUR_SIZE, KEEP = 1.5, 13, 0.5
TUNE_CROP = 64  # the tuning crops are 64x64 (the top-left corner of each TRAIN_CROPS entry)
TV_GRID = tuple(float(v) for v in np.geomspace(1e-4, 1e-2, 9))
TIKHONOV_GRID = tuple(float(v) for v in np.geomspace(1e-4, 1.0, 17))
RHO_OVER_LAM = 10.0  # ADMM penalty of the TV and Tikhonov runs (their weight can scale)


def tv_prior() -> TVPrior:
    """TV prior for ADMM: 10 warm-started dual iterations per prox."""
    return TVPrior(max_iter=10, tol=0.0)


def tikhonov_prior() -> TikhonovPrior:
    """½‖Dx‖² with periodic differences: closed-form (FFT) prox."""
    return TikhonovPrior(boundary="circular")


# --------------------------------------------------------------------------- data
# Same reading and scaling as scripts/train_lpn_deblur.py (tests check that they agree).
def rgb_to_gray(a: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of the first three channels."""
    a = a.astype(np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def normalize_pan(a: np.ndarray) -> np.ndarray:
    """Cut off all-zero (no-data) leading rows, then scale the 0.5/99.5 percentiles to [0, 1]."""
    a = a.astype(np.float64)
    bad_rows = np.nonzero((a == 0).any(axis=1))[0]
    if bad_rows.size:
        a = a[bad_rows.max() + 1:]
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def load_gray(path: Path) -> np.ndarray:
    """A shared-data GeoTIFF as a float64 gray image in [0, 1] (pan: percentile scaling)."""
    import tifffile

    a = tifffile.imread(str(path))
    if a.ndim == 2:
        return normalize_pan(a)
    if a.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit RGB(A) image, got {a.dtype}")
    return rgb_to_gray(a) / 255.0


def load_crops(folder: str, crops, size: int = CROP) -> torch.Tensor:
    """``(n, 1, size, size)`` float32 crops."""
    cache: dict[str, np.ndarray] = {}
    out = []
    for name, r, c in crops:
        if name not in cache:
            cache[name] = load_gray(DATA / folder / f"{name}.tif")
        img = cache[name]
        if r + size > img.shape[0] or c + size > img.shape[1]:
            raise ValueError(f"crop ({r}, {c}) of size {size} is outside {name} {img.shape}")
        out.append(img[r:r + size, c:c + size])
    return torch.from_numpy(np.stack(out)[:, None].astype(np.float32))


# --------------------------------------------------------------------------- problems
def gaussian_psf(sigma: float = BLUR_SIGMA, size: int = BLUR_SIZE) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))
    return g / g.sum()


def make_problem(kind: str, noise: float, x: torch.Tensor, seed: int):
    """Operator, data and the common starting point for ``x`` of shape ``(n, 1, H, W)``."""
    gen = torch.Generator().manual_seed(seed)
    device, x = x.device, x.cpu()  # simulate on the CPU (same data on every device)
    shape = tuple(x.shape[1:])
    if kind == "blur":
        op = Convolution(gaussian_psf(), shape)
    else:
        keep = (torch.rand(x.shape, generator=gen) < KEEP).to(x.dtype)
        op = Mask(keep, shape)  # one random mask per crop
    y = op(x) + noise * torch.randn(x.shape, generator=gen).to(x.dtype)
    if kind == "blur":
        x0 = y.clone()
    else:  # normalized convolution: Gaussian-weighted mean of the observed neighbours
        g = Convolution(gaussian_psf(2.0, 13), shape)
        x0 = g(op.adjoint(y)) / g(op.mask).clamp_min(1e-3)
    return op.to(device), y.to(device), x0.to(device)


def solve(op, y, x0, prior: Prior, lam, rho, iters: int):
    """PnP-ADMM with the given prior; ``lam``/``rho`` floats or per-sample tensors."""
    f = L2DataFidelity(op, y)
    opts = ADMMOptions(rho=rho, max_iter=iters, tol=1e-5, track_objective=False)
    return admm(f, prior, lam=lam, x0=x0, options=opts)


def scores(x: torch.Tensor, ref: torch.Tensor) -> tuple[list[float], list[float]]:
    x = x.clamp(0, 1)
    return psnr(x, ref).tolist(), ssim(x, ref).tolist()


# --------------------------------------------------------------------------- tuning (train/)
def grid_choice(grid, xk: torch.Tensor, x: torch.Tensor) -> dict:
    """The λ of ``grid`` whose reconstructions ``xk[i]`` have the best mean PSNR against ``x``.

    ``xk`` has shape ``(len(grid), *x.shape)``. Warns (prints) if the best λ is at an end of the
    grid. Returns ``{"lam", "grid", "train_psnr"}`` (the mean PSNR of every grid point).
    Shared with ``examples/lpn_operators.py``.
    """
    k = len(grid)
    p = psnr(xk.clamp(0, 1), x.expand(k, *x.shape)).mean(dim=1)
    best = int(torch.argmax(p))
    if best in (0, k - 1):
        print(f"  warning: the best λ is at the edge of the grid ({grid[best]:.3g})")
    return {"lam": grid[best], "grid": list(grid), "train_psnr": [round(float(v), 3) for v in p]}


def tune(kind: str, noise: float, x: torch.Tensor, prior_factory, grid, rho_factor: float,
         iters: int, seed: int) -> dict:
    """Grid search of λ on train crops, all grid points in one batch (per-sample λ)."""
    op, y, x0 = make_problem(kind, noise, x, seed)
    k = len(grid)
    lam = torch.tensor(grid, dtype=x.dtype, device=x.device).reshape(k, 1)
    yk, x0k = y.expand(k, *y.shape), x0.expand(k, *x0.shape)
    res = solve(op, yk, x0k, prior_factory(), lam, None if rho_factor is None else
                lam * rho_factor, iters)
    return grid_choice(grid, res.x, x)


def check_lpn_weight(kind: str, noise: float, x: torch.Tensor, prior: LPNPrior, iters: int,
                     seed: int) -> dict[str, float]:
    """Mean train-crop PSNR of the LPN at 0.5, 1 and 2 times the MAP weight (ρ = λ each)."""
    op, y, x0 = make_problem(kind, noise, x, seed)
    lam = prior.admm_weight(noise)
    return {f"x{m:g}": round(float(psnr(solve(op, y, x0, prior, m * lam, None, iters).x
                                        .clamp(0, 1), x).mean()), 3) for m in (0.5, 1.0, 2.0)}


# --------------------------------------------------------------------------- main
def bm3d_status() -> str | None:
    """``None`` if deepinv's BM3D can be built, else why not."""
    try:
        import deepinv

        deepinv.models.BM3D()
    except ImportError as err:
        return f"unavailable: {err}"
    except Exception as err:  # noqa: BLE001 - any failure to build it means "not available"
        return f"unavailable: {type(err).__name__}: {err}"
    return None


def record_run(rec: dict, key: str, res, x: torch.Tensor, lam, t1: float,
               final_residual: bool = False) -> None:
    """Put the scores and settings of the ADMM run ``res`` (method ``key``) into ``rec``, print.

    PSNR/SSIM of ``res.x`` against ``x`` (means and per crop), λ, ρ, the iterations, optionally
    the final residual, and the seconds since ``t1`` (a ``time.perf_counter()`` value). Shared
    with ``examples/lpn_operators.py``.
    """
    ps, ss = scores(res.x, x)
    entry = {f"psnr_{key}": float(np.mean(ps)), f"ssim_{key}": float(np.mean(ss)),
             f"psnr_{key}_per_crop": [round(v, 3) for v in ps],
             f"ssim_{key}_per_crop": [round(v, 4) for v in ss],
             f"lam_{key}": lam, f"rho_{key}": res.weights["rho"], f"iters_{key}": res.n_iter}
    if final_residual:
        entry[f"final_residual_{key}"] = float(res.history.residual[-1].max())
    entry[f"seconds_{key}"] = round(time.perf_counter() - t1, 2)
    rec.update(entry)
    print(f"  {key:9s} PSNR {np.mean(ps):6.2f} dB  SSIM {np.mean(ss):.4f}  "
          f"(λ = {lam:.3g}, {res.n_iter} it., {time.perf_counter() - t1:.1f} s)")


def checked_tasks(p: argparse.ArgumentParser, args: argparse.Namespace, known) -> list[str]:
    """The names in ``--tasks`` (all in ``known``); exits through ``p.error`` on bad arguments.

    Also checks ``--iters``, ``--baseline-iters`` (>= 1) and ``--crops`` (1 to the number of
    eval crops). Shared with ``examples/lpn_operators.py``.
    """
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in known]
    if unknown or not tasks:
        p.error(f"--tasks must be a comma-separated subset of {sorted(known)}, got {unknown}")
    if args.iters < 1 or args.baseline_iters < 1 or not 1 <= args.crops <= len(EVAL_CROPS):
        p.error(f"--iters and --baseline-iters must be >= 1 and --crops in 1..{len(EVAL_CROPS)}")
    return tasks


def load_prior(weights: Path, device: torch.device) -> tuple[LPNPrior, dict, dict]:
    """The LPN prior of ``weights`` on ``device``, the weights' JSON sidecar and a model record.

    The sidecar must give ``sigma_train`` (else ``SystemExit``). The record has the weights'
    path (relative to the repository if inside it), the number of parameters and σ_train.
    Shared with ``examples/lpn_operators.py``.
    """
    lpn = load_lpn(weights).to(device)
    side = weights.with_suffix(".json")
    meta = json.loads(side.read_text()) if side.exists() else {}
    if "sigma_train" not in meta:
        raise SystemExit(f"{side} (the weights' sidecar) must give sigma_train")
    model = {"weights": str(weights.relative_to(ROOT)) if weights.is_relative_to(ROOT)
             else str(weights), "num_parameters": sum(q.numel() for q in lpn.parameters()),
             "sigma_train": meta["sigma_train"]}
    return LPNPrior(lpn, sigma_train=meta["sigma_train"]), meta, model


def summarize(out: dict, json_path: Path | None,
              metrics: tuple[str, ...] = ("psnr", "ssim")) -> dict:
    """Add the means over ``out["tasks"]`` and LPN − TV, print them, write ``json_path``.

    For each method (LPN, TV, Tikhonov) and each of ``metrics``, ``out["<metric>_<method>_mean"]``
    is the mean of the tasks' ``"<metric>_<method>"``; ``out["lpn_minus_tv_db"]`` is the
    difference of the PSNR means. ``json_path`` (if not ``None``) is written atomically. Shared
    with ``examples/lpn_operators.py``; returns ``out``.
    """
    for key in ("lpn", "tv", "tikhonov"):
        for metric in metrics:
            out[f"{metric}_{key}_mean"] = float(np.mean([r[f"{metric}_{key}"] for r in
                                                         out["tasks"].values()]))
    out["lpn_minus_tv_db"] = out["psnr_lpn_mean"] - out["psnr_tv_mean"]
    print(f"mean over tasks: LPN {out['psnr_lpn_mean']:.2f} dB, TV {out['psnr_tv_mean']:.2f} dB, "
          f"Tikhonov {out['psnr_tikhonov_mean']:.2f} dB (LPN − TV = "
          f"{out['lpn_minus_tv_db']:+.2f} dB)")
    if json_path is not None:
        write_json(json_path, out)
        print(f"wrote {json_path}")
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=WEIGHTS)
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--iters", type=int, default=40, help="ADMM iterations with the LPN")
    p.add_argument("--baseline-iters", type=int, default=100,
                   help="ADMM iterations for TV and Tikhonov (tuning and evaluation)")
    p.add_argument("--crops", type=int, default=len(EVAL_CROPS), help="number of eval crops")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 crops of 64x64, few iterations, 3-point grids")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--check-lpn-weight", action="store_true",
                   help="also run the LPN at 0.5x and 2x the MAP weight on the train crops "
                        "(a check of lam = (sigma/sigma_train)^2; nothing is tuned with it)")
    args = p.parse_args(argv)
    tasks = checked_tasks(p, args, TASKS)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    size, n_eval, tv_grid, tik_grid = CROP, args.crops, TV_GRID, TIKHONOV_GRID
    n_train, tune_size = len(TRAIN_CROPS), TUNE_CROP
    if args.quick:
        size, n_eval, n_train, tune_size = 64, 2, 2, 32
        args.iters, args.baseline_iters = min(args.iters, 4), min(args.baseline_iters, 10)
        tv_grid, tik_grid = TV_GRID[::5], TIKHONOV_GRID[::6]

    # ---- model and its record
    prior_lpn, meta, model = load_prior(args.weights, device)
    model.update(train_seconds=meta.get("train_seconds"), train_steps=meta.get("steps"),
                 train_device=meta.get("device"), train_command=meta.get("command"),
                 receptive_field=meta.get("receptive_field"))
    print(f"LPN: {model['num_parameters']} parameters, σ_train = {meta['sigma_train']}, trained "
          f"{meta.get('steps')} steps in {meta.get('train_seconds')} s on {meta.get('device')}")

    x_eval = load_crops("eval", EVAL_CROPS[:n_eval], size).to(device)
    x_train = load_crops("train", TRAIN_CROPS[:n_train], tune_size).to(device)
    bm3d = bm3d_status()
    print(f"BM3D-PnP: {bm3d or 'available'}")

    out: dict = {"model": model, "tasks": {}, "eval_crops": [list(c) for c in
                                                            EVAL_CROPS[:n_eval]],
                 "train_crops": [list(c) for c in TRAIN_CROPS[:n_train]], "crop_size": size,
                 "bm3d": bm3d or "available but not run", "settings": {
                     "lpn_iters": args.iters, "baseline_iters": args.baseline_iters,
                     "blur_sigma": BLUR_SIGMA, "psf_size": BLUR_SIZE, "keep": KEEP,
                     "rho_over_lam_tv_tikhonov": RHO_OVER_LAM, "tune_crop_size": tune_size,
                     "lpn_rho": "lam = (sigma/sigma_train)^2", "seed": args.seed,
                     "quick": bool(args.quick)}}
    for ti, name in enumerate(tasks):
        kind, noise = TASKS[name]
        print(f"[{name}]")
        t0 = time.perf_counter()
        tv_t = tune(kind, noise, x_train, tv_prior, tv_grid, RHO_OVER_LAM,
                    args.baseline_iters, seed=1000 + ti)
        tik_t = tune(kind, noise, x_train, tikhonov_prior, tik_grid, RHO_OVER_LAM,
                     args.baseline_iters, seed=1000 + ti)
        print(f"  tuned on train crops: TV λ = {tv_t['lam']:.3g}, Tikhonov λ = "
              f"{tik_t['lam']:.3g} ({time.perf_counter() - t0:.1f} s)")

        op, y, x0 = make_problem(kind, noise, x_eval, seed=args.seed + ti)
        rec: dict = {"noise": noise, "kind": kind}
        p0, s0 = scores(x0, x_eval)
        rec.update(psnr_degraded=float(np.mean(p0)), ssim_degraded=float(np.mean(s0)))
        lam_lpn = prior_lpn.admm_weight(noise)
        runs = {"lpn": (prior_lpn, lam_lpn, None, args.iters),
                "tv": (tv_prior(), tv_t["lam"], RHO_OVER_LAM * tv_t["lam"],
                       args.baseline_iters),
                "tikhonov": (tikhonov_prior(), tik_t["lam"], RHO_OVER_LAM * tik_t["lam"],
                             args.baseline_iters)}
        for key, (prior, lam, rho, iters) in runs.items():
            t1 = time.perf_counter()
            res = solve(op, y, x0, prior, lam, rho, iters)
            record_run(rec, key, res, x_eval, lam, t1)
        rec["psnr_bm3d"] = None
        rec["tuning"] = {"tv": tv_t, "tikhonov": tik_t}
        if args.check_lpn_weight:
            rec["lpn_weight_check_train"] = check_lpn_weight(
                kind, noise, load_crops("train", TRAIN_CROPS[:n_train], size).to(device),
                prior_lpn, args.iters, seed=2000 + ti)
            print(f"  LPN weight check on train crops: {rec['lpn_weight_check_train']}")
        out["tasks"][name] = rec
    return summarize(out, args.json)


if __name__ == "__main__":
    main()
