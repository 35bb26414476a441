"""Saving, loading and applying trained neural operators (the common checkpoint format).

Neural operators are assembled from modules (encoders, activations, decoders), so a checkpoint
does not rebuild the architecture: :func:`load` puts the saved weights into a model the caller
builds the same way, and checks that it is the same architecture (class and module structure).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sciml_inverse import Checkpoint, check_keys, load_checkpoint, load_weights, save_checkpoint

from ._base import AbstractNeuralOperator

__all__ = ["save", "load", "predict", "KIND", "TRAIN_KIND"]

#: ``kind`` of the weights files written by :func:`save`.
KIND = "neural-operator"
#: ``kind`` of the training checkpoints of earlier versions of
#: :func:`~sciml.neural_operators.fit` (read, not resumed).
TRAIN_KIND = "neural-operator-train"
#: ``kind`` of the training checkpoints of :func:`sciml_inverse.fit`, which
#: :func:`~sciml.neural_operators.fit` runs on.
FIT_KIND = "fit"
_WHAT = "neural-operator checkpoint"


def architecture(model: nn.Module) -> dict[str, str]:
    """What identifies the architecture of ``model``: class name and module structure."""
    return {"model_class": type(model).__name__, "model_repr": repr(model)}


def _from_untagged(raw: dict[str, Any]) -> dict[str, Any]:
    """Training checkpoints of ``fit`` written before the common format (no format tag)."""
    return {"kind": TRAIN_KIND,
            "config": {"model_class": raw["model_class"], "model_repr": raw.get("model_repr"),
                       "options": raw["options"]},
            "state": {k: raw[k] for k in ("model", "best_model", "optimizer", "scheduler",
                                          "generator")},
            "extra": {k: raw[k] for k in ("epoch", "history", "best_epoch", "best_val")}}


def read(path: str | os.PathLike, *, kinds: tuple[str, ...] = (KIND, TRAIN_KIND, FIT_KIND),
         stacklevel: int = 3) -> Checkpoint:
    """A neural-operator weights file or training checkpoint (``weights_only=True``); a
    training checkpoint of :func:`sciml_inverse.fit` is returned with ``config`` = the run's
    configuration (architecture and options)."""
    ckpt = load_checkpoint(path, kind=kinds, what=_WHAT, legacy={(None, None): _from_untagged},
                           stacklevel=stacklevel)
    if ckpt.kind == FIT_KIND:
        task = ckpt.config.get("task") or {}
        if "model_class" not in task:
            raise ValueError(f"{ckpt.path} is a training checkpoint of another model, not a "
                             f"{_WHAT}")
        ckpt = dataclasses.replace(ckpt, config=task)
    return ckpt


def check_architecture(model: nn.Module, ckpt: Checkpoint) -> None:
    saved = {k: ckpt.config.get(k) for k in ("model_class", "model_repr")}
    own = architecture(model)
    if saved["model_class"] != own["model_class"] or (
            saved["model_repr"] is not None and saved["model_repr"] != own["model_repr"]):
        raise ValueError(f"{ckpt.path} holds a {saved['model_class']} of another architecture "
                         f"than the given {own['model_class']}; build the model with the "
                         f"settings it was trained with:\nsaved: {saved['model_repr']}\n"
                         f"given: {own['model_repr']}")


def save(model: AbstractNeuralOperator, path: str | os.PathLike, **extra: Any) -> Path:
    """Save the weights of a trained neural operator (atomically, common checkpoint format).

    Parameters
    ----------
    model : AbstractNeuralOperator
    path : str or path-like
    **extra
        Anything ``torch.load(weights_only=True)`` reads back (numbers, strings, lists, dicts,
        tensors): data statement, validation error, ...

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        If ``model`` is not an :class:`AbstractNeuralOperator`.
    """
    if not isinstance(model, AbstractNeuralOperator):
        raise TypeError(f"save expects an AbstractNeuralOperator, got {type(model).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, kind=KIND, config=architecture(model), state={"model": state},
                           extra=dict(extra))


def load(path: str | os.PathLike, model: AbstractNeuralOperator, *,
         best: bool = True) -> AbstractNeuralOperator:
    """Load trained weights into ``model`` (built as it was for training); eval mode.

    Reads files of :func:`save` and training checkpoints of :func:`fit` (the best validation
    weights, or the last ones with ``best=False`` or when no validation ran), also those of
    earlier versions, with ``weights_only=True``.

    Parameters
    ----------
    path : str or path-like
    model : AbstractNeuralOperator
        Same class and module structure as the saved one.
    best : bool
        For a training checkpoint: the best validation weights (default) or the last ones.

    Returns
    -------
    AbstractNeuralOperator
        ``model``, with the weights, in eval mode.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        Not a neural-operator checkpoint (corrupted, foreign, newer format), a file without
        weights or with NaN or infinite ones, or saved for another architecture.

    Examples
    --------
    >>> import os, tempfile
    >>> from sciml.neural_operators import DeepONet, save, load
    >>> m = DeepONet(2, 4, [8, 8], [8, 8])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = save(m, os.path.join(d, "m.pt"))
    ...     m2 = load(p, DeepONet(2, 4, [8, 8], [8, 8]))
    >>> all(bool((a == b).all()) for a, b in zip(m.parameters(), m2.parameters()))
    True
    """
    if not isinstance(model, AbstractNeuralOperator):
        raise TypeError(f"model must be an AbstractNeuralOperator, got {type(model).__name__}")
    ckpt = read(path)
    check_architecture(model, ckpt)
    check_keys(ckpt.state, ("model",), ckpt.path, what=_WHAT)
    state = ckpt.state["model"]
    best_state = (ckpt.state.get("best_model") if ckpt.kind == TRAIN_KIND else
                  (ckpt.state.get("task") or {}).get("best_model") if ckpt.kind == FIT_KIND
                  else None)
    if best and best_state is not None:
        state = best_state
    ref = next(iter(model.parameters()), None)
    if ref is not None:
        state = {k: v.to(ref.device) for k, v in state.items()}
    load_weights(model, state, ckpt.path)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, a: Tensor, points: Tensor, *, batch_size: int = 200) -> Tensor:
    """``model(a, points)`` in eval mode, batch by batch, without gradients.

    Parameters
    ----------
    model : AbstractNeuralOperator
    a : Tensor ``(B, n, n)``
        Coefficient fields (as the model's encoder takes them).
    points : Tensor ``(N, d)``
        Query points (e.g. :func:`grid_points`).
    batch_size : int
        Samples per forward pass (memory bound).

    Returns
    -------
    Tensor ``(B, N)`` (or the model's output layout)

    Raises
    ------
    ValueError
        If ``batch_size`` < 1 or ``a`` is empty of dimensions.
    """
    from sciml_inverse import check_int

    check_int("batch_size", batch_size, 1)
    if not isinstance(a, Tensor) or a.ndim < 1:
        raise ValueError("a must be a tensor with a batch dimension")
    was_training = model.training
    model.eval()
    try:
        out = [model(a[i:i + batch_size], points) for i in range(0, a.shape[0], batch_size)]
    finally:
        model.train(was_training)
    if not out:  # an empty batch gives an empty result
        return a.new_empty((0, points.shape[0]))
    return torch.cat(out)
