"""Runtime layer of sciml-inverse, below :mod:`operators`, :mod:`inverse` and :mod:`sciml`.

It imports none of the three packages. It holds what they share where they meet the disk and the
user's arguments:

* :func:`library_version` -- the installed distribution's version;
* :func:`atomic_path`, :func:`write_atomic`, :func:`write_bytes_atomic`, :func:`write_json` --
  atomic file writing;
* :func:`main` -- the ``sciml-inverse`` command line (plugin dispatcher);
* :func:`interruptible`, :func:`raise_if_interrupted` -- Ctrl-C and SIGTERM as one
  ``KeyboardInterrupt`` that a garbage-collection callback cannot swallow;
* :func:`save_checkpoint`, :func:`load_checkpoint`, :class:`Checkpoint` -- the one checkpoint
  format (format tag, library version, kind, config, state; ``weights_only=True`` always; NaN
  or infinite weights rejected), :func:`load_weights` -- weights into a module, a
  ``ValueError`` naming the file when they do not fit;
* :func:`check_number`, :func:`check_int`, :func:`check_real`, :func:`check_tolerance`,
  :func:`check_tensor`, :func:`check_finite`, :func:`check_shape`, :func:`check_representable`,
  :func:`check_positive_tensor`, :func:`check_device`, :func:`check_keys`,
  :func:`check_finite_state_dict` -- the shared argument validators (a
  ``ValueError``/``TypeError`` naming the argument, the problem and the fix;
  :class:`ArgumentTypeError` is both);
* :func:`fit` with :class:`FitOptions` / :class:`TrainTask` / :class:`FitResult` -- the one
  training loop (steps or epochs, progress, time limit, checkpoints with exact resume, DDP under
  torchrun, mixed precision: :func:`resolve_precision`, :func:`full_precision`, :func:`upcast`).
"""

from ._checkpoint import Checkpoint as Checkpoint
from ._checkpoint import load_checkpoint as load_checkpoint
from ._checkpoint import load_weights as load_weights
from ._checkpoint import save_checkpoint as save_checkpoint
from ._checks import ArgumentTypeError as ArgumentTypeError
from ._checks import check_device as check_device
from ._checks import check_finite as check_finite
from ._checks import check_finite_state_dict as check_finite_state_dict
from ._checks import check_int as check_int
from ._checks import check_keys as check_keys
from ._checks import check_number as check_number
from ._checks import check_positive_tensor as check_positive_tensor
from ._checks import check_real as check_real
from ._checks import check_representable as check_representable
from ._checks import check_shape as check_shape
from ._checks import check_tensor as check_tensor
from ._checks import check_tolerance as check_tolerance
from ._cli import main as main
from ._fit import FitOptions as FitOptions
from ._fit import FitResult as FitResult
from ._fit import TrainTask as TrainTask
from ._fit import fit as fit
from ._interrupt import interruptible as interruptible
from ._interrupt import raise_if_interrupted as raise_if_interrupted
from ._io import atomic_path as atomic_path
from ._io import write_atomic as write_atomic
from ._io import write_bytes_atomic as write_bytes_atomic
from ._io import write_json as write_json
from ._precision import Precision as Precision
from ._precision import full_precision as full_precision
from ._precision import resolve_precision as resolve_precision
from ._precision import upcast as upcast
from ._version import library_version as library_version

__all__ = ["ArgumentTypeError", "Checkpoint", "FitOptions", "FitResult", "Precision", "TrainTask",
           "atomic_path", "check_device", "check_finite", "check_finite_state_dict", "check_int",
           "check_keys", "check_number", "check_positive_tensor", "check_real",
           "check_representable", "check_shape", "check_tensor", "check_tolerance", "fit",
           "full_precision", "interruptible", "library_version", "load_checkpoint", "load_weights",
           "main", "raise_if_interrupted", "resolve_precision", "save_checkpoint", "upcast",
           "write_atomic", "write_bytes_atomic", "write_json"]
