"""The abstract :class:`LinearOperator` and the input checks shared by every operator.

Conventions (see ``docs/guide/operators.rst``):

* an operator maps one sample of shape ``in_shape`` to one of shape ``out_shape``; inputs are
  ``(*batch, *in_shape)`` tensors and outputs ``(*batch, *out_shape)``;
* operator tensors (PSFs, masks, diagonals, scales) may carry leading *batch* dimensions that
  broadcast against the input's batch dimensions (per-sample operators); ``batch_shape`` is the
  broadcast of those leading dimensions;
* the inner product is ``<x, y> = sum(conj(x) * y)`` over the event dimensions, per sample;
* devices follow the inputs and a device mismatch raises; dtypes are promoted, never downcast.
"""

from __future__ import annotations

import abc
import functools
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from sciml_inverse import check_positive_tensor, check_real, check_representable

__all__ = ["LinearOperator"]


def _as_shape(shape: Sequence[int] | int | torch.Size, name: str) -> tuple[int, ...]:
    """Validate and normalize a per-sample shape."""
    if isinstance(shape, int):
        shape = (shape,)
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError) as err:  # not iterable, or e.g. a string element
        raise TypeError(f"{name} must be a sequence of ints, got {shape!r}") from err
    if any(s <= 0 for s in out) or any(int(s) != s for s in shape):
        raise ValueError(f"{name} must contain positive integers, got {tuple(shape)!r}")
    return out


def _broadcast_batch(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError as err:
        raise ValueError(f"per-sample batch shapes {shapes} do not broadcast") from err


def _inner(x: Tensor, y: Tensor, ndim: int) -> Tensor:
    """Per-sample inner product ``sum(conj(x) * y)`` over the last ``ndim`` dims."""
    prod = x.conj() * y if (x.is_complex() or y.is_complex()) else x * y
    if ndim == 0:
        return prod
    return prod.sum(dim=tuple(range(-ndim, 0)))


def _sqnorm(x: Tensor, ndim: int) -> Tensor:
    """Per-sample squared norm (real) over the last ``ndim`` dims."""
    a = x.abs() if x.is_complex() else x
    return (a * a).sum(dim=tuple(range(-ndim, 0))) if ndim else a * a


def _expand_per_sample(c: Tensor, ndim: int) -> Tensor:
    """Append ``ndim`` singleton dims to a per-sample tensor of shape ``batch_shape``."""
    return c.reshape(c.shape + (1,) * ndim)


class LinearOperator(nn.Module, abc.ABC):
    r"""Abstract batched, matrix-free linear operator :math:`A`.

    Subclasses implement :meth:`forward` (:math:`y = Ax`) and :meth:`adjoint`
    (:math:`x = A^H y`) and may override the fast paths :meth:`gram`, :meth:`solve_normal` and
    :meth:`opnorm` when their structure allows a closed form.

    Parameters
    ----------
    in_shape, out_shape : sequence of int
        Shape of one input and one output sample (without batch dimensions).

    Notes
    -----
    Operator tensors are registered as buffers (or parameters), so ``.to(device)``,
    ``state_dict`` and ``DistributedDataParallel`` work. ``op(x)`` accepts
    ``(*batch, *in_shape)`` tensors; ``batch`` must broadcast against :attr:`batch_shape`.

    Algebra: ``A @ B`` composes (``B`` first), ``A @ x`` applies, ``A + B``, ``A - B``,
    ``c * A`` with a Python scalar or a per-sample tensor of shape ``batch_shape``,
    ``A.H`` is the adjoint (``A.H.H is A``).

    Examples
    --------
    >>> import torch
    >>> from operators import Diagonal
    >>> A = Diagonal(torch.tensor([1.0, 2.0, 3.0]))
    >>> (A.H @ A)(torch.ones(3))
    tensor([1., 4., 9.])
    >>> float(A.opnorm())
    3.0
    """

    #: ``True`` for operators defined on complex vectors (e.g. Fourier sampling): real inputs
    #: are promoted to complex and adjoint tests must use complex vectors.
    complex_input: bool = False

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]) -> None:
        super().__init__()
        self._in_shape = _as_shape(in_shape, "in_shape")
        self._out_shape = _as_shape(out_shape, "out_shape")

    # ------------------------------------------------------------------ shapes and metadata
    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input sample."""
        return self._in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of one output sample."""
        return self._out_shape

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Broadcast shape of the operator's per-sample parameters (``()`` if shared)."""
        return ()

    def _tensors(self) -> list[Tensor]:
        """Tensors the operator's action depends on (used for implicit gradients)."""
        seen: dict[int, Tensor] = {}
        for t in list(self.parameters()) + list(self.buffers()):
            seen.setdefault(id(t), t)
        return list(seen.values())

    def _reference_tensor(self) -> Tensor | None:
        """The tensor whose device and dtype the operator follows, or None if it has none.

        0-d CPU tensors (e.g. the scale of ``2.0 * A``) are passed over: they combine with
        tensors on any device, so they must not decide the operator's device.
        """
        scalar = None
        for t in self._tensors():
            if t.ndim or t.device.type != "cpu":
                return t
            scalar = t if scalar is None else scalar
        return scalar

    def _device(self) -> torch.device | None:
        ref = self._reference_tensor()
        if ref is None or (ref.ndim == 0 and ref.device.type == "cpu"):
            return None
        return ref.device

    # ------------------------------------------------------------------ cached metadata
    # ``_check_input`` runs on every application, so the device and the per-sample batch shape
    # are cached (as are e.g. Gram symbols of convolutions). The cache is dropped by ``.to()``,
    # ``.cuda()``, ``.double()`` (``_apply``) and by
    # attribute or buffer assignment on this operator; a cached value that disagrees with the
    # input is recomputed before an error is raised, so a stale cache (e.g. after moving only a
    # child of a composite) can never produce a false error.
    def _cache(self) -> dict:
        """Per-instance cache of derived quantities (never holds tensors that require grad)."""
        return self.__dict__.setdefault("_derived_cache", {})

    def _meta(self, fresh: bool = False) -> tuple[torch.device | None, tuple[int, ...]]:
        cache = self._cache()
        if fresh or "meta" not in cache:
            cache["meta"] = (self._device(), tuple(self.batch_shape))
        return cache["meta"]

    def _apply(self, fn, recurse=True):  # noqa: D401 - nn.Module hook
        self.__dict__.pop("_derived_cache", None)
        return super()._apply(fn, recurse)

    def __setattr__(self, name: str, value) -> None:
        self.__dict__.pop("_derived_cache", None)
        super().__setattr__(name, value)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        self.__dict__.pop("_derived_cache", None)
        super().register_buffer(name, tensor, persistent)

    # ------------------------------------------------------------------ input checks
    def _check_input(self, x: Tensor, shape: tuple[int, ...], what: str) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}.{what} expects a torch.Tensor, got "
                            f"{type(x).__name__}")
        n = len(shape)
        if x.ndim < n or tuple(x.shape[x.ndim - n:]) != shape:
            raise ValueError(
                f"{type(self).__name__}.{what} expects a tensor of shape (*batch, {_fmt(shape)}), "
                f"got {tuple(x.shape)}; reshape the input or build the operator with the right "
                f"shape")
        if not (x.is_floating_point() or x.is_complex()):
            raise TypeError(f"{type(self).__name__}.{what} expects a floating-point or complex "
                            f"tensor, got dtype {x.dtype}")
        dev, bs = self._meta()
        if (dev is not None and x.device != dev) or (bs and not _broadcasts(x.shape[:x.ndim - n],
                                                                            bs)):
            dev, bs = self._meta(fresh=True)
        if dev is not None and x.device != dev:
            raise ValueError(
                f"{type(self).__name__}: input is on {x.device} but the operator's tensors are on "
                f"{dev}; move one of them (e.g. op.to(x.device))")
        if bs and not _broadcasts(x.shape[: x.ndim - n], bs):
            raise ValueError(
                f"{type(self).__name__}.{what}: the input's batch shape "
                f"{tuple(x.shape[: x.ndim - n])} does not broadcast against the operator's "
                f"per-sample batch shape {bs}")

    def __call__(self, x: Tensor) -> Tensor:  # type: ignore[override]
        self._check_input(x, self.in_shape, "forward")
        if x.numel() == 0:  # an empty batch (FFT backends reject empty inputs)
            return _empty_result(super().__call__, x, len(self.in_shape), len(self.out_shape))
        return super().__call__(x)

    def __init_subclass__(cls, **kwargs) -> None:
        # ``adjoint`` gets the same input checks as ``op(x)``: each subclass's ``adjoint`` is
        # wrapped once (the unwrapped function stays available as ``adjoint._impl``).
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("adjoint")
        if fn is not None and not getattr(fn, "_checked", False):

            @functools.wraps(fn)
            def adjoint(self, y, _fn=fn):
                self._check_input(y, self.out_shape, "adjoint")
                if y.numel() == 0:  # an empty batch
                    return _empty_result(lambda t: _fn(self, t), y, len(self.out_shape),
                                         len(self.in_shape))
                return _fn(self, y)

            adjoint._checked = True  # type: ignore[attr-defined]
            adjoint._impl = fn  # type: ignore[attr-defined]
            cls.adjoint = adjoint  # type: ignore[method-assign]

    # ------------------------------------------------------------------ the contract
    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Apply the operator, ``(*batch, *in_shape) -> (*batch, *out_shape)``."""

    @abc.abstractmethod
    def adjoint(self, y: Tensor) -> Tensor:
        """Apply the adjoint, ``(*batch, *out_shape) -> (*batch, *in_shape)``."""

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - mathematical notation
        """The adjoint operator :math:`A^H` (``A.H.H is A``)."""
        from ._algebra import Adjoint

        return Adjoint(self)

    @property
    def T(self) -> LinearOperator:  # noqa: N802
        """The transpose; equal to :attr:`H` for real operators only."""
        if any(t.is_complex() for t in self._tensors()) or self.complex_input:
            raise TypeError(f"{type(self).__name__} is complex; use .H (the conjugate "
                            f"transpose) instead of .T")
        return self.H

    def gram(self) -> LinearOperator:
        r"""The Gram operator :math:`A^H A`, simplified where the structure allows."""
        from ._algebra import compose

        return compose([self.H, self])

    def solve_normal(self, b: Tensor, rho: float | Tensor, **cg_kwargs) -> Tensor:
        r"""Solve :math:`(A^H A + \rho I)\,x = b`.

        A closed form is used when the structure allows it: a diagonal Gram (masks, diagonals,
        decimation), a Fourier-diagonal Gram (circular convolutions, Fourier sampling, periodic
        finite differences, and sums, scalings and stacks of these), a DCT-diagonal Gram
        (Neumann-boundary finite differences, alone or stacked with scaled identities), circular
        blur followed by
        decimation (Zhao et al., IEEE TIP 2016), and small dense matrices. Otherwise batched
        conjugate gradient (:func:`operators.cg`) is used, with gradients by implicit
        differentiation (one more solve in the backward pass, no unrolled graph).

        Parameters
        ----------
        b : Tensor, shape ``(*batch, *in_shape)``
        rho : float or Tensor of shape ``batch_shape``
            Positive damping, one per sample if a tensor.
        **cg_kwargs
            Options of :func:`operators.cg` (``rtol``, ``atol``, ``max_iter``, ...) for the
            iterative fallback; ignored by closed forms.

        Returns
        -------
        Tensor, shape ``(*batch, *in_shape)``

        Raises
        ------
        ValueError
            If ``rho`` is not positive, or ``b`` has the wrong shape or device.
        TypeError
            If ``rho`` is neither a real number nor a real tensor.

        Warns
        -----
        RuntimeWarning
            If the conjugate-gradient fallback stops at ``max_iter`` before its tolerance (the
            returned solution is then inexact).

        Examples
        --------
        >>> import torch
        >>> from operators import Mask
        >>> A = Mask(torch.tensor([1.0, 0.0]))
        >>> A.solve_normal(torch.tensor([2.0, 2.0]), rho=1.0)
        tensor([1., 2.])
        """
        unknown = set(cg_kwargs) - _CG_OPTIONS
        if unknown:
            raise TypeError(f"solve_normal got unknown options {sorted(unknown)}; the CG options "
                            f"are {sorted(_CG_OPTIONS)}")
        self._check_input(b, self.in_shape, "solve_normal")
        rho_t = self._check_rho(rho, b)
        if self.complex_input and not b.is_complex():
            b = b.to(torch.promote_types(b.dtype, torch.complex64))
        if b.numel() == 0:  # an empty batch: solve one dummy sample, return none
            if rho_t.numel() == 0:
                rho_t = rho_t.new_ones(tuple(max(s, 1) for s in rho_t.shape))
            n = len(self.in_shape)
            return _empty_result(lambda t: self._solve_normal(t, rho_t, **cg_kwargs), b, n, n)
        return self._solve_normal(b, rho_t, **cg_kwargs)

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        """Unchecked solve; ``rho`` is a real tensor broadcastable to ``b``."""
        solve = self._normal_solver(b)
        if solve is not None:
            return solve(b, rho)
        from ._algebra import Identity, Scaled, Sum
        from .solvers._cg import cg

        m = Sum([self.gram(), Scaled(rho.reshape(rho.shape[: max(rho.ndim - len(self.in_shape),
                                                                   0)]),
                                     Identity(self.in_shape), _checked=True)])
        res = cg(m, b, **cg_kwargs)
        if not bool(res.converged.all()):  # never a silent unconverged solve
            warnings.warn(
                f"solve_normal: conjugate gradient stopped at max_iter={res.n_iter} before "
                f"reaching its tolerance in {int((~res.converged).sum())} of "
                f"{res.converged.numel()} system(s); the solution is inexact. Raise max_iter, "
                f"loosen rtol/atol or pass a preconditioner", RuntimeWarning, stacklevel=3)
        return res.solution

    def _normal_solver(self, like: Tensor) -> Callable[[Tensor, Tensor], Tensor] | None:
        """The closed-form solve ``(b, rho) -> (A^H A + rho I)^{-1} b`` of the generic path
        for inputs like ``like`` (a diagonal, Fourier- or DCT-diagonal Gram), else None (CG).
        The one dispatch behind :meth:`_solve_normal` and :meth:`_closed_form_normal`."""
        g = self.gram()
        d = g._diagonal_symbol(like)
        if d is not None:
            return lambda b, rho: b / (d + rho)
        s = g._fourier_symbol(like)
        if s is not None:
            from ._fourier import fourier_apply

            return lambda b, rho: fourier_apply(b, 1.0 / (s[0] + rho), s[1])
        c = g._dct_symbol(like)
        if c is not None:
            from ._dct import dct_apply

            return lambda b, rho: dct_apply(b, 1.0 / (c[0] + rho), c[1])
        return None

    def _diagonal_symbol(self, like=None) -> Tensor | float | None:
        """``d`` with ``A x = d * x`` (broadcasting over ``(*batch, *in_shape)``), else None."""
        return None

    # Structural rules of the algebra, owned by the concrete operator: when this operator is the
    # outer factor of a two-factor composition ``self @ inner``, it may know a closed form that
    # the generic algebra does not (e.g. decimation after a circular blur). ``Composition`` asks
    # its outer factor through these hooks and falls back to the generic path on ``None``; it
    # never tests for concrete classes.
    def _closed_form_normal(self, like: Tensor) -> bool:
        """Whether the generic :meth:`solve_normal` path has a closed form here (no CG) for
        inputs like ``like``; conservative: False where unsure (e.g. for preconditioner
        choices; operators with their own ``_solve_normal`` may say False)."""
        return self._normal_solver(like) is not None

    def _normal_solver_outer(self, inner: LinearOperator, like: Tensor,
                             cache: dict) -> Callable[[Tensor, Tensor], Tensor] | None:
        """The closed-form solve ``(b, rho) -> ((self @ inner)^H (self @ inner) + rho I)^{-1} b``
        for inputs like ``like``, else None.

        ``cache`` is the composition's cache (for values that depend on ``inner`` only)."""
        return None

    def _opnorm_outer(self, inner: LinearOperator) -> Tensor | None:
        """``||self @ inner||_2`` in closed form, else None."""
        return None

    def _fourier_symbol(self, like=None) -> tuple[Tensor | float, bool] | None:
        """``(s, real_kernel)`` with ``A x = ifft2(s * fft2(x))``, else None."""
        return None

    def _dct_symbol(self, like=None) -> tuple[Tensor | float, tuple[int, ...]] | None:
        """``(s, dims)`` with ``A x = idct(s * dct(x))``, the orthonormal DCT-II along the sample
        axes ``dims`` (negative), ``s`` broadcasting against ``(*batch, *in_shape)``; else None.
        """
        return None

    def _check_rho(self, rho: float | Tensor, b: Tensor) -> Tensor:
        hint = "rho > 0 makes AᴴA + ρI invertible; give a float or one rho per sample (a tensor)"
        if isinstance(rho, Tensor):
            # one synchronization catches complex values, NaN, inf, 0 and negative values
            check_positive_tensor("rho", rho, hint=hint)
            if rho.device != b.device:
                raise ValueError(f"rho is on {rho.device} but b is on {b.device}; move rho")
            batch = tuple(b.shape[: b.ndim - len(self.in_shape)])
            try:
                batch = tuple(torch.broadcast_shapes(batch, self._meta()[1]))
                ok = tuple(torch.broadcast_shapes(rho.shape, batch)) == batch
            except RuntimeError:
                ok = False
            if not ok:
                raise ValueError(
                    f"per-sample rho must have a shape that broadcasts to the batch shape "
                    f"{batch} (of b and the operator), got {tuple(rho.shape)}; give one rho "
                    f"per sample or a float")
            real = b.real.dtype if b.is_complex() else b.dtype
            if rho.numel() and rho.is_floating_point() and \
                    torch.finfo(rho.dtype).bits > torch.finfo(real).bits:
                # rho is computed in b's dtype: a value that under- or overflows there would
                # silently become 0 or inf (e.g. 1e-50 in float32)
                lo, hi = torch.stack(torch.aminmax(rho.detach().reshape(-1))).tolist()
                check_representable("rho", lo, real, hint="per-sample rho")
                check_representable("rho", hi, real, hint="per-sample rho")
            rho = rho.to(real)  # the result keeps b's dtype
            return _expand_per_sample(rho, len(self.in_shape))
        r: float = check_real("rho", rho, positive=True, hint=hint)  # type: ignore[assignment]
        real = b.real.dtype if b.is_complex() else b.dtype
        check_representable("rho", r, real)
        return torch.tensor(r, dtype=real, device=b.device)

    def opnorm(self, **power_kwargs) -> Tensor:
        """Per-sample spectral norm :math:`\\|A\\|_2` (not squared).

        Closed form when the operator or its Gram is diagonal, Fourier-diagonal or
        DCT-diagonal (Neumann finite differences), otherwise
        power iteration on :math:`A^H A` (:func:`operators.power_method`; keyword options are
        passed to it).

        Returns
        -------
        Tensor of shape ``batch_shape`` (0-d for operators shared by all samples).
        """
        like = self._reference_tensor()
        gram = self.gram()
        candidates = ((lambda: self._diagonal_symbol(like), False),
                      (lambda: _first(self._fourier_symbol(like)), False),
                      (lambda: gram._diagonal_symbol(like), True),
                      (lambda: _first(gram._fourier_symbol(like)), True),
                      (lambda: _first(gram._dct_symbol(like)), True))
        for get, root in candidates:
            sym = get()
            if sym is not None:
                return _max_per_sample(sym, len(self.in_shape), root)
        from .solvers._power import power_method

        return power_method(gram, **power_kwargs).eigenvalue.clamp_min(0).sqrt()

    # ------------------------------------------------------------------ algebra
    def __matmul__(self, other):
        from ._algebra import compose

        if isinstance(other, LinearOperator):
            return compose([self, other])
        if isinstance(other, Tensor):
            return self(other)
        return NotImplemented

    def __add__(self, other):
        from ._algebra import Sum

        if isinstance(other, LinearOperator):
            return Sum([self, other])
        return NotImplemented

    def __sub__(self, other):
        from ._algebra import Scaled, Sum

        if isinstance(other, LinearOperator):
            return Sum([self, Scaled(-1.0, other)])
        return NotImplemented

    def __neg__(self):
        from ._algebra import Scaled

        return Scaled(-1.0, self)

    def __mul__(self, c):
        from ._algebra import Scaled

        if isinstance(c, LinearOperator):
            raise TypeError("use A @ B to compose two operators; * scales by a number or a "
                            "per-sample tensor")
        if isinstance(c, (int, float, complex, Tensor)) and not isinstance(c, bool):
            return Scaled(c, self)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, c):
        if isinstance(c, (int, float, complex)) and not isinstance(c, bool) and c == 0:
            raise ValueError(f"cannot divide {type(self).__name__} by zero")
        if isinstance(c, (int, float, complex, Tensor)) and not isinstance(c, bool):
            return self * (1.0 / c)
        return NotImplemented

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"


def _fmt(shape: tuple[int, ...]) -> str:
    return ", ".join(str(s) for s in shape)


#: keyword options of :func:`operators.cg` that ``solve_normal`` passes to its CG fallback
_CG_OPTIONS = frozenset({"rtol", "atol", "max_iter", "check_every", "throw", "preconditioner"})


def _first(sym):
    return None if sym is None else sym[0]


def _max_per_sample(sym: Tensor | float, ndim: int, root: bool) -> Tensor:
    """Max of ``|sym|`` over the event dims (the last ``ndim``), per sample."""
    if not isinstance(sym, Tensor):
        v = torch.tensor(abs(sym))
    else:
        a = sym.abs()
        nb = max(a.ndim - ndim, 0)
        v = a.amax(dim=tuple(range(nb, a.ndim))) if a.ndim > nb else a
    return v.sqrt() if root else v


def _empty_result(fn, x: Tensor, nd_in: int, nd_out: int) -> Tensor:
    """``fn(x)`` for an input whose batch has a zero-size dim, without calling ``fn`` on it.

    ``fn`` runs on one zero sample in place of each empty batch dim (FFTs and other backends
    reject empty tensors); the result is then sliced to size 0 along those dims, so it has the
    shape, dtype and device that ``fn(x)`` would have.
    """
    batch = tuple(x.shape[: x.ndim - nd_in])
    y = fn(x.new_zeros((*(max(s, 1) for s in batch), *x.shape[x.ndim - nd_in:])))
    return _empty_slice(y, batch, nd_out)


def _empty_slice(y: Tensor, batch: tuple[int, ...], nd: int) -> Tensor:
    """Slice ``y`` (batch dims then ``nd`` event dims) to size 0 where ``batch`` has a 0."""
    off = y.ndim - nd - len(batch)
    idx = [slice(None)] * y.ndim
    for i, s in enumerate(batch):
        if s == 0:
            idx[off + i] = slice(0, 0)
    return y[tuple(idx)]


def _broadcasts(a, b) -> bool:
    """Whether two shapes broadcast (right-aligned)."""
    return all(x == y or x == 1 or y == 1 for x, y in zip(reversed(a), reversed(b), strict=False))
