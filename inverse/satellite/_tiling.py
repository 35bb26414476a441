r"""Restoration of large scenes tile by tile: overlap, smooth blending, bounded memory, resume,
optional dask.

Tiles are laid out in the *image* (output) grid; the observation tile of an image tile starting
at ``(r, c)`` starts at ``(r / f, c / f)`` with ``f`` the decimation factor, so ``tile`` and the
step ``tile - overlap`` must be multiples of ``f``.

Blending. Along each axis a tile's weight is 0 on the ``margin`` pixels at an inner tile edge,
rises as :math:`\sin^2` over the next ``overlap - 2 margin`` pixels, and is 1 elsewhere (and up
to the scene border). Adjacent tiles' ramps are aligned and complementary
(:math:`\sin^2 + \cos^2 = 1`), so the 2-D weights :math:`w_t = w_t^{(y)} \otimes w_t^{(x)}`
form a partition of unity (:func:`blend_weights`); the result is still divided by
:math:`\sum_t w_t` against rounding. The smooth ramps hide seams; the zero margin drops the
pixels next to inner tile edges, where a tile restoration has boundary effects (circular
convolution, padding of the network). If ``restore_fn`` is exact at distance ``>= margin``
from its tile's edges (e.g. a local filter), the tiled result equals the untiled one there.

Uncertainty. The blended restoration is the mean of the mixture :math:`\sum_t w_t p_t` of the
tile posteriors, and its variance is the mixture variance (law of total variance)

.. math::

    \bar x = \sum_t w_t \mu_t, \qquad
    \bar v = \sum_t w_t \sigma_t^2 + \sum_t w_t (\mu_t - \bar x)^2,

i.e. *variances* are blended (not standard deviations; :math:`\sqrt{\sum w \sigma^2} \ge
\sum w \sigma`, so it never under-reports), plus the disagreement between overlapping tiles,
which is zero when they agree. Both are accumulated with West's weighted incremental algorithm
(stable in float32). Samples are combined as
:math:`\bar x + \sum_t w_t (x_t^{(s)} - \mu_t) / \sqrt{\sum_t w_t^2}`, which keeps the
per-pixel variance of independent tile samples (a plain weighted average would shrink it by
:math:`\sum w_t^2` in the overlaps) and has no seams.

Memory. Tiles are processed in row-major order and blended into a strip of ``tile`` rows; the
rows above the current tile row are final, so they are normalised and handed to a *sink* (an
in-memory :class:`ArraySink`, or a file writer that writes them into a NetCDF/GeoTIFF) and the
strip moves down. With a windowed observation (:class:`~inverse.satellite.RasterSource`) and a
file sink, peak memory is a few ``(C, tile, W)`` strips plus one (or a batch of) tile
restorations, whatever the scene height.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sciml_inverse import check_int, raise_if_interrupted, write_json

from ._io import _atomic_path

__all__ = ["restore_tiled", "TiledResult", "tile_starts", "blend_weights", "RestoreFn",
           "TileSink", "ArraySink"]

#: ``restore_fn(observation_tile (C, h, w) float32, mask (C, h, w) bool or None)`` returning a
#: mapping with ``"restored"`` and ``"std"`` of shape ``(C, h f, w f)`` and optionally
#: ``"samples"`` of shape ``(k, C, h f, w f)``.
RestoreFn = Callable[[np.ndarray, "np.ndarray | None"], Mapping[str, Any]]


class TileSink(Protocol):
    """Receiver of finished output rows (see ``sink`` in :func:`restore_tiled`)."""

    def write(self, rows: slice, restored: np.ndarray, std: np.ndarray | None,
              samples: np.ndarray | None) -> None: ...  # pragma: no cover

_MANIFEST = "manifest.json"
_FORMAT = 1


def tile_starts(size: int, tile: int, overlap: int, multiple: int = 1) -> list[int]:
    """Start indices of the tiles along one axis of length ``size``.

    Tiles of length ``min(tile, size)`` start every ``tile - overlap`` pixels; the last one is
    moved back to end at ``size`` (its overlap with the previous tile is then larger).

    Parameters
    ----------
    size, tile, overlap : int
    multiple : int, default 1
        Starts are multiples of it (the decimation factor); ``size`` and ``tile - overlap`` must
        be too.

    Returns
    -------
    list of int
    """
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    last = size - tile
    last -= last % multiple
    if starts[-1] != last:
        starts.append(last)
    return starts


def _axis_window(length: int, overlap: int, margin: int, left: int | None,
                 right: int | None) -> np.ndarray:
    """1-D blending window of a tile; ``left``/``right`` are the actual overlaps with the
    neighbouring tiles (None at the scene border)."""
    w = np.ones(length, dtype=np.float64)
    ramp_len = overlap - 2 * margin
    ramp = np.sin(np.pi * (np.arange(ramp_len) + 0.5) / (2 * ramp_len)) ** 2
    # The ramp shared by two neighbours is centred in their overlap (``margin`` from each edge
    # when the overlap is ``overlap``; more when the last tile was moved back).
    if left is not None:
        z = (left - ramp_len) // 2
        w[:z] = 0.0
        w[z:z + ramp_len] *= ramp
    if right is not None:
        z = right - (right - ramp_len) // 2 - ramp_len
        w[length - z:] = 0.0
        w[length - z - ramp_len:length - z] *= ramp[::-1]
    return w


def _windows(size: int, tile: int, overlap: int, margin: int,
             starts: list[int]) -> list[np.ndarray]:
    length = min(tile, size)
    out = []
    for i, s in enumerate(starts):
        left = None if i == 0 else starts[i - 1] + length - s
        right = None if i == len(starts) - 1 else s + length - starts[i + 1]
        out.append(_axis_window(length, overlap, margin, left, right))
    return out


def blend_weights(shape: tuple[int, int], tile: int = 256, overlap: int = 32,
                  margin: int | None = None, decimation: int = 1
                  ) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """The tiles of an image of ``shape`` and their 2-D blending weights.

    Yields
    ------
    (slice, slice), ndarray
        The tile's region in the image grid and its weight array (float64, same size). The
        weights of all tiles sum to 1 at every pixel (partition of unity).
    """
    h, w = shape
    tile, overlap, margin = _check_tiling(tile, overlap, margin, decimation)
    rows, cols = (tile_starts(n, tile, overlap, decimation) for n in (h, w))
    wy, wx = _windows(h, tile, overlap, margin, rows), _windows(w, tile, overlap, margin, cols)
    th, tw = min(tile, h), min(tile, w)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            yield (slice(r, r + th), slice(c, c + tw)), np.outer(wy[i], wx[j])


def _check_int(name: str, v: object, lo: int) -> int:
    """:func:`sciml_inverse.check_int` (numpy integers pass), returning a Python int."""
    check_int(name, v, lo)
    return int(v)  # type: ignore[call-overload]


def _check_tiling(tile: int, overlap: int, margin: int | None,
                  decimation: int) -> tuple[int, int, int]:
    f = _check_int("decimation", decimation, 1)
    tile = _check_int("tile", tile, 2)
    overlap = _check_int("overlap", overlap, 1)
    margin = overlap // 4 if margin is None else _check_int("margin", margin, 0)
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than tile ({tile})")
    if overlap - 2 * margin < 1:
        raise ValueError(f"overlap ({overlap}) must exceed 2 * margin ({2 * margin}): the "
                         "blending ramp lies between the two margins")
    if tile % f or (tile - overlap) % f:
        raise ValueError(f"tile ({tile}) and tile - overlap ({tile - overlap}) must be multiples "
                         f"of the decimation factor {f}")
    return tile, overlap, margin


@dataclass
class TiledResult:
    """Output of :func:`restore_tiled`.

    Attributes
    ----------
    restored : ndarray, shape ``(C, H, W)``, float32
        Blended restoration; NaN where no tile had a valid observation.
    std : ndarray, same shape
        Blended posterior standard deviation (mixture variance, see the module notes).
    samples : ndarray ``(k, C, H, W)`` or None
        Blended samples, when ``restore_fn`` returned some.
    n_tiles : int
        Number of tiles.
    n_computed : int
        Tiles restored by this call (the others were loaded from ``work_dir`` or empty).
    seconds : float
        Wall time of the call.
    tile_seconds : list of float
        Wall time of the ``restore_fn`` call of each computed tile (measured where it ran).
    """

    restored: np.ndarray
    std: np.ndarray
    samples: np.ndarray | None
    n_tiles: int
    n_computed: int
    seconds: float
    tile_seconds: list[float] = field(default_factory=list)

    @property
    def seconds_per_tile(self) -> float:
        """Mean wall time per computed tile (NaN if none was computed)."""
        return float(np.mean(self.tile_seconds)) if self.tile_seconds else math.nan


class ArraySink:
    """A :data:`TileSink` that keeps the finished rows in ``(C, H, W)`` arrays (``np.memmap``
    files in ``directory`` when it is given): the in-memory output of :func:`restore_tiled`."""

    def __init__(self, shape: tuple[int, int, int], directory: Path | None = None) -> None:
        self.shape = tuple(shape)
        self.directory = directory
        self.restored = self._alloc("restored", self.shape)
        self.std: np.ndarray | None = None
        self.samples: np.ndarray | None = None

    def _alloc(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if self.directory is None:
            return np.full(shape, np.nan, dtype=np.float32)
        arr = np.memmap(self.directory / f"out_{name}.f32", dtype=np.float32, mode="w+",
                        shape=shape)
        arr[...] = np.nan
        return arr

    def write(self, rows: slice, restored: np.ndarray, std: np.ndarray | None,
              samples: np.ndarray | None) -> None:
        self.restored[:, rows] = restored
        if std is not None:
            if self.std is None:
                self.std = self._alloc("std", self.shape)
            self.std[:, rows] = std
        if samples is not None:
            if self.samples is None:
                self.samples = self._alloc("samples", (samples.shape[0], *self.shape))
            self.samples[:, :, rows] = samples

    def close(self) -> None:
        for arr in (self.restored, self.std, self.samples):
            if isinstance(arr, np.memmap):
                arr.flush()


class _StripAccumulator:
    """Weighted incremental mean / mixture variance / sample combination (West, 1979) over a
    strip of rows: tiles arrive in row-major order, and the rows above the current tile row are
    final, so they are normalised and handed to the sink, and the strip moves down. Memory is
    a few ``(C, tile, W)`` arrays, whatever the scene height."""

    def __init__(self, shape: tuple[int, int, int], height: int, sink: Any) -> None:
        self.shape = shape
        self.height = height
        self.sink = sink
        c, _h, w = shape
        self.base = 0
        self.weight = np.zeros((height, w), np.float32)
        self.mean = np.zeros((c, height, w), np.float32)
        self.m2: np.ndarray | None = None
        self.has_std: bool | None = None
        self.dev: np.ndarray | None = None
        self.sq: np.ndarray | None = None

    def _advance(self, row: int) -> None:
        """Finalise and emit the rows ``[base, row)``; the strip then starts at ``row``."""
        while self.base < row:
            n = min(row - self.base, self.height)
            self._emit(n)
            for arr in (self.weight, self.mean, self.m2, self.sq, self.dev):
                if arr is None:
                    continue
                if n < self.height:
                    arr[..., :-n, :] = arr[..., n:, :].copy()
                arr[..., self.height - n:, :] = 0
            self.base += n

    def _emit(self, n: int) -> None:
        """Normalise rows ``[0, n)`` of the strip and write them, 64 rows at a time (small
        float64 temporaries, small writes)."""
        for r0 in range(0, n, 64):
            self._emit_rows(slice(r0, min(n, r0 + 64)))

    def _emit_rows(self, sl: slice) -> None:
        rows = slice(self.base + sl.start, self.base + sl.stop)
        wt = self.weight[sl].astype(np.float64)
        empty = wt <= 0
        mean = self.mean[:, sl].copy()
        mean[:, empty] = np.nan
        std = None
        if self.m2 is not None:
            var = np.divide(self.m2[:, sl], wt, out=np.zeros(self.m2[:, sl].shape),
                            where=~empty)
            std = np.sqrt(np.maximum(var, 0.0)).astype(np.float32)
            std[:, empty] = np.nan
        samples = None
        if self.dev is not None:
            sq = self.sq[sl].astype(np.float64)
            scale = np.divide(1.0, np.sqrt(sq), out=np.zeros_like(sq), where=sq > 0)
            samples = self.dev[:, :, sl] * scale.astype(np.float32) + mean
            samples[:, :, empty] = np.nan
        self.sink.write(rows, mean, std, samples)

    def add(self, region: tuple[slice, slice], w: np.ndarray, out: Mapping[str, np.ndarray]
            ) -> None:
        rs, cs = region
        if rs.start < self.base:
            raise RuntimeError("tiles must be added in row-major order")  # pragma: no cover
        self._advance(rs.start)
        region = (slice(rs.start - self.base, rs.stop - self.base), cs)
        sl = (slice(None), *region)
        has_std = out.get("std") is not None
        if self.has_std is None:
            self.has_std = has_std
            if has_std:
                self.m2 = np.zeros_like(self.mean)
        elif has_std != self.has_std:
            raise ValueError("restore_fn returned 'std' for some tiles and not for others")
        x = out["restored"].astype(np.float64)
        w_old = self.weight[region].astype(np.float64)
        w_new = w_old + w
        mean_old = self.mean[sl].astype(np.float64)
        frac = np.divide(w, w_new, out=np.zeros_like(w_new), where=w_new > 0)
        delta = x - mean_old
        mean_new = mean_old + frac * delta
        if self.m2 is not None:
            v = out["std"].astype(np.float64) ** 2
            self.m2[sl] = self.m2[sl] + w * (v + delta * (x - mean_new))
        self.mean[sl] = mean_new
        self.weight[region] = w_new
        samples = out.get("samples")
        if samples is not None:
            if self.dev is None:
                c, _h, wd = self.shape
                self.dev = np.zeros((samples.shape[0], c, self.height, wd), np.float32)
                self.sq = np.zeros((self.height, wd), np.float32)
            elif samples.shape[0] != self.dev.shape[0]:
                raise ValueError(f"restore_fn returned {samples.shape[0]} samples for one tile "
                                 f"and {self.dev.shape[0]} for another; return the same number")
            self.dev[(slice(None), *sl)] += (w * (samples - x)).astype(np.float32)
            self.sq[region] += (w * w).astype(np.float32)

    def finish(self) -> None:
        """Emit the remaining rows."""
        self._advance(self.shape[1])


def _as_numpy(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float32)
    if arr.shape != shape:
        if arr.size == math.prod(shape) and arr.squeeze().shape == tuple(
                s for s in shape if s != 1):
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"restore_fn returned {name!r} of shape {arr.shape}; expected "
                             f"{shape}")
    return arr


def _check_output(out: Any, shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    if not isinstance(out, Mapping) or "restored" not in out or "std" not in out:
        raise TypeError("restore_fn must return a mapping with keys 'restored' and 'std' (None "
                        f"when it has no uncertainty; optionally 'samples'), got "
                        f"{type(out).__name__}")
    res = {"restored": _as_numpy("restored", out["restored"], shape),
           "std": None if out["std"] is None else _as_numpy("std", out["std"], shape)}
    if out.get("samples") is not None:
        s = out["samples"]
        s = s.detach().cpu().numpy() if hasattr(s, "detach") else np.asarray(s)
        res["samples"] = _as_numpy("samples", s, (s.shape[0], *shape))
    return res


def _prepare_tile(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
    """NaN -> mask. Returns None for a tile without any valid pixel."""
    tile = np.asarray(obs, dtype=np.float32)
    valid = np.isfinite(tile)
    if valid.all():
        return np.ascontiguousarray(tile), None
    if not valid.any():
        return None
    filled = np.where(valid, tile, np.float32(tile[valid].mean()))
    return np.ascontiguousarray(filled, dtype=np.float32), valid


def _run(restore_fn: RestoreFn, obs: np.ndarray, mask: np.ndarray | None,
         shape: tuple[int, int, int]) -> tuple[dict[str, np.ndarray], float]:
    t0 = time.perf_counter()
    out = _check_output(restore_fn(obs, mask), shape)
    return out, time.perf_counter() - t0


class _TileStore:
    """Finished tiles in ``work_dir/tiles``, each written atomically, with a manifest."""

    def __init__(self, work_dir: Path, manifest: dict[str, Any]) -> None:
        self.dir = work_dir / "tiles"
        self.dir.mkdir(parents=True, exist_ok=True)
        path = work_dir / _MANIFEST
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise ValueError(f"{path} is unreadable ({err}); delete work_dir to start "
                                 "over") from err
            if old != manifest:
                diff = {k: (old.get(k), v) for k, v in manifest.items() if old.get(k) != v}
                raise ValueError(f"work_dir {str(work_dir)!r} holds tiles of another run "
                                 f"(differences (old, new): {diff}); use a fresh work_dir or "
                                 "delete it")
        else:
            write_json(path, manifest, indent=1)

    def _path(self, i: int, j: int) -> Path:
        return self.dir / f"tile_{i:04d}_{j:04d}.npz"

    def load(self, i: int, j: int, digest: str) -> dict[str, np.ndarray] | None:
        path = self._path(i, j)
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                if str(data["obs_sha1"]) != digest:
                    return None  # the observation changed under this tile: recompute it
                out = {k: data[k] for k in data.files if k != "obs_sha1"}
                out.setdefault("std", None)
                return out
        except (OSError, ValueError, KeyError, EOFError):
            return None  # unreadable (should not happen with atomic writes): recompute

    def save(self, i: int, j: int, digest: str, out: Mapping[str, np.ndarray]) -> None:
        arrays = {k: v for k, v in out.items() if v is not None}
        with _atomic_path(self._path(i, j)) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, obs_sha1=np.array(digest), **arrays)


def _digest(obs: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(obs, dtype=np.float32).tobytes()).hexdigest()


def restore_tiled(observation: Any, restore_fn: RestoreFn, *, tile: int = 256, overlap: int = 32,
                  margin: int | None = None, decimation: int = 1,
                  work_dir: str | os.PathLike | None = None, resume_key: str | None = None,
                  dask: bool = False, dask_batch: int | None = None,
                  dask_scheduler: str | None = None, progress: bool = True,
                  sink: TileSink | None = None, keep_nodata: bool = False,
                  tile_batch: int = 1) -> TiledResult:
    """Restore a large scene tile by tile with overlap and smooth blending.

    Parameters
    ----------
    observation : array_like, shape ``(C, h, w)`` or ``(h, w)``
        The observation, NaN at no-data pixels: a NumPy array, memmap, DataArray, or any object
        with a ``shape`` ``(C, h, w)`` and window indexing ``observation[:, rows, cols]``
        returning float arrays (e.g. a :class:`~inverse.satellite.RasterSource`, read window by
        window: the scene is never loaded whole).
    restore_fn : callable
        ``restore_fn(obs_tile, mask)`` with ``obs_tile`` a float32 ``(C, th / f, tw / f)``
        array (no-data pixels filled with the tile's mean) and ``mask`` a boolean array of the
        same shape (True = valid) or None when every pixel is valid. Returns a mapping with
        ``"restored"`` and ``"std"`` of shape ``(C, th, tw)`` (``std`` None for methods without
        uncertainty, for every tile) and optionally ``"samples"``
        ``(k, C, th, tw)`` (NumPy arrays or tensors). Tiles without any valid pixel are
        skipped.
    tile : int, default 256
        Tile size in the image (output) grid; a multiple of ``decimation``.
    overlap : int, default 32
        Overlap of adjacent tiles (image grid); ``tile - overlap`` a multiple of ``decimation``.
    margin : int, optional
        Pixels at each inner tile edge given zero weight (default ``overlap // 4``); must be
        ``< overlap / 2``.
    decimation : int, default 1
        Ratio of the image grid to the observation grid.
    work_dir : path, optional
        Enables resume: each finished tile is saved atomically in ``work_dir/tiles`` (with a
        hash of its observation) and skipped when the call is repeated; the in-memory outputs
        (without ``sink``) are memory-mapped files there. A manifest records the settings and
        ``resume_key``; a different one raises instead of mixing runs.
    resume_key : str, optional
        Identifies what ``restore_fn`` computes (model, options) in the manifest.
    dask : bool, default False
        Run tiles as ``dask.delayed`` tasks, ``dask_batch`` at a time, with dask's current
        scheduler (a ``dask.distributed`` Client if one is active, else threads) or
        ``dask_scheduler``. Results are blended and saved by the calling process.
    dask_batch : int, optional
        Tiles in flight at once (default: twice the number of workers/cores).
    dask_scheduler : str, optional
        The address of a ``dask.distributed`` scheduler (``"tcp://host:8786"``; implies
        ``dask``): the tiles run on that cluster as futures, the restorer (e.g. a CAE) is
        scattered to the workers once, and results are blended here as they return. Otherwise
        passed to ``dask.compute(scheduler=...)``, e.g. ``"synchronous"``. With ``dask=True``
        and an active ``distributed.Client``, that client is used the same way.
    progress : bool, default True
        Show a tqdm progress bar (on stderr).
    keep_nodata : bool, default False
        Give zero weight to the image pixels of no-data observation pixels, so that they are
        NaN (no data) in the result; by default they are restored (inpainted) from their
        neighbours within the tile.
    sink : TileSink, optional
        Receives the finished rows, top to bottom, as ``sink.write(rows, restored, std,
        samples)`` (``(C, n, W)`` float32 arrays, ``std``/``samples`` None when absent) as soon
        as no later tile overlaps them, e.g. a file writer
        (:func:`~inverse.satellite.restore_scene`); only a strip of about ``tile`` rows is
        kept in memory. Default: an :class:`ArraySink` (outputs in memory, or memory-mapped in
        ``work_dir``), returned in the result.
    tile_batch : int, default 1
        Tiles handed to ``restore_fn.restore_batch(list of (obs, mask))`` at once (one network
        call for several tiles, e.g. :meth:`VBLETileRestorer.restore_batch`; it returns the
        list of outputs) when ``restore_fn`` has that method and ``dask`` is off; tiles are
        still saved one by one (resume) and blended in row-major order.

    Returns
    -------
    TiledResult
        Arrays of shape ``(C, h f, w f)`` (``np.memmap`` views into ``work_dir`` when given);
        None when ``sink`` is given.

    Raises
    ------
    ValueError
        Bad tiling parameters, an observation that is not 2-D/3-D or has no valid pixel, a
        ``restore_fn`` output of the wrong shape, or a ``work_dir`` from another run.
    TypeError
        A ``restore_fn`` output that is not a mapping with ``restored`` and ``std``.

    Notes
    -----
    See the module documentation (:mod:`inverse.satellite._tiling`) for the blending weights,
    the variance blending and the combination of samples.
    """
    t_start = time.perf_counter()
    tile, overlap, margin = _check_tiling(tile, overlap, margin, decimation)
    f = int(decimation)
    obs_all = observation.values if hasattr(observation, "dims") else observation
    if not (hasattr(obs_all, "shape") and hasattr(obs_all, "__getitem__")):
        obs_all = np.asarray(obs_all)
    if isinstance(obs_all, np.ndarray) and obs_all.ndim == 2:
        obs_all = obs_all[None]
    if len(obs_all.shape) != 3:
        raise ValueError(f"observation must be (h, w) or (C, h, w), got shape {obs_all.shape}")
    c, ho, wo = (int(n) for n in obs_all.shape)
    shape = (c, ho * f, wo * f)
    wdir = None if work_dir is None else Path(work_dir)
    store = None
    if wdir is not None:
        wdir.mkdir(parents=True, exist_ok=True)
        manifest = {"format": _FORMAT, "observation_shape": [c, ho, wo], "tile": tile,
                    "overlap": overlap, "margin": margin, "decimation": f,
                    "resume_key": resume_key}
        store = _TileStore(wdir, manifest)
    own_sink = sink is None
    out_sink: Any = ArraySink(shape, wdir) if own_sink else sink
    # the weights are made one tile at a time (a list of them would grow with the scene)
    n_tiles = (len(tile_starts(shape[1], tile, overlap, f))
               * len(tile_starts(shape[2], tile, overlap, f)))
    acc = _StripAccumulator(shape, min(tile, shape[1]), out_sink)
    n_computed, tile_seconds, n_valid = 0, [], 0

    from tqdm.auto import tqdm

    bar = tqdm(total=n_tiles, desc="tiles", unit="tile", disable=not progress)

    def items() -> Iterator[tuple]:
        """The tiles in row-major order: ``(key, region, w, obs, mask, digest, tshape,
        loaded)``, ``loaded`` the saved output of a finished tile (else None); empty tiles are
        skipped."""
        nonlocal n_valid
        for region, w in blend_weights(shape[1:], tile, overlap, margin, f):
            raise_if_interrupted()  # Ctrl-C/SIGTERM the interpreter dropped (sciml_inverse)
            rs, cs = region
            obs_sl = (slice(None), slice(rs.start // f, rs.stop // f),
                      slice(cs.start // f, cs.stop // f))
            prepared = _prepare_tile(obs_all[obs_sl])
            if prepared is None:
                bar.update(1)
                continue
            n_valid += 1
            obs, mask = prepared
            if keep_nodata and mask is not None:
                # no-data stays no-data: zero weight where an observation pixel is missing
                seen = np.repeat(np.repeat(mask.all(axis=0), f, axis=0), f, axis=1)
                w = w * seen
            tshape = (c, rs.stop - rs.start, cs.stop - cs.start)
            key = (rs.start, cs.start)
            digest = ""
            if store is not None:
                digest = _digest(obs if mask is None else np.where(mask, obs, np.nan))
                loaded = store.load(*key, digest)
                if loaded is not None:
                    yield key, region, w, obs, mask, digest, tshape, _check_output(loaded,
                                                                                  tshape)
                    continue
            yield key, region, w, obs, mask, digest, tshape, None

    def todo() -> Iterator[tuple]:
        """The tiles to compute; finished ones are loaded and blended on the way."""
        for *item, loaded in items():
            if loaded is not None:
                acc.add(item[1], item[2], loaded)
                bar.update(1)
                continue
            yield tuple(item)

    dask = dask or _is_address(dask_scheduler)
    tile_batch = _check_int("tile_batch", tile_batch, 1)
    batched = tile_batch > 1 and hasattr(restore_fn, "restore_batch") and not dask
    try:
        if batched:
            n_computed, tile_seconds = _run_batched(items(), restore_fn, acc, store, bar,
                                                    tile_batch)
        elif not dask:
            for key, region, w, obs, mask, digest, tshape in todo():
                out, sec = _run(restore_fn, obs, mask, tshape)
                if store is not None:
                    store.save(*key, digest, out)
                acc.add(region, w, out)
                n_computed += 1
                tile_seconds.append(sec)
                bar.update(1)
        else:
            n_computed, tile_seconds = _run_dask(todo(), restore_fn, acc, store, bar,
                                                 dask_batch, dask_scheduler)
    finally:
        bar.close()
    if n_valid == 0:
        raise ValueError("the observation has no valid pixel (all NaN / no-data)")
    acc.finish()
    if own_sink:
        out_sink.close()
        restored, std, samples = out_sink.restored, out_sink.std, out_sink.samples
    else:
        restored = std = samples = None
    return TiledResult(restored=restored, std=std, samples=samples, n_tiles=n_tiles,
                       n_computed=n_computed, seconds=time.perf_counter() - t_start,
                       tile_seconds=tile_seconds)


def _run_batched(items: Iterator[tuple], restore_fn: Any, acc: _StripAccumulator,
                 store: _TileStore | None, bar: Any, batch: int) -> tuple[int, list[float]]:
    """``batch`` tiles per ``restore_fn.restore_batch`` call; outputs (and finished tiles
    loaded on the way) are saved and blended in row-major order."""
    n_computed, seconds = 0, []
    pending: list[tuple] = []

    def flush() -> None:
        nonlocal n_computed
        todo = [it for it in pending if it[-1] is None]
        outs: list[Any] = []
        sec = 0.0
        if todo:
            t0 = time.perf_counter()
            outs = list(restore_fn.restore_batch([(it[3], it[4]) for it in todo]))
            sec = (time.perf_counter() - t0) / len(todo)
            if len(outs) != len(todo):
                raise ValueError(f"restore_batch returned {len(outs)} outputs for "
                                 f"{len(todo)} tiles")
        computed = iter(outs)
        for key, region, w, _obs, _mask, digest, tshape, loaded in pending:
            if loaded is None:
                out = _check_output(next(computed), tshape)
                if store is not None:
                    store.save(*key, digest, out)
                n_computed += 1
                seconds.append(sec)
            else:
                out = loaded
            acc.add(region, w, out)
            bar.update(1)
        pending.clear()

    n_todo = 0
    for item in items:
        pending.append(item)
        n_todo += item[-1] is None
        if n_todo >= batch:
            flush()
            n_todo = 0
    flush()
    return n_computed, seconds


def _n_workers() -> int:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import default_client

        return max(1, sum(default_client().nthreads().values()))
    return max(1, os.cpu_count() or 1)


def _is_address(scheduler: Any) -> bool:
    return isinstance(scheduler, str) and "://" in scheduler


def _default_client() -> Any:
    with contextlib.suppress(ImportError, ValueError):
        from distributed import default_client

        return default_client()
    return None


def _run_dask(todo: Iterator[tuple], restore_fn: RestoreFn, acc: _StripAccumulator,
              store: _TileStore | None, bar: Any, batch: int | None, scheduler: Any
              ) -> tuple[int, list[float]]:
    if _is_address(scheduler) or (scheduler is None and _default_client() is not None):
        return _run_distributed(todo, restore_fn, acc, store, bar, batch, scheduler)
    import dask

    batch = 2 * _n_workers() if batch is None else _check_int("dask_batch", batch, 1)
    n_computed, seconds = 0, []
    kwargs = {} if scheduler is None else {"scheduler": scheduler}
    # One graph node for the function (e.g. a tile restorer holding a CAE): sent once per
    # batch and worker, not once per tile.
    fn = dask.delayed(restore_fn, pure=True, traverse=False)
    while chunk := list(itertools.islice(todo, batch)):
        tasks = [dask.delayed(_run, pure=False)(fn, obs, mask, tshape)
                 for _key, _region, _w, obs, mask, _digest, tshape in chunk]
        results = dask.compute(*tasks, **kwargs)
        for (key, region, w, _obs, _mask, digest, _shape), (out, sec) in zip(chunk, results,
                                                                             strict=True):
            if store is not None:
                store.save(*key, digest, out)
            acc.add(region, w, out)
            n_computed += 1
            seconds.append(sec)
            bar.update(1)
    return n_computed, seconds


def _run_distributed(todo: Iterator[tuple], restore_fn: RestoreFn, acc: _StripAccumulator,
                     store: _TileStore | None, bar: Any, batch: int | None, address: str | None
                     ) -> tuple[int, list[float]]:
    """Tiles as futures on a ``dask.distributed`` cluster: the restorer (e.g. a CAE) is
    scattered to every worker once; at most ``batch`` tiles are in flight, and results are
    blended in row-major order as they come back."""
    from collections import deque

    import distributed

    own = address is not None
    client = distributed.Client(address, set_as_default=False) if own else _default_client()
    try:
        n_workers = max(1, sum(client.nthreads().values()))
        batch = 2 * n_workers if batch is None else _check_int("dask_batch", batch, 1)
        [fn] = client.scatter([restore_fn], broadcast=True, hash=False)
        n_computed, seconds = 0, []
        pending: deque = deque()

        def consume() -> None:
            nonlocal n_computed
            (key, region, w, _obs, _mask, digest, _shape), fut = pending.popleft()
            out, sec = fut.result()
            if store is not None:
                store.save(*key, digest, out)
            acc.add(region, w, out)
            n_computed += 1
            seconds.append(sec)
            bar.update(1)

        for item in todo:
            _key, _region, _w, obs, mask, _digest, tshape = item
            pending.append((item, client.submit(_run, fn, obs, mask, tshape, pure=False)))
            if len(pending) >= batch:
                consume()
        while pending:
            consume()
        return n_computed, seconds
    finally:
        if own:
            client.close()
