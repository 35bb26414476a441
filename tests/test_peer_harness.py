"""The peer-test harness (``peer_tests/``): report parsing, selection and the cache location.

The harness itself downloads torchsde's sdist; these tests use no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1] / "peer_tests"


def _load(name: str, path: Path):
    return load_script(path, name, register=True)


def test_parse_junit_counts(tmp_path):
    common = _load("_common", ROOT / "_common.py")
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="t1"/>'
        '<testcase classname="tests.test_a" name="t2"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_a" name="t3"><skipped message="y"/></testcase>'
        '<testcase classname="tests.test_b" name="t4"><error message="z"/></testcase>'
        "</testsuite></testsuites>")
    r = common.parse_junit(xml)
    assert (r["selected"], r["passed"], r["failed"], r["skipped"]) == (4, 1, 2, 1)
    assert r["failed_ids"] == ["tests.test_a::t2", "tests.test_b::t4"]


def test_quick_selection_keeps_one_adaptive_case(monkeypatch):
    monkeypatch.setenv("PEER_TESTS_MODE", "original")  # no routing needed here
    conf = _load("peer_torchsde_conftest", ROOT / "torchsde_support" / "conftest.py")
    keep = conf._quick_keep
    assert keep("test_sdeint_dependencies", {"adaptive": False})
    assert not keep("test_sdeint_dependencies", {"adaptive": True})
    assert keep("test_sdeint_run_shape_method", {"adaptive": True, "use_bm": False,
                                                 "logqp": False})
    assert not keep("test_sdeint_run_shape_method", {"adaptive": True, "use_bm": True,
                                                     "logqp": False})


def test_selection_is_the_methods_we_integrate_and_the_unknown_name(monkeypatch, tmp_path):
    """torchsde's parametrizations with srk/log_ode/reversible_heun test torchsde's own code (we
    hand those methods to it); everything else is selected, "blah" (the unknown-name error)
    included. The plugin deselects through pytest's hook, so pytest reports every dropped test."""
    sys.path.insert(0, str(ROOT))
    try:
        suite = _load("peer_suite_torchsde", ROOT / "suite_torchsde.py")
    finally:
        sys.path.remove(str(ROOT))
    assert {"euler", "milstein", "milstein_grad_free", "euler_heun", "heun", "midpoint",
            "blah"} == set(suite.METHODS)
    monkeypatch.setenv("PEER_TESTS_MODE", "original")
    monkeypatch.setenv("PEER_TESTS_METHODS", ",".join(suite.METHODS))
    monkeypatch.setenv("PEER_TESTS_EXCLUDE", "test_reversibility")
    conf = _load("peer_torchsde_conftest_sel", ROOT / "torchsde_support" / "conftest.py")

    class Item:
        def __init__(self, name, **params):
            self.originalname, self.name = name, name
            self.callspec = type("C", (), {"params": params})()

    items = [Item("test_sdeint_run_shape_method", method=m, adaptive=True, use_bm=True,
                  logqp=True) for m in ("euler", "srk", "log_ode", "blah", "midpoint")]
    items += [Item("test_basic", method="reversible_heun"), Item("test_reversibility"),
              Item("test_rename_methods")]
    deselected = []
    config = type("Cfg", (), {"hook": type("H", (), {
        "pytest_deselected": staticmethod(lambda items: deselected.extend(items))})()})()
    conf.pytest_collection_modifyitems(config, items)
    kept = [(i.originalname, i.callspec.params.get("method")) for i in items]
    assert kept == [("test_sdeint_run_shape_method", "euler"),
                    ("test_sdeint_run_shape_method", "blah"),
                    ("test_sdeint_run_shape_method", "midpoint"), ("test_rename_methods", None)]
    assert len(deselected) == 4


def test_documented_differences_are_regular_expressions():
    run = _load("peer_run_doc", ROOT / "run.py")
    known = run._compile([r"test_operators_norm\[.*-(inpainting|denoising)\]$"])
    assert run._documented("test_physics.py::test_operators_norm[device0-True-inpainting]", known)
    assert not run._documented("test_physics.py::test_operators_norm[device0-True-deblur_valid]",
                               known)
    assert not run._documented("test_physics.py::test_pseudo_inverse[device0-True-inpainting]",
                               known)


def test_documented_differences_can_require_the_failure_message():
    run = _load("peer_run_msg", ROOT / "run.py")
    known = run._compile([(r"test_operators_norm\[.*-inpainting\]$", r"^assert 0 == 1$")])
    tid = "test_physics.py::test_operators_norm[device0-True-inpainting]"
    assert run._documented(tid, known, {tid: "assert 0 == 1"})
    assert not run._documented(tid, known, {tid: "assert tensor(0.5) < 0.01"})
    assert not run._documented(tid, known)  # no message: not the documented failure


def test_ours_only_run_fails_on_an_undocumented_failure(tmp_path, monkeypatch, capsys):
    run = _load("peer_run_status", ROOT / "run.py")

    class Fake:
        NAME = "fake"
        KNOWN_DIFFERENCES = [r"::documented\["]

        def __init__(self, failed):
            self.failed = failed

        def run(self, cache, mode, workers, timeout, **kw):
            assert kw == {"ci": True}
            return {"selected": 3, "passed": 3 - len(self.failed), "failed": len(self.failed),
                    "skipped": 0, "failed_ids": self.failed, "skipped_ids": []}

    argv = ["--suite", "fake", "--mode", "ours", "--ci", "--cache", str(tmp_path)]
    monkeypatch.setattr(run, "_suites", lambda: {"fake": Fake(["t::documented[a]"])})
    assert run.main(argv) == 0
    monkeypatch.setattr(run, "_suites", lambda: {"fake": Fake(["t::documented[a]", "t::other"])})
    assert run.main(argv) == 1
    assert "t::other" in capsys.readouterr().out


def test_cache_inside_repository_is_refused(capsys):
    run = _load("peer_run", ROOT / "run.py")
    assert run.main(["--suite", "torchsde", "--cache", str(ROOT / "cache")]) == 2
    assert "outside the repository" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["problems.py", "utils.py", "conftest.py"])
def test_support_files_exist(name):
    assert (ROOT / "torchsde_support" / name).is_file()
