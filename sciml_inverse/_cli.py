"""The ``sciml-inverse`` command line: a dispatcher over subcommand plugins.

Run it as ``sciml-inverse`` (console script) or ``python -m sciml_inverse``.

The dispatcher knows no subcommand by name. Each subcommand is contributed by the package that
owns it, through an entry point in the group ``sciml_inverse.commands`` declared in that
distribution's ``pyproject.toml``::

    [project.entry-points."sciml_inverse.commands"]
    restore = "inverse.satellite._cli:restore"

Plugin protocol
---------------
* The entry point's **name** is the subcommand name (``restore`` above).
* The entry point's **value** names an object (a module, class or instance) with a function
  ``register(subparsers) -> None``, where ``subparsers`` is the object returned by
  :meth:`argparse.ArgumentParser.add_subparsers`.
* ``register`` adds exactly one subparser, named like the entry point, declares its arguments,
  and sets a default ``func``::

      def register(subparsers):
          parser = subparsers.add_parser("restore", help="restore a degraded image")
          parser.add_argument("input")
          parser.set_defaults(func=run)

      def run(args: argparse.Namespace) -> int | None:
          ...

* ``func(args)`` runs the command; it returns the exit status (``None`` means 0).
* ``register`` must be cheap: import heavy modules inside ``func``, not at import time of the
  module the entry point names, so that ``sciml-inverse --help`` stays fast.

A plugin that fails to load (import error, no ``register``, ``register`` raising, no subparser
of its name, no ``func``) does not break the other commands: ``--help`` lists it as unavailable
and invoking it prints one line naming the entry point and the error, with exit status 1.

Exit statuses follow the :mod:`argparse` convention: 0 on success (and for ``--help`` and
``--version``), 2 for usage errors (including a missing subcommand), 1 for a broken plugin.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ._version import DISTRIBUTION, library_version

__all__ = ["DISTRIBUTION", "ENTRY_POINT_GROUP", "build_parser", "main"]

#: Entry-point group in which subcommands are discovered.
ENTRY_POINT_GROUP = "sciml_inverse.commands"
_PROG = "sciml-inverse"


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The installed entry points of :data:`ENTRY_POINT_GROUP`, sorted by name."""
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


class _BrokenPlugin:
    """The ``func`` of a subcommand whose plugin failed to load: reports why, exits 1."""

    def __init__(self, entry_point: importlib.metadata.EntryPoint, reason: str) -> None:
        self.entry_point = entry_point
        self.reason = reason

    def message(self) -> str:
        ep = self.entry_point
        return (
            f"{_PROG}: error: command {ep.name!r} is unavailable: its plugin "
            f"(entry point {ep.name!r} = {ep.value!r} in group {ENTRY_POINT_GROUP!r}) "
            f"failed to load: {self.reason}"
        )

    def __call__(self, args: argparse.Namespace) -> int:
        print(self.message(), file=sys.stderr)
        return 1


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _register(subparsers: Any, entry_point: importlib.metadata.EntryPoint) -> _BrokenPlugin | None:
    """Let one plugin add its subparser; return a :class:`_BrokenPlugin` if it fails."""
    name = entry_point.name
    if name in subparsers.choices:
        return _BrokenPlugin(entry_point, f"another plugin already registered the command {name!r}")
    try:
        plugin = entry_point.load()
    except Exception as exc:
        return _BrokenPlugin(entry_point, _describe(exc))
    register = getattr(plugin, "register", None)
    if not callable(register):
        return _BrokenPlugin(
            entry_point, f"{entry_point.value!r} has no function register(subparsers)"
        )
    try:
        register(subparsers)
    except Exception as exc:
        return _BrokenPlugin(entry_point, f"register(subparsers) raised {_describe(exc)}")
    subparser = subparsers.choices.get(name)
    if subparser is None:
        return _BrokenPlugin(
            entry_point, f"register(subparsers) did not add a subcommand named {name!r}"
        )
    if not callable(subparser.get_default("func")):
        return _BrokenPlugin(
            entry_point,
            f"register(subparsers) did not set a callable default 'func' on {name!r}",
        )
    return None


def build_parser(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> argparse.ArgumentParser:
    """Build the top-level parser with one subcommand per entry point.

    Parameters
    ----------
    entry_points
        The plugins to register; by default the installed entry points of the group
        ``sciml_inverse.commands``.

    Returns
    -------
    argparse.ArgumentParser
        The parser. A subcommand's ``func`` default runs it; a broken plugin's subcommand is
        present too and reports its error when invoked.
    """
    return _build(entry_points)[0]


def _build(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None,
) -> tuple[argparse.ArgumentParser, Any]:
    if entry_points is None:
        entry_points = _entry_points()
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Command line of sciml-inverse. Subcommands are provided by installed plugins "
            f"(entry-point group {ENTRY_POINT_GROUP!r})."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {library_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for entry_point in entry_points:
        broken = _register(subparsers, entry_point)
        if broken is None:
            continue
        name = entry_point.name
        if name in subparsers.choices:
            # register() added its subparser before failing, or two plugins claim the same
            # name: either way the command is unusable and reports why when invoked.
            subparsers.choices[name].set_defaults(func=broken)
        else:
            subparsers.add_parser(
                name, help=f"[unavailable: {broken.reason}]", add_help=False
            ).set_defaults(func=broken)
    if not subparsers.choices:
        parser.epilog = f"No commands are installed (entry-point group {ENTRY_POINT_GROUP!r})."
    return parser, subparsers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sciml-inverse`` command line.

    Parameters
    ----------
    argv
        The arguments without the program name; by default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status of the subcommand (0 on success, 1 for a broken plugin).

    Raises
    ------
    SystemExit
        For ``--help`` and ``--version`` (status 0) and usage errors (status 2), as
        :mod:`argparse` does.
    """
    parser, subparsers = _build(None)
    args, extras = parser.parse_known_args(argv)
    func: Callable[[argparse.Namespace], int | None] | None = getattr(args, "func", None)
    if isinstance(func, _BrokenPlugin):
        return func(args)
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if args.command is None:
        available = ", ".join(subparsers.choices) or "none installed"
        parser.error(f"no command given (available: {available}); run '{_PROG} --help' for usage")
    if func is None:  # pragma: no cover - guarded by _register
        parser.error(f"command {args.command!r} has no function to run")
    status = func(args)
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
