r"""Per-pixel Gaussian noise models :math:`y \sim \mathcal N(Ax, \operatorname{diag} v(Ax))`.

A :class:`NoiseModel` gives the variance map :math:`v(x)`, the negative log-likelihood of an
observation (the data term of MAP and variational restorations) and a sampler (to simulate
observations). Two concrete models:

* :class:`GaussianNoise`: white noise, :math:`v(x) = \sigma^2`;
* :class:`PoissonGaussianNoise`: the high-count approximation of Poisson (shot) plus Gaussian
  (read-out) noise of optical satellite sensors, :math:`v(x) = a + b\max(x, 0)`
  (Foi et al., "Practical Poissonian-Gaussian noise modeling and fitting for single-image
  raw-data", IEEE TIP 2008).

All quantities are in the normalized units of the image (e.g. digital numbers divided by
:math:`2^{n}-1`); masked or no-data pixels enter through an :class:`operators.Mask` forward
operator (both :math:`Ax` and :math:`y` are zero there, so they only add a constant).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real, check_tensor

__all__ = ["NoiseModel", "GaussianNoise", "PoissonGaussianNoise"]


def _check_nonneg(name: str, v: object) -> float:
    return check_real(name, v, positive=False,  # type: ignore[return-value]
                      hint="noise parameters are variances/standard deviations in normalized "
                           "image units")


def _sum_dims(t: Tensor, event_ndim: int | None) -> tuple[int, ...]:
    if event_ndim is None:
        if t.ndim < 2:
            raise ValueError(f"expected a batched tensor (B, ...) with at least 2 dims, got shape "
                             f"{tuple(t.shape)}; pass event_ndim for unbatched data")
        return tuple(range(1, t.ndim))
    check_int("event_ndim", event_ndim, 0, maximum=t.ndim,
              hint="the number of trailing dims of one sample, at most the tensor's ndim")
    return tuple(range(t.ndim - event_ndim, t.ndim))


class NoiseModel(abc.ABC):
    r"""A per-pixel Gaussian likelihood :math:`y_i \sim \mathcal N(u_i, v(u_i))` with
    :math:`u = Ax`.

    Subclasses implement :meth:`variance` and :attr:`heteroscedastic`. The negative
    log-likelihood (up to the constant :math:`\tfrac N2\log 2\pi`) is

    .. math::

        \mathrm{nll}(u, y) = \sum_i \frac{(y_i - u_i)^2}{2\,v_i}
            \;\bigl[+\; \tfrac12 \log v_i \ \text{if the variance depends on } u\bigr],

    where :math:`v` is floored at :attr:`var_floor` so that noise-free models stay finite.
    """

    #: Smallest variance used in :meth:`nll` (not in :meth:`sample`).
    var_floor: float = 1e-10

    @property
    @abc.abstractmethod
    def heteroscedastic(self) -> bool:
        """Whether the variance depends on the signal (adds the log-variance term to the NLL)."""

    @abc.abstractmethod
    def variance(self, x: Tensor) -> Tensor:
        """The noise variance :math:`v(x)`, broadcast to the shape of ``x``."""

    def _check_pair(self, ax: Tensor, y: Tensor) -> None:
        if not isinstance(ax, Tensor) or not isinstance(y, Tensor):
            raise TypeError("ax and y must be torch tensors")
        if ax.shape != y.shape:
            raise ValueError(f"ax and y must have the same shape, got {tuple(ax.shape)} and "
                             f"{tuple(y.shape)}")

    def _nll_variance(self, ax: Tensor, y: Tensor) -> Tensor:
        return self.variance(ax)

    def nll(self, ax: Tensor, y: Tensor, *, event_ndim: int | None = None) -> Tensor:
        r"""Negative log-likelihood of ``y`` given the noise-free observation ``ax``.

        Parameters
        ----------
        ax : Tensor, shape ``(B, *event)``
            The prediction :math:`Ax` (differentiable).
        y : Tensor, same shape
            The observation.
        event_ndim : int, optional
            Number of trailing dims summed over; by default every dim but the first.

        Returns
        -------
        Tensor of shape ``(B,)`` (the batch dims).

        Raises
        ------
        ValueError
            If the shapes differ.
        """
        self._check_pair(ax, y)
        dims = _sum_dims(ax, event_ndim)
        var = self._nll_variance(ax, y).clamp(min=self.var_floor)
        r = y - ax
        out = r * r / (2 * var)
        if self.heteroscedastic:
            out = out + 0.5 * torch.log(var)
        return out.sum(dim=dims)

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Draw :math:`y \sim \mathcal N(x, \operatorname{diag} v(x))` (no clipping, no
        quantization).

        Parameters
        ----------
        x : Tensor
            The noise-free observation :math:`Ax`.
        generator : torch.Generator, optional
            For reproducible draws.
        """
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch tensor, got {type(x).__name__}")
        check_tensor("x", x, allow_complex=False)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got "
                            f"{type(generator).__name__}")
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x + torch.sqrt(self.variance(x)) * eps


@dataclass(frozen=True)
class GaussianNoise(NoiseModel):
    r"""White Gaussian noise of standard deviation ``sigma``: :math:`v(x) = \sigma^2`.

    Parameters
    ----------
    sigma : float
        Standard deviation in normalized image units (``>= 0``; ``0`` gives noise-free samples
        and an NLL weighted by ``1 / var_floor``).

    Raises
    ------
    ValueError
        If ``sigma`` is negative or not finite.

    Examples
    --------
    >>> import torch
    >>> from inverse import GaussianNoise
    >>> float(GaussianNoise(0.5).nll(torch.zeros(1, 2), torch.ones(1, 2))[0])
    4.0
    """

    sigma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigma", _check_nonneg("sigma", self.sigma))

    @property
    def heteroscedastic(self) -> bool:
        return False

    def variance(self, x: Tensor) -> Tensor:
        return torch.full_like(x, self.sigma ** 2)


@dataclass(frozen=True)
class PoissonGaussianNoise(NoiseModel):
    r"""Poisson-Gaussian noise in its Gaussian approximation, :math:`v(x) = a + b\max(x, 0)`.

    For a sensor with gain :math:`g` (DN per electron) and read noise :math:`\sigma_r` (DN), in
    units normalized by :math:`D = 2^n - 1`: :math:`a = \sigma_r^2 / D^2` and :math:`b = g / D`.

    Parameters
    ----------
    a : float
        Signal-independent variance (``>= 0``).
    b : float
        Signal-dependent variance per unit of signal (``>= 0``).
    variance_at_observation : bool, default False
        In :meth:`nll`, evaluate the variance at the observation :math:`y` instead of the
        prediction :math:`Ax`. Then the log-variance term is a constant (dropped) and the data term
        is a weighted least-squares, which is convex in :math:`Ax`; the default (at :math:`Ax`)
        is the exact Gaussian likelihood.

    Raises
    ------
    ValueError
        If ``a`` or ``b`` is negative or not finite.
    """

    a: float
    b: float
    variance_at_observation: bool = False

    def __post_init__(self) -> None:
        a = _check_nonneg("a", self.a)
        b = _check_nonneg("b", self.b)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        if not isinstance(self.variance_at_observation, bool):
            raise TypeError("variance_at_observation must be a bool")

    @property
    def heteroscedastic(self) -> bool:
        return not self.variance_at_observation

    def variance(self, x: Tensor) -> Tensor:
        return self.a + self.b * x.clamp(min=0)

    def _nll_variance(self, ax: Tensor, y: Tensor) -> Tensor:
        return self.variance(y if self.variance_at_observation else ax)
