#!/usr/bin/env python
"""Run the peers' own test suites against this project (issue 12); print pass counts.

    python peer_tests/run.py --suite torchsde|deepinv|all [--mode ours|original|both]
                             [--workers 2] [--json summary.json] [--cache DIR] [--full]

Each suite is a module ``peer_tests/suite_<name>.py`` with ``NAME`` and
``run(cache, mode, workers, timeout) -> counts``: it fetches the peer's test files into the cache
(outside the repository; default ``~/.cache/sciml-inverse/peer-tests`` or
``$SCIML_PEER_CACHE``), routes the peer's solver calls to this project (``mode="ours"``) or not
(``"original"``), runs pytest and returns ``selected``/``passed``/``failed``/``skipped`` and the
failing ids. ``--mode both`` (default) runs both and lists the tests that pass with the original
but not with ours. Exit status 1 if such a test exists and is not in the suite's documented
``KNOWN_DIFFERENCES`` (see ``docs/guide/nde.rst``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
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


def main(argv: list[str] | None = None) -> int:
    suites = _suites()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="all", choices=[*suites, "all"])
    ap.add_argument("--mode", default="both", choices=["ours", "original", "both"])
    ap.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (0: none)")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per pytest run")
    ap.add_argument("--full", action="store_true",
                    help="the full selection (suites may trim slow cases by default)")
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
                kw = {"full": True} if args.full else {}
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
        if "original" in res and "ours" in res and "failed_ids" in res["ours"] \
                and "failed_ids" in res["original"]:
            regress = sorted(set(res["ours"]["failed_ids"]) - set(res["original"]["failed_ids"]))
            known = set(getattr(mod, "KNOWN_DIFFERENCES", ()))
            unexpected = [r for r in regress if not any(k in r for k in known)]
            res["regressions"] = regress
            res["unexpected_regressions"] = unexpected
            print(f"{name:9s} pass with the original but not with ours: {len(regress)} "
                  f"({len(unexpected)} not in the documented differences)")
            for r in unexpected[:50]:
                print(f"    {r}")
            if unexpected:
                status = 1
        elif "ours" in res and res["ours"].get("failed"):
            status = 1 if not getattr(mod, "KNOWN_DIFFERENCES", None) else status
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
