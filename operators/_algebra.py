"""Operator algebra: identity, adjoint, composition, sum and scaling, with structure rules.

Structure is tracked by two private hooks on every operator:

* ``_diagonal_symbol()`` -> ``d`` when ``A x = d * x`` (``d`` broadcasts against
  ``(*batch, *in_shape)``), else ``None``;
* ``_fourier_symbol()`` -> ``(s, real_kernel)`` when ``A x = ifft2(s * fft2(x))`` over the last two
  dims, else ``None``. ``real_kernel`` says the kernel is real (Hermitian-symmetric ``s``), which
  allows the real FFT for real inputs;
* ``_dct_symbol()`` -> ``(s, dims)`` when ``A x = idct(s * dct(x))`` with the orthonormal DCT-II
  along the sample axes ``dims`` (e.g. Neumann finite-difference Laplacians), else ``None``. A
  symbol is constant along the axes it does not list, so symbols over different axes combine over
  the union of their axes.

The algebra propagates them (sums add, compositions multiply, scalings scale, adjoints conjugate),
so ``solve_normal`` and ``opnorm`` find closed forms for e.g. ``(c * Conv).gram() + rho * I``
without any special-casing of concrete classes.
"""

from __future__ import annotations

import cmath
import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from sciml_inverse import check_finite

from ._base import LinearOperator, _as_shape, _broadcast_batch, _expand_per_sample

__all__ = ["Identity", "Adjoint", "Composition", "Sum", "Scaled"]


class Identity(LinearOperator):
    r"""The identity :math:`I` on samples of shape ``shape``.

    Examples
    --------
    >>> import torch
    >>> from operators import Identity
    >>> Identity((2, 3)).solve_normal(torch.ones(2, 3), rho=1.0)
    tensor([[0.5000, 0.5000, 0.5000],
            [0.5000, 0.5000, 0.5000]])
    """

    def __init__(self, shape: Sequence[int]) -> None:
        shape = _as_shape(shape, "shape")
        super().__init__(shape, shape)

    def forward(self, x: Tensor) -> Tensor:
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        return y

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self

    def gram(self) -> LinearOperator:
        return self

    def _diagonal_symbol(self, like=None):
        return 1.0

    def _fourier_symbol(self, like=None):
        return (1.0, True)

    def _dct_symbol(self, like=None):
        return (1.0, ())

    def opnorm(self, **kwargs) -> Tensor:
        return torch.ones(())


class Adjoint(LinearOperator):
    """The adjoint :math:`A^H` of an operator; built by ``A.H`` (``A.H.H is A``)."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__(op.out_shape, op.in_shape)
        self.op = op

    @property
    def complex_input(self) -> bool:  # type: ignore[override]
        return self.op.complex_input

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.op.batch_shape

    def forward(self, x: Tensor) -> Tensor:
        return self.op.adjoint(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return self.op.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.op

    def gram(self) -> LinearOperator:
        return compose([self.op, self])

    def _diagonal_symbol(self, like=None):
        d = self.op._diagonal_symbol(like)
        return None if d is None else _conj(d)

    def _fourier_symbol(self, like=None):
        s = self.op._fourier_symbol(like)
        return None if s is None else (_conj(s[0]), s[1])

    def _dct_symbol(self, like=None):
        s = self.op._dct_symbol(like)
        return None if s is None else (_conj(s[0]), s[1])

    def opnorm(self, **kwargs) -> Tensor:
        return self.op.opnorm(**kwargs)


class _Composite(LinearOperator):
    """Base of operators built from ``self.ops``: complex if any part is, batch shapes broadcast."""

    ops: torch.nn.ModuleList

    @property
    def complex_input(self) -> bool:  # type: ignore[override]
        return any(op.complex_input for op in self.ops)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _broadcast_batch(*(op.batch_shape for op in self.ops))


class Composition(_Composite):
    r"""Composition :math:`A_1 A_2 \cdots A_k` (the last operator is applied first).

    Usually built with ``A @ B``, which also flattens nested compositions, drops identities and
    pulls scalings to the front.

    Parameters
    ----------
    ops : sequence of LinearOperator
        ``ops[i].in_shape`` must equal ``ops[i + 1].out_shape``.

    Raises
    ------
    ValueError
        If consecutive shapes do not match or fewer than two operators are given.
    """

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        ops = list(ops)
        if len(ops) < 2:
            raise ValueError(f"Composition needs at least two operators, got {len(ops)}")
        for a, b in zip(ops[:-1], ops[1:], strict=True):
            if a.in_shape != b.out_shape:
                raise ValueError(
                    f"cannot compose {type(a).__name__} (in_shape {a.in_shape}) with "
                    f"{type(b).__name__} (out_shape {b.out_shape}): the shapes must match")
        super().__init__(ops[-1].in_shape, ops[0].out_shape)
        self.ops = torch.nn.ModuleList(ops)

    def forward(self, x: Tensor) -> Tensor:
        for op in reversed(self.ops):
            x = op.forward(x)
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        for op in self.ops:
            y = op.adjoint(y)
        return y

    def gram(self) -> LinearOperator:
        first, rest = self.ops[0], list(self.ops[1:])
        return compose([*(o.H for o in reversed(rest)), first.gram(), *rest])

    def _diagonal_symbol(self, like=None):
        return _product([op._diagonal_symbol(like) for op in self.ops])

    def _fourier_symbol(self, like=None):
        syms = [op._fourier_symbol(like) for op in self.ops]
        if any(s is None for s in syms):
            return None
        return (_product([s[0] for s in syms]), all(s[1] for s in syms))

    def _dct_symbol(self, like=None):
        syms = [op._dct_symbol(like) for op in self.ops]
        if any(s is None for s in syms):
            return None
        return (_product([s[0] for s in syms]), _union_dims(s[1] for s in syms))

    def _normal_solver(self, like: Tensor):
        if len(self.ops) == 2:  # a closed form the outer factor knows (its registered rule)
            solve = self.ops[0]._normal_solver_outer(self.ops[1], like, self._cache())
            if solve is not None:
                return solve
        return super()._normal_solver(like)

    def opnorm(self, **kwargs) -> Tensor:
        if len(self.ops) == 2:
            n = self.ops[0]._opnorm_outer(self.ops[1])
            if n is not None:
                return n
        return super().opnorm(**kwargs)


class Sum(_Composite):
    r"""Sum :math:`A_1 + \cdots + A_k` of operators with equal shapes (built by ``A + B``)."""

    def __init__(self, ops: Sequence[LinearOperator]) -> None:
        flat: list[LinearOperator] = []
        for op in ops:
            flat.extend(op.ops if isinstance(op, Sum) else [op])
        if len(flat) < 2:
            raise ValueError(f"Sum needs at least two operators, got {len(flat)}")
        for op in flat[1:]:
            if (op.in_shape, op.out_shape) != (flat[0].in_shape, flat[0].out_shape):
                raise ValueError(
                    f"cannot add operators of shapes {flat[0].in_shape}->{flat[0].out_shape} and "
                    f"{op.in_shape}->{op.out_shape}")
        super().__init__(flat[0].in_shape, flat[0].out_shape)
        self.ops = torch.nn.ModuleList(flat)

    def forward(self, x: Tensor) -> Tensor:
        out = self.ops[0].forward(x)
        for op in self.ops[1:]:
            out = out + op.forward(x)
        return out

    def adjoint(self, y: Tensor) -> Tensor:
        out = self.ops[0].adjoint(y)
        for op in self.ops[1:]:
            out = out + op.adjoint(y)
        return out

    def _diagonal_symbol(self, like=None):
        syms = [op._diagonal_symbol(like) for op in self.ops]
        if any(s is None for s in syms):
            return None
        out = syms[0]
        for s in syms[1:]:
            out = out + s
        return out

    def _fourier_symbol(self, like=None):
        syms = [op._fourier_symbol(like) for op in self.ops]
        if any(s is None for s in syms):
            return None
        out = syms[0][0]
        for s in syms[1:]:
            out = out + s[0]
        return (out, all(s[1] for s in syms))

    def _dct_symbol(self, like=None):
        syms = [op._dct_symbol(like) for op in self.ops]
        if any(s is None for s in syms):
            return None
        out = syms[0][0]
        for s in syms[1:]:
            out = out + s[0]
        return (out, _union_dims(s[1] for s in syms))


class Scaled(LinearOperator):
    r"""Scaled operator :math:`c\,A` with a scalar or per-sample ``c`` (built by ``c * A``).

    Parameters
    ----------
    c : number or Tensor of shape ``batch_shape``
        A per-sample tensor multiplies sample ``i`` by ``c[i]``.
    op : LinearOperator

    Raises
    ------
    TypeError
        If ``c`` is neither a number nor a tensor.
    ValueError
        If ``c`` is NaN or infinite (or a tensor holding such values).
    """

    def __init__(self, c: numbers.Number | Tensor, op: LinearOperator, *,
                 _checked: bool = False) -> None:
        super().__init__(op.in_shape, op.out_shape)
        if isinstance(c, Tensor):
            if not (c.is_floating_point() or c.is_complex()):
                c = c.to(torch.get_default_dtype())
            if not _checked:  # internal scales (Gram, merged scales, rho) are already checked
                check_finite("the scale", c)
        elif isinstance(c, numbers.Number) and not isinstance(c, bool):
            if not cmath.isfinite(complex(c)):
                raise ValueError(f"the scale must be finite, got {c!r}")
            # A Python number takes the precision of the operator's tensors, and double precision
            # for parameter-free operators (a 0-d double never changes the dtype of the data it
            # scales), so that e.g. ``0.1 * A`` is exact to the data's precision.
            ref = op._reference_tensor()
            real = torch.float64
            if ref is not None and (ref.is_floating_point() or ref.is_complex()):
                real = ref.real.dtype if ref.is_complex() else ref.dtype
            if not isinstance(c, numbers.Real):  # complex
                real = torch.promote_types(real, torch.complex64)
            c = torch.tensor(c, dtype=real)
        else:
            raise TypeError(f"the scale must be a number or a tensor, got {type(c).__name__}")
        self.register_buffer("c", c)
        self.op = op

    @property
    def complex_input(self) -> bool:  # type: ignore[override]
        return self.op.complex_input

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return _broadcast_batch(tuple(self.c.shape), self.op.batch_shape)

    def _c(self, ndim: int, conj: bool = False) -> Tensor:
        c = self.c.conj() if conj else self.c
        return _expand_per_sample(c, ndim) if c.ndim else c

    def forward(self, x: Tensor) -> Tensor:
        return self._c(len(self.out_shape)) * self.op.forward(x)

    def adjoint(self, y: Tensor) -> Tensor:
        return self._c(len(self.in_shape), conj=True) * self.op.adjoint(y)

    def gram(self) -> LinearOperator:
        return Scaled(self.c.abs() ** 2, self.op.gram(), _checked=True)

    def _diagonal_symbol(self, like=None):
        d = self.op._diagonal_symbol(like)
        return None if d is None else self._c(len(self.in_shape)) * d

    def _fourier_symbol(self, like=None):
        s = self.op._fourier_symbol(like)
        if s is None:
            return None
        return (self._c(len(self.in_shape)) * s[0], s[1] and not self.c.is_complex())

    def _dct_symbol(self, like=None):
        s = self.op._dct_symbol(like)
        return None if s is None else (self._c(len(self.in_shape)) * s[0], s[1])

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        # (|c|^2 AᴴA + ρ)⁻¹ b = |c|⁻² (AᴴA + ρ/|c|²)⁻¹ b, keeping A's closed form.
        c2 = self._c(len(self.in_shape)).abs() ** 2
        if bool((c2 == 0).any()):
            return super()._solve_normal(b, rho, **cg_kwargs)
        return self.op._solve_normal(b / c2, rho / c2, **cg_kwargs)

    def opnorm(self, **kwargs) -> Tensor:
        return self.c.abs() * self.op.opnorm(**kwargs)


def compose(ops: Sequence[LinearOperator]) -> LinearOperator:
    """Compose with simplifications: flatten, drop identities, pull scalings to the front."""
    flat: list[LinearOperator] = []
    scales: list[Tensor] = []
    for op in ops:
        stack = [op]
        while stack:
            o = stack.pop(0)
            if isinstance(o, Composition):
                stack = list(o.ops) + stack
            elif isinstance(o, Scaled):
                scales.append(o.c)
                stack.insert(0, o.op)
            else:
                flat.append(o)
    for a, b in zip(flat[:-1], flat[1:], strict=False):
        if a.in_shape != b.out_shape:
            raise ValueError(
                f"cannot compose {type(a).__name__} (in_shape {a.in_shape}) with "
                f"{type(b).__name__} (out_shape {b.out_shape}): the shapes must match")
    kept = [o for o in flat if not isinstance(o, Identity)] or [flat[0]]
    out = kept[0] if len(kept) == 1 else Composition(kept)
    if scales:
        c = scales[0]
        for s in scales[1:]:
            c = c * s
        out = Scaled(c, out, _checked=True)
    return out


def _conj(s):
    return s.conj() if isinstance(s, Tensor) else (s.conjugate() if isinstance(s, complex) else s)


def _union_dims(dims_seq) -> tuple[int, ...]:
    return tuple(sorted({d for dims in dims_seq for d in dims}))


def _product(syms):
    if any(s is None for s in syms):
        return None
    out = syms[0]
    for s in syms[1:]:
        out = out * s
    return out
