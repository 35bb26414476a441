"""Runtime layer of sciml-inverse, below :mod:`operators`, :mod:`inverse` and :mod:`sciml`.

It imports none of the three packages. It holds what they share where they meet the disk and the
user's arguments:

* :func:`library_version` -- the installed distribution's version;
* :func:`write_atomic`, :func:`write_bytes_atomic`, :func:`write_json` -- atomic file writing;
* :func:`read_checkpoint` -- the checked checkpoint reader (``weights_only=True`` always);
* :func:`check_number`, :func:`check_int` -- the shared argument validators.
"""

from ._checkpoint import read_checkpoint as read_checkpoint
from ._checks import check_int as check_int
from ._checks import check_number as check_number
from ._io import write_atomic as write_atomic
from ._io import write_bytes_atomic as write_bytes_atomic
from ._io import write_json as write_json
from ._version import library_version as library_version

__all__ = ["check_int", "check_number", "library_version", "read_checkpoint", "write_atomic",
           "write_bytes_atomic", "write_json"]
