"""Darcy flow with neural operators: supervised MultiONet/DeepONet, label-free DGNO, PI baseline.
=================================================================================================

Reproduces the Darcy experiments of Zang & Koutsourelakis (DGNO, J. Comput. Phys. 2025,
arXiv:2502.06250) on CPU-sized settings: :math:`-\\nabla\\cdot(a\\nabla u) = 10` on
:math:`[0,1]^2`, :math:`u = 0` on the boundary, 29 × 29 nodes, 1000 train / 200 validation /
200 test fields per case (``piecewise``: two-phase :math:`a\\in\\{5,10\\}`; ``smooth``:
log-normal :math:`a`), data from :mod:`sciml.pde` cached as HDF5.

Models (``--models``, comma separated, run in this order and each resumable):

``multionet``, ``deeponet``
    Supervised (labelled u), CNN encoder → [100]×5 branch/trunk; DeepONet has the same stacks.
``multionet_w1``, ``multionet_sum1``
    Ablations for the MultiONet-vs-DeepONet question: ``w_k`` initialised at 1 (arXiv v1) and a
    single summed layer with ``w`` initialised at 0.
``dgno``
    No solution labels: MLP (piecewise) / CNN (smooth) encoder to β ∈ (−1,1)^128, mixed flux
    weak form (piecewise) or primal weak form (smooth), validation on labelled u.
``pi``
    Strong-form PI-MultiONet (no labels; expected to fail on piecewise).
``inverse``
    a from 100 noisy sensors (25 dB) with the trained DGNO, on ``--inverse-instances`` test
    fields.
``ood``
    Trained MultiONet and DGNO on fields with a shorter correlation length (0.2 vs 1/3).

Each finished (model, case, seed) is written to ``--json`` at once (atomic) and skipped when the
script is rerun with the same settings; checkpoints live in ``--run-dir`` (training resumes from
them). ``rel_l2[model][case]`` is the mean test relative L2 error over the seeds; the checkpoint is
the best *validation* epoch.

Usage::

    python examples/darcy_neural_operators.py --json out.json                       # everything
    python examples/darcy_neural_operators.py --models multionet,deeponet --cases piecewise \\
        --seeds 0,1,2 --json out.json
    python examples/darcy_neural_operators.py --models dgno --cases piecewise --dgno-epochs 600 \\
        --json long.json   # the documented longer DGNO run

Measured numbers and the comparison with the paper are in ``docs/guide/neural_operators.rst``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from sciml.neural_operators import (
    DGNO,
    CNNEncoder,
    DeepONet,
    DGNOLossOptions,
    DGNOObjective,
    Interpolation,
    InverseOptions,
    MLPEncoder,
    MultiONet,
    PhysicsInformedOperator,
    SiLU,
    SiLUId,
    SiLUSin,
    StrongFormObjective,
    StrongFormOptions,
    SupervisedObjective,
    TanhSin,
    TrainOptions,
    WeakFormOptions,
    add_noise_snr,
    darcy_dgno,
    evaluate,
    fit,
    invert_darcy,
    load,
)
from sciml_inverse import write_json

GRID = 29
N_TRAIN, N_VAL, N_TEST = 1000, 200, 200
DATA = {  # name: (kind, n, seed, field parameters)
    "piecewise": ("piecewise", 1400, 0, {}),
    "smooth": ("smooth", 1400, 1, {}),
    "piecewise_ood": ("piecewise", 200, 2, {"length_scale": 0.2}),
    "smooth_ood": ("smooth", 200, 3, {"length_scale": 0.2}),
}
SUPERVISED = ("multionet", "deeponet", "multionet_w1", "multionet_sum1")
ALL_MODELS = (*SUPERVISED, "dgno", "pi", "inverse", "ood")


# ------------------------------------------------------------------------------ data
def load_case(name: str, cache_dir: str, n: int | None = None):
    """The cached data set ``name`` (generated with sciml.pde on first use)."""
    from sciml.pde import generate_darcy, load_darcy, save_darcy

    kind, n_default, seed, kw = DATA[name]
    n = n_default if n is None else n
    path = os.path.join(cache_dir, f"{name}_n{n}_g{GRID}_s{seed}.h5")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        data = generate_darcy(kind, n, GRID, seed=seed, workers=1, progress=True, **kw)
        save_darcy(data, path)
    return load_darcy(path)


def splits(name: str, cache_dir: str, sizes: tuple[int, int, int] = (N_TRAIN, N_VAL, N_TEST)):
    """Train / validation / test tensors ``(a, u)`` and the node coordinates."""
    n_tr, n_va, n_te = sizes
    full = sizes == (N_TRAIN, N_VAL, N_TEST)
    a, u, x = load_case(name, cache_dir, None if full else sum(sizes)).to_torch(torch.float32)
    tr = slice(0, n_tr)
    va = slice(n_tr, n_tr + n_va)
    te = slice(n_tr + n_va, n_tr + n_va + n_te)
    return (a[tr], u[tr]), (a[va], u[va]), (a[te], u[te]), x


# ------------------------------------------------------------------------------ models
def build_supervised(model: str, case: str, seed: int) -> MultiONet | DeepONet:
    torch.manual_seed(seed)
    enc = CNNEncoder(GRID, channels=(32, 64), hidden=(), out_size=128)
    act_t, act_b = (TanhSin(), SiLUId()) if case == "piecewise" else (SiLUSin(), SiLU())
    kw = dict(activation_trunk=act_t, activation_branch=act_b, encoder=enc)
    if model == "deeponet":
        return DeepONet(2, 128, [100] * 5, [100] * 5, **kw)
    sum_layers = 1 if model == "multionet_sum1" else 4
    w0 = 1.0 if model == "multionet_w1" else 0.0
    return MultiONet(2, 128, [100] * 5, [100] * 5, sum_layers=sum_layers, weight_init=w0, **kw)


def build_dgno(case: str, seed: int) -> DGNO:
    torch.manual_seed(seed)
    return darcy_dgno(case, grid=GRID)


def dgno_loss_options(case: str, n_centres: int, flux_weight: float = 1.0,
                      top_k: int | None = None) -> DGNOLossOptions:
    weak = WeakFormOptions(n_centres=n_centres, radius=1e-4, quadrature_points=7)
    if case == "piecewise":
        return DGNOLossOptions(weak=weak, data_weight=1.0, pde_weight=1.0,
                               flux_weight=flux_weight, interpolation=Interpolation.NEAREST,
                               top_k=top_k)
    return DGNOLossOptions(weak=weak, data_weight=0.25, pde_weight=1.0,
                           interpolation=Interpolation.BILINEAR, top_k=top_k)


def build_pi(seed: int) -> PhysicsInformedOperator:
    torch.manual_seed(seed)
    enc = MLPEncoder(GRID, (256,), 128, bounded=False)
    return PhysicsInformedOperator(MultiONet(2, 128, [100] * 5, [100] * 5,
                                             activation_trunk=TanhSin(),
                                             activation_branch=TanhSin(), encoder=enc))


def schedule(epochs: int, lr: float, seed: int, *, weight_decay: float = 0.0,
             validate_every: int = 5, batch_size: int = 50) -> TrainOptions:
    return TrainOptions(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                        step_size=max(1, epochs // 4), gamma=0.5, seed=seed,
                        validate_every=validate_every)


# ------------------------------------------------------------------------------ results file
def load_results(path: str | None) -> dict:
    if path and os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    return {"runs": {}, "rel_l2": {}, "seconds": {}}


def save_results(res: dict, path: str | None) -> None:
    # summary: mean over seeds per model and case
    res["rel_l2"], res["seconds"] = {}, {}
    for _key, run in res["runs"].items():
        model, case = run["model"], run["case"]
        if "rel_l2" not in run:
            continue
        res["rel_l2"].setdefault(model, {}).setdefault(case, []).append(run["rel_l2"])
        res["seconds"].setdefault(model, {}).setdefault(case, []).append(run["seconds"])
    for table in (res["rel_l2"], res["seconds"]):
        for model in table:
            for case, vals in table[model].items():
                table[model][case] = sum(vals) / len(vals)
    if not path:
        return
    write_json(path, res)


# ------------------------------------------------------------------------------ runs
def train_or_load(model, objective, train, val, x, opts, ckpt, args):
    """Train (resuming from ``ckpt``); return the result and the summed epoch seconds.

    With ``--stop-after N`` the run stops after epoch N and the best validation weights so far
    are loaded from the checkpoint (an honest partial run, recorded in the settings)."""
    result = fit(model, objective, train, opts, validation=(val[0], val[1], x), checkpoint=ckpt,
                 progress=args.progress, stop_after=args.stop_after)
    if result.epochs_done < opts.epochs:
        load(ckpt, model)  # the best validation weights so far
    return result, float(sum(h["seconds"] for h in result.history))


def _stop(args) -> dict:
    return {} if args.stop_after is None else {"stop_after": args.stop_after}


def run_supervised(name, case, seed, args, res):
    key = f"{name}/{case}/{seed}"
    epochs = args.epochs or args.sup_epochs
    settings = {"epochs": epochs, "lr": 1e-3, "batch": 50, **_stop(args)}
    if res["runs"].get(key, {}).get("settings") == settings:
        return
    (a, u), val, (at, ut), x = splits(case, args.cache_dir, args.sizes)
    model = build_supervised(name, case, seed)
    model.encoder.fit_normalization(a)
    ckpt = os.path.join(args.run_dir, f"{name}_{case}_s{seed}_e{epochs}.pt")
    result, secs = train_or_load(model, SupervisedObjective(x), (a, u), val, x,
                                 schedule(epochs, 1e-3, seed), ckpt, args)
    err = float(evaluate(model, at, ut, x).mean())
    res["runs"][key] = {"model": name, "case": case, "seed": seed, "settings": settings,
                        "rel_l2": err, "val_rel_l2": result.best_val,
                        "best_epoch": result.best_epoch, "seconds": secs,
                        "n_parameters": model.n_parameters(),
                        "w": (model.weights.tolist() if isinstance(model, MultiONet) else None),
                        "checkpoint": ckpt}
    print(f"{key}: test rel L2 {err:.4f} (val {result.best_val:.4f} @ {result.best_epoch}), "
          f"{secs:.0f} s", flush=True)
    save_results(res, args.json)


def _dgno_variant(args) -> dict:
    """The DGNO settings that differ from the defaults (flux weight, top-k term, learning rate)."""
    out: dict = {}
    if args.flux_weight != 1.0:
        out["flux_weight"] = args.flux_weight
    if args.dgno_top_k is not None:
        out["top_k"] = args.dgno_top_k
    if args.dgno_lr != 1e-3:
        out["lr"] = args.dgno_lr
    return out


def _dgno_tag(args) -> str:
    """``_fw<w>_topk<k>_lr<lr>`` for the non-default settings ("" for the defaults)."""
    short = {"flux_weight": "fw", "top_k": "topk", "lr": "lr"}
    return "".join(f"_{short[k]}{v:g}" for k, v in _dgno_variant(args).items())


def _dgno_name(args) -> str:
    """``dgno`` + :func:`_dgno_tag` (non-default settings are kept apart in the JSON)."""
    return "dgno" + _dgno_tag(args)


def trained_dgno(case, seed, args):
    (a, _), val, _, x = splits(case, args.cache_dir, args.sizes)
    model = build_dgno(case, seed)
    model.encoder.fit_normalization(a)
    epochs = args.epochs or args.dgno_epochs
    ckpt = os.path.join(args.run_dir,
                        f"dgno_{case}_s{seed}_e{epochs}_c{args.n_centres}{_dgno_tag(args)}.pt")
    opts = schedule(epochs, args.dgno_lr, seed, weight_decay=1e-4, validate_every=5)
    objective = DGNOObjective(dgno_loss_options(case, args.n_centres, args.flux_weight,
                                                args.dgno_top_k))
    result, secs = train_or_load(model, objective, (a,), val, x, opts, ckpt, args)
    return model, result, secs, epochs, ckpt


def run_dgno(case, seed, args, res):
    name = _dgno_name(args)
    key = f"{name}/{case}/{seed}"
    epochs = args.epochs or args.dgno_epochs
    settings = {"epochs": epochs, "lr": 1e-3, "batch": 50, "n_centres": args.n_centres,
                **_stop(args), "radius": 1e-4, **_dgno_variant(args), "quadrature": 25}
    if res["runs"].get(key, {}).get("settings") == settings:
        return
    model, result, secs, _, ckpt = trained_dgno(case, seed, args)
    _, _, (at, ut), x = splits(case, args.cache_dir, args.sizes)
    err = float(evaluate(model, at, ut, x).mean())
    with torch.no_grad():
        rec = model.reconstruct(at, samples=0)
        a_err = float(((rec - at).flatten(1).norm(dim=1) / at.flatten(1).norm(dim=1)).mean())
    hist = result.history
    res["runs"][key] = {"model": name, "case": case, "seed": seed, "settings": settings,
                        "rel_l2": err, "a_reconstruction_rel_l2": a_err,
                        "val_rel_l2": result.best_val, "best_epoch": result.best_epoch,
                        "seconds": secs, "n_parameters": model.n_parameters(),
                        "nll_first_last": [hist[0].get("nll"), hist[-1].get("nll")],
                        "residual_first_last": [hist[0].get("residual"),
                                                hist[-1].get("residual")],
                        "checkpoint": ckpt}
    print(f"{key}: test rel L2 {err:.4f}, a recon {a_err:.4f}, {secs:.0f} s", flush=True)
    save_results(res, args.json)


def run_pi(case, seed, args, res):
    key = f"pi/{case}/{seed}"
    epochs = args.epochs or args.pi_epochs
    settings = {"epochs": epochs, "lr": 1e-3, "batch": 50, "n_points": 400, **_stop(args)}
    if res["runs"].get(key, {}).get("settings") == settings:
        return
    (a, _), val, (at, ut), x = splits(case, args.cache_dir, args.sizes)
    model = build_pi(seed)
    model.net.encoder.fit_normalization(a)
    ckpt = os.path.join(args.run_dir, f"pi_{case}_s{seed}_e{epochs}.pt")
    result, secs = train_or_load(model, StrongFormObjective(StrongFormOptions(n_points=400)),
                                 (a,), val, x, schedule(epochs, 1e-3, seed), ckpt, args)
    err = float(evaluate(model, at, ut, x).mean())
    res["runs"][key] = {"model": "pi", "case": case, "seed": seed, "settings": settings,
                        "rel_l2": err, "val_rel_l2": result.best_val,
                        "best_epoch": result.best_epoch, "seconds": secs, "checkpoint": ckpt}
    print(f"{key}: test rel L2 {err:.4f}, {secs:.0f} s", flush=True)
    save_results(res, args.json)


def run_inverse(case, seed, args, res):
    from operators import PointSampling

    name = "inverse" + _dgno_name(args)[4:]
    key = f"{name}/{case}/{seed}"
    its = 500 if case == "piecewise" else 1000
    its = args.inverse_iterations or its
    settings = {"instances": args.inverse_instances, "sensors": 100, "snr_db": 25, **_stop(args),
                "iterations": its, "dgno_epochs": args.epochs or args.dgno_epochs,
                "n_centres": args.n_centres, **_dgno_variant(args)}
    if res["runs"].get(key, {}).get("settings") == settings:
        return
    model, *_ = trained_dgno(case, seed, args)
    _, _, (at, ut), x = splits(case, args.cache_dir, args.sizes)
    gen = torch.Generator().manual_seed(1000 + seed)
    interior = torch.tensor([k for k in range(GRID * GRID)
                             if 0 < k // GRID < GRID - 1 and 0 < k % GRID < GRID - 1])
    opts = InverseOptions(steps=its, step_size=50 if case == "piecewise" else 250,
                          gamma=0.5 if case == "piecewise" else 0.6,
                          loss=dgno_loss_options(case, args.n_centres, args.flux_weight,
                                                args.dgno_top_k), seed=seed)
    per = []
    t0 = time.perf_counter()
    for i in range(args.inverse_instances):
        idx = interior[torch.randperm(len(interior), generator=gen)[:100]]
        sensors = PointSampling(x[idx], (GRID, GRID), extent=((0.0, 1.0), (0.0, 1.0)))
        y = add_noise_snr(sensors(ut[i][None])[0], 25.0, generator=gen)
        out = invert_darcy(model, sensors, y, opts)
        a_true = at[i]
        ea = float((out.coefficient - a_true).norm() / a_true.norm())
        eu = float((out.solution - ut[i]).norm() / ut[i].norm())
        item = {"a_rel_l2": ea, "u_rel_l2": eu, "seconds": out.seconds}
        if out.probabilities is not None:
            phase = (out.probabilities > 0.5) == (a_true > 7.5)
            item["phase_accuracy"] = float(phase.float().mean())
        per.append(item)
        print(f"{key} instance {i}: {item}", flush=True)
    mean = {k: sum(p[k] for p in per) / len(per) for k in per[0]}
    res["runs"][key] = {"model": name, "case": case, "seed": seed, "settings": settings,
                        "rel_l2": mean["u_rel_l2"], "a_rel_l2": mean["a_rel_l2"],
                        "phase_accuracy": mean.get("phase_accuracy"), "instances": per,
                        "seconds": time.perf_counter() - t0}
    save_results(res, args.json)


def run_ood(case, seed, args, res):
    key = f"ood/{case}/{seed}"
    settings = {"length_scale": 0.2, "sup_epochs": args.epochs or args.sup_epochs,
                "dgno_epochs": args.epochs or args.dgno_epochs}
    if res["runs"].get(key, {}).get("settings") == settings:
        return
    ao, uo, x = load_case(f"{case}_ood", args.cache_dir,
                          None if args.sizes == (N_TRAIN, N_VAL, N_TEST) else args.sizes[2]
                          ).to_torch(torch.float32)
    out = {}
    for name in ("multionet", "dgno"):
        run = res["runs"].get(f"{name}/{case}/{seed}")
        if run is None or not os.path.exists(run["checkpoint"]):
            continue
        model = build_supervised(name, case, seed) if name == "multionet" else build_dgno(case,
                                                                                          seed)
        load(run["checkpoint"], model)
        out[name] = {"in_distribution": run["rel_l2"],
                     "ood": float(evaluate(model, ao, uo, x).mean())}
    if not out:
        print(f"{key}: no trained multionet/dgno for {case}; skipped", flush=True)
        return
    res["runs"][key] = {"model": "ood", "case": case, "seed": seed, "settings": settings,
                        "models": out, "seconds": 0.0}
    print(f"{key}: {out}", flush=True)
    save_results(res, args.json)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write results (partial results as runs finish)")
    p.add_argument("--models", default=",".join(ALL_MODELS))
    p.add_argument("--cases", default="piecewise,smooth")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=None, help="override every training length")
    p.add_argument("--sup-epochs", type=int, default=150)
    p.add_argument("--dgno-epochs", type=int, default=120)
    p.add_argument("--dgno-top-k", type=int, default=None,
                   help="add the sum of the K largest squared PDE residuals of a batch to the "
                        "DGNO loss (the reference's smooth-Darcy term: 1000); default: none")
    p.add_argument("--dgno-lr", type=float, default=1e-3,
                   help="DGNO AdamW learning rate (reference: 5e-4); default 1e-3")
    p.add_argument("--pi-epochs", type=int, default=60)
    p.add_argument("--inverse-instances", type=int, default=2)
    p.add_argument("--n-centres", type=int, default=50,
                   help="test functions per DGNO/inverse step (reference: 100)")
    p.add_argument("--cache-dir", default="bench_output/darcy_data")
    p.add_argument("--run-dir", default="bench_output/darcy_runs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop every training after this epoch (resumable; the best validation "
                        "weights so far are evaluated and the partial run is recorded)")
    p.add_argument("--flux-weight", type=float, default=1.0,
                   help="weight of |s - a grad u|^2 in the mixed DGNO loss (reference: 1)")
    p.add_argument("--inverse-iterations", type=int, default=None,
                   help="override the reference's 500 (piecewise) / 1000 (smooth)")
    p.add_argument("--progress", action="store_true", help="tqdm bars")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 12/4/4 fields, 1 epoch, 4 centres, 3 inverse iterations, "
                        "data cached in a temporary folder unless --cache-dir is given")
    p.add_argument("--merge", nargs="*", default=[],
                   help="fold the runs of other results files (e.g. from parallel jobs) in first")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.sizes = (N_TRAIN, N_VAL, N_TEST)
    if args.quick:
        args.sizes = (12, 4, 4)
        args.epochs = args.epochs or 1
        args.n_centres = 4
        args.inverse_iterations = args.inverse_iterations or 3
        args.inverse_instances = 1
        if args.cache_dir == p.get_default("cache_dir"):
            args.cache_dir = tempfile.mkdtemp(prefix="darcy_quick_")
        if args.run_dir == p.get_default("run_dir"):
            args.run_dir = tempfile.mkdtemp(prefix="darcy_quick_runs_")
    models = [m for m in args.models.split(",") if m]
    bad = sorted(set(models) - set(ALL_MODELS))
    if bad:
        p.error(f"unknown models {bad}; choose from {ALL_MODELS}")
    if args.dgno_top_k is not None and args.dgno_top_k < 1:
        p.error(f"--dgno-top-k must be >= 1, got {args.dgno_top_k}")
    if not args.dgno_lr > 0:
        p.error(f"--dgno-lr must be > 0, got {args.dgno_lr}")
    cases = [c for c in args.cases.split(",") if c]
    if set(cases) - {"piecewise", "smooth"}:
        p.error("cases must be piecewise and/or smooth")
    seeds = [int(s) for s in args.seeds.split(",")]
    res = load_results(args.json)
    for other in args.merge:
        res["runs"].update(load_results(other)["runs"])
    for model in models:
        for case in cases:
            for seed in seeds:
                if model in SUPERVISED:
                    run_supervised(model, case, seed, args, res)
                elif model == "dgno":
                    run_dgno(case, seed, args, res)
                elif model == "pi":
                    if case == "piecewise":
                        run_pi(case, seed, args, res)
                elif model == "inverse":
                    run_inverse(case, seed, args, res)
                elif model == "ood":
                    run_ood(case, seed, args, res)
    save_results(res, args.json)
    print(json.dumps(res["rel_l2"], indent=1))
    return res


if __name__ == "__main__":
    main()
