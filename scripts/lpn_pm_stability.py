"""Small CPU check of the proximal-matching schedule: Adam state kept vs reset at each phase.

Trains a small image LPN (hidden 16, 3 layers, dilations 1, 2, 1, identity start) on 32×32
train patches at σ = 0.03 with an ℓ1 phase and four proximal-matching stages (γ_rms = 0.24,
0.12, 0.06, 0.03), once with one Adam state throughout (the reference) and once with
``LPNTrainOptions(reset_optimizer=True)``, and prints the RMSE on 64 held-out train patches
after every phase (noisy input: 0.030). Used for ``docs/guide/lpn.rst`` (*Why the GPU run
diverged*)::

    python scripts/train_lpn_deblur.py --data-cache lpn_data.npz --cache-only
    python scripts/lpn_pm_stability.py --data-cache lpn_data.npz --lr-pm 1e-3 --json out.json

About 8 minutes per run on one loaded CPU core.
"""

from __future__ import annotations

import argparse
import runpy
import time
from pathlib import Path

import torch

from inverse.lpn import LPN, ImageLPNConfig, LPNTrainOptions, train_lpn
from sciml_inverse import write_json

TRAIN = runpy.run_path(str(Path(__file__).with_name("train_lpn_deblur.py")), run_name="train")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-cache", type=Path, required=True)
    p.add_argument("--lr-pm", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=600, help="total steps (1/3 of them l1)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if args.steps < 8:
        p.error("--steps must be >= 8")
    torch.set_num_threads(args.threads)
    images = TRAIN["read_cache"](args.data_cache)
    bank, _ = TRAIN["make_patch_bank"](images, 4000, 32, (0.5, 0.2, 0.3), seed=0)
    val, _ = TRAIN["make_patch_bank"](images, 64, 32, (0.5, 0.2, 0.3), seed=99)
    val_y = val + 0.03 * torch.randn(val.shape, generator=torch.Generator().manual_seed(7))

    def rmse(m: LPN) -> float:
        return round(float((m(val_y).detach() - val).pow(2).mean().sqrt()), 4)

    out: dict = {"lr_pm": args.lr_pm, "steps": args.steps, "noisy_rmse": rmse_noisy(val, val_y)}
    for reset in (False, True):
        torch.manual_seed(0)
        m = LPN(ImageLPNConfig(in_channels=1, hidden=16, num_layers=3, dilations=(1, 2, 1)))
        TRAIN["identity_init_"](m)
        ph = TRAIN["phases"](args.steps, 1 / 3, 0.03, (1e-3,), args.lr_pm)
        cfg = LPNTrainOptions(phases=ph, batch_size=16, sigma_noise=0.03, seed=0,
                              log_every=25, reset_optimizer=reset)
        after: list[float] = []
        t0 = time.perf_counter()
        h = train_lpn(m, bank, cfg, progress=False,
                      on_phase_end=lambda k, mm, a=after: a.append(rmse(mm)))
        key = "reset" if reset else "keep"
        out[key] = {"val_rmse_after_each_phase": after, "loss": [round(v, 4) for v in h.loss],
                    "seconds": round(time.perf_counter() - t0, 1)}
        print(f"{key:5s} RMSE after each phase: {after}", flush=True)
    if args.json is not None:
        write_json(args.json, out)
    return out


def rmse_noisy(val: torch.Tensor, val_y: torch.Tensor) -> float:
    return round(float((val_y - val).pow(2).mean().sqrt()), 4)


if __name__ == "__main__":
    main()
