"""deepinv's own physics/optim tests on ``to_deepinv(...)`` wrappings, as a ``run.py`` suite.

The work is done by ``peer_tests/deepinv_suite.py`` (which also runs on its own, with the
comparison report); this module adapts it to the ``run.py`` interface. The test files come from
the installed deepinv wheel (nothing is downloaded). ``ci=True`` leaves out the
``inpainting_clone`` cases (a 64-channel copy of ``inpainting``, two thirds of the suite's time),
for the CI selection.
"""

from __future__ import annotations

from pathlib import Path

import deepinv_suite

NAME = "deepinv"
#: regular expressions on ``file::test[params]`` ids; each a documented, justified difference
KNOWN_DIFFERENCES = [pat for pat, _ in deepinv_suite.KNOWN_DIFFERENCES]
CI_DESELECT = "not inpainting_clone"


def run(cache: Path, mode: str, workers: int, timeout: int, full: bool = False,
        ci: bool = False) -> dict:
    del timeout, full  # the deepinv selection has no slow variant
    dest, _ = deepinv_suite.prepare(cache)
    r = deepinv_suite.run_mode(mode, dest, workers, deselect=CI_DESELECT if ci else None)
    tests = r["tests"]
    failed = sorted(k for k, v in tests.items() if v["status"] in ("failed", "error"))
    skipped = sorted(k for k, v in tests.items() if v["status"] == "skipped")
    return {"selected": len(tests), "passed": r["counts"]["passed"], "failed": len(failed),
            "skipped": len(skipped), "failed_ids": failed, "skipped_ids": skipped}
