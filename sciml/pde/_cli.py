"""The ``sciml-inverse darcy`` subcommand: generate and inspect Darcy data sets.

Examples
--------
::

    sciml-inverse darcy generate --kind piecewise --n 1400 --grid 29 --seed 0 --workers 2 \\
        --out darcy_pwc.h5
    sciml-inverse darcy info darcy_pwc.h5

This module is loaded by the command-line dispatcher (:mod:`operators._cli`) through the entry
point ``darcy = "sciml.pde._cli:darcy"``; it imports numpy, scipy and h5py only when a command
runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["darcy"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _run_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._darcy import generate_darcy
    from ._io import save_darcy

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(
            f"sciml-inverse darcy generate: error: {str(out)!r} exists; pass --overwrite to "
            "replace it",
            file=sys.stderr,
        )
        return 1
    field_kw: dict[str, Any] = {}
    if args.length_scale is not None:
        field_kw["length_scale"] = args.length_scale
    if args.alpha is not None:
        field_kw["alpha"] = args.alpha
    if args.kind == "piecewise":
        if args.transform is not None:
            print("sciml-inverse darcy generate: error: --transform is for --kind smooth",
                  file=sys.stderr)
            return 2
        if args.values is not None:
            field_kw["values"] = tuple(args.values)
        if args.threshold is not None:
            field_kw["threshold"] = args.threshold
    else:
        if args.values is not None or args.threshold is not None:
            print(
                "sciml-inverse darcy generate: error: --values/--threshold are for "
                "--kind piecewise",
                file=sys.stderr,
            )
            return 2
        if args.transform is not None:
            field_kw["transform"] = args.transform
    checkpoint = out.with_name(out.name + ".partial.npz")
    try:
        data = generate_darcy(
            args.kind,
            args.n,
            args.grid,
            seed=args.seed,
            workers=args.workers,
            progress=not args.no_progress,
            f=args.f,
            **({} if args.refine is None else {"refine": args.refine}),
            checkpoint=checkpoint,
            **field_kw,
        )
        save_darcy(data, out)
    except KeyboardInterrupt:
        print("sciml-inverse darcy generate: interrupted; rerun the same command to resume "
              f"from {checkpoint.name}" if checkpoint.exists() else
              "sciml-inverse darcy generate: interrupted; nothing was written", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"sciml-inverse darcy generate: error: {msg}", file=sys.stderr)
        return 1
    print(f"wrote {len(data)} {args.kind} samples on a {args.grid}x{args.grid} grid to {out}")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    import numpy as np

    from ._io import load_darcy

    try:
        data = load_darcy(args.file)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"sciml-inverse darcy info: error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.file}: {len(data)} samples, grid {data.grid}x{data.grid}")
    print(
        f"  coeff: min {data.coeff.min():.6g}, max {data.coeff.max():.6g}; "
        f"sol: max {data.sol.max():.6g}, mean |sol| {np.abs(data.sol).mean():.6g}"
    )
    for key, value in data.attrs.items():
        print(f"  {key}: {value}")
    return 0


class _DarcyCommand:
    """Plugin object of the ``darcy`` subcommand (see :mod:`operators._cli`)."""

    name = "darcy"

    def register(self, subparsers: Any) -> None:
        parser = subparsers.add_parser(
            self.name,
            help="generate Darcy-flow data sets (-div(a grad u) = f on [0,1]^2)",
            description=(
                "Darcy-flow data: random coefficient fields a on an n x n node grid of [0,1]^2 "
                "and finite-volume solutions of -div(a grad u) = f, u = 0 on the boundary."
            ),
        )
        parser.set_defaults(func=self._no_action(parser))
        actions = parser.add_subparsers(dest="darcy_command", metavar="ACTION", title="actions")

        gen = actions.add_parser(
            "generate",
            help="generate a data set and write it to HDF5",
            description=(
                "Draw coefficient fields, solve the Darcy problem for each, and write an HDF5 file "
                "(datasets coeff, sol, x; generating parameters and seed as attributes). An "
                "interrupted run resumes from OUT.partial.npz when rerun with the same arguments."
            ),
        )
        gen.add_argument("--kind", choices=("piecewise", "smooth"), required=True,
                         help="two-phase a in {5, 10} (piecewise) or smooth positive a")
        gen.add_argument("--n", type=_positive_int, required=True, help="number of samples")
        gen.add_argument("--grid", type=int, default=29,
                         help="nodes per side, boundary included (default 29)")
        gen.add_argument("--seed", type=int, default=0, help="seed of the fields (default 0)")
        gen.add_argument("--workers", type=_positive_int, default=1,
                         help="processes for the solves (default 1)")
        gen.add_argument("--out", required=True, help="output HDF5 file")
        gen.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        gen.add_argument("--f", type=float, default=10.0, help="constant source (default 10)")
        gen.add_argument("--refine", type=_positive_int, default=None,
                         help="solver grid refinement (odd for piecewise; default 3)")
        gen.add_argument("--length-scale", type=float, default=None,
                         help="GRF length scale 1/tau (default 1/3)")
        gen.add_argument("--alpha", type=float, default=None,
                         help="GRF smoothness exponent (default 2)")
        gen.add_argument("--values", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                         help="piecewise: phase values (default 5 10)")
        gen.add_argument("--threshold", type=float, default=None,
                         help="piecewise: GRF level separating the phases (default 0)")
        gen.add_argument("--transform", choices=("exp", "tanh"), default=None,
                         help="smooth: a = exp(g) (default) or 3 + 2 tanh(g)")
        gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        gen.set_defaults(func=_run_generate)

        info = actions.add_parser("info", help="summarise a data file (ours or MATLAB .mat)")
        info.add_argument("file")
        info.set_defaults(func=_run_info)

    @staticmethod
    def _no_action(parser: argparse.ArgumentParser):
        def run(args: argparse.Namespace) -> int:
            parser.print_usage(sys.stderr)
            print("sciml-inverse darcy: error: no action given (generate, info)", file=sys.stderr)
            return 2

        return run


#: The entry-point object: ``darcy = "sciml.pde._cli:darcy"``.
darcy = _DarcyCommand()
