"""deepinv's own physics/optim tests on ``to_deepinv(...)`` wrappings, as a ``run.py`` suite.

The work is done by ``peer_tests/deepinv_suite.py`` (which also runs on its own, with the
comparison report); this module adapts it to the ``run.py`` interface. The test files come from
the installed deepinv wheel (nothing is downloaded). ``ci=True`` (and ``quick=True``) leaves
out the ``inpainting_clone`` cases (a 64-channel copy of ``inpainting``, two thirds of the
suite's time), for the CI selection.
"""

from __future__ import annotations

import re
from pathlib import Path

import deepinv_suite

NAME = "deepinv"
#: (regular expression on the ``file::test[params]`` id, on the failure message); each a
#: documented, justified difference
KNOWN_DIFFERENCES = [(pat, msg) for pat, msg, _ in deepinv_suite.KNOWN_DIFFERENCES]
CI_DESELECT = "not inpainting_clone"


def run(cache: Path, mode: str, workers: int, timeout: int, quick: bool = False,
        ci: bool = False) -> dict:
    del timeout
    dest, _ = deepinv_suite.prepare(cache)
    r = deepinv_suite.run_mode(mode, dest, workers,
                               deselect=CI_DESELECT if ci or quick else None)
    tests = r["tests"]
    failed = sorted(k for k, v in tests.items() if v["status"] in ("failed", "error"))
    skipped = sorted(k for k, v in tests.items() if v["status"] == "skipped")
    out = {"selected": len(tests), "passed": r["counts"]["passed"], "failed": len(failed),
           "skipped": len(skipped), "failed_ids": failed, "skipped_ids": skipped,
           "failed_messages": {k: tests[k]["message"] for k in failed}}
    if mode == "ours":
        # What the documented differences leave unchecked, checked here: a failure is reported
        # as an extra failing id that matches no documented difference.
        names = sorted({m.group(1) for k in failed
                        if (m := re.search(r"::test_operators_norm\[.*-(\w+)\]$", k))
                        and deepinv_suite.documented_reason(k, tests[k]["message"])})
        rem = deepinv_suite.check_documented_remainder(dest, names) if names else {}
        out["documented_remainder"] = rem
        for name, v in rem.items():
            if not v["ok"]:
                rid = f"documented_remainder::test_operators_norm[{name}]"
                out["failed_ids"].append(rid)
                out["failed_messages"][rid] = (
                    f"norm {v['sqnorm']:.6g} vs {v['norm_ref']:.6g} (bound {v['bound']}), "
                    f"{v['warnings_max_iter_1']} warnings at max_iter=1")
    return out
