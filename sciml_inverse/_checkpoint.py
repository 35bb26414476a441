"""The one checkpoint format of sciml-inverse (always read with ``weights_only=True``).

A checkpoint is a :func:`torch.save` of a plain dict, written atomically::

    {"format": "sciml-inverse/checkpoint", "format_version": 1,
     "library_version": "0.1.0",          # the writer's sciml-inverse
     "kind": "lpn" | "vble-cae" | "neural-operator" | "fit" | ...,
     "config": {...},                      # what the model is (plain values)
     "state": {...},                       # tensors: weights, optimizer state, RNG states
     "extra": {...}}                       # anything else (training record, data statement)

Every entry must be readable by ``torch.load(weights_only=True)``: tensors, numbers, strings,
``None``, and lists/tuples/dicts of them (no numpy arrays, no arbitrary objects). Files of
the older per-model formats are read through *legacy converters* that the owning package
passes to :func:`load_checkpoint` (see ``inverse.lpn`` and ``inverse.vble``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ._checks import check_finite_state_dict
from ._io import write_atomic
from ._version import library_version

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "LegacyConverter", "save_checkpoint",
           "load_checkpoint", "load_weights"]

#: The ``"format"`` tag of every checkpoint written by :func:`save_checkpoint`.
FORMAT = "sciml-inverse/checkpoint"
#: The newest format version this library writes and reads.
FORMAT_VERSION = 1
_KEYS = ("kind", "config", "state", "extra")

#: A converter of an older file layout: raw dict -> dict with ``kind``, ``config``, ``state``
#: and (optionally) ``extra``.
LegacyConverter = Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint as read by :func:`load_checkpoint`.

    Attributes
    ----------
    kind : str
        What the file holds (``"lpn"``, ``"vble-cae"``, ``"neural-operator"``, ``"fit"``, ...).
    config : dict
        What the model is, as plain values (rebuild the model from it).
    state : dict
        Tensors: weights, optimizer and RNG states.
    extra : dict
        Anything else the writer stored.
    library_version : str
        The sciml-inverse version that wrote the file.
    format, format_version : str, int
        The file's layout (an older per-model tag for files read through a legacy converter).
    path : pathlib.Path
    """

    kind: str
    config: dict[str, Any]
    state: dict[str, Any]
    extra: dict[str, Any]
    library_version: str
    format: str
    format_version: int
    path: Path


def save_checkpoint(path: str | os.PathLike, *, kind: str, config: Mapping[str, Any],
                    state: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (temporary file in the target folder + ``os.replace``).

    Parameters
    ----------
    path : str or path-like
    kind : str
        What the file holds; :func:`load_checkpoint` checks it.
    config : mapping
        What the model is (plain values).
    state : mapping
        Tensors (weights, optimizer state, ...). Tensors are stored as they are; move them to
        the CPU first if the file should load without the device.
    extra : mapping, optional
        Anything else readable with ``weights_only=True``.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    TypeError
        If ``kind`` is not a non-empty string or ``config``/``state``/``extra`` are not mappings.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from sciml_inverse import save_checkpoint, load_checkpoint
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_checkpoint(os.path.join(d, "m.pt"), kind="demo", config={"n": 2},
    ...                         state={"w": torch.ones(2)})
    ...     load_checkpoint(p, kind="demo").config
    {'n': 2}
    """
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"kind must be a non-empty str, got {kind!r}")
    for name, value in (("config", config), ("state", state), ("extra", extra or {})):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": library_version(),
        "kind": kind,
        "config": dict(config),
        "state": dict(state),
        "extra": dict(extra or {}),
    }
    return write_atomic(payload, path)


def load_checkpoint(path: str | os.PathLike, *, kind: str | Sequence[str] | None = None,
                    what: str = "checkpoint", article: str = "a", hint: str = "",
                    legacy: Mapping[tuple[str, int], LegacyConverter] | None = None,
                    map_location: Any = "cpu",
                    check_state: Callable[[Checkpoint], None] | None = None,
                    finite_state: bool = True, stacklevel: int = 2) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``, checking everything on the way.

    Parameters
    ----------
    path : str or path-like
    kind : str or sequence of str, optional
        The kind(s) accepted (default: any).
    what, article, hint
        How messages name the file: ``"no {what} at ..."``, ``"is not {article} {what}"``
        (e.g. ``what="LPN checkpoint", article="an"``); ``hint`` is appended to the "not a ..."
        message (where such files are read instead).
    legacy : mapping, optional
        ``{(format_tag, format_version): converter}`` for older per-model layouts; a converter
        maps the raw dict to one with ``kind``, ``config``, ``state`` (and ``extra``). The key
        ``(None, None)`` stands for untagged dicts (files written before any format tag).
    map_location
        Passed to :func:`torch.load`.
    check_state : callable, optional
        Called with the :class:`Checkpoint` before it is returned (e.g. a finite-weights
        check); it raises ``ValueError`` to reject the file.
    finite_state : bool
        Reject a file whose ``state`` holds a floating-point tensor with NaN or infinity (the
        weights or optimizer state of a diverged run, which would load silently and give NaN
        outputs); nested dicts are searched. ``False`` reads such files (for inspection).
    stacklevel : int
        Of the version warning (2: the caller of this function).

    Returns
    -------
    Checkpoint

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file cannot be read (corrupted, truncated, not a torch file, or holding objects
        that ``weights_only=True`` refuses), is not a sciml-inverse checkpoint, was written by a
        newer sciml-inverse (a format version this one does not know), lacks an entry, holds
        another kind, or (with ``finite_state``) holds NaN or infinite tensors in its state.

    Warns
    -----
    UserWarning
        If another version of sciml-inverse wrote it (files that record no version, e.g. the
        foreign ones read through a converter, are not warned about).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated / not a torch file / unsafe pickle
        raise ValueError(f"{path} could not be read as {article} {what} (corrupted or not "
                         f"written by sciml-inverse): {type(err).__name__}: {err}") from err
    legacy = dict(legacy or {})
    tag = raw.get("format") if isinstance(raw, dict) else None
    known_tags = {FORMAT} | {t for t, _ in legacy}
    if not isinstance(raw, dict) or tag not in known_tags:
        raise ValueError(f"{path} is not {article} {what} written by sciml-inverse{hint}")
    version = raw.get("format_version")
    if tag == FORMAT:
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"{path} has an invalid {what} format version {version!r} "
                             f"(corrupted file)")
        if version > FORMAT_VERSION:
            raise ValueError(f"{path} has {what} format version {version!r}, written by a newer "
                             f"sciml-inverse (this one reads versions <= {FORMAT_VERSION}); "
                             f"upgrade sciml-inverse to read it")
        body = raw
    else:
        convert = legacy.get((tag, version))
        if convert is None:
            versions = sorted(v for t, v in legacy if t == tag)
            raise ValueError(f"{path} has {what} format version {version!r} of the layout "
                             f"{tag!r}, this library reads version(s) {versions} of it; re-save "
                             f"it with a matching sciml-inverse")
        try:
            body = convert(raw)
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path} is a damaged {what} of the layout {tag!r}: missing or "
                             f"invalid entry {err}") from err
    for key in _KEYS[:3]:
        if key not in body:
            raise ValueError(f"{path} lacks the entry {key!r} of {article} {what} (corrupted or "
                             f"hand-edited file)")
    ckpt = Checkpoint(kind=body["kind"], config=body["config"], state=body["state"],
                      extra=dict(body.get("extra") or {}),
                      library_version=str(raw.get("library_version")), format=tag,
                      format_version=version, path=path)
    if not isinstance(ckpt.config, dict) or not isinstance(ckpt.state, dict):
        raise ValueError(f"{path}: 'config' and 'state' must be dicts (corrupted file)")
    kinds = None if kind is None else ((kind,) if isinstance(kind, str) else tuple(kind))
    if kinds is not None and ckpt.kind not in kinds:
        raise ValueError(f"{path} is not {article} {what}: it holds a {ckpt.kind!r} checkpoint"
                         f"{hint}")
    if raw.get("library_version") is not None and ckpt.library_version != library_version():
        warnings.warn(f"{path} was written by sciml-inverse {ckpt.library_version}, this is "
                      f"{library_version()}", UserWarning, stacklevel=stacklevel + 1)
    if finite_state:
        check_finite_state_dict(ckpt.state, path, what=f"state of the {what}")
    if check_state is not None:
        check_state(ckpt)
    return ckpt


def load_weights(module: torch.nn.Module, state: Mapping[str, Any], source: str | os.PathLike,
                 *, strict: bool = True) -> None:
    """``module.load_state_dict(state, strict=strict)``, with a ``ValueError`` naming the file.

    A state read from a checkpoint that lacks a weight, has an extra one or one of another shape
    raises ``ValueError`` (``"<source>: the weights do not fit the model: ..."``) instead of
    PyTorch's ``RuntimeError``, like the other checks of a loaded file.

    Parameters
    ----------
    module : torch.nn.Module
    state : mapping
        The weights (e.g. ``Checkpoint.state`` or an entry of it).
    source : str or path-like
        Where ``state`` was read from (for the message).
    strict : bool
        As :meth:`torch.nn.Module.load_state_dict`.

    Raises
    ------
    ValueError
        If the weights do not fit ``module`` (missing, unexpected or mis-shaped entries).
    TypeError
        If ``state`` is not a mapping.

    Examples
    --------
    >>> import torch
    >>> from sciml_inverse import load_weights
    >>> load_weights(torch.nn.Linear(2, 1), {"weight": torch.zeros(1, 2)}, "m.pt")
    Traceback (most recent call last):
        ...
    ValueError: m.pt: the weights do not fit the model (Linear): missing 'bias'; use ...
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"{os.fspath(source)}: the weights must be a dict of tensors, got "
                        f"{type(state).__name__}")
    own = module.state_dict()
    problems = []
    if strict:
        for label, names in (("missing", [k for k in own if k not in state]),
                             ("unexpected", [k for k in state if k not in own])):
            if names:
                problems.append(f"{label} {_some(names)}")
    shapes = [f"{k} {tuple(v.shape)} (the model has {tuple(own[k].shape)})"
              for k, v in state.items() if k in own and isinstance(v, torch.Tensor)
              and v.shape != own[k].shape]
    if shapes:
        problems.append(f"other shapes for {_some(shapes, quote=False)}")
    try:
        if not problems:
            module.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        problems.append(" ".join(str(err).split()))
    if problems:
        raise ValueError(f"{os.fspath(source)}: the weights do not fit the model "
                         f"({type(module).__name__}): {'; '.join(problems)}; use the checkpoint "
                         f"written for this model or build the model with the saved "
                         f"configuration")


def _some(names: Sequence[str], quote: bool = True, n: int = 3) -> str:
    shown = [repr(k) if quote else k for k in names[:n]]
    return ", ".join(shown) + (f" and {len(names) - n} more" if len(names) > n else "")

