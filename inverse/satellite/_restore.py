"""VBLE restoration of georeferenced scenes: one tile (:class:`VBLETileRestorer`) and a whole
raster (:func:`restore_raster`, the code path of ``sciml-inverse restore`` and of the demo)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._degradation import PleiadesDegradation
from ._io import _geo_of, _scale_grid, georeferenced, write_restoration
from ._tiling import TiledResult, restore_tiled

if TYPE_CHECKING:  # pragma: no cover
    import os
    from pathlib import Path

    import xarray as xr

    from ..vble import CompressiveAutoencoder
    from ..vble._posterior import VBLEOptions

__all__ = ["VBLETileRestorer", "restore_raster", "Restoration", "simulate_raster",
           "cae_fingerprint"]


def cae_fingerprint(cae: torch.nn.Module) -> str:
    """SHA-1 of a model's configuration and state dict (identifies it in resume manifests)."""
    h = hashlib.sha1()
    config = getattr(cae, "config", None)
    h.update(repr(config).encode())
    for key, value in cae.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class VBLETileRestorer:
    """``restore_fn`` for :func:`~inverse.satellite.restore_tiled` that runs
    :func:`inverse.vble.vble_restore` on one observation tile.

    Parameters
    ----------
    degradation : PleiadesDegradation
        The acquisition model (PSF, decimation, noise); its :meth:`~PleiadesDegradation.operator`
        and :meth:`~PleiadesDegradation.noise_model` define the likelihood.
    cae : CompressiveAutoencoder
        The prior; its ``in_channels`` must match the number of bands.
    options : VBLEOptions, optional
        Posterior options (method, iterations, samples, seed).
    device : str or torch.device, default "cpu"

    Notes
    -----
    A tile of shape ``(C, h, w)`` is restored on the image grid ``(C, h f, w f)`` with the
    circular forward model of the degradation; no-data pixels (``mask`` False) enter through an
    :class:`operators.Mask` after the forward operator, with the observation set to 0 there.
    Every tile uses the same ``options.seed``, so a rerun is reproducible.
    """

    def __init__(self, degradation: PleiadesDegradation, cae: CompressiveAutoencoder,
                 options: VBLEOptions | None = None, *, device: str | torch.device = "cpu"
                 ) -> None:
        from ..vble import CompressiveAutoencoder
        from ..vble._posterior import VBLEOptions

        if not isinstance(degradation, PleiadesDegradation):
            raise TypeError(f"degradation must be a PleiadesDegradation, got "
                            f"{type(degradation).__name__}")
        if not isinstance(cae, CompressiveAutoencoder):
            raise TypeError(f"cae must be a CompressiveAutoencoder, got {type(cae).__name__}")
        options = VBLEOptions() if options is None else options
        if not isinstance(options, VBLEOptions):
            raise TypeError(f"options must be a VBLEOptions, got {type(options).__name__}")
        self.degradation = degradation
        self.options = options
        self.device = torch.device(device)
        self.cae = cae.to(self.device).eval()

    def __call__(self, obs: np.ndarray, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Restore one tile; returns ``restored``, ``std`` (and ``samples`` when
        ``options.return_samples > 0``) as float32 arrays on the image grid."""
        from operators import Mask

        from ..vble._posterior import vble_restore

        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 2:
            obs = obs[None]
        c, h, w = obs.shape
        f = self.degradation.decimation
        op = self.degradation.operator((c, h * f, w * f))
        y = torch.from_numpy(np.ascontiguousarray(obs))[None]
        if mask is not None:
            m = torch.from_numpy(np.asarray(mask, dtype=bool).reshape(obs.shape))
            op = Mask(m, op.out_shape) @ op
            y = torch.where(m, y, torch.zeros(()))
        op = op.to(self.device)
        res = vble_restore(y.to(self.device), op, self.degradation.noise_model(), self.cae,
                           self.options)
        out = {"restored": res.x_mmse[0].detach().cpu().numpy().astype(np.float32),
               "std": res.x_std[0].detach().cpu().numpy().astype(np.float32)}
        if res.samples is not None and res.samples.shape[0] > 0:
            out["samples"] = res.samples[:, 0].detach().cpu().numpy().astype(np.float32)
        return out

    def settings(self) -> dict[str, Any]:
        """The model and posterior settings as flat NetCDF attributes (``vble_*`` keys)."""
        out: dict[str, Any] = {f"vble_{k}": v for k, v in vars(self.options).items()}
        cfg = self.cae.config
        out.update(vble_cae_in_channels=cfg.in_channels, vble_cae_N=cfg.N, vble_cae_M=cfg.M,
                   vble_cae_alpha=cfg.alpha, vble_cae_n_bits=cfg.n_bits)
        return out


@dataclass
class Restoration:
    """Result of :func:`restore_raster`.

    Attributes
    ----------
    observed : xarray.DataArray
        The observation (input digital numbers, observation grid).
    restored, std : xarray.DataArray
        Posterior mean and standard deviation in the input's digital numbers, on the image grid
        (pixel size divided by the decimation factor), georeferenced.
    samples : ndarray ``(k, C, H, W)`` or None
        Posterior samples (digital numbers), when requested.
    attrs : dict
        Degradation, model and tiling settings (written as NetCDF global attributes).
    tiled : TiledResult
        Tiling statistics (``n_tiles``, ``n_computed``, ``seconds``, ``tile_seconds``).
    """

    observed: xr.DataArray
    restored: xr.DataArray
    std: xr.DataArray
    samples: np.ndarray | None
    attrs: dict[str, Any] = field(default_factory=dict)
    tiled: TiledResult | None = None

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write ``restored``, ``std`` (and ``samples``) with :func:`write_restoration`."""
        return write_restoration(path, self.restored, self.std, self.samples, attrs=self.attrs)

    def to_png(self, path: str | os.PathLike) -> Path:
        """Save the ``observed | restored | std`` panel with :func:`save_panel_png`."""
        from ._io import save_panel_png

        return save_panel_png(path, self.observed, self.restored, self.std)


def restore_raster(observation: xr.DataArray, degradation: PleiadesDegradation,
                   cae: CompressiveAutoencoder, options: VBLEOptions | None = None, *,
                   tile: int = 256, overlap: int = 32, margin: int | None = None,
                   work_dir: str | os.PathLike | None = None, dask: bool = False,
                   progress: bool = True, device: str | torch.device = "cpu",
                   model_name: str = "") -> Restoration:
    """Restore a georeferenced observation with VBLE, tile by tile.

    Parameters
    ----------
    observation : xarray.DataArray ``(band, y, x)``
        Digital numbers as returned by :func:`~inverse.satellite.read_raster` (NaN = no data);
        they are divided by ``2**degradation.n_bits - 1``.
    degradation : PleiadesDegradation
        Acquisition model; ``n_bits`` is the input bit depth.
    cae : CompressiveAutoencoder
    options : VBLEOptions, optional
    tile, overlap, margin, work_dir, dask, progress
        See :func:`~inverse.satellite.restore_tiled`.
    device : str or torch.device, default "cpu"
    model_name : str, optional
        Recorded in the attributes (e.g. the checkpoint path).

    Returns
    -------
    Restoration

    Raises
    ------
    ValueError
        Band count different from the CAE's channels, values above ``2**n_bits - 1`` (wrong bit
        depth), no valid pixel, or bad tiling parameters.
    """
    from ..vble._posterior import VBLEOptions

    options = VBLEOptions() if options is None else options
    if observation.ndim != 3 or observation.dims != ("band", "y", "x"):
        raise ValueError(f"observation must be a (band, y, x) DataArray, got dims "
                         f"{observation.dims}")
    n_bands = observation.sizes["band"]
    if n_bands != cae.config.in_channels:
        raise ValueError(f"the input has {n_bands} band(s) but the model expects "
                         f"{cae.config.in_channels}; select band(s) with --band / band=")
    dn_max = float(2 ** degradation.n_bits - 1)
    values = np.asarray(observation.values, dtype=np.float32)
    top = float(np.nanmax(values)) if np.isfinite(values).any() else np.nan
    if not np.isfinite(top):
        raise ValueError("the observation has no valid pixel (all NaN / no-data)")
    if top > dn_max * (1 + 1e-6):
        raise ValueError(f"the input reaches {top:g}, above 2**{degradation.n_bits} - 1 = "
                         f"{dn_max:g}: give the right bit depth (--bits / n_bits)")
    restorer = VBLETileRestorer(degradation, cae, options, device=device)
    key = "|".join([repr(degradation), repr(options), cae_fingerprint(cae)])
    tiled = restore_tiled(values / dn_max, restorer, tile=tile, overlap=overlap, margin=margin,
                          decimation=degradation.decimation, work_dir=work_dir,
                          resume_key=hashlib.sha1(key.encode()).hexdigest(), dask=dask,
                          progress=progress)
    gt, crs = _geo_of(observation)
    gt_img = None if gt is None else _scale_grid(gt, 1.0 / degradation.decimation)
    restored = georeferenced(tiled.restored * dn_max, transform=gt_img, crs=crs, name="restored")
    std = georeferenced(tiled.std * dn_max, transform=gt_img, crs=crs, name="std")
    samples = None if tiled.samples is None else tiled.samples * dn_max
    attrs: dict[str, Any] = {
        "title": "VBLE restoration with per-pixel posterior standard deviation",
        "source": str(observation.attrs.get("source", "")),
        "units": f"digital numbers of the input (normalized by 2**{degradation.n_bits} - 1 "
                 "during the restoration)",
        "model": model_name,
        "tile": tile, "overlap": overlap,
        "margin": overlap // 4 if margin is None else margin,
        "n_tiles": tiled.n_tiles,
    }
    attrs.update(degradation.settings())
    attrs.update(restorer.settings())
    return Restoration(observed=observation, restored=restored, std=std, samples=samples,
                       attrs=attrs, tiled=tiled)


def simulate_raster(sharp: xr.DataArray, degradation: PleiadesDegradation, *,
                    seed: int = 0) -> xr.DataArray:
    """Simulate an observation of a georeferenced sharp raster (digital numbers in and out).

    Parameters
    ----------
    sharp : xarray.DataArray ``(band, y, x)``
        Digital numbers, no NaN; cropped to a multiple of the decimation factor.
    degradation : PleiadesDegradation
    seed : int, default 0

    Returns
    -------
    xarray.DataArray
        The quantized observation in digital numbers, on the decimated grid (pixel ``(i, j)``
        centered on the sharp pixel ``(f i, f j)``), with the degradation settings and the
        seed as attributes. This is what ``sciml-inverse degrade`` writes.

    Raises
    ------
    ValueError
        No-data pixels in ``sharp`` or values above ``2**n_bits - 1``.
    """
    f = degradation.decimation
    h, w = (sharp.sizes["y"] // f) * f, (sharp.sizes["x"] // f) * f
    sharp = sharp.isel(y=slice(0, h), x=slice(0, w))
    values = np.asarray(sharp.values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("the sharp image has no-data pixels; crop them out first")
    dn = float(degradation.levels)
    if values.max() > dn * (1 + 1e-9):
        raise ValueError(f"the sharp image reaches {values.max():g}, above 2**"
                         f"{degradation.n_bits} - 1 = {dn:g}: give the right bit depth (--bits)")
    gen = torch.Generator().manual_seed(int(seed))
    y = degradation.simulate(torch.from_numpy(values / dn), gen).numpy() * dn
    gt, crs = _geo_of(sharp)
    return georeferenced(y.astype(np.float32), crs=crs, name="observation",
                         transform=None if gt is None else _scale_grid(gt, float(f)),
                         attrs={"source": str(sharp.attrs.get("source", "")),
                                **degradation.settings(), "seed": int(seed)})
