"""Batched conjugate gradient with per-sample convergence and implicit differentiation."""

from __future__ import annotations

import dataclasses
import math
import warnings

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real

from .._base import LinearOperator, _empty_slice, _expand_per_sample, _inner, _sqnorm

__all__ = ["cg", "CGResult", "default_cg_rtol"]


@dataclasses.dataclass(frozen=True)
class CGResult:
    """Result of :func:`cg`.

    Attributes
    ----------
    solution : Tensor, shape ``(*batch, *in_shape)``
    n_iter : int
        Iterations run (the slowest sample's).
    residual_norm : Tensor, shape ``batch``
        Final :math:`\\|b - Mx\\|` per sample (from the CG recursion).
    converged : Tensor of bool, shape ``batch``
    """

    solution: Tensor
    n_iter: int
    residual_norm: Tensor
    converged: Tensor


def default_cg_rtol(dtype: torch.dtype) -> float:
    """Default relative tolerance of :func:`cg` for data of ``dtype``.

    ``1e-10`` in double precision (float64, complex128), ``1e-6`` in single precision (float32,
    complex64; a few hundred ulps, about what the float32 residual recursion can reach), ``1e-3``
    in half precision.
    """
    real = dtype.to_real() if dtype.is_complex else dtype
    if real == torch.float64:
        return 1e-10
    if real in (torch.float16, torch.bfloat16):
        return 1e-3
    return 1e-6


def _validate(op: LinearOperator, b: Tensor, rtol: float, atol: float, max_iter: int | None,
              check_every: int) -> int:
    if not isinstance(op, LinearOperator):
        raise TypeError(f"cg expects a LinearOperator, got {type(op).__name__}; wrap a function "
                        f"with operators.from_function or build it from operators")
    if op.in_shape != op.out_shape:
        raise ValueError(f"cg needs a square (Hermitian positive definite) operator, got "
                         f"in_shape {op.in_shape} and out_shape {op.out_shape}; for least squares "
                         f"use op.solve_normal or lsqr")
    op._check_input(b, op.in_shape, "cg")
    hint = "cg stops at ||r|| <= max(rtol * ||b||, atol)"
    check_real("rtol", rtol, positive=False, hint=hint)
    check_real("atol", atol, positive=False, hint=hint)
    if rtol == 0 and atol == 0:
        raise ValueError(f"need rtol >= 0 and atol >= 0, not both zero; got rtol={rtol}, "
                         f"atol={atol}")
    check_int("check_every", check_every, 1)
    n = math.prod(op.in_shape)
    if max_iter is None:
        return 10 * n
    check_int("max_iter", max_iter, 1)
    return max_iter


def _cg_loop(op: LinearOperator, b: Tensor, x0: Tensor | None, rtol: float, atol: float,
             max_iter: int, check_every: int, precond=None):
    nd = len(op.in_shape)
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - op.forward(x) if x0 is not None else b.clone()
    z = r if precond is None else precond(r)
    p = z.clone()
    rs = _sqnorm(r, nd)  # ||r||^2: the stopping test
    rz = rs if precond is None else _inner(r, z, nd).real  # <r, P r>: the step sizes
    bnorm = _sqnorm(b, nd).sqrt()
    thresh = torch.maximum(rtol * bnorm, torch.full_like(bnorm, atol))
    active = rs.sqrt() > thresh
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        mp = op.forward(p)
        pmp = _inner(p, mp, nd).real
        ok = active & (pmp > 0)
        alpha = torch.where(ok, rz / torch.where(ok, pmp, torch.ones_like(pmp)),
                            torch.zeros_like(rz))
        a = _expand_per_sample(alpha, nd)
        x = x + a * p
        r = r - a * mp
        rs_new = _sqnorm(r, nd)
        if precond is None:
            z, rz_new = r, rs_new
        else:
            z = precond(r)
            rz_new = _inner(r, z, nd).real
        beta = torch.where(ok, rz_new / torch.where(rz > 0, rz, torch.ones_like(rz)),
                           torch.zeros_like(rz))
        p = z + _expand_per_sample(beta, nd) * p
        rs = torch.where(ok, rs_new, rs)
        rz = torch.where(ok, rz_new, rz)
        active = ok & (rs.sqrt() > thresh)
        if it % check_every == 0 and not bool(active.any()):
            break
    return x, it, rs.sqrt(), rs.sqrt() <= thresh


class _ImplicitCG(torch.autograd.Function):
    """x = M⁻¹ b with gradients by implicit differentiation (M Hermitian positive definite).

    Backward: z = M⁻¹ g (one more CG solve); db = z; dθ = -∂/∂θ Re<z, M_θ x>.
    """

    @staticmethod
    def forward(ctx, op, b, opts, *tensors):
        with torch.no_grad():
            x, n_iter, res, conv = _cg_loop(op, b, None, *opts)
        ctx.op, ctx.opts = op, opts
        ctx.save_for_backward(x)
        n = torch.tensor(n_iter)
        ctx.mark_non_differentiable(res, conv, n)
        return x, res, conv, n

    @staticmethod
    def backward(ctx, g, _g_res, _g_conv, _g_n):
        (x,) = ctx.saved_tensors
        op = ctx.op
        with torch.no_grad():
            z, _, _, conv = _cg_loop(op, g, None, *ctx.opts)
        if not bool(conv.all()):
            warnings.warn("cg: the implicit-gradient solve did not converge; gradients are "
                          "approximate (raise max_iter)", RuntimeWarning, stacklevel=2)
        tensors = op._tensors()
        need = [t.requires_grad for t in tensors]
        grads: list[Tensor | None] = [None] * len(tensors)
        if any(need):
            with torch.enable_grad():
                val = _inner(z.detach(), op.forward(x.detach()), x.ndim).real
                wrt = [t for t, n in zip(tensors, need, strict=True) if n]
                gs = torch.autograd.grad(-val, wrt, allow_unused=True)
            it = iter(gs)
            grads = [next(it) if n else None for n in need]
        return (None, z, None, *grads)


def cg(op: LinearOperator, b: Tensor, *, x0: Tensor | None = None, rtol: float | None = None,
       atol: float = 0.0, max_iter: int | None = None, check_every: int = 1,
       throw: bool = False, preconditioner=None) -> CGResult:
    r"""Batched conjugate gradient for :math:`M x = b`, :math:`M` Hermitian positive definite.

    Each sample has its own step sizes and stops on its own: a sample whose residual satisfies
    :math:`\|r\| \le \max(\mathrm{rtol}\,\|b\|, \mathrm{atol})` is frozen while the others go on.

    Gradients w.r.t. ``b`` and every tensor of ``op`` (its parameters and buffers that require
    grad, e.g. a learnable PSF or a per-sample damping) are computed by implicit
    differentiation: the backward pass solves :math:`M z = \bar x` once more and returns
    :math:`\bar b = z` and
    :math:`\bar\theta = -\partial_\theta \mathrm{Re}\langle z, M_\theta x\rangle`.
    No graph of the iterations is kept (memory is independent of the iteration count). When
    ``x0`` is given, the result is not differentiated (plain no-grad iterations).

    Parameters
    ----------
    op : LinearOperator
        Square, Hermitian positive definite (e.g. ``A.gram() + rho * Identity(...)``).
    b : Tensor, shape ``(*batch, *in_shape)``
    x0 : Tensor, optional
        Initial guess (default zero).
    rtol : float, optional
        Relative tolerance on the residual norm, per sample. Default: follows ``b``'s precision,
        ``1e-10`` for float64/complex128 and ``1e-6`` for float32/complex64
        (:func:`operators.solvers.default_cg_rtol`); the error of the solution is about
        ``rtol`` times the condition number.
    atol : float, default 0
        Absolute tolerance on the residual norm, per sample.
    max_iter : int, optional
        Default ``10 * prod(in_shape)``.
    check_every : int, default 1
        Test for global convergence (a host synchronization on GPUs) every ``check_every``
        iterations; converged samples are frozen at every iteration regardless.
    throw : bool, default False
        Raise ``RuntimeError`` if some sample did not converge (else just report it).
    preconditioner : LinearOperator or callable, optional
        :math:`P \approx M^{-1}`, Hermitian positive definite, applied to batched residuals
        ``(*batch, *in_shape)`` (preconditioned CG: step sizes from :math:`\langle r, P r
        \rangle`). The stopping test stays on the unpreconditioned :math:`\|r\|`, so a
        preconditioner changes the iteration count, not the tolerance. The implicit-gradient
        solve uses it too.

    Returns
    -------
    CGResult

    Raises
    ------
    TypeError, ValueError
        For a non-operator, a non-square operator, bad shapes or options.
    RuntimeError
        With ``throw=True``, if not all samples converged.

    Examples
    --------
    >>> import torch
    >>> from operators import Dense, cg
    >>> M = Dense(torch.tensor([[4.0, 1.0], [1.0, 3.0]]))
    >>> cg(M, torch.tensor([1.0, 2.0])).solution
    tensor([0.0909, 0.6364])
    """
    if rtol is None:  # a non-tensor b is rejected by _validate
        rtol = default_cg_rtol(b.dtype) if isinstance(b, Tensor) else 1e-6
    max_iter = _validate(op, b, rtol, atol, max_iter, check_every)
    if preconditioner is not None:
        if isinstance(preconditioner, LinearOperator):
            if preconditioner.in_shape != op.in_shape or preconditioner.out_shape != op.in_shape:
                raise ValueError(f"cg: the preconditioner maps {preconditioner.in_shape} -> "
                                 f"{preconditioner.out_shape}, the system needs {op.in_shape} -> "
                                 f"{op.in_shape}")
            preconditioner = preconditioner.forward
        elif not callable(preconditioner):
            raise TypeError(f"cg: preconditioner must be a LinearOperator or a callable "
                            f"(batched residual -> batched residual), got "
                            f"{type(preconditioner).__name__}")
    if b.numel() == 0:  # an empty batch: solve one zero sample, return none
        batch = tuple(b.shape[: b.ndim - len(op.in_shape)])
        one = cg(op, b.new_zeros((*(max(s, 1) for s in batch), *op.in_shape)), rtol=rtol,
                 atol=atol, max_iter=max_iter, check_every=check_every,
                 preconditioner=preconditioner)
        return CGResult(solution=_empty_slice(one.solution, batch, len(op.in_shape)), n_iter=0,
                        residual_norm=_empty_slice(one.residual_norm, batch, 0),
                        converged=_empty_slice(one.converged, batch, 0))
    opts = (rtol, atol, max_iter, check_every, preconditioner)
    if x0 is not None:
        op._check_input(x0, op.in_shape, "cg(x0)")
        with torch.no_grad():
            x, n_iter, res, conv = _cg_loop(op, b, x0, *opts)
    else:
        tensors = op._tensors()
        needs_grad = torch.is_grad_enabled() and (b.requires_grad or
                                                  any(t.requires_grad for t in tensors))
        if needs_grad:
            x, res, conv, n = _ImplicitCG.apply(op, b, opts, *tensors)
            n_iter = int(n)
        else:
            with torch.no_grad():
                x, n_iter, res, conv = _cg_loop(op, b, None, *opts)
    if throw and not bool(conv.all()):
        raise RuntimeError(f"cg did not converge in {max_iter} iterations for "
                           f"{int((~conv).sum())} sample(s); final residual norms "
                           f"{res.flatten()[:5].tolist()}")
    return CGResult(solution=x, n_iter=n_iter, residual_norm=res, converged=conv)
