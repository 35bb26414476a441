"""Satellite image restoration with uncertainty: Pléiades-like degradation, georeferenced I/O,
large scenes by tiles, and VBLE restoration (the ``sciml-inverse restore`` / ``degrade``
commands).

* degradation: :func:`psf_from_mtf` (Gaussian PSF from the MTF at Nyquist),
  :func:`gaussian_sigma_from_mtf`, :class:`PleiadesDegradation` (blur, decimation,
  Poisson-Gaussian noise, quantization; its forward operator and likelihood);
* out-of-core I/O: :func:`open_raster` (a :class:`RasterSource` read window by window),
  :class:`NetCDFSink` and :class:`GeoTIFFSink` (rows written as tiles finish, files moved into
  place when complete), :class:`OutputGrid`;
* classical tile restorers: :class:`TikhonovTileRestorer` (exact Gaussian posterior std),
  :class:`TVTileRestorer`, with :class:`TikhonovOptions`, :class:`TVOptions`;
* noise: :func:`estimate_noise` (Poisson-Gaussian ``(a, b)`` from the image,
  :class:`NoiseEstimate`);
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

from ._classical import TikhonovOptions as TikhonovOptions
from ._classical import TikhonovTileRestorer as TikhonovTileRestorer
from ._classical import TVOptions as TVOptions
from ._classical import TVTileRestorer as TVTileRestorer
from ._degradation import PleiadesDegradation as PleiadesDegradation
from ._degradation import gaussian_sigma_from_mtf as gaussian_sigma_from_mtf
from ._degradation import psf_from_mtf as psf_from_mtf
from ._io import georeferenced as georeferenced
from ._io import read_raster as read_raster
from ._io import save_panel_png as save_panel_png
from ._io import write_raster as write_raster
from ._io import write_restoration as write_restoration
from ._noise_estimation import NoiseEstimate as NoiseEstimate
from ._noise_estimation import estimate_noise as estimate_noise
from ._restore import Restoration as Restoration
from ._restore import VBLETileRestorer as VBLETileRestorer
from ._restore import restore_raster as restore_raster
from ._restore import simulate_raster as simulate_raster
from ._source import RasterSource as RasterSource
from ._source import RasterStats as RasterStats
from ._source import open_raster as open_raster
from ._tiling import ArraySink as ArraySink
from ._tiling import TiledResult as TiledResult
from ._tiling import TileSink as TileSink
from ._tiling import blend_weights as blend_weights
from ._tiling import restore_tiled as restore_tiled
from ._writers import GeoTIFFSink as GeoTIFFSink
from ._writers import NetCDFSink as NetCDFSink
from ._writers import OutputGrid as OutputGrid

__all__ = [
    "psf_from_mtf", "gaussian_sigma_from_mtf", "PleiadesDegradation",
    "read_raster", "write_raster", "write_restoration", "save_panel_png", "georeferenced",
    "restore_tiled", "blend_weights", "TiledResult",
    "VBLETileRestorer", "restore_raster", "Restoration", "simulate_raster",
    "TikhonovTileRestorer", "TikhonovOptions", "TVTileRestorer", "TVOptions",
    "open_raster", "RasterSource", "RasterStats", "TileSink", "ArraySink", "NetCDFSink",
    "GeoTIFFSink", "OutputGrid", "estimate_noise", "NoiseEstimate",
    "demo_tile_path",
]


def demo_tile_path() -> _Path:
    """Path of the bundled demo tile: a 256 x 256 8-bit grayscale NAIP GeoTIFF (5 m, North
    Dakota, public domain; provenance in ``inverse/satellite/data/README.md``)."""
    return _Path(__file__).resolve().parent / "data" / "naip_nd_5m_20170827_gray256.tif"
