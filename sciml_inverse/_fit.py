"""The one training loop of sciml-inverse: :func:`fit`.

Steps or epochs, a tqdm progress bar, a time limit, atomic checkpoints with exact resume (model,
optimizer, scheduler, gradient scaler, the task's own state, and every RNG: torch CPU and CUDA,
numpy's global one, Python's :mod:`random`, and the generators passed in), optional
DistributedDataParallel under ``torchrun``, and mixed precision (:mod:`._precision`).

The caller says what one step computes -- a function ``step_fn(model, batch) -> loss`` or a
:class:`TrainTask` -- and owns the model, the optimizer and the data; :func:`fit` runs the loop.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ._checkpoint import load_checkpoint, load_weights, save_checkpoint
from ._checks import check_int, check_keys, check_number
from ._precision import PRECISIONS, Precision, resolve_precision

__all__ = ["FitOptions", "FitResult", "TrainTask", "fit", "KIND"]

#: ``kind`` of the checkpoints written by :func:`fit`.
KIND = "fit"

LossOutput = Tensor | tuple[Tensor, Mapping[str, Any]]
Generator = torch.Generator | np.random.Generator


class TrainTask(abc.ABC):
    """What one training step computes, with the state that must survive a resume.

    Subclass it when the step has state beyond model and optimizer (a best-weights record, a
    curriculum, a running statistic); a plain function ``step_fn(model, batch)`` is enough
    otherwise.
    """

    @abc.abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> LossOutput:
        """The loss of one batch: a scalar tensor, or ``(loss, {name: value})`` to log parts.

        ``model`` is the model :func:`fit` was given, wrapped in DistributedDataParallel under
        ``torchrun``. ``batch`` is the next item of the data (the step index without data).
        """

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint (readable with ``weights_only=True``)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore :meth:`state_dict` on resume."""

    def after_step(self, model: nn.Module, step: int) -> None:  # noqa: B027 - optional hook
        """Called after each optimizer step (``step`` steps done), e.g. to project weights."""

    def on_epoch_end(self, epoch: int) -> Mapping[str, float] | None:
        """Called after each epoch of an epoch-based run (e.g. validation); logged."""
        return None


class _FunctionTask(TrainTask):
    def __init__(self, fn: Callable[[nn.Module, Any], LossOutput]) -> None:
        self.fn = fn

    def loss(self, model: nn.Module, batch: Any) -> LossOutput:
        return self.fn(model, batch)


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """How :func:`fit` runs.

    Parameters
    ----------
    steps : int, optional
        Optimizer steps in total (a step-based run). Exactly one of ``steps``/``epochs``.
    epochs : int, optional
        Passes over the data in total (an epoch-based run; the data must be re-iterable or a
        callable ``epoch -> iterable``).
    precision : {"fp32", "bf16", "fp16", "auto"}
        Mixed precision (see :func:`resolve_precision`): float32 weights, autocast per
        operation; an unsupported choice falls back to float32 with a note in the result.
    channels_last : bool, optional
        Use the channels-last memory format for the model and 4-D batches; by default on
        exactly when bfloat16 runs on a CPU (where oneDNN's bfloat16 convolutions want it).
    grad_clip : float, optional
        Clip the global gradient norm.
    time_limit : float, optional
        Seconds for this call; the run stops (checkpointed) when it is exceeded. Epoch-based
        runs stop at an epoch end.
    stop_after : int, optional
        Stop after this many steps (epochs) in total, checkpointed, to split a run over jobs.
    checkpoint : path, optional
        File of the training state (common checkpoint format, ``kind="fit"``), written
        atomically every ``checkpoint_every`` steps (epochs), every ``checkpoint_seconds`` and
        when the call ends.
    checkpoint_every : int, optional
    checkpoint_seconds : float, optional
    resume : bool
        Continue from an existing ``checkpoint`` (default); ``False`` overwrites it.
    seed : int, optional
        Seed torch (CPU and CUDA), numpy's global generator and :mod:`random` at the start of a
        fresh run (not on resume: the saved states are restored).
    log_every : int
        Steps between history records (means over the window).
    progress : bool
        A tqdm progress bar (rank 0 only).
    desc : str
        Its label.
    ddp : bool or "grads"
        When ``torch.distributed`` is initialized with more than one process: ``True`` wraps
        the model in DistributedDataParallel; ``"grads"`` averages the gradients with
        ``all_reduce`` after the backward pass instead (for models driven through several
        sub-modules rather than one ``forward``); ``False`` does neither.
    train_mode : bool
        Put the model in training mode first (default); ``False`` leaves its mode (e.g. to
        train a head on a frozen model kept in eval mode).
    """

    steps: int | None = None
    epochs: int | None = None
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    channels_last: bool | None = None
    grad_clip: float | None = None
    time_limit: float | None = None
    stop_after: int | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int | None = None
    checkpoint_seconds: float | None = None
    resume: bool = True
    seed: int | None = None
    log_every: int = 1
    progress: bool = True
    desc: str = "fit"
    ddp: bool | Literal["grads"] = True
    train_mode: bool = True

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"give exactly one of steps and epochs, got steps={self.steps!r}, "
                             f"epochs={self.epochs!r}")
        check_int("steps" if self.steps is not None else "epochs",
                  self.steps if self.steps is not None else self.epochs, 0)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("stop_after", "checkpoint_every"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), 1)
        check_int("log_every", self.log_every, 1)
        if self.seed is not None:
            check_int("seed", self.seed, 0)
        for name in ("grad_clip", "time_limit", "checkpoint_seconds"):
            check_number(name, getattr(self, name), allow_none=True)
        if self.ddp not in (True, False, "grads"):
            raise ValueError(f"ddp must be True, False or 'grads', got {self.ddp!r}")
        if self.channels_last not in (None, True, False):
            raise ValueError(f"channels_last must be a bool or None, got {self.channels_last!r}")

    @property
    def by_epoch(self) -> bool:
        return self.epochs is not None

    @property
    def total(self) -> int:
        return int(self.epochs if self.epochs is not None else self.steps)  # type: ignore[arg-type]


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes
    ----------
    step : int
        Optimizer steps done in total (resumed runs included).
    epoch : int
        Epochs done in total (0 for step-based runs).
    history : dict of list
        ``"step"`` and the mean of every logged value over each ``log_every`` window; for
        epoch-based runs also ``"epoch_end"``: one dict per epoch (step, epoch, the values of
        :meth:`TrainTask.on_epoch_end`).
    stopped : str
        ``"done"``, ``"stop_after"`` or ``"time_limit"``.
    precision : Precision
        What ran (see its ``note`` for a fallback).
    wall_time, total_wall_time : float
        Seconds in this call, and over all calls of the run.
    resumed_from : int
        The step the call started from (0 for a fresh run).
    """

    step: int
    epoch: int
    history: dict[str, list[Any]]
    stopped: str
    precision: Precision
    wall_time: float
    total_wall_time: float
    resumed_from: int = 0


# ------------------------------------------------------------------------------------ RNG
def _rng_state(generators: Sequence[Generator]) -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002 - the global RNG is what we checkpoint
    state: dict[str, Any] = {
        "torch": torch.random.get_rng_state(),
        "cuda": (torch.cuda.get_rng_state_all() if torch.cuda.is_available()
                 and torch.cuda.is_initialized() else []),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]),
                  "mt": torch.from_numpy(np_state[1].astype(np.int64))},
        "python": random.getstate(),
        "generators": [g.get_state() if isinstance(g, torch.Generator)
                       else g.bit_generator.state for g in generators],
    }
    return state


def _set_rng_state(state: Mapping[str, Any], generators: Sequence[Generator]) -> None:
    torch.random.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["mt"].numpy().astype(np.uint32),  # noqa: NPY002
                         n["pos"], n["has_gauss"], n["cached_gaussian"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    saved = state["generators"]
    if len(saved) != len(generators):
        raise ValueError(f"the checkpoint holds {len(saved)} generator state(s), fit was given "
                         f"{len(generators)} generator(s); pass the same generators")
    for g, s in zip(generators, saved, strict=True):
        if isinstance(g, torch.Generator):
            g.set_state(s)
        else:
            g.bit_generator.state = s


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)  # CPU and every CUDA device
    np.random.seed(seed)  # noqa: NPY002 - seeds the legacy global RNG users may draw from
    random.seed(seed)


# ------------------------------------------------------------------------------ distributed
def _dist() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(obj: Any, world: int) -> list[Any]:
    if world == 1:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _any(flag: bool, world: int, device: torch.device) -> bool:
    """``flag`` of any rank (time-based decisions are taken by all ranks together)."""
    if world == 1:
        return flag
    import torch.distributed as dist

    t = torch.tensor([float(flag)], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


# ------------------------------------------------------------------------------------ data
def _channels_last(batch: Any) -> Any:
    if isinstance(batch, Tensor):
        return batch.contiguous(memory_format=torch.channels_last) if batch.ndim == 4 else batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_channels_last(b) for b in batch)
    return batch


def _epoch_batches(data: Any, epoch: int) -> Iterable[Any]:
    if callable(data):
        return data(epoch)
    return data


def _split(out: LossOutput) -> tuple[Tensor, dict[str, Any]]:
    if isinstance(out, tuple):
        loss, logs = out
        logs = dict(logs)
    else:
        loss, logs = out, {}
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise TypeError(f"the step must return a scalar tensor (or (loss, logs)), got "
                        f"{type(loss).__name__}")
    return loss, logs


def _float(v: Any) -> float:
    return float(v.detach().float()) if isinstance(v, Tensor) else float(v)


# ------------------------------------------------------------------------------------ fit
def fit(task: TrainTask | Callable[[nn.Module, Any], LossOutput], model: nn.Module,
        optimizer: torch.optim.Optimizer, data: Any = None, options: FitOptions | None = None,
        *, scheduler: Any = None, generators: Sequence[Generator] = (),
        config: Mapping[str, Any] | None = None,
        check_resume: Callable[[Mapping[str, Any], int], None] | None = None) -> FitResult:
    """Train ``model``: the one training loop of sciml-inverse.

    Each step takes the next batch, computes ``task.loss(model, batch)`` (or
    ``task(model, batch)``) under the chosen precision, back-propagates (through a gradient
    scaler for float16), clips, steps the optimizer and, for step-based runs, the scheduler.

    Parameters
    ----------
    task : TrainTask or callable
        ``(model, batch) -> loss`` or ``(loss, {name: value})``.
    model : torch.nn.Module
        Trained in place (float32 weights whatever the precision). Under ``torchrun`` it is
        wrapped in DistributedDataParallel for the step.
    optimizer : torch.optim.Optimizer
    data : iterable, callable or None
        Step-based runs: an iterable of batches (restarted when exhausted), a callable
        ``step -> batch``, or ``None`` (the batch is the step index). Epoch-based runs: a
        re-iterable (a list, a DataLoader) or a callable ``epoch -> iterable``. For an exact
        resume the data must come from the RNGs :func:`fit` checkpoints (a callable drawing
        with a generator in ``generators``, or the global torch/numpy RNG), or be a pure
        function of the step (epoch).
    options : FitOptions
        ``steps`` or ``epochs`` is required.
    scheduler : optional
        A learning-rate scheduler, stepped after every optimizer step (step-based runs) or
        every epoch (epoch-based runs); checkpointed.
    generators : sequence of torch.Generator or numpy.random.Generator
        Generators whose states are checkpointed and restored with the global RNGs.
    config : mapping, optional
        What the run trains (model and training configuration, plain values): stored in the
        checkpoint; resuming with another ``config`` is an error.
    check_resume : callable, optional
        ``(saved_config, step_done) -> None``, raising ``ValueError`` if the run cannot
        continue from the checkpoint; replaces the equality test of ``config`` (e.g. to allow
        another schedule for the steps not done yet).

    Returns
    -------
    FitResult

    Raises
    ------
    TypeError
        If ``options`` is missing or not a :class:`FitOptions`, ``task`` is neither a
        :class:`TrainTask` nor callable, or the step returns something else than a scalar.
    ValueError
        A checkpoint of another run (``config``, world size, number of generators), a
        step-based iterable that is empty.
    FloatingPointError
        If the loss becomes NaN or infinite (the last checkpoint is unaffected).

    Examples
    --------
    >>> import torch
    >>> from sciml_inverse import FitOptions, fit
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = torch.nn.Linear(3, 1)
    >>> x, y = torch.randn(64, 3), torch.randn(64, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> res = fit(lambda m, i: ((m(x) - y) ** 2).mean(), model, opt,
    ...           options=FitOptions(steps=20, progress=False))
    >>> res.step, res.stopped
    (20, 'done')
    """
    from tqdm.auto import tqdm

    if options is None or not isinstance(options, FitOptions):
        raise TypeError(f"options must be a FitOptions (with steps or epochs), got "
                        f"{type(options).__name__}")
    if isinstance(task, TrainTask):
        the_task = task
    elif callable(task):
        the_task = _FunctionTask(task)
    else:
        raise TypeError(f"task must be a TrainTask or a callable (model, batch) -> loss, got "
                        f"{type(task).__name__}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    generators = list(generators)
    for g in generators:
        if not isinstance(g, (torch.Generator, np.random.Generator)):
            raise TypeError(f"generators must be torch.Generator or numpy.random.Generator, got "
                            f"{type(g).__name__}")
    cfg = dict(config or {})
    rank, world = _dist()
    ref = next(iter(model.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    prec = resolve_precision(options.precision, device)
    channels_last = (prec.name == "bf16" and prec.device_type == "cpu"
                     if options.channels_last is None else options.channels_last)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    scaler = torch.amp.GradScaler(prec.device_type) if prec.scaler else None
    by_epoch = options.by_epoch
    end = options.total if options.stop_after is None else min(options.stop_after,
                                                                 options.total)

    step, epoch, prior_wall = 0, 0, 0.0
    history: dict[str, list[Any]] = {"step": []}
    if by_epoch:
        history["epoch_end"] = []
    path = options.checkpoint
    resumed = False
    if path is not None and options.resume and os.path.exists(path):
        ckpt = load_checkpoint(path, kind=KIND, what="training checkpoint", stacklevel=2)
        check_keys(ckpt.state, ("model", "optimizer", "rng"), path, what="training checkpoint")
        check_keys(ckpt.extra, ("step", "epoch", "history", "total_wall_time", "world_size"),
                   path, what="training checkpoint")
        if check_resume is not None:
            check_resume(ckpt.config.get("task") or {}, int(ckpt.extra["step"]))
        elif ckpt.config.get("task") != cfg:
            raise ValueError(f"checkpoint {os.fspath(path)!r} was written for the configuration "
                             f"{ckpt.config.get('task')!r}, this run has {cfg!r}; use the same "
                             f"configuration or resume=False")
        if ckpt.config.get("by_epoch") != by_epoch:
            raise ValueError(f"checkpoint {os.fspath(path)!r} is of an "
                             f"{'epoch' if ckpt.config.get('by_epoch') else 'step'}-based run")
        st, ex = ckpt.state, ckpt.extra
        if int(ex["world_size"]) != world:
            raise ValueError(f"checkpoint {os.fspath(path)!r} was written by {ex['world_size']} "
                             f"process(es), this run has {world}; resume with the same number")
        load_weights(model, st["model"], path)
        optimizer.load_state_dict(st["optimizer"])
        if scheduler is not None and st.get("scheduler") is not None:
            scheduler.load_state_dict(st["scheduler"])
        if scaler is not None and st.get("scaler"):
            scaler.load_state_dict(st["scaler"])
        the_task.load_state_dict(st.get("task") or {})
        _set_rng_state(st["rng"][rank], generators)
        step, epoch = int(ex["step"]), int(ex["epoch"])
        history = {k: list(v) for k, v in ex["history"].items()}
        prior_wall = float(ex["total_wall_time"])
        resumed = True
    elif options.seed is not None:
        _seed_all(options.seed + rank)
    start_step = step

    runner: nn.Module = model
    if world > 1 and options.ddp is True:
        from torch.nn.parallel import DistributedDataParallel

        runner = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    t0 = time.perf_counter()
    last_save = t0
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def save() -> None:
        nonlocal last_save
        rngs = _gather(_rng_state(generators), world)
        if path is not None and rank == 0:
            save_checkpoint(
                path, kind=KIND, config={"task": cfg, "by_epoch": by_epoch},
                state={"model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                       "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict() if scheduler is not None else None,
                       "scaler": scaler.state_dict() if scaler is not None else None,
                       "task": the_task.state_dict(), "rng": rngs},
                extra={"step": step, "epoch": epoch, "history": history,
                       "total_wall_time": prior_wall + time.perf_counter() - t0,
                       "world_size": world, "precision": prec.name})
        _barrier(world)
        last_save = time.perf_counter()

    window: dict[str, list[float]] = {}

    def average_grads() -> None:
        if world == 1 or options.ddp != "grads":
            return
        import torch.distributed as dist

        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= world

    def one_step(batch: Any) -> None:
        nonlocal step
        if channels_last:
            batch = _channels_last(batch)
        with prec.autocast():
            loss, logs = _split(the_task.loss(runner, batch))
        value = _float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{options.desc}: the loss became {value} at step {step + 1}; lower the learning "
                f"rate or check the data (the last checkpoint is unaffected)")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            average_grads()
            if options.grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, options.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            average_grads()
            if options.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, options.grad_clip)
            optimizer.step()
        if scheduler is not None and not by_epoch:
            scheduler.step()
        step += 1
        the_task.after_step(model, step)
        for k, v in {"loss": value, **logs}.items():
            window.setdefault(k, []).append(v if isinstance(v, float) else _float(v))
        if step % options.log_every == 0:
            flush()

    def flush() -> None:
        nonlocal window
        if not window:
            return
        history["step"].append(step)
        for k, vals in window.items():
            history.setdefault(k, []).append(sum(vals) / len(vals))
        window = {}
        bar.set_postfix({k: f"{history[k][-1]:.4g}" for k in window_keys()}, refresh=False)

    def window_keys() -> list[str]:
        return [k for k in history if k not in ("step", "epoch_end")][:4]

    def time_up() -> bool:
        return options.time_limit is not None and _any(
            time.perf_counter() - t0 > options.time_limit, world, device)

    def save_due(count: int) -> bool:
        every = options.checkpoint_every is not None and count % options.checkpoint_every == 0
        timed = options.checkpoint_seconds is not None and _any(
            time.perf_counter() - last_save > options.checkpoint_seconds, world, device)
        return every or timed

    stopped = "done" if end == options.total else "stop_after"
    done = epoch if by_epoch else step
    bar = tqdm(total=end, initial=done, disable=not options.progress or rank != 0,
               desc=options.desc, dynamic_ncols=True, mininterval=2.0)
    if options.train_mode:
        model.train()
    try:
        if not by_epoch:
            it: Iterator[Any] | None = None
            if data is not None and not callable(data):
                it = iter(data)
                for _ in range(step):  # a resumed run continues where the iterable was
                    it = _advance(it, data)
            while step < end:
                if time_up():
                    stopped = "time_limit"
                    break
                if data is None:
                    batch = step
                elif callable(data):
                    batch = data(step)
                else:
                    batch, it = _next(it, data)
                one_step(batch)
                bar.update(1)
                if step < end and save_due(step):
                    save()
        else:
            while epoch < end:
                if time_up():
                    stopped = "time_limit"
                    break
                for batch in _epoch_batches(data, epoch):
                    one_step(batch)
                flush()
                if scheduler is not None:
                    scheduler.step()
                epoch += 1
                record = the_task.on_epoch_end(epoch)
                history["epoch_end"].append({"epoch": epoch, "step": step,
                                             **{k: float(v) for k, v in (record or {}).items()}})
                bar.update(1)
                if epoch < end and save_due(epoch):
                    save()
        flush()
    finally:
        bar.close()
    save()
    wall = time.perf_counter() - t0
    return FitResult(step=step, epoch=epoch, history=history, stopped=stopped, precision=prec,
                     wall_time=wall, total_wall_time=prior_wall + wall,
                     resumed_from=start_step if resumed else 0)


def _next(it: Iterator[Any] | None, data: Iterable[Any]) -> tuple[Any, Iterator[Any]]:
    if it is None:
        it = iter(data)
    try:
        return next(it), it
    except StopIteration:
        it = iter(data)
        try:
            return next(it), it
        except StopIteration:
            raise ValueError("the data iterable is empty") from None


def _advance(it: Iterator[Any], data: Iterable[Any]) -> Iterator[Any]:
    return _next(it, data)[1]
