"""Stokes flow around a cylinder with neural operators: supervised MultiONet.
==========================================================================

:math:`-\\mu\\Delta\\mathbf u + \\nabla p = 0`, :math:`\\nabla\\cdot\\mathbf u = 0` on
:math:`(0,2)\\times(0,1)` minus the disk of radius 0.1 at :math:`(0.5, 0.6)`, :math:`\\mu = 0.01`,
inflow :math:`a(y) = 2\\sin(\\pi y)(1 + \\sin\\beta_1 y + \\cos\\beta_2 y)`, no slip on walls and
cylinder, do-nothing outflow (the DGNO benchmark of Zang & Koutsourelakis, arXiv:2502.06250).
Data: :func:`sciml.pde.generate_stokes` (Taylor–Hood P2/P1 with scikit-fem on a 1708-node gmsh
mesh), cached as HDF5.

Model (``--models multionet``): one supervised MultiONet per output field (``u``, ``v``, ``p``),
branch = the inflow profile at 256 points, trunk = the node coordinates, [100]×5. Results are
keyed ``rel_l2.multionet.<field>`` (mean relative L2 error over the test set at the mesh nodes);
figures (reference | prediction | error on the mesh) go to ``--fig-dir``.

Not here (yet): the label-free DGNO for Stokes, which needs a stream-function decoder with
second derivatives and stress decoders (reference notes §2); see the docs.

Usage::

    python examples/stokes_neural_operators.py --json bench_output/stokes.json
    python examples/stokes_neural_operators.py --quick --json /tmp/s.json   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from sciml.neural_operators import (
    MultiONet,
    SiLU,
    SupervisedObjective,
    TanhSin,
    TrainOptions,
    evaluate,
    fit,
)

ALL_MODELS = ("multionet",)
FIELDS = ("u", "v", "p")


def load_data(n: int, cache_dir: str, h: float, seed: int = 0):
    from sciml.pde import generate_stokes, load_stokes, save_stokes

    path = os.path.join(cache_dir, f"stokes_n{n}_h{h:g}_s{seed}.h5")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        save_stokes(generate_stokes(n, seed=seed, h=h, progress=True,
                                    checkpoint=path + ".partial.npz"), path)
    return load_stokes(path)


def figure(data, field, ref, pred, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    tri = Triangulation(data.gridx[:, 0], data.gridx[:, 1], data.cells)
    fig, ax = plt.subplots(1, 3, figsize=(15, 2.8), constrained_layout=True)
    for k, (title, val, cmap) in enumerate((
            (f"reference {field}", ref, "viridis"), (f"MultiONet {field}", pred, "viridis"),
            ("|error|", (pred - ref).abs(), "magma"))):
        lim = dict(vmin=float(ref.min()), vmax=float(ref.max())) if k < 2 else {}
        im = ax[k].tripcolor(tri, val.numpy(), shading="gouraud", cmap=cmap, **lim)
        ax[k].set(title=title, aspect="equal")
        fig.colorbar(im, ax=ax[k])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_results(res, path):
    res["rel_l2"] = {m: {f: r["rel_l2"] for f, r in runs.items()}
                     for m, runs in res["runs"].items()}
    res["seconds"] = {m: {f: r["seconds"] for f, r in runs.items()}
                      for m, runs in res["runs"].items()}
    if not path:
        return
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(res, fh, indent=1)
    os.replace(tmp, path)


def run_multionet(args, res):
    n_tr, n_va, n_te = args.sizes
    data = load_data(n_tr + n_va + n_te, args.cache_dir, args.h)
    a = torch.tensor(data.a, dtype=torch.float32)
    x = torch.tensor(data.gridx, dtype=torch.float32)
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, None)
    runs = res["runs"].setdefault("multionet", {})
    for field in FIELDS:
        settings = {"epochs": args.epochs, "batch": args.batch, "sizes": list(args.sizes),
                    "width": args.width, "seed": args.seed, "h": args.h}
        if runs.get(field, {}).get("settings") == settings:
            continue
        u = torch.tensor(getattr(data, field), dtype=torch.float32)
        torch.manual_seed(args.seed)
        model = MultiONet(2, a.shape[1], [args.width] * 5, [args.width] * 5,
                          activation_trunk=TanhSin(), activation_branch=SiLU())
        opts = TrainOptions(epochs=args.epochs, batch_size=args.batch, lr=1e-3,
                            step_size=max(1, args.epochs // 4), gamma=0.5, seed=args.seed,
                            validate_every=max(1, min(10, args.epochs)))
        ckpt = os.path.join(args.run_dir, f"stokes_multionet_{field}_e{args.epochs}_"
                                          f"w{args.width}_s{args.seed}.pt")
        t0 = time.perf_counter()
        result = fit(model, SupervisedObjective(x), (a[tr], u[tr]), opts,
                     validation=(a[va], u[va], x), checkpoint=ckpt, progress=args.progress)
        secs = time.perf_counter() - t0
        err = float(evaluate(model, a[te], u[te], x).mean())
        runs[field] = {"settings": settings, "rel_l2": err, "val_rel_l2": result.best_val,
                       "best_epoch": result.best_epoch, "seconds": secs,
                       "n_parameters": model.n_parameters()}
        print(f"multionet {field}: test rel L2 {err:.4f}, {secs:.0f} s", flush=True)
        if args.fig_dir:
            with torch.no_grad():
                pred = model(a[te][:1], x)[0]
            figure(data, field, u[te][0], pred,
                   os.path.join(args.fig_dir, f"stokes_multionet_{field}.png"))
        save_results(res, args.json)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="results file")
    p.add_argument("--models", default="multionet")
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch", type=int, default=25)
    p.add_argument("--width", type=int, default=100)
    p.add_argument("--h", type=float, default=0.04, help="mesh size (0.04: 1708 nodes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", default="bench_output/stokes_data")
    p.add_argument("--run-dir", default="bench_output/stokes_runs")
    p.add_argument("--fig-dir", default="bench_output/figures")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 6/2/2 samples on a coarse mesh, 1 epoch, width 16")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_train, args.n_val, args.n_test = 6, 2, 2
        args.epochs, args.width, args.batch, args.h = 1, 16, 3, 0.15
        for key, prefix in (("cache_dir", "stokes_quick_"), ("run_dir", "stokes_runs_"),
                            ("fig_dir", "stokes_figs_")):
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, tempfile.mkdtemp(prefix=prefix))
    args.sizes = (args.n_train, args.n_val, args.n_test)
    models = [m for m in args.models.split(",") if m]
    bad = sorted(set(models) - set(ALL_MODELS))
    if bad:
        p.error(f"unknown models {bad}; choose from {ALL_MODELS} (the Stokes DGNO is not "
                f"implemented yet)")
    res = {"runs": {}}
    if args.json and os.path.exists(args.json):
        with open(args.json) as fh:
            res = json.load(fh)
    run_multionet(args, res)
    save_results(res, args.json)
    print(json.dumps(res["rel_l2"], indent=1))
    return res


if __name__ == "__main__":
    main()
