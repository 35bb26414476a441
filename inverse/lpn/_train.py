"""Training entry point for LPNs: L1 warm-up, then proximal matching with a halving γ."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sciml_inverse import FitOptions, TrainTask, fit, full_precision, upcast
from sciml_inverse import check_int as _int
from sciml_inverse import check_number as _num
from sciml_inverse._deprecation import renamed_arguments

from ._checkpoint import check_model_matches, config_to_dict, read_checkpoint
from ._loss import ProximalMatchingLoss, proximal_matching_schedule
from ._lpn import LPN

__all__ = ["TrainPhase", "LPNTrainOptions", "TrainHistory", "train_lpn", "standard_phases"]

_LOSSES = ("l1", "l2", "pm")


@renamed_arguments(num_steps="steps")
@dataclasses.dataclass(frozen=True)
class TrainPhase:
    """One phase of LPN training: a loss, a number of Adam steps and a learning rate.

    Parameters
    ----------
    loss : {"l1", "l2", "pm"}
        Mean absolute error (posterior-median denoiser), mean squared error (MMSE denoiser), or
        :class:`ProximalMatchingLoss` (MAP denoiser as γ → 0).
    steps : int
        Adam steps of the phase (the former name ``num_steps`` still works, keyword and
        attribute, with a ``DeprecationWarning``).
    lr : float
        Adam learning rate for the whole phase.
    gamma, gamma_rms : float, optional
        For ``loss="pm"`` exactly one: γ on the summed or on the RMS scale.
    normalized : bool, default False
        For ``loss="pm"``: the γ-normalized loss (``ProximalMatchingLoss(normalized=True)``,
        times γ²/n: same minimiser, a gradient scale that does not jump when γ halves).

    Raises
    ------
    ValueError
        Unknown loss, γ missing for ``"pm"`` or given for another loss, non-positive values.
    """

    loss: str
    steps: int
    lr: float
    gamma: float | None = None
    gamma_rms: float | None = None
    normalized: bool = False

    def __post_init__(self) -> None:
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        _int("steps", self.steps, 1)
        _num("lr", self.lr)
        _num("gamma", self.gamma, allow_none=True)
        _num("gamma_rms", self.gamma_rms, allow_none=True)
        has = (self.gamma is not None) + (self.gamma_rms is not None)
        if self.loss == "pm" and has != 1:
            raise ValueError(f"a proximal-matching phase needs exactly one of gamma, gamma_rms; "
                             f"got gamma={self.gamma!r}, gamma_rms={self.gamma_rms!r}")
        if self.loss != "pm" and has:
            raise ValueError(f"gamma/gamma_rms only apply to loss='pm', not {self.loss!r}")
        if not isinstance(self.normalized, bool):
            raise TypeError(f"normalized must be a bool, got {type(self.normalized).__name__}")
        if self.loss != "pm" and self.normalized:
            raise ValueError(f"normalized only applies to loss='pm', not {self.loss!r}")

    def loss_fn(self) -> Callable[[Tensor, Tensor], Tensor]:
        """The loss ``(x_hat, x) -> scalar`` of this phase."""
        if self.loss == "l1":
            return torch.nn.functional.l1_loss
        if self.loss == "l2":
            return torch.nn.functional.mse_loss
        return ProximalMatchingLoss(self.gamma, gamma_rms=self.gamma_rms,
                                    normalized=self.normalized)

    def describe(self) -> str:
        if self.loss != "pm":
            return self.loss
        g = f"γ={self.gamma}" if self.gamma is not None else f"γ_rms={self.gamma_rms}"
        return f"pm({g}{', normalized' if self.normalized else ''})"


@renamed_arguments(num_steps_l1="steps_l1", num_steps_pm="steps_pm")
def standard_phases(*, steps_l1: int = 20_000, steps_pm: int = 20_000,
                    lr_l1: float = 1e-3, lr_pm: float = 1e-4, num_stages: int = 4,
                    gamma_min: float | None = None, gamma_min_rms: float | None = None,
                    normalized: bool = False) -> tuple[TrainPhase, ...]:
    """The reference schedule (``lpn/train.py``): L1 warm-up, then proximal matching stages.

    ``steps_pm`` is split into ``num_stages`` equal stages with
    :math:`\\gamma_s = \\gamma_{\\min} 2^{S-1-s}` (:func:`proximal_matching_schedule`). γ is given
    on the summed scale (``gamma_min``) or on the RMS scale (``gamma_min_rms``); with neither, the
    reference default :math:`\\gamma_{\\min} = 0.08\\sqrt n` is used, i.e. ``gamma_min_rms=0.08``.
    ``normalized=True`` uses the γ-normalized loss in every stage (see :class:`TrainPhase`).

    Raises
    ------
    ValueError
        Both γ scales given, ``steps_pm`` not divisible by ``num_stages``, bad numbers.

    Notes
    -----
    The former keywords ``num_steps_l1``/``num_steps_pm`` still work, with a
    ``DeprecationWarning``.

    Examples
    --------
    >>> [p.describe() for p in standard_phases(steps_l1=10, steps_pm=8, num_stages=2,
    ...                                        gamma_min_rms=0.1)]
    ['l1', 'pm(γ_rms=0.2)', 'pm(γ_rms=0.1)']
    """
    if gamma_min is not None and gamma_min_rms is not None:
        raise ValueError("give at most one of gamma_min and gamma_min_rms")
    if gamma_min is None and gamma_min_rms is None:
        gamma_min_rms = 0.08
    _int("steps_l1", steps_l1, 0)
    _int("steps_pm", steps_pm, 0)
    _int("num_stages", num_stages, 1)
    if steps_pm % num_stages:
        raise ValueError(f"steps_pm={steps_pm} must be divisible by "
                         f"num_stages={num_stages}")
    phases = [TrainPhase("l1", steps_l1, lr_l1)] if steps_l1 else []
    per = steps_pm // num_stages
    if per:
        gmin = gamma_min if gamma_min is not None else gamma_min_rms
        for g in proximal_matching_schedule(gmin, num_stages):  # type: ignore[arg-type]
            if gamma_min is not None:
                phases.append(TrainPhase("pm", per, lr_pm, gamma=g, normalized=normalized))
            else:
                phases.append(TrainPhase("pm", per, lr_pm, gamma_rms=g, normalized=normalized))
    return tuple(phases)


@dataclasses.dataclass(frozen=True)
class LPNTrainOptions:
    """Options of :func:`train_lpn`.

    Parameters
    ----------
    phases : tuple of TrainPhase
        The schedule, run in order with one Adam optimizer (its state carries over between
        phases, as in the reference). Default: :func:`standard_phases` (20k L1 steps at 1e-3,
        then 4 × 5k proximal-matching steps at 1e-4 with γ_rms = 0.64, 0.32, 0.16, 0.08).
    batch_size : int
    sigma_noise : float
        Training noise: ``y = x + sigma_noise * ε``, ε ~ N(0, I).
    seed : int
        Seed of the generator used for batches and noise (the global torch RNG is not used).
    checkpoint_every : int
        Steps between checkpoints (when ``train_lpn`` has a ``checkpoint`` path; one is always
        written at the end).
    log_every : int
        Steps between entries of the returned :class:`TrainHistory` (mean loss of the window).
    grad_clip : float, optional
        Clip the global gradient norm to this value (``FitOptions.grad_clip``); default none.
    reset_optimizer : bool, default False
        Reset Adam's moment estimates at the first step of every phase after the first. The
        reference keeps them (default). Each halving of γ multiplies the gradient of the raw
        proximal-matching loss by about 4 while Adam's second-moment estimate remembers ~1000
        steps, so without a reset the effective step grows to ~4× the learning rate in the late
        stages (see ``docs/guide/lpn.rst``, *Why the GPU run diverged*); with it the first steps
        of a phase are bias-corrected from that phase's own gradients. Exact on resume.

    Raises
    ------
    ValueError
        Empty schedule or non-positive numbers.

    Examples
    --------
    >>> cfg = LPNTrainOptions(phases=standard_phases(steps_l1=100, steps_pm=200),
    ...                      batch_size=16, sigma_noise=0.1)
    >>> cfg.steps
    300
    """

    phases: tuple[TrainPhase, ...] = dataclasses.field(default_factory=standard_phases)
    batch_size: int = 64
    sigma_noise: float = 0.1
    seed: int = 0
    checkpoint_every: int = 1000
    log_every: int = 100
    grad_clip: float | None = None
    reset_optimizer: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.phases, list):
            object.__setattr__(self, "phases", tuple(self.phases))
        if not isinstance(self.phases, tuple) or not self.phases or not all(
                isinstance(p, TrainPhase) for p in self.phases):
            raise ValueError(f"phases must be a non-empty tuple of TrainPhase, got {self.phases!r}")
        _int("batch_size", self.batch_size, 1)
        _num("sigma_noise", self.sigma_noise, positive=False)
        _int("seed", self.seed, 0)
        _int("checkpoint_every", self.checkpoint_every, 1)
        _int("log_every", self.log_every, 1)
        _num("grad_clip", self.grad_clip, allow_none=True)
        if not isinstance(self.reset_optimizer, bool):
            raise TypeError(f"reset_optimizer must be a bool, got "
                            f"{type(self.reset_optimizer).__name__}")

    @property
    def steps(self) -> int:
        """Total number of optimizer steps."""
        return sum(p.steps for p in self.phases)

    @property
    def num_steps(self) -> int:
        """Deprecated alias of :attr:`steps`."""
        import warnings

        warnings.warn("LPNTrainOptions.num_steps is deprecated, use .steps", DeprecationWarning,
                      stacklevel=2)
        return self.steps

    def phase_at(self, step: int) -> int:
        """Index of the phase that runs optimizer step ``step`` (0-based)."""
        end = 0
        for i, p in enumerate(self.phases):
            end += p.steps
            if step < end:
                return i
        raise ValueError(f"step {step} is past the schedule ({self.steps} steps)")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["phases"] = [dataclasses.asdict(p) for p in self.phases]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LPNTrainOptions:
        d = dict(d)
        # files written before the naming scheme store each phase's "num_steps"
        d["phases"] = tuple(TrainPhase(**{("steps" if k == "num_steps" else k): v
                                          for k, v in p.items()}) for p in d["phases"])
        return cls(**d)


@dataclasses.dataclass(frozen=True)
class TrainHistory:
    """What :func:`train_lpn` returns.

    Attributes
    ----------
    step : list of int
        Step count at the end of each logging window.
    loss : list of float
        Mean training loss over the window.
    phase : list of int
        Phase index of the window's last step.
    final_step : int
    wall_time : float
        Seconds spent in this call (not counting earlier, resumed runs).
    """

    step: list[int]
    loss: list[float]
    phase: list[int]
    final_step: int
    wall_time: float


def _schedule_until(cfg: LPNTrainOptions, step: int) -> list[tuple]:
    """The schedule's (loss, lr, γ, γ_rms, normalized, steps) over the first ``step`` steps."""
    out, left = [], step
    for p in cfg.phases:
        if left <= 0:
            break
        n = min(left, p.steps)
        out.append((p.loss, p.lr, p.gamma, p.gamma_rms, p.normalized, n))
        left -= n
    return out


def _check_data(model: LPN, data: Any, cfg: LPNTrainOptions) -> None:
    if isinstance(data, Tensor):
        if not data.is_floating_point():
            raise TypeError(f"train_lpn: data must be a floating tensor, got {data.dtype}")
        if data.ndim != model.event_ndim + 1 or data.shape[0] < 1:
            raise ValueError(f"train_lpn: data must have shape (N, *sample_shape) with "
                             f"{model.event_ndim} sample dimensions, got {tuple(data.shape)}")
        model._check_event(tuple(data.shape[1:]), "train_lpn: data")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("train_lpn: data contains NaN or infinite values")
    elif not callable(data):
        raise TypeError(f"train_lpn: data must be a tensor (N, ...) of clean samples or a callable "
                        f"(batch_size, generator) -> batch, got {type(data).__name__}")


def _sample(data: Any, cfg: LPNTrainOptions, gen: torch.Generator, model: LPN,
            device: torch.device, dtype: torch.dtype, check: bool) -> Tensor:
    if isinstance(data, Tensor):
        idx = torch.randint(data.shape[0], (cfg.batch_size,), generator=gen)
        x = data[idx.to(data.device)]
    else:
        x = data(cfg.batch_size, gen)
        if not isinstance(x, Tensor) or x.ndim != model.event_ndim + 1 or (
                x.shape[0] != cfg.batch_size):
            raise ValueError(f"train_lpn: the data callable must return a tensor of shape "
                             f"({cfg.batch_size}, *sample_shape), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
        if check:
            model._check_event(tuple(x.shape[1:]), "train_lpn: data callable output")
            if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
                raise ValueError("train_lpn: the data callable returned a non-floating tensor or "
                                 "NaN/inf values")
    return x.to(device=device, dtype=dtype)


def train_lpn(model: LPN, data: Tensor | Callable[[int, torch.Generator], Tensor],
              config: LPNTrainOptions | None = None, *,
              checkpoint: str | os.PathLike | None = None, resume: bool = True,
              device: torch.device | str | None = None, stop_after: int | None = None,
              progress: bool = True,
              on_phase_end: Callable[[int, LPN], None] | None = None,
              precision: str = "fp32") -> TrainHistory:
    """Train an :class:`LPN` as a denoiser: L1 warm-up, then proximal matching.

    Every step draws clean samples ``x`` (``batch_size`` of them), noisy inputs
    ``y = x + sigma_noise·ε``, and takes one Adam step on the current phase's loss of
    ``(lpn(y), x)`` at the phase's learning rate, followed by ``model.project_()`` (z-path
    weights clamped to ≥ 0). One optimizer runs through all phases (reference behaviour).

    Randomness comes from one CPU ``torch.Generator`` seeded with ``config.seed`` (batches and
    noise), so runs are reproducible and device-independent in their data; a resumed run
    continues exactly (the generator state, optimizer state and step are checkpointed).

    Parameters
    ----------
    model : LPN
        Trained in place (moved to ``device``).
    data : Tensor or callable
        Either a tensor ``(N, *sample_shape)`` of clean samples (batches drawn uniformly with
        replacement; it may stay on the CPU) or a callable ``(batch_size, generator) -> Tensor``
        returning a clean batch ``(batch_size, *sample_shape)`` (it must draw its randomness
        from ``generator`` for reproducibility).
    config : LPNTrainOptions, optional
        Default ``LPNTrainOptions()``.
    checkpoint : path, optional
        Checkpoint file of :func:`sciml_inverse.fit` (common format, ``kind="fit"``): written
        atomically every ``config.checkpoint_every`` steps and at the end, with the model
        configuration and weights, library version, optimizer state, step, generator and RNG
        states, training configuration and history. :func:`load_lpn` reads its weights.
    resume : bool
        If ``checkpoint`` exists, continue from it (default). Its model configuration must equal
        ``model.config`` and its schedule must agree with ``config`` on the steps already done.
        With ``resume=False`` an existing file is overwritten by a fresh run.
    device : torch.device or str, optional
        Where to train; default: the model's device.
    stop_after : int, optional
        Stop (and checkpoint) once this many steps are done in total, e.g. to split training
        over several jobs.
    progress : bool
        Show a tqdm progress bar.
    on_phase_end : callable, optional
        ``on_phase_end(phase_index, model)`` after the last step of each phase.
    precision : {"fp32", "bf16", "fp16", "auto"}
        Mixed precision of :func:`sciml_inverse.fit` (the loss is computed in float32; an
        unsupported choice runs in float32).

    Returns
    -------
    TrainHistory

    Raises
    ------
    TypeError
        ``model`` not an :class:`LPN`, bad ``data`` type, wrong config type.
    ValueError
        Data of the wrong shape or with NaN, a checkpoint for another model configuration or
        an incompatible schedule, bad ``stop_after``.
    FloatingPointError
        If the loss becomes NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> from inverse.lpn import LPN, ImageLPNConfig, LPNTrainOptions, standard_phases, train_lpn
    >>> lpn = LPN(ImageLPNConfig(in_channels=1, hidden=8, num_layers=2))
    >>> cfg = LPNTrainOptions(phases=standard_phases(steps_l1=2, steps_pm=2, num_stages=2),
    ...                      batch_size=4, sigma_noise=0.1)
    >>> hist = train_lpn(lpn, torch.rand(10, 1, 12, 12), cfg, progress=False)
    >>> hist.final_step
    4
    """
    if not isinstance(model, LPN):
        raise TypeError(f"train_lpn trains an LPN, got {type(model).__name__}")
    config = LPNTrainOptions() if config is None else config
    if not isinstance(config, LPNTrainOptions):
        raise TypeError(f"config must be an LPNTrainOptions, got {type(config).__name__}")
    total = config.steps
    if stop_after is not None:
        _int("stop_after", stop_after, 1)
    _check_data(model, data, config)
    ref = next(model.parameters())
    device = ref.device if device is None else torch.device(device)
    model.to(device)
    dtype = ref.dtype

    gen = torch.Generator().manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.phases[0].lr)
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    task_config = {"model_config": config_to_dict(model.config),
                   "train_config": config.to_dict()}
    if ckpt_path is not None and resume and ckpt_path.exists():
        ckpt = read_checkpoint(ckpt_path, map_location="cpu")
        check_model_matches(model, ckpt, ckpt_path)
        if ckpt.extra.get("train") is None:
            raise ValueError(f"{ckpt_path} holds weights only (save_lpn), not a training state; "
                             f"pass resume=False to start a new run")
        if ckpt.kind != "fit":
            raise ValueError(f"{ckpt_path} is a training checkpoint of an older sciml-inverse; "
                             f"it cannot be resumed (load_lpn reads its weights): pass "
                             f"resume=False to start again")

    def check_resume(saved: Mapping[str, Any], step: int) -> None:
        saved_cfg = LPNTrainOptions.from_dict(saved["train_config"])
        if (saved_cfg.batch_size, saved_cfg.sigma_noise, saved_cfg.seed,
                saved_cfg.reset_optimizer) != (config.batch_size, config.sigma_noise, config.seed,
                                               config.reset_optimizer) or _schedule_until(
                saved_cfg, step) != _schedule_until(config, step) or step > total:
            raise ValueError(f"checkpoint {ckpt_path} (step {step}) was trained with "
                             f"{saved_cfg!r}, which disagrees with {config!r} on the steps "
                             f"already done; use the same configuration or resume=False")

    bounds = list(itertools.accumulate(p.steps for p in config.phases))

    class _Task(TrainTask):
        phase_idx = -1
        loss_fn: Any = None

        def loss(self, lpn: nn.Module, step: int) -> Tensor:
            k = config.phase_at(step)
            if config.reset_optimizer and k > 0 and step == bounds[k - 1]:
                opt.state.clear()  # fresh moment estimates (and bias correction) for phase k
            if k != self.phase_idx:
                self.phase_idx, phase = k, config.phases[k]
                self.loss_fn = phase.loss_fn()
                for group in opt.param_groups:
                    group["lr"] = phase.lr
            x = _sample(data, config, gen, model, device, dtype, check=step == 0)
            noise = torch.randn(x.shape, generator=gen, dtype=dtype)
            y = x + config.sigma_noise * noise.to(device)
            x_hat = lpn(y, create_graph=True)
            with full_precision():  # the (proximal matching) loss in float32
                return self.loss_fn(upcast(x_hat), x)

        def after_step(self, lpn: nn.Module, step: int) -> None:
            model.project_()
            if on_phase_end is not None and step == bounds[config.phase_at(step - 1)]:
                on_phase_end(config.phase_at(step - 1), model)

    model.project_()
    options = FitOptions(steps=total, stop_after=stop_after, checkpoint=ckpt_path,
                         checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                         progress=progress, desc="train_lpn", precision=precision,  # type: ignore[arg-type]
                         ddp=False, grad_clip=config.grad_clip)
    res = fit(_Task(), model, opt, None, options, generators=[gen], config=task_config,
              check_resume=check_resume)
    model.eval()
    hist = res.history
    phases = [config.phase_at(s - 1) for s in hist["step"]]
    return TrainHistory(list(hist["step"]), list(hist.get("loss", [])), phases, res.step,
                        res.wall_time)
