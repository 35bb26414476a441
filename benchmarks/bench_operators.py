"""Benchmark of ``operators`` against deepinv and raw ``torch.fft`` (circular blur, one process).

Cases (float32):

* ``fwd_adj``: ``Convolution`` (circular, 9x9 Gaussian PSF) forward + adjoint, against deepinv
  ``BlurFFT``, deepinv ``Blur(padding="circular", use_fft=True)`` and the raw expression
  ``irfft2(otf * rfft2(x))`` + ``irfft2(otf.conj() * rfft2(y))`` with a cached OTF;
* ``gram``: ``op.gram()(x)`` (one Fourier multiplier) against deepinv ``A_adjoint(A(x))`` and
  ``A_adjoint_A(x)`` (``BlurFFT``);
* ``solve``: ``(Decimation(2) @ Convolution).solve_normal`` (closed form of Zhao et al. 2016)
  against 20 iterations of :func:`operators.cg` on the same normal equations and deepinv's
  ``Downsampling(..., padding="circular").prox_l2`` (also closed form), with the accuracy each
  achieves (float64 residual and error against a float64 closed form).
* ``solve_neumann`` (float64): Tikhonov-gradient denoising ``Stack([I, sqrt(lam) * D])`` with
  Neumann finite differences ``D``: the DCT closed form of ``solve_normal`` against
  :func:`operators.cg` at its float64 default tolerance, with the accuracy each achieves.

Correctness is checked first (relative error < 1e-5 between implementations; printed as
``ok``/``MISMATCH``, never asserted). Timing interleaves the implementations round by round
(``for round: for impl: time a short inner loop``) because these machines drift; per case it
reports each implementation's median seconds per call and the median over rounds of the ratio
ours/peer, next to the targets.

Usage::

    python benchmarks/bench_operators.py [--json PATH] [--device cpu|cuda] [--rounds N] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import deepinv as dinv
import torch
from torch.fft import irfft2, rfft2

import operators
from operators import Convolution, Decimation, Identity
from operators.interop import to_deepinv
from sciml_inverse import write_json

RTOL_OK = 1e-5

# case -> {peer: largest acceptable median ratio ours/peer}
TARGETS = {
    "fwd_adj": {"raw_torch": 1.10, "deepinv_BlurFFT": 0.90},
    "gram": {"deepinv_A_adjoint(A(x))": 0.60},
    "solve": {"cg_20": 0.10},
    "solve_neumann": {"cg_default": 0.10},
}


# ------------------------------------------------------------------------------------- helpers
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_calls(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` averaged over ``n`` back-to-back calls."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / n
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def _loadavg() -> list[float] | None:
    """1, 5 and 15 minute load averages (other processes skew CPU timings), if available."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def _gaussian_psf(size: int, sigma: float, device, dtype=torch.float32) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(device=device, dtype=dtype)


@dataclass
class Case:
    name: str
    shape: tuple[int, ...]
    impls: dict[str, Callable[[], object]]
    ours: tuple[str, ...]  # implementations that are "ours" (ratios are ours/peer)
    peers: tuple[str, ...]
    checks: list[dict] = field(default_factory=list)
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ours, peer) ratio pairs
    dtype: str = "float32"
    cg_key: str = "cg_20"  # the CG implementation whose accuracy the closed form must match


def _check(case: Case, what: str, a: torch.Tensor, b: torch.Tensor, gated: bool = True) -> None:
    err = _rel(a, b)
    case.checks.append({"what": what, "rel_err": err, "gated": gated,
                        "ok": (err < RTOL_OK) if gated else None})


# --------------------------------------------------------------------------------------- cases
def case_fwd_adj(shape, psf, device) -> Case:
    b, c, h, w = shape
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(shape, generator=gen).to(device)
    y = torch.rand(shape, generator=gen).to(device)
    op = Convolution(psf, (c, h, w)).to(device)
    filt = psf.reshape(1, 1, *psf.shape)
    blurfft = dinv.physics.BlurFFT(img_size=(c, h, w), filter=filt, device=device)
    blur = dinv.physics.Blur(filter=filt, padding="circular", use_fft=True, device=device)
    otf = op.otf[..., : w // 2 + 1].contiguous()  # cached half-spectrum OTF for the raw baseline

    def raw_fwd(t):
        return irfft2(otf * rfft2(t), s=(h, w))

    def raw_adj(t):
        return irfft2(otf.conj() * rfft2(t), s=(h, w))

    impls = {
        "ours": lambda: (op(x), op.adjoint(y)),
        "raw_torch": lambda: (raw_fwd(x), raw_adj(y)),
        "deepinv_BlurFFT": lambda: (blurfft.A(x), blurfft.A_adjoint(y)),
        "deepinv_Blur_fft": lambda: (blur.A(x), blur.A_adjoint(y)),
    }
    case = Case("fwd_adj", shape, impls, ("ours",),
                ("raw_torch", "deepinv_BlurFFT", "deepinv_Blur_fft"))
    case.pairs = [("ours", p) for p in case.peers]
    with torch.no_grad():
        fo, ao = op(x), op.adjoint(y)
        for name in case.peers:
            f, a = impls[name]()
            _check(case, f"A: ours vs {name}", fo, f)
            _check(case, f"A^H: ours vs {name}", ao, a)
    return case


def case_gram(shape, psf, device) -> Case:
    b, c, h, w = shape
    x = torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(device)
    op = Convolution(psf, (c, h, w)).to(device)
    gram = op.gram()
    blurfft = dinv.physics.BlurFFT(img_size=(c, h, w), filter=psf.reshape(1, 1, *psf.shape),
                                   device=device)
    impls = {
        "ours": lambda: gram(x),
        "ours_incl_gram()": lambda: op.gram()(x),
        "deepinv_A_adjoint(A(x))": lambda: blurfft.A_adjoint(blurfft.A(x)),
        "deepinv_A_adjoint_A": lambda: blurfft.A_adjoint_A(x),
    }
    case = Case("gram", shape, impls, ("ours", "ours_incl_gram()"),
                ("deepinv_A_adjoint(A(x))", "deepinv_A_adjoint_A"))
    case.pairs = [("ours", p) for p in case.peers] + [("ours_incl_gram()",
                                                       "deepinv_A_adjoint(A(x))")]
    with torch.no_grad():
        g = gram(x)
        _check(case, "ours vs op.adjoint(op(x))", g, op.adjoint(op(x)))
        for name in case.peers:
            _check(case, f"ours vs {name}", g, impls[name]())
    return case


def case_solve(shape, psf, device, rho: float = 0.01, cg_iter: int = 20) -> Case:
    b, c, h, w = shape
    s = (c, h, w)
    gen = torch.Generator().manual_seed(2)
    A = Decimation(2, s) @ Convolution(psf, s).to(device)
    A64 = Decimation(2, s) @ Convolution(psf.double(), s).to(device)
    x_true = torch.rand(shape, generator=gen).to(device)
    z = torch.rand(shape, generator=gen).to(device)
    y = A(x_true) + 0.01 * torch.randn((b, c, h // 2, w // 2), generator=gen).to(device)
    gamma = 1.0 / rho
    rhs = A.adjoint(y) + rho * z  # prox_l2(z, y, gamma) solves (AᴴA + ρI) x = Aᴴy + z/γ
    normal = A.gram() + rho * Identity(s)
    physics_ours = to_deepinv(A)
    down = dinv.physics.Downsampling(img_size=s, filter=psf.reshape(1, 1, *psf.shape), factor=2,
                                     padding="circular", device=device)

    impls = {
        "ours": lambda: A.solve_normal(rhs, rho),
        "ours_prox_l2": lambda: physics_ours.prox_l2(z, y, gamma),
        "cg_20": lambda: operators.cg(normal, rhs, max_iter=cg_iter, rtol=1e-12).solution,
        "deepinv_prox_l2": lambda: down.prox_l2(z, y, gamma),
    }
    case = Case("solve", shape, impls, ("ours", "ours_prox_l2"), ("cg_20", "deepinv_prox_l2"))
    case.pairs = [("ours", "cg_20"), ("ours", "deepinv_prox_l2"),
                  ("ours_prox_l2", "deepinv_prox_l2")]
    with torch.no_grad():
        b64 = A64.adjoint(y.double()) + rho * z.double()
        x_ref = A64.solve_normal(b64, rho)
        _check(case, "A: ours vs deepinv Downsampling", A(x_true), down.A(x_true))
        _check(case, "A^H: ours vs deepinv Downsampling", A.adjoint(y), down.A_adjoint(y))
        for name, fn in impls.items():
            out = fn()
            x64 = out.double()
            res = A64.adjoint(A64(x64)) + rho * x64 - b64
            acc = {"rel_residual": float(res.norm() / b64.norm()), "rel_err": _rel(x64, x_ref)}
            case.accuracy[name] = acc
            _check(case, f"{name} vs float64 closed form", out, x_ref,
                   gated=(name != "cg_20"))
    return case


def case_solve_neumann(shape, device, lam: float = 0.5, rho: float = 1e-3) -> Case:
    s = tuple(shape[1:])
    gen = torch.Generator().manual_seed(3)
    A = operators.Stack([Identity(s), math.sqrt(lam) * operators.FiniteDifference(s)])
    b = torch.rand(shape, generator=gen, dtype=torch.float64).to(device)
    normal = A.gram() + torch.tensor(rho, dtype=torch.float64) * Identity(s)
    impls = {"ours": lambda: A.solve_normal(b, rho),
             "cg_default": lambda: operators.cg(normal, b).solution}
    case = Case("solve_neumann", shape, impls, ("ours",), ("cg_default",), dtype="float64",
                cg_key="cg_default")
    case.pairs = [("ours", "cg_default")]
    with torch.no_grad():
        x_ref = impls["ours"]()
        for name, fn in impls.items():
            x = fn()
            res = normal(x) - b
            case.accuracy[name] = {"rel_residual": float(res.norm() / b.norm()),
                                   "rel_err": _rel(x, x_ref)}
        _check(case, "closed form vs CG (default rtol)", impls["cg_default"](), x_ref)
    return case


# ------------------------------------------------------------------------------------- timing
def run_case(case: Case, rounds: int, device: torch.device, target_s: float) -> dict:
    names = list(case.impls)
    with torch.no_grad():
        inner = {}
        for name in names:  # warm-up, then size the inner loop to ~target_s per measurement
            fn = case.impls[name]
            for _ in range(2):
                fn()
            _sync(device)
            t = _time_calls(fn, 1, device)
            inner[name] = max(1, min(50, math.ceil(target_s / max(t, 1e-9))))
        times: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(rounds):
            for name in names:
                times[name].append(_time_calls(case.impls[name], inner[name], device))
    med = {n: statistics.median(v) for n, v in times.items()}
    ratios = {}
    for ours, peer in case.pairs:
        r = [a / b for a, b in zip(times[ours], times[peer], strict=True)]
        key = f"{ours}/{peer}"
        target = TARGETS.get(case.name, {}).get(peer) if ours == "ours" else None
        ratios[key] = {"median": statistics.median(r), "min": min(r), "max": max(r),
                       "target_max": target,
                       "met": None if target is None else statistics.median(r) <= target}
    if case.accuracy:  # "at equal or better accuracy" (float32 floor: the 1e-5 gate)
        acc, key = case.accuracy, case.cg_key
        floor = RTOL_OK if case.dtype == "float32" else 1e-12
        ratios[f"ours/{key}"]["accuracy_ok"] = (
            acc["ours"]["rel_residual"] <= max(acc[key]["rel_residual"], floor)
            if case.name == "solve_neumann" else
            acc["ours"]["rel_err"] <= max(acc[key]["rel_err"], floor))
    return {"name": case.name, "shape": list(case.shape), "dtype": case.dtype,
            "inner_calls": inner, "median_s": med, "times_s": times, "ratios": ratios,
            "checks": case.checks, "accuracy": case.accuracy}


# ------------------------------------------------------------------------------------- output
def _fmt_shape(shape) -> str:
    return "x".join(str(s) for s in shape)


def print_report(results: list[dict], meta: dict) -> None:
    print(f"\noperators benchmark  device={meta['device']} ({meta['device_name']})  "
          f"torch {meta['torch']}  deepinv {meta['deepinv']}  threads={meta['threads']}  "
          f"rounds={meta['rounds']}  load average={meta['loadavg_before']}")
    print("\ncorrectness (relative error; gate < 1e-5)")
    for res in results:
        for chk in res["checks"]:
            flag = ("ok" if chk["ok"] else "MISMATCH") if chk["gated"] else "(not gated)"
            print(f"  {res['name']:8s} {_fmt_shape(res['shape']):>14s}  {chk['what']:48s} "
                  f"{chk['rel_err']:9.2e}  {flag}")
    print("\ntiming (median over rounds; ratio = median of per-round ours/peer)")
    print(f"  {'case':8s} {'shape':>14s}  {'impl':26s} {'median ms':>10s}   "
          f"{'ratio':22s} {'target':>8s}")
    for res in results:
        ratio_of = {k.split("/", 1)[1]: (k, v) for k, v in res["ratios"].items()
                    if k.startswith("ours/")}
        for name, t in res["median_s"].items():
            col, tgt = "", ""
            if name in ratio_of:
                key, r = ratio_of[name]
                col = f"ours/this = {r['median']:.3f}"
                if r["target_max"] is not None:
                    tgt = f"<= {r['target_max']:.2f} {'met' if r['met'] else 'MISSED'}"
            print(f"  {res['name']:8s} {_fmt_shape(res['shape']):>14s}  {name:26s} "
                  f"{t * 1e3:10.3f}   {col:22s} {tgt}")
        for key, r in res["ratios"].items():
            if not key.startswith("ours/"):
                print(f"  {'':8s} {'':>14s}  {key:26s} {'':10s}   ratio = {r['median']:.3f}")
        if res["accuracy"]:
            for name, acc in res["accuracy"].items():
                print(f"  {'':8s} {'':>14s}  accuracy {name:17s} rel. residual "
                      f"{acc['rel_residual']:.2e}, rel. error vs closed form {acc['rel_err']:.2e}")
            ok = next(r.get("accuracy_ok") for k, r in res["ratios"].items()
                      if k.startswith("ours/cg_"))
            print(f"  {'':8s} {'':>14s}  closed form at equal or better accuracy than CG: "
                  f"{'yes' if ok else 'NO'}")


# --------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="write the results to this JSON file")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved timing rounds (default 25, or 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few rounds (a smoke test, not a measurement)")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 25
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("--device cuda requested but torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    if args.quick:
        blur_shapes, solve_shapes = [(2, 1, 64, 64), (1, 3, 96, 96)], [(2, 1, 64, 64)]
        target_s = 2e-3
    else:
        blur_shapes, solve_shapes = [(8, 1, 256, 256), (1, 3, 1024, 1024)], [(8, 1, 256, 256)]
        target_s = 2e-2
    psf = _gaussian_psf(9, 2.0, device)
    meta = {"device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "torch": torch.__version__, "deepinv": dinv.__version__,
            "operators": operators.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "rounds": args.rounds, "quick": args.quick,
            "psf": "9x9 Gaussian, sigma=2, circular", "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "loadavg_before": _loadavg()}
    t0 = time.perf_counter()
    results = []
    for shape in blur_shapes:
        for build in (case_fwd_adj, case_gram):
            results.append(run_case(build(shape, psf, device), args.rounds, device, target_s))
    for shape in solve_shapes:
        results.append(run_case(case_solve(shape, psf, device), args.rounds, device, target_s))
    neumann_shape = (2, 1, 64, 64) if args.quick else (8, 1, 256, 256)
    results.append(run_case(case_solve_neumann(neumann_shape, device), args.rounds, device,
                            target_s))
    meta["wall_s"] = time.perf_counter() - t0
    meta["loadavg_after"] = _loadavg()
    print_report(results, meta)
    print(f"\ntotal {meta['wall_s']:.1f} s")
    if args.json:
        write_json(args.json, {"meta": meta, "cases": results})
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
