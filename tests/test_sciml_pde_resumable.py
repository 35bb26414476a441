"""The one resumable sample loop of the data generators (sciml.pde._resumable)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from sciml.pde._resumable import _write_ck, run_resumable, sample_chunks


class _Stop(Exception):
    pass


def _squares(i):
    return np.array([i, i * i], dtype=float)


def test_interrupted_loop_resumes_without_recomputing(tmp_path):
    ck = tmp_path / "ck.npz"
    calls = []

    def solve(i):
        calls.append(i)
        if i == 5 and len(calls) == 6:
            raise _Stop
        return _squares(i)

    with pytest.raises(_Stop):
        run_resumable(sample_chunks(solve, 8), 8, (2,), checkpoint=ck, key="k", every=2)
    with np.load(ck) as saved:  # written after 2 and 4 samples
        assert int(saved["done"]) == 4 and saved["out"].shape == (4, 2)
    calls.clear()
    out = run_resumable(sample_chunks(solve, 8), 8, (2,), checkpoint=ck, key="k", every=2)
    assert calls == [4, 5, 6, 7]  # only the samples after the checkpoint
    np.testing.assert_array_equal(out, np.stack([_squares(i) for i in range(8)]))
    assert not ck.exists()  # deleted on completion


def test_worker_processes_give_the_serial_result():
    solve = functools.partial(np.full, (3,))  # picklable: solve(i) = [i, i, i]
    serial = run_resumable(sample_chunks(solve, 5, 1), 5, (3,), checkpoint=None, key="")
    pooled = run_resumable(sample_chunks(solve, 5, 2), 5, (3,), checkpoint=None, key="")
    np.testing.assert_array_equal(serial, pooled)
    np.testing.assert_array_equal(serial[:, 0], np.arange(5.0))


def test_checkpoint_of_the_former_darcy_layout_resumes(tmp_path):
    ck = tmp_path / "old.npz"
    with open(ck, "wb") as fh:  # before the loops were merged Darcy stored "sol"
        np.savez(fh, sol=np.full((2, 2), -1.0), done=np.int64(2), key=np.array("k"))
    out = run_resumable(sample_chunks(_squares, 4), 4, (2,), checkpoint=ck, key="k")
    np.testing.assert_array_equal(out[:2], -1.0)
    np.testing.assert_array_equal(out[2:], [[2, 4], [3, 9]])


@pytest.mark.parametrize(("write", "match"), [
    (lambda p: p.write_bytes(b"not a zip"), "is unreadable.*delete it"),
    (lambda p: _write_ck(p, np.zeros((3, 5)), 3, "k"), "another shape"),
    (lambda p: _write_ck(p, np.zeros((3, 2)), 3, "other"), "other generating parameters"),
])
def test_bad_checkpoints_are_refused_with_the_fix(tmp_path, write, match):
    ck = tmp_path / "ck.npz"
    write(ck)
    with pytest.raises(ValueError, match=match):
        run_resumable(sample_chunks(_squares, 4), 4, (2,), checkpoint=ck, key="k")
    assert ck.exists()  # never deleted: the user decides


def test_checkpoint_folder_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder of the checkpoint"):
        run_resumable(sample_chunks(_squares, 2), 2, (2,), checkpoint=tmp_path / "a" / "c.npz",
                      key="k")
