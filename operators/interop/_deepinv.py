"""Adapters between :class:`operators.LinearOperator` and ``deepinv.physics.LinearPhysics``.

deepinv is imported inside the functions only (``import operators`` must not load it). The
``LinearPhysics`` subclass returned by :func:`to_deepinv` is therefore created on first use and
cached (:func:`_physics_class`).
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from sciml_inverse import check_positive_tensor, check_real

from .._base import LinearOperator, _as_shape

__all__ = ["to_deepinv", "from_deepinv"]


def _import_deepinv(feature: str = "operators.interop.to_deepinv/from_deepinv"):
    """Import deepinv on first use (it is heavy); ``feature`` names the caller in the error."""
    try:
        import deepinv  # noqa: TID253 - imported lazily on purpose
    except ImportError as err:  # pragma: no cover - deepinv is a declared dependency
        raise ImportError(f"{feature} needs deepinv; install it with `pip install deepinv`"
                          ) from err
    return deepinv


# ---------------------------------------------------------------------------------- to_deepinv
_GAMMA_HINT = "gamma (the prox step) is a positive float or a tensor with one value per sample"


def _gamma_per_sample(gamma: float | Tensor, like: Tensor, n_event: int) -> Tensor | float:
    """Validate deepinv's ``gamma`` and return it as a float or a tensor of the batch shape."""
    if isinstance(gamma, Tensor):
        # one synchronization catches complex values, NaN, inf, 0 and negative values
        check_positive_tensor("gamma", gamma, hint=_GAMMA_HINT)
        n_batch = like.ndim - n_event
        g = gamma.to(device=like.device)
        if g.ndim > n_batch:  # e.g. deepinv's (B, 1, 1, 1) convention
            if any(s != 1 for s in g.shape[n_batch:]):
                raise ValueError(f"gamma must be a scalar or one value per sample (shape "
                                 f"{tuple(like.shape[:n_batch])}), got shape {tuple(gamma.shape)}")
            g = g.reshape(g.shape[:n_batch])
        elif 0 < g.ndim < n_batch:  # deepinv's per-sample values run along the first dim
            g = g.reshape(g.shape + (1,) * (n_batch - g.ndim))
        return g
    return check_real("gamma", gamma, positive=True,  # type: ignore[return-value]
                      hint=_GAMMA_HINT)


def _prox_l2(op: LinearOperator, z, y: Tensor, gamma: float | Tensor) -> Tensor:
    r"""``argmin_x ½‖Ax − y‖² + 1/(2γ)‖x − z‖²`` = ``(AᴴA + I/γ)⁻¹ (Aᴴy + z/γ)``."""
    b = op.adjoint(y)
    nd = len(op.in_shape)
    g = _gamma_per_sample(gamma, b, nd)
    if z is not None and not (isinstance(z, numbers.Number) and z == 0):
        if isinstance(g, Tensor):
            b = b + z / g.reshape(g.shape + (1,) * nd)
        else:
            b = b + z / g
    return op.solve_normal(b, 1.0 / g)


def _gram_cache_key(op: LinearOperator):
    """Key that changes when the op's tensors are replaced, moved, cast or modified in place."""
    try:
        return tuple((id(t), t.device, t.dtype, t._version) for t in op._tensors())
    except RuntimeError:  # inference tensors have no version counter: do not cache
        return None


@functools.cache
def _physics_class() -> type:
    """Create (once) the ``deepinv.physics.LinearPhysics`` subclass used by :func:`to_deepinv`."""
    dinv = _import_deepinv()
    from ..solvers._lsqr import lsqr

    class OperatorPhysics(dinv.physics.LinearPhysics):
        r"""A :class:`operators.LinearOperator` seen as a deepinv ``LinearPhysics``.

        ``A``, ``A_adjoint``, ``A_adjoint_A`` (the operator's structured Gram, cached),
        ``prox_l2`` (``op.solve_normal``: closed form where the structure allows), ``A_dagger``
        (:func:`operators.lsqr`) and ``compute_norm``/``compute_sqnorm`` (``op.opnorm()``) are
        delegated to the wrapped operator ``self.op`` (a submodule, so ``.to()`` moves it).

        Keyword arguments that deepinv passes along (noise parameters, solver options such as
        ``solver``, ``max_iter``, ``tol``) are accepted and ignored by ``A``, ``A_adjoint`` and
        ``prox_l2``; unlike ``LinearPhysics.prox_l2``, nothing on the object is modified. The
        operator's parameters cannot be updated through deepinv's keyword arguments: build a new
        operator instead.
        """

        def __init__(self, op: LinearOperator, noise_model=None, sensor_model=None) -> None:
            extra = {} if sensor_model is None else {"sensor_model": sensor_model}
            super().__init__(noise_model=noise_model, img_size=tuple(op.in_shape),
                             device=op._device() or "cpu", **extra)
            self.op = op

        # ------------------------------------------------------------ operator
        def A(self, x: Tensor, **kwargs) -> Tensor:  # noqa: N802 - deepinv's name
            return self.op(x)

        def A_adjoint(self, y: Tensor, **kwargs) -> Tensor:  # noqa: N802
            return self.op.adjoint(y)

        def A_adjoint_A(self, x: Tensor, **kwargs) -> Tensor:  # noqa: N802
            return self._gram()(x)

        def _gram(self) -> LinearOperator:
            op = self.op
            if torch.is_grad_enabled() and any(t.requires_grad for t in op._tensors()):
                return op.gram()  # fresh graph on every call
            key = _gram_cache_key(op)
            cached = self.__dict__.get("_gram_cache")
            if key is None or cached is None or cached[0] != key:
                cached = (key, op.gram())
                if key is not None:
                    self.__dict__["_gram_cache"] = cached
            return cached[1]

        # ------------------------------------------------------------ solvers
        def prox_l2(self, z, y: Tensor, gamma, solver=None, max_iter=None, tol=None,
                    verbose=False, **kwargs) -> Tensor:
            r"""``argmin_x (γ/2)‖Ax − y‖² + ½‖x − z‖²`` by ``op.solve_normal``.

            ``gamma`` is a positive float or a per-sample tensor (``(B,)`` or ``(B, 1, 1, 1)``).
            ``z`` may be a tensor, a number or ``None`` (zero). deepinv's solver options are
            ignored (the closed form or :func:`operators.cg` of ``solve_normal`` is used).
            """
            return _prox_l2(self.op, z, y, gamma)

        def A_dagger(self, y: Tensor, solver=None, max_iter=None, tol=None, verbose=False,  # noqa: N802
                     **kwargs) -> Tensor:
            """Least-squares solution by :func:`operators.lsqr` (``tol`` sets its atol and btol)."""
            opts: dict = {}
            if max_iter is not None:
                opts["max_iter"] = max_iter  # lsqr validates both (no silent truncation)
            if tol is not None:
                opts["atol"] = opts["btol"] = tol
            return lsqr(self.op, y, **opts).solution

        # ------------------------------------------------------------ norms
        def compute_sqnorm(self, x0: Tensor, *, max_iter: int = 100, tol: float = 1e-3,
                           verbose: bool = True, rng: torch.Generator | None = None,
                           **kwargs) -> Tensor:
            r"""``‖A‖² = ‖AᴴA‖`` from ``op.opnorm()`` (closed form where known).

            For a per-sample operator the largest value over the samples is returned, so one step
            size suits every sample (as deepinv's batched power method does). When the norm
            needs power iterations and they stop at ``max_iter`` before ``tol`` is met, a
            ``UserWarning`` is raised, as deepinv does; closed forms run no iterations and never
            warn.
            """
            from ..solvers._power import record_power_iterations

            with record_power_iterations() as runs:
                n = self.op.opnorm(max_iter=int(max_iter), tol=float(tol), generator=rng)
            if any(not bool(r.converged.all()) for r in runs):
                # deepinv's power method warns likewise (closed forms run no iterations)
                warnings.warn("Power iteration: convergence not reached", UserWarning,
                              stacklevel=2)
            n = n.amax() if n.ndim else n
            return (n * n).to(x0.device)

        def compute_norm(self, x0: Tensor, max_iter: int = 100, tol: float = 1e-3,
                         verbose: bool = True, squared: bool = True, **kwargs) -> Tensor:
            r"""As deepinv 0.5.0: ``‖AᴴA‖ = ‖A‖²`` by default (``squared=True``, deprecated there
            and warned about likewise), ``‖A‖`` with ``squared=False``."""
            if squared is True:
                warnings.warn(
                    "Using `compute_norm(squared=True)` is deprecated. Use `compute_sqnorm()` "
                    "instead to compute the squared spectral norm (||A^T A||_2). In a future "
                    "version, `compute_norm()` will compute the non-squared spectral norm "
                    "(||A||_2) by default.", DeprecationWarning, stacklevel=2)
            elif squared is not False:
                raise ValueError(f"squared must be True or False, got {squared!r}")
            sq = self.compute_sqnorm(x0, max_iter=max_iter, tol=tol, verbose=verbose)
            return sq if squared else sq.sqrt()

    OperatorPhysics.__module__ = __name__
    OperatorPhysics.__qualname__ = "OperatorPhysics"
    return OperatorPhysics


def __getattr__(name: str):
    # The LinearPhysics subclass is created lazily; expose it under its qualified name so that
    # pickle (torch.save, copy.deepcopy of containers, multiprocessing) finds it.
    if name == "OperatorPhysics":
        return _physics_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_deepinv(op: LinearOperator, *, noise_model=None, sensor_model=None):
    r"""Wrap an operator as a ``deepinv.physics.LinearPhysics``.

    The result is an instance of a ``LinearPhysics`` subclass, so deepinv's algorithms take their
    linear-physics branches (e.g. ``L2.grad`` uses ``A_adjoint_A``). Its methods delegate to
    ``op``:

    * ``A(x) = op(x)``, ``A_adjoint(y) = op.adjoint(y)``, ``A_adjoint_A = op.gram()`` (built once
      and cached while the operator's tensors are unchanged);
    * ``prox_l2(z, y, gamma)`` solves :math:`\min_x \tfrac{\gamma}{2}\|Ax-y\|^2 +
      \tfrac12\|x-z\|^2` as ``op.solve_normal(op.adjoint(y) + z / gamma, 1 / gamma)`` (closed form
      for Fourier-diagonal, diagonal and blur-plus-decimation operators); ``gamma`` may be a float
      or a per-sample tensor; deepinv's ``solver``/``max_iter``/``tol`` are ignored and nothing is
      modified;
    * ``A_dagger(y)`` uses :func:`operators.lsqr`;
    * ``compute_sqnorm`` returns ``op.opnorm() ** 2`` and ``compute_norm`` follows deepinv
      0.5.0: squared by default (with deepinv's ``DeprecationWarning``), ``‖A‖`` with
      ``squared=False``.

    Parameters
    ----------
    op : LinearOperator
        Acting on ``(B, *in_shape)`` tensors, e.g. ``in_shape = (C, H, W)`` for deepinv images.
    noise_model, sensor_model : optional
        Passed to ``LinearPhysics`` (default: a fresh ``ZeroNoise()``, identity sensor).

    Returns
    -------
    deepinv.physics.LinearPhysics
        With the operator as its submodule ``.op`` (``.to(device)`` moves both).

    Raises
    ------
    TypeError
        If ``op`` is not a :class:`operators.LinearOperator`.

    Examples
    --------
    >>> import torch
    >>> from operators import Convolution
    >>> from operators.interop import to_deepinv
    >>> physics = to_deepinv(Convolution(torch.ones(3, 3) / 9, (1, 16, 16)))
    >>> x = torch.rand(2, 1, 16, 16)
    >>> bool(physics.adjointness_test(x) < 1e-5)
    True
    """
    if not isinstance(op, LinearOperator):
        raise TypeError(f"to_deepinv expects an operators.LinearOperator, got "
                        f"{type(op).__name__}; for a deepinv physics use it directly")
    return _physics_class()(op, noise_model=noise_model, sensor_model=sensor_model)


# -------------------------------------------------------------------------------- from_deepinv
def _flat_apply(fn, x: Tensor, n_event: int) -> Tensor:
    """Apply a deepinv ``(N, ...) -> (N, ...)`` function to ``(*batch, *event)`` tensors."""
    batch = x.shape[: x.ndim - n_event]
    if len(batch) == 1:
        return fn(x)
    out = fn(x.reshape(-1, *x.shape[x.ndim - n_event:]))
    return out.reshape(*batch, *out.shape[1:])


class DeepinvOperator(LinearOperator):
    r"""A deepinv ``LinearPhysics`` seen as a :class:`operators.LinearOperator`.

    Built by :func:`from_deepinv`. ``forward`` is ``physics.A``, ``adjoint`` is
    ``physics.A_adjoint`` and the Gram operator applies ``physics.A_adjoint_A`` (deepinv's closed
    form where it has one). Extra batch dimensions are flattened into deepinv's single batch
    dimension and restored. For ``DecomposablePhysics`` (e.g. ``BlurFFT``), ``solve_normal`` with
    a scalar ``rho`` uses deepinv's SVD-based ``prox_l2``; otherwise batched CG.
    """

    def __init__(self, physics, in_shape: Sequence[int], out_shape: Sequence[int],
                 dtype: torch.dtype) -> None:
        super().__init__(in_shape, out_shape)
        self.physics = physics
        self._dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        return _flat_apply(self.physics.A, x, len(self.in_shape))

    def adjoint(self, y: Tensor) -> Tensor:
        return _flat_apply(self.physics.A_adjoint, y, len(self.out_shape))

    def gram(self) -> LinearOperator:
        return _DeepinvGram(self)

    def _solve_normal(self, b: Tensor, rho: Tensor, **cg_kwargs) -> Tensor:
        dinv = _import_deepinv()
        if isinstance(self.physics, dinv.physics.DecomposablePhysics) and rho.numel() == 1:
            # (AᴴA + ρI) x = b  <=>  x = prox_l2(z = b/ρ, y = 0, γ = 1/ρ)
            gamma = 1.0 / rho.reshape(())

            def prox(bb: Tensor) -> Tensor:
                y = bb.new_zeros((bb.shape[0], *self.out_shape))
                return self.physics.prox_l2(bb * gamma, y, gamma)

            return _flat_apply(prox, b, len(self.in_shape))
        return super()._solve_normal(b, rho, **cg_kwargs)

    def opnorm(self, **power_kwargs) -> Tensor:
        from ..solvers._power import power_method

        power_kwargs.setdefault("dtype", self._dtype)
        return power_method(self.gram(), **power_kwargs).eigenvalue.clamp_min(0).sqrt()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, physics={type(self.physics).__name__}"


class _DeepinvGram(LinearOperator):
    """``physics.A_adjoint_A`` as a (self-adjoint) operator."""

    def __init__(self, op: DeepinvOperator) -> None:
        super().__init__(op.in_shape, op.in_shape)
        self.op = op

    def forward(self, x: Tensor) -> Tensor:
        return _flat_apply(self.op.physics.A_adjoint_A, x, len(self.in_shape))

    def adjoint(self, y: Tensor) -> Tensor:
        return _flat_apply(self.op.physics.A_adjoint_A, y, len(self.in_shape))

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self


def from_deepinv(physics, in_shape: Sequence[int], *,
                 dtype: torch.dtype | None = None) -> LinearOperator:
    r"""Wrap a deepinv ``LinearPhysics`` as a :class:`operators.LinearOperator`.

    Parameters
    ----------
    physics : deepinv.physics.LinearPhysics
    in_shape : sequence of int
        Shape of one input sample without the batch dimension, e.g. ``(C, H, W)``.
    dtype : torch.dtype, optional
        Of the zero probe used once to find ``out_shape`` (``physics.A`` applied to
        ``zeros((1, *in_shape))`` under ``no_grad``) and of the random start of ``opnorm``'s power
        iteration; default ``torch.get_default_dtype()``.

    Returns
    -------
    LinearOperator
        ``forward = physics.A``, ``adjoint = physics.A_adjoint``, ``gram()`` applies
        ``physics.A_adjoint_A``; inputs ``(*batch, *in_shape)`` (extra batch dims are flattened
        for deepinv and restored).

    Raises
    ------
    TypeError
        If ``physics`` is not a ``LinearPhysics``, or its ``A`` does not return a tensor (stacked
        physics return a ``TensorList``).

    Examples
    --------
    >>> import torch, deepinv
    >>> from operators.interop import from_deepinv
    >>> physics = deepinv.physics.Inpainting(img_size=(1, 8, 8), mask=0.5)
    >>> A = from_deepinv(physics, (1, 8, 8))
    >>> A.out_shape
    (1, 8, 8)
    """
    dinv = _import_deepinv()
    if not isinstance(physics, dinv.physics.LinearPhysics):
        raise TypeError(f"from_deepinv expects a deepinv.physics.LinearPhysics, got "
                        f"{type(physics).__name__}; non-linear physics have no adjoint")
    in_shape = _as_shape(in_shape, "in_shape")
    dtype = torch.get_default_dtype() if dtype is None else dtype
    ref = next(iter(physics.buffers()), None)
    if ref is None:
        ref = next(iter(physics.parameters()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    with torch.no_grad():
        y = physics.A(torch.zeros((1, *in_shape), dtype=dtype, device=device))
    if not isinstance(y, Tensor):
        raise TypeError(f"{type(physics).__name__}.A returned a {type(y).__name__}, not a tensor; "
                        f"stacked physics are not supported, wrap each one and use "
                        f"operators.Stack")
    return DeepinvOperator(physics, in_shape, tuple(y.shape[1:]), dtype)
