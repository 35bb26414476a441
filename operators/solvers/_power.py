"""Batched power iteration for the largest eigenvalue of a Hermitian operator."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses

import torch
from torch import Tensor

from sciml_inverse import check_int, check_real
from sciml_inverse._deprecation import renamed_arguments

from .._base import LinearOperator, _expand_per_sample, _inner, _sqnorm

__all__ = ["power_method", "PowerMethodResult"]

# Results of the power iterations run inside ``record_power_iterations()`` (e.g. to warn, as
# deepinv does, when an ``opnorm`` that needed iterations did not converge).
_RECORDER: contextvars.ContextVar[list | None] = contextvars.ContextVar("power_recorder",
                                                                          default=None)


@contextlib.contextmanager
def record_power_iterations():
    """Collect the :class:`PowerMethodResult` of every :func:`power_method` run in the block."""
    results: list = []
    token = _RECORDER.set(results)
    try:
        yield results
    finally:
        _RECORDER.reset(token)


@dataclasses.dataclass(frozen=True)
class PowerMethodResult:
    """Result of :func:`power_method`.

    Attributes
    ----------
    eigenvalue : Tensor, shape ``batch_shape``
        Rayleigh-quotient estimate of the largest-magnitude eigenvalue, per sample.
    eigenvector : Tensor, shape ``(*batch_shape, *in_shape)``
        Unit-norm eigenvector estimate.
    n_iter : int
    converged : Tensor of bool, shape ``batch_shape``
    """

    eigenvalue: Tensor
    eigenvector: Tensor
    n_iter: int
    converged: Tensor


@renamed_arguments(n_iter="max_iter")
def power_method(op: LinearOperator, *, max_iter: int = 200, tol: float = 1e-7,
                 x0: Tensor | None = None, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> PowerMethodResult:
    r"""Power iteration for the dominant eigenpair of a Hermitian operator, per sample.

    Iterates :math:`v \leftarrow Mv / \|Mv\|` and stops when the Rayleigh quotient
    :math:`\lambda = \langle v, Mv\rangle` changes by less than ``tol * |λ|`` for every sample.
    For the spectral norm of ``A`` use ``A.opnorm()`` (power iteration on :math:`A^H A`, with
    closed forms where known).

    Parameters
    ----------
    op : LinearOperator
        Square and Hermitian (e.g. a Gram operator).
    max_iter : int, default 200
        Maximum iterations (the former name ``n_iter`` still works, with a
        ``DeprecationWarning``). The result's ``n_iter`` is the number run.
    tol : float, default 1e-7
        Relative tolerance on the eigenvalue.
    x0 : Tensor, optional
        Start vector ``(*batch_shape, *in_shape)``; default Gaussian from ``generator``.
    generator : torch.Generator, optional
        For a reproducible random start.
    dtype, device : optional
        Of the random start (default: the operator's tensors', else float32 on CPU).

    Returns
    -------
    PowerMethodResult

    Raises
    ------
    TypeError, ValueError
        Non-operator, non-square operator, or bad options.

    Examples
    --------
    >>> import torch
    >>> from operators import Dense, power_method
    >>> M = Dense(torch.tensor([[2.0, 0.0], [0.0, 5.0]]))
    >>> round(float(power_method(M).eigenvalue), 4)
    5.0
    """
    if not isinstance(op, LinearOperator):
        raise TypeError(f"power_method expects a LinearOperator, got {type(op).__name__}")
    if op.in_shape != op.out_shape:
        raise ValueError(f"power_method needs a square operator, got {op.in_shape} -> "
                         f"{op.out_shape}; use A.opnorm() for the norm of a rectangular A")
    check_int("max_iter", max_iter, 1)
    check_real("tol", tol, positive=True, hint="the relative change of the eigenvalue estimate "
                                              "that stops the iteration")
    nd = len(op.in_shape)
    if x0 is None:
        ref = op._reference_tensor()
        if dtype is None:
            dtype = ref.dtype if ref is not None else torch.get_default_dtype()
            if op.complex_input and not dtype.is_complex:
                dtype = torch.promote_types(dtype, torch.complex64)
        if device is None:
            device = ref.device if ref is not None else None
        gen_device = generator.device if generator is not None else "cpu"
        x0 = torch.randn(*op.batch_shape, *op.in_shape, dtype=dtype, device=gen_device,
                         generator=generator).to(device)
    else:
        op._check_input(x0, op.in_shape, "power_method(x0)")
    with torch.no_grad():
        v = x0 / _expand_per_sample(_sqnorm(x0, nd).sqrt(), nd)
        lam = torch.zeros(v.shape[: v.ndim - nd], dtype=v.real.dtype, device=v.device)
        conv = torch.zeros_like(lam, dtype=torch.bool)
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007
            mv = op.forward(v)
            lam_new = _inner(v, mv, nd).real
            nrm = _sqnorm(mv, nd).sqrt()
            conv = (lam_new - lam).abs() <= tol * lam_new.abs()
            lam = lam_new
            if bool((nrm == 0).all()):
                break
            v = mv / _expand_per_sample(torch.where(nrm > 0, nrm, torch.ones_like(nrm)), nd)
            if bool(conv.all()):
                break
    result = PowerMethodResult(eigenvalue=lam, eigenvector=v, n_iter=it, converged=conv)
    recorder = _RECORDER.get()
    if recorder is not None:
        recorder.append(result)
    return result
