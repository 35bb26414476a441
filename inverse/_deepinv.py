r"""Use an :class:`inverse.Prior` (e.g. an LPN) inside deepinv's optimizers.

deepinv is imported inside the functions (``import inverse`` must not load it).

Two adapters:

* :func:`to_deepinv_denoiser` returns a ``torch.nn.Module`` ``D(x, sigma)`` for
  ``deepinv.optim.PnP(denoiser=D)``. deepinv's ``PnP.prox`` calls ``denoiser(x, sigma)`` and
  ignores its ``gamma``; an LPN has no noise-level input, so ``sigma`` is **accepted and
  ignored**, and ``D(x, sigma) = prox_{w R}(x)`` with the fixed weight ``w`` given to the adapter
  (1 for an LPN). The strength of the regularization then comes from the data step: in deepinv's
  ADMM/HQS/PGD with ``stepsize`` :math:`\gamma`, the data step is :math:`\operatorname{prox}_{\gamma
  f}`, so the iteration solves :math:`\gamma\cdot\tfrac12\|Ax-y\|^2 + w R`, i.e.
  :math:`\lambda = w/\gamma`. For an LPN at the MAP weight :math:`\lambda =
  (\sigma/\sigma_{\rm train})^2`, use ``stepsize = 1/λ``.
* :func:`to_deepinv_prior` returns a ``deepinv.optim.Prior`` whose ``prox(x, ..., gamma=g)`` is
  ``prior.prox(x, g)`` and whose ``fn`` is ``prior.value`` (an explicit prior when the value is
  cheap). deepinv passes ``gamma = lambda * stepsize``; a prior that cannot be scaled raises
  unless that product is 1.
"""

from __future__ import annotations

import functools

from torch import Tensor, nn

from operators.interop._deepinv import _import_deepinv

from ._prior import Prior

__all__ = ["to_deepinv_denoiser", "to_deepinv_prior"]


class PriorDenoiser(nn.Module):
    """``D(x, sigma) = prior.prox(x, weight)``; ``sigma`` is accepted and ignored.

    Built by :func:`to_deepinv_denoiser`. If the prior wraps a module (an LPN), it is registered
    as a submodule, so ``.to(device)`` moves it.
    """

    def __init__(self, prior: Prior, weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(prior, Prior):
            raise TypeError(f"prior must be an inverse.Prior, got {type(prior).__name__}")
        prior._check_gamma(weight)  # a non-scalable prior accepts weight 1 only
        self.prior, self.weight = prior, float(weight)
        lpn = getattr(prior, "lpn", None)
        if isinstance(lpn, nn.Module):
            self.net = lpn

    def forward(self, x: Tensor, sigma: float | Tensor | None = None, *args, **kwargs) -> Tensor:
        """Apply the prox at the fixed weight; ``sigma`` and any other argument are ignored."""
        return self.prior.prox(x, self.weight)


def to_deepinv_denoiser(prior: Prior, weight: float = 1.0) -> nn.Module:
    r"""Wrap a prior as a deepinv denoiser ``D(x, sigma)`` for ``deepinv.optim.PnP``.

    Parameters
    ----------
    prior : Prior
        E.g. :class:`inverse.LPNPrior`.
    weight : float, default 1.0
        The fixed weight :math:`w` of the prox (must be 1 for a prior that cannot be scaled).

    Returns
    -------
    torch.nn.Module
        ``D(x, sigma=None) = prior.prox(x, weight)``; ``sigma`` is ignored.

    Raises
    ------
    TypeError
        If ``prior`` is not an :class:`inverse.Prior`.
    ValueError
        If ``weight != 1`` for a prior that cannot be scaled.

    Examples
    --------
    >>> import torch
    >>> from inverse import TVPrior, to_deepinv_denoiser
    >>> D = to_deepinv_denoiser(TVPrior(), weight=0.1)
    >>> D(torch.rand(1, 1, 8, 8), 0.05).shape   # sigma = 0.05 is ignored
    torch.Size([1, 1, 8, 8])
    """
    return PriorDenoiser(prior, weight)


@functools.cache
def _prior_class() -> type:
    dinv = _import_deepinv("inverse.to_deepinv_prior")

    class DeepinvPrior(dinv.optim.Prior):
        """An :class:`inverse.Prior` seen as a ``deepinv.optim.Prior``."""

        def __init__(self, prior: Prior) -> None:
            super().__init__()
            self.prior = prior
            self.explicit_prior = bool(prior.cheap_value)
            lpn = getattr(prior, "lpn", None)
            if isinstance(lpn, nn.Module):
                self.net = lpn

        def fn(self, x: Tensor, *args, **kwargs) -> Tensor:
            return self.prior.value(x)

        def prox(self, x: Tensor, *args, gamma: float | Tensor = 1.0, **kwargs) -> Tensor:
            if isinstance(gamma, Tensor) and gamma.numel() == 1:
                gamma = float(gamma)
            return self.prior.prox(x, gamma)

    DeepinvPrior.__module__ = __name__
    DeepinvPrior.__qualname__ = "DeepinvPrior"
    return DeepinvPrior


def to_deepinv_prior(prior: Prior):
    r"""Wrap a prior as a ``deepinv.optim.Prior`` (``prox(x, *args, gamma)``, ``fn``).

    deepinv's algorithms call ``prox(x, g_param, gamma=lambda * stepsize)``: the prox of
    :math:`\gamma R` is ``prior.prox(x, gamma)`` and ``g_param`` is ignored. ``fn(x)`` is
    ``prior.value(x)`` (deepinv tracks the cost with it when ``explicit_prior`` is true, which is
    set from ``prior.cheap_value``). A prior that cannot be scaled raises a ``ValueError`` for
    ``gamma != 1``: use :func:`to_deepinv_denoiser` with deepinv's ``PnP`` instead, or set
    ``lambda * stepsize = 1``.

    Raises
    ------
    TypeError
        If ``prior`` is not an :class:`inverse.Prior`.
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"prior must be an inverse.Prior, got {type(prior).__name__}")
    return _prior_class()(prior)
