r"""Darcy flow :math:`-\nabla\cdot(a\nabla u) = f` on :math:`[0,1]^2` with zero Dirichlet data.

Grid convention (the DGNO reference's 29 x 29 convention)
---------------------------------------------------------
Everything lives at the nodes of the uniform ``n x n`` grid on :math:`[0,1]^2` *including the
boundary nodes*: :math:`x_i = i h`, :math:`y_j = j h`, :math:`h = 1/(n-1)`, ``i, j = 0..n-1``
(``n = 29`` gives :math:`h = 1/28`, the spacing the reference uses for its nearest-node lookup of
:math:`a`). An array ``a`` of shape ``(..., n, n)`` holds :math:`a(x_i, y_j)` at ``a[..., i, j]``
(``"ij"`` indexing: the first axis is :math:`x`). Flattened coordinates (:func:`grid_nodes`) are
row-major: node ``(i, j)`` is row ``i * n + j`` of an ``(n * n, 2)`` array ``[x_i, y_j]``.

Discretisation
--------------
Vertex-centred finite volumes: the control volume of interior node ``(i, j)`` is the square
:math:`[x_i - h/2, x_i + h/2] \times [y_j - h/2, y_j + h/2]`. The flux through each face is
:math:`a_f (u_\text{nb} - u_P)/h`, with the face coefficient the *harmonic mean* of the two nodes
the face separates, e.g. :math:`a_{i+1/2,j} = 2 a_{i,j} a_{i+1,j}/(a_{i,j} + a_{i+1,j})` (the
exact effective conductivity of two half-cells in series), and the source is :math:`f(x_i, y_j)
h^2`. Dividing by :math:`h^2` gives the 5-point scheme

.. math::

    \frac{1}{h^2}\Big[(a_{i-\frac12,j} + a_{i+\frac12,j} + a_{i,j-\frac12} + a_{i,j+\frac12})
    u_{i,j} - a_{i-\frac12,j}u_{i-1,j} - a_{i+\frac12,j}u_{i+1,j} - a_{i,j-\frac12}u_{i,j-1}
    - a_{i,j+\frac12}u_{i,j+1}\Big] = f_{i,j}

for the :math:`(n-2)^2` interior unknowns, with :math:`u = 0` at the boundary nodes. The matrix is
symmetric positive definite (an irreducibly diagonally dominant M-matrix), so :math:`u > 0` inside
for :math:`f > 0`. For smooth :math:`a` and :math:`u` the scheme is second-order accurate at the
nodes. It is solved by a sparse LU factorisation (:func:`scipy.sparse.linalg.splu`).

Refinement (how the data sets are made)
---------------------------------------
With ``refine = r > 1`` the problem is solved on the grid with spacing :math:`h/r`
(``r (n-1) + 1`` nodes per side, e.g. 85 for ``n = 29``, ``r = 3``) and the solution is sampled
back at the ``n x n`` nodes. The coefficient is extended to the fine nodes either as the
*nearest-node* piecewise-constant function (the reference's lookup, node index
:math:`\lfloor x/h + 1/2 \rfloor`; two-phase fields) or bilinearly (smooth fields).

With nearest-node coefficients the phase interfaces lie on the lines midway between nodes. For
odd ``r`` these are also midway between fine nodes, where the harmonic face mean is the exact
series conductivity, so the scheme stays consistent and converges as ``r`` grows (``r = 1``
already is a consistent discretisation of the nearest-node problem). For even ``r`` fine nodes
lie *on* the interfaces and must be given one side's value, which biases the solution (a
4-times refinement is further from a fine reference than no refinement); even ``r`` is therefore
rejected with ``"nearest"``.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from sciml_inverse import check_int, check_real, library_version

from ._fields import (
    DEFAULT_ALPHA,
    DEFAULT_LENGTH_SCALE,
    piecewise_field,
    smooth_field,
)
from ._resumable import pool_chunks, run_resumable

__all__ = [
    "DarcyData",
    "darcy_operator",
    "generate_darcy",
    "grid_nodes",
    "solve_darcy",
]

#: Solver description stored in data files.
SOLVER = (
    "vertex-centred finite volumes, 5-point stencil, harmonic face means, "
    "scipy.sparse.linalg.splu"
)

SourceLike = float | np.ndarray | Callable[[np.ndarray, np.ndarray], Any]
_F_HINT = "the source f is a finite number, an (n, n) array or a callable f(x, y)"


# ----------------------------------------------------------------------------------------------
# grid
# ----------------------------------------------------------------------------------------------
def grid_nodes(grid: int) -> np.ndarray:
    """Coordinates of the ``grid x grid`` nodes of :math:`[0,1]^2`, boundary included.

    Parameters
    ----------
    grid
        Nodes per side ``n`` (>= 2).

    Returns
    -------
    numpy.ndarray
        ``(n * n, 2)`` float64; row ``i * n + j`` is ``(x_i, y_j) = (i, j) / (n - 1)``, the
        row-major flattening of an ``(n, n)`` field ``a[i, j]``.

    Raises
    ------
    TypeError
        If ``grid`` is not an int.
    ValueError
        If ``grid < 2``.
    """
    grid = check_int("grid", grid, 2, hint="nodes per side")
    t = np.linspace(0.0, 1.0, grid)
    xx, yy = np.meshgrid(t, t, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


# ----------------------------------------------------------------------------------------------
# assembly
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _pattern(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CSC structure of the 5-point matrix on ``m x m`` nodes ((m-2)^2 unknowns).

    Returns ``(indptr, indices, kind, fi, fj)``: for each stored entry (in CSC order) its kind
    (0 diagonal, 1 x-face, 2 y-face) and the face index ``(fi, fj)`` into the x-face array
    ``(m-1, m)`` or the y-face array ``(m, m-1)``; diagonal entries carry the node ``(i, j)``.
    """
    from scipy.sparse import coo_matrix

    k = m - 2
    ii, jj = np.meshgrid(np.arange(1, m - 1), np.arange(1, m - 1), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    p = (ii - 1) * k + (jj - 1)
    rows, cols, kinds, fis, fjs = [p], [p], [np.zeros_like(p)], [ii], [jj]
    # x-neighbours: face (i, j) of the x-face array separates nodes (i, j) and (i + 1, j)
    east = ii < m - 2
    rows += [p[east], p[east] + k]
    cols += [p[east] + k, p[east]]
    kinds += [np.ones(east.sum(), dtype=p.dtype)] * 2
    fis += [ii[east]] * 2
    fjs += [jj[east]] * 2
    # y-neighbours: face (i, j) of the y-face array separates nodes (i, j) and (i, j + 1)
    north = jj < m - 2
    rows += [p[north], p[north] + 1]
    cols += [p[north] + 1, p[north]]
    kinds += [np.full(north.sum(), 2, dtype=p.dtype)] * 2
    fis += [ii[north]] * 2
    fjs += [jj[north]] * 2
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    order = np.arange(rows_a.size, dtype=np.float64)
    csc = coo_matrix((order, (rows_a, cols_a)), shape=(k * k, k * k)).tocsc()
    csc.sort_indices()
    perm = csc.data.astype(np.int64)
    kind = np.concatenate(kinds)[perm]
    fi = np.concatenate(fis)[perm]
    fj = np.concatenate(fjs)[perm]
    return csc.indptr.copy(), csc.indices.copy(), kind, fi, fj


def _assemble(a: np.ndarray):
    """Sparse matrix (CSC) of the scheme for one ``(m, m)`` coefficient array."""
    from scipy.sparse import csc_matrix

    m = a.shape[-1]
    h2 = (1.0 / (m - 1)) ** 2
    ax = 2.0 * a[:-1, :] * a[1:, :] / (a[:-1, :] + a[1:, :])  # (m-1, m) x-faces
    ay = 2.0 * a[:, :-1] * a[:, 1:] / (a[:, :-1] + a[:, 1:])  # (m, m-1) y-faces
    indptr, indices, kind, fi, fj = _pattern(m)
    diag = ax[:-1, :] + ax[1:, :]  # (m-2, m) at rows 1..m-2
    diag = diag[:, 1:-1] + (ay[:, :-1] + ay[:, 1:])[1:-1, :]  # (m-2, m-2) interior nodes
    data = np.empty(kind.size, dtype=np.float64)
    d = kind == 0
    data[d] = diag[fi[d] - 1, fj[d] - 1]
    x = kind == 1
    data[x] = -ax[fi[x], fj[x]]
    y = kind == 2
    data[y] = -ay[fi[y], fj[y]]
    n_unknowns = (m - 2) ** 2
    return csc_matrix((data / h2, indices, indptr), shape=(n_unknowns, n_unknowns))


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------
def _is_tensor(a: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(a, torch.Tensor)


def _as_coefficients(a: object) -> tuple[np.ndarray, bool]:
    """``(B, n, n)`` float64 copy of ``a`` and whether ``a`` had a batch axis."""
    if _is_tensor(a):
        arr = a.detach().to("cpu").double().numpy()  # type: ignore[union-attr]
    elif isinstance(a, np.ndarray) or isinstance(a, (list, tuple)):
        arr = np.asarray(a)
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise TypeError(f"a must hold real numbers, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    else:
        raise TypeError(
            f"a must be a numpy array or torch tensor of shape (n, n) or (B, n, n), "
            f"got {type(a).__name__}"
        )
    if arr.ndim not in (2, 3) or arr.shape[-1] != arr.shape[-2]:
        raise ValueError(
            f"a must have shape (n, n) or (B, n, n) (coefficient values at the n x n grid nodes, "
            f"boundary included), got shape {arr.shape}"
        )
    n = arr.shape[-1]
    if n < 3:
        raise ValueError(
            f"the grid must have at least 3 nodes per side (one interior node), got {n}"
        )
    if arr.ndim == 3 and arr.shape[0] == 0:
        raise ValueError("a has an empty batch (shape (0, n, n)); pass at least one field")
    if not np.all(np.isfinite(arr)):
        bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(f"a contains {bad} NaN or infinite values; coefficients must be finite")
    if np.any(arr <= 0):
        raise ValueError(
            f"a must be strictly positive (the PDE is elliptic only for a > 0), got minimum "
            f"{arr.min():.6g}"
        )
    batched = arr.ndim == 3
    return (arr if batched else arr[None]), batched


def _check_refine(refine: object, interpolation: object) -> int:
    refine = check_int("refine", refine, 1, hint="1 solves on the data grid itself")
    if interpolation not in ("nearest", "linear"):
        raise ValueError(f"interpolation must be 'nearest' or 'linear', got {interpolation!r}")
    if interpolation == "nearest" and refine % 2 == 0:
        raise ValueError(
            f"refine must be odd with interpolation='nearest' (got {refine}): an even refinement "
            "puts solver nodes exactly on the phase interfaces of the nearest-node coefficient, "
            "which biases the solution (measured 0.4 % at refine=4 against 0.03 % at refine=3); "
            "use 1, 3, 5, ..."
        )
    return refine


def _nearest_index(n: int, r: int) -> np.ndarray:
    """Coarse node nearest to each fine node ``k`` (spacing h/r): ``floor(k/r + 1/2)``."""
    return (np.arange(r * (n - 1) + 1) + r // 2) // r


def _linear_interp_matrix(n: int, r: int) -> np.ndarray:
    """``(r (n-1) + 1, n)`` matrix of 1-D linear interpolation from coarse to fine nodes."""
    m = r * (n - 1) + 1
    k = np.arange(m)
    lo = np.minimum(k // r, n - 2)
    t = (k - lo * r) / r
    mat = np.zeros((m, n))
    mat[k, lo] = 1.0 - t
    mat[k, lo + 1] = t
    return mat


def _source(f: object, batch: int, n: int, r: int) -> np.ndarray:
    """Source at the ``m x m`` solver nodes: shape ``(1, m, m)`` or ``(B, m, m)``."""
    m = r * (n - 1) + 1
    if callable(f):
        t = np.linspace(0.0, 1.0, m)
        xx, yy = np.meshgrid(t, t, indexing="ij")
        values = np.asarray(f(xx, yy), dtype=np.float64)
        try:
            values = np.broadcast_to(values, (m, m))
        except ValueError as exc:
            raise ValueError(
                f"callable f must return values broadcastable to the ({m}, {m}) solver nodes, "
                f"got shape {values.shape}"
            ) from exc
        out = values[None]
    elif _is_tensor(f) or isinstance(f, (np.ndarray, list, tuple)):
        arr = (
            f.detach().to("cpu").double().numpy()  # type: ignore[union-attr]
            if _is_tensor(f)
            else np.asarray(f, dtype=np.float64)
        )
        if arr.ndim == 0:
            out = np.full((1, m, m), float(arr))
        else:
            if arr.shape not in ((n, n), (batch, n, n)):
                raise ValueError(
                    f"array f must be a scalar or have shape ({n}, {n}) or ({batch}, {n}, {n}) "
                    f"(values at the grid nodes), got shape {arr.shape}"
                )
            arr = arr.reshape(-1, n, n)
            if r > 1:
                p = _linear_interp_matrix(n, r)
                arr = np.einsum("ki,bij,lj->bkl", p, arr, p)
            out = arr
    elif isinstance(f, numbers.Real) and not isinstance(f, bool):
        out = np.full((1, m, m), check_real("f", f, hint=_F_HINT))
    else:
        raise TypeError(
            f"f must be a number, an (n, n) array or a callable f(x, y), got {type(f).__name__}"
        )
    if not np.all(np.isfinite(out)):
        raise ValueError("f contains NaN or infinite values")
    return out


# ----------------------------------------------------------------------------------------------
# solve
# ----------------------------------------------------------------------------------------------
def _extend(a: np.ndarray, r: int, interpolation: str) -> np.ndarray:
    """Coefficient of one ``(n, n)`` field at the ``(m, m)`` nodes of the refined grid."""
    n = a.shape[-1]
    if interpolation == "nearest":
        idx = _nearest_index(n, r)
        return a[idx[:, None], idx[None, :]]
    p = _linear_interp_matrix(n, r)
    return p @ a @ p.T


def _solve_one(a: np.ndarray, f: np.ndarray, r: int, interpolation: str) -> np.ndarray:
    """Solve for one ``(n, n)`` coefficient with source ``f`` at the ``(m, m)`` solver nodes."""
    from scipy.sparse.linalg import splu

    if r > 1:
        a = _extend(a, r, interpolation)
    m = a.shape[-1]
    mat = _assemble(a)
    lu = splu(mat, permc_spec="MMD_AT_PLUS_A")
    u = np.zeros((m, m))
    u[1:-1, 1:-1] = lu.solve(np.ascontiguousarray(f[1:-1, 1:-1]).ravel()).reshape(m - 2, m - 2)
    return u[::r, ::r]


def _solve_chunk(args: tuple[np.ndarray, np.ndarray, int, str]) -> np.ndarray:
    a, f, r, interpolation = args
    out = np.empty_like(a)
    for b in range(a.shape[0]):
        out[b] = _solve_one(a[b], f[b if f.shape[0] > 1 else 0], r, interpolation)
    return out


def _check_workers(workers: object) -> int:
    return check_int("workers", workers, 1, hint="the number of solver processes")


def _iter_solutions(
    a: np.ndarray, f: np.ndarray, r: int, interpolation: str, workers: int, start: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Solve fields ``start..B-1``; yield ``(first index, solutions)`` per chunk, in order."""
    batch = a.shape[0]

    def src(s: int, e: int) -> np.ndarray:
        return f[s:e] if f.shape[0] > 1 else f

    if workers == 1 or batch - start == 1:
        for b in range(start, batch):
            yield b, _solve_chunk((a[b : b + 1], src(b, b + 1), r, interpolation))
        return
    size = max(1, min(16, math.ceil((batch - start) / (4 * workers))))
    starts = list(range(start, batch, size))
    jobs = [(a[s : s + size], src(s, s + size), r, interpolation) for s in starts]
    yield from pool_chunks(_solve_chunk, jobs, starts, workers)


def solve_darcy(
    a: Any,
    f: SourceLike = 10.0,
    *,
    refine: int = 1,
    interpolation: Literal["nearest", "linear"] = "nearest",
    workers: int = 1,
    progress: bool = False,
) -> Any:
    r"""Solve :math:`-\nabla\cdot(a\nabla u) = f` on :math:`[0,1]^2`, :math:`u = 0` on the boundary.

    Vertex-centred finite volumes with harmonic face means and a sparse direct solve; see the
    module documentation (:mod:`sciml.pde._darcy`) for the grid convention and the scheme.

    Parameters
    ----------
    a
        Coefficient at the grid nodes, boundary included: a numpy array or torch tensor of shape
        ``(n, n)`` or ``(B, n, n)`` with ``a[..., i, j]`` = :math:`a(i h, j h)`,
        :math:`h = 1/(n-1)`, ``n >= 3``; finite and strictly positive.
    f
        Source: a number (default 10, the DGNO benchmark), an array of shape ``(n, n)`` or
        ``(B, n, n)`` of nodal values (bilinearly interpolated when ``refine > 1``), or a callable
        ``f(x, y)`` taking ``(m, m)`` coordinate arrays (``"ij"`` meshgrid of the solver nodes,
        ``m = refine (n-1) + 1``) and returning values broadcastable to ``(m, m)``.
    refine
        Solve on the grid refined ``refine`` times and sample the solution back at the ``n x n``
        nodes (1, the default: solve on the data grid).
    interpolation
        How the coefficient is extended to the refined grid: ``"nearest"`` (the piecewise-constant
        reading of two-phase fields, as the DGNO reference looks ``a`` up; ``refine`` must then be
        odd, so that no solver node lies on a phase interface) or ``"linear"`` (bilinear, for
        smooth fields). Ignored for ``refine = 1``.
    workers
        Processes for a batch (``spawn`` context; scripts need an ``if __name__ == "__main__"``
        guard). The result does not depend on it.
    progress
        Show a tqdm progress bar over the batch.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``u`` with the shape of ``a`` (``u = 0`` on the boundary nodes): float64 numpy for array
        input, a tensor of ``a``'s dtype and device for tensor input (no gradient flows).

    Raises
    ------
    TypeError
        For an unsupported type of ``a``, ``f``, ``refine`` or ``workers``.
    ValueError
        If ``a`` is not ``(n, n)``/``(B, n, n)``, ``n < 3``, ``a`` has NaN/inf or non-positive
        entries, ``f`` has a wrong shape or non-finite values, ``refine``/``workers`` < 1, an
        unknown ``interpolation``, or an even ``refine`` with ``"nearest"``.

    Examples
    --------
    >>> import numpy as np
    >>> u = solve_darcy(np.ones((29, 29)))
    >>> u.shape, float(u[0].max()), bool(u[1:-1, 1:-1].min() > 0)
    ((29, 29), 0.0, True)
    """
    coeff, batched = _as_coefficients(a)
    r = _check_refine(refine, interpolation)
    workers = _check_workers(workers)
    batch, n = coeff.shape[0], coeff.shape[-1]
    src = _source(f, batch, n, r)
    u = run_resumable(lambda start: _iter_solutions(coeff, src, r, interpolation, workers, start),
                      batch, coeff.shape[1:], checkpoint=None, key="", progress=bool(progress),
                      desc="darcy solve", unit="field")
    if not batched:
        u = u[0]
    if _is_tensor(a):
        import torch

        return torch.as_tensor(u, dtype=a.dtype, device=a.device)
    return u


def darcy_operator(a: Any):
    r"""The finite-volume matrix of :func:`solve_darcy` (``refine = 1``) for one coefficient.

    Parameters
    ----------
    a
        ``(n, n)`` coefficient at the grid nodes (numpy or torch), finite and positive.

    Returns
    -------
    scipy.sparse.csc_matrix
        ``((n-2)^2, (n-2)^2)`` symmetric positive definite matrix :math:`A_h` (including the
        :math:`1/h^2` factor) acting on the interior nodal values ``u[1:-1, 1:-1].ravel()``
        (row-major), such that :math:`A_h u = f` at the interior nodes.

    Raises
    ------
    TypeError, ValueError
        As :func:`solve_darcy` for ``a``; ``ValueError`` also for a batched ``a``.
    """
    coeff, batched = _as_coefficients(a)
    if batched:
        raise ValueError(f"darcy_operator takes one (n, n) field, got shape {coeff.shape}")
    return _assemble(coeff[0])


# ----------------------------------------------------------------------------------------------
# data sets
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class DarcyData:
    """A Darcy data set: coefficients, solutions, node coordinates and generating parameters.

    Attributes
    ----------
    coeff
        ``(B, n, n)`` float64 coefficient at the nodes (``coeff[b, i, j]`` at ``(x_i, y_j)``).
    sol
        ``(B, n, n)`` float64 solution at the same nodes (0 on the boundary).
    x
        ``(n * n, 2)`` float64 node coordinates, row-major (row ``i * n + j`` is
        ``(x_i, y_j)``), so ``coeff.reshape(B, -1)[:, k]`` is the value at ``x[k]``.
    attrs
        Generating parameters (kind, n, grid, seed, field parameters, f, refine, solver,
        versions), or what a foreign file provides.

    Raises
    ------
    ValueError
        If the shapes are inconsistent.
    """

    coeff: np.ndarray
    sol: np.ndarray
    x: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        coeff = np.asarray(self.coeff, dtype=np.float64)
        sol = np.asarray(self.sol, dtype=np.float64)
        x = np.asarray(self.x, dtype=np.float64)
        if coeff.ndim != 3 or coeff.shape[1] != coeff.shape[2]:
            raise ValueError(f"coeff must have shape (B, n, n), got {coeff.shape}")
        if sol.shape != coeff.shape:
            raise ValueError(
                f"sol must have the shape of coeff {coeff.shape}, got {sol.shape}"
            )
        n = coeff.shape[1]
        if x.shape != (n * n, 2):
            raise ValueError(f"x must have shape ({n * n}, 2) for a {n} x {n} grid, got {x.shape}")
        object.__setattr__(self, "coeff", coeff)
        object.__setattr__(self, "sol", sol)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "attrs", dict(self.attrs))

    def __repr__(self) -> str:
        kind = self.attrs.get("kind", self.attrs.get("source", "?"))
        return f"DarcyData(samples={len(self)}, grid={self.grid}, kind={kind!r})"

    @property
    def grid(self) -> int:
        """Nodes per side ``n``."""
        return int(self.coeff.shape[1])

    def __len__(self) -> int:
        return int(self.coeff.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> DarcyData:
        """A subset of samples (``data[:1000]``, ``data[idx]``) with the same ``x`` and attrs."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return DarcyData(self.coeff[index], self.sol[index], self.x, dict(self.attrs))

    def split(self, *sizes: int) -> tuple[DarcyData, ...]:
        """Consecutive subsets of the given sizes: ``train, val, test = d.split(1000, 200, 200)``.

        Raises
        ------
        ValueError
            If a size is negative or the sizes add up to more than ``len(self)``.
        """
        if any(int(s) < 0 for s in sizes) or sum(sizes) > len(self):
            raise ValueError(
                f"split sizes must be non-negative and add up to at most {len(self)}, got {sizes}"
            )
        out, start = [], 0
        for s in sizes:
            out.append(self[start : start + int(s)])
            start += int(s)
        return tuple(out)

    def to_torch(self, dtype: Any = None, device: Any = None) -> tuple[Any, Any, Any]:
        """``(coeff, sol, x)`` as torch tensors (default dtype ``torch.get_default_dtype()``)."""
        import torch

        dtype = torch.get_default_dtype() if dtype is None else dtype
        return tuple(
            torch.as_tensor(v, dtype=dtype, device=device) for v in (self.coeff, self.sol, self.x)
        )


_FIELD_PARAMS: dict[str, dict[str, Any]] = {
    "piecewise": {
        "length_scale": DEFAULT_LENGTH_SCALE,
        "alpha": DEFAULT_ALPHA,
        "values": (5.0, 10.0),
        "threshold": 0.0,
    },
    "smooth": {
        "length_scale": DEFAULT_LENGTH_SCALE,
        "alpha": DEFAULT_ALPHA,
        "transform": "exp",
    },
}


#: Samples between two checkpoint writes of :func:`generate_darcy`.
CHECKPOINT_EVERY = 100


def generate_darcy(
    kind: Literal["piecewise", "smooth"],
    n: int,
    grid: int,
    *,
    seed: int,
    workers: int = 1,
    progress: bool = True,
    f: float = 10.0,
    refine: int = 3,
    checkpoint: str | os.PathLike[str] | None = None,
    **field_kw: Any,
) -> DarcyData:
    r"""Generate a Darcy data set: random coefficients and their finite-volume solutions.

    The fields come from :func:`~sciml.pde.piecewise_field` (``kind="piecewise"``: two-phase
    :math:`a \in \{5, 10\}`) or :func:`~sciml.pde.smooth_field` (``kind="smooth"``), drawn in the
    main process with ``seed`` (so the data do not depend on ``workers``, and the first ``m``
    samples of a larger set equal a set of size ``m``); the solutions come from
    :func:`solve_darcy` with source ``f`` and ``refine``, reading piecewise fields as
    nearest-node (piecewise-constant) functions and interpolating smooth fields bilinearly.

    Parameters
    ----------
    kind
        ``"piecewise"`` or ``"smooth"``.
    n
        Number of samples ``B``.
    grid
        Nodes per side (29 in the reference).
    seed
        Seed of the coefficient fields.
    workers
        Processes for the solves.
    progress
        Show a tqdm progress bar.
    f
        Constant source (10 in the reference).
    refine
        Refinement of the solver grid (default 3: 85 x 85 solver nodes for ``grid = 29``). For
        piecewise fields it must be odd; measured relative L2 distance to a 15-times refined
        solve, 8 fields at 29 x 29: 0.17 % (1), 0.034 % (3), 0.014 % (5). (The reference note's
        4-times refinement with ties rounded up gave 0.36 %: even refinements put solver nodes on
        the phase interfaces, see :func:`solve_darcy`.)
    checkpoint
        Optional ``.npz`` file that makes a long run resumable: the solutions computed so far are
        written to it (atomically, every ``CHECKPOINT_EVERY`` samples), a later call with the same
        generating parameters continues from it (the fields are re-drawn from ``seed``, so only
        solutions are stored), and it is deleted when the run completes. A checkpoint written
        with other parameters raises ``ValueError``.
    **field_kw
        Parameters of the field generator: ``length_scale``, ``alpha``, and ``values``,
        ``threshold`` (piecewise) or ``transform`` (smooth).

    Returns
    -------
    DarcyData
        With ``attrs`` holding ``kind``, ``n``, ``grid``, ``seed``, every field parameter
        (defaults included), ``f``, ``refine``, ``solver``, ``library_version`` and the numpy and
        scipy versions.

    Raises
    ------
    ValueError
        For an unknown ``kind`` or field parameter, invalid sizes (see the field generators
        and :func:`solve_darcy`), or a ``checkpoint`` of other generating parameters.
    TypeError
        If ``f`` is not a number.
    """
    if kind not in _FIELD_PARAMS:
        raise ValueError(f"kind must be one of {sorted(_FIELD_PARAMS)}, got {kind!r}")
    unknown = sorted(set(field_kw) - set(_FIELD_PARAMS[kind]))
    if unknown:
        raise ValueError(
            f"unknown field parameter(s) {unknown} for kind {kind!r}; "
            f"allowed: {sorted(_FIELD_PARAMS[kind])}"
        )
    f = check_real("f", f, hint="generate_darcy takes a constant source; use solve_darcy for "
                                "a field or a callable")
    interpolation = "nearest" if kind == "piecewise" else "linear"
    refine = _check_refine(refine, interpolation)
    workers = _check_workers(workers)
    params = {**_FIELD_PARAMS[kind], **field_kw}
    generator = piecewise_field if kind == "piecewise" else smooth_field
    coeff = generator(n, grid, seed=seed, **params)
    if "values" in params:
        params["values"] = tuple(float(v) for v in params["values"])
    src = _source(float(f), n, grid, refine)
    key = json.dumps(
        {"kind": kind, "grid": int(grid), "seed": int(seed), "f": float(f),
         "refine": refine, "interpolation": interpolation, "solver": SOLVER,
         **{k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}},
        sort_keys=True,
    )
    sol = run_resumable(
        lambda start: _iter_solutions(coeff, src, refine, interpolation, workers, start),
        coeff.shape[0], coeff.shape[1:], checkpoint=checkpoint, key=key,
        every=CHECKPOINT_EVERY, progress=bool(progress), desc=f"darcy {kind}", unit="field",
    )
    import scipy

    attrs: dict[str, Any] = {
        "kind": kind,
        "n": int(n),
        "grid": int(grid),
        "seed": int(seed),
        **params,
        "f": float(f),
        "refine": int(refine),
        "interpolation": interpolation,
        "solver": SOLVER,
        "library_version": library_version(),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
    }
    return DarcyData(coeff=coeff, sol=sol, x=grid_nodes(grid), attrs=attrs)

