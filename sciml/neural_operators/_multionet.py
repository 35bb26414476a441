"""MultiONet (Zang & Koutsourelakis 2025): DeepONet with inner products summed over layers."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciml_inverse import check_int, check_real

from ._base import (
    AbstractActivation,
    AbstractNeuralOperator,
    MLPStack,
    SiLUId,
    TanhSin,
    _check_points,
)

__all__ = ["MultiONet", "OperatorJet"]


class OperatorJet:
    """Output of an operator at shared points with its spatial derivatives.

    Attributes
    ----------
    value : Tensor ``(B, N)``
    grad : Tensor ``(B, N, d_x)`` or None
    laplacian : Tensor ``(B, N)`` or None
    hessian : Tensor ``(B, N, d_x, d_x)`` or None
    """

    def __init__(self, value: Tensor, grad: Tensor | None, laplacian: Tensor | None,
                 hessian: Tensor | None = None) -> None:
        self.value = value
        self.grad = grad
        self.laplacian = laplacian
        self.hessian = hessian


class _InnerProductOperator(AbstractNeuralOperator):
    """Shared machinery of DeepONet/MultiONet: trunk and branch stacks, weighted inner products.

    ``G(a)(x) = Σ_k c_k ⟨b_k(enc(a)), t_k(x)⟩ + bias`` over the last ``L`` hidden layers with
    coefficients ``c`` from :meth:`_coefficients`.
    """

    def __init__(self, in_size_x: int, in_size_a: int, trunk_layers: Sequence[int],
                 branch_layers: Sequence[int], activation_trunk: AbstractActivation | None,
                 activation_branch: AbstractActivation | None, n_summed: int,
                 encoder: nn.Module | None) -> None:
        super().__init__()
        trunk_layers, branch_layers = list(trunk_layers), list(branch_layers)
        check_int("in_size_x", in_size_x, 1)
        check_int("in_size_a", in_size_a, 1)
        for w in trunk_layers + branch_layers:
            check_int("every layer width", w, 1)
        if len(trunk_layers) < 2:
            raise ValueError(f"trunk_layers and branch_layers need at least two widths (a lifting "
                             f"layer and one summed hidden layer), got {trunk_layers}")
        if len(trunk_layers) != len(branch_layers):
            raise ValueError(f"trunk_layers and branch_layers must have the same length, got "
                             f"{trunk_layers} and {branch_layers}")
        n_summed = check_int("sum_layers", n_summed, 1, maximum=len(trunk_layers) - 1,
                             hint="the number of hidden layers after the lifting layer")
        if trunk_layers[-n_summed:] != branch_layers[-n_summed:]:
            raise ValueError(f"the last {n_summed} trunk and branch widths must match pairwise, "
                             f"got {trunk_layers[-n_summed:]} and {branch_layers[-n_summed:]}")
        if encoder is not None and not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder must be an nn.Module or None, got {type(encoder).__name__}")
        self.in_size_x = int(in_size_x)
        self.in_size_a = int(in_size_a)
        self.n_summed = int(n_summed)
        self.trunk = MLPStack(in_size_x, trunk_layers, activation_trunk or TanhSin())
        self.branch = MLPStack(in_size_a, branch_layers, activation_branch or SiLUId())
        self.encoder = encoder
        self.bias = nn.Parameter(torch.zeros(()))

    @abc.abstractmethod
    def _coefficients(self) -> Tensor:
        """The ``L`` coefficients ``c_k`` of the summed inner products."""

    def branch_features(self, a: Tensor) -> list[Tensor]:
        """Branch outputs of the summed layers, each ``(B, w_k)`` (encoder applied first)."""
        if not isinstance(a, Tensor) or not a.is_floating_point():
            raise TypeError("the operator input must be a floating-point tensor")
        if bool(torch.isnan(a).any()):
            raise ValueError("the operator input contains NaN; clean or impute the coefficient "
                             "fields first")
        beta = self.encoder(a) if self.encoder is not None else a
        if beta.ndim != 2 or beta.shape[1] != self.in_size_a:
            raise ValueError(f"branch input must have shape (B, {self.in_size_a}), got "
                             f"{tuple(beta.shape)}")
        return self.branch(beta)[-self.n_summed:]

    def forward(self, a: Tensor, x: Tensor) -> Tensor:
        """``(B, N)`` values; ``x`` is ``(N, d_x)`` (Cartesian) or ``(B, N, d_x)`` (batch)."""
        branch = self.branch_features(a)
        cart = _check_points(x, branch[0].shape[0], self.in_size_x)
        trunk = self.trunk(x)[-self.n_summed:]
        c = self._coefficients()
        out = 0
        for k, (b, t) in enumerate(zip(branch, trunk, strict=True)):
            ip = b @ t.T if cart else torch.einsum("bw,bnw->bn", b, t)
            out = out + c[k] * ip
        return out + self.bias

    def jet(self, a_or_branch: Tensor | list[Tensor], x: Tensor, *, grad: bool = True,
            laplacian: bool = False, hessian: bool = False) -> OperatorJet:
        """Values and exact spatial derivatives at points ``x`` ``(N, d_x)`` shared by the batch.

        The trunk features and their Jacobians/Laplacians are computed once (``MLPStack.jet``)
        and contracted with the per-sample branch vectors: the same numbers as autograd on the
        batch layout with ``x`` repeated per sample, at a fraction of the cost.
        ``a_or_branch`` is the operator input or precomputed :meth:`branch_features`.
        ``hessian=True`` adds the full second derivatives ``(B, N, d_x, d_x)`` (e.g. the
        velocity gradient of a stream function).
        """
        branch = (a_or_branch if isinstance(a_or_branch, list)
                  else self.branch_features(a_or_branch))
        _check_points(x, branch[0].shape[0], self.in_size_x)
        if x.ndim != 2:
            raise ValueError("jet needs shared points x of shape (N, d_x)")
        tj = self.trunk.jet(x, jacobian=grad, laplacian=laplacian, hessian=hessian)
        lo = len(tj.values) - self.n_summed
        c = self._coefficients()
        val, g, lap = 0, 0 if grad else None, 0 if laplacian else None
        hes = 0 if hessian else None
        for k, b in enumerate(branch):
            val = val + c[k] * (b @ tj.values[lo + k].T)
            if grad:
                g = g + c[k] * torch.einsum("bw,nwd->bnd", b, tj.jacobians[lo + k])
            if laplacian:
                lap = lap + c[k] * (b @ tj.laplacians[lo + k].T)
            if hessian:
                hes = hes + c[k] * torch.einsum("bw,nwij->bnij", b, tj.hessians[lo + k])
        return OperatorJet(val + self.bias, g, lap, hes)


class MultiONet(_InnerProductOperator):
    r"""MultiONet: inner products of branch and trunk features summed over the last layers.

    .. math::

        \mathcal G(a)(x) = \frac1L \sum_{k=1}^{L} w_k\,\langle b^{(k)}(\beta), t^{(k)}(x)\rangle
        + b, \qquad \beta = \mathrm{enc}(a),

    over the last ``L = sum_layers`` hidden layers of a trunk net ``t`` (input ``x``) and a
    branch net ``b`` (input β) run in parallel: a lifting layer ``Linear(in, w_0)`` + σ (not
    summed), then hidden layers ``Linear`` + σ on *every* layer and no output layer (the current
    reference form, DGenNO ``MultiONetBatch``/``MultiONetCartesianProd``). Scalars ``w_k``
    start at ``weight_init`` (0 in the reference code, 1 in arXiv v1) and one shared bias ``b``
    at 0. DeepONet is ``L = 1`` (see :class:`DeepONet`).

    Parameters
    ----------
    in_size_x : int
        Spatial dimension ``d_x``.
    in_size_a : int
        Size of the branch input β (the encoder output when ``encoder`` is given).
    trunk_layers, branch_layers : sequence of int
        Widths ``[w_0, ..., w_H]`` (same length; summed pairs must have equal widths).
    activation_trunk, activation_branch : AbstractActivation, optional
        Defaults :class:`TanhSin` and :class:`SiLUId`.
    sum_layers : int, optional
        ``L`` in ``[1, H]``; default ``H`` (all hidden layers, as in every reference example).
    weight_init : float
        Initial ``w_k``.
    encoder : nn.Module, optional
        Maps the raw input ``a`` ``(B, ...)`` to β ``(B, in_size_a)`` (e.g. :class:`CNNEncoder`).

    Raises
    ------
    ValueError
        Mismatched layer lists, ``sum_layers`` out of range, NaN input, wrong shapes.

    Notes
    -----
    Shapes: ``forward(a, x)``: ``x (N, d_x)`` → ``(B, N)`` (Cartesian product) or
    ``x (B, N, d_x)`` → ``(B, N)`` (batch layout).

    References
    ----------
    Y. Zang, P.-S. Koutsourelakis, "DGNO: a novel physics-aware neural operator for solving
    forward and inverse PDE problems based on deep, generative probabilistic modeling",
    J. Comput. Phys. 538 (2025) 114137, arXiv:2502.06250; code yaohua32/DGenNO.

    Examples
    --------
    >>> import torch
    >>> from sciml.neural_operators import MultiONet
    >>> net = MultiONet(2, 128, [100] * 5, [100] * 5)
    >>> net.n_parameters()
    94005
    >>> net(torch.zeros(3, 128), torch.rand(7, 2)).shape
    torch.Size([3, 7])
    """

    def __init__(self, in_size_x: int, in_size_a: int, trunk_layers: Sequence[int],
                 branch_layers: Sequence[int], *,
                 activation_trunk: AbstractActivation | None = None,
                 activation_branch: AbstractActivation | None = None,
                 sum_layers: int | None = None, weight_init: float = 0.0,
                 encoder: nn.Module | None = None) -> None:
        n = len(list(trunk_layers)) - 1 if sum_layers is None else sum_layers
        super().__init__(in_size_x, in_size_a, trunk_layers, branch_layers, activation_trunk,
                         activation_branch, n, encoder)
        w0 = check_real("weight_init", weight_init, hint="the initial layer weights w_k")
        self.weights = nn.Parameter(torch.full((self.n_summed,), w0))

    def _coefficients(self) -> Tensor:
        return self.weights / self.n_summed
