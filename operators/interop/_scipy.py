"""``scipy.sparse.linalg.LinearOperator`` view of an operator (SciPy imported lazily)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._base import LinearOperator

__all__ = ["to_scipy"]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
_NUMPY = {torch.float32: "float32", torch.float64: "float64", torch.complex64: "complex64",
          torch.complex128: "complex128"}


def _is_complex(op: LinearOperator) -> bool:
    return op.complex_input or any(t.is_complex() for t in op._tensors())


def to_scipy(op: LinearOperator, *, dtype: torch.dtype | None = None):
    r"""View an operator as a ``scipy.sparse.linalg.LinearOperator`` (one matrix).

    The matrix has shape ``(prod(out_shape), prod(in_shape))`` and acts on flattened samples (C
    order). ``matvec``/``rmatvec`` convert the NumPy vector to a torch tensor on the operator's
    device, apply ``op``/``op.adjoint`` without autograd and convert back; ``matmat``/``rmatmat``
    map the columns to the batch dimension (one call for all columns).

    Parameters
    ----------
    op : LinearOperator
        An operator shared by all samples (``op.batch_shape == ()``).
    dtype : torch.dtype, optional
        Torch dtype of the vectors handed to ``op`` (and the SciPy ``dtype``). Default
        ``float64``, or ``complex128`` for complex operators (complex tensors or complex inputs),
        so that SciPy's solvers run in double precision. Complex vectors given to a real
        operator are passed as complex.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator

    Raises
    ------
    TypeError
        If ``op`` is not a :class:`operators.LinearOperator` or ``dtype`` is not float32,
        float64, complex64 or complex128.
    ValueError
        If ``op`` has per-sample parameters (non-empty ``batch_shape``): it is one matrix per
        sample, not one matrix.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from operators import Diagonal
    >>> from operators.interop import to_scipy
    >>> M = to_scipy(Diagonal(torch.tensor([1.0, 2.0])))
    >>> M.shape, M @ np.ones(2)
    ((2, 2), array([1., 2.]))
    """
    if not isinstance(op, LinearOperator):
        raise TypeError(f"to_scipy expects an operators.LinearOperator, got {type(op).__name__}")
    if op.batch_shape:
        raise ValueError(f"to_scipy needs an operator shared by all samples, but "
                         f"{type(op).__name__} has per-sample parameters (batch_shape "
                         f"{op.batch_shape}): it is one matrix per sample, not one matrix; "
                         f"select one sample's parameters and build the operator from them")
    if dtype is None:
        dtype = torch.complex128 if _is_complex(op) else torch.float64
    if dtype not in _NUMPY:
        raise TypeError(f"dtype must be one of {sorted(str(d) for d in _NUMPY)}, got {dtype!r}")

    import numpy as np
    from scipy.sparse.linalg import LinearOperator as ScipyLinearOperator

    in_shape, out_shape = op.in_shape, op.out_shape
    n, m = math.prod(in_shape), math.prod(out_shape)
    device = op._device() or torch.device("cpu")
    np_dtype = np.dtype(_NUMPY[dtype])

    def to_torch(a) -> Tensor:
        t = torch.as_tensor(np.asarray(a))
        target = dtype
        if t.is_complex() and not dtype.is_complex:
            target = _COMPLEX[dtype]
        return t.to(device=device, dtype=target)

    def to_numpy(t: Tensor):
        return t.detach().resolve_conj().cpu().numpy()

    def apply(fn, shape_in, shape_out, size_out):
        def vec(x):
            with torch.no_grad():
                return to_numpy(fn(to_torch(x).reshape(shape_in)).reshape(size_out))

        def mat(x):
            x = np.asarray(x)
            k = x.shape[1]
            with torch.no_grad():
                out = fn(to_torch(x.T).reshape(k, *shape_in)).reshape(k, size_out)
            return to_numpy(out).T

        return vec, mat

    matvec, matmat = apply(op, in_shape, out_shape, m)
    rmatvec, rmatmat = apply(op.adjoint, out_shape, in_shape, n)
    return ScipyLinearOperator((m, n), matvec=matvec, rmatvec=rmatvec, matmat=matmat,
                               rmatmat=rmatmat, dtype=np_dtype)
