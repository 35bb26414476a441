"""Satellite image restoration with uncertainty: Pléiades-like degradation, georeferenced I/O,
large scenes by tiles, and VBLE restoration (the ``sciml-inverse restore`` / ``degrade``
commands).

* degradation: :func:`psf_from_mtf` (Gaussian PSF from the MTF at Nyquist),
  :func:`gaussian_sigma_from_mtf`, :class:`PleiadesDegradation` (blur, decimation,
  Poisson-Gaussian noise, quantization; its forward operator and likelihood);
* I/O: :func:`read_raster` (GeoTIFF/NetCDF to a ``(band, y, x)`` DataArray with CRS and
  transform), :func:`write_raster`, :func:`write_restoration` (NetCDF, atomic),
  :func:`save_panel_png`, :func:`georeferenced`;
* large scenes: :func:`restore_tiled` (overlap, smooth partition-of-unity blending, variance
  blending, resume from a work directory, optional dask), :func:`blend_weights`,
  :class:`TiledResult`;
* VBLE: :class:`VBLETileRestorer` (one tile), :func:`restore_raster` (a georeferenced scene, the
  code path of the command line), :class:`Restoration`; :func:`simulate_raster` (the
  ``degrade`` command);
* :func:`demo_tile_path`: the bundled public-domain NAIP tile used by the demo.

Heavy dependencies (xarray, rioxarray, tifffile, matplotlib, dask, and :mod:`inverse.vble`)
are imported when a function needs them.
"""

from pathlib import Path as _Path

from ._degradation import PleiadesDegradation as PleiadesDegradation
from ._degradation import gaussian_sigma_from_mtf as gaussian_sigma_from_mtf
from ._degradation import psf_from_mtf as psf_from_mtf
from ._io import georeferenced as georeferenced
from ._io import read_raster as read_raster
from ._io import save_panel_png as save_panel_png
from ._io import write_raster as write_raster
from ._io import write_restoration as write_restoration
from ._restore import Restoration as Restoration
from ._restore import VBLETileRestorer as VBLETileRestorer
from ._restore import restore_raster as restore_raster
from ._restore import simulate_raster as simulate_raster
from ._tiling import TiledResult as TiledResult
from ._tiling import blend_weights as blend_weights
from ._tiling import restore_tiled as restore_tiled

__all__ = [
    "psf_from_mtf", "gaussian_sigma_from_mtf", "PleiadesDegradation",
    "read_raster", "write_raster", "write_restoration", "save_panel_png", "georeferenced",
    "restore_tiled", "blend_weights", "TiledResult",
    "VBLETileRestorer", "restore_raster", "Restoration", "simulate_raster",
    "demo_tile_path",
]


def demo_tile_path() -> _Path:
    """Path of the bundled demo tile: a 256 x 256 8-bit grayscale NAIP GeoTIFF (5 m, North
    Dakota, public domain; provenance in ``inverse/satellite/data/README.md``)."""
    return _Path(__file__).resolve().parent / "data" / "naip_nd_5m_20170827_gray256.tif"
