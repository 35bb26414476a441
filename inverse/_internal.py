"""Helpers shared by the subpackages of :mod:`inverse` (no stability promise).

They live in the runtime layer :mod:`sciml_inverse`; this module re-exports them for the code
that imported them from here.
"""

from __future__ import annotations

from sciml_inverse import (
    check_int,
    check_number,
    library_version,
    read_checkpoint,
    write_atomic,
)

__all__ = ["library_version", "write_atomic", "read_checkpoint", "check_number", "check_int"]
