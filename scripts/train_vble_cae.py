"""Train a one-channel compressive autoencoder and its variance decoder for VBLE-xz.

Two phases (``inverse.vble._train``): rate-distortion training of the CAE with
``alpha (2^n-1)^2 MSE + bpp`` (:func:`train_cae`), then the variance decoder σ_θ with everything
else frozen (:func:`train_std_decoder`). Then the model is evaluated on held-out validation
strips of the training pan images (bpp, PSNR, NLL of σ_θ) and on the decoder fit ceiling of a
256x256 crop of a training pan image (best PSNR of D(y) with y optimized by Adam), and written
with :func:`inverse.vble.save_cae` plus a JSON sidecar (same name, ``.json``) holding the
training record and the exact command.

Data (``--data``, default ``../shared/data/satellite/train``; never ``eval/``): the 0.5 m
panchromatic images divided by ``2**12 - 1`` with a random gain in ``--pan-gain``, and with
``--naip-share`` > 0 the NAIP 5 m RGB dates as gray / 255; the bottom ``--val-rows`` rows of each
pan image are held out. Patches get random flips and 90-degree rotations.

The shipped models (``inverse/vble/weights/cae_{low,high}.pt``, CPU, see the README there)::

    python scripts/train_vble_cae.py --alpha 0.0067 --out inverse/vble/weights/cae_low.pt
    python scripts/train_vble_cae.py --alpha 0.0483 --out inverse/vble/weights/cae_high.pt

``--quick`` is a seconds-long smoke run (tiny model; ``--synthetic`` replaces the data by
seeded synthetic images). ``--full`` selects full-scale settings (mbt2018 widths N=192, M=320,
256x256 patches, batch 16, 300k + 50k steps) for a GPU; under ``torchrun`` the training runs
with DistributedDataParallel (each rank draws its own batches; ``--batch`` is per rank)::

    torchrun --nproc_per_node 4 scripts/train_vble_cae.py --full --device cuda --alpha 0.0067 \\
        --out cae_low_full.pt

Interrupted runs continue with ``--resume`` (checkpoints ``<out>.cae.ckpt`` / ``<out>.std.ckpt``
or in ``--ckpt-dir``; the schedule of steps not done yet may be changed on resume).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from inverse.vble import CAEConfig, CompressiveAutoencoder, load_training_checkpoint, save_cae
from inverse.vble._data import (
    NAIP_TRAIN,
    PAN_TRAIN,
    PatchSampler,
    PatchSource,
    load_satellite_train,
)
from inverse.vble._train import (
    TrainOptions,
    evaluate_cae,
    fit_decoder,
    library_version,
    train_cae,
    train_std_decoder,
)
from sciml_inverse import write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "satellite" / "train"
HALF_ABOVE_BYTES = 8_000_000  # store float16 when the float32 file would exceed this


def _floats(s: str) -> tuple[float, ...]:
    return tuple(float(v) for v in s.split(",") if v.strip())


def _ints(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alpha", type=float, default=0.0067,
                   help="rate-distortion weight (0.0067: cae_low, 0.0483: cae_high)")
    p.add_argument("--out", type=Path, default=Path("cae.pt"),
                   help="weights file (save_cae); a .json sidecar is written next to it")
    p.add_argument("--steps", type=int, default=None, help="CAE steps (default 16000)")
    p.add_argument("--std-steps", type=int, default=None,
                   help="variance-decoder steps (default 3000)")
    p.add_argument("--patch", type=int, default=None, help="patch side (default 128)")
    p.add_argument("--batch", type=int, default=None, help="patches per step (default 8)")
    p.add_argument("--lr", type=float, default=3e-4, help="CAE Adam learning rate")
    p.add_argument("--lr-milestones", type=_ints, default=None,
                   help="comma-separated CAE steps where the lr is multiplied by --lr-decay "
                        "(default: 85%% of --steps)")
    p.add_argument("--lr-decay", type=float, default=0.1)
    p.add_argument("--std-lr", type=float, default=3e-4, help="variance-decoder learning rate")
    p.add_argument("--grad-clip", type=float, default=20.0)
    p.add_argument("--N", type=int, default=None, help="transform channels (default 64)")
    p.add_argument("--M", type=int, default=None, help="latent channels (default 192)")
    p.add_argument("--mbt-widths", action="store_true",
                   help="mbt2018's entropy-model widths instead of CAEConfig.small()'s")
    p.add_argument("--n-bits", type=int, default=12)
    p.add_argument("--data", type=Path, default=DATA, help="the satellite/train folder")
    p.add_argument("--synthetic", action="store_true",
                   help="seeded synthetic images instead of --data (smoke tests)")
    p.add_argument("--naip-share", type=float, default=0.2,
                   help="share of NAIP patches (gray / 255); 0: panchromatic only")
    p.add_argument("--pan-gain", type=_floats, default=(0.5, 2.0),
                   help="log-uniform gain range of pan patches, 'low,high'")
    p.add_argument("--val-rows", type=int, default=128,
                   help="rows held out at the bottom of each pan image for validation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    p.add_argument("--init-from", default=None, metavar="PATH|xlow|low|high|xhigh",
                   help="warm start: initial CAE weights from a saved model (load_cae) or a "
                        "shipped one (its N, M and widths must match); ignored on --resume "
                        "once a checkpoint exists")
    p.add_argument("--ckpt-dir", type=Path, default=None,
                   help="folder of the training checkpoints (default: next to --out)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--checkpoint-seconds", type=float, default=180.0)
    p.add_argument("--time-limit", type=float, default=None,
                   help="stop the CAE phase after this many seconds (then the std phase)")
    p.add_argument("--decay-at", type=float, default=None,
                   help="with --time-limit and no --lr-milestones: multiply the lr by "
                        "--lr-decay once this fraction of the time limit is used (the step "
                        "where it happened is recorded as the milestone)")
    p.add_argument("--std-time-limit", type=float, default=None)
    p.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction, default=True,
                   help="flush denormal floats to zero (CPU speed; default on)")
    p.add_argument("--fit-iters", type=int, default=300, help="decoder-fit Adam iterations")
    p.add_argument("--fit-lrs", type=_floats, default=(1.0, 2.0),
                   help="decoder-fit learning rates (the best PSNR is reported)")
    p.add_argument("--half", choices=("auto", "yes", "no"), default="auto",
                   help=f"float16 storage (auto: if float32 exceeds {HALF_ABOVE_BYTES} bytes)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32",
                   help="mixed precision (bf16: CPUs with AMX/AVX512-BF16 or CUDA; fp16: CUDA; "
                        "falls back to fp32 where unsupported)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    p.add_argument("--no-progress", action="store_true")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="tiny model (N=8, M=16), 64x64 patches, 6+4 steps: a smoke run")
    g.add_argument("--full", action="store_true",
                   help="full scale: N=192, M=320, mbt2018 widths, 256x256 patches, batch 16, "
                        "300k CAE + 50k std steps, lr 1e-4 (a GPU job)")
    args = p.parse_args(argv)
    preset = {"steps": 16000, "std_steps": 3000, "patch": 128, "batch": 8, "N": 64, "M": 192}
    if args.quick:
        preset = {"steps": 6, "std_steps": 4, "patch": 64, "batch": 2, "N": 8, "M": 16}
        args.fit_iters = min(args.fit_iters, 5)
        args.fit_lrs = args.fit_lrs[:1]
    elif args.full:
        preset = {"steps": 300_000, "std_steps": 50_000, "patch": 256, "batch": 16, "N": 192,
                  "M": 320}
        args.mbt_widths = True
        if "--lr" not in (argv if argv is not None else sys.argv):
            args.lr = 1e-4
    for k, v in preset.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.decay_at is not None and (args.time_limit is None or args.lr_milestones is not None
                                      or not 0 < args.decay_at < 1):
        p.error("--decay-at needs --time-limit, no --lr-milestones, and a value in (0, 1)")
    if args.lr_milestones is None and args.decay_at is None:
        args.lr_milestones = (max(1, int(0.85 * args.steps)),) if args.steps > 1 else ()
    return args


def synthetic_sources(seed: int, n: int = 4, size: int = 192) -> tuple[tuple[PatchSource, ...],
                                                                        dict[str, np.ndarray]]:
    """Seeded synthetic gray images (smoothed noise + rectangles): training sources and one
    validation image (for smoke runs without the shared data)."""
    rng = np.random.default_rng(seed)
    imgs = []
    for _ in range(n + 1):
        a = rng.random((size, size))
        for _ in range(3):  # cheap smoothing
            a = (a + np.roll(a, 1, 0) + np.roll(a, 1, 1) + np.roll(a, (1, 1), (0, 1))) / 4
        for _ in range(6):
            r, c = rng.integers(0, size - 32, 2)
            a[r:r + rng.integers(8, 32), c:c + rng.integers(8, 32)] = rng.random()
        imgs.append((0.05 + 0.3 * a).astype(np.float32))
    sources = tuple(PatchSource(f"synthetic/{i}", im) for i, im in enumerate(imgs[:n]))
    return sources, {"synthetic/val": imgs[n][:128, :128]}


def _init_distributed(args: argparse.Namespace) -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if args.device.startswith("cuda"):
        torch.cuda.set_device(local)
        args.device = f"cuda:{local}"
    dist.init_process_group(backend="nccl" if args.device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _thin(hist: dict[str, list], keep: int = 200) -> dict[str, list]:
    n = len(next(iter(hist.values()))) if hist else 0
    idx = sorted(set(np.linspace(0, n - 1, min(n, keep)).round().astype(int).tolist())) if n else []
    return {k: [v[i] for i in idx] for k, v in hist.items()}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    rank, world = _init_distributed(args)
    t_start = time.perf_counter()

    # ------------------------------------------------------------------ data
    if args.synthetic:
        sources, val = synthetic_sources(args.seed)
        data_desc: dict = {"synthetic": True, "sources": [s.name for s in sources]}
    else:
        d = load_satellite_train(args.data, n_bits=args.n_bits, pan_names=PAN_TRAIN,
                                 naip_names=NAIP_TRAIN if args.naip_share > 0 else (),
                                 naip_share=args.naip_share, pan_gain=tuple(args.pan_gain),
                                 val_rows=args.val_rows)
        sources, val, data_desc = d.train, d.val, d.description
    sampler = PatchSampler(sources, args.patch)

    # ------------------------------------------------------------------ model
    widths = {} if args.mbt_widths else {
        "hyper_channels": (96, 144, 192), "context_channels": 192, "entropy_channels": (320, 256)}
    if args.quick:
        widths = {}
    cfg = CAEConfig(N=args.N, M=args.M, n_bits=args.n_bits, alpha=args.alpha, std_decoder=True,
                    **widths)
    model = CompressiveAutoencoder(cfg)
    ckpt_dir = args.ckpt_dir if args.ckpt_dir is not None else args.out.parent
    stem = args.out.stem
    cae_ckpt, std_ckpt = ckpt_dir / f"{stem}.cae.ckpt", ckpt_dir / f"{stem}.std.ckpt"
    if not args.resume:
        for c in (cae_ckpt, std_ckpt):
            if c.exists():
                raise SystemExit(f"{c} exists: pass --resume to continue it, or delete it")
    progress = not args.no_progress
    if args.init_from is not None and not (args.resume and cae_ckpt.exists()):
        from inverse.vble import SHIPPED_MODELS, default_cae, load_cae

        src = (default_cae(args.init_from) if args.init_from in SHIPPED_MODELS
               else load_cae(args.init_from))
        if src.config.to_dict() | {"alpha": cfg.alpha} != cfg.to_dict():
            raise SystemExit(f"--init-from {args.init_from}: its configuration "
                             f"{src.config.to_dict()} differs from this run's {cfg.to_dict()}")
        model.load_state_dict({k: v.float() for k, v in src.state_dict().items()})

    # ------------------------------------------------------------------ phase 1: CAE
    def cae_config(milestones: tuple[int, ...]) -> TrainOptions:
        return TrainOptions(steps=args.steps, batch_size=args.batch, lr=args.lr,
                           lr_milestones=tuple(m for m in milestones if m < args.steps),
                           lr_decay=args.lr_decay, grad_clip=args.grad_clip, seed=args.seed,
                           checkpoint_every=args.checkpoint_every,
                           log_every=max(1, min(50, args.steps // 4)))

    train_kw = dict(checkpoint=cae_ckpt, device=args.device, precision=args.precision,
                    checkpoint_seconds=args.checkpoint_seconds, progress=progress)
    if args.decay_at is None:
        cae_cfg = cae_config(args.lr_milestones)
        h_cae = train_cae(model, sampler, cae_cfg, resume=args.resume,
                          time_limit=args.time_limit, **train_kw)
    else:
        # time-based decay: run at the initial lr for decay_at * time_limit, then record the
        # step reached as the milestone and continue at the decayed lr
        done = ()
        if args.resume and cae_ckpt.exists():
            _, info = load_training_checkpoint(cae_ckpt)
            done = tuple(m for m in info["train_config"].lr_milestones if m <= info["step"])
        t0 = time.perf_counter()
        if not done:
            h_cae = train_cae(model, sampler, cae_config(()), resume=args.resume,
                              time_limit=args.decay_at * args.time_limit, **train_kw)
            done = (h_cae.final_step,)
        left = max(args.time_limit - (time.perf_counter() - t0), 1.0)
        cae_cfg = cae_config(done)
        h_cae = train_cae(model, sampler, cae_cfg, resume=True, time_limit=left, **train_kw)

    # ------------------------------------------------------------------ phase 2: std decoder
    std_cfg = TrainOptions(steps=args.std_steps, batch_size=args.batch, lr=args.std_lr,
                          lr_milestones=(max(1, int(0.8 * args.std_steps)),)
                          if args.std_steps > 1 else (),
                          lr_decay=0.1, grad_clip=args.grad_clip, seed=args.seed + 1,
                          checkpoint_every=args.checkpoint_every,
                          log_every=max(1, min(50, args.std_steps // 4)))
    resume_std = args.resume
    if resume_std and std_ckpt.exists():
        # a std checkpoint is only valid for the CAE weights it started from
        saved = load_training_checkpoint(std_ckpt)[0].state_dict()
        own = model.state_dict()
        same = all(torch.equal(saved[k], own[k].cpu()) for k in own if not k.startswith("g_s_std"))
        if not same:
            print(f"{std_ckpt} was trained on other CAE weights: restarting the std phase",
                  file=sys.stderr)
            resume_std = False
    h_std = train_std_decoder(model, sampler, std_cfg, checkpoint=std_ckpt, resume=resume_std,
                              device=args.device, time_limit=args.std_time_limit,
                              checkpoint_seconds=args.checkpoint_seconds, progress=progress,
                              precision=args.precision)
    train_seconds = time.perf_counter() - t_start
    if rank != 0:
        return {}

    # ------------------------------------------------------------------ evaluation
    model = model.to("cpu").eval()
    t_eval = time.perf_counter()
    val_metrics = evaluate_cae(model, val, seed=args.seed)
    if args.synthetic:
        crop_name, crop = "synthetic/val", next(iter(val.values()))
    else:
        pan0 = next(s for s in sources if s.name.startswith("pan/"))
        crop_name = f"{pan0.name}[0:256, 0:256] (training region)"
        crop = pan0.image[:256, :256]
    fits = [fit_decoder(model, crop, steps=args.fit_iters, lr=lr) for lr in args.fit_lrs]
    best_fit = max(fits, key=lambda f: f["psnr"])
    eval_seconds = time.perf_counter() - t_eval

    # ------------------------------------------------------------------ save
    n_params = sum(p.numel() for p in model.parameters())
    half = args.half == "yes" or (args.half == "auto" and 4 * n_params > HALF_ABOVE_BYTES)
    record = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]) if argv is None
        else shlex.join(["python", "scripts/train_vble_cae.py", *argv]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "library_version": library_version(), "torch_version": torch.__version__,
        "device": args.device, "threads": args.threads, "world_size": world,
        "precision": args.precision,
        "alpha": args.alpha, "gamma": model.gamma, "model_config": cfg.to_dict(),
        "num_parameters": n_params, "stored_dtype": "float16" if half else "float32",
        "data": data_desc, "patch": args.patch, "batch": args.batch,
        "cae_train": {"config": cae_cfg.to_dict(), "steps": h_cae.final_step,
                      "stopped": h_cae.stopped, "seconds": h_cae.total_wall_time,
                      "steps_per_second": h_cae.final_step / max(h_cae.total_wall_time, 1e-9),
                      "history": _thin({"step": h_cae.step, **h_cae.metrics})},
        "std_train": {"config": std_cfg.to_dict(), "steps": h_std.final_step,
                      "stopped": h_std.stopped, "seconds": h_std.total_wall_time,
                      "history": _thin({"step": h_std.step, **h_std.metrics})},
        "this_call_seconds": train_seconds,
        "validation": val_metrics,
        "decoder_fit": {"crop": crop_name, "psnr": best_fit["psnr"],
                        "psnr_init": best_fit["psnr_init"], "lr": best_fit["lr"],
                        "iterations": best_fit["iterations"],
                        "all": [{k: f[k] for k in ("lr", "psnr", "psnr_init")} for f in fits],
                        "curve": best_fit["curve"]},
        "eval_seconds": eval_seconds,
        "psnr_peak": "1.0 in normalized units (= 2**n_bits - 1 DN for pan data)",
    }
    path = save_cae(model, args.out, half=half, record=json.loads(json.dumps(record)))
    record["file_bytes"] = path.stat().st_size
    write_json(args.out.with_suffix(".json"), record)
    if args.json is not None:
        write_json(args.json, record)
    vm = val_metrics["mean"]
    print(f"{args.out}: {n_params / 1e6:.2f} M parameters, {record['file_bytes'] / 1e6:.2f} MB "
          f"({record['stored_dtype']}); CAE {h_cae.final_step} steps "
          f"({h_cae.total_wall_time:.0f} s, {h_cae.stopped}), std {h_std.final_step} steps "
          f"({h_std.total_wall_time:.0f} s); val bpp {vm['bpp_round']:.3f} (noisy "
          f"{vm['bpp_noisy']:.3f}), PSNR {vm['psnr_round']:.2f} dB, NLL std "
          f"{vm.get('nll_std', math.nan):.3f} vs gamma {vm['nll_gamma']:.3f}; decoder fit "
          f"{best_fit['psnr']:.2f} dB (init {best_fit['psnr_init']:.2f})")
    return record


if __name__ == "__main__":
    main()
