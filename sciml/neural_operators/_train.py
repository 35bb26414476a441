"""Training entry point: mini-batch Adam(W) + StepLR, validation selection, checkpoints, resume.

It runs on :func:`sciml_inverse.fit`, the one training loop of the library (epoch-based,
gradients averaged across ``torchrun`` ranks with ``all_reduce``). :func:`fit` serves every
objective (:class:`AbstractObjective`): supervised
(:class:`SupervisedObjective`), DGNO (:class:`DGNOObjective`) and the strong-form
physics-informed baseline (:class:`StrongFormObjective`). The checkpoint kept at the end is the
one with the lowest *validation* error (relative L2 of ``u`` on a held-out split): the test set
is never used for selection (the reference code selects on test error).

Multi-GPU: under ``torchrun`` with ``torch.distributed`` initialised, each rank takes its slice of
every shuffled mini-batch and the gradients are averaged with ``all_reduce`` before the step
(equivalent to DistributedDataParallel for these models, which are driven through several
sub-modules rather than one ``forward``); only rank 0 writes checkpoints and shows progress.
"""

from __future__ import annotations

import abc
import copy
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_number, check_real

from ._base import AbstractNeuralOperator
from ._checkpoint import KIND, TRAIN_KIND, architecture, read

__all__ = [
    "AbstractObjective", "SupervisedObjective", "TrainOptions", "TrainResult", "fit",
    "relative_l2",
]


def relative_l2(pred: Tensor, target: Tensor) -> Tensor:
    """Per-sample relative L2 error ``‖pred − target‖ / ‖target‖`` over all but the first dim."""
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError("pred and target must be tensors")
    if pred.ndim < 1 or target.ndim < 1 or pred.shape[0] != target.shape[0] or \
            pred[:1].numel() != target[:1].numel():
        raise ValueError(f"pred and target must hold the same samples (equal first dims and "
                         f"values per sample), got shapes {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    p, t = pred.flatten(1), target.flatten(1)
    return (p - t).norm(dim=1) / t.norm(dim=1).clamp_min(1e-30)


class AbstractObjective(abc.ABC):
    """A training objective: the loss of one mini-batch."""

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss of ``batch`` (slices of the training tensors) and named parts."""


@dataclass(frozen=True)
class SupervisedObjective(AbstractObjective):
    """Mean relative L2 error of ``model(a, x)`` against labelled solutions.

    Batches are ``(a (B, n, n), u (B, n, n))``; ``points`` ``(n*n, 2)`` are the grid nodes
    (Cartesian-product layout: the trunk runs once per batch).
    """

    points: Tensor

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        if len(batch) != 2:
            raise ValueError("SupervisedObjective needs training tensors (a, u)")
        a, u = batch
        err = relative_l2(model(a, self.points.to(a)), u).mean()
        return err, {"loss": float(err.detach())}


@dataclass(frozen=True)
class TrainOptions:
    """Optimiser, schedule and bookkeeping of :func:`fit`.

    Attributes
    ----------
    epochs, batch_size : int
    lr : float
    weight_decay : float
        AdamW-style decoupled weight decay when > 0 (reference: 1e-4 for DGNO).
    step_size : int, optional
        StepLR period in epochs (``None``: constant learning rate).
    gamma : float
        StepLR factor.
    seed : int
        Seeds the initial shuffling/test-function generator (the model's init is the caller's).
    validate_every : int
        Epochs between validations (and checkpoint writes).
    grad_clip : float, optional
        Clip the global gradient norm.
    """

    epochs: int = 100
    batch_size: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0
    step_size: int | None = None
    gamma: float = 0.5
    seed: int = 0
    validate_every: int = 1
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 0)
        for name in ("batch_size", "validate_every"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        if self.step_size is not None:
            check_int("step_size", self.step_size, 1)
        check_real("lr", self.lr, positive=True, hint="the Adam learning rate")
        check_real("weight_decay", self.weight_decay, positive=False)
        check_real("gamma", self.gamma, positive=True, maximum=1.0,
                   hint="the learning-rate factor every step_size epochs, in (0, 1]")
        check_number("grad_clip", self.grad_clip, allow_none=True)


@dataclass
class TrainResult:
    """What :func:`fit` did.

    Attributes
    ----------
    history : list of dict
        Per epoch: ``epoch``, mean loss parts, ``val_rel_l2`` (when validated), ``seconds``.
    best_epoch : int
        Epoch whose weights were restored (-1 without validation: the last weights are kept).
    best_val : float
    seconds : float
        Training wall time of this call (excluding a resumed run's earlier time).
    epochs_done : int
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = float("inf")
    seconds: float = 0.0
    epochs_done: int = 0


def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def evaluate(model: nn.Module, a: Tensor, u: Tensor, points: Tensor, *,
             batch_size: int = 200) -> Tensor:
    """Per-sample relative L2 error of ``model(a, points)`` against ``u`` ``(B, n, n)``."""
    model.eval()
    out = [relative_l2(model(a[i:i + batch_size], points), u[i:i + batch_size])
           for i in range(0, a.shape[0], batch_size)]
    model.train()
    return torch.cat(out)


def fit(model: nn.Module, objective: AbstractObjective, train: Any,
        options: TrainOptions | None = None, *,
        validation: Any = None,
        checkpoint: str | os.PathLike | None = None, resume: bool = True,
        progress: bool = True, stop_after: int | None = None) -> TrainResult:
    r"""Train ``model`` on ``objective`` with Adam(W) and StepLR; keep the best validation weights.

    Parameters
    ----------
    model : AbstractNeuralOperator
        Trained in place; on return it holds the weights of the best validation epoch.
    objective : AbstractObjective
    train : DarcyData or tuple of Tensor
        A :class:`sciml.pde.DarcyData` container (its coefficients and, for a
        :class:`SupervisedObjective`, its solutions, in the model's dtype), or training tensors
        with a common first dimension (``(a,)`` for label-free objectives, ``(a, u)`` for
        supervised ones); sliced into shuffled mini-batches.
    options : TrainOptions, optional
    validation : DarcyData or (a_val, u_val, points), optional
        Labelled validation split: relative L2 of ``model(a_val, points)`` against ``u_val``
        (mean over samples) selects the returned weights. Never pass test data here.
    checkpoint : path, optional
        Training state of :func:`sciml_inverse.fit` (the loop this runs on; common checkpoint
        format, ``kind="fit"``), written atomically at every validation: model and best
        weights, optimiser, scheduler, generator and RNG states, epoch, history, ``options``,
        model class and structure, library version. :func:`load` reads the weights back.
    resume : bool
        Continue from an existing ``checkpoint`` (its options must equal ``options``).
    progress : bool
        tqdm progress bar over epochs.
    stop_after : int, optional
        Stop after this many epochs in total (checkpointed), to split a run over several jobs.

    Returns
    -------
    TrainResult

    Raises
    ------
    TypeError
        Wrong types of model, objective or options.
    ValueError
        Training tensors of different lengths or with NaN; a checkpoint of another model or
        with other options.
    FloatingPointError
        If the loss becomes NaN or infinite.
    """
    from sciml.pde import DarcyData
    from sciml_inverse import FitOptions, TrainTask
    from sciml_inverse import fit as run_fit

    options = TrainOptions() if options is None else options
    if not isinstance(model, AbstractNeuralOperator):
        raise TypeError(f"model must be an AbstractNeuralOperator, got {type(model).__name__}")
    if not isinstance(objective, AbstractObjective):
        raise TypeError(f"objective must be an AbstractObjective, got {type(objective).__name__}")
    if not isinstance(options, TrainOptions):
        raise TypeError(f"options must be a TrainOptions, got {type(options).__name__}")
    ref = next(model.parameters())
    if isinstance(train, DarcyData):
        a, u, _ = train.to_torch(ref.dtype, ref.device)
        train = (a, u) if isinstance(objective, SupervisedObjective) else (a,)
    if isinstance(validation, DarcyData):
        validation = validation.to_torch(ref.dtype, ref.device)
    if not isinstance(train, tuple) or not all(isinstance(t, Tensor) for t in train):
        raise TypeError(f"train must be a DarcyData or a tuple of tensors, e.g. (a, u), got "
                        f"{type(train).__name__}")
    if stop_after is not None:
        check_int("stop_after", stop_after, 1)
    if not train or len({t.shape[0] for t in train}) != 1:
        raise ValueError("train must be a DarcyData or a non-empty tuple of tensors with equal "
                         "first dims")
    if any(bool(torch.isnan(t).any()) for t in train):
        raise ValueError("training tensors contain NaN")
    rank, world = _dist()
    n = train[0].shape[0]
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer
    if options.weight_decay > 0:
        opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=options.lr)
    sched = (torch.optim.lr_scheduler.StepLR(opt, options.step_size, options.gamma)
             if options.step_size is not None else None)
    gen = torch.Generator().manual_seed(options.seed)
    cfg = {**architecture(model), "options": asdict(options)}
    end = options.epochs if stop_after is None else min(options.epochs, int(stop_after))
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        old = read(checkpoint, kinds=(TRAIN_KIND, KIND, "fit"))
        if old.kind != "fit":
            raise ValueError(f"checkpoint {os.fspath(checkpoint)!r} is not a training checkpoint "
                             f"of this sciml-inverse (older training layout or weights only); "
                             f"load reads its weights; pass resume=False to start again")

    def check_resume(saved: Mapping[str, Any], epoch: int) -> None:
        if saved.get("model_class") != cfg["model_class"] or saved.get("options") != cfg[
                "options"]:
            raise ValueError(f"checkpoint {os.fspath(checkpoint)!r} was written for "
                             f"{saved.get('model_class')} with options {saved.get('options')}; "
                             f"pass resume=False to overwrite it")

    class Task(TrainTask):
        def __init__(self) -> None:
            self.best_state: dict[str, Tensor] | None = None
            self.best_epoch, self.best_val = -1, float("inf")
            self.sums: dict[str, float] = {}
            self.batches = 0
            self.t0 = time.perf_counter()

        def loss(self, m: nn.Module, batch: tuple[Tensor, ...]):
            loss, parts = objective.loss(m, batch, gen)
            for k, v in parts.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.batches += 1
            return loss

        def on_epoch_end(self, epoch: int) -> dict[str, float]:
            rec = {k: v / max(self.batches, 1) for k, v in self.sums.items()}
            rec["seconds"] = time.perf_counter() - self.t0
            self.sums, self.batches = {}, 0
            if validation is not None and (epoch % options.validate_every == 0 or epoch == end):
                val = float(evaluate(model, *validation).mean())
                rec["val_rel_l2"] = val
                if val < self.best_val:
                    self.best_val, self.best_epoch = val, epoch
                    self.best_state = copy.deepcopy(model.state_dict())
            self.t0 = time.perf_counter()
            return rec

        def state_dict(self) -> dict[str, Any]:
            return {"best_model": self.best_state, "best_epoch": self.best_epoch,
                    "best_val": self.best_val}

        def load_state_dict(self, state: Mapping[str, Any]) -> None:
            self.best_state = state.get("best_model")
            self.best_epoch = int(state.get("best_epoch", -1))
            self.best_val = float(state.get("best_val", float("inf")))

    def batches(epoch: int) -> list[tuple[Tensor, ...]]:
        perm = torch.randperm(n, generator=gen)
        out = []
        for s in range(0, n, options.batch_size):
            idx = perm[s:s + options.batch_size]
            idx = idx[rank::world] if world > 1 else idx
            out.append(tuple(t[idx] for t in train))
        return out

    task = Task()
    fit_options = FitOptions(
        epochs=options.epochs, stop_after=stop_after, checkpoint=checkpoint,
        checkpoint_every=options.validate_every, resume=resume, progress=progress,
        desc=type(model).__name__, grad_clip=options.grad_clip, ddp="grads",
        log_every=1_000_000_000)
    res = run_fit(task, model, opt, batches, fit_options, scheduler=sched, generators=[gen],
                  config=cfg, check_resume=check_resume)
    result = TrainResult()
    result.history = [{k: v for k, v in rec.items() if k != "step"}
                      for rec in res.history["epoch_end"]]
    result.best_epoch, result.best_val = task.best_epoch, task.best_val
    result.seconds = res.wall_time
    result.epochs_done = res.epoch
    if task.best_state is not None and res.epoch == options.epochs:
        model.load_state_dict(task.best_state)
    model.eval()
    return result
