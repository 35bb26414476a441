"""torchsde's own tests, routed to ``sciml.nde.sdeint`` / ``sdeint_adjoint``.

The test files come from the source distribution of the *installed* torchsde version on PyPI
(``pip download --no-deps --no-binary :all: torchsde==<version>``), extracted into the cache. The
sdist ships ``tests/test_*.py`` but not the ``problems``/``utils`` modules they import: the
harness installs its own (``peer_tests/torchsde_support``), so the problem SDEs are ours while
the assertions are torchsde's.

Selection (the same in every mode, CI included): ``test_sdeint.py`` and ``test_adjoint.py``, the
parametrizations whose ``method`` this project integrates (:data:`METHODS`), those with the
unknown method name ``"blah"`` (the test expects torchsde's ``ValueError``), and the tests
without a method parameter. Not selected, each because it would test torchsde's code, not ours:
the parametrizations with ``srk``, ``log_ode`` or ``reversible_heun`` (``sciml.nde`` hands these
methods to torchsde unchanged) and ``test_reversibility`` (reversible Heun only).

``quick=True`` (``run.py --quick``) keeps, of the adaptive cases, one per problem, SDE type and
method of ``test_sdeint_run_shape_method``: torchsde's own adaptive solves at its default
tolerances are slow, so a ``--mode both`` run takes tens of minutes on the original without it.
Ours runs the whole selection in about 3 minutes of CPU time, so CI (``ci=True``) runs it all.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from _common import run_pytest

NAME = "torchsde"
FILES = ["tests/test_sdeint.py", "tests/test_adjoint.py"]
#: the methods this project integrates, and "blah": torchsde's test of an unknown method name
METHODS = ["euler", "milstein", "milstein_grad_free", "euler_heun", "heun", "midpoint", "blah"]
EXCLUDE = ["test_reversibility"]
SUPPORT = Path(__file__).resolve().parent / "torchsde_support"


def prepare(cache: Path) -> Path:
    """Download (once) and extract torchsde's sdist; install the harness files. Returns the
    directory that holds ``tests/``."""
    version = importlib.metadata.version("torchsde")
    root = cache / f"torchsde-{version}"
    if not (root / "tests" / "test_sdeint.py").exists():
        cache.mkdir(parents=True, exist_ok=True)
        sdist = cache / f"torchsde-{version}.tar.gz"
        if not sdist.exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--no-binary", ":all:", f"torchsde=={version}", "-d", str(cache)],
                           check=True, capture_output=True, text=True)
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers()
                       if m.name.startswith(f"torchsde-{version}/tests/") and m.isfile()]
            tf.extractall(cache, members=members, filter="data")
    tests = root / "tests"
    (tests / "__init__.py").write_text("")
    for f in ("problems.py", "utils.py", "conftest.py"):
        shutil.copyfile(SUPPORT / f, tests / f)
    return root


def run(cache: Path, mode: str, workers: int, timeout: int, quick: bool = False,
        ci: bool = False) -> dict:
    """Run the selection in ``mode``; ``quick`` trims the adaptive cases (for runs of the slow
    original); ``ci`` runs the whole selection (as the default)."""
    del ci  # the CI selection is the whole selection
    root = prepare(cache)
    env = {"PEER_TESTS_MODE": mode, "PEER_TESTS_METHODS": ",".join(METHODS),
           "PEER_TESTS_EXCLUDE": ",".join(EXCLUDE), "PEER_TESTS_QUICK": "1" if quick else "0"}
    return run_pytest(root / "tests", FILES, env=env, workers=workers,
                      xml=cache / f"torchsde-{mode}.xml", timeout=timeout)
