"""Shared fixtures and marker behaviour for the test suite.

Markers
-------
``slow``
    Runs by default; deselect with ``pytest -m "not slow"``.
``gpu``
    Needs CUDA; skipped with an explicit reason when ``torch.cuda.is_available()`` is false.

Fixtures
--------
``device``
    ``"cpu"``, plus ``"cuda"`` (marked ``gpu``) when CUDA is available.
``dtype``
    ``torch.float32`` and ``torch.float64``.
``pde_commands``
    The CLI ``main`` with the subcommands of this checkout's ``pyproject.toml``.
``generator``
    A CPU ``torch.Generator`` seeded with 1234.

Every test starts with ``torch``, ``numpy`` and ``random`` seeded with 0; torch uses one
intra-op thread per test process.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

CUDA_AVAILABLE = torch.cuda.is_available()

# `make test` runs two xdist workers on two cores: one intra-op thread per worker avoids
# oversubscription (measured: one file took 74 s instead of 1.6 s with default threading).
torch.set_num_threads(1)

_DEVICES = ["cpu"] + ([pytest.param("cuda", marks=pytest.mark.gpu)] if CUDA_AVAILABLE else [])


def pytest_report_header(config: pytest.Config) -> str:
    cuda = torch.cuda.get_device_name(0) if CUDA_AVAILABLE else "not available"
    return f"torch {torch.__version__}, numpy {np.__version__}, CUDA: {cuda}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is not None and not CUDA_AVAILABLE:
        pytest.skip("marked 'gpu': needs a CUDA device and torch.cuda.is_available() is False")


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Seed torch (CPU and CUDA), numpy and random with 0 before each test."""
    torch.manual_seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds the legacy global state used by third-party code
    random.seed(0)


@pytest.fixture(params=_DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """The devices to test on: CPU, and CUDA when available."""
    return torch.device(request.param)


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """The real floating dtypes to test with."""
    return request.param


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU random generator with a fixed seed, for tests that pass ``generator=``."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def pde_commands(monkeypatch):
    """``sciml_inverse._cli.main`` with the subcommands declared in this checkout's pyproject.toml
    (an editable install may carry older entry-point metadata)."""
    import importlib.metadata
    from pathlib import Path

    import tomllib

    from sciml_inverse import _cli

    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
        eps = tomllib.load(fh)["project"]["entry-points"]["sciml_inverse.commands"]
    points = [importlib.metadata.EntryPoint(name=k, value=v, group=_cli.ENTRY_POINT_GROUP)
              for k, v in eps.items()]
    monkeypatch.setattr(_cli, "_entry_points", lambda: points)
    return _cli.main


@pytest.fixture
def forbid_cg(monkeypatch):
    """Make the CG fallback of ``solve_normal`` raise (closed forms must not call it)."""
    import operators.solvers._cg as cg_module

    def fail(*args, **kwargs):
        raise AssertionError("solve_normal fell back to CG where a closed form was expected")

    monkeypatch.setattr(cg_module, "cg", fail)
