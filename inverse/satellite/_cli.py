"""The ``sciml-inverse restore`` and ``sciml-inverse degrade`` subcommands.

Both are plugins of the dispatcher in :mod:`sciml_inverse._cli` (entry points ``restore`` and
``degrade`` of the group ``sciml_inverse.commands``): :data:`restore` and :data:`degrade` are
objects with a ``register(subparsers)`` function. Heavy modules are imported when a command
runs, not when it is registered.

Exit statuses: 0 on success, 2 for usage errors (argparse), 1 with a one-line message for bad
inputs (missing or unreadable file, wrong band count, values above the bit depth, an existing
output without ``--overwrite``, an unwritable output directory, ...), 130 after Ctrl-C (one
line; outputs are written atomically, so nothing partial is left at their paths). Outputs are
checked before any work starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import SimpleNamespace

__all__ = ["restore", "degrade", "estimate_noise"]


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


#: Values of ``restore --method`` (underscores are accepted too).
METHODS = ("vble-xz", "vble-z", "map-z", "tikhonov", "tv")
#: ``--stop-rtol`` default (the stopping rule of :class:`inverse.vble.VBLEOptions`), chosen on
#: train crops (equal PSNR and coverage at about 40 % of the iterations); the same value as
#: :func:`inverse.vble.default_options`.
DEFAULT_STOP_RTOL = 0.05
#: ``--precision`` default: bfloat16 decoder passes (optimization and samples) where the device
#: has native bfloat16 (AMX/AVX512-BF16 CPUs, recent GPUs), float32 elsewhere.
DEFAULT_PRECISION = "auto"


def _method(text: str) -> str:
    name = text.strip().lower().replace("_", "-")
    if name not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {text!r}; choose from "
                                         f"{', '.join(METHODS)}")
    return name


def _device(text: str):
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {text!r} is not a torch device (use cpu, cuda, cuda:1, "
                         "mps)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {text}: CUDA is not available on this machine; use "
                         "--device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {text}: MPS is not available on this machine")
    return dev


def check_outputs(outputs, inputs=(), *, overwrite: bool = False) -> None:
    """Check output paths before any work: directory exists and is writable, no existing file
    without ``overwrite``, never one of the inputs.

    Raises
    ------
    FileNotFoundError, PermissionError, FileExistsError, ValueError
    """
    import os
    from pathlib import Path

    resolved_inputs = {Path(i).resolve() for i in inputs if i is not None}
    seen = set()
    for out in outputs:
        if out is None:
            continue
        path = Path(out)
        if path.resolve() in resolved_inputs:
            raise ValueError(f"the output {str(path)!r} is also an input: choose another file "
                             "name (the input would be replaced)")
        if path.resolve() in seen:
            raise ValueError(f"the output {str(path)!r} is given twice")
        seen.add(path.resolve())
        parent = path.parent
        if not parent.is_dir():
            raise FileNotFoundError(f"the output directory {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(f"the output directory {str(parent)!r} is not writable")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{str(path)!r} exists; pass --overwrite to replace it")
        if path.is_dir():
            raise ValueError(f"the output {str(path)!r} is a directory")


def _add_degradation_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("degradation model (normalized units: DN / (2**bits - 1))")
    blur = g.add_mutually_exclusive_group()
    blur.add_argument("--mtf", type=_mtf, default=None,
                      help="MTF at Nyquist of the Gaussian PSF (default 0.1)")
    blur.add_argument("--psf", metavar="PSF.npy", default=None,
                      help="a user PSF array saved with numpy.save (normalized to unit sum)")
    g.add_argument("--noise", nargs=2, type=_nonneg_float, metavar=("A", "B"),
                   default=None,
                   help="Poisson-Gaussian noise: variance A + B * x (restore: estimated from "
                        "the image when omitted, see estimate-noise; degrade: default 1e-5 "
                        "1e-4)")
    g.add_argument("--decimation", type=int, choices=(1, 2), default=1,
                   help="decimation factor between the image and the observation grid")
    g.add_argument("--bits", type=_bits, default=None,
                   help="bit depth of the input digital numbers (default 12, Pléiades; 8 for "
                        "8-bit imagery such as NAIP); at most the bits of the file's integers")
    g.add_argument("--band", type=_int_at_least(1), nargs="+", default=None,
                   help="band(s) of the input to use, numbered from 1 (default: all)")
    g.add_argument("--variable", default=None, metavar="NAME",
                   help="variable of a NetCDF input (default: its only (band, y, x) variable)")


def _bits(text: str) -> int:
    v = _int_at_least(1)(text)
    if v > 32:
        raise argparse.ArgumentTypeError(f"must be <= 32, got {v}")
    return v


_INT_BITS = {"uint8": 8, "int8": 7, "uint16": 16, "int16": 15, "uint32": 32, "int32": 31}


def _check_bits(args: argparse.Namespace, dtype: str, command: str) -> None:
    """Resolve the default ``--bits`` (12) and reject one larger than the file's integers."""
    bits = _INT_BITS.get(dtype)
    if args.bits is None:
        args.bits = 12
        if bits is not None and bits < 12:
            print(f"sciml-inverse {command}: warning: {args.input_name} stores {dtype} integers "
                  f"but --bits is 12 (the default); pass --bits {bits} if these are {bits}-bit "
                  "digital numbers", file=sys.stderr)
    elif bits is not None and args.bits > bits:
        raise ValueError(f"--bits {args.bits} is larger than the {bits}-bit integers ({dtype}) "
                         f"stored in {args.input_name}; pass --bits {bits} or less")


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
    noise = (1e-5, 1e-4) if args.noise is None else args.noise
    return PleiadesDegradation(mtf=None if psf is not None else mtf, psf=psf,
                               decimation=args.decimation, noise_a=noise[0],
                               noise_b=noise[1], n_bits=12 if args.bits is None else
                               args.bits)


def _fail(command: str, err: BaseException) -> int:
    msg = str(err).splitlines()[0] if str(err) else type(err).__name__
    print(f"sciml-inverse {command}: error: {msg}", file=sys.stderr)
    return 1


# ------------------------------------------------------------------ restore
def load_model(spec: str, device: str = "cpu"):
    """The CAE named by ``--model``: a shipped name (``xlow``, ``low``, ``high``, ``xhigh``) or a
    checkpoint path."""
    from ..vble import SHIPPED_MODELS, default_cae, load_cae

    if spec in SHIPPED_MODELS:
        return default_cae(spec).to(device)
    return load_cae(spec, map_location=device)


def _register_restore(subparsers) -> None:
    p = subparsers.add_parser(
        "restore", help="restore a satellite image with VBLE-xz (image + uncertainty map)",
        description="Restore a blurred, noisy (and possibly decimated) satellite image with "
                    "VBLE (a compressive-autoencoder prior) tile by tile; write the posterior "
                    "mean and standard deviation as georeferenced NetCDF (and a PNG panel).")
    p.add_argument("input", metavar="INPUT", help="observation (GeoTIFF .tif or NetCDF .nc)")
    p.add_argument("--out", required=True, metavar="OUT.nc|OUT.tif",
                   help="output: NetCDF (restored, std, samples) or a tiled compressed GeoTIFF "
                        "(bands 'restored' and 'std'); written as the tiles finish")
    p.add_argument("--cog", action="store_true",
                   help="write the GeoTIFF output as a Cloud-Optimized GeoTIFF (overviews)")
    p.add_argument("--png", metavar="OUT.png", default=None,
                   help="also save an observed | restored | std panel")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--fill-nodata", action="store_true",
                   help="restore (inpaint) the input's no-data pixels instead of keeping them "
                        "as no-data")
    _add_degradation_args(p)
    m = p.add_argument_group("model and posterior")
    m.add_argument("--model", default="auto", metavar="PATH|auto|xlow|low|high|xhigh",
                   help="CAE checkpoint (save_cae), a shipped model, or auto (default: the "
                        "shipped rate chosen from the noise, MTF and decimation by the rule "
                        "fitted on train crops, inverse.vble.select_model)")
    m.add_argument("--conditional", choices=("exact", "variational"), default="exact",
                   help="vble-xz image-space posterior: exact Gaussian conditional p(x|z,y) "
                        "(default) or the published variational q(x|z)")
    m.add_argument("--method", type=_method, default="vble-xz", metavar="|".join(METHODS),
                   help="vble-xz (default; image-space posterior), vble-z, map-z, or the fast "
                        "classical baselines tikhonov (exact Gaussian posterior std) and tv "
                        "(no std)")
    m.add_argument("--samples", type=_int_at_least(2), default=100,
                   help="posterior samples for the mean and std (default 100; with the exact "
                        "conditional, antithetic pairs: an odd count is rounded up)")
    m.add_argument("--save-samples", type=_int_at_least(0), default=0, metavar="K",
                   help="store K samples in the NetCDF (default 0; with the exact conditional "
                        "consecutive samples are antithetic pairs)")
    m.add_argument("--iters", type=_int_at_least(0), default=300,
                   help="optimization iterations per tile (default 300)")
    m.add_argument("--lr", type=_positive_float, default=0.1)
    m.add_argument("--stop-rtol", type=_nonneg_float, default=DEFAULT_STOP_RTOL,
                   help="stop a tile's optimization when its windowed loss decrease falls "
                        f"below this fraction of its total decrease (default "
                        f"{DEFAULT_STOP_RTOL}; 0: always --iters iterations)")
    m.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=DEFAULT_PRECISION,
                   help="arithmetic of the decoder passes, optimization and samples (default "
                        f"{DEFAULT_PRECISION}: bfloat16 where the CPU/GPU has it natively; "
                        "likelihood, rate, solves, mean and std always float32)")
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
    t.add_argument("--dask-scheduler", metavar="ADDRESS", default=None,
                   help="run the tiles on an existing dask.distributed cluster, e.g. "
                        "tcp://10.0.0.1:8786 (the model is sent to each worker once)")
    t.add_argument("--tile-batch", type=_int_at_least(1), default=4,
                   help="tiles restored per network call (default 4; same results as 1)")
    t.add_argument("--threads", type=_int_at_least(1), default=None,
                   help="torch intra-op threads")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_restore)


def _run_restore(args: argparse.Namespace) -> int:
    return _guarded("restore", _restore, args)


def _guarded(command: str, run: Callable[[argparse.Namespace], int],
             args: argparse.Namespace) -> int:
    """Run a command: input errors are one line with status 1, Ctrl-C (or SIGTERM) one line with
    130; the outputs are written under temporary names that are removed, so nothing partial is
    left next to or at their paths."""
    from sciml_inverse import interruptible

    try:
        with interruptible():  # SIGINT and SIGTERM (kill, a scheduler's timeout): one clean exit
            return run(args)
    except KeyboardInterrupt:
        print(f"sciml-inverse {command}: interrupted; no output was written (rerun with the "
              "same --work-dir to resume)" if getattr(args, "work_dir", None) else
              f"sciml-inverse {command}: interrupted; no output was written", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError, TypeError,
            OSError, RuntimeError) as err:
        return _fail(command, err)


def _restore(args: argparse.Namespace) -> int:
    try:
        import rasterio
    except ImportError:  # pragma: no cover - geo extra missing
        return _restore_impl(args)
    # GDAL's block cache would otherwise grow to 5 % of the RAM with the scene's blocks
    with rasterio.Env(GDAL_CACHEMAX=64):
        return _restore_impl(args)


def _auto_model(source, degradation) -> str:
    """``--model auto``: the shipped rate for this scene (noise std at its mean level)."""
    import numpy as np
    import torch

    from ..vble import select_model

    level = float(np.nanmean(source.preview(512))) / (2 ** degradation.n_bits - 1)
    var = float(degradation.noise_model().variance(torch.tensor(max(level, 0.0))))
    return select_model(max(var, 1e-30) ** 0.5, degradation.decimation,
                        0.1 if degradation.mtf is None else float(degradation.mtf))


def _vble_options(args: argparse.Namespace):
    """The VBLE options of the command line (VBLE-xz: the exact conditional by default)."""
    from ..vble import VBLEOptions

    method = args.method.replace("-", "_")
    return VBLEOptions(method=method, steps=args.iters, lr=args.lr,
                       rate_scale=args.rate_scale, n_samples=args.samples,
                       return_samples=min(args.save_samples, args.samples), seed=args.seed,
                       stop_rtol=args.stop_rtol, precision=args.precision,
                       conditional=args.conditional if method == "vble_xz" else "variational")


def _restore_impl(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from ._io import GEOTIFF_SUFFIXES, NETCDF_SUFFIXES
    from ._restore import restore_raster
    from ._source import open_raster

    out = Path(args.out)
    if out.suffix.lower() not in NETCDF_SUFFIXES + GEOTIFF_SUFFIXES:
        raise ValueError(f"--out must be a NetCDF (.nc) or GeoTIFF (.tif) file name, got "
                         f"{args.out!r}")
    if args.cog and out.suffix.lower() not in GEOTIFF_SUFFIXES:
        raise ValueError("--cog needs a GeoTIFF --out (.tif)")
    if args.png is not None and not args.png.lower().endswith(".png"):
        raise ValueError(f"--png must end with .png, got {args.png!r}")
    check_outputs([out, args.png], [args.input], overwrite=args.overwrite)
    device = _device(args.device)
    if args.dask_scheduler is not None and "://" not in args.dask_scheduler:
        raise ValueError(f"--dask-scheduler must be a scheduler address such as "
                         f"tcp://host:8786, got {args.dask_scheduler!r}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    source = open_raster(args.input, band=args.band, variable=args.variable)
    with source:
        args.input_name = args.input
        _check_bits(args, source.dtype, "restore")
        cae = restorer = options = None
        model_name = ""
        if args.method not in ("tikhonov", "tv") and args.model != "auto":
            cae = load_model(args.model, device)  # fail early on a bad checkpoint
        from ._restore import check_observation

        check_observation(source, args.bits)
        noise_attrs: dict = {"noise_estimated": 0}
        if args.noise is None:
            from ._noise_estimation import estimate_noise

            est = estimate_noise(source, n_bits=args.bits)
            args.noise = (est.a, est.b)
            noise_attrs = {"noise_estimated": 1, "noise_estimate_pixels": est.n_pixels}
            print(f"sciml-inverse restore: estimated noise a = {est.a:.3g}, b = {est.b:.3g} "
                  "(normalized units; pass --noise A B to set it)", file=sys.stderr)
        degradation = _degradation(args)
        if args.method not in ("tikhonov", "tv"):
            model_name = args.model
            if args.model == "auto":
                model_name = _auto_model(source, degradation)
                print(f"sciml-inverse restore: --model auto chose {model_name!r}",
                      file=sys.stderr)
                cae = load_model(model_name, device)
            options = _vble_options(args)
        if args.method in ("tikhonov", "tv"):
            from ._classical import TikhonovTileRestorer, TVTileRestorer

            restorer = (TikhonovTileRestorer(degradation) if args.method == "tikhonov"
                        else TVTileRestorer(degradation))
        command = "sciml-inverse restore " + " ".join(sys.argv[2:])
        result = restore_raster(source, degradation, cae, options, restorer=restorer, out=out,
                                cog=args.cog, tile=args.tile, overlap=args.overlap,
                                margin=args.margin, work_dir=args.work_dir,
                                dask=args.dask or args.dask_scheduler is not None,
                                dask_scheduler=args.dask_scheduler,
                                progress=not args.quiet, device=device, model_name=model_name,
                                attrs={"command": command, **noise_attrs}, check=False,
                                keep_nodata=not args.fill_nodata, tile_batch=args.tile_batch)
        msg = (f"restored {args.input} ({result.tiled.n_tiles} tiles, "
               f"{result.tiled.n_computed} computed, {result.tiled.seconds:.1f} s) -> {out}")
        if args.png:
            from ._io import save_panel_png

            observed = source.preview()
            restored, std = _output_preview(out)
            save_panel_png(args.png, observed, restored, std)
            msg += f", {args.png}"
    print(msg)
    return 0


def _output_preview(path, max_side: int = 2048):
    """``restored`` and ``std`` of an output file, subsampled to at most ``max_side``."""
    import numpy as np

    from ._io import GEOTIFF_SUFFIXES

    if path.suffix.lower() in GEOTIFF_SUFFIXES:
        import rasterio

        with rasterio.open(path) as ds:
            step = max(1, -(-max(ds.height, ds.width) // max_side))
            shape = (ds.count, -(-ds.height // step), -(-ds.width // step))
            data = ds.read(out_shape=shape, resampling=rasterio.enums.Resampling.nearest)
            names = list(ds.descriptions)
        rest = [i for i, n in enumerate(names) if n and n.startswith("restored")]
        sd = [i for i, n in enumerate(names) if n and n.startswith("std")]
        restored = data[rest]
        return restored, (data[sd] if sd else np.zeros_like(restored))
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        step = max(1, -(-max(ds.sizes["y"], ds.sizes["x"]) // max_side))
        sub = ds.isel(y=slice(None, None, step), x=slice(None, None, step))
        restored = sub["restored"].values
        std = sub["std"].values if "std" in sub else np.zeros_like(restored)
    return restored, std


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
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=_run_degrade)


def _run_degrade(args: argparse.Namespace) -> int:
    return _guarded("degrade", _degrade, args)


def _degrade(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ._io import GEOTIFF_SUFFIXES, NETCDF_SUFFIXES, read_raster, write_raster
    from ._restore import simulate_raster

    out = Path(args.out)
    if out.suffix.lower() not in GEOTIFF_SUFFIXES + NETCDF_SUFFIXES:
        raise ValueError(f"--out must be a .tif or .nc file name, got {args.out!r}")
    check_outputs([out], [args.sharp], overwrite=args.overwrite)
    sharp = read_raster(args.sharp, band=args.band, variable=args.variable)
    args.input_name = args.sharp
    _check_bits(args, str(sharp.attrs.get("source_dtype")), "degrade")
    degradation = _degradation(args)
    obs = simulate_raster(sharp, degradation, seed=args.seed)
    dtype = "uint8" if degradation.n_bits <= 8 else "uint16" if degradation.n_bits <= 16 \
        else "uint32"
    nodata = obs.attrs.get("nodata")
    if nodata is None and bool(np.isnan(obs.values).any()):
        nodata = 0.0  # integer output: a no-data value is needed for the carried-through gaps
    write_raster(out, obs, dtype=dtype, nodata=nodata)
    print(f"degraded {args.sharp} {tuple(sharp.shape)} -> {out} {tuple(obs.shape)}")
    return 0


# ------------------------------------------------------------------ estimate-noise
def _register_estimate_noise(subparsers) -> None:
    p = subparsers.add_parser(
        "estimate-noise", help="estimate the Poisson-Gaussian noise (a, b) of an image",
        description="Fit the noise variance a + b * x (normalized units, as restore --noise) "
                    "from the image itself: robust variance of a second-difference residual "
                    "on smooth pixels per brightness level, then a weighted least-squares "
                    "fit (a simplified Foi et al. 2008).")
    p.add_argument("image", metavar="IMAGE", help="observation (GeoTIFF .tif or NetCDF .nc)")
    p.add_argument("--bits", type=_bits, default=None,
                   help="bit depth of the digital numbers (default 12)")
    p.add_argument("--band", type=_int_at_least(1), default=None,
                   help="band to use, from 1 (default: all bands pooled)")
    p.add_argument("--variable", default=None, metavar="NAME", help="NetCDF variable")
    p.add_argument("--json", metavar="PATH", default=None,
                   help="write a, b and the per-level variances as JSON")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_run_estimate_noise)


def _run_estimate_noise(args: argparse.Namespace) -> int:
    return _guarded("estimate-noise", _estimate_noise, args)


def _estimate_noise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._noise_estimation import estimate_noise
    from ._source import open_raster

    if args.json is not None:
        if not args.json.lower().endswith(".json"):
            raise ValueError(f"--json must end with .json, got {args.json!r}")
        check_outputs([Path(args.json)], [args.image], overwrite=args.overwrite)
    with open_raster(args.image, variable=args.variable) as source:
        args.input_name = args.image
        _check_bits(args, source.dtype, "estimate-noise")
        est = estimate_noise(source, n_bits=args.bits, band=args.band)
    print(f"a = {est.a:.6g}  b = {est.b:.6g}  (normalized units, {est.n_pixels} pixels); "
          f"use: --noise {est.a:.4g} {est.b:.4g} --bits {args.bits}")
    if args.json is not None:
        from sciml_inverse import write_json

        write_json(args.json, {**est.to_dict(), "image": str(args.image)})
    return 0


#: Plugin object of the ``estimate-noise`` subcommand (``register(subparsers)``).
estimate_noise = SimpleNamespace(register=_register_estimate_noise)
#: Plugin object of the ``restore`` subcommand (``register(subparsers)``).
restore = SimpleNamespace(register=_register_restore)
#: Plugin object of the ``degrade`` subcommand (``register(subparsers)``).
degrade = SimpleNamespace(register=_register_degrade)
