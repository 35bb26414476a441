"""Benchmark of ``sciml.nde.odeint`` (with recording) against ``torchdiffeq.odeint`` (dopri5).

Both solve the same problems in the same process, interleaved round by round; ours records every
accepted step's error ratio and stiffness estimate with their graph (what the regularizers need),
torchdiffeq records nothing. Reported per case: NFE of each (must be equal: same steps), the
max difference of the solutions, and the median time of each and of the per-round ratio
ours / torchdiffeq for

* ``forward``: the solve with parameters requiring grad (as in training);
* ``forward+backward``: the solve plus ``backward()`` of a scalar loss of the solution (ours
  also adds the error-regularizer penalty, so its backward covers the recorded estimates).

Cases (float64, rtol = atol = 1e-6 unless stated):

* ``spiral``: the spiral example's MLP (2 -> 50 -> 2 on u^3), batch 16 (overhead-bound);
* ``digits``: the digits example's dynamics (64-d state, 32 hidden), batch 250;
* ``mlp_large``: 64-d state, 256 hidden, batch 1024, float32, rtol = atol = 1e-5 (compute-bound).

Target: time ratio <= 1.2 in every case.

Usage::

    python benchmarks/bench_nde.py [--json PATH] [--rounds N] [--quick]

Measured: see ``docs/guide/nde.rst`` (2 shared CPU cores, 1 thread: timings are noisy).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch
import torchdiffeq
from torch import nn

from sciml.nde import ErrorRegularizer, Recorder, odeint
from sciml_inverse import write_json


class _Counted(nn.Module):
    def __init__(self, net: nn.Module, cube: bool = False, time_input: bool = False) -> None:
        super().__init__()
        self.net, self.cube, self.time_input, self.nfe = net, cube, time_input, 0

    def forward(self, t, y):
        self.nfe += 1
        if self.cube:
            y = y ** 3
        if self.time_input:
            y = torch.cat([y, t.expand(y.shape[0], 1)], 1)
        return self.net(y)


def make_cases(quick: bool) -> list[dict]:
    torch.manual_seed(0)
    f64, f32 = torch.float64, torch.float32
    spiral = _Counted(nn.Sequential(nn.Linear(2, 50), nn.Tanh(), nn.Linear(50, 2)).to(f64),
                      cube=True)
    with torch.no_grad():
        spiral.net[2].weight.mul_(3.0)
    digits = _Counted(nn.Sequential(nn.Linear(65, 32), nn.Tanh(), nn.Linear(32, 64),
                                    nn.Tanh()).to(f64), time_input=True)
    with torch.no_grad():
        digits.net[2].weight.mul_(4.0)
    big = _Counted(nn.Sequential(nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 64)).to(f32))
    with torch.no_grad():
        big.net[2].weight.mul_(3.0)
    cases = [
        {"name": "spiral", "func": spiral, "y0": 2 * torch.rand(16, 2, dtype=f64) - 1,
         "t": torch.linspace(0, 1.5, 30, dtype=f64), "tol": 1e-6},
        {"name": "digits", "func": digits, "y0": torch.rand(250, 64, dtype=f64),
         "t": torch.tensor([0.0, 1.0], dtype=f64), "tol": 1e-6},
        {"name": "mlp_large", "func": big, "y0": torch.randn(1024 if not quick else 128, 64,
                                                             dtype=f32),
         "t": torch.tensor([0.0, 1.0], dtype=f32), "tol": 1e-5},
    ]
    return cases


def _ours(case: dict, backward: bool) -> tuple[torch.Tensor, int]:
    f = case["func"]
    f.nfe = 0
    st = Recorder()
    sol = odeint(f, case["y0"], case["t"], rtol=case["tol"], atol=case["tol"], recorder=st)
    if backward:
        (sol[-1].pow(2).mean() + ErrorRegularizer(0.1)(st)).backward()
    return sol, f.nfe


def _ref(case: dict, backward: bool) -> tuple[torch.Tensor, int]:
    f = case["func"]
    f.nfe = 0
    sol = torchdiffeq.odeint(f, case["y0"], case["t"], rtol=case["tol"], atol=case["tol"],
                             method="dopri5")
    if backward:
        sol[-1].pow(2).mean().backward()
    return sol, f.nfe


def bench_case(case: dict, rounds: int) -> dict:
    sol_o, nfe_o = _ours(case, False)
    sol_r, nfe_r = _ref(case, False)
    out = {"nfe_ours": nfe_o, "nfe_torchdiffeq": nfe_r, "nfe_equal": nfe_o == nfe_r,
           "max_abs_diff": float((sol_o - sol_r).detach().abs().max())}
    for mode, bw in (("forward", False), ("forward+backward", True)):
        t_o, t_r, ratios = [], [], []
        for _ in range(rounds):
            case["func"].zero_grad(set_to_none=True)
            s = time.perf_counter()
            _ours(case, bw)
            a = time.perf_counter() - s
            case["func"].zero_grad(set_to_none=True)
            s = time.perf_counter()
            _ref(case, bw)
            b = time.perf_counter() - s
            t_o.append(a)
            t_r.append(b)
            ratios.append(a / b)
        out[mode] = {"ours_s": statistics.median(t_o), "torchdiffeq_s": statistics.median(t_r),
                     "ratio": statistics.median(ratios)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", help="write the results to this JSON file")
    p.add_argument("--rounds", type=int, default=None, help="timing rounds (default 15; 3 quick)")
    p.add_argument("--quick", action="store_true", help="smoke test: smaller and fewer rounds")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 15)
    if rounds < 1 or args.threads < 1:
        p.error("--rounds and --threads must be >= 1")
    torch.set_num_threads(args.threads)
    res: dict = {"torch": torch.__version__, "torchdiffeq": torchdiffeq.__version__,
                 "machine": platform.processor() or platform.machine(), "threads": args.threads,
                 "rounds": rounds, "cases": {}}
    print("correctness")
    print(f"{'case':>10s} {'NFE ours':>9s} {'NFE tdq':>8s} {'max |diff|':>11s}")
    for case in make_cases(args.quick):
        r = bench_case(case, rounds)
        res["cases"][case["name"]] = r
        flag = "" if r["nfe_equal"] else "  MISMATCH"
        print(f"{case['name']:>10s} {r['nfe_ours']:9d} {r['nfe_torchdiffeq']:8d} "
              f"{r['max_abs_diff']:11.2e}{flag}")
    print("\ntiming (median seconds; ratio = median per-round ours / torchdiffeq, target <= 1.2)")
    print(f"{'case':>10s} {'mode':>17s} {'ours':>9s} {'torchdiffeq':>11s} {'ratio':>6s}")
    for name, r in res["cases"].items():
        for mode in ("forward", "forward+backward"):
            m = r[mode]
            print(f"{name:>10s} {mode:>17s} {m['ours_s']:9.4f} {m['torchdiffeq_s']:11.4f} "
                  f"{m['ratio']:6.2f}")
    res["max_ratio"] = max(r[m]["ratio"] for r in res["cases"].values()
                           for m in ("forward", "forward+backward"))
    res["all_nfe_equal"] = all(r["nfe_equal"] for r in res["cases"].values())
    if args.json:
        write_json(args.json, res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
