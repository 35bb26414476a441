"""HDF5 and MATLAB reading/writing of Darcy data sets, and the ``sciml-inverse darcy`` command."""

from __future__ import annotations

import os
import sys

import h5py
import numpy as np
import pytest
from scipy.io import savemat

import sciml.pde._darcy as darcy_module
from sciml.pde import DarcyData, generate_darcy, grid_nodes, load_darcy, save_darcy, solve_darcy
from sciml_inverse._cli import main


@pytest.fixture
def data():
    return generate_darcy("piecewise", 3, 7, seed=5, progress=False, refine=1, threshold=0.1)


def test_round_trip_keeps_arrays_and_attributes(tmp_path, data):
    path = save_darcy(data, tmp_path / "d.h5")
    back = load_darcy(path)
    for key in ("coeff", "sol", "x"):
        np.testing.assert_array_equal(getattr(back, key), getattr(data, key))
        assert getattr(back, key).dtype == np.float64
    assert back.attrs == data.attrs
    assert isinstance(back.attrs["values"], tuple) and isinstance(back.attrs["seed"], int)
    with h5py.File(path) as h5:
        assert h5.attrs["format"] == "sciml-inverse/darcy"
        assert h5.attrs["seed"] == 5 and h5["coeff"].shape == (3, 7, 7)


def test_save_is_atomic_and_overwrites(tmp_path, data):
    path = tmp_path / "d.h5"
    path.write_bytes(b"old")
    save_darcy(data, path)
    assert load_darcy(path).attrs["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    bad = DarcyData(data.coeff, data.sol, data.x, {"obj": {"nested": 1}})
    with pytest.raises(TypeError, match="attribute 'obj'.*cannot be stored"):
        save_darcy(bad, path)
    assert load_darcy(path).attrs["seed"] == 5  # the failed write left the old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_save_rejects_bad_input(tmp_path, data):
    with pytest.raises(TypeError, match="data must be a DarcyData"):
        save_darcy({"coeff": data.coeff}, tmp_path / "d.h5")
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        save_darcy(data, tmp_path / "missing" / "d.h5")
    reserved = DarcyData(data.coeff, data.sol, data.x, {"format": "x"})
    with pytest.raises(ValueError, match="reserved names"):
        save_darcy(reserved, tmp_path / "d.h5")


def _write_matlab_v73(path, arrays):
    """An HDF5 file laid out as MATLAB ``save -v7.3`` writes it: 512-byte user block with the
    MATLAB header, column-major arrays (axes reversed) tagged with ``MATLAB_class``."""
    with h5py.File(path, "w", userblock_size=512) as h5:
        for key, value in arrays.items():
            ds = h5.create_dataset(key, data=np.asarray(value).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
        h5.create_group("#refs#")
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 2025 HDF5"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def test_matlab_v73_reader_transposes(tmp_path):
    n, b = 6, 4
    rng = np.random.default_rng(0)
    coeff = np.where(rng.standard_normal((b, n, n)) > 0, 10.0, 5.0)
    coeff[:, 0, 1] = 7.0  # break the symmetry so a missing transpose would show
    sol_fdm = solve_darcy(coeff)
    t = np.linspace(0, 1, n)
    mx, my = np.meshgrid(t, t)  # MATLAB meshgrid: X varies along the columns
    path = tmp_path / "DarcyPWC_test.mat"
    _write_matlab_v73(
        path, {"coeff": coeff, "sol_fdm": sol_fdm, "sol_fem": sol_fdm + 1, "X": mx, "Y": my}
    )
    with h5py.File(path) as h5:
        assert h5["coeff"].shape == (n, n, b)  # what h5py sees without the transpose
    data = load_darcy(path)
    np.testing.assert_array_equal(data.coeff, coeff)
    np.testing.assert_array_equal(data.sol, sol_fdm)
    assert data.attrs["source"] == "matlab-v7.3" and data.attrs["sol_key"] == "sol_fdm"
    # x is aligned with the flattened fields: x[k] is where coeff.reshape(B, -1)[:, k] lives
    np.testing.assert_array_equal(data.x[:, 0], mx.ravel())
    np.testing.assert_array_equal(data.x[:, 1], my.ravel())
    np.testing.assert_array_equal(load_darcy(path, sol_key="sol_fem").sol, sol_fdm + 1)


def test_matlab_v73_single_precision_without_meshes(tmp_path):
    coeff = np.full((2, 5, 5), 5.0, dtype=np.float32)
    path = tmp_path / "smooth.mat"
    _write_matlab_v73(path, {"coeff": coeff, "sol": coeff * 0, "beta1": np.ones(2)})
    data = load_darcy(path)
    assert data.coeff.dtype == np.float64 and data.coeff.shape == (2, 5, 5)
    np.testing.assert_array_equal(data.x, grid_nodes(5))
    assert "beta1" in data.attrs["keys"]


def test_matlab_v5_reader(tmp_path):
    coeff = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4) + 1
    path = tmp_path / "old.mat"
    savemat(path, {"coeff": coeff, "sol": -coeff})
    data = load_darcy(path)
    np.testing.assert_array_equal(data.coeff, coeff)
    assert data.attrs["source"] == "matlab-v5"


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Darcy data file"):
        load_darcy(tmp_path / "nope.h5")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="neither an HDF5 file nor a MATLAB"):
        load_darcy(text)
    no_coeff = tmp_path / "no_coeff.mat"
    _write_matlab_v73(no_coeff, {"sol": np.ones((1, 4, 4))})
    with pytest.raises(KeyError, match="no dataset 'coeff'"):
        load_darcy(no_coeff)
    no_sol = tmp_path / "no_sol.mat"
    _write_matlab_v73(no_sol, {"coeff": np.ones((1, 4, 4))})
    with pytest.raises(KeyError, match="no solution dataset"):
        load_darcy(no_sol)
    with pytest.raises(KeyError, match="no dataset 'u'"):
        load_darcy(no_sol, sol_key="u")
    wrong = tmp_path / "wrong.mat"
    _write_matlab_v73(wrong, {"coeff": np.ones((1, 4, 4)), "sol": np.ones((1, 4, 5))})
    with pytest.raises(ValueError, match=r"of shape \(B, n, n\)"):
        load_darcy(wrong)
    ours = tmp_path / "ours.h5"
    with h5py.File(ours, "w") as h5:
        h5.attrs["format"] = "sciml-inverse/darcy"
        h5["coeff"] = np.ones((1, 3, 3))
    with pytest.raises(KeyError, match="without dataset 'sol'"):
        load_darcy(ours)


# ----------------------------------------------------------------------------------------------
# resumable generation
# ----------------------------------------------------------------------------------------------
_SOLVE_CHUNK = darcy_module._solve_chunk


class _Interrupted(Exception):
    """Stands in for a killed run."""


def _counting_solver(monkeypatch, fail_after=None):
    calls = []
    original = _SOLVE_CHUNK

    def solve(args):
        if fail_after is not None and len(calls) >= fail_after:
            raise _Interrupted("simulated interruption")
        calls.append(args[0].shape[0])
        return original(args)

    monkeypatch.setattr(darcy_module, "_solve_chunk", solve)
    return calls


def test_generation_resumes_from_checkpoint(tmp_path, monkeypatch):
    ck = tmp_path / "run.partial.npz"
    expected = generate_darcy("piecewise", 10, 7, seed=1, refine=1, progress=False)
    monkeypatch.setattr(darcy_module, "CHECKPOINT_EVERY", 3)
    _counting_solver(monkeypatch, fail_after=7)
    with pytest.raises(_Interrupted):
        generate_darcy("piecewise", 10, 7, seed=1, refine=1, progress=False, checkpoint=ck)
    with np.load(ck) as saved:
        assert int(saved["done"]) == 6  # written after 3 and 6 samples
    # other parameters: refuse to mix
    with pytest.raises(ValueError, match="other generating parameters"):
        generate_darcy("piecewise", 10, 7, seed=2, refine=1, progress=False, checkpoint=ck)
    calls = _counting_solver(monkeypatch)
    data = generate_darcy("piecewise", 10, 7, seed=1, refine=1, progress=False, checkpoint=ck)
    assert sum(calls) == 4  # only the samples after the checkpoint were solved
    np.testing.assert_array_equal(data.sol, expected.sol)
    assert data.attrs == {**expected.attrs}
    assert not ck.exists()


def test_checkpoint_folder_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder of the checkpoint"):
        generate_darcy("smooth", 2, 5, seed=0, progress=False, checkpoint=tmp_path / "a" / "c.npz")


# ----------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------
def test_cli_generate_end_to_end(tmp_path, capsys):
    out = tmp_path / "pwc.h5"
    argv = ["darcy", "generate", "--kind", "piecewise", "--n", "3", "--grid", "9", "--seed", "2",
            "--refine", "1", "--threshold", "0.2", "--out", str(out)]
    assert main(argv) == 0
    assert "wrote 3 piecewise samples" in capsys.readouterr().out
    data = load_darcy(out)
    expected = generate_darcy("piecewise", 3, 9, seed=2, refine=1, threshold=0.2, progress=False)
    np.testing.assert_array_equal(data.coeff, expected.coeff)
    np.testing.assert_array_equal(data.sol, expected.sol)
    assert data.attrs["threshold"] == 0.2 and data.attrs["seed"] == 2
    # an existing output is kept unless --overwrite
    assert main(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert main([*argv[:-2], "--seed", "3", "--out", str(out), "--overwrite"]) == 0
    assert load_darcy(out).attrs["seed"] == 3
    assert main(["darcy", "info", str(out)]) == 0
    assert "3 samples, grid 9x9" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pwc.h5"]  # no checkpoint left


def test_cli_smooth_with_workers(tmp_path):
    out = tmp_path / "smooth.h5"
    argv = ["darcy", "generate", "--kind", "smooth", "--n", "4", "--grid", "7", "--workers", "2",
            "--transform", "tanh", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    data = load_darcy(out)
    assert data.attrs["transform"] == "tanh" and data.attrs["refine"] == 3
    expected = generate_darcy("smooth", 4, 7, seed=0, progress=False, transform="tanh")
    np.testing.assert_array_equal(data.sol, expected.sol)


def test_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "x.h5")
    assert main(["darcy"]) == 2
    assert "no action given" in capsys.readouterr().err
    base = ["darcy", "generate", "--n", "2", "--grid", "5", "--out", out]
    assert main([*base, "--kind", "smooth", "--values", "1", "2"]) == 2
    assert "--values/--threshold are for --kind piecewise" in capsys.readouterr().err
    assert main([*base, "--kind", "piecewise", "--transform", "exp"]) == 2
    assert "--transform is for --kind smooth" in capsys.readouterr().err
    assert main([*base, "--kind", "piecewise", "--refine", "2"]) == 1
    assert "refine must be odd" in capsys.readouterr().err
    assert main(["darcy", "generate", "--kind", "smooth", "--n", "2", "--grid", "2",
                 "--out", out]) == 1
    assert "grid must be an int >= 3, got 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "--kind", "piecewise", "--n", "0"])
    assert exc.value.code == 2
    assert "expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--kind", "cubic"])
    assert main(["darcy", "info", str(tmp_path / "missing.h5")]) == 1
    assert "no Darcy data file" in capsys.readouterr().err


def test_cli_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    out = tmp_path / "x.h5"
    (tmp_path / "x.h5.partial.npz").write_bytes(b"garbage, not a zip file")
    argv = ["darcy", "generate", "--kind", "piecewise", "--n", "2", "--grid", "5", "--refine",
            "1", "--no-progress", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "is unreadable" in err and "delete it" in err and len(err.splitlines()) == 1
    assert not out.exists()


def _children(pid: int) -> set[int]:
    from pathlib import Path

    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        kids.update(int(k) for k in text.split())
    return kids


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_do_not_outlive_a_killed_parent(tmp_path):
    """SIGKILL runs no cleanup in the parent; the workers (busy with chunks of fields that take
    far longer than the 30 s allowed here) must notice and exit."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    code = ("import sys\nfrom sciml_inverse._cli import main\nsys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "darcy", "generate", "--kind", "smooth",
                             "--n", "4000", "--grid", "129", "--workers", "2", "--no-progress",
                             "--out", str(tmp_path / "big.h5")], env=env,
                            stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = {k for k in _children(proc.pid)
                       if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()}
        assert len(workers) >= 2, "the workers did not start"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(_alive(w) for w in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:  # never leave orphans behind, even when the test fails
            if _alive(w):
                os.kill(w, signal.SIGKILL)
