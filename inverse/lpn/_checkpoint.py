"""Saving and loading LPN weights and training state (atomic writes, config checks)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from sciml_inverse import check_checkpoint_content

from .._internal import library_version as library_version
from .._internal import read_checkpoint as _read_checkpoint
from .._internal import write_atomic as write_atomic
from ._icnn import ImageLPNConfig, VectorLPNConfig
from ._lpn import LPN

__all__ = ["save_lpn", "load_lpn", "library_version"]

FORMAT = "sciml-inverse/lpn-checkpoint"
FORMAT_VERSION = 1
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
    return cls(**fields)


def _payload(model: LPN, train: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": library_version(),
        "model_class": type(model).__name__,
        "model_config": config_to_dict(model.config),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "train": train,
    }


def save_lpn(model: LPN, path: str | os.PathLike) -> Path:
    """Save an :class:`LPN`'s configuration and weights (atomically).

    The file stores the format version, the library version, the model class and configuration,
    and the weights (on CPU); :func:`load_lpn` rebuilds the model from it.

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
    return write_atomic(_payload(model, None), path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    ckpt = _read_checkpoint(path, fmt=FORMAT, format_version=FORMAT_VERSION, what="LPN checkpoint",
                            article="an", map_location=map_location, stacklevel=4)
    check_checkpoint_content(ckpt, path, required=("model_config",), weights="model_state",
                             what="LPN checkpoint")
    return ckpt


def check_model_matches(model: LPN, ckpt: dict[str, Any], path: str | os.PathLike) -> None:
    saved = config_from_dict(ckpt["model_config"])
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
        If the file is not an LPN checkpoint, has another format version, lacks an entry, holds
        NaN or infinite weights, or was saved for a different configuration than ``model``'s.

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
        model = LPN(config_from_dict(ckpt["model_config"]))
    elif not isinstance(model, LPN):
        raise TypeError(f"model must be an LPN or None, got {type(model).__name__}")
    else:
        check_model_matches(model, ckpt, path)
    ref = next(model.parameters())
    state = {k: v.to(device=ref.device) for k, v in ckpt["model_state"].items()}
    model.load_state_dict(state)
    return model.eval()
