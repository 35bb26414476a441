"""Tests of the ``sciml-inverse`` console-script dispatcher (``sciml_inverse/_cli.py``)."""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import types

import pytest

from sciml_inverse import _cli

GROUP = "sciml_inverse.commands"


def _ep(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=GROUP)


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> types.ModuleType:
    """Put a throwaway module in ``sys.modules`` so that an entry point can load it."""
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def _hello_register(subparsers) -> None:
    parser = subparsers.add_parser("hello", help="say hello")
    parser.add_argument("--name", default="world")
    parser.add_argument("--status", type=int, default=None)

    def run(args: argparse.Namespace) -> int | None:
        print(f"hello {args.name}")
        return args.status

    parser.set_defaults(func=run)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch):
    """Replace the installed entry points by the given ones; returns a setter."""

    def install(*entry_points: importlib.metadata.EntryPoint) -> None:
        monkeypatch.setattr(_cli, "_entry_points", lambda: list(entry_points))

    install()  # no installed plugin leaks into a test
    return install


@pytest.fixture
def hello(monkeypatch: pytest.MonkeyPatch) -> importlib.metadata.EntryPoint:
    _module(monkeypatch, "fake_hello_plugin", register=_hello_register)
    return _ep("hello", "fake_hello_plugin")


# --- --help, --version, usage errors ---------------------------------------------------------


def test_help_lists_commands(plugins, hello, capsys):
    plugins(hello)
    with pytest.raises(SystemExit) as info:
        _cli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sciml-inverse")
    assert "hello" in out and "say hello" in out
    assert "--version" in out


def test_help_without_plugins_says_none_installed(plugins, capsys):
    with pytest.raises(SystemExit) as info:
        _cli.main(["--help"])
    assert info.value.code == 0
    assert "No commands are installed" in capsys.readouterr().out


def test_version_is_distribution_version(plugins, capsys):
    with pytest.raises(SystemExit) as info:
        _cli.main(["--version"])
    assert info.value.code == 0
    expected = importlib.metadata.version("sciml-inverse")
    assert capsys.readouterr().out.strip() == f"sciml-inverse {expected}"


def test_version_unknown_when_not_installed(plugins, monkeypatch, capsys):
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit) as info:
        _cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == "sciml-inverse 0.0.0+unknown"


def test_no_command_is_usage_error(plugins, hello, capsys):
    plugins(hello)
    with pytest.raises(SystemExit) as info:
        _cli.main([])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sciml-inverse")
    assert "no command given (available: hello)" in err


def test_no_command_without_plugins(plugins, capsys):
    with pytest.raises(SystemExit) as info:
        _cli.main([])
    assert info.value.code == 2
    assert "available: none installed" in capsys.readouterr().err


def test_unknown_command_is_usage_error(plugins, hello, capsys):
    plugins(hello)
    with pytest.raises(SystemExit) as info:
        _cli.main(["nope"])
    assert info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_unrecognized_argument_is_usage_error(plugins, hello, capsys):
    plugins(hello)
    with pytest.raises(SystemExit) as info:
        _cli.main(["hello", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


# --- dispatch to plugins ---------------------------------------------------------------------


def test_dispatches_to_plugin(plugins, hello, capsys):
    plugins(hello)
    assert _cli.main(["hello", "--name", "operators"]) == 0
    assert capsys.readouterr().out == "hello operators\n"


def test_plugin_exit_status_is_returned(plugins, hello):
    plugins(hello)
    assert _cli.main(["hello", "--status", "3"]) == 3


def test_default_lookup_uses_entry_point_group(monkeypatch):
    seen = {}

    def fake_entry_points(**kwargs):
        seen.update(kwargs)
        return [_ep("b", "x:y"), _ep("a", "x:y")]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    assert [ep.name for ep in _cli._entry_points()] == ["a", "b"]
    assert seen == {"group": GROUP}


def test_console_script_is_declared():
    # Read from pyproject.toml (not the installed metadata, which may be of another checkout).
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    scripts = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    (target,) = re.findall(r'^sciml-inverse = "(.+)"$', scripts, flags=re.M)
    module, func = target.split(":")
    assert getattr(__import__(module, fromlist=[func]), func) is _cli.main


# --- broken plugins --------------------------------------------------------------------------


def _broken_error(capsys, argv: list[str]) -> str:
    assert _cli.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    return captured.err


def test_import_error_names_the_entry_point(plugins, hello, capsys):
    plugins(hello, _ep("broken", "no_such_module_for_sciml_inverse:plugin"))
    err = _broken_error(capsys, ["broken"])
    assert err.startswith("sciml-inverse: error: command 'broken' is unavailable")
    assert "entry point 'broken' = 'no_such_module_for_sciml_inverse:plugin'" in err
    assert "group 'sciml_inverse.commands'" in err
    assert "ModuleNotFoundError" in err and "no_such_module_for_sciml_inverse" in err


def test_broken_plugin_does_not_break_others(plugins, hello, capsys):
    plugins(_ep("broken", "no_such_module_for_sciml_inverse:plugin"), hello)
    assert _cli.main(["hello"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    with pytest.raises(SystemExit) as info:
        _cli.main(["--help"])
    assert info.value.code == 0
    assert "[unavailable: ModuleNotFoundError" in capsys.readouterr().out


def test_broken_plugin_ignores_its_arguments(plugins, capsys):
    plugins(_ep("broken", "no_such_module_for_sciml_inverse:plugin"))
    err = _broken_error(capsys, ["broken", "--some-option", "value"])
    assert "ModuleNotFoundError" in err


def test_plugin_without_register(plugins, monkeypatch, capsys):
    _module(monkeypatch, "fake_plugin_without_register")
    plugins(_ep("empty", "fake_plugin_without_register"))
    err = _broken_error(capsys, ["empty"])
    assert "'fake_plugin_without_register' has no function register(subparsers)" in err


def test_plugin_register_raises(plugins, monkeypatch, capsys):
    def register(subparsers):
        raise RuntimeError("boom")

    _module(monkeypatch, "fake_raising_plugin", register=register)
    plugins(_ep("raising", "fake_raising_plugin"))
    err = _broken_error(capsys, ["raising"])
    assert "register(subparsers) raised RuntimeError: boom" in err


def test_plugin_register_raises_after_adding_parser(plugins, monkeypatch, capsys):
    def register(subparsers):
        subparsers.add_parser("half", help="half registered")
        raise RuntimeError("late boom")

    _module(monkeypatch, "fake_half_plugin", register=register)
    plugins(_ep("half", "fake_half_plugin"))
    err = _broken_error(capsys, ["half"])
    assert "register(subparsers) raised RuntimeError: late boom" in err


def test_plugin_registering_wrong_name(plugins, monkeypatch, capsys):
    def register(subparsers):
        subparsers.add_parser("other").set_defaults(func=lambda args: 0)

    _module(monkeypatch, "fake_misnamed_plugin", register=register)
    plugins(_ep("named", "fake_misnamed_plugin"))
    err = _broken_error(capsys, ["named"])
    assert "did not add a subcommand named 'named'" in err


def test_plugin_without_func(plugins, monkeypatch, capsys):
    def register(subparsers):
        subparsers.add_parser("nofunc")

    _module(monkeypatch, "fake_nofunc_plugin", register=register)
    plugins(_ep("nofunc", "fake_nofunc_plugin"))
    err = _broken_error(capsys, ["nofunc"])
    assert "did not set a callable default 'func' on 'nofunc'" in err


def test_duplicate_command_names(plugins, hello, monkeypatch, capsys):
    _module(monkeypatch, "fake_hello_again", register=_hello_register)
    plugins(hello, _ep("hello", "fake_hello_again"))
    err = _broken_error(capsys, ["hello"])
    assert "entry point 'hello' = 'fake_hello_again'" in err
    assert "another plugin already registered the command 'hello'" in err


# --- end to end, in a fresh interpreter ------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["--version"], "sciml-inverse "), (["--help"], "usage: sciml-inverse")],
)
def test_module_entry_point(argv, expected):
    result = subprocess.run(
        [sys.executable, "-m", "sciml_inverse", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(expected)
