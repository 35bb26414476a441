"""Training entry point: mini-batch Adam(W) + StepLR, validation selection, checkpoints, resume.

One loop (:func:`fit`) serves every objective (:class:`AbstractObjective`): supervised
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
import tempfile
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from sciml_inverse import check_checkpoint_content, check_int, check_number, check_real

from ._base import AbstractNeuralOperator

#: entries of a training checkpoint that resuming reads (besides the weights "model")
_CKPT_KEYS = ("model_class", "options", "optimizer", "scheduler", "generator", "epoch",
              "best_model", "history", "best_epoch", "best_val")

__all__ = [
    "AbstractObjective", "SupervisedObjective", "TrainOptions", "TrainResult", "fit",
    "relative_l2", "library_version",
]


def library_version() -> str:
    """Installed ``sciml-inverse`` version (``"0.0.0+unknown"`` from a source tree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sciml-inverse")
    except PackageNotFoundError:
        return "0.0.0+unknown"


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
        for name in ("lr", "weight_decay", "gamma"):
            check_real(name, getattr(self, name))
        check_number("grad_clip", self.grad_clip, allow_none=True)
        if self.epochs < 0 or self.batch_size < 1 or self.validate_every < 1:
            raise ValueError(f"need epochs >= 0, batch_size >= 1, validate_every >= 1; got "
                             f"{self.epochs}, {self.batch_size}, {self.validate_every}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 < self.gamma <= 1:
            raise ValueError(f"need lr > 0, weight_decay >= 0, 0 < gamma <= 1; got {self.lr}, "
                             f"{self.weight_decay}, {self.gamma}")
        if self.step_size is not None and self.step_size < 1:
            raise ValueError(f"step_size must be >= 1 or None, got {self.step_size}")


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


def _save_atomic(obj: dict, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@torch.no_grad()
def evaluate(model: nn.Module, a: Tensor, u: Tensor, points: Tensor, *,
             batch_size: int = 200) -> Tensor:
    """Per-sample relative L2 error of ``model(a, points)`` against ``u`` ``(B, n, n)``."""
    model.eval()
    out = [relative_l2(model(a[i:i + batch_size], points), u[i:i + batch_size])
           for i in range(0, a.shape[0], batch_size)]
    model.train()
    return torch.cat(out)


def fit(model: nn.Module, objective: AbstractObjective, train: tuple[Tensor, ...],
        options: TrainOptions | None = None, *,
        validation: tuple[Tensor, Tensor, Tensor] | None = None,
        checkpoint: str | os.PathLike | None = None, resume: bool = True,
        progress: bool = True, stop_after: int | None = None) -> TrainResult:
    r"""Train ``model`` on ``objective`` with Adam(W) and StepLR; keep the best validation weights.

    Parameters
    ----------
    model : AbstractNeuralOperator
        Trained in place; on return it holds the weights of the best validation epoch.
    objective : AbstractObjective
    train : tuple of Tensor
        Training tensors with a common first dimension (``(a,)`` for label-free objectives,
        ``(a, u)`` for supervised ones), sliced into shuffled mini-batches.
    options : TrainOptions, optional
    validation : (a_val, u_val, points), optional
        Labelled validation split: relative L2 of ``model(a_val, points)`` against ``u_val``
        (mean over samples) selects the returned weights. Never pass test data here.
    checkpoint : path, optional
        Written atomically at every validation: model and best weights, optimiser, scheduler,
        generator state, epoch, history, ``options``, model class and library version.
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
    options = TrainOptions() if options is None else options
    if not isinstance(model, AbstractNeuralOperator):
        raise TypeError(f"model must be an AbstractNeuralOperator, got {type(model).__name__}")
    if not isinstance(objective, AbstractObjective):
        raise TypeError(f"objective must be an AbstractObjective, got {type(objective).__name__}")
    if not isinstance(options, TrainOptions):
        raise TypeError(f"options must be a TrainOptions, got {type(options).__name__}")
    if not isinstance(train, tuple) or not all(isinstance(t, Tensor) for t in train):
        raise TypeError(f"train must be a tuple of tensors, e.g. (a, u), got "
                        f"{type(train).__name__}")
    if stop_after is not None:
        check_int("stop_after", stop_after, 1)
    if not train or len({t.shape[0] for t in train}) != 1:
        raise ValueError("train must be a non-empty tuple of tensors with equal first dims")
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
    result = TrainResult()
    best_state = None
    start = 0
    cfg = asdict(options)
    if checkpoint is not None and resume and os.path.exists(checkpoint):
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        check_checkpoint_content(ck, checkpoint, required=_CKPT_KEYS, weights="model")
        if ck.get("model_class") != type(model).__name__ or ck.get("options") != cfg:
            raise ValueError(f"checkpoint {os.fspath(checkpoint)!r} was written for "
                             f"{ck.get('model_class')} with options {ck.get('options')}; pass "
                             f"resume=False to overwrite it")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck["scheduler"] is not None:
            sched.load_state_dict(ck["scheduler"])
        gen.set_state(ck["generator"])
        start = int(ck["epoch"])
        best_state = ck["best_model"]
        result.history = list(ck["history"])
        result.best_epoch, result.best_val = int(ck["best_epoch"]), float(ck["best_val"])
    end = options.epochs if stop_after is None else min(options.epochs, int(stop_after))
    bar = None
    if progress and rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=end, initial=start, desc=type(model).__name__, leave=False)
    t_all = time.perf_counter()
    model.train()
    for epoch in range(start, end):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        nb = 0
        for s in range(0, n, options.batch_size):
            idx = perm[s:s + options.batch_size]
            idx = idx[rank::world] if world > 1 else idx
            batch = tuple(t[idx] for t in train)
            loss, parts = objective.loss(model, batch, gen)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {float(loss)} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1:
                import torch.distributed as dist

                for p in params:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    dist.all_reduce(p.grad)
                    p.grad /= world
            if options.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, options.grad_clip)
            opt.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            nb += 1
        if sched is not None:
            sched.step()
        rec = {"epoch": epoch + 1, **{k: v / max(nb, 1) for k, v in sums.items()},
               "seconds": time.perf_counter() - t0}
        last = epoch + 1 == end
        if validation is not None and ((epoch + 1) % options.validate_every == 0 or last):
            val = float(evaluate(model, *validation).mean())
            rec["val_rel_l2"] = val
            if val < result.best_val:
                result.best_val, result.best_epoch = val, epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        result.history.append(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in rec.items()
                             if k in ("loss", "val_rel_l2")})
        if checkpoint is not None and rank == 0 and (
                (epoch + 1) % options.validate_every == 0 or last):
            _save_atomic({"model": model.state_dict(), "best_model": best_state,
                          "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict() if sched is not None else None,
                          "generator": gen.get_state(), "epoch": epoch + 1,
                          "history": result.history, "best_epoch": result.best_epoch,
                          "best_val": result.best_val, "options": cfg,
                          "model_class": type(model).__name__, "model_repr": repr(model),
                          "library_version": library_version()}, os.fspath(checkpoint))
    if bar is not None:
        bar.close()
    result.seconds = time.perf_counter() - t_all
    result.epochs_done = end
    if best_state is not None and end == options.epochs:
        model.load_state_dict(best_state)
    model.eval()
    return result
