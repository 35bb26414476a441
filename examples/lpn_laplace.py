"""Learned proximal network on the 1-D Laplace toy: ℓ2, ℓ1 and proximal matching.
================================================================================

Reproduces the 1-D experiment of Fang, Buchanan & Sulam (ICLR 2024, Fig. 1;
``exps/laplacian/laplacian_train.ipynb``): clean samples :math:`x \\sim \\mathrm{Laplace}(0, 1)`,
noisy observations :math:`y = x + \\mathcal N(0, 1)`. The network is the reference 1-D ICNN
(hidden 50, 4 layers, Softplus β = 10, no α; 10,502 parameters), trained three ways:

* ℓ2 loss → the posterior mean (MMSE denoiser), compared with the exact :math:`E[x|y]`;
* ℓ1 loss → the posterior median, compared with the exact median;
* proximal matching, continuing from the ℓ1 model and its optimizer with γ = 0.5 → 0.1 → the
  MAP denoiser :math:`\\mathrm{prox}_{|\\cdot|}(y) = \\mathrm{soft}(y, 1)`. At a finite γ the
  loss is minimised by the maximiser of the posterior smoothed with a Gaussian of variance
  γ²/2 (computed here by quadrature), which sits ≈ 0.1 from the soft-threshold near |y| = 1
  at γ = 0.1; the script reports both deviations and plots the prox after every γ stage.

The reference schedule (``--scale 1``): ℓ2 and ℓ1 10k steps at 1e-3 then 10k at 1e-4 (batch
2000, a fresh batch per step); PM γ 0.5 (2k @1e-3, 2k @1e-4), 0.4 (4k @1e-4), 0.3 (4k @1e-4),
0.2 (4k @1e-5), 0.1 (4k @1e-5, 4k @1e-6). The default ``--scale 0.5`` halves every phase so the
script stays under 10 minutes on 2 CPU cores.

Usage::

    python examples/lpn_laplace.py [--json PATH] [--plot PATH] [--scale S] [--seed N] [--quick]

Measured (2 shared CPU cores, 1 torch thread, batch 2000; max |error| on y ∈ [−4, 4]; wall
times depend on the load of the shared machine)::

    schedule                     wall      max_err_l2  max_err_l1  max_err_prox_matching  tail
    default (scale 0.5), seed 1   8.0 min   0.026       0.016       0.096                  0.040
    default (scale 0.5), seed 2   4.6 min   0.044       0.062       0.098                  0.056
    full    (scale 1),   seed 1  18.2 min   0.056       0.056       0.113                  0.113

All four targets (≤ 0.1) are met by both default runs (``max_err_prox_matching`` only just);
the full reference schedule met the ℓ2/ℓ1
targets but its proximal-matching model drifted during the γ = 0.1 stage at lr 1e-5 (the
PM gradient at small γ comes from the few samples whose residual is below ~γ, so it is noisy):
0.043 after the γ = 0.2 stage, 0.126 after the first γ = 0.1 stage. The exact PM minimiser at
γ = 0.1 itself sits 0.111 from the soft-threshold at |y| = 1 (``oracle_pm_minimizer_vs_soft_max``),
which is why the ``stages`` entries and the plot show how the prox approaches soft(y, 1) as γ
shrinks.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from inverse.lpn import LPN, LPNTrainOptions, TrainPhase, VectorLPNConfig, train_lpn
from sciml_inverse import atomic_path, write_json

#: (loss, steps at full scale, lr, gamma)
L2_SCHEDULE = [("l2", 10_000, 1e-3, None), ("l2", 10_000, 1e-4, None)]
L1_SCHEDULE = [("l1", 10_000, 1e-3, None), ("l1", 10_000, 1e-4, None)]
PM_SCHEDULE = [("pm", 2_000, 1e-3, 0.5), ("pm", 2_000, 1e-4, 0.5), ("pm", 4_000, 1e-4, 0.4),
               ("pm", 4_000, 1e-4, 0.3), ("pm", 4_000, 1e-5, 0.2), ("pm", 4_000, 1e-5, 0.1),
               ("pm", 4_000, 1e-6, 0.1)]
Y_MAX = 4.0
TAIL = 1.5


# ------------------------------------------------------------------------------ exact oracles
def _posterior(y: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Posterior weights p(x|y) ∝ exp(−|x| − (y − x)²/2) on the grid xs, rows normalised."""
    logw = -np.abs(xs)[None, :] - 0.5 * (y[:, None] - xs[None, :]) ** 2
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    return w / w.sum(axis=1, keepdims=True)


def posterior_mean_median(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact posterior mean and median by quadrature on a fine grid (|x| ≤ 14, h = 5e-4)."""
    xs = np.linspace(-14.0, 14.0, 56_001)
    mean = np.empty_like(y)
    median = np.empty_like(y)
    for s in range(0, len(y), 64):
        w = _posterior(y[s:s + 64], xs)
        mean[s:s + 64] = w @ xs
        cdf = np.cumsum(w, axis=1) - 0.5 * w  # midpoint rule
        for i, row in enumerate(cdf):
            median[s + i] = np.interp(0.5, row, xs)
    return mean, median


def pm_minimizer(y: np.ndarray, gamma: float) -> np.ndarray:
    """argmin_t E_{x|y}[1 − exp(−((t − x)/γ)²)] for each y (exact posterior, quadrature).

    The objective equals 1 − (p(·|y) ⋆ k_γ)(t) with k_γ(u) = exp(−u²/γ²). p(·|y) is log-concave,
    so the smoothed density is log-concave and unimodal: the maximiser of its FFT convolution on
    the quadrature grid (h = 1e-3) is refined by a bounded scalar minimisation of the exact
    quadrature objective. The map is odd, so only y ≥ 0 is computed.
    """
    from scipy.optimize import minimize_scalar
    from scipy.signal import fftconvolve

    h = 1e-3
    xs = np.arange(-12_000, 12_001) * h
    ku = np.arange(-int(5 * gamma / h), int(5 * gamma / h) + 1) * h
    kernel = np.exp(-((ku / gamma) ** 2))
    ay = np.abs(y)
    uniq, inv = np.unique(ay, return_inverse=True)
    out = np.empty_like(uniq)
    for i, yi in enumerate(uniq):
        w = _posterior(np.array([yi]), xs)[0]
        smooth = fftconvolve(w, kernel, mode="same")
        j = int(np.argmax(smooth))
        keep = w > 1e-16 * w.max()
        xk, wk = xs[keep], w[keep]

        def objective(t, xk=xk, wk=wk):
            return 1.0 - float(np.sum(wk * np.exp(-(((t - xk) / gamma) ** 2))))

        res = minimize_scalar(objective, bounds=(xs[j] - 2 * h, xs[j] + 2 * h), method="bounded",
                              options={"xatol": 1e-8})
        out[i] = res.x
    return np.sign(y) * out[inv]


def soft(y: np.ndarray, lam: float = 1.0) -> np.ndarray:
    return np.sign(y) * np.maximum(np.abs(y) - lam, 0.0)


# ------------------------------------------------------------------------------ training
def laplace_sampler(batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """Laplace(0, 1) samples of shape (batch_size, 1) by inverse CDF."""
    u = torch.rand(batch_size, 1, generator=generator) - 0.5
    return -torch.sign(u) * torch.log1p(-2 * u.abs().clamp(max=0.5 - 1e-7))


def _phases(schedule, scale: float, min_steps: int) -> tuple[TrainPhase, ...]:
    out = []
    for loss, steps, lr, gamma in schedule:
        n = max(min_steps, int(round(steps * scale)))
        out.append(TrainPhase(loss, n, lr, gamma=gamma))
    return tuple(out)


def _eval(model: LPN, y: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(y, dtype=torch.float32)[:, None])[:, 0].numpy().astype(
            np.float64)


def run(scale: float, batch_size: int, seed: int, progress: bool, n_grid: int = 801) -> dict:
    min_steps = 10
    ygrid = np.linspace(-Y_MAX, Y_MAX, n_grid)
    t0 = time.perf_counter()
    mean, median = posterior_mean_median(ygrid)
    gammas = sorted({g for *_, g in PM_SCHEDULE if g is not None}, reverse=True)
    pm_star = {g: pm_minimizer(ygrid, g) for g in gammas}
    t_oracle = time.perf_counter() - t0

    common = dict(batch_size=batch_size, sigma_noise=1.0, seed=seed, log_every=500)
    # ℓ2 model
    torch.manual_seed(seed)
    l2 = LPN(VectorLPNConfig())
    t0 = time.perf_counter()
    train_lpn(l2, laplace_sampler, LPNTrainOptions(phases=_phases(L2_SCHEDULE, scale, min_steps),
                                                  **common), progress=progress)
    t_l2 = time.perf_counter() - t0
    # ℓ1 model, then proximal matching with the same optimizer (one schedule, snapshots)
    torch.manual_seed(seed + 1)
    l1pm = LPN(VectorLPNConfig())
    phases = _phases(L1_SCHEDULE, scale, min_steps) + _phases(PM_SCHEDULE, scale, min_steps)
    n_l1 = len(L1_SCHEDULE)
    snapshots: dict[int, np.ndarray] = {}
    times: dict[int, float] = {}
    t0 = time.perf_counter()

    def on_phase_end(k: int, model: LPN) -> None:
        snapshots[k] = _eval(model, ygrid)
        times[k] = time.perf_counter() - t0

    train_lpn(l1pm, laplace_sampler, LPNTrainOptions(phases=phases, **common), progress=progress,
              on_phase_end=on_phase_end)
    t_l1pm = time.perf_counter() - t0

    f_l2 = _eval(l2, ygrid)
    f_l1 = snapshots[n_l1 - 1]
    f_pm = snapshots[len(phases) - 1]
    gamma_final = PM_SCHEDULE[-1][3]
    tail = np.abs(ygrid) >= TAIL - 1e-9
    target = soft(ygrid)
    i15 = int(np.argmin(np.abs(ygrid - 1.5)))
    stages = []
    for k in range(n_l1, len(phases)):
        g = phases[k].gamma
        f = snapshots[k]
        stages.append({
            "phase": k, "gamma": g, "lr": phases[k].lr, "steps_done": sum(
                p.steps for p in phases[:k + 1]),
            "max_err_vs_soft": float(np.max(np.abs(f - target))),
            "max_err_vs_soft_tail": float(np.max(np.abs(f - target)[tail])),
            "max_err_vs_pm_minimizer": float(np.max(np.abs(f - pm_star[g]))),
            "oracle_pm_minimizer_vs_soft": float(np.max(np.abs(pm_star[g] - target))),
            "f_at_1.5": float(f[i15]),
        })
    small = np.abs(ygrid) <= 0.8
    return {
        "max_err_l2": float(np.max(np.abs(f_l2 - mean))),
        "max_err_l1": float(np.max(np.abs(f_l1 - median))),
        "max_err_prox_matching": float(np.max(np.abs(f_pm - pm_star[gamma_final]))),
        "max_err_soft_threshold_tail": float(np.max(np.abs(f_pm - target)[tail])),
        "max_abs_pm_for_abs_y_le_0.8": float(np.max(np.abs(f_pm[small]))),
        "max_err_l2_on_3": float(np.max(np.abs(f_l2 - mean)[np.abs(ygrid) <= 3])),
        "max_err_l1_on_3": float(np.max(np.abs(f_l1 - median)[np.abs(ygrid) <= 3])),
        "oracle_pm_minimizer_vs_soft_max": float(np.max(np.abs(pm_star[gamma_final] - target))),
        "gamma_final": gamma_final,
        "at_y_1.5": {
            "posterior_mean": float(mean[i15]), "posterior_median": float(median[i15]),
            "soft_threshold": float(target[i15]), "pm_minimizer": float(pm_star[gamma_final][i15]),
            "lpn_l2": float(f_l2[i15]), "lpn_l1": float(f_l1[i15]), "lpn_pm": float(f_pm[i15]),
        },
        "stages": stages,
        "settings": {"scale": scale, "batch_size": batch_size, "seed": seed,
                     "steps_l2": sum(p.steps for p in _phases(L2_SCHEDULE, scale, min_steps)),
                     "steps_l1": sum(p.steps for p in phases[:n_l1]),
                     "steps_pm": sum(p.steps for p in phases[n_l1:]),
                     "torch_threads": torch.get_num_threads()},
        "wall_time_s": {"oracles": t_oracle, "train_l2": t_l2, "train_l1_pm": t_l1pm,
                        "total": t_oracle + t_l2 + t_l1pm},
        "_curves": {"y": ygrid, "mean": mean, "median": median, "soft": target, "l2": f_l2,
                    "l1": f_l1, "pm_star": pm_star, "snapshots": snapshots, "phases": phases,
                    "n_l1": n_l1},
    }


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = result["_curves"]
    y = c["y"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    ax.plot(y, c["mean"], "k--", lw=1, label="posterior mean")
    ax.plot(y, c["median"], "k:", lw=1, label="posterior median")
    ax.plot(y, c["l2"], label=f"LPN ℓ2 (max err {result['max_err_l2']:.3f})")
    ax.plot(y, c["l1"], label=f"LPN ℓ1 (max err {result['max_err_l1']:.3f})")
    ax.set_xlabel("y")
    ax.set_ylabel("f(y)")
    ax.set_title("ℓ2 → MMSE, ℓ1 → median")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(y, c["soft"], "k-", lw=2, alpha=0.4, label="soft(y, 1) = MAP")
    cmap = plt.get_cmap("viridis")
    ks = list(range(c["n_l1"], len(c["phases"])))
    for n, k in enumerate(ks):
        g = c["phases"][k].gamma
        ax.plot(y, c["snapshots"][k], color=cmap(n / max(1, len(ks) - 1)), lw=1,
                label=f"after stage {k - c['n_l1']} (γ={g}, lr={c['phases'][k].lr:g})")
    ax.plot(y, c["pm_star"][result["gamma_final"]], "r--", lw=1,
            label=f"exact PM minimizer, γ={result['gamma_final']}")
    ax.set_xlim(-2.5, 2.5)
    ax.set_ylim(-2, 2)
    ax.set_xlabel("y")
    ax.set_title("proximal matching: γ ↓ → soft-threshold")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--plot", help="save the figure to this file (needs matplotlib)")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="fraction of the reference schedule's steps (default 0.5; 1 = full)")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: faster for this tiny network "
                             "on a shared CPU)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 0.5%% of the steps, batch 256, coarse y grid "
                             "(numbers meaningless)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not (args.scale > 0 and math.isfinite(args.scale)):
        parser.error("--scale must be > 0")
    if args.batch_size < 1 or args.threads < 1:
        parser.error("--batch-size and --threads must be >= 1")
    if args.quick:
        args.scale, args.batch_size = 0.005, 256
    torch.set_num_threads(args.threads)
    res = run(args.scale, args.batch_size, args.seed, progress=not args.no_progress,
              n_grid=161 if args.quick else 801)
    curves = res.pop("_curves")
    targets = {"max_err_l2": 0.1, "max_err_l1": 0.1, "max_err_prox_matching": 0.1,
               "max_err_soft_threshold_tail": 0.1}
    res["targets"] = targets
    res["quick"] = bool(args.quick)
    print(f"1-D Laplace LPN (scale {args.scale}, batch {args.batch_size}); "
          f"wall time {res['wall_time_s']['total']:.1f} s")
    print(f"{'metric':34s} {'value':>8s} {'target':>8s}")
    for key, tgt in targets.items():
        flag = "ok" if res[key] <= tgt else "MISSED"
        print(f"{key:34s} {res[key]:8.4f} {tgt:8.2f}  {flag}")
    a = res["at_y_1.5"]
    print(f"at y = 1.5: mean {a['posterior_mean']:.4f} (LPN ℓ2 {a['lpn_l2']:.4f}), median "
          f"{a['posterior_median']:.4f} (LPN ℓ1 {a['lpn_l1']:.4f}), soft {a['soft_threshold']:.4f} "
          f"(PM minimizer {a['pm_minimizer']:.4f}, LPN PM {a['lpn_pm']:.4f})")
    print("proximal-matching stages:")
    for s in res["stages"]:
        print(f"  γ={s['gamma']:<4} lr={s['lr']:<7g} |f−soft| max {s['max_err_vs_soft']:.3f}, "
              f"tail {s['max_err_vs_soft_tail']:.3f}; "
              f"|f−argmin PM_γ| {s['max_err_vs_pm_minimizer']:.3f}")
    if args.json:
        write_json(args.json, res)
    if args.plot:
        res["_curves"] = curves
        plot(res, args.plot)
        res.pop("_curves")
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
