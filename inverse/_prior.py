r"""Priors (regularizers) :math:`R(x)` for the plug-and-play solvers.

A :class:`Prior` provides :math:`\operatorname{prox}_{\gamma R}` and, where known, the value
:math:`R(x)`. Two class-level flags tell the solvers what they may ask:

* :attr:`Prior.scalable` — ``True`` if the prox can be evaluated at any weight :math:`\gamma > 0`
  (TV, quadratic priors). A learned proximal network is the prox of its regularizer **at weight 1
  only**: ``scalable = False``, and the solvers then choose (or check) their penalty so that the
  prior is only ever asked for :math:`\operatorname{prox}_{1 \cdot R}` — see :class:`LPNPrior`.
* :attr:`Prior.cheap_value` — ``True`` if :meth:`Prior.value` is cheap enough to track the
  objective at every iteration (TV, quadratic). The LPN regularizer needs a convex inversion per
  call, so the solvers do not track it unless asked to.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import torch
from torch import Tensor, nn

from operators import FiniteDifference, LinearOperator
from sciml_inverse import check_int, check_number

from ._fidelity import _check_positive, _per_sample
from ._tv import TVProxResult, total_variation, tv_prox

__all__ = ["Prior", "LPNPrior", "TVPrior", "TikhonovPrior"]

#: Relative tolerance with which a weight is accepted as "1" by a non-scalable prior.
WEIGHT_RTOL = 1e-6


def _is_one(gamma: float | Tensor) -> bool:
    if isinstance(gamma, Tensor):
        return bool(torch.all((gamma - 1).abs() <= WEIGHT_RTOL))
    return abs(float(gamma) - 1.0) <= WEIGHT_RTOL


class Prior(abc.ABC):
    r"""A regularizer :math:`R` given by its proximal operator (and, optionally, its value).

    Subclasses implement :meth:`prox` and may implement :meth:`value`; they set the class flags
    :attr:`scalable` and :attr:`cheap_value`, and :attr:`event_ndim` (trailing dims of one
    sample; 3 for ``(C, H, W)`` images).

    ``gamma`` (in :meth:`prox`) and the return value of :meth:`value` follow the data-fidelity
    convention: ``gamma`` is a positive float or a tensor of the batch shape, and values are one
    per sample.
    """

    #: The prox can be evaluated at any weight γ (False: at γ = 1 only).
    scalable: ClassVar[bool] = True
    #: :meth:`value` is cheap enough to be evaluated at every iteration.
    cheap_value: ClassVar[bool] = False

    def __init__(self, event_ndim: int = 3) -> None:
        check_int("event_ndim", event_ndim, 1)
        self.event_ndim = event_ndim

    @abc.abstractmethod
    def prox(self, x: Tensor, gamma: float | Tensor = 1.0) -> Tensor:
        r"""The proximal operator of :math:`\gamma R`.

        :math:`\operatorname{prox}_{\gamma R}(x) = \arg\min_z \tfrac12\|z - x\|^2 + \gamma R(z)`.
        """

    def value(self, x: Tensor) -> Tensor:
        """:math:`R(x)`, one value per sample.

        Raises
        ------
        NotImplementedError
            If the prior has no computable value.
        """
        raise NotImplementedError(f"{type(self).__name__} has no value R(x); the solvers then "
                                  f"record only the fixed-point residual")

    def _check_gamma(self, gamma: float | Tensor) -> float | Tensor:
        gamma = _check_positive("gamma", gamma)
        if not self.scalable and not _is_one(gamma):
            raise ValueError(
                f"{type(self).__name__} is the proximal operator of its regularizer at weight 1 "
                f"only (it cannot be scaled), but was asked for gamma={gamma}; put the weight "
                f"into the solver's penalty instead (ADMM: rho = lam; PGD: step = 1 / lam)")
        return gamma


class LPNPrior(Prior):
    r"""A learned proximal network as a plug-and-play prior.

    The network :math:`f_\theta = \nabla\psi_\theta` is exactly
    :math:`\operatorname{prox}_{R_\theta}` for one regularizer :math:`R_\theta` **at weight
    1**; it has no knob for a weight :math:`\gamma \ne 1` (``scalable = False``): :meth:`prox`
    accepts ``gamma = 1`` only (any ``sigma`` a caller such as deepinv passes is ignored, see
    :func:`inverse.to_deepinv_denoiser`).

    **Weight mapping.** A network trained by proximal matching on :math:`y = x + \sigma_{\rm train}
    \varepsilon` approximates the MAP denoiser, so :math:`R_\theta \approx -\sigma_{\rm train}^2
    \log p_x` (up to a constant). For data :math:`y = Ax + \sigma\varepsilon`, the MAP problem
    :math:`\min_x \frac{1}{2\sigma^2}\|Ax-y\|^2 - \log p_x(x)` is, after multiplying by
    :math:`\sigma^2`,

    .. math::

       \min_x \tfrac12 \|Ax - y\|^2 + \lambda R_\theta(x), \qquad
       \lambda = (\sigma / \sigma_{\rm train})^2 ,

    returned by :meth:`admm_weight`. In ADMM (:func:`inverse.admm`) the prior step is
    :math:`\operatorname{prox}_{(\lambda/\rho) R}`, so the only consistent penalty is
    :math:`\rho = \lambda` (the solver's default; any other ρ raises). In PGD
    (:func:`inverse.pgd`), a step :math:`\eta` on the data term followed by the prox at weight 1
    minimises :math:`\eta\cdot\tfrac12\|Ax - y\|^2 + R_\theta`, i.e. :math:`\lambda = 1/\eta`:
    :meth:`pgd_step` returns :math:`\eta = (\sigma_{\rm train}/\sigma)^2`. (The reference
    implementation passes ρ and a data "scale" separately and silently ignores the weight
    of the prox, so its effective λ is 2·scale/ρ, not what its arguments say.)

    Parameters
    ----------
    lpn : torch.nn.Module
        An LPN (``lpn(x)`` is the prox; ``lpn.regularizer(x)`` the regularizer, used by
        :meth:`value`), e.g. :class:`inverse.lpn.LPN`.
    sigma_train : float
        Noise standard deviation the network was trained at, in the units of ``x``.
    event_ndim : int, optional
        Trailing dims of one sample; leading dims are flattened into one batch dim for the
        network. Default: ``lpn.event_ndim`` for an :class:`inverse.lpn.AbstractLPN` (3 for
        images, 1 for vectors), else 3.

    Raises
    ------
    TypeError
        If ``lpn`` is not a module.
    ValueError
        If ``sigma_train`` is not positive.
    """

    scalable: ClassVar[bool] = False
    cheap_value: ClassVar[bool] = False

    def __init__(self, lpn: nn.Module, sigma_train: float, *,
                 event_ndim: int | None = None) -> None:
        if not isinstance(lpn, nn.Module):
            raise TypeError(f"lpn must be a torch.nn.Module (an LPN), got {type(lpn).__name__}")
        if event_ndim is None:
            from .lpn import AbstractLPN

            event_ndim = lpn.event_ndim if isinstance(lpn, AbstractLPN) else 3
        super().__init__(event_ndim)
        self.lpn = lpn
        self.sigma_train = float(_check_positive("sigma_train", sigma_train))

    def admm_weight(self, sigma_noise: float) -> float:
        r"""MAP weight :math:`\lambda = (\sigma / \sigma_{\rm train})^2` of
        :math:`\tfrac12\|Ax-y\|^2 + \lambda R_\theta`; the ADMM/HQS penalty must equal it."""
        s = float(_check_positive("sigma_noise", sigma_noise))
        return (s / self.sigma_train) ** 2

    def pgd_step(self, sigma_noise: float) -> float:
        r"""PGD step :math:`\eta = 1/\lambda = (\sigma_{\rm train}/\sigma)^2` for the MAP weight.

        PGD is only guaranteed to be stable for :math:`\eta < 2/\|A\|^2`; for small noise
        (:math:`\sigma < \sigma_{\rm train}\|A\|/\sqrt2`) use ADMM instead.
        """
        return 1.0 / self.admm_weight(sigma_noise)

    def _flat(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        batch = tuple(x.shape[: x.ndim - self.event_ndim])
        return x.reshape(math.prod(batch), *x.shape[x.ndim - self.event_ndim:]), batch

    def prox(self, x: Tensor, gamma: float | Tensor = 1.0) -> Tensor:
        self._check_gamma(gamma)
        xf, batch = self._flat(x)
        out = self.lpn(xf)
        return out.detach().reshape(*batch, *out.shape[1:])

    def value(self, x: Tensor) -> Tensor:
        r""":math:`R_\theta(x)` per sample (``lpn.regularizer``; a convex inversion per call)."""
        xf, batch = self._flat(x)
        return self.lpn.regularizer(xf).detach().reshape(batch)

    def __repr__(self) -> str:
        return f"LPNPrior(sigma_train={self.sigma_train}, lpn={type(self.lpn).__name__})"


class TVPrior(Prior):
    r"""Isotropic total variation :math:`R(x) = \sum_i \|(Dx)_i\|_2` (Neumann boundary).

    The prox is computed by Chambolle's dual projection (:func:`inverse.tv_prox`, FISTA-
    accelerated, stopped on the duality gap). Channels are regularized independently.

    Parameters
    ----------
    event_ndim : int, default 3
        Trailing dims of one sample; the last two are spatial.
    max_iter : int, default 100
        Dual iterations per prox.
    tol : float, default 1e-7
        Duality-gap tolerance per pixel (see :func:`inverse.tv_prox`); 0 always runs
        ``max_iter`` dual iterations (no gap evaluations: faster inside a solver).
    warm_start : bool, default True
        Start each prox from the dual field of the previous call when the shapes match (inside
        an iterative solver consecutive inputs are close, so few iterations are needed). The
        result is the prox to the tolerance either way.

    Examples
    --------
    >>> import torch
    >>> from inverse import TVPrior
    >>> x = torch.zeros(1, 1, 8, 8); x[..., 4:] = 1.0
    >>> float(TVPrior().value(x)[0])   # one unit jump along 8 rows
    8.0
    """

    scalable: ClassVar[bool] = True
    cheap_value: ClassVar[bool] = True

    def __init__(self, event_ndim: int = 3, *, max_iter: int = 100, tol: float = 1e-7,
                 warm_start: bool = True) -> None:
        super().__init__(event_ndim)
        if event_ndim < 2:
            raise ValueError(f"TVPrior needs images: event_ndim >= 2, got {event_ndim}")
        check_int("max_iter", max_iter, 1)
        check_number("tol", tol, positive=False)
        self.max_iter, self.tol, self.warm_start = int(max_iter), float(tol), bool(warm_start)
        self._dual: Tensor | None = None
        self.last: TVProxResult | None = None

    def prox(self, x: Tensor, gamma: float | Tensor = 1.0) -> Tensor:
        gamma = self._check_gamma(gamma)
        dual0 = self._dual
        if dual0 is not None and (dual0.shape[:-self.event_ndim - 1] != x.shape[:-self.event_ndim]
                                  or dual0.shape[-self.event_ndim:] != x.shape[-self.event_ndim:]
                                  or dual0.device != x.device or dual0.dtype != x.dtype):
            dual0 = None
        res = tv_prox(x, _per_sample(gamma, self.event_ndim), event_ndim=self.event_ndim,
                      max_iter=self.max_iter, tol=self.tol,
                      dual0=dual0 if self.warm_start else None, compute_gap=False)
        self.last = res
        if self.warm_start:
            self._dual = res.dual.detach()
        return res.x

    def value(self, x: Tensor) -> Tensor:
        return total_variation(x, self.event_ndim)

    def reset(self) -> None:
        """Forget the warm-start dual field."""
        self._dual, self.last = None, None


class TikhonovPrior(Prior):
    r"""Quadratic prior :math:`R(x) = \tfrac12\|Dx\|^2` (Laplacian/Tikhonov regularization).

    The prox is a linear solve:

    .. math::

       \operatorname{prox}_{\gamma R}(v) = (I + \gamma D^H D)^{-1} v
       = \gamma^{-1} (D^H D + \gamma^{-1} I)^{-1} v ,

    computed as ``D.solve_normal(v / gamma, 1 / gamma)``: closed form when ``D`` is diagonal,
    Fourier-diagonal (e.g. a circular :class:`operators.FiniteDifference`) or DCT-diagonal (the
    default Neumann finite differences), batched CG otherwise.

    Parameters
    ----------
    op : operators.LinearOperator, optional
        The operator :math:`D`. By default the forward-difference gradient over the last two dims
        (:class:`operators.FiniteDifference` with ``boundary``), built for the shape of the
        input, so that :math:`D^HD = -\Delta` and :math:`R` is the Dirichlet energy.
    event_ndim : int, default 3
        Trailing dims of one sample (ignored when ``op`` is given: ``len(op.in_shape)``).
    boundary : {"neumann", "circular"}, default "neumann"
        Boundary of the default finite differences.

    Examples
    --------
    >>> import torch
    >>> from operators import Identity
    >>> from inverse import TikhonovPrior
    >>> TikhonovPrior(Identity((3,))).prox(torch.ones(3), gamma=1.0)   # v / (1 + gamma)
    tensor([0.5000, 0.5000, 0.5000])
    """

    scalable: ClassVar[bool] = True
    cheap_value: ClassVar[bool] = True

    def __init__(self, op: LinearOperator | None = None, *, event_ndim: int = 3,
                 boundary: str = "neumann") -> None:
        if op is not None and not isinstance(op, LinearOperator):
            raise TypeError(f"op must be an operators.LinearOperator or None, got "
                            f"{type(op).__name__}")
        super().__init__(len(op.in_shape) if op is not None else event_ndim)
        if op is None and boundary not in ("neumann", "circular"):
            raise ValueError(f"boundary must be 'neumann' or 'circular', got {boundary!r}")
        self.op, self.boundary = op, boundary
        self._ops: dict[tuple[int, ...], LinearOperator] = {}

    def _op_for(self, x: Tensor) -> LinearOperator:
        if self.op is not None:
            return self.op
        shape = tuple(x.shape[x.ndim - self.event_ndim:])
        if shape not in self._ops:
            self._ops[shape] = FiniteDifference(shape, dims=(-2, -1), boundary=self.boundary)
        return self._ops[shape]

    def prox(self, x: Tensor, gamma: float | Tensor = 1.0) -> Tensor:
        gamma = self._check_gamma(gamma)
        d = self._op_for(x)
        rtol = 1e-10 if x.dtype in (torch.float64, torch.complex128) else 1e-6
        return d.solve_normal(x / _per_sample(gamma, self.event_ndim), 1.0 / gamma,
                              rtol=rtol, max_iter=1000)

    def value(self, x: Tensor) -> Tensor:
        d = self._op_for(x)
        g = d(x)
        g = g.abs() if g.is_complex() else g
        return 0.5 * (g * g).sum(dim=tuple(range(-len(d.out_shape), 0)))
