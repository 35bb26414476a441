r"""Inverse Darcy problem with a trained DGNO: recover ``a`` from noisy point values of ``u``.

With the decoders frozen, the latent is parametrised as :math:`\beta = \tanh(\mathrm{MLP}(1))`
(the reference's ``[1, 64, 64, 128]`` net on a constant input) and optimised by AdamW + StepLR on

.. math::

    w_\text{data}\,\frac{\|P u_\theta(\beta) - y\|}{\|y\|} + w_\text{pde}\,\mathcal L_\text{pde}
    \big(u_\theta(\beta), a_\theta(\beta)\big),

where :math:`P` is the sensor operator (an :class:`operators.PointSampling` of the gridded
prediction), :math:`y` the noisy observations and :math:`\mathcal L_\text{pde}` the DGNO
weak-form term with the *decoded* coefficient at the quadrature points (for two-phase fields a
relaxed-Bernoulli sample average, differentiable in β). A MAP point estimate: uncertainty is
reported only through the phase probabilities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_number, check_real, check_tensor
from sciml_inverse._deprecation import renamed_arguments

from ._dgno import DGNO, BernoulliLikelihood, DGNOLossOptions, grid_points, physics_loss
from ._weak_form import sample_test_functions

__all__ = ["InverseOptions", "InverseResult", "invert_darcy", "add_noise_snr"]


@renamed_arguments(iterations="steps")
@dataclass(frozen=True)
class InverseOptions:
    """Optimisation of the latent in :func:`invert_darcy`.

    Attributes
    ----------
    steps : int
        Adam steps on the latent. Reference: 500 (two-phase), 1000 (smooth). The former name
        ``iterations`` still works (constructor keyword and attribute), with a
        ``DeprecationWarning``.
    lr, weight_decay : float
    step_size : int
        StepLR period in steps (reference: 50 two-phase, 250 smooth).
    gamma : float
        StepLR factor (0.5 two-phase, 0.6 smooth).
    data_weight, pde_weight : float
        Reference: 25 and 1.
    samples : int
        Relaxed-Bernoulli samples per step for two-phase fields (reference 25).
    estimate_samples : int
        Samples of the returned coefficient estimate (reference plots: 50; 0: the mean
        ``low + (high - low) p``).
    hidden : tuple of int
        Hidden widths of the latent parametrisation.
    loss : DGNOLossOptions
        Weak form and weights of the PDE term.
    seed : int
    """

    steps: int = 500
    lr: float = 1e-2
    weight_decay: float = 1e-4
    step_size: int = 50
    gamma: float = 0.5
    data_weight: float = 25.0
    pde_weight: float = 1.0
    samples: int = 25
    estimate_samples: int = 50
    hidden: tuple[int, ...] = (64, 64)
    loss: DGNOLossOptions = field(default_factory=DGNOLossOptions)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "step_size", "samples"):
            check_int(name, getattr(self, name), 1)
        check_int("estimate_samples", self.estimate_samples, 0)
        check_int("seed", self.seed, 0)
        for h in self.hidden:
            check_int("every entry of hidden", h, 1)
        check_number("lr", self.lr)
        check_number("weight_decay", self.weight_decay, positive=False)
        check_number("data_weight", self.data_weight, positive=False)
        check_number("pde_weight", self.pde_weight, positive=False)
        check_number("gamma", self.gamma)


@dataclass
class InverseResult:
    """Estimate of an inverse solve.

    Attributes
    ----------
    coefficient : Tensor ``(n, n)``
    solution : Tensor ``(n, n)``
    probabilities : Tensor ``(n, n)`` or None
        Probability of the high phase per node (two-phase fields).
    beta : Tensor ``(d_β,)``
    history : list of float
        Loss per iteration.
    seconds : float
    """

    coefficient: Tensor
    solution: Tensor
    probabilities: Tensor | None
    beta: Tensor
    history: list[float]
    seconds: float


def add_noise_snr(u: Tensor, snr_db: float, *, generator: torch.Generator | None = None
                  ) -> Tensor:
    r"""Gaussian noise at a signal-to-noise ratio: :math:`\sigma = \sqrt{\overline{u^2}/10^{
    \mathrm{SNR}/10}}` (the reference's definition, per sample over its last dimension)."""
    check_tensor("u", u, allow_complex=False)
    check_real("snr_db", snr_db)
    sigma = (u.pow(2).mean(-1, keepdim=True) / 10 ** (snr_db / 10)).sqrt()
    return u + sigma * torch.randn(u.shape, generator=generator, dtype=u.dtype).to(u.device)


def invert_darcy(model: DGNO, sensors: nn.Module, observations: Tensor,
                 options: InverseOptions | None = None, *, progress: bool = False
                 ) -> InverseResult:
    """Recover the coefficient field from noisy point observations of ``u``.

    Parameters
    ----------
    model : DGNO
        Trained; its parameters are frozen during the solve (and restored to their previous
        ``requires_grad`` afterwards).
    sensors : operators.PointSampling
        Sensor operator on the ``n × n`` grid of the model (``in_shape == (n, n)``).
    observations : Tensor ``(P,)``
        Noisy values ``y``.
    options : InverseOptions, optional

    Returns
    -------
    InverseResult

    Raises
    ------
    TypeError
        ``sensors`` not a PointSampling, ``model`` not a DGNO.
    ValueError
        Grid mismatch between sensors and model, observations of the wrong length or not finite.
    """
    from operators import PointSampling

    options = InverseOptions() if options is None else options
    if not isinstance(model, DGNO):
        raise TypeError(f"model must be a trained DGNO, got {type(model).__name__}")
    if not isinstance(sensors, PointSampling):
        raise TypeError("sensors must be an operators.PointSampling on the model grid")
    n = model.grid
    if tuple(sensors.in_shape) != (n, n):
        raise ValueError(f"sensors act on a {tuple(sensors.in_shape)} grid but the model was "
                         f"trained on ({n}, {n}); build PointSampling(points, ({n}, {n}), "
                         f"extent=((0, 1), (0, 1)))")
    if sensors.batch_shape != ():
        raise ValueError("invert_darcy solves one instance: sensors must have points (P, 2)")
    p = sensors.out_shape[-1]
    if observations.shape != (p,):
        raise ValueError(f"observations must have shape ({p},) for {p} sensors, got "
                         f"{tuple(observations.shape)}")
    if not bool(torch.isfinite(observations).all()):
        raise ValueError("observations must be finite")
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    y = observations.to(device=device, dtype=dtype)[None]
    gen = torch.Generator().manual_seed(options.seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(options.seed)
    sizes = [1, *options.hidden, model.latent_size]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    latent = nn.Sequential(*layers).to(device=device, dtype=dtype)
    torch.random.set_rng_state(torch_state)
    const = torch.ones(1, 1, dtype=dtype, device=device)
    flags = [q.requires_grad for q in model.parameters()]
    for q in model.parameters():
        q.requires_grad_(False)
    model.eval()
    opt = torch.optim.AdamW(latent.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, options.step_size, options.gamma)
    nodes = grid_points(n, dtype=dtype).to(device)
    lik = model.likelihood
    bern = isinstance(lik, BernoulliLikelihood)
    sens = sensors.to(device)
    history: list[float] = []
    t0 = time.perf_counter()
    it = range(options.steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="inverse", leave=False)
    try:
        for _ in it:
            beta = torch.tanh(latent(const))
            u = model.decode_u(beta, nodes).reshape(1, n, n)
            data = ((sens(u) - y).norm(dim=-1) / y.norm(dim=-1)).mean()
            tf = sample_test_functions(options.loss.weak, generator=gen, dtype=dtype,
                                       device=device,
                                       domain=None if model.pde is None else model.pde.domain)
            dec = model.decode_a(beta, tf.points)
            a_pts = lik.estimate(dec, samples=options.samples if bern else 0, generator=gen)
            pde, _ = physics_loss(model, beta, a_pts, tf, options.loss)
            loss = options.data_weight * data + options.pde_weight * pde
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            history.append(float(loss.detach()))
        with torch.no_grad():
            beta = torch.tanh(latent(const))
            dec = model.decode_a(beta, nodes)
            coef = lik.estimate(dec, samples=options.estimate_samples if bern else 0,
                                generator=gen)
            u = model.decode_u(beta, nodes)
            probs = lik.probabilities(dec).reshape(n, n) if bern else None
    finally:
        for q, f in zip(model.parameters(), flags, strict=True):
            q.requires_grad_(f)
    return InverseResult(coef.reshape(n, n), u.reshape(n, n), probs, beta[0].detach(), history,
                         time.perf_counter() - t0)
