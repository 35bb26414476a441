"""The ``sciml-inverse darcy`` subcommand: generate and inspect Darcy data sets.

Examples
--------
::

    sciml-inverse darcy generate --kind piecewise --n 1400 --grid 29 --seed 0 --workers 2 \\
        --out darcy_pwc.h5
    sciml-inverse darcy info darcy_pwc.h5

This module is loaded by the command-line dispatcher (:mod:`sciml_inverse._cli`) through the entry
point ``darcy = "sciml.pde._cli:darcy"``; it imports numpy, scipy and h5py only when a command
runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["darcy", "burgers", "stokes"]


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
    """Plugin object of the ``darcy`` subcommand (see :mod:`sciml_inverse._cli`)."""

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


# ------------------------------------------------------------------------------ burgers, stokes
def _run_generate_burgers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._burgers import generate_burgers, save_burgers

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"sciml-inverse burgers generate: error: {str(out)!r} exists; pass --overwrite to "
              "replace it", file=sys.stderr)
        return 1
    kw = {k: getattr(args, k) for k in ("n_modes", "length_scale", "alpha", "amplitude")
          if getattr(args, k) is not None}
    try:
        data = generate_burgers(args.n, seed=args.seed, nx=args.nx, nt=args.nt, nu=args.nu,
                                n_cheb=args.n_cheb, workers=args.workers,
                                progress=not args.no_progress,
                                checkpoint=out.with_name(out.name + ".partial.npz"), **kw)
        save_burgers(data, out)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"sciml-inverse burgers generate: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(data)} Burgers samples on {args.nt} x {args.nx} (t, x) points to {out}")
    return 0


def _run_generate_stokes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._stokes import generate_stokes, save_stokes

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"sciml-inverse stokes generate: error: {str(out)!r} exists; pass --overwrite to "
              "replace it", file=sys.stderr)
        return 1
    try:
        data = generate_stokes(args.n, seed=args.seed, h=args.h, mu=args.mu,
                               beta_range=tuple(args.beta_range), n_inflow=args.n_inflow,
                               workers=args.workers, progress=not args.no_progress,
                               checkpoint=out.with_name(out.name + ".partial.npz"))
        save_stokes(data, out)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"sciml-inverse stokes generate: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(data)} Stokes samples on a mesh of {data.gridx.shape[0]} nodes to {out}")
    return 0


def _run_info_generic(args: argparse.Namespace) -> int:
    import numpy as np

    from ._burgers import load_burgers
    from ._stokes import load_stokes

    loader = load_burgers if args.pde == "burgers" else load_stokes
    try:
        data = loader(args.file)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"sciml-inverse {args.pde} info: error: {exc}", file=sys.stderr)
        return 1
    arrays = {k: v for k, v in vars(data).items() if isinstance(v, np.ndarray)}
    print(f"{args.file}: {len(data)} samples")
    for k, v in arrays.items():
        print(f"  {k}: shape {v.shape}, max |.| {np.abs(v).max():.6g}")
    for key, value in data.attrs.items():
        print(f"  {key}: {value}")
    return 0


class _PDECommand:
    """Plugin of the ``burgers`` and ``stokes`` subcommands (generate, info)."""

    def __init__(self, name: str, help_text: str, description: str) -> None:
        self.name = name
        self._help = help_text
        self._description = description

    def register(self, subparsers: Any) -> None:
        parser = subparsers.add_parser(self.name, help=self._help,
                                       description=self._description)
        parser.set_defaults(func=self._no_action(parser))
        actions = parser.add_subparsers(dest=f"{self.name}_command", metavar="ACTION",
                                        title="actions")
        gen = actions.add_parser(
            "generate", help="generate a data set and write it to HDF5",
            description="Draw inputs, solve, and write an HDF5 file (generating parameters as "
                        "attributes). An interrupted run resumes from OUT.partial.npz when "
                        "rerun with the same arguments.")
        gen.add_argument("--n", type=_positive_int, required=True, help="number of samples")
        gen.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
        gen.add_argument("--workers", type=_positive_int, default=1, help="processes")
        gen.add_argument("--out", required=True, help="output HDF5 file")
        gen.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")
        if self.name == "burgers":
            gen.add_argument("--nx", type=_positive_int, default=128, help="x points (128)")
            gen.add_argument("--nt", type=_positive_int, default=101, help="times (101)")
            gen.add_argument("--nu", type=float, default=0.1 / 3.141592653589793,
                             help="viscosity (default 0.1/pi)")
            gen.add_argument("--n-cheb", type=_positive_int, default=128,
                             help="Chebyshev degree of the solver (default 128)")
            gen.add_argument("--n-modes", type=_positive_int, default=None,
                             help="sine modes of the initial GRF (default 64)")
            gen.add_argument("--length-scale", type=float, default=None,
                             help="GRF length scale (default 0.2)")
            gen.add_argument("--alpha", type=float, default=None, help="GRF exponent (2)")
            gen.add_argument("--amplitude", type=float, default=None, help="GRF amplitude (3)")
            gen.set_defaults(func=_run_generate_burgers)
        else:
            gen.add_argument("--h", type=float, default=0.04,
                             help="mesh size (default 0.04: 1708 nodes)")
            gen.add_argument("--mu", type=float, default=0.01, help="viscosity (0.01)")
            gen.add_argument("--beta-range", type=float, nargs=2, default=(0.0, 6.283185307179586),
                             metavar=("LOW", "HIGH"), help="uniform range of beta1, beta2")
            gen.add_argument("--n-inflow", type=_positive_int, default=256,
                             help="inflow points of the input (256)")
            gen.set_defaults(func=_run_generate_stokes)
        info = actions.add_parser("info", help="summarise a data file")
        info.add_argument("file")
        info.set_defaults(func=_run_info_generic, pde=self.name)

    def _no_action(self, parser: argparse.ArgumentParser):
        def run(args: argparse.Namespace) -> int:
            parser.print_usage(sys.stderr)
            print(f"sciml-inverse {self.name}: error: no action given (generate, info)",
                  file=sys.stderr)
            return 2

        return run


#: ``burgers = "sciml.pde._cli:burgers"``.
burgers = _PDECommand(
    "burgers", "generate viscous Burgers data sets (u_t + u u_x = nu u_xx on [-1, 1])",
    "Burgers data: GRF initial conditions u0 with u(+-1) = 0 and Chebyshev/BDF solutions on a "
    "uniform (t, x) grid; datasets x_mesh, t_mesh, u0, u_sol.")
#: ``stokes = "sciml.pde._cli:stokes"``.
stokes = _PDECommand(
    "stokes", "generate Stokes-flow-around-a-cylinder data sets (Taylor-Hood P2/P1)",
    "Stokes data: random inflow profiles a(y) = 2 sin(pi y)(1 + sin(b1 y) + cos(b2 y)) and "
    "P2/P1 finite-element solutions (scikit-fem, gmsh mesh); datasets beta1, beta2, gridx, "
    "cells, y_inflow, a, u, v, p.")
