"""The installed distribution's version, stored in every checkpoint and output file."""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "UNKNOWN_VERSION", "library_version"]

#: Name of the distribution.
DISTRIBUTION = "sciml-inverse"
#: What :func:`library_version` returns from a source tree that is not installed.
UNKNOWN_VERSION = "0.0.0+unknown"


def library_version() -> str:
    """The installed ``sciml-inverse`` version (``"0.0.0+unknown"`` from a bare source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN_VERSION
