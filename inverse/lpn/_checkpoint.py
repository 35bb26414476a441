"""Saving and loading LPN weights and training state (atomic writes, config checks)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from sciml_inverse import Checkpoint, load_checkpoint, load_weights, save_checkpoint
from sciml_inverse import library_version as library_version

from ._icnn import ImageLPNConfig, VectorLPNConfig
from ._lpn import LPN

__all__ = ["save_lpn", "load_lpn", "library_version"]

#: The ``kind`` of LPN checkpoints in the common format (:func:`sciml_inverse.save_checkpoint`).
KIND = "lpn"
#: The layout of files written before the common format (the shipped weights among them).
LEGACY_FORMAT = ("sciml-inverse/lpn-checkpoint", 1)
_CONFIG_TYPES = {"VectorLPNConfig": VectorLPNConfig, "ImageLPNConfig": ImageLPNConfig}


def config_to_dict(config: VectorLPNConfig | ImageLPNConfig) -> dict[str, Any]:
    """A plain dict (type name + fields); :func:`config_from_dict` rebuilds ``config``."""
    return {"type": type(config).__name__, "fields": dataclasses.asdict(config)}


def config_from_dict(d: dict[str, Any]) -> VectorLPNConfig | ImageLPNConfig:
    try:
        cls = _CONFIG_TYPES[d["type"]]
        fields = dict(d["fields"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"not an LPN model configuration: {d!r}") from err
    if isinstance(fields.get("dilations"), list):
        fields["dilations"] = tuple(fields["dilations"])
    try:
        return cls(**fields)
    except TypeError as err:  # a field this version does not know
        raise ValueError(f"not an LPN model configuration of this version: {err}") from err


def write_lpn(model: LPN, path: str | os.PathLike, train: dict[str, Any] | None) -> Path:
    """Weights (and the training state ``train``, if any) of ``model`` in the common format."""
    return save_checkpoint(
        path, kind=KIND, config=config_to_dict(model.config),
        state={k: v.detach().cpu() for k, v in model.state_dict().items()},
        extra={"model_class": type(model).__name__, "train": train})


def _from_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    """The pre-common layout (``model_config``/``model_state``/``train``)."""
    return {"kind": KIND, "config": raw["model_config"], "state": raw["model_state"],
            "extra": {"model_class": raw.get("model_class"), "train": raw.get("train")}}


def save_lpn(model: LPN, path: str | os.PathLike) -> Path:
    """Save an :class:`LPN`'s configuration and weights (atomically).

    The file is a checkpoint of the common format (:func:`sciml_inverse.save_checkpoint`,
    ``kind="lpn"``): format version, library version, the model configuration, the weights (on
    CPU); :func:`load_lpn` rebuilds the model from it.

    Parameters
    ----------
    model : LPN
    path : str or path-like

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    TypeError
        If ``model`` is not an :class:`LPN`.
    """
    if not isinstance(model, LPN):
        raise TypeError(f"save_lpn expects an LPN, got {type(model).__name__}")
    return write_lpn(model, path, None)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
    """An LPN checkpoint: weights (:func:`save_lpn`), a training checkpoint of
    :func:`~inverse.lpn.train_lpn` (:func:`sciml_inverse.fit`), or the older LPN layout; as a
    :class:`~sciml_inverse.Checkpoint` whose ``config``/``state`` are the model's."""
    ckpt = load_checkpoint(path, kind=(KIND, "fit"), what="LPN checkpoint", article="an",
                           legacy={LEGACY_FORMAT: _from_legacy}, map_location=map_location,
                           stacklevel=3)
    if ckpt.kind == "fit":
        task = ckpt.config.get("task") or {}
        if "model_config" not in task or "model" not in ckpt.state:
            raise ValueError(f"{ckpt.path} is a training checkpoint of another model, not an "
                             f"LPN checkpoint")
        ckpt = dataclasses.replace(ckpt, config=task["model_config"], state=ckpt.state["model"],
                                   extra={**ckpt.extra, "train": task.get("train_config")})
    return ckpt


def check_model_matches(model: LPN, ckpt: Checkpoint, path: str | os.PathLike) -> None:
    saved = config_from_dict(ckpt.config)
    if saved != model.config:
        raise ValueError(f"checkpoint {path} was saved for {saved!r} but the model is "
                         f"{model.config!r}; build the model with the saved configuration "
                         f"(load_lpn(path) does this) or use another checkpoint")


def load_lpn(path: str | os.PathLike, model: LPN | None = None, *,
             map_location: Any = "cpu") -> LPN:
    """Load an :class:`LPN` saved by :func:`save_lpn` or :func:`~inverse.lpn.train_lpn`.

    Parameters
    ----------
    path : str or path-like
    model : LPN, optional
        Load the weights into this model (its configuration must equal the saved one); by
        default a new model is built from the saved configuration.
    map_location
        Passed to :func:`torch.load` (default ``"cpu"``).

    Returns
    -------
    LPN
        In eval mode.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not an LPN checkpoint (or corrupted, or written by a newer
        sciml-inverse), lacks an entry, holds NaN or infinite weights, or was saved for a
        different configuration than ``model``'s.

    Notes
    -----
    Files of the older LPN layout (``"sciml-inverse/lpn-checkpoint"``, the shipped weights
    among them) load too.

    Examples
    --------
    >>> import tempfile, os
    >>> from inverse.lpn import LPN, VectorLPNConfig, save_lpn, load_lpn
    >>> lpn = LPN(VectorLPNConfig(dim=2, hidden=4, num_layers=1))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save_lpn(lpn, os.path.join(d, "m.pt"))
    ...     load_lpn(p).config == lpn.config
    True
    """
    ckpt = read_checkpoint(path, map_location)
    if model is None:
        try:
            config = config_from_dict(ckpt.config)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: {err}") from err
        model = LPN(config)
    elif not isinstance(model, LPN):
        raise TypeError(f"model must be an LPN or None, got {type(model).__name__}")
    else:
        check_model_matches(model, ckpt, path)
    ref = next(model.parameters())
    state = {k: v.to(device=ref.device) for k, v in ckpt.state.items()}
    load_weights(model, state, path)
    return model.eval()
