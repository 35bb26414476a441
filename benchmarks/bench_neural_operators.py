"""Benchmark of neural-operator prediction vs the finite-volume solver, and of the shared trunk.

In one process, on the same 200 two-phase test fields (29 × 29, :math:`a\\in\\{5,10\\}`,
:math:`f = 10`):

* **ours**: batched prediction of all 200 solutions by a trained MultiONet (the example's
  supervised piecewise model, loaded from its checkpoint; without one, a briefly trained model of
  the same architecture), ``torch.no_grad``, one call;
* **peer**: :func:`sciml.pde.solve_darcy` on the same fields, with the data's solver settings
  (the ``refine`` of the data generator, 3 by default: an 85 × 85 grid) and on the bare 29 × 29 grid
  (``refine=1``).

``speedup_vs_solver`` is solver time / operator time (target ≥ 100 on CPU; the refined solver
is the one that produces the labels the operator replaces). Best of ``--rounds`` rounds each.
The operator's
relative L2 error against the refined solutions is reported beside the timings.

Training cost: seconds per DGNO step and per epoch (1000 fields, batch 50) for the piecewise
DGNO of the example, with the trunk features and Jacobians computed once per batch (default)
and with the naive layout (points repeated per sample, autograd with ``create_graph``): key
``shared_trunk_speedup``.

Usage::

    python benchmarks/bench_neural_operators.py [--json PATH] [--checkpoint PATH] [--rounds N]
        [--threads N] [--quick]

Timings on the shared 2-core CPU are noisy; see ``docs/guide/neural_operators.rst`` for numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import torch

from sciml.neural_operators import (
    DGNO,
    BernoulliLikelihood,
    CNNEncoder,
    DGNOLossOptions,
    MLPEncoder,
    MultiONet,
    SiLUId,
    SiLUSin,
    SupervisedObjective,
    TanhSin,
    TrainOptions,
    WeakFormOptions,
    dgno_loss,
    fit,
    load,
    relative_l2,
)
from sciml_inverse import write_json

GRID = 29
DEFAULT_CKPT = "bench_output/darcy_runs/multionet_piecewise_s0_e150.pt"


def supervised_multionet() -> MultiONet:
    """The example's piecewise MultiONet (``build_supervised("multionet", "piecewise", .)``)."""
    enc = CNNEncoder(GRID, channels=(32, 64), hidden=(), out_size=128)
    return MultiONet(2, 128, [100] * 5, [100] * 5, sum_layers=4, weight_init=0.0,
                     activation_trunk=TanhSin(), activation_branch=SiLUId(), encoder=enc)


def piecewise_dgno() -> DGNO:
    """The example's piecewise DGNO (``build_dgno("piecewise", .)``)."""
    def dec(at=None, ab=None) -> MultiONet:
        return MultiONet(2, 128, [100] * 5, [100] * 5, activation_trunk=at or TanhSin(),
                         activation_branch=ab or TanhSin())

    return DGNO(MLPEncoder(GRID, (512, 256), 128, bounded=True), dec(), dec(SiLUSin(), SiLUId()),
                BernoulliLikelihood(5.0, 10.0), flux_decoders=(dec(), dec()))


def _best(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json")
    p.add_argument("--checkpoint", default=DEFAULT_CKPT,
                   help="trained MultiONet checkpoint of examples/darcy_neural_operators.py")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-centres", type=int, default=50)
    p.add_argument("--naive-steps", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sciml.pde import generate_darcy, solve_darcy

    n_test = 8 if args.quick else args.n_test
    rounds = 1 if args.quick else args.rounds
    data = generate_darcy("piecewise", n_test, GRID, seed=12345, progress=False)
    a, u, x = data.to_torch(torch.float32)

    # ---------------------------------------------------------------- operator
    model = supervised_multionet()
    source = "checkpoint"
    if os.path.exists(args.checkpoint) and not args.quick:
        load(args.checkpoint, model)
    else:
        source = "trained here (brief)"
        tr = generate_darcy("piecewise", 16 if args.quick else 200, GRID, seed=54321,
                            progress=False)
        ta, tu, _ = tr.to_torch(torch.float32)
        model.encoder.fit_normalization(ta)
        fit(model, SupervisedObjective(x), (ta, tu),
            TrainOptions(epochs=2 if args.quick else 30, batch_size=8 if args.quick else 50),
            progress=False)
    model.eval()

    def predict():
        with torch.no_grad():
            return model(a, x)

    pred = predict()
    err = float(relative_l2(pred, u).mean())
    t_op = _best(predict, rounds)
    a_np = data.coeff
    refine = int(data.attrs.get("refine", 3))
    t_fvr = _best(lambda: solve_darcy(a_np, 10.0, refine=refine), rounds)
    t_fv1 = _best(lambda: solve_darcy(a_np, 10.0, refine=1), rounds)

    # ---------------------------------------------------------------- shared trunk
    torch.manual_seed(0)
    dg = piecewise_dgno()
    dg.encoder.fit_normalization(a)
    batch = a[: min(50, n_test)]
    nc = 4 if args.quick else args.n_centres
    base = DGNOLossOptions(weak=WeakFormOptions(n_centres=nc))
    gen = torch.Generator().manual_seed(0)

    def step(opts: DGNOLossOptions):
        loss, _ = dgno_loss(dg, batch, opts, generator=gen)
        dg.zero_grad(set_to_none=True)
        loss.backward()

    step(base)  # warm-up
    t_shared = _best(lambda: step(base), max(rounds, 2))
    naive = DGNOLossOptions(weak=base.weak, shared_trunk=False)
    t_naive = _best(lambda: step(naive), 1 if args.quick else args.naive_steps)
    steps_per_epoch = 1000 // 50

    res = {
        "meta": {"torch": torch.__version__, "threads": args.threads, "rounds": rounds,
                 "quick": args.quick, "platform": platform.platform(), "n_test": n_test,
                 "operator": source, "batch": int(batch.shape[0]), "n_centres": nc},
        "operator_seconds": t_op,
        "solver_seconds_data_refine": t_fvr,
        "solver_refine": refine,
        "solver_seconds_refine1": t_fv1,
        "speedup_vs_solver": t_fvr / t_op,
        "speedup_vs_solver_refine1": t_fv1 / t_op,
        "operator_rel_l2_vs_solver": err,
        "dgno_step_seconds_shared_trunk": t_shared,
        "dgno_step_seconds_naive": t_naive,
        "dgno_epoch_seconds_shared_trunk": t_shared * steps_per_epoch,
        "dgno_epoch_seconds_naive": t_naive * steps_per_epoch,
        "shared_trunk_speedup": t_naive / t_shared,
    }
    print(f"prediction of {n_test} solutions: operator {t_op * 1e3:.1f} ms, solver refine {refine} "
          f"{t_fvr:.2f} s ({res['speedup_vs_solver']:.0f}x), refine 1 {t_fv1:.2f} s "
          f"({res['speedup_vs_solver_refine1']:.0f}x); operator rel L2 {err:.4f} ({source})")
    print(f"DGNO step (batch {batch.shape[0]}, {nc} centres x 25 points): shared trunk "
          f"{t_shared:.2f} s, naive {t_naive:.2f} s ({res['shared_trunk_speedup']:.1f}x); per "
          f"epoch {res['dgno_epoch_seconds_shared_trunk']:.0f} s vs "
          f"{res['dgno_epoch_seconds_naive']:.0f} s")
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
