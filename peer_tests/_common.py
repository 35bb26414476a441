"""Shared helpers of the peer-test harness: the cache directory and a pytest runner."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def default_cache() -> Path:
    """``$SCIML_PEER_CACHE`` or ``~/.cache/sciml-inverse/peer-tests`` (outside the repository)."""
    return Path(os.environ.get("SCIML_PEER_CACHE",
                               Path.home() / ".cache" / "sciml-inverse" / "peer-tests"))


def run_pytest(test_dir: Path, files: list[str], *, env: dict, workers: int, xml: Path,
               timeout: int) -> dict:
    """Run pytest on ``files`` of ``test_dir``; return pass/fail counts and the failed ids."""
    cmd = [sys.executable, "-m", "pytest", *files, "-q", "-p", "no:cacheprovider",
           "--junitxml", str(xml), "-o", "addopts=", "-W", "ignore::DeprecationWarning",
           "-W", "ignore::FutureWarning", "--rootdir", str(test_dir.parent)]
    if workers > 0:
        cmd += ["-n", str(workers)]
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
    full_env.setdefault("OMP_NUM_THREADS", "1")
    if xml.exists():
        xml.unlink()
    proc = subprocess.run(cmd, cwd=test_dir.parent, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    if not xml.exists():
        raise RuntimeError(f"pytest wrote no report (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return parse_junit(xml)


def parse_junit(xml: Path) -> dict:
    """Counts (``selected``, ``passed``, ``failed``, ``skipped``) and the non-passing test ids."""
    root = ET.parse(xml).getroot()
    cases = root.iter("testcase")
    passed, failed, skipped = [], [], []
    for c in cases:
        cid = f"{c.get('classname', '')}::{c.get('name', '')}"
        tags = {ch.tag for ch in c}
        if tags & {"failure", "error"}:
            failed.append(cid)
        elif "skipped" in tags:
            skipped.append(cid)
        else:
            passed.append(cid)
    return {"selected": len(passed) + len(failed) + len(skipped), "passed": len(passed),
            "failed": len(failed), "skipped": len(skipped), "failed_ids": sorted(failed),
            "skipped_ids": sorted(skipped)}
