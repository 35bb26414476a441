"""Explicit matrices: :class:`Dense`."""

from __future__ import annotations

import torch
from torch import Tensor

from sciml_inverse import check_finite

from ._base import LinearOperator
from ._fourier import _param_batch

__all__ = ["Dense"]


class Dense(LinearOperator):
    r"""A matrix :math:`A \in \mathbb{C}^{m \times n}` acting on vectors of length ``n``.

    Parameters
    ----------
    matrix : Tensor, shape ``(*batch, m, n)``
        Leading dims are per-sample batch dims (one matrix per sample).

    Notes
    -----
    ``solve_normal`` forms :math:`A^H A + \rho I` (``n x n``) and solves it by Cholesky, and
    ``opnorm`` is the largest singular value (``torch.linalg.matrix_norm(ord=2)``); both are exact
    and meant for the small matrices this class is for.

    Raises
    ------
    TypeError, ValueError
        If ``matrix`` is not a floating-point/complex tensor with at least two dims, or holds
        NaN or inf.

    Examples
    --------
    >>> import torch
    >>> from operators import Dense
    >>> A = Dense(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    >>> A.opnorm()
    tensor(4.)
    """

    def __init__(self, matrix: Tensor) -> None:
        if not isinstance(matrix, Tensor):
            raise TypeError(f"matrix must be a torch.Tensor, got {type(matrix).__name__}")
        if not (matrix.is_floating_point() or matrix.is_complex()):
            raise TypeError(f"matrix must be floating-point or complex, got {matrix.dtype}")
        if matrix.ndim < 2:
            raise ValueError(f"matrix must have shape (*batch, m, n), got {tuple(matrix.shape)}")
        check_finite("matrix", matrix)
        super().__init__((matrix.shape[-1],), (matrix.shape[-2],))
        if isinstance(matrix, torch.nn.Parameter):
            self.matrix = matrix
        else:
            self.register_buffer("matrix", matrix)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _param_batch(self.matrix, 2)

    def forward(self, x: Tensor) -> Tensor:
        return _matvec(self.matrix, x)

    def adjoint(self, y: Tensor) -> Tensor:
        return _matvec(self.matrix.mH, y)

    def gram(self) -> LinearOperator:
        return Dense(self.matrix.mH @ self.matrix)

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        a = self.matrix
        g = a.mH @ a
        eye = torch.eye(g.shape[-1], dtype=g.dtype, device=g.device)
        m = g + rho[..., None] * eye if rho.ndim else g + rho * eye
        dtype = torch.promote_types(m.dtype, b.dtype)
        chol = torch.linalg.cholesky(m.to(dtype))
        return torch.cholesky_solve(b.to(dtype).unsqueeze(-1), chol).squeeze(-1)

    def opnorm(self, **kwargs) -> Tensor:
        return torch.linalg.matrix_norm(self.matrix, ord=2)


def _matvec(a: Tensor, x: Tensor) -> Tensor:
    """``a @ x`` over the last dim, promoting dtypes (``matmul`` itself does not promote)."""
    dtype = torch.promote_types(a.dtype, x.dtype)
    return (a.to(dtype) @ x.to(dtype).unsqueeze(-1)).squeeze(-1)
