r"""DGNO (DGenNO): a physics-aware generative neural operator trained without solution labels.

Model (Zang & Koutsourelakis 2025). A deterministic encoder maps the coefficient field to a
bounded latent :math:`\beta = \tanh(\mathrm{Enc}_\phi(a)) \in (-1, 1)^{d_\beta}`; decoders
(MultiONets of :math:`(\beta, x)`) give

* the coefficient likelihood :math:`p_\theta(a\mid\beta)`: Bernoulli per node for two-phase
  :math:`a \in \{a_\text{lo}, a_\text{hi}\}` (:class:`BernoulliLikelihood`), Gaussian for smooth
  :math:`a` (:class:`GaussianLikelihood`);
* the solution :math:`u_\theta(x;\beta) = N_\theta(x;\beta)\,\sin(\pi x)\sin(\pi y)` (hard zero
  Dirichlet conditions);
* for discontinuous :math:`a`, the flux :math:`\mathbf s_\theta = (s_1, s_2)` of the mixed form.

The PDE enters as *virtual observables*: the weak residuals :math:`r_j` (see
:mod:`~sciml.neural_operators._weak_form`) are observed to be 0 with likelihood
:math:`\propto \exp(-\lambda r_j^2/2)`, so the negative ELBO (flat prior on the cube, Dirac
encoder) is

.. math::

    \mathcal L = w_\text{data}\,\overline{-\log p_\theta(a_i\mid\beta_i)}
      + w_\text{pde}\Big(w_\text{flux}\,\overline{\|\mathbf s - a\nabla u\|^2}
      + w_\text{res}\,\overline{r_j^2}\Big),

with the *true* :math:`a` (no gradient) in the residual during forward training, and
:math:`r_j = \overline{\mathbf s\cdot\nabla v_j} - \overline{f v_j}` (mixed form, :math:`a` never
differentiated) or :math:`\overline{a\nabla u\cdot\nabla v_j} - \overline{f v_j}` (primal form,
smooth
:math:`a`, no flux decoders). No labelled :math:`u` is used.

Shared trunk. The test-function centres are shared by the mini-batch, so the trunk features at
the quadrature points and their spatial Jacobians are computed once per batch
(:meth:`MultiONet.jet`) and contracted with the per-sample branch vectors. The naive layout
(points repeated per sample, autograd with ``create_graph=True``) gives the same loss and
gradients (tested) and is kept behind ``DGNOLossOptions(shared_trunk=False)``.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_number, check_real

from ._base import AbstractNeuralOperator, _check_points
from ._multionet import OperatorJet, _InnerProductOperator
from ._pde import PDE, Fields
from ._train import AbstractObjective
from ._weak_form import (
    Interpolation,
    TestFunctions,
    WeakFormOptions,
    sample_test_functions,
    weak_residual,
)

__all__ = [
    "AbstractCoefficientLikelihood", "BernoulliLikelihood", "GaussianLikelihood", "DGNO",
    "DGNOLossOptions", "DGNOObjective", "dgno_loss", "physics_loss", "loss_pde", "grid_points",
    "sine_mollifier",
]


def grid_points(n: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """Nodes of the uniform ``n × n`` grid on ``[0,1]^2`` (boundary included), ``(n*n, 2)``,
    row-major with ``"ij"`` indexing (row ``i*n + j`` is ``(i, j)/(n-1)``), as in
    :mod:`sciml.pde`."""
    check_int("n", n, 2)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    t = torch.linspace(0.0, 1.0, int(n), dtype=dtype)
    return torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)


def sine_mollifier(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r""":math:`m = \sin\pi x\,\sin\pi y`, its gradient and Laplacian (:math:`-2\pi^2 m`).

    ``x`` ``(..., 2)`` → ``m (...)``, ``∇m (..., 2)``, ``Δm (...)``.
    """
    sx, sy = torch.sin(math.pi * x[..., 0]), torch.sin(math.pi * x[..., 1])
    cx, cy = torch.cos(math.pi * x[..., 0]), torch.cos(math.pi * x[..., 1])
    m = sx * sy
    return m, math.pi * torch.stack([cx * sy, sx * cy], -1), -2 * math.pi ** 2 * m


def _mollify(jet: OperatorJet, x: Tensor, mollifier=None) -> OperatorJet:
    """Product rule for ``u = N m`` with shared points ``x`` ``(N, d)`` (default
    :func:`sine_mollifier`)."""
    m, gm, lm = (mollifier or sine_mollifier)(x)
    val = jet.value * m
    grad = None if jet.grad is None else jet.grad * m[..., None] + jet.value[..., None] * gm
    lap = None
    if jet.laplacian is not None:
        lap = jet.laplacian * m + 2 * (jet.grad * gm).sum(-1) + jet.value * lm
    return OperatorJet(val, grad, lap)


# ------------------------------------------------------------------------------ likelihoods
class AbstractCoefficientLikelihood(abc.ABC):
    """The coefficient likelihood :math:`p_\\theta(a\\mid\\beta)` of a DGNO a-decoder."""

    @abc.abstractmethod
    def nll(self, decoded: Tensor, a: Tensor) -> Tensor:
        """Loss (a negative log-likelihood up to constants) of ``a`` ``(B, N)``."""

    @abc.abstractmethod
    def estimate(self, decoded: Tensor, *, samples: int = 0,
                 generator: torch.Generator | None = None) -> Tensor:
        """Point estimate of ``a`` from the decoder output ``(B, N)``."""


@dataclass(frozen=True)
class BernoulliLikelihood(AbstractCoefficientLikelihood):
    r"""Two-phase :math:`a \in \{\text{low}, \text{high}\}`: a Bernoulli variable per node.

    The decoder gives logits; :math:`p = \sigma(\text{logit})` is the probability of the high
    phase and the loss is the mean binary cross-entropy with target
    :math:`(a - \text{low})/(\text{high} - \text{low})`. :meth:`estimate` with ``samples = S > 0``
    is the reference's relaxed-Bernoulli average
    :math:`\text{low} + (\text{high}-\text{low})\,\sigma\big(\tfrac1S\sum_s[\text{logit} +
    \log\varepsilon_s - \log(1-\varepsilon_s)]\big)`, :math:`\varepsilon_s\sim U(0,1)`
    (differentiable; used in the inverse problem); ``samples = 0`` gives
    :math:`\text{low} + (\text{high}-\text{low})\,p`.
    """

    low: float = 5.0
    high: float = 10.0

    def __post_init__(self) -> None:
        rule = "need high > low (the range of the coefficient)"
        check_real("low", self.low, hint=rule)
        if not check_real("high", self.high, hint=rule) > self.low:  # type: ignore[operator]
            raise ValueError(f"{rule}, got low={self.low}, high={self.high}")

    def nll(self, decoded: Tensor, a: Tensor) -> Tensor:
        target = ((a - self.low) / (self.high - self.low)).clamp(0, 1)
        return nn.functional.binary_cross_entropy_with_logits(decoded, target)

    def estimate(self, decoded: Tensor, *, samples: int = 0,
                 generator: torch.Generator | None = None) -> Tensor:
        if samples <= 0:
            return self.low + (self.high - self.low) * torch.sigmoid(decoded)
        eps = torch.rand((int(samples), *decoded.shape), generator=generator,
                         dtype=decoded.dtype).to(decoded.device).clamp(1e-6, 1 - 1e-6)
        z = (decoded + torch.log(eps) - torch.log1p(-eps)).mean(0)
        return self.low + (self.high - self.low) * torch.sigmoid(z)

    def probabilities(self, decoded: Tensor) -> Tensor:
        """Probability of the high phase per node."""
        return torch.sigmoid(decoded)


@dataclass(frozen=True)
class GaussianLikelihood(AbstractCoefficientLikelihood):
    r"""Smooth :math:`a`: a Gaussian likelihood around the decoder output.

    ``squared=False`` (reference parity, its ``mse_org``): the loss is the mean over samples of
    the *un-squared* L2 norm :math:`\|\hat a_i - a_i\|_2` over the nodes (not an MSE).
    ``squared=True``: the mean squared error (the exact Gaussian NLL up to a constant).
    """

    squared: bool = False

    def nll(self, decoded: Tensor, a: Tensor) -> Tensor:
        if self.squared:
            return ((decoded - a) ** 2).mean()
        return (decoded - a).norm(dim=-1).mean()

    def estimate(self, decoded: Tensor, *, samples: int = 0,
                 generator: torch.Generator | None = None) -> Tensor:
        return decoded


# ------------------------------------------------------------------------------ model
class DGNO(AbstractNeuralOperator):
    r"""Deep generative neural operator: encoder, a-decoder, u-decoder (+ flux decoders).

    Parameters
    ----------
    encoder : nn.Module
        Input field ``a`` → β ``(B, d_β)``, bounded (e.g. ``MLPEncoder(..., bounded=True)``); it
        must have an integer attribute ``grid`` (the ``n`` of the ``n × n`` (or ``n``) fields
        it accepts).
    u_decoder : MultiONet or DeepONet
        Operator of ``(β, x)`` without its own encoder (``in_size_a = d_β``).
    a_decoder : MultiONet or DeepONet, or None
        Decoder of the coefficient likelihood. ``None``: the coefficient is the solution's own
        trace at ``pde.coefficient_points`` (Burgers: ``a = u(·, 0)``, so the likelihood of
        ``a`` enforces the initial condition).
    likelihood : AbstractCoefficientLikelihood
    flux_decoders : (MultiONet, MultiONet), optional
        ``s_1, s_2`` of the mixed form (required for two-phase coefficients, where the primal
        form would differentiate a discontinuous ``a``); read by the PDE as ``Fields.aux["flux"]``.
    pde : PDE, optional
        The equation (domain, hard boundary conditions, residual; see :class:`PDE`). Default:
        Darcy flow on the unit square (:func:`darcy_pde`, built by the loss from
        :class:`DGNOLossOptions` ``source``/``interpolation``, mixed iff there are flux
        decoders).

    Raises
    ------
    TypeError
        Wrong component types.
    ValueError
        Decoders with an encoder of their own, a latent or input size mismatch, a PDE that
        needs auxiliary fields the model lacks, or ``a_decoder=None`` without
        ``pde.coefficient_points``.

    Notes
    -----
    Shapes: ``forward(a, x)``: ``a (B, n, n)`` (or the encoder's field shape), ``x (N, d)`` or
    ``(B, N, d)`` → ``u (B, N)``.

    References
    ----------
    Y. Zang, P.-S. Koutsourelakis, J. Comput. Phys. 538 (2025) 114137, arXiv:2502.06250.
    """

    def __init__(self, encoder: nn.Module, u_decoder: _InnerProductOperator,
                 a_decoder: _InnerProductOperator | None,
                 likelihood: AbstractCoefficientLikelihood, *,
                 flux_decoders: tuple[_InnerProductOperator, _InnerProductOperator] | None = None,
                 pde: PDE | None = None) -> None:
        super().__init__()
        if pde is not None and not isinstance(pde, PDE):
            raise TypeError(f"pde must be a PDE, got {type(pde).__name__}")
        d_x = 2 if pde is None else pde.domain.dim
        decs = [u_decoder, *([] if a_decoder is None else [a_decoder]), *(flux_decoders or ())]
        if not isinstance(encoder, nn.Module) or not isinstance(getattr(encoder, "grid", None),
                                                                int):
            raise TypeError("encoder must be an nn.Module with an integer `grid` attribute "
                            "(e.g. MLPEncoder or CNNEncoder)")
        if not all(isinstance(d, _InnerProductOperator) for d in decs):
            raise TypeError("decoders must be MultiONet or DeepONet instances")
        if any(d.encoder is not None for d in decs):
            raise ValueError("decoders take the latent β directly: build them with encoder=None")
        if len({d.in_size_a for d in decs}) != 1 or any(d.in_size_x != d_x for d in decs):
            raise ValueError(f"all decoders must share the latent size and take x in R^{d_x} "
                             f"(the PDE's domain dimension)")
        if not isinstance(likelihood, AbstractCoefficientLikelihood):
            raise TypeError("likelihood must be a BernoulliLikelihood or GaussianLikelihood")
        if flux_decoders is not None and len(flux_decoders) != 2:
            raise ValueError("flux_decoders must be a pair (s_1, s_2)")
        if pde is not None:
            missing = sorted(set(pde.aux) - ({"flux"} if flux_decoders else set()))
            if missing:
                raise ValueError(f"the PDE {pde.name!r} reads auxiliary fields {missing}; pass "
                                 f"flux_decoders=(s_1, s_2)")
        if a_decoder is None and (pde is None or pde.coefficient_points is None):
            raise ValueError("a_decoder=None decodes a as u at pde.coefficient_points; give a "
                             "PDE with coefficient_points (e.g. burgers_pde(x_nodes=...))")
        self.encoder = encoder
        self.u_decoder = u_decoder
        self.a_decoder = a_decoder
        self.flux_decoders = nn.ModuleList(flux_decoders) if flux_decoders else None
        self.likelihood = likelihood
        self.pde = pde

    @property
    def grid(self) -> int:
        return int(self.encoder.grid)

    @property
    def latent_size(self) -> int:
        return int(self.u_decoder.in_size_a)

    def coefficient_nodes(self, *, dtype: torch.dtype = torch.float32,
                          device: torch.device | str | None = None) -> Tensor:
        """Points ``(m, d)`` where the coefficient is given: ``pde.coefficient_points``, else
        the nodes of the encoder's ``n × n`` grid (:func:`grid_points`)."""
        if self.pde is not None and self.pde.coefficient_points is not None:
            return self.pde.coefficient_points.to(device=device, dtype=dtype)
        return grid_points(self.grid, dtype=dtype).to(device)

    def _mollifier(self):
        return sine_mollifier if self.pde is None else self.pde.mollify

    def encode(self, a: Tensor) -> Tensor:
        """β ``(B, d_β)`` of fields ``a`` ``(B, n, n)``."""
        return self.encoder(a)

    def decode_u(self, beta: Tensor, x: Tensor) -> Tensor:
        """``u (B, N)`` at ``x`` (Cartesian ``(N, d)`` or batch ``(B, N, d)``)."""
        _check_points(x, beta.shape[0], self.u_decoder.in_size_x)
        return self.u_decoder(beta, x) * self._mollifier()(x)[0]

    def u_jet(self, beta: Tensor, x: Tensor, *, laplacian: bool = False) -> OperatorJet:
        """``u`` and ``∇u`` (and ``Δu``) at shared points ``x`` ``(N, d)`` (shared trunk)."""
        return _mollify(self.u_decoder.jet(beta, x, grad=True, laplacian=laplacian), x,
                        self._mollifier())

    def decode_a(self, beta: Tensor, x: Tensor) -> Tensor:
        """Raw a-decoder output (logits or mean) ``(B, N)`` (``u`` itself without a-decoder)."""
        if self.a_decoder is None:
            return self.decode_u(beta, x)
        return self.a_decoder(beta, x)

    def decode_flux(self, beta: Tensor, x: Tensor) -> Tensor:
        """Flux ``s (B, N, 2)`` (mixed form only)."""
        if self.flux_decoders is None:
            raise ValueError("this DGNO has no flux decoders (primal form)")
        return torch.stack([d(beta, x) for d in self.flux_decoders], -1)

    def forward(self, a: Tensor, x: Tensor) -> Tensor:
        return self.decode_u(self.encode(a), x)

    def reconstruct(self, a: Tensor, *, samples: int = 0,
                    generator: torch.Generator | None = None) -> Tensor:
        """Coefficient reconstruction through the latent, at the coefficient nodes, with the
        shape of ``a``."""
        beta = self.encode(a)
        x = self.coefficient_nodes(dtype=beta.dtype, device=beta.device)
        dec = self.decode_a(beta, x)
        est = self.likelihood.estimate(dec, samples=samples, generator=generator)
        return est.reshape(a.shape)


# ------------------------------------------------------------------------------ loss
@dataclass(frozen=True)
class DGNOLossOptions:
    """Weights and discretisation of the DGNO objective.

    Attributes
    ----------
    weak : WeakFormOptions
    source : float
        Constant :math:`f` (10 in the benchmarks) of the default Darcy PDE (used only when the
        model has no ``pde``).
    data_weight, pde_weight : float
        ``w_data`` (coefficient NLL) and ``w_pde``. Reference: 1/1 (piecewise), 0.25/1 (smooth).
    flux_weight : float
        Weight of :math:`\\overline{\\|s - a\\nabla u\\|^2}` (mixed form).
    residual_weight : float, optional
        Weight of :math:`\\overline{r_j^2}`; default :math:`\\sqrt{n_c}` (the reference's).
    top_k : int, optional
        Add the sum of the ``top_k`` largest squared residuals of the batch (the reference's
        smooth-Darcy adaptive weighting, explicit here); default off.
    interpolation : Interpolation
        How the true ``a`` is read at quadrature points (nearest node for two-phase fields), for
        the default Darcy PDE (a model's own ``pde`` says this itself).
    shared_trunk : bool
        Compute trunk features and Jacobians once per batch (default) or use the naive
        per-sample autograd layout (same numbers, much slower; for tests and benchmarks).
    """

    weak: WeakFormOptions = field(default_factory=WeakFormOptions)
    source: float = 10.0
    data_weight: float = 1.0
    pde_weight: float = 1.0
    flux_weight: float = 1.0
    residual_weight: float | None = None
    top_k: int | None = None
    interpolation: Interpolation = Interpolation.NEAREST
    shared_trunk: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.weak, WeakFormOptions):
            raise TypeError("weak must be a WeakFormOptions")
        if not isinstance(self.interpolation, Interpolation):
            raise TypeError("interpolation must be an Interpolation member")
        for name in ("data_weight", "pde_weight", "flux_weight"):
            check_number(name, getattr(self, name), positive=False)
        check_number("residual_weight", self.residual_weight, positive=False, allow_none=True)
        if self.top_k is not None:
            check_int("top_k", self.top_k, 1)


def _naive_u_grad(model: DGNO, beta: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """u and ∇u with the points repeated per sample and autograd (the naive layout)."""
    xb = points.detach().expand(beta.shape[0], -1, -1).clone().requires_grad_(True)
    u = model.decode_u(beta, xb)
    (grad,) = torch.autograd.grad(u.sum(), xb, create_graph=True)
    return u, grad


def loss_pde(model: DGNO, options: DGNOLossOptions) -> PDE:
    """The model's PDE, or Darcy built from ``options`` (mixed iff the model has flux
    decoders)."""
    if model.pde is not None:
        return model.pde
    from ._pde import darcy_pde

    return darcy_pde(options.source, mixed=model.flux_decoders is not None,
                     interpolation=options.interpolation)


def physics_loss(model: DGNO, beta: Tensor, a_points: Tensor | None, tf: TestFunctions,
                 options: DGNOLossOptions) -> tuple[Tensor, dict[str, float]]:
    r"""The virtual-observable term for latents ``beta`` and ``a`` at ``tf.points`` ``(B, Q)``.

    Builds the :class:`Fields` at the quadrature points (``u``, ``∇u`` from the shared-trunk
    jet, the coefficient, decoded auxiliary fields) and evaluates the PDE's weak residual
    :math:`r_j = \overline{F\cdot\nabla v_j} - \overline{S v_j}` and constitutive residuals.
    """
    pde = loss_pde(model, options)
    lap = None
    if options.shared_trunk:
        ujet = model.u_jet(beta, tf.points, laplacian=pde.needs_laplacian)
        u, grad_u, lap = ujet.value, ujet.grad, ujet.laplacian
    else:
        if pde.needs_laplacian:
            raise ValueError("a PDE with needs_laplacian=True requires shared_trunk=True")
        u, grad_u = _naive_u_grad(model, beta, tf.points)
    aux: dict[str, Tensor] = {}
    if "flux" in pde.aux:
        pts = tf.points if options.shared_trunk else tf.points.expand(beta.shape[0], -1, -1)
        aux["flux"] = model.decode_flux(beta, pts)
    fields = Fields(tf.points, u, grad_u, lap, a_points, aux=aux)
    parts: dict[str, float] = {}
    w_res = (math.sqrt(tf.n_centres) if options.residual_weight is None
             else options.residual_weight)
    r = weak_residual(pde.flux(fields), pde.source_at(fields), tf)
    if pde.constitutive is not None:
        flux = (pde.constitutive(fields) ** 2).sum(-1).mean()
        parts["flux"] = float(flux.detach())
        loss = options.flux_weight * flux
    else:
        loss = grad_u.new_zeros(())
    r2 = r ** 2
    loss = loss + w_res * r2.mean()
    if options.top_k is not None:
        loss = loss + r2.flatten().topk(min(options.top_k, r2.numel())).values.sum()
    parts["residual"] = float(r2.mean().detach())
    return loss, parts


def dgno_loss(model: DGNO, a: Tensor, options: DGNOLossOptions, *,
              generator: torch.Generator | None = None,
              test_functions: TestFunctions | None = None) -> tuple[Tensor, dict[str, float]]:
    """The DGNO training loss of a mini-batch of coefficient fields ``a`` ``(B, n, n)``.

    Returns the scalar loss and its parts (``nll``, ``residual``, ``flux``, ``loss``) as floats.
    ``test_functions`` fixes the centres (otherwise drawn with ``generator`` in the PDE's
    domain).

    Raises
    ------
    TypeError
        Wrong model/options types.
    ValueError
        Fields of the wrong grid size or with NaN.
    """
    if not isinstance(model, DGNO):
        raise TypeError(f"model must be a DGNO, got {type(model).__name__}")
    if not isinstance(options, DGNOLossOptions):
        raise TypeError(f"options must be a DGNOLossOptions, got {type(options).__name__}")
    pde = loss_pde(model, options)
    beta = model.encode(a)
    nodes = model.coefficient_nodes(dtype=a.dtype, device=a.device)
    nll = model.likelihood.nll(model.decode_a(beta, nodes), a.reshape(a.shape[0], -1))
    tf = test_functions or sample_test_functions(
        options.weak, generator=generator, dtype=a.dtype, device=a.device,
        domain=None if model.pde is None else model.pde.domain)
    a_pts = None if pde.coefficient is None else pde.coefficient(a, tf.points)
    pde_loss, parts = physics_loss(model, beta, a_pts, tf, options)
    loss = options.data_weight * nll + options.pde_weight * pde_loss
    parts["nll"] = float(nll.detach())
    parts["loss"] = float(loss.detach())
    return loss, parts


@dataclass(frozen=True)
class DGNOObjective(AbstractObjective):
    """:func:`dgno_loss` as a :func:`fit` objective; batches are ``(a,)`` (no labels)."""

    options: DGNOLossOptions = field(default_factory=DGNOLossOptions)

    def loss(self, model: nn.Module, batch: tuple[Tensor, ...],
             generator: torch.Generator) -> tuple[Tensor, dict[str, float]]:
        return dgno_loss(model, batch[0], self.options, generator=generator)
