"""Runtime layer of sciml-inverse, below :mod:`operators`, :mod:`inverse` and :mod:`sciml`.

It imports none of the three packages. It holds what they share where they meet the disk and the
user's arguments:

* :func:`library_version` -- the installed distribution's version;
* :func:`write_atomic`, :func:`write_bytes_atomic`, :func:`write_json` -- atomic file writing;
* :func:`read_checkpoint` -- the checked checkpoint reader (``weights_only=True`` always);
* :func:`check_number`, :func:`check_int`, :func:`check_tensor`, :func:`check_finite`,
  :func:`check_shape`, :func:`check_representable`, :func:`check_positive_tensor`,
  :func:`check_real`, :func:`check_tolerance`, :func:`check_device`, :func:`check_keys`,
  :func:`check_finite_state_dict`, :func:`check_checkpoint_content` -- the shared
  argument validators.
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

from ._checks import check_checkpoint_content as check_checkpoint_content  # noqa: E402
from ._checks import check_device as check_device  # noqa: E402
from ._checks import check_finite as check_finite  # noqa: E402
from ._checks import check_finite_state_dict as check_finite_state_dict  # noqa: E402
from ._checks import check_keys as check_keys  # noqa: E402
from ._checks import check_positive_tensor as check_positive_tensor  # noqa: E402
from ._checks import check_real as check_real  # noqa: E402
from ._checks import check_representable as check_representable  # noqa: E402
from ._checks import check_shape as check_shape  # noqa: E402
from ._checks import check_tensor as check_tensor  # noqa: E402
from ._checks import check_tolerance as check_tolerance  # noqa: E402

__all__ += ["check_checkpoint_content", "check_device", "check_finite", "check_finite_state_dict",
            "check_keys", "check_positive_tensor", "check_real", "check_representable",
            "check_shape", "check_tensor", "check_tolerance"]
