"""Training step time, float32 vs mixed precision, for the CAE, its variance decoder and an LPN.

One run measures, for each model, a seeded training of ``--steps`` steps in float32 and in the
mixed precision ``--precision`` (default ``auto``: bfloat16 autocast + channels-last on CPUs with
AMX/AVX512-BF16, bfloat16 or float16 on CUDA; see :func:`sciml_inverse.resolve_precision`):

* ``cae``: a ``CAEConfig.small()`` compressive autoencoder (≈ 3.9 M parameters), rate-distortion
  training (:func:`inverse.vble.train_cae`) on 128×128 patches, batch 8;
* ``std_decoder``: its variance decoder (:func:`inverse.vble.train_std_decoder`), same batches;
* ``lpn``: an image LPN (``ImageLPNConfig(in_channels=1, hidden=32, num_layers=3)``), its L1
  denoising phase (:func:`inverse.lpn.train_lpn`, σ = 0.1) on 64×64 patches, batch 8.

Reported per model and precision: the median step time (intervals between consecutive batch
draws, the first step excluded: one-time kernel set-up), the speed-up fp32 / mixed, and the loss
after the fixed number of steps (mean over the last quarter of the steps) -- same seed, same
batches. "Within noise" is judged against the seed-to-seed spread: the same float32 training
with another seed (``loss_fp32_other_seed``); ``loss_agrees`` holds when
``|mixed - fp32| <= max(|fp32_other_seed - fp32|, 2 % of fp32)``.

The data are seeded synthetic smooth images (no download), so the numbers measure speed and
numerical agreement, not image quality. Nothing is asserted on timings (shared machines).

Usage::

    python benchmarks/bench_training_precision.py --json bench_output/training_precision.json
    python benchmarks/bench_training_precision.py --steps 20 --device cuda
    python benchmarks/bench_training_precision.py --quick      # seconds, tiny models
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F  # noqa: N812

from inverse.lpn import LPN, ImageLPNConfig, LPNTrainOptions, TrainPhase, train_lpn
from inverse.vble import (
    CAEConfig,
    CompressiveAutoencoder,
    TrainOptions,
    train_cae,
    train_std_decoder,
)
from sciml_inverse import library_version, resolve_precision, write_json


def smooth_images(size: int, channels: int = 1) -> Callable[[int, torch.Generator], torch.Tensor]:
    """A seeded data callable ``(batch, generator) -> (batch, C, size, size)`` in [0, 1]:
    bilinearly upsampled uniform noise at a random coarse scale, plus fine noise."""

    def draw(batch: int, gen: torch.Generator) -> torch.Tensor:
        coarse = int(torch.randint(4, 17, (1,), generator=gen))
        low = torch.rand(batch, channels, coarse, coarse, generator=gen)
        x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
        x = x + 0.02 * torch.randn(x.shape, generator=gen)
        return x.clamp(0, 1)

    return draw


class Timed:
    """Wraps a data callable and records when each batch is drawn (one per training step)."""

    def __init__(self, data: Callable[[int, torch.Generator], torch.Tensor]) -> None:
        self.data, self.stamps = data, []

    def __call__(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        self.stamps.append(time.perf_counter())
        return self.data(batch, gen)

    def step_times(self, end: float) -> list[float]:
        t = [*self.stamps, end]
        return [b - a for a, b in zip(t[:-1], t[1:], strict=True)]


def run_cae(precision: str, seed: int, args) -> dict:
    torch.manual_seed(seed)
    cfg = (CAEConfig(N=16, M=24, std_decoder=True) if args.quick
           else CAEConfig.small(std_decoder=True))
    model = CompressiveAutoencoder(cfg).to(args.device)
    data = Timed(smooth_images(64 if args.quick else 128))
    tcfg = TrainOptions(steps=args.steps, batch_size=8, lr=1e-4, seed=seed,
                       log_every=args.window, checkpoint_every=args.steps)
    h = train_cae(model, data, tcfg, progress=False, precision=precision)
    cae = _summary(data, h.metrics["loss"], args, precision)
    # the variance decoder of the trained CAE, same batches
    data_std = Timed(smooth_images(64 if args.quick else 128))
    h2 = train_std_decoder(model, data_std, dataclasses.replace(tcfg, lr=1e-3), progress=False,
                           precision=precision)
    return {"cae": cae, "std_decoder": _summary(data_std, h2.metrics["nll"], args, precision)}


def run_lpn(precision: str, seed: int, args) -> dict:
    torch.manual_seed(seed)
    model = LPN(ImageLPNConfig(in_channels=1, hidden=8 if args.quick else 32,
                               num_layers=2 if args.quick else 3)).to(args.device)
    data = Timed(smooth_images(32 if args.quick else 64))
    # the L1 phase of LPN training (proximal matching saturates at 1 on a short run, which would
    # hide any disagreement)
    cfg = LPNTrainOptions(phases=(TrainPhase(steps=args.steps, loss="l1", lr=1e-3),),
                         batch_size=8, sigma_noise=0.1, seed=seed, log_every=args.window,
                         checkpoint_every=args.steps)
    h = train_lpn(model, data, cfg, progress=False, precision=precision)
    return {"lpn": _summary(data, h.loss, args, precision)}


def _summary(data: Timed, losses: list[float], args, precision: str) -> dict:
    # one stamp per training step (train_std_decoder's warm start draws one batch before)
    data.stamps = data.stamps[-args.steps:]
    times = data.step_times(time.perf_counter())
    return {"median_step_s": statistics.median(times[1:]) if len(times) > 1 else times[0],
            "step_times_s": times, "loss": losses[-1],
            "precision": resolve_precision(precision, args.device).name}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="training steps per run (default 20)")
    p.add_argument("--precision", choices=("bf16", "fp16", "auto"), default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny models (smoke test)")
    p.add_argument("--json", default=None, help="write the results here (atomically)")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    args.window = max(1, args.steps // 4)
    mixed = resolve_precision(args.precision, args.device)
    runs = {}
    for fn in (run_cae, run_lpn):
        ref = fn("fp32", args.seed, args)
        low = fn(args.precision, args.seed, args)
        other = fn("fp32", args.seed + 1, args)
        for model in ref:
            r, m, o = ref[model], low[model], other[model]
            tol = max(abs(o["loss"] - r["loss"]), 0.02 * abs(r["loss"]))
            runs[model] = {
                "fp32": r, "mixed": m, "speedup": r["median_step_s"] / m["median_step_s"],
                "loss_fp32": r["loss"], "loss_mixed": m["loss"],
                "loss_fp32_other_seed": o["loss"],
                "loss_rel_diff": abs(m["loss"] - r["loss"]) / abs(r["loss"]),
                "loss_agrees": abs(m["loss"] - r["loss"]) <= tol,
            }
    meta = {"steps": args.steps, "requested": args.precision, "mixed": mixed.name,
            "note": mixed.note, "device": args.device, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "library_version": library_version(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "quick": args.quick,
            "loss_window_steps": args.window}
    print(f"precision {mixed.name} vs fp32 on {args.device} ({torch.get_num_threads()} threads), "
          f"{args.steps} steps{' — ' + mixed.note if mixed.note else ''}")
    print(f"{'model':<12} {'fp32 s/step':>12} {'mixed s/step':>13} {'speedup':>8} "
          f"{'loss fp32':>11} {'loss mixed':>11} {'other seed':>11} agrees")
    for model, r in runs.items():
        print(f"{model:<12} {r['fp32']['median_step_s']:>12.4f} "
              f"{r['mixed']['median_step_s']:>13.4f} {r['speedup']:>8.2f} "
              f"{r['loss_fp32']:>11.5g} {r['loss_mixed']:>11.5g} "
              f"{r['loss_fp32_other_seed']:>11.5g} {r['loss_agrees']}")
    out = {"meta": meta, "models": runs}
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
    sys.exit(0)
