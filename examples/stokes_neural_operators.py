"""Stokes flow around a cylinder with neural operators: supervised MultiONet and label-free DGNO.
================================================================================================

:math:`-\\mu\\Delta\\mathbf u + \\nabla p = 0`, :math:`\\nabla\\cdot\\mathbf u = 0` on
:math:`(0,2)\\times(0,1)` minus the disk of radius 0.1 at :math:`(0.5, 0.6)`, :math:`\\mu = 0.01`,
inflow :math:`a(y) = 2\\sin(\\pi y)(1 + \\sin\\beta_1 y + \\cos\\beta_2 y)`, no slip on walls and
cylinder, do-nothing outflow (the DGNO benchmark of Zang & Koutsourelakis, arXiv:2502.06250).
Data: :func:`sciml.pde.generate_stokes` (Taylor–Hood P2/P1 with scikit-fem on a 1708-node gmsh
mesh), cached as HDF5.

Models (``--models``, comma separated):

``multionet``
    Supervised: one MultiONet per output field (``u``, ``v``, ``p``), branch = the inflow
    profile at 256 points, trunk = the node coordinates, [100]×5.
``dgno``
    No solution labels: MLP encoder of the inflow profile to β ∈ (−1, 1)^128 and MultiONet
    decoders of the stream function ψ (:math:`u = \\psi_y`, :math:`v = -\\psi_x`: exactly
    divergence-free; the velocity gradient is the Hessian of ψ from the shared-trunk jet) and
    the pressure. Trained on weak momentum residuals
    :math:`\\overline{\\sigma\\nabla\\phi_j}` (Wendland test functions, centres outside the
    cylinder) and soft boundary conditions: inflow ``u = a``, ``v = 0`` (the likelihood of
    ``a``), no slip on walls and cylinder, the data's do-nothing outflow
    :math:`\\mu\\partial_x\\mathbf u - p\\,\\mathbf e_x = 0`. ``--dgno-form primal``
    (default): :math:`\\sigma = \\mu\\nabla\\mathbf u - p\\mathbf I` (the solver's form);
    ``--dgno-form mixed`` (the reference's): decoders of the symmetric stress
    :math:`(s_{11}, s_{22}, s_{12})` as well, and the four pointwise constitutive residuals of
    :math:`\\sigma = -p\\mathbf I + \\mu(\\nabla\\mathbf u + \\nabla\\mathbf u^\\top)`,
    :math:`p = -\\operatorname{tr}\\sigma/2`. Validated on labelled fields (model selection
    only).

Results are keyed ``rel_l2.<model>.<field>`` (mean relative L2 error over the test set at the
mesh nodes); figures (reference | prediction | error on the mesh) go to ``--fig-dir``.

Usage::

    python examples/stokes_neural_operators.py --json bench_output/stokes.json
    python examples/stokes_neural_operators.py --models dgno --dgno-epochs 30 \\
        --json bench_output/stokes.json
    python examples/stokes_neural_operators.py --quick --json /tmp/s.json   # smoke test

Measured numbers are in ``docs/guide/neural_operators.rst``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time

import torch
from torch import nn

from sciml.neural_operators import (
    AbstractNeuralOperator,
    AbstractObjective,
    Box,
    MLPEncoder,
    MultiONet,
    SiLU,
    SupervisedObjective,
    TanhSin,
    TrainOptions,
    WeakFormOptions,
    evaluate,
    fit,
    relative_l2,
    sample_test_functions,
)
from sciml_inverse import atomic_path, write_json

ALL_MODELS = ("multionet", "dgno")
FIELDS = ("u", "v", "p")


def load_data(n: int, cache_dir: str, h: float, seed: int = 0):
    from sciml.pde import generate_stokes, load_stokes, save_stokes

    path = os.path.join(cache_dir, f"stokes_n{n}_h{h:g}_s{seed}.h5")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        save_stokes(generate_stokes(n, seed=seed, h=h, progress=True,
                                    checkpoint=path + ".partial.npz"), path)
    return load_stokes(path)


def figure(data, field, ref, pred, path, model="MultiONet"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.tri import Triangulation

    tri = Triangulation(data.gridx[:, 0], data.gridx[:, 1], data.cells)
    fig, ax = plt.subplots(1, 3, figsize=(15, 2.8), constrained_layout=True)
    for k, (title, val, cmap) in enumerate((
            (f"reference {field}", ref, "viridis"), (f"{model} {field}", pred, "viridis"),
            ("|error|", (pred - ref).abs(), "magma"))):
        lim = dict(vmin=float(ref.min()), vmax=float(ref.max())) if k < 2 else {}
        im = ax[k].tripcolor(tri, val.numpy(), shading="gouraud", cmap=cmap, **lim)
        ax[k].set(title=title, aspect="equal")
        fig.colorbar(im, ax=ax[k])
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def save_results(res, path):
    res["rel_l2"] = {m: {f: r["rel_l2"] for f, r in runs.items()}
                     for m, runs in res["runs"].items()}
    res["seconds"] = {m: {f: r["seconds"] for f, r in runs.items()}
                      for m, runs in res["runs"].items()}
    if not path:
        return
    write_json(path, res)


def run_multionet(args, res):
    n_tr, n_va, n_te = args.sizes
    data = load_data(n_tr + n_va + n_te, args.cache_dir, args.h)
    a = torch.tensor(data.a, dtype=torch.float32)
    x = torch.tensor(data.gridx, dtype=torch.float32)
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, None)
    runs = res["runs"].setdefault("multionet", {})
    for field in args.fields:
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


# ------------------------------------------------------------------------------ DGNO
# the geometry and viscosity of sciml.pde.solve_stokes / generate_stokes
MU = 0.01
CENTRE, RADIUS = (0.5, 0.6), 0.1
LENGTH, HEIGHT = 2.0, 1.0
BOX = Box((0.0, 0.0), (LENGTH, HEIGHT), ("x", "y"))


STRESS = ("s11", "s22", "s12")


class StokesDGNO(AbstractNeuralOperator):
    """Encoder of the inflow profile to β and MultiONet decoders of the stream function ψ and
    the pressure p; with ``mixed=True`` also of the symmetric stress (s11, s22, s12) (the
    reference's layout).

    The velocity is :math:`u = \\psi_y`, :math:`v = -\\psi_x`, divergence-free by
    construction; its gradient is the Hessian of ψ from the shared-trunk jet
    (``MultiONet.jet(..., hessian=True)``). ``forward(a, x)`` returns ``u``, ``v``, ``p`` side
    by side, ``(B, 3N)`` (validation compares them with the labelled ``[u, v, p]``);
    :meth:`fields` returns them apart.
    """

    def __init__(self, n_inflow: int, width: int, latent: int = 128, *,
                 mixed: bool = False) -> None:
        super().__init__()
        self.mixed = bool(mixed)
        self.encoder = MLPEncoder(n_inflow, (256, 128), latent, bounded=True, ndim=1)
        self.decoders = nn.ModuleDict({
            f: MultiONet(2, latent, [width] * 5, [width] * 5, activation_trunk=TanhSin(),
                         activation_branch=TanhSin())
            for f in ("psi", "p", *(STRESS if mixed else ()))})

    def velocity(self, beta, x, *, gradient: bool = False):
        """``u, v`` ``(B, N)`` at shared points ``x`` ``(N, 2)``, and with ``gradient`` their
        gradients ``∇u, ∇v`` ``(B, N, 2)`` (else None)."""
        jet = self.decoders["psi"].jet(beta, x, grad=True, hessian=gradient)
        u, v = jet.grad[..., 1], -jet.grad[..., 0]
        if not gradient:
            return u, v, None, None
        return u, v, jet.hessian[..., 1, :], -jet.hessian[..., 0, :]

    def fields(self, a, x):
        beta = self.encoder(a)
        u, v, _, _ = self.velocity(beta, x)
        return {"u": u, "v": v, "p": self.decoders["p"](beta, x)}

    def forward(self, a, x):
        return torch.cat(list(self.fields(a, x).values()), -1)


def boundary_points(y_inflow, n: int):
    """Walls (y = 0, 1), cylinder and outflow (x = 2) points; inflow = the data's nodes."""
    s = torch.linspace(0.0, 1.0, n)
    walls = torch.cat([torch.stack([LENGTH * s, torch.zeros(n)], -1),
                       torch.stack([LENGTH * s, torch.full((n,), HEIGHT)], -1)])
    th = 2 * math.pi * torch.arange(n // 2) / (n // 2)
    cyl = torch.stack([CENTRE[0] + RADIUS * torch.cos(th), CENTRE[1] + RADIUS * torch.sin(th)],
                      -1)
    y_out = torch.linspace(0.0, HEIGHT, n // 2 + 2)[1:-1]
    out = torch.stack([torch.full_like(y_out, LENGTH), y_out], -1)
    inflow = torch.stack([torch.zeros(len(y_inflow)), torch.as_tensor(y_inflow).float()], -1)
    return {"noslip": torch.cat([walls, cyl]), "outflow": out, "inflow": inflow}


class StokesWeakObjective(AbstractObjective):
    """Weak form of Stokes flow for a stream-function DGNO, with soft boundary conditions.

    * Weak momentum: :math:`\\overline{\\sigma_{i1}\\partial_x\\phi_j +
      \\sigma_{i2}\\partial_y\\phi_j} = 0` (``-∇·σ = 0``), with
      :math:`\\sigma = \\mu\\nabla\\mathbf u - p\\mathbf I` (primal form, ``model.mixed``
      false) or the decoded stress (mixed form). Integration by parts makes it
      :math:`-\\overline{(\\nabla\\cdot\\sigma)_i\\,\\phi_j}`, whose size does not depend on
      the radius ``R``. (The first version multiplied these residuals by ``R``, which
      weighted the momentum balance ``R² ≈ 10⁻³`` times less than the reference does.)
    * Mixed form only: pointwise constitutive residuals at the quadrature points (the
      reference's four):
      :math:`-p + 2\\mu u_x - s_{11}`, :math:`-p + 2\\mu v_y - s_{22}`,
      :math:`\\mu(u_y + v_x) - s_{12}`, :math:`p + (s_{11} + s_{22})/2`.
    * Continuity holds exactly (stream function).
    * Boundary: no slip on walls and cylinder, inflow ``u = a``, ``v = 0`` (the likelihood of
      ``a``), and the data's do-nothing outflow :math:`\\mu\\partial_x\\mathbf u -
      p\\,\\mathbf e_x = 0` (the natural condition of the solver's
      :math:`\\mu\\nabla\\mathbf u:\\nabla\\mathbf v` form; the reference's data use
      ``p = 0``).

    Test-function centres: ``n_centres`` per step, 3/4 uniform in the channel and 1/4 in
    ``[0.3, 0.7] × [0.4, 0.8]`` around the cylinder (as the reference), kept ``R`` away from the
    walls and the cylinder (those closer are dropped).
    """

    def __init__(self, boundary, weak: WeakFormOptions, bc_weight: float, pde_weight: float):
        self.boundary = boundary
        self.weak = weak
        self.bc_weight = bc_weight
        self.pde_weight = pde_weight

    def centres(self, generator):
        r, n = float(self.weak.radius), int(self.weak.n_centres)
        k = n - n // 4
        u = torch.rand(k, 2, generator=generator)
        c1 = torch.stack([r + (LENGTH - 2 * r) * u[:, 0], r + (HEIGHT - 2 * r) * u[:, 1]], -1)
        w = torch.rand(n - k, 2, generator=generator)
        c2 = torch.stack([0.3 + 0.4 * w[:, 0], 0.4 + 0.4 * w[:, 1]], -1)
        c = torch.cat([c1, c2])
        far = (c - torch.tensor(CENTRE)).norm(dim=-1) > RADIUS + r
        return c[far]

    def residuals(self, model, beta, generator):
        """Weak momentum residuals ``(B, n_c)`` each and constitutive residuals
        ``(B, n_c·Q, 4)`` (``None`` for the primal form)."""
        tf = sample_test_functions(self.weak, centres=self.centres(generator), domain=BOX)
        x = tf.points
        _, _, gu, gv = model.velocity(beta, x, gradient=True)
        p = model.decoders["p"](beta, x)
        b, nc, q = beta.shape[0], tf.n_centres, tf.n_quadrature
        dphi = tf.grad_v

        def weak(sx, sy):
            return (sx.reshape(b, nc, q) * dphi[:, 0] + sy.reshape(b, nc, q) * dphi[:, 1]).mean(-1)

        if not model.mixed:  # σ = μ∇u − pI (the solver's form)
            return (weak(MU * gu[..., 0] - p, MU * gu[..., 1]),
                    weak(MU * gv[..., 0], MU * gv[..., 1] - p), None)
        s11, s22, s12 = (model.decoders[k](beta, x) for k in STRESS)
        constitutive = torch.stack([-p + 2 * MU * gu[..., 0] - s11,
                                    -p + 2 * MU * gv[..., 1] - s22,
                                    MU * (gu[..., 1] + gv[..., 0]) - s12,
                                    p + 0.5 * (s11 + s22)], -1)
        return weak(s11, s12), weak(s12, s22), constitutive

    def boundary_loss(self, model, beta, a):
        ns, out, inflow = (self.boundary[k] for k in ("noslip", "outflow", "inflow"))
        u, v, _, _ = model.velocity(beta, ns)
        noslip = u.pow(2).mean() + v.pow(2).mean()
        u, v, _, _ = model.velocity(beta, inflow)
        inlet = (u - a).pow(2).mean() + v.pow(2).mean()
        _, _, gu, gv = model.velocity(beta, out, gradient=True)
        p_out = model.decoders["p"](beta, out)
        outlet = (MU * gu[..., 0] - p_out).pow(2).mean() + (MU * gv[..., 0]).pow(2).mean()
        return noslip, inlet, outlet

    def loss(self, model, batch, generator):
        (a,) = batch
        beta = model.encoder(a)
        mom_x, mom_y, constitutive = self.residuals(model, beta, generator)
        weak = mom_x.pow(2).mean() + mom_y.pow(2).mean()
        const = (weak.new_zeros(()) if constitutive is None
                 else constitutive.pow(2).mean((0, 1)).sum())
        noslip, inlet, outlet = self.boundary_loss(model, beta, a)
        bc = noslip + inlet + outlet
        loss = self.bc_weight * bc + self.pde_weight * (weak + const)
        return loss, {"loss": float(loss.detach()), "weak": float(weak.detach()),
                      "constitutive": float(const.detach()), "inlet": float(inlet.detach()),
                      "noslip": float(noslip.detach()), "outlet": float(outlet.detach())}


def run_dgno(args, res):
    n_tr, n_va, n_te = args.sizes
    settings = {"epochs": args.dgno_epochs, "batch": args.batch, "sizes": list(args.sizes),
                "width": args.width, "seed": args.seed, "h": args.h,
                "n_centres": args.n_centres, "radius": args.radius,
                "bc_weight": args.bc_weight, "pde_weight": args.pde_weight,
                "form": args.dgno_form}
    runs = res["runs"].setdefault("dgno", {})
    if runs.get("u", {}).get("settings") == settings:
        return
    data = load_data(n_tr + n_va + n_te, args.cache_dir, args.h)
    a = torch.tensor(data.a, dtype=torch.float32)
    x = torch.tensor(data.gridx, dtype=torch.float32)
    labels = {f: torch.tensor(getattr(data, f), dtype=torch.float32) for f in FIELDS}
    tr, va, te = slice(0, n_tr), slice(n_tr, n_tr + n_va), slice(n_tr + n_va, None)
    torch.manual_seed(args.seed)
    model = StokesDGNO(a.shape[1], args.width, mixed=args.dgno_form == "mixed")
    model.encoder.fit_normalization(a[tr])
    weak = WeakFormOptions(n_centres=args.n_centres, radius=args.radius, quadrature_points=8)
    objective = StokesWeakObjective(boundary_points(data.y_inflow, 100), weak, args.bc_weight,
                                    args.pde_weight)
    opts = TrainOptions(epochs=args.dgno_epochs, batch_size=args.batch, lr=1e-3,
                        step_size=max(1, args.dgno_epochs // 4), gamma=0.5, seed=args.seed,
                        weight_decay=1e-4, validate_every=max(1, min(5, args.dgno_epochs)))
    val = torch.cat([labels[f][va] for f in FIELDS], -1)
    ckpt = os.path.join(args.run_dir, f"stokes_dgno_e{args.dgno_epochs}_w{args.width}_"
                                      f"c{args.n_centres}_s{args.seed}.pt")
    t0 = time.perf_counter()
    result = fit(model, objective, (a[tr],), opts, validation=(a[va], val, x), checkpoint=ckpt,
                 progress=args.progress)
    secs = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        pred = model.fields(a[te], x)
    for f in FIELDS:
        err = float(relative_l2(pred[f], labels[f][te]).mean())
        runs[f] = {"settings": settings, "rel_l2": err, "val_rel_l2": result.best_val,
                   "best_epoch": result.best_epoch, "seconds": secs,
                   "n_parameters": model.n_parameters(),
                   "history_last": result.history[-1] if result.history else None}
        print(f"dgno {f}: test rel L2 {err:.4f}, {secs:.0f} s", flush=True)
        if args.fig_dir:
            figure(data, f, labels[f][te][0], pred[f][0],
                   os.path.join(args.fig_dir, f"stokes_dgno_{f}.png"), model="DGNO")
    save_results(res, args.json)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="results file")
    p.add_argument("--models", default="multionet,dgno")
    p.add_argument("--n-train", type=int, default=400)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=300, help="MultiONet epochs")
    p.add_argument("--fields", default="u,v,p",
                   help="fields of the supervised MultiONet runs (one network each)")
    p.add_argument("--dgno-epochs", type=int, default=30)
    p.add_argument("--n-centres", type=int, default=100, help="DGNO test functions per step")
    p.add_argument("--radius", type=float, default=0.03, help="DGNO test-function radius")
    p.add_argument("--dgno-form", choices=("primal", "mixed"), default="primal",
                   help="DGNO weak form: primal (mu grad u : grad phi - p div phi, the solver's "
                        "form) or mixed (stress decoders and constitutive residuals, the "
                        "reference's)")
    p.add_argument("--bc-weight", type=float, default=2.0)
    p.add_argument("--pde-weight", type=float, default=10.0)
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
    args.fields = [f for f in args.fields.split(",") if f]
    if not args.fields or set(args.fields) - set(FIELDS):
        p.error(f"--fields takes a comma-separated subset of {','.join(FIELDS)}, got "
                f"{','.join(args.fields) or 'nothing'}")
    torch.set_num_threads(args.threads)
    if args.quick:
        args.n_train, args.n_val, args.n_test = 6, 2, 2
        args.epochs, args.width, args.batch, args.h = 1, 16, 3, 0.15
        args.dgno_epochs, args.n_centres = 1, 12
        for key, prefix in (("cache_dir", "stokes_quick_"), ("run_dir", "stokes_runs_"),
                            ("fig_dir", "stokes_figs_")):
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, tempfile.mkdtemp(prefix=prefix))
    args.sizes = (args.n_train, args.n_val, args.n_test)
    models = [m for m in args.models.split(",") if m]
    bad = sorted(set(models) - set(ALL_MODELS))
    if bad:
        p.error(f"unknown models {bad}; choose from {ALL_MODELS}")
    res = {"runs": {}}
    if args.json and os.path.exists(args.json):
        with open(args.json) as fh:
            res = json.load(fh)
    if "multionet" in models:
        run_multionet(args, res)
    if "dgno" in models:
        run_dgno(args, res)
    save_results(res, args.json)
    print(json.dumps(res["rel_l2"], indent=1))
    return res


if __name__ == "__main__":
    main()
