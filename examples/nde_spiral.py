"""Spiral neural ODE: error and stiffness regularization (ERNODE / SRNODE) vs. vanilla and RNODE.
==============================================================================================

The spiral ODE of Pal et al. (ICML 2021; DiffEqFlux's spiral): :math:`\\dot u = A u^3`,
:math:`A = [[-0.1, 2], [-2, -0.1]]`, 30 observation times on :math:`[0, 1.5]`. The model is the
paper's :math:`f(u) = W_2\\tanh(W_1 u^3 + b_1) + b_2` (50 hidden units), trained by Adam on the
trajectory from :math:`u_0 = (2, 0)` at the 30 times; the validation set (used to choose each λ)
is the trajectory at the 29 midpoints, the test set at 100 random times in :math:`[0, 1.5]`. All
solves use ``sciml.nde.odeint`` (dopri5, rtol = atol = 1e-6, float64); the regularized runs
backpropagate the penalty through the solver (global mode).

Methods: vanilla; ER (:math:`\\lambda\\sum_j E_j|h_j|`); SR (:math:`\\lambda\\sum_j S_j|h_j|`);
ER+SR (:math:`\\lambda(\\sum_j E_j|h_j| + 0.1\\sum_j S_j|h_j|)`, the reference code's mix); and
RNODE (kinetic energy + Hutchinson Jacobian-Frobenius, both weighted 1e-4, Finlay et al. 2020;
the spiral's field is large, |f| ~ 10, so their 0.01 swamps the MSE).
Each regularizer is swept over a λ grid; its λ is the one with the fewest validation NFE
whose validation MSE stays within ``--tolerance`` (1.1x) of vanilla's, and the table reports test
NFE / MSE / times at that λ, mean ± std over ``--seeds`` seeds. The sweep is drawn as a Pareto
plot (NFE vs test MSE).

Usage::

    python examples/nde_spiral.py [--json PATH] [--plot PATH] [--seeds 3] [--pre-iters 80]
                                  [--iters 60] [--lambdas L ...] [--tolerance 1.1]
    python examples/nde_spiral.py --full   # 300 + 300 iterations, 5 seeds, 4-5 λ per regularizer

Protocol (CPU-sized): per seed, a shared vanilla warm-up (``--pre-iters``, Adam 0.03), then each
method continues from it for ``--iters`` iterations (Adam 0.01) with its own loss; the reported
training time is that of the method's own phase.

Measured: see ``docs/guide/nde.rst`` (wall times depend on the shared machine's load).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from sciml.nde import (
    ErrorRegularizer,
    Recorder,
    RNODEDynamics,
    StiffnessRegularizer,
    odeint,
)
from sciml.nde._sweep import format_summary, pareto_plot, summarize_sweep
from sciml_inverse import FitOptions, write_json
from sciml_inverse import fit as run_fit

A_TRUE = [[-0.1, 2.0], [-2.0, -0.1]]
U0 = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
T_END, N_T = 1.5, 30
TOL = 1e-6
F64 = torch.float64
REGULARIZERS = ("ER", "SR", "ER+SR")


@dataclass(frozen=True)
class Config:
    pre_iters: int = 120
    pre_lr: float = 0.03
    iters: int = 60
    lr: float = 0.01
    seeds: int = 3
    lambdas: dict[str, tuple[float, ...]] | None = None
    tolerance: float = 1.1
    rnode_weight: float = 1e-4
    regularizers: tuple[str, ...] = REGULARIZERS
    rnode: bool = True
    predict_repeats: int = 3

    def grid(self, method: str) -> tuple[float, ...]:
        default = {"ER": (0.01, 0.03), "SR": (0.001, 0.003), "ER+SR": (0.003, 0.01)}
        return (self.lambdas or default)[method]


class Spiral(nn.Module):
    """The paper's spiral model ``W2 tanh(W1 u^3 + b1) + b2``."""

    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.l1 = nn.Linear(2, hidden, dtype=F64)
        self.l2 = nn.Linear(hidden, 2, dtype=F64)

    def forward(self, t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(u ** 3)))


def make_data() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The true spiral from ``u0 = (2, 0)``: training at the 30 observation times, validation
    at the 29 midpoints between them, test at 100 random times in ``[0, 1.5]``.

    Each split is ``(times, trajectory)``; the initial state is ``U0``.
    """
    a = torch.tensor(A_TRUE, dtype=F64)
    g = torch.Generator().manual_seed(2021)
    t_train = torch.linspace(0.0, T_END, N_T, dtype=F64)
    t_val = torch.cat([t_train[:1], 0.5 * (t_train[1:] + t_train[:-1])])
    t_test = torch.cat([t_train[:1], torch.sort(T_END * torch.rand(100, generator=g,
                                                                   dtype=F64)).values])
    out = {}
    for name, t in (("train", t_train), ("val", t_val), ("test", t_test)):
        with torch.no_grad():
            y = odeint(lambda t, u: (u ** 3) @ a.T, U0, t, rtol=1e-10, atol=1e-10)
        out[name] = (t, y)
    return out


def penalty(method: str, lam: float):
    """The penalty of a method as a function of SolverStats (None for vanilla / RNODE)."""
    er, sr = ErrorRegularizer(lam), StiffnessRegularizer(lam)
    if method == "ER":
        return er
    if method == "SR":
        return sr
    if method == "ER+SR":
        sr01 = StiffnessRegularizer(0.1 * lam)
        return lambda st: er(st) + sr01(st)
    return None


def pretrain(seed: int, data: dict, cfg: Config) -> tuple[dict, float]:
    """The shared vanilla warm-up of one seed: (state_dict, seconds)."""
    torch.manual_seed(seed)
    model = Spiral()
    secs = fit(model, "vanilla", 0.0, seed, data, cfg.pre_iters, cfg.pre_lr, cfg)
    return {k: v.clone() for k, v in model.state_dict().items()}, secs


def train(method: str, lam: float, seed: int, data: dict, cfg: Config,
          init: dict) -> tuple[Spiral, float]:
    """Continue from the warm-up with ``method``'s loss for ``cfg.iters`` iterations."""
    model = Spiral()
    model.load_state_dict(init)
    return model, fit(model, method, lam, seed, data, cfg.iters, cfg.lr, cfg)


def fit(model: Spiral, method: str, lam: float, seed: int, data: dict, iters: int, lr: float,
        cfg: Config) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t, y = data["train"]
    u0 = U0
    pen = penalty(method, lam)
    aug = RNODEDynamics(model) if method == "RNODE" else None
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()

    def step(_model, _i):
        if aug is not None:
            aug.resample(u0, generator=gen)
            z = torch.zeros(u0.shape[0], dtype=F64)
            pred, e, j = odeint(aug, (u0, z, z), t, rtol=TOL, atol=TOL)
            loss = (pred - y).pow(2).mean() + cfg.rnode_weight * (e[-1].mean() + j[-1].mean())
        else:
            st = Recorder(stiffness=method in ("SR", "ER+SR"))
            pred = odeint(model, u0, t, rtol=TOL, atol=TOL, recorder=st)
            loss = (pred - y).pow(2).mean()
            if pen is not None:
                loss = loss + pen(st)
        return loss

    run_fit(step, model, opt, options=FitOptions(steps=iters, progress=False))
    return time.perf_counter() - start


@torch.no_grad()
def evaluate(model: Spiral, split: tuple, repeats: int) -> dict:
    t, y = split
    u0 = U0
    times = []
    for _ in range(repeats):
        s = time.perf_counter()
        rec = Recorder(stiffness=False)
        pred = odeint(model, u0, t, rtol=TOL, atol=TOL, options={"max_num_steps": 200_000},
                      recorder=rec)
        st = rec.stats
        times.append(time.perf_counter() - s)
    return {"nfe": st.nfe, "metric": float((pred - y).pow(2).mean()),
            "predict_seconds": min(times)}


def run(cfg: Config, log=print) -> dict:
    torch.set_num_threads(1)
    data = make_data()
    runs: dict[str, dict[str, list]] = {}

    def record(key: str, seed: int, method: str, lam: float, init: dict) -> None:
        model, secs = train(method, lam, seed, data, cfg, init)
        val = evaluate(model, data["val"], 1)
        test = evaluate(model, data["test"], cfg.predict_repeats)
        r = runs.setdefault(key, {"method": method, "lambda": lam, "val_nfe": [],
                                  "val_metric": [], "nfe": [], "metric": [],
                                  "train_seconds": [], "predict_seconds": []})
        r["val_nfe"].append(val["nfe"])
        r["val_metric"].append(val["metric"])
        r["nfe"].append(test["nfe"])
        r["metric"].append(test["metric"])
        r["train_seconds"].append(secs)
        r["predict_seconds"].append(test["predict_seconds"])
        log(f"  {key:>14s} seed {seed}: test NFE {test['nfe']:5d}  MSE {test['metric']:.3e}  "
            f"val NFE {val['nfe']:5d}  val MSE {val['metric']:.3e}  train {secs:6.1f}s")

    for seed in range(cfg.seeds):
        init, secs = pretrain(seed, data, cfg)
        log(f"seed {seed}: shared vanilla warm-up {secs:.1f}s")
        record("vanilla", seed, "vanilla", 0.0, init)
        if cfg.rnode:
            record("RNODE", seed, "RNODE", cfg.rnode_weight, init)
        for method in cfg.regularizers:
            for lam in cfg.grid(method):
                record(f"{method}@{lam:g}", seed, method, lam, init)
    res = summarize_sweep(runs, regularizers=cfg.regularizers, baselines=("vanilla", "RNODE"),
                          acceptable=lambda v, v0: v <= cfg.tolerance * v0,
                          higher_is_better=False)
    res["config"] = cfg.__dict__ | {"lambdas": {m: list(cfg.grid(m)) for m in cfg.regularizers}}
    return res


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--plot", default=None, help="Pareto plot PNG (default: next to --json, or "
                   "nde_spiral_pareto.png)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--pre-iters", type=int, default=None,
                   help="shared vanilla warm-up iterations per seed (default 120)")
    p.add_argument("--iters", type=int, default=None,
                   help="iterations of each method after the warm-up (default 60)")
    p.add_argument("--lambdas", type=float, nargs="+", default=None,
                   help="one λ grid for every regularizer (default: per-method grids)")
    p.add_argument("--tolerance", type=float, default=1.1,
                   help="validation-MSE tolerance (x vanilla) for choosing λ")
    p.add_argument("--regularizers", nargs="+", choices=REGULARIZERS, default=None,
                   help="regularizers to sweep (default: all)")
    p.add_argument("--no-rnode", action="store_true", help="skip the (slow) RNODE baseline")
    p.add_argument("--full", action="store_true", help="500 iterations, 5 seeds, finer λ grid")
    args = p.parse_args(argv)
    if args.seeds < 1 or any(v is not None and v < 1 for v in (args.iters, args.pre_iters)) \
            or args.tolerance < 1:
        p.error("--seeds, --iters and --pre-iters must be >= 1 and --tolerance >= 1")
    if args.lambdas is not None and any(not (v > 0 and math.isfinite(v)) for v in args.lambdas):
        p.error("--lambdas must be positive")
    cfg = Config()
    kw: dict = {"seeds": args.seeds, "tolerance": args.tolerance}
    if args.full:
        kw.update(pre_iters=300, iters=300, seeds=max(args.seeds, 5),
                  lambdas={"ER": (0.001, 0.003, 0.01, 0.03, 0.1),
                           "SR": (0.0003, 0.001, 0.003, 0.01),
                           "ER+SR": (0.001, 0.003, 0.01, 0.03)})
    if args.iters is not None:
        kw["iters"] = args.iters
    if args.pre_iters is not None:
        kw["pre_iters"] = args.pre_iters
    if args.lambdas is not None:
        kw["lambdas"] = {m: tuple(args.lambdas) for m in ("ER", "SR", "ER+SR")}
    if args.regularizers is not None:
        kw["regularizers"] = tuple(args.regularizers)
    kw["rnode"] = not args.no_rnode
    cfg = Config(**{**cfg.__dict__, **kw})
    start = time.perf_counter()
    res = run(cfg)
    res["wall_seconds"] = time.perf_counter() - start
    print(format_summary(res, "test MSE"))
    plot = args.plot or (os.path.splitext(args.json)[0] + "_pareto.png" if args.json
                         else "nde_spiral_pareto.png")
    pareto_plot(res, plot, metric_name="test MSE", regularizers=cfg.regularizers,
                log_metric=True)
    res["plot"] = plot
    if args.json:
        write_json(args.json, res)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
