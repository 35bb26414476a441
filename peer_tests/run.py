#!/usr/bin/env python
"""Run the peers' own test suites against this project (issue 12); print pass counts.

    python peer_tests/run.py --suite torchsde|deepinv|all [--mode ours|original|both]
                             [--workers 2] [--json summary.json] [--cache DIR] [--quick | --ci]

Each suite is a module ``peer_tests/suite_<name>.py`` with ``NAME`` and
``run(cache, mode, workers, timeout, quick=False, ci=False) -> counts``: it fetches the peer's
test files into the cache (outside the repository; default ``~/.cache/sciml-inverse/peer-tests``
or ``$SCIML_PEER_CACHE``), routes the peer's solver calls to this project (``mode="ours"``) or
not (``"original"``), runs pytest and returns ``selected``/``passed``/``failed``/``skipped`` and
the failing ids. ``--mode both`` (default) runs both and lists the tests that pass with the
original but not with ours. ``--ci`` runs each suite's CI selection (a few minutes on 2 cores;
``make peer-tests-ci``, part of ``.ci/run``).

Exit status 1 if a test that passes with the original fails with ours (``--mode both``) or, with
``--mode ours``, if any selected test fails with ours, unless the failure matches the suite's
documented ``KNOWN_DIFFERENCES`` (regular expressions on the test id, and on the failure message
where one is given; see ``docs/guide/nde.rst`` and ``docs/guide/operators.rst``). A suite may
check what a documented failure leaves unchecked and report a failure of that check as an extra
failing id (deepinv: the norm values of ``test_operators_norm``); 1 also when a suite cannot run
(e.g. no network for the first download of torchsde's sdist); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import default_cache  # noqa: E402


def _suites() -> dict:
    here = Path(__file__).resolve().parent
    out = {}
    for f in sorted(here.glob("suite_*.py")):
        mod = importlib.import_module(f.stem)
        out[mod.NAME] = mod
    return out


def _compile(known) -> list[tuple[re.Pattern, re.Pattern | None]]:
    """A suite's ``KNOWN_DIFFERENCES``: regular expressions on the test id, or pairs (on the id,
    on the failure message)."""
    out = []
    for k in known:
        pat, msg = (k, None) if isinstance(k, str) else k
        out.append((re.compile(pat), None if msg is None else re.compile(msg)))
    return out


def _documented(test_id: str, known, messages: dict | None = None) -> bool:
    """Whether a failing test (id, and message where the difference names one) matches one of a
    suite's documented differences."""
    msg = (messages or {}).get(test_id, "")
    return any(p.search(test_id) and (m is None or m.search(msg)) for p, m in known)


def main(argv: list[str] | None = None) -> int:
    suites = _suites()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="all", choices=[*suites, "all"])
    ap.add_argument("--mode", default="both", choices=["ours", "original", "both"])
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (0: none)")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per pytest run")
    sel = ap.add_mutually_exclusive_group()
    sel.add_argument("--full", action="store_true",
                     help="the whole selection (the default; kept for old command lines)")
    sel.add_argument("--quick", action="store_true",
                     help="trim cases that are slow with the original (for --mode both)")
    sel.add_argument("--ci", action="store_true",
                     help="each suite's CI selection (minutes on 2 cores)")
    args = ap.parse_args(argv)
    cache = (args.cache or default_cache()).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if repo == cache or repo in cache.parents:
        print(f"error: the cache {cache} must lie outside the repository", file=sys.stderr)
        return 2
    names = list(suites) if args.suite == "all" else [args.suite]
    modes = ["original", "ours"] if args.mode == "both" else [args.mode]
    summary: dict = {"cache": str(cache), "suites": {}}
    status = 0
    for name in names:
        mod = suites[name]
        res: dict = {}
        for mode in modes:
            t0 = time.perf_counter()
            try:
                kw = {"quick": True} if args.quick else {"ci": True} if args.ci else {}
                res[mode] = mod.run(cache, mode, args.workers, args.timeout, **kw)
            except Exception as exc:  # a suite that cannot run is reported, not a traceback
                print(f"{name} [{mode}]: could not run: {exc}", file=sys.stderr)
                res[mode] = {"error": str(exc)}
                status = 1
                continue
            res[mode]["seconds"] = round(time.perf_counter() - t0, 1)
            r = res[mode]
            print(f"{name:9s} {mode:8s}: {r['passed']}/{r['selected']} passed, {r['failed']} "
                  f"failed, {r['skipped']} skipped ({r['seconds']} s)")
        known = _compile(getattr(mod, "KNOWN_DIFFERENCES", ()))
        messages = res.get("ours", {}).get("failed_messages", {})
        if "original" in res and "ours" in res and "failed_ids" in res["ours"] \
                and "failed_ids" in res["original"]:
            regress = sorted(set(res["ours"]["failed_ids"]) - set(res["original"]["failed_ids"]))
            unexpected = [r for r in regress if not _documented(r, known, messages)]
            res["regressions"] = regress
            res["unexpected_regressions"] = unexpected
            print(f"{name:9s} pass with the original but not with ours: {len(regress)} "
                  f"({len(unexpected)} not in the documented differences)")
        elif "failed_ids" in res.get("ours", {}):
            unexpected = [r for r in res["ours"]["failed_ids"]
                          if not _documented(r, known, messages)]
            res["unexpected_failures"] = unexpected
            print(f"{name:9s} fail with ours: {res['ours']['failed']} "
                  f"({len(unexpected)} not in the documented differences)")
        else:
            unexpected = []
        for r in unexpected[:50]:
            print(f"    {r}")
        if unexpected:
            status = 1
        summary["suites"][name] = res
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=args.json.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(summary, fh, indent=2, sort_keys=True)
        os.replace(tmp, args.json)
    return status


if __name__ == "__main__":
    sys.exit(main())
