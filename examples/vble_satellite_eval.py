r"""Evaluate MAP-z, VBLE-z and VBLE-xz against tuned Tikhonov and TV on Pléiades-like data.

Ground truth: crops of the 0.5 m panchromatic evaluation image
``../shared/data/satellite/eval/rotterdam3_pan_0p5m.tif`` (12-bit DN / 4095). Each crop is
degraded with :class:`inverse.satellite.PleiadesDegradation` (Gaussian PSF with MTF 0.1 or 0.25
at Nyquist, decimation 1 or 2, Poisson-Gaussian noise :math:`v = a + b\,x` at two levels,
12-bit quantization) and restored by

* **MAP-z**, **VBLE-z**, **VBLE-xz** (:func:`inverse.vble.vble_restore`, λ = 1,
  s = 1, Adam lr 0.1, 300 iterations, 100 posterior samples), with the low- or high-bitrate
  shipped CAE chosen per setting by the rule tuned on *train* crops (MAP-z PSNR);
* **Tikhonov**: :math:`\min_x \tfrac12\|Ax-y\|^2 + \tfrac\mu2\|L x\|^2` with :math:`L` the
  gradient (order 1) or the 5-point Laplacian (order 2), circular, solved exactly by one
  ``solve_normal`` (closed form without decimation, CG with it); :math:`\mu` and the order
  tuned on train crops;
* **TV**: :math:`\min_x \tfrac12\|Ax-y\|^2 + \lambda\,\mathrm{TV}(x)` by :func:`inverse.admm`
  with :class:`inverse.TVPrior`; :math:`\lambda` tuned on train crops.

Tuning uses only ``../shared/data/satellite/train/rotterdam{1,2}_pan_0p5m.tif``; the eval image
is never used for any choice. Metrics (after a 5-pixel border crop): PSNR, SSIM
(:mod:`inverse.metrics`, scikit-image's default 7x7 uniform window), and for the samplers the
calibration of the std map (z-score mean/std, coverage at 1/2/3 sigma, AUCE, UCE, ENCE, AUSE,
Gaussian NLL, Spearman(|e|, std)); wall time of the 100-sample restoration and per extra
sample; the decoder fit ceiling (best PSNR of :math:`D(y)` fitted to the clean crop).

Run (full setting, about an hour on 2 busy CPU cores)::

    python examples/vble_satellite_eval.py --json outputs/vble_eval.json

Smoke test (seconds; tiny random CAE, no shipped weights needed)::

    python examples/vble_satellite_eval.py --quick --tiny-random-cae --json /tmp/q.json

The JSON has ``results[setting][method]`` with ``psnr``, ``ssim``, ``coverage_2sigma``,
``zscore_std``, ``seconds`` (and more), the per-crop ``records``, the ``tuning`` choices and
``decoder_fit_ceiling``. It is rewritten atomically after every restoration and an interrupted
run resumes from it (records with the same configuration are skipped).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from sciml_inverse import atomic_path, write_json

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "satellite"
EVAL_IMAGE = "eval/rotterdam3_pan_0p5m.tif"
TRAIN_IMAGES = ("train/rotterdam1_pan_0p5m.tif", "train/rotterdam2_pan_0p5m.tif")
N_BITS = 12
BORDER = 5
#: Poisson-Gaussian (a, b) in normalized 12-bit units (DN / 4095): read noise 2 DN and gain
#: 0.1 DN/e- ("low"), read noise 8 DN and gain 0.5 DN/e- ("high").
#: "vlow": realistic 12-bit Pleiades-like SNR, read noise 1 DN and gain 0.02 DN/e- (SNR about 130
#: at 400 DN, the mean level of the eval crops).
NOISE_LEVELS = {"low": (4.0 / 4095 ** 2, 0.1 / 4095), "high": (64.0 / 4095 ** 2, 0.5 / 4095),
                "vlow": (1.0 / 4095 ** 2, 0.02 / 4095)}
#: ``cli_default``: what ``sciml-inverse restore`` does by default (``--model auto``, VBLE-xz
#: with the exact Gaussian conditional, :func:`inverse.vble.default_options`).
VBLE_METHODS = ("map_z", "vble_z", "vble_xz", "cli_default")
CLASSICAL = ("tikhonov", "tv")
TIK_GRID = [10.0 ** e for e in torch.arange(-6.0, 0.01, 0.5).tolist()]
TV_GRID = [10.0 ** e for e in torch.arange(-7.0, -1.99, 0.5).tolist()]


@dataclass(frozen=True)
class Setting:
    """One degradation of the evaluation grid."""

    mtf: float
    decimation: int
    noise: str

    @property
    def name(self) -> str:
        return f"mtf{self.mtf:.2f}_d{self.decimation}_{self.noise}"

    def degradation(self):
        from inverse.satellite import PleiadesDegradation

        a, b = NOISE_LEVELS[self.noise]
        return PleiadesDegradation(mtf=self.mtf, decimation=self.decimation, noise_a=a,
                                   noise_b=b, n_bits=N_BITS)


# the "vlow" settings come last so that the seeds of the first eight (index-based) are unchanged
ALL_SETTINGS = ([Setting(m, d, n) for m in (0.1, 0.25) for d in (1, 2) for n in ("low", "high")]
                + [Setting(m, d, "vlow") for m in (0.1, 0.25) for d in (1, 2)])
QUICK_SETTINGS = [Setting(0.1, 1, "low"), Setting(0.25, 2, "high")]


# ------------------------------------------------------------------------------------------ data
def load_pan(rel: str, data_dir: Path) -> torch.Tensor:
    """A panchromatic GeoTIFF as a (H, W) float32 tensor in [0, 1] (DN / 4095)."""
    import tifffile

    path = data_dir / rel
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data-dir (the folder holding "
                                f"train/ and eval/)")
    arr = tifffile.imread(path).astype("float32")
    return torch.from_numpy(arr) / (2 ** N_BITS - 1)


#: Most no-data (DN exactly 0) a crop may hold: the pan images have no-data borders (the eval
#: image's first 231 rows are 0), which no method should be scored or tuned on.
MAX_NODATA = 0.001


def nodata_fraction(img: torch.Tensor, pos: tuple[int, int], size: int) -> float:
    i, j = pos
    return float((img[i:i + size, j:j + size] == 0).float().mean())


def crop_positions(img: torch.Tensor, size: int, n: int) -> list[tuple[int, int]]:
    """Fixed crop corners: the center first, then the four quadrant centers, skipping crops
    with more than :data:`MAX_NODATA` no-data pixels (DN 0)."""
    h, w = img.shape
    if size > min(h, w):
        raise ValueError(f"crop size {size} exceeds the image {(h, w)}")
    cands = [((h - size) // 2, (w - size) // 2)]
    for fy in (0.25, 0.75):
        for fx in (0.25, 0.75):
            cands.append((min(max(int(fy * h - size / 2), 0), h - size),
                          min(max(int(fx * w - size / 2), 0), w - size)))
    valid = [c for c in dict.fromkeys(cands) if nodata_fraction(img, c, size) <= MAX_NODATA]
    if len(valid) < n:
        raise ValueError(f"only {len(valid)} of the candidate {size}x{size} crops of a "
                         f"{h}x{w} image are free of no-data pixels; ask for fewer crops "
                         f"(--crops) or smaller ones (--crop-size)")
    return valid[:n]


def crops(img: torch.Tensor, size: int, n: int) -> list[tuple[tuple[int, int], torch.Tensor]]:
    return [((i, j), img[i:i + size, j:j + size][None, None].contiguous())
            for i, j in crop_positions(img, size, n)]


def degrade(x: torch.Tensor, setting: Setting, seed: int):
    deg = setting.degradation()
    g = torch.Generator().manual_seed(seed)
    y = deg.simulate(x, generator=g)
    return y, deg.operator(tuple(x.shape[1:])), deg.noise_model()


# ------------------------------------------------------------------------------------------ metrics
def _inner(t: torch.Tensor) -> torch.Tensor:
    return t[..., BORDER:-BORDER, BORDER:-BORDER]


def quality(x_hat: torch.Tensor, x: torch.Tensor) -> dict:
    from inverse.metrics import psnr, ssim

    return {"psnr": float(psnr(_inner(x_hat), _inner(x))),
            "ssim": float(ssim(_inner(x_hat), _inner(x)))}


def calibration(x_hat, std, x, samples=None) -> dict:
    from inverse.metrics import (
        calibration_report,
        default_levels,
        gaussian_coverage,
        sparsification,
    )

    s = None if samples is None else _inner(samples)
    out = calibration_report(_inner(x), _inner(x_hat), _inner(std), s).as_dict()
    # curves for the figures: empirical vs nominal coverage, and the sparsification curve
    levels = default_levels()
    cov = gaussian_coverage(_inner(x), _inner(x_hat), _inner(std), levels)
    sp = sparsification(_inner(x), _inner(x_hat), _inner(std), n_steps=20)
    out["coverage_curve"] = {"nominal": levels.tolist(), "empirical": cov.flatten().tolist()}
    out["sparsification_curve"] = {k: (v.tolist() if hasattr(v, "tolist") else v)
                                   for k, v in vars(sp).items()}
    return out


# ------------------------------------------------------------------------------------------ methods
def _regularizer(order: int, shape):
    from operators import Convolution, FiniteDifference

    if order == 1:
        return FiniteDifference(shape, boundary="circular")
    lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    return Convolution(lap, shape)


def tikhonov(y, op, mu: float, order: int) -> torch.Tensor:
    r"""Exact minimizer of ½‖Ax−y‖² + (μ/2)‖Lx‖² (plus 1e-10‖x‖² for uniqueness)."""
    from operators import Stack

    stacked = Stack([op, _regularizer(order, op.in_shape) * math.sqrt(mu)])
    return stacked.solve_normal(op.adjoint(y), 1e-10, rtol=1e-6, max_iter=2000)


def tv(y, op, lam: float, n_iter: int) -> torch.Tensor:
    from inverse import ADMMOptions, L2DataFidelity, TVPrior, admm
    from inverse.vble import initial_estimate

    rho = 10.0 * lam / 0.01  # penalty scaled like lam / |grad x| (|grad x| ~ 1e-2 here)
    res = admm(L2DataFidelity(op, y), TVPrior(max_iter=20, tol=0.0), lam=lam,
               x0=initial_estimate(y, op),
               options=ADMMOptions(rho=rho, max_iter=n_iter, tol=1e-6))
    return res.x


def run_vble(y, op, noise, cae, method: str, args, init=(1.0, 1.0)) -> dict:
    from inverse.vble import VBLEOptions, vble_restore

    if method == "cli_default":
        from inverse.vble import default_options

        opts = default_options(steps=args.n_iter, n_samples=args.samples,
                               return_samples=args.samples, seed=args.seed)
    else:
        opts = VBLEOptions(method=method, steps=args.n_iter, n_samples=args.samples,
                           return_samples=args.samples if method != "map_z" else 0,
                           seed=args.seed, a_init=init[0], b_init=init[1])
    res = vble_restore(y, op, noise, cae, opts)
    return {"x": res.x_mmse, "std": res.x_std, "zmmse": res.x_zmmse, "samples": res.samples,
            "seconds": res.seconds, "seconds_optimization": res.seconds_optimization,
            "seconds_per_sample": res.seconds_sampling / args.samples
            if method != "map_z" else None,
            "final_loss": res.history["loss"][-1] if res.history["loss"] else None,
            "decoder_error_scale": (float(res.params["decoder_error_scale"].mean())
                                    if "decoder_error_scale" in res.params else None)}


def decoder_fit_ceiling(cae, x: torch.Tensor, n_iter: int) -> float:
    """Best PSNR of D(y) fitted to the clean image x (Adam on y from g_a(x), lr 0.05)."""
    from inverse.metrics import psnr
    from inverse.vble._cae import crop, pad_to_multiple

    xp, size = pad_to_multiple(x, cae.pad_multiple)
    req = [p.requires_grad for p in cae.parameters()]
    cae.requires_grad_(False)
    try:
        with torch.no_grad():
            y0 = cae.analysis(xp)[0]
        y = y0.clone().requires_grad_(True)
        opt = torch.optim.Adam([y], lr=0.05)
        best = -math.inf
        for _ in range(n_iter + 1):
            xh = crop(cae.decode(y), size)
            with torch.no_grad():
                best = max(best, float(psnr(_inner(xh), _inner(x))))
            opt.zero_grad()
            ((xh - x) ** 2).sum().backward()
            opt.step()
    finally:
        for p, r in zip(cae.parameters(), req, strict=True):
            p.requires_grad_(r)
    return best


# ------------------------------------------------------------------------------------------ models
def load_models(args) -> dict:
    """The CAEs by bitrate name."""
    from inverse.vble import SHIPPED_MODELS, CAEConfig, CompressiveAutoencoder

    if args.tiny_random_cae:
        out = {}
        for i, name in enumerate(SHIPPED_MODELS):
            torch.manual_seed(args.seed + i)
            out[name] = CompressiveAutoencoder(CAEConfig(N=8, M=12)).eval()
        return out
    from inverse.vble import default_cae, load_cae

    def load(path):
        try:
            return load_cae(path)
        except ValueError:  # a training checkpoint (inverse.vble._train), e.g. mid-training
            from inverse.vble import load_training_checkpoint

            return load_training_checkpoint(path)[0]

    out = {}
    for name in SHIPPED_MODELS:
        path = getattr(args, f"model_{name}")
        # (load_cae keeps the 1e-9 likelihood floors of float16 files: nothing to repair here)
        out[name] = (load(path) if path else default_cae(name)).eval()
    return out


def describe_models(models: dict, args) -> dict:
    d = {}
    for name, m in models.items():
        path = getattr(args, f"model_{name}")
        d[name] = {"source": "tiny random CAE (test only)" if args.tiny_random_cae else
                   (str(path) if path else f"default_cae({name!r})"),
                   "config": m.config.to_dict(), "gamma": m.gamma}
    return d


# ------------------------------------------------------------------------------------------ tuning
def tune(settings, train_crops, models, args, log) -> dict:
    """Per setting, on train crops only: Tikhonov (mu, order) and TV lambda when classical methods
    are evaluated; the CAE bitrate and the VBLE initialization when VBLE methods are."""
    classical = any(m in args.methods for m in CLASSICAL)
    vble = any(m in args.methods for m in VBLE_METHODS)
    out = {}
    for s in settings:
        s_idx = ALL_SETTINGS.index(s)  # seeds independent of the --settings subset
        obs = [degrade(x, s, seed=10_000 + 100 * s_idx + k) + (x,)
               for k, (_, x) in enumerate(train_crops)]

        def mean_psnr(fn, obs=obs):
            return sum(quality(fn(y, op, nz), x)["psnr"] for y, op, nz, x in obs) / len(obs)

        res: dict = {}
        if classical:
            tik = {(mu, order): mean_psnr(lambda y, op, nz, mu=mu, order=order:
                                          tikhonov(y, op, mu, order))
                   for order in (1, 2) for mu in args.tik_grid}
            (mu, order), tik_best = max(tik.items(), key=lambda kv: kv[1])
            tvs = {lam: mean_psnr(lambda y, op, nz, lam=lam: tv(y, op, lam, args.tv_iter))
                   for lam in args.tv_grid}
            lam, tv_best = max(tvs.items(), key=lambda kv: kv[1])
            res.update({"tikhonov_mu": mu, "tikhonov_order": order,
                        "tikhonov_train_psnr": tik_best, "tv_lambda": lam,
                        "tv_train_psnr": tv_best,
                        "grid_edge": {"tikhonov": mu in (args.tik_grid[0], args.tik_grid[-1]),
                                      "tv": lam in (args.tv_grid[0], args.tv_grid[-1])}})
            log(f"[tune] {s.name}: Tikhonov mu={mu:.1e} order={order} ({tik_best:.2f} dB), "
                f"TV lambda={lam:.1e} ({tv_best:.2f} dB)")
        if vble:
            rate = {}
            for name, cae in models.items():
                targs = argparse.Namespace(**{**vars(args), "n_iter": args.tune_iter,
                                              "samples": 1})
                rate[name] = mean_psnr(lambda y, op, nz, cae=cae, targs=targs:
                                       run_vble(y, op, nz, cae, "map_z", targs)["x"])
            model = max(rate, key=rate.get)
            init, init_scores = (1.0, 1.0), {}
            if len(args.init_candidates) > 1:
                # VBLE-xz on the first train crop: best PSNR among the candidates whose 2-sigma
                # coverage is in [0.90, 0.98], else the coverage closest to nominal
                y, op, nz, x = obs[0]
                targs = argparse.Namespace(**{**vars(args), "samples": args.tune_samples})
                for cand in args.init_candidates:
                    r = run_vble(y, op, nz, models[model], "vble_xz", targs, init=cand)
                    init_scores[f"{cand[0]}:{cand[1]}"] = {
                        "psnr": quality(r["x"], x)["psnr"],
                        "coverage_2sigma": calibration(r["x"], r["std"], x)["coverage_2sigma"]}

                def score(c, scores=init_scores):
                    return scores[f"{c[0]}:{c[1]}"]

                ok = [c for c in args.init_candidates
                      if 0.90 <= score(c)["coverage_2sigma"] <= 0.98]
                if ok:
                    init = max(ok, key=lambda c: score(c)["psnr"])
                else:
                    init = min(args.init_candidates,
                               key=lambda c: abs(score(c)["coverage_2sigma"] - 0.9545))
            elif args.init_candidates:
                init = args.init_candidates[0]
            level = sum(float(y.mean()) for y, *_ in obs) / len(obs)
            nvar = float(obs[0][2].variance(torch.tensor(level)))
            res.update({"model": model, "map_z_train_psnr": rate, "vble_init": list(init),
                        "noise_std": math.sqrt(nvar), "mean_level": level,
                        "vble_init_train_scores": init_scores})
            log(f"[tune] {s.name}: model={model} {rate}, VBLE init (a, b)={tuple(init)} "
                f"{init_scores}")
        out[s.name] = res
    return out


# ------------------------------------------------------------------------------------------ rule
def auto_rule_from_tuning(tuning: dict, models: dict):
    """The ``--model auto`` table from the per-setting model choices on train crops."""
    from inverse.vble import AutoRule

    entries = []
    for name, t in tuning.items():
        if "model" not in t or "noise_std" not in t:
            continue
        s = next(s for s in ALL_SETTINGS + QUICK_SETTINGS if s.name == name)
        entries.append({"setting": name, "decimation": s.decimation, "mtf": s.mtf,
                        "noise_std": t["noise_std"], "model": t["model"],
                        "map_z_train_psnr": t["map_z_train_psnr"]})
    if not entries:
        return None
    return AutoRule(tuple(entries), source="examples/vble_satellite_eval.py tuning on train crops "
                    f"{list(TRAIN_IMAGES)} (MAP-z PSNR per setting); models {sorted(models)}")


# ------------------------------------------------------------------------------------------ figures
PANEL_METHODS = ("vble_xz", "cli_default", "tv")


def save_panel_arrays(folder: Path, setting: str, method: str, x, y, out) -> None:
    """Arrays of crop 0 for the restoration panels (``panels/<setting>.npz``, merged)."""
    import numpy as np

    if method not in PANEL_METHODS:
        return
    path = Path(folder) / "panels" / f"{setting}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(np.load(path)) if path.is_file() else {}
    arrays["truth"] = x[0, 0].numpy()
    arrays["observed"] = y[0, 0].numpy()
    arrays[f"{method}_x"] = out["x"][0, 0].detach().numpy()
    if out.get("std") is not None:
        arrays[f"{method}_std"] = out["std"][0, 0].detach().numpy()
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def make_figures(state: dict, folder: Path, settings) -> list[Path]:
    """Restoration panels per setting, the calibration curve and the sparsification plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for s in settings:
        path = folder / "panels" / f"{s.name}.npz"
        if not path.is_file():
            continue
        a = dict(np.load(path))
        if "cli_default_x" not in a:
            continue
        lo, hi = np.percentile(a["truth"], [0.5, 99.5])
        cols = [("truth", a["truth"]), ("observed", a["observed"])]
        cols += [(lab, a[k]) for lab, k in (("VBLE-xz (published)", "vble_xz_x"),
                                            ("CLI default", "cli_default_x"),
                                            ("TV", "tv_x")) if k in a]
        err = np.abs(a["cli_default_x"] - a["truth"])
        std = a.get("cli_default_std")
        fig, axes = plt.subplots(1, len(cols) + 2, figsize=(2.6 * (len(cols) + 2), 3.0))
        for ax, (lab, im) in zip(axes, cols, strict=False):
            ax.imshow(im, cmap="gray", vmin=lo, vmax=hi)
            psnr = ""
            if lab not in ("truth", "observed"):
                mean_psnr = state["results"][s.name].get(_method_of(lab), {}).get("psnr")
                psnr = f"\n{mean_psnr:.2f} dB (mean)" if mean_psnr is not None else ""
            ax.set_title(lab + psnr, fontsize=8)
        vmax = float(np.percentile(err, 99.5)) * 4095
        im = axes[-2].imshow(err * 4095, cmap="magma", vmin=0, vmax=vmax)
        axes[-2].set_title("|error| CLI default (DN)", fontsize=8)
        fig.colorbar(im, ax=axes[-2], fraction=0.046)
        if std is not None:
            im = axes[-1].imshow(std * 4095, cmap="magma", vmin=0, vmax=vmax / 2)
            axes[-1].set_title("std CLI default (DN)", fontsize=8)
            fig.colorbar(im, ax=axes[-1], fraction=0.046)
        for ax in axes:
            ax.set_axis_off()
        fig.suptitle(s.name, fontsize=9)
        fig.tight_layout()
        out = folder / f"panel_{s.name}.png"
        fig.savefig(out, dpi=80)
        plt.close(fig)
        written.append(out)
    # calibration and sparsification, per method, over all settings and crops
    fig_c, ax_c = plt.subplots(figsize=(4.2, 4.2))
    fig_s, ax_s = plt.subplots(figsize=(4.6, 4.2))
    ax_c.plot([0, 1], [0, 1], "k:", lw=1, label="ideal")
    for m, color in (("vble_xz", "C0"), ("cli_default", "C3"), ("vble_z", "C2")):
        recs = [r for r in state["records"] if r["method"] == m and "coverage_curve" in r]
        if not recs:
            continue
        nom = np.asarray(recs[0]["coverage_curve"]["nominal"])
        emp = np.mean([r["coverage_curve"]["empirical"] for r in recs], axis=0)
        ax_c.plot(nom, emp, color=color, label=f"{_label(m)} ({len(recs)} restorations)")
        fr = np.asarray(recs[0]["sparsification_curve"]["fractions"])
        by_std = np.mean([r["sparsification_curve"]["by_std"] for r in recs], axis=0)
        oracle = np.mean([r["sparsification_curve"]["oracle"] for r in recs], axis=0)
        ax_s.plot(fr, by_std, color=color, label=f"{_label(m)}: by std")
        ax_s.plot(fr, oracle, color=color, ls="--", lw=1, label=f"{_label(m)}: oracle")
    ax_c.set_xlabel("nominal coverage")
    ax_c.set_ylabel("empirical coverage")
    ax_c.set_title("Calibration (mean over settings and crops)", fontsize=9)
    ax_c.legend(fontsize=7)
    ax_s.set_xlabel("fraction of pixels removed (largest std first)")
    ax_s.set_ylabel("relative MSE of the rest")
    ax_s.set_title("Sparsification", fontsize=9)
    ax_s.legend(fontsize=7)
    for fig, name in ((fig_c, "calibration.png"), (fig_s, "sparsification.png")):
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        written.append(folder / name)
    return written


def _label(m: str) -> str:
    return {"vble_xz": "VBLE-xz (published)", "cli_default": "CLI default",
            "vble_z": "VBLE-z", "tv": "TV"}.get(m, m)


def _method_of(label: str) -> str:
    return {"VBLE-xz (published)": "vble_xz", "CLI default": "cli_default", "TV": "tv"}[label]


# ------------------------------------------------------------------------------------------ driver
def aggregate(records: list[dict], settings, methods) -> tuple[dict, dict]:
    keys = ("psnr", "ssim", "psnr_zmmse", "decoder_error_scale", "seconds", "seconds_per_sample",
            "zscore_mean", "zscore_std", "coverage_1sigma", "coverage_2sigma", "coverage_3sigma",
            "auce",
            "auce_samples", "uce", "ence", "ause", "nll", "spearman")
    results: dict = {}
    for s in settings:
        results[s.name] = {}
        for m in methods:
            rs = [r for r in records if r["setting"] == s.name and r["method"] == m]
            if not rs:
                continue
            agg = {"n_crops": len(rs)}
            for k in keys:
                vals = [r.get(k) for r in rs if r.get(k) is not None]
                agg[k] = sum(vals) / len(vals) if vals else None
            results[s.name][m] = agg
    summary = {}
    for m in methods:
        ps = [results[s.name][m]["psnr"] for s in settings if m in results.get(s.name, {})]
        if ps:
            summary[m] = {"mean_psnr": sum(ps) / len(ps), "n_settings": len(ps)}
    return results, summary


def rst_table(results: dict, settings, methods) -> str:
    head = ["setting"] + [f"{m} PSNR/SSIM" for m in methods] + \
        ["CLI default cov2σ / z-std", "VBLE-xz cov2σ / z-std", "VBLE-z cov2σ / z-std"]
    rows = []
    for s in settings:
        r = results.get(s.name, {})
        row = [s.name]
        for m in methods:
            v = r.get(m)
            row.append(f"{v['psnr']:.2f} / {v['ssim']:.3f}" if v else "-")
        for m in ("cli_default", "vble_xz", "vble_z"):
            v = r.get(m)
            row.append(f"{v['coverage_2sigma']:.3f} / {v['zscore_std']:.2f}"
                       if v and v.get("coverage_2sigma") is not None else "-")
        rows.append(row)
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    line = " ".join("=" * w for w in widths)
    fmt = lambda r: " ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line, fmt(head), line, *map(fmt, rows), line])


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, required=True, help="results file (also the resume file)")
    p.add_argument("--quick", action="store_true",
                   help="smoke setting: 2 degradations, one 64x64 crop, few iterations")
    p.add_argument("--tiny-random-cae", action="store_true",
                   help="test only: tiny random CAEs instead of the shipped weights")
    p.add_argument("--model-xlow", type=Path, default=None, help="checkpoint (load_cae) of the "
                   "lowest-bitrate CAE; default: the shipped default_cae('xlow')")
    p.add_argument("--model-low", type=Path, default=None, help="same for 'low'")
    p.add_argument("--model-high", type=Path, default=None, help="same for 'high'")
    p.add_argument("--model-xhigh", type=Path, default=None, help="same for 'xhigh'")
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--crops", type=int, default=2,
                   help="eval crops (center, then quadrants; crops with no-data skipped)")
    p.add_argument("--train-crop-size", type=int, default=128)
    p.add_argument("--settings", nargs="*", default=None,
                   help="subset of setting names (e.g. mtf0.10_d1_low); default: all 8")
    p.add_argument("--methods", nargs="*", default=list(VBLE_METHODS + CLASSICAL))
    p.add_argument("--n-iter", type=int, default=300)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--tune-iter", type=int, default=100, help="MAP-z iterations in tuning")
    p.add_argument("--tv-iter", type=int, default=100, help="ADMM iterations of TV")
    p.add_argument("--ceiling-iter", type=int, default=150,
                   help="iterations of the decoder fit ceiling (0: skip it)")
    p.add_argument("--init-candidates", nargs="+", default=["1:1", "0.1:0.1"],
                   help="candidate (a_init:b_init) of VBLE, chosen per setting on a train crop "
                        "(one candidate: no tuning)")
    p.add_argument("--tune-samples", type=int, default=30,
                   help="posterior samples when tuning the VBLE initialization")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="merge these result files (runs with the same configuration over "
                        "different --settings, e.g. in parallel) into --json and exit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--figures", type=Path, default=None,
                   help="folder for the restoration panels, calibration and sparsification plots")
    p.add_argument("--write-auto-rule", type=Path, default=None,
                   help="write the --model auto table fitted by the tuning (train crops) here")
    args = p.parse_args(argv)
    bad = set(args.methods) - set(VBLE_METHODS + CLASSICAL)
    if bad:
        p.error(f"unknown methods {sorted(bad)}; choose from {VBLE_METHODS + CLASSICAL}")
    if args.crop_size < 64 or args.crop_size % 2:
        p.error("--crop-size must be an even number >= 64")
    try:
        args.init_candidates = [tuple(float(v) for v in c.split(":")) for c in
                                args.init_candidates]
        if any(len(c) != 2 for c in args.init_candidates):
            raise ValueError
    except ValueError:
        p.error("--init-candidates takes pairs a_init:b_init, e.g. 1:1 0.1:0.1")
    args.tik_grid, args.tv_grid = TIK_GRID, TV_GRID
    if args.quick:
        args.crop_size, args.crops, args.train_crop_size = 64, 1, 64
        args.n_iter, args.samples, args.tune_iter = 4, 4, 2
        args.tv_iter, args.ceiling_iter, args.tune_samples = 5, 3, 3
        args.tik_grid, args.tv_grid = [1e-4, 1e-2], [1e-5, 1e-4]
    return args


def merge(paths: list[Path], out: Path, methods: list[str]) -> dict:
    """Union of result files written with the same configuration (files holding only the
    classical methods may come from runs with other models or VBLE options)."""
    states = [json.loads(p.read_text()) for p in paths]

    def has_vble(st):
        return any(r["method"] in VBLE_METHODS for r in st["records"])

    def common(cfg):
        return {k: v for k, v in cfg.items() if k not in ("models", "init_candidates",
                                                            "tune_iter", "tune_samples",
                                                            "ceiling_iter", "n_iter",
                                                            "samples")}

    config = states[0]["config"]
    vble_cfgs = [st["config"] for st in states if has_vble(st)]
    for p, st in zip(paths, states, strict=True):
        if common(st["config"]) != common(config):
            raise SystemExit(f"{p} was written with another configuration than {paths[0]}")
        if has_vble(st) and st["config"] != vble_cfgs[0]:
            raise SystemExit(f"{p} has VBLE results with another model or VBLE configuration "
                             f"than the other files")
    if vble_cfgs:
        config = vble_cfgs[0]
    merged = {"config": config, "tuning": {}, "records": [], "decoder_fit_ceiling": {}}
    seen = set()
    for st in states:
        for name, t in st["tuning"].items():
            merged["tuning"].setdefault(name, {}).update(t)
        merged["decoder_fit_ceiling"].update(st["decoder_fit_ceiling"])
        for r in st["records"]:
            key = (r["setting"], r["crop"], r["method"])
            if key not in seen:
                seen.add(key)
                merged["records"].append(r)
    settings = [s for s in ALL_SETTINGS + QUICK_SETTINGS if s.name in merged["tuning"]]
    settings = list({s.name: s for s in settings}.values())
    methods = [m for m in VBLE_METHODS + CLASSICAL if m in methods]
    merged["results"], merged["summary"] = aggregate(merged["records"], settings, methods)
    merged["table_rst"] = rst_table(merged["results"], settings, methods)
    write_json(out, merged)
    print(merged["table_rst"])
    return merged


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.merge:
        merged = merge(args.merge, args.json, args.methods)
        settings = [s for s in ALL_SETTINGS if s.name in merged["tuning"]]
        from inverse.vble import SHIPPED_MODELS

        rule = auto_rule_from_tuning(merged["tuning"], dict.fromkeys(SHIPPED_MODELS))
        if args.write_auto_rule and rule is not None:
            write_json(args.write_auto_rule, rule.to_dict())
        if args.figures:
            make_figures(merged, args.figures, settings)
        return merged
    torch.set_num_threads(args.threads)
    settings = QUICK_SETTINGS if args.quick else ALL_SETTINGS
    if args.settings:
        unknown = set(args.settings) - {s.name for s in ALL_SETTINGS}
        if unknown:
            raise SystemExit(f"unknown settings {sorted(unknown)}; names look like "
                             f"{ALL_SETTINGS[0].name}")
        settings = [s for s in ALL_SETTINGS if s.name in args.settings]

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    models = load_models(args)
    eval_img = load_pan(EVAL_IMAGE, args.data_dir)
    corners = crop_positions(eval_img, args.crop_size, args.crops)
    config = {"eval_crops": [list(c) for c in corners], "crop_size": args.crop_size,
              "max_nodata_fraction": MAX_NODATA,
              "crops": args.crops, "n_iter": args.n_iter,
              "samples": args.samples, "seed": args.seed, "quick": args.quick,
              "models": describe_models(models, args), "noise_levels": NOISE_LEVELS,
              "train_crop_size": args.train_crop_size, "tune_iter": args.tune_iter,
              "tv_iter": args.tv_iter, "border": BORDER,
              "init_candidates": [list(c) for c in args.init_candidates],
              "tune_samples": args.tune_samples, "eval_image": EVAL_IMAGE,
              "train_images": list(TRAIN_IMAGES)}
    state = {"config": config, "tuning": {}, "records": [], "decoder_fit_ceiling": {}}
    if args.json.is_file():
        old = json.loads(args.json.read_text())
        if old.get("config") == json.loads(json.dumps(config, default=float)):
            state.update({k: old[k] for k in ("tuning", "records", "decoder_fit_ceiling")
                          if k in old})
            log(f"resuming from {args.json}: {len(state['records'])} records")

    def save() -> None:
        methods = [m for m in VBLE_METHODS + CLASSICAL if m in args.methods]
        state["results"], state["summary"] = aggregate(state["records"], settings, methods)
        state["table_rst"] = rst_table(state["results"], settings, methods)
        write_json(args.json, state)

    # tuning on train crops (never the eval image)
    todo = [s for s in settings if s.name not in state["tuning"]]
    if todo:
        train = []
        for rel in TRAIN_IMAGES:
            train += crops(load_pan(rel, args.data_dir), args.train_crop_size, 1)
        state["tuning"].update(tune(todo, train, models, args, log))
        save()

    ev = crops(eval_img, args.crop_size, args.crops)
    for c_idx, (_, x) in enumerate(ev):
        key = f"crop{c_idx}"
        for name, cae in models.items():
            if args.ceiling_iter == 0 or not any(m in args.methods for m in VBLE_METHODS):
                break
            if f"{key}_{name}" not in state["decoder_fit_ceiling"]:
                state["decoder_fit_ceiling"][f"{key}_{name}"] = decoder_fit_ceiling(
                    cae, x, args.ceiling_iter)
                log(f"[ceiling] {key} {name}: "
                    f"{state['decoder_fit_ceiling'][f'{key}_{name}']:.2f} dB")
                save()
    from inverse.vble import select_model

    rule = auto_rule_from_tuning(state["tuning"], models)
    if args.write_auto_rule and rule is not None:
        write_json(args.write_auto_rule, rule.to_dict())
        log(f"auto rule written to {args.write_auto_rule}")
    if "cli_default" in args.methods and rule is None:
        raise SystemExit("cli_default needs the model choices of the tuning (VBLE methods)")
    done = {(r["setting"], r["crop"], r["method"]) for r in state["records"]}
    for s in settings:
        s_idx = ALL_SETTINGS.index(s)
        tun = state["tuning"][s.name]
        for c_idx, (pos, x) in enumerate(ev):
            y, op, noise = degrade(x, s, seed=1000 * (s_idx + 1) + c_idx)
            for m in [m for m in VBLE_METHODS + CLASSICAL if m in args.methods]:
                if (s.name, c_idx, m) in done:
                    continue
                t0 = time.perf_counter()
                rec = {"setting": s.name, "crop": c_idx, "crop_corner": list(pos), "method": m}
                if m == "tikhonov":
                    out = {"x": tikhonov(y, op, tun["tikhonov_mu"], tun["tikhonov_order"])}
                elif m == "tv":
                    out = {"x": tv(y, op, tun["tv_lambda"], args.tv_iter)}
                elif m == "cli_default":
                    # what `sciml-inverse restore` does: the model from the auto rule fitted on
                    # this run's train-crop tuning, default options (no per-setting tuning)
                    nstd = math.sqrt(float(noise.variance(y.mean())))
                    rec["model"] = select_model(nstd, s.decimation, s.mtf, rule)
                    rec["noise_std"] = nstd
                    out = run_vble(y, op, noise, models[rec["model"]], m, args)
                else:
                    rec["model"] = tun["model"]
                    rec["vble_init"] = tun["vble_init"]
                    out = run_vble(y, op, noise, models[tun["model"]], m, args,
                                   init=tuple(tun["vble_init"]))
                if m in VBLE_METHODS:
                    rec["psnr_zmmse"] = quality(out["zmmse"], x)["psnr"]
                    rec["seconds_per_sample"] = out["seconds_per_sample"]
                    rec["final_loss"] = out["final_loss"]
                    rec["decoder_error_scale"] = out["decoder_error_scale"]
                    if m != "map_z":
                        rec.update(calibration(out["x"], out["std"], x, out["samples"]))
                rec["seconds"] = out.get("seconds", time.perf_counter() - t0)
                rec.update(quality(out["x"], x))
                if args.figures and c_idx == 0:
                    save_panel_arrays(args.figures, s.name, m, x, y, out)
                state["records"].append(rec)
                save()
                extra = (f", cov2σ {rec['coverage_2sigma']:.3f}, z-std {rec['zscore_std']:.2f}"
                         if "coverage_2sigma" in rec else "")
                log(f"[eval] {s.name} crop{c_idx} {m}: {rec['psnr']:.2f} dB, SSIM "
                    f"{rec['ssim']:.3f}{extra}, {rec['seconds']:.1f} s")
    save()
    print(state["table_rst"])
    if args.figures:
        make_figures(state, args.figures, settings)
    return state


if __name__ == "__main__":
    main(sys.argv[1:])
