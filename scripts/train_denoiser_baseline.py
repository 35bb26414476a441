"""Train an *unconstrained* CNN denoiser on the LPN's data: the control experiment of issue 15.

The shipped LPN trails TV as a plug-and-play prior. Two things could be to blame: the LPN's
constraint (its output is the gradient of an input-convex network, so that it is exactly a
prox) or the training budget and data. This script trains a plain residual CNN denoiser
(deepinv's ``DnCNN`` architecture, no pretrained weights: depth 6, 48 features, 84k
parameters, the size of the 85k LPN) on exactly the same patches, noise level and batch as
``scripts/train_lpn_deblur.py``, with the ℓ2 loss (an MMSE denoiser). Plugged into the same
PnP-ADMM slot (a denoiser at σ_train used at weight 1, ρ = λ = (σ/σ_train)²), its score
separates the two causes; ``scripts/score_lpn_snapshots.py`` scores both against the steps.

A DnCNN is not a proximal operator of any known regularizer (no R(x), no convergence
guarantee); it is a diagnostic, not a prior this library ships.

::

    python scripts/train_denoiser_baseline.py --data-cache lpn_data.npz --steps 20000 \\
        --precision bf16 --threads 1 --snapshot-every 2000 --checkpoint dn/train.ckpt \\
        --out dn/dncnn.pt

Snapshots (``<out stem>_snapshots/step<NNNNNN>.pt``) and the output are
:func:`sciml_inverse.save_checkpoint` files of kind ``"denoiser-baseline"``;
:func:`load_denoiser` reads them.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time
from pathlib import Path

import torch
from torch import nn

from sciml_inverse import (
    FitOptions,
    TrainTask,
    fit,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    write_json,
)

KIND = "denoiser-baseline"


def _train_lpn_script():
    """``scripts/train_lpn_deblur.py`` as a module: the same data cache and patch bank."""
    name = "train_lpn_deblur"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def build_denoiser(depth: int, nf: int) -> nn.Module:
    """deepinv's DnCNN (gray, residual: ``x - net(x)``), randomly initialised."""
    from deepinv.models import DnCNN

    return DnCNN(in_channels=1, out_channels=1, depth=depth, nf=nf, pretrained=None)


def save_denoiser(model: nn.Module, path: Path, config: dict, extra: dict | None = None) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_checkpoint(path, kind=KIND, config=config, state=state, extra=extra or {})


def load_denoiser(path: str | Path) -> tuple[nn.Module, dict]:
    """The denoiser of a ``save_denoiser`` file (``weights_only`` load) and its config."""
    ckpt = load_checkpoint(path, kind=KIND, what="denoiser baseline")
    model = build_denoiser(ckpt.config["depth"], ckpt.config["nf"])
    load_weights(model, ckpt.state, path)
    return model.eval(), dict(ckpt.config)


class _Denoise(TrainTask):
    """ℓ2 denoising loss on ``y = x + σ ε`` (batches and noise from one generator)."""

    def __init__(self, bank: torch.Tensor, batch: int, sigma: float, gen: torch.Generator):
        self.bank, self.batch, self.sigma, self.gen = bank, batch, sigma, gen

    def loss(self, model: nn.Module, step: int) -> torch.Tensor:
        idx = torch.randint(len(self.bank), (self.batch,), generator=self.gen)
        x = self.bank[idx]
        y = x + self.sigma * torch.randn(x.shape, generator=self.gen)
        return (model(y).float() - x).square().mean()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-cache", type=Path, required=True,
                   help="the images .npz of scripts/train_lpn_deblur.py (--cache-only)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--nf", type=int, default=48)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-drop", type=float, default=0.8,
                   help="fraction of the steps after which the learning rate is divided by 10")
    p.add_argument("--sigma-train", type=float, default=0.03)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--n-patches", type=int, default=40000)
    p.add_argument("--mix", default="0.5,0.2,0.3", help="probabilities of pan, NAIP, natural")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--snapshot-every", type=int, default=None)
    args = p.parse_args(argv)
    if args.steps < 1 or args.depth < 2 or args.nf < 1 or args.sigma_train <= 0:
        p.error("--steps, --nf must be >= 1, --depth >= 2 and --sigma-train > 0")
    if args.snapshot_every is not None and args.snapshot_every < 1:
        p.error("--snapshot-every must be >= 1")
    try:
        args.mix = tuple(float(m) for m in args.mix.split(","))
    except ValueError:
        p.error(f"--mix must be three comma-separated probabilities, got {args.mix!r}")
    if len(args.mix) != 3 or min(args.mix) < 0 or sum(args.mix) <= 0:
        p.error("--mix needs three non-negative probabilities (pan, NAIP, natural)")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = "python scripts/train_denoiser_baseline.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    T = _train_lpn_script()
    images = T.read_cache(args.data_cache)
    bank, counts = T.make_patch_bank(images, args.n_patches, args.patch, args.mix, args.seed)
    torch.manual_seed(args.seed)
    model = build_denoiser(args.depth, args.nf)
    n_params = sum(q.numel() for q in model.parameters())
    config = {"arch": "deepinv.models.DnCNN", "depth": args.depth, "nf": args.nf,
              "sigma_train": args.sigma_train}
    print(f"DnCNN depth {args.depth}, {args.nf} features: {n_params} parameters; "
          f"{len(bank)} patches {args.patch}² {counts}", flush=True)
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(args.lr_drop * args.steps)], 0.1)
    snap_dir = args.out.parent / f"{args.out.stem}_snapshots"
    every = args.snapshot_every or args.steps
    run_cfg = {**config, "steps": args.steps, "lr": args.lr, "lr_drop": args.lr_drop,
               "batch": args.batch, "patch": args.patch, "n_patches": args.n_patches,
               "seed": args.seed}
    done, wall, res = 0, 0.0, None
    while done < args.steps:
        t0 = time.perf_counter()
        stop = min(args.steps, (done // every + 1) * every)
        res = fit(_Denoise(bank, args.batch, args.sigma_train, gen), model, opt,
                  options=FitOptions(steps=args.steps, stop_after=stop, precision=args.precision,
                                     checkpoint=args.checkpoint, checkpoint_every=500,
                                     log_every=100, progress=False, seed=args.seed,
                                     desc="denoiser"),
                  scheduler=sched, generators=(gen,), config=run_cfg)
        wall += time.perf_counter() - t0
        done = res.step
        if args.snapshot_every:
            snap_dir.mkdir(parents=True, exist_ok=True)
            save_denoiser(model, snap_dir / f"step{done:06d}.pt", config, {"step": done})
        print(f"  step {done}: loss {res.history['loss'][-1]:.4g} ({wall:.0f} s)", flush=True)
    save_denoiser(model, args.out, config,
                  {"step": done, "command": command, "train_seconds": round(wall, 1)})
    meta = {"weights": args.out.name, **run_cfg, "num_parameters": n_params,
            "precision": args.precision, "train_seconds": round(wall, 1),
            "patch_counts": counts, "command": command,
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(args.out.with_suffix(".json"), meta)
    print(f"wrote {args.out}")
    return meta


if __name__ == "__main__":
    main()
    sys.exit(0)
