"""Saving and loading compressive autoencoders (atomic writes, config and version checks).

Files are checkpoints of the common format (:func:`sciml_inverse.save_checkpoint`)::

    {"format": "sciml-inverse/checkpoint", "format_version": 1, "library_version": "0.1.0",
     "kind": "vble-cae", "config": CAEConfig.to_dict(), "state": {...},
     "extra": {"dtype": "float32" | "float16", "info": {...}}}

Files of the older CAE layout (``"format": "sciml-inverse/vble-cae"``, the shipped weights
among them) are read too.

Weights may be stored in float16 (``save_cae(..., half=True)``) to halve the shipped file;
:func:`load_cae` casts them back to float32.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from sciml_inverse import (
    Checkpoint,
    check_finite_state_dict,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)

from ._cae import CAEConfig, CompressiveAutoencoder

__all__ = ["save_cae", "load_cae", "default_cae", "cae_from_compressai", "WEIGHTS_DIR",
           "SHIPPED_MODELS"]

#: The ``kind`` of CAE checkpoints in the common format.
KIND = "vble-cae"
#: The layout of files written before the common format.
LEGACY_FORMAT = ("sciml-inverse/vble-cae", 1)
#: Folder of the shipped weights ``cae_xlow.pt``, ``cae_low.pt``, ``cae_high.pt``,
#: ``cae_xhigh.pt``.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_BITRATES = {"xlow": "cae_xlow.pt", "low": "cae_low.pt", "high": "cae_high.pt",
             "xhigh": "cae_xhigh.pt"}
#: Names of the shipped CAEs, lowest rate first (:func:`default_cae`, ``--model NAME``).
SHIPPED_MODELS = tuple(_BITRATES)


def save_cae(model: CompressiveAutoencoder, path: str | os.PathLike, *, half: bool = False,
             **extra: Any) -> Path:
    """Save a CAE's configuration and weights, atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    model : CompressiveAutoencoder
    path : str or path-like
    half : bool
        Store floating-point weights as float16 (half the size; :func:`load_cae` casts back to
        float32). Relative rounding error ≈ 5e-4 on each weight.
    **extra
        Anything ``torch.load(weights_only=True)`` can read back (numbers, strings, lists,
        dicts, tensors): training record, data statement, command line, ...

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`CompressiveAutoencoder`.
    """
    if not isinstance(model, CompressiveAutoencoder):
        raise TypeError(f"save_cae expects a CompressiveAutoencoder, got {type(model).__name__}")
    state = {}
    params = {name for name, _ in model.named_parameters()}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        # Only learned parameters are halved: the buffers are constants (likelihood floors of
        # 1e-9, the GDN pedestal 2**-36) that float16 would round to 0.
        if half and k in params and v.is_floating_point():
            v = v.half()
        state[k] = v.clone()
    return save_checkpoint(path, kind=KIND, config=model.config.to_dict(), state=state,
                           extra={"dtype": "float16" if half else "float32",
                                  "info": dict(extra)})


def _from_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    """The pre-common CAE layout (``config``/``state_dict``/``dtype``/``extra``)."""
    return {"kind": KIND, "config": raw["config"], "state": raw["state_dict"],
            "extra": {"dtype": raw.get("dtype", "float32"), "info": raw.get("extra") or {}}}


def _read(path: Path, map_location: Any) -> Checkpoint:
    return load_checkpoint(path, kind=KIND, what="CAE checkpoint",
                           hint=" (for a CompressAI checkpoint use cae_from_compressai)",
                           legacy={LEGACY_FORMAT: _from_legacy}, map_location=map_location,
                           stacklevel=3)


def load_cae(path: str | os.PathLike, map_location: Any = "cpu", *,
             with_extra: bool = False
             ) -> CompressiveAutoencoder | tuple[CompressiveAutoencoder, dict[str, Any]]:
    """Load a CAE written by :func:`save_cae` (float32 parameters, eval mode).

    Parameters
    ----------
    path : str or path-like
    map_location
        Passed to :func:`torch.load`; the model is moved there when it is a device.
    with_extra : bool
        Also return the ``**extra`` dict given to :func:`save_cae`.

    Returns
    -------
    CompressiveAutoencoder or (CompressiveAutoencoder, dict)

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is corrupted or not a CAE checkpoint, has another format version, a
        configuration this version does not know, weights that do not fit its configuration or
        NaN/infinite weights.
    """
    path = Path(path)
    ckpt = _read(path, map_location)
    try:
        config = CAEConfig.from_dict(ckpt.config)
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path} has no valid CAE configuration: {err}") from err
    model = CompressiveAutoencoder(config)
    state = ckpt.state
    own = model.state_dict()
    params = {name for name, _ in model.named_parameters()}
    # the context mask is rebuilt, not stored (early files of this format stored it)
    state = {k: v.to(dtype=own[k].dtype) if k in own and v.is_floating_point() else v
             for k, v in state.items() if k != "context_prediction.mask"}
    # Buffers are constants fixed by the configuration (likelihood floors, the GDN pedestal).
    # Files written before save_cae kept them in float32 stored them in float16, which rounds
    # the 1e-9 floors to 0 (then latent_bits can be inf): take them from the fresh model.
    if ckpt.extra.get("dtype") == "float16":
        state = {k: own[k] if (k in own and k not in params) else v for k, v in state.items()}
    load_weights(model, state, path)
    if isinstance(map_location, (str, torch.device)):
        model = model.to(map_location)
    model.eval()
    if with_extra:
        return model, dict(ckpt.extra.get("info") or {})
    return model


def default_cae(bitrate: str = "low") -> CompressiveAutoencoder:
    """The shipped one-channel 12-bit CAE (with variance decoder), in eval mode.

    Parameters
    ----------
    bitrate : {"xlow", "low", "high", "xhigh"}
        ``"xlow"``: trained with α = 0.0003 (strongest prior, 0.46 bpp on the validation
        strips); ``"low"``: α = 0.0067 (1.22 bpp); ``"high"``: α = 0.0483 (1.46 bpp);
        ``"xhigh"``: α = 2 (1.89 bpp, the most accurate decoder). See
        ``inverse/vble/weights/README.md``.

    Returns
    -------
    CompressiveAutoencoder

    Raises
    ------
    ValueError
        For another ``bitrate``.
    FileNotFoundError
        If the weights file is not installed (``inverse/vble/weights/cae_{bitrate}.pt``).
    """
    if bitrate not in _BITRATES:
        raise ValueError(f"bitrate must be one of {sorted(_BITRATES)}, got {bitrate!r}")
    path = WEIGHTS_DIR / _BITRATES[bitrate]
    if not path.is_file():
        raise FileNotFoundError(f"the shipped CAE weights {path} are missing; reinstall "
                                f"sciml-inverse or pass your own checkpoint to load_cae")
    return load_cae(path)  # type: ignore[return-value]


_COMPRESSAI_KIND = "compressai-mbt2018"


def _from_compressai(raw: Any) -> dict[str, Any]:
    """A CompressAI file: a state dict, or a dict holding one under ``"state_dict"``."""
    if not isinstance(raw, dict):
        raise TypeError("not a dict")
    sd = raw["state_dict"] if isinstance(raw.get("state_dict"), dict) else raw
    return {"kind": _COMPRESSAI_KIND, "config": {}, "state": dict(sd)}


def cae_from_compressai(state_dict_or_path: dict | str | os.PathLike, *, alpha: float,
                        n_bits: int = 8, std_decoder: bool = False) -> CompressiveAutoencoder:
    """Build a CAE from a CompressAI ``mbt2018`` checkpoint (state dict or local file).

    N, M, C and the entropy-model widths are read from the weight shapes; entries only the
    entropy coder needs are dropped (see
    :meth:`CompressiveAutoencoder.load_compressai_state_dict`). Nothing is downloaded.

    Parameters
    ----------
    state_dict_or_path : dict or path
        A state dict, or a file holding one (possibly under ``"state_dict"``).
    alpha : float
        The rate–distortion weight the checkpoint was trained with (CompressAI's mbt2018
        qualities 1–8: 0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483, 0.0932, 0.18).
    n_bits : int
        Bit depth of its training images (8 for CompressAI's).
    std_decoder : bool
        Add an (untrained) variance decoder.

    Returns
    -------
    CompressiveAutoencoder
        In eval mode.

    Raises
    ------
    FileNotFoundError
        If a path is given and there is no file.
    ValueError
        If the dict is not an mbt2018 state dict.
    """
    sd = state_dict_or_path
    if not isinstance(sd, dict):
        # the one reader (weights_only=True, finite weights), through a converter of the
        # untagged CompressAI layout
        sd = load_checkpoint(sd, kind=_COMPRESSAI_KIND, what="CompressAI checkpoint",
                             legacy={(None, None): _from_compressai}).state
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
    try:
        cin = int(sd["g_a.0.weight"].shape[1])
        N = int(sd["g_a.0.weight"].shape[0])
        M = int(sd["g_a.6.weight"].shape[0])
        hyper = tuple(int(sd[f"h_s.{i}.weight"].shape[1 if i < 4 else 0]) for i in (0, 2, 4))
        k = int(sd["context_prediction.weight"].shape[0])
        ent = (int(sd["entropy_parameters.0.weight"].shape[0]),
               int(sd["entropy_parameters.2.weight"].shape[0]))
    except (KeyError, AttributeError, IndexError) as err:
        raise ValueError(f"not a CompressAI mbt2018 state dict (missing {err})") from err
    check_finite_state_dict(sd, "the CompressAI state dict" if isinstance(
        state_dict_or_path, dict) else state_dict_or_path)
    config = CAEConfig(in_channels=cin, N=N, M=M, n_bits=n_bits, alpha=alpha,
                       std_decoder=std_decoder, hyper_channels=hyper, context_channels=k,
                       entropy_channels=ent)
    model = CompressiveAutoencoder(config)
    model.load_compressai_state_dict(sd)
    return model.eval()
