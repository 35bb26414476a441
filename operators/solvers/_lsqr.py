"""Batched LSQR (Paige & Saunders, 1982) for damped least squares."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real

from .._base import LinearOperator, _empty_slice, _expand_per_sample, _sqnorm

__all__ = ["lsqr", "LSQRResult"]


def _safe_sqrt(t: Tensor) -> Tensor:
    """``sqrt(t)`` for ``t >= 0`` with a zero (not infinite) derivative at ``t = 0``.

    LSQR's bidiagonalization breaks down with an exactly zero norm when the Krylov space is
    exhausted, e.g. at an exact fit ``b = A x`` of a mask or the identity (one iteration). The
    plain ``sqrt`` then back-propagates ``0 * inf = nan``; the zero branch below is constant, so
    autograd gives 0 there instead (that norm only scales a zero vector, so it has no influence
    on the iterate).
    """
    pos = t > 0
    return torch.where(pos, torch.where(pos, t, torch.ones_like(t)).sqrt(), torch.zeros_like(t))


@dataclasses.dataclass(frozen=True)
class LSQRResult:
    """Result of :func:`lsqr`.

    Attributes
    ----------
    solution : Tensor, shape ``(*batch, *in_shape)``
    n_iter : int
    residual_norm : Tensor, shape ``batch``
        Estimate of :math:`\\sqrt{\\|Ax - b\\|^2 + \\mathrm{damp}^2\\|x\\|^2}` per sample.
    converged : Tensor of bool, shape ``batch``
    """

    solution: Tensor
    n_iter: int
    residual_norm: Tensor
    converged: Tensor


def lsqr(op: LinearOperator, b: Tensor, *, damp: float = 0.0, atol: float = 1e-6,
         btol: float = 1e-6, max_iter: int | None = None, throw: bool = False) -> LSQRResult:
    r"""Batched LSQR: :math:`\min_x \|Ax - b\|^2 + \mathrm{damp}^2 \|x\|^2`, per sample.

    Golub-Kahan bidiagonalization with per-sample scalars; each sample stops on its own when
    :math:`\|r\| \le \mathrm{btol}\,\|b\|` (consistent systems) or
    :math:`\|A^H r\| \le \mathrm{atol}\,\|A\|\,\|r\|` (least squares), with the usual estimates.
    Works for rectangular and complex operators. Autograd, if enabled, differentiates through the
    iterations that were run; the gradient w.r.t. ``b`` is finite also at an exact fit
    ``b = A x``, where the bidiagonalization breaks down with an exactly zero norm (e.g. after one
    iteration for a mask or the identity). Gradients w.r.t. operator tensors are those of the
    iterations run, not of the exact solution; for implicit gradients of the normal equations use
    ``A.solve_normal``.

    Parameters
    ----------
    op : LinearOperator
    b : Tensor, shape ``(*batch, *out_shape)``
    damp : float, default 0
        Tikhonov damping (``damp**2`` plays the role of ``rho`` in ``solve_normal``).
    atol, btol : float
        Stopping tolerances (as in :func:`scipy.sparse.linalg.lsqr`).
    max_iter : int, optional
        Default ``2 * prod(in_shape)``... capped at 10000.
    throw : bool, default False
        Raise ``RuntimeError`` if some sample did not converge.

    Returns
    -------
    LSQRResult

    Raises
    ------
    TypeError, ValueError
        For a non-operator, bad shapes or options.

    References
    ----------
    C. C. Paige, M. A. Saunders, "LSQR: An algorithm for sparse linear equations and sparse
    least squares", ACM TOMS 8(1), 1982.

    Examples
    --------
    >>> import torch
    >>> from operators import Dense, lsqr
    >>> A = Dense(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
    >>> lsqr(A, torch.tensor([1.0, 2.0, 3.0])).solution.round(decimals=4)
    tensor([1., 1.])
    """
    if not isinstance(op, LinearOperator):
        raise TypeError(f"lsqr expects a LinearOperator, got {type(op).__name__}")
    op._check_input(b, op.out_shape, "lsqr")
    for name, v in (("damp", damp), ("atol", atol), ("btol", btol)):
        check_real(name, v, positive=False)
    n_in = 1
    for s in op.in_shape:
        n_in *= s
    if max_iter is None:
        max_iter = min(2 * n_in, 10000)
    check_int("max_iter", max_iter, 1)
    ni, no = len(op.in_shape), len(op.out_shape)
    if b.numel() == 0:  # an empty batch: solve one zero sample, return none
        batch = tuple(b.shape[: b.ndim - no])
        one = lsqr(op, b.new_zeros((*(max(s, 1) for s in batch), *op.out_shape)), damp=damp,
                   atol=atol, btol=btol, max_iter=max_iter)
        return LSQRResult(solution=_empty_slice(one.solution, batch, ni), n_iter=0,
                          residual_norm=_empty_slice(one.residual_norm, batch, 0),
                          converged=_empty_slice(one.converged, batch, 0))

    def unit(t: Tensor, nd: int) -> tuple[Tensor, Tensor]:
        n = _safe_sqrt(_sqnorm(t, nd))
        return t / _expand_per_sample(torch.where(n > 0, n, torch.ones_like(n)), nd), n

    u, beta = unit(b, no)
    v, alpha = unit(op.adjoint(u), ni)
    w = v
    x = torch.zeros_like(v)
    phibar, rhobar = beta, alpha
    bnorm = beta
    anorm2 = torch.zeros_like(beta)
    converged = (alpha * beta == 0)  # b = 0 or Aᴴb = 0: x = 0 is optimal
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        u, beta = unit(op.forward(v) - _expand_per_sample(alpha, no) * u, no)
        anorm2 = anorm2 + alpha ** 2 + beta ** 2 + damp ** 2
        v, alpha = unit(op.adjoint(u) - _expand_per_sample(beta, ni) * v, ni)
        rhobar1 = _safe_sqrt(rhobar ** 2 + damp ** 2)
        cs1 = rhobar / torch.where(rhobar1 > 0, rhobar1, torch.ones_like(rhobar1))
        phibar = cs1 * phibar
        rho = _safe_sqrt(rhobar1 ** 2 + beta ** 2)
        rho_safe = torch.where(rho > 0, rho, torch.ones_like(rho))
        c, s = rhobar1 / rho_safe, beta / rho_safe
        theta, rhobar = s * alpha, -c * alpha
        phi, phibar = c * phibar, s * phibar
        step = torch.where(converged, torch.zeros_like(phi), phi / rho_safe)
        x = x + _expand_per_sample(step, ni) * w
        w = v - _expand_per_sample(theta / rho_safe, ni) * w
        rnorm = phibar.abs()
        arnorm = rnorm * alpha * c.abs()
        done = (rnorm <= btol * bnorm) | (arnorm <= atol * anorm2.sqrt() * rnorm) | (rho == 0)
        converged = converged | done
        if bool(converged.all()):
            break
    if throw and not bool(converged.all()):
        raise RuntimeError(f"lsqr did not converge in {max_iter} iterations for "
                           f"{int((~converged).sum())} sample(s)")
    return LSQRResult(solution=x, n_iter=it, residual_norm=phibar.abs(), converged=converged)
