"""Tiled restoration: partition of unity, exactness for local restorations, variance and sample
blending, no-data masks, resume after an interruption, dask execution, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from inverse.satellite import TiledResult, blend_weights, restore_tiled
from inverse.satellite._tiling import tile_starts


def _coverage(shape, **kw):
    total = np.zeros(shape)
    for (rs, cs), w in blend_weights(shape, **kw):
        assert w.min() >= 0 and w.max() <= 1
        total[rs, cs] += w
    return total


@pytest.mark.parametrize(("shape", "kw"), [
    ((300, 517), dict(tile=64, overlap=16, margin=4)),
    ((256, 256), dict(tile=256, overlap=32)),           # one tile
    ((100, 40), dict(tile=64, overlap=20, margin=0)),   # scene smaller than a tile on one axis
    ((250, 322), dict(tile=64, overlap=24, margin=5, decimation=2)),
])
def test_blend_weights_are_a_partition_of_unity(shape, kw):
    np.testing.assert_allclose(_coverage(shape, **kw), 1.0, atol=1e-12)


def test_blend_weights_vanish_in_the_margin_at_inner_edges():
    tiles = list(blend_weights((200, 200), tile=64, overlap=16, margin=3))
    (rs, cs), w = next(t for t in tiles if t[0][0].start > 0 and t[0][1].start > 0
                       and t[0][0].stop < 200 and t[0][1].stop < 200)  # an interior tile
    assert np.all(w[:3] == 0) and np.all(w[-3:] == 0) and np.all(w[:, :3] == 0)
    assert np.all(w[:, -3:] == 0)
    assert w[32, 32] == 1.0
    # the scene border is not ramped: the corner tile has full weight at the corner
    (rs0, cs0), w0 = tiles[0]
    assert rs0.start == 0 and w0[0, 0] == 1.0


def test_tile_starts_cover_the_axis_and_respect_the_decimation():
    for size in (64, 65, 200, 513):
        starts = tile_starts(size, 64, 16, multiple=2 if size % 2 == 0 else 1)
        assert starts[0] == 0 and starts[-1] + min(64, size) == size
        assert all(b - a <= 48 for a, b in zip(starts, starts[1:], strict=False))


def _local_restore(radius, factor=1, samples=0, seed=None):
    """A local 'restoration': zero-order-hold upsampling and a (2r+1)^2 box filter, circular on
    the tile, so it is exact at distance >= r from the tile edges."""
    calls = []

    def fn(obs, mask):
        calls.append((obs.copy(), None if mask is None else mask.copy()))
        up = np.repeat(np.repeat(obs, factor, axis=-2), factor, axis=-1)
        x = ndimage.uniform_filter(up, size=(1, 2 * radius + 1, 2 * radius + 1), mode="wrap")
        std = 0.05 + 0.1 * np.abs(x)
        out = {"restored": x, "std": std}
        if samples:
            rng = np.random.default_rng(None if seed is None else seed + len(calls))
            out["samples"] = x + std * rng.standard_normal((samples, *x.shape))
        return out

    fn.calls = calls
    return fn


@pytest.mark.parametrize("factor", [1, 2])
def test_tiled_equals_untiled_for_a_local_restoration(factor):
    rng = np.random.default_rng(0)
    obs = rng.random((2, 180 // factor, 230 // factor)).astype(np.float32)
    r = 2
    fn = _local_restore(r, factor)
    res = restore_tiled(obs, fn, tile=64, overlap=16, margin=r, decimation=factor,
                        progress=False)
    assert isinstance(res, TiledResult) and res.restored.shape == (2, 180, 230)
    full = fn(obs, None)
    inner = (slice(None), slice(r, -r), slice(r, -r))
    np.testing.assert_allclose(res.restored[inner], full["restored"][inner], rtol=0, atol=2e-6)
    # variances are blended: where the tiles agree the std is the untiled std
    np.testing.assert_allclose(res.std[inner], full["std"][inner], rtol=1e-5, atol=1e-6)
    assert res.n_tiles == res.n_computed == len(fn.calls) - 1 > 4


def test_tiled_differs_without_margin_so_the_test_above_can_fail():
    obs = np.random.default_rng(1).random((1, 160, 160)).astype(np.float32)
    fn = _local_restore(3)
    res = restore_tiled(obs, fn, tile=64, overlap=16, margin=0, progress=False)
    full = fn(obs, None)["restored"]
    assert np.abs(res.restored[:, 3:-3, 3:-3] - full[:, 3:-3, 3:-3]).max() > 1e-3


def test_std_includes_the_disagreement_between_tiles():
    # each tile returns a constant mean that depends on the tile and std 0: in the blended
    # zones the std is the weighted spread sqrt(sum w (mu_t - mean)^2) (law of total variance)
    means = iter(np.arange(100, dtype=np.float32))

    def fn(obs, mask):
        m = next(means)
        return {"restored": np.full(obs.shape, m, np.float32),
                "std": np.zeros(obs.shape, np.float32)}

    res = restore_tiled(np.zeros((1, 64, 112)), fn, tile=64, overlap=16, margin=2,
                        progress=False)
    tiles = list(blend_weights((64, 112), tile=64, overlap=16, margin=2))
    (_, cs1), w1 = tiles[1]
    w = w1[0, 2:14]  # the ramp of tile 1 where tile 0 has 1 - w
    expected_mean = w * 1.0
    expected_std = np.sqrt(w * (1 - expected_mean) ** 2 + (1 - w) * expected_mean ** 2)
    np.testing.assert_allclose(res.restored[0, 0, cs1.start + 2:cs1.start + 14], expected_mean,
                               atol=1e-6)
    np.testing.assert_allclose(res.std[0, 0, cs1.start + 2:cs1.start + 14], expected_std,
                               atol=1e-6)


def test_blended_samples_keep_the_variance_in_the_overlaps():
    obs = np.zeros((1, 64, 112), np.float32)
    k = 2000
    fn = _local_restore(0, samples=k, seed=0)
    res = restore_tiled(obs, fn, tile=64, overlap=32, margin=0, progress=False)
    assert res.samples.shape == (k, 1, 64, 112)
    overlap = res.samples[:, 0, :, 56 - 8:56 + 8]  # middle of the overlap, weights ~ 1/2
    ratio = overlap.var(axis=0).mean() / 0.05 ** 2
    assert abs(ratio - 1) < 0.05  # a plain weighted average would give about 0.5
    # the sample mean is the blended mean (5 standard errors)
    np.testing.assert_allclose(res.samples.mean(axis=0), res.restored, atol=5 * 0.05 / k ** 0.5)


def test_no_data_pixels_become_a_mask_and_empty_tiles_are_skipped():
    obs = np.random.default_rng(2).random((1, 128, 176)).astype(np.float32)
    obs[:, :, :64] = np.nan  # the first tile column is entirely no-data
    obs[:, 100:110, 100:105] = np.nan
    fn = _local_restore(1)
    res = restore_tiled(obs, fn, tile=64, overlap=16, margin=2, progress=False)
    assert all(np.isfinite(o).all() for o, _ in fn.calls)
    masks = [m for _, m in fn.calls if m is not None]
    assert masks and sum((~m).sum() for m in masks) >= 50
    assert res.n_computed < res.n_tiles
    # pixels covered only by skipped tiles are NaN; the others are finite
    assert np.isnan(res.restored[:, :, :48]).all() and np.isnan(res.std[:, :, :48]).all()
    assert np.isfinite(res.restored[:, :, 64:]).all()


def test_all_nan_observation_raises():
    with pytest.raises(ValueError, match="no valid pixel"):
        restore_tiled(np.full((1, 32, 32), np.nan), _local_restore(1), tile=16, overlap=4,
                      progress=False)


class _Interrupt(RuntimeError):
    pass


def test_resume_after_an_interruption_recomputes_only_the_missing_tiles(tmp_path):
    obs = np.random.default_rng(3).random((1, 150, 170)).astype(np.float32)
    kw = dict(tile=64, overlap=16, margin=2, progress=False)
    reference = restore_tiled(obs, _local_restore(2, samples=3, seed=0), **kw)
    fn = _local_restore(2, samples=3, seed=0)
    k = 3

    def failing(o, m):
        if len(fn.calls) == k:
            raise _Interrupt("stop")
        return fn(o, m)

    with pytest.raises(_Interrupt):
        restore_tiled(obs, failing, work_dir=tmp_path / "w", resume_key="a", **kw)
    assert len(list((tmp_path / "w" / "tiles").glob("*.npz"))) == k
    assert not list((tmp_path / "w" / "tiles").glob("*.tmp"))
    fn2 = _local_restore(2, samples=3, seed=k)  # same random stream as an uninterrupted run
    res = restore_tiled(obs, fn2, work_dir=tmp_path / "w", resume_key="a", **kw)
    assert len(fn2.calls) == reference.n_tiles - k == res.n_computed
    assert isinstance(res.restored, np.memmap)
    np.testing.assert_array_equal(res.restored, reference.restored)
    np.testing.assert_array_equal(res.std, reference.std)
    np.testing.assert_array_equal(res.samples, reference.samples)
    # a third run computes nothing
    fn3 = _local_restore(2, samples=3)
    again = restore_tiled(obs, fn3, work_dir=tmp_path / "w", resume_key="a", **kw)
    assert fn3.calls == [] and again.n_computed == 0
    np.testing.assert_array_equal(again.restored, reference.restored)


def test_resume_recomputes_tiles_whose_observation_changed(tmp_path):
    obs = np.random.default_rng(4).random((1, 100, 100)).astype(np.float32)
    kw = dict(tile=64, overlap=16, margin=2, progress=False, work_dir=tmp_path)
    restore_tiled(obs, _local_restore(1), **kw)
    obs[0, 0, 0] += 1.0  # only the first tile sees it
    fn = _local_restore(1)
    res = restore_tiled(obs, fn, **kw)
    assert len(fn.calls) == 1 and res.n_computed == 1
    np.testing.assert_allclose(res.restored, restore_tiled(obs, _local_restore(1), tile=64,
                                                           overlap=16, margin=2,
                                                           progress=False).restored)


def test_work_dir_of_another_run_raises(tmp_path):
    obs = np.zeros((1, 40, 40), np.float32)
    restore_tiled(obs, _local_restore(1), tile=32, overlap=8, work_dir=tmp_path,
                  resume_key="model A", progress=False)
    with pytest.raises(ValueError, match="another run"):
        restore_tiled(obs, _local_restore(1), tile=32, overlap=8, work_dir=tmp_path,
                      resume_key="model B", progress=False)


def test_dask_synchronous_and_local_cluster_match_the_serial_run():
    obs = np.random.default_rng(5).random((1, 120, 140)).astype(np.float32)
    kw = dict(tile=64, overlap=16, margin=2, progress=False)
    serial = restore_tiled(obs, _local_restore(2), **kw)
    sync = restore_tiled(obs, _local_restore(2), dask=True, dask_scheduler="synchronous",
                         dask_batch=2, **kw)
    np.testing.assert_allclose(sync.restored, serial.restored, atol=1e-6)
    np.testing.assert_allclose(sync.std, serial.std, atol=1e-6)
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        dist = restore_tiled(obs, _local_restore(2), dask=True, **kw)
    np.testing.assert_allclose(dist.restored, serial.restored, atol=1e-6)
    assert dist.n_computed == serial.n_tiles


@pytest.mark.parametrize(("kw", "match"), [
    (dict(tile=64, overlap=64), "smaller than tile"),
    (dict(tile=64, overlap=8, margin=4), "exceed 2 \\* margin"),
    (dict(tile=63, overlap=15, decimation=2), "multiples of the decimation"),
    (dict(tile=64, overlap=0), "overlap must be an int >= 1"),
    (dict(tile=64, overlap=16, decimation=0), "decimation must be"),
])
def test_bad_tiling_parameters_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        restore_tiled(np.zeros((1, 64, 64)), _local_restore(1), progress=False, **kw)


def test_bad_restore_fn_outputs_raise():
    obs = np.zeros((1, 32, 32), np.float32)
    with pytest.raises(TypeError, match="mapping with keys 'restored' and 'std'"):
        restore_tiled(obs, lambda o, m: o, tile=32, overlap=8, progress=False)
    with pytest.raises(ValueError, match="expected \\(1, 32, 32\\)"):
        restore_tiled(obs, lambda o, m: {"restored": o[:, :16], "std": o}, tile=32, overlap=8,
                      progress=False)
    with pytest.raises(ValueError, match="must be \\(h, w\\) or \\(C, h, w\\)"):
        restore_tiled(np.zeros(5), _local_restore(1), progress=False)


class _Batched:
    """A restore_fn with ``restore_batch`` (records the batch sizes; can fail on a call)."""

    def __init__(self, fn, fail_at=None):
        self.fn, self.sizes, self.fail_at = fn, [], fail_at

    def __call__(self, obs, mask):
        return self.fn(obs, mask)

    def restore_batch(self, tiles):
        if self.fail_at is not None and len(self.sizes) == self.fail_at:
            raise _Interrupt("stop")
        self.sizes.append(len(tiles))
        return [self.fn(o, m) for o, m in tiles]


def test_batched_tiles_give_the_serial_result_and_resume(tmp_path):
    obs = np.random.default_rng(5).random((1, 150, 170)).astype(np.float32)
    kw = dict(tile=64, overlap=16, margin=2, progress=False)
    reference = restore_tiled(obs, _local_restore(2), **kw)
    fn = _Batched(_local_restore(2))
    res = restore_tiled(obs, fn, tile_batch=3, **kw)
    assert sum(fn.sizes) == reference.n_tiles and max(fn.sizes) == 3
    np.testing.assert_array_equal(res.restored, reference.restored)
    np.testing.assert_array_equal(res.std, reference.std)
    # interrupted after two batches: six tiles saved; the rerun loads them in row-major order
    # between the computed ones and gives the same result
    with pytest.raises(_Interrupt):
        restore_tiled(obs, _Batched(_local_restore(2), fail_at=2), tile_batch=3,
                      work_dir=tmp_path, resume_key="b", **kw)
    assert len(list((tmp_path / "tiles").glob("*.npz"))) == 6
    fn2 = _Batched(_local_restore(2))
    again = restore_tiled(obs, fn2, tile_batch=4, work_dir=tmp_path, resume_key="b", **kw)
    assert again.n_computed == sum(fn2.sizes) == reference.n_tiles - 6
    np.testing.assert_array_equal(again.restored, reference.restored)
    with pytest.raises(ValueError, match="tile_batch"):
        restore_tiled(obs, fn, tile_batch=0, **kw)
