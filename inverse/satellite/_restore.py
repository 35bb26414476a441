"""VBLE restoration of georeferenced scenes: one tile (:class:`VBLETileRestorer`) and a whole
raster (:func:`restore_raster`, the code path of ``sciml-inverse restore`` and of the demo)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sciml_inverse._deprecation import renamed_arguments

from ._degradation import PleiadesDegradation
from ._io import (
    GEOTIFF_SUFFIXES,
    NETCDF_SUFFIXES,
    _geo_of,
    _scale_grid,
    georeferenced,
    write_restoration,
)
from ._source import RasterSource, RasterStats, open_raster
from ._tiling import TiledResult, _check_tiling, restore_tiled, tile_starts

if TYPE_CHECKING:  # pragma: no cover
    import os

    import xarray as xr

    from ..vble import CompressiveAutoencoder
    from ..vble._posterior import VBLEOptions

__all__ = ["VBLETileRestorer", "restore_raster", "Restoration", "simulate_raster",
           "cae_fingerprint", "check_observation"]


def cae_fingerprint(cae: torch.nn.Module) -> str:
    """SHA-1 of a model's configuration and state dict (identifies it in resume manifests)."""
    h = hashlib.sha1()
    config = getattr(cae, "config", None)
    h.update(repr(config).encode())
    for key, value in cae.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@renamed_arguments(iterations="n_iter")  # the former attribute name reads n_iter, warning
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
    progress : bool, default False
        Show the iterations within each tile (a tqdm bar on stderr); :func:`restore_raster`
        turns it on for scenes of at most 4 tiles, where the tile bar alone would sit at 0.

    Notes
    -----
    A tile of shape ``(C, h, w)`` is restored on the image grid ``(C, h f, w f)`` with the
    circular forward model of the degradation; no-data pixels (``mask`` False) enter through an
    :class:`operators.Mask` after the forward operator, with the observation set to 0 there.
    Every tile uses the same ``options.seed``, so a rerun is reproducible.

    :meth:`restore_batch` restores several tiles per network call (the images of a batch have
    their own random streams and stop on their own, so the results are those of the tiles
    restored one by one, up to floating-point rounding and the CG tolerance).
    """

    def __init__(self, degradation: PleiadesDegradation, cae: CompressiveAutoencoder,
                 options: VBLEOptions | None = None, *, device: str | torch.device = "cpu",
                 progress: bool = False) -> None:
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
        self.progress = bool(progress)
        #: Optimization iterations of every image restored so far (the stopping rule's effect).
        self.n_iter: list[int] = []

    has_std = True

    def __call__(self, obs: np.ndarray, mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Restore one tile; returns ``restored``, ``std`` (and ``samples`` when
        ``options.return_samples > 0``) as float32 arrays on the image grid. With a
        one-channel model, the bands of a multi-band tile are restored one by one."""
        obs = np.asarray(obs, dtype=np.float32)
        if obs.ndim == 2:
            obs = obs[None]
        n_in = self.cae.config.in_channels
        if obs.shape[0] == n_in:
            return self._restore(obs, mask)
        if n_in != 1:
            raise ValueError(f"the tile has {obs.shape[0]} band(s) but the model expects {n_in}")
        masks = [None] * obs.shape[0] if mask is None else \
            list(np.asarray(mask, dtype=bool).reshape(obs.shape)[:, None])
        outs = [self._restore(obs[k:k + 1], masks[k]) for k in range(obs.shape[0])]
        return {key: np.concatenate([o[key] for o in outs], axis=-3) for key in outs[0]}

    def restore_batch(self, tiles: list[tuple[np.ndarray, np.ndarray | None]]
                      ) -> list[dict[str, np.ndarray]]:
        """Restore several tiles, the complete ones (no mask) of the same shape in one batch.

        Parameters
        ----------
        tiles : list of (obs, mask)
            As for ``__call__``: ``obs`` ``(C, h, w)`` float, ``mask`` None or bool.

        Returns
        -------
        list of dict
            One ``__call__`` result per tile, in order.
        """
        outs: list[dict[str, np.ndarray] | None] = [None] * len(tiles)
        n_in = self.cae.config.in_channels
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (obs, mask) in enumerate(tiles):
            obs = np.asarray(obs, dtype=np.float32)
            obs = obs[None] if obs.ndim == 2 else obs
            if mask is None and (obs.shape[0] == n_in or n_in == 1):
                groups.setdefault(obs.shape, []).append(i)
            else:  # masked tiles (scene borders, no-data) one by one: the mask is per tile
                outs[i] = self(obs, mask)
        for shape, idx in groups.items():
            stack = np.stack([np.asarray(tiles[i][0], dtype=np.float32).reshape(shape)
                              for i in idx])  # (T, C, h, w)
            images = stack if shape[0] == n_in else stack.reshape(-1, 1, *shape[1:])
            res = self._restore_images(images)
            per = images.shape[0] // len(idx)  # images per tile: 1, or its bands
            for j, i in enumerate(idx):
                sl = slice(j * per, (j + 1) * per)
                outs[i] = {k: (v[:, sl].reshape(v.shape[0], shape[0], *v.shape[-2:])
                               if k == "samples" else v[sl].reshape(shape[0], *v.shape[-2:]))
                           for k, v in res.items()}
        return outs  # type: ignore[return-value]

    def _restore_images(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """A batch ``(B, C, h, w)`` of complete observations (C the model's channels):
        ``restored``/``std`` ``(B, C, h f, w f)`` (``samples`` ``(k, B, C, h f, w f)``)."""
        from ..vble._posterior import vble_restore

        _, c, h, w = images.shape
        f = self.degradation.decimation
        op = self.degradation.operator((c, h * f, w * f)).to(self.device)
        y = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        res = vble_restore(y, op, self.degradation.noise_model(), self.cae, self.options,
                           progress=self.progress)
        self.n_iter.extend(res.n_iter)
        out = {"restored": res.x_mmse.detach().cpu().numpy().astype(np.float32),
               "std": res.x_std.detach().cpu().numpy().astype(np.float32)}
        if res.samples is not None and res.samples.shape[0] > 0:
            out["samples"] = res.samples.detach().cpu().numpy().astype(np.float32)
        return out

    def _restore(self, obs: np.ndarray, mask: np.ndarray | None) -> dict[str, np.ndarray]:
        from operators import Mask

        from ..vble._posterior import vble_restore

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
                           self.options, progress=self.progress)
        self.n_iter.extend(res.n_iter)
        out = {"restored": res.x_mmse[0].detach().cpu().numpy().astype(np.float32),
               "std": res.x_std[0].detach().cpu().numpy().astype(np.float32)}
        if res.samples is not None and res.samples.shape[0] > 0:
            out["samples"] = res.samples[:, 0].detach().cpu().numpy().astype(np.float32)
        return out

    def settings(self) -> dict[str, Any]:
        """The model and posterior settings as flat NetCDF attributes (``vble_*`` keys)."""
        out: dict[str, Any] = {"method": self.options.method.replace("_", "-")}
        out.update({f"vble_{k}": v for k, v in vars(self.options).items()})
        cfg = self.cae.config
        out.update(vble_cae_in_channels=cfg.in_channels, vble_cae_N=cfg.N, vble_cae_M=cfg.M,
                   vble_cae_alpha=cfg.alpha, vble_cae_n_bits=cfg.n_bits)
        return out


@dataclass
class Restoration:
    """Result of :func:`restore_raster`.

    Attributes
    ----------
    observed : xarray.DataArray or None
        The observation (input digital numbers, observation grid); None when the outputs were
        streamed to files.
    restored, std : xarray.DataArray or None
        Posterior mean and standard deviation in the input's digital numbers, on the image grid
        (pixel size divided by the decimation factor), georeferenced; None when streamed to
        files (``paths``); ``std`` None for methods without uncertainty (TV).
    samples : ndarray ``(k, C, H, W)`` or None
        Posterior samples (digital numbers), when requested.
    attrs : dict
        Degradation, model and tiling settings (written as NetCDF global attributes).
    tiled : TiledResult
        Tiling statistics (``n_tiles``, ``n_computed``, ``seconds``, ``tile_seconds``).
    paths : list of pathlib.Path
        The files written by :func:`restore_raster` (``out``, ``geotiff``).
    """

    observed: xr.DataArray | None
    restored: xr.DataArray | None
    std: xr.DataArray | None
    samples: np.ndarray | None
    attrs: dict[str, Any] = field(default_factory=dict)
    tiled: TiledResult | None = None
    paths: list[Path] = field(default_factory=list)

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Write ``restored``, ``std`` (and ``samples``) with :func:`write_restoration`."""
        if self.restored is None:
            raise ValueError("this restoration was streamed to files: " + ", ".join(
                map(str, self.paths)))
        return write_restoration(path, self.restored, self.std, self.samples, attrs=self.attrs)

    def to_png(self, path: str | os.PathLike) -> Path:
        """Save the ``observed | restored | std`` panel with :func:`save_panel_png`."""
        from ._io import save_panel_png

        if self.restored is None:
            raise ValueError("this restoration was streamed to files: use save_panel_png on "
                             "previews read from " + ", ".join(map(str, self.paths)))
        std = self.std if self.std is not None else np.zeros(self.restored.shape, np.float32)
        return save_panel_png(path, self.observed, self.restored, std)


class _Normalized:
    """A windowed view of a source divided by ``scale`` (digital numbers -> normalized)."""

    def __init__(self, source: RasterSource, scale: float) -> None:
        self.source, self.scale, self.shape = source, scale, source.shape

    def __getitem__(self, key):
        return self.source[key] / np.float32(self.scale)


def _as_source(observation: Any) -> tuple[RasterSource, bool]:
    """A RasterSource for a path, a DataArray or a RasterSource; True if opened here."""
    import os

    if isinstance(observation, RasterSource):
        return observation, False
    if isinstance(observation, (str, os.PathLike)):
        return open_raster(observation), True
    if hasattr(observation, "dims"):
        return RasterSource.from_dataarray(observation), False
    raise TypeError(f"observation must be a path, an xarray.DataArray or a RasterSource, got "
                    f"{type(observation).__name__}")


def check_observation(source: RasterSource, n_bits: int) -> RasterStats:
    """Scan a source once (streaming) and check its values against the bit depth.

    Raises
    ------
    ValueError
        No valid pixel, negative digital numbers, or values above ``2**n_bits - 1``.
    """
    stats = source.stats()
    if stats.n_valid == 0:
        raise ValueError("the observation has no valid pixel (all NaN / no-data)")
    dn_max = float(2 ** n_bits - 1)
    if stats.maximum > dn_max * (1 + 1e-6):
        raise ValueError(f"the input reaches {stats.maximum:g}, above 2**{n_bits} - 1 = "
                         f"{dn_max:g}: give the right bit depth (--bits / n_bits)")
    if stats.minimum < 0:
        raise ValueError(f"the input has negative digital numbers (minimum {stats.minimum:g}); "
                         "digital numbers are >= 0: set the no-data value of the file or "
                         "rescale it")
    return stats


def _restorer_for(degradation, cae, options, restorer, device):
    if restorer is not None:
        if cae is not None:
            raise ValueError("give either cae (VBLE) or restorer, not both")
        return restorer
    if cae is None:
        raise ValueError("give a CAE (VBLE) or a restorer (e.g. TikhonovTileRestorer)")
    return VBLETileRestorer(degradation, cae, options, device=device)


def _resume_key(degradation, restorer) -> str:
    if isinstance(restorer, VBLETileRestorer):
        key = "|".join([repr(degradation), repr(restorer.options),
                        cae_fingerprint(restorer.cae)])
    else:
        key = "|".join([repr(degradation), type(restorer).__name__,
                        repr(getattr(restorer, "options", None))])
    return hashlib.sha1(key.encode()).hexdigest()


def restore_raster(observation: Any, degradation: PleiadesDegradation,
                   cae: CompressiveAutoencoder | None = None, options: VBLEOptions | None = None,
                   *, restorer: Any = None, out: str | os.PathLike | None = None,
                   geotiff: str | os.PathLike | None = None, cog: bool = False,
                   tile: int = 256, overlap: int = 32, margin: int | None = None,
                   work_dir: str | os.PathLike | None = None, dask: bool = False,
                   dask_batch: int | None = None, dask_scheduler: str | None = None,
                   progress: bool = True, device: str | torch.device = "cpu",
                   model_name: str = "", attrs: dict[str, Any] | None = None,
                   check: bool = True, keep_nodata: bool = True,
                   tile_batch: int = 1) -> Restoration:
    """Restore a georeferenced observation tile by tile (VBLE, or any tile restorer).

    The code path of ``sciml-inverse restore``. The observation is read window by window; with
    ``out``/``geotiff`` the output rows are written into the files as the tiles finish (the
    files appear, complete, only at the end), so memory does not grow with the scene.

    Parameters
    ----------
    observation : path, xarray.DataArray ``(band, y, x)`` or RasterSource
        Digital numbers (NaN = no data), divided by ``2**degradation.n_bits - 1``.
    degradation : PleiadesDegradation
        Acquisition model; ``n_bits`` is the input bit depth.
    cae : CompressiveAutoencoder, optional
        The VBLE prior (one channel: bands are restored one by one; or as many channels as
        bands).
    options : VBLEOptions, optional
    restorer : callable, optional
        A tile restorer instead of VBLE (:class:`TikhonovTileRestorer`,
        :class:`TVTileRestorer`, or any ``restore_fn`` of
        :func:`~inverse.satellite.restore_tiled` with a ``settings()`` method).
    out : path, optional
        Write a NetCDF (``.nc``) or GeoTIFF (``.tif``) file as the tiles finish (see
        :class:`NetCDFSink`, :class:`GeoTIFFSink`); the result then holds no arrays.
    geotiff : path, optional
        Also write a tiled, compressed GeoTIFF with bands ``restored`` and ``std``.
    cog : bool, default False
        Convert the GeoTIFF output(s) to Cloud-Optimized GeoTIFF.
    tile, overlap, margin, work_dir, dask, dask_batch, dask_scheduler, progress
        See :func:`~inverse.satellite.restore_tiled`.
    device : str or torch.device, default "cpu"
    model_name : str, optional
        Recorded in the attributes (e.g. the checkpoint path).
    attrs : dict, optional
        More global attributes for the outputs.
    keep_nodata : bool, default True
        No-data pixels of the observation stay no-data (NaN; the source's nodata value is
        recorded as ``source_nodata``); False restores (inpaints) them from their neighbours.
    tile_batch : int, default 1
        Tiles restored per network call (VBLE: :meth:`VBLETileRestorer.restore_batch`; same
        results as one by one, faster; the CLI uses 4); ignored with dask.
    check : bool, default True
        Scan the observation first (:func:`check_observation`: bit depth, negative values, no
        valid pixel); False when the caller already did.

    Returns
    -------
    Restoration

    Raises
    ------
    ValueError
        Band count different from the CAE's channels (other than one), negative values or
        values above ``2**n_bits - 1`` (wrong bit depth), no valid pixel, or bad tiling
        parameters.
    """
    from ..vble._posterior import VBLEOptions
    from ._writers import GeoTIFFSink, MultiSink, NetCDFSink, OutputGrid

    if cae is not None:
        options = VBLEOptions() if options is None else options
        n_in = cae.config.in_channels
    source, opened = _as_source(observation)
    try:
        n_bands = source.shape[0]
        if cae is not None and n_in not in (1, n_bands):
            raise ValueError(f"the input has {n_bands} band(s) but the model expects {n_in}; "
                             "select band(s) with --band / band=")
        restorer = _restorer_for(degradation, cae, options, restorer, device)
        if check:
            check_observation(source, degradation.n_bits)
        dn_max = float(2 ** degradation.n_bits - 1)
        f = degradation.decimation
        gt_img = None if source.transform is None else _scale_grid(source.transform, 1.0 / f)
        settings = restorer.settings() if hasattr(restorer, "settings") else {}
        all_attrs: dict[str, Any] = {
            "title": f"{settings.get('method', 'vble')} restoration"
                     + (" with per-pixel posterior standard deviation"
                        if getattr(restorer, "has_std", True) else ""),
            "source": "" if source.path is None else str(source.path),
            "source_nodata": "none" if source.nodata is None else float(source.nodata),
            "source_dtype": source.dtype,
            "units": f"digital numbers of the input (normalized by 2**{degradation.n_bits} - 1 "
                     "during the restoration)",
            "model": model_name, "tile": tile, "overlap": overlap,
            "margin": overlap // 4 if margin is None else margin,
        }
        tile_, overlap_, _m = _check_tiling(tile, overlap, margin, f)
        all_attrs["n_tiles"] = (len(tile_starts(source.shape[1] * f, tile_, overlap_, f))
                                * len(tile_starts(source.shape[2] * f, tile_, overlap_, f)))
        if isinstance(restorer, VBLETileRestorer) and progress and all_attrs["n_tiles"] <= 4 \
                and not (dask or dask_scheduler):
            restorer.progress = True  # few tiles: show the iterations within each one
        all_attrs.update(degradation.settings())
        all_attrs.update(settings)
        all_attrs.update(attrs or {})
        shape = (n_bands, source.shape[1] * f, source.shape[2] * f)
        grid = OutputGrid(shape, transform=gt_img, crs=source.crs, bands=source.bands,
                          band_names=source.band_names, attrs=all_attrs,
                          has_std=getattr(restorer, "has_std", True))
        sinks = []
        try:
            for path in (out, geotiff):
                if path is None:
                    continue
                suffix = str(path).lower().rsplit(".", 1)[-1]
                if "." + suffix in GEOTIFF_SUFFIXES:
                    sinks.append(GeoTIFFSink(path, grid, cog=cog))
                elif "." + suffix in NETCDF_SUFFIXES:
                    sinks.append(NetCDFSink(path, grid))
                else:
                    raise ValueError(f"output {str(path)!r} must be a NetCDF (.nc) or GeoTIFF "
                                     "(.tif) file name")
        except BaseException:
            for s in sinks:
                s.abort()
            raise
        scaled = _ScaledSink(MultiSink(sinks), dn_max) if sinks else None
        try:
            tiled = restore_tiled(_Normalized(source, dn_max), restorer, tile=tile,
                                  overlap=overlap, margin=margin, decimation=f,
                                  work_dir=work_dir, resume_key=_resume_key(degradation, restorer),
                                  dask=dask, dask_batch=dask_batch,
                                  dask_scheduler=dask_scheduler, progress=progress,
                                  sink=scaled, keep_nodata=keep_nodata,
                                  tile_batch=tile_batch)
        except BaseException:
            if scaled is not None:
                scaled.sink.__exit__(RuntimeError, None, None)
            raise
        if scaled is not None:
            scaled.sink.__exit__(None, None, None)
        observed = None
        restored = std = samples = None
        if tiled.restored is not None:
            observed = source.to_dataarray()
            band = np.asarray(source.bands, dtype=np.int64)
            restored = georeferenced(tiled.restored * dn_max, transform=gt_img, crs=source.crs,
                                     name="restored").assign_coords(band=band)
            if tiled.std is not None:
                std = georeferenced(tiled.std * dn_max, transform=gt_img, crs=source.crs,
                                    name="std").assign_coords(band=band)
            samples = None if tiled.samples is None else tiled.samples * dn_max
        return Restoration(observed=observed, restored=restored, std=std, samples=samples,
                           attrs=all_attrs, tiled=tiled,
                           paths=[s.path for s in sinks])
    finally:
        if opened:
            source.close()


class _ScaledSink:
    """Multiplies the rows by ``scale`` (normalized -> digital numbers) before ``sink``."""

    def __init__(self, sink: Any, scale: float) -> None:
        self.sink, self.scale = sink, np.float32(scale)

    def write(self, rows, restored, std, samples) -> None:
        self.sink.write(rows, restored * self.scale, None if std is None else std * self.scale,
                        None if samples is None else samples * self.scale)


def simulate_raster(sharp: xr.DataArray, degradation: PleiadesDegradation, *,
                    seed: int = 0) -> xr.DataArray:
    """Simulate an observation of a georeferenced sharp raster (digital numbers in and out).

    Parameters
    ----------
    sharp : xarray.DataArray ``(band, y, x)``
        Digital numbers, NaN at no-data pixels; cropped to a multiple of the decimation factor.
    degradation : PleiadesDegradation
    seed : int, default 0

    Returns
    -------
    xarray.DataArray
        The quantized observation in digital numbers, on the decimated grid (pixel ``(i, j)``
        centered on the sharp pixel ``(f i, f j)``), with the degradation settings and the
        seed as attributes; NaN where a sharp pixel of its ``f x f`` block is no-data (the
        simulation fills them with the mean first). This is what ``sciml-inverse degrade``
        writes.

    Raises
    ------
    ValueError
        No valid pixel, negative values or values above ``2**n_bits - 1``.
    """
    f = degradation.decimation
    h, w = (sharp.sizes["y"] // f) * f, (sharp.sizes["x"] // f) * f
    sharp = sharp.isel(y=slice(0, h), x=slice(0, w))
    values = np.asarray(sharp.values, dtype=np.float64)
    valid = np.isfinite(values)
    if not valid.any():
        raise ValueError("the sharp image has no valid pixel (all no-data)")
    dn = float(degradation.levels)
    if values[valid].max() > dn * (1 + 1e-9):
        raise ValueError(f"the sharp image reaches {values[valid].max():g}, above 2**"
                         f"{degradation.n_bits} - 1 = {dn:g}: give the right bit depth (--bits)")
    if values[valid].min() < 0:
        raise ValueError(f"the sharp image has negative digital numbers (minimum "
                         f"{values[valid].min():g}); digital numbers are >= 0")
    if not valid.all():  # simulate on a filled image, then carry the no-data through
        values = np.where(valid, values, values[valid].mean())
    gen = torch.Generator().manual_seed(int(seed))
    y = degradation.simulate(torch.from_numpy(values / dn), gen).numpy() * dn
    if not valid.all():
        c, h, w = valid.shape
        seen = valid.reshape(c, h // f, f, w // f, f).all(axis=(2, 4))
        y = np.where(seen, y, np.nan)
    gt, crs = _geo_of(sharp)
    return georeferenced(y.astype(np.float32), crs=crs, name="observation",
                         transform=None if gt is None else _scale_grid(gt, float(f)),
                         attrs={"source": str(sharp.attrs.get("source", "")),
                                **degradation.settings(), "seed": int(seed),
                                **({"nodata": sharp.attrs["nodata"]}
                                   if "nodata" in sharp.attrs else {})})
