"""Training data for the compressive autoencoders: GeoTIFF reading and random augmented patches.

Images are read with ``tifffile`` (imported lazily), converted to one gray channel and
normalized to [0, 1]:

* a one-band integer image (panchromatic) by its bit depth, ``x = DN / (2**n_bits - 1)``,
  clipped to [0, 1] (no percentile stretch: the CAE's rate-distortion weight
  :math:`\\alpha (2^n-1)^2` is defined in digital numbers of an ``n_bits`` sensor), after
  trimming the no-data border (rows/columns of value 0 touching an edge);
* a three- or four-band ``uint8`` image (RGB or RGBA) by ITU-R BT.601 luma over 255 (the
  alpha band is ignored).

:class:`PatchSampler` draws square patches from a list of :class:`PatchSource` with random
flips and 90-degree rotations (the 8 elements of the dihedral group D4) and an optional random
gain, all from a caller-supplied ``torch.Generator`` so that runs are reproducible and
resumable. :func:`load_satellite_train` builds the sources of the shared satellite data
(``train/`` only) with a held-out validation strip.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sciml_inverse import check_int, check_number, check_real

__all__ = [
    "read_gray",
    "PatchSource",
    "PatchSampler",
    "SatelliteTrainData",
    "load_satellite_train",
    "PAN_TRAIN",
    "NAIP_TRAIN",
]

#: Panchromatic 0.5 m training images of ``shared/data/satellite/train`` (the target domain).
PAN_TRAIN = ("atlanta_pan_0p5m", "rotterdam1_pan_0p5m", "rotterdam2_pan_0p5m")
#: NAIP 5 m RGB training dates of ``shared/data/satellite/train`` (extra texture).
NAIP_TRAIN = tuple(f"naip_nd_5m_{d}" for d in ("20090818", "20100629", "20120731", "20140720",
                                                "20150926", "20160816", "20170827"))
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def _trim_nodata(a: np.ndarray, nodata: int) -> np.ndarray:
    """Cut the no-data border: edge rows/columns that are all ``nodata``, then, one at a time,
    the edge row or column with the largest share of ``nodata`` pixels until no edge has any
    (a diagonal no-data corner); interior ``nodata`` pixels are kept."""
    bad = a == nodata
    r0, r1, c0, c1 = 0, a.shape[0], 0, a.shape[1]
    while r0 < r1 and bad[r0, c0:c1].all():
        r0 += 1
    while r1 > r0 and bad[r1 - 1, c0:c1].all():
        r1 -= 1
    while c0 < c1 and bad[r0:r1, c0].all():
        c0 += 1
    while c1 > c0 and bad[r0:r1, c1 - 1].all():
        c1 -= 1
    while r0 < r1 and c0 < c1:
        edges = {"top": bad[r0, c0:c1].mean(), "bottom": bad[r1 - 1, c0:c1].mean(),
                 "left": bad[r0:r1, c0].mean(), "right": bad[r0:r1, c1 - 1].mean()}
        side = max(edges, key=edges.__getitem__)
        if edges[side] == 0:
            break
        if side == "top":
            r0 += 1
        elif side == "bottom":
            r1 -= 1
        elif side == "left":
            c0 += 1
        else:
            c1 -= 1
    if r0 >= r1 or c0 >= c1:
        raise ValueError(f"the image is entirely no-data (value {nodata})")
    return a[r0:r1, c0:c1]


def read_gray(path: str | os.PathLike, *, n_bits: int = 12, trim_nodata: bool = True
              ) -> np.ndarray:
    """Read a GeoTIFF as one gray channel in [0, 1].

    Parameters
    ----------
    path : str or path-like
        A ``.tif`` file: one band of integers (panchromatic), or three/four ``uint8`` bands
        (RGB/RGBA, bands last or first).
    n_bits : int
        Bit depth of one-band integer images: ``x = clip(DN / (2**n_bits - 1), 0, 1)``.
    trim_nodata : bool
        For one-band images, cut the border rows/columns that contain the no-data value 0
        (e.g. the diagonal no-data corner of ``rotterdam2_pan_0p5m``).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1].

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Wrong band count (anything but 1, 3 or 4), a multi-band image that is not ``uint8``
        (e.g. a float multispectral product), a one-band image that is not integer, a bad
        ``n_bits``, or an image that is all no-data. A non-int ``n_bits`` raises
        :class:`sciml_inverse.ArgumentTypeError` (a ``TypeError`` and a ``ValueError``).

    Examples
    --------
    >>> import tempfile, os, numpy as np, tifffile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = os.path.join(d, "pan.tif")
    ...     tifffile.imwrite(p, np.full((4, 5), 4095, dtype=np.uint16))
    ...     read_gray(p).max()
    np.float32(1.0)
    """
    import tifffile

    n_bits = check_int("n_bits", n_bits, 1, maximum=16,
                       hint="the sensor's bits per sample (12 for Pléiades)")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image at {path}")
    a = tifffile.imread(str(path))
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{path}: a one-band image must hold integer digital numbers "
                             f"(normalized by 2**n_bits - 1), got {a.dtype}")
        if trim_nodata:
            a = _trim_nodata(a, 0)
        x = a.astype(np.float64) / (2 ** n_bits - 1)
        return np.clip(x, 0.0, 1.0).astype(np.float32)
    if a.ndim == 3:
        bands_last = a.shape[-1] in (3, 4)
        nb = a.shape[-1] if bands_last else a.shape[0]
        if not bands_last and nb not in (3, 4):
            raise ValueError(f"{path}: {a.shape} has {min(a.shape)} or {a.shape[-1]} bands; "
                             f"expected 1 band (panchromatic) or 3/4 bands (RGB/RGBA)")
        if a.dtype != np.uint8:
            raise ValueError(f"{path}: a {nb}-band image must be 8-bit RGB(A), got {a.dtype} "
                             f"(multispectral products are not supported; pass the "
                             f"panchromatic band)")
        rgb = (a[..., :3] if bands_last else np.moveaxis(a[:3], 0, -1)).astype(np.float64)
        gray = sum(w * rgb[..., i] for i, w in enumerate(_LUMA)) / 255.0
        return np.clip(gray, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"{path}: expected a 2-D (H, W) or 3-D (H, W, bands) image, got shape "
                     f"{a.shape}")


@dataclasses.dataclass(frozen=True, eq=False)
class PatchSource:
    """One gray image to draw patches from.

    Parameters
    ----------
    name : str
    image : numpy.ndarray
        ``(H, W)`` float array in [0, 1] (converted to float32).
    weight : float
        Relative probability of drawing a patch from this image (> 0).
    gain : tuple of float
        ``(low, high)``: each patch is multiplied by a gain drawn log-uniformly in
        ``[low, high]`` and clipped to [0, 1] (``(1, 1)``: none).

    Raises
    ------
    ValueError
        Not a 2-D finite array, non-positive weight, bad gain range.
    TypeError
        A gain bound that is not a real number.
    """

    name: str
    image: np.ndarray
    weight: float = 1.0
    gain: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        img = np.asarray(self.image, dtype=np.float32)
        if img.ndim != 2 or min(img.shape) < 1:
            raise ValueError(f"PatchSource {self.name!r}: image must be 2-D (H, W), got shape "
                             f"{img.shape}")
        if not np.isfinite(img).all():
            raise ValueError(f"PatchSource {self.name!r}: image has NaN or infinite values")
        object.__setattr__(self, "image", img)
        w = self.weight
        check_number(f"PatchSource {self.name!r}: weight", w)
        form = f"PatchSource {self.name!r}: gain must be (low, high) with 0 < low <= high"
        try:
            lo, hi = self.gain
        except (TypeError, ValueError):
            raise ValueError(f"{form}, got {self.gain!r}") from None
        lo, hi = (check_real(f"PatchSource {self.name!r}: gain[{i}]", v, positive=True,
                             hint="gain is (low, high) with 0 < low <= high")
                  for i, v in enumerate((lo, hi)))
        if lo > hi:  # type: ignore[operator]
            raise ValueError(f"{form}, got {self.gain!r}")
        object.__setattr__(self, "gain", (lo, hi))


def dihedral(x: Tensor, k: int, flip: bool) -> Tensor:
    """Element of D4 acting on the last two dims: optional left-right flip, then ``k`` quarter
    turns (``torch.rot90`` convention)."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x


class PatchSampler:
    """Random square patches with flips, 90-degree rotations and gain, as a seeded callable.

    Each call draws, for every patch independently: a source (probability ∝ its ``weight``),
    a uniformly random position, a dihedral transform (flip with probability 1/2, then
    ``k ~ U{0..3}`` quarter turns: the 8 elements of D4 equally likely) and a gain
    ``g = exp(U(log low, log high))``; the patch is ``clip(g · crop, 0, 1)``. All randomness
    comes from the ``generator`` argument.

    Parameters
    ----------
    sources : sequence of PatchSource
    patch_size : int
        Side ``P`` of the square patches; every source must be at least ``P × P``.
    augment : bool
        Apply the dihedral transforms (default); gains are applied regardless (set them to
        ``(1, 1)`` to disable).

    Raises
    ------
    ValueError
        No sources, a source smaller than the patch, a bad patch size.
    TypeError
        A source that is not a :class:`PatchSource`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from inverse.vble import PatchSampler, PatchSource
    >>> s = PatchSampler([PatchSource("a", np.random.rand(100, 80))], 64)
    >>> s(4, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 1, 64, 64])
    """

    def __init__(self, sources: Sequence[PatchSource], patch_size: int, *,
                 augment: bool = True) -> None:
        check_int("patch_size", patch_size, 1)
        patch_size = int(patch_size)
        sources = tuple(sources)
        if not sources:
            raise ValueError("PatchSampler needs at least one PatchSource")
        for s in sources:
            if not isinstance(s, PatchSource):
                raise TypeError(f"sources must be PatchSource objects, got {type(s).__name__}")
            if min(s.image.shape) < patch_size:
                raise ValueError(f"source {s.name!r} of shape {s.image.shape} is smaller than "
                                 f"the patch size {patch_size}; use a smaller patch")
        self.sources = sources
        self.patch_size = patch_size
        self.augment = augment
        self._images = [torch.from_numpy(s.image) for s in sources]
        w = torch.tensor([s.weight for s in sources], dtype=torch.float64)
        self.probabilities = w / w.sum()
        self._log_gain = torch.tensor([[math.log(s.gain[0]), math.log(s.gain[1])]
                                       for s in sources], dtype=torch.float64)

    def __call__(self, batch_size: int, generator: torch.Generator) -> Tensor:
        """A batch ``(batch_size, 1, P, P)`` of float32 patches in [0, 1]."""
        check_int("batch_size", batch_size, 1)
        p = self.patch_size
        idx = torch.multinomial(self.probabilities, batch_size, replacement=True,
                                generator=generator)
        u = torch.rand(batch_size, 3, generator=generator, dtype=torch.float64)
        turns = torch.randint(0, 4, (batch_size,), generator=generator)
        flips = torch.randint(0, 2, (batch_size,), generator=generator)
        out = torch.empty(batch_size, 1, p, p, dtype=torch.float32)
        for b in range(batch_size):
            i = int(idx[b])
            img = self._images[i]
            h, w = img.shape
            r = min(int(u[b, 0] * (h - p + 1)), h - p)
            c = min(int(u[b, 1] * (w - p + 1)), w - p)
            patch = img[r:r + p, c:c + p]
            if self.augment:
                patch = dihedral(patch, int(turns[b]), bool(flips[b]))
            lo, hi = self._log_gain[i]
            if hi > lo or lo != 0:
                g = math.exp(float(lo + u[b, 2] * (hi - lo)))
                patch = torch.clamp(patch * g, 0.0, 1.0)
            out[b, 0] = patch
        return out


@dataclasses.dataclass(frozen=True, eq=False)
class SatelliteTrainData:
    """What :func:`load_satellite_train` returns.

    Attributes
    ----------
    train : tuple of PatchSource
        Training sources (pan images without their validation strip, NAIP images if asked).
    val : dict of str to numpy.ndarray
        Held-out validation strips ``(val_rows, W')`` of the pan images, W' cut to a multiple of
        64 (for whole-image evaluation by the CAE).
    description : dict
        Plain-data record of what was loaded (names, shapes, weights, gains, normalization),
        for the JSON sidecar of a trained model.
    """

    train: tuple[PatchSource, ...]
    val: dict[str, np.ndarray]
    description: dict


def load_satellite_train(folder: str | os.PathLike, *, n_bits: int = 12,
                         pan_names: Sequence[str] = PAN_TRAIN,
                         naip_names: Sequence[str] = (), naip_share: float = 0.25,
                         pan_gain: tuple[float, float] = (1.0, 1.0),
                         naip_gain: tuple[float, float] = (1.0, 1.0),
                         val_rows: int = 128) -> SatelliteTrainData:
    """Training sources from the shared satellite data (``train/`` only).

    The panchromatic images are normalized by ``2**n_bits - 1`` (:func:`read_gray`); the bottom
    ``val_rows`` rows of each (after no-data trimming) are held out for validation. NAIP images
    (gray, over 255) are optional extra texture. Within a group, patch probability is
    proportional to area; the NAIP group gets ``naip_share`` of the patches when present.

    Parameters
    ----------
    folder : str or path-like
        The ``satellite/train`` folder (or its parent ``satellite``, then ``train/`` is used).
    n_bits : int
        Pan normalization (default 12, Pléiades-like; the training pan images are in fact
        11-bit-ish WorldView data: 99.5 % of their pixels are below 1400 DN).
    pan_names, naip_names : sequence of str
        File stems (without ``.tif``).
    naip_share : float
        Share of NAIP patches, in [0, 1).
    pan_gain, naip_gain : tuple of float
        Per-group gain ranges of :class:`PatchSource`.
    val_rows : int
        Rows held out at the bottom of each pan image (0: no validation set).

    Returns
    -------
    SatelliteTrainData

    Raises
    ------
    FileNotFoundError
        If the folder or one of the named files does not exist.
    ValueError
        If the folder is an ``eval`` folder (never train on it), no pan image is named,
        ``naip_share`` is out of range, or ``val_rows`` leaves too little of an image.
    TypeError
        If ``naip_share`` is not a real number.
    """
    folder = Path(folder)
    if folder.name == "eval" or "eval" in folder.parts[-2:]:
        raise ValueError(f"{folder} is an evaluation folder; train only on satellite/train")
    if not folder.is_dir():
        raise FileNotFoundError(f"no training data folder at {folder}; pass the path of "
                                f"shared/data/satellite/train")
    if (folder / "train").is_dir():
        folder = folder / "train"
    pan_names, naip_names = tuple(pan_names), tuple(naip_names)
    if not pan_names:
        raise ValueError("at least one panchromatic image is needed (pan_names is empty)")
    check_real("naip_share", naip_share, positive=False, maximum=1, include_maximum=False,
               hint="the share of NAIP patches in a batch, in [0, 1)")
    check_int("val_rows", val_rows, 0)
    for n in pan_names + naip_names:
        if not (folder / f"{n}.tif").is_file():
            raise FileNotFoundError(f"no training image {folder / (n + '.tif')}")

    pans, val = {}, {}
    for n in pan_names:
        a = read_gray(folder / f"{n}.tif", n_bits=n_bits)
        if val_rows:
            if a.shape[0] - val_rows < 64:
                raise ValueError(f"{n}: {a.shape[0]} rows leave fewer than 64 training rows after "
                                 f"holding out val_rows={val_rows}")
            w = (a.shape[1] // 64) * 64
            val[n] = a[a.shape[0] - val_rows:, :w].copy()
            a = a[:a.shape[0] - val_rows]
        pans[n] = a
    naips = {n: read_gray(folder / f"{n}.tif") for n in naip_names}
    pan_area = sum(a.size for a in pans.values())
    share = naip_share if naips else 0.0
    sources = [PatchSource(f"pan/{n}", a, (1 - share) * a.size / pan_area, pan_gain)
               for n, a in pans.items()]
    if naips:
        naip_area = sum(a.size for a in naips.values())
        sources += [PatchSource(f"naip/{n}", a, share * a.size / naip_area, naip_gain)
                    for n, a in naips.items()]
    desc = {
        "folder": str(folder),
        "normalization": {"pan": f"DN / (2**{n_bits} - 1), clipped to [0, 1], no-data border "
                                 f"trimmed", "naip": "BT.601 luma / 255"},
        "val_rows": val_rows,
        "sources": [{"name": s.name, "shape": list(s.image.shape),
                     "probability": s.weight, "gain": list(s.gain),
                     "mean": float(s.image.mean()), "p99_5": float(np.percentile(s.image, 99.5))}
                    for s in sources],
        "val": {k: list(v.shape) for k, v in val.items()},
    }
    return SatelliteTrainData(tuple(sources), val, desc)
