"""The ``sciml-inverse restore`` and ``sciml-inverse degrade`` subcommands.

Both are plugins of the dispatcher in :mod:`sciml_inverse._cli` (entry points ``restore`` and
``degrade`` of the group ``sciml_inverse.commands``): :data:`restore` and :data:`degrade` are
objects with a ``register(subparsers)`` function. Heavy modules are imported when a command
runs, not when it is registered.

Exit statuses: 0 on success, 2 for usage errors (argparse), 1 with a one-line message for bad
inputs (missing or unreadable file, wrong band count, values above the bit depth, ...).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import SimpleNamespace

__all__ = ["restore", "degrade"]


# ------------------------------------------------------------------ argument types
def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (a variance), got {text}")
    return v


def _int_at_least(lo: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        return v

    parse.__name__ = f"int>={lo}"
    return parse


def _mtf(text: str) -> float:
    v = _positive_float(text)
    if v > 1:
        raise argparse.ArgumentTypeError(f"the MTF at Nyquist is in (0, 1], got {text}")
    return v


def _add_degradation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("degradation model (normalized units: DN / (2**bits - 1))")
    blur = g.add_mutually_exclusive_group()
    blur.add_argument("--mtf", type=_mtf, default=None,
                      help="MTF at Nyquist of the Gaussian PSF (default 0.1)")
    blur.add_argument("--psf", metavar="PSF.npy", default=None,
                      help="a user PSF array saved with numpy.save (normalized to unit sum)")
    g.add_argument("--noise", nargs=2, type=_nonneg_float, metavar=("A", "B"),
                   default=(1e-5, 1e-4),
                   help="Poisson-Gaussian noise: variance A + B * x (default 1e-5 1e-4)")
    g.add_argument("--decimation", type=int, choices=(1, 2), default=1,
                   help="decimation factor between the image and the observation grid")
    g.add_argument("--bits", type=_int_at_least(1), default=12,
                   help="bit depth of the input digital numbers (default 12, Pléiades; 8 for "
                        "8-bit imagery such as NAIP)")
    g.add_argument("--band", type=_int_at_least(1), nargs="+", default=None,
                   help="band(s) of the input to use, numbered from 1 (default: all)")
    g.add_argument("--variable", default=None, metavar="NAME",
                   help="variable of a NetCDF input (default: its only (band, y, x) variable)")


def _degradation(args: argparse.Namespace):
    import numpy as np

    from ._degradation import PleiadesDegradation

    psf = None
    if args.psf is not None:
        try:
            psf = np.load(args.psf)
        except FileNotFoundError:
            raise FileNotFoundError(f"no PSF file {args.psf!r}") from None
        except (OSError, ValueError) as err:
            raise ValueError(f"could not read the PSF {args.psf!r} as a .npy array: {err}") \
                from None
    mtf = args.mtf if (args.mtf is not None or psf is not None) else 0.1
    return PleiadesDegradation(mtf=None if psf is not None else mtf, psf=psf,
                               decimation=args.decimation, noise_a=args.noise[0],
                               noise_b=args.noise[1], n_bits=args.bits)


def _fail(command: str, err: BaseException) -> int:
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    print(f"sciml-inverse {command}: error: {msg}", file=sys.stderr)
    return 1


# ------------------------------------------------------------------ restore
def load_model(spec: str, device: str = "cpu"):
    """The CAE named by ``--model``: ``low`` / ``high`` (shipped) or a checkpoint path."""
    from ..vble import default_cae, load_cae

    if spec in ("low", "high"):
        return default_cae(spec).to(device)
    return load_cae(spec, map_location=device)


def _register_restore(subparsers) -> None:
    p = subparsers.add_parser(
        "restore", help="restore a satellite image with VBLE-xz (image + uncertainty map)",
        description="Restore a blurred, noisy (and possibly decimated) satellite image with "
                    "VBLE (a compressive-autoencoder prior) tile by tile; write the posterior "
                    "mean and standard deviation as georeferenced NetCDF (and a PNG panel).")
    p.add_argument("input", metavar="INPUT", help="observation (GeoTIFF .tif or NetCDF .nc)")
    p.add_argument("--out", required=True, metavar="OUT.nc", help="output NetCDF file")
    p.add_argument("--png", metavar="OUT.png", default=None,
                   help="also save an observed | restored | std panel")
    _add_degradation_args(p)
    m = p.add_argument_group("model and posterior")
    m.add_argument("--model", default="low", metavar="PATH|low|high",
                   help="CAE checkpoint (save_cae) or a shipped model (default low)")
    m.add_argument("--method", choices=("vble_xz", "vble_z", "map_z"), default="vble_xz")
    m.add_argument("--samples", type=_int_at_least(2), default=100,
                   help="posterior samples for the mean and std (default 100)")
    m.add_argument("--save-samples", type=_int_at_least(0), default=0, metavar="K",
                   help="store K samples in the NetCDF (default 0)")
    m.add_argument("--iters", type=_int_at_least(0), default=300,
                   help="optimization iterations per tile (default 300)")
    m.add_argument("--lr", type=_positive_float, default=0.1)
    m.add_argument("--rate-scale", type=_positive_float, default=1.0,
                   help="bitrate modulation s (< 1: stronger prior)")
    m.add_argument("--seed", type=_int_at_least(0), default=0)
    m.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    t = p.add_argument_group("tiling")
    t.add_argument("--tile", type=_int_at_least(16), default=256,
                   help="tile size in output pixels (default 256)")
    t.add_argument("--overlap", type=_int_at_least(2), default=32,
                   help="overlap of adjacent tiles (default 32)")
    t.add_argument("--margin", type=_int_at_least(0), default=None,
                   help="pixels dropped at inner tile edges (default overlap // 4)")
    t.add_argument("--work-dir", default=None, metavar="DIR",
                   help="save finished tiles here; rerunning the command resumes")
    t.add_argument("--dask", action="store_true",
                   help="run tiles in parallel with dask (uses a dask.distributed Client if "
                        "one is active)")
    t.add_argument("--threads", type=_int_at_least(1), default=None,
                   help="torch intra-op threads")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_restore)


def _run_restore(args: argparse.Namespace) -> int:
    try:
        return _restore(args)
    except (ValueError, FileNotFoundError, TypeError, OSError) as err:
        return _fail("restore", err)


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from ..vble._posterior import VBLEOptions
    from ._io import read_raster
    from ._restore import restore_raster

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.suffix.lower() not in (".nc", ".nc4"):
        raise ValueError(f"--out must be a NetCDF file name (.nc), got {args.out!r}")
    if args.png is not None and not args.png.lower().endswith(".png"):
        raise ValueError(f"--png must end with .png, got {args.png!r}")
    for target in (out, Path(args.png) if args.png else None):
        if target is not None and not target.parent.exists():
            raise FileNotFoundError(f"the output directory {str(target.parent)!r} does not exist")
    degradation = _degradation(args)
    observation = read_raster(args.input, band=args.band, variable=args.variable)
    if observation.attrs.get("source_dtype") == "uint8" and args.bits > 8:
        print(f"sciml-inverse restore: warning: {args.input} stores 8-bit integers but --bits is "
              f"{args.bits}; pass --bits 8 if these are 8-bit digital numbers", file=sys.stderr)
    cae = load_model(args.model, args.device)
    options = VBLEOptions(method=args.method, n_iter=args.iters, lr=args.lr,
                          rate_scale=args.rate_scale, n_samples=args.samples,
                          return_samples=min(args.save_samples, args.samples), seed=args.seed)
    result = restore_raster(observation, degradation, cae, options, tile=args.tile,
                            overlap=args.overlap, margin=args.margin, work_dir=args.work_dir,
                            dask=args.dask, progress=not args.quiet, device=args.device,
                            model_name=args.model)
    result.attrs["command"] = "sciml-inverse restore " + " ".join(sys.argv[2:])
    result.to_netcdf(out)
    msg = (f"restored {args.input} ({result.tiled.n_tiles} tiles, {result.tiled.n_computed} "
           f"computed, {result.tiled.seconds:.1f} s) -> {out}")
    if args.png:
        result.to_png(args.png)
        msg += f", {args.png}"
    print(msg)
    return 0


# ------------------------------------------------------------------ degrade
def _register_degrade(subparsers) -> None:
    p = subparsers.add_parser(
        "degrade", help="simulate a Pléiades-like observation from a sharp image",
        description="Blur (Gaussian PSF from the MTF at Nyquist, or --psf), decimate, add "
                    "Poisson-Gaussian noise and quantize a sharp image; the output keeps the "
                    "georeferencing (pixel size times the decimation factor).")
    p.add_argument("sharp", metavar="SHARP", help="sharp image (GeoTIFF .tif or NetCDF .nc)")
    p.add_argument("--out", required=True, metavar="OBS.tif|OBS.nc",
                   help="output observation (integer digital numbers)")
    _add_degradation_args(p)
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="noise seed (default 0)")
    p.set_defaults(func=_run_degrade)


def _run_degrade(args: argparse.Namespace) -> int:
    try:
        return _degrade(args)
    except (ValueError, FileNotFoundError, TypeError, OSError) as err:
        return _fail("degrade", err)


def _degrade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._io import GEOTIFF_SUFFIXES, NETCDF_SUFFIXES, read_raster, write_raster
    from ._restore import simulate_raster

    out = Path(args.out)
    if out.suffix.lower() not in GEOTIFF_SUFFIXES + NETCDF_SUFFIXES:
        raise ValueError(f"--out must be a .tif or .nc file name, got {args.out!r}")
    if not out.parent.exists():
        raise FileNotFoundError(f"the output directory {str(out.parent)!r} does not exist")
    degradation = _degradation(args)
    sharp = read_raster(args.sharp, band=args.band, variable=args.variable)
    obs = simulate_raster(sharp, degradation, seed=args.seed)
    dtype = "uint8" if degradation.n_bits <= 8 else "uint16" if degradation.n_bits <= 16 \
        else "uint32"
    write_raster(out, obs, dtype=dtype)
    print(f"degraded {args.sharp} {tuple(sharp.shape)} -> {out} {tuple(obs.shape)}")
    return 0


#: Plugin object of the ``restore`` subcommand (``register(subparsers)``).
restore = SimpleNamespace(register=_register_restore)
#: Plugin object of the ``degrade`` subcommand (``register(subparsers)``).
degrade = SimpleNamespace(register=_register_degrade)
