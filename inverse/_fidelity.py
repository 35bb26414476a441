r"""Data-fidelity terms :math:`f(x)` of the variational problem :math:`\min_x f(x) + \lambda R(x)`.

The plug-and-play solvers (:func:`inverse.pgd`, :func:`inverse.admm`, :func:`inverse.hqs`) only use
the interface of :class:`AbstractDataFidelity`: ``value``, ``grad`` and ``prox``. The one concrete
term, :class:`L2DataFidelity`, is the Gaussian negative log-likelihood
:math:`\tfrac12\|Ax - y\|^2` of any :class:`operators.LinearOperator`; its prox is one call to
:meth:`operators.LinearOperator.solve_normal` (closed form for circular blurs, masks and
blur-plus-decimation, batched CG otherwise).
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from operators import LinearOperator
from sciml_inverse import check_finite, check_int, check_positive_tensor, check_real, check_tensor

__all__ = ["AbstractDataFidelity", "L2DataFidelity"]


def _per_sample(c: float | Tensor, event_ndim: int) -> float | Tensor:
    """A scalar stays a float; a tensor of the batch shape gets ``event_ndim`` trailing 1s."""
    if isinstance(c, Tensor):
        return c.reshape(c.shape + (1,) * event_ndim)
    return c


def _check_positive(name: str, c: float | Tensor) -> float | Tensor:
    """Validate a positive scalar or per-sample tensor (step sizes, weights, penalties)."""
    if isinstance(c, Tensor):
        check_tensor(name, c, allow_complex=False)
        check_positive_tensor(name, c)
        return c
    return check_real(name, c, positive=True,  # type: ignore[return-value]
                      hint="give a positive float or a tensor")


def _check_real_gram(op: LinearOperator, like: Tensor) -> None:
    """Raise unless ``A^H A`` maps a random real probe to a real image (to rounding)."""
    dtype = like.real.dtype if like.is_complex() else like.dtype
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(op.in_shape, generator=gen, dtype=torch.float64).to(like.device, dtype)
    g = op.adjoint(op(p))
    if not g.is_complex():
        return
    eps = torch.finfo(dtype).eps
    if float(g.imag.abs().max()) > 1e3 * eps * max(float(g.abs().max()), 1.0):
        raise ValueError(f"real=True needs an operator whose A^H A maps real images to real "
                         f"images, but {type(op).__name__}'s does not (for FourierSampling: make "
                         f"the mask symmetric, mask[k] = mask[-k]); or solve for a complex x "
                         f"with real=False")


class AbstractDataFidelity(abc.ABC):
    r"""A differentiable data-fidelity term :math:`f(x)` with a computable proximal operator.

    Concrete terms implement :meth:`value` (per sample), :meth:`grad` and :meth:`prox`, and expose
    :attr:`event_ndim`, the number of trailing dimensions of one sample of :math:`x` (the
    remaining leading dimensions are batch dimensions).
    """

    @property
    @abc.abstractmethod
    def event_ndim(self) -> int:
        """Number of trailing dimensions of one sample of ``x``."""

    @abc.abstractmethod
    def value(self, x: Tensor) -> Tensor:
        """:math:`f(x)`, one value per sample (shape ``batch``)."""

    @abc.abstractmethod
    def grad(self, x: Tensor) -> Tensor:
        r""":math:`\nabla f(x)`, the shape of ``x``."""

    @abc.abstractmethod
    def prox(self, v: Tensor, gamma: float | Tensor) -> Tensor:
        r"""The proximal operator of :math:`\gamma f`.

        :math:`\operatorname{prox}_{\gamma f}(v) = \arg\min_x f(x) + \frac{1}{2\gamma}\|x-v\|^2`.

        ``gamma`` is a positive float or a per-sample tensor of the batch shape.
        """

    def initial_point(self) -> Tensor:
        """Default starting point of the solvers."""
        raise NotImplementedError(f"{type(self).__name__} has no default starting point; pass x0")

    def lipschitz(self) -> Tensor:
        r"""A Lipschitz constant of :math:`\nabla f` (per sample), for step-size defaults."""
        raise NotImplementedError(f"{type(self).__name__} does not know a Lipschitz constant of "
                                  f"its gradient; pass an explicit step size")


class L2DataFidelity(AbstractDataFidelity):
    r"""Least-squares data term :math:`f(x) = \tfrac12\|Ax - y\|^2`.

    * :meth:`value` :math:`= \tfrac12\|Ax-y\|^2` per sample;
    * :meth:`grad` :math:`= A^H(Ax - y)`;
    * :meth:`prox` :math:`\operatorname{prox}_{\gamma f}(v) = (A^HA + \gamma^{-1} I)^{-1}
      (A^H y + v/\gamma)`, i.e. ``op.solve_normal(op.adjoint(y) + v / gamma, 1 / gamma)``;
    * :meth:`lipschitz` :math:`= \|A\|^2` (``op.opnorm() ** 2``).

    For Gaussian noise of standard deviation :math:`\sigma`, :math:`f/\sigma^2` is the negative
    log-likelihood; keeping the unscaled :math:`\tfrac12\|Ax-y\|^2` puts the noise level into the
    prior weight :math:`\lambda` instead (see :class:`inverse.LPNPrior`).

    Parameters
    ----------
    op : operators.LinearOperator
        The forward operator :math:`A`.
    y : Tensor, shape ``(*batch, *op.out_shape)``
        The measurements. ``A^H y`` is computed once and cached.
    cg_rtol : float or None
        Relative tolerance of the conjugate-gradient fallback of ``op.solve_normal`` (operators
        without a closed form); ``None``: :func:`operators.cg`'s default (1e-6).
    cg_max_iter : int or None
        Iteration cap of that fallback; ``None``: :func:`operators.cg`'s default.
    real : bool, default False
        The unknown :math:`x` is real although the operator is complex (e.g. compressed sensing
        of a real image with :class:`operators.FourierSampling`). The term is then minimised
        over real :math:`x`: its gradient is :math:`\operatorname{Re} A^H(Ax - y)` and its prox
        :math:`(\operatorname{Re} A^HA + \gamma^{-1}I)^{-1}(\operatorname{Re} A^Hy +
        v/\gamma)`, which is the real part of the complex prox when :math:`A^HA` maps real
        images to real images (for Fourier sampling: a mask symmetric under
        :math:`k \mapsto -k`). This is checked once on a random real probe.

    Raises
    ------
    TypeError
        If ``op`` is not a :class:`operators.LinearOperator` or ``y`` not a tensor.
    ValueError
        If ``y`` does not have the operator's output shape (or device); with ``real=True``, if
        :math:`A^HA` does not map real images to real images.

    Examples
    --------
    >>> import torch
    >>> from operators import Mask
    >>> from inverse import L2DataFidelity
    >>> f = L2DataFidelity(Mask(torch.tensor([1.0, 0.0])), torch.tensor([2.0, 0.0]))
    >>> f.prox(torch.tensor([0.0, 5.0]), gamma=1.0)   # (2 + 0) / 2 on the observed entry
    tensor([1., 5.])
    """

    def __init__(self, op: LinearOperator, y: Tensor, *, cg_rtol: float | None = None,
                 cg_max_iter: int | None = None, real: bool = False) -> None:
        if not isinstance(op, LinearOperator):
            raise TypeError(f"op must be an operators.LinearOperator, got {type(op).__name__}")
        if not isinstance(y, Tensor):
            raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
        check_finite("y", y, hint="set no-data pixels to 0 and exclude them with an "
                                  "operators.Mask in op")
        self.op = op
        self.y = y
        self._cg: dict[str, float | int] = {}
        if cg_rtol is not None:
            self._cg["rtol"] = float(_check_positive("cg_rtol", cg_rtol))
        if cg_max_iter is not None:
            check_int("cg_max_iter", cg_max_iter, 1)
            self._cg["max_iter"] = cg_max_iter
        self._aty = op.adjoint(y)  # also validates y's shape and device
        self.real = bool(real)
        if self.real:
            _check_real_gram(op, self._aty)
            self._aty = self._aty.real if self._aty.is_complex() else self._aty

    @property
    def event_ndim(self) -> int:
        return len(self.op.in_shape)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Batch shape of ``A^H y``."""
        return tuple(self._aty.shape[: self._aty.ndim - self.event_ndim])

    def initial_point(self) -> Tensor:
        """:math:`A^H y` (a copy), the solvers' default starting point."""
        return self._aty.detach().clone()

    def residual(self, x: Tensor) -> Tensor:
        """:math:`Ax - y`."""
        return self.op(x) - self.y

    def value(self, x: Tensor) -> Tensor:
        r = self.residual(x)
        r = r.abs() if r.is_complex() else r
        return 0.5 * (r * r).sum(dim=tuple(range(-len(self.op.out_shape), 0)))

    def grad(self, x: Tensor) -> Tensor:
        return self._real(self.op.adjoint(self.residual(x)))

    def prox(self, v: Tensor, gamma: float | Tensor) -> Tensor:
        gamma = _check_positive("gamma", gamma)
        g = _per_sample(gamma, self.event_ndim)
        rho = 1.0 / gamma
        return self._real(self.op.solve_normal(self._aty + v / g, rho, **self._cg))

    def _real(self, x: Tensor) -> Tensor:
        return x.real if self.real and x.is_complex() else x

    def lipschitz(self) -> Tensor:
        n = self.op.opnorm()
        return n * n

    def __repr__(self) -> str:
        return f"L2DataFidelity(op={type(self.op).__name__}, y.shape={tuple(self.y.shape)})"
