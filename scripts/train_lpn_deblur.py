"""Train the image LPN shipped for ``examples/lpn_deblur.py`` (grayscale, any image size).

Data (``train/`` only, never ``eval/``): random patches of

* the 0.5 m panchromatic images ``atlanta_pan_0p5m``, ``rotterdam1_pan_0p5m`` and
  ``rotterdam2_pan_0p5m`` (the no-data band of rotterdam2 cut off), each scaled to [0, 1] by
  its own 0.5 / 99.5 percentiles of the valid pixels (:func:`normalize_pan`);
* the seven NAIP training dates (5 m, RGB converted to gray by ITU-R 601 luma, / 255);
* natural images shipped with scikit-image and scikit-learn (gray, / 255).

Patches get random flips and 90-degree rotations, and are drawn with probabilities
``--mix`` (pan, NAIP, natural), proportional to the area within a group. Training is
:func:`inverse.lpn.train_lpn`: an L1 warm-up, then proximal matching in four stages with
γ_rms = 8, 4, 2, 1 × ``--gamma-min-rms`` (default: σ_train), at noise σ_train.

Two steps, so that the GPU machine needs nothing but the repository and one small file::

    # here (reads ../shared/data, skimage, sklearn): write the images into one .npz (~15 MB)
    python scripts/train_lpn_deblur.py --data-cache lpn_data.npz --cache-only
    # on the GPU machine: train from that file, fill the time budget (default 240 s of steps)
    python scripts/train_lpn_deblur.py --data-cache lpn_data.npz --device cuda \\
        --out inverse/lpn/weights/lpn_deblur_gray.pt

The output is the weights file (``inverse.lpn.save_lpn``) plus a JSON sidecar (same name,
``.json``) with σ_train, model size, steps, training time, steps/s, the device, the data and
the exact command. ``--steps auto`` (default) on CUDA measures steps/s on a short benchmark
and sets the number of steps to fill ``--time-budget`` seconds; on the CPU it means
``--cpu-steps``. ``--quick`` is a seconds-long smoke run (tiny model, few steps).

``--snapshot-every N`` (with ``--checkpoint``) also keeps the weights every N steps, for
``scripts/score_lpn_snapshots.py`` (PnP PSNR against the steps); the chunks resume exactly, so
the run is the same as without snapshots. ``--warmup-loss l2 --warmup-frac 1`` trains the LPN
with the ℓ2 loss only (an MMSE denoiser that is still exactly a prox), the like-for-like
comparison with the unconstrained CNN of ``scripts/train_denoiser_baseline.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inverse.lpn import (
    LPN,
    ImageLPNConfig,
    LPNTrainOptions,
    TrainPhase,
    library_version,
    save_lpn,
    train_lpn,
)
from sciml_inverse import atomic_path, write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "satellite"
PAN_TRAIN = ("atlanta_pan_0p5m", "rotterdam1_pan_0p5m", "rotterdam2_pan_0p5m")
NAIP_TRAIN = tuple(f"naip_nd_5m_{d}" for d in ("20090818", "20100629", "20120731", "20140720",
                                                "20150926", "20160816", "20170827"))
SKIMAGE_NAMES = ("camera", "astronaut", "grass", "gravel", "brick", "coins", "moon", "text",
                 "chelsea", "coffee", "rocket", "clock", "page")
SKLEARN_NAMES = ("china.jpg", "flower.jpg")
GROUPS = ("pan", "naip", "natural")
CACHE_FORMAT = "lpn-deblur-train-images/1"


# --------------------------------------------------------------------------- image loading
# examples/lpn_deblur.py has the same three functions (it is a standalone example); a test
# checks that both give the same images.
def rgb_to_gray(a: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of the first three channels (as ``examples/demo_deblur.py``)."""
    a = a.astype(np.float64)
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def normalize_pan(a: np.ndarray) -> np.ndarray:
    """Cut off all-zero (no-data) leading rows, then scale the 0.5/99.5 percentiles to [0, 1]."""
    a = a.astype(np.float64)
    bad_rows = np.nonzero((a == 0).any(axis=1))[0]
    if bad_rows.size:  # a no-data band at the top (rotterdam2/3): keep the rows below it
        a = a[bad_rows.max() + 1:]
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def load_gray(path: Path) -> np.ndarray:
    """A shared-data GeoTIFF as a float64 gray image in [0, 1] (pan: percentile scaling)."""
    import tifffile

    a = tifffile.imread(str(path))
    if a.ndim == 2:  # 16-bit panchromatic
        return normalize_pan(a)
    if a.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit RGB(A) image, got {a.dtype}")
    return rgb_to_gray(a) / 255.0


# --------------------------------------------------------------------------- the cache
def collect_images(data_dir: Path = DATA) -> dict[str, np.ndarray]:
    """All training images, gray in [0, 1], keyed ``group/name``."""
    if not (data_dir / "train").is_dir():
        raise FileNotFoundError(f"no shared data at {data_dir}/train; build the cache where the "
                                f"shared data is and pass --data-cache")
    out: dict[str, np.ndarray] = {}
    for n in PAN_TRAIN:
        out[f"pan/{n}"] = load_gray(data_dir / "train" / f"{n}.tif")
    for n in NAIP_TRAIN:
        out[f"naip/{n}"] = load_gray(data_dir / "train" / f"{n}.tif")
    import skimage.data
    from sklearn.datasets import load_sample_image

    for n in SKIMAGE_NAMES:
        a = getattr(skimage.data, n)()
        out[f"natural/skimage_{n}"] = (rgb_to_gray(a) if a.ndim == 3 else a.astype(float)) / 255
    for n in SKLEARN_NAMES:
        out[f"natural/sklearn_{n.split('.')[0]}"] = rgb_to_gray(load_sample_image(n)) / 255
    return out


def write_cache(path: Path, images: dict[str, np.ndarray]) -> None:
    """Images as uint16 (value · 65535) in one compressed .npz."""
    arrays = {k.replace("/", "__"): np.round(v * 65535).astype(np.uint16)
              for k, v in images.items()}
    meta = {"format": CACHE_FORMAT, "keys": list(images), "scale": 65535}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, __meta__=np.array(json.dumps(meta)), **arrays)


def read_cache(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        meta = json.loads(str(z["__meta__"]))
        if meta.get("format") != CACHE_FORMAT:
            raise ValueError(f"{path} is not a data cache of this script ({meta.get('format')})")
        return {k: z[k.replace("/", "__")].astype(np.float32) / meta["scale"]
                for k in meta["keys"]}


# --------------------------------------------------------------------------- patches
def make_patch_bank(images: dict[str, np.ndarray], n: int, size: int, mix: tuple[float, ...],
                    seed: int) -> tuple[torch.Tensor, dict[str, int]]:
    """``n`` random ``size``² patches with random flips / 90° rotations, ``(n, 1, size, size)``.

    A patch comes from group g with probability ``mix[g]`` and, within the group, from an
    image with probability proportional to its area.
    """
    rng = np.random.default_rng(seed)
    groups = {g: [k for k in images if k.startswith(g + "/") and min(images[k].shape) >= size]
              for g in GROUPS}
    w = np.array([m if groups[g] else 0.0 for g, m in zip(GROUPS, mix, strict=True)])
    if w.sum() <= 0:
        raise ValueError(f"no image of at least {size}x{size} pixels in the groups with weight")
    w = w / w.sum()
    out = np.empty((n, 1, size, size), dtype=np.float32)
    counts: dict[str, int] = dict.fromkeys(GROUPS, 0)
    gi = rng.choice(len(GROUPS), size=n, p=w)
    for i in range(n):
        g = GROUPS[gi[i]]
        keys = groups[g]
        areas = np.array([images[k].size for k in keys], dtype=float)
        img = images[keys[rng.choice(len(keys), p=areas / areas.sum())]]
        r = rng.integers(0, img.shape[0] - size + 1)
        c = rng.integers(0, img.shape[1] - size + 1)
        p = img[r:r + size, c:c + size]
        p = np.rot90(p, k=int(rng.integers(4)))
        if rng.integers(2):
            p = p[:, ::-1]
        out[i, 0] = p
        counts[g] += 1
    return torch.from_numpy(out), counts


# --------------------------------------------------------------------------- training
def identity_init_(model: LPN, lo: float = -0.3, hi: float = 1.3) -> None:
    """Initialise an image LPN so that its prox starts close to the identity on [lo, hi].

    The reference initialisation (z-path weights exp(N(-10, 0.1))) starts from an almost linear
    potential, i.e. a prox far from any denoiser, and needs tens of thousands of steps. Here the
    potential starts as ψ(x) ≈ Σ_pixels ½ (x - c)²: the first layer's ``hidden`` channels are
    Softplus ramps at thresholds spread over [lo, hi] (delta kernels), the deeper layers pass
    them through (identity kernels, zero x-path), and the output sums them with equal
    non-negative weights (∫ ramp = ½ x²). The constant offset left by the Softplus smoothing
    and the α‖x‖² term are corrected on the linear x-path. The potential stays input-convex
    (all z-path weights ≥ 0); only the starting point of training changes.
    """
    icnn, cfg = model.icnn, model.config
    if not isinstance(cfg, ImageLPNConfig):
        raise TypeError("identity_init_ needs an image LPN")
    h, c = cfg.hidden, cfg.kernel_size // 2
    t = torch.linspace(lo, hi, h)
    dt = (hi - lo) / max(h - 1, 1)
    s = 1.0 - 2.0 * cfg.alpha  # the α‖x‖² term supplies the rest of the slope
    with torch.no_grad():
        icnn.first.weight.zero_()
        icnn.first.weight[:, :, c, c] = 1.0 / cfg.in_channels
        icnn.first.bias.copy_(-t)
        for wz, wx in zip(icnn.wz, icnn.wx, strict=True):
            wz.weight.zero_()
            wz.weight[torch.arange(h), torch.arange(h), c, c] = 1.0
            wx.weight.zero_()
            wx.bias.zero_()
        icnn.out_z.weight.fill_(s * dt)
        icnn.out_x.weight.zero_()
        icnn.out_x.bias.zero_()
        ref = next(model.parameters())
        probe = torch.full((1, cfg.in_channels, 16, 16), 0.5, dtype=ref.dtype, device=ref.device)
        offset = (model(probe) - probe)[..., 8, 8].mean()
        icnn.out_x.weight.sub_(offset)  # a linear term of ψ shifts f by a constant


def phases(num_steps: int, warmup_frac: float, gamma_min_rms: float,
           lr_l1: float | tuple[float, ...], lr_pm: float,
           num_stages: int = 4, normalized: bool = False,
           warmup_loss: str = "l1") -> tuple[TrainPhase, ...]:
    """L1 warm-up for ``warmup_frac`` of the steps, then ``num_stages`` PM stages (γ halving).

    ``lr_l1`` may be several rates: the warm-up is then split into equal phases run at them in
    order (e.g. a fast start at 1e-2, then 1e-3). ``normalized``: the γ-normalized
    proximal-matching loss (a gradient scale that does not jump when γ halves).
    ``warmup_loss="l2"`` makes the warm-up an ℓ2 (MMSE) phase; with ``warmup_frac=1`` the whole
    run is the warm-up (no proximal matching).
    """
    rates = (lr_l1,) if isinstance(lr_l1, float) else tuple(lr_l1)
    n_l1 = int(round(num_steps * warmup_frac))
    n_pm = num_steps - n_l1
    per = n_pm // num_stages
    out = []
    for i, lr in enumerate(rates):
        n = n_l1 // len(rates) if i < len(rates) - 1 else n_l1 - (n_l1 // len(rates)) * i
        if n > 0:
            out.append(TrainPhase(warmup_loss, n, lr))
    for s in range(num_stages):
        n = per if s < num_stages - 1 else n_pm - per * (num_stages - 1)
        if n > 0:
            out.append(TrainPhase("pm", n, lr_pm, normalized=normalized,
                                  gamma_rms=gamma_min_rms * 2 ** (num_stages - 1 - s)))
    return tuple(out)


def measure_steps_per_second(model: LPN, bank: torch.Tensor, batch: int, sigma: float,
                             device: torch.device, n: int = 12, warmup: int = 3) -> float:
    """Time full training steps (forward, prox with graph, loss backward, Adam) on a copy."""
    m = copy.deepcopy(model).to(device)
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    x = bank[:batch].to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = 0.0
    for i in range(warmup + n):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        y = x + sigma * torch.randn_like(x)
        loss = (m(y, create_graph=True) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        m.project_()
    sync()
    return n / (time.perf_counter() - t0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "inverse/lpn/weights/lpn_deblur_gray.pt",
                   help="weights file (a .json sidecar is written next to it)")
    p.add_argument("--data-cache", type=Path, default=None,
                   help="images .npz: written from the shared data if missing, else read")
    p.add_argument("--cache-only", action="store_true", help="write --data-cache and exit")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32",
                   help="mixed precision of the training (falls back to fp32 where unsupported)")
    p.add_argument("--steps", default="auto",
                   help="number of optimizer steps, or 'auto': fill --time-budget seconds (its "
                        "default on CUDA is 240) after a short speed benchmark, or, on the CPU "
                        "without --time-budget, run --cpu-steps")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds of training steps for --steps auto (default 240 on CUDA)")
    p.add_argument("--cpu-steps", type=int, default=1500,
                   help="steps of --steps auto on the CPU without --time-budget")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny model and 20 steps (smoke test)")
    p.add_argument("--sigma-train", type=float, default=0.03)
    p.add_argument("--gamma-min-rms", type=float, default=None,
                   help="final proximal-matching γ on the RMS scale (default: σ_train)")
    p.add_argument("--warmup-frac", type=float, default=0.4,
                   help="fraction of warm-up steps (1: no proximal matching)")
    p.add_argument("--warmup-loss", choices=("l1", "l2"), default="l1",
                   help="loss of the warm-up (l2 with --warmup-frac 1: an MMSE-trained LPN, "
                        "the control of scripts/train_denoiser_baseline.py)")
    p.add_argument("--lr-l1", default="1e-3",
                   help="L1 warm-up learning rate(s), comma-separated: equal sub-phases")
    p.add_argument("--lr-pm", type=float, default=2e-4)
    p.add_argument("--pm-loss", choices=("normalized", "raw"), default="raw",
                   help="proximal-matching loss as in the reference (default) or times γ²/n "
                        "(its gradient scale does not jump 4x when γ halves)")
    p.add_argument("--keep-optimizer", action="store_true",
                   help="keep Adam's moment estimates across phases (the reference; it let the "
                        "late proximal-matching stages take ~4x larger steps); default: reset "
                        "them at each phase")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="clip the global gradient norm (default: no clipping)")
    p.add_argument("--hidden", type=int, default=48)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--dilations", default="1,2,4,2,1",
                   help="comma-separated, one per layer ('' for all 1)")
    p.add_argument("--init", choices=("identity", "reference"), default="identity",
                   help="start from a prox close to the identity (default) or from the "
                        "reference initialisation (z-path weights exp(N(-10, 0.1)))")
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--beta", type=float, default=10.0)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--n-patches", type=int, default=40000)
    p.add_argument("--mix", default="0.5,0.2,0.3", help="probabilities of pan, NAIP, natural")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="training checkpoint (optimizer state; resumed when it exists)")
    p.add_argument("--snapshot-every", type=int, default=None,
                   help="also save the weights every this many steps (and at the end) as "
                        "<snapshot-dir>/step<NNNNNN>.pt, e.g. to score PnP against the steps; "
                        "needs --checkpoint (training runs in chunks resumed from it)")
    p.add_argument("--snapshot-dir", type=Path, default=None,
                   help="folder of the snapshots (default: <out stem>_snapshots next to --out)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args(argv)
    if args.snapshot_every is not None:
        if args.snapshot_every < 1:
            p.error("--snapshot-every must be >= 1")
        if args.checkpoint is None:
            p.error("--snapshot-every needs --checkpoint PATH (the chunks resume from it)")
    if args.quick:
        args.hidden, args.layers, args.dilations = 8, 2, ""
        args.patch, args.batch, args.n_patches = 24, 8, 64
        if args.steps == "auto" and args.time_budget is None:
            args.steps = "20"
    if args.steps != "auto":
        try:
            args.steps = int(args.steps)
        except ValueError:
            p.error(f"--steps must be an int or 'auto', got {args.steps!r}")
        if args.steps < 4:
            p.error("--steps must be >= 4")
    args.dilations = tuple(int(d) for d in args.dilations.split(",")) if args.dilations else None
    args.mix = tuple(float(m) for m in args.mix.split(","))
    try:
        args.lr_l1 = tuple(float(v) for v in args.lr_l1.split(","))
    except ValueError:
        p.error(f"--lr-l1 must be comma-separated floats, got {args.lr_l1!r}")
    if len(args.mix) != 3 or min(args.mix) < 0 or sum(args.mix) <= 0:
        p.error("--mix needs three non-negative probabilities")
    if not 0 <= args.warmup_frac <= 1:
        p.error("--warmup-frac must be in [0, 1]")
    if args.sigma_train <= 0:
        p.error("--sigma-train must be > 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python scripts/train_lpn_deblur.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))

    # ---- data
    t0 = time.perf_counter()
    if args.data_cache is not None and args.data_cache.exists():
        images = read_cache(args.data_cache)
        source = f"cache {args.data_cache.name}"
    else:
        images = collect_images()
        source = "shared data + skimage/sklearn"
        if args.data_cache is not None:
            write_cache(args.data_cache, images)
            mb = args.data_cache.stat().st_size / 2**20
            print(f"wrote {args.data_cache} ({len(images)} images, {mb:.1f} MiB)")
    if args.cache_only:
        if args.data_cache is None:
            raise SystemExit("--cache-only needs --data-cache PATH")
        return {"cache": str(args.data_cache)}
    bank, counts = make_patch_bank(images, args.n_patches, args.patch, args.mix, args.seed)
    print(f"{len(images)} images ({source}); {len(bank)} patches {args.patch}x{args.patch} "
          f"{counts} in {time.perf_counter() - t0:.1f} s")

    # ---- model
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    cfg = ImageLPNConfig(in_channels=1, hidden=args.hidden, num_layers=args.layers,
                         dilations=args.dilations, alpha=args.alpha, beta=args.beta)
    model = LPN(cfg).to(device)
    if args.init == "identity":
        identity_init_(model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters, receptive field {cfg.receptive_field} px, {device}")
    if device.type == "cuda":
        bank = bank.to(device)

    # ---- schedule
    sps_bench = None
    budget = args.time_budget if args.time_budget is not None else (
        240.0 if device.type == "cuda" else None)
    if args.steps == "auto" and budget is not None:
        sps_bench = measure_steps_per_second(model, bank, args.batch, args.sigma_train, device)
        # 10% margin for checkpoints and the slower first steps; a multiple of 100 (>= 20)
        steps = max(20, int(budget * sps_bench * 0.9) // 100 * 100 or 20)
        print(f"benchmark: {sps_bench:.2f} steps/s -> {steps} steps for {budget:.0f} s")
    elif args.steps == "auto":
        steps = args.cpu_steps
    else:
        steps = args.steps
    gamma_min = args.gamma_min_rms if args.gamma_min_rms is not None else args.sigma_train
    sched = phases(steps, args.warmup_frac, gamma_min, args.lr_l1, args.lr_pm,
                   normalized=args.pm_loss == "normalized", warmup_loss=args.warmup_loss)
    tcfg = LPNTrainOptions(phases=sched, batch_size=args.batch, sigma_noise=args.sigma_train,
                          seed=args.seed, grad_clip=args.grad_clip,
                          reset_optimizer=not args.keep_optimizer,
                          checkpoint_every=max(100, steps // 20),
                          log_every=max(1, min(100, steps // 20)))
    print("schedule: " + ", ".join(f"{p.describe()} x{p.steps} @ {p.lr:g}" for p in sched))

    # ---- train
    t_train = time.perf_counter()

    def report(k: int, m: LPN) -> None:  # progress without a terminal (e.g. a batch job)
        print(f"  phase {k} ({sched[k].describe()}) done after "
              f"{time.perf_counter() - t_train:.0f} s", flush=True)

    def run(stop_after: int | None):
        return train_lpn(model, bank, tcfg, checkpoint=args.checkpoint, device=device,
                         precision=args.precision, stop_after=stop_after,
                         progress=sys.stderr.isatty(), on_phase_end=report)

    if args.snapshot_every is None:
        hist = run(None)
        wall = hist.wall_time
    else:
        snap_dir = args.snapshot_dir or args.out.parent / f"{args.out.stem}_snapshots"
        snap_dir.mkdir(parents=True, exist_ok=True)
        wall, done = 0.0, 0
        while done < steps:
            hist = run(min(steps, (done // args.snapshot_every + 1) * args.snapshot_every))
            wall += hist.wall_time
            done = hist.final_step
            save_lpn(model, snap_dir / f"step{done:06d}.pt")  # weights stored on the CPU
            print(f"  snapshot {snap_dir / f'step{done:06d}.pt'} "
                  f"(loss {hist.loss[-1]:.4g}, {wall:.0f} s)", flush=True)
    sps = steps / wall if wall > 0 else float("nan")
    print(f"trained {hist.final_step} steps in {wall:.1f} s ({sps:.2f} steps/s); "
          f"final loss {hist.loss[-1]:.4g}")

    # ---- save
    model = model.cpu()
    save_lpn(model, args.out)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    meta = {
        "weights": args.out.name,
        "sigma_train": args.sigma_train,
        "data_range": [0.0, 1.0],
        "model_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "init": args.init,
        "num_parameters": n_params,
        "receptive_field": cfg.receptive_field,
        "steps": hist.final_step,
        "train_seconds": round(wall, 2),
        "steps_per_second": round(sps, 3),
        "benchmark_steps_per_second": None if sps_bench is None else round(sps_bench, 3),
        "device": device_name,
        "precision": args.precision,
        "torch_threads": torch.get_num_threads(),
        "schedule": [{"loss": p.loss, "steps": p.steps, "lr": p.lr,
                      "gamma_rms": p.gamma_rms, "normalized": p.normalized} for p in sched],
        "grad_clip": args.grad_clip,
        "reset_optimizer": not args.keep_optimizer,
        "batch_size": args.batch,
        "patch_size": args.patch,
        "n_patches": args.n_patches,
        "patch_counts": counts,
        "mix": dict(zip(GROUPS, args.mix, strict=True)),
        "data": {"pan": list(PAN_TRAIN), "naip": list(NAIP_TRAIN),
                 "natural": [f"skimage.data.{n}" for n in SKIMAGE_NAMES]
                 + [f"sklearn {n}" for n in SKLEARN_NAMES],
                 "source": source},
        "final_loss": hist.loss[-1],
        "loss_history": {"step": hist.step, "loss": hist.loss},
        "seed": args.seed,
        "library_version": library_version(),
        "torch_version": torch.__version__,
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    side = args.out.with_suffix(".json")
    write_json(side, meta)
    print(f"wrote {args.out} and {side}")
    return meta


if __name__ == "__main__":
    main()
    sys.exit(0)
